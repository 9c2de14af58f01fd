import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BusyIntervals } from './busy-intervals.ts';

/** Union length of closed intervals, the slow obvious way (sort, merge). */
function unionLength(intervals: [number, number][]): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of sorted) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

test('busy time is the union of intervals reported out of order, with transfers overlapping', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 20 })), {
        maxLength: 600,
      }),
      fc.integer({ min: 1, max: 16 }),
      (transfers, concurrency) => {
        // Transfers are issued in order at clock `issue`, run [issue + delay, issue + delay + length], and complete
        // up to `concurrency` at a time in reverse order, so reports arrive out of order.
        let clock = 0;
        const busy = new BusyIntervals(() => clock);
        const all: [number, number][] = [];
        let pending: { token: number; interval: { startMs: number; endMs: number } }[] = [];
        const complete = () => {
          for (const p of pending.reverse()) busy.end(p.token, p.interval);
          pending = [];
        };
        for (const [delay, length] of transfers) {
          clock += 1;
          const token = busy.begin();
          const interval = { startMs: clock + delay, endMs: clock + delay + length };
          all.push([interval.startMs, interval.endMs]);
          pending.push({ token, interval });
          if (pending.length >= concurrency) {
            clock = Math.max(clock, ...pending.map((p) => p.interval.endMs));
            complete();
          }
        }
        complete();
        assert.equal(busy.busyNs, unionLength(all) * 1e6);
      },
    ),
    { seed: 20261124, numRuns: 200 },
  );
});

test('a long-lived owner keeps only the intervals of transfers in flight', () => {
  let clock = 0;
  const busy = new BusyIntervals(() => clock);
  // 100,000 sequential transfers with gaps between them (the worst case for merging).
  for (let i = 0; i < 100_000; i++) {
    const token = busy.begin();
    busy.end(token, { startMs: clock + 1, endMs: clock + 2 });
    clock += 3;
  }
  assert.ok(busy.retained <= 256, `${busy.retained} intervals retained`);
  assert.equal(busy.busyNs, 100_000 * 1e6);
  assert.equal(busy.retained, 0);
});

test('a failed transfer reports no interval and no longer holds back folding', () => {
  let clock = 10;
  const busy = new BusyIntervals(() => clock);
  const failed = busy.begin();
  const ok = busy.begin();
  clock = 20;
  busy.end(ok, { startMs: 11, endMs: 19 });
  busy.end(failed);
  assert.equal(busy.busyNs, 8e6);
  assert.equal(busy.retained, 0);
});
