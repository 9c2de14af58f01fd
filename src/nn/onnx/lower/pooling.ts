/**
 * Lowering of pooling: AveragePool and MaxPool over 2-D windows, and GlobalAveragePool.
 */
import type { GraphNode } from '../graph.ts';
import { intAttribute, intsAttribute } from '../graph.ts';
import type { Lowering } from './lowering.ts';
import { windowGeometry } from './window.ts';

/**
 * AveragePool and MaxPool (no ceil mode, no indices output) to an avgPool or maxPool layer.
 *
 * @example
 * ```ts
 * lowerPool(l, node); // MaxPool 2×2 stride 2 emits { kind: 'maxPool', kernel: [2, 2], strides: [2, 2], ... }
 * ```
 */
export function lowerPool(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0);
  l.checkOnlyFirstOutputUsed(node);
  if (intAttribute(node, 'ceil_mode', 0) !== 0) l.fail(node, 'ceil_mode = 1 is not supported');
  const kernel = intsAttribute(node, 'kernel_shape');
  if (kernel === undefined) l.fail(node, 'kernel_shape is missing');
  const g = windowGeometry(l, node, x.shape, kernel);
  const geometry = { kernel: g.kernel, strides: g.strides, pads: g.pads };
  if (node.opType === 'MaxPool') {
    if (intAttribute(node, 'storage_order', 0) !== 0 && l.isUsed(node.outputs[1] ?? ''))
      l.fail(node, 'indices output');
    l.emit(node, { kind: 'maxPool', inputs: [x.name], shape: g.outShape, ...geometry });
  } else {
    const countIncludePad = intAttribute(node, 'count_include_pad', 0) === 1;
    l.emit(node, { kind: 'avgPool', inputs: [x.name], shape: g.outShape, ...geometry, countIncludePad });
  }
}

/**
 * GlobalAveragePool to a globalAvgPool layer: one value per channel.
 *
 * @example
 * ```ts
 * lowerGlobalAveragePool(l, node); // [N, 64, 8, 8] → [N, 64, 1, 1]
 * ```
 */
export function lowerGlobalAveragePool(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0);
  if (x.shape.length < 2) l.fail(node, `input [N, ${x.shape.join(', ')}]: expected [N, C, spatial...]`);
  return l.emit(node, {
    kind: 'globalAvgPool',
    inputs: [x.name],
    shape: [x.shape[0], ...x.shape.slice(1).map(() => 1)],
  });
}
