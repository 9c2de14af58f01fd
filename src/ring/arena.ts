import { assertInteger } from '../util/assert.ts';
import { ResourceError } from '../util/errors.ts';
import { kernels, MAX_PAGES, PAGE_BYTES } from './kernels.ts';

/**
 * Where polynomial limbs live while kernels compute on them. The runtime may install its own allocator
 * (for budgets and tiering) with {@link setAllocator}; every allocation is a run of 32-bit words.
 *
 * @example
 * ```ts
 * const pointer = allocator().alloc(1024);
 * allocator().free(pointer, 1024);
 * ```
 */
export interface Allocator {
  /** Reserves `words` 32-bit words; returns the byte offset into kernel memory (16-byte aligned). */
  alloc(words: number): number;
  /** Returns a region obtained from `alloc` with the same word count. */
  free(pointer: number, words: number): void;
  /** Bytes currently handed out. */
  readonly bytesInUse: number;
  /** Largest `bytesInUse` seen. */
  readonly peakBytes: number;
}

/** Bytes below this offset are left to the WebAssembly module's own data. */
const RESERVED_BYTES = 65536;

/**
 * The default allocator: a bump pointer over the shared kernel memory with exact-size free lists. CKKS
 * allocates few distinct sizes (one per limb count), so exact-size reuse keeps fragmentation low.
 *
 * @example
 * ```ts
 * const arena = new ArenaAllocator();
 * const ptr = arena.alloc(1 << 14);
 * arena.free(ptr, 1 << 14);
 * ```
 */
export class ArenaAllocator implements Allocator {
  #top = RESERVED_BYTES;
  #free = new Map<number, number[]>();
  #inUse = 0;
  #peak = 0;

  get bytesInUse(): number {
    return this.#inUse;
  }

  get peakBytes(): number {
    return this.#peak;
  }

  alloc(words: number): number {
    assertInteger(words, 'words', 1, 2 ** 30);
    const bytes = Math.ceil((words * 4) / 16) * 16;
    this.#inUse += bytes;
    if (this.#inUse > this.#peak) this.#peak = this.#inUse;
    const list = this.#free.get(bytes);
    if (list && list.length > 0) return list.pop()!;
    const pointer = this.#top;
    const end = pointer + bytes;
    const memory = kernels().memory;
    const have = memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE_BYTES);
      const target = Math.max(pages, Math.ceil(have / PAGE_BYTES / 4));
      const current = have / PAGE_BYTES;
      const grow = Math.min(Math.max(target, pages), MAX_PAGES - current);
      if (grow < pages) {
        this.#inUse -= bytes;
        throw new ResourceError(
          `arena: cannot allocate ${bytes} bytes: kernel memory would exceed 4 GiB (in use ${this.#inUse} bytes); ` +
            'free objects or move them to the tiered store',
        );
      }
      memory.grow(grow);
    }
    this.#top = end;
    return pointer;
  }

  free(pointer: number, words: number): void {
    const bytes = Math.ceil((words * 4) / 16) * 16;
    this.#inUse -= bytes;
    let list = this.#free.get(bytes);
    if (!list) {
      list = [];
      this.#free.set(bytes, list);
    }
    list.push(pointer);
  }
}

let current: Allocator = new ArenaAllocator();

/**
 * The allocator polynomials use.
 *
 * @example
 * ```ts
 * const inUse = allocator().bytesInUse;
 * ```
 */
export function allocator(): Allocator {
  return current;
}

/**
 * Installs another allocator (the tiered runtime does); returns the previous one.
 *
 * @example
 * ```ts
 * const previous = setAllocator(myBudgetedAllocator);
 * ```
 */
export function setAllocator(next: Allocator): Allocator {
  const previous = current;
  current = next;
  return previous;
}

/**
 * A Uint32Array view of `words` words at byte offset `pointer` of kernel memory. Views stay valid when the
 * shared memory grows.
 *
 * @example
 * ```ts
 * const limb = wordsView(ptr, n);
 * ```
 */
export function wordsView(pointer: number, words: number): Uint32Array {
  return new Uint32Array(kernels().memory.buffer, pointer, words);
}
