/**
 * What a kernel thread runs. The function is sent to the thread as source text (`kernelThreadMain.toString()`), so
 * a thread starts without loading any module (no loader, no TypeScript hooks, the same text for Node's
 * `worker_threads` and a browser's Web Worker): it must not refer to anything outside its own body.
 *
 * The thread instantiates the kernels over the shared memory of its {@link KernelContext}, then loops: wait for a
 * new batch (spinning briefly before sleeping in `Atomics.wait`, since batches arrive back to back while an
 * operation runs), claim tasks one at a time with a compare-and-swap on the claim word, run each task's commands in
 * order, count it done. Each thread first takes the tasks of its own share of the batch (thread t of T: tasks
 * [t·count/T, (t+1)·count/T)), so that batches that follow each other (NTT, product, inverse NTT of the same limbs)
 * find their limbs in the same core's cache; a thread done with its share takes what is left of the others'.
 * The layout of the control words is in threads.ts.
 */

/** What the pool hands a new thread. */
export interface KernelThreadInit {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  readonly tasks: SharedArrayBuffer;
  readonly commands: SharedArrayBuffer;
  /** Kernel export names by opcode. */
  readonly names: readonly string[];
  /** Words of one command: opcode and arguments. */
  readonly stride: number;
  /** Polls of the batch word before sleeping. */
  readonly spins: number;
  /** Threads taking part, the calling one included. */
  readonly threads: number;
  /** This thread's number (1 …): it starts with that share of a batch's tasks. */
  readonly index: number;
}

/**
 * The body of a kernel thread (self-contained: see the module comment).
 *
 * @example
 * ```ts
 * const source = `(${kernelThreadMain.toString()})(init)`;
 * ```
 */
export function kernelThreadMain(init: KernelThreadInit): void {
  // Control words (threads.ts): 0 batch number, 1 task count, 2 tasks done, 3 stop, 4 failures, 5 threads
  // started, 6 tasks run by kernel threads; from 8, one claim word per thread's share: the batch number (11 bits)
  // over the next task (20 bits).
  const BATCH = 0;
  const COUNT = 1;
  const DONE = 2;
  const STOP = 3;
  const FAILED = 4;
  const STARTED = 5;
  const RUN_HERE = 6;
  const CLAIMS = 8;
  const INDEX_MASK = (1 << 20) - 1;
  const instance = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
  const exports = instance.exports as Record<string, (...args: number[]) => unknown>;
  const kernels = init.names.map((name) => exports[name]);
  const control = new Int32Array(init.control);
  const tasks = new Int32Array(init.tasks);
  const commands = new Float64Array(init.commands);
  const stride = init.stride;
  const threads = init.threads;
  let seen = Atomics.load(control, BATCH);
  Atomics.add(control, STARTED, 1);
  for (;;) {
    let polls = 0;
    while (Atomics.load(control, BATCH) === seen) {
      if (++polls >= init.spins) {
        Atomics.wait(control, BATCH, seen);
        polls = 0;
      }
    }
    if (Atomics.load(control, STOP) !== 0) return;
    seen = Atomics.load(control, BATCH);
    for (let k = 0; k < threads; k++) {
      const share = (init.index + k) % threads;
      for (;;) {
        const claim = Atomics.load(control, CLAIMS + share);
        const count = Atomics.load(control, COUNT);
        const index = claim & INDEX_MASK;
        if (index >= Math.floor(((share + 1) * count) / threads)) break;
        if (Atomics.compareExchange(control, CLAIMS + share, claim, claim + 1) !== claim) continue;
        try {
          for (let c = tasks[2 * index] * stride, end = tasks[2 * index + 1] * stride; c < end; c += stride) {
            kernels[commands[c]](
              commands[c + 1],
              commands[c + 2],
              commands[c + 3],
              commands[c + 4],
              commands[c + 5],
              commands[c + 6],
              commands[c + 7],
              commands[c + 8],
            );
          }
        } catch {
          Atomics.add(control, FAILED, 1);
        }
        Atomics.add(control, RUN_HERE, 1);
        Atomics.add(control, DONE, 1);
      }
    }
  }
}
