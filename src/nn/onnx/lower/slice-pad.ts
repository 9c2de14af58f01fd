/**
 * Lowering of Slice and Pad on activations to 1×1 convolutions: a strided slice of the spatial axes is a 1×1
 * depthwise identity convolution with that stride, a slice of the channel axis a 1×1 convolution that selects
 * channels, and a zero Pad a 1×1 convolution onto the padded channels with the spatial pads as its own. So the
 * "option A" shortcut of CIFAR ResNets (x[:, :, ::2, ::2], then zero channels on both sides) needs no new layer
 * kind: the compiler already packs convolutions.
 */
import { intsAttribute, stringAttribute, type GraphNode } from '../graph.ts';
import type { Lowering } from './lowering.ts';

/** One axis of a slice in ONNX semantics: first index, step, and how many indices it takes. */
export interface SliceAxis {
  start: number;
  step: number;
  count: number;
}

/**
 * Resolves ONNX Slice `starts`, `ends` and `steps` on an axis of size `size` (negative indices count from the end,
 * out-of-range ones clamp; the int64 extremes exporters write for "to the end" clamp too).
 *
 * @example
 * ```ts
 * resolveSliceAxis(32, 0, 9.2e18, 2); // { start: 0, step: 2, count: 16 }
 * ```
 */
export function resolveSliceAxis(size: number, start: number, end: number, step: number): SliceAxis {
  if (!Number.isFinite(step) || step === 0 || !Number.isInteger(step)) {
    throw new RangeError(`slice step ${step}: expected a non-zero integer`);
  }
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + size : start;
  let e = end < 0 ? end + size : end;
  if (step > 0) {
    s = clamp(s, 0, size);
    e = clamp(e, 0, size);
  } else {
    s = clamp(s, 0, size - 1);
    e = clamp(e, -1, size - 1);
  }
  const count = Math.max(0, Math.ceil((e - s) / step));
  return { start: s, step, count };
}

/** starts, ends, axes and steps of a Slice node (inputs from opset 10, attributes before). */
function sliceSpec(l: Lowering, node: GraphNode, rank: number) {
  const fromInput = (i: number, what: string) =>
    node.inputs[i] ? [...l.constant(node, i, what).data] : undefined;
  const starts = fromInput(1, 'starts') ?? intsAttribute(node, 'starts');
  const ends = fromInput(2, 'ends') ?? intsAttribute(node, 'ends');
  if (starts === undefined || ends === undefined || starts.length !== ends.length) {
    return l.fail(node, 'starts and ends must be constants of one length');
  }
  const axes = (fromInput(3, 'axes') ?? intsAttribute(node, 'axes') ?? starts.map((_, i) => i)).map((a) =>
    a < 0 ? a + rank : a,
  );
  const steps = fromInput(4, 'steps') ?? starts.map(() => 1);
  if (
    axes.length !== starts.length ||
    steps.length !== starts.length ||
    axes.some((a) => a < 0 || a >= rank)
  ) {
    return l.fail(
      node,
      `axes ${JSON.stringify(axes)} and steps ${JSON.stringify(steps)} do not match starts`,
    );
  }
  return { starts, ends, axes, steps };
}

/**
 * Slice of an activation [C, H, W] (ONNX axes 1–3; the batch axis must be kept whole): channel slices of any
 * step, spatial slices that start at 0 and run to the end (x[..., ::s], the form of strided shortcuts).
 *
 * @example
 * ```ts
 * lowerSlice(l, node); // x[:, :, ::2] emits a 1×1 depthwise convolution with strides [2, 1]
 * ```
 */
export function lowerSlice(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0);
  const [c, h, w] =
    x.shape.length === 3 ? x.shape : l.fail(node, `input of shape [N, ${x.shape}]: expected [N, C, H, W]`);
  const { starts, ends, axes, steps } = sliceSpec(l, node, 4);
  const full = [1, c, h, w];
  const resolved = full.map((size) => ({ start: 0, step: 1, count: size }) as SliceAxis);
  axes.forEach((axis, i) => {
    try {
      resolved[axis] = resolveSliceAxis(full[axis], starts[i], ends[i], steps[i]);
    } catch (error) {
      l.fail(node, (error as Error).message);
    }
  });
  if (resolved[0].count !== 1) l.fail(node, 'slicing the batch axis is not supported');
  for (const axis of [2, 3]) {
    const r = resolved[axis];
    if (r.step < 0 || r.start !== 0 || r.count !== Math.ceil(full[axis] / r.step)) {
      l.fail(
        node,
        `spatial axis ${axis}: start ${r.start}, step ${r.step}, ${r.count} of ${full[axis]}: only slices from 0 to ` +
          'the end with a positive step are supported',
      );
    }
  }
  const channels = resolved[1];
  if (channels.count === 0) l.fail(node, 'the slice keeps no channel');
  const [sh, sw] = [resolved[2].step, resolved[3].step];
  const m = channels.count;
  const identityChannels = channels.start === 0 && channels.step === 1 && m === c;
  // Depthwise identity when all channels stay; otherwise a selection matrix [m, c].
  const weight = new Float64Array(identityChannels ? c : m * c);
  for (let o = 0; o < m; o++) weight[identityChannels ? o : o * c + channels.start + o * channels.step] = 1;
  l.emit(node, {
    kind: 'conv',
    inputs: [x.name],
    shape: [m, resolved[2].count, resolved[3].count],
    inChannels: c,
    outChannels: m,
    kernel: [1, 1],
    strides: [sh, sw],
    pads: [0, 0, 0, 0],
    group: identityChannels ? c : 1,
    weight,
    bias: new Float64Array(m),
  });
}

/**
 * Zero Pad (mode constant, value 0) of an activation [C, H, W]: channels on either side and non-negative spatial
 * pads. The batch axis must not be padded.
 *
 * @example
 * ```ts
 * lowerPad(l, node); // pads [0, 8, 0, 0, 0, 8, 0, 0] on [N, 16, 16, 16] emits a 1×1 convolution 16 → 32 channels
 * ```
 */
export function lowerPad(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0);
  const [c, h, w] =
    x.shape.length === 3 ? x.shape : l.fail(node, `input of shape [N, ${x.shape}]: expected [N, C, H, W]`);
  const mode = stringAttribute(node, 'mode', 'constant');
  if (mode !== 'constant') l.fail(node, `mode '${mode}': only constant (zero) padding is supported`);
  const pads = node.inputs[1] ? [...l.constant(node, 1, 'pads').data] : intsAttribute(node, 'pads');
  if (pads === undefined || pads.length !== 8) l.fail(node, 'pads: expected 8 values for [N, C, H, W]');
  if (node.inputs[2]) {
    const value = l.constant(node, 2, 'constant_value').data;
    if (value.some((v) => v !== 0))
      l.fail(node, `constant_value ${value[0]}: only zero padding is supported`);
  }
  if (node.inputs[3]) l.fail(node, 'the axes input is not supported');
  const [nb, cb, hb, wb, ne, ce, he, we] = pads;
  if (pads.some((p) => !Number.isInteger(p) || p < 0))
    l.fail(node, `pads ${JSON.stringify(pads)}: expected integers ≥ 0`);
  if (nb !== 0 || ne !== 0) l.fail(node, 'padding the batch axis is not supported');
  const m = cb + c + ce;
  const identityChannels = cb === 0 && ce === 0;
  const weight = new Float64Array(identityChannels ? c : m * c);
  for (let i = 0; i < c; i++) weight[identityChannels ? i : (cb + i) * c + i] = 1;
  l.emit(node, {
    kind: 'conv',
    inputs: [x.name],
    shape: [m, h + hb + he, w + wb + we],
    inChannels: c,
    outChannels: m,
    kernel: [1, 1],
    strides: [1, 1],
    pads: [hb, wb, he, we],
    group: identityChannels ? c : 1,
    weight,
    bias: new Float64Array(m),
  });
}
