import { Poly } from '../ring/poly.ts';
import { HostStash, type Stash } from './stash.ts';
import { MissingKeyError } from '../util/errors.ts';
import type { Evaluator } from './evaluator.ts';
import { EvaluationKeys, type EvaluationKeyStream, GaloisKey, SwitchingKey } from './keys.ts';
import type { Parameters } from './parameters.ts';

/**
 * Where an evaluation that needs more Galois keys than kernel memory holds (bootstrapping at logN 16 uses 38 keys
 * of up to 182 MB; kernel memory stops at 4 GiB) gets them: a few at a time, in kernel memory between
 * `acquire` and `release`. The order of the acquisitions is fixed by the circuit, not by the data, so a source
 * may prefetch. {@link ResidentKeys} wraps keys already in kernel memory; {@link StashedKeys} keeps them in a
 * {@link Stash} (host memory, or files through the runtime).
 *
 * @example
 * ```ts
 * const [key] = source.acquire([galoisElementForRotation(1, params.logN)]);
 * // … rotate with key …
 * source.release([key]);
 * ```
 */
export interface GaloisKeySource {
  readonly params: Parameters;
  /** The Galois elements it has keys for. */
  readonly galoisElements: readonly number[];
  /** Bytes of all its keys. */
  readonly byteLength: number;
  /** The keys of `elements`, live in kernel memory until {@link release}. @throws MissingKeyError */
  acquire(elements: readonly number[]): GaloisKey[];
  /** Gives back keys from {@link acquire}; the source may free them. */
  release(keys: readonly GaloisKey[]): void;
}

/**
 * Runs `f` with `evaluator` plus the Galois keys of `elements` taken from `source` (its relinearization key kept),
 * and gives the keys back afterwards, even when `f` throws.
 *
 * @example
 * ```ts
 * const rotated = withGaloisKeys(source, evaluator, [galoisElementForRotation(4, logN)], (e) => e.rotateNew(ct, 4));
 * ```
 */
export function withGaloisKeys<T>(
  source: GaloisKeySource,
  evaluator: Evaluator,
  elements: readonly number[],
  f: (evaluator: Evaluator) => T,
): T {
  const keys = source.acquire(elements);
  try {
    return f(evaluator.withKeys(new EvaluationKeys(evaluator.keys?.relinearization, keys)));
  } finally {
    source.release(keys);
  }
}

/**
 * Keys already in kernel memory (an {@link EvaluationKeys}): acquire hands them out, release keeps them.
 *
 * @example
 * ```ts
 * const source = new ResidentKeys(params, evaluationKeys);
 * ```
 */
export class ResidentKeys implements GaloisKeySource {
  readonly params: Parameters;
  readonly #keys: EvaluationKeys;

  constructor(params: Parameters, keys: EvaluationKeys) {
    for (const key of keys.galois.values()) params.checkSame(key.key.params, 'Galois key');
    this.params = params;
    this.#keys = keys;
  }

  get galoisElements(): number[] {
    return [...this.#keys.galois.keys()];
  }

  get byteLength(): number {
    let total = 0;
    for (const key of this.#keys.galois.values()) total += key.key.byteLength;
    return total;
  }

  acquire(elements: readonly number[]): GaloisKey[] {
    return elements.map((g) => {
      const key = this.#keys.galois.get(g);
      if (!key) throw new MissingKeyError(`no Galois key for element ${g}`);
      return key;
    });
  }

  release(): void {}
}

/** What a stashed key needs besides its limbs. */
interface StashedKey {
  level: number;
  seed: Uint8Array;
  digits: number;
}

/** Byte views of a key's polynomials in kernel memory, in stash order (b_0, a_0, b_1, a_1, …). */
function keyViews(key: SwitchingKey): Uint8Array[] {
  const memory = key.params.context.memory.buffer;
  return key.digits.flatMap((d) => [d.b, d.a].map((p) => new Uint8Array(memory, p.pointer, p.byteLength)));
}

/**
 * Galois keys kept in a {@link Stash} (host memory by default; files through the runtime's `FileStash`), outside
 * the 4 GiB kernel memory, copied into kernel memory on acquire and freed on release. A copy from host memory
 * costs about 40 ms for a 182 MB key against about a second of key-switching work with it.
 *
 * @example
 * ```ts
 * const source = StashedKeys.fromStream(params, keygen.streamEvaluationKeys(sk, { rotations, relinearization: false }));
 * ```
 */
export class StashedKeys implements GaloisKeySource {
  readonly params: Parameters;
  readonly stash: Stash;
  readonly #keys = new Map<number, StashedKey>();

  constructor(params: Parameters, stash: Stash = new HostStash()) {
    this.params = params;
    this.stash = stash;
  }

  /** Makes every Galois key of `stream` one at a time, stashing each. */
  static fromStream(params: Parameters, stream: EvaluationKeyStream, stash?: Stash): StashedKeys {
    params.checkSame(stream.params, 'key stream');
    const keys = new StashedKeys(params, stash);
    for (const g of stream.galoisElements) {
      const key = stream.make(g);
      try {
        keys.add(new GaloisKey(g, key));
      } finally {
        key.dispose();
      }
    }
    return keys;
  }

  /** Stashes a copy of `key` (the caller keeps and disposes the original). */
  add(key: GaloisKey): void {
    this.params.checkSame(key.key.params, 'Galois key');
    this.stash.put(`galois:${key.galoisElement}`, keyViews(key.key));
    this.#keys.set(key.galoisElement, {
      level: key.key.level,
      seed: Uint8Array.from(key.key.seed),
      digits: key.key.digits.length,
    });
  }

  get galoisElements(): number[] {
    return [...this.#keys.keys()];
  }

  get byteLength(): number {
    let total = 0;
    for (const key of this.#keys.values())
      total += key.digits * 2 * this.params.moduliQPAtLevel(key.level).length;
    return total * this.params.n * 4;
  }

  acquire(elements: readonly number[]): GaloisKey[] {
    const missing = elements.filter((g) => !this.#keys.has(g));
    if (missing.length > 0) throw new MissingKeyError(`no Galois key for element(s) ${missing.join(', ')}`);
    const acquired: GaloisKey[] = [];
    try {
      for (const g of elements) {
        const meta = this.#keys.get(g) as StashedKey;
        const moduli = this.params.moduliQPAtLevel(meta.level);
        const digits = Array.from({ length: meta.digits }, () => ({
          b: Poly.alloc(moduli, true, false),
          a: Poly.alloc(moduli, true, false),
        }));
        const key = new SwitchingKey(this.params, digits, meta.seed);
        acquired.push(new GaloisKey(g, key));
        this.stash.get(`galois:${g}`, keyViews(key));
      }
    } catch (error) {
      this.release(acquired);
      throw error;
    }
    return acquired;
  }

  release(keys: readonly GaloisKey[]): void {
    for (const key of keys) key.key.dispose();
  }
}
