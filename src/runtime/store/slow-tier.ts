import type { ObjectId } from '../../program/access.ts';
import type { DeviceProfile } from './devices.ts';

/**
 * An object's bytes in memory: one buffer, or pieces back to back in order (a read fills them, a write takes them),
 * so an object made of polynomials need not be contiguous.
 *
 * @example
 * ```ts
 * const into: ScatterBytes = [firstPolynomialBytes, secondPolynomialBytes];
 * ```
 */
export type ScatterBytes = Uint8Array | readonly Uint8Array[];

/** The total length of scattered bytes. */
export function scatterBytesLength(into: ScatterBytes): number {
  if (into instanceof Uint8Array) return into.byteLength;
  let total = 0;
  for (const piece of into) total += piece.byteLength;
  return total;
}

/**
 * The pieces of `bytes` back to back in `into` (default: a new buffer of their total length), always a copy.
 *
 * @example
 * ```ts
 * const shared = gatherBytes(pieces, new Uint8Array(new SharedArrayBuffer(scatterBytesLength(pieces))));
 * ```
 */
export function gatherBytes(bytes: ScatterBytes, into?: Uint8Array): Uint8Array {
  const out = into ?? new Uint8Array(scatterBytesLength(bytes));
  let at = 0;
  for (const piece of bytes instanceof Uint8Array ? [bytes] : bytes) {
    out.set(piece, at);
    at += piece.byteLength;
  }
  return out;
}

/**
 * `source` copied into the pieces of `into`, back to back.
 *
 * @example
 * ```ts
 * scatterBytes(staged, [firstPolynomialBytes, secondPolynomialBytes]);
 * ```
 */
export function scatterBytes(source: Uint8Array, into: ScatterBytes): void {
  let at = 0;
  for (const piece of into instanceof Uint8Array ? [into] : into) {
    piece.set(source.subarray(at, at + piece.byteLength));
    at += piece.byteLength;
  }
}

/**
 * A slow tier: where objects go when memory is full, one copy per object id. The planner sees its name, device
 * profile, capacity and per-object overhead (it times transfers with the profile and keeps the tier within its
 * capacity); the executor moves bytes through `read`, `write` and `delete`; the run driver checks it before
 * anything is written (`check`, `ensureRoom`) and starts queued transfers before compute holds the thread
 * (`flush`). {@link FileTier} keeps each object in a file and does its I/O in worker threads; {@link VirtualTier}
 * keeps byte copies in this process (tests, and runs whose slow tier is only modelled).
 *
 * @example
 * ```ts
 * const tiers: SlowTier[] = [await FileTier.open({ name: 'nvme0', dir }), new VirtualTier('cxl', DEVICE_PROFILES.cxl)];
 * ```
 */
export interface SlowTier {
  /** Unique among a run's tiers; actions of a plan name the tier they use. */
  readonly name: string;
  /** How the planner times transfers to and from this tier. */
  readonly device: DeviceProfile;
  /** Bytes the tier may hold, object overheads included. */
  readonly capacityBytes: number;
  /** Bytes of the copies it holds now, object overheads included. */
  readonly usedBytes: number;
  /** Bytes each stored object costs beyond its payload (a file tier's header; 0 for a tier without one). */
  readonly objectOverheadBytes: number;
  /** Whether the tier holds a committed copy of `id`. */
  has(id: ObjectId): boolean;
  /**
   * Reads `id` into `into` — one buffer, or pieces filled back to back (a scatter read, so an object need not be
   * contiguous in memory) — whose total length must equal the stored length.
   *
   * @throws {FormatError} naming the object if the copy is damaged or has another length.
   * @throws {ResourceError} naming the object if the tier holds no copy of it.
   */
  read(id: ObjectId, into: ScatterBytes): Promise<void>;
  /**
   * Stores `bytes` (one buffer or pieces back to back) as the copy of `id`, replacing any; `bytes` must not change
   * until the promise settles.
   */
  write(id: ObjectId, bytes: ScatterBytes): Promise<void>;
  /** Removes the copy of `id`, if any. */
  delete(id: ObjectId): Promise<void>;
  /** Before a run: throws {@link ResourceError} if the tier is gone or not writable; resolves with its free bytes. */
  check(): Promise<number>;
  /** Throws {@link ResourceError} unless `bytes` of payload in `objects` more objects fit (overheads added). */
  ensureRoom(bytes: number, objects?: number): Promise<void>;
  /** Starts the transfers issued so far now (they may be batched); called before compute holds the thread. */
  flush(): void;
  /** Ends the tier's use; its copies are removed unless `keepFiles`. */
  close(options?: { keepFiles?: boolean }): Promise<void>;
}
