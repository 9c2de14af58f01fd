import type { Poly } from '../ring/poly.ts';
import type { Parameters } from './parameters.ts';

/**
 * An encoded message: one RNS polynomial (NTT domain) at a level, with its scale.
 *
 * @example
 * ```ts
 * const pt = encoder.encodeNew([0.5, -0.25], params.depth);
 * pt.level; pt.scale;
 * ```
 */
export class Plaintext {
  readonly params: Parameters;
  level: number;
  scale: number;
  readonly poly: Poly;

  constructor(params: Parameters, poly: Poly, level: number, scale: number) {
    this.params = params;
    this.poly = poly;
    this.level = level;
    this.scale = scale;
  }

  get parametersId(): string {
    return this.params.id;
  }

  /** Returns the limbs to the allocator now. */
  dispose(): void {
    this.poly.dispose();
  }
}

/**
 * A CKKS ciphertext: polynomials c_0 … c_d (NTT domain) with Σ c_i s^i ≈ Δ·m. Degree 1 normally, 2 after a
 * multiplication that was not relinearized.
 *
 * @example
 * ```ts
 * const ct = encryptor.encryptNew(pt);
 * ct.degree; // 1
 * ```
 */
export class Ciphertext {
  readonly params: Parameters;
  level: number;
  scale: number;
  readonly polys: Poly[];

  constructor(params: Parameters, polys: Poly[], level: number, scale: number) {
    this.params = params;
    this.polys = polys;
    this.level = level;
    this.scale = scale;
  }

  get parametersId(): string {
    return this.params.id;
  }

  get degree(): number {
    return this.polys.length - 1;
  }

  /** Bytes held by the limbs. */
  get byteLength(): number {
    return this.polys.reduce((sum, p) => sum + p.byteLength, 0);
  }

  /** A deep copy. */
  copy(): Ciphertext {
    return new Ciphertext(
      this.params,
      this.polys.map((p) => p.copy()),
      this.level,
      this.scale,
    );
  }

  /** Returns the limbs to the allocator now. */
  dispose(): void {
    for (const p of this.polys) p.dispose();
  }
}
