import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { FormatError } from '../../util/errors.ts';
import { IoPool } from '../io/io-pool.ts';
import { type Plan, planProgram } from '../plan/planner.ts';
import { HomePolicy, LruPolicy, type Policy } from '../plan/policy.ts';
import type { ObjectId, AccessProgram } from '../../program/access.ts';
import { analyzeProgram } from '../plan/program.ts';
import { DEVICE_PROFILES } from '../store/devices.ts';
import { FileTier, HEADER_BYTES } from '../store/file-tier.ts';
import type { SlowTier } from '../store/slow-tier.ts';
import { VirtualTier } from '../store/virtual-tier.ts';
import { randomProgram } from '../../../bench/workloads/synthetic.ts';
import { ByteArena } from './byte-arena.ts';
import { type StepIo, syntheticCompute, syntheticContent } from './byte-run.ts';
import { type ExecuteOptions, executePlan } from './executor.ts';

/** The program run directly, without the runtime: every object in a map, steps in order. */
function directOutputs(program: AccessProgram): Map<ObjectId, Uint8Array> {
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

  it('an all-in-memory plan executes to the outputs of the direct run', async () => {
    for (let seed = 0; seed < 20; seed++) {
      const program = randomProgram(seed, { steps: 30, maxBytes: 3000 });
      const plan = planProgram(program, { policy: new HomePolicy(), dramBudgetBytes: Infinity });
      assert.ok(plan.actions.every((a) => !['load', 'writeback', 'copy', 'delete'].includes(a.kind)));
      const { outputs } = await execute(plan, [], { dram: Infinity, arena: Infinity });
      assert.deepEqual(outputs, directOutputs(program), `seed ${seed}`);
    }
  });

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

  it('runs every action once, and only after the actions it depends on completed', async () => {
    for (const seed of [1, 2, 3]) {
      const program = randomProgram(seed, { steps: 40, maxBytes: 4000 });
      const analysis = analyzeProgram(program);
      const dram = analysis.maxStepBytes + 3000;
      const tier = await FileTier.open({ name: 'disk', dir: await freshDir(), chunkBytes: 4096, io });
      const plan = planProgram(program, {
        policy: new HomePolicy({ lookahead: 8, margin: 0 }),
        dramBudgetBytes: dram,
        arenaBytes: analysis.maxStepBytes + 1000,
        tiers: [tier],
        warmStart: false,
      });
      const started = new Int32Array(plan.actions.length).fill(-1);
      const ended = new Int32Array(plan.actions.length).fill(-1);
      let clock = 0;
      await execute(
        plan,
        [tier],
        { dram, arena: analysis.maxStepBytes + 1000 },
        {
          onAction: (seq, phase) => {
            const marks = phase === 'start' ? started : ended;
            assert.equal(marks[seq], -1, `action ${seq} ${phase}s twice`);
            marks[seq] = clock++;
          },
        },
      );
      await tier.close();
      for (const a of plan.actions) {
        assert.ok(started[a.seq] >= 0 && ended[a.seq] > started[a.seq], `action ${a.seq} (${a.kind}) ran`);
        for (const d of a.deps) {
          assert.ok(
            ended[d] < started[a.seq],
            `action ${a.seq} (${a.kind}) started before its dependency ${d}`,
          );
        }
      }
      const kinds = new Set(plan.actions.map((a) => a.kind));
      for (const kind of ['load', 'writeback', 'copy', 'delete', 'compute'] as const)
        assert.ok(kinds.has(kind), `seed ${seed}: the plan has ${kind} actions`);
    }
  });

  it('a corrupted object file rejects with the FormatError naming it, after every transfer in flight settled', async () => {
    // Many weights read ahead on a slow device: when the corrupted one fails, others are still in flight.
    const n = 40;
    const objects: AccessProgram['objects'] = [
      { id: 'acc0', bytes: 8192, kind: 'ciphertext', readOnly: false },
    ];
    const steps: AccessProgram['steps'] = [];
    for (let i = 0; i < n; i++) {
      objects.push({ id: `w${i}`, bytes: 8192, kind: 'plaintext', readOnly: true });
      objects.push({
        id: `acc${i + 1}`,
        bytes: 8192,
        kind: i + 1 === n ? 'output' : 'intermediate',
        readOnly: false,
      });
      steps.push({
        index: i,
        op: 'mul_plain',
        reads: [`acc${i}`, `w${i}`],
        writes: [`acc${i + 1}`],
        frees: [`acc${i}`],
        computeCostNs: 1e5,
      });
    }
    const program: AccessProgram = { name: 'weight-stream', objects, steps };
    const file = await FileTier.open({
      name: 'disk',
      dir: await freshDir(),
      io,
      emulate: { ...DEVICE_PROFILES['nvme-gen4'], readLatencyNs: 3e6 },
    });
    const inFlight = { now: 0, atFailure: -1, whenDamagedFailed: -1 };
    const counted: SlowTier = {
      name: file.name,
      device: file.device,
      capacityBytes: file.capacityBytes,
      objectOverheadBytes: file.objectOverheadBytes,
      get usedBytes() {
        return file.usedBytes;
      },
      has: (id) => file.has(id),
      check: () => file.check(),
      ensureRoom: (bytes, count) => file.ensureRoom(bytes, count),
      flush: () => file.flush(),
      close: (options) => file.close(options),
      write: (id, bytes) => file.write(id, bytes),
      delete: (id) => file.delete(id),
      read: (id, into) => {
        inFlight.now++;
        return file
          .read(id, into)
          .catch((error: unknown) => {
            if (id === 'w5') inFlight.whenDamagedFailed = inFlight.now;
            throw error;
          })
          .finally(() => inFlight.now--);
      },
    };
    const plan = planProgram(program, {
      policy: new HomePolicy({ lookahead: 16, minLookaheadSteps: 16, margin: 0, prefetchBudgetFraction: 1 }),
      dramBudgetBytes: 64 * 8192,
      arenaBytes: 48 * 8192,
      tiers: [counted],
      warmStart: false,
    });
    const analysis = analyzeProgram(program);
    const arena = new ByteArena(48 * 8192, (id) => analysis.bytesOf(id));
    for (const [id, placement] of plan.initial) {
      assert.equal(placement.level, null);
      await counted.write(id, syntheticContent(analysis.objects.get(id)!));
    }
    const damaged = readFileSync(file.pathOf('w5'));
    damaged[HEADER_BYTES + 17] ^= 0x01;
    writeFileSync(file.pathOf('w5'), damaged);
    const io2: StepIo = { read: (id) => arena.get(id), write: (id) => arena.get(id) };
    await assert.rejects(
      executePlan({
        plan,
        tiers: [counted],
        dramBudgetBytes: 64 * 8192,
        arena,
        compute: (step) => syntheticCompute(step, io2),
      }).finally(() => {
        inFlight.atFailure = inFlight.now;
      }),
      (error: unknown) => {
        assert.ok(error instanceof FormatError, String(error));
        assert.match(error.message, /object "w5"/);
        return true;
      },
    );
    assert.ok(
      inFlight.whenDamagedFailed > 1,
      `${inFlight.whenDamagedFailed - 1} other reads in flight at the failure`,
    );
    assert.equal(inFlight.atFailure, 0, 'no read was still in flight when the run rejected');
    arena.clear();
    assert.equal(arena.bytesInUse, 0, 'loads in flight were given back');
    await file.close();
  });
});
