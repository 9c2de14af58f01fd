/**
 * Polynomial substitution of the non-polynomial layers (Relu, Sigmoid, Tanh, MaxPool) so a model can run under
 * CKKS, which only adds and multiplies. Input intervals come from calibration: the float model runs on sample
 * images and every such layer's input range is recorded and widened by a margin. Each substitution is reported
 * with its degree, interval and its measured accuracy cost against the exact float model.
 */
import { assertFinite, assertInteger, check } from '../util/assert.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import {
  type ChebyshevSeries,
  SCALAR_FUNCTIONS,
  type ScalarFunction,
  chebyshevInterpolate,
  maxApproximationError,
  remezRefine,
} from './chebyshev.ts';
import { shapeSize } from './graph.ts';
import type { ActivationFunction, ActivationLayer, Layer, LayerModel, MaxPoolLayer } from './layers.ts';
import { argmaxRows, simulate } from './simulate.ts';

export {
  type ChebyshevSeries,
  SCALAR_FUNCTIONS,
  type ScalarFunction,
  chebyshevInterpolate,
  chebyshevToPowerBasis,
  evaluateChebyshev,
  maxApproximationError,
  remezRefine,
} from './chebyshev.ts';

/**
 * Sample images for calibration and accuracy measurement (C order, `count × shapeSize(model.inputShape)`).
 *
 * @example
 * ```ts
 * const samples: CalibrationData = { images: test.data.subarray(0, 500 * 784), count: 500 };
 * ```
 */
export interface CalibrationData {
  readonly images: Float64Array | Float32Array;
  readonly count: number;
}

/**
 * Observed input range of one non-polynomial layer.
 *
 * @example
 * ```ts
 * const r: LayerRange = { layer: 'relu1', min: -3.2, max: 5.1 };
 * ```
 */
export interface LayerRange {
  readonly layer: string;
  readonly min: number;
  readonly max: number;
}

function needsApproximation(l: Layer): l is ActivationLayer | MaxPoolLayer {
  return l.kind === 'activation' || l.kind === 'maxPool';
}

/**
 * Runs the exact float model on sample images and records, for every Relu/Sigmoid/Tanh/MaxPool layer, the minimum
 * and maximum of its input.
 *
 * @example
 * ```ts
 * const ranges = calibrate(model, { images, count: 500 }); // Map 'relu1' → { min, max }
 * ```
 */
export function calibrate(model: LayerModel, data: CalibrationData): Map<string, LayerRange> {
  assertInteger(data.count, 'calibration count', 1);
  const ranges = new Map<string, LayerRange>();
  simulate(model, data.images, data.count, {
    onLayer: (layer, input, count, inputSize) => {
      if (!needsApproximation(layer)) return;
      let min = ranges.get(layer.name)?.min ?? Number.POSITIVE_INFINITY;
      let max = ranges.get(layer.name)?.max ?? Number.NEGATIVE_INFINITY;
      const end = count * inputSize;
      for (let i = 0; i < end; i++) {
        const v = input[i];
        if (v < min) min = v;
        if (v > max) max = v;
      }
      ranges.set(layer.name, { layer: layer.name, min, max });
    },
  });
  return ranges;
}

/**
 * Widens an observed range by `margin` × its width on each side (at least `margin` in absolute terms, so a
 * constant input still gets a proper interval).
 *
 * @example
 * ```ts
 * widenInterval(-1, 3, 0.1); // [-1.4, 3.4]
 * ```
 */
export function widenInterval(min: number, max: number, margin: number): [number, number] {
  assertFinite(min, 'min');
  assertFinite(max, 'max');
  check(min <= max, () => `range [${min}, ${max}]: expected min ≤ max`);
  const pad = Math.max((max - min) * margin, margin, 1e-6);
  return [min - pad, max + pad];
}

/**
 * The polynomial degree per function, or one degree for all.
 *
 * @example
 * ```ts
 * const degree: DegreeOption = { relu: 27, abs: 16 };
 * ```
 */
export type DegreeOption = number | Partial<Record<ScalarFunction, number>>;

/**
 * Options of {@link approximateModel}.
 *
 * @example
 * ```ts
 * approximateModel(model, { calibration: { images, count: 500 }, degree: { relu: 15, abs: 27 }, remezIterations: 10 });
 * ```
 */
export interface ApproximationOptions {
  /** Sample images: give the intervals (unless `intervals` names them) and measure the accuracy cost. */
  readonly calibration?: CalibrationData;
  /** Explicit input intervals per layer name; they take precedence over calibration. */
  readonly intervals?: Readonly<Record<string, readonly [number, number]>>;
  /** Polynomial degree: default relu 15, sigmoid 9, tanh 11, abs (for MaxPool) 16. */
  readonly degree?: DegreeOption;
  /** Relative widening of calibrated ranges on each side (default 0.1). */
  readonly margin?: number;
  /** Remez exchange iterations after Chebyshev interpolation (default 0: plain interpolation). */
  readonly remezIterations?: number;
  /** `polynomial` (default): max via a polynomial |·|; `average`: replace MaxPool by average pooling. */
  readonly maxPool?: 'polynomial' | 'average';
}

/**
 * Accuracy cost of substitutions, measured by the float simulator on the calibration images against the exact
 * float model.
 *
 * @example
 * ```ts
 * if (cost.top1Agreement < 0.99) console.warn(`max logit error ${cost.maxAbsLogitError}`);
 * ```
 */
export interface AccuracyCost {
  readonly images: number;
  /** Fraction of images whose argmax equals the exact model's. */
  readonly top1Agreement: number;
  readonly maxAbsLogitError: number;
}

/**
 * One replaced layer. `cost` is measured with only this substitution applied; it is absent when no calibration
 * images were given.
 *
 * @example
 * ```ts
 * for (const s of result.substitutions) console.log(s.layer, s.op, s.degree, s.interval, s.cost?.top1Agreement);
 * ```
 */
export interface Substitution {
  readonly layer: string;
  /** ONNX nodes of the layer. */
  readonly nodes: readonly string[];
  readonly op: 'Relu' | 'Sigmoid' | 'Tanh' | 'MaxPool';
  /** What replaced it: a Chebyshev interpolant, its Remez refinement, or average pooling. */
  readonly method: 'chebyshev' | 'remez' | 'average-pool';
  /** Degree of the polynomial (of |·| for MaxPool); 0 for average pooling. */
  readonly degree: number;
  /** Interval the polynomial is fitted on (of the input, or of pairwise differences for MaxPool). */
  readonly interval: readonly [number, number] | undefined;
  /** Input range seen on the calibration images, if any. */
  readonly observed: readonly [number, number] | undefined;
  /** Largest |f − p| over the interval. */
  readonly approximationError: number;
  readonly cost: AccuracyCost | undefined;
}

/**
 * A model with approximations attached, the list of substitutions, and the cost of all of them together.
 *
 * @example
 * ```ts
 * const { model: poly, substitutions, overall } = approximateModel(model, { calibration });
 * simulate(poly, images, n, { mode: 'polynomial' });
 * ```
 */
export interface ApproximationResult {
  readonly model: LayerModel;
  readonly substitutions: readonly Substitution[];
  readonly overall: AccuracyCost | undefined;
}

const DEFAULT_DEGREES: Record<ScalarFunction, number> = { relu: 15, sigmoid: 9, tanh: 11, abs: 16 };
const OP_NAMES: Record<ActivationFunction, 'Relu' | 'Sigmoid' | 'Tanh'> = {
  relu: 'Relu',
  sigmoid: 'Sigmoid',
  tanh: 'Tanh',
};

function degreeFor(option: DegreeOption | undefined, fn: ScalarFunction): number {
  const d = typeof option === 'number' ? option : (option?.[fn] ?? DEFAULT_DEGREES[fn]);
  assertInteger(d, `degree for ${fn}`, 1, 255);
  return d;
}

function fit(fn: ScalarFunction, interval: readonly [number, number], degree: number, remez: number) {
  const f = SCALAR_FUNCTIONS[fn];
  const start = chebyshevInterpolate(f, interval[0], interval[1], degree);
  if (remez === 0)
    return { series: start, error: maxApproximationError(f, start), method: 'chebyshev' as const };
  const refined = remezRefine(f, start, remez);
  return {
    series: refined.series,
    error: maxApproximationError(f, refined.series),
    method: 'remez' as const,
  };
}

/**
 * Measures the accuracy cost of a (partly) approximated model against exact logits.
 *
 * @example
 * ```ts
 * const cost = measureCost(poly, calibration, simulate(model, calibration.images, calibration.count));
 * ```
 */
export function measureCost(
  model: LayerModel,
  data: CalibrationData,
  exact: Float64Array,
  requireAll = false,
): AccuracyCost {
  const classes = shapeSize(model.outputShape);
  const approx = simulate(model, data.images, data.count, {
    mode: 'polynomial',
    requireApproximations: requireAll,
  });
  const a = argmaxRows(exact, data.count, classes);
  const b = argmaxRows(approx, data.count, classes);
  let agree = 0;
  for (let i = 0; i < data.count; i++) if (a[i] === b[i]) agree++;
  let worst = 0;
  for (let i = 0; i < approx.length; i++) {
    const d = Math.abs(approx[i] - exact[i]);
    // A polynomial blown up outside its interval gives NaN/∞: report it as infinite error, not as 0.
    worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(worst, d);
  }
  return { images: data.count, top1Agreement: agree / data.count, maxAbsLogitError: worst };
}

/**
 * Attaches a polynomial approximation to every Relu/Sigmoid/Tanh layer and a polynomial max (or, with
 * `maxPool: 'average'`, average pooling) to every MaxPool layer, and reports each substitution.
 *
 * @throws InvalidArgumentError when a layer needs an interval and neither `intervals` nor `calibration` gives one,
 *   or when options are out of range.
 * @example
 * ```ts
 * const result = approximateModel(model, { calibration: { images, count: 256 }, degree: 15, remezIterations: 6 });
 * ```
 */
export function approximateModel(model: LayerModel, options: ApproximationOptions = {}): ApproximationResult {
  const margin = options.margin ?? 0.1;
  assertFinite(margin, 'margin');
  check(margin >= 0, () => `margin = ${margin}: expected ≥ 0`);
  const remez = options.remezIterations ?? 0;
  assertInteger(remez, 'remezIterations', 0, 100);
  const maxPoolMode = options.maxPool ?? 'polynomial';
  check(
    maxPoolMode === 'polynomial' || maxPoolMode === 'average',
    () => `maxPool = ${String(maxPoolMode)}: expected 'polynomial' or 'average'`,
  );
  const targets = model.layers.filter(needsApproximation);
  const calibration = options.calibration;
  const ranges =
    calibration !== undefined && targets.length > 0
      ? calibrate(model, calibration)
      : new Map<string, LayerRange>();

  const replaced = new Map<string, Layer>();
  const drafts: Omit<Substitution, 'cost'>[] = [];
  for (const layer of targets) {
    const observedRange = ranges.get(layer.name);
    const observed: [number, number] | undefined =
      observedRange === undefined ? undefined : [observedRange.min, observedRange.max];
    const explicit = options.intervals?.[layer.name];
    const op = layer.kind === 'activation' ? OP_NAMES[layer.fn] : 'MaxPool';
    if (layer.kind === 'maxPool' && maxPoolMode === 'average') {
      replaced.set(layer.name, { ...layer, approx: { method: 'average' } });
      drafts.push({
        layer: layer.name,
        nodes: layer.sources,
        op,
        method: 'average-pool',
        degree: 0,
        interval: undefined,
        observed,
        approximationError: Number.NaN,
      });
      continue;
    }
    let input: readonly [number, number];
    if (explicit !== undefined) {
      check(
        explicit.length === 2 && explicit[0] < explicit[1],
        () => `intervals['${layer.name}'] = [${explicit.join(', ')}]: expected [a, b] with a < b`,
      );
      input = explicit;
    } else if (observed !== undefined && Number.isFinite(observed[0]) && Number.isFinite(observed[1])) {
      input = widenInterval(observed[0], observed[1], margin);
    } else {
      throw new InvalidArgumentError(
        `layer '${layer.name}' (${op}, ONNX node ${layer.sources.join('+')}) needs an input interval for its polynomial ` +
          `approximation: pass calibration images or intervals['${layer.name}']`,
      );
    }
    if (layer.kind === 'activation') {
      const degree = degreeFor(options.degree, layer.fn);
      const { series, error, method } = fit(layer.fn, input, degree, remez);
      replaced.set(layer.name, { ...layer, approx: series });
      drafts.push({
        layer: layer.name,
        nodes: layer.sources,
        op,
        method,
        degree,
        interval: [series.a, series.b],
        observed,
        approximationError: error,
      });
    } else {
      // Pairwise differences of values in [lo, hi] lie in [−(hi−lo), hi−lo]; every max of the tree stays in [lo, hi].
      const width = input[1] - input[0];
      const degree = degreeFor(options.degree, 'abs');
      const { series, error, method } = fit('abs', [-width, width], degree, remez);
      replaced.set(layer.name, {
        ...layer,
        approx: { method: 'polynomial', abs: series as ChebyshevSeries },
      });
      drafts.push({
        layer: layer.name,
        nodes: layer.sources,
        op,
        method,
        degree,
        interval: [series.a, series.b],
        observed,
        approximationError: error,
      });
    }
  }
  const approximated: LayerModel = { ...model, layers: model.layers.map((l) => replaced.get(l.name) ?? l) };
  if (calibration === undefined) {
    return {
      model: approximated,
      substitutions: drafts.map((d) => ({ ...d, cost: undefined })),
      overall: undefined,
    };
  }
  const exact = simulate(model, calibration.images, calibration.count);
  const substitutions = drafts.map((d) => {
    const single: LayerModel = {
      ...model,
      layers: model.layers.map((l) => (l.name === d.layer ? (replaced.get(l.name) ?? l) : l)),
    };
    return { ...d, cost: measureCost(single, calibration, exact) };
  });
  return { model: approximated, substitutions, overall: measureCost(approximated, calibration, exact, true) };
}
