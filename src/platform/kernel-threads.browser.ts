/**
 * Kernel threads in browsers (the `default` condition of the `#kernel-threads` import in package.json): each
 * thread is a Web Worker made from the thread body's source text (a Blob URL, so no file has to be served beside
 * the bundle), handed its kernels and shared memory by `postMessage`. Shared memory needs a cross-origin-isolated
 * page (COOP/COEP headers); without it `SharedArrayBuffer` is missing and a context runs on one thread.
 */

/** A started kernel thread. */
export interface KernelThreadHandle {
  /** Lets the thread end (it has been told to stop). */
  release(): void;
}

/**
 * Starts a Web Worker running `(source)(init)`, where `source` is a self-contained function's text.
 *
 * @example
 * ```ts
 * const handle = startKernelThread(kernelThreadMain.toString(), init, 1);
 * ```
 */
export function startKernelThread(source: string, init: object, index: number): KernelThreadHandle {
  const text = `onmessage = (event) => { onmessage = null; (${source})(event.data); };`;
  const url = URL.createObjectURL(new Blob([text], { type: 'text/javascript' }));
  const worker = new Worker(url, { name: `home-kernel-${index}` });
  worker.postMessage(init);
  URL.revokeObjectURL(url);
  return {
    release() {
      worker.terminate();
    },
  };
}

/**
 * The cores the browser reports (`navigator.hardwareConcurrency`), 1 where threads are unavailable (a page that is
 * not cross-origin isolated has no `SharedArrayBuffer`).
 *
 * @example
 * ```ts
 * const threads = availableCores();
 * ```
 */
export function availableCores(): number {
  if (typeof SharedArrayBuffer === 'undefined' || typeof Worker === 'undefined') return 1;
  const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency;
  return typeof cores === 'number' && cores >= 1 ? cores : 1;
}
