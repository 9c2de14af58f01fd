import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../util/errors.ts';
import { chebyshevDivide, clenshaw, Polynomial } from './polynomial.ts';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function maxError(f: (x: number) => number, p: Polynomial, points = 2001): number {
  const [a, b] = p.interval;
  let error = 0;
  for (let i = 0; i < points; i++) {
    const x = a + ((b - a) * i) / (points - 1);
    error = Math.max(error, Math.abs(f(x) - p.evaluate(x)));
  }
  return error;
}

describe('Polynomial', () => {
  it('interpolates smooth functions at Chebyshev nodes to near machine precision', () => {
    const exp = Polynomial.chebyshevInterpolant(Math.exp, 15, [-1, 1]);
    assert.equal(exp.degree, 15);
    assert.equal(exp.basis, 'chebyshev');
    assert.ok(maxError(Math.exp, exp) < 1e-14, `exp error ${maxError(Math.exp, exp)}`);
    const sig = Polynomial.chebyshevInterpolant(sigmoid, 63, [-8, 8]);
    assert.equal(sig.degree, 63);
    assert.ok(maxError(sigmoid, sig) < 1e-9, `sigmoid error ${maxError(sigmoid, sig)}`);
    assert.ok(Math.abs(sig.evaluate(0) - 0.5) < 1e-12);
  });

  it('interpolation reproduces polynomials of at most its degree on any interval', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: 1, maxLength: 9 }),
        fc.double({ min: -4, max: 4, noNaN: true }),
        fc.double({ min: 0.25, max: 6, noNaN: true }),
        (coefficients, a, width) => {
          const monomial = Polynomial.monomial(coefficients, [a, a + width]);
          const cheb = Polynomial.chebyshevInterpolant((x) => monomial.evaluate(x), 8, [a, a + width]);
          const viaConversion = monomial.toChebyshev();
          const scale =
            coefficients.reduce((s, c) => s + Math.abs(c), 0) * Math.max(1, Math.abs(a) + width) ** 8;
          for (let i = 0; i <= 16; i++) {
            const x = a + (width * i) / 16;
            const expected = monomial.evaluate(x);
            assert.ok(Math.abs(cheb.evaluate(x) - expected) <= 1e-11 * (1 + scale));
            assert.ok(Math.abs(viaConversion.evaluate(x) - expected) <= 1e-11 * (1 + scale));
          }
        },
      ),
      { seed: 11, numRuns: 100 },
    );
  });

  it('converts between the bases: T_2 = 2x² − 1, x² = (T_0 + T_2)/2, and back on other intervals', () => {
    assert.deepEqual([...Polynomial.chebyshev([0, 0, 1]).toMonomial().coefficients], [-1, 0, 2]);
    assert.deepEqual([...Polynomial.monomial([0, 0, 1]).toChebyshev().coefficients], [0.5, 0, 0.5]);
    // On [0, 4]: t = x/2 − 1, so T_1(t) = x/2 − 1.
    const shifted = Polynomial.chebyshev([0, 1], [0, 4]);
    assert.deepEqual([...shifted.toMonomial().coefficients], [-1, 0.5]);
    assert.deepEqual(shifted.changeOfVariable(), { scale: 0.5, offset: -1 });
    const p = Polynomial.chebyshev([0.3, -0.2, 0.7, 0.1, -0.4], [-3, 5]);
    const roundTrip = p.toMonomial().toChebyshev();
    for (let k = 0; k <= 4; k++) assert.ok(Math.abs(roundTrip.coefficients[k] - p.coefficients[k]) < 1e-12);
    const moved = p.toChebyshev([-1, 1]);
    for (const x of [-1, -0.3, 0.2, 1]) assert.ok(Math.abs(moved.evaluate(x) - p.evaluate(x)) < 1e-12);
  });

  it('evaluates by Clenshaw (Chebyshev) and Horner (monomial)', () => {
    assert.equal(Polynomial.chebyshev([1, 2, 3]).evaluate(0.5), 0.5);
    assert.equal(clenshaw(Float64Array.of(0, 0, 1), 0.5), -0.5);
    for (const t of [-1, -0.6, 0, 0.35, 1]) {
      const c = [0.1, -0.3, 0.5, 0.2, -0.7, 0.05];
      const expected = c.reduce((s, ck, k) => s + ck * Math.cos(k * Math.acos(t)), 0);
      assert.ok(Math.abs(Polynomial.chebyshev(c).evaluate(t) - expected) < 1e-14);
    }
    assert.equal(Polynomial.monomial([1, -2, 0, 1]).evaluate(2), 5);
  });

  it('drops trailing zeros so that degree is the true degree', () => {
    assert.equal(Polynomial.chebyshev([1, 2, 0, 0]).degree, 1);
    assert.equal(Polynomial.chebyshev([0, 0]).degree, 0);
    assert.deepEqual([...Polynomial.chebyshev([0, 0]).coefficients], [0]);
    assert.equal(Polynomial.monomial([3]).degree, 0);
  });

  it('Chebyshev division: p = q·T_n + r with deg r < n, for every n', () => {
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(chebyshevDivide(Float64Array.of(1, 2, 3, 4), 2)).map(([k, v]) => [k, [...v]]),
      ),
      { quotient: [3, 8], remainder: [1, -2] },
    );
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 40 }),
        (coefficients, n) => {
          const p = Polynomial.chebyshev(coefficients, [-2, 3]);
          const { quotient, remainder } = p.divide(n);
          assert.ok(remainder.degree < n);
          for (let i = 0; i <= 20; i++) {
            const x = -2 + (5 * i) / 20;
            const t = (2 * x - 1) / 5;
            const tn = Math.cos(n * Math.acos(Math.max(-1, Math.min(1, t))));
            const expected = p.evaluate(x);
            const got = quotient.evaluate(x) * tn + remainder.evaluate(x);
            assert.ok(Math.abs(got - expected) < 1e-12 * coefficients.length * 4, `${got} vs ${expected}`);
          }
        },
      ),
      { seed: 5, numRuns: 200 },
    );
  });

  it('monomial division splits the coefficient array', () => {
    const { quotient, remainder } = Polynomial.monomial([1, 2, 3, 4, 5]).divide(2);
    assert.deepEqual([...quotient.coefficients], [3, 4, 5]);
    assert.deepEqual([...remainder.coefficients], [1, 2]);
    const small = Polynomial.monomial([1, 2]).divide(4);
    assert.deepEqual([...small.quotient.coefficients], [0]);
    assert.deepEqual([...small.remainder.coefficients], [1, 2]);
  });

  it('rejects bad input with InvalidArgumentError naming the value', () => {
    assert.throws(() => Polynomial.chebyshev([1, Number.NaN]), /coefficients\[1\] = NaN/);
    assert.throws(() => Polynomial.chebyshev([]), InvalidArgumentError);
    assert.throws(() => Polynomial.chebyshev([1], [2, 1]), /interval \[2, 1\]: expected a < b/);
    assert.throws(() => Polynomial.chebyshevInterpolant(Math.log, 4, [-1, 1]), /f\(.*\) = NaN/);
    assert.throws(() => Polynomial.chebyshevInterpolant(Math.exp, -1, [-1, 1]), /degree = -1/);
    assert.throws(
      () => new Polynomial([1], { basis: 'legendre' as never }),
      /basis = "legendre": expected "chebyshev" or "monomial"/,
    );
    assert.throws(() => Polynomial.chebyshev([1, 2]).divide(0), /n = 0/);
  });
});
