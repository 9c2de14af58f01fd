import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../util/errors.ts';
import { Encoder } from './encoder.ts';
import { Parameters, PRESETS } from './parameters.ts';
import { precisionStats } from './precision.ts';

describe('Encoder', () => {
  const params = Parameters.create(PRESETS.PN14QP438);
  const encoder = new Encoder(params);

  it('round-trips real slots at every level with error far below the noise', () => {
    const values = Float64Array.from({ length: params.slots }, (_, i) => Math.sin(i * 0.37));
    for (const level of [params.depth, 3, 0]) {
      const stats = precisionStats(values, encoder.decode(encoder.encodeNew(values, level)));
      assert.ok(stats.log2MaxError < -20, `level ${level}: 2^${stats.log2MaxError}`);
    }
  });

  it('round-trips complex slots', () => {
    const re = Float64Array.from({ length: 64 }, (_, i) => Math.cos(i));
    const im = Float64Array.from({ length: 64 }, (_, i) => -Math.sin(i / 3));
    const out = encoder.decodeComplex(encoder.encodeNew({ re, im }));
    assert.ok(precisionStats(re, out.re, 64).log2MaxError < -20);
    assert.ok(precisionStats(im, out.im, 64).log2MaxError < -20);
    for (let i = 64; i < 128; i++) assert.ok(Math.abs(out.re[i]) < 1e-5 && Math.abs(out.im[i]) < 1e-5);
  });

  it('is exact beyond 2^53: a 2^60 scale keeps 2^-45 precision', () => {
    const wide = Parameters.create(PRESETS.PN14QP438S60);
    const wideEncoder = new Encoder(wide);
    const values = Float64Array.from({ length: wide.slots }, (_, i) => Math.cos(i * 0.11));
    const stats = precisionStats(values, wideEncoder.decode(wideEncoder.encodeNew(values)));
    assert.ok(stats.log2MaxError < -45, `2^${stats.log2MaxError}`);
  });

  it('composes values that need every limb (the exact CRT fallback)', () => {
    // values·scale ≈ 2^120 exceed the first limbs' product, so the fast candidate fails and all limbs are used.
    // Float64 FFT rounding bounds the absolute error by ≈ 2^-50 · max|value| in every slot.
    const values = [2 ** 90, -(2 ** 89), 12345.5, -1];
    const pt = encoder.encodeNew(values, params.depth);
    const out = encoder.decode(pt);
    for (let i = 0; i < values.length; i++) {
      assert.ok(Math.abs(out[i] - values[i]) <= 2 ** 90 * 2 ** -44, `slot ${i}: ${out[i]}`);
    }
    assert.ok(Math.abs(out[0] / values[0] - 1) < 2 ** -44);
  });

  it('decodes the linear combination of encodings (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 32 }),
        fc.double({ min: -1, max: 1, noNaN: true }),
        (values, shift) => {
          const out = encoder.decode(encoder.encodeNew(values.map((v) => v + shift)));
          values.forEach((v, i) => {
            assert.ok(Math.abs(out[i] - (v + shift)) < 2 ** -18);
          });
        },
      ),
      { numRuns: 20, seed: 42 },
    );
  });

  it('rejects NaN, ±Infinity, too many slots and values too large for the modulus, naming them', () => {
    const reject = (values: unknown, pattern: RegExp, level = params.depth) =>
      assert.throws(
        () => encoder.encodeNew(values as number[], level),
        (e: unknown) => e instanceof InvalidArgumentError && pattern.test(e.message),
        String(pattern),
      );
    reject([1, Number.NaN], /values\[1\] = NaN: expected a finite number/);
    reject([Number.POSITIVE_INFINITY], /values\[0\] = Infinity/);
    reject({ re: [1], im: [Number.NEGATIVE_INFINITY] }, /values.im\[0\] = -Infinity/);
    reject(new Float64Array(params.slots + 1), /values.length = 8193: expected at most 8192 slots/);
    reject(
      new Float64Array(params.slots).fill(2 ** 40),
      /values × scale reach 2\^.*half the modulus at level 0/,
      0,
    );
    reject('abc', /expected an array of numbers/);
  });
});
