import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ResourceError } from '../../util/errors.ts';
import { BufferPool } from './buffer-pool.ts';

test('slab buffers never overlap, never exceed the budget, and are reused without new allocations (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 5000 }), fc.nat()), { maxLength: 300 }),
      fc.boolean(),
      (ops, shared) => {
        const capacity = 40_000;
        const pool = new BufferPool(capacity, 'dram', { shared });
        const live: { buffer: Uint8Array; tag: number }[] = [];
        let tag = 0;
        for (const [acquire, bytes, pick] of ops) {
          if (acquire && pool.bytesInUse + bytes <= capacity) {
            const buffer = pool.acquire(bytes);
            assert.equal(buffer.byteLength, bytes);
            assert.equal(buffer.buffer instanceof SharedArrayBuffer, shared);
            tag = (tag + 1) & 0xff;
            buffer.fill(tag);
            live.push({ buffer, tag });
          } else if (live.length > 0) {
            const [{ buffer, tag: t }] = live.splice(pick % live.length, 1);
            // Another live buffer overlapping this one would have overwritten some of its bytes.
            assert.ok(buffer.every((b) => b === t));
            pool.release(buffer);
          }
          assert.ok(pool.bytesInUse <= capacity);
          assert.ok(pool.slabBytes <= capacity + 64);
        }
        for (const { buffer, tag: t } of live) assert.ok(buffer.every((b) => b === t));
      },
    ),
    { seed: 17, numRuns: 150 },
  );
});

test('a slab serves mixed sizes from one allocation; a request beyond the budget is refused', () => {
  const pool = new BufferPool(3 << 20, 'dram', { shared: true });
  for (let round = 0; round < 50; round++) {
    const a = pool.acquire(1 << 20);
    const b = pool.acquire(512 << 10);
    const c = pool.acquire(1310720);
    assert.equal(a.buffer, b.buffer, 'one slab');
    pool.release(b);
    pool.release(a);
    pool.release(c);
  }
  assert.equal(pool.fallbackAllocations, 0);
  assert.equal(pool.bytesInUse, 0);
  pool.acquire(3 << 20);
  assert.throws(() => pool.acquire(1), ResourceError);
  const shared = new BufferPool(1 << 20, 'arena', { shared: true });
  assert.ok(shared.acquire(1000).buffer instanceof SharedArrayBuffer);
});

test('an unlimited pool reuses buffers of equal size', () => {
  const pool = new BufferPool(Infinity, 'dram');
  const a = pool.acquire(4096);
  pool.release(a);
  assert.equal(pool.acquire(4096), a);
});
