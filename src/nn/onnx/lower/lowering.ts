/**
 * The state of one lowering pass: the value of every ONNX name (an activation or a constant), the layers emitted so
 * far under unique names, and the checked accessors through which the operator lowerings read inputs and write
 * outputs. Which function lowers which operator is decided in `ops.ts`.
 */
import { FormatError } from '../../../util/errors.ts';
import { UnsupportedModelError } from '../../errors.ts';
import type { Layer, Shape } from '../../layers.ts';
import type { ConstTensor, GraphNode, OnnxGraph } from '../graph.ts';
import { shapeSize } from '../graph.ts';

/**
 * An activation value. `permutation`, set after a layout-changing Transpose, maps each logical C-order index of
 * `shape` to the index where the buffer written under `name` holds it; only reshapes and a Dense may consume such a
 * value (the Dense absorbs the permutation into its weight columns).
 *
 * @example
 * ```ts
 * const x: ActValue = { kind: 'act', name: 'conv1_out', shape: [5, 13, 13] };
 * ```
 */
export interface ActValue {
  readonly kind: 'act';
  readonly name: string;
  readonly shape: Shape;
  readonly permutation?: Int32Array;
  readonly transposeNode?: string;
}

/**
 * What an ONNX name stands for during lowering: an activation computed by layers, or a constant known now.
 *
 * @example
 * ```ts
 * const v: Value = { kind: 'const', tensor: graph.initializers.get('fc.W')! };
 * ```
 */
export type Value = ActValue | { readonly kind: 'const'; readonly tensor: ConstTensor };

/**
 * Largest activation per image the importer accepts (values); far beyond what CKKS inference can hold.
 *
 * @example
 * ```ts
 * if (shapeSize(inputShape) > MAX_ACTIVATION) throw new UnsupportedModelError('input too large');
 * ```
 */
export const MAX_ACTIVATION = 1 << 26;

/** A layer before the lowering names it (Omit distributed over the union). */
type LayerSpec = Layer extends unknown
  ? Layer extends infer L
    ? L extends Layer
      ? Omit<L, 'name' | 'sources' | 'output'>
      : never
    : never
  : never;

/**
 * A shape or list of integers as the error messages print it.
 *
 * @example
 * ```ts
 * fmt([1, 28, 28]); // '[1, 28, 28]'
 * ```
 */
export function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * One lowering of an {@link OnnxGraph}: starts with the initializers as constants; the operator lowerings add
 * values and layers node by node.
 *
 * @example
 * ```ts
 * const l = new Lowering(graph);
 * const w = l.constant(node, 1, 'weight'); // throws UnsupportedModelError naming the node if it is not a constant
 * ```
 */
export class Lowering {
  private readonly values = new Map<string, Value>();
  private readonly emitted: Layer[] = [];
  private readonly layerNames = new Set<string>();
  private readonly consumers = new Map<string, GraphNode[]>();
  private readonly graphOutputs: Set<string>;
  droppedSoftmax = false;
  /** The batch size the ONNX input fixes, if it fixes one. */
  fixedBatch: number | undefined;
  /** Set when the model input is transposed first: layer-input index → ONNX-input index (per image). */
  inputPermutation: Int32Array | undefined;
  layerInputShape: Shape | undefined;

  constructor(readonly graph: OnnxGraph) {
    for (const n of graph.nodes) {
      for (const i of n.inputs) {
        if (i === '') continue;
        const list = this.consumers.get(i) ?? [];
        list.push(n);
        this.consumers.set(i, list);
      }
    }
    this.graphOutputs = new Set(graph.outputs.map((o) => o.name));
    for (const [name, tensor] of graph.initializers) this.values.set(name, { kind: 'const', tensor });
  }

  /** The layers emitted so far, in order. */
  get layers(): readonly Layer[] {
    return this.emitted;
  }

  value(name: string): Value | undefined {
    return this.values.get(name);
  }

  setValue(name: string, value: Value): undefined {
    this.values.set(name, value);
  }

  /** The nodes that read `name`, in graph order. */
  consumersOf(name: string): readonly GraphNode[] {
    return this.consumers.get(name) ?? [];
  }

  isGraphOutput(name: string): boolean {
    return this.graphOutputs.has(name);
  }

  fail(node: GraphNode, reason: string): never {
    throw new UnsupportedModelError(`node '${node.name}' (${node.opType}): ${reason}`, {
      node: node.name,
      opType: node.opType,
    });
  }

  isUsed(name: string): boolean {
    return name !== '' && (this.consumers.has(name) || this.graphOutputs.has(name));
  }

  /** True when `name` reaches a graph output through nothing but Identity/Dropout nodes. */
  isFinal(name: string): boolean {
    if (this.graphOutputs.has(name)) return true;
    const users = this.consumers.get(name) ?? [];
    return (
      users.length > 0 &&
      users.every(
        (u) =>
          (u.opType === 'Identity' || u.opType === 'Dropout') &&
          u.inputs[0] === name &&
          this.isFinal(u.outputs[0]),
      )
    );
  }

  input(node: GraphNode, i: number): Value | undefined {
    const name = node.inputs[i];
    if (name === undefined || name === '') return undefined;
    const v = this.values.get(name);
    if (v === undefined)
      throw new FormatError(`node '${node.name}' (${node.opType}): input '${name}' has no value`);
    return v;
  }

  activation(node: GraphNode, i: number, allowPermuted = false): ActValue {
    const v = this.input(node, i);
    if (v === undefined) this.fail(node, `input ${i} is missing`);
    if (v.kind !== 'act')
      this.fail(node, `input ${i} ('${node.inputs[i]}') must be an activation, not a constant`);
    if (v.permutation !== undefined && !allowPermuted) {
      this.fail(
        node,
        `input ${i} comes from Transpose '${v.transposeNode}', which changes the data layout; such a Transpose is ` +
          'supported only on the model input or when it reaches a Gemm/MatMul through reshapes alone',
      );
    }
    return v;
  }

  constant(node: GraphNode, i: number, what: string): ConstTensor {
    const v = this.input(node, i);
    if (v === undefined) this.fail(node, `${what} (input ${i}) is missing`);
    if (v.kind !== 'const') {
      this.fail(
        node,
        `${what} (input ${i}, '${node.inputs[i]}') must be a constant initializer, not computed at run time`,
      );
    }
    return v.tensor;
  }

  setOutput(node: GraphNode, value: Value, index = 0): undefined {
    const name = node.outputs[index];
    if (name !== undefined && name !== '') this.values.set(name, value);
  }

  alias(node: GraphNode, value: ActValue): undefined {
    this.setOutput(node, value);
  }

  uniqueName(base: string): string {
    let name = base;
    for (let k = 2; this.layerNames.has(name); k++) name = `${base}:${k}`;
    this.layerNames.add(name);
    return name;
  }

  emit(node: GraphNode, layer: LayerSpec): undefined {
    if (shapeSize(layer.shape) > MAX_ACTIVATION) {
      this.fail(
        node,
        `output [N, ${layer.shape.join(', ')}] has more than ${MAX_ACTIVATION} values per image`,
      );
    }
    const output = node.outputs[0];
    const full = { ...layer, name: this.uniqueName(node.name), sources: [node.name], output } as Layer;
    this.emitted.push(full);
    this.values.set(output, { kind: 'act', name: output, shape: full.shape });
  }

  checkOnlyFirstOutputUsed(node: GraphNode): undefined {
    for (let i = 1; i < node.outputs.length; i++) {
      if (this.isUsed(node.outputs[i]))
        this.fail(node, `output ${i} ('${node.outputs[i]}') is used; only output 0 is supported`);
    }
  }

  /** Shape of the buffer written under `name` (a layer output or the model input). */
  storedShape(name: string): Shape {
    for (let i = this.emitted.length - 1; i >= 0; i--)
      if (this.emitted[i].output === name) return this.emitted[i].shape;
    const v = this.values.get(name);
    return v?.kind === 'act' ? v.shape : [];
  }
}
