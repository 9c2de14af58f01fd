import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededValues } from '../../tests/support/test-helpers.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { chebyshevInterpolate, evaluateChebyshev } from './chebyshev.ts';
import { ValueSample, leastSquaresChebyshev, maxTreeDifferences } from './least-squares.ts';

const relu = (x: number) => Math.max(x, 0);

/** Mean squared error of the series against f over the samples. */
function meanSquaredError(
  f: (x: number) => number,
  series: Parameters<typeof evaluateChebyshev>[0],
  xs: Float64Array,
) {
  let s = 0;
  for (const x of xs) s += (evaluateChebyshev(series, x) - f(x)) ** 2;
  return s / xs.length;
}

describe('leastSquaresChebyshev', () => {
  it('recovers a polynomial of its degree exactly', () => {
    const p = (x: number) => 0.5 - 2 * x + 0.25 * x ** 3;
    const samples = seededValues(5000, 1, -3, 2);
    const fitted = leastSquaresChebyshev(p, -3, 2, 3, samples);
    for (const x of [-3, -1.2, 0, 0.7, 2])
      assert.ok(Math.abs(evaluateChebyshev(fitted, x) - p(x)) < 1e-9, `x = ${x}`);
  });

  it('fits concentrated data better than interpolation at the same degree, and stays bounded on the interval', () => {
    // Most inputs near zero, where ReLU bends; a few reach the interval's ends.
    const near = seededValues(20_000, 2, -0.8, 0.8);
    const far = seededValues(200, 3, -8, 6);
    const samples = Float64Array.from([...near, ...far]);
    const interpolated = chebyshevInterpolate(relu, -8, 6, 7);
    const fitted = leastSquaresChebyshev(relu, -8, 6, 7, samples);
    const lsError = meanSquaredError(relu, fitted, samples);
    const interpolationError = meanSquaredError(relu, interpolated, samples);
    assert.ok(
      lsError < interpolationError / 2,
      `least squares ${lsError} vs interpolation ${interpolationError}`,
    );
    for (let x = -8; x <= 6; x += 0.01)
      assert.ok(Math.abs(evaluateChebyshev(fitted, x) - relu(x)) < 2, `x = ${x}`);
  });

  it('fits only even terms when asked (|·| for MaxPool)', () => {
    const fitted = leastSquaresChebyshev(Math.abs, -4, 4, 8, seededValues(3000, 4, -4, 4), {
      parity: 'even',
    });
    for (let k = 1; k < fitted.coeffs.length; k += 2) assert.equal(fitted.coeffs[k], 0);
    assert.ok(Math.abs(evaluateChebyshev(fitted, 2) - 2) < 0.2);
  });

  it('falls back to the uniform grid without samples, and refuses bad requests', () => {
    const fitted = leastSquaresChebyshev(Math.sin, -1, 1, 9, new Float64Array(0));
    assert.ok(Math.abs(evaluateChebyshev(fitted, 0.3) - Math.sin(0.3)) < 1e-8);
    assert.throws(() => leastSquaresChebyshev(relu, 1, 1, 3, new Float64Array(0)), InvalidArgumentError);
    assert.throws(() => leastSquaresChebyshev(relu, -1, 1, 300, new Float64Array(0)), /degree/);
    assert.throws(
      () => leastSquaresChebyshev(relu, -1, 1, 3, Float64Array.of(0), { uniformWeight: 2 }),
      /uniformWeight/,
    );
  });
});

describe('ValueSample', () => {
  it('keeps at most its limit, deterministically, evenly over the stream, and the largest magnitude of all', () => {
    const run = (expected: number) => {
      const sample = new ValueSample(expected, 100);
      for (let i = 0; i < 1000; i++) sample.push(i === 537 ? -5000 : i);
      return sample;
    };
    for (const expected of [1000, 10, 100_000]) {
      const a = run(expected).values();
      // Fewer values than expected: the stride chosen for the expectation keeps fewer (1000 / 1000 = 1 here).
      const least = expected === 100_000 ? 1 : 25;
      assert.ok(a.length <= 100 && a.length >= least, `expected ${expected}: kept ${a.length}`);
      assert.deepEqual(a, run(expected).values());
      assert.equal(a[0], 0);
      assert.ok(a[a.length - 1] >= 900 || expected === 100_000, `last kept ${a[a.length - 1]}`);
    }
    assert.equal(run(1000).largestMagnitude, 5000);
    assert.equal(run(1000).offered, 1000);
  });
});

describe('maxTreeDifferences', () => {
  it('gives the differences of the pairwise max tree, odd values carried up', () => {
    const seen: number[] = [];
    maxTreeDifferences(Float64Array.of(1, 4, 2, 3), 4, 4, (d) => seen.push(d));
    assert.deepEqual(seen, [-3, -1, 1]);
    seen.length = 0;
    maxTreeDifferences(Float64Array.of(5, 1, 7), 3, 3, (d) => seen.push(d));
    assert.deepEqual(seen, [4, -2]);
    seen.length = 0;
    maxTreeDifferences(Float64Array.of(9), 1, 1, (d) => seen.push(d));
    assert.deepEqual(seen, []);
  });

  it('reduces each row of a window, then the rows', () => {
    const seen: number[] = [];
    // 3×3: rows (1 5 2), (7 0 3), (4 8 6) → 1−5, 5−2; 7−0, 7−3; 4−8, 8−6; then rows' maxima 5−7, 7−8.
    maxTreeDifferences(Float64Array.of(1, 5, 2, 7, 0, 3, 4, 8, 6), 9, 3, (d) => seen.push(d));
    assert.deepEqual(seen, [-4, 3, 7, 4, -4, 2, -2, -1]);
    seen.length = 0;
    // 2×2 over a longer buffer: only the first len values count.
    maxTreeDifferences(Float64Array.of(1, 4, 2, 3, 99), 4, 2, (d) => seen.push(d));
    assert.deepEqual(seen, [-3, -1, 1]);
    assert.throws(() => maxTreeDifferences(Float64Array.of(1, 2, 3), 3, 2, () => {}), /rows of 2/);
  });
});
