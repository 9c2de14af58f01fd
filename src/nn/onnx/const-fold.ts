/**
 * Evaluation of nodes whose inputs are all constants (weight transposes, shape arithmetic, `Constant` values), so
 * that the lowering only ever sees activations flowing through layers with constant parameters.
 */
import type { ConstTensor, DType, GraphNode } from './graph.ts';
import { resolveSliceAxis } from './lower/slice-pad.ts';
import { intAttribute, intsAttribute, shapeSize } from './graph.ts';

/**
 * Raised for a constant-folding problem; the lowering rethrows it as an UnsupportedModelError naming the node.
 *
 * @example
 * ```ts
 * try { foldConstantNode(node, inputs, 13); } catch (e) { if (e instanceof ConstantFoldError) console.error(e.message); }
 * ```
 */
export class ConstantFoldError extends Error {}

function tensor(name: string, dtype: DType, dims: readonly number[], data: Float64Array): ConstTensor {
  return { name, dtype, dims: [...dims], data };
}

function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

/**
 * The numpy-style broadcast of two shapes, or `undefined` when they do not broadcast.
 *
 * @example
 * ```ts
 * broadcastShapes([5, 1, 1], [1, 13, 13]); // [5, 13, 13]
 * ```
 */
export function broadcastShapes(x: readonly number[], y: readonly number[]): number[] | undefined {
  const r = Math.max(x.length, y.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const a = x[x.length - r + i] ?? 1;
    const b = y[y.length - r + i] ?? 1;
    if (a !== b && a !== 1 && b !== 1) return undefined;
    out.push(a === 1 ? b : a);
  }
  return out;
}

/**
 * Expands `data` of shape `dims` to the broadcast shape `target` (C order).
 *
 * @example
 * ```ts
 * expandTo(Float64Array.of(1, 2), [2, 1], [2, 3]); // [1, 1, 1, 2, 2, 2]
 * ```
 */
export function expandTo(
  data: Float64Array,
  dims: readonly number[],
  target: readonly number[],
): Float64Array {
  const r = target.length;
  const aligned = [...new Array<number>(r - dims.length).fill(1), ...dims];
  const srcStrides = stridesOf(aligned).map((s, i) => (aligned[i] === 1 ? 0 : s));
  const n = shapeSize(target);
  const out = new Float64Array(n);
  const index = new Array<number>(r).fill(0);
  let src = 0;
  for (let i = 0; i < n; i++) {
    out[i] = data[src];
    for (let d = r - 1; d >= 0; d--) {
      index[d]++;
      src += srcStrides[d];
      if (index[d] < target[d]) break;
      src -= srcStrides[d] * index[d];
      index[d] = 0;
    }
  }
  return out;
}

function elementwise(
  node: GraphNode,
  a: ConstTensor,
  b: ConstTensor,
  f: (x: number, y: number) => number,
): ConstTensor {
  const dims = broadcastShapes(a.dims, b.dims);
  if (dims === undefined) {
    throw new ConstantFoldError(
      `constant shapes [${a.dims.join(', ')}] and [${b.dims.join(', ')}] do not broadcast`,
    );
  }
  const x = expandTo(a.data, a.dims, dims);
  const y = expandTo(b.data, b.dims, dims);
  const out = new Float64Array(x.length);
  const integer = a.dtype === 'int64' || a.dtype === 'int32';
  for (let i = 0; i < out.length; i++) {
    const v = f(x[i], y[i]);
    out[i] = integer ? Math.trunc(v) : v;
  }
  return tensor(node.outputs[0], a.dtype, dims, out);
}

function normalizeAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank)
    throw new ConstantFoldError(`axis ${axis} is outside rank ${rank}`);
  return a;
}

/**
 * Permutes the axes of a constant (ONNX Transpose semantics; default reverses the axes).
 *
 * @example
 * ```ts
 * transposeConstant(w, [1, 0]); // a [K, M] matrix becomes [M, K]
 * ```
 */
export function transposeConstant(
  t: ConstTensor,
  perm: readonly number[] | undefined,
  name = t.name,
): ConstTensor {
  const r = t.dims.length;
  const p = perm ?? [...Array(r).keys()].reverse();
  if (p.length !== r || [...p].sort((x, y) => x - y).some((v, i) => v !== i)) {
    throw new ConstantFoldError(`perm [${p.join(', ')}] is not a permutation of ${r} axes`);
  }
  const dims = p.map((i) => t.dims[i]);
  const inStrides = stridesOf(t.dims);
  const srcStrides = p.map((i) => inStrides[i]);
  const n = t.data.length;
  const out = new Float64Array(n);
  const index = new Array<number>(r).fill(0);
  let src = 0;
  for (let i = 0; i < n; i++) {
    out[i] = t.data[src];
    for (let d = r - 1; d >= 0; d--) {
      index[d]++;
      src += srcStrides[d];
      if (index[d] < dims[d]) break;
      src -= srcStrides[d] * index[d];
      index[d] = 0;
    }
  }
  return tensor(name, t.dtype, dims, out);
}

/**
 * Resolves an ONNX Reshape target (0 copies the input dimension unless `allowZero`, −1 is inferred) against an
 * input shape.
 *
 * @example
 * ```ts
 * resolveReshape([1, 5, 13, 13], [0, -1], false); // [1, 845]
 * ```
 */
export function resolveReshape(
  input: readonly number[],
  target: readonly number[],
  allowZero: boolean,
): number[] {
  const total = shapeSize(input);
  let inferAt = -1;
  const out = target.map((t, i) => {
    if (t === 0 && !allowZero) {
      if (i >= input.length)
        throw new ConstantFoldError(`reshape dimension ${i} copies a missing input dimension`);
      return input[i];
    }
    if (t === -1) {
      if (inferAt >= 0) throw new ConstantFoldError('reshape target has more than one -1');
      inferAt = i;
      return 1;
    }
    if (!Number.isInteger(t) || t < 0) throw new ConstantFoldError(`reshape dimension ${t} is invalid`);
    return t;
  });
  const known = shapeSize(out);
  if (inferAt >= 0) {
    if (known === 0 || total % known !== 0) {
      throw new ConstantFoldError(
        `cannot infer -1 reshaping [${input.join(', ')}] to [${target.join(', ')}]`,
      );
    }
    out[inferAt] = total / known;
  }
  if (shapeSize(out) !== total) {
    throw new ConstantFoldError(`reshape of [${input.join(', ')}] (${total} values) to [${out.join(', ')}]`);
  }
  return out;
}

const CAST_TYPES: ReadonlyMap<number, DType> = new Map([
  [1, 'float32'],
  [11, 'float64'],
  [7, 'int64'],
  [6, 'int32'],
]);

/**
 * Op types {@link foldConstantNode} evaluates.
 *
 * @example
 * ```ts
 * CONSTANT_FOLDABLE_OPS.has('Transpose'); // true
 * ```
 */
export const CONSTANT_FOLDABLE_OPS: ReadonlySet<string> = new Set([
  'Identity',
  'Dropout',
  'Reshape',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Transpose',
  'Cast',
  'Concat',
  'Gather',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
  'Neg',
  'Sqrt',
  'Reciprocal',
  'Slice',
  'ConstantOfShape',
]);

function axesOf(
  node: GraphNode,
  inputs: readonly (ConstTensor | undefined)[],
  opset: number,
): number[] | undefined {
  if (opset >= 13) {
    const t = inputs[1];
    return t === undefined ? undefined : [...t.data];
  }
  const a = intsAttribute(node, 'axes');
  return a === undefined ? undefined : [...a];
}

/**
 * Evaluates a node all of whose (present) inputs are constants. Returns the output constants (one per node output
 * that the op defines) or `undefined` when the op type is not in {@link CONSTANT_FOLDABLE_OPS}.
 *
 * @throws ConstantFoldError when the constants do not fit the op (bad axes, shapes that do not broadcast).
 * @example
 * ```ts
 * const [wT] = foldConstantNode(transposeNode, [w], 13) ?? [];
 * ```
 */
export function foldConstantNode(
  node: GraphNode,
  inputs: readonly (ConstTensor | undefined)[],
  opset: number,
): ConstTensor[] | undefined {
  const x = inputs[0];
  const out = node.outputs[0] ?? '';
  if (x === undefined) throw new ConstantFoldError('missing first input');
  const need = (i: number): ConstTensor => {
    const t = inputs[i];
    if (t === undefined) throw new ConstantFoldError(`missing input ${i}`);
    return t;
  };
  switch (node.opType) {
    case 'Identity':
    case 'Dropout':
      return [tensor(out, x.dtype, x.dims, x.data)];
    case 'Reshape':
      return [
        tensor(
          out,
          x.dtype,
          resolveReshape(x.dims, [...need(1).data], intAttribute(node, 'allowzero', 0) === 1),
          x.data,
        ),
      ];
    case 'Flatten': {
      const axis = intAttribute(node, 'axis', 1);
      const a = axis < 0 ? axis + x.dims.length : axis;
      if (a < 0 || a > x.dims.length)
        throw new ConstantFoldError(`axis ${axis} is outside rank ${x.dims.length}`);
      return [tensor(out, x.dtype, [shapeSize(x.dims.slice(0, a)), shapeSize(x.dims.slice(a))], x.data)];
    }
    case 'Squeeze': {
      const axes = axesOf(node, inputs, opset);
      const drop = new Set(
        (axes ?? x.dims.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => normalizeAxis(a, x.dims.length)),
      );
      for (const a of drop)
        if (x.dims[a] !== 1) throw new ConstantFoldError(`cannot squeeze axis ${a} of size ${x.dims[a]}`);
      return [
        tensor(
          out,
          x.dtype,
          x.dims.filter((_, i) => !drop.has(i)),
          x.data,
        ),
      ];
    }
    case 'Unsqueeze': {
      const axes = axesOf(node, inputs, opset);
      if (axes === undefined) throw new ConstantFoldError('Unsqueeze without axes');
      const rank = x.dims.length + axes.length;
      const insert = new Set(axes.map((a) => normalizeAxis(a, rank)));
      if (insert.size !== axes.length) throw new ConstantFoldError('repeated Unsqueeze axis');
      const dims: number[] = [];
      let k = 0;
      for (let i = 0; i < rank; i++) dims.push(insert.has(i) ? 1 : x.dims[k++]);
      return [tensor(out, x.dtype, dims, x.data)];
    }
    case 'Transpose':
      return [transposeConstant(x, intsAttribute(node, 'perm'), out)];
    case 'Cast': {
      const to = CAST_TYPES.get(intAttribute(node, 'to', 0));
      if (to === undefined) throw new ConstantFoldError(`Cast to data type ${intAttribute(node, 'to', 0)}`);
      const integer = to === 'int64' || to === 'int32';
      const data = x.data.map((v) => (integer ? Math.trunc(v) : to === 'float32' ? Math.fround(v) : v));
      return [tensor(out, to, x.dims, data)];
    }
    case 'Concat': {
      const parts = inputs.filter((t): t is ConstTensor => t !== undefined);
      const rank = x.dims.length;
      const axis = normalizeAxis(intAttribute(node, 'axis', 0), rank);
      for (const p of parts) {
        if (p.dims.length !== rank || p.dims.some((d, i) => i !== axis && d !== x.dims[i])) {
          throw new ConstantFoldError('Concat inputs of different shapes');
        }
      }
      const outer = shapeSize(x.dims.slice(0, axis));
      const inner = shapeSize(x.dims.slice(axis + 1));
      const dims = [...x.dims];
      dims[axis] = parts.reduce((s, p) => s + p.dims[axis], 0);
      const data = new Float64Array(shapeSize(dims));
      let at = 0;
      for (let o = 0; o < outer; o++) {
        for (const p of parts) {
          const len = p.dims[axis] * inner;
          data.set(p.data.subarray(o * len, (o + 1) * len), at);
          at += len;
        }
      }
      return [tensor(out, x.dtype, dims, data)];
    }
    case 'Gather': {
      const indices = need(1);
      const rank = x.dims.length;
      const axis = normalizeAxis(intAttribute(node, 'axis', 0), rank);
      const outer = shapeSize(x.dims.slice(0, axis));
      const inner = shapeSize(x.dims.slice(axis + 1));
      const size = x.dims[axis];
      const dims = [...x.dims.slice(0, axis), ...indices.dims, ...x.dims.slice(axis + 1)];
      const data = new Float64Array(shapeSize(dims));
      let at = 0;
      for (let o = 0; o < outer; o++) {
        for (const raw of indices.data) {
          const idx = raw < 0 ? raw + size : raw;
          if (!Number.isInteger(idx) || idx < 0 || idx >= size)
            throw new ConstantFoldError(`Gather index ${raw} out of range`);
          data.set(x.data.subarray((o * size + idx) * inner, (o * size + idx + 1) * inner), at);
          at += inner;
        }
      }
      return [tensor(out, x.dtype, dims, data)];
    }
    case 'Add':
      return [elementwise(node, x, need(1), (p, q) => p + q)];
    case 'Sub':
      return [elementwise(node, x, need(1), (p, q) => p - q)];
    case 'Mul':
      return [elementwise(node, x, need(1), (p, q) => p * q)];
    case 'Div':
      return [elementwise(node, x, need(1), (p, q) => p / q)];
    case 'Pow':
      return [elementwise(node, x, need(1), (p, q) => p ** q)];
    case 'Neg':
      return [
        tensor(
          out,
          x.dtype,
          x.dims,
          x.data.map((v) => -v),
        ),
      ];
    case 'Sqrt':
      return [
        tensor(
          out,
          x.dtype,
          x.dims,
          x.data.map((v) => Math.sqrt(v)),
        ),
      ];
    case 'ConstantOfShape': {
      const dims = [...x.data];
      if (dims.some((d) => !Number.isInteger(d) || d < 0)) {
        throw new ConstantFoldError(`ConstantOfShape of shape ${JSON.stringify(dims)}`);
      }
      const value = node.attributes.get('value');
      const fill = value?.kind === 'tensor' ? (value.value.data[0] ?? 0) : 0;
      const dtype = value?.kind === 'tensor' ? value.value.dtype : 'float32';
      return [tensor(out, dtype, dims, new Float64Array(shapeSize(dims)).fill(fill))];
    }
    case 'Slice': {
      if (opset < 10) throw new ConstantFoldError('Slice before opset 10 (attributes) on constants');
      const rank = x.dims.length;
      const starts = [...need(1).data];
      const ends = [...need(2).data];
      const axes = inputs[3]
        ? [...inputs[3].data].map((a) => normalizeAxis(a, rank))
        : starts.map((_, i) => i);
      const steps = inputs[4] ? [...inputs[4].data] : starts.map(() => 1);
      const spec = x.dims.map((size) => ({ start: 0, step: 1, count: size }));
      axes.forEach((axis, i) => {
        spec[axis] = resolveSliceAxis(x.dims[axis], starts[i], ends[i], steps[i]);
      });
      const dims = spec.map((a) => a.count);
      const strides = x.dims.map((_, i) => shapeSize(x.dims.slice(i + 1)));
      const data = new Float64Array(shapeSize(dims));
      const index = new Array(rank).fill(0);
      for (let k = 0; k < data.length; k++) {
        let offset = 0;
        for (let a = 0; a < rank; a++) offset += (spec[a].start + index[a] * spec[a].step) * strides[a];
        data[k] = x.data[offset];
        for (let a = rank - 1; a >= 0; a--) {
          if (++index[a] < dims[a]) break;
          index[a] = 0;
        }
      }
      return [tensor(out, x.dtype, dims, data)];
    }
    case 'Reciprocal':
      return [
        tensor(
          out,
          x.dtype,
          x.dims,
          x.data.map((v) => 1 / v),
        ),
      ];
    default:
      return undefined;
  }
}
