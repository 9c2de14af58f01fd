/**
 * Lowering of the linear operators: Conv to a conv layer; Gemm and MatMul with a constant B to a dense layer, whose
 * weight columns absorb the permutation of a transposed input.
 */
import { broadcastShapes, expandTo } from '../const-fold.ts';
import type { GraphNode } from '../graph.ts';
import { floatAttribute, intAttribute, intsAttribute } from '../graph.ts';
import { type ActValue, fmt, type Lowering } from './lowering.ts';
import { windowGeometry } from './window.ts';

/**
 * Conv (2-D, grouped allowed) with constant weight and bias to a conv layer.
 *
 * @example
 * ```ts
 * lowerConv(l, node); // emits { kind: 'conv', ... } under the node's name
 * ```
 */
export function lowerConv(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0);
  const w = l.constant(node, 1, 'weight');
  const b = node.inputs[2] ? l.constant(node, 2, 'bias') : undefined;
  if (w.dims.length !== 4)
    l.fail(node, `weight of shape ${fmt(w.dims)}: only 2-D convolutions are supported`);
  const [m, cPerGroup, kh, kw] = w.dims;
  const declared = intsAttribute(node, 'kernel_shape');
  if (declared !== undefined && (declared[0] !== kh || declared[1] !== kw || declared.length !== 2)) {
    l.fail(node, `kernel_shape ${fmt(declared)} disagrees with the weight ${fmt(w.dims)}`);
  }
  const group = intAttribute(node, 'group', 1);
  const c = x.shape[0];
  if (!(group >= 1) || c % group !== 0 || m % group !== 0 || c / group !== cPerGroup) {
    l.fail(node, `group ${group} with ${c} input channels and weight ${fmt(w.dims)} is inconsistent`);
  }
  const g = windowGeometry(l, node, x.shape, [kh, kw]);
  if (b !== undefined && b.data.length !== m)
    l.fail(node, `bias of ${b.data.length} values for ${m} output channels`);
  l.emit(node, {
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

function dense(
  l: Lowering,
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
    for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) moved[o * inF + p[i]] = weight[o * inF + i];
    weight = moved;
  }
  l.emit(node, {
    kind: 'dense',
    inputs: [x.name],
    shape: [outF],
    inFeatures: inF,
    outFeatures: outF,
    weight,
    bias,
  });
}

/**
 * Gemm `alpha · x · B + beta · C` with the activation as A and constant B and C to a dense layer.
 *
 * @example
 * ```ts
 * lowerGemm(l, node); // emits { kind: 'dense', ... }; transB = 1 (PyTorch's Linear) reads B as [M, K]
 * ```
 */
export function lowerGemm(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0, true);
  if (intAttribute(node, 'transA', 0) !== 0)
    l.fail(node, 'transA = 1 is not supported (the activation must be A)');
  if (x.shape.length !== 1)
    l.fail(node, `input [N, ${x.shape.join(', ')}]: expected a 2-D [N, K] activation`);
  const bT = l.constant(node, 1, 'B');
  if (bT.dims.length !== 2) l.fail(node, `B of shape ${fmt(bT.dims)}: expected 2-D`);
  const transB = intAttribute(node, 'transB', 0) === 1;
  const [k, m] = transB ? [bT.dims[1], bT.dims[0]] : [bT.dims[0], bT.dims[1]];
  if (k !== x.shape[0]) l.fail(node, `B of shape ${fmt(bT.dims)} does not take ${x.shape[0]} inputs`);
  const alpha = floatAttribute(node, 'alpha', 1);
  const beta = floatAttribute(node, 'beta', 1);
  const weight = new Float64Array(m * k);
  for (let o = 0; o < m; o++) {
    for (let i = 0; i < k; i++)
      weight[o * k + i] = alpha * (transB ? bT.data[o * k + i] : bT.data[i * m + o]);
  }
  const bias = new Float64Array(m);
  if (node.inputs[2]) {
    const cT = l.constant(node, 2, 'C');
    const dims = broadcastShapes(cT.dims, [1, m]);
    if (dims === undefined || dims.length !== 2 || dims[0] !== 1 || dims[1] !== m) {
      l.fail(node, `C of shape ${fmt(cT.dims)} does not broadcast to [1, ${m}]`);
    }
    const c = expandTo(cT.data, cT.dims, [1, m]);
    for (let o = 0; o < m; o++) bias[o] = beta * c[o];
  }
  dense(l, node, x, weight, k, m, bias);
}

/**
 * MatMul `[N, K] × [K, M]` with a constant right operand to a dense layer without bias.
 *
 * @example
 * ```ts
 * lowerMatMul(l, node); // emits { kind: 'dense', ... } with a zero bias
 * ```
 */
export function lowerMatMul(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0, true);
  if (x.shape.length !== 1)
    l.fail(node, `input [N, ${x.shape.join(', ')}]: only [N, K] × [K, M] is supported`);
  const bT = l.constant(node, 1, 'B');
  if (bT.dims.length !== 2 || bT.dims[0] !== x.shape[0]) {
    l.fail(node, `B of shape ${fmt(bT.dims)}: expected [${x.shape[0]}, M]`);
  }
  const [k, m] = bT.dims;
  const weight = new Float64Array(m * k);
  for (let o = 0; o < m; o++) for (let i = 0; i < k; i++) weight[o * k + i] = bT.data[i * m + o];
  dense(l, node, x, weight, k, m, new Float64Array(m));
}
