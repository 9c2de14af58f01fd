import type { DeviceProfile } from '../store/devices.ts';
import type { PlanLedger, TierTraffic } from './ledger.ts';
import type { AccessStep } from '../../program/access.ts';
import type { Action } from './timeline.ts';

/**
 * What happened in one step of a run.
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
  /** Run-clock times (the virtual clock for a plan, the wall clock for a measured run), from the run's start. */
  startNs: number;
  endNs: number;
  computeNs: number;
  /** Time between the step's planning point and the start of its compute (waiting for operands). */
  stallNs: number;
  /** Virtual-clock times (the model), for plans and measured runs alike. */
  virtualStartNs: number;
  virtualEndNs: number;
  virtualStallNs: number;
  /** Bytes moved per tier by actions planned for this step (demand, prefetch, write-back, copies). */
  io: Record<string, TierTraffic>;
  /** Bytes resident per memory level and per slow tier after the step was planned. */
  occupancy: Record<string, number>;
  /**
   * Plans of the general planner: bytes of the compute level in use while the step computes — what is resident
   * once its operands and the prefetches issued with it are in, plus its scratch ({@link AccessStep.scratchBytes}).
   */
  workingBytes?: number;
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
  /** `virtual`: the planner's run on the virtual clock; `real`: a measured execution of the plan. */
  mode: 'virtual' | 'real';
  steps: number;
  /** Run time on the run's clock. */
  totalNs: number;
  computeNs: number;
  stallNs: number;
  stallFraction: number;
  /** Virtual-clock prediction (equal to totalNs for a plan). */
  virtualTotalNs: number;
  virtualStallNs: number;
  /** Most bytes the plan keeps in each tier at once. */
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
  /** Measured runs: the DRAM buffers' physical peak, never above the budget (0 for a plan). */
  dramPhysicalPeak: number;
  /** Wall time the run took (for a plan: how long planning took). */
  wallNs: number;
}

/**
 * The planner's run of a program: its totals, a virtual-clock trace per step, and the action log it recorded.
 *
 * @example
 * ```ts
 * const { summary, steps, actions } = simulate(program, { policy: 'home', dramBudgetBytes, slow: 'nvme-gen4' });
 * ```
 */
export interface RunResult {
  summary: RunSummary;
  steps: StepTrace[];
  /** The action log (timing-independent decisions with dependencies), for execution and what-if studies. */
  actions: Action[];
  /** Devices the virtual clock used, by channel name. */
  devices: Record<string, DeviceProfile>;
  ledger: PlanLedger;
}

/**
 * Per-tier bytes moved between two {@link PlanLedger.traffic} snapshots.
 *
 * @example
 * ```ts
 * const before = ledger.traffic();
 * // ... plan a step ...
 * const io = trafficSince(ledger.traffic(), before);
 * ```
 */
export function trafficSince(
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
 * Bytes resident per memory level and per slow tier, as the ledger has them now.
 *
 * @example
 * ```ts
 * const { arena, dram } = occupancyOf(ledger);
 * ```
 */
export function occupancyOf(ledger: PlanLedger): Record<string, number> {
  const occupancy: Record<string, number> = { arena: ledger.used('arena'), dram: ledger.used('dram') };
  ledger.slowTiers.forEach((tier, t) => {
    occupancy[tier.name] = ledger.slowUsed(t);
  });
  return occupancy;
}

/**
 * The virtual-clock trace of `step`, planned at action `decision` and computed by action `compute` of `actions`
 * (the general planner and the one-pass plan share it, so their traces are the same objects).
 *
 * @example
 * ```ts
 * traces.push(stepTrace(step, ledger.actions, decision, computeSeq, io, occupancyOf(ledger), demandBytes, 0));
 * ```
 */
export function stepTrace(
  step: AccessStep,
  actions: readonly Action[],
  decision: number,
  compute: number,
  io: Record<string, TierTraffic>,
  occupancy: Record<string, number>,
  demandBytes: number,
  prefetchBytes: number,
  workingBytes?: number,
): StepTrace {
  const computeAction = actions[compute];
  const decisionAction = actions[decision];
  const stall = computeAction.startNs - decisionAction.endNs;
  return {
    index: step.index,
    op: step.op,
    layer: step.layer ?? '',
    startNs: decisionAction.endNs,
    endNs: computeAction.endNs,
    computeNs: computeAction.endNs - computeAction.startNs,
    stallNs: stall,
    virtualStartNs: decisionAction.endNs,
    virtualEndNs: computeAction.endNs,
    virtualStallNs: stall,
    io,
    occupancy,
    ...(workingBytes !== undefined ? { workingBytes } : {}),
    demandBytes,
    prefetchBytes,
    modularMultiplies: step.modularMultiplies ?? 0,
  };
}

/**
 * Devices the ledger's virtual clock times transfers with, by channel name.
 *
 * @example
 * ```ts
 * const devices = ledgerDevices(ledger, DEVICE_PROFILES.dram); // { memcpy, nvme0, ... }
 * ```
 */
export function ledgerDevices(ledger: PlanLedger, memcpy: DeviceProfile): Record<string, DeviceProfile> {
  const devices: Record<string, DeviceProfile> = { memcpy };
  for (const tier of ledger.slowTiers) devices[tier.name] = tier.device;
  return devices;
}

/**
 * Per-step sums of a plan's virtual-clock run, added in step order.
 *
 * @example
 * ```ts
 * const totals: PlanTotals = totalsOf(traces);
 * ```
 */
export interface PlanTotals {
  steps: number;
  /** End of the last step's compute. */
  totalNs: number;
  computeNs: number;
  stallNs: number;
  modularMultiplies: number;
}

/**
 * What planning recorded per step: the totals at once, the per-step traces when first asked for (a plan may keep
 * compact records until then).
 *
 * @example
 * ```ts
 * const { totals, traces } = planTrivially(ledger, analysis, true, 0.4);
 * console.log(totals.totalNs, traces().length);
 * ```
 */
export interface PlannedSteps {
  totals: PlanTotals;
  traces: () => StepTrace[];
}

/**
 * The {@link PlanTotals} of `traces`.
 *
 * @example
 * ```ts
 * const { totalNs, stallNs } = totalsOf(result.steps);
 * ```
 */
export function totalsOf(traces: readonly StepTrace[]): PlanTotals {
  const totals: PlanTotals = {
    steps: traces.length,
    totalNs: 0,
    computeNs: 0,
    stallNs: 0,
    modularMultiplies: 0,
  };
  for (const t of traces) {
    totals.computeNs += t.computeNs;
    totals.stallNs += t.stallNs;
    totals.modularMultiplies += t.modularMultiplies;
    totals.totalNs = t.virtualEndNs;
  }
  return totals;
}

/**
 * Totals of a plan's virtual-clock run.
 *
 * @example
 * ```ts
 * const summary = summarizePlan({ program: program.name, label: 'home', policy: 'home' }, ledger, totalsOf(traces), planningNs);
 * ```
 */
export function summarizePlan(
  names: { program: string; label: string; policy: string },
  ledger: PlanLedger,
  totals: PlanTotals,
  wallNs: number,
): RunSummary {
  const { totalNs, stallNs } = totals;
  const moved = ledger.traffic();
  let slowRead = 0;
  let slowWritten = 0;
  const peakBytes: Record<string, number> = { arena: ledger.peak('arena'), dram: ledger.peak('dram') };
  const budgets: Record<string, number> = { arena: ledger.capacity('arena'), dram: ledger.capacity('dram') };
  ledger.slowTiers.forEach((tier, i) => {
    slowRead += moved[tier.name].read;
    slowWritten += moved[tier.name].written;
    peakBytes[tier.name] = ledger.slowPeak(i);
    budgets[tier.name] = tier.capacityBytes;
  });
  const mm = totals.modularMultiplies;
  const slowMoved = slowRead + slowWritten;
  const copyBytes = moved.arena.read + moved.arena.written;
  return {
    ...names,
    mode: 'virtual',
    steps: totals.steps,
    totalNs,
    computeNs: totals.computeNs,
    stallNs,
    stallFraction: totalNs > 0 ? stallNs / totalNs : 0,
    virtualTotalNs: totalNs,
    virtualStallNs: stallNs,
    peakBytes,
    budgets,
    moved,
    slowBytesMoved: slowMoved,
    slowBytesRead: slowRead,
    slowBytesWritten: slowWritten,
    modularMultiplies: mm,
    arithmeticIntensity: slowMoved > 0 ? mm / slowMoved : null,
    arithmeticIntensityAllTiers: slowMoved + copyBytes > 0 ? mm / (slowMoved + copyBytes) : null,
    dramPhysicalPeak: 0,
    wallNs,
  };
}
