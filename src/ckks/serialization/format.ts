import { describe } from '../../util/assert.ts';
import { FormatError } from '../../util/errors.ts';

/*
 * Wire format, version 1. Every object is
 *
 *   header (48 bytes) | body (bodyLength bytes) | checksum (u32)
 *
 * and all integers are little-endian, which is also the byte order of WebAssembly memory: a limb is written and
 * read with one byte copy. Header fields:
 *
 *   0  magic 'HOME'        16 level u16             32 body length, low u32
 *   4  format version u16  18 count u16             36 body length, high u32
 *   6  object type u8      20 Galois element u32    40 reserved u32 (0)
 *   7  flags u8            24 scale f64             44 header checksum: XXH32 of bytes 0 … 43
 *   8  parameters id (8 bytes, the 16 hex digits of Parameters.id)
 *
 * `count` is the number of polynomials of a ciphertext, the number of digits of a switching key and the number
 * of entries of an evaluation-key set. Bodies (n = ring degree, QP = all Q and P limbs, word = u32 residue):
 *
 *   plaintext            limbs(level)·n words
 *   ciphertext           count × limbs(level)·n words
 *   seeded ciphertext    c0: limbs(level)·n words, seed (32 bytes); c1 = expandUniform(Q_level, seed, 0)
 *   public key           b, a (QP·n words each), seed; seeded: b, seed; a = expandUniform(QP, seed, 0)
 *   switching key        per digit j: b_j, a_j; then seed; seeded: all b_j, then seed; a_j from label j
 *   Galois key           as a switching key, with the Galois element in the header
 *   evaluation keys      `count` complete objects: the relinearization key (if any) first, then Galois keys
 *   secret key           QP·n words
 *   parameters           24-byte encoding of the normalized ParametersLiteral
 *
 * Checksums. XXH32 is the 32-bit xxHash of the xxHash specification (`xxhsum -H0` of the same bytes gives the
 * same value), always with seed 0. The header checksum is XXH32 of header bytes 0 … 43. The object checksum that
 * ends the object is
 *
 *   XXH32(header ‖ d0 ‖ d1 ‖ d2 ‖ d3)       (64 bytes: the 48 header bytes, then each dj as a u32)
 *
 * where d0 … d3 are the four lane digests of the body (XXH32×4 of src/ring/hash.ts): the body is cut into
 * 16-byte stripes, the last one possibly partial; stripe i (body bytes 16i … 16i + 15) belongs to lane i mod 4;
 * dj is XXH32 of the concatenation of the stripes of lane j (XXH32 of nothing, 0x02cc5d05, for an empty lane of
 * a short body). Through the header it covers the type, parameters, level, scale and length; through the lanes
 * every body byte.
 *
 * Why this shape: XXH32's four 32-bit accumulators are one WebAssembly i32x4, so the kernel hashes a
 * polynomial's limbs where they lie in kernel memory; but one XXH32 stream is bound by the latency of its round
 * (every stripe waits for the previous one). The four lanes are independent, so the kernel advances them in the
 * same loop iteration over each 64-byte block and the chains overlap, about 2.5× faster than one stream. The
 * lanes start at the body, so every polynomial (n·4 bytes, a multiple of 64) starts on a block boundary, where the
 * kernel fuses the residue range check into the hashing pass. The checksum is an integrity check against
 * accidental corruption (any change gives another value with probability about 1 − 2^−32), not an
 * authenticator: anyone can recompute it.
 *
 * A reader trusts nothing before checking it: header checksum, then type, flags, parameters id, level, count
 * and scale, then that the declared body length equals the length those imply and the bytes present (so no
 * allocation is ever sized by an unchecked field). Then it copies each polynomial into newly allocated limbs
 * and, in one pass per limb in kernel memory right after its copy (while it is in cache), hashes and range-checks
 * the words; the checksum of the whole object is compared before any residue error is reported and before
 * anything is derived from the body (seed expansion), and everything allocated is freed if a check fails. Exactly
 * one byte sequence encodes a given object: unused fields must be zero.
 */

/**
 * The format version this module writes and the only one it reads.
 *
 * @example
 * ```ts
 * readHeader(bytes).version === FORMAT_VERSION;
 * ```
 */
export const FORMAT_VERSION = 1;

/**
 * Bytes of the fixed header that starts every serialized object.
 *
 * @example
 * ```ts
 * const header = await file.read(HEADER_BYTES); // then readHeader(header).totalLength bytes in all
 * ```
 */
export const HEADER_BYTES = 48;

/**
 * Bytes of the checksum (of header and body, see the format above) that ends every serialized object.
 *
 * @example
 * ```ts
 * const bodyLength = bytes.length - HEADER_BYTES - CHECKSUM_BYTES;
 * ```
 */
export const CHECKSUM_BYTES = 4;

/**
 * The magic that opens every object: the ASCII bytes of 'HOME'.
 *
 * @example
 * ```ts
 * const isHomeObject = MAGIC.every((b, i) => bytes[i] === b);
 * ```
 */
export const MAGIC: readonly number[] = [0x48, 0x4f, 0x4d, 0x45];

/**
 * {@link MAGIC} as text, for messages.
 *
 * @example
 * ```ts
 * throw new FormatError(`expected '${MAGIC_TEXT}'`);
 * ```
 */
export const MAGIC_TEXT = 'HOME';

/**
 * Bytes of the body of serialized parameters: the normalized literal (see `serializeParameters`).
 *
 * @example
 * ```ts
 * const total = HEADER_BYTES + PARAMETERS_BODY_BYTES + CHECKSUM_BYTES;
 * ```
 */
export const PARAMETERS_BODY_BYTES = 24;

/**
 * The most polynomials a serialized ciphertext has: a degree-2 ciphertext (after a multiplication without
 * relinearization) is the largest the evaluator makes.
 *
 * @example
 * ```ts
 * const acceptable = ct.polys.length >= 2 && ct.polys.length <= MAX_CIPHERTEXT_POLYS;
 * ```
 */
export const MAX_CIPHERTEXT_POLYS = 3;

/**
 * The object types of the format (the header's type byte).
 *
 * @example
 * ```ts
 * readHeader(bytes).type === ObjectType.SeededCiphertext;
 * ```
 */
export const ObjectType = Object.freeze({
  Plaintext: 1,
  Ciphertext: 2,
  SeededCiphertext: 3,
  PublicKey: 4,
  SwitchingKey: 5,
  GaloisKey: 6,
  EvaluationKeys: 7,
  SecretKey: 8,
  Parameters: 9,
} as const);

/**
 * One of the values of {@link ObjectType}.
 *
 * @example
 * ```ts
 * const type: ObjectType = ObjectType.GaloisKey;
 * ```
 */
export type ObjectType = (typeof ObjectType)[keyof typeof ObjectType];

/**
 * The name of each object type, for messages.
 *
 * @example
 * ```ts
 * TYPE_NAMES[ObjectType.GaloisKey]; // 'Galois key'
 * ```
 */
export const TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'plaintext',
  2: 'ciphertext',
  3: 'seeded ciphertext',
  4: 'public key',
  5: 'switching key',
  6: 'Galois key',
  7: 'evaluation keys',
  8: 'secret key',
  9: 'parameters',
};

/**
 * Header flag: the uniform halves are stored as a seed.
 *
 * @example
 * ```ts
 * const seeded = (flags & FLAG_SEEDED) !== 0;
 * ```
 */
export const FLAG_SEEDED = 1;

/**
 * Header flag: polynomials are in the NTT domain.
 *
 * @example
 * ```ts
 * const flags = FLAG_NTT | (seeded ? FLAG_SEEDED : 0);
 * ```
 */
export const FLAG_NTT = 2;

/**
 * Every header flag this version defines; a set bit outside it makes the header invalid.
 *
 * @example
 * ```ts
 * const unknown = (flags & ~KNOWN_FLAGS) !== 0;
 * ```
 */
export const KNOWN_FLAGS = FLAG_SEEDED | FLAG_NTT;

/**
 * Byte offset of each header field (the table of the format comment above).
 *
 * @example
 * ```ts
 * const level = view.getUint16(Offset.level, true);
 * ```
 */
export const Offset = {
  magic: 0,
  version: 4,
  type: 6,
  flags: 7,
  parametersId: 8,
  level: 16,
  count: 18,
  galoisElement: 20,
  scale: 24,
  bodyLengthLow: 32,
  bodyLengthHigh: 36,
  reserved: 40,
  headerChecksum: 44,
} as const;

/**
 * The fields of a serialized object's header, after its magic, version and checksum were verified.
 *
 * @example
 * ```ts
 * const header = readHeader(bytes);
 * header.typeName; // 'ciphertext'
 * ```
 */
export interface ObjectHeader {
  readonly version: number;
  readonly type: ObjectType;
  readonly typeName: string;
  readonly seeded: boolean;
  readonly ntt: boolean;
  /** The 16 hex digits of the parameters id the object was made with. */
  readonly parametersId: string;
  readonly level: number;
  readonly count: number;
  readonly galoisElement: number;
  readonly scale: number;
  readonly bodyLength: number;
  /** Header + body + checksum: the bytes the whole object occupies. */
  readonly totalLength: number;
}

/**
 * The header fields a writer chooses; magic, version, the reserved field and the header checksum are filled in
 * by `writeHeader`.
 *
 * @example
 * ```ts
 * const fields: HeaderFields = { type: ObjectType.SecretKey, flags: FLAG_NTT, parametersId: params.id,
 *   level: params.depth, count: 1, galoisElement: 0, scale: 0, bodyLength };
 * ```
 */
export interface HeaderFields {
  type: ObjectType;
  flags: number;
  parametersId: string;
  level: number;
  count: number;
  galoisElement: number;
  scale: number;
  bodyLength: number;
}

/**
 * Options of the serializers of objects with uniform halves.
 *
 * @example
 * ```ts
 * const options: SerializeOptions = { seeded: true };
 * serializeEvaluationKeys(evk, options);
 * ```
 */
export interface SerializeOptions {
  /**
   * Store the uniform halves as the 32-byte seed they were expanded from (about half the bytes). For a
   * ciphertext only a `SeededCiphertext` (secret-key encryption) has a seed. Default: false.
   */
  seeded?: boolean;
}

/**
 * The error for a field of a serialized object that breaks the format: names the object, the field, its value
 * and what was expected.
 *
 * @example
 * ```ts
 * throw formatError('ciphertext', 'level', header.level, `an integer in [0, ${params.depth}]`);
 * ```
 */
export function formatError(what: string, field: string, value: unknown, expected: string): FormatError {
  return new FormatError(
    `${what}: ${field} = ${typeof value === 'string' ? value : describe(value)}: expected ${expected}`,
  );
}
