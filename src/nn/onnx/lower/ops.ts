/**
 * Which function lowers which ONNX operator, and the order of the checks before it: the operator domain, `Constant`,
 * then constant folding when every input is a constant.
 */
import { CONSTANT_FOLDABLE_OPS } from '../const-fold.ts';
import type { GraphNode } from '../graph.ts';
import { foldConstants, lowerConcat, lowerConstant, lowerShape } from './constants.ts';
import {
  lowerActivation,
  lowerArithmetic,
  lowerBatchNormalization,
  lowerNeg,
  lowerPow,
} from './elementwise.ts';
import { lowerConv, lowerGemm, lowerMatMul } from './linear.ts';
import type { Lowering } from './lowering.ts';
import { lowerCast, lowerDropout, lowerIdentity, lowerSoftmax } from './passthrough.ts';
import { lowerGlobalAveragePool, lowerPool } from './pooling.ts';
import { lowerPad, lowerSlice } from './slice-pad.ts';
import { lowerFlatten, lowerReshape, lowerSqueeze, lowerTranspose, lowerUnsqueeze } from './reshape.ts';

/**
 * The ONNX operators the importer lowers (default domain, opset 7–23).
 *
 * @example
 * ```ts
 * SUPPORTED_OPS.includes('Conv'); // true
 * ```
 */
export const SUPPORTED_OPS: readonly string[] = [
  'Add',
  'AveragePool',
  'BatchNormalization',
  'Cast',
  'Concat',
  'Constant',
  'ConstantOfShape',
  'Conv',
  'Div',
  'Dropout',
  'Flatten',
  'Gather',
  'Gemm',
  'GlobalAveragePool',
  'Identity',
  'LogSoftmax',
  'MatMul',
  'MaxPool',
  'Mul',
  'Neg',
  'Pad',
  'Pow',
  'Reciprocal',
  'Relu',
  'Reshape',
  'Shape',
  'Sigmoid',
  'Slice',
  'Softmax',
  'Sqrt',
  'Squeeze',
  'Sub',
  'Tanh',
  'Transpose',
  'Unsqueeze',
];

type OpLowering = (l: Lowering, node: GraphNode) => undefined;

/** The lowering of each operator that may take an activation (Gather, Sqrt and Reciprocal only fold constants). */
const OP_LOWERINGS: ReadonlyMap<string, OpLowering> = new Map([
  ['Conv', lowerConv],
  ['Gemm', lowerGemm],
  ['MatMul', lowerMatMul],
  ['Add', lowerArithmetic],
  ['Sub', lowerArithmetic],
  ['Mul', lowerArithmetic],
  ['Div', lowerArithmetic],
  ['Pow', lowerPow],
  ['Neg', lowerNeg],
  ['Relu', lowerActivation],
  ['Sigmoid', lowerActivation],
  ['Tanh', lowerActivation],
  ['BatchNormalization', lowerBatchNormalization],
  ['AveragePool', lowerPool],
  ['MaxPool', lowerPool],
  ['GlobalAveragePool', lowerGlobalAveragePool],
  ['Flatten', lowerFlatten],
  ['Reshape', lowerReshape],
  ['Squeeze', lowerSqueeze],
  ['Unsqueeze', lowerUnsqueeze],
  ['Transpose', lowerTranspose],
  ['Identity', lowerIdentity],
  ['Dropout', lowerDropout],
  ['Cast', lowerCast],
  ['Softmax', lowerSoftmax],
  ['LogSoftmax', lowerSoftmax],
  ['Shape', lowerShape],
  ['Concat', lowerConcat],
  ['Slice', lowerSlice],
  ['Pad', lowerPad],
]);

/**
 * Lowers one node: defines its outputs as constants or activations, emitting layers as needed.
 *
 * @throws UnsupportedModelError naming the node, its op type and (for unknown operators) the supported list.
 * @example
 * ```ts
 * for (const node of graph.nodes) lowerNode(l, node);
 * ```
 */
export function lowerNode(l: Lowering, node: GraphNode): undefined {
  if (node.domain !== '' && node.domain !== 'ai.onnx') {
    l.fail(node, `operator domain '${node.domain}' is not supported (only the default ai.onnx domain)`);
  }
  const op = node.opType;
  if (op === 'Constant') return lowerConstant(l, node);
  if (foldConstants(l, node)) return;
  const lower = OP_LOWERINGS.get(op);
  if (lower !== undefined) return lower(l, node);
  if (CONSTANT_FOLDABLE_OPS.has(op)) l.fail(node, 'supported only on constants here');
  return l.fail(node, `operator not supported; supported operators: ${SUPPORTED_OPS.join(', ')}`);
}
