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

  /** Kernel-memory f64 table of 1/q_i (for the exact variant). */
  readonly #inverses: number;
  /** Q mod p_j with Shoup companions (for the exact variant). */
  readonly #productModTo: Float64Array;
  readonly #productModToShoup: Float64Array;

  constructor(from: readonly Modulus[], to: readonly Modulus[]) {
    this.from = from;
    this.to = to;
    const k = from.length;
    const context = from[0].context;
    for (const m of [...from, ...to]) context.check(m.context, 'BasisExtender');
    this.#inverses = context.allocator.alloc(2 * k);
    new Float64Array(context.memory.buffer, this.#inverses, k).set(from.map((m) => 1 / m.value));
    this.#productModTo = new Float64Array(to.length);
    this.#productModToShoup = new Float64Array(to.length);
    to.forEach((m, j) => {
      let product = 1;
      for (const q of from) product = mulMod(product, q.value % m.value, m.value);
      this.#productModTo[j] = product;
      this.#productModToShoup[j] = shoupConstant(product, m.value);
    });
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
    this.#extend(input, output, n, scratch, -1);
  }

  /**
   * Exact extension of the representative in [0, Q): subtracts the overflow u·Q, with u = floor(Σ_i t_i / q_i)
   * computed in float64 (Halevi–Polyakov–Shoup). `scratch` must hold (from.length + 1) · n words.
   */
  extendExact(input: (i: number) => number, output: (j: number) => number, n: number, scratch: number): void {
    this.#extend(input, output, n, scratch, scratch + this.from.length * n * 4);
  }

  #extend(
    input: (i: number) => number,
    output: (j: number) => number,
    n: number,
    scratch: number,
    overflow: number,
  ): void {
    const kx = this.from[0].context.exports;
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
    if (overflow >= 0) kx.overflowCount(overflow, scratch, n, k, this.#inverses);
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
      if (overflow >= 0) {
        kx.subMulScalarSmall(out, overflow, n, pj, this.#productModTo[j], this.#productModToShoup[j]);
      }
    }
  }
}
