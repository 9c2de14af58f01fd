/**
 * The canonical layer IR the ONNX graph is lowered to and the CKKS compiler consumes. Shapes are per image (no
 * batch dimension); every activation is a flat C-order vector of `shapeSize(shape)` values, so reshapes are free.
 * Layers are in topological order; each reads named values (the model input or earlier layer outputs) and writes
 * one named value.
 */
import type { ChebyshevSeries } from './chebyshev.ts';

/**
 * A per-image shape: `[C, H, W]` for images and feature maps, `[F]` for feature vectors.
 *
 * @example
 * ```ts
 * const mnist: Shape = [1, 28, 28];
 * ```
 */
export type Shape = readonly number[];

/**
 * Fields every layer has.
 *
 * @example
 * ```ts
 * const describe = (l: LayerBase) => `${l.name} ${l.inputs.join('+')} → ${l.output} [${l.shape.join('×')}]`;
 * ```
 */
export interface LayerBase {
  /** Unique name: the ONNX node name (or `#index`), suffixed when one node yields several layers. */
  readonly name: string;
  /** ONNX node names folded into this layer (e.g. Conv + BatchNormalization), for reports. */
  readonly sources: readonly string[];
  /** Value names read: the model input or earlier layer outputs. */
  readonly inputs: readonly string[];
  /** Value name written. */
  readonly output: string;
  /** Per-image output shape. */
  readonly shape: Shape;
}

/**
 * 2-D convolution: weight `[outChannels, inChannels/group, kh, kw]`, bias `[outChannels]`, pads
 * `[top, left, bottom, right]`. Dilation is always 1.
 *
 * @example
 * ```ts
 * if (layer.kind === 'conv') console.log(layer.kernel, layer.strides, layer.group);
 * ```
 */
export interface ConvLayer extends LayerBase {
  readonly kind: 'conv';
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly pads: readonly [number, number, number, number];
  readonly group: number;
  readonly weight: Float64Array;
  readonly bias: Float64Array;
}

/**
 * Fully connected layer y = W·x + b, weight row-major `[outFeatures, inFeatures]` (input flattened in C order).
 *
 * @example
 * ```ts
 * if (layer.kind === 'dense') console.log(layer.inFeatures, '→', layer.outFeatures);
 * ```
 */
export interface DenseLayer extends LayerBase {
  readonly kind: 'dense';
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Float64Array;
  readonly bias: Float64Array;
}

/**
 * How an {@link AffineLayer}'s scale and shift spread over the activation: one value, one per channel (axis 0 of the
 * per-image shape, constant over the remaining axes), or one per element.
 *
 * @example
 * ```ts
 * const perChannel: Broadcast = 'channel';
 * ```
 */
export type Broadcast = 'scalar' | 'channel' | 'element';

/**
 * Element-wise y = x·scale + shift with constant scale/shift (BatchNormalization that could not be folded, Add/Sub/
 * Mul/Div by constants). `scale` and `shift` have length 1, C or the full size according to `broadcast`.
 *
 * @example
 * ```ts
 * if (layer.kind === 'affine' && layer.broadcast === 'channel') console.log(layer.scale.length); // C
 * ```
 */
export interface AffineLayer extends LayerBase {
  readonly kind: 'affine';
  readonly broadcast: Broadcast;
  readonly scale: Float64Array;
  readonly shift: Float64Array;
}

/**
 * y = x² (from `Mul(x, x)` or `Pow(x, 2)`): the HE-friendly activation of CryptoNets and LoLa.
 *
 * @example
 * ```ts
 * model.layers.filter((l) => l.kind === 'square').length; // multiplicative depth contributed by squarings
 * ```
 */
export interface SquareLayer extends LayerBase {
  readonly kind: 'square';
}

/**
 * Element-wise operation between two activations of the same shape (residual Add, gating Mul).
 *
 * @example
 * ```ts
 * if (layer.kind === 'binary') console.log(layer.op, layer.inputs);
 * ```
 */
export interface BinaryLayer extends LayerBase {
  readonly kind: 'binary';
  readonly op: 'add' | 'sub' | 'mul';
  /**
   * add, sub: c₀·x₀ ± c₁·x₁ (default 1 and 1). Set by the compiler when it folds the interval map of a polynomial
   * reading the sum into the operands (see `foldPolynomialMaps`).
   */
  readonly coefficients?: readonly [number, number];
}

/**
 * The non-polynomial activation functions the importer accepts.
 *
 * @example
 * ```ts
 * const fn: ActivationFunction = 'relu';
 * ```
 */
export type ActivationFunction = 'relu' | 'sigmoid' | 'tanh';

/**
 * A non-polynomial activation. `approx`, set by `approximateModel`, is the polynomial that replaces it under
 * encryption (the float simulator's polynomial mode evaluates it; exact mode ignores it).
 *
 * @example
 * ```ts
 * if (layer.kind === 'activation' && layer.approx) console.log(layer.fn, layer.approx.coeffs.length - 1);
 * ```
 */
export interface ActivationLayer extends LayerBase {
  readonly kind: 'activation';
  readonly fn: ActivationFunction;
  readonly approx?: ChebyshevSeries;
}

/**
 * Window geometry shared by the pooling layers; pads are `[top, left, bottom, right]`.
 *
 * @example
 * ```ts
 * const g: PoolGeometry = { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0] };
 * ```
 */
export interface PoolGeometry {
  readonly kernel: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly pads: readonly [number, number, number, number];
}

/**
 * Average pooling. With `countIncludePad` the divisor is always kh·kw (a plain linear map); without it, windows
 * touching the padding divide by the number of real pixels.
 *
 * @example
 * ```ts
 * if (layer.kind === 'avgPool') console.log(layer.kernel, layer.countIncludePad);
 * ```
 */
export interface AvgPoolLayer extends LayerBase, PoolGeometry {
  readonly kind: 'avgPool';
  readonly countIncludePad: boolean;
}

/**
 * How a max pool is evaluated under encryption: a pairwise tree of max(a, b) = (a+b)/2 + |a−b|/2 with |·|
 * replaced by a polynomial, or plain averaging when the user accepted that substitution.
 *
 * @example
 * ```ts
 * const average: MaxPoolApproximation = { method: 'average' };
 * ```
 */
export type MaxPoolApproximation =
  | { readonly method: 'polynomial'; readonly abs: ChebyshevSeries }
  | { readonly method: 'average' };

/**
 * Max pooling (padding never wins). `approx` is set by `approximateModel`.
 *
 * @example
 * ```ts
 * if (layer.kind === 'maxPool') console.log(layer.approx?.method ?? 'exact');
 * ```
 */
export interface MaxPoolLayer extends LayerBase, PoolGeometry {
  readonly kind: 'maxPool';
  readonly approx?: MaxPoolApproximation;
}

/**
 * Mean over each channel's spatial positions: `[C, H, W]` → `[C, 1, 1]`.
 *
 * @example
 * ```ts
 * if (layer.kind === 'globalAvgPool') console.log(layer.shape); // [C, 1, 1]
 * ```
 */
export interface GlobalAvgPoolLayer extends LayerBase {
  readonly kind: 'globalAvgPool';
}

/**
 * A change of shape that keeps the C-order data (Flatten, Reshape, Squeeze, Unsqueeze, a layout-preserving
 * Transpose): free in the simulator and for ciphertexts.
 *
 * @example
 * ```ts
 * if (layer.kind === 'reshape') console.log(layer.shape);
 * ```
 */
export interface ReshapeLayer extends LayerBase {
  readonly kind: 'reshape';
}

/**
 * Any layer of the IR.
 *
 * @example
 * ```ts
 * function isLinear(l: Layer): boolean { return l.kind === 'conv' || l.kind === 'dense' || l.kind === 'affine'; }
 * ```
 */
export type Layer =
  | ConvLayer
  | DenseLayer
  | AffineLayer
  | SquareLayer
  | BinaryLayer
  | ActivationLayer
  | AvgPoolLayer
  | MaxPoolLayer
  | GlobalAvgPoolLayer
  | ReshapeLayer;

/**
 * A lowered model: one input, one output, a topologically ordered list of layers.
 *
 * @example
 * ```ts
 * const model = importOnnx(bytes);
 * console.log(model.inputShape, model.outputShape, model.layers.map((l) => l.kind), model.droppedSoftmax);
 * ```
 */
export interface LayerModel {
  readonly inputName: string;
  /** Per-image shape the layers take, e.g. `[1, 28, 28]` (channels first). */
  readonly inputShape: Shape;
  /** Per-image shape of the ONNX input, the layout callers pass images in (differs for NHWC exports). */
  readonly onnxInputShape: Shape;
  /**
   * Present when the ONNX graph first transposes its input (e.g. NHWC → NCHW from tf2onnx): entry j is the index in
   * the ONNX-layout image of layer-input value j. Applied by the client when packing, so it costs nothing encrypted.
   */
  readonly inputPermutation?: Int32Array;
  readonly outputName: string;
  readonly outputShape: Shape;
  readonly layers: readonly Layer[];
  /** A final Softmax/LogSoftmax was removed: outputs are logits with the same argmax. */
  readonly droppedSoftmax: boolean;
  /**
   * The batch size the ONNX input fixes (absent when the batch axis is symbolic). HomE computes images one by one
   * whatever it is; only tools that run the ONNX file itself (onnxruntime) must feed batches of this size.
   */
  readonly fixedBatch?: number;
  /** Where the model came from (ONNX header). */
  readonly source: {
    readonly producerName: string;
    readonly producerVersion: string;
    readonly opset: number;
    readonly irVersion: number;
  };
}

/**
 * Number of multiplicative levels a layer consumes under CKKS when evaluated as written (polynomials: ⌈log2 degree⌉
 * + 1 for the Chebyshev basis change). Useful to summarize a model before compiling.
 *
 * @example
 * ```ts
 * const depth = model.layers.reduce((d, l) => d + layerDepth(l), 0);
 * ```
 */
export function layerDepth(layer: Layer): number {
  switch (layer.kind) {
    case 'conv':
    case 'dense':
    case 'avgPool':
    case 'globalAvgPool':
      return 1;
    case 'affine':
      return layer.broadcast === 'scalar' && layer.scale.length === 1 && layer.scale[0] === 1 ? 0 : 1;
    case 'square':
      return 1;
    case 'binary':
      return layer.op === 'mul' ? 1 : 0;
    case 'activation':
      return layer.approx === undefined
        ? 0
        : Math.ceil(Math.log2(Math.max(2, layer.approx.coeffs.length - 1))) + 1;
    case 'maxPool': {
      if (layer.approx === undefined) return 0;
      if (layer.approx.method === 'average') return 1;
      const levels = Math.ceil(Math.log2(layer.kernel[0] * layer.kernel[1]));
      return levels * (Math.ceil(Math.log2(Math.max(2, layer.approx.abs.coeffs.length - 1))) + 1);
    }
    case 'reshape':
      return 0;
  }
}
