import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runTierBench, type TierBenchRecord } from './tier-synthetic.ts';
import { FileTier } from '../src/runtime/store/file-tier.ts';

test('bench tier prints one JSON line per run, on the virtual clock and with real files, all verified', async () => {
  const lines: string[] = [];
  const records = await runTierBench({
    quick: true,
    workloads: ['interleaved'],
    out: (line) => lines.push(line),
  });
  assert.equal(lines.length, records.length);
  // 2 virtual profiles × 2 policies + 2 real profiles × 2 policies.
  assert.equal(records.length, 8);
  for (const line of lines) {
    const r = JSON.parse(line) as TierBenchRecord;
    assert.equal(r.suite, 'tier');
    assert.ok(r.policy === 'home' || r.policy === 'lru');
    assert.ok(['optane-appdirect', 'nvme-gen4', 'file'].includes(r.profile));
    assert.ok(
      r.dram_budget_bytes <= r.peak_footprint_bytes / 8 + 1 || r.dram_budget_bytes < r.peak_footprint_bytes,
    );
    assert.equal(r.correct, true, `${r.mode} ${r.profile} ${r.policy}: ${r.error ?? ''}`);
    assert.ok(
      r.seconds !== null && r.seconds > 0 && r.ratio_vs_unlimited !== null && r.ratio_vs_unlimited > 0,
    );
    assert.ok(r.bytes_read_slow > 0, 'the budget forces slow-tier traffic');
  }
  // Per profile, HomE moves no more bytes through the slow tier than LRU.
  for (const mode of ['virtual', 'real']) {
    const home = records.filter((r) => r.mode === mode && r.policy === 'home');
    const lru = records.filter((r) => r.mode === mode && r.policy === 'lru');
    for (const [i, h] of home.entries()) {
      assert.ok(
        h.bytes_read_slow + h.bytes_written_slow <= lru[i].bytes_read_slow + lru[i].bytes_written_slow,
      );
    }
  }
});

test('bench tier reports correct: false when operands arrive with other bytes than were written', async () => {
  const read = FileTier.prototype.read;
  let reads = 0;
  // A bug after verification (say, a buffer handed to compute too early) corrupts every 20th loaded object.
  FileTier.prototype.read = async function (this: FileTier, id: string, into: Uint8Array) {
    await read.call(this, id, into);
    if (++reads % 20 === 0) into.fill(7, 8, into.length - 8);
  };
  try {
    const records = await runTierBench({
      quick: true,
      modes: ['real'],
      workloads: ['interleaved'],
      out: () => {},
    });
    assert.ok(records.length > 0);
    assert.ok(
      records.some((r) => !r.correct && /got other bytes|reads back with content hash/.test(r.error ?? '')),
    );
  } finally {
    FileTier.prototype.read = read;
  }
});
