/**
 * `.npy` files built in code for the loader and CLI tests.
 */

/**
 * The bytes of an `.npy` file: header dict for `descr` and `shape` (version 1 or 2, C or Fortran order) padded to
 * 64 bytes, then `body` as given.
 *
 * @example
 * ```ts
 * const bytes = npyBytes('|u1', [2, 1, 6, 6], new Uint8Array(72).fill(200));
 * ```
 */
export function npyBytes(
  descr: string,
  shape: readonly number[],
  body: Uint8Array,
  version = 1,
  fortran = false,
): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const prefix = version === 1 ? 10 : 12;
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const header = `${dict}${' '.repeat(total - prefix - dict.length - 1)}\n`;
  const out = new Uint8Array(total + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(new TextEncoder().encode(header), prefix);
  out.set(body, total);
  return out;
}
