/**
 * The clean-up after op-by-op lowering: affine layers (BatchNormalization, constant Add/Mul) folded into the
 * single-use Conv, Dense or affine layer before them, and layers the output does not depend on removed.
 */
import type { AffineLayer, Broadcast, ConvLayer, DenseLayer, Layer, Shape } from '../../layers.ts';
import { shapeSize } from '../graph.ts';

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

/**
 * Folds affine layers into a preceding single-use Conv/Dense/affine and removes layers the output does not need.
 *
 * @example
 * ```ts
 * // Lowered Conv → BatchNormalization → Relu: ['conv', 'affine', 'activation'] becomes ['conv', 'activation'].
 * const layers = optimize(l.layers, 'logits');
 * ```
 */
export function optimize(input: readonly Layer[], outputName: string): Layer[] {
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
