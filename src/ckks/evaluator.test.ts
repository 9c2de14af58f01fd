import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError, MismatchError, MissingKeyError } from '../util/errors.ts';
import { Evaluator } from './evaluator.ts';
import type { Ciphertext } from './objects.ts';
import { PRESETS } from './parameters.ts';
import { precisionStats } from './precision.ts';
import { testContext } from '../../tests/support/ckks-context.ts';

/** Precision targets (issue "CKKS engine", §4): logN 14, one prime per level ≤ 2^-14; two per level ≤ 2^-30. */
const cases = [
  { name: 'PN14QP438 (scale ≈ 2^30)', literal: PRESETS.PN14QP438, mulTarget: -14 },
  { name: 'PN14QP438S60 (scale ≈ 2^60)', literal: PRESETS.PN14QP438S60, mulTarget: -30 },
];

for (const { name, literal, mulTarget } of cases) {
  describe(`precision per operation, ${name}`, () => {
    const ctx = testContext(literal, { rotations: [1, 2, 4, 7, -3], conjugation: true });
    const { evaluator: ev, params } = ctx;
    const s = params.slots;
    const a = ctx.uniform(s, 1);
    const b = ctx.uniform(s, 2);
    const ca = ctx.encryptPublic(a);
    const cb = ctx.encryptPublic(b);
    const report: Record<string, string> = {};
    const measure = (op: string, got: Float64Array, expected: (i: number) => number) => {
      const stats = precisionStats(
        Float64Array.from({ length: s }, (_, i) => expected(i)),
        got,
      );
      report[op] = `max 2^${stats.log2MaxError.toFixed(2)} mean 2^${stats.log2MeanError.toFixed(2)}`;
      return stats.log2MaxError;
    };

    it(`multiply + relinearize + rescale ≤ 2^${mulTarget}`, () => {
      const product = ev.mulRelinNew(ca, cb);
      ev.rescale(product, product);
      assert.equal(product.level, params.depth - 1);
      assert.ok(
        measure('mul_relin_rescale', ctx.decrypt(product), (i) => a[i] * b[i]) <= mulTarget,
        report.mul_relin_rescale,
      );
    });

    it(`rotations, conjugation and hoisted rotations stay within 2 bits of ${mulTarget}`, () => {
      for (const steps of [1, 7, -3]) {
        const rotated = ev.rotateNew(ca, steps);
        const e = measure(`rotate_${steps}`, ctx.decrypt(rotated), (i) => a[(((i + steps) % s) + s) % s]);
        assert.ok(e <= mulTarget + 2, `${steps}: ${report[`rotate_${steps}`]}`);
      }
      const hoisted = ev.rotateHoistedNew(ca, [1, 7, -3, 0]);
      for (const steps of [1, 7, -3, 0]) {
        const e = measure(
          `hoisted_${steps}`,
          ctx.decrypt(hoisted.get(steps)!),
          (i) => a[(((i + steps) % s) + s) % s],
        );
        assert.ok(e <= mulTarget + 2, report[`hoisted_${steps}`]);
      }
      const conjugated = ev.conjugateNew(ca);
      assert.ok(
        measure('conjugate', ctx.decrypt(conjugated), (i) => a[i]) <= mulTarget + 2,
        report.conjugate,
      );
    });

    it('add, sub, neg, constants, integers, plaintexts', () => {
      const limit = mulTarget;
      assert.ok(measure('add', ctx.decrypt(ev.addNew(ca, cb)), (i) => a[i] + b[i]) <= limit);
      assert.ok(measure('sub', ctx.decrypt(ev.subNew(ca, cb)), (i) => a[i] - b[i]) <= limit);
      assert.ok(measure('neg', ctx.decrypt(ev.negNew(ca)), (i) => -a[i]) <= limit);
      assert.ok(measure('add_const', ctx.decrypt(ev.addNew(ca, 0.75)), (i) => a[i] + 0.75) <= limit);
      assert.ok(measure('sub_const', ctx.decrypt(ev.subNew(ca, -0.5)), (i) => a[i] + 0.5) <= limit);
      assert.ok(measure('mul_int', ctx.decrypt(ev.mulIntNew(ca, -3)), (i) => -3 * a[i]) <= limit + 2);
      const byConstant = ev.mulNew(ca, 0.3);
      ev.rescale(byConstant, byConstant);
      assert.ok(measure('mul_const', ctx.decrypt(byConstant), (i) => 0.3 * a[i]) <= limit);
      const pt = ctx.encoder.encodeNew(b);
      const byPlain = ev.mulNew(ca, pt);
      ev.rescale(byPlain, byPlain);
      assert.ok(measure('mul_plain', ctx.decrypt(byPlain), (i) => a[i] * b[i]) <= limit);
      assert.ok(measure('add_plain', ctx.decrypt(ev.addNew(ca, pt)), (i) => a[i] + b[i]) <= limit);
      const combination = ev.mulNew(ca, 0.5);
      ev.mulThenAdd(cb, -0.25, combination);
      ev.rescale(combination, combination);
      assert.ok(measure('mul_then_add', ctx.decrypt(combination), (i) => 0.5 * a[i] - 0.25 * b[i]) <= limit);
      // A block of two rows: the same words as mulNew and mulThenAdd, row by row.
      const [row0, row1] = ev.mulMatrixNew([ca, cb], Float64Array.of(0.5, -0.25, 0.125, 0.75));
      const second = ev.mulNew(ca, 0.125);
      ev.mulThenAdd(cb, 0.75, second);
      const first = ev.mulNew(ca, 0.5);
      ev.mulThenAdd(cb, -0.25, first);
      for (const [got, want] of [
        [row0, first],
        [row1, second],
      ]) {
        assert.equal(got.scale, want.scale);
        assert.equal(got.level, want.level);
        got.polys.forEach((p, d) => {
          for (let l = 0; l < p.limbCount; l++)
            assert.deepEqual(p.limb(l), want.polys[d].limb(l), `limb ${l}`);
        });
      }
      // A plaintext product added in place: the same words as mulNew and addNew.
      const inPlace = ev.mulNew(cb, pt);
      ev.mulThenAdd(ca, pt, inPlace);
      const separate = ev.addNew(ev.mulNew(cb, pt), ev.mulNew(ca, pt));
      inPlace.polys.forEach((p, d) => {
        for (let l = 0; l < p.limbCount; l++)
          assert.deepEqual(p.limb(l), separate.polys[d].limb(l), `limb ${l}`);
      });
      ev.rescale(row1, row1);
      assert.ok(measure('mul_matrix', ctx.decrypt(row1), (i) => 0.125 * a[i] + 0.75 * b[i]) <= limit);
      const summed = ev.innerSumNew(ca, 1, 5);
      assert.ok(
        measure('inner_sum_5', ctx.decrypt(summed), (i) =>
          [0, 1, 2, 3, 4].reduce((t, k) => t + a[(i + k) % s], 0),
        ) <=
          limit + 4,
      );
    });

    it('a chain of squarings down the levels keeps its precision', () => {
      let x: Ciphertext = ctx.encrypt(a);
      const depth = Math.min(params.depth, 4);
      for (let l = 0; l < depth; l++) {
        ev.mulRelin(x, x, x);
        ev.rescale(x, x);
      }
      assert.equal(x.level, params.depth - depth);
      assert.ok(
        measure(`x^${2 ** depth}`, ctx.decrypt(x), (i) => a[i] ** (2 ** depth)) <= mulTarget + 2,
        report[`x^${2 ** depth}`],
      );
      // matchLevelAndScale brings another ciphertext to x's level and scale so they add.
      const aligned = ev.matchLevelAndScaleNew(ctx.encrypt(b), x.level, x.scale);
      x = ev.addNew(x, aligned);
      assert.ok(measure('aligned_add', ctx.decrypt(x), (i) => a[i] ** (2 ** depth) + b[i]) <= mulTarget + 2);
      console.log(`# precision ${name}: ${JSON.stringify(report)}`);
    });
  });
}

describe('homomorphic identities (property tests, logN 13)', () => {
  const ctx = testContext(PRESETS.PN13QP218, { rotations: [1, 2, 3] });
  const { evaluator: ev } = ctx;
  const vector = fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 16 });
  const close = (got: Float64Array, expected: number[], tolerance: number) =>
    expected.forEach((v, i) => {
      assert.ok(Math.abs(got[i] - v) < tolerance, `slot ${i}: ${got[i]} vs ${v}`);
    });

  it('decrypt(op(enc a, enc b)) ≈ op(a, b) for add, sub, mul, rotate, constants', () => {
    fc.assert(
      fc.property(
        vector,
        vector,
        fc.integer({ min: 1, max: 3 }),
        fc.double({ min: -2, max: 2, noNaN: true }),
        (x, y, k, c) => {
          const n = Math.min(x.length, y.length);
          const [xs, ys] = [x.slice(0, n), y.slice(0, n)];
          const cx = ctx.encrypt(xs);
          const cy = ctx.encrypt(ys);
          close(
            ctx.decrypt(ev.addNew(cx, cy)),
            xs.map((v, i) => v + ys[i]),
            2 ** -14,
          );
          close(
            ctx.decrypt(ev.subNew(cx, cy)),
            xs.map((v, i) => v - ys[i]),
            2 ** -14,
          );
          const product = ev.mulRelinNew(cx, cy);
          ev.rescale(product, product);
          close(
            ctx.decrypt(product),
            xs.map((v, i) => v * ys[i]),
            2 ** -12,
          );
          const scaled = ev.mulNew(cx, c);
          ev.rescale(scaled, scaled);
          close(
            ctx.decrypt(scaled),
            xs.map((v) => v * c),
            2 ** -12,
          );
          close(
            ctx.decrypt(ev.addNew(cx, c)),
            xs.map((v) => v + c),
            2 ** -14,
          );
          const rotated = ctx.decrypt(ev.rotateNew(cx, k));
          const full = [...xs, ...new Array(ctx.params.slots - n).fill(0)];
          close(
            rotated,
            full.slice(k, k + 8).concat(full.slice(0, Math.max(0, k + 8 - full.length))),
            2 ** -10,
          );
          for (const ct of [cx, cy, product, scaled]) ct.dispose();
        },
      ),
      { numRuns: 12, seed: 7 },
    );
  });
});

describe('evaluator checks', () => {
  const ctx = testContext(PRESETS.PN13QP218, { rotations: [1] });
  const { evaluator: ev } = ctx;
  const ct = ctx.encrypt([0.5, 0.25]);

  it('names both scales when they differ', () => {
    const product = ev.mulRelinNew(ct, ct);
    assert.throws(
      () => ev.addNew(product, ct),
      (e: unknown) =>
        e instanceof MismatchError && /scales differ: left 2\^59\.\d+.*right 2\^29\.\d+/.test(e.message),
    );
  });

  it('names a missing rotation key and a missing relinearization key', () => {
    assert.throws(
      () => ev.rotateNew(ct, 2),
      (e: unknown) => e instanceof MissingKeyError && /rotation by 2 \(Galois element 25\)/.test(e.message),
    );
    const bare = new Evaluator(ctx.params);
    assert.throws(() => bare.relinearizeNew(ev.mulNew(ct, ct)), MissingKeyError);
  });

  it('rejects rescale at level 0, degree-2 rotation and foreign parameters', () => {
    const bottom = ev.dropLevelNew(ct, 0);
    assert.throws(() => ev.rescaleNew(bottom), /level 0/);
    assert.throws(() => ev.rotateNew(ev.mulNew(ct, ct), 1), /degree 2/);
    const other = testContext(PRESETS.PN14QP438);
    assert.throws(
      () => ev.addNew(ct, other.encrypt([1])),
      (e: unknown) => e instanceof MismatchError && e.message.includes(other.params.id),
    );
  });

  it('mulMatrixNew: names a weight count that is not a multiple of the operands, and mixed operands', () => {
    assert.throws(
      () => ev.mulMatrixNew([ct, ct], Float64Array.of(1, 2, 3)),
      (e: unknown) => e instanceof InvalidArgumentError && /3 weights for 2 operands/.test(e.message),
    );
    assert.throws(() => ev.mulMatrixNew([], Float64Array.of(1)), InvalidArgumentError);
    assert.throws(
      () => ev.mulMatrixNew([ct, ev.dropLevelNew(ct, 0)], Float64Array.of(1, 2)),
      (e: unknown) => e instanceof MismatchError && /expected one level and degree/.test(e.message),
    );
    assert.throws(
      () => ev.mulMatrixNew([ct, ev.mulRelinNew(ct, ct)], Float64Array.of(1, 2)),
      (e: unknown) => e instanceof MismatchError && /scales differ/.test(e.message),
    );
    assert.throws(() => ev.mulMatrixNew([ct], Float64Array.of(Number.NaN)), InvalidArgumentError);
  });

  it('lists the rotations innerSum needs', () => {
    assert.deepEqual(
      Evaluator.innerSumRotations(1, 8).sort((x, y) => x - y),
      [1, 2, 4],
    );
    assert.deepEqual(
      Evaluator.innerSumRotations(4, 5).sort((x, y) => x - y),
      [4, 8],
    );
  });
});
