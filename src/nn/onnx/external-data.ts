/**
 * Tensors stored outside the model file (ONNX external data; PyTorch ≥ 2.9 writes `model.onnx.data` by default):
 * the location of a tensor's bytes, checked to stay inside the model's directory, reading each file once, and
 * copying the bytes inline.
 */
import onnxProto from 'onnx-proto';
import { FormatError, InvalidArgumentError } from '../../util/errors.ts';
import { decodeModelProto } from './proto.ts';

const { onnx } = onnxProto;

/**
 * Reads the file an external-data tensor names. `location` is relative to the model's directory and has already
 * been checked to stay inside it (no absolute path, no `..`); the reader returns the whole file, and is called once
 * per location and model.
 *
 * @example
 * ```ts
 * const read: ExternalDataReader = (location) => readFileSync(join(dirname(modelPath), location));
 * ```
 */
export type ExternalDataReader = (location: string) => Uint8Array;

/**
 * Where a tensor's external bytes lie: file location (relative to the model's directory), offset and length.
 *
 * @throws FormatError for a missing location, one that could leave the model's directory, or a bad offset/length.
 * @example
 * ```ts
 * const { location, offset, length } = externalLocation(proto, "initializer 'fc.W'");
 * ```
 */
export function externalLocation(
  proto: onnxProto.onnx.ITensorProto,
  label: string,
): { location: string; offset: number; length: number | undefined } {
  const entries = new Map((proto.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.get('location') ?? '';
  if (location === '') throw new FormatError(`${label}: external data without a location`);
  // The ONNX spec makes the location relative to the model's directory; refuse anything that could leave it.
  if (/^([\\/]|[A-Za-z]:)/.test(location) || location.split(/[\\/]/).includes('..')) {
    throw new FormatError(
      `${label}: external data location '${location}' must be a relative path inside the model's directory`,
    );
  }
  const number = (key: string): number | undefined => {
    const raw = entries.get(key);
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n))
      throw new FormatError(`${label}: external data ${key} '${raw}' is not a non-negative integer`);
    return n;
  };
  return { location, offset: number('offset') ?? 0, length: number('length') };
}

/**
 * The reader with each location read once: every tensor of a model usually lies in the same file.
 *
 * @example
 * ```ts
 * const read = readOnce((location) => readFileSync(join(dir, location)));
 * ```
 */
export function readOnce(read: ExternalDataReader): ExternalDataReader {
  const files = new Map<string, Uint8Array>();
  return (location) => {
    let file = files.get(location);
    if (file === undefined) {
      file = read(location);
      files.set(location, file);
    }
    return file;
  };
}

/**
 * The tensor with its external bytes copied into `raw_data` (dims, type and name kept).
 *
 * @throws FormatError when the byte range lies outside the file; InvalidArgumentError when the reader returns no
 *   Uint8Array.
 * @example
 * ```ts
 * const inline = inlineTensor(proto, "initializer 'fc.W'", read);
 * ```
 */
export function inlineTensor(
  proto: onnxProto.onnx.ITensorProto,
  label: string,
  read: ExternalDataReader,
): onnxProto.onnx.ITensorProto {
  const { location, offset, length } = externalLocation(proto, label);
  const file = read(location);
  if (!(file instanceof Uint8Array)) {
    throw new InvalidArgumentError(`externalData('${location}'): expected a Uint8Array, got ${typeof file}`);
  }
  const end = length === undefined ? file.length : offset + length;
  if (offset > file.length || end > file.length) {
    throw new FormatError(
      `${label}: external data bytes ${offset}…${end} lie outside '${location}' (${file.length} bytes)`,
    );
  }
  return {
    name: proto.name,
    dims: proto.dims,
    dataType: proto.dataType,
    rawData: file.subarray(offset, end),
  };
}

/**
 * Returns the model with every external-data initializer (and `Constant` tensor) copied inline, so tools that only
 * take bytes (onnxruntime's `InferenceSession.create(bytes)`) can load it. Models without external data come back
 * re-encoded but unchanged.
 *
 * @throws FormatError for malformed bytes or an external location outside the model's directory.
 * @example
 * ```ts
 * const whole = inlineExternalData(readFileSync(path), (location) => readFileSync(join(dirname(path), location)));
 * ```
 */
export function inlineExternalData(bytes: Uint8Array, reader: ExternalDataReader): Uint8Array {
  const model = decodeModelProto(bytes);
  const read = readOnce(reader);
  const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;
  const inline = (t: onnxProto.onnx.ITensorProto, what: string) =>
    t.dataLocation === EXTERNAL ? onnx.TensorProto.create(inlineTensor(t, what, read)) : t;
  const g = model.graph;
  if (g !== null && g !== undefined) {
    g.initializer = (g.initializer ?? []).map((t) => inline(t, `initializer '${t.name ?? ''}'`));
    for (const n of g.node ?? []) {
      for (const a of n.attribute ?? []) {
        if (a.t !== null && a.t !== undefined) a.t = inline(a.t, `attribute '${a.name ?? ''}'`);
      }
    }
  }
  return onnx.ModelProto.encode(model).finish();
}
