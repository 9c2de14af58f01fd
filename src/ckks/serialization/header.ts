/*
 * The 48-byte header: writing it, reading and verifying it alone (readHeader), and `open`, which checks a whole
 * object's header against the parameters, the expected types and the bytes present before any body is read.
 */
import { xxh32 } from '../../ring/hash.ts';
import { describe } from '../../util/assert.ts';
import { InvalidArgumentError, MismatchError } from '../../util/errors.ts';
import { Parameters } from '../parameters.ts';
import { CHECKSUM_SEED } from './checksum.ts';
import {
  CHECKSUM_BYTES,
  FLAG_NTT,
  FLAG_SEEDED,
  FORMAT_VERSION,
  formatError,
  HEADER_BYTES,
  type HeaderFields,
  KNOWN_FLAGS,
  MAGIC,
  MAGIC_TEXT,
  MAX_CIPHERTEXT_POLYS,
  type ObjectHeader,
  ObjectType,
  Offset,
  PARAMETERS_BODY_BYTES,
  TYPE_NAMES,
} from './format.ts';
import { bodyLengthOf, evaluationKeysBodyRange } from './size.ts';

const TWO_POW_32 = 2 ** 32;

/**
 * Writes the 48 header bytes of an object with `fields` at `offset` of `out`, header checksum included.
 *
 * @example
 * ```ts
 * writeHeader(out, 0, fields); // then the body from HEADER_BYTES
 * ```
 */
export function writeHeader(out: Uint8Array, offset: number, fields: HeaderFields): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < 4; i++) out[offset + Offset.magic + i] = MAGIC[i];
  view.setUint16(offset + Offset.version, FORMAT_VERSION, true);
  out[offset + Offset.type] = fields.type;
  out[offset + Offset.flags] = fields.flags;
  for (let i = 0; i < 8; i++) {
    out[offset + Offset.parametersId + i] = Number.parseInt(fields.parametersId.slice(2 * i, 2 * i + 2), 16);
  }
  view.setUint16(offset + Offset.level, fields.level, true);
  view.setUint16(offset + Offset.count, fields.count, true);
  view.setUint32(offset + Offset.galoisElement, fields.galoisElement, true);
  view.setFloat64(offset + Offset.scale, fields.scale, true);
  view.setUint32(offset + Offset.bodyLengthLow, fields.bodyLength % TWO_POW_32, true);
  view.setUint32(offset + Offset.bodyLengthHigh, Math.floor(fields.bodyLength / TWO_POW_32), true);
  view.setUint32(offset + Offset.reserved, 0, true);
  const headerChecksum = xxh32(out.subarray(offset, offset + Offset.headerChecksum), CHECKSUM_SEED);
  view.setUint32(offset + Offset.headerChecksum, headerChecksum, true);
}

function hex(bytes: Uint8Array): string {
  let text = '';
  for (const b of bytes) text += b.toString(16).padStart(2, '0');
  return text;
}

function checkBytes(bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidArgumentError(`bytes = ${describe(bytes)}: expected a Uint8Array`);
  }
}

/**
 * Reads and verifies the header at the start of `bytes` (magic, version, header checksum, known type and flags)
 * without looking at the body: enough to route an object or to know how many bytes it spans.
 *
 * @throws {FormatError} for fewer than 48 bytes, another magic or version, or a corrupted header.
 * @example
 * ```ts
 * const { typeName, parametersId, totalLength } = readHeader(bytes);
 * ```
 */
export function readHeader(bytes: Uint8Array): ObjectHeader {
  checkBytes(bytes);
  const what = 'serialized object';
  if (bytes.length < HEADER_BYTES) {
    throw formatError(what, 'length', `${bytes.length} bytes`, `at least ${HEADER_BYTES} (the header)`);
  }
  if (bytes[0] !== MAGIC[0] || bytes[1] !== MAGIC[1] || bytes[2] !== MAGIC[2] || bytes[3] !== MAGIC[3]) {
    throw formatError(
      what,
      'magic',
      `0x${hex(bytes.subarray(0, 4))}`,
      `'${MAGIC_TEXT}' (0x${hex(Uint8Array.from(MAGIC))})`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const version = view.getUint16(Offset.version, true);
  if (version !== FORMAT_VERSION) {
    throw formatError(
      what,
      'format version',
      version,
      `${FORMAT_VERSION} (the only version this build reads)`,
    );
  }
  const stored = view.getUint32(Offset.headerChecksum, true);
  const computed = xxh32(bytes.subarray(0, Offset.headerChecksum), CHECKSUM_SEED);
  if (stored !== computed) {
    throw formatError(
      what,
      'header checksum',
      `0x${stored.toString(16).padStart(8, '0')}`,
      `0x${computed.toString(16).padStart(8, '0')} (the header is corrupted)`,
    );
  }
  const type = bytes[Offset.type];
  const typeName = TYPE_NAMES[type];
  if (typeName === undefined) throw formatError(what, 'object type', type, 'an integer in [1, 9]');
  const flags = bytes[Offset.flags];
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw formatError(typeName, 'flags', `0x${flags.toString(16)}`, 'only bit 0 (seeded) and bit 1 (NTT)');
  }
  const reserved = view.getUint32(Offset.reserved, true);
  if (reserved !== 0) throw formatError(typeName, 'reserved header field', reserved, '0');
  const low = view.getUint32(Offset.bodyLengthLow, true);
  const high = view.getUint32(Offset.bodyLengthHigh, true);
  // Past 2^53 − 1 the length is not a safe integer (and far beyond any buffer).
  if (high >= 2 ** 21) {
    throw formatError(typeName, 'body length', `${high} · 2^32 + ${low} bytes`, 'below 2^53');
  }
  const bodyLength = high * TWO_POW_32 + low;
  return {
    version,
    type: type as ObjectType,
    typeName,
    seeded: (flags & FLAG_SEEDED) !== 0,
    ntt: (flags & FLAG_NTT) !== 0,
    parametersId: hex(bytes.subarray(Offset.parametersId, Offset.parametersId + 8)),
    level: view.getUint16(Offset.level, true),
    count: view.getUint16(Offset.count, true),
    galoisElement: view.getUint32(Offset.galoisElement, true),
    scale: view.getFloat64(Offset.scale, true),
    bodyLength,
    totalLength: HEADER_BYTES + bodyLength + CHECKSUM_BYTES,
  };
}

type Rule = 'any' | 'set' | 'clear';

interface Shape {
  topLevelOnly: boolean;
  count: (params: Parameters, level: number) => [number, number];
  seeded: Rule;
  ntt: Rule;
  scaled: boolean;
  galois: boolean;
}

const SHAPES: Readonly<Record<ObjectType, Shape>> = {
  [ObjectType.Plaintext]: {
    topLevelOnly: false,
    count: () => [1, 1],
    seeded: 'clear',
    ntt: 'any',
    scaled: true,
    galois: false,
  },
  [ObjectType.Ciphertext]: {
    topLevelOnly: false,
    count: () => [2, MAX_CIPHERTEXT_POLYS],
    seeded: 'clear',
    ntt: 'any',
    scaled: true,
    galois: false,
  },
  [ObjectType.SeededCiphertext]: {
    topLevelOnly: false,
    count: () => [2, 2],
    seeded: 'set',
    ntt: 'set',
    scaled: true,
    galois: false,
  },
  [ObjectType.PublicKey]: {
    topLevelOnly: true,
    count: () => [2, 2],
    seeded: 'any',
    ntt: 'set',
    scaled: false,
    galois: false,
  },
  // A key made for a level below the top has that level's digits (SwitchingKey.level).
  [ObjectType.SwitchingKey]: {
    topLevelOnly: false,
    count: (p, level) => [p.keyDigitsAtLevel(level), p.keyDigitsAtLevel(level)],
    seeded: 'any',
    ntt: 'set',
    scaled: false,
    galois: false,
  },
  [ObjectType.GaloisKey]: {
    topLevelOnly: false,
    count: (p, level) => [p.keyDigitsAtLevel(level), p.keyDigitsAtLevel(level)],
    seeded: 'any',
    ntt: 'set',
    scaled: false,
    galois: true,
  },
  [ObjectType.EvaluationKeys]: {
    topLevelOnly: true,
    // One relinearization key plus at most one key per Galois element other than 1 (odd residues mod 2N).
    count: (p) => [1, Math.min(0xffff, p.n)],
    seeded: 'any',
    ntt: 'set',
    scaled: false,
    galois: false,
  },
  [ObjectType.SecretKey]: {
    topLevelOnly: true,
    count: () => [1, 1],
    seeded: 'clear',
    ntt: 'set',
    scaled: false,
    galois: false,
  },
  [ObjectType.Parameters]: {
    topLevelOnly: false,
    count: () => [0, 0],
    seeded: 'clear',
    ntt: 'clear',
    scaled: false,
    galois: false,
  },
};

function checkRule(rule: Rule, value: boolean, typeName: string, flag: string): void {
  if ((rule === 'set' && !value) || (rule === 'clear' && value)) {
    throw formatError(typeName, `${flag} flag`, value ? 'set' : 'clear', `${rule} for a ${typeName}`);
  }
}

/**
 * Verifies everything about a serialized object of one of the `expected` types that can be checked before the
 * body is parsed, and returns its header. Nothing is allocated until the declared length, the length the
 * parameters imply and the bytes present agree.
 *
 * @example
 * ```ts
 * const header = open(params, bytes, [ObjectType.Ciphertext, ObjectType.SeededCiphertext]);
 * ```
 */
export function open(
  params: Parameters | undefined,
  bytes: Uint8Array,
  expected: readonly ObjectType[],
): ObjectHeader {
  checkBytes(bytes);
  if (params !== undefined && !(params instanceof Parameters)) {
    throw new InvalidArgumentError(`params = ${describe(params)}: expected Parameters`);
  }
  const minimum = HEADER_BYTES + CHECKSUM_BYTES;
  if (bytes.length < minimum) {
    throw formatError(
      'serialized object',
      'length',
      `${bytes.length} bytes`,
      `at least ${minimum} (header and checksum; the input is truncated)`,
    );
  }
  const header = readHeader(bytes);
  const { typeName } = header;
  if (!expected.includes(header.type)) {
    throw formatError(
      'serialized object',
      'object type',
      `${header.type} (${typeName})`,
      expected.map((t) => `${t} (${TYPE_NAMES[t]})`).join(' or '),
    );
  }
  if (params !== undefined && header.parametersId !== params.id) {
    throw new MismatchError(
      `${typeName}: made with parameters ${header.parametersId}: expected the given parameters ${params.id}`,
    );
  }
  const shape = SHAPES[header.type];
  checkRule(shape.seeded, header.seeded, typeName, 'seeded');
  checkRule(shape.ntt, header.ntt, typeName, 'NTT');
  if (params !== undefined) {
    if (shape.topLevelOnly) {
      if (header.level !== params.depth)
        throw formatError(typeName, 'level', header.level, `${params.depth} (the top level)`);
    } else if (header.level > params.depth) {
      throw formatError(typeName, 'level', header.level, `an integer in [0, ${params.depth}]`);
    }
    const [minCount, maxCount] = shape.count(params, header.level);
    if (header.count < minCount || header.count > maxCount) {
      const range = minCount === maxCount ? `${minCount}` : `an integer in [${minCount}, ${maxCount}]`;
      throw formatError(typeName, 'count', header.count, range);
    }
    if (shape.galois) {
      const twoN = 2 * params.n;
      const g = header.galoisElement;
      if (g % 2 !== 1 || g < 3 || g >= twoN) {
        throw formatError(typeName, 'Galois element', g, `an odd integer in [3, ${twoN - 1}]`);
      }
    }
  } else if (header.level !== 0 || header.count !== 0) {
    throw formatError(typeName, 'level and count', `${header.level} and ${header.count}`, '0 and 0');
  }
  if (!shape.galois && header.galoisElement !== 0) {
    throw formatError(typeName, 'Galois element', header.galoisElement, `0 (a ${typeName} has none)`);
  }
  if (shape.scaled) {
    if (!(Number.isFinite(header.scale) && header.scale > 0)) {
      throw formatError(typeName, 'scale', header.scale, 'a finite positive number');
    }
  } else if (!Object.is(header.scale, 0)) {
    throw formatError(typeName, 'scale', header.scale, `0 (a ${typeName} has no scale)`);
  }
  if (params !== undefined && header.type === ObjectType.EvaluationKeys) {
    // Entries are complete key objects, each at its own level: the sum is checked entry by entry; here only the
    // range the count allows (every key at level 0 … every key at the top).
    const [low, high] = evaluationKeysBodyRange(params, header.count, header.seeded);
    if (header.bodyLength < low || header.bodyLength > high) {
      throw formatError(
        typeName,
        'body length',
        `${header.bodyLength} bytes`,
        `${low} … ${high} for ${header.count} key(s)${header.seeded ? ', seeded' : ''} under parameters ${params.id}`,
      );
    }
  } else if (params !== undefined) {
    const implied = bodyLengthOf(params, header.type, header.level, header.count, header.seeded);
    if (header.bodyLength !== implied) {
      throw formatError(
        typeName,
        'body length',
        `${header.bodyLength} bytes`,
        `${implied} for ${header.count} item(s) at level ${header.level}${header.seeded ? ', seeded' : ''} ` +
          `under parameters ${params.id}`,
      );
    }
  } else if (header.bodyLength !== PARAMETERS_BODY_BYTES) {
    throw formatError(typeName, 'body length', `${header.bodyLength} bytes`, `${PARAMETERS_BODY_BYTES}`);
  }
  if (bytes.length < header.totalLength) {
    throw formatError(
      typeName,
      'length',
      `${bytes.length} bytes`,
      `${header.totalLength} (header ${HEADER_BYTES} + body ${header.bodyLength} + checksum ${CHECKSUM_BYTES}; the input is truncated)`,
    );
  }
  if (bytes.length > header.totalLength) {
    throw formatError(
      typeName,
      'length',
      `${bytes.length} bytes`,
      `${header.totalLength}: ${bytes.length - header.totalLength} trailing bytes after the object`,
    );
  }
  return header;
}
