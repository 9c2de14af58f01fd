import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../util/errors.ts';
import {
  SCALAR_FUNCTIONS,
  chebyshevInterpolate,
  chebyshevToPowerBasis,
  evaluateChebyshev,
  maxApproximationError,
  remezRefine,
} from './chebyshev.ts';

describe('Chebyshev approximation', () => {
  it('Relu on [-4, 4] at degree 15: measured max error, improved by Remez', () => {
    const relu = SCALAR_FUNCTIONS.relu;
    const cheb = chebyshevInterpolate(relu, -4, 4, 15);
    const chebError = maxApproximationError(relu, cheb);
    // |x| is not smooth at 0, so the error decays only like 1/degree: ≈ 0.12 for interpolation.
    assert.ok(chebError > 0.05 && chebError < 0.15, `Chebyshev error ${chebError}`);
    const { series, maxError } = remezRefine(relu, cheb, 20);
    const remezError = maxApproximationError(relu, series);
    assert.ok(Math.abs(remezError - maxError) < 1e-3);
    assert.ok(remezError < 0.75 * chebError, `Remez ${remezError} vs Chebyshev ${chebError}`);
    assert.ok(remezError > 0.02, 'cannot beat the minimax bound (≈ 0.28·4/2/14 ≈ 0.04)');
  });

  it('smooth functions converge fast: tanh and sigmoid on [-6, 6]', () => {
    assert.ok(
      maxApproximationError(
        SCALAR_FUNCTIONS.sigmoid,
        chebyshevInterpolate(SCALAR_FUNCTIONS.sigmoid, -6, 6, 15),
      ) < 2e-3,
    );
    assert.ok(
      maxApproximationError(SCALAR_FUNCTIONS.tanh, chebyshevInterpolate(SCALAR_FUNCTIONS.tanh, -6, 6, 31)) <
        1e-3,
    );
  });

  it('reproduces polynomials of at most its degree exactly', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 1, maxLength: 8 }),
        fc.double({ min: -5, max: 0, noNaN: true }),
        fc.double({ min: 0.5, max: 5, noNaN: true }),
        (coeffs, a, width) => {
          const p = (x: number) => coeffs.reduceRight((acc, c) => acc * x + c, 0);
          const s = chebyshevInterpolate(p, a, a + width, coeffs.length - 1);
          for (let k = 0; k <= 10; k++) {
            const x = a + (width * k) / 10;
            assert.ok(Math.abs(evaluateChebyshev(s, x) - p(x)) < 1e-8 * (1 + Math.abs(p(x))) + 1e-6);
          }
        },
      ),
      { seed: 7, numRuns: 200 },
    );
  });

  it('power-basis conversion agrees with Clenshaw evaluation', () => {
    const s = chebyshevInterpolate(SCALAR_FUNCTIONS.sigmoid, -3, 5, 9);
    const { normalized, inX } = chebyshevToPowerBasis(s);
    for (const x of [-3, -1.2, 0, 0.7, 2, 5]) {
      const t = (2 * x - s.a - s.b) / (s.b - s.a);
      const inT = normalized.reduceRight((acc, c) => acc * t + c, 0);
      const direct = inX.reduceRight((acc, c) => acc * x + c, 0);
      assert.ok(Math.abs(inT - evaluateChebyshev(s, x)) < 1e-12);
      assert.ok(Math.abs(direct - evaluateChebyshev(s, x)) < 1e-9);
    }
    assert.deepEqual(
      [...chebyshevToPowerBasis({ a: -1, b: 1, coeffs: Float64Array.of(0, 0, 1) }).normalized],
      [-1, 0, 2],
    );
  });

  it('rejects an empty interval and a bad degree', () => {
    assert.throws(() => chebyshevInterpolate(Math.abs, 1, 1, 3), InvalidArgumentError);
    assert.throws(() => chebyshevInterpolate(Math.abs, 0, 1, -1), InvalidArgumentError);
  });
});
