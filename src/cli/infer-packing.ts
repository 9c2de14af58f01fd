/**
 * What `home infer` decides before it runs: the packing (`--mode auto` compiles both and keeps the one with the
 * lower estimated time for the images asked) and the per-channel input normalization.
 */
import { basename } from 'node:path';
import { approximateModel, awaitsApproximation } from '../nn/approx.ts';
import { type CompileResult, checkDepthBound, compileModel } from '../nn/compile/index.ts';
import { UnsupportedModelError } from '../nn/errors.ts';
import type { LayerModel } from '../nn/layers.ts';
import { shapeSize } from '../nn/onnx/graph.ts';
import { programModularMultiplies } from '../program/analysis.ts';
import { InvalidArgumentError, SecurityError } from '../util/errors.ts';

/**
 * Compiles the model in the packing asked, or with `auto` in both (latency only with encrypted weights) and keeps
 * the one with the lower estimated evaluation time for `count` images (the op table's cost model); a packing that
 * does not compile is skipped with its reason kept for the error when none does. The approximations are calibrated
 * once, on the whole images in `calibration`. One instruction may hold at most
 * half of `budgetBytes` (hoisted rotations split their keys into groups that fit; see `limits.stepBytes`).
 *
 * @throws UnsupportedModelError (auto) when no packing compiles; the compiler's error when one packing was asked.
 * @example
 * ```ts
 * const { compiled, mode, estimated } = choosePacking(model, { model: path, encryptWeights: false }, 'auto', calibration, 20, 2 ** 31);
 * ```
 */
export function choosePacking(
  model: LayerModel,
  options: { readonly model: string; readonly encryptWeights?: boolean },
  requested: 'auto' | 'batch' | 'latency',
  calibration: Float64Array | Float32Array,
  count: number,
  budgetBytes: number,
): {
  compiled: CompileResult;
  mode: 'batch' | 'latency';
  estimated: { batch: number | null; latency: number | null };
} {
  const size = shapeSize(model.onnxInputShape);
  const needsCalibration = awaitsApproximation(model);
  const calibrationCount = Math.floor(calibration.length / size);
  const encryptWeights = options.encryptWeights === true;
  const calibrationSet = {
    images: calibration.subarray(0, calibrationCount * size),
    count: calibrationCount,
  };
  // A model deeper than any chain runs with bootstraps, which latency packing places; its ReLUs get polynomials
  // as deep as a bootstrap's levels allow beside the layer before them (degree 127 by baby steps and giant
  // steps: 7 levels, with the convolution's 1 the 8 a bootstrap leaves).
  const deep = needsBootstraps(model, requested);
  // Calibrated once for both packings (the approximations do not depend on the packing), without the accuracy
  // costs no one reads here: most of a compile's time is these simulations of the model on the calibration images.
  const approximated = needsCalibration
    ? approximateModel(model, {
        calibration: calibrationSet,
        measureCosts: false,
        ...(deep ? { degree: DEEP_DEGREES } : {}),
      })
    : undefined;
  const compile = (mode: 'batch' | 'latency'): CompileResult => {
    const compiled = compileModel(approximated?.model ?? model, {
      mode,
      encryptWeights,
      name: basename(options.model),
      batchSize: undefined,
      // Memory is the tiered runtime's to manage: the compiler refuses only what cannot be compiled at all.
      limits: {
        memoryBytes: Number.POSITIVE_INFINITY,
        stepBytes: Number.isFinite(budgetBytes) ? Math.floor(budgetBytes / 2) : Number.POSITIVE_INFINITY,
      },
      ...(needsCalibration ? { calibration: calibrationSet } : {}),
      ...(deep ? { polynomials: 'bsgs' as const } : {}),
    });
    return approximated
      ? { ...compiled, substitutions: approximated.substitutions, approximationCost: approximated.overall }
      : compiled;
  };
  const modes: ('batch' | 'latency')[] =
    requested !== 'auto' ? [requested] : encryptWeights || deep ? ['latency'] : ['batch', 'latency'];
  const estimated: { batch: number | null; latency: number | null } = { batch: null, latency: null };
  let best: { compiled: CompileResult; mode: 'batch' | 'latency'; seconds: number } | undefined;
  const errors: string[] = [];
  for (const mode of modes) {
    let compiled: CompileResult;
    try {
      compiled = compile(mode);
    } catch (error) {
      if (modes.length === 1) throw error;
      errors.push(`${mode}: ${(error as Error).message}`);
      continue;
    }
    const program = compiled.program;
    const seconds =
      Math.ceil(count / program.batchSize) *
      programModularMultiplies(program) *
      NS_PER_MODULAR_MULTIPLY *
      1e-9;
    estimated[mode] = round(seconds, 3);
    if (!best || seconds < best.seconds) best = { compiled, mode, seconds };
  }
  if (!best) {
    throw new UnsupportedModelError(`--mode auto: no packing compiles this model (${errors.join('; ')})`);
  }
  return { compiled: best.compiled, mode: best.mode, estimated };
}

/**
 * Whether `model` is deeper than any chain, so that it needs bootstraps (latency packing, {@link DEEP_DEGREES}).
 *
 * @throws SecurityError (the depth bound's) when it is and `mode` is batch, which has no bootstraps.
 * @example
 * ```ts
 * const deep = needsBootstraps(model, 'auto');
 * ```
 */
export function needsBootstraps(model: LayerModel, mode: 'auto' | 'batch' | 'latency'): boolean {
  try {
    checkDepthBound(model);
    return false;
  } catch (error) {
    if (!(error instanceof SecurityError) || mode === 'batch') throw error;
    return true;
  }
}

/**
 * Polynomial degrees of a network that needs bootstraps (see `choosePacking`).
 *
 * @example
 * ```ts
 * approximateModel(model, { calibration, degree: DEEP_DEGREES });
 * ```
 */
export const DEEP_DEGREES = { relu: 127 } as const;

/** The op-table cost model's time per modular multiply (ns), for comparing packings. */
const NS_PER_MODULAR_MULTIPLY = 0.6;

/**
 * `(x − mean[c]) / std[c]` in place for every image (C order, channel first); `mean`/`std` have one entry or one
 * per channel.
 *
 * @throws InvalidArgumentError naming the flag for a wrong count of values, a non-finite value or a zero std.
 * @example
 * ```ts
 * normalizeChannels(images, [3, 32, 32], [0.4914, 0.4822, 0.4465], [0.247, 0.243, 0.261]);
 * ```
 */
export function normalizeChannels(
  images: Float64Array | Float32Array,
  shape: readonly number[],
  mean: readonly number[] | undefined,
  std: readonly number[] | undefined,
): void {
  if (mean === undefined && std === undefined) return;
  const dims = shape.length === 4 ? shape.slice(1) : shape;
  const channels = dims.length === 3 ? dims[0] : 1;
  const size = shapeSize(shape);
  const perChannel = size / channels;
  const expand = (values: readonly number[] | undefined, flag: string, fallback: number): number[] => {
    if (values === undefined) return new Array<number>(channels).fill(fallback);
    if (values.length !== 1 && values.length !== channels) {
      throw new InvalidArgumentError(
        `${flag} ${values.join(',')}: expected ${channels === 1 ? '1 value' : `1 or ${channels} values`} (the model's input has ${channels} channel${channels > 1 ? 's' : ''})`,
      );
    }
    for (const v of values) {
      if (!Number.isFinite(v))
        throw new InvalidArgumentError(`${flag} ${values.join(',')}: expected finite numbers`);
    }
    return values.length === 1 ? new Array<number>(channels).fill(values[0]) : [...values];
  };
  const m = expand(mean, '--input-mean', 0);
  const s = expand(std, '--input-std', 1);
  for (const v of s) {
    if (v === 0) throw new InvalidArgumentError(`--input-std ${s.join(',')}: expected non-zero values`);
  }
  for (let i = 0; i < images.length; i++) {
    const c = Math.floor((i % size) / perChannel);
    images[i] = (images[i] - m[c]) / s[c];
  }
}

function round(x: number, digits = 6): number {
  return Number(x.toFixed(digits));
}
