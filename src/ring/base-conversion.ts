import { invMod, mulMod, shoupConstant } from './modarith.ts';
import type { Modulus } from './modulus.ts';
import type { TaskKernels } from './threads.ts';

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
    this.#extend(input, output, n, scratch, false);
  }

  /**
   * Exact extension of the representative in [0, Q): subtracts the overflow u·Q, with u = floor(Σ_i t_i / q_i)
   * computed in float64 (Halevi–Polyakov–Shoup). `scratch` must hold (from.length + 1) · n words.
   */
  extendExact(input: (i: number) => number, output: (j: number) => number, n: number, scratch: number): void {
    this.#extend(input, output, n, scratch, true);
  }

  /**
   * First step of an extension, one input limb: t_i = [x_i · (Q/q_i)^-1]_{q_i} into scratch limb i. The limbs are
   * independent (one task each).
   */
  scaleLimb(kernels: TaskKernels, i: number, input: number, n: number, scratch: number): void {
    kernels.mulScalar(
      scratch + i * n * 4,
      input,
      n,
      this.from[i].value,
      this.#hatInverse[i],
      this.#hatInverseShoup[i],
    );
  }

  /**
   * Second step of an exact extension, for coefficients [from, to) of every scaled limb: the overflow counts u
   * (stored after the scaled limbs in scratch). Coefficient ranges are independent.
   */
  countOverflow(kernels: TaskKernels, n: number, scratch: number, from: number, to: number): void {
    const k = this.from.length;
    kernels.overflowCount(scratch + (k * n + from) * 4, scratch + from * 4, to - from, k, this.#inverses, n);
  }

  /**
   * Last step, one output limb j: Σ_i t_i · (Q/q_i) mod p_j, minus u · Q when `exact` (after
   * {@link countOverflow}). Output limbs are independent.
   */
  extendLimb(kernels: TaskKernels, j: number, out: number, n: number, scratch: number, exact: boolean): void {
    const k = this.from.length;
    const pj = this.to[j].value;
    kernels.fill(out, n, 0);
    for (let i = 0; i < k; i++) {
      kernels.mulScalarAdd(
        out,
        scratch + i * n * 4,
        n,
        pj,
        this.#hatModTo[j * k + i],
        this.#hatModToShoup[j * k + i],
      );
    }
    if (exact) {
      kernels.subMulScalarSmall(
        out,
        scratch + k * n * 4,
        n,
        pj,
        this.#productModTo[j],
        this.#productModToShoup[j],
      );
    }
  }

  #extend(
    input: (i: number) => number,
    output: (j: number) => number,
    n: number,
    scratch: number,
    exact: boolean,
  ): void {
    const context = this.from[0].context;
    const k = this.from.length;
    let batch = context.batch(n * k);
    for (let i = 0; i < k; i++) this.scaleLimb(batch.task(), i, input(i), n, scratch);
    batch.run();
    if (exact) {
      batch = context.batch(n * k);
      for (const [from, to] of coefficientRanges(n)) this.countOverflow(batch.task(), n, scratch, from, to);
      batch.run();
    }
    batch = context.batch(n * k * this.to.length);
    for (let j = 0; j < this.to.length; j++) this.extendLimb(batch.task(), j, output(j), n, scratch, exact);
    batch.run();
  }
}

/**
 * [from, to) ranges splitting n coefficients for tasks that work on all limbs at once (multiples of 8 words, the
 * kernels' SIMD width; 16 of them where n allows).
 *
 * @example
 * ```ts
 * coefficientRanges(8192); // [[0, 512], [512, 1024], …]
 * ```
 */
export function coefficientRanges(n: number): [number, number][] {
  const parts = Math.max(1, Math.min(16, n / 512));
  const size = Math.ceil(n / parts / 8) * 8;
  const ranges: [number, number][] = [];
  for (let from = 0; from < n; from += size) ranges.push([from, Math.min(n, from + size)]);
  return ranges;
}
