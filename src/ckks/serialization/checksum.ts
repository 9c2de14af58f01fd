import type { KernelContext } from '../../ring/context.ts';
/*
 * The object checksum (XXH32 of the header and the four XXH32×4 lane digests of the body; see the format comment
 * in format.ts): computing it and comparing it with the stored one.
 */
import { type Xxh32x4Digests, Xxh32x4Stream, xxh32, xxh32x4 } from '../../ring/hash.ts';
import { CHECKSUM_BYTES, formatError, HEADER_BYTES, type ObjectHeader } from './format.ts';

/**
 * The XXH32 seed of both checksums (and of every lane).
 *
 * @example
 * ```ts
 * const headerChecksum = xxh32(header.subarray(0, 44), CHECKSUM_SEED);
 * ```
 */
export const CHECKSUM_SEED = 0;

/** Below this many bytes a JavaScript byte range is hashed by the TypeScript XXH32×4, above by the kernel. */
const KERNEL_HASH_MIN_BYTES = 4096;

/** Bytes of the input of the final XXH32 of the object checksum: the header and the four lane digests. */
const CHECKSUM_INPUT_BYTES = HEADER_BYTES + 16;

/**
 * The object checksum of the format from the 48 header bytes and the lane digests of the body: XXH32 of
 * header ‖ d0 ‖ d1 ‖ d2 ‖ d3.
 *
 * @example
 * ```ts
 * const checksum = combineChecksum(header, lanes.digests());
 * ```
 */
export function combineChecksum(header: Uint8Array, digests: Xxh32x4Digests): number {
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

/**
 * The checksum stored after the body of the object `header` describes.
 *
 * @example
 * ```ts
 * checkChecksum(header.typeName, storedChecksum(bytes, header), computed);
 * ```
 */
export function storedChecksum(bytes: Uint8Array, header: ObjectHeader): number {
  const at = HEADER_BYTES + header.bodyLength;
  return new DataView(bytes.buffer, bytes.byteOffset + at, CHECKSUM_BYTES).getUint32(0, true);
}

/**
 * Throws a FormatError unless the stored and computed object checksums are equal.
 *
 * @example
 * ```ts
 * checkChecksum('ciphertext', storedChecksum(bytes, header), combineChecksum(headerBytes, lanes.digests()));
 * ```
 */
export function checkChecksum(typeName: string, stored: number, computed: number): void {
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
 *
 * @example
 * ```ts
 * verifyWholeChecksum(bytes, header, params.context); // before any entry of an evaluation-key set is parsed
 * ```
 */
export function verifyWholeChecksum(bytes: Uint8Array, header: ObjectHeader, context: KernelContext): void {
  const body = bytes.subarray(HEADER_BYTES, HEADER_BYTES + header.bodyLength);
  const computed = checksumOf(bytes.subarray(0, HEADER_BYTES), body, context);
  checkChecksum(header.typeName, storedChecksum(bytes, header), computed);
}
