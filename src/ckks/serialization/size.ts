/*
 * Sizes: the body length each object type implies (the body table of the format comment in format.ts) and the
 * exact size of a serialized object.
 */
import { SEED_BYTES } from '../../ring/prng.ts';
import { describe } from '../../util/assert.ts';
import { InvalidArgumentError } from '../../util/errors.ts';
import { SeededCiphertext } from '../encryptor.ts';
import { EvaluationKeys, GaloisKey, PublicKey, SecretKey, SwitchingKey } from '../keys.ts';
import { Ciphertext, Plaintext } from '../objects.ts';
import { Parameters } from '../parameters.ts';
import {
  CHECKSUM_BYTES,
  HEADER_BYTES,
  ObjectType,
  PARAMETERS_BODY_BYTES,
  type SerializeOptions,
} from './format.ts';

function qpLimbs(params: Parameters): number {
  return params.qPrimes.length + params.pPrimes.length;
}

/** Bytes of one key polynomial of a key made for `level` (over Q_level ∪ P). */
function keyPolyBytesAt(params: Parameters, level: number): number {
  return (params.limbsAtLevel(level) + params.pPrimes.length) * params.n * 4;
}

/**
 * The body length in bytes of an object of `type` at `level` with `count` items (polynomials, digits or keys),
 * seeded or not: what a writer must write and what a reader requires the header to declare.
 *
 * @example
 * ```ts
 * const bodyLength = bodyLengthOf(params, ObjectType.Ciphertext, ct.level, ct.polys.length, false);
 * ```
 */
export function bodyLengthOf(
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
      return count * (seeded ? 1 : 2) * keyPolyBytesAt(params, level) + SEED_BYTES;
    case ObjectType.EvaluationKeys:
      // A set whose keys are all made for the top level; keys made for lower levels are smaller (the header's
      // body length is then the sum of its entries, see evaluationKeysBodyRange).
      return count * switchingKeyObjectBytes(params, seeded);
    case ObjectType.SecretKey:
      return keyPolyBytes;
    case ObjectType.Parameters:
      return PARAMETERS_BODY_BYTES;
  }
}

/**
 * Bytes of one complete switching-key or Galois-key object (header, body, checksum): the stride of the entries
 * of an evaluation-key set.
 *
 * @example
 * ```ts
 * const entry = bytes.subarray(HEADER_BYTES + i * switchingKeyObjectBytes(params, seeded));
 * ```
 */
export function switchingKeyObjectBytes(
  params: Parameters,
  seeded: boolean,
  level: number = params.depth,
): number {
  return (
    HEADER_BYTES +
    bodyLengthOf(params, ObjectType.SwitchingKey, level, params.keyDigitsAtLevel(level), seeded) +
    CHECKSUM_BYTES
  );
}

/**
 * The body lengths an evaluation-key set of `count` keys may declare: from every key made for level 0 to every
 * key made for the top level (the exact length is the sum of its entries, checked as they are read).
 *
 * @example
 * ```ts
 * const [low, high] = evaluationKeysBodyRange(params, header.count, header.seeded);
 * ```
 */
export function evaluationKeysBodyRange(
  params: Parameters,
  count: number,
  seeded: boolean,
): [number, number] {
  return [
    count * switchingKeyObjectBytes(params, seeded, 0),
    count * switchingKeyObjectBytes(params, seeded),
  ];
}

/**
 * The keys of an evaluation-key set in the order they are serialized: the relinearization key (if any) first,
 * then the Galois keys.
 *
 * @example
 * ```ts
 * const count = evaluationKeyList(evk).length; // the header's count
 * ```
 */
export function evaluationKeyList(evk: EvaluationKeys): SwitchingKey[] {
  const keys: SwitchingKey[] = [];
  if (evk.relinearization) keys.push(evk.relinearization);
  for (const g of evk.galois.values()) keys.push(g.key);
  return keys;
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
    return whole(object.params, ObjectType.SwitchingKey, object.level, object.digits.length);
  }
  if (object instanceof GaloisKey) return serializedSize(object.key, options);
  if (object instanceof SecretKey) return whole(object.params, ObjectType.SecretKey, object.params.depth, 1);
  if (object instanceof EvaluationKeys) {
    const keys = evaluationKeyList(object);
    if (keys.length === 0) {
      throw new InvalidArgumentError('evaluation keys: the set is empty: expected at least one key');
    }
    let body = 0;
    for (const key of keys) body += switchingKeyObjectBytes(key.params, seeded, key.level);
    return HEADER_BYTES + body + CHECKSUM_BYTES;
  }
  throw new InvalidArgumentError(`object = ${describe(object)}: expected a CKKS object or Parameters`);
}
