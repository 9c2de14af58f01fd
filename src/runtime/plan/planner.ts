import { ResourceError } from '../../util/errors.ts';
import { DEVICE_PROFILES, type DeviceProfile, deviceProfile, nowNs } from '../store/devices.ts';
import { VirtualTier } from '../store/virtual-tier.ts';
import { type InitialPlacement, type MemoryLevel, PlanLedger, type PlannedTier } from './ledger.ts';
import { makePolicy, type Policy, type PolicyName, type PolicyView } from './policy.ts';
import type { ObjectId, AccessProgram, AccessStep } from '../../program/access.ts';
import { analyzeProgram, type ProgramAnalysis, stepComputeNs } from './program.ts';
import {
  ledgerDevices,
  type PlannedSteps,
  type RunResult,
  type StepTrace,
  occupancyOf,
  stepTrace,
  summarizePlan,
  totalsOf,
  trafficSince,
} from './run-result.ts';
import type { Action } from './timeline.ts';
import { planTrivially } from './trivial-plan.ts';

/** Plans each step's movements per the policy; owns pinning, write-back decisions and the prefetch throttle. */
class Planner {
  readonly ledger: PlanLedger;
  readonly policy: Policy;
  readonly analysis: ProgramAnalysis;
  readonly pinned = new Set<ObjectId>();
  /** Prefetched objects not yet used, with the step they were fetched for. */
  readonly outstanding = new Map<ObjectId, number>();
  outstandingBytes = 0;
  step = 0;
  issue = -1;
  demandBytes = 0;
  prefetchBytes = 0;
  readonly view: PolicyView;

  constructor(ledger: PlanLedger, policy: Policy, analysis: ProgramAnalysis) {
    this.ledger = ledger;
    this.policy = policy;
    this.analysis = analysis;
    const planner = this;
    this.view = {
      analysis,
      ledger,
      get step() {
        return planner.step;
      },
      isPinned: (id) => planner.pinned.has(id),
      get outstandingPrefetchBytes() {
        return planner.outstandingBytes;
      },
    };
  }

  contentLive(id: ObjectId): boolean {
    return this.analysis.nextUse(id, this.step - 1).needsContent;
  }

  #forget(id: ObjectId): void {
    const bytes = this.ledger.state(id).info.bytes;
    if (this.outstanding.delete(id)) this.outstandingBytes -= bytes;
  }

  /**
   * Frees `bytes` in `level` by evicting in policy order. With `protectUntil`, only objects with no needed
   * contents or whose next use is after that step may leave. Returns false, evicting nothing, if impossible.
   */
  makeRoom(level: MemoryLevel, bytes: number, protectUntil?: number): boolean {
    const ledger = this.ledger;
    if (ledger.free(level) >= bytes) return true;
    if (bytes > ledger.capacity(level)) return false;
    let candidates = this.policy.victimOrder(level, this.view);
    if (protectUntil !== undefined) {
      candidates = candidates.filter((id) => {
        const next = this.analysis.nextUse(id, this.step - 1);
        return !next.needsContent || next.step > protectUntil;
      });
    }
    let freed = ledger.free(level);
    const chosen: ObjectId[] = [];
    for (const id of candidates) {
      if (freed >= bytes) break;
      chosen.push(id);
      freed += ledger.state(id).info.bytes;
    }
    if (freed < bytes) return false;
    for (const id of chosen) this.evict(id, level);
    return true;
  }

  evict(id: ObjectId, level: MemoryLevel): void {
    const ledger = this.ledger;
    this.#forget(id);
    const knowsFuture = this.policy.knowsFuture;
    if (knowsFuture && !this.contentLive(id)) {
      ledger.discard(id, this.step, this.issue);
      return;
    }
    if (level === 'arena') {
      const bytes = ledger.state(id).info.bytes;
      // Demote to DRAM if it fits there; a future-aware policy only displaces DRAM objects needed later than it.
      const protect = knowsFuture ? this.analysis.nextUse(id, this.step - 1).step : undefined;
      if (this.makeRoom('dram', bytes, protect)) {
        ledger.copy(id, 'dram', this.step, this.issue, false);
        return;
      }
    }
    const dirty = ledger.state(id).dirty;
    ledger.evict(id, this.step, this.issue, dirty);
  }

  /** Brings every operand of `step` into the compute level. */
  demand(step: AccessStep): void {
    const ledger = this.ledger;
    const level = ledger.computeLevel;
    const reads = new Set(step.reads);
    for (const id of this.analysis.operandsOf(step.index)) {
      const state = ledger.state(id);
      if (this.outstanding.has(id)) this.#forget(id);
      if (state.level === level) continue;
      const bytes = state.info.bytes;
      if (!reads.has(id)) {
        // Overwritten without being read: whatever it held is dead, for any policy.
        if (state.exists) ledger.discard(id, this.step, this.issue);
        this.#room(level, bytes, step);
        ledger.allocate(id, level, this.step, this.issue);
        continue;
      }
      this.#room(level, bytes, step);
      if (state.level !== null) ledger.copy(id, level, this.step, this.issue, false);
      else ledger.load(id, level, this.step, this.issue, false);
      this.demandBytes += bytes;
    }
    // The kernels' own allocations while the step runs (key-switching digits) come from the same memory.
    const scratch = step.scratchBytes ?? 0;
    if (scratch > 0) this.#room(level, scratch, step);
  }

  #room(level: MemoryLevel, bytes: number, step: AccessStep): void {
    if (!this.makeRoom(level, bytes)) {
      throw new ResourceError(
        `step ${step.index} (${step.op}) needs ${bytes} more bytes in ${level}, but only ${this.ledger.free(level)} ` +
          `are free and the rest is pinned by the step: expected the ${level} capacity to cover the step's ` +
          `working set (${this.analysis.maxStepBytes} bytes for the largest step)`,
      );
    }
  }

  /** Issues the policy's prefetches that pass the throttle, stopping at the first that does not. */
  prefetch(): void {
    const ledger = this.ledger;
    const level = ledger.computeLevel;
    // What arrives while this step runs must leave its scratch free.
    const scratch = this.analysis.program.steps[this.step].scratchBytes ?? 0;
    for (const request of this.policy.prefetch(this.view)) {
      const state = ledger.state(request.id);
      if (state.level === level || !state.exists) continue;
      const bytes = state.info.bytes;
      const room = this.#slack(level, request.useStep) - bytes;
      if (
        room >= scratch &&
        this.#fitsBefore(request.useStep, level, room) &&
        this.makeRoom(level, bytes + scratch, request.useStep)
      ) {
        if (state.level === null) ledger.load(request.id, level, this.step, this.issue, true);
        else ledger.copy(request.id, level, this.step, this.issue, true);
      } else if (level === 'arena' && state.level === null && this.makeRoom('dram', bytes, request.useStep)) {
        // Stage into DRAM; the arena copy at use time is cheap.
        ledger.load(request.id, 'dram', this.step, this.issue, true);
      } else {
        return;
      }
      this.outstanding.set(request.id, request.useStep);
      this.outstandingBytes += bytes;
      this.prefetchBytes += bytes;
    }
  }

  /** Free bytes of `level` plus bytes of unpinned residents whose contents are dead or next used after `after`. */
  #slack(level: MemoryLevel, after: number): number {
    let slack = this.ledger.free(level);
    for (const id of this.ledger.residents(level)) {
      if (this.#inSlack(id, after)) slack += this.ledger.state(id).info.bytes;
    }
    return slack;
  }

  /**
   * Whether the steps strictly between the current one and `useStep` can run within `room` bytes of `level` beyond
   * what it holds for them now: operands not there yet come in (with each step's scratch beside them), and operands
   * whose contents die after a step (or that it frees) leave, so a stream of short-lived intermediates counts once, not once per step. A prefetch for
   * `useStep` is admitted only if that peak fits in the slack left after it, so the steps in between never have to
   * evict the prefetched object or anything needed before it.
   */
  #fitsBefore(useStep: number, level: MemoryLevel, room: number): boolean {
    const ledger = this.ledger;
    /** Objects whose bytes the window must hold outside the slack: brought in, or resident and needed before. */
    const held = new Set<ObjectId>();
    const seen = new Set<ObjectId>();
    let running = 0;
    const enter = (id: ObjectId) => {
      if (seen.has(id)) return;
      seen.add(id);
      const state = ledger.state(id);
      if (state.level !== level) {
        running += state.info.bytes;
        held.add(id);
      } else if (!this.#inSlack(id, useStep)) {
        held.add(id);
      }
    };
    const leave = (id: ObjectId) => {
      if (!held.delete(id)) return;
      running -= ledger.state(id).info.bytes;
    };
    const analysis = this.analysis;
    const steps = analysis.program.steps;
    for (let j = this.step + 1; j < useStep; j++) {
      for (const id of analysis.operandsOf(j)) enter(id);
      if (running + (steps[j].scratchBytes ?? 0) > room) return false;
      // Objects only freed here were not seen yet: entering first keeps the count exact.
      for (const id of analysis.departuresAfter(j)) {
        enter(id);
        leave(id);
      }
    }
    return room >= 0;
  }

  /** Whether resident `id` counts in {@link #slack} for `after`: unpinned, and dead or next used after `after`. */
  #inSlack(id: ObjectId, after: number): boolean {
    if (this.pinned.has(id)) return false;
    const next = this.analysis.nextUse(id, this.step - 1);
    return !next.needsContent || next.step > after;
  }
}

/**
 * Registers every object of the program and sets up the initial ones: in a slow tier (if there is one) and, with
 * a warm start, in memory in order of first use while they fit (compute level first, then DRAM), as loading a
 * model would. Without a slow tier every initial object must fit in memory.
 */
function placeInitialObjects(ledger: PlanLedger, analysis: ProgramAnalysis, warm: boolean): void {
  for (const info of analysis.program.objects) ledger.register(info);
  const initialByFirstUse = [...analysis.initial].sort(
    (a, b) => analysis.usesOf(a)[0] - analysis.usesOf(b)[0],
  );
  const noSlow = ledger.slowTiers.length === 0;
  for (const id of initialByFirstUse) {
    const bytes = analysis.bytesOf(id);
    let place: MemoryLevel | null = null;
    if (warm || noSlow) {
      if (ledger.free(ledger.computeLevel) >= bytes) place = ledger.computeLevel;
      else if (ledger.hasArena && ledger.free('dram') >= bytes) place = 'dram';
    }
    if (noSlow && place === null) {
      throw new ResourceError(
        `initial object "${id}" fits no memory level and there is no slow tier: expected one`,
      );
    }
    ledger.setup(id, place);
  }
}

/** The general planner: each step's operands demanded, the policy's prefetches admitted, dead contents dropped. */
function planSteps(
  ledger: PlanLedger,
  analysis: ProgramAnalysis,
  policy: Policy,
  nsPerMm: number,
  onStepPlanned?: (actions: readonly Action[], step: number) => void,
): PlannedSteps {
  policy.reset(analysis);
  const planner = new Planner(ledger, policy, analysis);
  const traces: StepTrace[] = [];
  let previousCompute = -1;
  for (const step of analysis.program.steps) {
    const i = step.index;
    planner.step = i;
    planner.demandBytes = 0;
    planner.prefetchBytes = 0;
    const before = ledger.traffic();
    const decision = ledger.decision(i, previousCompute >= 0 ? [previousCompute] : []);
    planner.issue = decision;
    const operands = analysis.operandsOf(i);
    planner.pinned.clear();
    for (const id of operands) planner.pinned.add(id);
    planner.demand(step);
    planner.prefetch();
    const workingBytes = ledger.used(ledger.computeLevel) + (step.scratchBytes ?? 0);
    const deps = [decision];
    for (const id of operands) deps.push(ledger.tailOf(id));
    const computeSeq = ledger.compute(i, deps, stepComputeNs(step, nsPerMm));
    const writes = new Set(step.writes);
    for (const id of operands) {
      ledger.afterCompute(id, computeSeq, writes.has(id));
      policy.touch(id, i);
    }
    for (const id of step.frees ?? []) ledger.discard(id, i, computeSeq);
    if (policy.knowsFuture) {
      for (const id of operands) {
        if (ledger.state(id).exists && !analysis.contentLiveAfter(id, i)) ledger.discard(id, i, computeSeq);
      }
    }
    onStepPlanned?.(ledger.actions, i);
    const io = trafficSince(ledger.traffic(), before);
    const occupancy = occupancyOf(ledger);
    const { demandBytes, prefetchBytes } = planner;
    traces.push(
      stepTrace(
        step,
        ledger.actions,
        decision,
        computeSeq,
        io,
        occupancy,
        demandBytes,
        prefetchBytes,
        workingBytes,
      ),
    );
    previousCompute = computeSeq;
  }
  return { totals: totalsOf(traces), traces: () => traces };
}

/**
 * Checks, before anything is planned, that the run can succeed as far as is knowable: the largest step fits the
 * compute tier; the slow tiers can take the initial objects plus the most bytes of produced objects ever live at
 * once (an upper bound on spilling), each with its per-object overhead.
 */
function checkCapacities(ledger: PlanLedger, analysis: ProgramAnalysis): void {
  const level = ledger.computeLevel;
  const name = analysis.program.name;
  if (analysis.maxStepBytes > ledger.capacity(level)) {
    throw new ResourceError(
      `program "${name}": its largest step needs ${analysis.maxStepBytes} bytes in ${level} at once: ` +
        `expected the ${level} capacity to be at least that (it is ${ledger.capacity(level)})`,
    );
  }
  const memory = ledger.capacity('dram') + (ledger.hasArena ? ledger.capacity('arena') : 0);
  let need = analysis.initialBytes + analysis.peakLiveProducedBytes;
  const tiers = ledger.slowTiers;
  if (tiers.length === 0) {
    if (need > memory) {
      throw new ResourceError(
        `program "${name}" may hold ${need} bytes at once but memory holds ${memory} and there is no ` +
          'slow tier: expected a slow tier or a larger budget',
      );
    }
    return;
  }
  const capacity = tiers.reduce((sum, t) => sum + t.capacityBytes, 0);
  need += analysis.objects.size * Math.max(...tiers.map((t) => t.objectOverheadBytes ?? 0));
  if (need > capacity) {
    throw new ResourceError(
      `program "${name}" may need ${need} bytes in slow tiers (initial ${analysis.initialBytes} + ` +
        `live produced ${analysis.peakLiveProducedBytes}) but ${tiers.map((t) => t.name).join(', ')} ` +
        `can take ${Math.max(0, capacity)}: expected more slow-tier space`,
    );
  }
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
  /** Budget of the DRAM pool (byte-form buffers); Infinity for unlimited memory. */
  dramBudgetBytes: number;
  /** Capacity of the arena (live objects compute works on); omit to compute on DRAM buffers. */
  arenaBytes?: number;
  /** Slow tiers in order of preference (none: every object must fit in memory). */
  tiers?: readonly PlannedTier[];
  /** Keep initial objects in memory from the start while they fit (default true). */
  warmStart?: boolean;
  /** A label for reports (default: the policy name). */
  label?: string;
  /** Nanoseconds per modular multiply for steps without `computeCostNs` (default 0.4, ANCHORS §2). */
  nsPerModularMultiply?: number;
  /** The program's analysis, if the caller has it already (it is reused, not recomputed). */
  analysis?: ProgramAnalysis;
  /**
   * With unlimited memory, plan in one pass without the policy (default true): the result is the same, action for
   * action, as the general planner's. False forces the general planner (for comparisons).
   */
  fastPath?: boolean;
  /** Called once the initial placements are made, before any step is planned (a streamed plan starts from them). */
  onInitial?: (initial: ReadonlyMap<ObjectId, InitialPlacement>, computeLevel: MemoryLevel) => void;
  /**
   * Called after each planned step with the action log so far. The log is append-only — an action never changes
   * once logged — so a consumer may execute the actions it has while later steps are planned.
   */
  onStepPlanned?: (actions: readonly Action[], step: number) => void;
}

/**
 * A complete schedule of a program's data movement, made before the run: the action log (every load, copy,
 * write-back, release, delete and compute with the actions it depends on), where each initial object starts, and
 * the virtual-clock run that produced it (per-step traces, predicted time, peaks and traffic).
 *
 * @example
 * ```ts
 * const plan = planProgram(program, options);
 * console.log(plan.run.summary.slowBytesRead, plan.actions.length);
 * ```
 */
export interface Plan extends ExecutablePlan {
  run: RunResult;
}

/**
 * What executing a plan needs (a {@link Plan} without its virtual-clock trace): the form a plan is cached in
 * ({@link encodePlan}) and loaded back for later runs of the same program, budget and devices.
 *
 * @example
 * ```ts
 * const plan: ExecutablePlan = cache.load(key, runtimeProgram) ?? planProgram(runtimeProgram, options);
 * ```
 */
export interface ExecutablePlan {
  program: AccessProgram;
  /** Where compute finds its operands: the arena, or DRAM buffers when the plan has no arena. */
  computeLevel: MemoryLevel;
  actions: readonly Action[];
  initial: ReadonlyMap<ObjectId, InitialPlacement>;
  /** The virtual-clock run's summary (predicted time, peaks, traffic). */
  run: Pick<RunResult, 'summary'>;
  /** Most bytes each slow tier holds at once (payload plus per-object overhead). */
  slowPeakBytes: number[];
  /** Wall time the planning took (for a loaded plan: the planning it saved). */
  planningNs: number;
}

/**
 * Plans `program`: runs it on the virtual clock under `policy` with the given capacities and records every
 * decision. HE programs are data-oblivious, so the plan is valid for every run of the program (any inputs); the
 * executor ({@link executePlan}) carries it out without planning work on the compute thread. Decisions never
 * depend on timing, so the execution moves exactly the bytes the plan says.
 *
 * With unlimited memory (the compute level's capacity is Infinity and every initial object starts in memory),
 * nothing ever moves: the plan is the trivial one, made in one pass over the steps without the policy.
 *
 * @throws {ResourceError} if a step cannot fit the compute tier or the tiers lack room (before anything runs).
 * @example
 * ```ts
 * const plan = planProgram(program, { policy: new HomePolicy(), dramBudgetBytes: 64 << 20, arenaBytes: 192 << 20, tiers });
 * ```
 */
export function planProgram(program: AccessProgram, options: PlanOptions): Plan {
  const start = nowNs();
  const analysis = options.analysis ?? analyzeProgram(program);
  const warm = options.warmStart ?? true;
  const ledger = placedLedger(analysis, options);
  options.onInitial?.(ledger.initial, ledger.computeLevel);
  const nsPerMm = options.nsPerModularMultiply ?? 0.4;
  const { policy } = options;
  const unlimited =
    ledger.capacity(ledger.computeLevel) === Infinity && (warm || ledger.slowTiers.length === 0);
  const planned =
    unlimited && options.fastPath !== false
      ? planTrivially(ledger, analysis, policy.knowsFuture, nsPerMm)
      : planSteps(ledger, analysis, policy, nsPerMm, options.onStepPlanned);
  options.onStepPlanned?.(ledger.actions, program.steps.length - 1);
  const planningNs = nowNs() - start;
  const names = { program: program.name, label: options.label ?? policy.name, policy: policy.name };
  let traces: StepTrace[] | undefined;
  const run: RunResult = {
    summary: summarizePlan(names, ledger, planned.totals, planningNs),
    // Made when first read (the one-pass plan keeps compact records until then).
    get steps() {
      return (traces ??= planned.traces());
    },
    actions: ledger.actions,
    devices: ledgerDevices(ledger, DEVICE_PROFILES.dram),
    ledger,
  };
  return {
    program,
    computeLevel: ledger.computeLevel,
    actions: ledger.actions,
    initial: ledger.initial,
    run,
    slowPeakBytes: ledger.slowTiers.map((_, i) => ledger.slowPeak(i)),
    planningNs,
  };
}

/**
 * Where each initial object starts, and the compute level, as {@link planProgram} decides them before planning
 * any step (a deterministic function of the program and the capacities): a streamed plan's run starts from these
 * without waiting for the planning thread to get there.
 *
 * @throws {ResourceError} as planProgram does when a step cannot fit or the objects cannot be placed.
 * @example
 * ```ts
 * const { initial, computeLevel } = initialPlacements(program, options);
 * ```
 */
export function initialPlacements(
  program: AccessProgram,
  options: Omit<PlanOptions, 'policy'>,
): { initial: ReadonlyMap<ObjectId, InitialPlacement>; computeLevel: MemoryLevel } {
  const ledger = placedLedger(options.analysis ?? analyzeProgram(program), options);
  return { initial: ledger.initial, computeLevel: ledger.computeLevel };
}

/** A ledger for the options' capacities, checked against the program's largest step, initial objects placed. */
function placedLedger(analysis: ProgramAnalysis, options: Omit<PlanOptions, 'policy'>): PlanLedger {
  const ledger = new PlanLedger({
    dramBudgetBytes: options.dramBudgetBytes,
    ...(options.arenaBytes !== undefined ? { arena: { capacityBytes: options.arenaBytes } } : {}),
    slowTiers: options.tiers ?? [],
  });
  checkCapacities(ledger, analysis);
  placeInitialObjects(ledger, analysis, options.warmStart ?? true);
  return ledger;
}

/**
 * Configuration of a virtual-clock run ({@link simulate}).
 *
 * @example
 * ```ts
 * const config: SimulationConfig = { policy: 'lru', dramBudgetBytes: 1 << 30, slow: 'nvme-gen5' };
 * ```
 */
export interface SimulationConfig {
  policy: PolicyName | Policy;
  /** DRAM budget; Infinity for the unlimited reference. */
  dramBudgetBytes: number;
  /** Optional arena capacity (compute operands must be there). */
  arenaBytes?: number;
  /** Slow tier device(s), by profile or name; default `nvme-gen4`. Omit with Infinity budget for no slow tier. */
  slow?: (DeviceProfile | string)[] | DeviceProfile | string | null;
  warmStart?: boolean;
  label?: string;
  nsPerModularMultiply?: number;
}

/**
 * The planner's run of `program` on the virtual clock, with modelled slow tiers named `slow0`, `slow1`, ...: the
 * run a plan predicts, for reports and what-if studies.
 *
 * @example
 * ```ts
 * const unlimited = simulate(program, { policy: 'home', dramBudgetBytes: Infinity, slow: null });
 * const home = simulate(program, { policy: 'home', dramBudgetBytes: total / 8, slow: 'optane-appdirect' });
 * console.log(home.summary.totalNs / unlimited.summary.totalNs);
 * ```
 */
export function simulate(program: AccessProgram, config: SimulationConfig): RunResult {
  const slowSpec = config.slow === undefined ? ['nvme-gen4'] : config.slow === null ? [] : config.slow;
  const list = Array.isArray(slowSpec) ? slowSpec : [slowSpec];
  const policy = makePolicy(config.policy);
  return planProgram(program, {
    policy,
    dramBudgetBytes: config.dramBudgetBytes,
    ...(config.arenaBytes !== undefined ? { arenaBytes: config.arenaBytes } : {}),
    tiers: list.map((d, i) => new VirtualTier(`slow${i}`, typeof d === 'string' ? deviceProfile(d) : d)),
    warmStart: config.warmStart,
    label: config.label ?? policy.name,
    nsPerModularMultiply: config.nsPerModularMultiply,
  }).run;
}
