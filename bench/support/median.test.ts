import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { median } from './median.ts';

describe('median', () => {
  it('takes the middle value, or the mean of the two middle values', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([7]), 7);
  });
  it('rejects an empty list', () => {
    assert.throws(() => median([]), /expected at least one value/);
  });
  it('has as many values at or below it as at or above it, and does not reorder its input', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 40 }),
        (values) => {
          const copy = [...values];
          const m = median(values);
          assert.deepEqual(values, copy);
          assert.ok(values.filter((v) => v <= m).length >= values.length / 2);
          assert.ok(values.filter((v) => v >= m).length >= values.length / 2);
        },
      ),
    );
  });
});
