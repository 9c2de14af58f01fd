/**
 * CRC32C (Castagnoli polynomial, reflected form 0x82F63B78) for integrity checks of serialized objects. CRC32C
 * rather than a simple sum because it detects every error burst of up to 32 bits and every odd number of flipped
 * bits; it is the CRC of iSCSI and ext4, so values can be cross-checked with standard tools.
 *
 * The bulk loop is "slicing-by-8": eight 256-entry tables let each iteration fold 8 bytes with independent
 * lookups instead of a chain of 8 dependent ones (about 4× the bytewise speed in V8).
 */

const REFLECTED_POLYNOMIAL = 0x82f63b78;
const SLICES = 8;
const TABLES = buildTables();
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function buildTables(): Int32Array {
  const tables = new Int32Array(SLICES * 256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = (crc >>> 1) ^ (REFLECTED_POLYNOMIAL & -(crc & 1));
    tables[byte] = crc;
  }
  // Table k advances a byte that sits k positions before the end of the 8-byte block.
  for (let k = 1; k < SLICES; k++) {
    for (let byte = 0; byte < 256; byte++) {
      const previous = tables[(k - 1) * 256 + byte];
      tables[k * 256 + byte] = (previous >>> 8) ^ tables[previous & 0xff];
    }
  }
  return tables;
}

/**
 * Continues a CRC32C over `bytes`. Pass 0 to start; chunks fed in order give the CRC of their concatenation.
 *
 * @param previous - the CRC32C of the bytes before `bytes` (0 for none).
 * @param bytes - the next bytes.
 * @returns the CRC32C of all bytes so far, as an unsigned 32-bit integer.
 * @example
 * ```ts
 * crc32c(0, new TextEncoder().encode('123456789')); // 0xe3069283
 * const joined = crc32c(crc32c(0, head), tail); // === crc32c(0, concatenation of head and tail)
 * ```
 */
export function crc32c(previous: number, bytes: Uint8Array): number {
  const t = TABLES;
  let crc = ~previous;
  const length = bytes.length;
  let i = 0;
  // Bytewise up to a 4-byte boundary of the buffer, so the bulk loop can read aligned 32-bit words.
  while (i < length && ((bytes.byteOffset + i) & 3) !== 0) crc = t[(crc ^ bytes[i++]) & 0xff] ^ (crc >>> 8);
  const blocks = (length - i) >>> 3;
  if (HOST_LITTLE_ENDIAN && blocks > 0) {
    const words = new Int32Array(bytes.buffer, bytes.byteOffset + i, blocks * 2);
    for (let w = 0; w < words.length; w += 2) {
      const low = words[w] ^ crc;
      const high = words[w + 1];
      crc =
        t[1792 + (low & 0xff)] ^
        t[1536 + ((low >>> 8) & 0xff)] ^
        t[1280 + ((low >>> 16) & 0xff)] ^
        t[1024 + (low >>> 24)] ^
        t[768 + (high & 0xff)] ^
        t[512 + ((high >>> 8) & 0xff)] ^
        t[256 + ((high >>> 16) & 0xff)] ^
        t[high >>> 24];
    }
    i += blocks * 8;
  }
  while (i < length) crc = t[(crc ^ bytes[i++]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}
