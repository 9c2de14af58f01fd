import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KernelContext } from '../ring/context.ts';
import { MismatchError } from '../util/errors.ts';
import { Evaluator } from './evaluator.ts';
import { Parameters, PRESETS } from './parameters.ts';
import { serializeCiphertext } from './serialization/index.ts';
import { testContext } from '../../tests/support/ckks-context.ts';

/**
 * Two kernel contexts in one process (two tenants, two models): each holds its own memory and allocator, the same
 * literal gives parameters with the same id but separate instances, and work interleaved between them gives the
 * same results as each alone.
 */
describe('CKKS in two kernel contexts', () => {
  const tenantA = KernelContext.create();
  const tenantB = KernelContext.create();
  const a = testContext(PRESETS.PN13QP218, { rotations: [1] }, 7, tenantA);
  const b = testContext(PRESETS.PN13QP218, { rotations: [1] }, 7, tenantB);

  it('equal literals give one instance per context, with one id', () => {
    assert.notEqual(a.params, b.params);
    assert.equal(a.params.id, b.params.id);
    assert.equal(a.params.context, tenantA);
    assert.equal(Parameters.create(PRESETS.PN13QP218, { context: tenantA }), a.params);
  });

  it('interleaved work in both contexts is correct and bit-identical to each other', () => {
    const values = a.uniform(a.params.slots, 3);
    const x = a.encrypt(values);
    const y = b.encrypt(values);
    const aBefore = tenantA.allocator.bytesInUse;
    const bBefore = tenantB.allocator.bytesInUse;
    const xx = a.evaluator.mulRelinNew(x, x);
    assert.equal(tenantB.allocator.bytesInUse, bBefore, 'work in A allocates nothing in B');
    const yy = b.evaluator.mulRelinNew(y, y);
    a.evaluator.rescale(xx, xx);
    b.evaluator.rescale(yy, yy);
    const xr = a.evaluator.rotateNew(xx, 1);
    const yr = b.evaluator.rotateNew(yy, 1);
    assert.deepEqual(serializeCiphertext(xr), serializeCiphertext(yr), 'same seeds, same bytes');
    const out = a.decrypt(xr);
    const n = a.params.slots;
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(out[i] - values[(i + 1) % n] ** 2));
    assert.ok(worst < 2 ** -10, `error ${worst}`);
    assert.ok(tenantA.allocator.bytesInUse > aBefore);
    const aHeld = tenantA.allocator.bytesInUse;
    const bHeld = tenantB.allocator.bytesInUse;
    for (const ct of [xx, xr]) ct.dispose();
    assert.equal(tenantA.allocator.bytesInUse, aHeld - xx.byteLength - xr.byteLength, 'A freed into its own');
    assert.equal(tenantB.allocator.bytesInUse, bHeld, 'and nothing into B');
    for (const ct of [yy, yr]) ct.dispose();
    assert.equal(tenantB.allocator.bytesInUse, bHeld - yy.byteLength - yr.byteLength);
  });

  it('an object of one context is refused by the other, naming both', () => {
    const x = a.encrypt([0.5]);
    assert.throws(() => b.evaluator.addNew(x, x), MismatchError);
    assert.throws(() => b.evaluator.addNew(x, x), /kernel context/);
    assert.throws(() => new Evaluator(b.params, a.evaluationKeys), /kernel context/);
    assert.throws(() => b.decrypt(x), MismatchError);
  });
});
