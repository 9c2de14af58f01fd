/**
 * Lowering of the operators that pass their input through unchanged at inference time: Identity, Dropout (not in
 * training mode), Cast between float types, and a final Softmax or LogSoftmax, which is dropped (argmax does not
 * need it; `LayerModel.droppedSoftmax` records it).
 */
import type { GraphNode } from '../graph.ts';
import { intAttribute } from '../graph.ts';
import type { Lowering } from './lowering.ts';

/**
 * Identity: the output names the input's value.
 *
 * @example
 * ```ts
 * lowerIdentity(l, node); // no layer
 * ```
 */
export function lowerIdentity(l: Lowering, node: GraphNode): undefined {
  return l.alias(node, l.activation(node, 0, true));
}

/**
 * Dropout at inference: the input itself (its mask output unused).
 *
 * @example
 * ```ts
 * lowerDropout(l, node); // no layer
 * ```
 */
export function lowerDropout(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0, true);
  l.checkOnlyFirstOutputUsed(node);
  if (node.inputs[2]) {
    const training = l.constant(node, 2, 'training_mode');
    if (training.data[0] !== 0) l.fail(node, 'training_mode = true is not supported');
  }
  return l.alias(node, x);
}

/**
 * Cast of an activation to FLOAT or DOUBLE: activations are float64 throughout, so the input itself.
 *
 * @example
 * ```ts
 * lowerCast(l, node); // no layer
 * ```
 */
export function lowerCast(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0, true);
  const to = intAttribute(node, 'to', 0);
  if (to !== 1 && to !== 11)
    l.fail(node, `cast of an activation to data type ${to}: only FLOAT and DOUBLE are supported`);
  return l.alias(node, x);
}

/**
 * A final Softmax or LogSoftmax over the class axis: dropped, the logits become the output.
 *
 * @example
 * ```ts
 * lowerSoftmax(l, node); // no layer; l.droppedSoftmax === true
 * ```
 */
export function lowerSoftmax(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0);
  if (!l.isFinal(node.outputs[0]))
    l.fail(node, 'only a final Softmax (producing the graph output) is supported');
  const r = x.shape.length + 1;
  const raw = intAttribute(node, 'axis', l.graph.opset >= 13 ? -1 : 1);
  const axis = raw < 0 ? raw + r : raw;
  if (axis !== r - 1 && !(l.graph.opset < 13 && axis === 1))
    l.fail(node, `axis ${raw}: expected the class axis`);
  l.droppedSoftmax = true;
  return l.alias(node, x);
}
