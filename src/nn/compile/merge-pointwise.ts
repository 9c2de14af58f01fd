/**
 * Merging chains of linear layers that are one linear map, so that each costs one level instead of several. An
 * "option A" ResNet shortcut imports as Slice (rows), Slice (columns) and Pad (channels), each a 1×1 convolution
 * (`lowerSlice`, `lowerPad`); their composition is again a 1×1 convolution — strides multiplied, channel matrices
 * multiplied, biases carried through. A ResNet's head, global average pooling then (through a Flatten) a Gemm, is
 * one dense layer on the pooled input. Exact in real arithmetic.
 */
import type { ConvLayer, DenseLayer, Layer, LayerModel } from '../layers.ts';
import { shapeSize } from '../onnx/graph.ts';

const isPointwise = (l: Layer): l is ConvLayer =>
  l.kind === 'conv' && l.kernel[0] === 1 && l.kernel[1] === 1 && (l.group === 1 || isDepthwise(l));

const isDepthwise = (l: ConvLayer) => l.group === l.inChannels && l.group === l.outChannels;

const noPads = (l: ConvLayer) => l.pads.every((p) => p === 0);

/** The [out, in] channel matrix of a pointwise convolution (a depthwise one as its diagonal). */
function channelMatrix(l: ConvLayer): Float64Array {
  if (!isDepthwise(l) || l.group === 1) return l.weight;
  const m = new Float64Array(l.outChannels * l.inChannels);
  for (let o = 0; o < l.outChannels; o++) m[o * l.inChannels + o] = l.weight[o];
  return m;
}

/** second(first(x)) as one pointwise convolution, or undefined when the padding does not compose. */
function compose(first: ConvLayer, second: ConvLayer): ConvLayer | undefined {
  // Padding composes only at the ends of the chain: first's (then second strides over it), or second's when first
  // neither pads nor strides.
  let pads: ConvLayer['pads'];
  if (noPads(second)) pads = first.pads;
  else if (noPads(first) && first.strides[0] === 1 && first.strides[1] === 1) pads = second.pads;
  else return undefined;
  const c = first.inChannels;
  const mid = first.outChannels;
  const m = second.outChannels;
  const a = channelMatrix(first);
  const b = channelMatrix(second);
  const weight = new Float64Array(m * c);
  const bias = Float64Array.from(second.bias);
  for (let o = 0; o < m; o++) {
    for (let k = 0; k < mid; k++) {
      const w = b[o * mid + k];
      if (w === 0) continue;
      bias[o] += w * first.bias[k];
      for (let i = 0; i < c; i++) weight[o * c + i] += w * a[k * c + i];
    }
  }
  return {
    ...second,
    inputs: first.inputs,
    inChannels: c,
    outChannels: m,
    strides: [first.strides[0] * second.strides[0], first.strides[1] * second.strides[1]],
    pads,
    group: 1,
    weight,
    bias,
    sources: [...first.sources, ...second.sources],
  };
}

/** dense(flatten(globalAvgPool(x))) as one dense layer on x ([C, H, W] → the dense layer's outputs). */
function poolThenDense(pool: Layer, inShape: readonly number[], dense: DenseLayer): DenseLayer {
  const channels = inShape[0];
  const area = shapeSize(inShape) / channels;
  const inFeatures = channels * area;
  const weight = new Float64Array(dense.outFeatures * inFeatures);
  for (let o = 0; o < dense.outFeatures; o++)
    for (let c = 0; c < channels; c++) {
      const w = dense.weight[o * channels + c] / area;
      weight.fill(w, o * inFeatures + c * area, o * inFeatures + (c + 1) * area);
    }
  return { ...dense, inputs: pool.inputs, inFeatures, weight, sources: [...pool.sources, ...dense.sources] };
}

/**
 * The model with each 1×1 convolution that reads only another 1×1 convolution (read by nothing else) merged into
 * it, and each global average pooling read only (through reshapes) by a dense layer merged into that layer; the
 * merged layer keeps the last one's name and output.
 *
 * @example
 * ```ts
 * const merged = mergePointwiseConvs(model); // ResNet's Slice → Slice → Pad shortcut: one layer
 * ```
 */
export function mergePointwiseConvs(model: LayerModel): LayerModel {
  const readers = new Map<string, number>();
  for (const l of model.layers)
    for (const input of l.inputs) readers.set(input, (readers.get(input) ?? 0) + 1);
  const byOutput = new Map<string, Layer>();
  const out: Layer[] = [];
  const sole = (l: Layer) => readers.get(l.output) === 1 && l.output !== model.outputName;
  for (const layer of model.layers) {
    let merged: Layer = layer;
    const source = layer.inputs.length === 1 ? byOutput.get(layer.inputs[0]) : undefined;
    if (layer.kind === 'dense') {
      // Back through reshapes (each read only by the next) to a global average pooling.
      const chain: Layer[] = [];
      let s = source;
      while (s?.kind === 'reshape' && sole(s)) {
        chain.push(s);
        s = s.inputs.length === 1 ? byOutput.get(s.inputs[0]) : undefined;
      }
      if (s?.kind === 'globalAvgPool' && sole(s)) {
        const input = s.inputs[0];
        const inShape =
          byOutput.get(input)?.shape ?? (input === model.inputName ? model.inputShape : undefined);
        if (inShape && inShape.length === 3 && layer.inFeatures === inShape[0]) {
          merged = poolThenDense(s, inShape, layer);
          for (const r of [s, ...chain]) out.splice(out.indexOf(r), 1);
        }
      }
    }
    if (
      source &&
      isPointwise(layer) &&
      isPointwise(source) &&
      readers.get(source.output) === 1 &&
      source.output !== model.outputName
    ) {
      const composed = compose(source, layer);
      if (composed) {
        merged = composed;
        out.splice(out.indexOf(source), 1);
      }
    }
    out.push(merged);
    byOutput.set(merged.output, merged);
  }
  return out.length === model.layers.length ? model : { ...model, layers: out };
}
