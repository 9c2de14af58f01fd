import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { galoisElementForRotation } from '../ring/galois.ts';
import { Prng } from '../ring/prng.ts';
import { MismatchError } from '../util/errors.ts';
import { Evaluator } from './evaluator.ts';
import { EvaluationKeys, expandKeyUniform, GaloisKey, KeyGenerator } from './keys.ts';
import { Parameters } from './parameters.ts';
import {
  deserializeEvaluationKeys,
  deserializeGaloisKey,
  serializeEvaluationKeys,
  serializeGaloisKey,
} from './serialization/index.ts';
import { testContext } from '../../tests/support/ckks-context.ts';

// Depth 5, two Q primes per digit (3 digits at the top): a key for level 1 has 2 digits of 3 Q limbs + 2 P limbs.
const LITERAL = { logN: 12, depth: 5, specialPrimes: 2, insecure: true } as const;

function maxError(actual: ArrayLike<number>, expected: ArrayLike<number>, count: number): number {
  let worst = 0;
  for (let i = 0; i < count; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  return worst;
}

describe('Galois keys made for a level below the top', () => {
  const ctx = testContext(LITERAL);
  const { params, keygen, secretKey } = ctx;
  const g = galoisElementForRotation(3, params.logN);

  it('are the size of their level, rotate ciphertexts up to it, and refuse higher ones with a typed error', () => {
    const low = keygen.generateGaloisKey(secretKey, g, 1);
    assert.equal(low.key.level, 1);
    assert.equal(low.key.digits.length, params.keyDigitsAtLevel(1));
    assert.equal(low.key.byteLength, params.switchingKeyBytes(1));
    assert.ok(params.switchingKeyBytes(1) < params.switchingKeyBytes() / 2);
    const evaluator = new Evaluator(params, new EvaluationKeys(undefined, [low]));
    const values = ctx.uniform(params.slots, 7);
    const expected = Array.from({ length: params.slots }, (_, i) => values[(i + 3) % params.slots]);
    for (const level of [0, 1]) {
      const ct = ctx.encrypt(values, level);
      const rotated = evaluator.rotateNew(ct, 3);
      assert.ok(maxError(ctx.decrypt(rotated), expected, params.slots) < 2 ** -12, `level ${level}`);
      ct.dispose();
      rotated.dispose();
    }
    const high = ctx.encrypt(values, 2);
    assert.throws(() => evaluator.rotateNew(high, 3), MismatchError);
    high.dispose();
    low.key.dispose();
  });

  it('atLevel cuts a top-level key to the key its seed makes at that level, and it still rotates', () => {
    const top = keygen.generateGaloisKey(secretKey, g);
    const cut = top.key.atLevel(2);
    assert.equal(cut.level, 2);
    assert.equal(cut.byteLength, params.switchingKeyBytes(2));
    for (let j = 0; j < cut.digits.length; j++) {
      const a = expandKeyUniform(params, 2, cut.seed, j);
      assert.deepEqual(cut.digits[j].a.words(), a.words(), `digit ${j}: a_j expands from the seed`);
      a.dispose();
    }
    const evaluator = new Evaluator(params, new EvaluationKeys(undefined, [new GaloisKey(g, cut)]));
    const values = ctx.uniform(params.slots, 9);
    const expected = Array.from({ length: params.slots }, (_, i) => values[(i + 3) % params.slots]);
    const ct = ctx.encrypt(values, 2);
    const rotated = evaluator.rotateNew(ct, 3);
    assert.ok(maxError(ctx.decrypt(rotated), expected, params.slots) < 2 ** -12);
    assert.throws(() => top.key.atLevel(params.depth + 1), /level/);
    // At its own level: a copy the caller disposes, the key untouched.
    const same = top.key.atLevel(params.depth);
    assert.notEqual(same.digits[0].b.pointer, top.key.digits[0].b.pointer);
    assert.deepEqual(same.digits[0].a.words(), top.key.digits[0].a.words());
    same.dispose();
    assert.equal(top.key.digits[0].b.disposed, false);
    for (const x of [ct, rotated, cut, top.key]) x.dispose();
  });

  it('expandKeyUniform at every level is the top-level expansion restricted to Q_level ∪ P', () => {
    const seed = Uint8Array.from({ length: 32 }, (_, i) => 3 * i + 1);
    const n = params.n;
    const topLimbs = params.limbsAtLevel(params.depth);
    for (let j = 0; j < 2; j++) {
      const top = expandKeyUniform(params, params.depth, seed, j);
      const words = top.words();
      for (let level = 0; level < params.depth; level++) {
        const limbs = params.limbsAtLevel(level);
        const kept = [...Array(limbs).keys(), ...params.pPrimes.map((_, k) => topLimbs + k)];
        const expected = new Uint32Array(kept.length * n);
        kept.forEach((t, i) => {
          expected.set(words.subarray(t * n, (t + 1) * n), i * n);
        });
        const a = expandKeyUniform(params, level, seed, j);
        assert.deepEqual(a.words(), expected, `label ${j}, level ${level}`);
        a.dispose();
      }
      top.dispose();
    }
  });

  it('keyLevels makes each Galois key at its level; an element not asked for is refused', () => {
    const g1 = galoisElementForRotation(1, params.logN);
    const evk = keygen.generateEvaluationKeys(secretKey, {
      rotations: [1, 3],
      keyLevels: new Map([[g, 0]]),
    });
    assert.equal(evk.galois.get(g)!.key.level, 0);
    assert.equal(evk.galois.get(g1)!.key.level, params.depth);
    assert.equal(evk.relinearization!.level, params.depth);
    assert.throws(
      () => keygen.generateEvaluationKeys(secretKey, { rotations: [1], keyLevels: new Map([[g, 0]]) }),
      /Galois element .* not among the keys asked for/,
    );
    assert.throws(
      () => keygen.streamEvaluationKeys(secretKey, { rotations: [3], keyLevels: new Map([[g, 9]]) }),
      /level/,
    );
    const stream = keygen.streamEvaluationKeys(secretKey, { rotations: [3], keyLevels: new Map([[g, 1]]) });
    const made = stream.make(g);
    assert.equal(made.level, 1);
    made.dispose();
    evk.relinearization!.dispose();
    for (const k of evk.galois.values()) k.key.dispose();
  });

  it('serialize and deserialize at their level, alone and in a set of mixed levels, plain and seeded', () => {
    const keygen2 = new KeyGenerator(params, Prng.fromSeed(new Uint8Array(32).fill(4)));
    const evk = keygen2.generateEvaluationKeys(secretKey, {
      rotations: [1, 2, 3],
      keyLevels: new Map([
        [g, 0],
        [galoisElementForRotation(2, params.logN), 3],
      ]),
    });
    for (const seeded of [false, true]) {
      const one = evk.galois.get(g)!;
      const back = deserializeGaloisKey(params, serializeGaloisKey(one, { seeded }));
      assert.equal(back.key.level, 0);
      for (let j = 0; j < one.key.digits.length; j++) {
        assert.deepEqual(back.key.digits[j].b.words(), one.key.digits[j].b.words());
        assert.deepEqual(back.key.digits[j].a.words(), one.key.digits[j].a.words());
      }
      back.key.dispose();
      const bytes = serializeEvaluationKeys(evk, { seeded });
      const set = deserializeEvaluationKeys(params, bytes);
      for (const [element, key] of evk.galois) {
        const got = set.galois.get(element)!.key;
        assert.equal(got.level, key.key.level);
        assert.deepEqual(got.digits.at(-1)!.a.words(), key.key.digits.at(-1)!.a.words());
      }
      assert.equal(set.relinearization!.level, params.depth);
      set.relinearization!.dispose();
      for (const k of set.galois.values()) k.key.dispose();
    }
    evk.relinearization!.dispose();
    for (const k of evk.galois.values()) k.key.dispose();
  });
});

describe('Parameters.switchingKeyBytes', () => {
  it('is the top-level key size by default and shrinks with the level', () => {
    const params = Parameters.create(LITERAL);
    assert.equal(params.switchingKeyBytes(), params.digits * 2 * (params.qPrimes.length + 2) * params.n * 4);
    const limbs = params.limbsAtLevel(0);
    assert.equal(params.switchingKeyBytes(0), Math.ceil(limbs / 2) * 2 * (limbs + 2) * params.n * 4);
  });
});
