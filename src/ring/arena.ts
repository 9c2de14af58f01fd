import { assertInteger } from '../util/assert.ts';
import { ResourceError } from '../util/errors.ts';
import { MAX_PAGES, PAGE_BYTES } from './kernels.ts';

/**
 * Where polynomial limbs live while kernels compute on them: a source of runs of 32-bit words in one kernel
 * context's memory. Each {@link KernelContext} owns one (replaceable, e.g. by the tiered runtime's placement
 * allocator); a polynomial frees its limbs into the allocator it came from.
 *
 * @example
 * ```ts
 * const pointer = context.allocator.alloc(1024);
 * context.allocator.free(pointer, 1024);
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

/** Allocations from this size up (polynomials of large rings) reuse freed memory before fresh pages. */
const LARGE_BYTES = 1 << 20;

/** Most pages one growth adds beyond the request (64 MiB): at gigabytes, a quarter more would be hundreds of MB. */
const GROW_LIMIT_PAGES = 1024;

/**
 * Bytes an allocation of `words` words occupies (rounded up to 16 bytes, the alignment SIMD kernels use).
 *
 * @example
 * ```ts
 * allocationBytes(3); // 16
 * ```
 */
export function allocationBytes(words: number): number {
  return Math.ceil((words * 4) / 16) * 16;
}

/**
 * The default allocator of a context: a bump pointer over its memory with exact-size free lists. CKKS allocates
 * few distinct sizes (one per limb count), so exact-size reuse keeps fragmentation low. Growing the memory is for
 * good (WebAssembly memory never shrinks, and every page grown stays resident), so before it grows, the freed
 * blocks are merged with their free neighbours (and given back to the bump pointer when they end at it) and the
 * smallest one that fits is split: a run that frees keys, ciphertexts and plaintexts of many sizes (a tiered run
 * at logN 16) reuses their memory instead of growing to the 4 GiB limit.
 *
 * @example
 * ```ts
 * const arena = new ArenaAllocator(memory);
 * const ptr = arena.alloc(1 << 14);
 * arena.free(ptr, 1 << 14);
 * ```
 */
export class ArenaAllocator implements Allocator {
  readonly #memory: WebAssembly.Memory;
  readonly #maximumPages: number;
  #top = RESERVED_BYTES;
  #free = new Map<number, number[]>();
  /** Bytes in the free lists. */
  #freeBytes = 0;
  #inUse = 0;
  #peak = 0;

  constructor(memory: WebAssembly.Memory, maximumPages = MAX_PAGES) {
    this.#memory = memory;
    this.#maximumPages = maximumPages;
  }

  get bytesInUse(): number {
    return this.#inUse;
  }

  get peakBytes(): number {
    return this.#peak;
  }

  alloc(words: number): number {
    assertInteger(words, 'words', 1, 2 ** 30);
    const bytes = allocationBytes(words);
    this.#inUse += bytes;
    if (this.#inUse > this.#peak) this.#peak = this.#inUse;
    const list = this.#free.get(bytes);
    if (list && list.length > 0) {
      this.#freeBytes -= bytes;
      return list.pop()!;
    }
    const have = this.#memory.buffer.byteLength;
    // A large block reuses freed memory before it takes fresh pages at the top (a page once touched stays
    // resident); a small one bumps, and reuses only before the memory would grow.
    if (this.#freeBytes >= bytes && (bytes >= LARGE_BYTES || this.#top + bytes > have)) {
      const reused = this.#reuse(bytes, have, bytes >= LARGE_BYTES);
      if (reused !== undefined) return reused;
    }
    const pointer = this.#top;
    const end = pointer + bytes;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE_BYTES);
      const target = Math.max(pages, Math.min(Math.ceil(have / PAGE_BYTES / 4), GROW_LIMIT_PAGES));
      const current = have / PAGE_BYTES;
      const grow = Math.min(Math.max(target, pages), this.#maximumPages - current);
      if (grow < pages) {
        this.#inUse -= bytes;
        throw new ResourceError(
          `arena: cannot allocate ${bytes} bytes: kernel memory would exceed ` +
            `${(this.#maximumPages * PAGE_BYTES) / 2 ** 30} GiB (in use ${this.#inUse} bytes); ` +
            'free objects or move them to the tiered store',
        );
      }
      this.#memory.grow(grow);
    }
    this.#top = end;
    return pointer;
  }

  free(pointer: number, words: number): void {
    const bytes = allocationBytes(words);
    this.#inUse -= bytes;
    this.#keep(pointer, bytes);
  }

  #keep(pointer: number, bytes: number): void {
    let list = this.#free.get(bytes);
    if (!list) {
      list = [];
      this.#free.set(bytes, list);
    }
    list.push(pointer);
    this.#freeBytes += bytes;
  }

  /**
   * Room for `bytes` without growing the memory: merges adjacent free blocks (the last one back into the bump
   * pointer when it ends there), then bumps if that made room, else splits the smallest free block that fits
   * (with `fitFirst`, the free block first, so the top stays where it is).
   */
  #reuse(bytes: number, have: number, fitFirst = false): number | undefined {
    const blocks: [number, number][] = [];
    for (const [size, pointers] of this.#free) for (const p of pointers) blocks.push([p, size]);
    blocks.sort((a, b) => a[0] - b[0]);
    this.#free = new Map();
    this.#freeBytes = 0;
    const merged: [number, number][] = [];
    for (const [p, size] of blocks) {
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === p) last[1] += size;
      else merged.push([p, size]);
    }
    const top = merged[merged.length - 1];
    if (top && top[0] + top[1] === this.#top) {
      this.#top = top[0];
      merged.pop();
    }
    for (const [p, size] of merged) this.#keep(p, size);
    let best = Number.POSITIVE_INFINITY;
    for (const [size, pointers] of this.#free)
      if (size >= bytes && size < best && pointers.length > 0) best = size;
    if ((!fitFirst || best === Number.POSITIVE_INFINITY) && this.#top + bytes <= have) {
      const pointer = this.#top;
      this.#top += bytes;
      return pointer;
    }
    if (best === Number.POSITIVE_INFINITY) return undefined;
    const pointer = this.#free.get(best)!.pop()!;
    this.#freeBytes -= best;
    if (best > bytes) this.#keep(pointer + bytes, best - bytes);
    return pointer;
  }
}
