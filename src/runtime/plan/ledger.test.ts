import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError, ResourceError } from '../../util/errors.ts';
import { randomProgram } from '../synthetic.ts';
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
