/**
 * Lowering of the operators that change an activation's shape or layout but not its values: Flatten, Reshape,
 * Squeeze, Unsqueeze and Transpose. A reshape is a reshape layer (or nothing, when the shape stays); a Transpose
 * that changes the data layout emits no layer but records a permutation, which the model input or a later Dense
 * absorbs.
 */
import { ConstantFoldError, resolveReshape } from '../const-fold.ts';
import type { GraphNode } from '../graph.ts';
import { intAttribute, intsAttribute, shapeSize } from '../graph.ts';
import { type ActValue, fmt, type Lowering } from './lowering.ts';

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

function reshapeTo(l: Lowering, node: GraphNode, x: ActValue, full: readonly number[]): undefined {
  if (full.length === 0 || full[0] !== 1) {
    l.fail(node, `result shape ${fmt(full)} would merge or move the batch dimension`);
  }
  const shape = full.slice(1);
  if (shapeSize(shape) !== shapeSize(x.shape))
    l.fail(node, `cannot reshape [N, ${x.shape.join(', ')}] to ${fmt(full)}`);
  if (x.permutation !== undefined) {
    // Reshapes keep logical C-order indices, so the permutation carries over unchanged; no layer is needed.
    l.setOutput(node, { ...x, shape });
    return;
  }
  if (shape.length === x.shape.length && shape.every((d, i) => d === x.shape[i])) {
    l.alias(node, x);
    return;
  }
  l.emit(node, { kind: 'reshape', inputs: [x.name], shape });
}

/** The `axes` of Squeeze/Unsqueeze: an input from opset 13, an attribute before. */
function axesOf(l: Lowering, node: GraphNode): number[] | undefined {
  if (l.graph.opset >= 13) {
    if (!node.inputs[1]) return undefined;
    return [...l.constant(node, 1, 'axes').data];
  }
  const a = intsAttribute(node, 'axes');
  return a === undefined ? undefined : [...a];
}

/**
 * Flatten of everything but the batch axis.
 *
 * @example
 * ```ts
 * lowerFlatten(l, node); // [N, 5, 13, 13] → [N, 845]
 * ```
 */
export function lowerFlatten(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0, true);
  const r = x.shape.length + 1;
  const raw = intAttribute(node, 'axis', 1);
  const axis = raw < 0 ? raw + r : raw;
  if (axis !== 0 && axis !== 1)
    l.fail(node, `axis ${raw}: only flattening everything but the batch axis is supported`);
  return reshapeTo(l, node, x, [1, shapeSize(x.shape)]);
}

/**
 * Reshape to a constant target; a target that spells out a fixed batch size reads it as the batch axis.
 *
 * @example
 * ```ts
 * lowerReshape(l, node); // Reshape(x, [-1, 845]) on [N, 5, 13, 13] → [N, 845]
 * ```
 */
export function lowerReshape(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0, true);
  const target = [...l.constant(node, 1, 'shape').data];
  if (l.fixedBatch !== undefined && l.fixedBatch > 1 && target[0] === l.fixedBatch) target[0] = 1;
  let full: number[];
  try {
    full = resolveReshape([1, ...x.shape], target, intAttribute(node, 'allowzero', 0) === 1);
  } catch (e) {
    if (e instanceof ConstantFoldError) l.fail(node, e.message);
    throw e;
  }
  return reshapeTo(l, node, x, full);
}

/**
 * Squeeze of unit axes other than the batch axis.
 *
 * @example
 * ```ts
 * lowerSqueeze(l, node); // [N, 64, 1, 1] → [N, 64]
 * ```
 */
export function lowerSqueeze(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0, true);
  const full = [1, ...x.shape];
  const axes = axesOf(l, node)?.map((a) => (a < 0 ? a + full.length : a));
  if (axes?.some((a) => !(a >= 0 && a < full.length && full[a] === 1)))
    l.fail(node, `axes ${fmt(axes)} are not unit axes`);
  if (axes?.includes(0)) l.fail(node, 'squeezing the batch axis is not supported');
  const drop = new Set(axes ?? full.flatMap((d, i) => (i > 0 && d === 1 ? [i] : [])));
  return reshapeTo(
    l,
    node,
    x,
    full.filter((_, i) => !drop.has(i)),
  );
}

/**
 * Unsqueeze: unit axes inserted after the batch axis.
 *
 * @example
 * ```ts
 * lowerUnsqueeze(l, node); // axes [2, 3] on [N, 64] → [N, 64, 1, 1]
 * ```
 */
export function lowerUnsqueeze(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0, true);
  const axes = axesOf(l, node);
  if (axes === undefined) l.fail(node, 'axes are missing');
  const rank = x.shape.length + 1 + axes.length;
  const insert = new Set(axes.map((a) => (a < 0 ? a + rank : a)));
  if (insert.size !== axes.length || [...insert].some((a) => !(a >= 0 && a < rank)))
    l.fail(node, `axes ${fmt(axes)} are invalid`);
  if (insert.has(0)) l.fail(node, 'inserting an axis before the batch axis is not supported');
  const full = [1, ...x.shape];
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(insert.has(i) ? 1 : full[k++]);
  return reshapeTo(l, node, x, out);
}

/**
 * Transpose: a reshape when only unit axes move; on the model input (its only use) a change of the input layout;
 * otherwise a permutation carried on the value until a Dense absorbs it or another Transpose undoes it.
 *
 * @example
 * ```ts
 * lowerTranspose(l, node); // NHWC input [N, 32, 32, 3] with perm [0, 3, 1, 2] → [N, 3, 32, 32], inputPermutation set
 * ```
 */
export function lowerTranspose(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0, true);
  const full = [1, ...x.shape];
  const perm = intsAttribute(node, 'perm') ?? [...full.keys()].reverse();
  if (perm.length !== full.length || [...perm].sort((p, q) => p - q).some((v, i) => v !== i)) {
    l.fail(node, `perm ${fmt(perm)} is not a permutation of ${full.length} axes`);
  }
  const outFull = perm.map((p) => full[p]);
  if (outFull[0] !== 1) l.fail(node, `perm ${fmt(perm)} moves the batch axis`);
  const moved = perm.filter((p) => full[p] !== 1);
  const preservesLayout = moved.every((p, i) => i === 0 || p > moved[i - 1]);
  if (preservesLayout && x.permutation === undefined) return reshapeTo(l, node, x, outFull);
  const source = transposeIndex(full, perm);
  const shape = outFull.slice(1);
  if (x.permutation === undefined && x.name === l.graph.inputs[0].name && l.inputPermutation === undefined) {
    // A layout change of the model input is free under encryption (the client packs the data), so the model
    // takes its input in the transposed layout and the simulator permutes images on load.
    const users = l.consumersOf(x.name);
    if (users.length === 1 && !l.isGraphOutput(x.name)) {
      l.inputPermutation = source;
      l.layerInputShape = shape;
      l.setOutput(node, { kind: 'act', name: x.name, shape });
      return;
    }
  }
  const permutation = x.permutation === undefined ? source : source.map((i) => x.permutation?.[i] ?? i);
  if (permutation.every((v, i) => v === i)) {
    // A transpose that undoes an earlier one (e.g. NCHW → NHWC → NCHW) leaves the stored order as it is.
    return reshapeTo(l, node, { kind: 'act', name: x.name, shape: l.storedShape(x.name) }, outFull);
  }
  l.setOutput(node, {
    kind: 'act',
    name: x.name,
    shape,
    permutation,
    transposeNode: x.transposeNode ?? node.name,
  });
}
