import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError, ResourceError } from '../../util/errors.ts';
import { randomProgram } from '../../../bench/workloads/synthetic.ts';
import { DEVICE_PROFILES } from '../store/devices.ts';
import { VirtualTier } from '../store/virtual-tier.ts';
import { PlanLedger } from './ledger.ts';
import { planProgram } from './planner.ts';
import { HomePolicy, LruPolicy } from './policy.ts';
import { analyzeProgram } from './program.ts';

test('plans keep their budgets over random programs, budgets and policies (property)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 100_000 }),
      fc.integer({ min: 0, max: 20_000 }),
      fc.constantFrom('lru', 'home'),
      (seed, extra, policyName) => {
        const program = randomProgram(seed, { steps: 60, maxBytes: 5000 });
        const analysis = analyzeProgram(program);
        const budget = analysis.maxStepBytes + extra;
        const arenaBytes = analysis.maxStepBytes + (extra >> 2);
        const plan = planProgram(program, {
          policy: policyName === 'lru' ? new LruPolicy() : new HomePolicy(),
          dramBudgetBytes: budget,
          arenaBytes,
          tiers: [new VirtualTier('pmem', DEVICE_PROFILES['optane-appdirect'])],
        });
        assert.ok(plan.run.summary.peakBytes.dram <= budget);
        assert.ok(plan.run.summary.peakBytes.arena <= arenaBytes);
      },
    ),
    { seed: 99, numRuns: 200 },
  );
});

test('the ledger refuses to lose data or overfill a level', () => {
  const ledger = new PlanLedger({
    dramBudgetBytes: 1000,
    slowTiers: [new VirtualTier('pmem', DEVICE_PROFILES['optane-appdirect'])],
  });
  ledger.register({ id: 'a', bytes: 600, kind: 'intermediate', readOnly: false });
  ledger.register({ id: 'b', bytes: 600, kind: 'intermediate', readOnly: false });
  const d = ledger.decision(0, []);
  ledger.allocate('a', 'dram', 0, d);
  assert.throws(
    () => ledger.allocate('b', 'dram', 0, d),
    (e: unknown) => e instanceof ResourceError && /budget of 1000/.test(e.message),
  );
  assert.throws(() => ledger.evict('a', 0, d, false), InvalidArgumentError);
  ledger.evict('a', 0, d, true);
  assert.equal(ledger.state('a').slowTier, 0);
  assert.equal(ledger.used('dram'), 0);
  assert.deepEqual(ledger.traffic().pmem, { read: 0, written: 600 });
  ledger.allocate('b', 'dram', 0, d);
  assert.throws(() => ledger.load('a', 'dram', 1, ledger.decision(1, []), false), /would use 1200 bytes/);
  ledger.evict('b', 1, d, true);
  ledger.load('a', 'dram', 1, d, false);
  assert.deepEqual(ledger.traffic().pmem, { read: 600, written: 1200 });
  assert.equal(ledger.peak('dram'), 600);
});

test('a stale slow copy is deleted by the plan, with its overhead, and a write-back reusing its room waits for the delete', () => {
  // Room for one copy of 600 bytes plus its 100-byte overhead.
  const tier = {
    name: 'disk',
    device: DEVICE_PROFILES['nvme-gen4'],
    capacityBytes: 700,
    objectOverheadBytes: 100,
  };
  const ledger = new PlanLedger({ dramBudgetBytes: 1200, slowTiers: [tier] });
  ledger.register({ id: 'x', bytes: 600, kind: 'ciphertext', readOnly: false });
  ledger.register({ id: 'y', bytes: 600, kind: 'intermediate', readOnly: false });
  ledger.setup('x', 'dram');
  assert.equal(ledger.slowUsed(0), 700);
  const d0 = ledger.decision(0, []);
  ledger.allocate('y', 'dram', 0, d0);
  const c0 = ledger.compute(0, [d0], 1000);
  // Step 0 overwrites x: its slow copy is stale.
  ledger.afterCompute('x', c0, true);
  const deleted = ledger.actions.at(-1)!;
  assert.equal(deleted.kind, 'delete');
  assert.equal(deleted.id, 'x');
  assert.deepEqual(deleted.deps, [c0]);
  assert.equal(ledger.slowUsed(0), 0);
  ledger.afterCompute('y', c0, true);
  const d1 = ledger.decision(1, [c0]);
  const release = ledger.evict('y', 1, d1, true);
  const writeback = ledger.actions[release - 1];
  assert.equal(writeback.kind, 'writeback');
  assert.ok(writeback.deps.includes(deleted.seq), 'the write-back waits for the delete that frees its room');
  assert.equal(ledger.slowPeak(0), 700);
});
