import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError, ResourceError } from '../../util/errors.ts';
import { DEVICE_PROFILES } from '../store/devices.ts';
import { runProgram } from './planner.ts';
import { FileTier } from '../store/file-tier.ts';
import { IoPool } from '../io/io-pool.ts';
import { HomePolicy, LruPolicy } from './policy.ts';
import { analyzeProgram } from './program.ts';
import { VirtualTier } from '../store/virtual-tier.ts';
import { TieredStore } from './ledger.ts';
import { randomProgram } from '../synthetic.ts';

let root = '';
const io = new IoPool({ workers: 2 });
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'home-store-'));
});
after(async () => {
  await io.terminate();
  await rm(root, { recursive: true, force: true });
});

async function referenceOutputs(seed: number): Promise<Map<string, Uint8Array>> {
  const program = randomProgram(seed, { steps: 24, maxBytes: 3000 });
  const store = new TieredStore({ mode: 'real', dramBudgetBytes: Infinity });
  await runProgram({ program, store, policy: new HomePolicy() });
  const out = new Map<string, Uint8Array>();
  for (const id of analyzeProgram(program).outputs) out.set(id, await store.readObject(id));
  await store.close();
  return out;
}

test('real mode: the DRAM budget is never exceeded and results read back byte-identical (property)', async () => {
  let spilled = 0;
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 0, max: 6000 }),
      fc.constantFrom('lru', 'home', 'home-noprefetch'),
      fc.boolean(),
      fc.boolean(),
      async (seed, extra, policyName, withArena, warmStart) => {
        const program = randomProgram(seed, { steps: 24, maxBytes: 3000 });
        const analysis = analyzeProgram(program);
        const budget = analysis.maxStepBytes + extra;
        const dir = join(root, `p${runs++}`);
        await mkdir(dir);
        const tier = await FileTier.open({ name: 'disk', dir, chunkBytes: 4096 });
        const store = new TieredStore({
          mode: 'real',
          dramBudgetBytes: budget,
          slowTiers: [tier],
          ...(withArena ? { arena: { capacityBytes: analysis.maxStepBytes + (extra >> 1) } } : {}),
        });
        const policy =
          policyName === 'lru'
            ? new LruPolicy()
            : new HomePolicy({ lookahead: policyName === 'home' ? 8 : 0 });
        try {
          const result = await runProgram({ program, store, policy, warmStart });
          assert.ok(
            result.summary.peakBytes.dram <= budget,
            `logical peak ${result.summary.peakBytes.dram} > ${budget}`,
          );
          assert.ok(
            result.summary.dramPhysicalPeak <= budget,
            `physical peak ${result.summary.dramPhysicalPeak} > ${budget}`,
          );
          for (const t of result.steps) assert.ok(t.occupancy.dram <= budget);
          if (result.summary.slowBytesWritten > 0) spilled++;
          const expected = await referenceOutputs(seed);
          for (const [id, bytes] of expected)
            assert.deepEqual(await store.readObject(id), bytes, `output ${id}`);
        } finally {
          await store.close();
          await rm(dir, { recursive: true, force: true });
        }
      },
    ),
    { seed: 424242, numRuns: 60 },
  );
  assert.ok(
    spilled >= 10,
    `only ${spilled} runs spilled dirty objects: the property would not exercise write-back`,
  );
});

test('real mode with two I/O workers and emulated device delays: completions arrive out of order, yet budgets hold and results are exact (property)', async () => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 0, max: 4000 }),
      fc.constantFrom('lru', 'home'),
      fc.constantFrom('nvme-gen4', 'optane-appdirect'),
      async (seed, extra, policyName, device) => {
        const program = randomProgram(seed, { steps: 24, maxBytes: 3000 });
        const analysis = analyzeProgram(program);
        const budget = analysis.maxStepBytes + extra;
        const dir = join(root, `async${runs++}`);
        await mkdir(dir);
        const tier = await FileTier.open({
          name: 'disk',
          dir,
          chunkBytes: 4096,
          io,
          emulate: DEVICE_PROFILES[device],
        });
        const store = new TieredStore({ mode: 'real', dramBudgetBytes: budget, slowTiers: [tier] });
        try {
          const policy = policyName === 'lru' ? new LruPolicy() : new HomePolicy({ lookahead: 8, margin: 0 });
          const result = await runProgram({ program, store, policy, warmStart: false });
          assert.ok(result.summary.peakBytes.dram <= budget);
          assert.ok(result.summary.dramPhysicalPeak <= budget);
          const expected = await referenceOutputs(seed);
          for (const [id, bytes] of expected)
            assert.deepEqual(await store.readObject(id), bytes, `output ${id}`);
        } finally {
          await store.close();
          await rm(dir, { recursive: true, force: true });
        }
      },
    ),
    { seed: 777, numRuns: 30 },
  );
});

test('virtual mode: budgets hold over random programs, budgets and policies (property)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 100_000 }),
      fc.integer({ min: 0, max: 20_000 }),
      fc.constantFrom('lru', 'home'),
      async (seed, extra, policyName) => {
        const program = randomProgram(seed, { steps: 60, maxBytes: 5000 });
        const analysis = analyzeProgram(program);
        const budget = analysis.maxStepBytes + extra;
        const store = new TieredStore({
          mode: 'virtual',
          dramBudgetBytes: budget,
          arena: { capacityBytes: analysis.maxStepBytes + (extra >> 2) },
          slowTiers: [new VirtualTier('pmem', DEVICE_PROFILES['optane-appdirect'])],
        });
        const result = await runProgram({
          program,
          store,
          policy: policyName === 'lru' ? new LruPolicy() : new HomePolicy(),
        });
        assert.ok(result.summary.peakBytes.dram <= budget);
        assert.ok(result.summary.peakBytes.arena <= store.capacity('arena'));
      },
    ),
    { seed: 99, numRuns: 200 },
  );
});

test('the store refuses to lose data or overfill a level', () => {
  const store = new TieredStore({
    mode: 'virtual',
    dramBudgetBytes: 1000,
    slowTiers: [new VirtualTier('pmem', DEVICE_PROFILES['optane-appdirect'])],
  });
  store.register({ id: 'a', bytes: 600, kind: 'intermediate', readOnly: false });
  store.register({ id: 'b', bytes: 600, kind: 'intermediate', readOnly: false });
  const d = store.decision(0, []);
  store.allocate('a', 'dram', 0, d);
  assert.throws(
    () => store.allocate('b', 'dram', 0, d),
    (e: unknown) => e instanceof ResourceError && /budget of 1000/.test(e.message),
  );
  assert.throws(() => store.evict('a', 0, d, false), InvalidArgumentError);
  store.evict('a', 0, d, true);
  assert.equal(store.state('a').slowTier, 0);
  assert.equal(store.used('dram'), 0);
  assert.deepEqual(store.traffic().pmem, { read: 0, written: 600 });
  store.allocate('b', 'dram', 0, d);
  assert.throws(() => store.load('a', 'dram', 1, store.decision(1, []), false), /would use 1200 bytes/);
  store.evict('b', 1, d, true);
  store.load('a', 'dram', 1, d, false);
  assert.deepEqual(store.traffic().pmem, { read: 600, written: 1200 });
  assert.equal(store.peak('dram'), 600);
});
