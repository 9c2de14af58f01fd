import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEVICE_PROFILES } from '../store/devices.ts';
import { type Action, replayActions, Timeline } from './timeline.ts';

function action(seq: number, fields: Partial<Action>): Action {
  return {
    seq,
    step: 0,
    kind: 'decision',
    bytes: 0,
    deps: [],
    prefetch: false,
    computeNs: 0,
    startNs: 0,
    endNs: 0,
    ...fields,
  };
}

test('the virtual clock overlaps a prefetch with compute and is deterministic under replay', () => {
  const devices = { disk: { ...DEVICE_PROFILES['nvme-gen4'], readBytesPerNs: 1, readLatencyNs: 0 } };
  const log = [
    action(0, { kind: 'decision' }),
    action(1, { kind: 'load', channel: 'disk', bytes: 100, deps: [0] }),
    action(2, { kind: 'compute', computeNs: 50, deps: [1] }),
    action(3, { kind: 'decision', deps: [2] }),
    // Prefetch for step 2 issued at step 0's decision, overlapping both computes.
    action(4, { kind: 'load', channel: 'disk', bytes: 120, deps: [0], prefetch: true }),
    action(5, { kind: 'compute', computeNs: 500, deps: [3] }),
    action(6, { kind: 'decision', deps: [5] }),
    action(7, { kind: 'compute', computeNs: 10, deps: [6, 4] }),
  ];
  const timeline = new Timeline({ devices });
  for (const a of log) timeline.add(a);
  assert.equal(log[2].startNs, 100);
  assert.equal(log[4].endNs, 220, 'queued behind the first load');
  assert.equal(log[5].startNs, 150);
  assert.equal(log[7].startNs, 650, 'no stall: the prefetch finished during compute');
  assert.equal(timeline.makespanNs, 660);
  const again = replayActions(log, { devices });
  assert.deepEqual(
    [...again],
    log.map((a) => a.endNs),
  );
  const faster = replayActions(log, { devices, computeScale: 0.01 });
  assert.equal(faster[7], 220 + 0.1, 'with compute 100× faster the last step waits for the prefetch');
});
