/**
 * Polynomial substitution of the non-polynomial layers (Relu, Sigmoid, Tanh, MaxPool) so a model can run under
 * CKKS, which only adds and multiplies. Input intervals come from calibration on sample images, widened by a
 * margin. Calibration is sequential by default: layer k's range is measured with the approximations of the layers
 * before it already applied, because that is what its polynomial sees under encryption (an earlier polynomial's
 * error can push values outside the range the exact model shows, and a polynomial diverges quickly outside its
 * interval). Each substitution is reported with its degree, interval and measured accuracy cost against the exact
 * float model.
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
import type { ActivationFunction, ActivationLayer, Layer, LayerModel, MaxPoolLayer } from './layers.ts';
import { ValueSample, leastSquaresChebyshev, maxTreeDifferences } from './least-squares.ts';
import type { Shape } from './layers.ts';
import { shapeSize } from './onnx/graph.ts';
import { argmaxRows, forEachPoolWindow, simulate, simulationChunk } from './simulate.ts';

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
 * Whether some layer of `model` still needs a polynomial approximation (and so calibration) before it compiles.
 *
 * @example
 * ```ts
 * if (awaitsApproximation(model)) model = approximateModel(model, { calibration }).model;
 * ```
 */
export function awaitsApproximation(model: LayerModel): boolean {
  return model.layers.some((l) => needsApproximation(l) && l.approx === undefined);
}

/**
 * A lower bound of the multiplicative depth the compiled model will have, known before any calibration: the
 * longest path of the layer graph counting ⌈log2 d⌉ levels for each polynomial of degree d (the degree each
 * activation has, or will get from `options.degree`), log2(window) of them for a polynomial max pool, one per square or
 * product, and none for linear layers (they may fold into their neighbours). Calibrating a model whose bound
 * already exceeds every secure parameter set would take minutes for nothing.
 *
 * @example
 * ```ts
 * depthLowerBound(model); // 76 for a ResNet-20 with degree-15 ReLUs
 * ```
 */
export function depthLowerBound(
  model: LayerModel,
  options: Pick<ApproximationOptions, 'degree' | 'maxPool'> = {},
): number {
  const degree = options.degree;
  const levels = (d: number) => Math.ceil(Math.log2(Math.max(2, d)));
  const own = (l: Layer): number => {
    switch (l.kind) {
      case 'activation':
        return levels(l.approx ? l.approx.coeffs.length - 1 : degreeFor(degree, l.fn));
      case 'maxPool': {
        if (l.approx?.method === 'average' || (l.approx === undefined && options.maxPool === 'average'))
          return 0;
        const abs =
          l.approx?.method === 'polynomial' ? l.approx.abs.coeffs.length - 1 : degreeFor(degree, 'abs');
        return Math.ceil(Math.log2(l.kernel[0] * l.kernel[1])) * levels(abs);
      }
      case 'square':
        return 1;
      case 'binary':
        return l.op === 'mul' ? 1 : 0;
      default:
        return 0;
    }
  };
  const depthOf = new Map<string, number>();
  let deepest = 0;
  for (const l of model.layers) {
    const d = Math.max(0, ...l.inputs.map((name) => depthOf.get(name) ?? 0)) + own(l);
    depthOf.set(l.output, d);
    deepest = Math.max(deepest, d);
  }
  return deepest;
}

/**
 * Runs the exact float model on sample images and records, for every Relu/Sigmoid/Tanh/MaxPool layer, the minimum
 * and maximum of its input. {@link approximateModel} uses it for the first substitution and, with
 * `calibrationMode: 'exact'`, for all of them; by default it measures the later ones with the earlier
 * approximations applied.
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
  /**
   * How the polynomial is chosen on its interval: `least-squares` (default with calibration images and no Remez
   * iterations) fits the values the layer sees on the calibration images (for MaxPool, the differences its max
   * tree takes), with a small uniform weight over the interval; `interpolation` interpolates at Chebyshev nodes
   * (then refines by Remez if asked), spending the degree evenly over the interval.
   */
  readonly fit?: 'least-squares' | 'interpolation';
  /** `polynomial` (default): max via a polynomial |·|; `average`: replace MaxPool by average pooling. */
  readonly maxPool?: 'polynomial' | 'average';
  /**
   * `sequential` (default): each layer's input range is measured with the approximations of the layers before it
   * applied (what its polynomial sees under encryption); `exact`: every range on the exact model (one pass, but
   * a polynomial downstream of another may then see values outside its interval).
   */
  readonly calibrationMode?: 'sequential' | 'exact';
  /**
   * Measure the accuracy cost of each substitution and of all together (default true): about as many more
   * simulations of the model on the calibration images as there are substitutions. `false` leaves `cost`,
   * `cumulativeCost` and `overall` undefined and halves the work — what a compile that reports no costs wants.
   */
  readonly measureCosts?: boolean;
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
  /**
   * What replaced it: a least-squares fit to the calibration inputs, a Chebyshev interpolant, its Remez
   * refinement, or average pooling.
   */
  readonly method: 'least-squares' | 'chebyshev' | 'remez' | 'average-pool';
  /** Degree of the polynomial (of |·| for MaxPool); 0 for average pooling. */
  readonly degree: number;
  /** Interval the polynomial is fitted on (of the input, or of pairwise differences for MaxPool). */
  readonly interval: readonly [number, number] | undefined;
  /**
   * Input range seen on the calibration images, if any: with the earlier substitutions applied under sequential
   * calibration, on the exact model otherwise. The interval is this range widened by the margin.
   */
  readonly observed: readonly [number, number] | undefined;
  /** Input range on the exact model (equal to `observed` for the first substitution and in `exact` mode). */
  readonly exactObserved: readonly [number, number] | undefined;
  /** Largest |f − p| over the interval. */
  readonly approximationError: number;
  /** Cost of this substitution alone (every other layer exact). */
  readonly cost: AccuracyCost | undefined;
  /** Cost of this substitution together with every earlier one (the last equals the overall cost). */
  readonly cumulativeCost: AccuracyCost | undefined;
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

function fit(
  fn: ScalarFunction,
  interval: readonly [number, number],
  degree: number,
  remez: number,
  samples: Float64Array | undefined,
) {
  const f = SCALAR_FUNCTIONS[fn];
  if (samples !== undefined) {
    const series = leastSquaresChebyshev(f, interval[0], interval[1], degree, samples, {
      ...(fn === 'abs' ? { parity: 'even' as const } : {}),
    });
    return { series, error: maxApproximationError(f, series), method: 'least-squares' as const };
  }
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
 * What a layer's polynomial will be fitted to: its inputs (activations) or the differences its max tree takes
 * (MaxPool), sampled over the calibration images.
 */
function layerSample(layer: ActivationLayer | MaxPoolLayer, images: number, inputShape: Shape): ValueSample {
  const inputSize = shapeSize(inputShape);
  if (layer.kind === 'activation') return new ValueSample(images * inputSize);
  const window = layer.kernel[0] * layer.kernel[1];
  return new ValueSample(images * shapeSize(layer.shape) * Math.max(1, window - 1));
}

function recordSample(
  sample: ValueSample,
  layer: ActivationLayer | MaxPoolLayer,
  input: Float64Array,
  count: number,
  inputShape: Shape,
): void {
  if (layer.kind === 'activation') {
    sample.add(input, 0, count * shapeSize(inputShape));
    return;
  }
  const push = (d: number) => sample.push(d);
  forEachPoolWindow(layer, inputShape, input, count, (window, len, _, columns) =>
    maxTreeDifferences(window, len, columns, push),
  );
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
  const approx = simulate(model, data.images, data.count, {
    mode: 'polynomial',
    requireApproximations: requireAll,
  });
  return compareLogits(approx, exact, data.count, shapeSize(model.outputShape));
}

function compareLogits(
  approx: Float64Array,
  exact: Float64Array,
  count: number,
  classes: number,
): AccuracyCost {
  const a = argmaxRows(exact, count, classes);
  const b = argmaxRows(approx, count, classes);
  let agree = 0;
  for (let i = 0; i < count; i++) if (a[i] === b[i]) agree++;
  let worst = 0;
  for (let i = 0; i < approx.length; i++) {
    const d = Math.abs(approx[i] - exact[i]);
    // A polynomial blown up outside its interval gives NaN/∞: report it as infinite error, not as 0.
    worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(worst, d);
  }
  return { images: count, top1Agreement: agree / count, maxAbsLogitError: worst };
}

/** Minimum, maximum and count of non-finite values of one layer's input over a simulation pass. */
class RangeRecorder {
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  nonFinite = 0;
  record(input: Float64Array, end: number): void {
    let { min, max } = this;
    for (let i = 0; i < end; i++) {
      const v = input[i];
      if (v < min) min = v;
      if (v > max) max = v;
      if (!Number.isFinite(v)) this.nonFinite++;
    }
    this.min = min;
    this.max = max;
  }
}

/** Thrown by a calibration pass's layer hook to stop the simulation once it has what it came for. */
const STOP = Symbol('stop');

/**
 * Attaches a polynomial approximation to every Relu/Sigmoid/Tanh layer and a polynomial max (or, with
 * `maxPool: 'average'`, average pooling) to every MaxPool layer, and reports each substitution. With calibration
 * images the layers are calibrated in order, each with the earlier approximations applied (one float simulation
 * per substitution), unless `calibrationMode: 'exact'`.
 *
 * @throws InvalidArgumentError when a layer needs an interval and neither `intervals` nor `calibration` gives one,
 *   when an earlier approximation makes a layer's input non-finite on the calibration images, or when options are
 *   out of range.
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
  const fitMode =
    options.fit ?? (options.calibration !== undefined && remez === 0 ? 'least-squares' : 'interpolation');
  check(
    fitMode === 'least-squares' || fitMode === 'interpolation',
    () => `fit = ${String(fitMode)}: expected 'least-squares' or 'interpolation'`,
  );
  check(
    fitMode === 'interpolation' || remez === 0,
    () =>
      `remezIterations = ${remez} with fit 'least-squares': Remez refines an interpolant; pass fit: 'interpolation'`,
  );
  const averaged = (l: Layer) => l.kind === 'maxPool' && maxPoolMode === 'average';
  const calibrationMode = options.calibrationMode ?? 'sequential';
  check(
    calibrationMode === 'sequential' || calibrationMode === 'exact',
    () => `calibrationMode = ${String(calibrationMode)}: expected 'sequential' or 'exact'`,
  );
  const targets = model.layers.filter(needsApproximation);
  const calibration = options.calibration;
  const exactRanges =
    calibration !== undefined && targets.length > 0
      ? calibrate(model, calibration)
      : new Map<string, LayerRange>();
  const exact =
    calibration === undefined || options.measureCosts === false
      ? undefined
      : simulate(model, calibration.images, calibration.count);
  const classes = shapeSize(model.outputShape);

  const replaced = new Map<string, Layer>();
  const current = (): LayerModel => ({
    ...model,
    layers: model.layers.map((l) => replaced.get(l.name) ?? l),
  });
  const drafts: Omit<Substitution, 'cost' | 'cumulativeCost'>[] = [];
  const cumulative: AccuracyCost[] = [];
  for (const [k, layer] of targets.entries()) {
    const op = layer.kind === 'activation' ? OP_NAMES[layer.fn] : 'MaxPool';
    const exactRange = exactRanges.get(layer.name);
    const exactObserved: [number, number] | undefined =
      exactRange === undefined ? undefined : [exactRange.min, exactRange.max];
    let observed = exactObserved;
    const sequential = calibration !== undefined && calibrationMode === 'sequential' && k > 0;
    const wantSample = calibration !== undefined && fitMode === 'least-squares' && !averaged(layer);
    let sample: ValueSample | undefined;
    if (calibration !== undefined && (sequential || wantSample)) {
      // One pass (with the earlier substitutions applied under sequential calibration): this layer's input range
      // as its polynomial will see it, the values to fit it to, and (from the same logits) the cost of the
      // earlier substitutions together.
      const seen = new RangeRecorder();
      // Without costs to measure, the layers after this one need not run: the pass stops once it has seen this
      // layer's input (on a ResNet-20 that halves the calibration time). Chunks of images run one after the
      // other, so a chunk's pass stops at the layer, then the next chunk starts.
      const stopEarly = exact === undefined;
      let logits: Float64Array | undefined;
      const onLayer = (
        l: Layer,
        input: Float64Array,
        count: number,
        inputSize: number,
        inputShape: readonly number[],
      ) => {
        if (l.name !== layer.name) return;
        seen.record(input, count * inputSize);
        if (wantSample) {
          sample ??= layerSample(layer, calibration.count, inputShape);
          recordSample(sample, layer, input, count, inputShape);
        }
        if (stopEarly) throw STOP;
      };
      const pass = (images: Float64Array | Float32Array, count: number) =>
        simulate(sequential ? current() : model, images, count, {
          mode: 'polynomial',
          requireApproximations: false,
          chunkSize: count,
          onLayer,
        });
      if (stopEarly) {
        const size = shapeSize(model.inputShape);
        const chunk = simulationChunk(model);
        for (let first = 0; first < calibration.count; first += chunk) {
          const n = Math.min(chunk, calibration.count - first);
          try {
            pass(calibration.images.subarray(first * size, (first + n) * size), n);
          } catch (error) {
            if (error !== STOP) throw error;
          }
        }
      } else logits = pass(calibration.images, calibration.count);
      if (sequential) {
        if (exact !== undefined && logits !== undefined)
          cumulative.push(compareLogits(logits, exact, calibration.count, classes));
        if (seen.nonFinite > 0 || !Number.isFinite(seen.min) || !Number.isFinite(seen.max)) {
          throw new InvalidArgumentError(
            `layer '${layer.name}' (${op}, ONNX node ${layer.sources.join('+')}): its input is not finite on the ` +
              `calibration images once the earlier approximations (${drafts.map((d) => d.layer).join(', ')}) are ` +
              'applied: expected finite values; lower their degrees or widen their margin',
          );
        }
        observed = [seen.min, seen.max];
      }
    }
    const samples = sample?.values();
    const explicit = options.intervals?.[layer.name];
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
        exactObserved,
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
      const { series, error, method } = fit(layer.fn, input, degree, remez, samples);
      replaced.set(layer.name, { ...layer, approx: series });
      drafts.push({
        layer: layer.name,
        nodes: layer.sources,
        op,
        method,
        degree,
        interval: [series.a, series.b],
        observed,
        exactObserved,
        approximationError: error,
      });
    } else {
      // Pairwise differences of values in [lo, hi] lie in [−(hi−lo), hi−lo]; every max of the tree stays in [lo, hi].
      // With samples of the differences, their largest magnitude widened by the margin is the tighter bound (the
      // same calibration that bounds the inputs): the degree is then spent where the differences are.
      let width = input[1] - input[0];
      if (sample !== undefined && sample.offered > 0 && explicit === undefined) {
        width = Math.min(width, widenInterval(-sample.largestMagnitude, sample.largestMagnitude, margin)[1]);
      }
      const degree = degreeFor(options.degree, 'abs');
      const { series, error, method } = fit('abs', [-width, width], degree, remez, samples);
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
        exactObserved,
        approximationError: error,
      });
    }
  }
  const approximated = current();
  if (calibration === undefined || exact === undefined) {
    return {
      model: approximated,
      substitutions: drafts.map((d) => ({ ...d, cost: undefined, cumulativeCost: undefined })),
      overall: undefined,
    };
  }
  const overall = measureCost(approximated, calibration, exact, true);
  const substitutions = drafts.map((d, k) => {
    const single: LayerModel = {
      ...model,
      layers: model.layers.map((l) => (l.name === d.layer ? (replaced.get(l.name) ?? l) : l)),
    };
    // Sequential calibration measured the running costs on the way; exact calibration measures them now.
    const cumulativeCost =
      k === drafts.length - 1
        ? overall
        : (cumulative[k] ?? measureCost(prefixModel(model, replaced, drafts, k), calibration, exact));
    return { ...d, cost: measureCost(single, calibration, exact), cumulativeCost };
  });
  return { model: approximated, substitutions, overall };
}

/** The model with substitutions 0 … k applied and the later ones left exact. */
function prefixModel(
  model: LayerModel,
  replaced: ReadonlyMap<string, Layer>,
  drafts: readonly { readonly layer: string }[],
  k: number,
): LayerModel {
  const applied = new Set(drafts.slice(0, k + 1).map((d) => d.layer));
  return {
    ...model,
    layers: model.layers.map((l) => (applied.has(l.name) ? (replaced.get(l.name) ?? l) : l)),
  };
}
