/**
 * Kernel threads in Node (the `node` condition of the `#kernel-threads` import in package.json): each thread is
 * a `worker_threads` Worker that evaluates the thread body's source text (no module to load, so it starts the
 * same from the compiled package and from the TypeScript sources). The threads are unreferenced: an idle pool
 * never keeps the process alive.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** A started kernel thread. */
export interface KernelThreadHandle {
  /** Lets the thread end (it has been told to stop). */
  release(): void;
}

/**
 * Starts a thread running `(source)(init)`, where `source` is a self-contained function's text.
 *
 * @example
 * ```ts
 * const handle = startKernelThread(kernelThreadMain.toString(), init, 1);
 * ```
 */
export function startKernelThread(source: string, init: object, index: number): KernelThreadHandle {
  const worker = new Worker(`(${source})(require('node:worker_threads').workerData);`, {
    eval: true,
    name: `home-kernel-${index}`,
    workerData: init,
  });
  worker.unref();
  return {
    release() {
      void worker.terminate();
    },
  };
}

/**
 * The cores this process may use (Node's `availableParallelism`: the CPU affinity mask, not the machine's count).
 *
 * @example
 * ```ts
 * const threads = availableCores();
 * ```
 */
export function availableCores(): number {
  return availableParallelism();
}
