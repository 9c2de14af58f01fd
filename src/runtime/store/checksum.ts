/*
 * Checksums of the runtime. CRC32C protects object-file headers (and the payloads of format-1 files); it is the one
 * implementation of src/util/checksum.ts, re-exported here so runtime callers keep one import. Payloads of current
 * files use XXH32 (src/ring/hash.ts), hashed in the I/O worker.
 */

export { crc32c } from '../../util/checksum.ts';

/**
 * A 64-bit FNV-1a hash of a string's UTF-8 bytes, returned as 16 hex digits. It names object files and is stored
 * in each object header so a file cannot be mistaken for another object's; it is not a security hash.
 *
 * @example
 * ```ts
 * const fileStem = idHash64('conv1/w[0][3]'); // e.g. 'a1b2c3d4e5f60718'
 * ```
 */
export function idHash64(id: string): string {
  const bytes = new TextEncoder().encode(id);
  // 64-bit FNV-1a with the state split into 16-bit limbs, since the multiply needs 80 bits of exact arithmetic.
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  for (let i = 0; i < bytes.length; i++) {
    h0 ^= bytes[i];
    // Multiply by the FNV prime 0x100000001B3 = 2^40 + 0x1B3 in 16-bit limbs.
    const a0 = h0 * 0x1b3;
    const a1 = h1 * 0x1b3;
    const a2 = h2 * 0x1b3;
    const a3 = h3 * 0x1b3;
    // 2^40 shifts limb 0 into limb 2 (<< 8) and limb 1 into limb 3 (<< 8).
    const r0 = a0;
    const r1 = a1 + (r0 >>> 16);
    const r2 = a2 + (h0 << 8) + (r1 >>> 16);
    const r3 = a3 + (h1 << 8) + (r2 >>> 16);
    h0 = r0 & 0xffff;
    h1 = r1 & 0xffff;
    h2 = r2 & 0xffff;
    h3 = r3 & 0xffff;
  }
  const hex = (x: number) => x.toString(16).padStart(4, '0');
  return hex(h3) + hex(h2) + hex(h1) + hex(h0);
}
