import { check } from '../../util/assert.ts';
import { nowNs } from '../store/devices.ts';
import { idHash64 } from '../store/checksum.ts';
import type { SlowTier } from '../store/slow-tier.ts';
import type { ExecutablePlan, Plan } from '../plan/planner.ts';
import type { Policy } from '../plan/policy.ts';
import type { ObjectId, ObjectInfo, AccessProgram, AccessStep } from '../../program/access.ts';
import { analyzeProgram } from '../plan/program.ts';
import type { RunSummary } from '../plan/run-result.ts';
import { ByteArena } from './byte-arena.ts';
import type { ExecutionResult } from './executor.ts';
import { runTiered } from './run.ts';

/**
 * Operand access handed to a step's compute: `read` gives an input's bytes, `write` the buffer to fill for an
 * output (for an object both read and written, the same buffer holding the old contents).
 *
 * @example
 * ```ts
 * const compute: ComputeFn = (step, io) => { io.write(step.writes[0]).set(io.read(step.reads[0])); };
 * ```
 */
export interface StepIo {
  read(id: ObjectId): Uint8Array;
  write(id: ObjectId): Uint8Array;
}

/**
 * The computation of one step of a byte program, synchronous on the executor's thread.
 *
 * @example
 * ```ts
 * const compute: ComputeFn = (step, io) => syntheticCompute(step, io);
 * ```
 */
export type ComputeFn = (step: AccessStep, io: StepIo) => void;

/**
 * Deterministic synthetic compute for tests: each output byte mixes the op name, the output id and the
 * operands' bytes at the same position, so any lost, stale or misplaced object changes the results.
 *
 * @example
 * ```ts
 * await runByteProgram({ program, policy, dramBudgetBytes, tiers, compute: syntheticCompute });
 * ```
 */
export function syntheticCompute(step: AccessStep, io: StepIo): void {
  const inputs = step.reads.map((id) => io.read(id));
  for (const id of step.writes) {
    const out = io.write(id);
    const salt = Number.parseInt(idHash64(`${step.op}:${id}`).slice(8), 16);
    for (let k = 0; k < out.length; k++) {
      let x = (salt + k * 0x9e3779b1) | 0;
      for (const input of inputs) x = Math.imul(x ^ input[k % input.length], 0x85ebca6b) + k;
      out[k] = x ^ (x >>> 16);
    }
  }
}

/**
 * Deterministic initial contents of an object (bytes derived from its id).
 *
 * @example
 * ```ts
 * const bytes = syntheticContent({ id: 'w', bytes: 64, kind: 'plaintext', readOnly: true });
 * ```
 */
export function syntheticContent(info: ObjectInfo): Uint8Array {
  // Whole 32-bit words of an xorshift stream (4 bytes per step), then the tail bytes.
  const out = new Uint8Array(info.bytes);
  const words = new Uint32Array(out.buffer, 0, info.bytes >>> 2);
  let x = Number.parseInt(idHash64(info.id).slice(8), 16) | 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  for (let k = 0; k < words.length; k++) words[k] = next();
  for (let k = words.length * 4; k < out.length; k++) out[k] = next();
  return out;
}

/**
 * Options of {@link runByteProgram}.
 *
 * @example
 * ```ts
 * const options: ByteRunOptions = { program, policy: new HomePolicy(), dramBudgetBytes: 64 << 20, tiers: [tier] };
 * ```
 */
export interface ByteRunOptions {
  program: AccessProgram;
  policy: Policy;
  /** Hard budget for object bytes in DRAM (Infinity: everything in memory). */
  dramBudgetBytes: number;
  /** A capacity-limited arena where compute operands must be; omit to compute on DRAM buffers. */
  arenaBytes?: number;
  tiers?: readonly SlowTier[];
  /** The step computation (default {@link syntheticCompute}). */
  compute?: ComputeFn;
  /** The contents of objects that exist before the run (default {@link syntheticContent}). */
  initialContent?: (info: ObjectInfo) => Uint8Array;
  /** Keep initial objects in memory from the start while they fit (default true). */
  warmStart?: boolean;
  label?: string;
  nsPerModularMultiply?: number;
  /** Which objects to hand back: the program's outputs (default), or every object with contents after the run. */
  readBack?: 'outputs' | 'existing';
  /** A plan made earlier for the same program, policy, budgets and tiers. */
  plan?: Plan;
}

/** A byte run's plan is always a full one: given as a {@link Plan} or made by the run. */
function fullPlan(plan: ExecutablePlan): Plan {
  check('ledger' in plan.run, () => 'byte run: expected a full plan (with its ledger), not a cached one');
  return plan as Plan;
}

/**
 * A byte program's run: what it measured (the plan's figures beside the wall clock), the plan, the execution and
 * the objects read back.
 *
 * @example
 * ```ts
 * console.log(result.summary.totalNs / result.summary.virtualTotalNs, result.outputs.get('y'));
 * ```
 */
export interface ByteRunResult {
  /** `mode: 'real'`: wall-clock totals; traffic, peaks and the `virtual*` fields from the plan. */
  summary: RunSummary;
  plan: Plan;
  execution: ExecutionResult;
  outputs: Map<ObjectId, Uint8Array>;
}

/**
 * Runs a program whose compute works on bytes through the tiered runtime ({@link runTiered} over a
 * {@link ByteArena}): planned, then executed with real buffers and slow-tier I/O, compute on this thread.
 *
 * @example
 * ```ts
 * const tier = await FileTier.open({ name: 'disk', dir });
 * const { summary, outputs } = await runByteProgram({ program, policy: new HomePolicy(), dramBudgetBytes: 1 << 26, tiers: [tier] });
 * ```
 */
export async function runByteProgram(options: ByteRunOptions): Promise<ByteRunResult> {
  const start = nowNs();
  const { program } = options;
  const analysis = analyzeProgram(program);
  const sizeOf = (id: ObjectId) => analysis.bytesOf(id);
  // Without an arena the plan keeps operands in DRAM, and the arena is that memory.
  const arena = new ByteArena(options.arenaBytes ?? options.dramBudgetBytes, sizeOf);
  const computeFn = options.compute ?? syntheticCompute;
  const content = options.initialContent ?? syntheticContent;
  let step: AccessStep = program.steps[0];
  const io: StepIo = {
    read: (id) => {
      check(
        step.reads.includes(id),
        () => `step ${step.index} reads "${id}": expected one of its declared reads`,
      );
      return arena.get(id);
    },
    write: (id) => {
      check(
        step.writes.includes(id),
        () => `step ${step.index} writes "${id}": expected one of its declared writes`,
      );
      return arena.get(id);
    },
  };
  const result = await runTiered({
    ...options,
    analysis,
    arena,
    initial: (id) => {
      const bytes = content(analysis.objects.get(id)!);
      const write = (into: Uint8Array) => into.set(bytes);
      return { writeStored: write, writeFull: write, close() {} };
    },
    compute: (current) => {
      step = current;
      computeFn(current, io);
    },
    outputIds:
      options.readBack === 'existing'
        ? (used) => {
            const ledger = fullPlan(used).run.ledger;
            return program.objects.filter((o) => ledger.state(o.id).exists).map((o) => o.id);
          }
        : [...analysis.outputs],
  });
  const { execution } = result;
  const plan = fullPlan(result.plan);
  const planned = plan.run.summary;
  return {
    summary: {
      ...planned,
      mode: 'real',
      totalNs: execution.totalNs,
      computeNs: execution.computeNs,
      stallNs: execution.stallNs,
      stallFraction: execution.totalNs > 0 ? execution.stallNs / execution.totalNs : 0,
      virtualTotalNs: planned.totalNs,
      virtualStallNs: planned.stallNs,
      dramPhysicalPeak: plan.computeLevel === 'dram' ? execution.arenaPeakBytes : execution.dramPeakBytes,
      wallNs: nowNs() - start,
    },
    plan,
    execution,
    outputs: result.outputs,
  };
}
