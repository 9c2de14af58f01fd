/**
 * Lowering of the typed ONNX graph to the canonical layer IR: static shape inference from the input shape (batch
 * treated as one image), constant folding, op-by-op translation, then BatchNormalization/affine folding into the
 * preceding Conv/Dense and dead-layer pruning.
 */
import { FormatError } from '../../util/errors.ts';
import { UnsupportedModelError } from '../errors.ts';
import type {
  ActivationFunction,
  AffineLayer,
  Broadcast,
  ConvLayer,
  DenseLayer,
  Layer,
  LayerModel,
  PoolGeometry,
  Shape,
} from '../layers.ts';
import {
  CONSTANT_FOLDABLE_OPS,
  ConstantFoldError,
  broadcastShapes,
  expandTo,
  foldConstantNode,
  resolveReshape,
} from './const-fold.ts';
import type { ConstTensor, GraphNode, OnnxGraph } from './graph.ts';
import { floatAttribute, intAttribute, intsAttribute, shapeSize, stringAttribute } from './graph.ts';

/**
 * The ONNX operators the importer lowers (default domain, opset 7–23).
 *
 * @example
 * ```ts
 * SUPPORTED_OPS.includes('Conv'); // true
 * ```
 */
export const SUPPORTED_OPS: readonly string[] = [
  'Add',
  'AveragePool',
  'BatchNormalization',
  'Cast',
  'Concat',
  'Constant',
  'Conv',
  'Div',
  'Dropout',
  'Flatten',
  'Gather',
  'Gemm',
  'GlobalAveragePool',
  'Identity',
  'LogSoftmax',
  'MatMul',
  'MaxPool',
  'Mul',
  'Neg',
  'Pow',
  'Reciprocal',
  'Relu',
  'Reshape',
  'Shape',
  'Sigmoid',
  'Softmax',
  'Sqrt',
  'Squeeze',
  'Sub',
  'Tanh',
  'Transpose',
  'Unsqueeze',
];

/**
 * Options of {@link lowerGraph}.
 *
 * @example
 * ```ts
 * lowerGraph(graph, { inputShape: [3, 32, 32] }); // for an export whose spatial dims are symbolic
 * ```
 */
export interface LowerOptions {
  /** Per-image input shape (no batch dim) to use where the model declares symbolic dimensions. */
  readonly inputShape?: readonly number[];
}

/**
 * An activation value. `permutation`, set after a layout-changing Transpose, maps each logical C-order index of
 * `shape` to the index where the buffer written under `name` holds it; only reshapes and a Dense may consume such a
 * value (the Dense absorbs the permutation into its weight columns).
 */
interface ActValue {
  readonly kind: 'act';
  readonly name: string;
  readonly shape: Shape;
  readonly permutation?: Int32Array;
  readonly transposeNode?: string;
}

type Value = ActValue | { readonly kind: 'const'; readonly tensor: ConstTensor };

/** For a transpose of a C-order tensor of shape `dims` by `perm`: the source flat index of each output index. */
function transposeIndex(dims: readonly number[], perm: readonly number[]): Int32Array {
  const r = dims.length;
  const strides = new Array<number>(r).fill(1);
  for (let i = r - 2; i >= 0; i--) strides[i] = strides[i + 1] * dims[i + 1];
  const outDims = perm.map((p) => dims[p]);
  const srcStrides = perm.map((p) => strides[p]);
  const n = shapeSize(dims);
  const out = new Int32Array(n);
  const index = new Array<number>(r).fill(0);
  let src = 0;
  for (let i = 0; i < n; i++) {
    out[i] = src;
    for (let d = r - 1; d >= 0; d--) {
      index[d]++;
      src += srcStrides[d];
      if (index[d] < outDims[d]) break;
      src -= srcStrides[d] * index[d];
      index[d] = 0;
    }
  }
  return out;
}

/** Largest activation per image the importer accepts (values); far beyond what CKKS inference can hold. */
const MAX_ACTIVATION = 1 << 26;

/** A layer before the lowering names it (Omit distributed over the union). */
type LayerSpec = Layer extends unknown
  ? Layer extends infer L
    ? L extends Layer
      ? Omit<L, 'name' | 'sources' | 'output'>
      : never
    : never
  : never;

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

class Lowering {
  private readonly values = new Map<string, Value>();
  private readonly layers: Layer[] = [];
  private readonly layerNames = new Set<string>();
  private readonly consumers = new Map<string, GraphNode[]>();
  private readonly graphOutputs: Set<string>;
  droppedSoftmax = false;
  /** The batch size the ONNX input fixes, if it fixes one. */
  fixedBatch: number | undefined;
  /** Set when the model input is transposed first: layer-input index → ONNX-input index (per image). */
  inputPermutation: Int32Array | undefined;
  layerInputShape: Shape | undefined;

  constructor(private readonly graph: OnnxGraph) {
    for (const n of graph.nodes) {
      for (const i of n.inputs) {
        if (i === '') continue;
        const list = this.consumers.get(i) ?? [];
        list.push(n);
        this.consumers.set(i, list);
      }
    }
    this.graphOutputs = new Set(graph.outputs.map((o) => o.name));
    for (const [name, tensor] of graph.initializers) this.values.set(name, { kind: 'const', tensor });
  }

  fail(node: GraphNode, reason: string): never {
    throw new UnsupportedModelError(`node '${node.name}' (${node.opType}): ${reason}`, {
      node: node.name,
      opType: node.opType,
    });
  }

  isUsed(name: string): boolean {
    return name !== '' && (this.consumers.has(name) || this.graphOutputs.has(name));
  }

  /** True when `name` reaches a graph output through nothing but Identity/Dropout nodes. */
  isFinal(name: string): boolean {
    if (this.graphOutputs.has(name)) return true;
    const users = this.consumers.get(name) ?? [];
    return (
      users.length > 0 &&
      users.every(
        (u) =>
          (u.opType === 'Identity' || u.opType === 'Dropout') &&
          u.inputs[0] === name &&
          this.isFinal(u.outputs[0]),
      )
    );
  }

  input(node: GraphNode, i: number): Value | undefined {
    const name = node.inputs[i];
    if (name === undefined || name === '') return undefined;
    const v = this.values.get(name);
    if (v === undefined)
      throw new FormatError(`node '${node.name}' (${node.opType}): input '${name}' has no value`);
    return v;
  }

  activation(node: GraphNode, i: number, allowPermuted = false): ActValue {
    const v = this.input(node, i);
    if (v === undefined) this.fail(node, `input ${i} is missing`);
    if (v.kind !== 'act')
      this.fail(node, `input ${i} ('${node.inputs[i]}') must be an activation, not a constant`);
    if (v.permutation !== undefined && !allowPermuted) {
      this.fail(
        node,
        `input ${i} comes from Transpose '${v.transposeNode}', which changes the data layout; such a Transpose is ` +
          'supported only on the model input or when it reaches a Gemm/MatMul through reshapes alone',
      );
    }
    return v;
  }

  constant(node: GraphNode, i: number, what: string): ConstTensor {
    const v = this.input(node, i);
    if (v === undefined) this.fail(node, `${what} (input ${i}) is missing`);
    if (v.kind !== 'const') {
      this.fail(
        node,
        `${what} (input ${i}, '${node.inputs[i]}') must be a constant initializer, not computed at run time`,
      );
    }
    return v.tensor;
  }

  setOutput(node: GraphNode, value: Value, index = 0): undefined {
    const name = node.outputs[index];
    if (name !== undefined && name !== '') this.values.set(name, value);
  }

  alias(node: GraphNode, value: ActValue): undefined {
    this.setOutput(node, value);
  }

  uniqueName(base: string): string {
    let name = base;
    for (let k = 2; this.layerNames.has(name); k++) name = `${base}:${k}`;
    this.layerNames.add(name);
    return name;
  }

  emit(node: GraphNode, layer: LayerSpec): undefined {
    if (shapeSize(layer.shape) > MAX_ACTIVATION) {
      this.fail(
        node,
        `output [N, ${layer.shape.join(', ')}] has more than ${MAX_ACTIVATION} values per image`,
      );
    }
    const output = node.outputs[0];
    const full = { ...layer, name: this.uniqueName(node.name), sources: [node.name], output } as Layer;
    this.layers.push(full);
    this.values.set(output, { kind: 'act', name: output, shape: full.shape });
  }

  checkOnlyFirstOutputUsed(node: GraphNode): undefined {
    for (let i = 1; i < node.outputs.length; i++) {
      if (this.isUsed(node.outputs[i]))
        this.fail(node, `output ${i} ('${node.outputs[i]}') is used; only output 0 is supported`);
    }
  }

  /** Aligns a constant with an activation of per-image shape `shape` for element-wise ops. */
  broadcastConstant(
    node: GraphNode,
    c: ConstTensor,
    shape: Shape,
  ): { broadcast: Broadcast; values: Float64Array } {
    const full = [1, ...shape];
    if (c.dims.length > full.length) {
      this.fail(
        node,
        `constant of shape ${fmt(c.dims)} has more axes than the activation [N, ${shape.join(', ')}]`,
      );
    }
    const aligned = [...new Array<number>(full.length - c.dims.length).fill(1), ...c.dims];
    for (let i = 0; i < full.length; i++) {
      if (aligned[i] !== 1 && aligned[i] !== full[i]) {
        this.fail(
          node,
          `constant of shape ${fmt(c.dims)} does not broadcast to the activation [N, ${shape.join(', ')}]`,
        );
      }
    }
    if (c.data.length === 1) return { broadcast: 'scalar', values: Float64Array.of(c.data[0]) };
    const perImage = aligned.slice(1);
    if (perImage.every((d, i) => i === 0 || d === 1))
      return { broadcast: 'channel', values: Float64Array.from(c.data) };
    return { broadcast: 'element', values: expandTo(c.data, perImage, shape) };
  }

  resolvePads(
    node: GraphNode,
    shape: Shape,
    kernel: readonly [number, number],
    strides: readonly [number, number],
  ) {
    const autoPad = stringAttribute(node, 'auto_pad', 'NOTSET');
    const [, h, w] = shape;
    if (autoPad === 'NOTSET') {
      const pads = intsAttribute(node, 'pads') ?? [0, 0, 0, 0];
      if (pads.length !== 4 || pads.some((p) => p < 0))
        this.fail(node, `pads ${fmt(pads)}: expected 4 non-negative values`);
      return [pads[0], pads[1], pads[2], pads[3]] as const;
    }
    if (autoPad === 'VALID') return [0, 0, 0, 0] as const;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      const total = (size: number, k: number, s: number) =>
        Math.max(0, (Math.ceil(size / s) - 1) * s + k - size);
      const th = total(h, kernel[0], strides[0]);
      const tw = total(w, kernel[1], strides[1]);
      const upper = autoPad === 'SAME_UPPER';
      const top = upper ? Math.floor(th / 2) : Math.ceil(th / 2);
      const left = upper ? Math.floor(tw / 2) : Math.ceil(tw / 2);
      return [top, left, th - top, tw - left] as const;
    }
    return this.fail(node, `auto_pad '${autoPad}': expected NOTSET, VALID, SAME_UPPER or SAME_LOWER`);
  }

  windowGeometry(
    node: GraphNode,
    shape: Shape,
    kernel: readonly number[],
  ): PoolGeometry & { outShape: number[] } {
    if (shape.length !== 3)
      this.fail(node, `input of shape [N, ${shape.join(', ')}]: expected [N, C, H, W] (2-D images)`);
    if (kernel.length !== 2 || kernel.some((k) => !(k >= 1)))
      this.fail(node, `kernel ${fmt(kernel)}: expected 2 positive sizes`);
    const dilations = intsAttribute(node, 'dilations');
    if (dilations?.some((d) => d !== 1)) this.fail(node, `dilations ${fmt(dilations)}: only 1 is supported`);
    const s = intsAttribute(node, 'strides') ?? [1, 1];
    if (s.length !== 2 || s.some((v) => !(v >= 1)))
      this.fail(node, `strides ${fmt(s)}: expected 2 positive values`);
    const k: [number, number] = [kernel[0], kernel[1]];
    const strides: [number, number] = [s[0], s[1]];
    const pads = this.resolvePads(node, shape, k, strides);
    const outH = Math.floor((shape[1] + pads[0] + pads[2] - k[0]) / strides[0]) + 1;
    const outW = Math.floor((shape[2] + pads[1] + pads[3] - k[1]) / strides[1]) + 1;
    if (!(outH >= 1 && outW >= 1))
      this.fail(node, `window ${fmt(k)} does not fit the input ${fmt(shape)} with pads ${fmt(pads)}`);
    if (pads[0] >= k[0] || pads[2] >= k[0] || pads[1] >= k[1] || pads[3] >= k[1]) {
      this.fail(node, `pads ${fmt(pads)} not smaller than the kernel ${fmt(k)}`);
    }
    return { kernel: k, strides, pads, outShape: [shape[0], outH, outW] };
  }

  conv(node: GraphNode): undefined {
    const x = this.activation(node, 0);
    const w = this.constant(node, 1, 'weight');
    const b = node.inputs[2] ? this.constant(node, 2, 'bias') : undefined;
    if (w.dims.length !== 4)
      this.fail(node, `weight of shape ${fmt(w.dims)}: only 2-D convolutions are supported`);
    const [m, cPerGroup, kh, kw] = w.dims;
    const declared = intsAttribute(node, 'kernel_shape');
    if (declared !== undefined && (declared[0] !== kh || declared[1] !== kw || declared.length !== 2)) {
      this.fail(node, `kernel_shape ${fmt(declared)} disagrees with the weight ${fmt(w.dims)}`);
    }
    const group = intAttribute(node, 'group', 1);
    const c = x.shape[0];
    if (!(group >= 1) || c % group !== 0 || m % group !== 0 || c / group !== cPerGroup) {
      this.fail(node, `group ${group} with ${c} input channels and weight ${fmt(w.dims)} is inconsistent`);
    }
    const g = this.windowGeometry(node, x.shape, [kh, kw]);
    if (b !== undefined && b.data.length !== m)
      this.fail(node, `bias of ${b.data.length} values for ${m} output channels`);
    this.emit(node, {
      kind: 'conv',
      inputs: [x.name],
      shape: [m, g.outShape[1], g.outShape[2]],
      inChannels: c,
      outChannels: m,
      kernel: g.kernel,
      strides: g.strides,
      pads: g.pads,
      group,
      weight: Float64Array.from(w.data),
      bias: b === undefined ? new Float64Array(m) : Float64Array.from(b.data),
    });
  }

  dense(
    node: GraphNode,
    x: ActValue,
    weight: Float64Array,
    inF: number,
    outF: number,
    bias: Float64Array,
  ): undefined {
    const p = x.permutation;
    if (p !== undefined) {
      // The Dense reads the buffer in its stored order: move each weight column to where its input is stored.
      const moved = new Float64Array(weight.length);
      for (let o = 0; o < outF; o++)
        for (let i = 0; i < inF; i++) moved[o * inF + p[i]] = weight[o * inF + i];
      weight = moved;
    }
    this.emit(node, {
      kind: 'dense',
      inputs: [x.name],
      shape: [outF],
      inFeatures: inF,
      outFeatures: outF,
      weight,
      bias,
    });
  }

  gemm(node: GraphNode): undefined {
    const x = this.activation(node, 0, true);
    if (intAttribute(node, 'transA', 0) !== 0)
      this.fail(node, 'transA = 1 is not supported (the activation must be A)');
    if (x.shape.length !== 1)
      this.fail(node, `input [N, ${x.shape.join(', ')}]: expected a 2-D [N, K] activation`);
    const bT = this.constant(node, 1, 'B');
    if (bT.dims.length !== 2) this.fail(node, `B of shape ${fmt(bT.dims)}: expected 2-D`);
    const transB = intAttribute(node, 'transB', 0) === 1;
    const [k, m] = transB ? [bT.dims[1], bT.dims[0]] : [bT.dims[0], bT.dims[1]];
    if (k !== x.shape[0]) this.fail(node, `B of shape ${fmt(bT.dims)} does not take ${x.shape[0]} inputs`);
    const alpha = floatAttribute(node, 'alpha', 1);
    const beta = floatAttribute(node, 'beta', 1);
    const weight = new Float64Array(m * k);
    for (let o = 0; o < m; o++) {
      for (let i = 0; i < k; i++)
        weight[o * k + i] = alpha * (transB ? bT.data[o * k + i] : bT.data[i * m + o]);
    }
    const bias = new Float64Array(m);
    if (node.inputs[2]) {
      const cT = this.constant(node, 2, 'C');
      const dims = broadcastShapes(cT.dims, [1, m]);
      if (dims === undefined || dims.length !== 2 || dims[0] !== 1 || dims[1] !== m) {
        this.fail(node, `C of shape ${fmt(cT.dims)} does not broadcast to [1, ${m}]`);
      }
      const c = expandTo(cT.data, cT.dims, [1, m]);
      for (let o = 0; o < m; o++) bias[o] = beta * c[o];
    }
    this.dense(node, x, weight, k, m, bias);
  }

  matmul(node: GraphNode): undefined {
    const x = this.activation(node, 0, true);
    if (x.shape.length !== 1)
      this.fail(node, `input [N, ${x.shape.join(', ')}]: only [N, K] × [K, M] is supported`);
    const bT = this.constant(node, 1, 'B');
    if (bT.dims.length !== 2 || bT.dims[0] !== x.shape[0]) {
      this.fail(node, `B of shape ${fmt(bT.dims)}: expected [${x.shape[0]}, M]`);
    }
    const [k, m] = bT.dims;
    const weight = new Float64Array(m * k);
    for (let o = 0; o < m; o++) for (let i = 0; i < k; i++) weight[o * k + i] = bT.data[i * m + o];
    this.dense(node, x, weight, k, m, new Float64Array(m));
  }

  affine(
    node: GraphNode,
    x: { name: string; shape: Shape },
    broadcast: Broadcast,
    scale: Float64Array,
    shift: Float64Array,
  ): undefined {
    this.emit(node, { kind: 'affine', inputs: [x.name], shape: x.shape, broadcast, scale, shift });
  }

  arithmetic(node: GraphNode): undefined {
    const op = node.opType as 'Add' | 'Sub' | 'Mul' | 'Div';
    const a = this.input(node, 0);
    const b = this.input(node, 1);
    if (a === undefined || b === undefined) this.fail(node, 'expects two inputs');
    if (a.kind === 'act' && b.kind === 'act') {
      if (op === 'Div') this.fail(node, 'division by an activation is not a polynomial');
      if (a.name === b.name && op === 'Mul') {
        this.emit(node, { kind: 'square', inputs: [a.name], shape: a.shape });
        return;
      }
      if (a.name === b.name && op === 'Add') {
        this.affine(node, a, 'scalar', Float64Array.of(2), Float64Array.of(0));
        return;
      }
      if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
        this.fail(
          node,
          `activations of shapes ${fmt(a.shape)} and ${fmt(b.shape)}: broadcasting between activations is not supported`,
        );
      }
      const kind = op === 'Add' ? 'add' : op === 'Sub' ? 'sub' : 'mul';
      this.emit(node, { kind: 'binary', op: kind, inputs: [a.name, b.name], shape: a.shape });
      return;
    }
    const x = (a.kind === 'act' ? a : b) as { name: string; shape: Shape };
    const c = (a.kind === 'const' ? a : b) as { kind: 'const'; tensor: ConstTensor };
    const actFirst = a.kind === 'act';
    const dims = broadcastShapes([1, ...x.shape], c.tensor.dims);
    if (
      dims === undefined ||
      dims.length !== x.shape.length + 1 ||
      dims.some((d, i) => d !== ([1, ...x.shape][i] ?? -1))
    ) {
      this.fail(
        node,
        `constant of shape ${fmt(c.tensor.dims)} does not broadcast to the activation [N, ${x.shape.join(', ')}]`,
      );
    }
    const { broadcast, values } = this.broadcastConstant(node, c.tensor, x.shape);
    const ones = () => new Float64Array(values.length).fill(1);
    const zeros = () => new Float64Array(values.length);
    switch (op) {
      case 'Add':
        return this.affine(node, x, broadcast, ones(), values);
      case 'Sub':
        return actFirst
          ? this.affine(
              node,
              x,
              broadcast,
              ones(),
              values.map((v) => -v),
            )
          : this.affine(node, x, broadcast, ones().fill(-1), values);
      case 'Mul':
        return this.affine(node, x, broadcast, values, zeros());
      case 'Div':
        if (!actFirst) this.fail(node, 'division by an activation is not a polynomial');
        if (values.some((v) => v === 0)) this.fail(node, 'division by a constant that contains 0');
        return this.affine(
          node,
          x,
          broadcast,
          values.map((v) => 1 / v),
          zeros(),
        );
    }
  }

  batchNorm(node: GraphNode): undefined {
    const x = this.activation(node, 0);
    this.checkOnlyFirstOutputUsed(node);
    if (intAttribute(node, 'training_mode', 0) !== 0) this.fail(node, 'training_mode = 1 is not supported');
    const scale = this.constant(node, 1, 'scale').data;
    const bias = this.constant(node, 2, 'B').data;
    const mean = this.constant(node, 3, 'mean').data;
    const variance = this.constant(node, 4, 'var').data;
    const epsilon = floatAttribute(node, 'epsilon', 1e-5);
    const n = scale.length;
    if (bias.length !== n || mean.length !== n || variance.length !== n) {
      this.fail(node, 'scale, B, mean and var differ in length');
    }
    const size = shapeSize(x.shape);
    const broadcast: Broadcast =
      n === x.shape[0]
        ? 'channel'
        : n === size
          ? 'element'
          : this.fail(node, `${n} parameters for input [N, ${x.shape.join(', ')}]`);
    const s = new Float64Array(n);
    const t = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const denominator = Math.sqrt(variance[i] + epsilon);
      if (!(denominator > 0))
        this.fail(node, `var[${i}] + epsilon = ${variance[i] + epsilon} is not positive`);
      s[i] = scale[i] / denominator;
      t[i] = bias[i] - mean[i] * s[i];
    }
    this.affine(node, x, broadcast, s, t);
  }

  pool(node: GraphNode): undefined {
    const x = this.activation(node, 0);
    this.checkOnlyFirstOutputUsed(node);
    if (intAttribute(node, 'ceil_mode', 0) !== 0) this.fail(node, 'ceil_mode = 1 is not supported');
    const kernel = intsAttribute(node, 'kernel_shape');
    if (kernel === undefined) this.fail(node, 'kernel_shape is missing');
    const g = this.windowGeometry(node, x.shape, kernel);
    const geometry = { kernel: g.kernel, strides: g.strides, pads: g.pads };
    if (node.opType === 'MaxPool') {
      if (intAttribute(node, 'storage_order', 0) !== 0 && this.isUsed(node.outputs[1] ?? ''))
        this.fail(node, 'indices output');
      this.emit(node, { kind: 'maxPool', inputs: [x.name], shape: g.outShape, ...geometry });
    } else {
      const countIncludePad = intAttribute(node, 'count_include_pad', 0) === 1;
      this.emit(node, { kind: 'avgPool', inputs: [x.name], shape: g.outShape, ...geometry, countIncludePad });
    }
  }

  reshapeTo(node: GraphNode, x: ActValue, full: readonly number[]): undefined {
    if (full.length === 0 || full[0] !== 1) {
      this.fail(node, `result shape ${fmt(full)} would merge or move the batch dimension`);
    }
    const shape = full.slice(1);
    if (shapeSize(shape) !== shapeSize(x.shape))
      this.fail(node, `cannot reshape [N, ${x.shape.join(', ')}] to ${fmt(full)}`);
    if (x.permutation !== undefined) {
      // Reshapes keep logical C-order indices, so the permutation carries over unchanged; no layer is needed.
      this.setOutput(node, { ...x, shape });
      return;
    }
    if (shape.length === x.shape.length && shape.every((d, i) => d === x.shape[i])) {
      this.alias(node, x);
      return;
    }
    this.emit(node, { kind: 'reshape', inputs: [x.name], shape });
  }

  transpose(node: GraphNode): undefined {
    const x = this.activation(node, 0, true);
    const full = [1, ...x.shape];
    const perm = intsAttribute(node, 'perm') ?? [...full.keys()].reverse();
    if (perm.length !== full.length || [...perm].sort((p, q) => p - q).some((v, i) => v !== i)) {
      this.fail(node, `perm ${fmt(perm)} is not a permutation of ${full.length} axes`);
    }
    const outFull = perm.map((p) => full[p]);
    if (outFull[0] !== 1) this.fail(node, `perm ${fmt(perm)} moves the batch axis`);
    const moved = perm.filter((p) => full[p] !== 1);
    const preservesLayout = moved.every((p, i) => i === 0 || p > moved[i - 1]);
    if (preservesLayout && x.permutation === undefined) return this.reshapeTo(node, x, outFull);
    const source = transposeIndex(full, perm);
    const shape = outFull.slice(1);
    if (
      x.permutation === undefined &&
      x.name === this.graph.inputs[0].name &&
      this.inputPermutation === undefined
    ) {
      // A layout change of the model input is free under encryption (the client packs the data), so the model
      // takes its input in the transposed layout and the simulator permutes images on load.
      const users = this.consumers.get(x.name) ?? [];
      if (users.length === 1 && !this.graphOutputs.has(x.name)) {
        this.inputPermutation = source;
        this.layerInputShape = shape;
        this.setOutput(node, { kind: 'act', name: x.name, shape });
        return;
      }
    }
    const permutation = x.permutation === undefined ? source : source.map((i) => x.permutation?.[i] ?? i);
    if (permutation.every((v, i) => v === i)) {
      // A transpose that undoes an earlier one (e.g. NCHW → NHWC → NCHW) leaves the stored order as it is.
      return this.reshapeTo(node, { kind: 'act', name: x.name, shape: this.storedShape(x.name) }, outFull);
    }
    this.setOutput(node, {
      kind: 'act',
      name: x.name,
      shape,
      permutation,
      transposeNode: x.transposeNode ?? node.name,
    });
  }

  /** Shape of the buffer written under `name` (a layer output or the model input). */
  storedShape(name: string): Shape {
    for (let i = this.layers.length - 1; i >= 0; i--)
      if (this.layers[i].output === name) return this.layers[i].shape;
    const v = this.values.get(name);
    return v?.kind === 'act' ? v.shape : [];
  }

  axes(node: GraphNode): number[] | undefined {
    if (this.graph.opset >= 13) {
      if (!node.inputs[1]) return undefined;
      return [...this.constant(node, 1, 'axes').data];
    }
    const a = intsAttribute(node, 'axes');
    return a === undefined ? undefined : [...a];
  }

  shapeOp(node: GraphNode): undefined {
    const x = this.activation(node, 0);
    const full = [1, ...x.shape];
    const r = full.length;
    const clamp = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
    const start = clamp(intAttribute(node, 'start', 0));
    const end = clamp(intAttribute(node, 'end', r));
    const dims = full.slice(start, Math.max(start, end));
    this.setOutput(node, {
      kind: 'const',
      tensor: { name: node.outputs[0], dtype: 'int64', dims: [dims.length], data: Float64Array.from(dims) },
    });
  }

  constantOp(node: GraphNode): undefined {
    const a = node.attributes;
    const v = a.get('value');
    const name = node.outputs[0];
    let tensor: ConstTensor;
    if (v?.kind === 'tensor') tensor = { ...v.value, name };
    else if (a.get('value_float')?.kind === 'float') {
      tensor = {
        name,
        dtype: 'float32',
        dims: [],
        data: Float64Array.of(floatAttribute(node, 'value_float', 0)),
      };
    } else if (a.get('value_floats')?.kind === 'floats') {
      const f = a.get('value_floats')?.value as number[];
      tensor = { name, dtype: 'float32', dims: [f.length], data: Float64Array.from(f) };
    } else if (a.get('value_int')?.kind === 'int') {
      tensor = { name, dtype: 'int64', dims: [], data: Float64Array.of(intAttribute(node, 'value_int', 0)) };
    } else if (a.get('value_ints')?.kind === 'ints') {
      const f = intsAttribute(node, 'value_ints') ?? [];
      tensor = { name, dtype: 'int64', dims: [f.length], data: Float64Array.from(f) };
    } else {
      return this.fail(
        node,
        'no value, value_float(s) or value_int(s) attribute (sparse and string constants are not supported)',
      );
    }
    this.setOutput(node, { kind: 'const', tensor });
  }

  node(node: GraphNode): undefined {
    if (node.domain !== '' && node.domain !== 'ai.onnx') {
      this.fail(node, `operator domain '${node.domain}' is not supported (only the default ai.onnx domain)`);
    }
    const op = node.opType;
    if (op === 'Constant') return this.constantOp(node);
    const present = node.inputs.map((_, i) => this.input(node, i));
    if (
      present.length > 0 &&
      present.every((v) => v === undefined || v.kind === 'const') &&
      present[0] !== undefined
    ) {
      if (CONSTANT_FOLDABLE_OPS.has(op)) {
        let results: ConstTensor[] | undefined;
        try {
          results = foldConstantNode(
            node,
            present.map((v) => (v === undefined ? undefined : (v as { tensor: ConstTensor }).tensor)),
            this.graph.opset,
          );
        } catch (e) {
          if (e instanceof ConstantFoldError) this.fail(node, `constant folding: ${e.message}`);
          throw e;
        }
        if (results !== undefined) {
          for (let i = 0; i < results.length; i++)
            this.setOutput(node, { kind: 'const', tensor: results[i] }, i);
          return;
        }
      }
    }
    switch (op) {
      case 'Conv':
        return this.conv(node);
      case 'Gemm':
        return this.gemm(node);
      case 'MatMul':
        return this.matmul(node);
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
        return this.arithmetic(node);
      case 'Pow': {
        const x = this.activation(node, 0);
        const e = this.constant(node, 1, 'exponent');
        if (e.data.length !== 1 || (e.data[0] !== 2 && e.data[0] !== 1)) {
          this.fail(
            node,
            `exponent ${e.data.length === 1 ? e.data[0] : fmt(e.dims)}: only the scalars 1 and 2 are supported`,
          );
        }
        if (e.data[0] === 1) return this.alias(node, x);
        return this.emit(node, { kind: 'square', inputs: [x.name], shape: x.shape });
      }
      case 'Neg': {
        const x = this.activation(node, 0);
        return this.affine(node, x, 'scalar', Float64Array.of(-1), Float64Array.of(0));
      }
      case 'Relu':
      case 'Sigmoid':
      case 'Tanh': {
        const x = this.activation(node, 0);
        const fn = op.toLowerCase() as ActivationFunction;
        return this.emit(node, { kind: 'activation', fn, inputs: [x.name], shape: x.shape });
      }
      case 'BatchNormalization':
        return this.batchNorm(node);
      case 'AveragePool':
      case 'MaxPool':
        return this.pool(node);
      case 'GlobalAveragePool': {
        const x = this.activation(node, 0);
        if (x.shape.length < 2)
          this.fail(node, `input [N, ${x.shape.join(', ')}]: expected [N, C, spatial...]`);
        return this.emit(node, {
          kind: 'globalAvgPool',
          inputs: [x.name],
          shape: [x.shape[0], ...x.shape.slice(1).map(() => 1)],
        });
      }
      case 'Flatten': {
        const x = this.activation(node, 0, true);
        const r = x.shape.length + 1;
        const raw = intAttribute(node, 'axis', 1);
        const axis = raw < 0 ? raw + r : raw;
        if (axis !== 0 && axis !== 1)
          this.fail(node, `axis ${raw}: only flattening everything but the batch axis is supported`);
        return this.reshapeTo(node, x, [1, shapeSize(x.shape)]);
      }
      case 'Reshape': {
        const x = this.activation(node, 0, true);
        const target = [...this.constant(node, 1, 'shape').data];
        if (this.fixedBatch !== undefined && this.fixedBatch > 1 && target[0] === this.fixedBatch)
          target[0] = 1;
        let full: number[];
        try {
          full = resolveReshape([1, ...x.shape], target, intAttribute(node, 'allowzero', 0) === 1);
        } catch (e) {
          if (e instanceof ConstantFoldError) this.fail(node, e.message);
          throw e;
        }
        return this.reshapeTo(node, x, full);
      }
      case 'Squeeze': {
        const x = this.activation(node, 0, true);
        const full = [1, ...x.shape];
        const axes = this.axes(node)?.map((a) => (a < 0 ? a + full.length : a));
        if (axes?.some((a) => !(a >= 0 && a < full.length && full[a] === 1)))
          this.fail(node, `axes ${fmt(axes)} are not unit axes`);
        if (axes?.includes(0)) this.fail(node, 'squeezing the batch axis is not supported');
        const drop = new Set(axes ?? full.flatMap((d, i) => (i > 0 && d === 1 ? [i] : [])));
        return this.reshapeTo(
          node,
          x,
          full.filter((_, i) => !drop.has(i)),
        );
      }
      case 'Unsqueeze': {
        const x = this.activation(node, 0, true);
        const axes = this.axes(node);
        if (axes === undefined) this.fail(node, 'axes are missing');
        const rank = x.shape.length + 1 + axes.length;
        const insert = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
        if (insert.size !== axes.length || [...insert].some((a) => !(a >= 0 && a < rank)))
          this.fail(node, `axes ${fmt(axes)} are invalid`);
        if (insert.has(0)) this.fail(node, 'inserting an axis before the batch axis is not supported');
        const full = [1, ...x.shape];
        const out: number[] = [];
        let k = 0;
        for (let i = 0; i < rank; i++) out.push(insert.has(i) ? 1 : full[k++]);
        return this.reshapeTo(node, x, out);
      }
      case 'Transpose':
        return this.transpose(node);
      case 'Identity':
        return this.alias(node, this.activation(node, 0, true));
      case 'Dropout': {
        const x = this.activation(node, 0, true);
        this.checkOnlyFirstOutputUsed(node);
        if (node.inputs[2]) {
          const training = this.constant(node, 2, 'training_mode');
          if (training.data[0] !== 0) this.fail(node, 'training_mode = true is not supported');
        }
        return this.alias(node, x);
      }
      case 'Cast': {
        const x = this.activation(node, 0, true);
        const to = intAttribute(node, 'to', 0);
        if (to !== 1 && to !== 11)
          this.fail(node, `cast of an activation to data type ${to}: only FLOAT and DOUBLE are supported`);
        return this.alias(node, x);
      }
      case 'Softmax':
      case 'LogSoftmax': {
        const x = this.activation(node, 0);
        if (!this.isFinal(node.outputs[0]))
          this.fail(node, 'only a final Softmax (producing the graph output) is supported');
        const r = x.shape.length + 1;
        const raw = intAttribute(node, 'axis', this.graph.opset >= 13 ? -1 : 1);
        const axis = raw < 0 ? raw + r : raw;
        if (axis !== r - 1 && !(this.graph.opset < 13 && axis === 1))
          this.fail(node, `axis ${raw}: expected the class axis`);
        this.droppedSoftmax = true;
        return this.alias(node, x);
      }
      case 'Shape':
        return this.shapeOp(node);
      case 'Concat':
        return this.fail(
          node,
          'concatenation of activations (as in SqueezeNet fire modules, Inception or DenseNet blocks) is not ' +
            'supported: the layer IR has no multi-input concatenation; Concat is supported only on constants ' +
            '(shape arithmetic)',
        );
      default:
        if (CONSTANT_FOLDABLE_OPS.has(op)) this.fail(node, 'supported only on constants here');
        return this.fail(node, `operator not supported; supported operators: ${SUPPORTED_OPS.join(', ')}`);
    }
  }

  run(options: LowerOptions): LayerModel {
    const g = this.graph;
    if (g.inputs.length !== 1) {
      throw new UnsupportedModelError(
        `the model has ${g.inputs.length} data inputs (${g.inputs.map((i) => i.name).join(', ')}): expected exactly 1`,
      );
    }
    if (g.outputs.length !== 1) {
      throw new UnsupportedModelError(
        `the model has ${g.outputs.length} outputs (${g.outputs.map((o) => o.name).join(', ')}): expected exactly 1`,
      );
    }
    const input = g.inputs[0];
    if (input.dtype !== 'float32' && input.dtype !== 'float64') {
      throw new UnsupportedModelError(
        `input '${input.name}' has element type ${input.dtype}: expected float32 or float64`,
      );
    }
    if (input.shape.length < 2) {
      throw new UnsupportedModelError(
        `input '${input.name}' of shape [${input.shape.join(', ')}]: expected a batch axis then the image axes`,
      );
    }
    const batch = input.shape[0];
    if (typeof batch === 'number') {
      if (batch < 1)
        throw new UnsupportedModelError(`input '${input.name}' has a batch axis of size ${batch}`);
      // PyTorch exports without dynamic_axes fix the batch at the size of the example batch (often 32 or 64). Each
      // image is still computed on its own, so such a model is lowered per image like any other; reshape targets
      // that spell that batch size out are read as the batch axis.
      this.fixedBatch = batch;
    }
    const declared = input.shape.slice(1);
    let inputShape: number[];
    if (options.inputShape !== undefined) {
      const s = options.inputShape;
      if (
        s.length !== declared.length ||
        s.some(
          (d, i) =>
            !(Number.isInteger(d) && d >= 1) || (typeof declared[i] === 'number' && declared[i] !== d),
        )
      ) {
        throw new UnsupportedModelError(
          `inputShape [${s.join(', ')}] does not fit the declared input [N, ${declared.join(', ')}]`,
        );
      }
      inputShape = [...s];
    } else {
      if (declared.some((d) => typeof d !== 'number' || d < 1)) {
        throw new UnsupportedModelError(
          `input '${input.name}' of shape [${input.shape.join(', ')}] has dynamic image dimensions: pass inputShape`,
        );
      }
      inputShape = declared as number[];
    }
    if (shapeSize(inputShape) > MAX_ACTIVATION) {
      throw new UnsupportedModelError(
        `input '${input.name}' [N, ${inputShape.join(', ')}] has more than ${MAX_ACTIVATION} values per image`,
      );
    }
    this.values.set(input.name, { kind: 'act', name: input.name, shape: inputShape });
    for (const n of g.nodes) this.node(n);

    const outputName = g.outputs[0].name;
    const out = this.values.get(outputName);
    if (out === undefined || out.kind !== 'act') {
      throw new UnsupportedModelError(
        `output '${outputName}' does not depend on the input (a constant output)`,
      );
    }
    if (out.permutation !== undefined) {
      throw new UnsupportedModelError(
        `output '${outputName}' is a layout-changing transpose (Transpose '${out.transposeNode}') of a computed value`,
      );
    }
    const declaredOut = g.outputs[0].shape.slice(1);
    if (
      declaredOut.length > 0 &&
      (declaredOut.length !== out.shape.length ||
        declaredOut.some((d, i) => typeof d === 'number' && d !== out.shape[i]))
    ) {
      throw new FormatError(
        `output '${outputName}' is declared [N, ${declaredOut.join(', ')}] but computes [N, ${out.shape.join(', ')}]`,
      );
    }
    const layers = optimize(this.layers, out.name);
    return {
      inputName: input.name,
      inputShape: this.layerInputShape ?? inputShape,
      onnxInputShape: inputShape,
      ...(this.inputPermutation === undefined ? {} : { inputPermutation: this.inputPermutation }),
      outputName: out.name,
      outputShape: out.shape,
      layers,
      droppedSoftmax: this.droppedSoftmax,
      ...(this.fixedBatch === undefined ? {} : { fixedBatch: this.fixedBatch }),
      source: {
        producerName: g.producerName,
        producerVersion: g.producerVersion,
        opset: g.opset,
        irVersion: g.irVersion,
      },
    };
  }
}

function expandAffine(
  l: AffineLayer,
  to: Broadcast,
  shape: Shape,
): { scale: Float64Array; shift: Float64Array } {
  if (l.broadcast === to) return { scale: l.scale, shift: l.shift };
  const size = to === 'channel' ? shape[0] : shapeSize(shape);
  const spatial = shapeSize(shape) / shape[0];
  const pick = (v: Float64Array) => {
    const out = new Float64Array(size);
    for (let i = 0; i < size; i++) out[i] = l.broadcast === 'scalar' ? v[0] : v[Math.floor(i / spatial)];
    return out;
  };
  return { scale: pick(l.scale), shift: pick(l.shift) };
}

const GENERALITY: Record<Broadcast, number> = { scalar: 0, channel: 1, element: 2 };

/** Folds affine layers into a preceding single-use Conv/Dense/affine and removes layers the output does not need. */
function optimize(input: readonly Layer[], outputName: string): Layer[] {
  let layers = [...input];
  for (let changed = true; changed; ) {
    changed = false;
    const uses = new Map<string, number>();
    for (const l of layers) for (const i of l.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
    const producer = new Map(layers.map((l, i) => [l.output, i]));
    for (let i = 0; i < layers.length; i++) {
      const l = layers[i];
      if (l.kind !== 'affine') continue;
      const p = producer.get(l.inputs[0]);
      if (p === undefined) continue;
      const prev = layers[p];
      if (uses.get(prev.output) !== 1 || prev.output === outputName) continue;
      let merged: Layer | undefined;
      if (prev.kind === 'conv' && l.broadcast !== 'element') merged = foldIntoConv(prev, l);
      else if (prev.kind === 'dense') merged = foldIntoDense(prev, l);
      else if (prev.kind === 'affine') {
        const to: Broadcast =
          GENERALITY[prev.broadcast] >= GENERALITY[l.broadcast] ? prev.broadcast : l.broadcast;
        const a = expandAffine(prev, to, prev.shape);
        const b = expandAffine(l, to, l.shape);
        merged = {
          ...prev,
          broadcast: to,
          scale: a.scale.map((s, k) => s * b.scale[k]),
          shift: a.shift.map((t, k) => t * b.scale[k] + b.shift[k]),
        };
      }
      if (merged === undefined) continue;
      layers[p] = { ...merged, output: l.output, sources: [...prev.sources, ...l.sources] };
      layers.splice(i, 1);
      changed = true;
      break;
    }
  }
  // Keep only layers the output depends on.
  const needed = new Set([outputName]);
  const kept: Layer[] = [];
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i];
    if (!needed.has(l.output)) continue;
    for (const x of l.inputs) needed.add(x);
    kept.push(l);
  }
  layers = kept.reverse();
  return layers;
}

function foldIntoConv(conv: ConvLayer, a: AffineLayer): ConvLayer {
  const m = conv.outChannels;
  const perOut = conv.weight.length / m;
  const weight = new Float64Array(conv.weight.length);
  const bias = new Float64Array(m);
  for (let o = 0; o < m; o++) {
    const s = a.scale[a.broadcast === 'scalar' ? 0 : o];
    const t = a.shift[a.broadcast === 'scalar' ? 0 : o];
    for (let k = 0; k < perOut; k++) weight[o * perOut + k] = conv.weight[o * perOut + k] * s;
    bias[o] = conv.bias[o] * s + t;
  }
  return { ...conv, weight, bias };
}

function foldIntoDense(dense: DenseLayer, a: AffineLayer): DenseLayer {
  const m = dense.outFeatures;
  const k = dense.inFeatures;
  const weight = new Float64Array(dense.weight.length);
  const bias = new Float64Array(m);
  for (let o = 0; o < m; o++) {
    const s = a.scale[a.broadcast === 'scalar' ? 0 : o];
    const t = a.shift[a.broadcast === 'scalar' ? 0 : o];
    for (let i = 0; i < k; i++) weight[o * k + i] = dense.weight[o * k + i] * s;
    bias[o] = dense.bias[o] * s + t;
  }
  return { ...dense, weight, bias };
}

/**
 * Lowers a decoded ONNX graph to the layer IR.
 *
 * @throws UnsupportedModelError naming the node, its op type and (for unknown operators) the supported list.
 * @throws FormatError when the graph contradicts itself (an undefined value, a declared output shape that differs).
 * @example
 * ```ts
 * const model = lowerGraph(decodeOnnx(bytes));
 * model.layers.map((l) => l.kind); // ['conv', 'square', 'reshape', 'dense', 'square', 'dense']
 * ```
 */
export function lowerGraph(graph: OnnxGraph, options: LowerOptions = {}): LayerModel {
  return new Lowering(graph).run(options);
}
