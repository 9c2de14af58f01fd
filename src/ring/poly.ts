import { InvalidArgumentError, MismatchError } from '../util/errors.ts';
import type { Allocator } from './arena.ts';
import type { KernelContext } from './context.ts';
import type { Modulus } from './modulus.ts';

const reclaim = new FinalizationRegistry<{ allocator: Allocator; pointer: number; words: number }>((held) => {
  held.allocator.free(held.pointer, held.words);
});

/**
 * An RNS polynomial: a header plus contiguous 32-bit limbs in the memory of its moduli's {@link KernelContext},
 * limb i reduced modulo moduli[i]. Limbs are independent so workers can split them. `isNtt` says whether the limbs
 * hold NTT evaluations (bit-reversed order) or coefficients.
 *
 * Memory is returned to the allocator it came from by {@link Poly.dispose}, or when the object is garbage
 * collected.
 *
 * @example
 * ```ts
 * const p = Poly.alloc(ring.moduliQ.slice(0, 3), true);
 * p.limb(0).fill(1);
 * p.dispose();
 * ```
 */
export class Poly {
  readonly n: number;
  readonly moduli: readonly Modulus[];
  readonly pointer: number;
  /** The context whose memory holds the limbs. */
  readonly context: KernelContext;
  isNtt: boolean;
  #disposed = false;
  readonly #token: object = {};
  readonly #allocator: Allocator;

  private constructor(moduli: readonly Modulus[], isNtt: boolean, pointer: number, allocator: Allocator) {
    this.n = moduli[0].n;
    this.moduli = moduli;
    this.context = moduli[0].context;
    this.isNtt = isNtt;
    this.pointer = pointer;
    this.#allocator = allocator;
    reclaim.register(this, { allocator, pointer, words: this.n * moduli.length }, this.#token);
  }

  /**
   * A new polynomial over the given moduli (all of one ring degree), zeroed unless `zero` is false (for
   * scratch space that is overwritten at once).
   */
  static alloc(moduli: readonly Modulus[], isNtt: boolean, zero = true): Poly {
    if (moduli.length === 0) throw new InvalidArgumentError('Poly.alloc: expected at least one modulus');
    const n = moduli[0].n;
    const context = moduli[0].context;
    for (const m of moduli) {
      if (m.n !== n)
        throw new InvalidArgumentError(`Poly.alloc: modulus ${m.value} is for degree ${m.n}, not ${n}`);
      if (m.context !== context)
        throw new MismatchError(
          `Poly.alloc: modulus ${m.value} belongs to kernel context ${m.context.id}, not ${context.id}`,
        );
    }
    const words = n * moduli.length;
    const allocator = context.allocator;
    const pointer = allocator.alloc(words);
    if (zero) context.view(pointer, words).fill(0);
    return new Poly(moduli, isNtt, pointer, allocator);
  }

  /** A new polynomial over `moduli` holding the given limb words (copied), e.g. from a deserialized buffer. */
  static fromWords(moduli: readonly Modulus[], isNtt: boolean, words: Uint32Array): Poly {
    const poly = Poly.alloc(moduli, isNtt);
    if (words.length !== poly.wordCount) {
      throw new InvalidArgumentError(`Poly.fromWords: ${words.length} words, expected ${poly.wordCount}`);
    }
    poly.words().set(words);
    return poly;
  }

  get limbCount(): number {
    return this.moduli.length;
  }

  get wordCount(): number {
    return this.n * this.moduli.length;
  }

  get byteLength(): number {
    return this.wordCount * 4;
  }

  /** Byte offset of limb i in kernel memory. */
  limbPointer(i: number): number {
    return this.pointer + i * this.n * 4;
  }

  /** A live view of limb i. */
  limb(i: number): Uint32Array {
    this.#checkAlive();
    return this.context.view(this.limbPointer(i), this.n);
  }

  /** A live view of all limbs. */
  words(): Uint32Array {
    this.#checkAlive();
    return this.context.view(this.pointer, this.wordCount);
  }

  /** A deep copy (same moduli and domain), or only the first `limbs` limbs. */
  copy(limbs = this.limbCount): Poly {
    const out = Poly.alloc(
      limbs === this.limbCount ? this.moduli : this.moduli.slice(0, limbs),
      this.isNtt,
      false,
    );
    out.words().set(this.context.view(this.pointer, this.n * limbs));
    return out;
  }

  /** Copies `source` (same n, at least as many limbs) into this polynomial. */
  assign(source: Poly): void {
    this.context.check(source.context, 'Poly.assign');
    if (source.n !== this.n || source.limbCount < this.limbCount) {
      throw new MismatchError(
        `Poly.assign: source has n = ${source.n}, ${source.limbCount} limbs; expected n = ${this.n}, ≥ ${this.limbCount}`,
      );
    }
    this.words().set(this.context.view(source.pointer, this.wordCount));
    this.isNtt = source.isNtt;
  }

  /** Returns the limbs to the allocator they came from now; the object must not be used afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    reclaim.unregister(this.#token);
    this.#allocator.free(this.pointer, this.wordCount);
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  #checkAlive(): void {
    if (this.#disposed) throw new InvalidArgumentError('Poly: used after dispose()');
  }
}
