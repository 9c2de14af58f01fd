import {
  DEVICE_PROFILES,
  type DeviceProfile,
  deviceProfile,
  scaleBandwidth,
} from '../runtime/store/devices.ts';
import { type SimulationConfig, simulate } from '../runtime/plan/planner.ts';
import type { RunResult } from '../runtime/plan/run-result.ts';
import type { AccessProgram } from '../program/access.ts';
import { type Action, replayActions } from '../runtime/plan/timeline.ts';
import { check } from '../util/assert.ts';

/**
 * One predicted configuration: the recorded plan re-timed with compute `speedup`× faster and every slow tier on
 * `device`.
 *
 * @example
 * ```ts
 * const p: WhatIfPrediction = report.predictions.find((x) => x.speedup === 100 && x.device === 'nvme-gen4')!;
 * console.log(p.stallFraction, p.slowTierBound);
 * ```
 */
export interface WhatIfPrediction {
  speedup: number;
  device: string;
  totalNs: number;
  computeNs: number;
  stallNs: number;
  stallFraction: number;
  /** Stall above the threshold: the slow tier, not compute, sets the pace. */
  slowTierBound: boolean;
  /** Average read bandwidth the run needs to keep compute busy: slow-tier bytes read / compute time (GB/s). */
  averageReadGBps: number;
  /**
   * Read bandwidth (GB/s, write bandwidth scaled alike) at which the replayed stall falls to the threshold, or null
   * if no bandwidth does (the remaining stall is latency or dependency bound).
   */
  bandwidthToRemoveStallGBps: number | null;
}

/**
 * Per device: the compute speed-up at which the slow tier becomes the bottleneck.
 *
 * @example
 * ```ts
 * for (const b of report.bottlenecks) console.log(b.device, b.speedup ?? 'never within the searched range');
 * ```
 */
export interface BottleneckPoint {
  device: string;
  /** Smallest speed-up (≥ 1) with stall above the threshold; null if none up to `maxSpeedup`. */
  speedup: number | null;
}

/**
 * Predictions for a run.
 *
 * @example
 * ```ts
 * const report: WhatIfReport = whatIf(result);
 * ```
 */
export interface WhatIfReport {
  program: string;
  policy: string;
  /** `fixed`: the recorded plan re-timed; `replanned`: the policy planned again for each configuration. */
  plan: 'fixed' | 'replanned';
  /** Stall fraction above which a configuration counts as slow-tier bound. */
  stallThreshold: number;
  /** Time of the recorded run on its own devices at speed-up 1 (replay check). */
  baselineTotalNs: number;
  slowBytesRead: number;
  slowBytesWritten: number;
  predictions: WhatIfPrediction[];
  bottlenecks: BottleneckPoint[];
  /** Plain-language findings. */
  findings: string[];
}

/**
 * Options of {@link whatIf}.
 *
 * @example
 * ```ts
 * whatIf(result, { speedups: [10], devices: ['nvme-gen5'], stallThreshold: 0.02 });
 * ```
 */
export interface WhatIfOptions {
  /** Compute speed-ups to predict (default 1, 10, 100). */
  speedups?: number[];
  /** Device profiles for the slow tiers (default: all built-in profiles). */
  devices?: (string | DeviceProfile)[];
  /** Stall fraction counted as a bottleneck (default 0.05). */
  stallThreshold?: number;
  /** Largest speed-up searched for the bottleneck point (default 1000). */
  maxSpeedup?: number;
}

interface Replayed {
  totalNs: number;
  computeNs: number;
}

function replay(actions: readonly Action[], devices: Record<string, DeviceProfile>, scale: number): Replayed {
  const ends = replayActions(actions, { devices, computeScale: scale });
  let total = 0;
  let compute = 0;
  for (const action of actions) {
    if (action.kind !== 'compute') continue;
    compute += action.computeNs * scale;
    if (ends[action.seq] > total) total = ends[action.seq];
  }
  return { totalNs: total, computeNs: compute };
}

function devicesFor(result: RunResult, slow: DeviceProfile): Record<string, DeviceProfile> {
  const devices: Record<string, DeviceProfile> = { memcpy: result.devices.memcpy ?? DEVICE_PROFILES.dram };
  for (const name of Object.keys(result.devices)) if (name !== 'memcpy') devices[name] = slow;
  return devices;
}

const stallOf = (r: Replayed) => (r.totalNs > 0 ? (r.totalNs - r.computeNs) / r.totalNs : 0);

/** Replays `actions` at `speedup` with scaled bandwidth until the stall is at most `threshold`; null if never. */
function bandwidthToRemoveStall(
  result: RunResult,
  profile: DeviceProfile,
  speedup: number,
  threshold: number,
): number | null {
  const scale = 1 / speedup;
  const stallWith = (factor: number) =>
    stallOf(replay(result.actions, devicesFor(result, scaleBandwidth(profile, factor)), scale));
  // Stall falls monotonically as bandwidth grows (every transfer ends no later), so search the factor in log space.
  let lo = 1;
  let hi = 1;
  let found = false;
  for (let k = 0; k < 24 && !found; k++) {
    hi *= 2;
    if (stallWith(hi) <= threshold) found = true;
  }
  if (!found) return null;
  for (let k = 0; k < 24; k++) {
    const mid = Math.sqrt(lo * hi);
    if (stallWith(mid) <= threshold) hi = mid;
    else lo = mid;
  }
  return profile.readBytesPerNs * hi;
}

function prediction(
  result: RunResult,
  profile: DeviceProfile,
  speedup: number,
  threshold: number,
  timed: Replayed,
): WhatIfPrediction {
  const stall = stallOf(timed);
  return {
    speedup,
    device: profile.name,
    totalNs: timed.totalNs,
    computeNs: timed.computeNs,
    stallNs: timed.totalNs - timed.computeNs,
    stallFraction: stall,
    slowTierBound: stall > threshold,
    averageReadGBps: timed.computeNs > 0 ? result.summary.slowBytesRead / timed.computeNs : 0,
    bandwidthToRemoveStallGBps:
      stall > threshold ? bandwidthToRemoveStall(result, profile, speedup, threshold) : null,
  };
}

/** Smallest speed-up in [1, max] whose stall exceeds `threshold` (searched in log space), or null. */
function bottleneckSpeedupSync(
  stallAt: (speedup: number) => number,
  threshold: number,
  max: number,
  iterations: number,
): number | null {
  if (stallAt(1) > threshold) return 1;
  if (stallAt(max) <= threshold) return null;
  let lo = 1;
  let hi = max;
  for (let k = 0; k < iterations; k++) {
    const mid = Math.sqrt(lo * hi);
    if (stallAt(mid) > threshold) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** {@link bottleneckSpeedupSync} for stall functions that re-simulate. */
async function bottleneckSpeedup(
  stallAt: (speedup: number) => Promise<number>,
  threshold: number,
  max: number,
  iterations: number,
): Promise<number | null> {
  if ((await stallAt(1)) > threshold) return 1;
  if ((await stallAt(max)) <= threshold) return null;
  let lo = 1;
  let hi = max;
  for (let k = 0; k < iterations; k++) {
    const mid = Math.sqrt(lo * hi);
    if ((await stallAt(mid)) > threshold) hi = mid;
    else lo = mid;
  }
  return hi;
}

function findings(report: Omit<WhatIfReport, 'findings'>, maxSpeedup: number): string[] {
  const threshold = report.stallThreshold;
  const out: string[] = [];
  const plan = report.plan === 'fixed' ? 'with the recorded plan' : 'with the plan redone for that speed';
  for (const b of report.bottlenecks) {
    out.push(
      b.speedup === null
        ? `${b.device}: never the bottleneck up to ${maxSpeedup}× faster compute (stall ≤ ${(threshold * 100).toFixed(0)} %, ${plan}).`
        : b.speedup === 1
          ? `${b.device}: already the bottleneck at today's compute speed.`
          : `${b.device}: becomes the bottleneck once compute is ${b.speedup.toPrecision(3)}× faster (${plan}).`,
    );
  }
  for (const p of report.predictions) {
    if (!p.slowTierBound || p.speedup === 1) continue;
    out.push(
      `${p.speedup}× faster compute on ${p.device}: ${(p.stallFraction * 100).toFixed(1)} % stall; ` +
        (p.bandwidthToRemoveStallGBps === null
          ? 'more bandwidth alone does not remove it (latency or dependency bound for this plan).'
          : `about ${p.bandwidthToRemoveStallGBps.toPrecision(3)} GB/s read would bring it under ` +
            `${(threshold * 100).toFixed(0)} % (average need ${p.averageReadGBps.toPrecision(3)} GB/s).`),
    );
  }
  return out;
}

function resolveOptions(options: WhatIfOptions) {
  const speedups = options.speedups ?? [1, 10, 100];
  const threshold = options.stallThreshold ?? 0.05;
  const maxSpeedup = options.maxSpeedup ?? 1000;
  check(
    speedups.every((s) => s > 0),
    () => `speedups = ${speedups.join(', ')}: expected positive numbers`,
  );
  check(threshold > 0 && threshold < 1, () => `stallThreshold = ${threshold}: expected a value in (0, 1)`);
  const profiles = (options.devices ?? Object.keys(DEVICE_PROFILES)).map((d) =>
    typeof d === 'string' ? deviceProfile(d) : d,
  );
  return { speedups, threshold, maxSpeedup, profiles };
}

/**
 * Predicts, from a run's recorded action log (its plan: which objects move when, with dependencies), the run time
 * with compute 10× and 100× faster (or other speed-ups) and with each device profile as the slow tier, by
 * re-timing the same plan on the virtual clock. Reports when the slow tier becomes the bottleneck and the read
 * bandwidth that would remove the stall (searched by replaying with scaled bandwidth).
 *
 * The plan is fixed: HomE plans prefetches just in time for the recorded compute speed, so for large speed-ups
 * this overstates the stall; {@link whatIfReplanned} plans again for each configuration.
 *
 * @example
 * ```ts
 * const result = simulate(deepCnnProgram(), { policy: 'home', dramBudgetBytes: 600e6, slow: 'nvme-gen4' });
 * const report = whatIf(result, { speedups: [1, 10, 100] });
 * console.log(report.findings.join('\n'));
 * ```
 */
export function whatIf(result: RunResult, options: WhatIfOptions = {}): WhatIfReport {
  const { speedups, threshold, maxSpeedup, profiles } = resolveOptions(options);
  const predictions: WhatIfPrediction[] = [];
  const bottlenecks: BottleneckPoint[] = [];
  for (const profile of profiles) {
    const devices = devicesFor(result, profile);
    for (const speedup of speedups) {
      predictions.push(
        prediction(result, profile, speedup, threshold, replay(result.actions, devices, 1 / speedup)),
      );
    }
    const stallAt = (speedup: number) => stallOf(replay(result.actions, devices, 1 / speedup));
    bottlenecks.push({
      device: profile.name,
      speedup: bottleneckSpeedupSync(stallAt, threshold, maxSpeedup, 24),
    });
  }
  const report = {
    program: result.summary.program,
    policy: result.summary.label,
    plan: 'fixed' as const,
    stallThreshold: threshold,
    baselineTotalNs: replay(result.actions, result.devices, 1).totalNs,
    slowBytesRead: result.summary.slowBytesRead,
    slowBytesWritten: result.summary.slowBytesWritten,
    predictions,
    bottlenecks,
  };
  return { ...report, findings: findings(report, maxSpeedup) };
}

/**
 * Multiplies every step's compute cost by `scale` (0.1 = compute 10× faster).
 *
 * @example
 * ```ts
 * const faster = scaleCompute(program, 0.01);
 * ```
 */
export function scaleCompute(program: AccessProgram, scale: number): AccessProgram {
  return {
    ...program,
    steps: program.steps.map((step) => ({
      ...step,
      computeCostNs: (step.computeCostNs ?? (step.modularMultiplies ?? 0) * 0.4) * scale,
    })),
  };
}

/**
 * Like {@link whatIf}, but the policy plans again for each compute speed and device (re-simulating the program),
 * which is what a deployment would do; the bandwidth search replays each re-planned run.
 *
 * @example
 * ```ts
 * const report = await whatIfReplanned(program, { policy: 'home', dramBudgetBytes: budget }, { speedups: [1, 10, 100] });
 * ```
 */
export async function whatIfReplanned(
  program: AccessProgram,
  config: Omit<SimulationConfig, 'slow'>,
  options: WhatIfOptions = {},
): Promise<WhatIfReport> {
  const { speedups, threshold, maxSpeedup, profiles } = resolveOptions(options);
  const predictions: WhatIfPrediction[] = [];
  const bottlenecks: BottleneckPoint[] = [];
  const run = (speedup: number, profile: DeviceProfile) =>
    simulate(scaleCompute(program, 1 / speedup), { ...config, slow: profile });
  let baseline: RunResult | null = null;
  for (const profile of profiles) {
    for (const speedup of speedups) {
      const result = await run(speedup, profile);
      baseline ??= result;
      const timed = { totalNs: result.summary.totalNs, computeNs: result.summary.computeNs };
      predictions.push(prediction(result, profile, 1, threshold, timed));
      predictions[predictions.length - 1].speedup = speedup;
    }
    const stallAt = async (s: number) => (await run(s, profile)).summary.stallFraction;
    bottlenecks.push({
      device: profile.name,
      speedup: await bottleneckSpeedup(stallAt, threshold, maxSpeedup, 10),
    });
  }
  const first = baseline!;
  const report = {
    program: program.name,
    policy: first.summary.label,
    plan: 'replanned' as const,
    stallThreshold: threshold,
    baselineTotalNs: first.summary.totalNs,
    slowBytesRead: first.summary.slowBytesRead,
    slowBytesWritten: first.summary.slowBytesWritten,
    predictions,
    bottlenecks,
  };
  return { ...report, findings: findings(report, maxSpeedup) };
}
