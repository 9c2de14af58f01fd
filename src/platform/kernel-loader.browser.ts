/**
 * The kernel loader for browsers and other non-Node hosts (the `default` condition of the `#kernel-loader` import
 * in package.json): fetches `build/kernels.wasm` relative to this module, as bundlers that understand
 * `new URL(…, import.meta.url)` (Vite, webpack, Parcel) expect. Browsers compile WebAssembly asynchronously, so
 * there is no synchronous read: call `await loadKernels()` (or pass bytes to it) before the first use.
 */

/**
 * Where the kernels are, relative to this module.
 *
 * @example
 * ```ts
 * console.log(KERNEL_URL.href);
 * ```
 */
export const KERNEL_URL: URL = new URL('../../build/kernels.wasm', import.meta.url);

/**
 * No synchronous read in a browser: always `undefined`.
 *
 * @example
 * ```ts
 * readKernelBytesSync(); // undefined
 * ```
 */
export function readKernelBytesSync(): Uint8Array | undefined {
  return undefined;
}

/**
 * The kernel bytes, fetched from {@link KERNEL_URL}.
 *
 * @example
 * ```ts
 * const bytes = await readKernelBytes();
 * ```
 */
export async function readKernelBytes(): Promise<Uint8Array> {
  const response = await fetch(KERNEL_URL);
  if (!response.ok) throw new Error(`fetching ${KERNEL_URL.href}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}
