import { check } from '../util/assert.ts';
import { ResourceError } from '../util/errors.ts';

/** Retained free buffers are capped at this many bytes when the pool has no finite capacity. */
const UNBOUNDED_POOL_RETAIN_BYTES = 256 * 2 ** 20;

/**
 * Byte buffers under a hard budget, reused by exact size: HE objects come in a handful of sizes (ciphertext,
 * plaintext, key per level), so exact-size free lists avoid both fragmentation and allocation churn. Buffers in
 * use plus buffers kept for reuse never exceed the capacity; a request beyond it throws {@link ResourceError},
 * which the tiered store treats as a broken invariant (its ledger should have made room first).
 *
 * @example
 * ```ts
 * const pool = new BufferPool(64 << 20, 'dram');
 * const buf = pool.acquire(2 << 20);
 * pool.release(buf);
 * ```
 */
export class BufferPool {
  readonly name: string;
  readonly capacityBytes: number;
  readonly #free = new Map<number, Uint8Array[]>();
  #inUse = 0;
  #pooled = 0;
  #peak = 0;

  constructor(capacityBytes: number, name = 'pool') {
    check(
      capacityBytes > 0,
      () => `${name} capacity = ${capacityBytes}: expected a positive byte count or Infinity`,
    );
    this.capacityBytes = capacityBytes;
    this.name = name;
  }

  /** Bytes handed out and not yet released. */
  get bytesInUse(): number {
    return this.#inUse;
  }

  /** Largest {@link BufferPool.bytesInUse} seen. */
  get peakBytes(): number {
    return this.#peak;
  }

  /** Bytes of released buffers kept for reuse. */
  get pooledBytes(): number {
    return this.#pooled;
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
    const list = this.#free.get(bytes);
    if (list && list.length > 0) {
      this.#pooled -= bytes;
      return list.pop()!;
    }
    this.#trim(this.capacityBytes - this.#inUse);
    return new Uint8Array(bytes);
  }

  /** Returns a buffer obtained from {@link BufferPool.acquire}. */
  release(buffer: Uint8Array): void {
    const bytes = buffer.byteLength;
    this.#inUse -= bytes;
    check(this.#inUse >= 0, () => `${this.name}: released more bytes than acquired (${this.#inUse} in use)`);
    const limit = Number.isFinite(this.capacityBytes) ? this.capacityBytes : UNBOUNDED_POOL_RETAIN_BYTES;
    if (this.#inUse + this.#pooled + bytes > limit) return;
    let list = this.#free.get(bytes);
    if (!list) this.#free.set(bytes, (list = []));
    list.push(buffer);
    this.#pooled += bytes;
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

/**
 * Where compute wants its operands: the arena tier hands out and takes back byte buffers. The HE layer will
 * implement it over WebAssembly memory (`src/ring/arena.ts` allocates there); {@link HeapArena} is the default.
 *
 * @example
 * ```ts
 * const arena: ArenaProvider = new HeapArena(1 << 30);
 * const buf = arena.acquire(4096);
 * arena.release(buf);
 * ```
 */
export interface ArenaProvider {
  readonly capacityBytes: number;
  acquire(bytes: number): Uint8Array;
  release(buffer: Uint8Array): void;
}

/**
 * An arena of ordinary heap buffers with a capacity, for synthetic programs and tests.
 *
 * @example
 * ```ts
 * const arena = new HeapArena(256 << 20);
 * ```
 */
export class HeapArena implements ArenaProvider {
  readonly #pool: BufferPool;

  constructor(capacityBytes: number) {
    this.#pool = new BufferPool(capacityBytes, 'arena');
  }

  get capacityBytes(): number {
    return this.#pool.capacityBytes;
  }

  get peakBytes(): number {
    return this.#pool.peakBytes;
  }

  acquire(bytes: number): Uint8Array {
    return this.#pool.acquire(bytes);
  }

  release(buffer: Uint8Array): void {
    this.#pool.release(buffer);
  }
}
