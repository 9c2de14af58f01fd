/**
 * The kernel loader for Node (the `node` condition of the `#kernel-loader` import in package.json): reads the
 * WebAssembly kernels the package ships at `build/kernels.wasm` from the file system. It is the only place the core
 * reaches Node's file system, and it is chosen by export conditions, so a browser bundle never sees it.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * Where the kernels are: `build/kernels.wasm` of the package (two levels above `src/platform` and
 * `dist/platform` alike).
 *
 * @example
 * ```ts
 * console.log(KERNEL_URL.href);
 * ```
 */
export const KERNEL_URL: URL = new URL('../../build/kernels.wasm', import.meta.url);

/**
 * The kernel bytes, read synchronously (Node compiles them synchronously; contexts can be made on demand).
 *
 * @example
 * ```ts
 * const bytes = readKernelBytesSync();
 * ```
 */
export function readKernelBytesSync(): Uint8Array | undefined {
  return readFileSync(KERNEL_URL);
}

/**
 * The kernel bytes, read asynchronously.
 *
 * @example
 * ```ts
 * const bytes = await readKernelBytes();
 * ```
 */
export async function readKernelBytes(): Promise<Uint8Array> {
  return readFile(KERNEL_URL);
}
