import { defaultContext, type KernelContext } from '../ring/context.ts';
import { type Xxh32x4Digests, Xxh32x4Stream, xxh32, xxh32x4 } from '../ring/hash.ts';
import type { Modulus } from '../ring/modulus.ts';
import { Poly } from '../ring/poly.ts';
import { SEED_BYTES } from '../ring/prng.ts';
import { describe } from '../util/assert.ts';
import { FormatError, InvalidArgumentError, MismatchError } from '../util/errors.ts';
import { SeededCiphertext } from './encryptor.ts';
import { EvaluationKeys, expandUniform, GaloisKey, PublicKey, SecretKey, SwitchingKey } from './keys.ts';
import { Ciphertext, Plaintext } from './objects.ts';
import { Parameters, type ParametersLiteral, type SecretDistribution } from './parameters.ts';

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

const MAGIC = [0x48, 0x4f, 0x4d, 0x45]; // 'HOME'
const MAGIC_TEXT = 'HOME';
const PARAMETERS_BODY_BYTES = 24;
// A degree-2 ciphertext (after a multiplication without relinearization) is the largest the evaluator makes.
const MAX_CIPHERTEXT_POLYS = 3;
const TWO_POW_32 = 2 ** 32;

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

const TYPE_NAMES: Readonly<Record<number, string>> = {
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

/** Header flag: the uniform halves are stored as a seed. */
const FLAG_SEEDED = 1;
/** Header flag: polynomials are in the NTT domain. */
const FLAG_NTT = 2;
const KNOWN_FLAGS = FLAG_SEEDED | FLAG_NTT;

const Offset = {
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
   * ciphertext only a {@link SeededCiphertext} (secret-key encryption) has a seed. Default: false.
   */
  seeded?: boolean;
}

// -----------------------------------------------------------------------------------------------------------
// Sizes

function qpLimbs(params: Parameters): number {
  return params.qPrimes.length + params.pPrimes.length;
}

function bodyLengthOf(
  params: Parameters,
  type: ObjectType,
  level: number,
  count: number,
  seeded: boolean,
): number {
  const limbBytes = params.n * 4;
  const keyPolyBytes = qpLimbs(params) * limbBytes;
  switch (type) {
    case ObjectType.Plaintext:
      return params.limbsAtLevel(level) * limbBytes;
    case ObjectType.Ciphertext:
      return count * params.limbsAtLevel(level) * limbBytes;
    case ObjectType.SeededCiphertext:
      return params.limbsAtLevel(level) * limbBytes + SEED_BYTES;
    case ObjectType.PublicKey:
      return (seeded ? 1 : 2) * keyPolyBytes + SEED_BYTES;
    case ObjectType.SwitchingKey:
    case ObjectType.GaloisKey:
      return count * (seeded ? 1 : 2) * keyPolyBytes + SEED_BYTES;
    case ObjectType.EvaluationKeys:
      return count * switchingKeyObjectBytes(params, seeded);
    case ObjectType.SecretKey:
      return keyPolyBytes;
    case ObjectType.Parameters:
      return PARAMETERS_BODY_BYTES;
  }
}

function switchingKeyObjectBytes(params: Parameters, seeded: boolean): number {
  return (
    HEADER_BYTES +
    bodyLengthOf(params, ObjectType.SwitchingKey, params.depth, params.digits, seeded) +
    CHECKSUM_BYTES
  );
}

/**
 * The exact number of bytes `serialize…` produces for an object (header, body and checksum included).
 *
 * @example
 * ```ts
 * serializedSize(ct); // = serializeCiphertext(ct).length
 * serializedSize(relinearizationKey, { seeded: true });
 * ```
 */
export function serializedSize(
  object:
    | Plaintext
    | Ciphertext
    | PublicKey
    | SwitchingKey
    | GaloisKey
    | EvaluationKeys
    | SecretKey
    | Parameters,
  options: SerializeOptions = {},
): number {
  const seeded = options.seeded === true;
  const whole = (params: Parameters, type: ObjectType, level: number, count: number) =>
    HEADER_BYTES + bodyLengthOf(params, type, level, count, seeded) + CHECKSUM_BYTES;
  if (object instanceof Parameters) return whole(object, ObjectType.Parameters, 0, 0);
  if (object instanceof Plaintext) return whole(object.params, ObjectType.Plaintext, object.level, 1);
  if (object instanceof Ciphertext) {
    if (seeded && !(object instanceof SeededCiphertext)) {
      throw new InvalidArgumentError(
        'seeded: true for a ciphertext without a seed: expected a SeededCiphertext (from SymmetricEncryptor)',
      );
    }
    const type = seeded ? ObjectType.SeededCiphertext : ObjectType.Ciphertext;
    return whole(object.params, type, object.level, object.polys.length);
  }
  if (object instanceof PublicKey) return whole(object.params, ObjectType.PublicKey, object.params.depth, 2);
  if (object instanceof SwitchingKey) {
    return whole(object.params, ObjectType.SwitchingKey, object.params.depth, object.params.digits);
  }
  if (object instanceof GaloisKey) return serializedSize(object.key, options);
  if (object instanceof SecretKey) return whole(object.params, ObjectType.SecretKey, object.params.depth, 1);
  if (object instanceof EvaluationKeys) {
    const keys = evaluationKeyList(object);
    if (keys.length === 0) {
      throw new InvalidArgumentError('evaluation keys: the set is empty: expected at least one key');
    }
    return whole(keys[0].params, ObjectType.EvaluationKeys, keys[0].params.depth, keys.length);
  }
  throw new InvalidArgumentError(`object = ${describe(object)}: expected a CKKS object or Parameters`);
}

// -----------------------------------------------------------------------------------------------------------
// Writing

interface HeaderFields {
  type: ObjectType;
  flags: number;
  parametersId: string;
  level: number;
  count: number;
  galoisElement: number;
  scale: number;
  bodyLength: number;
}

/** The XXH32 seed of both checksums (and of every lane). */
const CHECKSUM_SEED = 0;
/** Below this many bytes a JavaScript byte range is hashed by the TypeScript XXH32×4, above by the kernel. */
const KERNEL_HASH_MIN_BYTES = 4096;
/** Bytes of the input of the final XXH32 of the object checksum: the header and the four lane digests. */
const CHECKSUM_INPUT_BYTES = HEADER_BYTES + 16;

/**
 * The object checksum of the format from the 48 header bytes and the lane digests of the body: XXH32 of
 * header ‖ d0 ‖ d1 ‖ d2 ‖ d3.
 */
function combineChecksum(header: Uint8Array, digests: Xxh32x4Digests): number {
  const input = new Uint8Array(CHECKSUM_INPUT_BYTES);
  input.set(header.subarray(0, HEADER_BYTES));
  const view = new DataView(input.buffer);
  for (let j = 0; j < 4; j++) view.setUint32(HEADER_BYTES + 4 * j, digests[j], true);
  return xxh32(input, CHECKSUM_SEED);
}

/**
 * The object checksum of a header and a body read straight from the input (parameters, an evaluation-key
 * container): the TypeScript reference for short bodies, the kernel (copying through its scratch) for long ones.
 */
function checksumOf(header: Uint8Array, body: Uint8Array, context: KernelContext): number {
  if (body.length < KERNEL_HASH_MIN_BYTES) return combineChecksum(header, xxh32x4(body, CHECKSUM_SEED));
  const stream = new Xxh32x4Stream(context, CHECKSUM_SEED);
  try {
    return combineChecksum(header, stream.update(body).digests());
  } finally {
    stream.dispose();
  }
}

/** Node's Buffer when present (this layer must also run in a browser, where it is absent). */
const nodeBuffer = (globalThis as { Buffer?: { allocUnsafeSlow(size: number): Uint8Array } }).Buffer;

/**
 * A new Uint8Array of `length` bytes, owned by the caller, for a serializer's output. Under Node it skips the
 * zero fill of `new Uint8Array` (calloc: for a ciphertext a pass over 1.5 MB that is overwritten right after).
 * Safe only because the writers write every byte: writeHeader all 48 header bytes, writeObject the checksum, and
 * a body is written as contiguous segments whose total writeObject checks against the declared length; if
 * anything throws, the array is dropped unreturned. `allocUnsafeSlow` never hands out a slice of Node's shared
 * pool: the ArrayBuffer is the caller's alone.
 */
function outputBytes(length: number): Uint8Array {
  if (nodeBuffer === undefined) return new Uint8Array(length);
  return new Uint8Array(nodeBuffer.allocUnsafeSlow(length).buffer, 0, length);
}

/** A piece of a body: a polynomial's limbs (copied out of kernel memory, hashed in place) or bytes (a seed). */
type BodySegment = Poly | Uint8Array;

function writeHeader(out: Uint8Array, offset: number, fields: HeaderFields): void {
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

/**
 * Writes the segments of a body at `offset` of `out` and feeds them to `lanes` (the lane stream of this body) and
 * to `outer` (the lane stream of an enclosing container's body, if any); returns the end offset. A polynomial is
 * copied limb by limb, each limb hashed where it lies in kernel memory right after its copy read it (so it is
 * read from cache): no pass over the output runs in JavaScript.
 */
function writeSegments(
  out: Uint8Array,
  offset: number,
  segments: readonly BodySegment[],
  lanes: Xxh32x4Stream,
  outer: Xxh32x4Stream | undefined,
): number {
  for (const segment of segments) {
    if (segment instanceof Uint8Array) {
      out.set(segment, offset);
      lanes.update(segment);
      outer?.update(segment);
      offset += segment.length;
    } else {
      const words = segment.words();
      const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
      const limbBytes = segment.n * 4;
      for (let i = 0; i < segment.limbCount; i++) {
        const at = i * limbBytes;
        out.set(bytes.subarray(at, at + limbBytes), offset + at);
        lanes.updateKernel(segment.limbPointer(i), limbBytes);
        outer?.updateKernel(segment.limbPointer(i), limbBytes);
      }
      offset += bytes.length;
    }
  }
  return offset;
}

/**
 * Writes complete objects from `bodyOffset` of the output, feeding `lanes` (the container body's lane stream)
 * every byte; returns the end offset.
 */
type NestedBodyWriter = (bodyOffset: number, lanes: Xxh32x4Stream) => number;

/**
 * Writes a whole object at `offset` of `out`: header, body and the trailing checksum; returns the end offset.
 * The body is its segments, or (for an evaluation-key set) a writer of nested objects that feeds the container's
 * lane stream as it writes, so each byte is hashed while it is written, once per enclosing object. `outer` is the
 * lane stream of the body of the container this object is nested in: it takes the whole object.
 */
function writeObject(
  out: Uint8Array,
  offset: number,
  fields: HeaderFields,
  context: KernelContext,
  body: readonly BodySegment[] | NestedBodyWriter,
  outer?: Xxh32x4Stream,
): number {
  writeHeader(out, offset, fields);
  const header = out.subarray(offset, offset + HEADER_BYTES);
  const bodyStart = offset + HEADER_BYTES;
  const lanes = new Xxh32x4Stream(context, CHECKSUM_SEED);
  try {
    outer?.update(header);
    const bodyEnd =
      typeof body === 'function' ? body(bodyStart, lanes) : writeSegments(out, bodyStart, body, lanes, outer);
    if (bodyEnd - bodyStart !== fields.bodyLength) {
      // The size functions and the writers disagree: a bug here, not a bad input.
      throw new Error(
        `serialization: wrote ${bodyEnd - bodyStart} body bytes for a ${TYPE_NAMES[fields.type]}, declared ${fields.bodyLength}`,
      );
    }
    const checksum = combineChecksum(header, lanes.digests());
    new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(bodyEnd, checksum, true);
    outer?.update(out.subarray(bodyEnd, bodyEnd + CHECKSUM_BYTES));
    return bodyEnd + CHECKSUM_BYTES;
  } finally {
    lanes.dispose();
  }
}

function checkPolyModuli(poly: Poly, moduli: readonly Modulus[], what: string): void {
  const matches =
    poly.n === moduli[0].n &&
    poly.limbCount === moduli.length &&
    poly.moduli.every((m, i) => m.value === moduli[i].value);
  if (!matches) {
    throw new InvalidArgumentError(
      `${what}: ${poly.limbCount} limbs of degree ${poly.n} with primes [${poly.moduli.map((m) => m.value).join(', ')}]: ` +
        `expected ${moduli.length} limbs of degree ${moduli[0].n} with primes [${moduli.map((m) => m.value).join(', ')}]`,
    );
  }
}

function checkSeed(seed: Uint8Array, what: string): void {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_BYTES) {
    throw new InvalidArgumentError(
      `${what} seed = ${describe(seed)}: expected a Uint8Array of ${SEED_BYTES} bytes`,
    );
  }
}

/**
 * Throws unless limb 0 of `uniform` is still what `seed` expands to. Expanding one limb costs 1/limbs of a full
 * expansion and catches the real hazard: an object modified in place after it was made (which changes every limb),
 * whose seed would then regenerate a different polynomial on the receiver.
 */
function checkSeedStillMatches(
  uniform: Poly,
  seed: Uint8Array,
  label: number,
  modulus: Modulus,
  what: string,
): void {
  const first = expandUniform([modulus], seed, label);
  const expected = first.limb(0);
  const actual = uniform.limb(0);
  let same = true;
  for (let i = 0; i < expected.length; i++) {
    if (expected[i] !== actual[i]) {
      same = false;
      break;
    }
  }
  first.dispose();
  if (!same) {
    throw new InvalidArgumentError(
      `${what} no longer equals the expansion of its seed (the object was modified after it was made): ` +
        'expected an unmodified object, or serialize it with seeded: false',
    );
  }
}

function checkScaleValue(scale: number, what: string): void {
  if (!(Number.isFinite(scale) && scale > 0)) {
    throw new InvalidArgumentError(`${what} scale = ${scale}: expected a finite positive number`);
  }
}

function domainFlag(polys: readonly Poly[], what: string): number {
  const ntt = polys[0].isNtt;
  if (polys.some((p) => p.isNtt !== ntt)) {
    throw new InvalidArgumentError(
      `${what}: polynomials in mixed domains: expected all NTT or all coefficient`,
    );
  }
  return ntt ? FLAG_NTT : 0;
}

function checkNtt(polys: readonly Poly[], what: string): void {
  if (polys.some((p) => !p.isNtt)) {
    throw new InvalidArgumentError(
      `${what}: a polynomial in the coefficient domain: expected the NTT domain`,
    );
  }
}

/**
 * Serializes a plaintext (its polynomial, level and scale).
 *
 * @example
 * ```ts
 * const bytes = serializePlaintext(encoder.encodeNew([1, 2, 3]));
 * ```
 */
export function serializePlaintext(pt: Plaintext): Uint8Array {
  if (!(pt instanceof Plaintext))
    throw new InvalidArgumentError(`pt = ${describe(pt)}: expected a Plaintext`);
  const params = pt.params;
  params.checkLevel(pt.level);
  checkScaleValue(pt.scale, 'plaintext');
  checkPolyModuli(pt.poly, params.moduliAtLevel(pt.level), 'plaintext polynomial');
  const bodyLength = bodyLengthOf(params, ObjectType.Plaintext, pt.level, 1, false);
  const out = outputBytes(HEADER_BYTES + bodyLength + CHECKSUM_BYTES);
  const fields: HeaderFields = {
    type: ObjectType.Plaintext,
    flags: pt.poly.isNtt ? FLAG_NTT : 0,
    parametersId: params.id,
    level: pt.level,
    count: 1,
    galoisElement: 0,
    scale: pt.scale,
    bodyLength,
  };
  writeObject(out, 0, fields, params.context, [pt.poly]);
  return out;
}

/**
 * Serializes a ciphertext of degree 1 or 2. With `seeded: true` (only for a {@link SeededCiphertext} of degree 1
 * that was not modified since encryption) it writes c0 and the 32-byte seed of c1: about half the bytes.
 *
 * @throws {InvalidArgumentError} for `seeded: true` on a ciphertext without a seed or with a modified c1.
 * @example
 * ```ts
 * const upload = serializeCiphertext(new SymmetricEncryptor(params, sk).encryptNew(pt), { seeded: true });
 * const reply = serializeCiphertext(result);
 * ```
 */
export function serializeCiphertext(ct: Ciphertext, options: SerializeOptions = {}): Uint8Array {
  if (!(ct instanceof Ciphertext))
    throw new InvalidArgumentError(`ct = ${describe(ct)}: expected a Ciphertext`);
  const params = ct.params;
  params.checkLevel(ct.level);
  checkScaleValue(ct.scale, 'ciphertext');
  const count = ct.polys.length;
  if (count < 2 || count > MAX_CIPHERTEXT_POLYS) {
    throw new InvalidArgumentError(
      `ciphertext degree = ${count - 1}: expected 1 … ${MAX_CIPHERTEXT_POLYS - 1}`,
    );
  }
  const moduli = params.moduliAtLevel(ct.level);
  ct.polys.forEach((p, i) => {
    checkPolyModuli(p, moduli, `ciphertext polynomial c${i}`);
  });
  const fields: HeaderFields = {
    type: ObjectType.Ciphertext,
    flags: domainFlag(ct.polys, 'ciphertext'),
    parametersId: params.id,
    level: ct.level,
    count,
    galoisElement: 0,
    scale: ct.scale,
    bodyLength: 0,
  };
  if (options.seeded === true) {
    if (!(ct instanceof SeededCiphertext)) {
      throw new InvalidArgumentError(
        'seeded: true for a ciphertext without a seed: expected a SeededCiphertext (from SymmetricEncryptor)',
      );
    }
    if (count !== 2) {
      throw new InvalidArgumentError(
        `seeded: true for a ciphertext of degree ${count - 1}: expected degree 1`,
      );
    }
    checkSeed(ct.seed, 'ciphertext');
    checkNtt(ct.polys, 'seeded ciphertext');
    checkSeedStillMatches(ct.polys[1], ct.seed, 0, moduli[0], 'ciphertext c1');
    fields.type = ObjectType.SeededCiphertext;
    fields.flags |= FLAG_SEEDED;
  }
  fields.bodyLength = bodyLengthOf(params, fields.type, ct.level, count, false);
  const out = outputBytes(HEADER_BYTES + fields.bodyLength + CHECKSUM_BYTES);
  const body =
    fields.type === ObjectType.SeededCiphertext ? [ct.polys[0], (ct as SeededCiphertext).seed] : ct.polys;
  writeObject(out, 0, fields, params.context, body);
  return out;
}

/**
 * Serializes a public key; `seeded: true` stores `a` as its seed (about half the bytes).
 *
 * @example
 * ```ts
 * const bytes = serializePublicKey(publicKey, { seeded: true });
 * ```
 */
export function serializePublicKey(pk: PublicKey, options: SerializeOptions = {}): Uint8Array {
  if (!(pk instanceof PublicKey))
    throw new InvalidArgumentError(`pk = ${describe(pk)}: expected a PublicKey`);
  const params = pk.params;
  const seeded = options.seeded === true;
  const moduli = params.moduliQPAtLevel(params.depth);
  checkPolyModuli(pk.b, moduli, 'public key b');
  checkPolyModuli(pk.a, moduli, 'public key a');
  checkNtt([pk.b, pk.a], 'public key');
  checkSeed(pk.seed, 'public key');
  if (seeded) checkSeedStillMatches(pk.a, pk.seed, 0, moduli[0], 'public key a');
  const bodyLength = bodyLengthOf(params, ObjectType.PublicKey, params.depth, 2, seeded);
  const out = outputBytes(HEADER_BYTES + bodyLength + CHECKSUM_BYTES);
  const fields: HeaderFields = {
    type: ObjectType.PublicKey,
    flags: FLAG_NTT | (seeded ? FLAG_SEEDED : 0),
    parametersId: params.id,
    level: params.depth,
    count: 2,
    galoisElement: 0,
    scale: 0,
    bodyLength,
  };
  writeObject(out, 0, fields, params.context, seeded ? [pk.b, pk.seed] : [pk.b, pk.a, pk.seed]);
  return out;
}

function checkSwitchingKey(key: SwitchingKey, seeded: boolean, what: string): void {
  if (!(key instanceof SwitchingKey)) {
    throw new InvalidArgumentError(`${what} = ${describe(key)}: expected a SwitchingKey`);
  }
  const params = key.params;
  if (key.digits.length !== params.digits) {
    throw new InvalidArgumentError(`${what} has ${key.digits.length} digits: expected ${params.digits}`);
  }
  const moduli = params.moduliQPAtLevel(params.depth);
  key.digits.forEach((d, j) => {
    checkPolyModuli(d.b, moduli, `${what} digit ${j} b`);
    checkPolyModuli(d.a, moduli, `${what} digit ${j} a`);
    checkNtt([d.b, d.a], `${what} digit ${j}`);
  });
  checkSeed(key.seed, what);
  if (seeded) {
    key.digits.forEach((d, j) => {
      checkSeedStillMatches(d.a, key.seed, j, moduli[0], `${what} digit ${j} a`);
    });
  }
}

function switchingKeyFields(key: SwitchingKey, type: ObjectType, galoisElement: number, seeded: boolean) {
  const params = key.params;
  return {
    type,
    flags: FLAG_NTT | (seeded ? FLAG_SEEDED : 0),
    parametersId: params.id,
    level: params.depth,
    count: params.digits,
    galoisElement,
    scale: 0,
    bodyLength: bodyLengthOf(params, type, params.depth, params.digits, seeded),
  };
}

function switchingKeyBody(key: SwitchingKey, seeded: boolean): BodySegment[] {
  const body: BodySegment[] = [];
  for (const d of key.digits) {
    body.push(d.b);
    if (!seeded) body.push(d.a);
  }
  body.push(key.seed);
  return body;
}

function writeSwitchingKeyObject(
  out: Uint8Array,
  offset: number,
  key: SwitchingKey,
  type: ObjectType,
  galoisElement: number,
  seeded: boolean,
  outer?: Xxh32x4Stream,
): number {
  const fields = switchingKeyFields(key, type, galoisElement, seeded);
  return writeObject(out, offset, fields, key.params.context, switchingKeyBody(key, seeded), outer);
}

/**
 * Serializes a key-switching key (e.g. the relinearization key); `seeded: true` stores every a_j as the one
 * seed (about half the bytes).
 *
 * @example
 * ```ts
 * const bytes = serializeSwitchingKey(keygen.generateRelinearizationKey(sk), { seeded: true });
 * ```
 */
export function serializeSwitchingKey(key: SwitchingKey, options: SerializeOptions = {}): Uint8Array {
  const seeded = options.seeded === true;
  checkSwitchingKey(key, seeded, 'switching key');
  const out = outputBytes(serializedSize(key, options));
  writeSwitchingKeyObject(out, 0, key, ObjectType.SwitchingKey, 0, seeded);
  return out;
}

function checkGaloisElement(galoisElement: number, params: Parameters): void {
  const twoN = 2 * params.n;
  if (
    !Number.isInteger(galoisElement) ||
    galoisElement % 2 !== 1 ||
    galoisElement < 3 ||
    galoisElement >= twoN
  ) {
    throw new InvalidArgumentError(
      `Galois element = ${describe(galoisElement)}: expected an odd integer in [3, ${twoN - 1}]`,
    );
  }
}

/**
 * Serializes a Galois (rotation or conjugation) key with its Galois element.
 *
 * @example
 * ```ts
 * const bytes = serializeGaloisKey(keygen.generateGaloisKey(sk, galoisElementForRotation(1, params.logN)));
 * ```
 */
export function serializeGaloisKey(key: GaloisKey, options: SerializeOptions = {}): Uint8Array {
  if (!(key instanceof GaloisKey))
    throw new InvalidArgumentError(`key = ${describe(key)}: expected a GaloisKey`);
  const seeded = options.seeded === true;
  checkSwitchingKey(key.key, seeded, 'Galois key');
  checkGaloisElement(key.galoisElement, key.key.params);
  const out = outputBytes(serializedSize(key, options));
  writeSwitchingKeyObject(out, 0, key.key, ObjectType.GaloisKey, key.galoisElement, seeded);
  return out;
}

function evaluationKeyList(evk: EvaluationKeys): SwitchingKey[] {
  const keys: SwitchingKey[] = [];
  if (evk.relinearization) keys.push(evk.relinearization);
  for (const g of evk.galois.values()) keys.push(g.key);
  return keys;
}

/**
 * Serializes an evaluation-key set: the relinearization key (if present) and every Galois key, each as a
 * complete object inside one container. An empty set has no parameters to name and is refused.
 *
 * @example
 * ```ts
 * const upload = serializeEvaluationKeys(keygen.generateEvaluationKeys(sk, { rotations: [1, 2] }), { seeded: true });
 * ```
 */
export function serializeEvaluationKeys(evk: EvaluationKeys, options: SerializeOptions = {}): Uint8Array {
  if (!(evk instanceof EvaluationKeys)) {
    throw new InvalidArgumentError(`evk = ${describe(evk)}: expected EvaluationKeys`);
  }
  const seeded = options.seeded === true;
  const keys = evaluationKeyList(evk);
  if (keys.length === 0) {
    throw new InvalidArgumentError(
      'evaluation keys: the set is empty: expected a relinearization key or at least one Galois key',
    );
  }
  const params = keys[0].params;
  for (const key of keys) {
    if (key.params !== params) {
      throw new MismatchError(
        `evaluation keys: a key has parameters ${key.parametersId}, another ${params.id}`,
      );
    }
  }
  if (evk.relinearization) checkSwitchingKey(evk.relinearization, seeded, 'relinearization key');
  for (const g of evk.galois.values()) {
    checkSwitchingKey(g.key, seeded, `Galois key ${g.galoisElement}`);
    checkGaloisElement(g.galoisElement, params);
  }
  if (keys.length > 0xffff) {
    throw new InvalidArgumentError(`evaluation keys: ${keys.length} keys: expected at most 65535`);
  }
  const bodyLength = bodyLengthOf(params, ObjectType.EvaluationKeys, params.depth, keys.length, seeded);
  const out = outputBytes(HEADER_BYTES + bodyLength + CHECKSUM_BYTES);
  const fields: HeaderFields = {
    type: ObjectType.EvaluationKeys,
    flags: FLAG_NTT | (seeded ? FLAG_SEEDED : 0),
    parametersId: params.id,
    level: params.depth,
    count: keys.length,
    galoisElement: 0,
    scale: 0,
    bodyLength,
  };
  writeObject(out, 0, fields, params.context, (offset, lanes) => {
    const relinearization = evk.relinearization;
    if (relinearization) {
      offset = writeSwitchingKeyObject(
        out,
        offset,
        relinearization,
        ObjectType.SwitchingKey,
        0,
        seeded,
        lanes,
      );
    }
    for (const g of evk.galois.values()) {
      offset = writeSwitchingKeyObject(
        out,
        offset,
        g.key,
        ObjectType.GaloisKey,
        g.galoisElement,
        seeded,
        lanes,
      );
    }
    return offset;
  });
  return out;
}

/**
 * Serializes the secret key, **for the client's own local storage only** (e.g. encrypted at rest by the
 * application). Whoever holds these bytes can decrypt every ciphertext of the key: they must never be sent to a
 * server or any other party.
 *
 * @example
 * ```ts
 * const local = serializeSecretKey(secretKey); // keep on the client; never upload
 * ```
 */
export function serializeSecretKey(sk: SecretKey): Uint8Array {
  if (!(sk instanceof SecretKey))
    throw new InvalidArgumentError(`sk = ${describe(sk)}: expected a SecretKey`);
  const params = sk.params;
  checkPolyModuli(sk.poly, params.moduliQPAtLevel(params.depth), 'secret key');
  checkNtt([sk.poly], 'secret key');
  const bodyLength = bodyLengthOf(params, ObjectType.SecretKey, params.depth, 1, false);
  const out = outputBytes(HEADER_BYTES + bodyLength + CHECKSUM_BYTES);
  const fields: HeaderFields = {
    type: ObjectType.SecretKey,
    flags: FLAG_NTT,
    parametersId: params.id,
    level: params.depth,
    count: 1,
    galoisElement: 0,
    scale: 0,
    bodyLength,
  };
  writeObject(out, 0, fields, params.context, [sk.poly]);
  return out;
}

/**
 * Serializes parameters as their normalized literal (24 bytes of body) together with their id; the reader
 * rebuilds them with `Parameters.create` and checks that the id is the same.
 *
 * @example
 * ```ts
 * const bytes = serializeParameters(Parameters.create(PRESETS.PN14QP438));
 * ```
 */
export function serializeParameters(params: Parameters): Uint8Array {
  if (!(params instanceof Parameters)) {
    throw new InvalidArgumentError(`params = ${describe(params)}: expected Parameters`);
  }
  const literal = params.literal;
  const body = new Uint8Array(PARAMETERS_BODY_BYTES);
  const view = new DataView(body.buffer);
  body[0] = params.logN;
  body[1] = params.primesPerLevel;
  body[2] = params.basePrimes;
  body[3] = params.pPrimes.length;
  view.setUint16(4, params.depth, true);
  view.setUint16(6, params.digits, true);
  view.setFloat64(8, literal.logDefaultScale ?? Math.log2(params.defaultScale), true);
  body[16] = params.secret.kind === 'sparse-ternary' ? 1 : 0;
  body[17] = params.insecure ? 1 : 0;
  view.setUint16(18, 0, true);
  view.setUint32(20, params.secret.kind === 'sparse-ternary' ? params.secret.hammingWeight : 0, true);
  const out = new Uint8Array(HEADER_BYTES + PARAMETERS_BODY_BYTES + CHECKSUM_BYTES);
  const fields: HeaderFields = {
    type: ObjectType.Parameters,
    flags: 0,
    parametersId: params.id,
    level: 0,
    count: 0,
    galoisElement: 0,
    scale: 0,
    bodyLength: PARAMETERS_BODY_BYTES,
  };
  writeObject(out, 0, fields, params.context, [body]);
  return out;
}

// -----------------------------------------------------------------------------------------------------------
// Reading

function hex(bytes: Uint8Array): string {
  let text = '';
  for (const b of bytes) text += b.toString(16).padStart(2, '0');
  return text;
}

function formatError(what: string, field: string, value: unknown, expected: string): FormatError {
  return new FormatError(
    `${what}: ${field} = ${typeof value === 'string' ? value : describe(value)}: expected ${expected}`,
  );
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
  count: (params: Parameters) => [number, number];
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
  [ObjectType.SwitchingKey]: {
    topLevelOnly: true,
    count: (p) => [p.digits, p.digits],
    seeded: 'any',
    ntt: 'set',
    scaled: false,
    galois: false,
  },
  [ObjectType.GaloisKey]: {
    topLevelOnly: true,
    count: (p) => [p.digits, p.digits],
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
 */
function open(
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
    const [minCount, maxCount] = shape.count(params);
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
  if (params !== undefined) {
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

function storedChecksum(bytes: Uint8Array, header: ObjectHeader): number {
  const at = HEADER_BYTES + header.bodyLength;
  return new DataView(bytes.buffer, bytes.byteOffset + at, CHECKSUM_BYTES).getUint32(0, true);
}

function checkChecksum(typeName: string, stored: number, computed: number): void {
  if (stored !== computed) {
    throw formatError(
      typeName,
      'checksum',
      `0x${stored.toString(16).padStart(8, '0')}`,
      `0x${computed.toString(16).padStart(8, '0')} (the object is corrupted)`,
    );
  }
}

/**
 * Verifies the checksum of an object whose body is read straight from `bytes` (parameters, the container of an
 * evaluation-key set) before anything in the body is looked at.
 */
function verifyWholeChecksum(bytes: Uint8Array, header: ObjectHeader, context: KernelContext): void {
  const body = bytes.subarray(HEADER_BYTES, HEADER_BYTES + header.bodyLength);
  const computed = checksumOf(bytes.subarray(0, HEADER_BYTES), body, context);
  checkChecksum(header.typeName, storedChecksum(bytes, header), computed);
}

/**
 * Reads the body of an object whose header {@link open} accepted, in two phases. `read` takes the polynomials
 * and seeds in body order: each polynomial is copied into new limbs, limb by limb, and each limb is hashed and
 * range-checked in one kernel pass where it lies right after its copy (while it is in cache). Then the checksum
 * of the whole object is compared, then the residues, and only then `build` derives anything from the body (seed
 * expansion). If anything throws, every polynomial allocated is freed.
 */
class BodyReader {
  readonly #bytes: Uint8Array;
  readonly #header: ObjectHeader;
  readonly #what: string;
  #offset = HEADER_BYTES;
  readonly #owned: Poly[] = [];
  #lanes: Xxh32x4Stream | undefined;
  #outOfRange: { poly: Poly; limb: number; field: string } | undefined;

  readonly #context: KernelContext;

  constructor(bytes: Uint8Array, header: ObjectHeader, context: KernelContext) {
    this.#context = context;
    this.#bytes = bytes;
    this.#header = header;
    this.#what = header.typeName;
  }

  poly(moduli: readonly Modulus[], isNtt: boolean, field: string): Poly {
    const lanes = this.#reading();
    const poly = Poly.alloc(moduli, isNtt, false);
    this.#owned.push(poly);
    const words = poly.words();
    const target = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
    const n = poly.n;
    const limbBytes = n * 4;
    for (let i = 0; i < moduli.length; i++) {
      const at = i * limbBytes;
      target.set(this.#bytes.subarray(this.#offset + at, this.#offset + at + limbBytes), at);
      const largest = lanes.updateKernelMax(poly.limbPointer(i), n);
      if (largest >= moduli[i].value && this.#outOfRange === undefined) {
        this.#outOfRange = { poly, limb: i, field };
      }
    }
    this.#offset += words.byteLength;
    return poly;
  }

  seed(): Uint8Array {
    const seed = this.#bytes.slice(this.#offset, this.#offset + SEED_BYTES);
    this.#reading().update(seed);
    this.#offset += SEED_BYTES;
    return seed;
  }

  expanded(moduli: readonly Modulus[], seed: Uint8Array, label: number): Poly {
    if (this.#lanes !== undefined) throw new Error('BodyReader: expansion before the body was verified');
    const poly = expandUniform(moduli, seed, label);
    this.#owned.push(poly);
    return poly;
  }

  /** Runs `read`, verifies what it read, then runs `build` on its result; frees everything if any step throws. */
  run<R, T>(read: () => R, build: (raw: R) => T): T {
    try {
      const lanes = new Xxh32x4Stream(this.#context, CHECKSUM_SEED);
      this.#lanes = lanes;
      let raw: R;
      try {
        raw = read();
        this.#verify(lanes);
      } finally {
        this.#lanes = undefined;
        lanes.dispose();
      }
      return build(raw);
    } catch (error) {
      for (const p of this.#owned) p.dispose();
      throw error;
    }
  }

  #reading(): Xxh32x4Stream {
    if (this.#lanes === undefined) throw new Error('BodyReader: body read outside run()');
    return this.#lanes;
  }

  #verify(lanes: Xxh32x4Stream): void {
    const end = HEADER_BYTES + this.#header.bodyLength;
    if (this.#offset !== end) {
      // The readers and the size functions disagree: a bug here, not a bad input.
      throw new Error(
        `BodyReader: read ${this.#offset - HEADER_BYTES} body bytes of ${this.#header.bodyLength}`,
      );
    }
    const computed = combineChecksum(this.#bytes.subarray(0, HEADER_BYTES), lanes.digests());
    checkChecksum(this.#what, storedChecksum(this.#bytes, this.#header), computed);
    const bad = this.#outOfRange;
    if (bad === undefined) return;
    const p = bad.poly.moduli[bad.limb].value;
    const limb = bad.poly.limb(bad.limb);
    const k = limb.findIndex((w) => w >= p);
    throw formatError(
      this.#what,
      `${bad.field} limb ${bad.limb} coefficient ${k}`,
      limb[k],
      `a residue below the prime ${p}`,
    );
  }
}

/**
 * Deserializes a plaintext made with `params`.
 *
 * @throws {FormatError} for bytes that are truncated, corrupted, of another type or version, or inconsistent.
 * @throws {MismatchError} for a plaintext made with other parameters.
 * @example
 * ```ts
 * const pt = deserializePlaintext(params, bytes);
 * ```
 */
export function deserializePlaintext(params: Parameters, bytes: Uint8Array): Plaintext {
  const header = open(params, bytes, [ObjectType.Plaintext]);
  const reader = new BodyReader(bytes, header, params.context);
  return reader.run(
    () => reader.poly(params.moduliAtLevel(header.level), header.ntt, 'polynomial'),
    (poly) => new Plaintext(params, poly, header.level, header.scale),
  );
}

/**
 * Deserializes a ciphertext made with `params`, plain or seeded. A seeded one has c1 re-expanded from its seed
 * and comes back as a {@link SeededCiphertext}.
 *
 * @throws {FormatError} for bytes that are truncated, corrupted, of another type or version, or inconsistent.
 * @throws {MismatchError} for a ciphertext made with other parameters.
 * @example
 * ```ts
 * const ct = deserializeCiphertext(params, bytes);
 * ```
 */
export function deserializeCiphertext(params: Parameters, bytes: Uint8Array): Ciphertext {
  const header = open(params, bytes, [ObjectType.Ciphertext, ObjectType.SeededCiphertext]);
  const reader = new BodyReader(bytes, header, params.context);
  const moduli = params.moduliAtLevel(header.level);
  if (header.type === ObjectType.SeededCiphertext) {
    return reader.run(
      () => ({ c0: reader.poly(moduli, true, 'c0'), seed: reader.seed() }),
      ({ c0, seed }) => {
        const c1 = reader.expanded(moduli, seed, 0);
        return new SeededCiphertext(params, [c0, c1], header.level, header.scale, seed);
      },
    );
  }
  return reader.run(
    () => {
      const polys: Poly[] = [];
      for (let i = 0; i < header.count; i++) polys.push(reader.poly(moduli, header.ntt, `c${i}`));
      return polys;
    },
    (polys) => new Ciphertext(params, polys, header.level, header.scale),
  );
}

/**
 * Deserializes a public key made with `params` (plain or seeded).
 *
 * @throws {FormatError} for bytes that are truncated, corrupted, of another type or version, or inconsistent.
 * @throws {MismatchError} for a key made with other parameters.
 * @example
 * ```ts
 * const publicKey = deserializePublicKey(params, bytes);
 * ```
 */
export function deserializePublicKey(params: Parameters, bytes: Uint8Array): PublicKey {
  const header = open(params, bytes, [ObjectType.PublicKey]);
  const reader = new BodyReader(bytes, header, params.context);
  const moduli = params.moduliQPAtLevel(params.depth);
  return reader.run(
    () => {
      const b = reader.poly(moduli, true, 'b');
      const a = header.seeded ? undefined : reader.poly(moduli, true, 'a');
      return { b, a, seed: reader.seed() };
    },
    ({ b, a, seed }) => new PublicKey(params, b, a ?? reader.expanded(moduli, seed, 0), seed),
  );
}

function readSwitchingKey<T>(
  params: Parameters,
  header: ObjectHeader,
  bytes: Uint8Array,
  wrap: (key: SwitchingKey) => T,
): T {
  const moduli = params.moduliQPAtLevel(params.depth);
  const reader = new BodyReader(bytes, header, params.context);
  return reader.run(
    () => {
      const bs: Poly[] = [];
      const as: Poly[] = [];
      for (let j = 0; j < header.count; j++) {
        bs.push(reader.poly(moduli, true, `digit ${j} b`));
        if (!header.seeded) as.push(reader.poly(moduli, true, `digit ${j} a`));
      }
      return { bs, as, seed: reader.seed() };
    },
    ({ bs, as, seed }) => {
      if (header.seeded) for (let j = 0; j < header.count; j++) as.push(reader.expanded(moduli, seed, j));
      const key = new SwitchingKey(
        params,
        bs.map((b, j) => ({ b, a: as[j] })),
        seed,
      );
      return wrap(key);
    },
  );
}

/**
 * Deserializes a key-switching key (e.g. the relinearization key) made with `params`; a seeded one has every
 * a_j re-expanded from its seed.
 *
 * @throws {FormatError} for bytes that are truncated, corrupted, of another type or version, or inconsistent.
 * @throws {MismatchError} for a key made with other parameters.
 * @example
 * ```ts
 * const relin = deserializeSwitchingKey(params, bytes);
 * ```
 */
export function deserializeSwitchingKey(params: Parameters, bytes: Uint8Array): SwitchingKey {
  const header = open(params, bytes, [ObjectType.SwitchingKey]);
  return readSwitchingKey(params, header, bytes, (key) => key);
}

/**
 * Deserializes a Galois key made with `params`.
 *
 * @throws {FormatError} for bytes that are truncated, corrupted, of another type or version, or inconsistent.
 * @throws {MismatchError} for a key made with other parameters.
 * @example
 * ```ts
 * const rotationKey = deserializeGaloisKey(params, bytes);
 * ```
 */
export function deserializeGaloisKey(params: Parameters, bytes: Uint8Array): GaloisKey {
  const header = open(params, bytes, [ObjectType.GaloisKey]);
  return readSwitchingKey(params, header, bytes, (key) => new GaloisKey(header.galoisElement, key));
}

/**
 * Deserializes an evaluation-key set made with `params`: at most one relinearization key (first) and Galois
 * keys with distinct Galois elements, all plain or all seeded.
 *
 * @throws {FormatError} for bytes that are truncated, corrupted, of another type or version, or inconsistent.
 * @throws {MismatchError} for keys made with other parameters.
 * @example
 * ```ts
 * const evaluator = new Evaluator(params, deserializeEvaluationKeys(params, bytes));
 * ```
 */
export function deserializeEvaluationKeys(params: Parameters, bytes: Uint8Array): EvaluationKeys {
  const header = open(params, bytes, [ObjectType.EvaluationKeys]);
  // The container's checksum covers every entry: check it before any entry is parsed.
  verifyWholeChecksum(bytes, header, params.context);
  const entryBytes = switchingKeyObjectBytes(params, header.seeded);
  const parsed: SwitchingKey[] = [];
  try {
    let relinearization: SwitchingKey | undefined;
    const galois = new Map<number, GaloisKey>();
    for (let i = 0; i < header.count; i++) {
      const start = HEADER_BYTES + i * entryBytes;
      const entry = bytes.subarray(start, start + entryBytes);
      const what = `evaluation keys entry ${i}`;
      try {
        const allowed = i === 0 ? [ObjectType.SwitchingKey, ObjectType.GaloisKey] : [ObjectType.GaloisKey];
        const entryHeader = open(params, entry, allowed);
        if (entryHeader.seeded !== header.seeded) {
          throw formatError(
            entryHeader.typeName,
            'seeded flag',
            entryHeader.seeded ? 'set' : 'clear',
            `the container's (${header.seeded ? 'set' : 'clear'})`,
          );
        }
        if (entryHeader.type === ObjectType.GaloisKey && galois.has(entryHeader.galoisElement)) {
          throw formatError(
            entryHeader.typeName,
            'Galois element',
            entryHeader.galoisElement,
            'one not seen before in the set',
          );
        }
        const key = readSwitchingKey(params, entryHeader, entry, (k) => k);
        parsed.push(key);
        if (entryHeader.type === ObjectType.SwitchingKey) relinearization = key;
        else galois.set(entryHeader.galoisElement, new GaloisKey(entryHeader.galoisElement, key));
      } catch (error) {
        if (error instanceof FormatError) throw new FormatError(`${what}: ${error.message}`);
        if (error instanceof MismatchError) throw new MismatchError(`${what}: ${error.message}`);
        throw error;
      }
    }
    return new EvaluationKeys(relinearization, galois.values());
  } catch (error) {
    for (const key of parsed) key.dispose();
    throw error;
  }
}

/**
 * Deserializes a secret key from the client's local storage (see {@link serializeSecretKey}).
 *
 * @throws {FormatError} for bytes that are truncated, corrupted, of another type or version, or inconsistent.
 * @throws {MismatchError} for a key made with other parameters.
 * @example
 * ```ts
 * const secretKey = deserializeSecretKey(params, local);
 * ```
 */
export function deserializeSecretKey(params: Parameters, bytes: Uint8Array): SecretKey {
  const header = open(params, bytes, [ObjectType.SecretKey]);
  const reader = new BodyReader(bytes, header, params.context);
  return reader.run(
    () => reader.poly(params.moduliQPAtLevel(params.depth), true, 's'),
    (s) => new SecretKey(params, s),
  );
}

/**
 * Rebuilds parameters from {@link serializeParameters} output with `Parameters.create`.
 *
 * @throws {FormatError} for bytes that are truncated, corrupted or not a valid parameter literal.
 * @throws {MismatchError} when this build derives parameters with another id from the literal.
 * @example
 * ```ts
 * const params = deserializeParameters(bytes);
 * const ct = deserializeCiphertext(params, ctBytes);
 * ```
 */
export function deserializeParameters(
  bytes: Uint8Array,
  options: { context?: KernelContext } = {},
): Parameters {
  const header = open(undefined, bytes, [ObjectType.Parameters]);
  const context = options.context ?? defaultContext();
  verifyWholeChecksum(bytes, header, context);
  const what = header.typeName;
  const view = new DataView(bytes.buffer, bytes.byteOffset + HEADER_BYTES, PARAMETERS_BODY_BYTES);
  const body = bytes.subarray(HEADER_BYTES, HEADER_BYTES + PARAMETERS_BODY_BYTES);
  const kind = body[16];
  if (kind > 1) throw formatError(what, 'secret distribution', kind, '0 (ternary) or 1 (sparse ternary)');
  const insecure = body[17];
  if (insecure > 1) throw formatError(what, 'insecure', insecure, '0 or 1');
  const reserved = view.getUint16(18, true);
  if (reserved !== 0) throw formatError(what, 'reserved body field', reserved, '0');
  const hammingWeight = view.getUint32(20, true);
  if (kind === 0 && hammingWeight !== 0)
    throw formatError(what, 'Hamming weight', hammingWeight, '0 for a ternary secret');
  const secret: SecretDistribution =
    kind === 1 ? { kind: 'sparse-ternary', hammingWeight } : { kind: 'ternary' };
  const primesPerLevel = body[1];
  if (primesPerLevel !== 1 && primesPerLevel !== 2)
    throw formatError(what, 'primes per level', primesPerLevel, '1 or 2');
  const literal: ParametersLiteral = {
    logN: body[0],
    depth: view.getUint16(4, true),
    primesPerLevel,
    basePrimes: body[2],
    specialPrimes: body[3],
    digits: view.getUint16(6, true),
    logDefaultScale: view.getFloat64(8, true),
    secret,
    insecure: insecure === 1,
  };
  let params: Parameters;
  try {
    params = Parameters.create(literal, { context });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw formatError(what, 'literal', JSON.stringify(literal), `valid parameters (${reason})`);
  }
  if (params.id !== header.parametersId) {
    throw new MismatchError(
      `parameters: the literal gives parameters ${params.id} in this build: expected the serialized id ${header.parametersId}`,
    );
  }
  // Accept only the canonical encoding, so that equal parameters always have equal bytes.
  const canonical = serializeParameters(params);
  for (let i = 0; i < canonical.length; i++) {
    if (canonical[i] !== bytes[i]) {
      throw formatError(
        what,
        `byte ${i}`,
        bytes[i],
        `${canonical[i]} (the canonical encoding of the literal)`,
      );
    }
  }
  return params;
}
