/*
 * The public key (plain, or b and the seed of a) and the secret key (for the client's local storage only).
 */
import { describe } from '../../util/assert.ts';
import { InvalidArgumentError } from '../../util/errors.ts';
import { PublicKey, SecretKey } from '../keys.ts';
import type { Parameters } from '../parameters.ts';
import {
  CHECKSUM_BYTES,
  FLAG_NTT,
  FLAG_SEEDED,
  HEADER_BYTES,
  type HeaderFields,
  ObjectType,
  type SerializeOptions,
} from './format.ts';
import { open } from './header.ts';
import { checkNtt, checkPolyModuli, checkSeed, checkSeedStillMatches } from './object-checks.ts';
import { BodyReader } from './reader.ts';
import { bodyLengthOf } from './size.ts';
import { outputBytes, writeObject } from './writer.ts';

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
