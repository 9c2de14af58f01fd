import { defaultContext } from '../../ring/context.ts';
import { xxh32, Xxh32Stream } from '../../ring/hash.ts';
import { FormatError, InvalidArgumentError } from '../../util/errors.ts';
import { crc32c, idHash64 } from './checksum.ts';
import { gatherBytes } from './slow-tier.ts';
import type { ObjectId } from '../../program/access.ts';

/**
 * Bytes before an object's payload in its slow-tier file. 4 KiB keeps the payload aligned to the logical block
 * size of NVMe drives and to the 512-byte alignment O_DIRECT needs (ANCHORS §2), should direct I/O be added later.
 *
 * @example
 * ```ts
 * const fileBytes = HEADER_BYTES + payload.byteLength;
 * ```
 */
export const HEADER_BYTES = 4096;

/**
 * The object-file format version written now. Version 1 checksummed the payload with CRC32C; version 2 uses XXH32
 * (the WebAssembly SIMD kernel of `src/ring/hash.ts`, several times faster, so verification keeps up with a fast
 * drive). Both versions are read. The header itself is CRC32C-protected in both.
 *
 * @example
 * ```ts
 * if (header.version < OBJECT_FORMAT_VERSION) console.log('written by an older HomE');
 * ```
 */
export const OBJECT_FORMAT_VERSION = 2;

const MAGIC = new TextEncoder().encode('HOMEOBJ\0');
const MAX_ID_BYTES = HEADER_BYTES - 64;
const OFFSET = {
  magic: 0,
  version: 8,
  headerBytes: 12,
  idHashHigh: 16,
  idHashLow: 20,
  payloadBytes: 24,
  payloadChecksum: 32,
  idBytes: 36,
  flags: 40,
  headerCrc: 44,
  id: 48,
} as const;

/**
 * The checksum algorithm of an object file's payload, by format version.
 *
 * @example
 * ```ts
 * const algorithm: PayloadChecksumAlgorithm = payloadChecksumAlgorithm(2); // 'xxh32'
 * ```
 */
export type PayloadChecksumAlgorithm = 'crc32c' | 'xxh32';

/**
 * The payload checksum algorithm of format `version`.
 *
 * @example
 * ```ts
 * payloadChecksumAlgorithm(1); // 'crc32c'
 * ```
 */
export function payloadChecksumAlgorithm(version: number): PayloadChecksumAlgorithm {
  return version === 1 ? 'crc32c' : 'xxh32';
}

let kernelUnavailable = false;

/**
 * The payload checksum of format `version` over `bytes`: CRC32C for version 1, XXH32 for version 2 (by the SIMD
 * kernel, or by the TypeScript reference if the kernel module is not built). Runs in the I/O worker; the main
 * thread never hashes payloads.
 *
 * @example
 * ```ts
 * const checksum = payloadChecksum(payload, OBJECT_FORMAT_VERSION);
 * ```
 */
export function payloadChecksum(
  bytes: Uint8Array | readonly Uint8Array[],
  version: number = OBJECT_FORMAT_VERSION,
): number {
  const pieces: readonly Uint8Array[] = bytes instanceof Uint8Array ? [bytes] : bytes;
  if (payloadChecksumAlgorithm(version) === 'crc32c') {
    let crc = 0;
    for (const piece of pieces) crc = crc32c(crc, piece);
    return crc;
  }
  if (!kernelUnavailable) {
    let stream: Xxh32Stream;
    try {
      stream = new Xxh32Stream(defaultContext());
    } catch {
      // build/kernels.wasm missing or without the hash kernels: the reference gives the same values, slower.
      kernelUnavailable = true;
      return xxh32(pieces.length === 1 ? pieces[0] : gatherBytes(pieces));
    }
    try {
      for (const piece of pieces) stream.update(piece);
      return stream.digest();
    } finally {
      stream.dispose();
    }
  }
  // The reference hash takes one buffer (the kernel streams the pieces).
  return xxh32(pieces.length === 1 ? pieces[0] : gatherBytes(pieces));
}

/**
 * What a verified header says.
 *
 * @example
 * ```ts
 * const { version, payloadChecksum } = verifyObjectHeader(header, id, bytes, size, 'nvme0', path);
 * ```
 */
export interface ObjectHeader {
  version: number;
  payloadBytes: number;
  /** The stored payload checksum (algorithm per {@link payloadChecksumAlgorithm} of `version`). */
  payloadChecksum: number;
}

/**
 * Encodes the header of object `id` (magic `HOMEOBJ\0`, version, id hash, payload length, payload checksum, the
 * id itself, CRC32C of the header); throws {@link InvalidArgumentError} if the id does not fit.
 *
 * @example
 * ```ts
 * const header = encodeObjectHeader('ct0', payload.byteLength, payloadChecksum(payload));
 * ```
 */
export function encodeObjectHeader(
  id: ObjectId,
  payloadBytes: number,
  checksum: number,
  version: number = OBJECT_FORMAT_VERSION,
): Uint8Array {
  const idBytes = encodeObjectId(id);
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(MAGIC, OFFSET.magic);
  view.setUint32(OFFSET.version, version, true);
  view.setUint32(OFFSET.headerBytes, HEADER_BYTES, true);
  const hash = idHash64(id);
  view.setUint32(OFFSET.idHashHigh, Number.parseInt(hash.slice(0, 8), 16), true);
  view.setUint32(OFFSET.idHashLow, Number.parseInt(hash.slice(8), 16), true);
  view.setFloat64(OFFSET.payloadBytes, payloadBytes, true);
  view.setUint32(OFFSET.payloadChecksum, checksum >>> 0, true);
  view.setUint32(OFFSET.idBytes, idBytes.length, true);
  view.setUint32(OFFSET.flags, 0, true);
  header.set(idBytes, OFFSET.id);
  view.setUint32(OFFSET.headerCrc, crc32c(0, header), true);
  return header;
}

/**
 * The UTF-8 bytes of `id`; throws {@link InvalidArgumentError} if they exceed what a header can hold.
 *
 * @example
 * ```ts
 * encodeObjectId('conv1/w[0][3]').length; // 13
 * ```
 */
export function encodeObjectId(id: ObjectId): Uint8Array {
  const idBytes = new TextEncoder().encode(id);
  if (idBytes.length > MAX_ID_BYTES) {
    throw new InvalidArgumentError(
      `object id of ${idBytes.length} UTF-8 bytes: expected at most ${MAX_ID_BYTES}`,
    );
  }
  return idBytes;
}

function hex32(x: number): string {
  return x.toString(16).padStart(8, '0');
}

/**
 * Checks a header read from `path` against what the reader expects: magic, header checksum, version, id (hash and
 * text), payload length and file size. Throws {@link FormatError} naming the object and the first mismatch.
 *
 * @example
 * ```ts
 * const header = verifyObjectHeader(headerBytes, 'rk[3]', 10_485_760, fileSize, 'nvme0', path);
 * ```
 */
export function verifyObjectHeader(
  header: Uint8Array,
  id: ObjectId,
  expectedBytes: number,
  fileSize: number,
  tier: string,
  path: string,
): ObjectHeader {
  const fail = (what: string): never => {
    throw new FormatError(`object "${id}" in slow tier ${tier} (${path}): ${what}`);
  };
  if (fileSize < HEADER_BYTES)
    fail(
      `file is ${fileSize} bytes, shorter than its ${HEADER_BYTES}-byte header: expected a complete object`,
    );
  for (let i = 0; i < MAGIC.length; i++) {
    if (header[i] !== MAGIC[i]) fail('bad magic: expected a HomE object file');
  }
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const storedCrc = view.getUint32(OFFSET.headerCrc, true);
  view.setUint32(OFFSET.headerCrc, 0, true);
  const crc = crc32c(0, header);
  view.setUint32(OFFSET.headerCrc, storedCrc, true);
  if (crc !== storedCrc)
    fail(
      `header checksum mismatch (stored 0x${hex32(storedCrc)}, computed 0x${hex32(crc)}): the file is corrupted`,
    );
  const version = view.getUint32(OFFSET.version, true);
  if (version !== 1 && version !== 2) fail(`format version ${version}: expected 1 or 2`);
  const hash = idHash64(id);
  const high = hex32(view.getUint32(OFFSET.idHashHigh, true));
  const low = hex32(view.getUint32(OFFSET.idHashLow, true));
  const idLength = view.getUint32(OFFSET.idBytes, true);
  const storedId = new TextDecoder().decode(
    header.subarray(OFFSET.id, OFFSET.id + Math.min(idLength, MAX_ID_BYTES)),
  );
  if (high + low !== hash || storedId !== id) fail(`file holds object "${storedId}": expected "${id}"`);
  const length = view.getFloat64(OFFSET.payloadBytes, true);
  if (length !== expectedBytes) fail(`payload is ${length} bytes: expected ${expectedBytes}`);
  if (fileSize !== HEADER_BYTES + length) {
    fail(
      `file is ${fileSize} bytes: expected ${HEADER_BYTES + length} (header + payload); it is truncated or torn`,
    );
  }
  return { version, payloadBytes: length, payloadChecksum: view.getUint32(OFFSET.payloadChecksum, true) };
}

/**
 * Compares the payload checksum computed on read with the header's; throws {@link FormatError} naming the object.
 *
 * @example
 * ```ts
 * verifyPayloadChecksum(header, payloadChecksum(payload, header.version), 'w3', 'nvme0', path);
 * ```
 */
export function verifyPayloadChecksum(
  header: ObjectHeader,
  computed: number,
  id: ObjectId,
  tier: string,
  path: string,
): void {
  if (computed >>> 0 === header.payloadChecksum) return;
  const algorithm = payloadChecksumAlgorithm(header.version).toUpperCase();
  throw new FormatError(
    `object "${id}" in slow tier ${tier} (${path}): payload checksum mismatch (stored ${algorithm} ` +
      `0x${hex32(header.payloadChecksum)}, computed 0x${hex32(computed >>> 0)}): expected an intact copy; ` +
      'the file is corrupted',
  );
}
