/**
 * Lowering of the element-wise operators: arithmetic with a constant (an affine layer) or between activations,
 * x² (`Pow`, `Mul` of a value with itself), `Neg`, BatchNormalization (an affine layer with per-channel or
 * per-element parameters) and the non-polynomial activations Relu, Sigmoid and Tanh.
 */
import type { ActivationFunction, Broadcast, Shape } from '../../layers.ts';
import { broadcastShapes, expandTo } from '../const-fold.ts';
import type { ConstTensor, GraphNode } from '../graph.ts';
import { floatAttribute, intAttribute, shapeSize } from '../graph.ts';
import { fmt, type Lowering } from './lowering.ts';

function affine(
  l: Lowering,
  node: GraphNode,
  x: { name: string; shape: Shape },
  broadcast: Broadcast,
  scale: Float64Array,
  shift: Float64Array,
): undefined {
  l.emit(node, { kind: 'affine', inputs: [x.name], shape: x.shape, broadcast, scale, shift });
}

/** Aligns a constant with an activation of per-image shape `shape` for element-wise ops. */
function broadcastConstant(
  l: Lowering,
  node: GraphNode,
  c: ConstTensor,
  shape: Shape,
): { broadcast: Broadcast; values: Float64Array } {
  const full = [1, ...shape];
  if (c.dims.length > full.length) {
    l.fail(
      node,
      `constant of shape ${fmt(c.dims)} has more axes than the activation [N, ${shape.join(', ')}]`,
    );
  }
  const aligned = [...new Array<number>(full.length - c.dims.length).fill(1), ...c.dims];
  for (let i = 0; i < full.length; i++) {
    if (aligned[i] !== 1 && aligned[i] !== full[i]) {
      l.fail(
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

/**
 * Add, Sub, Mul and Div: with a constant operand an affine layer; between two activations a square (x · x), a
 * doubling (x + x) or a binary layer of equal shapes.
 *
 * @example
 * ```ts
 * lowerArithmetic(l, node); // Mul(x, 0.5) emits { kind: 'affine', broadcast: 'scalar', scale: [0.5], shift: [0] }
 * ```
 */
export function lowerArithmetic(l: Lowering, node: GraphNode): undefined {
  const op = node.opType as 'Add' | 'Sub' | 'Mul' | 'Div';
  const a = l.input(node, 0);
  const b = l.input(node, 1);
  if (a === undefined || b === undefined) l.fail(node, 'expects two inputs');
  if (a.kind === 'act' && b.kind === 'act') {
    if (op === 'Div') l.fail(node, 'division by an activation is not a polynomial');
    if (a.name === b.name && op === 'Mul') {
      l.emit(node, { kind: 'square', inputs: [a.name], shape: a.shape });
      return;
    }
    if (a.name === b.name && op === 'Add') {
      affine(l, node, a, 'scalar', Float64Array.of(2), Float64Array.of(0));
      return;
    }
    if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
      l.fail(
        node,
        `activations of shapes ${fmt(a.shape)} and ${fmt(b.shape)}: broadcasting between activations is not supported`,
      );
    }
    const kind = op === 'Add' ? 'add' : op === 'Sub' ? 'sub' : 'mul';
    l.emit(node, { kind: 'binary', op: kind, inputs: [a.name, b.name], shape: a.shape });
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
    l.fail(
      node,
      `constant of shape ${fmt(c.tensor.dims)} does not broadcast to the activation [N, ${x.shape.join(', ')}]`,
    );
  }
  const { broadcast, values } = broadcastConstant(l, node, c.tensor, x.shape);
  const ones = () => new Float64Array(values.length).fill(1);
  const zeros = () => new Float64Array(values.length);
  switch (op) {
    case 'Add':
      return affine(l, node, x, broadcast, ones(), values);
    case 'Sub':
      return actFirst
        ? affine(
            l,
            node,
            x,
            broadcast,
            ones(),
            values.map((v) => -v),
          )
        : affine(l, node, x, broadcast, ones().fill(-1), values);
    case 'Mul':
      return affine(l, node, x, broadcast, values, zeros());
    case 'Div':
      if (!actFirst) l.fail(node, 'division by an activation is not a polynomial');
      if (values.some((v) => v === 0)) l.fail(node, 'division by a constant that contains 0');
      return affine(
        l,
        node,
        x,
        broadcast,
        values.map((v) => 1 / v),
        zeros(),
      );
  }
}

/**
 * Pow with the constant exponent 1 (the input itself) or 2 (a square layer).
 *
 * @example
 * ```ts
 * lowerPow(l, node); // Pow(x, 2) emits { kind: 'square', ... }
 * ```
 */
export function lowerPow(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0);
  const e = l.constant(node, 1, 'exponent');
  if (e.data.length !== 1 || (e.data[0] !== 2 && e.data[0] !== 1)) {
    l.fail(
      node,
      `exponent ${e.data.length === 1 ? e.data[0] : fmt(e.dims)}: only the scalars 1 and 2 are supported`,
    );
  }
  if (e.data[0] === 1) return l.alias(node, x);
  return l.emit(node, { kind: 'square', inputs: [x.name], shape: x.shape });
}

/**
 * Neg as an affine layer of scale −1.
 *
 * @example
 * ```ts
 * lowerNeg(l, node); // emits { kind: 'affine', broadcast: 'scalar', scale: [-1], shift: [0] }
 * ```
 */
export function lowerNeg(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0);
  return affine(l, node, x, 'scalar', Float64Array.of(-1), Float64Array.of(0));
}

/**
 * Relu, Sigmoid and Tanh to an activation layer (the compiler approximates it by a polynomial).
 *
 * @example
 * ```ts
 * lowerActivation(l, node); // Relu emits { kind: 'activation', fn: 'relu', ... }
 * ```
 */
export function lowerActivation(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0);
  const fn = node.opType.toLowerCase() as ActivationFunction;
  return l.emit(node, { kind: 'activation', fn, inputs: [x.name], shape: x.shape });
}

/**
 * BatchNormalization (inference mode) to an affine layer: scale / √(var + ε) and B − mean · that.
 *
 * @example
 * ```ts
 * lowerBatchNormalization(l, node); // emits { kind: 'affine', broadcast: 'channel', ... }
 * ```
 */
export function lowerBatchNormalization(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0);
  l.checkOnlyFirstOutputUsed(node);
  if (intAttribute(node, 'training_mode', 0) !== 0) l.fail(node, 'training_mode = 1 is not supported');
  const scale = l.constant(node, 1, 'scale').data;
  const bias = l.constant(node, 2, 'B').data;
  const mean = l.constant(node, 3, 'mean').data;
  const variance = l.constant(node, 4, 'var').data;
  const epsilon = floatAttribute(node, 'epsilon', 1e-5);
  const n = scale.length;
  if (bias.length !== n || mean.length !== n || variance.length !== n) {
    l.fail(node, 'scale, B, mean and var differ in length');
  }
  const size = shapeSize(x.shape);
  const broadcast: Broadcast =
    n === x.shape[0]
      ? 'channel'
      : n === size
        ? 'element'
        : l.fail(node, `${n} parameters for input [N, ${x.shape.join(', ')}]`);
  const s = new Float64Array(n);
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const denominator = Math.sqrt(variance[i] + epsilon);
    if (!(denominator > 0)) l.fail(node, `var[${i}] + epsilon = ${variance[i] + epsilon} is not positive`);
    s[i] = scale[i] / denominator;
    t[i] = bias[i] - mean[i] * s[i];
  }
  affine(l, node, x, broadcast, s, t);
}
