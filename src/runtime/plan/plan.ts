import type { DeviceProfile } from '../store/devices.ts';
import { type RunResult, runProgram } from './planner.ts';
import type { Policy } from './policy.ts';
import type { ObjectId, Program } from './program.ts';
import { VirtualTier } from '../store/virtual-tier.ts';
import { type MemoryLevel, TieredStore } from './ledger.ts';
import type { Action } from './timeline.ts';

/**
 * Where an initial object starts: the slow tier holding its copy (index, or -1) and the memory level it is
 * warm-started in (or null).
 *
 * @example
 * ```ts
 * const placement: InitialPlacement = { slowTier: 0, level: 'arena' };
 * ```
 */
export interface InitialPlacement {
  slowTier: number;
  level: MemoryLevel | null;
}

/**
 * A slow tier as the planner sees it: its name (matching the real tier's), the device profile it times transfers
 * with, and its capacity.
 *
 * @example
 * ```ts
 * const tier: PlannedTier = { name: 'nvme', device: DEVICE_PROFILES['nvme-gen4'], capacityBytes: 100e9 };
 * ```
 */
export interface PlannedTier {
  name: string;
  device: DeviceProfile;
  capacityBytes: number;
}

/**
 * Options of {@link planProgram}.
 *
 * @example
 * ```ts
 * const options: PlanOptions = { policy: new HomePolicy(), dramBudgetBytes: 16 << 20, arenaBytes: 128 << 20, tiers };
 * ```
 */
export interface PlanOptions {
  policy: Policy;
  /** Budget of the DRAM pool (byte-form buffers). */
  dramBudgetBytes: number;
  /** Capacity of the arena (live objects compute works on); omit to compute on DRAM buffers. */
  arenaBytes?: number;
  tiers: readonly PlannedTier[];
  warmStart?: boolean;
  label?: string;
}

/**
 * A complete schedule of a program's data movement, made before the run: the action log (every load, copy,
 * write-back, release and compute with the actions it depends on), where each initial object starts, and the
 * virtual-clock run that produced it (per-step traces, predicted time, peaks and traffic).
 *
 * @example
 * ```ts
 * const plan = await planProgram(program, options);
 * console.log(plan.run.summary.slowBytesRead, plan.actions.length);
 * ```
 */
export interface Plan {
  program: Program;
  actions: readonly Action[];
  initial: ReadonlyMap<ObjectId, InitialPlacement>;
  run: RunResult;
  /** Most bytes each slow tier holds at once (payload plus file headers). */
  slowPeakBytes: number[];
  /** Wall time the planning took. */
  planningNs: number;
}

/** A virtual-mode store that remembers where setup put each initial object. */
class RecordingStore extends TieredStore {
  readonly placements = new Map<ObjectId, InitialPlacement>();

  override setup(id: ObjectId, data: Uint8Array | null, placeIn: MemoryLevel | null): void {
    super.setup(id, data, placeIn);
    this.placements.set(id, { slowTier: this.state(id).slowTier, level: placeIn });
  }
}

/**
 * Plans `program`: runs it on the virtual clock under `policy` with the given capacities and records every
 * decision. HE programs are data-oblivious, so the plan is valid for every run of the program (any inputs); the
 * real run replays it ({@link replayPlan}) without planning work on the compute thread. Decisions never depend on
 * timing, so the real run moves exactly the bytes the plan says.
 *
 * @throws {ResourceError} if a step cannot fit the compute tier or the tiers lack room (before anything runs).
 * @example
 * ```ts
 * const plan = await planProgram(program, { policy: new HomePolicy(), dramBudgetBytes: 64 << 20, arenaBytes: 192 << 20, tiers });
 * ```
 */
export async function planProgram(program: Program, options: PlanOptions): Promise<Plan> {
  const start = performance.now();
  const store = new RecordingStore({
    mode: 'virtual',
    dramBudgetBytes: options.dramBudgetBytes,
    ...(options.arenaBytes !== undefined ? { arena: { capacityBytes: options.arenaBytes } } : {}),
    slowTiers: options.tiers.map((t) => new VirtualTier(t.name, t.device, t.capacityBytes)),
  });
  const run = await runProgram({
    program,
    store,
    policy: options.policy,
    warmStart: options.warmStart ?? true,
    label: options.label ?? options.policy.name,
  });
  return {
    program,
    actions: store.actions,
    initial: store.placements,
    run,
    slowPeakBytes: options.tiers.map((_, i) => store.slowPeak(i)),
    planningNs: (performance.now() - start) * 1e6,
  };
}
