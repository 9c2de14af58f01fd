import { check } from '../../util/assert.ts';
import { ResourceError } from '../../util/errors.ts';
import { idHash64 } from '../store/checksum.ts';
import { DEVICE_PROFILES, type DeviceProfile, deviceProfile, nowNs } from '../store/devices.ts';
import { VirtualTier } from '../store/virtual-tier.ts';
import { HomePolicy, LruPolicy, type Policy, type PolicyView } from './policy.ts';
import {
  analyzeProgram,
  type ObjectId,
  type ObjectInfo,
  type Program,
  type ProgramAnalysis,
  type ProgramStep,
  stepComputeNs,
} from './program.ts';
import { type MemoryLevel, type TierTraffic, TieredStore } from './ledger.ts';
import type { Action } from './timeline.ts';

/**
 * Operand access handed to a step's compute callback: `read` gives an input's bytes, `write` the buffer to fill
 * for an output (for an object both read and written, the same buffer holding the old contents).
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
 * The computation of one step (real mode). The HE layer plugs in here; synthetic runs use
 * {@link syntheticCompute}.
 *
 * @example
 * ```ts
 * const compute: ComputeFn = async (step, io) => heEvaluator.run(step, io);
 * ```
 */
export type ComputeFn = (step: ProgramStep, io: StepIo) => void | Promise<void>;

/**
 * Options of {@link runProgram}.
 *
 * @example
 * ```ts
 * const options: RunOptions = { program, store, policy: new HomePolicy(), warmStart: true };
 * ```
 */
export interface RunOptions {
  program: Program;
  store: TieredStore;
  policy: Policy;
  /** Real mode: the step computation (default {@link syntheticCompute}). */
  compute?: ComputeFn;
  /** Real mode: the contents of objects that exist before the run (default: deterministic bytes per id). */
  initialContent?: (info: ObjectInfo) => Uint8Array;
  /**
   * Before the run, keep initial objects in memory in order of first use while they fit (as loading a model would);
   * they are also in a slow tier, so dropping them later costs nothing. Default true.
   */
  warmStart?: boolean;
  /** Nanoseconds per modular multiply for steps without `computeCostNs` (default 0.4, ANCHORS §2). */
  nsPerModularMultiply?: number;
  /** A label for reports (default: the policy name). */
  label?: string;
}

/**
 * What happened in one step.
 *
 * @example
 * ```ts
 * const worst = result.steps.reduce((a, b) => (b.stallNs > a.stallNs ? b : a));
 * ```
 */
export interface StepTrace {
  index: number;
  op: string;
  layer: string;
  /** Run-clock times (virtual clock in virtual mode, wall clock in real mode), from the run's start. */
  startNs: number;
  endNs: number;
  computeNs: number;
  /** Time between the step's planning point and the start of its compute (waiting for operands). */
  stallNs: number;
  /** Virtual-clock times (the model) in both modes. */
  virtualStartNs: number;
  virtualEndNs: number;
  virtualStallNs: number;
  /** Bytes moved per tier by actions planned for this step (demand, prefetch, write-back, copies). */
  io: Record<string, TierTraffic>;
  /** Bytes resident per memory level and per slow tier after the step was planned. */
  occupancy: Record<string, number>;
  demandBytes: number;
  prefetchBytes: number;
  modularMultiplies: number;
}

/**
 * Totals of a run.
 *
 * @example
 * ```ts
 * console.log(result.summary.stallFraction, result.summary.peakBytes.dram);
 * ```
 */
export interface RunSummary {
  program: string;
  label: string;
  policy: string;
  mode: 'virtual' | 'real';
  steps: number;
  /** Run time on the run's clock. */
  totalNs: number;
  computeNs: number;
  stallNs: number;
  stallFraction: number;
  /** Virtual-clock prediction (equal to totalNs in virtual mode). */
  virtualTotalNs: number;
  virtualStallNs: number;
  peakBytes: Record<string, number>;
  budgets: Record<string, number>;
  moved: Record<string, TierTraffic>;
  /** Bytes read from plus written to slow tiers. */
  slowBytesMoved: number;
  slowBytesRead: number;
  slowBytesWritten: number;
  modularMultiplies: number;
  /** Modular multiplies per byte moved to or from slow tiers (null if nothing moved). */
  arithmeticIntensity: number | null;
  /** Modular multiplies per byte moved anywhere (slow tiers and arena <-> DRAM copies). */
  arithmeticIntensityAllTiers: number | null;
  /** Physical DRAM buffers (real mode): the peak never exceeds the budget. */
  dramPhysicalPeak: number;
  /** Wall time of the run even in virtual mode (how long the simulation took). */
  wallNs: number;
}

/**
 * Everything a run produced.
 *
 * @example
 * ```ts
 * const { summary, steps, actions } = await runProgram(options);
 * ```
 */
export interface RunResult {
  summary: RunSummary;
  steps: StepTrace[];
  /** The action log (timing-independent decisions with dependencies) for replay and what-if studies. */
  actions: Action[];
  /** Devices the virtual clock used, by channel name. */
  devices: Record<string, DeviceProfile>;
  store: TieredStore;
}

/**
 * Deterministic synthetic compute for tests: each output byte mixes the op name, the output id and the
 * operands' bytes at the same position, so any lost, stale or misplaced object changes the results.
 *
 * @example
 * ```ts
 * await runProgram({ program, store, policy, compute: syntheticCompute });
 * ```
 */
export function syntheticCompute(step: ProgramStep, io: StepIo): void {
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
  // Whole 32-bit words of an xorshift stream (4 bytes per step), then the tail bytes. Shared memory, so an I/O
  // worker writes it to a slow tier without a copy.
  const out = new Uint8Array(new SharedArrayBuffer(info.bytes));
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

/** Plans each step's movements per the policy; owns pinning, write-back decisions and the prefetch throttle. */
class Planner {
  readonly store: TieredStore;
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

  constructor(store: TieredStore, policy: Policy, analysis: ProgramAnalysis) {
    this.store = store;
    this.policy = policy;
    this.analysis = analysis;
    const planner = this;
    this.view = {
      analysis,
      store,
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
    const bytes = this.store.state(id).info.bytes;
    if (this.outstanding.delete(id)) this.outstandingBytes -= bytes;
  }

  /**
   * Frees `bytes` in `level` by evicting in policy order. With `protectUntil`, only objects with no needed
   * contents or whose next use is after that step may leave. Returns false, evicting nothing, if impossible.
   */
  makeRoom(level: MemoryLevel, bytes: number, protectUntil?: number): boolean {
    const store = this.store;
    if (store.free(level) >= bytes) return true;
    if (bytes > store.capacity(level)) return false;
    let candidates = this.policy.victimOrder(level, this.view);
    if (protectUntil !== undefined) {
      candidates = candidates.filter((id) => {
        const next = this.analysis.nextUse(id, this.step - 1);
        return !next.needsContent || next.step > protectUntil;
      });
    }
    let freed = store.free(level);
    const chosen: ObjectId[] = [];
    for (const id of candidates) {
      if (freed >= bytes) break;
      chosen.push(id);
      freed += store.state(id).info.bytes;
    }
    if (freed < bytes) return false;
    for (const id of chosen) this.evict(id, level);
    return true;
  }

  evict(id: ObjectId, level: MemoryLevel): void {
    const store = this.store;
    this.#forget(id);
    const knowsFuture = this.policy.knowsFuture;
    if (knowsFuture && !this.contentLive(id)) {
      store.discard(id, this.step, this.issue);
      return;
    }
    if (level === 'arena') {
      const bytes = store.state(id).info.bytes;
      // Demote to DRAM if it fits there; a future-aware policy only displaces DRAM objects needed later than it.
      const protect = knowsFuture ? this.analysis.nextUse(id, this.step - 1).step : undefined;
      if (this.makeRoom('dram', bytes, protect)) {
        store.copy(id, 'dram', this.step, this.issue, false);
        return;
      }
    }
    const dirty = store.state(id).dirty;
    store.evict(id, this.step, this.issue, dirty);
  }

  /** Brings every operand of `step` into the compute level. */
  demand(step: ProgramStep): void {
    const store = this.store;
    const level = store.computeLevel;
    const reads = new Set(step.reads);
    for (const id of new Set([...step.reads, ...step.writes])) {
      const state = store.state(id);
      if (this.outstanding.has(id)) this.#forget(id);
      if (state.level === level) continue;
      const bytes = state.info.bytes;
      if (!reads.has(id)) {
        // Overwritten without being read: whatever it held is dead, for any policy.
        if (state.exists) store.discard(id, this.step, this.issue);
        this.#room(level, bytes, step);
        store.allocate(id, level, this.step, this.issue);
        continue;
      }
      this.#room(level, bytes, step);
      if (state.level !== null) store.copy(id, level, this.step, this.issue, false);
      else store.load(id, level, this.step, this.issue, false);
      this.demandBytes += bytes;
    }
  }

  #room(level: MemoryLevel, bytes: number, step: ProgramStep): void {
    if (!this.makeRoom(level, bytes)) {
      throw new ResourceError(
        `step ${step.index} (${step.op}) needs ${bytes} more bytes in ${level}, but only ${this.store.free(level)} ` +
          `are free and the rest is pinned by the step: expected the ${level} capacity to cover the step's ` +
          `working set (${this.analysis.maxStepBytes} bytes for the largest step)`,
      );
    }
  }

  /** Issues the policy's prefetches that pass the throttle, stopping at the first that does not. */
  prefetch(): void {
    const store = this.store;
    const level = store.computeLevel;
    for (const request of this.policy.prefetch(this.view)) {
      const state = store.state(request.id);
      if (state.level === level || !state.exists) continue;
      const bytes = state.info.bytes;
      if (
        this.#fitsBefore(request.useStep, level, this.#slack(level, request.useStep) - bytes) &&
        this.makeRoom(level, bytes, request.useStep)
      ) {
        if (state.level === null) store.load(request.id, level, this.step, this.issue, true);
        else store.copy(request.id, level, this.step, this.issue, true);
      } else if (level === 'arena' && state.level === null && this.makeRoom('dram', bytes, request.useStep)) {
        // Stage into DRAM; the arena copy at use time is cheap.
        store.load(request.id, 'dram', this.step, this.issue, true);
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
    let slack = this.store.free(level);
    for (const id of this.store.residents(level)) {
      if (this.#inSlack(id, after)) slack += this.store.state(id).info.bytes;
    }
    return slack;
  }

  /**
   * Whether the steps strictly between the current one and `useStep` can run within `room` bytes of `level` beyond
   * what it holds for them now: operands not there yet come in, and operands whose contents die after a step (or
   * that it frees) leave, so a stream of short-lived intermediates counts once, not once per step. A prefetch for
   * `useStep` is admitted only if that peak fits in the slack left after it, so the steps in between never have to
   * evict the prefetched object or anything needed before it.
   */
  #fitsBefore(useStep: number, level: MemoryLevel, room: number): boolean {
    const store = this.store;
    /** Objects whose bytes the window must hold outside the slack: brought in, or resident and needed before. */
    const held = new Set<ObjectId>();
    const seen = new Set<ObjectId>();
    let running = 0;
    const enter = (id: ObjectId) => {
      if (seen.has(id)) return;
      seen.add(id);
      const state = store.state(id);
      if (state.level !== level) {
        running += state.info.bytes;
        held.add(id);
      } else if (!this.#inSlack(id, useStep)) {
        held.add(id);
      }
    };
    const leave = (id: ObjectId) => {
      if (!held.delete(id)) return;
      running -= store.state(id).info.bytes;
    };
    const analysis = this.analysis;
    for (let j = this.step + 1; j < useStep; j++) {
      for (const id of analysis.operandsOf(j)) enter(id);
      if (running > room) return false;
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

function diffTraffic(
  after: Record<string, TierTraffic>,
  before: Record<string, TierTraffic>,
): Record<string, TierTraffic> {
  const out: Record<string, TierTraffic> = {};
  for (const [name, t] of Object.entries(after)) {
    out[name] = {
      read: t.read - (before[name]?.read ?? 0),
      written: t.written - (before[name]?.written ?? 0),
    };
  }
  return out;
}

/**
 * Runs `program` against `store` under `policy`. In virtual mode nothing is computed or stored: the virtual clock
 * times every action from compute costs and device profiles. In real mode, buffers and files are real, the compute
 * callback runs for each step, and the wall clock is measured (the virtual prediction is reported alongside).
 * Planning decisions never depend on timing, so both modes make the same decisions.
 *
 * @throws {ResourceError} before the first step if a step cannot fit the compute tier or slow tiers lack room.
 * @example
 * ```ts
 * const store = new TieredStore({ mode: 'virtual', dramBudgetBytes: 512 << 20, slowTiers: [new VirtualTier('pmem', DEVICE_PROFILES['optane-appdirect'])] });
 * const result = await runProgram({ program: deepCnnProgram(), store, policy: new HomePolicy() });
 * console.log(result.summary.totalNs / 1e9, 's');
 * ```
 */
export async function runProgram(options: RunOptions): Promise<RunResult> {
  const wallStart = nowNs();
  const { program, store, policy } = options;
  const analysis = analyzeProgram(program);
  const real = store.mode === 'real';
  const nsPerMm = options.nsPerModularMultiply ?? 0.4;
  const computeFn = options.compute ?? syntheticCompute;
  const content = options.initialContent ?? syntheticContent;
  await preflight(store, analysis);
  for (const info of program.objects) store.register(info);
  // Warm start: initial objects in order of first use while they fit (compute level first, then DRAM).
  const warm = options.warmStart ?? true;
  const initialByFirstUse = [...analysis.initial].sort(
    (a, b) => analysis.usesOf(a)[0] - analysis.usesOf(b)[0],
  );
  const noSlow = store.slowTiers.length === 0;
  for (const id of initialByFirstUse) {
    const info = analysis.objects.get(id)!;
    let place: MemoryLevel | null = null;
    if (warm || noSlow) {
      if (store.free(store.computeLevel) >= info.bytes) place = store.computeLevel;
      else if (store.hasArena && store.free('dram') >= info.bytes) place = 'dram';
    }
    if (noSlow && place === null) {
      throw new ResourceError(
        `initial object "${id}" fits no memory level and there is no slow tier: expected one`,
      );
    }
    store.setup(id, real ? content(info) : null, place);
  }
  await store.setupComplete();
  policy.reset(analysis);
  const planner = new Planner(store, policy, analysis);
  const traces: StepTrace[] = [];
  let previousCompute = -1;
  const runStart = nowNs();
  const slowNames = store.slowTiers.map((t) => t.name);
  for (const step of program.steps) {
    const i = step.index;
    const decisionWall = nowNs();
    planner.step = i;
    planner.demandBytes = 0;
    planner.prefetchBytes = 0;
    const before = store.traffic();
    const decision = store.decision(i, previousCompute >= 0 ? [previousCompute] : []);
    planner.issue = decision;
    const operands = [...new Set([...step.reads, ...step.writes])];
    planner.pinned.clear();
    for (const id of operands) planner.pinned.add(id);
    planner.demand(step);
    planner.prefetch();
    const computeNs = stepComputeNs(step, nsPerMm);
    let computeStartWall = 0;
    let computeEndWall = 0;
    const deps = [decision, ...operands.map((id) => store.tailOf(id))];
    const run = real
      ? async () => {
          computeStartWall = nowNs();
          const io: StepIo = {
            read: (id) => {
              check(
                step.reads.includes(id),
                () => `step ${i} reads "${id}": expected one of its declared reads`,
              );
              return store.view(id);
            },
            write: (id) => {
              check(
                step.writes.includes(id),
                () => `step ${i} writes "${id}": expected one of its declared writes`,
              );
              return store.view(id);
            },
          };
          await computeFn(step, io);
          computeEndWall = nowNs();
        }
      : undefined;
    const computeSeq = store.compute(i, deps, computeNs, run);
    const writes = new Set(step.writes);
    for (const id of operands) {
      store.afterCompute(id, computeSeq, writes.has(id));
      policy.touch(id, i);
    }
    for (const id of step.frees ?? []) store.discard(id, i, computeSeq);
    if (policy.knowsFuture) {
      for (const id of operands) {
        if (store.state(id).exists && !analysis.contentLiveAfter(id, i)) store.discard(id, i, computeSeq);
      }
    }
    const occupancy: Record<string, number> = { arena: store.used('arena'), dram: store.used('dram') };
    slowNames.forEach((name, t) => {
      occupancy[name] = store.slowUsed(t);
    });
    if (real) {
      await store.wait(computeSeq);
      if (store.failure) throw store.failure;
    }
    const computeAction = store.actions[computeSeq];
    const decisionAction = store.actions[decision];
    const vStall = computeAction.startNs - decisionAction.endNs;
    traces.push({
      index: i,
      op: step.op,
      layer: step.layer ?? '',
      startNs: real ? decisionWall - runStart : decisionAction.endNs,
      endNs: real ? computeEndWall - runStart : computeAction.endNs,
      computeNs: real ? computeEndWall - computeStartWall : computeAction.endNs - computeAction.startNs,
      stallNs: real ? computeStartWall - decisionWall : vStall,
      virtualStartNs: decisionAction.endNs,
      virtualEndNs: computeAction.endNs,
      virtualStallNs: vStall,
      io: diffTraffic(store.traffic(), before),
      occupancy,
      demandBytes: planner.demandBytes,
      prefetchBytes: planner.prefetchBytes,
      modularMultiplies: step.modularMultiplies ?? 0,
    });
    previousCompute = computeSeq;
  }
  if (real) await store.drain();
  const runEnd = nowNs();
  const devices: Record<string, DeviceProfile> = { memcpy: DEVICE_PROFILES.dram };
  for (const tier of store.slowTiers) devices[tier.name] = tier.device;
  return {
    summary: summarize(options, store, traces, real ? runEnd - runStart : 0, nowNs() - wallStart),
    steps: traces,
    actions: store.actions,
    devices,
    store,
  };
}

function summarize(
  options: RunOptions,
  store: TieredStore,
  traces: StepTrace[],
  realTotal: number,
  wallNs: number,
): RunSummary {
  const real = store.mode === 'real';
  const sum = (f: (t: StepTrace) => number) => traces.reduce((acc, t) => acc + f(t), 0);
  const virtualTotal = traces.length > 0 ? traces[traces.length - 1].virtualEndNs : 0;
  const totalNs = real ? realTotal : virtualTotal;
  const computeNs = sum((t) => t.computeNs);
  const stallNs = sum((t) => t.stallNs);
  const moved = store.traffic();
  let slowRead = 0;
  let slowWritten = 0;
  const peakBytes: Record<string, number> = { arena: store.peak('arena'), dram: store.peak('dram') };
  const budgets: Record<string, number> = { arena: store.capacity('arena'), dram: store.capacity('dram') };
  store.slowTiers.forEach((tier, i) => {
    slowRead += moved[tier.name].read;
    slowWritten += moved[tier.name].written;
    peakBytes[tier.name] = store.slowPeak(i);
    budgets[tier.name] = tier.capacityBytes;
  });
  const mm = sum((t) => t.modularMultiplies);
  const slowMoved = slowRead + slowWritten;
  const copyBytes = moved.arena.read + moved.arena.written;
  return {
    program: options.program.name,
    label: options.label ?? options.policy.name,
    policy: options.policy.name,
    mode: store.mode,
    steps: traces.length,
    totalNs,
    computeNs,
    stallNs,
    stallFraction: totalNs > 0 ? stallNs / totalNs : 0,
    virtualTotalNs: virtualTotal,
    virtualStallNs: sum((t) => t.virtualStallNs),
    peakBytes,
    budgets,
    moved,
    slowBytesMoved: slowMoved,
    slowBytesRead: slowRead,
    slowBytesWritten: slowWritten,
    modularMultiplies: mm,
    arithmeticIntensity: slowMoved > 0 ? mm / slowMoved : null,
    arithmeticIntensityAllTiers: slowMoved + copyBytes > 0 ? mm / (slowMoved + copyBytes) : null,
    dramPhysicalPeak: store.dramPhysical.peak,
    wallNs,
  };
}

/**
 * Checks, before anything is written, that the run can succeed as far as is knowable: the largest step fits the
 * compute tier; file tiers are still writable and have free space for the initial objects plus the most bytes of
 * produced objects ever live at once (an upper bound on spilling).
 */
async function preflight(store: TieredStore, analysis: ProgramAnalysis): Promise<void> {
  const level = store.computeLevel;
  if (analysis.maxStepBytes > store.capacity(level)) {
    throw new ResourceError(
      `program "${analysis.program.name}": its largest step needs ${analysis.maxStepBytes} bytes in ${level} at once: ` +
        `expected the ${level} capacity to be at least that (it is ${store.capacity(level)})`,
    );
  }
  const memory = store.capacity('dram') + (store.hasArena ? store.capacity('arena') : 0);
  let need = analysis.initialBytes + analysis.peakLiveProducedBytes;
  if (store.slowTiers.length === 0) {
    if (need > memory) {
      throw new ResourceError(
        `program "${analysis.program.name}" may hold ${need} bytes at once but memory holds ${memory} and there is no ` +
          'slow tier: expected a slow tier or a larger budget',
      );
    }
    return;
  }
  let capacity = 0;
  for (const tier of store.slowTiers)
    capacity += Math.min(await tier.check(), tier.capacityBytes - tier.usedBytes);
  need += analysis.objects.size * Math.max(...store.slowTiers.map((t) => t.objectOverheadBytes));
  if (need > capacity) {
    throw new ResourceError(
      `program "${analysis.program.name}" may need ${need} bytes in slow tiers (initial ${analysis.initialBytes} + ` +
        `live produced ${analysis.peakLiveProducedBytes}) but ${store.slowTiers.map((t) => t.name).join(', ')} ` +
        `can take ${Math.max(0, capacity)}: expected more slow-tier space`,
    );
  }
}

/**
 * A policy by name: `lru`, `home` (lookahead 32) or `home-noprefetch`.
 *
 * @example
 * ```ts
 * const name: PolicyName = 'home';
 * ```
 */
export type PolicyName = 'lru' | 'home' | 'home-noprefetch';

/**
 * Makes a policy from its name.
 *
 * @example
 * ```ts
 * const policy = makePolicy('home');
 * ```
 */
export function makePolicy(name: PolicyName | Policy): Policy {
  if (typeof name !== 'string') return name;
  if (name === 'lru') return new LruPolicy();
  if (name === 'home') return new HomePolicy();
  return new HomePolicy({ lookahead: 0 });
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
 * Runs `program` on the virtual clock with virtual slow tiers named `slow0`, `slow1`, ...
 *
 * @example
 * ```ts
 * const unlimited = await simulate(program, { policy: 'home', dramBudgetBytes: Infinity, slow: null });
 * const home = await simulate(program, { policy: 'home', dramBudgetBytes: total / 8, slow: 'optane-appdirect' });
 * console.log(home.summary.totalNs / unlimited.summary.totalNs);
 * ```
 */
export async function simulate(program: Program, config: SimulationConfig): Promise<RunResult> {
  const slowSpec = config.slow === undefined ? ['nvme-gen4'] : config.slow === null ? [] : config.slow;
  const list = Array.isArray(slowSpec) ? slowSpec : [slowSpec];
  const slowTiers = list.map(
    (d, i) => new VirtualTier(`slow${i}`, typeof d === 'string' ? deviceProfile(d) : d),
  );
  const store = new TieredStore({
    mode: 'virtual',
    dramBudgetBytes: config.dramBudgetBytes,
    ...(config.arenaBytes !== undefined ? { arena: { capacityBytes: config.arenaBytes } } : {}),
    slowTiers,
  });
  const policy = makePolicy(config.policy);
  return runProgram({
    program,
    store,
    policy,
    warmStart: config.warmStart,
    label: config.label ?? policy.name,
    nsPerModularMultiply: config.nsPerModularMultiply,
  });
}
