import { assertFinite, assertInteger, check, describe } from '../util/assert.ts';
import { InvalidArgumentError } from '../util/errors.ts';

/**
 * The basis a {@link Polynomial}'s coefficients refer to.
 *
 * @example
 * ```ts
 * const basis: PolynomialBasis = polynomial.basis;
 * ```
 */
export type PolynomialBasis = 'chebyshev' | 'monomial';

/**
 * A closed interval [a, b] with a < b.
 *
 * @example
 * ```ts
 * const interval: Interval = [-8, 8];
 * ```
 */
export type Interval = readonly [number, number];

const UNIT_INTERVAL: Interval = Object.freeze([-1, 1]) as Interval;

/**
 * A real polynomial, either in the Chebyshev basis on an interval [a, b] — p(x) = Σ c_k·T_k(t) with
 * t = (2x − a − b)/(b − a), the basis homomorphic evaluation uses because |T_k(t)| ≤ 1 keeps every intermediate
 * value bounded — or in the monomial basis, p(x) = Σ c_k·x^k. For a monomial polynomial, `interval` is the
 * domain its inputs are promised to lie in; {@link Polynomial.toChebyshev} uses it.
 *
 * Coefficients are copied and trailing exact zeros dropped, so `degree` is the true degree (0 for a constant
 * or the zero polynomial). Instances are immutable. `evaluate` is the plain float64 reference (Clenshaw or
 * Horner) that homomorphic results are checked against.
 *
 * @example
 * ```ts
 * const sigmoid = Polynomial.chebyshevInterpolant((x) => 1 / (1 + Math.exp(-x)), 63, [-8, 8]);
 * sigmoid.degree; // 63
 * sigmoid.evaluate(0); // ≈ 0.5
 * const square = Polynomial.monomial([0, 0, 1]); // x², inputs in [-1, 1]
 * ```
 */
export class Polynomial {
  readonly basis: PolynomialBasis;
  /** c_0 … c_degree, trailing zeros removed (at least one entry). */
  readonly coefficients: Float64Array;
  /** [a, b]: the Chebyshev interval, or the input domain of a monomial polynomial. */
  readonly interval: Interval;

  /**
   * Validates and copies the coefficients (finite numbers) and the interval (finite, a < b; default [-1, 1]).
   *
   * @example
   * ```ts
   * const p = new Polynomial([0.5, 0.25], { basis: 'chebyshev', interval: [-8, 8] });
   * ```
   */
  constructor(
    coefficients: ArrayLike<number>,
    options: { basis?: PolynomialBasis; interval?: Interval } = {},
  ) {
    const basis = options.basis ?? 'chebyshev';
    check(
      basis === 'chebyshev' || basis === 'monomial',
      () => `basis = ${describe(basis)}: expected "chebyshev" or "monomial"`,
    );
    if (
      typeof coefficients !== 'object' ||
      coefficients === null ||
      typeof coefficients.length !== 'number'
    ) {
      throw new InvalidArgumentError(
        `coefficients = ${describe(coefficients)}: expected an array of numbers`,
      );
    }
    check(coefficients.length >= 1, () => 'coefficients: expected at least one coefficient');
    for (let k = 0; k < coefficients.length; k++) assertFinite(coefficients[k], `coefficients[${k}]`);
    const interval = options.interval ?? UNIT_INTERVAL;
    checkInterval(interval);
    let length = coefficients.length;
    while (length > 1 && coefficients[length - 1] === 0) length--;
    this.basis = basis;
    this.coefficients = Float64Array.from({ length }, (_, k) => coefficients[k]);
    this.interval = Object.freeze([interval[0], interval[1]]) as Interval;
    Object.freeze(this);
  }

  /**
   * A polynomial in the Chebyshev basis on `interval`.
   *
   * @example
   * ```ts
   * const t3 = Polynomial.chebyshev([0, 0, 0, 1]); // T_3 on [-1, 1]
   * ```
   */
  static chebyshev(coefficients: ArrayLike<number>, interval: Interval = UNIT_INTERVAL): Polynomial {
    return new Polynomial(coefficients, { basis: 'chebyshev', interval });
  }

  /**
   * A polynomial in the monomial basis; `interval` is the input domain (used by {@link Polynomial.toChebyshev}).
   *
   * @example
   * ```ts
   * const cube = Polynomial.monomial([0, 0, 0, 1]);
   * ```
   */
  static monomial(coefficients: ArrayLike<number>, interval: Interval = UNIT_INTERVAL): Polynomial {
    return new Polynomial(coefficients, { basis: 'monomial', interval });
  }

  /**
   * Interpolates `f` at the `degree + 1` Chebyshev nodes of [a, b] (first kind): within a factor of about
   * 2 + (2/π)·ln(degree + 1) of the best uniform approximation of that degree.
   *
   * @example
   * ```ts
   * const exp = Polynomial.chebyshevInterpolant(Math.exp, 31, [-1, 1]);
   * ```
   */
  static chebyshevInterpolant(f: (x: number) => number, degree: number, interval: Interval): Polynomial {
    check(typeof f === 'function', () => `f = ${describe(f)}: expected a function`);
    assertInteger(degree, 'degree', 0, 1 << 16);
    checkInterval(interval);
    const [a, b] = interval;
    const n = degree + 1;
    const values = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      const t = Math.cos((Math.PI * (j + 0.5)) / n);
      const x = 0.5 * (b - a) * t + 0.5 * (a + b);
      const y = f(x);
      if (typeof y !== 'number' || !Number.isFinite(y)) {
        throw new InvalidArgumentError(`f(${x}) = ${describe(y)}: expected a finite number on [${a}, ${b}]`);
      }
      values[j] = y;
    }
    const coefficients = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      let sum = 0;
      for (let j = 0; j < n; j++) sum += values[j] * Math.cos((Math.PI * k * (j + 0.5)) / n);
      coefficients[k] = ((k === 0 ? 1 : 2) * sum) / n;
    }
    return Polynomial.chebyshev(coefficients, interval);
  }

  /** The degree: index of the last non-zero coefficient (0 for constants). */
  get degree(): number {
    return this.coefficients.length - 1;
  }

  /**
   * The affine map x ↦ t = scale·x + offset that takes the interval onto [-1, 1]:
   * scale = 2/(b − a), offset = −(a + b)/(b − a).
   *
   * @example
   * ```ts
   * Polynomial.chebyshev([0, 1], [0, 4]).changeOfVariable(); // { scale: 0.5, offset: -1 }
   * ```
   */
  changeOfVariable(): { scale: number; offset: number } {
    const [a, b] = this.interval;
    return { scale: 2 / (b - a), offset: -(a + b) / (b - a) };
  }

  /**
   * p(x) in float64: Clenshaw's recurrence (Chebyshev) or Horner's rule (monomial). Defined for every real x;
   * outside the interval a Chebyshev series is still the same polynomial, only less well conditioned.
   *
   * @example
   * ```ts
   * Polynomial.chebyshev([1, 2, 3]).evaluate(0.5); // 1 + 2·0.5 + 3·(2·0.25 − 1) = 0.5
   * ```
   */
  evaluate(x: number): number {
    const c = this.coefficients;
    if (this.basis === 'monomial') {
      let acc = 0;
      for (let k = c.length - 1; k >= 0; k--) acc = acc * x + c[k];
      return acc;
    }
    const { scale, offset } = this.changeOfVariable();
    return clenshaw(c, scale * x + offset);
  }

  /**
   * The same polynomial in the Chebyshev basis on `interval` (default: this polynomial's interval). Exact up to
   * float rounding; converting between intervals re-expands by Horner's rule in the Chebyshev basis.
   *
   * @example
   * ```ts
   * Polynomial.monomial([0, 0, 1]).toChebyshev().coefficients; // [0.5, 0, 0.5]: x² = (T_0 + T_2)/2
   * ```
   */
  toChebyshev(interval: Interval = this.interval): Polynomial {
    checkInterval(interval);
    if (this.basis === 'chebyshev' && interval[0] === this.interval[0] && interval[1] === this.interval[1]) {
      return this;
    }
    // Horner in the target basis: acc ← acc·x + c_k, with x written as μ·t + ν in the target variable t.
    const [a, b] = interval;
    const mu = (b - a) / 2;
    const nu = (a + b) / 2;
    const monomial = this.basis === 'monomial' ? this.coefficients : this.toMonomial().coefficients;
    let acc = new Float64Array(1);
    for (let k = monomial.length - 1; k >= 0; k--) {
      const next = new Float64Array(acc.length + 1);
      for (let j = 0; j < acc.length; j++) {
        const v = acc[j];
        if (v === 0) continue;
        next[j] += nu * v;
        // t·T_0 = T_1, t·T_j = (T_{j+1} + T_{j−1})/2.
        if (j === 0) next[1] += mu * v;
        else {
          next[j + 1] += 0.5 * mu * v;
          next[j - 1] += 0.5 * mu * v;
        }
      }
      next[0] += monomial[k];
      acc = next;
    }
    return Polynomial.chebyshev(acc, interval);
  }

  /**
   * The same polynomial in the monomial basis of x (interval kept as the input domain). Converting a Chebyshev
   * series is ill-conditioned for high degrees or wide intervals (coefficients grow like 2^degree): meant for
   * low degrees, inspection and tests.
   *
   * @example
   * ```ts
   * Polynomial.chebyshev([0, 0, 1]).toMonomial().coefficients; // [-1, 0, 2]: T_2 = 2x² − 1
   * ```
   */
  toMonomial(): Polynomial {
    if (this.basis === 'monomial') return this;
    const c = this.coefficients;
    const { scale, offset } = this.changeOfVariable();
    const out = new Float64Array(c.length);
    // T_0 = 1, T_1 = u, T_{k+1} = 2u·T_k − T_{k−1}, with u = scale·x + offset, as monomial coefficient arrays.
    let previous = Float64Array.of(1);
    let current = Float64Array.of(offset, scale);
    out[0] += c[0];
    if (c.length > 1) for (let j = 0; j < 2; j++) out[j] += c[1] * current[j];
    for (let k = 2; k < c.length; k++) {
      const next = new Float64Array(k + 1);
      for (let j = 0; j < current.length; j++) {
        next[j] += 2 * offset * current[j];
        next[j + 1] += 2 * scale * current[j];
      }
      for (let j = 0; j < previous.length; j++) next[j] -= previous[j];
      for (let j = 0; j <= k; j++) out[j] += c[k] * next[j];
      previous = current;
      current = next;
    }
    return Polynomial.monomial(out, this.interval);
  }

  /**
   * Division by the n-th basis element: p = quotient·T_n + remainder (Chebyshev, in the variable t) or
   * p = quotient·x^n + remainder (monomial), with deg remainder < n. Both results keep this basis and interval.
   * This is the split of baby-step giant-step evaluation.
   *
   * @example
   * ```ts
   * const { quotient, remainder } = Polynomial.chebyshev([1, 2, 3, 4]).divide(2);
   * // quotient·T_2 + remainder has coefficients [1, 2, 3, 4]
   * ```
   */
  divide(n: number): { quotient: Polynomial; remainder: Polynomial } {
    assertInteger(n, 'n', 1);
    const options = { basis: this.basis, interval: this.interval };
    if (this.basis === 'monomial') {
      const c = this.coefficients;
      return {
        quotient: new Polynomial(c.length > n ? c.subarray(n) : [0], options),
        remainder: new Polynomial(c.subarray(0, Math.min(n, c.length)), options),
      };
    }
    const { quotient, remainder } = chebyshevDivide(this.coefficients, n);
    return { quotient: new Polynomial(quotient, options), remainder: new Polynomial(remainder, options) };
  }

  toString(): string {
    return (
      `Polynomial(${this.basis}, degree ${this.degree}, [${this.interval[0]}, ${this.interval[1]}]: ` +
      `${Array.from(this.coefficients.subarray(0, 4), (c) => c.toPrecision(4)).join(', ')}` +
      `${this.coefficients.length > 4 ? ', …' : ''})`
    );
  }
}

function checkInterval(interval: Interval): void {
  if (!Array.isArray(interval) || interval.length !== 2) {
    throw new InvalidArgumentError(`interval = ${describe(interval)}: expected [a, b]`);
  }
  assertFinite(interval[0], 'interval start a');
  assertFinite(interval[1], 'interval end b');
  check(interval[0] < interval[1], () => `interval [${interval[0]}, ${interval[1]}]: expected a < b`);
}

/**
 * Σ c_k·T_k(t) by Clenshaw's recurrence (backward-stable for |t| ≤ 1).
 *
 * @example
 * ```ts
 * clenshaw(Float64Array.of(0, 0, 1), 0.5); // T_2(0.5) = −0.5
 * ```
 */
export function clenshaw(c: ArrayLike<number>, t: number): number {
  let b1 = 0;
  let b2 = 0;
  for (let k = c.length - 1; k >= 1; k--) {
    const b0 = 2 * t * b1 - b2 + c[k];
    b2 = b1;
    b1 = b0;
  }
  return t * b1 - b2 + c[0];
}

/**
 * Chebyshev division by T_n: coefficients q, r with Σ c_k T_k = (Σ q_k T_k)·T_n + Σ r_k T_k and r of length ≤ n.
 * Works from the top degree down with T_j·T_n = (T_{j+n} + T_{|j−n|})/2. Trailing zeros are not trimmed.
 *
 * @example
 * ```ts
 * chebyshevDivide(Float64Array.of(1, 2, 3, 4), 2); // q = [3, 8], r = [1, -2]
 * ```
 */
export function chebyshevDivide(
  c: ArrayLike<number>,
  n: number,
): { quotient: Float64Array; remainder: Float64Array } {
  assertInteger(n, 'n', 1);
  const degree = c.length - 1;
  if (degree < n) return { quotient: Float64Array.of(0), remainder: Float64Array.from(c) };
  const residual = Float64Array.from(c);
  const quotient = new Float64Array(degree - n + 1);
  for (let k = degree; k >= n; k--) {
    const v = residual[k];
    if (v === 0) continue;
    residual[k] = 0;
    if (k === n) {
      quotient[0] += v;
    } else {
      // 2v·T_{k−n}·T_n = v·T_k + v·T_{|k−2n|}
      quotient[k - n] += 2 * v;
      residual[Math.abs(k - 2 * n)] -= v;
    }
  }
  return { quotient, remainder: residual.slice(0, n) };
}
