import { kernels } from './kernels.ts';
import { invMod, mulMod, shoupConstant } from './modarith.ts';
import type { Modulus } from './modulus.ts';

/**
 * Fast (approximate) basis extension from basis {q_i} to basis {p_j}, coefficient domain:
 * y_j = Σ_i [x_i · (Q/q_i)^-1]_{q_i} · (Q/q_i) mod p_j. The result equals x + u·Q for some 0 ≤ u < #{q_i},
 * which hybrid key switching (ModUp / ModDown) tolerates by construction.
 *
 * @example
 * ```ts
 * const ext = new BasisExtender(digitModuli, otherModuli);
 * ext.extend((i) => inPtr(i), (j) => outPtr(j), n, scratchPtr);
 * ```
 */
export class BasisExtender {
  readonly from: readonly Modulus[];
  readonly to: readonly Modulus[];
  /** [(Q/q_i)^-1]_{q_i} with Shoup companions. */
  readonly #hatInverse: Float64Array;
  readonly #hatInverseShoup: Float64Array;
  /** (Q/q_i) mod p_j at [j * from.length + i], with Shoup companions. */
  readonly #hatModTo: Float64Array;
  readonly #hatModToShoup: Float64Array;

  constructor(from: readonly Modulus[], to: readonly Modulus[]) {
    this.from = from;
    this.to = to;
    const k = from.length;
    this.#hatInverse = new Float64Array(k);
    this.#hatInverseShoup = new Float64Array(k);
    for (let i = 0; i < k; i++) {
      const qi = from[i].value;
      let hat = 1;
      for (let l = 0; l < k; l++) if (l !== i) hat = mulMod(hat, from[l].value % qi, qi);
      this.#hatInverse[i] = invMod(hat, qi);
      this.#hatInverseShoup[i] = shoupConstant(this.#hatInverse[i], qi);
    }
    this.#hatModTo = new Float64Array(k * to.length);
    this.#hatModToShoup = new Float64Array(k * to.length);
    for (let j = 0; j < to.length; j++) {
      const pj = to[j].value;
      for (let i = 0; i < k; i++) {
        let hat = 1;
        for (let l = 0; l < k; l++) if (l !== i) hat = mulMod(hat, from[l].value % pj, pj);
        this.#hatModTo[j * k + i] = hat;
        this.#hatModToShoup[j * k + i] = shoupConstant(hat, pj);
      }
    }
  }

  /**
   * Extends: reads limb i of the input at `input(i)` (coefficients, mod from[i]) and writes limb j of the output
   * at `output(j)` (coefficients, mod to[j]). `scratch` must hold from.length · n words.
   */
  extend(input: (i: number) => number, output: (j: number) => number, n: number, scratch: number): void {
    const kx = kernels().exports;
    const k = this.from.length;
    for (let i = 0; i < k; i++) {
      kx.mulScalar(
        scratch + i * n * 4,
        input(i),
        n,
        this.from[i].value,
        this.#hatInverse[i],
        this.#hatInverseShoup[i],
      );
    }
    for (let j = 0; j < this.to.length; j++) {
      const out = output(j);
      const pj = this.to[j].value;
      kx.fill(out, n, 0);
      for (let i = 0; i < k; i++) {
        kx.mulScalarAdd(
          out,
          scratch + i * n * 4,
          n,
          pj,
          this.#hatModTo[j * k + i],
          this.#hatModToShoup[j * k + i],
        );
      }
    }
  }
}
