/**
 * The float simulator: a float64 reference executor of the layer IR, batched over images. Encrypted outputs are
 * compared against it. `exact` mode evaluates every layer as the ONNX model defines it; `polynomial` mode replaces
 * non-polynomial layers by the approximations `approximateModel` attached, i.e. computes what the encrypted
 * circuit computes, minus the CKKS noise.
 */
import { assertInteger, check } from '../util/assert.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import {
  type ChebyshevSeries,
  SCALAR_FUNCTIONS,
  evaluateChebyshev,
  evaluateChebyshevInto,
} from './chebyshev.ts';
import type {
  AffineLayer,
  AvgPoolLayer,
  ConvLayer,
  DenseLayer,
  Layer,
  LayerModel,
  MaxPoolLayer,
  Shape,
} from './layers.ts';
import { shapeSize } from './onnx/graph.ts';

/**
 * `exact`: the model as defined; `polynomial`: with the attached polynomial approximations.
 *
 * @example
 * ```ts
 * const mode: SimulationMode = 'polynomial';
 * ```
 */
export type SimulationMode = 'exact' | 'polynomial';

/**
 * Options of {@link simulate}.
 *
 * @example
 * ```ts
 * simulate(model, images, count, { mode: 'polynomial', chunkSize: 128 });
 * ```
 */
export interface SimulateOptions {
  readonly mode?: SimulationMode;
  /**
   * In polynomial mode, throw when a Relu/Sigmoid/Tanh/MaxPool layer has no approximation (default true). With
   * false such layers run exactly, which measures the cost of a subset of substitutions.
   */
  readonly requireApproximations?: boolean;
  /** Images evaluated together; bounds the working memory. Default: up to 256, fewer for large models. */
  readonly chunkSize?: number;
  /**
   * Called before each layer runs with its first input (`count` images × `inputSize` values of shape `inputShape`,
   * C order); used by calibration. The buffer is reused afterwards: copy what you keep.
   */
  readonly onLayer?: (
    layer: Layer,
    input: Float64Array,
    count: number,
    inputSize: number,
    inputShape: Shape,
  ) => void;
}

/**
 * Images {@link simulate} runs together by default: up to 256, fewer when the model's activations for one image
 * are large (their buffers stay within 2^24 values).
 *
 * @example
 * ```ts
 * const chunk = simulationChunk(model);
 * ```
 */
export function simulationChunk(model: LayerModel): number {
  let perImage = shapeSize(model.inputShape);
  for (const l of model.layers) if (l.kind !== 'reshape') perImage += shapeSize(l.shape);
  return Math.max(1, Math.min(256, Math.floor(2 ** 24 / perImage)));
}

function convolve(l: ConvLayer, inShape: Shape, x: Float64Array, y: Float64Array, n: number): void {
  const [c, h, w] = inShape;
  const [m, oh, ow] = l.shape;
  const [kh, kw] = l.kernel;
  const [sh, sw] = l.strides;
  const [pt, pl] = l.pads;
  const cpg = c / l.group;
  const mpg = m / l.group;
  const inSize = c * h * w;
  const outSize = m * oh * ow;
  // Valid output-column range per kernel column, so the inner loop has no bounds test.
  const oxFrom = new Int32Array(kw);
  const oxTo = new Int32Array(kw);
  for (let kx = 0; kx < kw; kx++) {
    oxFrom[kx] = Math.max(0, Math.ceil((pl - kx) / sw));
    oxTo[kx] = Math.min(ow - 1, Math.floor((w - 1 + pl - kx) / sw));
  }
  const wt = l.weight;
  for (let b = 0; b < n; b++) {
    const inBase = b * inSize;
    const outBase = b * outSize;
    for (let o = 0; o < m; o++) {
      const plane = outBase + o * oh * ow;
      y.fill(l.bias[o], plane, plane + oh * ow);
      const g = Math.floor(o / mpg);
      for (let ci = 0; ci < cpg; ci++) {
        const channel = inBase + (g * cpg + ci) * h * w;
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            const weight = wt[((o * cpg + ci) * kh + ky) * kw + kx];
            if (weight === 0) continue;
            const from = oxFrom[kx];
            const to = oxTo[kx];
            for (let oy = 0; oy < oh; oy++) {
              const iy = oy * sh - pt + ky;
              if (iy < 0 || iy >= h) continue;
              const row = channel + iy * w - pl + kx;
              const out = plane + oy * ow;
              for (let ox = from; ox <= to; ox++) y[out + ox] += weight * x[row + ox * sw];
            }
          }
        }
      }
    }
  }
}

function dense(l: DenseLayer, x: Float64Array, y: Float64Array, n: number): void {
  const k = l.inFeatures;
  const m = l.outFeatures;
  const wt = l.weight;
  for (let b = 0; b < n; b++) {
    const xb = b * k;
    for (let o = 0; o < m; o++) {
      let s = l.bias[o];
      const row = o * k;
      for (let i = 0; i < k; i++) s += wt[row + i] * x[xb + i];
      y[b * m + o] = s;
    }
  }
}

function affine(l: AffineLayer, x: Float64Array, y: Float64Array, n: number): void {
  const size = shapeSize(l.shape);
  const spatial = size / l.shape[0];
  for (let b = 0; b < n; b++) {
    const base = b * size;
    for (let i = 0; i < size; i++) {
      const k = l.broadcast === 'scalar' ? 0 : l.broadcast === 'channel' ? Math.floor(i / spatial) : i;
      y[base + i] = x[base + i] * l.scale[k] + l.shift[k];
    }
  }
}

/** Reduces a pooling window of `length` values, `columns` per row (row-major). */
type Reducer = (window: Float64Array, length: number, columns: number) => number;

function pool(
  l: AvgPoolLayer | MaxPoolLayer,
  inShape: Shape,
  x: Float64Array,
  y: Float64Array,
  n: number,
  reduce: Reducer,
  fullDivisor: boolean,
): void {
  const [kh, kw] = l.kernel;
  forEachPoolWindow(l, inShape, x, n, (window, len, out, columns) => {
    const v = reduce(window, len, columns);
    y[out] = fullDivisor ? (v * len) / (kh * kw) : v;
  });
}

/**
 * Calls `visit` with the values of every window of a pooling layer (row-major within the window, padding left
 * out), `len` of them, the window's output index and its width (`columns` values per row, `len / columns` rows), for
 * `n` images of shape `inShape` in `x`. The window buffer is reused between calls.
 *
 * @example
 * ```ts
 * forEachPoolWindow(layer, [8, 28, 28], input, count, (window, len, _, columns) =>
 *   maxTreeDifferences(window, len, columns, push),
 * );
 * ```
 */
export function forEachPoolWindow(
  l: AvgPoolLayer | MaxPoolLayer,
  inShape: Shape,
  x: Float64Array,
  n: number,
  visit: (window: Float64Array, len: number, outputIndex: number, columns: number) => void,
): void {
  const [c, h, w] = inShape;
  const [, oh, ow] = l.shape;
  const [kh, kw] = l.kernel;
  const [sh, sw] = l.strides;
  const [pt, pl] = l.pads;
  const window = new Float64Array(kh * kw);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const inPlane = (b * c + ch) * h * w;
      const outPlane = (b * c + ch) * oh * ow;
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let len = 0;
          let columns = 0;
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * sh - pt + ky;
            if (iy < 0 || iy >= h) continue;
            columns = 0;
            for (let kx = 0; kx < kw; kx++) {
              const ix = ox * sw - pl + kx;
              if (ix >= 0 && ix < w) {
                window[len++] = x[inPlane + iy * w + ix];
                columns++;
              }
            }
          }
          visit(window, len, outPlane + oy * ow + ox, columns);
        }
      }
    }
  }
}

const mean: Reducer = (v, len) => {
  let s = 0;
  for (let i = 0; i < len; i++) s += v[i];
  return s / len;
};

const max: Reducer = (v, len) => {
  let m = v[0];
  for (let i = 1; i < len; i++) if (v[i] > m) m = v[i];
  return m;
};

/** The encrypted max: pairwise trees ({@link reduceWindowRows}) of (a+b)/2 + p(a−b)/2 with p ≈ |·|. */
function polynomialMax(abs: ChebyshevSeries): Reducer {
  return (v, len, columns) =>
    reduceWindowRows(v, len, columns, (a, b) => (a + b) / 2 + evaluateChebyshev(abs, a - b) / 2);
}

/**
 * Reduces a row-major window in place the way the encrypted max does: each row of `columns` values by
 * {@link reducePairwise}, then the row results by the same tree. Under latency packing the rows' reductions are
 * one computation on the whole ciphertext (rotations along a row), and so is the reduction across rows: a k×k
 * window costs 2(k−1) maxima instead of k²−1, at the same depth when k is a power of two or 3.
 *
 * @internal
 * @example
 * ```ts
 * reduceWindowRows(Float64Array.of(1, 4, 2, 3), 4, 2, Math.max); // max(max(1, 4), max(2, 3)) = 4
 * ```
 */
export function reduceWindowRows(
  v: Float64Array,
  len: number,
  columns: number,
  combine: (a: number, b: number) => number,
): number {
  if (columns <= 0 || len % columns !== 0) {
    throw new InvalidArgumentError(
      `a pooling window of ${len} values in rows of ${columns}: expected whole rows`,
    );
  }
  const rows = len / columns;
  for (let r = 0; r < rows; r++)
    v[r] = reducePairwise(v.subarray(r * columns, (r + 1) * columns), columns, combine);
  return reducePairwise(v, rows, combine);
}

/**
 * Reduces `v[0 … len)` in place by the encrypted max's tree: pairs in order (0,1), (2,3), …, an odd last value
 * carried up, each level's results paired again; returns the last value. The compiler's max tree pairs the same
 * way, and calibration samples the differences through this walk.
 *
 * @internal
 * @example
 * ```ts
 * reducePairwise(Float64Array.of(1, 4, 2, 3), 4, Math.max); // 4
 * ```
 */
export function reducePairwise(
  v: Float64Array,
  len: number,
  combine: (a: number, b: number) => number,
): number {
  let k = len;
  while (k > 1) {
    const half = k >> 1;
    for (let i = 0; i < half; i++) v[i] = combine(v[2 * i], v[2 * i + 1]);
    if (k % 2 === 1) v[half] = v[k - 1];
    k = half + (k % 2);
  }
  return v[0];
}

function missingApproximation(layer: Layer, what: string): never {
  throw new InvalidArgumentError(
    `layer '${layer.name}' (${what}) has no polynomial approximation: run approximateModel before simulating in polynomial mode`,
  );
}

/**
 * Runs `count` images (C order in the ONNX input layout `model.onnxInputShape`, `count × size` values) through the
 * model and returns the outputs (`count × shapeSize(model.outputShape)`).
 *
 * @throws InvalidArgumentError when the input length does not match, or in polynomial mode when a non-polynomial
 *   layer has no approximation (unless `requireApproximations` is false).
 * @example
 * ```ts
 * const logits = simulate(model, images, 1000);
 * const predicted = argmaxRows(logits, 1000, 10);
 * ```
 */
export function simulate(
  model: LayerModel,
  images: Float64Array | Float32Array,
  count: number,
  options: SimulateOptions = {},
): Float64Array {
  assertInteger(count, 'count', 0);
  const inSize = shapeSize(model.inputShape);
  check(
    images.length >= count * inSize,
    () => `images.length = ${images.length}: expected at least ${count} × ${inSize}`,
  );
  const mode = options.mode ?? 'exact';
  check(
    mode === 'exact' || mode === 'polynomial',
    () => `mode = ${String(mode)}: expected 'exact' or 'polynomial'`,
  );
  const strict = mode === 'polynomial' && (options.requireApproximations ?? true);
  const outSize = shapeSize(model.outputShape);
  const shapes = new Map<string, Shape>([[model.inputName, model.inputShape]]);
  for (const l of model.layers) shapes.set(l.output, l.shape);
  const chunk = options.chunkSize ?? simulationChunk(model);
  assertInteger(chunk, 'chunkSize', 1);
  if (strict) {
    for (const l of model.layers) {
      if (l.kind === 'activation' && l.approx === undefined) missingApproximation(l, l.fn);
      if (l.kind === 'maxPool' && l.approx === undefined) missingApproximation(l, 'maxPool');
    }
  }
  const buffers = new Map<string, Float64Array>();
  const input = new Float64Array(chunk * inSize);
  const result = new Float64Array(count * outSize);
  for (let start = 0; start < count; start += chunk) {
    const n = Math.min(chunk, count - start);
    const permutation = model.inputPermutation;
    if (permutation === undefined) {
      for (let i = 0; i < n * inSize; i++) input[i] = images[start * inSize + i];
    } else {
      for (let b = 0; b < n; b++) {
        const from = (start + b) * inSize;
        for (let j = 0; j < inSize; j++) input[b * inSize + j] = images[from + permutation[j]];
      }
    }
    buffers.set(model.inputName, input);
    for (const l of model.layers) {
      const x = buffers.get(l.inputs[0]);
      const xShape = shapes.get(l.inputs[0]);
      if (x === undefined || xShape === undefined) {
        throw new InvalidArgumentError(
          `layer '${l.name}' reads '${l.inputs[0]}', which no earlier layer writes`,
        );
      }
      options.onLayer?.(l, x, n, shapeSize(xShape), xShape);
      if (l.kind === 'reshape') {
        buffers.set(l.output, x);
        continue;
      }
      let y = buffers.get(l.output);
      if (y === undefined || y === x) {
        y = new Float64Array(chunk * shapeSize(l.shape));
        buffers.set(l.output, y);
      }
      const size = n * shapeSize(l.shape);
      switch (l.kind) {
        case 'conv':
          convolve(l, xShape, x, y, n);
          break;
        case 'dense':
          dense(l, x, y, n);
          break;
        case 'affine':
          affine(l, x, y, n);
          break;
        case 'square':
          for (let i = 0; i < size; i++) y[i] = x[i] * x[i];
          break;
        case 'binary': {
          const z = buffers.get(l.inputs[1]);
          if (z === undefined)
            throw new InvalidArgumentError(`layer '${l.name}' reads '${l.inputs[1]}', which no layer writes`);
          const [c0, c1] = l.coefficients ?? [1, 1];
          if (l.op === 'add') for (let i = 0; i < size; i++) y[i] = c0 * x[i] + c1 * z[i];
          else if (l.op === 'sub') for (let i = 0; i < size; i++) y[i] = c0 * x[i] - c1 * z[i];
          else for (let i = 0; i < size; i++) y[i] = x[i] * z[i];
          break;
        }
        case 'activation': {
          if (mode === 'polynomial' && l.approx !== undefined) {
            evaluateChebyshevInto(l.approx, x.subarray(0, size), y);
          } else {
            const f = SCALAR_FUNCTIONS[l.fn];
            for (let i = 0; i < size; i++) y[i] = f(x[i]);
          }
          break;
        }
        case 'avgPool':
          pool(l, xShape, x, y, n, mean, l.countIncludePad);
          break;
        case 'maxPool': {
          const approx = mode === 'polynomial' ? l.approx : undefined;
          const reducer =
            approx === undefined ? max : approx.method === 'average' ? mean : polynomialMax(approx.abs);
          pool(l, xShape, x, y, n, reducer, false);
          break;
        }
        case 'globalAvgPool': {
          const c = xShape[0];
          const spatial = shapeSize(xShape) / c;
          for (let i = 0; i < n * c; i++) {
            let s = 0;
            for (let k = 0; k < spatial; k++) s += x[i * spatial + k];
            y[i] = s / spatial;
          }
          break;
        }
      }
    }
    const out = buffers.get(model.outputName);
    if (out === undefined)
      throw new InvalidArgumentError(`output '${model.outputName}' is written by no layer`);
    result.set(out.subarray(0, n * outSize), start * outSize);
  }
  return result;
}

/**
 * Index of the largest value of each row (first one on ties).
 *
 * @example
 * ```ts
 * argmaxRows(Float64Array.of(0, 3, 1, 5, 2, 4), 2, 3); // Int32Array [1, 0]
 * ```
 */
export function argmaxRows(values: ArrayLike<number>, rows: number, columns: number): Int32Array {
  assertInteger(rows, 'rows', 0);
  assertInteger(columns, 'columns', 1);
  check(
    values.length >= rows * columns,
    () => `values.length = ${values.length}: expected ${rows} × ${columns}`,
  );
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < columns; c++) if (values[r * columns + c] > values[r * columns + best]) best = c;
    out[r] = best;
  }
  return out;
}
