import { accessSequence } from '../../program/analysis.ts';
import type { HeInstruction, HeProgram } from '../../program/program.ts';
import { check } from '../../util/assert.ts';
import { scheduleForLocality } from '../plan/locality.ts';
import { HomePolicy } from '../plan/policy.ts';
import { analyzeProgram, type Program, type ProgramStep } from '../plan/program.ts';

/**
 * A step of the runtime program made from an HE program: the instruction it runs and its level.
 *
 * @example
 * ```ts
 * const step = runtimeProgram.steps[0] as HeRuntimeStep;
 * program.instructions[step.instruction].op === step.op;
 * ```
 */
export interface HeRuntimeStep extends ProgramStep {
  /** Index into the HE program's instructions. */
  instruction: number;
  level: number;
}

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
}

/**
 * Modular multiplies an instruction performs (element-wise products and NTT butterflies; additions count a
 * quarter), from the standard RNS-CKKS algorithms: hybrid key switching = INTT, ModUp, NTTs of the digits, inner
 * product with the key, ModDown. The planner times steps with it; it is a model, not a measurement.
 *
 * @example
 * ```ts
 * const mm = instructionModularMultiplies(program, program.instructions[0]);
 * ```
 */
export function instructionModularMultiplies(program: HeProgram, ins: HeInstruction): number {
  const p = program.parameters;
  const n = 2 ** program.logN;
  const ppl = p.primesPerLevel ?? 1;
  const base = p.basePrimes ?? (ppl === 1 ? 2 : 3);
  const limbsAt = (level: number) => base + level * ppl;
  const argLevel =
    ins.bytes.args.length > 0 ? Math.round(ins.bytes.args[0] / (n * 4) / 2) : limbsAt(ins.level);
  const l = Math.max(1, Math.min(argLevel, limbsAt(p.depth)));
  const k = p.specialPrimes ?? 1;
  const dnum = Math.ceil(limbsAt(p.depth) / k);
  const ntt = (limbs: number) => limbs * (n / 2) * program.logN;
  const inner = 2 * dnum * (l + k) * n;
  const modDown = 2 * ntt(k) + 2 * k * l * n + ntt(2 * l) + 2 * l * n;
  const decompose = ntt(l) + l * (l + k) * n + ntt(dnum * (l + k));
  const polys = ins.degree + 1;
  switch (ins.op) {
    case 'mul_const':
    case 'mul_then_add':
    case 'mul_plain':
      return 2 * l * n;
    case 'add_const':
    case 'add_plain':
    case 'add':
    case 'sub':
      return (polys * l * n) / 4;
    case 'mul_ct':
    case 'square':
      return 4 * l * n;
    case 'rescale':
    case 'match_scale':
      return polys * (ntt(1) + ntt(l) + l * n);
    case 'drop_level':
      return (polys * l * n) / 4;
    case 'relinearize':
    case 'rotate':
      return decompose + inner + modDown;
    case 'rotate_hoisted':
      return decompose + (ins.steps?.length ?? 1) * (inner + modDown);
    default:
      return 0;
  }
}

/**
 * The HE program as the tiered runtime sees it: objects (ciphertexts `ct:N`, plaintexts `pt:N`, keys
 * `key:relin`, `key:galois:G`) with their exact sizes, and one step per instruction (frees folded into the step
 * before) with its modelled compute time. By default the steps are reordered for locality (dense layers
 * interchanged, layers fused), which keeps the results bit-identical.
 *
 * @example
 * ```ts
 * const runtimeProgram = heRuntimeProgram(compileModel(model).program);
 * ```
 */
export function heRuntimeProgram(program: HeProgram, options: HeRuntimeProgramOptions = {}): Program {
  const access = accessSequence(program);
  const nsPerMm = options.nsPerModularMultiply ?? 0.6;
  const instructions: number[] = [];
  program.instructions.forEach((ins, i) => {
    if (ins.op !== 'free') instructions.push(i);
  });
  check(instructions.length === access.steps.length, () => 'heRuntimeProgram: access sequence out of step');
  const steps: HeRuntimeStep[] = access.steps.map((s, k) => {
    const ins = program.instructions[instructions[k]];
    const mm = instructionModularMultiplies(program, ins);
    return {
      index: s.index,
      op: s.op,
      layer: s.layer,
      reads: s.reads,
      writes: s.writes,
      ...(s.frees ? { frees: s.frees } : {}),
      modularMultiplies: mm,
      computeCostNs: mm * nsPerMm,
      instruction: instructions[k],
      level: ins.level,
    };
  });
  const runtime: Program = { name: program.name, objects: access.objects, steps };
  const schedule = options.schedule ?? 'auto';
  if (schedule === 'program') return runtime;
  const reordered = scheduleForLocality(runtime, {
    commutativeOps: ['mul_then_add'],
    liveCapBytes: options.liveCapBytes,
  });
  if (schedule === 'locality') return reordered;
  return analyzeProgram(reordered).peakLiveProducedBytes < analyzeProgram(runtime).peakLiveProducedBytes
    ? reordered
    : runtime;
}
