/**
 * A small builder of ONNX models, serialized with onnx-proto. Tests use it to make synthetic graphs (Conv, Gemm,
 * BatchNormalization, pooling, activations) with known weights; benchmarks use it to generate models of chosen
 * sizes. Weights are passed in by the caller, so the builder itself holds no randomness.
 */
import onnxProto from 'onnx-proto';
import type { Dim, DType } from '../../src/nn/onnx/graph.ts';
import { check } from '../../src/util/assert.ts';

const { onnx } = onnxProto;

const DATA_TYPES: Record<DType, number> = { float32: 1, float64: 11, int64: 7, int32: 6 };

/**
 * An attribute value: a number is an INT, a number array INTS, a string STRING; wrap floats as `{ float }` /
 * `{ floats }` and tensors as `{ tensor }`.
 *
 * @example
 * ```ts
 * const attrs: Record<string, AttributeSpec> = { strides: [2, 2], alpha: { float: 0.5 }, auto_pad: 'VALID' };
 * ```
 */
export type AttributeSpec =
  | number
  | readonly number[]
  | string
  | { readonly float: number }
  | { readonly floats: readonly number[] }
  | { readonly tensor: TensorSpec };

/**
 * A constant for the builder. `encoding` picks `raw_data` (default) or the typed repeated field.
 *
 * @example
 * ```ts
 * const bias: TensorSpec = { dims: [10], values: new Float32Array(10), encoding: 'typed' };
 * ```
 */
export interface TensorSpec {
  readonly dims: readonly number[];
  readonly values: ArrayLike<number>;
  readonly dtype?: DType;
  readonly encoding?: 'raw' | 'typed';
}

function tensorProto(name: string, spec: TensorSpec): onnxProto.onnx.ITensorProto {
  const dtype = spec.dtype ?? 'float32';
  const n = spec.dims.reduce((p, d) => p * d, 1);
  check(
    spec.values.length === n,
    () => `tensor '${name}': ${spec.values.length} values for dims [${spec.dims.join(', ')}]`,
  );
  const proto: onnxProto.onnx.ITensorProto = { name, dims: [...spec.dims], dataType: DATA_TYPES[dtype] };
  const values = Array.from(spec.values);
  if ((spec.encoding ?? 'raw') === 'typed') {
    if (dtype === 'float32') proto.floatData = values;
    else if (dtype === 'float64') proto.doubleData = values;
    else if (dtype === 'int32') proto.int32Data = values;
    else proto.int64Data = values;
    return proto;
  }
  const bytes = dtype === 'float32' || dtype === 'int32' ? 4 : 8;
  const raw = new Uint8Array(n * bytes);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => {
    if (dtype === 'float32') view.setFloat32(4 * i, v, true);
    else if (dtype === 'float64') view.setFloat64(8 * i, v, true);
    else if (dtype === 'int32') view.setInt32(4 * i, v, true);
    else {
      view.setUint32(8 * i, v >>> 0, true);
      view.setInt32(8 * i + 4, Math.floor(v / 4294967296), true);
    }
  });
  proto.rawData = raw;
  return proto;
}

function attributeProto(name: string, value: AttributeSpec): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') return { name, type: T.INT, i: value };
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: [...value] };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: T.FLOATS, floats: [...value.floats] };
  return { name, type: T.TENSOR, t: tensorProto(name, (value as { tensor: TensorSpec }).tensor) };
}

function valueInfo(
  name: string,
  shape: readonly Dim[] | undefined,
  dtype: DType,
): onnxProto.onnx.IValueInfoProto {
  const dims = shape?.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return {
    name,
    type: {
      tensorType: { elemType: DATA_TYPES[dtype], shape: dims === undefined ? undefined : { dim: dims } },
    },
  };
}

/**
 * Builds an ONNX model node by node.
 *
 * @example
 * ```ts
 * const b = new OnnxBuilder({ opset: 13 });
 * const x = b.input('input', ['N', 1, 8, 8]);
 * const y = b.conv(x, { weight: new Float32Array(2 * 9), weightDims: [2, 1, 3, 3], pads: [1, 1, 1, 1] });
 * b.output(b.relu(y));
 * const bytes = b.toBytes();
 * ```
 */
export class OnnxBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private counter = 0;
  readonly opset: number;
  private readonly producerName: string;
  private readonly irVersion: number;

  constructor(options: { opset?: number; producerName?: string; irVersion?: number } = {}) {
    this.opset = options.opset ?? 13;
    this.producerName = options.producerName ?? 'home-onnx-builder';
    this.irVersion = options.irVersion ?? 7;
  }

  /** A fresh value name with the given prefix. */
  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** Declares a graph input and returns its name. */
  input(name: string, shape: readonly Dim[], dtype: DType = 'float32'): string {
    this.inputs.push(valueInfo(name, shape, dtype));
    return name;
  }

  /** Declares a graph output (shape optional). */
  output(name: string, shape?: readonly Dim[], dtype: DType = 'float32'): void {
    this.outputs.push(valueInfo(name, shape, dtype));
  }

  /** Adds an initializer and returns its name. */
  initializer(name: string, spec: TensorSpec): string {
    this.initializers.push(tensorProto(name, spec));
    return name;
  }

  /** Adds a node; returns its output names (default: one fresh name). */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeSpec> = {},
    options: { outputs?: readonly string[]; name?: string; domain?: string } = {},
  ): string[] {
    const outputs = [...(options.outputs ?? [this.fresh(opType.toLowerCase())])];
    this.nodes.push({
      name: options.name ?? this.fresh(`n_${opType}`),
      opType,
      domain: options.domain ?? '',
      input: [...inputs],
      output: outputs,
      attribute: Object.entries(attributes).map(([k, v]) => attributeProto(k, v)),
    });
    return outputs;
  }

  /** Conv with weight `[M, C/group, kh, kw]` and optional bias. */
  conv(
    x: string,
    p: {
      weight: ArrayLike<number>;
      weightDims: readonly [number, number, number, number];
      bias?: ArrayLike<number>;
      strides?: readonly number[];
      pads?: readonly number[];
      group?: number;
      autoPad?: 'NOTSET' | 'VALID' | 'SAME_UPPER' | 'SAME_LOWER';
    },
  ): string {
    const w = this.initializer(this.fresh('conv_w'), { dims: p.weightDims, values: p.weight });
    const inputs = [x, w];
    if (p.bias !== undefined)
      inputs.push(this.initializer(this.fresh('conv_b'), { dims: [p.weightDims[0]], values: p.bias }));
    const attrs: Record<string, AttributeSpec> = { kernel_shape: [p.weightDims[2], p.weightDims[3]] };
    if (p.strides !== undefined) attrs.strides = p.strides;
    if (p.pads !== undefined) attrs.pads = p.pads;
    if (p.group !== undefined) attrs.group = p.group;
    if (p.autoPad !== undefined) attrs.auto_pad = p.autoPad;
    return this.node('Conv', inputs, attrs)[0];
  }

  /** Gemm y = alpha·x·op(B) + beta·C; B is `[K, M]`, or `[M, K]` with `transB`. */
  gemm(
    x: string,
    p: {
      weight: ArrayLike<number>;
      weightDims: readonly [number, number];
      bias?: ArrayLike<number>;
      transB?: boolean;
      alpha?: number;
      beta?: number;
    },
  ): string {
    const w = this.initializer(this.fresh('gemm_w'), { dims: p.weightDims, values: p.weight });
    const inputs = [x, w];
    const m = p.transB ? p.weightDims[0] : p.weightDims[1];
    if (p.bias !== undefined)
      inputs.push(this.initializer(this.fresh('gemm_b'), { dims: [m], values: p.bias }));
    const attrs: Record<string, AttributeSpec> = {};
    if (p.transB) attrs.transB = 1;
    if (p.alpha !== undefined) attrs.alpha = { float: p.alpha };
    if (p.beta !== undefined) attrs.beta = { float: p.beta };
    return this.node('Gemm', inputs, attrs)[0];
  }

  /** MatMul by a constant `[K, M]`, optionally followed by Add of a bias `[M]` (the PyTorch Linear export pattern). */
  matmulAdd(
    x: string,
    p: { weight: ArrayLike<number>; weightDims: readonly [number, number]; bias?: ArrayLike<number> },
  ): string {
    const w = this.initializer(this.fresh('mm_w'), { dims: p.weightDims, values: p.weight });
    const y = this.node('MatMul', [x, w])[0];
    if (p.bias === undefined) return y;
    const b = this.initializer(this.fresh('mm_b'), { dims: [p.weightDims[1]], values: p.bias });
    return this.node('Add', [y, b])[0];
  }

  /** BatchNormalization (inference form) over axis 1. */
  batchNorm(
    x: string,
    p: {
      scale: ArrayLike<number>;
      bias: ArrayLike<number>;
      mean: ArrayLike<number>;
      variance: ArrayLike<number>;
      epsilon?: number;
    },
  ): string {
    const c = p.scale.length;
    const names = [p.scale, p.bias, p.mean, p.variance].map((v, i) =>
      this.initializer(this.fresh(['bn_scale', 'bn_b', 'bn_mean', 'bn_var'][i]), { dims: [c], values: v }),
    );
    const attrs: Record<string, AttributeSpec> =
      p.epsilon === undefined ? {} : { epsilon: { float: p.epsilon } };
    return this.node('BatchNormalization', [x, ...names], attrs)[0];
  }

  /** Relu. */
  relu(x: string): string {
    return this.node('Relu', [x])[0];
  }

  /** Sigmoid. */
  sigmoid(x: string): string {
    return this.node('Sigmoid', [x])[0];
  }

  /** Tanh. */
  tanh(x: string): string {
    return this.node('Tanh', [x])[0];
  }

  /** x·x as `Mul(x, x)` (the CryptoNets square activation). */
  square(x: string): string {
    return this.node('Mul', [x, x])[0];
  }

  /** AveragePool or MaxPool. */
  pool(
    op: 'AveragePool' | 'MaxPool',
    x: string,
    p: {
      kernel: readonly [number, number];
      strides?: readonly number[];
      pads?: readonly number[];
      countIncludePad?: boolean;
    },
  ): string {
    const attrs: Record<string, AttributeSpec> = { kernel_shape: p.kernel };
    if (p.strides !== undefined) attrs.strides = p.strides;
    if (p.pads !== undefined) attrs.pads = p.pads;
    if (p.countIncludePad !== undefined) attrs.count_include_pad = p.countIncludePad ? 1 : 0;
    return this.node(op, [x], attrs)[0];
  }

  /** GlobalAveragePool. */
  globalAveragePool(x: string): string {
    return this.node('GlobalAveragePool', [x])[0];
  }

  /** Flatten at axis 1. */
  flatten(x: string): string {
    return this.node('Flatten', [x], { axis: 1 })[0];
  }

  /** Reshape to a constant shape (opset ≥ 5 form, shape as an int64 initializer). */
  reshape(x: string, shape: readonly number[]): string {
    const s = this.initializer(this.fresh('shape'), { dims: [shape.length], values: shape, dtype: 'int64' });
    return this.node('Reshape', [x, s])[0];
  }

  /** Element-wise op with a constant of the given dims (broadcast against x). */
  withConstant(
    op: 'Add' | 'Sub' | 'Mul' | 'Div',
    x: string,
    dims: readonly number[],
    values: ArrayLike<number>,
    constantFirst = false,
  ): string {
    const c = this.initializer(this.fresh('const'), { dims, values });
    return this.node(op, constantFirst ? [c, x] : [x, c])[0];
  }

  /** Serializes the model. */
  toBytes(): Uint8Array {
    const model: onnxProto.onnx.IModelProto = {
      irVersion: this.irVersion,
      producerName: this.producerName,
      producerVersion: '1',
      opsetImport: [{ domain: '', version: this.opset }],
      graph: {
        name: 'graph',
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }
}
