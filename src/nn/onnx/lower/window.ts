/**
 * Geometry of the sliding windows of Conv and pooling: kernel, strides, explicit or automatic (`auto_pad`) pads and
 * the output size, checked against what the layer IR supports (2-D images, no dilation, pads below the kernel).
 */
import type { PoolGeometry, Shape } from '../../layers.ts';
import type { GraphNode } from '../graph.ts';
import { intsAttribute, stringAttribute } from '../graph.ts';
import { fmt, type Lowering } from './lowering.ts';

function resolvePads(
  l: Lowering,
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
      l.fail(node, `pads ${fmt(pads)}: expected 4 non-negative values`);
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
  return l.fail(node, `auto_pad '${autoPad}': expected NOTSET, VALID, SAME_UPPER or SAME_LOWER`);
}

/**
 * The window of a Conv or pooling node over a per-image input of shape `[C, H, W]`, with the output shape.
 *
 * @throws UnsupportedModelError naming the node for a geometry the layer IR does not support.
 * @example
 * ```ts
 * const g = windowGeometry(l, node, [1, 28, 28], [5, 5]); // strides and pads from the node's attributes
 * g.outShape; // [1, 13, 13] for CryptoNets' strides [2, 2] and pads [0, 0, 1, 1]
 * ```
 */
export function windowGeometry(
  l: Lowering,
  node: GraphNode,
  shape: Shape,
  kernel: readonly number[],
): PoolGeometry & { outShape: number[] } {
  if (shape.length !== 3)
    l.fail(node, `input of shape [N, ${shape.join(', ')}]: expected [N, C, H, W] (2-D images)`);
  if (kernel.length !== 2 || kernel.some((k) => !(k >= 1)))
    l.fail(node, `kernel ${fmt(kernel)}: expected 2 positive sizes`);
  const dilations = intsAttribute(node, 'dilations');
  if (dilations?.some((d) => d !== 1)) l.fail(node, `dilations ${fmt(dilations)}: only 1 is supported`);
  const s = intsAttribute(node, 'strides') ?? [1, 1];
  if (s.length !== 2 || s.some((v) => !(v >= 1)))
    l.fail(node, `strides ${fmt(s)}: expected 2 positive values`);
  const k: [number, number] = [kernel[0], kernel[1]];
  const strides: [number, number] = [s[0], s[1]];
  const pads = resolvePads(l, node, shape, k, strides);
  const outH = Math.floor((shape[1] + pads[0] + pads[2] - k[0]) / strides[0]) + 1;
  const outW = Math.floor((shape[2] + pads[1] + pads[3] - k[1]) / strides[1]) + 1;
  if (!(outH >= 1 && outW >= 1))
    l.fail(node, `window ${fmt(k)} does not fit the input ${fmt(shape)} with pads ${fmt(pads)}`);
  if (pads[0] >= k[0] || pads[2] >= k[0] || pads[1] >= k[1] || pads[3] >= k[1]) {
    l.fail(node, `pads ${fmt(pads)} not smaller than the kernel ${fmt(k)}`);
  }
  return { kernel: k, strides, pads, outShape: [shape[0], outH, outW] };
}
