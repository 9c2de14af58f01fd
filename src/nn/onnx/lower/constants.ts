/**
 * Lowering of what is known before any input arrives: `Constant` nodes, `Shape` of an activation (its static shape
 * with the batch as 1), and any node whose inputs are all constants, evaluated by `const-fold.ts`. Concat exists
 * only in that constant form (shape arithmetic).
 */
import { CONSTANT_FOLDABLE_OPS, ConstantFoldError, foldConstantNode } from '../const-fold.ts';
import type { ConstTensor, GraphNode } from '../graph.ts';
import { floatAttribute, intAttribute, intsAttribute } from '../graph.ts';
import type { Lowering } from './lowering.ts';

/**
 * A `Constant` node: its `value` tensor or its scalar/list attribute as a constant.
 *
 * @example
 * ```ts
 * lowerConstant(l, node); // Constant(value_ints = [-1, 845]) defines the int64 constant [-1, 845]
 * ```
 */
export function lowerConstant(l: Lowering, node: GraphNode): undefined {
  const a = node.attributes;
  const v = a.get('value');
  const name = node.outputs[0];
  let tensor: ConstTensor;
  if (v?.kind === 'tensor') tensor = { ...v.value, name };
  else if (a.get('value_float')?.kind === 'float') {
    tensor = {
      name,
      dtype: 'float32',
      dims: [],
      data: Float64Array.of(floatAttribute(node, 'value_float', 0)),
    };
  } else if (a.get('value_floats')?.kind === 'floats') {
    const f = a.get('value_floats')?.value as number[];
    tensor = { name, dtype: 'float32', dims: [f.length], data: Float64Array.from(f) };
  } else if (a.get('value_int')?.kind === 'int') {
    tensor = { name, dtype: 'int64', dims: [], data: Float64Array.of(intAttribute(node, 'value_int', 0)) };
  } else if (a.get('value_ints')?.kind === 'ints') {
    const f = intsAttribute(node, 'value_ints') ?? [];
    tensor = { name, dtype: 'int64', dims: [f.length], data: Float64Array.from(f) };
  } else {
    return l.fail(
      node,
      'no value, value_float(s) or value_int(s) attribute (sparse and string constants are not supported)',
    );
  }
  l.setOutput(node, { kind: 'const', tensor });
}

/**
 * Shape of an activation (optionally sliced by `start`/`end`) as an int64 constant, batch axis 1.
 *
 * @example
 * ```ts
 * lowerShape(l, node); // Shape of [N, 5, 13, 13] defines [1, 5, 13, 13]
 * ```
 */
export function lowerShape(l: Lowering, node: GraphNode): undefined {
  const x = l.activation(node, 0);
  const full = [1, ...x.shape];
  const r = full.length;
  const clamp = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
  const start = clamp(intAttribute(node, 'start', 0));
  const end = clamp(intAttribute(node, 'end', r));
  const dims = full.slice(start, Math.max(start, end));
  l.setOutput(node, {
    kind: 'const',
    tensor: { name: node.outputs[0], dtype: 'int64', dims: [dims.length], data: Float64Array.from(dims) },
  });
}

/**
 * Concat of activations, which the layer IR cannot express: always an UnsupportedModelError (a Concat of
 * constants never gets here, {@link foldConstants} evaluates it).
 *
 * @example
 * ```ts
 * lowerConcat(l, node); // throws, naming SqueezeNet, Inception and DenseNet as the usual sources
 * ```
 */
export function lowerConcat(l: Lowering, node: GraphNode): undefined {
  return l.fail(
    node,
    'concatenation of activations (as in SqueezeNet fire modules, Inception or DenseNet blocks) is not ' +
      'supported: the layer IR has no multi-input concatenation; Concat is supported only on constants ' +
      '(shape arithmetic)',
  );
}

/**
 * Evaluates the node now when its first input and every other present input are constants and its op type is
 * foldable; returns whether it did. Reads every input first, so an input without a value fails here.
 *
 * @throws UnsupportedModelError naming the node when the constants do not fit the op.
 * @example
 * ```ts
 * if (foldConstants(l, node)) return; // e.g. a Transpose of a weight, or Shape → Gather → Concat arithmetic
 * ```
 */
export function foldConstants(l: Lowering, node: GraphNode): boolean {
  const present = node.inputs.map((_, i) => l.input(node, i));
  if (
    present.length > 0 &&
    present.every((v) => v === undefined || v.kind === 'const') &&
    present[0] !== undefined
  ) {
    if (CONSTANT_FOLDABLE_OPS.has(node.opType)) {
      let results: ConstTensor[] | undefined;
      try {
        results = foldConstantNode(
          node,
          present.map((v) => (v === undefined ? undefined : (v as { tensor: ConstTensor }).tensor)),
          l.graph.opset,
        );
      } catch (e) {
        if (e instanceof ConstantFoldError) l.fail(node, `constant folding: ${e.message}`);
        throw e;
      }
      if (results !== undefined) {
        for (let i = 0; i < results.length; i++) l.setOutput(node, { kind: 'const', tensor: results[i] }, i);
        return true;
      }
    }
  }
  return false;
}
