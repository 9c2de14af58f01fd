import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Prng } from '../ring/prng.ts';
import { InvalidArgumentError, MismatchError } from '../util/errors.ts';
import { Encoder } from './encoder.ts';
import { Decryptor, Encryptor } from './encryptor.ts';
import { Evaluator } from './evaluator.ts';
import { KeyGenerator } from './keys.ts';
import type { Ciphertext } from './objects.ts';
import { Parameters, PRESETS, type ParametersLiteral } from './parameters.ts';
import { type Interval, Polynomial } from './polynomial.ts';
import { PolynomialEvaluator } from './polynomial-evaluator.ts';

const seed = (n: number) => new Uint8Array(32).fill(n);

/** Keys (seeded secret and public key; relinearization only), codec and evaluators for one parameter set. */
function setup(literal: ParametersLiteral) {
  const params = Parameters.create(literal);
  const keygen = new KeyGenerator(params);
  const sk = keygen.generateSecretKey(Prng.fromSeed(seed(1)));
  const pk = keygen.generatePublicKey(sk, seed(2));
  const evaluator = new Evaluator(params, keygen.generateEvaluationKeys(sk, { rotations: [] }));
  const encoder = new Encoder(params);
  const encryptor = new Encryptor(params, pk);
  const decryptor = new Decryptor(params, sk);
  const data = Prng.fromSeed(seed(3));
  const noise = Prng.fromSeed(seed(4));
  return {
    params,
    evaluator,
    polyEval: new PolynomialEvaluator(evaluator),
    /** Uniform inputs in [a, b] on every slot, encrypted at `level` (default top) with the canonical scale. */
    encryptUniform([a, b]: Interval, level = params.depth) {
      const xs = Float64Array.from({ length: params.slots }, () => a + (b - a) * data.nextDouble());
      return { xs, ct: encryptor.encryptNew(encoder.encodeNew(xs, level), noise) };
    },
    decrypt: (ct: Ciphertext) => encoder.decode(decryptor.decryptNew(ct)),
  };
}

type Context = ReturnType<typeof setup>;

/** log2 of the max slot error of `ct` against `expected(x)`. */
function log2MaxError(
  context: Context,
  ct: Ciphertext,
  xs: Float64Array,
  expected: (x: number) => number,
): number {
  const got = context.decrypt(ct);
  let error = 0;
  for (let i = 0; i < xs.length; i++) error = Math.max(error, Math.abs(got[i] - expected(xs[i])));
  return Math.log2(error);
}

/** Error of one mul + relinearize + rescale of x·x, x uniform in [-1, 1]: the precision reference. */
function mulError(context: Context): number {
  const { xs, ct } = context.encryptUniform([-1, 1]);
  const square = context.evaluator.mulRelinNew(ct, ct);
  context.evaluator.rescale(square, square);
  return log2MaxError(context, square, xs, (x) => x * x);
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * α·Σ k²·|c_k| with α = 2/(b − a): a bound on |p'(x)| over [a, b] (|T_k'| ≤ k², Markov). Input noise e becomes
 * |p'|·e at the output whatever the algorithm, so random-coefficient checks scale their bound by it (measured:
 * error ≈ 2^-16·(1 + Σ k²|c_k|) at PN13QP218, whose mul error is ≈ 2^-16).
 */
function sensitivity(p: Polynomial): number {
  const sum = p.coefficients.reduce((total, c, k) => total + k * k * Math.abs(c), 0);
  return p.changeOfVariable().scale * sum;
}

describe('PolynomialEvaluator: precision at PN14QP438', () => {
  const context = setup(PRESETS.PN14QP438);

  it('degree 63 (sigmoid(8t) on [-1, 1]) consumes 6 levels, lands on the canonical scale, within 2 bits of mul', (t) => {
    const p = Polynomial.chebyshevInterpolant((x) => sigmoid(8 * x), 63, [-1, 1]);
    assert.equal(p.degree, 63);
    assert.equal(PolynomialEvaluator.levelsConsumed(p), 6);
    const { xs, ct } = context.encryptUniform([-1, 1]);
    const out = context.polyEval.evaluateNew(ct, p);
    assert.equal(ct.level - out.level, 6);
    assert.equal(out.scale, context.params.scaleAtLevel[out.level]);
    const polyErr = log2MaxError(context, out, xs, (x) => p.evaluate(x));
    const mulErr = mulError(context);
    t.diagnostic(`degree 63: log2 max error ${polyErr.toFixed(2)}; mul+relin+rescale ${mulErr.toFixed(2)}`);
    assert.ok(polyErr <= mulErr + 2, `polynomial error 2^${polyErr} vs 4 × mul error 2^${mulErr + 2}`);
  });

  it('on [-8, 8] the non-integer change of variable costs exactly one more level, at the same precision', (t) => {
    const p = Polynomial.chebyshevInterpolant(sigmoid, 63, [-8, 8]);
    assert.equal(PolynomialEvaluator.levelsConsumed(p), 7);
    assert.deepEqual(PolynomialEvaluator.plan(p).changeOfVariableLevels, 1);
    const { xs, ct } = context.encryptUniform([-8, 8]);
    const out = context.polyEval.evaluateNew(ct, p);
    assert.equal(ct.level - out.level, 7);
    assert.equal(out.scale, context.params.scaleAtLevel[out.level]);
    const polyErr = log2MaxError(context, out, xs, (x) => p.evaluate(x));
    const mulErr = mulError(context);
    t.diagnostic(
      `sigmoid on [-8, 8], degree 63: log2 max error ${polyErr.toFixed(2)} (mul ${mulErr.toFixed(2)})`,
    );
    assert.ok(polyErr <= mulErr + 2, `polynomial error 2^${polyErr} vs mul error 2^${mulErr}`);
  });
});

describe('PolynomialEvaluator: two primes per level (PN14QP438S60)', () => {
  it('degree 15 (exp on [-1, 1]) uses all 4 levels with error ≤ 2^-30', (t) => {
    const context = setup(PRESETS.PN14QP438S60);
    const p = Polynomial.chebyshevInterpolant(Math.exp, 15, [-1, 1]);
    const { xs, ct } = context.encryptUniform([-1, 1]);
    const out = context.polyEval.evaluateNew(ct, p);
    assert.equal(out.level, 0);
    assert.equal(out.scale, context.params.scaleAtLevel[0]);
    const error = log2MaxError(context, out, xs, (x) => p.evaluate(x));
    t.diagnostic(`S60, degree 15: log2 max error ${error.toFixed(2)}`);
    assert.ok(error <= -30, `error 2^${error}`);
  });
});

describe('PolynomialEvaluator: levels, edge cases and scale management at PN13QP218', () => {
  const context = setup(PRESETS.PN13QP218);
  const { params, polyEval } = context;

  it('degrees 1, 2, 3, 7, 15 consume exactly ⌈log2(d + 1)⌉ levels and are correct', () => {
    const f = (x: number) => Math.sin(3 * x) + 0.5 * x;
    for (const [degree, levels] of [
      [1, 1],
      [2, 2],
      [3, 2],
      [7, 3],
      [15, 4],
    ]) {
      const p = Polynomial.chebyshevInterpolant(f, degree, [-1, 1]);
      assert.equal(p.degree, degree);
      assert.equal(PolynomialEvaluator.levelsConsumed(degree), levels);
      const { xs, ct } = context.encryptUniform([-1, 1]);
      const out = polyEval.evaluateNew(ct, p);
      assert.equal(ct.level - out.level, levels, `degree ${degree}`);
      assert.equal(out.scale, params.scaleAtLevel[out.level]);
      const error = log2MaxError(context, out, xs, (x) => p.evaluate(x));
      assert.ok(error < -13, `degree ${degree}: error 2^${error}`);
    }
  });

  it('performs exactly the planned number of ciphertext products', () => {
    let products = 0;
    class CountingEvaluator extends Evaluator {
      override relinearize(a: Ciphertext, out: Ciphertext): Ciphertext {
        if (a.degree === 2) products++;
        return super.relinearize(a, out);
      }
    }
    const counting = new PolynomialEvaluator(
      new CountingEvaluator(params, (context.evaluator as Evaluator).keys),
    );
    const coefficients = Prng.fromSeed(seed(9));
    for (const degree of [2, 3, 4, 5, 7, 8, 11, 15]) {
      const p = Polynomial.chebyshev(
        Array.from({ length: degree + 1 }, () => coefficients.nextDouble() - 0.5),
      );
      const { xs, ct } = context.encryptUniform([-1, 1]);
      products = 0;
      const out = counting.evaluateNew(ct, p);
      assert.equal(products, PolynomialEvaluator.plan(p).products, `degree ${degree}`);
      const error = log2MaxError(context, out, xs, (x) => p.evaluate(x));
      assert.ok(error < -14 + Math.log2(1 + sensitivity(p)), `degree ${degree}: error 2^${error}`);
    }
  });

  it('levelsConsumed and plan follow ⌈log2(d + 1)⌉ for every degree', () => {
    for (let degree = 0; degree <= 200; degree++) {
      const expected = degree === 0 ? 0 : Math.ceil(Math.log2(degree + 1));
      assert.equal(PolynomialEvaluator.levelsConsumed(degree), expected);
      assert.equal(PolynomialEvaluator.plan(degree).levels, expected);
    }
    assert.equal(PolynomialEvaluator.plan(63).babyBound, 8);
    assert.deepEqual(PolynomialEvaluator.rotationsNeeded(), []);
    assert.throws(() => PolynomialEvaluator.levelsConsumed(-1), InvalidArgumentError);
  });

  it('free changes of variable: [0, 2] (α = 1) and [-0.25, 0.25] (α = 4); degree 1 folds any interval', () => {
    const cases: [Interval, number, number][] = [
      [[0, 2], 7, 3],
      [[-0.25, 0.25], 7, 3],
      [[-8, 8], 1, 1],
      [[-3, 5], 3, 3],
    ];
    for (const [interval, degree, levels] of cases) {
      const p = Polynomial.chebyshevInterpolant((x) => Math.cos(x) + x, degree, interval);
      assert.equal(PolynomialEvaluator.levelsConsumed(p), levels, `[${interval}] degree ${degree}`);
      const { xs, ct } = context.encryptUniform(interval);
      const out = polyEval.evaluateNew(ct, p);
      assert.equal(ct.level - out.level, levels);
      assert.equal(out.scale, params.scaleAtLevel[out.level]);
      const error = log2MaxError(context, out, xs, (x) => p.evaluate(x));
      assert.ok(error < -12, `[${interval}] degree ${degree}: error 2^${error}`);
    }
  });

  it('degree 0 returns the constant at the input level; monomial polynomials are converted', () => {
    const { xs, ct } = context.encryptUniform([-1, 1], 2);
    const constant = polyEval.evaluateNew(ct, Polynomial.chebyshev([0.75]));
    assert.equal(constant.level, 2);
    assert.equal(constant.scale, params.scaleAtLevel[2]);
    assert.ok(log2MaxError(context, constant, xs, () => 0.75) < -20);
    const cubic = Polynomial.monomial([0.1, -0.5, 0, 0.25]);
    const out = polyEval.evaluateNew(ct, cubic);
    assert.equal(out.level, 0);
    assert.ok(log2MaxError(context, out, xs, (x) => 0.1 - 0.5 * x + 0.25 * x ** 3) < -13);
  });

  it('lands exactly on a requested targetScale', () => {
    const p = Polynomial.chebyshevInterpolant(Math.exp, 5, [-1, 1]);
    const { xs, ct } = context.encryptUniform([-1, 1]);
    const targetScale = 2 ** 27.3;
    const out = polyEval.evaluateNew(ct, p, { targetScale });
    assert.equal(out.scale, targetScale);
    assert.equal(out.level, params.depth - 3);
    assert.ok(log2MaxError(context, out, xs, (x) => p.evaluate(x)) < -11);
    // The result adds to a ciphertext of that scale without any adjustment.
    const sum = context.evaluator.addNew(out, out);
    assert.ok(log2MaxError(context, sum, xs, (x) => 2 * p.evaluate(x)) < -10);
    assert.throws(() => polyEval.evaluateNew(ct, p, { targetScale: -1 }), /targetScale = -1/);
  });

  it('throws InvalidArgumentError naming the levels needed and available', () => {
    const { ct } = context.encryptUniform([-1, 1]);
    const p31 = Polynomial.chebyshevInterpolant(Math.exp, 31, [-1, 1]);
    assert.throws(
      () => polyEval.evaluateNew(ct, p31),
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        /needs 5 levels/.test(e.message) &&
        /only 4 are available/.test(e.message),
    );
    const p15 = Polynomial.chebyshevInterpolant(sigmoid, 15, [-8, 8]);
    assert.throws(
      () => polyEval.evaluateNew(ct, p15),
      /needs 5 levels \(4 for the degree \+ 1 for the change/,
    );
    const low = context.evaluator.dropLevelNew(ct, 1);
    assert.throws(() => polyEval.evaluateNew(low, Polynomial.chebyshev([0, 0, 1])), /needs 2 levels/);
    const square = context.evaluator.mulNew(ct, ct);
    assert.throws(() => polyEval.evaluateNew(square, p31), MismatchError);
  });

  it('property: random Chebyshev series of degree ≤ 15 match the float oracle', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 16 }),
        fc.constantFrom<Interval>([-1, 1], [-0.5, 0.5], [0, 2]),
        (coefficients, interval) => {
          const p = Polynomial.chebyshev(coefficients, interval);
          const { xs, ct } = context.encryptUniform(interval);
          const out = polyEval.evaluateNew(ct, p);
          assert.equal(ct.level - out.level, PolynomialEvaluator.levelsConsumed(p.degree));
          assert.equal(out.scale, params.scaleAtLevel[out.level]);
          const error = log2MaxError(context, out, xs, (x) => p.evaluate(x));
          const bound = -14 + Math.log2(1 + sensitivity(p));
          assert.ok(error < bound, `degree ${p.degree}: error 2^${error}, bound 2^${bound}`);
          out.dispose();
          ct.dispose();
        },
      ),
      { seed: 17, numRuns: 12 },
    );
  });
});
