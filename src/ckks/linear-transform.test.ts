import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Prng } from '../ring/prng.ts';
import { InvalidArgumentError, MissingKeyError } from '../util/errors.ts';
import { Encoder } from './encoder.ts';
import { Decryptor, Encryptor } from './encryptor.ts';
import { Evaluator } from './evaluator.ts';
import { KeyGenerator } from './keys.ts';
import { LinearTransform } from './linear-transform.ts';
import type { Ciphertext } from './objects.ts';
import { Parameters, PRESETS, type ParametersLiteral } from './parameters.ts';

const seed = (n: number) => new Uint8Array(32).fill(n);

/** An Evaluator that records every rotation step it performs. */
class RecordingEvaluator extends Evaluator {
  readonly steps = new Set<number>();

  override rotate(a: Ciphertext, steps: number, out: Ciphertext): Ciphertext {
    this.steps.add(steps);
    return super.rotate(a, steps, out);
  }

  override rotateHoistedNew(a: Ciphertext, steps: readonly number[]): Map<number, Ciphertext> {
    for (const s of steps) this.steps.add(s);
    return super.rotateHoistedNew(a, steps);
  }
}

function setup(literal: ParametersLiteral) {
  const params = Parameters.create(literal);
  const keygen = new KeyGenerator(params);
  const sk = keygen.generateSecretKey(Prng.fromSeed(seed(1)));
  const pk = keygen.generatePublicKey(sk, seed(2));
  const encoder = new Encoder(params);
  const encryptor = new Encryptor(params, pk);
  const decryptor = new Decryptor(params, sk);
  const data = Prng.fromSeed(seed(3));
  const noise = Prng.fromSeed(seed(4));
  return {
    params,
    /** An evaluator holding the relinearization key and exactly the rotation keys of `steps`. */
    evaluatorFor: (steps: readonly number[]) =>
      new RecordingEvaluator(params, keygen.generateEvaluationKeys(sk, { rotations: steps })),
    random: (count: number) => Float64Array.from({ length: count }, () => 2 * data.nextDouble() - 1),
    randomMatrix: (rows: number, columns: number) =>
      Array.from({ length: rows }, () =>
        Float64Array.from({ length: columns }, () => 2 * data.nextDouble() - 1),
      ),
    encrypt: (values: ArrayLike<number>, level = params.depth) =>
      encryptor.encryptNew(encoder.encodeNew(values, level), noise),
    decrypt: (ct: Ciphertext) => encoder.decode(decryptor.decryptNew(ct)),
    encryptComplex: (values: { re: Float64Array; im: Float64Array }) =>
      encryptor.encryptNew(encoder.encodeNew(values), noise),
    decryptComplex: (ct: Ciphertext) => encoder.decodeComplex(decryptor.decryptNew(ct)),
  };
}

function matVec(rows: ArrayLike<ArrayLike<number>>, x: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: rows.length }, (_, i) => {
    let sum = 0;
    for (let j = 0; j < rows[i].length; j++) sum += rows[i][j] * x[j];
    return sum;
  });
}

function log2MaxError(got: ArrayLike<number>, expected: ArrayLike<number>): number {
  let error = 0;
  for (let i = 0; i < expected.length; i++) error = Math.max(error, Math.abs(got[i] - expected[i]));
  return Math.log2(error);
}

describe('LinearTransform: logic at PN13QP218', () => {
  const context = setup(PRESETS.PN13QP218);
  const { params } = context;
  const slots = params.slots;

  it('8×8 matrix, padded layout: M·x in the first 8 slots, zeros elsewhere, canonical scale after rescale', () => {
    const rows = context.randomMatrix(8, 8);
    const x = context.random(8);
    const transform = LinearTransform.fromMatrix(params, rows);
    assert.deepEqual(transform.shape, { kind: 'padded', rows: 8, columns: 8 });
    assert.equal(transform.diagonals.size, 15);
    const evaluator = context.evaluatorFor(transform.rotationsNeeded());
    // The slots beyond the 8 inputs hold garbage: the padded layout ignores them.
    const input = Float64Array.from({ length: slots }, (_, i) => (i < 8 ? x[i] : 5 * Math.sin(i)));
    const ct = context.encrypt(input);
    const out = transform.evaluateNew(evaluator, ct);
    assert.equal(out.level, ct.level);
    assert.equal(out.scale, ct.scale * params.scaleAtLevel[ct.level]);
    evaluator.rescale(out, out);
    assert.equal(out.scale, params.scaleAtLevel[ct.level - 1]);
    const expected = new Float64Array(slots);
    expected.set(matVec(rows, x));
    assert.ok(log2MaxError(context.decrypt(out), expected) < -12);
    assert.deepEqual(
      [...evaluator.steps].sort((a, b) => a - b),
      transform.rotationsNeeded(),
    );
  });

  it('8×8 matrix, replicated layout: input and output repeat with period 8', () => {
    const rows = context.randomMatrix(8, 8);
    const x = context.random(8);
    const transform = LinearTransform.fromMatrix(params, rows, { layout: 'replicated' });
    assert.deepEqual(transform.shape, { kind: 'replicated', rows: 8, columns: 8, period: 8 });
    assert.equal(transform.diagonals.size, 8);
    const evaluator = context.evaluatorFor(transform.rotationsNeeded());
    const out = transform.evaluateNew(evaluator, context.encrypt(LinearTransform.replicate(x, 8, slots)));
    evaluator.rescale(out, out);
    const expected = LinearTransform.replicate(matVec(rows, x), 8, slots);
    assert.ok(log2MaxError(context.decrypt(out), expected) < -12);
  });

  it('rectangular 5×12 replicated (padded to 16) chains into a 3×5 transform of the same period', () => {
    const first = context.randomMatrix(5, 12);
    const second = context.randomMatrix(3, 5);
    const x = context.random(12);
    const a = LinearTransform.fromMatrix(params, first, { layout: 'replicated' });
    const b = LinearTransform.fromMatrix(params, second, { layout: 'replicated', period: 16 });
    assert.equal(a.shape.kind === 'replicated' && a.shape.period, 16);
    assert.equal(b.shape.kind === 'replicated' && b.shape.period, 16);
    assert.throws(
      () => LinearTransform.fromMatrix(params, second, { layout: 'replicated', period: 4 }),
      /period = 4/,
    );
    const evaluator = context.evaluatorFor([...new Set([...a.rotationsNeeded(), ...b.rotationsNeeded()])]);
    const mid = a.evaluateNew(evaluator, context.encrypt(LinearTransform.replicate(x, 16, slots)));
    evaluator.rescale(mid, mid);
    const out = b.evaluateNew(evaluator, mid);
    evaluator.rescale(out, out);
    assert.equal(out.level, params.depth - 2);
    const expected = LinearTransform.replicate(matVec(second, matVec(first, x)), 16, slots);
    assert.ok(log2MaxError(context.decrypt(out), expected) < -11);
  });

  it('sparse generalized diagonals (indices wrap modulo the slot count) match apply() and the definition', () => {
    const indices = [0, 1, -1, 100, 2049, -2000];
    const diagonals = new Map(indices.map((k) => [k, context.random(slots)] as const));
    const transform = new LinearTransform(params, diagonals);
    assert.deepEqual([...transform.diagonals.keys()], [0, 1, 100, 2049, slots - 2000, slots - 1]);
    const x = context.random(slots);
    const expected = new Float64Array(slots);
    for (const [k, d] of diagonals) {
      for (let i = 0; i < slots; i++) expected[i] += d[i] * x[(((i + k) % slots) + slots) % slots];
    }
    const plain = transform.apply(x);
    for (let i = 0; i < slots; i++) assert.ok(Math.abs(plain[i] - expected[i]) < 1e-12);
    const evaluator = context.evaluatorFor(transform.rotationsNeeded());
    const ct = context.encrypt(x);
    const out = transform.evaluateNew(evaluator, ct);
    evaluator.rescale(out, out);
    assert.ok(log2MaxError(context.decrypt(out), expected) < -12);
    assert.deepEqual(
      [...evaluator.steps].sort((a, b) => a - b),
      transform.rotationsNeeded(),
    );
    // Encoded diagonals are cached per level: a lower-level input uses its own encoding.
    const low = transform.evaluateNew(evaluator, context.encrypt(x, 2));
    assert.equal(low.level, 2);
    evaluator.rescale(low, low);
    assert.ok(log2MaxError(context.decrypt(low), expected) < -12);
    transform.dispose();
  });

  it('complex diagonals: the encrypted transform, applyComplex and the definition agree on complex slots', () => {
    const indices = [0, 3, -7];
    const diagonals = new Map(
      indices.map((k) => [k, { re: context.random(slots), im: context.random(slots) }] as const),
    );
    const transform = new LinearTransform(params, diagonals);
    assert.equal(transform.imaginaryDiagonals.size, 3);
    assert.throws(() => transform.apply(context.random(slots)), /complex diagonals/);
    const x = { re: context.random(slots), im: context.random(slots) };
    const expected = { re: new Float64Array(slots), im: new Float64Array(slots) };
    for (const [k, d] of diagonals) {
      for (let i = 0; i < slots; i++) {
        const j = (((i + k) % slots) + slots) % slots;
        expected.re[i] += d.re[i] * x.re[j] - d.im[i] * x.im[j];
        expected.im[i] += d.re[i] * x.im[j] + d.im[i] * x.re[j];
      }
    }
    const plain = transform.applyComplex(x);
    assert.ok(log2MaxError(plain.re, expected.re) < -40 && log2MaxError(plain.im, expected.im) < -40);
    const evaluator = context.evaluatorFor(transform.rotationsNeeded());
    const ct = context.encryptComplex(x);
    const out = transform.evaluateNew(evaluator, ct);
    evaluator.rescale(out, out);
    const got = context.decryptComplex(out);
    assert.ok(log2MaxError(got.re, expected.re) < -12 && log2MaxError(got.im, expected.im) < -12);
    transform.dispose();
  });

  it('rotationsNeeded is exactly the set of rotations used, for any baby-step count and with or without hoisting', () => {
    const rows = context.randomMatrix(10, 10);
    const x = context.random(10);
    const expected = new Float64Array(slots);
    expected.set(matVec(rows, x));
    const ct = context.encrypt(x);
    const transforms = [1, 4, 8, slots].map((babySteps) =>
      LinearTransform.fromMatrix(params, rows, { babySteps }),
    );
    const evaluator = context.evaluatorFor([...new Set(transforms.flatMap((tr) => tr.rotationsNeeded()))]);
    for (const transform of transforms) {
      for (const hoisted of [true, false]) {
        evaluator.steps.clear();
        const out = transform.evaluateNew(evaluator, ct, { hoisted });
        evaluator.rescale(out, out);
        const label = `babySteps ${transform.babySteps}, hoisted ${hoisted}`;
        assert.ok(log2MaxError(context.decrypt(out), expected) < -11, label);
        assert.deepEqual(
          [...evaluator.steps].sort((a, b) => a - b),
          transform.rotationsNeeded(),
          label,
        );
      }
      transform.dispose();
    }
    // n1 = 1 rotates once per non-zero diagonal index; n1 = slots rotates the same steps, all hoisted.
    assert.deepEqual(transforms[0].rotationsNeeded(), transforms[3].rotationsNeeded());
    assert.equal(transforms[0].rotationsNeeded().length, 18);
  });

  it('a missing Galois key raises MissingKeyError naming the rotation step', () => {
    const transform = LinearTransform.fromMatrix(params, context.randomMatrix(16, 16), {
      layout: 'replicated',
    });
    const needed = transform.rotationsNeeded();
    const missing = needed[needed.length - 1];
    const evaluator = context.evaluatorFor(needed.filter((s) => s !== missing));
    assert.throws(
      () => transform.evaluateNew(evaluator, context.encrypt(context.random(16))),
      (e: unknown) => e instanceof MissingKeyError && e.message.includes(`rotation by ${missing} `),
    );
  });

  it('rejects bad input', () => {
    assert.throws(() => LinearTransform.fromMatrix(params, []), InvalidArgumentError);
    assert.throws(() => LinearTransform.fromMatrix(params, [[1, 2], [3]]), /rows\[1\]/);
    assert.throws(() => LinearTransform.fromMatrix(params, [[1, Number.NaN]]), /rows\[0\]\[1\] = NaN/);
    assert.throws(() => new LinearTransform(params, new Map([[0, [1, 2]]])), /expected 4096 values/);
    const full = new Float64Array(slots).fill(1);
    assert.throws(
      () =>
        new LinearTransform(
          params,
          new Map([
            [1, full],
            [1 + slots, full],
          ]),
        ),
      /given twice/,
    );
    assert.throws(() => LinearTransform.replicate([1, 2, 3], 3, 8), /divisor/);
    const transform = LinearTransform.fromMatrix(params, [[1]]);
    assert.throws(
      () => transform.evaluateNew(context.evaluatorFor([]), context.encrypt([1], 0)),
      /level 0: expected level ≥ 1/,
    );
  });

  it('property: fromMatrix + apply equal the dense product in both layouts', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (r, c, s) => {
          let state = s;
          const next = () => {
            state = (Math.imul(state, 1103515245) + 12345) >>> 0;
            return state / 2 ** 32 - 0.5;
          };
          const rows = Array.from({ length: r }, () =>
            Array.from({ length: c }, () => (next() > 0.2 ? 0 : next())),
          );
          const x = Array.from({ length: c }, next);
          const product = matVec(rows, x);
          const padded = LinearTransform.fromMatrix(params, rows).apply(x);
          for (let i = 0; i < slots; i++) assert.ok(Math.abs(padded[i] - (i < r ? product[i] : 0)) < 1e-12);
          const replicated = LinearTransform.fromMatrix(params, rows, { layout: 'replicated' });
          const period = replicated.shape.kind === 'replicated' ? replicated.shape.period : 0;
          const out = replicated.apply(LinearTransform.replicate(x, period, slots));
          const expected = LinearTransform.replicate(product, period, slots);
          for (let i = 0; i < slots; i++) assert.ok(Math.abs(out[i] - expected[i]) < 1e-12);
        },
      ),
      { seed: 23, numRuns: 40 },
    );
  });
});

describe('LinearTransform: 64×64 at PN14QP438', () => {
  it('replicated 64×64: error against the plain product; hoisted and one-by-one baby steps agree', (t) => {
    const context = setup(PRESETS.PN14QP438);
    const { params } = context;
    const rows = context.randomMatrix(64, 64);
    const x = context.random(64);
    const transform = LinearTransform.fromMatrix(params, rows, { layout: 'replicated' });
    const needed = transform.rotationsNeeded();
    const evaluator = context.evaluatorFor(needed);
    const ct = context.encrypt(LinearTransform.replicate(x, 64, params.slots));
    const expected = LinearTransform.replicate(matVec(rows, x), 64, params.slots);
    const run = (hoisted: boolean) => {
      const start = performance.now();
      const out = transform.evaluateNew(evaluator, ct, { hoisted });
      const ms = performance.now() - start;
      evaluator.rescale(out, out);
      return { ms, values: context.decrypt(out) };
    };
    run(true); // encodes and caches the diagonals
    const hoisted = run(true);
    const oneByOne = run(false);
    const error = log2MaxError(hoisted.values, expected);
    t.diagnostic(
      `64×64, n1 = ${transform.babySteps}, ${needed.length} rotation keys: log2 max error ${error.toFixed(2)}; ` +
        `hoisted ${hoisted.ms.toFixed(0)} ms, one-by-one ${oneByOne.ms.toFixed(0)} ms`,
    );
    assert.equal(transform.babySteps, 8);
    assert.equal(needed.length, 14);
    assert.ok(error < -9, `error 2^${error}`);
    assert.ok(log2MaxError(oneByOne.values, expected) < -9);
    assert.deepEqual(
      [...evaluator.steps].sort((a, b) => a - b),
      needed,
    );
    transform.dispose();
  });
});
