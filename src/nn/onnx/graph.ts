/**
 * The typed graph IR: an ONNX graph after decoding and validation, before lowering. Names, shapes and constants are
 * plain TypeScript values (no protobuf objects, no Long), so the lowering pass and tests never touch the wire format.
 */

/**
 * Element types the importer accepts for constants and graph inputs.
 *
 * @example
 * ```ts
 * const dtype: DType = 'float32';
 * ```
 */
export type DType = 'float32' | 'float64' | 'int64' | 'int32';

/**
 * A constant tensor (initializer, `Constant` node value or tensor attribute). Values are widened to float64; int64
 * values beyond 2^53 lose precision, which only matters for shape constants that no real model uses at that size.
 *
 * @example
 * ```ts
 * const w: ConstTensor = { name: 'fc.W', dtype: 'float32', dims: [10, 845], data: new Float64Array(8450) };
 * ```
 */
export interface ConstTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly data: Float64Array;
}

/**
 * One dimension of a declared input/output shape: a fixed size or a symbolic name (`'N'`, `'batch'`, `'?'`).
 *
 * @example
 * ```ts
 * const shape: Dim[] = ['N', 1, 28, 28];
 * ```
 */
export type Dim = number | string;

/**
 * A declared graph input or output.
 *
 * @example
 * ```ts
 * const input: ValueInfo = { name: 'input', dtype: 'float32', shape: ['N', 1, 28, 28] };
 * ```
 */
export interface ValueInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

/**
 * A decoded node attribute. `tensor` attributes (e.g. `Constant.value`) are decoded to a {@link ConstTensor};
 * graph-valued attributes (control flow) are not supported and never reach this type.
 *
 * @example
 * ```ts
 * const strides: Attribute = { kind: 'ints', value: [2, 2] };
 * ```
 */
export type Attribute =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'strings'; readonly value: readonly string[] }
  | { readonly kind: 'tensor'; readonly value: ConstTensor };

/**
 * One graph node. `name` is the ONNX node name, or `#<index>` when the exporter left it empty; `inputs` may hold `''`
 * for an omitted optional input.
 *
 * @example
 * ```ts
 * const relu: GraphNode = { name: 'r1', opType: 'Relu', domain: '', inputs: ['x'], outputs: ['y'], attributes: new Map() };
 * ```
 */
export interface GraphNode {
  readonly name: string;
  readonly opType: string;
  readonly domain: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: ReadonlyMap<string, Attribute>;
}

/**
 * A decoded, validated ONNX model: one graph, its single data input and output, constants and nodes in
 * topological order.
 *
 * @example
 * ```ts
 * const graph = decodeOnnx(bytes);
 * console.log(graph.producerName, graph.opset, graph.nodes.map((n) => n.opType));
 * ```
 */
export interface OnnxGraph {
  readonly irVersion: number;
  /** Version of the default (`ai.onnx`) operator set. */
  readonly opset: number;
  readonly producerName: string;
  readonly producerVersion: string;
  readonly graphName: string;
  /** Graph inputs that are not initializers (the data inputs). */
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly initializers: ReadonlyMap<string, ConstTensor>;
  readonly nodes: readonly GraphNode[];
}

/**
 * Number of elements of a shape.
 *
 * @example
 * ```ts
 * shapeSize([5, 13, 13]); // 845
 * ```
 */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Reads an integer attribute with a default.
 *
 * @example
 * ```ts
 * const group = intAttribute(node, 'group', 1);
 * ```
 */
export function intAttribute(node: GraphNode, name: string, fallback: number): number {
  const a = node.attributes.get(name);
  return a !== undefined && a.kind === 'int' ? a.value : fallback;
}

/**
 * Reads a float attribute with a default (an int-typed attribute is accepted too, as some exporters write one).
 *
 * @example
 * ```ts
 * const epsilon = floatAttribute(node, 'epsilon', 1e-5);
 * ```
 */
export function floatAttribute(node: GraphNode, name: string, fallback: number): number {
  const a = node.attributes.get(name);
  return a !== undefined && (a.kind === 'float' || a.kind === 'int') ? a.value : fallback;
}

/**
 * Reads an ints attribute, or `undefined` when absent.
 *
 * @example
 * ```ts
 * const pads = intsAttribute(node, 'pads') ?? [0, 0, 0, 0];
 * ```
 */
export function intsAttribute(node: GraphNode, name: string): readonly number[] | undefined {
  const a = node.attributes.get(name);
  return a !== undefined && a.kind === 'ints' ? a.value : undefined;
}

/**
 * Reads a string attribute with a default.
 *
 * @example
 * ```ts
 * const autoPad = stringAttribute(node, 'auto_pad', 'NOTSET');
 * ```
 */
export function stringAttribute(node: GraphNode, name: string, fallback: string): string {
  const a = node.attributes.get(name);
  return a !== undefined && a.kind === 'string' ? a.value : fallback;
}
