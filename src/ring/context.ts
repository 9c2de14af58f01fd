import { KERNEL_URL, readKernelBytes, readKernelBytesSync } from '#kernel-loader';
import { availableCores } from '#kernel-threads';
import { assertInteger } from '../util/assert.ts';
import { InvalidArgumentError, MismatchError, ResourceError } from '../util/errors.ts';
import { type Allocator, ArenaAllocator } from './arena.ts';
import { type KernelExports, MAX_PAGES } from './kernels.ts';
import { InlineBatch, type KernelBatch, KernelThreadPool } from './threads.ts';

/**
 * Options of {@link KernelContext.create} and {@link KernelContext.load}.
 *
 * @example
 * ```ts
 * const context = KernelContext.create({ maximumPages: 16384 }); // at most 1 GiB of kernel memory
 * ```
 */
export interface KernelContextOptions {
  /** The compiled kernels (default: the package's `build/kernels.wasm`, found by the platform's loader). */
  module?: WebAssembly.Module;
  /** Most kernel memory, in 64 KiB pages (default and ceiling 65,536 = 4 GiB, the wasm32 limit). */
  maximumPages?: number;
  /** Kernel memory reserved at the start, in pages (default 16). */
  initialPages?: number;
  /**
   * Threads that compute this context's kernels, the calling one included (default: {@link defaultThreads}, the
   * available cores unless set otherwise). 1 computes on the calling thread only. Results are the same bits
   * whatever the count.
   */
  threads?: number;
}

let threadsOverride: number | undefined;

/**
 * The thread count of contexts made without a `threads` option: the one set by {@link setDefaultThreads}, else
 * the available cores (Node's `availableParallelism()`, a browser's `navigator.hardwareConcurrency`).
 *
 * @example
 * ```ts
 * const threads = defaultThreads();
 * ```
 */
export function defaultThreads(): number {
  return threadsOverride ?? availableCores();
}

/**
 * Sets the thread count of contexts made from now on without a `threads` option (and of the default context, if
 * it is made later); `undefined` returns to the available cores. The CLI's `--threads` sets it.
 *
 * @example
 * ```ts
 * setDefaultThreads(1); // everything on the calling thread
 * ```
 */
export function setDefaultThreads(threads: number | undefined): void {
  if (threads !== undefined) assertInteger(threads, 'threads', 1, 1024);
  threadsOverride = threads;
}

let sequence = 0;
let compiled: WebAssembly.Module | undefined;

function compile(bytes: Uint8Array): WebAssembly.Module {
  try {
    return new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  } catch (cause) {
    throw new ResourceError(`the WebAssembly kernels do not compile: expected the file built by \`npm ci\``, {
      cause,
    });
  }
}

function missing(cause: unknown): ResourceError {
  return new ResourceError(
    `WebAssembly kernels not found at ${KERNEL_URL.href}: expected the file built by \`npm ci\` ` +
      '(or run `npm run build:wasm`), or call loadKernels() with their bytes',
    { cause },
  );
}

/** The compiled kernels, read and compiled synchronously on first use where the platform allows it (Node). */
function moduleSync(): WebAssembly.Module {
  if (compiled) return compiled;
  let bytes: Uint8Array | undefined;
  try {
    bytes = readKernelBytesSync();
  } catch (cause) {
    throw missing(cause);
  }
  if (bytes === undefined) {
    throw new ResourceError(
      'the WebAssembly kernels are not loaded: on this platform call `await loadKernels()` once before the ' +
        'first use (browsers compile WebAssembly asynchronously)',
    );
  }
  compiled = compile(bytes);
  return compiled;
}

/**
 * Live contexts, so that code holding a view of kernel memory can find the context it lies in (the I/O workers
 * then hash a read or a write in place instead of copying it into their own memory).
 */
const liveContexts = new Set<WeakRef<KernelContext>>();
const forgetContext = new FinalizationRegistry<WeakRef<KernelContext>>((ref) => {
  liveContexts.delete(ref);
});

/**
 * The kernels plus the memory they compute in and the allocator that hands that memory out: everything that
 * used to be process state. Polynomials, moduli (their NTT tables), parameters and every object built on them
 * belong to one context and are freed into its allocator; two contexts (two models, two tenants, later two
 * threads) live side by side in one process without sharing memory. The memory is a shared, growable
 * `WebAssembly.Memory`, so growth never detaches views and worker threads can compute on the same limbs.
 *
 * Most callers never name a context: {@link defaultContext} is made on first use. Pass one explicitly
 * (`Parameters.create(literal, { context })`) to keep objects apart.
 *
 * @example
 * ```ts
 * const tenantA = KernelContext.create();
 * const tenantB = KernelContext.create();
 * const paramsA = Parameters.create(PRESETS.PN13QP218, { context: tenantA });
 * const paramsB = Parameters.create(PRESETS.PN13QP218, { context: tenantB }); // separate memory and allocator
 * ```
 */
export class KernelContext {
  /** A small number naming the context in messages. */
  readonly id: number;
  readonly exports: KernelExports;
  readonly memory: WebAssembly.Memory;
  /** The compiled kernels (kernel threads instantiate them over {@link memory}). */
  readonly module: WebAssembly.Module;
  #allocator: Allocator;
  readonly #inline: InlineBatch;
  #pool: KernelThreadPool | undefined;
  /** Pools made so far, by size: switching back and forth (a benchmark's 1 vs n threads) starts no new threads. */
  readonly #pools = new Map<number, KernelThreadPool>();

  private constructor(module: WebAssembly.Module, options: KernelContextOptions) {
    const maximum = options.maximumPages ?? MAX_PAGES;
    assertInteger(maximum, 'maximumPages', 1, MAX_PAGES);
    const initial = options.initialPages ?? Math.min(16, maximum);
    assertInteger(initial, 'initialPages', 1, maximum);
    this.id = ++sequence;
    this.memory = new WebAssembly.Memory({ initial, maximum, shared: true });
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.exports = instance.exports as unknown as KernelExports;
    this.module = module;
    this.#allocator = new ArenaAllocator(this.memory, maximum);
    this.#inline = new InlineBatch(this.exports);
    this.setThreads(options.threads ?? defaultThreads());
    const ref = new WeakRef(this);
    liveContexts.add(ref);
    forgetContext.register(this, ref);
  }

  /**
   * The live context whose kernel memory `buffer` is (its current buffer: a view taken before the memory grew is
   * of an older one), if any.
   *
   * @example
   * ```ts
   * KernelContext.ofBuffer(poly.context.memory.buffer) === poly.context; // true
   * ```
   */
  static ofBuffer(buffer: ArrayBufferLike): KernelContext | undefined {
    for (const ref of liveContexts) {
      const context = ref.deref();
      if (context?.memory.buffer === buffer) return context;
    }
    return undefined;
  }

  /** Threads computing this context's kernels, the calling one included. */
  get threads(): number {
    return this.#pool?.threads ?? 1;
  }

  /**
   * The current pool's kernel threads that are running, and the tasks they have run (0 and 0 on one thread):
   * what a test or a monitor reads to see that work is shared.
   *
   * @example
   * ```ts
   * const { running, tasks } = context.threadActivity();
   * ```
   */
  threadActivity(): { running: number; tasks: number } {
    return { running: this.#pool?.running ?? 0, tasks: this.#pool?.tasksOnThreads ?? 0 };
  }

  /**
   * Changes the thread count (1: the calling thread only). The threads start when a batch first has work to share
   * and stop at {@link close}; a pool of another size sleeps until the count comes back to it. Where shared memory
   * is unavailable (a browser page without cross-origin isolation) the count stays 1.
   *
   * @example
   * ```ts
   * context.setThreads(4);
   * ```
   */
  setThreads(threads: number): void {
    assertInteger(threads, 'threads', 1, 1024);
    // A browser page that is not cross-origin isolated has no SharedArrayBuffer to hand the threads their work:
    // the context runs on the calling thread (`threads` reads 1).
    if (threads === 1 || typeof SharedArrayBuffer === 'undefined') {
      this.#pool = undefined;
      return;
    }
    let pool = this.#pools.get(threads);
    if (!pool) {
      pool = new KernelThreadPool(this, threads);
      this.#pools.set(threads, pool);
    }
    this.#pool = pool;
  }

  /**
   * A batch of independent kernel tasks for about `words` words of work: shared among the context's threads when
   * there are several and the work is worth sharing, else run at once on the calling thread. See
   * {@link KernelBatch}.
   *
   * @example
   * ```ts
   * const batch = context.batch(n * limbs);
   * for (let i = 0; i < limbs; i++) batch.task().add(out + i * n * 4, a + i * n * 4, b + i * n * 4, n, p[i]);
   * batch.run();
   * ```
   */
  batch(words: number): KernelBatch {
    return this.#pool ? this.#pool.batch(words, this.#inline) : this.#inline;
  }

  /**
   * Stops the context's kernel threads (later work runs on the calling thread). The memory stays usable.
   *
   * @example
   * ```ts
   * context.close();
   * ```
   */
  close(): void {
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
    this.#pool = undefined;
  }

  /**
   * A new context over the package's kernels (read and compiled once per process, synchronously where the
   * platform allows: Node) or over `options.module`.
   *
   * @throws ResourceError when the kernels are missing, or cannot be compiled synchronously (browsers: use
   *   {@link KernelContext.load}).
   * @example
   * ```ts
   * const context = KernelContext.create();
   * ```
   */
  static create(options: KernelContextOptions = {}): KernelContext {
    return new KernelContext(options.module ?? moduleSync(), options);
  }

  /**
   * A new context, loading and compiling the kernels asynchronously if they are not yet (any platform).
   *
   * @example
   * ```ts
   * const context = await KernelContext.load();
   * ```
   */
  static async load(options: KernelContextOptions = {}): Promise<KernelContext> {
    return new KernelContext(options.module ?? (await loadKernels()), options);
  }

  /** The allocator polynomials of this context take their limbs from. */
  get allocator(): Allocator {
    return this.#allocator;
  }

  /**
   * Installs another allocator over this context's memory (the tiered runtime wraps the arena to place objects
   * contiguously); returns the previous one. Polynomials allocated before keep freeing into the allocator they
   * came from.
   *
   * @example
   * ```ts
   * const previous = context.setAllocator(placement);
   * ```
   */
  setAllocator(next: Allocator): Allocator {
    const previous = this.#allocator;
    this.#allocator = next;
    return previous;
  }

  /**
   * A Uint32Array view of `words` words at byte offset `pointer` of this context's memory (valid across growth).
   *
   * @example
   * ```ts
   * const limb = context.view(pointer, n);
   * ```
   */
  view(pointer: number, words: number): Uint32Array {
    return new Uint32Array(this.memory.buffer, pointer, words);
  }

  /**
   * A byte view of `byteLength` bytes at byte offset `pointer` of this context's memory.
   *
   * @example
   * ```ts
   * const bytes = context.bytes(poly.pointer, poly.byteLength);
   * ```
   */
  bytes(pointer: number, byteLength: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, pointer, byteLength);
  }

  /**
   * Throws {@link MismatchError} unless `other` is this context: objects of two contexts never meet in a kernel.
   *
   * @example
   * ```ts
   * a.context.check(b.context, 'add');
   * ```
   */
  check(other: KernelContext, what: string): void {
    if (other !== this) {
      throw new MismatchError(
        `${what}: operands belong to kernel contexts ${this.id} and ${other.id}: expected one context`,
      );
    }
  }

  toString(): string {
    return `KernelContext ${this.id} (${this.memory.buffer.byteLength} bytes of kernel memory)`;
  }
}

let fallback: KernelContext | undefined;

/**
 * The context used where none is named, made on first use (in Node, synchronously; in a browser, after
 * `await loadKernels()`).
 *
 * @example
 * ```ts
 * const inUse = defaultContext().allocator.bytesInUse;
 * ```
 */
export function defaultContext(): KernelContext {
  fallback ??= KernelContext.create();
  return fallback;
}

/**
 * Loads and compiles the kernels (once per process) so that contexts can be made synchronously afterwards. Node
 * does this by itself on first use; a browser calls it once, awaited, before using the library, optionally with
 * the kernel bytes or their URL when a bundler moved `kernels.wasm` elsewhere.
 *
 * @example
 * ```ts
 * await loadKernels(); // or: await loadKernels(new URL('/assets/kernels.wasm', location.href))
 * const params = Parameters.create(PRESETS.PN13QP218);
 * ```
 */
export async function loadKernels(
  source?: Uint8Array | URL | WebAssembly.Module,
): Promise<WebAssembly.Module> {
  if (source instanceof WebAssembly.Module) {
    compiled = source;
    return compiled;
  }
  if (compiled && source === undefined) return compiled;
  let bytes: Uint8Array;
  if (source instanceof Uint8Array) {
    bytes = source;
  } else if (source instanceof URL) {
    const response = await fetch(source);
    if (!response.ok) throw missing(new Error(`fetching ${source.href}: HTTP ${response.status}`));
    bytes = new Uint8Array(await response.arrayBuffer());
  } else if (source === undefined) {
    try {
      bytes = await readKernelBytes();
    } catch (cause) {
      throw missing(cause);
    }
  } else {
    throw new InvalidArgumentError(
      `loadKernels: source = ${String(source)}: expected kernel bytes, their URL or a compiled module`,
    );
  }
  try {
    compiled = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (cause) {
    throw new ResourceError('the WebAssembly kernels do not compile: expected the file built by `npm ci`', {
      cause,
    });
  }
  return compiled;
}
