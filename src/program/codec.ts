/**
 * The byte forms of an HE program: versioned JSON plus the constants as a little-endian float64 blob and the
 * palette codes as bytes, or one file (magic `HEP1`, the JSON length, the JSON, the constants, the codes). Reading
 * validates the whole program.
 */
import { describe } from '../util/assert.ts';
import { FormatError } from '../util/errors.ts';
import type { HeProgram } from './program.ts';
import { validateProgram } from './validate.ts';

/**
 * Serializes a program: versioned JSON, the constants as a little-endian float64 blob (the JSON counts them) and
 * the palette codes after them.
 *
 * @example
 * ```ts
 * const { json, blob } = serializeProgram(program);
 * const again = deserializeProgram(json, blob);
 * ```
 */
export function serializeProgram(program: HeProgram): { json: string; blob: Uint8Array } {
  const { constants, paletteCodes, ...rest } = program;
  const json = JSON.stringify({
    ...rest,
    constantCount: constants.length,
    paletteCodeCount: paletteCodes.length,
  });
  const blob = new Uint8Array(constants.length * 8 + paletteCodes.length);
  const view = new DataView(blob.buffer);
  for (let i = 0; i < constants.length; i++) view.setFloat64(i * 8, constants[i], true);
  blob.set(paletteCodes, constants.length * 8);
  return { json, blob };
}

const MAGIC = [0x48, 0x45, 0x50, 0x31]; // "HEP1"

/**
 * One file for both parts: magic `HEP1`, the JSON length (uint32 LE), the UTF-8 JSON, then the blob.
 *
 * @example
 * ```ts
 * writeFileSync('model.hep', encodeProgram(program));
 * const program = decodeProgram(readFileSync('model.hep'));
 * ```
 */
export function encodeProgram(program: HeProgram): Uint8Array {
  const { json, blob } = serializeProgram(program);
  const text = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + text.length + blob.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(4, text.length, true);
  out.set(text, 8);
  out.set(blob, 8 + text.length);
  return out;
}

/**
 * Reads the single-file form written by {@link encodeProgram}, validating everything.
 *
 * @throws FormatError for a bad magic, truncation or an invalid program.
 * @example
 * ```ts
 * const program = decodeProgram(bytes);
 * ```
 */
export function decodeProgram(bytes: Uint8Array): HeProgram {
  if (!(bytes instanceof Uint8Array) || bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new FormatError('HE program file: expected the magic "HEP1" at offset 0');
  }
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  if (8 + length > bytes.length) {
    throw new FormatError(`HE program file: JSON of ${length} bytes but only ${bytes.length - 8} follow`);
  }
  let json: string;
  try {
    json = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + length));
  } catch {
    throw new FormatError('HE program file: the JSON part is not valid UTF-8');
  }
  return deserializeProgram(json, bytes.subarray(8 + length));
}

/**
 * Parses and validates a serialized program (see {@link validateProgram}).
 *
 * @throws FormatError naming the first field that is wrong.
 * @example
 * ```ts
 * const program = deserializeProgram(json, blob);
 * ```
 */
export function deserializeProgram(json: string, blob: Uint8Array): HeProgram {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new FormatError(`HE program: invalid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new FormatError(`HE program: expected a JSON object, got ${describe(raw)}`);
  }
  const record = raw as Record<string, unknown>;
  const count = record.constantCount;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
    throw new FormatError(`HE program: constantCount = ${describe(count)}: expected an integer ≥ 0`);
  }
  const codeCount = record.paletteCodeCount;
  if (typeof codeCount !== 'number' || !Number.isSafeInteger(codeCount) || codeCount < 0) {
    throw new FormatError(`HE program: paletteCodeCount = ${describe(codeCount)}: expected an integer ≥ 0`);
  }
  if (!(blob instanceof Uint8Array) || blob.length !== count * 8 + codeCount) {
    throw new FormatError(
      `HE program: constants blob of ${describe(blob)} ${blob?.length ?? 0} bytes: expected ${count} × 8 + ${codeCount} palette codes = ${count * 8 + codeCount}`,
    );
  }
  const constants = new Float64Array(count);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let i = 0; i < count; i++) constants[i] = view.getFloat64(i * 8, true);
  const paletteCodes = blob.slice(count * 8);
  const { constantCount: _, paletteCodeCount: __, ...rest } = record;
  const program = { ...rest, constants, paletteCodes } as unknown as HeProgram;
  validateProgram(program);
  return program;
}
