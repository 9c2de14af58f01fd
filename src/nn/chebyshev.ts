import { assertFinite, assertInteger, check } from '../util/assert.ts';

/**
 * A polynomial in the Chebyshev basis on [a, b]: p(x) = Σ coeffs[k]·T_k(t) with t = (2x − a − b)/(b − a). This basis
 * keeps high-degree approximations well conditioned; {@link chebyshevToPowerBasis} converts when a power basis is
 * needed.
 *
 * @example
 * ```ts
 * const p: ChebyshevSeries = { a: -4, b: 4, coeffs: Float64Array.of(0, 1) }; // p(x) = x / 4
 * ```
 */
export interface ChebyshevSeries {
  readonly a: number;
  readonly b: number;
  readonly coeffs: Float64Array;
}

/**
 * The non-polynomial scalar functions the approximator knows. `abs` serves the polynomial max.
 *
 * @example
 * ```ts
 * const fn: ScalarFunction = 'tanh';
 * ```
 */
export type ScalarFunction = 'relu' | 'sigmoid' | 'tanh' | 'abs';

/**
 * Exact float64 definitions of the {@link ScalarFunction}s.
 *
 * @example
 * ```ts
 * SCALAR_FUNCTIONS.sigmoid(0); // 0.5
 * ```
 */
export const SCALAR_FUNCTIONS: Readonly<Record<ScalarFunction, (x: number) => number>> = {
  relu: (x) => Math.max(x, 0),
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  tanh: (x) => Math.tanh(x),
  abs: (x) => Math.abs(x),
};

function checkInterval(a: number, b: number): void {
  assertFinite(a, 'interval start a');
  assertFinite(b, 'interval end b');
  check(a < b, () => `interval [${a}, ${b}]: expected a < b`);
}

/**
 * Interpolates `f` at the degree+1 Chebyshev nodes of [a, b]; the result is within a small factor of the best
 * polynomial approximation of that degree.
 *
 * @example
 * ```ts
 * const relu = chebyshevInterpolate(SCALAR_FUNCTIONS.relu, -4, 4, 15);
 * evaluateChebyshev(relu, 1); // ≈ 1
 * ```
 */
export function chebyshevInterpolate(
  f: (x: number) => number,
  a: number,
  b: number,
  degree: number,
): ChebyshevSeries {
  checkInterval(a, b);
  assertInteger(degree, 'degree', 0, 1024);
  const n = degree + 1;
  const values = new Float64Array(n);
  const half = (b - a) / 2;
  const mid = (a + b) / 2;
  for (let k = 0; k < n; k++) values[k] = f(mid + half * Math.cos((Math.PI * (k + 0.5)) / n));
  const coeffs = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += values[k] * Math.cos((Math.PI * j * (k + 0.5)) / n);
    coeffs[j] = ((j === 0 ? 1 : 2) * s) / n;
  }
  return { a, b, coeffs };
}

/**
 * Evaluates a Chebyshev series at x (Clenshaw recurrence). Outside [a, b] the polynomial is extrapolated, exactly
 * as the encrypted evaluation would be.
 *
 * @example
 * ```ts
 * evaluateChebyshev({ a: 0, b: 2, coeffs: Float64Array.of(1, 1) }, 2); // 2
 * ```
 */
export function evaluateChebyshev(series: ChebyshevSeries, x: number): number {
  const c = series.coeffs;
  const t = (2 * x - series.a - series.b) / (series.b - series.a);
  const t2 = 2 * t;
  let b1 = 0;
  let b2 = 0;
  for (let k = c.length - 1; k >= 1; k--) {
    const b0 = c[k] + t2 * b1 - b2;
    b2 = b1;
    b1 = b0;
  }
  return c.length === 0 ? 0 : c[0] + t * b1 - b2;
}

/**
 * Evaluates a Chebyshev series on every element of `input` into `output` (which may be `input`).
 *
 * @example
 * ```ts
 * evaluateChebyshevInto(series, activations, activations);
 * ```
 */
export function evaluateChebyshevInto(
  series: ChebyshevSeries,
  input: Float64Array,
  output: Float64Array,
): void {
  const c = series.coeffs;
  const scale = 2 / (series.b - series.a);
  const shift = -(series.a + series.b) / (series.b - series.a);
  const last = c.length - 1;
  for (let i = 0; i < input.length; i++) {
    const t = input[i] * scale + shift;
    const t2 = 2 * t;
    let b1 = 0;
    let b2 = 0;
    for (let k = last; k >= 1; k--) {
      const b0 = c[k] + t2 * b1 - b2;
      b2 = b1;
      b1 = b0;
    }
    output[i] = last < 0 ? 0 : c[0] + t * b1 - b2;
  }
}

/**
 * Largest |f(x) − p(x)| over `samples` evenly spaced points of [a, b] (both ends included).
 *
 * @example
 * ```ts
 * maxApproximationError(SCALAR_FUNCTIONS.relu, chebyshevInterpolate(SCALAR_FUNCTIONS.relu, -4, 4, 15)); // ≈ 0.08
 * ```
 */
export function maxApproximationError(
  f: (x: number) => number,
  series: ChebyshevSeries,
  samples = 20001,
): number {
  assertInteger(samples, 'samples', 2);
  let worst = 0;
  for (let i = 0; i < samples; i++) {
    const x = series.a + ((series.b - series.a) * i) / (samples - 1);
    const e = Math.abs(f(x) - evaluateChebyshev(series, x));
    if (e > worst) worst = e;
  }
  return worst;
}

/** Solves the square system m·x = rhs in place by Gaussian elimination with partial pivoting; null if singular. */
function solve(m: Float64Array[], rhs: Float64Array): Float64Array | null {
  const n = rhs.length;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) pivot = r;
    if (!(Math.abs(m[pivot][col]) > 1e-300)) return null;
    [m[col], m[pivot]] = [m[pivot], m[col]];
    [rhs[col], rhs[pivot]] = [rhs[pivot], rhs[col]];
    for (let r = col + 1; r < n; r++) {
      const factor = m[r][col] / m[col][col];
      if (factor === 0) continue;
      for (let c = col; c < n; c++) m[r][c] -= factor * m[col][c];
      rhs[r] -= factor * rhs[col];
    }
  }
  const x = new Float64Array(n);
  for (let r = n - 1; r >= 0; r--) {
    let s = rhs[r];
    for (let c = r + 1; c < n; c++) s -= m[r][c] * x[c];
    x[r] = s / m[r][r];
  }
  return x;
}

/**
 * Improves a Chebyshev approximation toward the minimax (equioscillating) one with Remez exchange steps on a dense
 * grid. A step whose result has a larger maximum error than the best so far is discarded, so the returned series is
 * never worse than the input on the grid.
 *
 * @example
 * ```ts
 * const start = chebyshevInterpolate(SCALAR_FUNCTIONS.relu, -4, 4, 15);
 * const { series, maxError } = remezRefine(SCALAR_FUNCTIONS.relu, start, 8);
 * ```
 */
export function remezRefine(
  f: (x: number) => number,
  start: ChebyshevSeries,
  iterations: number,
  gridSize = 8001,
): { series: ChebyshevSeries; maxError: number } {
  assertInteger(iterations, 'iterations', 0, 100);
  assertInteger(gridSize, 'gridSize', 16, 1_000_000);
  const { a, b } = start;
  const degree = start.coeffs.length - 1;
  const grid = new Float64Array(gridSize);
  const fGrid = new Float64Array(gridSize);
  for (let i = 0; i < gridSize; i++) {
    grid[i] = a + ((b - a) * i) / (gridSize - 1);
    fGrid[i] = f(grid[i]);
  }
  const errorOn = (s: ChebyshevSeries, out: Float64Array): number => {
    evaluateChebyshevInto(s, grid, out);
    let worst = 0;
    for (let i = 0; i < gridSize; i++) {
      out[i] = fGrid[i] - out[i];
      if (Math.abs(out[i]) > worst) worst = Math.abs(out[i]);
    }
    return worst;
  };
  const err = new Float64Array(gridSize);
  let best = start;
  let bestError = errorOn(start, err);
  const m = degree + 2;
  // Start from the extrema of T_{degree+1}, the equioscillation points of the ideal error shape.
  let reference: number[] = [];
  for (let i = 0; i < m; i++) reference.push((a + b) / 2 - ((b - a) / 2) * Math.cos((Math.PI * i) / (m - 1)));
  let current = start;
  for (let it = 0; it < iterations; it++) {
    const rows: Float64Array[] = [];
    const rhs = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      const row = new Float64Array(m);
      const t = (2 * reference[i] - a - b) / (b - a);
      let tPrev = 1;
      let tCur = t;
      for (let k = 0; k <= degree; k++) {
        if (k === 0) row[k] = 1;
        else if (k === 1) row[k] = t;
        else {
          const tNext = 2 * t * tCur - tPrev;
          tPrev = tCur;
          tCur = tNext;
          row[k] = tCur;
        }
      }
      row[m - 1] = i % 2 === 0 ? 1 : -1;
      rows.push(row);
      rhs[i] = f(reference[i]);
    }
    const x = solve(rows, rhs);
    if (x === null) break;
    current = { a, b, coeffs: x.slice(0, degree + 1) };
    const e = errorOn(current, err);
    if (e < bestError) {
      best = current;
      bestError = e;
    }
    // New reference: the largest |error| of each run of equal sign, trimmed at the ends to m alternating points.
    const peaks: number[] = [];
    let runStart = 0;
    for (let i = 1; i <= gridSize; i++) {
      if (i === gridSize || Math.sign(err[i]) !== Math.sign(err[runStart]) || err[i] === 0) {
        let at = runStart;
        for (let j = runStart; j < i; j++) if (Math.abs(err[j]) > Math.abs(err[at])) at = j;
        if (err[at] !== 0) peaks.push(at);
        runStart = i;
      }
    }
    if (peaks.length < m) break;
    while (peaks.length > m) {
      if (Math.abs(err[peaks[0]]) < Math.abs(err[peaks[peaks.length - 1]])) peaks.shift();
      else peaks.pop();
    }
    reference = peaks.map((i) => grid[i]);
  }
  return { series: best, maxError: bestError };
}

/**
 * Converts a Chebyshev series to power-basis coefficients, both in the normalized variable t ∈ [−1, 1]
 * (`normalized[k]` multiplies t^k; well conditioned) and in x itself (`inX[k]` multiplies x^k; can lose precision
 * at high degree on wide intervals, which is why the compiler evaluates in the Chebyshev basis).
 *
 * @example
 * ```ts
 * chebyshevToPowerBasis({ a: -1, b: 1, coeffs: Float64Array.of(0, 0, 1) }).normalized; // [-1, 0, 2]  (T2 = 2t² − 1)
 * ```
 */
export function chebyshevToPowerBasis(series: ChebyshevSeries): {
  normalized: Float64Array;
  inX: Float64Array;
} {
  const n = series.coeffs.length;
  const normalized = new Float64Array(n);
  // T_k as power-basis coefficient arrays via T_{k+1} = 2t·T_k − T_{k−1}.
  let prev = new Float64Array(n);
  let cur = new Float64Array(n);
  if (n > 0) {
    prev[0] = 1;
    normalized[0] += series.coeffs[0];
  }
  if (n > 1) {
    cur[1] = 1;
    normalized[1] += series.coeffs[1];
  }
  for (let k = 2; k < n; k++) {
    const next = new Float64Array(n);
    for (let i = 0; i < n - 1; i++) next[i + 1] += 2 * cur[i];
    for (let i = 0; i < n; i++) next[i] -= prev[i];
    for (let i = 0; i < n; i++) normalized[i] += series.coeffs[k] * next[i];
    prev = cur;
    cur = next;
  }
  // Substitute t = α·x + β and expand by Horner's scheme on polynomials.
  const alpha = 2 / (series.b - series.a);
  const beta = -(series.a + series.b) / (series.b - series.a);
  let inX = new Float64Array(n);
  for (let k = n - 1; k >= 0; k--) {
    const next = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (inX[i] === 0) continue;
      next[i] += beta * inX[i];
      if (i + 1 < n) next[i + 1] += alpha * inX[i];
    }
    next[0] += normalized[k];
    inX = next;
  }
  return { normalized, inX };
}
