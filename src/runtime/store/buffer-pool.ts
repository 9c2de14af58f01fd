import { check } from '../../util/assert.ts';
import { ResourceError } from '../../util/errors.ts';

/** Retained free buffers are capped at this many bytes when the pool has no finite capacity. */
const UNBOUNDED_POOL_RETAIN_BYTES = 256 * 2 ** 20;
/** Largest slab segment; a budget above it gets several, created as needed. */
const SEGMENT_MAX_BYTES = 2 ** 30;
/** Slab allocations are rounded up to this many bytes (a cache line), so buffers never share one. */
const SLAB_ALIGN = 64;

/** One contiguous block of a slab with its free ranges, sorted by start and never adjacent (merged on free). */
class Segment {
  readonly memory: ArrayBuffer | SharedArrayBuffer;
  readonly bytes: number;
  /** Free ranges as [start, end) pairs, flattened: starts at even indices, ascending. */
  #free: number[];

  constructor(bytes: number, shared: boolean) {
    this.bytes = bytes;
    this.memory = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
    this.#free = [0, bytes];
  }

  /** First-fit: the offset of `bytes` free bytes, or -1. */
  take(bytes: number): number {
    const free = this.#free;
    for (let i = 0; i < free.length; i += 2) {
      const start = free[i];
      if (free[i + 1] - start < bytes) continue;
      if (free[i + 1] - start === bytes) free.splice(i, 2);
      else free[i] = start + bytes;
      return start;
    }
    return -1;
  }

  give(start: number, bytes: number): void {
    const free = this.#free;
    const end = start + bytes;
    // Position of the first free range starting after `start`.
    let lo = 0;
    let hi = free.length >> 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (free[mid * 2] < start) lo = mid + 1;
      else hi = mid;
    }
    const at = lo * 2;
    const joinsPrevious = at > 0 && free[at - 1] === start;
    const joinsNext = at < free.length && free[at] === end;
    if (joinsPrevious && joinsNext) {
      free[at - 1] = free[at + 1];
      free.splice(at, 2);
    } else if (joinsPrevious) {
      free[at - 1] = end;
    } else if (joinsNext) {
      free[at] = start;
    } else {
      free.splice(at, 0, start, end);
    }
  }
}

/**
 * Byte buffers under a hard budget. A finite budget is served from a slab: memory of exactly the budget (in
 * segments of at most 1 GiB, allocated on first need) carved first-fit into buffers and merged back on release, so
 * buffers of any mix of sizes are reused without new allocations — a fresh buffer costs zeroing and a page fault
 * per 4 KiB on first touch (≈ 0.2 ms per 512 KiB, measured), which would otherwise land on the critical path of
 * every load. Should fragmentation leave no free range large enough, the request gets a buffer of its own (counted
 * in {@link BufferPool.fallbackAllocations}). An unlimited budget keeps exact-size free lists (HE objects come in a
 * handful of sizes). Bytes in use never exceed the capacity; a request beyond it throws {@link ResourceError},
 * which the executor treats as a broken invariant (the plan's ledger should have made room first).
 *
 * @example
 * ```ts
 * const pool = new BufferPool(64 << 20, 'dram', { shared: true });
 * const buf = pool.acquire(2 << 20); // buf.buffer is a SharedArrayBuffer: I/O workers fill it in place
 * pool.release(buf);
 * ```
 */
export class BufferPool {
  readonly name: string;
  readonly capacityBytes: number;
  /** Buffers are views of SharedArrayBuffers, so worker threads can read into and write from them in place. */
  readonly shared: boolean;
  readonly #free = new Map<number, Uint8Array[]>();
  readonly #segments: Segment[] = [];
  readonly #segmentOf = new WeakMap<ArrayBufferLike, Segment>();
  #segmentBytes = 0;
  #inUse = 0;
  #pooled = 0;
  #peak = 0;
  #fallbacks = 0;

  constructor(capacityBytes: number, name = 'pool', options: { shared?: boolean } = {}) {
    check(
      capacityBytes > 0,
      () => `${name} capacity = ${capacityBytes}: expected a positive byte count or Infinity`,
    );
    this.capacityBytes = capacityBytes;
    this.name = name;
    this.shared = options.shared ?? false;
  }

  /** Bytes handed out and not yet released. */
  get bytesInUse(): number {
    return this.#inUse;
  }

  /** Largest {@link BufferPool.bytesInUse} seen. */
  get peakBytes(): number {
    return this.#peak;
  }

  /** Bytes of released buffers kept for reuse by an unlimited pool (a finite pool reuses its slab instead). */
  get pooledBytes(): number {
    return this.#pooled;
  }

  /** Bytes of slab memory allocated so far (at most the capacity). */
  get slabBytes(): number {
    return this.#segmentBytes;
  }

  /** Requests the slab could not serve for fragmentation (each got a buffer of its own). */
  get fallbackAllocations(): number {
    return this.#fallbacks;
  }

  /** A buffer of exactly `bytes` bytes; contents are unspecified (a reused buffer keeps old data). */
  acquire(bytes: number): Uint8Array {
    if (this.#inUse + bytes > this.capacityBytes) {
      throw new ResourceError(
        `${this.name}: acquiring ${bytes} bytes would put ${this.#inUse + bytes} bytes in use: expected at most ` +
          `the budget of ${this.capacityBytes} bytes`,
      );
    }
    this.#inUse += bytes;
    if (this.#inUse > this.#peak) this.#peak = this.#inUse;
    if (Number.isFinite(this.capacityBytes)) {
      const slab = this.#fromSlab(bytes);
      if (slab) return slab;
      this.#fallbacks++;
      return this.#allocate(bytes);
    }
    const list = this.#free.get(bytes);
    if (list && list.length > 0) {
      this.#pooled -= bytes;
      return list.pop()!;
    }
    this.#trim(this.capacityBytes - this.#inUse);
    return this.#allocate(bytes);
  }

  /** Returns a buffer obtained from {@link BufferPool.acquire}. */
  release(buffer: Uint8Array): void {
    const bytes = buffer.byteLength;
    this.#inUse -= bytes;
    check(this.#inUse >= 0, () => `${this.name}: released more bytes than acquired (${this.#inUse} in use)`);
    const segment = this.#segmentOf.get(buffer.buffer);
    if (segment) {
      segment.give(buffer.byteOffset, roundUp(bytes));
      return;
    }
    // A finite pool keeps no buffers outside its slab, so its memory never exceeds the budget for long.
    if (
      Number.isFinite(this.capacityBytes) ||
      this.#inUse + this.#pooled + bytes > UNBOUNDED_POOL_RETAIN_BYTES
    )
      return;
    let list = this.#free.get(bytes);
    if (!list) this.#free.set(bytes, (list = []));
    list.push(buffer);
    this.#pooled += bytes;
  }

  #fromSlab(bytes: number): Uint8Array | null {
    const size = roundUp(bytes);
    for (const segment of this.#segments) {
      const offset = segment.take(size);
      if (offset >= 0) return new Uint8Array(segment.memory, offset, bytes);
    }
    const room = Math.min(SEGMENT_MAX_BYTES, roundUp(this.capacityBytes) - this.#segmentBytes);
    if (room < size) return null;
    const segment = new Segment(room, this.shared);
    this.#segments.push(segment);
    this.#segmentOf.set(segment.memory, segment);
    this.#segmentBytes += room;
    return new Uint8Array(segment.memory, segment.take(size), bytes);
  }

  #allocate(bytes: number): Uint8Array {
    return this.shared ? new Uint8Array(new SharedArrayBuffer(bytes)) : new Uint8Array(bytes);
  }

  /** Drops kept buffers until at most `maxPooled` bytes remain pooled. */
  #trim(maxPooled: number): void {
    if (this.#pooled <= maxPooled) return;
    for (const [size, list] of this.#free) {
      while (list.length > 0 && this.#pooled > maxPooled) {
        list.pop();
        this.#pooled -= size;
      }
      if (list.length === 0) this.#free.delete(size);
      if (this.#pooled <= maxPooled) return;
    }
  }
}

function roundUp(bytes: number): number {
  return Math.ceil(bytes / SLAB_ALIGN) * SLAB_ALIGN;
}
