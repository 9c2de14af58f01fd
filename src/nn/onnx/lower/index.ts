/**
 * Lowering of the typed ONNX graph to the canonical layer IR: static shape inference from the input shape (batch
 * treated as one image), constant folding, op-by-op translation, then BatchNormalization/affine folding into the
 * preceding Conv/Dense and dead-layer pruning.
 *
 * The pass state lives in `lowering.ts`, the routing of operators in `ops.ts`, one file per operator family beside
 * them, and the folding in `optimize.ts`; this file checks the model's input and output around them.
 */
import { FormatError } from '../../../util/errors.ts';
import { UnsupportedModelError } from '../../errors.ts';
import type { LayerModel } from '../../layers.ts';
import type { OnnxGraph } from '../graph.ts';
import { shapeSize } from '../graph.ts';
import { Lowering, MAX_ACTIVATION } from './lowering.ts';
import { lowerNode } from './ops.ts';
import { optimize } from './optimize.ts';

export { SUPPORTED_OPS } from './ops.ts';

/**
 * Options of {@link lowerGraph}.
 *
 * @example
 * ```ts
 * lowerGraph(graph, { inputShape: [3, 32, 32] }); // for an export whose spatial dims are symbolic
 * ```
 */
export interface LowerOptions {
  /** Per-image input shape (no batch dim) to use where the model declares symbolic dimensions. */
  readonly inputShape?: readonly number[];
}

/**
 * Lowers a decoded ONNX graph to the layer IR.
 *
 * @throws UnsupportedModelError naming the node, its op type and (for unknown operators) the supported list.
 * @throws FormatError when the graph contradicts itself (an undefined value, a declared output shape that differs).
 * @example
 * ```ts
 * const model = lowerGraph(decodeOnnx(bytes));
 * model.layers.map((l) => l.kind); // ['conv', 'square', 'reshape', 'dense', 'square', 'dense']
 * ```
 */
export function lowerGraph(graph: OnnxGraph, options: LowerOptions = {}): LayerModel {
  const l = new Lowering(graph);
  if (graph.inputs.length !== 1) {
    throw new UnsupportedModelError(
      `the model has ${graph.inputs.length} data inputs (${graph.inputs.map((i) => i.name).join(', ')}): expected exactly 1`,
    );
  }
  if (graph.outputs.length !== 1) {
    throw new UnsupportedModelError(
      `the model has ${graph.outputs.length} outputs (${graph.outputs.map((o) => o.name).join(', ')}): expected exactly 1`,
    );
  }
  const input = graph.inputs[0];
  if (input.dtype !== 'float32' && input.dtype !== 'float64') {
    throw new UnsupportedModelError(
      `input '${input.name}' has element type ${input.dtype}: expected float32 or float64`,
    );
  }
  if (input.shape.length < 2) {
    throw new UnsupportedModelError(
      `input '${input.name}' of shape [${input.shape.join(', ')}]: expected a batch axis then the image axes`,
    );
  }
  const batch = input.shape[0];
  if (typeof batch === 'number') {
    if (batch < 1) throw new UnsupportedModelError(`input '${input.name}' has a batch axis of size ${batch}`);
    // PyTorch exports without dynamic_axes fix the batch at the size of the example batch (often 32 or 64). Each
    // image is still computed on its own, so such a model is lowered per image like any other; reshape targets
    // that spell that batch size out are read as the batch axis.
    l.fixedBatch = batch;
  }
  const declared = input.shape.slice(1);
  let inputShape: number[];
  if (options.inputShape !== undefined) {
    const s = options.inputShape;
    if (
      s.length !== declared.length ||
      s.some(
        (d, i) => !(Number.isInteger(d) && d >= 1) || (typeof declared[i] === 'number' && declared[i] !== d),
      )
    ) {
      throw new UnsupportedModelError(
        `inputShape [${s.join(', ')}] does not fit the declared input [N, ${declared.join(', ')}]`,
      );
    }
    inputShape = [...s];
  } else {
    if (declared.some((d) => typeof d !== 'number' || d < 1)) {
      throw new UnsupportedModelError(
        `input '${input.name}' of shape [${input.shape.join(', ')}] has dynamic image dimensions: pass inputShape`,
      );
    }
    inputShape = declared as number[];
  }
  if (shapeSize(inputShape) > MAX_ACTIVATION) {
    throw new UnsupportedModelError(
      `input '${input.name}' [N, ${inputShape.join(', ')}] has more than ${MAX_ACTIVATION} values per image`,
    );
  }
  l.setValue(input.name, { kind: 'act', name: input.name, shape: inputShape });
  for (const n of graph.nodes) lowerNode(l, n);

  const outputName = graph.outputs[0].name;
  const out = l.value(outputName);
  if (out === undefined || out.kind !== 'act') {
    throw new UnsupportedModelError(
      `output '${outputName}' does not depend on the input (a constant output)`,
    );
  }
  if (out.permutation !== undefined) {
    throw new UnsupportedModelError(
      `output '${outputName}' is a layout-changing transpose (Transpose '${out.transposeNode}') of a computed value`,
    );
  }
  const declaredOut = graph.outputs[0].shape.slice(1);
  if (
    declaredOut.length > 0 &&
    (declaredOut.length !== out.shape.length ||
      declaredOut.some((d, i) => typeof d === 'number' && d !== out.shape[i]))
  ) {
    throw new FormatError(
      `output '${outputName}' is declared [N, ${declaredOut.join(', ')}] but computes [N, ${out.shape.join(', ')}]`,
    );
  }
  const layers = optimize(l.layers, out.name);
  return {
    inputName: input.name,
    inputShape: l.layerInputShape ?? inputShape,
    onnxInputShape: inputShape,
    ...(l.inputPermutation === undefined ? {} : { inputPermutation: l.inputPermutation }),
    outputName: out.name,
    outputShape: out.shape,
    layers,
    droppedSoftmax: l.droppedSoftmax,
    ...(l.fixedBatch === undefined ? {} : { fixedBatch: l.fixedBatch }),
    source: {
      producerName: graph.producerName,
      producerVersion: graph.producerVersion,
      opset: graph.opset,
      irVersion: graph.irVersion,
    },
  };
}
