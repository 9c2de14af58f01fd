/**
 * Access to the protobuf wire format of ONNX (onnx-proto's generated classes): the ModelProto decoder with its
 * input checks, and int64 fields, which protobufjs hands out as numbers or Longs.
 */
import onnxProto from 'onnx-proto';
import { FormatError, InvalidArgumentError } from '../../util/errors.ts';

const { onnx } = onnxProto;

/**
 * An int64 field as protobufjs decodes it.
 *
 * @example
 * ```ts
 * const version: Int64Like = model.irVersion;
 * ```
 */
export type Int64Like = number | { toNumber(): number } | null | undefined;

/**
 * Converts a protobufjs int64 (number or Long) to a number, or `NaN` when it is absent or not representable.
 *
 * @example
 * ```ts
 * const irVersion = toNumber(model.irVersion); // 7
 * ```
 */
export function toNumber(value: Int64Like): number {
  if (value === null || value === undefined) return Number.NaN;
  if (typeof value === 'number') return value;
  return value.toNumber();
}

/**
 * Decodes ONNX model bytes into the protobuf ModelProto, with no validation of its content.
 *
 * @throws InvalidArgumentError when `bytes` is not a Uint8Array; FormatError when it is empty or not a ModelProto.
 * @example
 * ```ts
 * const model = decodeModelProto(readFileSync('models/cryptonets-mnist.onnx'));
 * ```
 */
export function decodeModelProto(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidArgumentError(`ONNX bytes: expected a Uint8Array, got ${typeof bytes}`);
  }
  if (bytes.length === 0) throw new FormatError('ONNX bytes: empty input');
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new FormatError(`ONNX bytes: not a valid ModelProto protobuf (${(e as Error).message})`);
  }
}
