import onnxProto from 'onnx-proto';
import { FormatError, InvalidArgumentError } from '../util/errors.ts';
import { UnsupportedModelError } from './errors.ts';
import type { Attribute, ConstTensor, Dim, DType, GraphNode, OnnxGraph, ValueInfo } from './graph.ts';
import type { LayerModel } from './layers.ts';
import { type LowerOptions, lowerGraph } from './lower.ts';

const { onnx } = onnxProto;

/**
 * The default-domain operator-set versions the importer accepts.
 *
 * @example
 * ```ts
 * const ok = opset >= SUPPORTED_OPSETS.min && opset <= SUPPORTED_OPSETS.max;
 * ```
 */
export const SUPPORTED_OPSETS = { min: 7, max: 18 } as const;

/** Largest constant the importer decodes (elements); larger ones are not plausible for an encrypted model. */
const MAX_TENSOR_ELEMENTS = 1 << 28;

type Int64Like = number | { toNumber(): number } | null | undefined;

/** Converts a protobufjs int64 (number or Long) to a number, or `NaN` when it is absent or not representable. */
function toNumber(value: Int64Like): number {
  if (value === null || value === undefined) return Number.NaN;
  if (typeof value === 'number') return value;
  return value.toNumber();
}

const DTYPES: ReadonlyMap<number, { dtype: DType; bytes: number }> = new Map([
  [1, { dtype: 'float32', bytes: 4 }],
  [11, { dtype: 'float64', bytes: 8 }],
  [7, { dtype: 'int64', bytes: 8 }],
  [6, { dtype: 'int32', bytes: 4 }],
]);

const DTYPE_NAMES = [
  'UNDEFINED',
  'FLOAT',
  'UINT8',
  'INT8',
  'UINT16',
  'INT16',
  'INT32',
  'INT64',
  'STRING',
  'BOOL',
  'FLOAT16',
  'DOUBLE',
  'UINT32',
  'UINT64',
  'COMPLEX64',
  'COMPLEX128',
  'BFLOAT16',
];

function dtypeName(code: number): string {
  return DTYPE_NAMES[code] ?? `data type ${code}`;
}

function elementType(code: number, what: string): { dtype: DType; bytes: number } {
  const t = DTYPES.get(code);
  if (t === undefined) {
    throw new UnsupportedModelError(
      `${what} has element type ${dtypeName(code)}: expected FLOAT, DOUBLE, INT64 or INT32 (quantized, half-precision, ` +
        'boolean and string tensors are not supported)',
    );
  }
  return t;
}

function checkedDims(dims: readonly Int64Like[] | null | undefined, what: string): number[] {
  const out: number[] = [];
  let size = 1;
  for (const d of dims ?? []) {
    const n = toNumber(d);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new FormatError(`${what}: dimension ${n} is not a non-negative integer`);
    size *= n;
    if (size > MAX_TENSOR_ELEMENTS) {
      throw new FormatError(`${what}: ${size} elements or more, above the limit of ${MAX_TENSOR_ELEMENTS}`);
    }
    out.push(n);
  }
  return out;
}

/**
 * Decodes an ONNX `TensorProto` (raw little-endian `raw_data` or the typed `float_data`/`double_data`/`int64_data`/
 * `int32_data` fields) into a {@link ConstTensor}.
 *
 * @example
 * ```ts
 * const t = decodeTensor(onnx.TensorProto.decode(bytes), 'initializer fc.W');
 * ```
 */
export function decodeTensor(proto: onnxProto.onnx.ITensorProto, what: string): ConstTensor {
  const name = proto.name ?? '';
  const label = `${what}${name === '' ? '' : ` '${name}'`}`;
  if (proto.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new UnsupportedModelError(
      `${label} stores its data in an external file: re-export with the weights inline`,
    );
  }
  if (proto.segment !== null && proto.segment !== undefined) {
    throw new UnsupportedModelError(
      `${label} is a segment of a larger tensor: segmented tensors are not supported`,
    );
  }
  const dims = checkedDims(proto.dims, label);
  const { dtype, bytes } = elementType(proto.dataType ?? 0, label);
  let n = 1;
  for (const d of dims) n *= d;
  // Sizes are checked against the values actually present before allocating, so corrupted dims cannot trigger a
  // huge allocation.
  const raw = proto.rawData;
  if (raw !== null && raw !== undefined && raw.length > 0) {
    if (raw.length !== n * bytes) {
      throw new FormatError(
        `${label}: raw_data has ${raw.length} bytes, expected ${n} × ${bytes} = ${n * bytes}`,
      );
    }
    const data = new Float64Array(n);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < n; i++) {
      switch (dtype) {
        case 'float32':
          data[i] = view.getFloat32(4 * i, true);
          break;
        case 'float64':
          data[i] = view.getFloat64(8 * i, true);
          break;
        case 'int32':
          data[i] = view.getInt32(4 * i, true);
          break;
        case 'int64':
          // Exact below 2^53; shape constants and indices never come close.
          data[i] = view.getInt32(8 * i + 4, true) * 4294967296 + view.getUint32(8 * i, true);
          break;
      }
    }
    return { name, dtype, dims, data };
  }
  const field: readonly Int64Like[] | null | undefined =
    dtype === 'float32'
      ? proto.floatData
      : dtype === 'float64'
        ? proto.doubleData
        : dtype === 'int32'
          ? proto.int32Data
          : proto.int64Data;
  const values = field ?? [];
  if (values.length !== n) {
    throw new FormatError(
      `${label}: holds ${values.length} ${dtype} values and no raw_data, expected ${n} for dims [${dims.join(', ')}]`,
    );
  }
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++)
    data[i] = dtype === 'float32' ? Math.fround(toNumber(values[i])) : toNumber(values[i]);
  return { name, dtype, dims, data };
}

function decodeAttribute(
  a: onnxProto.onnx.IAttributeProto,
  where: { node: string; opType: string },
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
      return { kind: 'tensor', value: decodeTensor(a.t, label) };
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
 * Decodes and validates ONNX model bytes into the typed {@link OnnxGraph}: checks the protobuf, the default opset
 * (7–18), element types, tensor sizes and that every node input is defined before use.
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
export function decodeOnnx(bytes: Uint8Array): OnnxGraph {
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidArgumentError(`ONNX bytes: expected a Uint8Array, got ${typeof bytes}`);
  }
  if (bytes.length === 0) throw new FormatError('ONNX bytes: empty input');
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new FormatError(`ONNX bytes: not a valid ModelProto protobuf (${(e as Error).message})`);
  }
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
    const tensor = decodeTensor(t, 'initializer');
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
  const nodes: GraphNode[] = [];
  const protoNodes = g.node ?? [];
  for (let index = 0; index < protoNodes.length; index++) {
    const p = protoNodes[index];
    const name = p.name !== null && p.name !== undefined && p.name !== '' ? p.name : `#${index}`;
    const opType = p.opType ?? '';
    if (opType === '') throw new FormatError(`ONNX graph: node '${name}' has no op_type`);
    const where = { node: name, opType };
    const attributes = new Map<string, Attribute>();
    for (const a of p.attribute ?? []) {
      const value = decodeAttribute(a, where);
      if (value !== undefined) attributes.set(a.name ?? '', value);
    }
    const nodeInputs = [...(p.input ?? [])];
    for (const input of nodeInputs) {
      if (input !== '' && !defined.has(input)) {
        throw new FormatError(
          `ONNX graph: input '${input}' of node '${name}' (${opType}) is not defined by an earlier node, an initializer ` +
            'or a graph input',
        );
      }
    }
    const nodeOutputs = [...(p.output ?? [])];
    for (const output of nodeOutputs) {
      if (output === '') continue;
      if (defined.has(output)) {
        throw new FormatError(`ONNX graph: value '${output}' of node '${name}' (${opType}) is defined twice`);
      }
      defined.add(output);
    }
    nodes.push({
      name,
      opType,
      domain: p.domain ?? '',
      inputs: nodeInputs,
      outputs: nodeOutputs,
      attributes,
    });
  }
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

/**
 * Decodes ONNX bytes and lowers them to the canonical layer IR in one step.
 *
 * @throws FormatError for malformed bytes; UnsupportedModelError for a model outside the supported subset.
 * @example
 * ```ts
 * const model = importOnnx(readFileSync(findModelFile('cryptonets-mnist.onnx')));
 * console.log(model.inputShape, model.layers.length);
 * ```
 */
export function importOnnx(bytes: Uint8Array, options: LowerOptions = {}): LayerModel {
  return lowerGraph(decodeOnnx(bytes), options);
}
