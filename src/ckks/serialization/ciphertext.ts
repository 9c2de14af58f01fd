/*
 * Plaintexts and ciphertexts (plain, and seeded: c0 and the seed of c1).
 */
import type { Poly } from '../../ring/poly.ts';
import { describe } from '../../util/assert.ts';
import { InvalidArgumentError } from '../../util/errors.ts';
import { SeededCiphertext } from '../encryptor.ts';
import { Ciphertext, Plaintext } from '../objects.ts';
import type { Parameters } from '../parameters.ts';
import {
  CHECKSUM_BYTES,
  FLAG_NTT,
  FLAG_SEEDED,
  HEADER_BYTES,
  type HeaderFields,
  MAX_CIPHERTEXT_POLYS,
  ObjectType,
  type SerializeOptions,
} from './format.ts';
import { open } from './header.ts';
import {
  checkNtt,
  checkPolyModuli,
  checkScaleValue,
  checkSeed,
  checkSeedStillMatches,
  domainFlag,
} from './object-checks.ts';
import { BodyReader } from './reader.ts';
import { bodyLengthOf } from './size.ts';
import { outputBytes, writeObject } from './writer.ts';

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
  const { fields, body } = ciphertextObject(ct, options);
  const out = outputBytes(HEADER_BYTES + fields.bodyLength + CHECKSUM_BYTES);
  writeObject(out, 0, fields, ct.params.context, body);
  return out;
}

/**
 * Writes the bytes {@link serializeCiphertext} returns into `out` from `offset`, and returns where they end: no
 * buffer of its own, so a server writes its results straight into a response and a writer reuses one buffer
 * (SEAL's `save` to a stream, Lattigo's `WriteTo`). `out` must hold `serializedSize(ct, options)` bytes there.
 *
 * @throws {InvalidArgumentError} when they do not fit, and as {@link serializeCiphertext}.
 * @example
 * ```ts
 * const out = new Uint8Array(serializedSize(a) + serializedSize(b));
 * writeCiphertext(b, out, writeCiphertext(a, out, 0));
 * ```
 */
export function writeCiphertext(
  ct: Ciphertext,
  out: Uint8Array,
  offset = 0,
  options: SerializeOptions = {},
): number {
  const { fields, body } = ciphertextObject(ct, options);
  const size = HEADER_BYTES + fields.bodyLength + CHECKSUM_BYTES;
  if (
    !(out instanceof Uint8Array) ||
    !Number.isSafeInteger(offset) ||
    offset < 0 ||
    offset + size > out.length
  ) {
    throw new InvalidArgumentError(
      `writeCiphertext: ${size} bytes at offset ${describe(offset)} of ${describe(out)} ${out instanceof Uint8Array ? `(${out.length} bytes)` : ''}: expected room for them`,
    );
  }
  return writeObject(out, offset, fields, ct.params.context, body);
}

/** A ciphertext's header fields and body segments, after checking it can be written as asked. */
function ciphertextObject(
  ct: Ciphertext,
  options: SerializeOptions,
): { fields: HeaderFields; body: readonly (Poly | Uint8Array)[] } {
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
  const body =
    fields.type === ObjectType.SeededCiphertext ? [ct.polys[0], (ct as SeededCiphertext).seed] : ct.polys;
  return { fields, body };
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
