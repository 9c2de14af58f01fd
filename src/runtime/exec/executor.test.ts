import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { IoPool } from '../io/io-pool.ts';
import { type Plan, planProgram } from '../plan/planner.ts';
import { HomePolicy, LruPolicy, type Policy } from '../plan/policy.ts';
import { analyzeProgram, type ObjectId, type Program } from '../plan/program.ts';
import { DEVICE_PROFILES } from '../store/devices.ts';
import { FileTier } from '../store/file-tier.ts';
import type { SlowTier } from '../store/slow-tier.ts';
import { VirtualTier } from '../store/virtual-tier.ts';
import { randomProgram } from '../synthetic.ts';
import { ByteArena } from './byte-arena.ts';
import { type StepIo, syntheticCompute, syntheticContent } from './byte-run.ts';
import { type ExecuteOptions, executePlan } from './executor.ts';

/** The program run directly, without the runtime: every object in a map, steps in order. */
function directOutputs(program: Program): Map<ObjectId, Uint8Array> {
  const analysis = analyzeProgram(program);
  const objects = new Map<ObjectId, Uint8Array>();
  for (const id of analysis.initial) objects.set(id, syntheticContent(analysis.objects.get(id)!));
  for (const step of program.steps) {
    for (const id of step.writes) if (!objects.has(id)) objects.set(id, new Uint8Array(analysis.bytesOf(id)));
    const io: StepIo = { read: (id) => objects.get(id)!, write: (id) => objects.get(id)! };
    syntheticCompute(step, io);
    for (const id of step.frees ?? []) objects.delete(id);
  }
  return new Map([...analysis.outputs].map((id) => [id, objects.get(id)!]));
}

/**
 * What the run driver does around the executor, by hand: the initial objects' slow-tier copies and warm starts
 * as the plan placed them, then the plan executed on a {@link ByteArena} computing {@link syntheticCompute}.
 */
async function execute(
  plan: Plan,
  tiers: readonly SlowTier[],
  budgets: { dram: number; arena: number },
  extra: Partial<ExecuteOptions> = {},
) {
  const analysis = analyzeProgram(plan.program);
  const arena = new ByteArena(budgets.arena, (id) => analysis.bytesOf(id));
  const dramInitial = new Map<ObjectId, Uint8Array>();
  for (const [id, placement] of plan.initial) {
    const bytes = syntheticContent(analysis.objects.get(id)!);
    if (placement.slowTier >= 0) await tiers[placement.slowTier].write(id, bytes);
    if (placement.level === plan.computeLevel) arena.fromBytes(id, bytes);
    else if (placement.level !== null) dramInitial.set(id, bytes);
  }
  let current = plan.program.steps[0];
  const io: StepIo = { read: (id) => arena.get(id), write: (id) => arena.get(id) };
  const execution = await executePlan({
    plan,
    tiers,
    dramBudgetBytes: budgets.dram,
    dramInitial,
    arena,
    compute: (step) => {
      current = step;
      syntheticCompute(current, io);
    },
    ...extra,
  });
  const outputs = new Map<ObjectId, Uint8Array>();
  for (const id of analysis.outputs) {
    let bytes = execution.dram.get(id) ?? null;
    if (!arena.has(id) && !bytes) {
      bytes = new Uint8Array(new SharedArrayBuffer(analysis.bytesOf(id)));
      await tiers.find((t) => t.has(id))!.read(id, bytes);
    }
    outputs.set(id, arena.materializeDetached(id, bytes));
  }
  arena.clear();
  return { execution, outputs, arena };
}

function policyOf(name: 'lru' | 'home' | 'home-noprefetch'): Policy {
  return name === 'lru' ? new LruPolicy() : new HomePolicy({ lookahead: name === 'home' ? 8 : 0 });
}

describe('the executor', () => {
  let root = '';
  let runs = 0;
  const io = new IoPool({ workers: 2 });
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'home-executor-'));
  });
  after(async () => {
    await io.terminate();
    await rm(root, { recursive: true, force: true });
  });
  const freshDir = async () => {
    const dir = join(root, `run${runs++}`);
    await mkdir(dir);
    return dir;
  };

  it('against a VirtualTier: outputs byte-identical to the direct run, measured peaks within the budgets (property)', async () => {
    let spilled = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 6000 }),
        fc.constantFrom('lru', 'home', 'home-noprefetch' as const),
        fc.boolean(),
        fc.boolean(),
        async (seed, extra, policyName, withArena, warmStart) => {
          const program = randomProgram(seed, { steps: 24, maxBytes: 3000 });
          const analysis = analyzeProgram(program);
          const dram = analysis.maxStepBytes + extra;
          const arenaBytes = analysis.maxStepBytes + (extra >> 1);
          const tier = new VirtualTier('pmem', DEVICE_PROFILES['optane-appdirect']);
          const plan = planProgram(program, {
            policy: policyOf(policyName),
            dramBudgetBytes: dram,
            ...(withArena ? { arenaBytes } : {}),
            tiers: [tier],
            warmStart,
          });
          // Without an arena the plan computes on DRAM buffers: the arena is that memory, within the DRAM budget.
          const { execution, outputs } = await execute(plan, [tier], {
            dram,
            arena: withArena ? arenaBytes : dram,
          });
          assert.ok(execution.dramPeakBytes <= dram, `DRAM pool peak ${execution.dramPeakBytes} > ${dram}`);
          const arenaLimit = withArena ? arenaBytes : dram;
          assert.ok(
            execution.arenaPeakBytes <= arenaLimit,
            `arena peak ${execution.arenaPeakBytes} > ${arenaLimit}`,
          );
          assert.deepEqual(outputs, directOutputs(program));
          if (plan.run.summary.slowBytesWritten > 0) spilled++;
          // Stale and dead copies were deleted during the run: the tier holds at most what the plan kept there.
          assert.ok(tier.usedBytes <= plan.slowPeakBytes[0]);
        },
      ),
      { seed: 424242, numRuns: 80 },
    );
    assert.ok(spilled >= 10, `only ${spilled} runs spilled dirty objects: write-back would not be exercised`);
  });

  it('against a FileTier with two I/O workers and emulated delays: completions arrive out of order, yet budgets hold and outputs are exact (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 4000 }),
        fc.constantFrom('lru', 'home' as const),
        fc.boolean(),
        fc.constantFrom('nvme-gen4', 'optane-appdirect' as const),
        async (seed, extra, policyName, withArena, device) => {
          const program = randomProgram(seed, { steps: 24, maxBytes: 3000 });
          const analysis = analyzeProgram(program);
          const dram = analysis.maxStepBytes + extra;
          const arenaBytes = analysis.maxStepBytes + (extra >> 1);
          const tier = await FileTier.open({
            name: 'disk',
            dir: await freshDir(),
            chunkBytes: 4096,
            io,
            emulate: DEVICE_PROFILES[device],
          });
          try {
            const plan = planProgram(program, {
              policy: policyName === 'lru' ? new LruPolicy() : new HomePolicy({ lookahead: 8, margin: 0 }),
              dramBudgetBytes: dram,
              ...(withArena ? { arenaBytes } : {}),
              tiers: [tier],
              warmStart: false,
            });
            const arenaLimit = withArena ? arenaBytes : dram;
            const { execution, outputs } = await execute(plan, [tier], { dram, arena: arenaLimit });
            assert.ok(execution.dramPeakBytes <= dram);
            assert.ok(execution.arenaPeakBytes <= arenaLimit);
            assert.deepEqual(outputs, directOutputs(program));
            assert.ok(tier.usedBytes <= plan.slowPeakBytes[0], 'stale copies were deleted during the run');
          } finally {
            await tier.close();
          }
        },
      ),
      { seed: 777, numRuns: 30 },
    );
  });
});
