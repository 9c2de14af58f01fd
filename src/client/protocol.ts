/**
 * The Open Inference Protocol's binary tensor data extension, as this server uses it: a request or response is a
 * JSON header of `Inference-Header-Content-Length` bytes followed by the tensors' binary data, in the order of the
 * header's tensors, each sized by its `parameters.binary_data_size`. A BYTES tensor's binary data is its elements
 * one after the other, each a 4-byte little-endian length and its bytes; here each element is one serialized
 * ciphertext. Browser-safe (no Node module): the client encodes requests and decodes responses with it.
 */
import { FormatError, InvalidArgumentError } from '../util/errors.ts';

/**
 * The HTTP header naming the JSON header's length.
 *
 * @example
 * ```ts
 * headers[HEADER_LENGTH] = String(json.length);
 * ```
 */
export const HEADER_LENGTH = 'inference-header-content-length';

/**
 * A tensor as named in a JSON header (its data is in the binary part).
 *
 * @example
 * ```ts
 * const t: TensorHeader = { name: 'input', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 65540 } };
 * ```
 */
export interface TensorHeader {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
  readonly parameters?: { readonly binary_data_size?: number; readonly [key: string]: unknown };
}

/**
 * A decoded message: its JSON header (other fields kept as sent) and each tensor's elements by tensor name.
 *
 * @example
 * ```ts
 * const { header, tensors } = decodeMessage(body, request.headers[HEADER_LENGTH]);
 * const ciphertexts = tensors.get('input');
 * ```
 */
export interface DecodedMessage {
  readonly header: Record<string, unknown>;
  readonly tensors: Map<string, Uint8Array[]>;
}

/** Most elements one BYTES tensor may hold (a program's input or output ciphertexts). */
const MAX_ELEMENTS = 1 << 20;

/**
 * Encodes a JSON header and BYTES tensors (name → elements) into one message; the header gets each tensor's
 * `datatype`, `shape` and `binary_data_size`.
 *
 * @example
 * ```ts
 * const { bytes, headerLength } = encodeMessage({ parameters: { key_id } }, 'inputs', new Map([['input', cts]]));
 * ```
 */
export function encodeMessage(
  header: Readonly<Record<string, unknown>>,
  field: 'inputs' | 'outputs',
  tensors: ReadonlyMap<string, readonly Uint8Array[]>,
): { bytes: Uint8Array; headerLength: number } {
  const { parts, headerLength, length } = encodeMessageParts(header, field, tensors);
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return { bytes, headerLength };
}

/**
 * The message {@link encodeMessage} makes, as the parts it is made of, in order: the JSON header, then each
 * element's 4-byte length and the element itself (not copied). A server streams them as its response body: a
 * ciphertext goes from its serialized form to the socket with no whole-message copy.
 *
 * @example
 * ```ts
 * const { parts, headerLength, length } = encodeMessageParts(header, 'outputs', new Map([['output', cts]]));
 * ```
 */
export function encodeMessageParts(
  header: Readonly<Record<string, unknown>>,
  field: 'inputs' | 'outputs',
  tensors: ReadonlyMap<string, readonly Uint8Array[]>,
): { parts: Uint8Array[]; headerLength: number; length: number } {
  const data: Uint8Array[] = [];
  const described: TensorHeader[] = [];
  for (const [name, elements] of tensors) {
    let size = 0;
    for (const element of elements) {
      const prefix = new Uint8Array(4);
      new DataView(prefix.buffer).setUint32(0, element.length, true);
      data.push(prefix, element);
      size += 4 + element.length;
    }
    described.push({
      name,
      datatype: 'BYTES',
      shape: [elements.length],
      parameters: { binary_data_size: size },
    });
  }
  const json = new TextEncoder().encode(JSON.stringify({ ...header, [field]: described }));
  const parts = [json, ...data];
  return { parts, headerLength: json.length, length: parts.reduce((s, p) => s + p.length, 0) };
}

/**
 * Decodes a message: the JSON header of `headerLength` bytes, then the binary data of the tensors listed in the
 * header's `field`, each of which must be a BYTES tensor with `binary_data_size` and a one-dimensional shape
 * matching its element count. Every byte of the body must be accounted for.
 *
 * @throws FormatError for a missing or bad header length, JSON that is not an object, a tensor whose sizes do not
 *   add up, or bytes left over; InvalidArgumentError for a tensor that is not BYTES or has no binary data.
 * @example
 * ```ts
 * const { header, tensors } = decodeMessage(body, '123', 'inputs');
 * ```
 */
export function decodeMessage(
  body: Uint8Array,
  headerLength: string | string[] | undefined,
  field: 'inputs' | 'outputs',
): DecodedMessage {
  const lengthText = Array.isArray(headerLength) ? headerLength[0] : headerLength;
  if (lengthText === undefined) {
    throw new InvalidArgumentError(
      `missing ${HEADER_LENGTH} header: ciphertexts travel as binary BYTES tensors after the JSON header (binary tensor data extension)`,
    );
  }
  if (!/^\d{1,10}$/.test(lengthText)) {
    throw new FormatError(
      `${HEADER_LENGTH} ${JSON.stringify(lengthText.slice(0, 20))}: expected a byte count`,
    );
  }
  const length = Number(lengthText);
  if (length > body.length) {
    throw new FormatError(`${HEADER_LENGTH} ${length}: the body has only ${body.length} bytes`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body.subarray(0, length)));
  } catch (error) {
    throw new FormatError(`JSON header: ${(error as Error).message.slice(0, 200)}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new FormatError('JSON header: expected an object');
  }
  const record = header as Record<string, unknown>;
  const list = record[field];
  if (!Array.isArray(list) || list.length === 0) {
    throw new FormatError(`JSON header: "${field}" must be a non-empty array of tensors`);
  }
  const tensors = new Map<string, Uint8Array[]>();
  let offset = length;
  list.forEach((tensor: unknown, index) => {
    const t = checkTensor(tensor, `${field}[${index}]`);
    if (tensors.has(t.name)) throw new FormatError(`${field}[${index}]: tensor "${t.name}" appears twice`);
    const size = t.parameters?.binary_data_size as number;
    if (offset + size > body.length) {
      throw new FormatError(
        `${field}[${index}] "${t.name}": binary_data_size ${size} runs past the body's end`,
      );
    }
    const elements = decodeBytesTensor(body.subarray(offset, offset + size), `${field}[${index}]`);
    if (elements.length !== t.shape[0]) {
      throw new FormatError(
        `${field}[${index}] "${t.name}": shape [${t.shape[0]}] but ${elements.length} elements in its data`,
      );
    }
    tensors.set(t.name, elements);
    offset += size;
  });
  if (offset !== body.length) {
    throw new FormatError(`body: ${body.length - offset} bytes after the last tensor's binary data`);
  }
  return { header: record, tensors };
}

function checkTensor(value: unknown, where: string): TensorHeader {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FormatError(`${where}: expected a tensor object`);
  }
  const t = value as Record<string, unknown>;
  if (typeof t.name !== 'string' || t.name.length === 0 || t.name.length > 64) {
    throw new FormatError(`${where}: "name" must be a string of 1–64 characters`);
  }
  if (t.datatype !== 'BYTES') {
    throw new InvalidArgumentError(
      `${where} "${t.name}": datatype ${JSON.stringify(t.datatype)?.slice(0, 20)}: expected BYTES (serialized ciphertexts)`,
    );
  }
  const shape = t.shape;
  if (
    !Array.isArray(shape) ||
    shape.length !== 1 ||
    !Number.isSafeInteger(shape[0]) ||
    shape[0] < 1 ||
    shape[0] > MAX_ELEMENTS
  ) {
    throw new FormatError(`${where} "${t.name}": shape must be [n] with 1 ≤ n ≤ ${MAX_ELEMENTS}`);
  }
  const parameters = t.parameters as Record<string, unknown> | undefined;
  const size = parameters?.binary_data_size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidArgumentError(
      `${where} "${t.name}": parameters.binary_data_size must be a byte count (the data travels in binary, not JSON)`,
    );
  }
  return t as unknown as TensorHeader;
}

/**
 * The binary data of a BYTES tensor: each element as a 4-byte little-endian length and its bytes.
 *
 * @example
 * ```ts
 * const data = encodeBytesTensor([serializeCiphertext(ct)]);
 * ```
 */
export function encodeBytesTensor(elements: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(elements.reduce((s, e) => s + 4 + e.length, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const e of elements) {
    view.setUint32(offset, e.length, true);
    out.set(e, offset + 4);
    offset += 4 + e.length;
  }
  return out;
}

/**
 * Splits a BYTES tensor's binary data into its elements (views, not copies).
 *
 * @throws FormatError when a length runs past the data.
 * @example
 * ```ts
 * const [first] = decodeBytesTensor(data, 'inputs[0]');
 * ```
 */
export function decodeBytesTensor(data: Uint8Array, where: string): Uint8Array[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: Uint8Array[] = [];
  let offset = 0;
  while (offset < data.length) {
    if (offset + 4 > data.length)
      throw new FormatError(`${where}: truncated element length at byte ${offset}`);
    const n = view.getUint32(offset, true);
    if (offset + 4 + n > data.length) {
      throw new FormatError(`${where}: element ${out.length} of ${n} bytes runs past the tensor's data`);
    }
    out.push(data.subarray(offset + 4, offset + 4 + n));
    offset += 4 + n;
    if (out.length > MAX_ELEMENTS) throw new FormatError(`${where}: more than ${MAX_ELEMENTS} elements`);
  }
  return out;
}
