import { Poly } from '../ring/poly.ts';
import { MissingKeyError } from '../util/errors.ts';
import { type EvaluationKeys, type EvaluationKeyStream, GaloisKey, SwitchingKey } from './keys.ts';
import type { Parameters } from './parameters.ts';

/**
 * Where an evaluation that needs more Galois keys than kernel memory holds (bootstrapping at logN 16 uses 38 keys
 * of up to 182 MB; kernel memory stops at 4 GiB) gets them: a few at a time, in kernel memory between
 * `acquire` and `release`. The order of the acquisitions is fixed by the circuit, not by the data, so a source
 * may prefetch. {@link ResidentKeys} wraps keys already in kernel memory; {@link HostKeys} holds them in host
 * memory; the tiered runtime implements one over its store.
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

/** One key as host words: its level, seed and the (b, a) limbs of each digit. */
interface HostKey {
  level: number;
  seed: Uint8Array;
  digits: { b: Uint32Array; a: Uint32Array }[];
}

/**
 * Galois keys held in host memory (ordinary `Uint32Array`s, outside the 4 GiB kernel memory), copied into kernel
 * memory on acquire and freed on release. A copy costs about 40 ms for a 182 MB key against about a second of
 * key-switching work with it.
 *
 * @example
 * ```ts
 * const source = HostKeys.fromStream(params, keygen.streamEvaluationKeys(sk, { rotations, relinearization: false }));
 * ```
 */
export class HostKeys implements GaloisKeySource {
  readonly params: Parameters;
  readonly #keys = new Map<number, HostKey>();

  constructor(params: Parameters) {
    this.params = params;
  }

  /** Makes every Galois key of `stream` one at a time, keeping each in host memory. */
  static fromStream(params: Parameters, stream: EvaluationKeyStream): HostKeys {
    params.checkSame(stream.params, 'key stream');
    const keys = new HostKeys(params);
    for (const g of stream.galoisElements) {
      const key = stream.make(g);
      keys.add(new GaloisKey(g, key));
      key.dispose();
    }
    return keys;
  }

  /** Copies `key` to host memory (the caller keeps and disposes the original). */
  add(key: GaloisKey): void {
    this.params.checkSame(key.key.params, 'Galois key');
    this.#keys.set(key.galoisElement, {
      level: key.key.level,
      seed: Uint8Array.from(key.key.seed),
      digits: key.key.digits.map((d) => ({ b: d.b.words().slice(), a: d.a.words().slice() })),
    });
  }

  get galoisElements(): number[] {
    return [...this.#keys.keys()];
  }

  get byteLength(): number {
    let total = 0;
    for (const key of this.#keys.values())
      for (const d of key.digits) total += d.b.byteLength + d.a.byteLength;
    return total;
  }

  acquire(elements: readonly number[]): GaloisKey[] {
    const missing = elements.filter((g) => !this.#keys.has(g));
    if (missing.length > 0) throw new MissingKeyError(`no Galois key for element(s) ${missing.join(', ')}`);
    return elements.map((g) => {
      const host = this.#keys.get(g) as HostKey;
      const moduli = this.params.moduliQPAtLevel(host.level);
      const digits = host.digits.map((d) => ({
        b: Poly.fromWords(moduli, true, d.b),
        a: Poly.fromWords(moduli, true, d.a),
      }));
      return new GaloisKey(g, new SwitchingKey(this.params, digits, host.seed));
    });
  }

  release(keys: readonly GaloisKey[]): void {
    for (const key of keys) key.key.dispose();
  }
}
