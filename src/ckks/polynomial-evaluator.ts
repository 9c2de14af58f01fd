import { assertFinite, check } from '../util/assert.ts';
import { InvalidArgumentError, MismatchError } from '../util/errors.ts';
import type { Evaluator } from './evaluator.ts';
import type { Ciphertext } from './objects.ts';
import type { Parameters } from './parameters.ts';
import { chebyshevDivide, Polynomial } from './polynomial.ts';

/**
 * Options of {@link PolynomialEvaluator.evaluateNew}.
 *
 * @example
 * ```ts
 * polynomialEvaluator.evaluateNew(ct, p, { targetScale: params.scaleAtLevel[3] });
 * ```
 */
export interface PolynomialEvaluationOptions {
  /**
   * The exact scale of the result (default: the canonical scale `scaleAtLevel` of the output level). Every
   * intermediate scale is derived from it backwards, so no final adjustment is needed.
   */
  targetScale?: number;
}

/**
 * The shape of an evaluation, as planned before any ciphertext operation.
 *
 * @example
 * ```ts
 * PolynomialEvaluator.plan(63).levels; // 6
 * ```
 */
export interface PolynomialPlan {
  /** Levels consumed in total (degree part plus change of variable). */
  levels: number;
  /** Levels of the change of variable x ↦ (2x − a − b)/(b − a): 0 or 1. */
  changeOfVariableLevels: number;
  /** Baby steps T_1 … T_{babyBound} may appear in leaves; larger T_{2^j} are giant steps. */
  babyBound: number;
  /** Ciphertext-ciphertext multiplications (power basis plus giant-step products). */
  products: number;
}

/** Relative float discrepancy between a computed scale and its planned value that would reveal a bug. */
const SCALE_SANITY = 2 ** -40;

/**
 * Homomorphic evaluation of polynomials (Chebyshev basis; monomial polynomials are converted) by the
 * baby-step giant-step method of Bossuat et al. (Eurocrypt 2021), as in Lattigo, with:
 *
 * - **Power basis.** T_1 is the input after the change of variable; T_{2n} = 2T_n² − 1 and
 *   T_{m+n} = 2T_m·T_n − T_{m−n} give T_k at depth ⌈log2 k⌉. Only the T_k the plan uses are computed.
 * - **Recursive Chebyshev division.** p = q·T_{2^j} + r with 2^j the largest power of two ≤ deg p. A part is a
 *   leaf — Σ c_k·T_k as constant multiplications, no rescale — when its degree is at most the baby bound 2^l and
 *   its T_k are deep enough; otherwise it is split again. The split rule keeps every part within its level
 *   budget, so a degree-d polynomial consumes exactly ⌈log2(d + 1)⌉ levels (`levelsConsumed`); the baby bound
 *   is chosen to minimize ciphertext products.
 * - **Exact scale management.** Each part is asked for at a target (level, scale) and derives its children's
 *   targets from it: a leaf multiplies T_k by c_k encoded at scale target/scale(T_k) (a real number, via
 *   `Evaluator.mul(ct, c, out, constantScale)`), a split asks its quotient for target·Q_{ℓ+1}/scale(T_{2^j}).
 *   Every addition therefore sees equal scales by construction (the float metadata is set to the planned value;
 *   a discrepancy above 2^-40 would be a bug and throws), and the result lands exactly at `targetScale`.
 *   In T_{m+n} = 2T_m·T_n − T_{m−n}, T_{m−n} is brought to the product's scale by a multiplication by 1 encoded
 *   at the ratio of scales (≈ 2^30), before the single rescale.
 * - **Change of variable** t = αx + β with α = 2/(b − a), β = −(a + b)/(b − a): free when α is a positive integer
 *   (an exact integer multiplication plus a constant addition — this covers [-1, 1]) and for degree ≤ 1 (folded
 *   into the leaf constants). Otherwise it costs exactly one extra level: a non-integer α can only be applied by a
 *   constant multiplication and its rescale, and it cannot be deferred into the leaf constants because the powers
 *   x^k of an unnormalized input grow like (1/α)^k and overflow the modulus (or underflow the scale for α > 1).
 *   To avoid that level, fold α into the step that produced the input (or encrypt t itself) and use [-1, 1].
 *
 * The input should carry the canonical scale of its level, as fresh and rescaled ciphertexts do: with a free
 * change of variable its scale becomes T_1's, and a deviation from canonical compounds through the squarings.
 * Needs the relinearization key and no rotation key.
 *
 * @example
 * ```ts
 * const sigmoid = Polynomial.chebyshevInterpolant((x) => 1 / (1 + Math.exp(-8 * x)), 63, [-1, 1]);
 * const polyEval = new PolynomialEvaluator(evaluator);
 * const out = polyEval.evaluateNew(ct, sigmoid); // level ct.level − 6, scale params.scaleAtLevel[ct.level − 6]
 * ```
 */
export class PolynomialEvaluator {
  readonly evaluator: Evaluator;
  readonly params: Parameters;

  constructor(evaluator: Evaluator) {
    this.evaluator = evaluator;
    this.params = evaluator.params;
  }

  /**
   * Levels a polynomial consumes: ⌈log2(degree + 1)⌉ for a degree (0 for constants), plus the cost of the
   * change of variable (0 or 1, see the class documentation) for a {@link Polynomial}.
   *
   * @example
   * ```ts
   * PolynomialEvaluator.levelsConsumed(63); // 6
   * PolynomialEvaluator.levelsConsumed(Polynomial.chebyshev(coefficients, [-8, 8])); // 7 for degree 63
   * ```
   */
  static levelsConsumed(polynomialOrDegree: Polynomial | number): number {
    if (polynomialOrDegree instanceof Polynomial) {
      const p = polynomialOrDegree.toChebyshev();
      return degreeLevels(p.degree) + changeOfVariableLevels(p);
    }
    checkDegree(polynomialOrDegree);
    return degreeLevels(polynomialOrDegree);
  }

  /** Instance alias of {@link PolynomialEvaluator.levelsConsumed}. */
  levelsConsumed(polynomialOrDegree: Polynomial | number): number {
    return PolynomialEvaluator.levelsConsumed(polynomialOrDegree);
  }

  /**
   * Rotation steps polynomial evaluation needs: none (only the relinearization key).
   *
   * @example
   * ```ts
   * keygen.generateEvaluationKeys(sk, { rotations: PolynomialEvaluator.rotationsNeeded() });
   * ```
   */
  static rotationsNeeded(): number[] {
    return [];
  }

  /**
   * The evaluation plan of a polynomial (or a degree on [-1, 1]): levels, baby bound and product count.
   *
   * @example
   * ```ts
   * PolynomialEvaluator.plan(63); // { levels: 6, changeOfVariableLevels: 0, babyBound: 8, products: … }
   * ```
   */
  static plan(polynomialOrDegree: Polynomial | number): PolynomialPlan {
    let degree: number;
    let affine = 0;
    if (polynomialOrDegree instanceof Polynomial) {
      const p = polynomialOrDegree.toChebyshev();
      degree = p.degree;
      affine = changeOfVariableLevels(p);
    } else {
      checkDegree(polynomialOrDegree);
      degree = polynomialOrDegree;
    }
    const best = bestBabyBound(degree);
    return {
      levels: degreeLevels(degree) + affine,
      changeOfVariableLevels: affine,
      babyBound: best.babyBound,
      products: best.products,
    };
  }

  /**
   * Evaluates `polynomial` on every slot of `ct` (inputs in the polynomial's interval). The result is at level
   * `ct.level − levelsConsumed(polynomial)` with exactly `targetScale` (default: that level's canonical scale).
   * `ct` is not modified. Throws InvalidArgumentError when the ciphertext has too few levels.
   *
   * @example
   * ```ts
   * const exp = Polynomial.chebyshevInterpolant(Math.exp, 15, [-1, 1]);
   * const out = new PolynomialEvaluator(evaluator).evaluateNew(ct, exp, { targetScale: 2 ** 30 });
   * ```
   */
  evaluateNew(ct: Ciphertext, polynomial: Polynomial, options: PolynomialEvaluationOptions = {}): Ciphertext {
    if (!(polynomial instanceof Polynomial)) {
      throw new InvalidArgumentError(`polynomial = ${String(polynomial)}: expected a Polynomial`);
    }
    if (ct.params !== this.params) {
      throw new MismatchError(
        `evaluatePolynomial: ciphertext parameters ${ct.parametersId} differ from the evaluator's ${this.params.id}`,
      );
    }
    if (ct.degree !== 1) {
      throw new MismatchError(
        `evaluatePolynomial: ciphertext of degree ${ct.degree}: expected degree 1 (relinearize first)`,
      );
    }
    if (options.targetScale !== undefined) {
      assertFinite(options.targetScale, 'targetScale');
      check(
        options.targetScale > 0,
        () => `targetScale = ${options.targetScale}: expected a positive number`,
      );
    }
    const cheb = polynomial.toChebyshev();
    const degree = cheb.degree;
    const affine = degree >= 1 ? changeOfVariableLevels(cheb) : 0;
    const levels = degreeLevels(degree) + affine;
    if (ct.level < levels) {
      const [a, b] = cheb.interval;
      throw new InvalidArgumentError(
        `evaluatePolynomial: a degree-${degree} polynomial on [${a}, ${b}] needs ${levels} levels ` +
          `(${degreeLevels(degree)} for the degree + ${affine} for the change of variable) but the ciphertext ` +
          `is at level ${ct.level}, so only ${ct.level} are available`,
      );
    }
    const outLevel = ct.level - levels;
    const targetScale = options.targetScale ?? this.params.scaleAtLevel[outLevel];
    const run = new Run(this.evaluator, cheb.coefficients);
    try {
      return run.evaluate(ct, cheb, outLevel, targetScale);
    } finally {
      run.dispose();
    }
  }
}

function checkDegree(degree: unknown): asserts degree is number {
  if (typeof degree !== 'number' || !Number.isInteger(degree) || degree < 0) {
    throw new InvalidArgumentError(`degree = ${String(degree)}: expected a non-negative integer`);
  }
}

/** ⌈log2(degree + 1)⌉ */
function degreeLevels(degree: number): number {
  let levels = 0;
  while (2 ** levels < degree + 1) levels++;
  return levels;
}

/** ⌈log2 k⌉: the depth of T_k in the power basis. */
function depthOf(k: number): number {
  return degreeLevels(k - 1);
}

function largestPowerOfTwoAtMost(k: number): number {
  let n = 1;
  while (n * 2 <= k) n *= 2;
  return n;
}

/** 0 when the change of variable is free (α a positive integer, or degree ≤ 1), else 1. */
function changeOfVariableLevels(p: Polynomial): number {
  if (p.degree <= 1) return 0;
  const { scale } = p.changeOfVariable();
  return Number.isInteger(scale) && scale >= 1 ? 0 : 1;
}

/**
 * Simulates the recursion of {@link Run.part} on degrees alone (every coefficient non-zero) for baby bound
 * 2^l, and counts ciphertext products: the power-basis elements it uses (with their dependencies) plus one per
 * split with a non-constant quotient.
 */
function planProducts(degree: number, babyBound: number): number {
  const used = new Set<number>();
  let splits = 0;
  const visit = (d: number, budget: number): void => {
    if (d === 0) return;
    if (d <= babyBound && depthOf(d) <= budget) {
      for (let k = 1; k <= d; k++) used.add(k);
      return;
    }
    const n = largestPowerOfTwoAtMost(d);
    used.add(n);
    if (d > n) {
      splits++;
      visit(d - n, budget - 1);
    }
    visit(n - 1, budget);
  };
  visit(degree, degreeLevels(degree) - 1);
  const closure = new Set<number>();
  const add = (k: number): void => {
    if (k <= 1 || closure.has(k)) return;
    closure.add(k);
    const j = largestPowerOfTwoAtMost(k);
    if (j === k) add(k / 2);
    else {
      add(j);
      add(k - j);
      add(2 * j - k);
    }
  };
  for (const k of used) add(k);
  return closure.size + splits;
}

function bestBabyBound(degree: number): { babyBound: number; products: number } {
  let best = { babyBound: 1, products: planProducts(degree, 1) };
  for (let l = 1; 2 ** l <= Math.max(degree, 1); l++) {
    const products = planProducts(degree, 2 ** l);
    if (products < best.products) best = { babyBound: 2 ** l, products };
  }
  return best;
}

/** One evaluation: the power basis it builds (disposed at the end) and the recursive parts. */
class Run {
  readonly #ev: Evaluator;
  readonly #params: Parameters;
  /** T_k by k; T_1 may be the caller's ciphertext, which is never disposed. */
  readonly #powers = new Map<number, Ciphertext>();
  #input: Ciphertext | undefined;
  /** Coefficients at or below this magnitude contribute less than float64 rounding of p and are skipped. */
  readonly #negligible: number;
  #babyBound = 1;

  constructor(evaluator: Evaluator, topCoefficients: Float64Array) {
    this.#ev = evaluator;
    this.#params = evaluator.params;
    let norm = 0;
    for (const c of topCoefficients) norm += Math.abs(c);
    this.#negligible = norm * 2 ** -53;
  }

  dispose(): void {
    for (const t of this.#powers.values()) if (t !== this.#input) t.dispose();
    this.#powers.clear();
  }

  evaluate(x: Ciphertext, p: Polynomial, outLevel: number, targetScale: number): Ciphertext {
    const ev = this.#ev;
    const c = p.coefficients;
    const degree = p.degree;
    const { scale: alpha, offset: beta } = p.changeOfVariable();
    if (degree === 0) return this.#constantCiphertext(x, outLevel, targetScale, c[0]);
    const modulus = this.#levelModulus(outLevel + 1);
    if (degree === 1) {
      // c_0 + c_1·(αx + β): the change of variable folds into the one constant multiplication.
      const out = ev.dropLevelNew(x, outLevel + 1);
      ev.mul(out, c[1] * alpha, out, (targetScale * modulus) / x.scale);
      this.#settle(out, targetScale * modulus);
      ev.add(out, c[0] + c[1] * beta, out);
      ev.rescale(out, out);
      this.#settle(out, targetScale);
      return out;
    }
    this.#babyBound = bestBabyBound(degree).babyBound;
    this.#powers.set(1, this.#firstPower(x, alpha, beta));
    const top = this.#part(this.#trim(c), outLevel + 1, targetScale * modulus);
    if (typeof top === 'number') return this.#constantCiphertext(x, outLevel, targetScale, top);
    ev.rescale(top, top);
    this.#settle(top, targetScale);
    return top;
  }

  /** T_1 = αx + β: free for a positive integer α, else one constant multiplication and rescale. */
  #firstPower(x: Ciphertext, alpha: number, beta: number): Ciphertext {
    const ev = this.#ev;
    if (alpha === 1 && beta === 0) {
      this.#input = x;
      return x;
    }
    if (Number.isInteger(alpha) && alpha >= 1) {
      const t = alpha === 1 ? ev.addNew(x, beta) : ev.mulIntNew(x, alpha);
      if (alpha !== 1 && beta !== 0) ev.add(t, beta, t);
      return t;
    }
    const level = x.level;
    const scale = this.#params.scaleAtLevel[level - 1];
    const unrescaled = scale * this.#levelModulus(level);
    const t = ev.mulNew(x, alpha, unrescaled / x.scale);
    this.#settle(t, unrescaled);
    if (beta !== 0) ev.add(t, beta, t);
    ev.rescale(t, t);
    this.#settle(t, scale);
    return t;
  }

  /**
   * p (Chebyshev coefficients in t) at `level` with scale exactly `scale`, before its rescale; a plain number when
   * p is constant.
   */
  #part(c: Float64Array, level: number, scale: number): Ciphertext | number {
    const degree = c.length - 1;
    if (degree === 0) return c[0];
    const top = this.#levelOfPower(1);
    if (degree <= this.#babyBound && top - depthOf(degree) >= level) return this.#leaf(c, level, scale);
    const n = largestPowerOfTwoAtMost(degree);
    const { quotient, remainder } = chebyshevDivide(c, n);
    const q = this.#trim(quotient);
    const giant = this.#power(n);
    if (giant.level < level)
      throw new Error(`internal: T_${n} at level ${giant.level} below part level ${level}`);
    let result: Ciphertext | undefined;
    if (q.length === 1) {
      if (Math.abs(q[0]) > this.#negligible) result = this.#scaledTerm(giant, q[0], level, scale);
    } else {
      const quotientScale = (scale * this.#levelModulus(level + 1)) / giant.scale;
      const qct = this.#part(q, level + 1, quotientScale);
      if (typeof qct === 'number')
        throw new Error('internal: a non-constant quotient evaluated to a constant');
      this.#ev.rescale(qct, qct);
      this.#ev.mulRelin(qct, giant, qct);
      this.#settle(qct, scale);
      result = qct;
    }
    return this.#combine(result, this.#part(this.#trim(remainder), level, scale));
  }

  /** Σ c_k·T_k at (level, scale): one constant multiplication per non-negligible term, no rescale. */
  #leaf(c: Float64Array, level: number, scale: number): Ciphertext | number {
    let acc: Ciphertext | undefined;
    for (let k = c.length - 1; k >= 1; k--) {
      if (Math.abs(c[k]) <= this.#negligible) continue;
      const term = this.#scaledTerm(this.#power(k), c[k], level, scale);
      acc = this.#combine(acc, term) as Ciphertext;
    }
    return this.#combine(acc, c[0]);
  }

  #combine(a: Ciphertext | number | undefined, b: Ciphertext | number): Ciphertext | number {
    if (a === undefined) return b;
    if (typeof a === 'number' && typeof b === 'number') return a + b;
    if (typeof a === 'number') return this.#combine(b, a);
    if (typeof b === 'number') {
      if (b !== 0) this.#ev.add(a, b, a);
      return a;
    }
    if (a.level !== b.level || a.scale !== b.scale) {
      throw new Error(`internal: adding (${a.level}, ${a.scale}) and (${b.level}, ${b.scale})`);
    }
    this.#ev.add(a, b, a);
    b.dispose();
    return a;
  }

  /** c·T dropped to `level`, with c encoded at scale/scale(T) so that the product has exactly `scale`. */
  #scaledTerm(t: Ciphertext, c: number, level: number, scale: number): Ciphertext {
    const ev = this.#ev;
    const out = t.level > level ? ev.dropLevelNew(t, level) : t.copy();
    ev.mul(out, c, out, scale / t.scale);
    this.#settle(out, scale);
    return out;
  }

  /** T_k, computed on first use from the doubling and product rules, rescaled. */
  #power(k: number): Ciphertext {
    const cached = this.#powers.get(k);
    if (cached) return cached;
    const ev = this.#ev;
    const j = largestPowerOfTwoAtMost(k);
    let product: Ciphertext;
    if (j === k) {
      // T_{2h} = 2·T_h² − 1
      const half = this.#power(k / 2);
      product = ev.mulRelinNew(half, half);
      ev.mulInt(product, 2, product);
      ev.sub(product, 1, product);
    } else {
      // T_k = 2·T_j·T_{k−j} − T_{2j−k}
      const a = this.#power(j);
      const b = this.#power(k - j);
      const c = this.#power(2 * j - k);
      product = ev.mulRelinNew(a, b);
      ev.mulInt(product, 2, product);
      const aligned = this.#scaledTerm(c, 1, product.level, product.scale);
      ev.sub(product, aligned, product);
      aligned.dispose();
    }
    ev.rescale(product, product);
    const expected = this.#levelOfPower(1) - depthOf(k);
    if (product.level !== expected)
      throw new Error(`internal: T_${k} at level ${product.level}, not ${expected}`);
    this.#powers.set(k, product);
    return product;
  }

  #levelOfPower(k: number): number {
    const t = this.#powers.get(k);
    if (!t) throw new Error(`internal: T_${k} not computed`);
    return t.level;
  }

  /** The product of the primes a rescale from `level` divides by. */
  #levelModulus(level: number): number {
    let q = 1;
    const from = this.#params.limbsAtLevel(level - 1);
    const to = this.#params.limbsAtLevel(level);
    for (let i = from; i < to; i++) q *= this.#params.qPrimes[i];
    return q;
  }

  /** Sets the scale metadata to its planned value after checking that float arithmetic only rounded it. */
  #settle(ct: Ciphertext, scale: number): void {
    if (Math.abs(ct.scale - scale) > SCALE_SANITY * scale) {
      throw new Error(`internal: scale ${ct.scale} differs from the planned ${scale}`);
    }
    ct.scale = scale;
  }

  /** Coefficients up to the last non-negligible one (at least one entry). */
  #trim(c: Float64Array): Float64Array {
    let length = c.length;
    while (length > 1 && Math.abs(c[length - 1]) <= this.#negligible) length--;
    return c.subarray(0, length);
  }

  /** A ciphertext of the constant `value` (its noise is the input's times 0, i.e. none). */
  #constantCiphertext(x: Ciphertext, level: number, scale: number, value: number): Ciphertext {
    const out = this.#ev.dropLevelNew(x, level);
    this.#ev.sub(out, out, out);
    out.scale = scale;
    if (value !== 0) this.#ev.add(out, value, out);
    return out;
  }
}
