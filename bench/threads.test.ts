import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runThreadsBench } from './threads.ts';

// A correctness test of the harness (each line says what it measured, with the same bits on both sides), not a
// timing assertion.
test('bench threads: the NTT workload prints one parseable line, the same bits on 1 and 2 threads', async () => {
  const lines: string[] = [];
  const records = await runThreadsBench({
    threads: 2,
    reps: 1,
    workloads: ['ntt'],
    write: (line) => lines.push(line),
    progress: () => {},
  });
  assert.equal(records.length, 1);
  assert.deepEqual(JSON.parse(lines[0]), JSON.parse(JSON.stringify(records[0])));
  const [record] = records;
  assert.equal(record.suite, 'threads');
  assert.equal(record.workload, 'ntt-logN16');
  assert.equal(record.threads, 2);
  assert.equal(record.identical, true);
  assert.ok(record.seconds_1 > 0 && record.seconds_n > 0);
  assert.ok(
    Math.abs(record.speedup - record.seconds_1 / record.seconds_n) < 0.01,
    'speed-up = seconds_1 / seconds_n',
  );
});

test('bench threads refuses a thread count below 2 or a bad repetition count', async () => {
  await assert.rejects(runThreadsBench({ threads: 1, workloads: [] }), /threads/);
  await assert.rejects(runThreadsBench({ threads: 2, reps: 0, workloads: [] }), /reps/);
});
