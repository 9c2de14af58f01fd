import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ManyModelsRecord, runManyModelsBench } from './tier-models.ts';

describe('home bench tier --models', () => {
  it('serves requests to several models with their own keys under a budget below their footprint, outputs identical to all-in-memory', async () => {
    const lines: string[] = [];
    const records = await runManyModelsBench({
      models: 4,
      requests: 8,
      budgetBytes: 16 * 2 ** 20,
      rounds: 2,
      out: (line) => lines.push(line),
    });
    assert.deepEqual(
      records.map((r) => [r.policy, r.group_window]),
      [
        ['home', 16],
        ['home', 1],
        ['lru', 16],
      ],
    );
    assert.deepEqual(
      lines.map((l) => JSON.parse(l) as ManyModelsRecord),
      records,
    );
    for (const r of records) {
      assert.equal(r.correct, true, `${r.policy}/${r.group_window}`);
      assert.equal(r.models, 4);
      assert.equal(r.requests, 8);
      assert.equal(r.rounds, 2);
      // The budget forces the slow tier: the models' keys and the requests' inputs do not all fit.
      assert.ok(
        r.peak_footprint_bytes > r.dram_budget_bytes,
        `${r.peak_footprint_bytes} > ${r.dram_budget_bytes}`,
      );
      assert.ok(r.bytes_read_slow > 0);
      assert.ok(r.unlimited_seconds > 0 && r.seconds > 0);
    }
    // Grouping a model's requests loads its keys once per window instead of once per request.
    const [grouped, arrival] = records;
    assert.ok(
      grouped.key_bytes_read_slow <= arrival.key_bytes_read_slow,
      `${grouped.key_bytes_read_slow} <= ${arrival.key_bytes_read_slow}`,
    );
  });
});
