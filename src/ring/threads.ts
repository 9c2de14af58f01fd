import { startKernelThread, type KernelThreadHandle } from '#kernel-threads';
import { assertInteger } from '../util/assert.ts';
import { ResourceError } from '../util/errors.ts';
import type { KernelExports } from './kernels.ts';
import { type KernelThreadInit, kernelThreadMain } from './thread-main.ts';

/**
 * Kernel threads: a pool of worker threads (Node `worker_threads`, a browser's Web Workers) that compute on the
 * shared memory of one {@link KernelContext}. The calling thread stays in charge of everything but the kernels:
 * it allocates, computes pointers and constants, and records kernel calls into a {@link KernelBatch} of
 * independent tasks (e.g. one per RNS limb); `run()` hands the tasks out to the pool's threads and to itself and
 * returns when all are done, so every operation stays synchronous and its results are the same bits as on one
 * thread (each task runs the same kernels on the same words, in the same order).
 *
 * Why this granularity: the kernels are where the time goes and they only touch the memory they are pointed at,
 * while the object graph (allocators, parameters, keys) stays on one thread and needs no locks. Batches are small
 * (a few to a few thousand tasks) and come back to back, so threads spin a little before they sleep.
 */

/** The kernels a task may call (everything but those that return a value to the caller). */
export type TaskKernels = Omit<KernelExports, 'crtCandidate'>;

/** Kernel names by opcode (the thread looks them up in its own instance). */
const KERNEL_NAMES = [
  'nttForward',
  'nttInverse',
  'add',
  'sub',
  'neg',
  'mul',
  'mulAdd',
  'mulSub',
  'mulScalar',
  'mulScalarAdd',
  'subMulScalar',
  'addScalar',
  'liftCentered',
  'permute',
  'copy',
  'fill',
  'fromSigned',
  'overflowCount',
  'subMulScalarSmall',
  'innerProduct2',
  'mulScalarMatrix',
] as const satisfies readonly (keyof TaskKernels)[];

/** The opcode of each kernel: its index in {@link KERNEL_NAMES}, the table the threads look kernels up in. */
const OPCODE = Object.fromEntries(KERNEL_NAMES.map((name, op) => [name, op])) as Record<
  (typeof KERNEL_NAMES)[number],
  number
>;

/** Opcode and up to eight arguments. */
const STRIDE = 9;
/** Commands one batch holds before it runs what it has (a batch of more simply runs in parts). */
const COMMAND_CAPACITY = 1 << 16;
const TASK_CAPACITY = 1 << 15;
/**
 * Control words (see thread-main.ts): the batch number (threads wait on it), the task count, tasks done, stop,
 * failures, threads started, tasks run by the kernel threads, then from {@link CLAIMS} one claim word per thread's share of the tasks: the batch
 * number over the next unclaimed task. A claim is a compare-and-swap on that word, so a thread still looking at a
 * finished batch can never take a task of the next one (the word has changed), and between batches every claim
 * word says "nothing left" while the tables are rewritten.
 */
const BATCH = 0;
const COUNT = 1;
const DONE = 2;
const STOP = 3;
const FAILED = 4;
const CLAIMS = 8;
const INDEX_BITS = 20;
const INDEX_MASK = (1 << INDEX_BITS) - 1;
/** Polls of the batch word before a thread sleeps (a few tens of microseconds). */
const SPINS = 20000;
/** A batch smaller than this many words of kernel work runs on the calling thread alone. */
export const MIN_PARALLEL_WORDS = 1 << 15;
/** Without progress for this long, a batch gives up (a thread died): a hang would be worse than an error. */
const STALL_MS = 120_000;

/**
 * Records kernel calls as commands of the current task; the pool runs them later.
 */
class CommandRecorder {
  readonly #pool: KernelThreadPool;
  readonly #commands: Float64Array;
  cursor = 0;

  constructor(pool: KernelThreadPool, commands: Float64Array) {
    this.#pool = pool;
    this.#commands = commands;
  }

  #push(op: number, a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0): void {
    if (this.cursor === COMMAND_CAPACITY) this.#pool.runFull();
    const w = this.#commands;
    let o = this.cursor * STRIDE;
    w[o++] = op;
    w[o++] = a;
    w[o++] = b;
    w[o++] = c;
    w[o++] = d;
    w[o++] = e;
    w[o++] = f;
    w[o++] = g;
    w[o] = h;
    this.cursor++;
  }

  nttForward(a: number, n: number, p: number, tw: number, twShoup: number): void {
    this.#push(OPCODE.nttForward, a, n, p, tw, twShoup);
  }
  nttInverse(
    a: number,
    n: number,
    p: number,
    itw: number,
    itwShoup: number,
    nInv: number,
    nInvShoup: number,
  ): void {
    this.#push(OPCODE.nttInverse, a, n, p, itw, itwShoup, nInv, nInvShoup);
  }
  add(out: number, a: number, b: number, n: number, p: number): void {
    this.#push(OPCODE.add, out, a, b, n, p);
  }
  sub(out: number, a: number, b: number, n: number, p: number): void {
    this.#push(OPCODE.sub, out, a, b, n, p);
  }
  neg(out: number, a: number, n: number, p: number): void {
    this.#push(OPCODE.neg, out, a, n, p);
  }
  mul(out: number, a: number, b: number, n: number, p: number, mu: number): void {
    this.#push(OPCODE.mul, out, a, b, n, p, mu);
  }
  mulAdd(out: number, a: number, b: number, n: number, p: number, mu: number): void {
    this.#push(OPCODE.mulAdd, out, a, b, n, p, mu);
  }
  mulSub(out: number, a: number, b: number, n: number, p: number, mu: number): void {
    this.#push(OPCODE.mulSub, out, a, b, n, p, mu);
  }
  mulScalar(out: number, a: number, n: number, p: number, w: number, ws: number): void {
    this.#push(OPCODE.mulScalar, out, a, n, p, w, ws);
  }
  mulScalarAdd(out: number, a: number, n: number, p: number, w: number, ws: number): void {
    this.#push(OPCODE.mulScalarAdd, out, a, n, p, w, ws);
  }
  subMulScalar(out: number, a: number, b: number, n: number, p: number, w: number, ws: number): void {
    this.#push(OPCODE.subMulScalar, out, a, b, n, p, w, ws);
  }
  addScalar(out: number, a: number, n: number, p: number, c: number): void {
    this.#push(OPCODE.addScalar, out, a, n, p, c);
  }
  liftCentered(out: number, a: number, n: number, pFrom: number, pTo: number, negFrom: number): void {
    this.#push(OPCODE.liftCentered, out, a, n, pFrom, pTo, negFrom);
  }
  permute(out: number, a: number, index: number, n: number): void {
    this.#push(OPCODE.permute, out, a, index, n);
  }
  copy(out: number, a: number, n: number): void {
    this.#push(OPCODE.copy, out, a, n);
  }
  fill(out: number, n: number, v: number): void {
    this.#push(OPCODE.fill, out, n, v);
  }
  fromSigned(out: number, a: number, n: number, p: number): void {
    this.#push(OPCODE.fromSigned, out, a, n, p);
  }
  overflowCount(u: number, t: number, n: number, K: number, inverses: number, stride: number): void {
    this.#push(OPCODE.overflowCount, u, t, n, K, inverses, stride);
  }
  subMulScalarSmall(out: number, u: number, n: number, p: number, w: number, ws: number): void {
    this.#push(OPCODE.subMulScalarSmall, out, u, n, p, w, ws);
  }
  innerProduct2(
    out0: number,
    out1: number,
    table: number,
    count: number,
    n: number,
    p: number,
    mu: number,
    c32: number,
  ): void {
    this.#push(OPCODE.innerProduct2, out0, out1, table, count, n, p, mu, c32);
  }
  mulScalarMatrix(
    ptrs: number,
    w: number,
    m: number,
    k: number,
    offset: number,
    length: number,
    p: number,
    stage: number,
  ): void {
    this.#push(OPCODE.mulScalarMatrix, ptrs, w, m, k, offset, length, p, stage);
  }
}

/**
 * Independent tasks of kernel calls. `task()` starts a task and returns where to call its kernels; `run()` runs
 * every task recorded and returns when they are done. Tasks must not write what another task of the batch reads
 * or writes (they may run in any order, at once); the calls of one task run in the order made.
 *
 * On one thread (or for a batch too small to share) `task()` returns the kernels themselves, so the calls run at
 * once, in order, and `run()` does nothing.
 *
 * @example
 * ```ts
 * const batch = context.batch(poly.n * poly.limbCount);
 * for (let i = 0; i < poly.limbCount; i++) batch.task().nttForward(poly.limbPointer(i), n, p, tw, twShoup);
 * batch.run();
 * ```
 */
export interface KernelBatch {
  task(): TaskKernels;
  run(): void;
}

/** The batch of a context without threads: calls run at once. */
export class InlineBatch implements KernelBatch {
  readonly #kernels: TaskKernels;
  constructor(kernels: TaskKernels) {
    this.#kernels = kernels;
  }
  task(): TaskKernels {
    return this.#kernels;
  }
  run(): void {}
}

class PooledBatch implements KernelBatch {
  readonly #pool: KernelThreadPool;
  constructor(pool: KernelThreadPool) {
    this.#pool = pool;
  }
  task(): TaskKernels {
    return this.#pool.startTask();
  }
  run(): void {
    this.#pool.finishBatch();
  }
}

/** What a pool needs of its context. */
export interface ThreadedMemory {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly exports: KernelExports;
}

/**
 * `threads − 1` kernel threads plus the calling thread over one context's memory, started on first use.
 *
 * @example
 * ```ts
 * const pool = new KernelThreadPool(context, 2);
 * ```
 */
export class KernelThreadPool {
  readonly threads: number;
  readonly #target: ThreadedMemory;
  readonly #control: Int32Array;
  readonly #tasks = new Int32Array(new SharedArrayBuffer(TASK_CAPACITY * 2 * 4));
  readonly #commands = new Float64Array(new SharedArrayBuffer(COMMAND_CAPACITY * STRIDE * 8));
  readonly #recorder: CommandRecorder;
  readonly #batch: PooledBatch;
  /** The calling thread's kernels by opcode. */
  readonly #kernels: ((...args: number[]) => unknown)[];
  #handles: KernelThreadHandle[] = [];
  #taskCount = 0;
  #recording = false;
  #batchNumber = 0;
  #closed = false;

  constructor(target: ThreadedMemory, threads: number) {
    assertInteger(threads, 'threads', 2, 1024);
    this.threads = threads;
    this.#target = target;
    this.#recorder = new CommandRecorder(this, this.#commands);
    const exports = target.exports as unknown as Record<string, (...args: number[]) => unknown>;
    this.#kernels = KERNEL_NAMES.map((name) => exports[name]);
    this.#batch = new PooledBatch(this);
    this.#control = new Int32Array(new SharedArrayBuffer((CLAIMS + threads) * 4));
    this.#closeClaims();
  }

  #closeClaims(): void {
    for (let t = 0; t < this.threads; t++) Atomics.store(this.#control, CLAIMS + t, INDEX_MASK);
  }

  /** A batch for `words` words of kernel work: pooled if there is enough to share and no batch is being recorded. */
  batch(words: number, inline: KernelBatch): KernelBatch {
    if (this.#closed || this.#recording || words < MIN_PARALLEL_WORDS) return inline;
    this.#recording = true;
    this.#taskCount = 0;
    this.#recorder.cursor = 0;
    return this.#batch;
  }

  /** Ends the current task (if any) and starts the next. */
  startTask(): TaskKernels {
    if (!this.#recording) throw new ResourceError('KernelBatch.task: the batch has already run');
    this.#closeTask();
    if (this.#taskCount === TASK_CAPACITY) this.#runTasks();
    this.#tasks[2 * this.#taskCount] = this.#recorder.cursor;
    this.#tasks[2 * this.#taskCount + 1] = -1;
    this.#taskCount++;
    return this.#recorder;
  }

  #closeTask(): void {
    if (this.#taskCount > 0 && this.#tasks[2 * this.#taskCount - 1] < 0) {
      this.#tasks[2 * this.#taskCount - 1] = this.#recorder.cursor;
    }
  }

  /** The command buffer is full: run what is recorded; the open task goes on in a task of its own. */
  runFull(): void {
    this.#closeTask();
    this.#runTasks();
    this.#tasks[0] = 0;
    this.#tasks[1] = -1;
    this.#taskCount = 1;
  }

  finishBatch(): void {
    if (!this.#recording) return;
    this.#closeTask();
    try {
      this.#runTasks();
    } finally {
      this.#recording = false;
    }
  }

  /** Runs the recorded tasks on the pool and the calling thread; returns when all are done. */
  #runTasks(): void {
    const count = this.#taskCount;
    const commands = this.#recorder.cursor;
    this.#taskCount = 0;
    this.#recorder.cursor = 0;
    if (count === 0) return;
    const control = this.#control;
    if (count === 1 || commands < 2) {
      this.#runInline(0, count);
      return;
    }
    this.#start();
    const batch = (this.#batchNumber = (this.#batchNumber + 1) & 0x7ff);
    Atomics.store(control, DONE, 0);
    Atomics.store(control, FAILED, 0);
    Atomics.store(control, COUNT, count);
    const threads = this.threads;
    for (let t = 0; t < threads; t++) {
      Atomics.store(control, CLAIMS + t, (batch << INDEX_BITS) | Math.floor((t * count) / threads));
    }
    Atomics.add(control, BATCH, 1);
    Atomics.notify(control, BATCH);
    let failure: unknown;
    // The calling thread is thread 0: its own share first, then what the others have left.
    for (let share = 0; share < threads; share++) {
      const end = Math.floor(((share + 1) * count) / threads);
      for (;;) {
        const claim = Atomics.load(control, CLAIMS + share);
        const index = claim & INDEX_MASK;
        if (index >= end) break;
        if (Atomics.compareExchange(control, CLAIMS + share, claim, claim + 1) !== claim) continue;
        try {
          this.#runTask(index);
        } catch (error) {
          failure ??= error;
        }
        Atomics.add(control, DONE, 1);
      }
    }
    let done = Atomics.load(control, DONE);
    let since = 0;
    let polls = 0;
    while (done < count) {
      if (++polls === 4096) {
        polls = 0;
        const now = Date.now();
        if (since === 0) since = now;
        else if (now - since > STALL_MS) {
          this.close();
          throw new ResourceError(
            `kernel threads: ${count - done} of ${count} tasks did not finish in ${STALL_MS / 1000} s`,
          );
        }
      }
      const next = Atomics.load(control, DONE);
      if (next !== done) {
        done = next;
        since = 0;
      }
    }
    // Every task is done; no thread may claim anything until the next batch is written.
    this.#closeClaims();
    if (failure !== undefined) throw failure;
    const failed = Atomics.load(control, FAILED);
    if (failed > 0)
      throw new ResourceError(`kernel threads: ${failed} task(s) failed in a kernel (out-of-bounds memory?)`);
  }

  #runInline(from: number, to: number): void {
    for (let t = from; t < to; t++) this.#runTask(t);
  }

  /** Runs task `index`'s commands on this thread, in order. */
  #runTask(index: number): void {
    const kernels = this.#kernels;
    const w = this.#commands;
    for (
      let c = this.#tasks[2 * index] * STRIDE, end = this.#tasks[2 * index + 1] * STRIDE;
      c < end;
      c += STRIDE
    ) {
      kernels[w[c]](w[c + 1], w[c + 2], w[c + 3], w[c + 4], w[c + 5], w[c + 6], w[c + 7], w[c + 8]);
    }
  }

  /** Starts the threads on first use. */
  #start(): void {
    if (this.#handles.length > 0) return;
    const init: KernelThreadInit = {
      module: this.#target.module,
      memory: this.#target.memory,
      control: this.#control.buffer as SharedArrayBuffer,
      tasks: this.#tasks.buffer as SharedArrayBuffer,
      commands: this.#commands.buffer as SharedArrayBuffer,
      names: KERNEL_NAMES,
      stride: STRIDE,
      spins: SPINS,
      threads: this.threads,
      index: 0,
    };
    const source = kernelThreadMain.toString();
    for (let i = 1; i < this.threads; i++) {
      this.#handles.push(startKernelThread(source, { ...init, index: i }, i));
    }
  }

  /** Kernel threads running (they start on the first shared batch, and are counted once ready). */
  get running(): number {
    return Atomics.load(this.#control, 5);
  }

  /** Tasks the kernel threads (not the calling thread) have run so far. */
  get tasksOnThreads(): number {
    return Atomics.load(this.#control, 6);
  }

  /** Stops the threads; later batches run on the calling thread. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#control, STOP, 1);
    Atomics.add(this.#control, BATCH, 1);
    Atomics.notify(this.#control, BATCH);
    for (const handle of this.#handles) handle.release();
    this.#handles = [];
  }
}
