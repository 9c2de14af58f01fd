import { check } from '../../util/assert.ts';
import { MismatchError } from '../../util/errors.ts';
import type { ObjectId } from '../../program/access.ts';
import { BufferPool } from '../store/buffer-pool.ts';
import type { ExecArena } from './executor.ts';

/**
 * The compute level of programs whose compute works on bytes (synthetic workloads, timing runs): each live object
 * is one buffer of its declared size, carved from a pool of shared memory with a hard capacity, so a slow-tier
 * read lands in it and a write-back leaves from it in place, and the peak it reports is the memory it really held.
 * An object's byte form and stored form are its bytes.
 *
 * @example
 * ```ts
 * const arena = new ByteArena(64 << 20, (id) => analysis.bytesOf(id));
 * arena.allocate('y');
 * arena.get('y').fill(1);
 * ```
 */
export class ByteArena implements ExecArena<Uint8Array> {
  readonly #pool: BufferPool;
  readonly #sizeOf: (id: ObjectId) => number;
  readonly #live = new Map<ObjectId, Uint8Array>();
  /** Loads in flight: the buffers a slow tier is filling. */
  readonly #pending = new Map<ObjectId, Uint8Array>();

  constructor(capacityBytes: number, sizeOf: (id: ObjectId) => number) {
    this.#pool = new BufferPool(capacityBytes, 'arena', { shared: true });
    this.#sizeOf = sizeOf;
  }

  get capacityBytes(): number {
    return this.#pool.capacityBytes;
  }

  /** Bytes of the buffers held (live objects and loads in flight), and the most held at once. */
  get bytesInUse(): number {
    return this.#pool.bytesInUse;
  }

  get peakBytes(): number {
    return this.#pool.peakBytes;
  }

  has(id: ObjectId): boolean {
    return this.#live.has(id);
  }

  /** The bytes of live `id` (compute reads and writes them in place). */
  get(id: ObjectId): Uint8Array {
    const bytes = this.#live.get(id);
    if (!bytes) throw new MismatchError(`object "${id}": expected it live in the arena`);
    return bytes;
  }

  fullBytes(id: ObjectId): number {
    return this.#sizeOf(id);
  }

  storedBytes(id: ObjectId): number {
    return this.#sizeOf(id);
  }

  fromBytes(id: ObjectId, bytes: Uint8Array): void {
    const buffer = this.#acquire(id);
    buffer.set(bytes.subarray(0, buffer.byteLength));
    this.#live.set(id, buffer);
  }

  toBytes(id: ObjectId, into: Uint8Array): void {
    into.set(this.get(id));
  }

  byteView(id: ObjectId): Uint8Array {
    return this.get(id);
  }

  loadTarget(id: ObjectId): Uint8Array {
    check(!this.#pending.has(id), () => `object "${id}": a load is already in flight`);
    const buffer = this.#acquire(id);
    this.#pending.set(id, buffer);
    return buffer;
  }

  completeLoad(id: ObjectId, target: Uint8Array): void {
    check(this.#pending.get(id) === target, () => `object "${id}": no load in flight into this buffer`);
    this.#pending.delete(id);
    this.#live.set(id, target);
  }

  abortLoad(id: ObjectId): void {
    const buffer = this.#pending.get(id);
    if (!buffer) return;
    this.#pending.delete(id);
    this.#pool.release(buffer);
  }

  /** Stored and byte forms are the same bytes. */
  expandStored(): void {}

  allocate(id: ObjectId): void {
    this.#live.set(id, this.#acquire(id));
  }

  drop(id: ObjectId): void {
    const buffer = this.#live.get(id);
    if (!buffer) return;
    this.#live.delete(id);
    this.#pool.release(buffer);
  }

  materializeDetached(id: ObjectId, bytes: Uint8Array | null): Uint8Array {
    const source = bytes ?? this.get(id);
    return Uint8Array.from(source.subarray(0, this.#sizeOf(id)));
  }

  /** Detached copies are plain buffers: nothing to free. */
  disposeDetached(): void {}

  clear(): void {
    for (const id of [...this.#live.keys()]) this.drop(id);
    for (const id of [...this.#pending.keys()]) this.abortLoad(id);
  }

  #acquire(id: ObjectId): Uint8Array {
    check(!this.#live.has(id), () => `object "${id}": placed in the arena while another live copy exists`);
    return this.#pool.acquire(this.#sizeOf(id));
  }
}
