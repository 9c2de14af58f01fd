/*
 * Serialization of CKKS objects and parameters. This file is the public API: import from it, not from the files
 * behind it. The byte layout is documented in format.ts.
 *
 *   format.ts          the wire format: constants, object types, flags, header offsets, header and option types
 *   size.ts            body length of each object type; serializedSize
 *   checksum.ts        the object checksum (XXH32 of the header and the body's XXH32×4 lane digests)
 *   header.ts          writing, reading (readHeader) and validating headers before a body is read
 *   writer.ts          output buffer and the shared object writer (body hashed while written)
 *   object-checks.ts   what writers check of an object before writing it
 *   reader.ts          the shared body reader (copy, hash and range-check limbs; verify; then build)
 *   ciphertext.ts      plaintexts and ciphertexts (plain and seeded)
 *   keys.ts            public and secret keys
 *   switching-keys.ts  switching (relinearization), Galois and evaluation-key sets
 *   parameters.ts      parameters
 */
export {
  deserializeCiphertext,
  deserializePlaintext,
  serializeCiphertext,
  serializePlaintext,
  writeCiphertext,
} from './ciphertext.ts';
export {
  CHECKSUM_BYTES,
  FORMAT_VERSION,
  HEADER_BYTES,
  type ObjectHeader,
  ObjectType,
  type SerializeOptions,
} from './format.ts';
export { readHeader } from './header.ts';
export {
  deserializePublicKey,
  deserializeSecretKey,
  serializePublicKey,
  serializeSecretKey,
} from './keys.ts';
export { deserializeParameters, serializeParameters } from './parameters.ts';
export { serializedSize } from './size.ts';
export {
  deserializeEvaluationKeys,
  deserializeGaloisKey,
  deserializeSwitchingKey,
  serializeEvaluationKeys,
  serializeGaloisKey,
  serializeSwitchingKey,
} from './switching-keys.ts';
