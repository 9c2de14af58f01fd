import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { KernelContext } from '../../ring/context.ts';
import { XXH32_STATE_WORDS } from '../../ring/hash.ts';
import { check } from '../../util/assert.ts';
import { FormatError, InvalidArgumentError, ResourceError } from '../../util/errors.ts';
import type { IoBytes, IoReply, IoRequest } from './io-worker.ts';
import { workerEntry } from '../worker-entry.ts';

/**
 * A request without its sequence number (the pool assigns it).
 *
 * @example
 * ```ts
 * const request: IoRequestBody = { op: 'delete', path, what: 'deleting "w3"' };
 * ```
 */
export type IoRequestBody = IoRequest extends infer R
  ? R extends IoRequest
    ? Omit<R, 'seq'>
    : never
  : never;

/**
 * A successful reply (failures reject the request's promise with a typed error).
 *
 * @example
 * ```ts
 * const { startMs, endMs, checksumNs } = await pool.request({ op: 'read', ... });
 * ```
 */
export type IoDone = Extract<IoReply, { ok: true }>;

/**
 * Options of {@link IoPool}.
 *
 * @example
 * ```ts
 * const pool = new IoPool({ workers: 2 });
 * ```
 */
export interface IoPoolOptions {
  /** Worker threads (default: 1 on machines with up to 2 cores, else 2; compute keeps the main thread). */
  workers?: number;
}

interface Pending {
  resolve: (done: IoDone) => void;
  reject: (error: Error) => void;
  describe: string;
  slot: Slot;
  weight: number;
}

interface Slot {
  index: number;
  /** Requests not yet posted: everything issued in one synchronous stretch travels in one message. */
  outbox: IoRequest[];
  /** Ids of the shared memories this thread holds. */
  shared: Set<number>;
  worker: Worker;
  /** Requests posted and not answered. */
  pending: number;
  /** Payload bytes of the pending requests (to balance load across workers). */
  weight: number;
  /** Set once the thread is gone; a new request starts a fresh one. */
  dead: boolean;
  /** The thread's hash state in each kernel memory it hashes in place (a pointer; freed when the thread ends). */
  hashStates: Map<KernelContext, number>;
}

/**
 * SharedArrayBuffers at least this large (slab segments of the buffer pools) are sent to a worker once and then
 * referenced by number; smaller ones travel with each request.
 */
const SHARE_MIN_BYTES = 4 * 2 ** 20;

const ERROR_TYPES: Record<string, new (message: string) => Error> = {
  FormatError,
  ResourceError,
  InvalidArgumentError,
};

/**
 * A small pool of worker threads that perform slow-tier file I/O and payload verification off the main thread.
 * Threads start on the first request (lazily) and are unref'd whenever they have nothing in flight, so an idle
 * pool never keeps a process alive; {@link IoPool.terminate} stops them. If a thread dies (uncaught exception,
 * out of memory, terminated), every request it had in flight is rejected with a {@link ResourceError} naming the
 * request, and the next request starts a fresh thread: a crash is an error, never a hang.
 *
 * Requests carry views of SharedArrayBuffers (large ones, such as slab segments, are sent to each thread once and
 * then referenced by number), so data is never copied between threads. Requests issued in one synchronous stretch
 * travel in one message, and replies finished in one turn of a worker come back in one: posting a message wakes
 * the other thread, which on a machine with few cores can take the core from compute.
 *
 * @example
 * ```ts
 * const pool = new IoPool({ workers: 1 });
 * const tier = await FileTier.open({ name: 'nvme0', dir, io: pool });
 * // ... run ...
 * await tier.close();
 * await pool.terminate();
 * ```
 */
export class IoPool {
  readonly size: number;
  readonly #slots: (Slot | null)[];
  readonly #pending = new Map<number, Pending>();
  #seq = 0;
  #started = 0;
  #flushScheduled = false;
  readonly #memoryIds = new WeakMap<SharedArrayBuffer, number>();
  #nextMemoryId = 1;
  /** Tells live threads to drop a shared memory once the main thread no longer references it. */
  readonly #forget = new FinalizationRegistry<number>((id) => {
    for (const slot of this.#slots) {
      if (slot && !slot.dead && slot.shared.delete(id)) this.#post(slot, { op: 'unshare', seq: -1, id });
    }
  });
  #terminated = false;

  constructor(options: IoPoolOptions = {}) {
    const size = options.workers ?? (availableParallelism() <= 2 ? 1 : 2);
    check(Number.isInteger(size) && size >= 1 && size <= 64, () => `workers = ${size}: expected 1 to 64`);
    this.size = size;
    this.#slots = Array.from({ length: size }, () => null);
  }

  /** Threads started so far (including replacements of dead ones). */
  get threadsStarted(): number {
    return this.#started;
  }

  /** Threads currently alive. */
  get threadsAlive(): number {
    return this.#slots.filter((s) => s !== null && !s.dead).length;
  }

  /** Requests posted and not yet answered. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Posts `body` to the least-loaded worker. Resolves with the worker's reply; rejects with the typed error the
   * worker raised ({@link FormatError}, {@link ResourceError}, {@link InvalidArgumentError}) or with a
   * {@link ResourceError} if the thread died first. `weight` (payload bytes) balances load across workers.
   */
  request(body: IoRequestBody, weight = 0, describe: string = body.op): Promise<IoDone> {
    if (this.#terminated) {
      return Promise.reject(
        new ResourceError(`I/O pool: ${describe} after terminate(): expected an open pool`),
      );
    }
    const slot = this.#pick();
    const seq = this.#seq++;
    return new Promise<IoDone>((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject, describe, slot, weight });
      if (slot.pending++ === 0) slot.worker.ref();
      slot.weight += weight;
      const message = { ...body, seq } as IoRequest;
      if (message.op === 'read') {
        message.into = Array.isArray(message.into)
          ? message.into.map((piece) => this.#reference(slot, piece))
          : this.#reference(slot, message.into);
      } else if (message.op === 'write') {
        message.data = Array.isArray(message.data)
          ? message.data.map((piece) => this.#reference(slot, piece))
          : this.#reference(slot, message.data);
      }
      this.#post(slot, message);
    });
  }

  /**
   * Posts the requests queued so far now. Requests are batched per synchronous stretch of the caller and posted
   * from a microtask; call this before holding the thread for long (compute), so queued transfers start first.
   */
  flush(): void {
    this.#flushScheduled = false;
    for (const slot of this.#slots) {
      if (!slot || slot.outbox.length === 0) continue;
      const batch = slot.outbox;
      slot.outbox = [];
      if (!slot.dead) slot.worker.postMessage(batch);
    }
  }

  #post(slot: Slot, message: IoRequest): void {
    slot.outbox.push(message);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** `bytes` as a reference into a memory `slot` holds, sharing the memory first if needed. */
  #reference(slot: Slot, bytes: IoBytes): IoBytes {
    if (!(bytes instanceof Uint8Array)) return bytes;
    const memory = bytes.buffer;
    if (!(memory instanceof SharedArrayBuffer) || memory.byteLength < SHARE_MIN_BYTES) return bytes;
    let id = this.#memoryIds.get(memory);
    if (id === undefined) {
      id = this.#nextMemoryId++;
      this.#memoryIds.set(memory, id);
      this.#forget.register(memory, id);
    }
    if (!slot.shared.has(id)) {
      slot.shared.add(id);
      // Kernel memory (an arena's loads and write-backs) goes with its kernels, so the thread hashes it in place.
      const context = KernelContext.ofBuffer(memory);
      if (context) {
        let state = slot.hashStates.get(context);
        if (state === undefined) {
          state = context.allocator.alloc(XXH32_STATE_WORDS);
          slot.hashStates.set(context, state);
        }
        const kernel = { memory: context.memory, module: context.module, state };
        this.#post(slot, { op: 'share', seq: -1, id, memory, kernel });
      } else {
        this.#post(slot, { op: 'share', seq: -1, id, memory });
      }
    }
    return { memory: id, byteOffset: bytes.byteOffset, byteLength: bytes.byteLength };
  }

  /**
   * Test hook: makes worker `index` throw an uncaught exception, as a bug or native failure would. Resolves with
   * the error its in-flight requests were rejected with.
   */
  crashWorker(index = 0): Promise<unknown> {
    check(index >= 0 && index < this.size, () => `worker index ${index}: expected 0 to ${this.size - 1}`);
    const slot = this.#slotAt(index);
    const seq = this.#seq++;
    return new Promise<unknown>((resolve) => {
      this.#pending.set(seq, { resolve, reject: resolve, describe: 'crash (test hook)', slot, weight: 0 });
      if (slot.pending++ === 0) slot.worker.ref();
      this.#post(slot, { op: 'crash', seq });
      this.flush();
    });
  }

  /** Stops every thread; requests still in flight are rejected. The pool refuses further requests. */
  async terminate(): Promise<void> {
    this.#terminated = true;
    const slots = this.#slots.filter((s): s is Slot => s !== null && !s.dead);
    await Promise.all(
      slots.map(async (slot) => {
        slot.dead = true;
        await slot.worker.terminate();
        this.#fail(slot, 'was terminated');
      }),
    );
  }

  #pick(): Slot {
    let best: Slot | null = null;
    for (let i = 0; i < this.size; i++) {
      const slot = this.#slotAt(i);
      if (
        best === null ||
        slot.weight < best.weight ||
        (slot.weight === best.weight && slot.pending < best.pending)
      )
        best = slot;
    }
    return best!;
  }

  #slotAt(index: number): Slot {
    const existing = this.#slots[index];
    if (existing && !existing.dead) return existing;
    const { entry, eval: isSource } = workerEntry(import.meta.url, 'io-worker');
    const worker = new Worker(entry, {
      eval: isSource,
      name: `home-io-${index}`,
      workerData: { homeIoWorker: true },
    });
    worker.unref();
    const slot: Slot = {
      index,
      outbox: [],
      worker,
      shared: new Set(),
      pending: 0,
      weight: 0,
      dead: false,
      hashStates: new Map(),
    };
    this.#started++;
    worker.on('message', (replies: IoReply[]) => {
      for (const reply of replies) this.#answer(reply);
    });
    worker.on('error', (error: Error) => {
      slot.dead = true;
      this.#fail(slot, `failed (${error.message})`);
    });
    worker.on('exit', (code) => {
      slot.dead = true;
      this.#fail(slot, `exited with code ${code}`);
    });
    // A reply that cannot be deserialized leaves its request unanswerable: end the thread, failing its requests.
    worker.on('messageerror', () => {
      slot.dead = true;
      void worker.terminate();
    });
    this.#slots[index] = slot;
    return slot;
  }

  #answer(reply: IoReply): void {
    const pending = this.#pending.get(reply.seq);
    if (!pending) return;
    this.#settle(reply.seq, pending);
    if (reply.ok) {
      pending.resolve(reply);
      return;
    }
    const Type = ERROR_TYPES[reply.error.name];
    pending.reject(
      Type
        ? new Type(reply.error.message)
        : new ResourceError(`I/O worker: ${pending.describe}: ${reply.error.message}`),
    );
  }

  #settle(seq: number, pending: Pending): void {
    this.#pending.delete(seq);
    const slot = pending.slot;
    slot.weight -= pending.weight;
    if (--slot.pending === 0) slot.worker.unref();
  }

  /** Rejects every request in flight on `slot`. */
  #fail(slot: Slot, what: string): void {
    // The thread is gone: its hash states are free again.
    for (const [context, state] of slot.hashStates) context.allocator.free(state, XXH32_STATE_WORDS);
    slot.hashStates.clear();
    for (const [seq, pending] of this.#pending) {
      if (pending.slot !== slot) continue;
      this.#settle(seq, pending);
      pending.reject(
        new ResourceError(
          `I/O worker ${slot.index} ${what} while "${pending.describe}" was in flight: the transfer did not ` +
            'complete; expected the worker to stay up (its files are left uncommitted or unchanged)',
        ),
      );
    }
  }
}

let defaultPool: IoPool | null = null;

/**
 * The process-wide pool file tiers use unless given their own; created on first use, its idle threads never keep
 * the process alive.
 *
 * @example
 * ```ts
 * const pool = defaultIoPool();
 * ```
 */
export function defaultIoPool(): IoPool {
  defaultPool ??= new IoPool();
  return defaultPool;
}
