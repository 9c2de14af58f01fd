/**
 * Decoding of ONNX model bytes (protobuf) into the typed {@link OnnxGraph}: validation of the header, opset, graph
 * inputs and outputs, attributes and node connections, and a topological order of the nodes. Tensors are decoded
 * by `tensor.ts`, external data is read by `external-data.ts`.
 */
import onnxProto from 'onnx-proto';
import { FormatError } from '../../util/errors.ts';
import { UnsupportedModelError } from '../errors.ts';
import { type ExternalDataReader, readOnce } from './external-data.ts';
import type { Attribute, ConstTensor, Dim, GraphNode, OnnxGraph, ValueInfo } from './graph.ts';
import { decodeModelProto, toNumber } from './proto.ts';
import { decodeTensor, elementType } from './tensor.ts';

const { onnx } = onnxProto;

/**
 * The default-domain operator-set versions the importer accepts. Opsets 19–23 changed the supported operators only
 * by new element types (and AveragePool `dilations`, which the lowering checks), so they import like 18; PyTorch's
 * dynamo exporter writes opset 20 and later.
 *
 * @example
 * ```ts
 * const ok = opset >= SUPPORTED_OPSETS.min && opset <= SUPPORTED_OPSETS.max;
 * ```
 */
export const SUPPORTED_OPSETS = { min: 7, max: 23 } as const;

/**
 * Options of {@link decodeOnnx}.
 *
 * @example
 * ```ts
 * decodeOnnx(bytes, { externalData: (location) => readFileSync(join(dir, location)) });
 * ```
 */
export interface DecodeOptions {
  /** Reads the files of tensors stored outside the model (PyTorch ≥ 2.9 writes `model.onnx.data` by default). */
  readonly externalData?: ExternalDataReader;
}

function decodeAttribute(
  a: onnxProto.onnx.IAttributeProto,
  where: { node: string; opType: string },
  externalData: ExternalDataReader | undefined,
): Attribute | undefined {
  const T = onnx.AttributeProto.AttributeType;
  const label = `attribute '${a.name ?? ''}' of node '${where.node}' (${where.opType})`;
  let type = a.type ?? T.UNDEFINED;
  // Very old exporters leave the type unset; infer it from the populated field, as onnxruntime does.
  if (type === T.UNDEFINED) {
    if ((a.ints?.length ?? 0) > 0) type = T.INTS;
    else if ((a.floats?.length ?? 0) > 0) type = T.FLOATS;
    else if ((a.strings?.length ?? 0) > 0) type = T.STRINGS;
    else if (a.t !== null && a.t !== undefined) type = T.TENSOR;
    else if (a.s !== null && a.s !== undefined && a.s.length > 0) type = T.STRING;
    else if (a.f !== null && a.f !== undefined && a.f !== 0) type = T.FLOAT;
    else type = T.INT;
  }
  switch (type) {
    case T.INT: {
      const v = toNumber(a.i ?? 0);
      if (!Number.isSafeInteger(v)) throw new FormatError(`${label}: int value ${v} is not a safe integer`);
      return { kind: 'int', value: v };
    }
    case T.FLOAT:
      return { kind: 'float', value: a.f ?? 0 };
    case T.STRING:
      return { kind: 'string', value: new TextDecoder().decode(a.s ?? new Uint8Array(0)) };
    case T.INTS: {
      const values = (a.ints ?? []).map(toNumber);
      if (!values.every(Number.isSafeInteger))
        throw new FormatError(`${label}: an ints value is not a safe integer`);
      return { kind: 'ints', value: values };
    }
    case T.FLOATS:
      return { kind: 'floats', value: [...(a.floats ?? [])] };
    case T.STRINGS:
      return { kind: 'strings', value: (a.strings ?? []).map((s) => new TextDecoder().decode(s)) };
    case T.TENSOR:
      if (a.t === null || a.t === undefined)
        throw new FormatError(`${label}: declared TENSOR but holds no tensor`);
      return { kind: 'tensor', value: decodeTensor(a.t, label, externalData) };
    default:
      // Graph, sparse and type-proto attributes only occur on operators the lowering rejects by op type.
      return undefined;
  }
}

function decodeValueInfo(v: onnxProto.onnx.IValueInfoProto, what: string): ValueInfo {
  const name = v.name ?? '';
  if (name === '') throw new FormatError(`${what} has no name`);
  const tensorType = v.type?.tensorType;
  if (tensorType === null || tensorType === undefined) {
    throw new UnsupportedModelError(
      `${what} '${name}' is not a tensor (sequences, maps and optionals are not supported)`,
    );
  }
  const { dtype } = elementType(tensorType.elemType ?? 0, `${what} '${name}'`);
  const shape: Dim[] = [];
  for (const d of tensorType.shape?.dim ?? []) {
    if (d.dimValue !== null && d.dimValue !== undefined) {
      const n = toNumber(d.dimValue);
      if (!Number.isSafeInteger(n) || n < 0)
        throw new FormatError(`${what} '${name}': dimension ${n} is negative`);
      shape.push(n);
    } else {
      shape.push(d.dimParam !== null && d.dimParam !== undefined && d.dimParam !== '' ? d.dimParam : '?');
    }
  }
  return { name, dtype, shape };
}

/**
 * The nodes in an order where every value is produced before it is used: the file's own order when it already is
 * one (the ONNX spec requires it), otherwise a stable topological sort. keras2onnx 1.5 wrote graphs backwards and
 * onnxruntime sorts them, so the importer does too.
 */
function topologicalOrder(nodes: readonly GraphNode[], given: readonly string[]): GraphNode[] {
  const ready = new Set(given);
  const inOrder = nodes.every((n) => {
    const ok = n.inputs.every((i) => i === '' || ready.has(i));
    for (const o of n.outputs) if (o !== '') ready.add(o);
    return ok;
  });
  if (inOrder) return [...nodes];
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    for (const o of n.outputs) if (o !== '') producer.set(o, i);
  });
  const waiting = new Int32Array(nodes.length);
  const users: number[][] = nodes.map(() => []);
  nodes.forEach((n, i) => {
    for (const p of new Set(n.inputs.map((x) => producer.get(x)))) {
      if (p === undefined) continue;
      waiting[i]++;
      users[p].push(i);
    }
  });
  // Lowest file position first among the nodes that are ready, so unrelated branches keep their relative order.
  const heap: number[] = [];
  const push = (v: number) => {
    heap.push(v);
    for (let c = heap.length - 1; c > 0; ) {
      const parent = (c - 1) >> 1;
      if (heap[parent] <= heap[c]) break;
      [heap[parent], heap[c]] = [heap[c], heap[parent]];
      c = parent;
    }
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap.pop() as number;
    if (heap.length > 0) {
      heap[0] = last;
      for (let c = 0; ; ) {
        const l = 2 * c + 1;
        const r = l + 1;
        let m = c;
        if (l < heap.length && heap[l] < heap[m]) m = l;
        if (r < heap.length && heap[r] < heap[m]) m = r;
        if (m === c) break;
        [heap[m], heap[c]] = [heap[c], heap[m]];
        c = m;
      }
    }
    return top;
  };
  waiting.forEach((w, i) => {
    if (w === 0) push(i);
  });
  const out: GraphNode[] = [];
  while (heap.length > 0) {
    const i = pop();
    out.push(nodes[i]);
    for (const u of users[i]) if (--waiting[u] === 0) push(u);
  }
  if (out.length < nodes.length) {
    const stuck = nodes.filter((_, i) => waiting[i] > 0).map((n) => `'${n.name}' (${n.opType})`);
    throw new FormatError(
      `ONNX graph: nodes ${stuck.slice(0, 5).join(', ')} depend on each other in a cycle`,
    );
  }
  return out;
}

/**
 * Decodes and validates ONNX model bytes into the typed {@link OnnxGraph}: checks the protobuf, the default opset
 * (7–23), element types, tensor sizes and that every node input is defined, and puts the nodes in topological order.
 * Tensors stored in external files are read through `options.externalData`.
 *
 * @throws FormatError when the bytes are not a well-formed ONNX model (the message names what failed).
 * @throws UnsupportedModelError for a well-formed model outside what the importer handles (opset, data type,
 *   external data, several data inputs).
 * @example
 * ```ts
 * const graph = decodeOnnx(readFileSync('models/cryptonets-mnist.onnx'));
 * graph.nodes.map((n) => n.opType); // ['Conv', 'Mul', 'Flatten', 'Gemm', 'Mul', 'Gemm']
 * ```
 */
export function decodeOnnx(bytes: Uint8Array, options: DecodeOptions = {}): OnnxGraph {
  const model = decodeModelProto(bytes);
  const externalData = options.externalData === undefined ? undefined : readOnce(options.externalData);
  const irVersion = toNumber(model.irVersion);
  if (!Number.isSafeInteger(irVersion) || irVersion < 3 || irVersion > 100) {
    throw new FormatError(
      `ONNX model: ir_version ${irVersion} is not a known ONNX IR version (expected 3 or later)`,
    );
  }
  let opset: number | undefined;
  for (const o of model.opsetImport ?? []) {
    const domain = o.domain ?? '';
    if (domain === '' || domain === 'ai.onnx') opset = toNumber(o.version);
  }
  if (opset === undefined)
    throw new FormatError('ONNX model: no opset_import for the default ai.onnx domain');
  if (!(opset >= SUPPORTED_OPSETS.min && opset <= SUPPORTED_OPSETS.max)) {
    throw new UnsupportedModelError(
      `ONNX model: default opset ${opset} is outside the supported ${SUPPORTED_OPSETS.min}–${SUPPORTED_OPSETS.max}`,
    );
  }
  const g = model.graph;
  if (g === null || g === undefined) throw new FormatError('ONNX model: no graph');
  if ((g.sparseInitializer?.length ?? 0) > 0) {
    throw new UnsupportedModelError('ONNX graph: sparse initializers are not supported');
  }

  const initializers = new Map<string, ConstTensor>();
  for (const t of g.initializer ?? []) {
    const tensor = decodeTensor(t, 'initializer', externalData);
    if (tensor.name === '') throw new FormatError('ONNX graph: an initializer has no name');
    if (initializers.has(tensor.name))
      throw new FormatError(`ONNX graph: initializer '${tensor.name}' is defined twice`);
    initializers.set(tensor.name, tensor);
  }
  // Before IR 4 every initializer is also listed as a graph input; only the others carry data.
  const inputs = (g.input ?? [])
    .filter((v) => !initializers.has(v.name ?? ''))
    .map((v) => decodeValueInfo(v, 'input'));
  const outputs = (g.output ?? []).map((v) => decodeValueInfo(v, 'output'));
  if (outputs.length === 0) throw new FormatError('ONNX graph: no outputs');

  const defined = new Set<string>([...initializers.keys(), ...inputs.map((v) => v.name)]);
  const decoded: GraphNode[] = [];
  const protoNodes = g.node ?? [];
  for (let index = 0; index < protoNodes.length; index++) {
    const p = protoNodes[index];
    const name = p.name !== null && p.name !== undefined && p.name !== '' ? p.name : `#${index}`;
    const opType = p.opType ?? '';
    if (opType === '') throw new FormatError(`ONNX graph: node '${name}' has no op_type`);
    const where = { node: name, opType };
    const attributes = new Map<string, Attribute>();
    for (const a of p.attribute ?? []) {
      const value = decodeAttribute(a, where, externalData);
      if (value !== undefined) attributes.set(a.name ?? '', value);
    }
    const nodeOutputs = [...(p.output ?? [])];
    for (const output of nodeOutputs) {
      if (output === '') continue;
      if (defined.has(output)) {
        throw new FormatError(`ONNX graph: value '${output}' of node '${name}' (${opType}) is defined twice`);
      }
      defined.add(output);
    }
    decoded.push({
      name,
      opType,
      domain: p.domain ?? '',
      inputs: [...(p.input ?? [])],
      outputs: nodeOutputs,
      attributes,
    });
  }
  for (const n of decoded) {
    for (const input of n.inputs) {
      if (input !== '' && !defined.has(input)) {
        throw new FormatError(
          `ONNX graph: input '${input}' of node '${n.name}' (${n.opType}) is not defined by a node, an initializer ` +
            'or a graph input',
        );
      }
    }
  }
  const nodes = topologicalOrder(decoded, [...initializers.keys(), ...inputs.map((v) => v.name)]);
  for (const o of outputs) {
    if (!defined.has(o.name)) throw new FormatError(`ONNX graph: output '${o.name}' is produced by no node`);
  }
  return {
    irVersion,
    opset,
    producerName: model.producerName ?? '',
    producerVersion: model.producerVersion ?? '',
    graphName: g.name ?? '',
    inputs,
    outputs,
    initializers,
    nodes,
  };
}
