import { accessSequence } from '../../program/access.ts';
import type { HeProgram } from '../../program/program.ts';
import { scheduleForLocality } from '../plan/locality.ts';
import { HomePolicy } from '../plan/policy.ts';
import type { AccessProgram } from '../../program/access.ts';
import { analyzeProgram } from '../plan/program.ts';

/**
 * HomE as real runs use it: prefetch looks 256 steps ahead and always covers the next 160 whatever the timing model
 * says (a late prefetch stalls compute; an early one only holds memory the admission test has checked is free).
 *
 * @example
 * ```ts
 * const policy = realRunHomePolicy();
 * ```
 */
export function realRunHomePolicy(): HomePolicy {
  return new HomePolicy({ lookahead: 256, minLookaheadSteps: 160 });
}

/** {@link realRunHomePolicy} as plan caches key it (change it with the policy's options or its behaviour). */
export const REAL_RUN_POLICY_KEY = 'home/lookahead-256/min-160/v1';

/**
 * Options of {@link heRuntimeProgram}.
 *
 * @example
 * ```ts
 * const options: HeRuntimeProgramOptions = { schedule: 'locality', nsPerModularMultiply: 0.6 };
 * ```
 */
export interface HeRuntimeProgramOptions {
  /**
   * `program`: instruction order as compiled; `locality`: {@link scheduleForLocality} (dense layers interchanged,
   * layers fused); `auto` (default): whichever of the two keeps fewer bytes of produced values live at once.
   */
  schedule?: 'program' | 'locality' | 'auto';
  /** Nanoseconds per modelled modular multiply, for the planner's compute times (default 0.6). */
  nsPerModularMultiply?: number;
  /** Bytes of produced objects the reordering may keep live at once (see `LocalityOptions.liveCapBytes`). */
  liveCapBytes?: number;
  /** Plaintexts encoded inside the step that reads them instead of being objects (see `accessSequence`). */
  transientPlaintexts?: (index: number) => boolean;
}

/**
 * The HE program as the tiered runtime sees it: its access sequence (objects `ct:N`, `pt:N`, `key:relin`,
 * `key:galois:G` with their exact sizes; one step per instruction, frees folded into the step before), each step
 * timed from its op-table cost at `nsPerModularMultiply`. By default the steps are reordered for locality (dense layers
 * interchanged, layers fused), which keeps the results bit-identical.
 *
 * @example
 * ```ts
 * const runtimeProgram = heRuntimeProgram(compileModel(model).program);
 * ```
 */
export function heRuntimeProgram(program: HeProgram, options: HeRuntimeProgramOptions = {}): AccessProgram {
  const access = accessSequence(program, { transientPlaintexts: options.transientPlaintexts });
  const nsPerMm = options.nsPerModularMultiply ?? 0.6;
  // Timed in place: the sequence is this function's own, and a copy of 10^5 steps doubles its memory.
  for (const step of access.steps) step.computeCostNs = (step.modularMultiplies ?? 0) * nsPerMm;
  const runtime: AccessProgram = access;
  const schedule = options.schedule ?? 'auto';
  if (schedule === 'program') return runtime;
  const reordered = scheduleForLocality(runtime, {
    commutativeOps: ['mul_then_add', 'mul_plain_then_add'],
    liveCapBytes: options.liveCapBytes,
  });
  if (schedule === 'locality') return reordered;
  return analyzeProgram(reordered).peakLiveProducedBytes < analyzeProgram(runtime).peakLiveProducedBytes
    ? reordered
    : runtime;
}
