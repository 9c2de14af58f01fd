/**
 * Decoding of ONNX tensors (initializers, `Constant` values, tensor attributes) into {@link ConstTensor}s: the
 * element types the importer accepts, dimension and size limits, raw little-endian or typed-field storage, and
 * tensors whose bytes lie in an external file.
 */
import onnxProto from 'onnx-proto';
import { FormatError } from '../../util/errors.ts';
import { UnsupportedModelError } from '../errors.ts';
import { type ExternalDataReader, externalLocation, inlineTensor } from './external-data.ts';
import type { ConstTensor, DType } from './graph.ts';
import { type Int64Like, toNumber } from './proto.ts';

const { onnx } = onnxProto;

/** Largest constant the importer decodes (elements); larger ones are not plausible for an encrypted model. */
const MAX_TENSOR_ELEMENTS = 1 << 28;

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
/**
 * The importer's element type for an ONNX data type code (FLOAT, DOUBLE, INT64, INT32), with its size in bytes.
 *
 * @throws UnsupportedModelError naming `what` for any other type (quantized, half precision, boolean, string).
 * @example
 * ```ts
 * elementType(1, "input 'x'"); // { dtype: 'float32', bytes: 4 }
 * ```
 */
export function elementType(code: number, what: string): { dtype: DType; bytes: number } {
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
export function decodeTensor(
  proto: onnxProto.onnx.ITensorProto,
  what: string,
  externalData?: ExternalDataReader,
): ConstTensor {
  const name = proto.name ?? '';
  const label = `${what}${name === '' ? '' : ` '${name}'`}`;
  if (proto.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    if (externalData === undefined) {
      throw new UnsupportedModelError(
        `${label} stores its data in an external file (${externalLocation(proto, label).location}): pass ` +
          'the externalData option to read it, or re-export with the weights inline',
      );
    }
    return decodeTensor(inlineTensor(proto, label, externalData), what);
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
