import { constants as fsConstants } from 'node:fs';
import { open, readdir, stat, statfs, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { check } from '../../util/assert.ts';
import { InvalidArgumentError, ResourceError } from '../../util/errors.ts';
import { BusyIntervals } from './busy-intervals.ts';
import { idHash64 } from './checksum.ts';
import { DEVICE_PROFILES, DeviceEmulator, type DeviceProfile } from './devices.ts';
import { defaultIoPool, type IoDone, type IoPool } from '../io/io-pool.ts';
import type { IoTierConfig } from '../io/io-worker.ts';
import { encodeObjectId, HEADER_BYTES } from './object-format.ts';
import type { ObjectId } from '../../program/access.ts';
import {
  gatherBytes,
  type ScatterBytes,
  scatterBytes,
  scatterBytesLength,
  type SlowTier,
} from './slow-tier.ts';

export { HEADER_BYTES } from './object-format.ts';

const COMMITTED_SUFFIX = '.hobj';
const TEMP_SUFFIX = '.tmp';

/**
 * Options of {@link FileTier.open}.
 *
 * @example
 * ```ts
 * const options: FileTierOptions = { name: 'nvme0', dir: '/mnt/nvme/home', maxInFlight: 4, durable: true };
 * ```
 */
export interface FileTierOptions {
  /** Name used in messages and reports, e.g. `nvme0`. */
  name: string;
  /** An existing, writable directory. */
  dir: string;
  /** Bytes this tier may hold; defaults to the free space of the file system at open. */
  capacityBytes?: number;
  /**
   * Chunk reads/writes in flight at once for this tier, per I/O worker (ANCHORS §2: ~4 in flight of ≥ 1 MiB
   * saturate a drive).
   */
  maxInFlight?: number;
  /** Size of one positional read or write. */
  chunkBytes?: number;
  /** fsync each object (and the directory) before and after the rename commit; survives power loss. */
  durable?: boolean;
  /** Delay real I/O to match this (slower) device. */
  emulate?: DeviceProfile;
  /** Profile the virtual clock uses for this tier; defaults to `emulate`, else `nvme-gen4`. */
  device?: DeviceProfile;
  /** The worker threads doing the I/O (default: the process-wide {@link defaultIoPool}). */
  io?: IoPool;
  /** Test hook: runs after the temp file is complete and before it is renamed into place. */
  beforeCommit?: (tempPath: string, id: ObjectId) => Promise<void>;
}

/**
 * I/O counters of one tier.
 *
 * @example
 * ```ts
 * const { bytesRead, readBusyNs } = tier.stats; // GB/s = bytesRead / readBusyNs
 * ```
 */
export interface FileTierStats {
  bytesRead: number;
  bytesWritten: number;
  reads: number;
  writes: number;
  /** Wall time during which at least one read was in flight in a worker (open to verified close). */
  readBusyNs: number;
  /** Wall time during which at least one write was in flight in a worker (open to rename). */
  writeBusyNs: number;
  /** Time added by device emulation. */
  emulationDelayNs: number;
  /** Worker time spent computing payload checksums (reads and writes); bytes hashed = bytesRead + bytesWritten. */
  checksumNs: number;
  /** Of those, bytes the worker hashed where they lie in kernel memory (an arena's), with no copy. */
  hashedInPlaceBytes: number;
  /** Bytes that had to be staged through a shared buffer because the caller's was not shared (copied on main). */
  stagedBytes: number;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isShared(bytes: Uint8Array): boolean {
  return bytes.buffer instanceof SharedArrayBuffer;
}

function toAbsoluteMs(wallNs: number | null): number | null {
  return wallNs === null ? null : performance.timeOrigin + wallNs / 1e6;
}

let nextTierKey = 1;

/**
 * A slow tier backed by files in one directory: one file per object, named by a 64-bit hash of the object id.
 *
 * Layout (`object-format.ts`): a {@link HEADER_BYTES} header (magic `HOMEOBJ\0`, format version, id hash, payload
 * length, payload checksum — XXH32 in format 2, CRC32C in format 1 — the id itself, CRC32C of the header)
 * followed by the payload. Reads verify all of it and throw {@link FormatError} naming the object id on any
 * mismatch.
 *
 * Commit protocol: the object is written to `<hash>.<pid>.<seq>.tmp`, optionally fsynced, then renamed to
 * `<hash>.hobj` (rename is atomic), so a process killed mid-write leaves only a `.tmp` file, which no reader opens
 * and which {@link FileTier.open} deletes once its writer process is gone. A committed file is complete by
 * construction; the length and checksum checks catch torn or damaged files anyway.
 *
 * All file I/O of reads and writes runs in worker threads ({@link IoPool}): open, stat, positional reads and
 * writes of `chunkBytes` with up to `maxInFlight` in flight, checksum, fsync, rename, close, and the wait of
 * device emulation. The main thread posts one request per object and receives one message when it is complete
 * and verified, so a transfer progresses while compute holds the main thread. Buffers backed by a
 * SharedArrayBuffer (the tiered store's pools) are read into and written from in place; other buffers are staged
 * through a shared copy (a memcpy on the calling thread, counted in {@link FileTierStats.stagedBytes}).
 *
 * One file per object rather than one big file: the commit is a rename instead of a space allocator plus a commit
 * log, freeing is an unlink (no compaction), damage stays confined to one object, and the per-object cost of
 * open/close (tens of µs, now in a worker) is small beside transfers of megabytes.
 *
 * @example
 * ```ts
 * const tier = await FileTier.open({ name: 'nvme0', dir: '/mnt/nvme/home' });
 * await tier.write('ct0', bytes);
 * const back = new Uint8Array(new SharedArrayBuffer(bytes.length));
 * await tier.read('ct0', back);
 * await tier.close();
 * ```
 */
export class FileTier implements SlowTier {
  readonly name: string;
  readonly dir: string;
  readonly capacityBytes: number;
  readonly device: DeviceProfile;
  readonly durable: boolean;
  /** Every object file starts with a header of this many bytes. */
  readonly objectOverheadBytes = HEADER_BYTES;
  readonly #config: IoTierConfig;
  readonly #io: IoPool;
  readonly #emulator: DeviceEmulator | null;
  readonly #beforeCommit: FileTierOptions['beforeCommit'];
  readonly #objects = new Map<ObjectId, number>();
  /** Paths by id: hashing the id costs a UTF-8 encoding, and every transfer needs the path. */
  readonly #paths = new Map<ObjectId, string>();
  readonly #readBusy = new BusyIntervals();
  readonly #writeBusy = new BusyIntervals();
  readonly #stats = {
    bytesRead: 0,
    bytesWritten: 0,
    reads: 0,
    writes: 0,
    emulationDelayNs: 0,
    checksumNs: 0,
    hashedInPlaceBytes: 0,
    stagedBytes: 0,
  };
  #used = 0;
  #seq = 0;
  #closed = false;

  private constructor(options: FileTierOptions, dir: string, capacityBytes: number) {
    this.name = options.name;
    this.dir = dir;
    this.capacityBytes = capacityBytes;
    this.durable = options.durable ?? false;
    this.#config = {
      key: nextTierKey++,
      name: options.name,
      chunkBytes: options.chunkBytes ?? 4 * 2 ** 20,
      maxInFlight: options.maxInFlight ?? 4,
    };
    this.#io = options.io ?? defaultIoPool();
    this.#emulator = options.emulate ? new DeviceEmulator(options.emulate) : null;
    this.device = options.device ?? options.emulate ?? DEVICE_PROFILES['nvme-gen4'];
    this.#beforeCommit = options.beforeCommit;
  }

  /**
   * Opens a tier on an existing directory. Fails with {@link ResourceError} before any object is written when the
   * directory is missing, not a directory or not writable (checked by creating and deleting a probe file), or has
   * no free space. Deletes temp files left by writer processes that no longer run.
   */
  static async open(options: FileTierOptions): Promise<FileTier> {
    check(
      typeof options.name === 'string' && options.name.length > 0,
      () => 'FileTier name: expected a non-empty string',
    );
    check(
      typeof options.dir === 'string' && options.dir.length > 0,
      () => `tier ${options.name}: expected a directory path`,
    );
    const chunk = options.chunkBytes ?? 4 * 2 ** 20;
    check(
      Number.isInteger(chunk) && chunk >= 4096,
      () => `tier ${options.name} chunkBytes = ${chunk}: expected an integer >= 4096`,
    );
    const inFlight = options.maxInFlight ?? 4;
    check(
      Number.isInteger(inFlight) && inFlight >= 1,
      () => `tier ${options.name} maxInFlight = ${inFlight}: expected >= 1`,
    );
    const dir = resolve(options.dir);
    await FileTier.#probe(options.name, dir);
    const free = await FileTier.freeBytes(dir);
    const capacity = options.capacityBytes ?? free;
    check(capacity > 0, () => `slow tier ${options.name} capacity = ${capacity}: expected > 0`);
    await FileTier.#removeStaleTemps(dir);
    return new FileTier(options, dir, capacity);
  }

  /**
   * Re-checks, e.g. just before a run, that the directory still exists and is writable; returns the free bytes
   * of its file system. Throws {@link ResourceError} naming the directory otherwise.
   */
  async check(): Promise<number> {
    await FileTier.#probe(this.name, this.dir);
    return FileTier.freeBytes(this.dir);
  }

  static async #probe(name: string, dir: string): Promise<void> {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(dir);
    } catch (error) {
      throw new ResourceError(
        `slow tier ${name}: directory ${dir} is not accessible (${(error as NodeJS.ErrnoException).code}): ` +
          'expected an existing, writable directory',
        { cause: error },
      );
    }
    if (!info.isDirectory()) {
      throw new ResourceError(`slow tier ${name}: ${dir} is not a directory: expected a writable directory`);
    }
    const probe = join(dir, `.home-probe.${process.pid}.${Date.now()}`);
    try {
      const handle = await open(
        probe,
        fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY,
        0o600,
      );
      await handle.write(new Uint8Array(1), 0, 1, 0);
      await handle.close();
      await unlink(probe);
    } catch (error) {
      throw new ResourceError(
        `slow tier ${name}: directory ${dir} is not writable (${(error as NodeJS.ErrnoException).code}): ` +
          'expected a directory this process can create files in',
        { cause: error },
      );
    }
  }

  /** Free bytes of the file system holding `dir`, as an unprivileged process sees them (statfs bavail). */
  static async freeBytes(dir: string): Promise<number> {
    const fsInfo = await statfs(dir);
    return Number(fsInfo.bavail) * Number(fsInfo.bsize);
  }

  static async #removeStaleTemps(dir: string): Promise<void> {
    for (const name of await readdir(dir)) {
      if (!name.endsWith(TEMP_SUFFIX)) continue;
      const parts = name.split('.');
      const pid = Number(parts[parts.length - 3]);
      if (Number.isInteger(pid) && pid !== process.pid && !isProcessAlive(pid)) {
        await unlink(join(dir, name)).catch(() => {});
      }
    }
  }

  /**
   * Throws {@link ResourceError} if `neededBytes` more bytes cannot be stored: beyond the configured capacity or
   * the file system's current free space (including per-object header overhead for `objects` objects).
   */
  async ensureRoom(neededBytes: number, objects = 0): Promise<void> {
    const need = neededBytes + objects * HEADER_BYTES;
    const free = await FileTier.freeBytes(this.dir);
    const capacityLeft = this.capacityBytes - this.#used;
    if (need > capacityLeft || need > free) {
      throw new ResourceError(
        `slow tier ${this.name} (${this.dir}): the program may need ${need} bytes here, but only ` +
          `${Math.min(capacityLeft, free)} are available (capacity left ${capacityLeft}, file system free ${free}): ` +
          'expected a larger tier, another tier, or a larger DRAM budget',
      );
    }
  }

  /** Bytes of committed objects (payload + header) this tier holds. */
  get usedBytes(): number {
    return this.#used;
  }

  /** Whether this tier holds a committed copy of `id` written or adopted by this instance. */
  has(id: ObjectId): boolean {
    return this.#objects.has(id);
  }

  /** Path of the committed file of `id`. */
  pathOf(id: ObjectId): string {
    let path = this.#paths.get(id);
    if (path === undefined) {
      path = join(this.dir, `${idHash64(id)}${COMMITTED_SUFFIX}`);
      this.#paths.set(id, path);
    }
    return path;
  }

  /** The worker pool doing this tier's I/O. */
  get io(): IoPool {
    return this.#io;
  }

  /** Posts the requests queued so far to the I/O workers now (see {@link IoPool.flush}). */
  flush(): void {
    this.#io.flush();
  }

  /** I/O counters so far. */
  get stats(): FileTierStats {
    return {
      ...this.#stats,
      readBusyNs: this.#readBusy.busyNs,
      writeBusyNs: this.#writeBusy.busyNs,
    };
  }

  /**
   * Writes `data` as object `id`, replacing any committed copy atomically. Resolves after the rename. `data` must
   * not change until then (a worker reads it in place when it is backed by a SharedArrayBuffer).
   */
  async write(id: ObjectId, data: ScatterBytes): Promise<void> {
    this.#assertOpen();
    if (!this.#paths.has(id)) encodeObjectId(id);
    const previous = this.#objects.get(id) ?? 0;
    const length = scatterBytesLength(data);
    const size = length + HEADER_BYTES;
    if (this.#used - previous + size > this.capacityBytes) {
      throw new ResourceError(
        `slow tier ${this.name}: writing "${id}" (${length} bytes) would use ${this.#used - previous + size} ` +
          `bytes: expected at most its capacity of ${this.capacityBytes}`,
      );
    }
    // Shared memory is written from in place (pieces gathered by the worker's vectored writes); else one copy.
    const pieces = data instanceof Uint8Array ? [data] : data;
    const payload = pieces.every(isShared)
      ? pieces.length === 1
        ? pieces[0]
        : [...pieces]
      : this.#stage(pieces);
    const finalPath = this.pathOf(id);
    const tempPath = `${finalPath.slice(0, -COMMITTED_SUFFIX.length)}.${process.pid}.${this.#seq++}${TEMP_SUFFIX}`;
    const settleAtMs = toAbsoluteMs(this.emulationTarget('write', size));
    const common = { tier: this.#config, id, dir: this.dir, durable: this.durable };
    const what = `write "${id}" to slow tier ${this.name}`;
    let done: IoDone;
    const busy = this.#writeBusy.begin();
    try {
      if (this.#beforeCommit) {
        const written = await this.#io.request(
          { op: 'write', ...common, tempPath, finalPath: null, data: payload, settleAtMs: null },
          length,
          what,
        );
        try {
          await this.#beforeCommit(tempPath, id);
        } catch (error) {
          await unlink(tempPath).catch(() => {});
          throw error;
        }
        const committed = await this.#io.request(
          { op: 'commit', ...common, tempPath, finalPath, settleAtMs },
          0,
          what,
        );
        done = {
          ...committed,
          startMs: written.startMs,
          checksumNs: written.checksumNs,
          hashedInPlaceBytes: written.hashedInPlaceBytes,
        };
      } else {
        done = await this.#io.request(
          { op: 'write', ...common, tempPath, finalPath, data: payload, settleAtMs },
          length,
          what,
        );
      }
    } catch (error) {
      this.#writeBusy.end(busy);
      throw error;
    }
    this.#writeBusy.end(busy, done);
    this.#stats.emulationDelayNs += done.delayNs;
    this.#stats.checksumNs += done.checksumNs;
    this.#stats.hashedInPlaceBytes += done.hashedInPlaceBytes ?? 0;
    this.#used += size - previous;
    this.#objects.set(id, size);
    this.#stats.bytesWritten += length;
    this.#stats.writes++;
  }

  /**
   * Reads object `id` into `into`, whose length must equal the stored payload length; verifies magic, version,
   * header checksum, id, length and payload checksum (in the worker).
   *
   * @throws {FormatError} naming the object on any mismatch (corruption, truncation, another object's file).
   * @throws {ResourceError} if the file is missing or the I/O worker died.
   */
  async read(id: ObjectId, into: ScatterBytes): Promise<void> {
    this.#assertOpen();
    const path = this.pathOf(id);
    const pieces = into instanceof Uint8Array ? [into] : into;
    const bytes = scatterBytesLength(into);
    // Shared memory (the arena's, the DRAM pool's) is read into in place; anything else through one staging copy.
    const direct = pieces.every(isShared);
    const target = direct
      ? pieces.length === 1
        ? pieces[0]
        : [...pieces]
      : new Uint8Array(new SharedArrayBuffer(bytes));
    const settleAtMs = toAbsoluteMs(this.emulationTarget('read', bytes + HEADER_BYTES));
    const busy = this.#readBusy.begin();
    let done: IoDone;
    try {
      done = await this.#io.request(
        { op: 'read', tier: this.#config, id, path, into: target, settleAtMs },
        bytes,
        `read "${id}" from slow tier ${this.name}`,
      );
    } catch (error) {
      this.#readBusy.end(busy);
      throw error;
    }
    this.#readBusy.end(busy, done);
    if (!direct) {
      scatterBytes(target as Uint8Array, into);
      this.#stats.stagedBytes += bytes;
    }
    this.#stats.emulationDelayNs += done.delayNs;
    this.#stats.checksumNs += done.checksumNs;
    this.#stats.hashedInPlaceBytes += done.hashedInPlaceBytes ?? 0;
    this.#stats.bytesRead += bytes;
    this.#stats.reads++;
  }

  /**
   * Registers an object committed by an earlier run (for model state kept between runs) after checking its header
   * and length; the payload checksum is verified when it is read. Returns false if there is no such file.
   */
  async adopt(id: ObjectId, bytes: number): Promise<boolean> {
    this.#assertOpen();
    const done = await this.#io.request(
      { op: 'adopt', tier: this.#config, id, path: this.pathOf(id), bytes },
      0,
      `adopt "${id}" in slow tier ${this.name}`,
    );
    if (!done.found) return false;
    this.#used += bytes + HEADER_BYTES - (this.#objects.get(id) ?? 0);
    this.#objects.set(id, bytes + HEADER_BYTES);
    return true;
  }

  /** Deletes the committed copy of `id`, if any. */
  async delete(id: ObjectId): Promise<void> {
    const size = this.#objects.get(id);
    if (size === undefined) return;
    this.#objects.delete(id);
    this.#used -= size;
    const what = `slow tier ${this.name}: deleting "${id}"`;
    await this.#io.request({ op: 'delete', path: this.pathOf(id), what }, 0, what);
  }

  /** Deletes the files of every object this instance wrote, unless `keepFiles`, and refuses further I/O. */
  async close(options: { keepFiles?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    if (!options.keepFiles) await Promise.all([...this.#objects.keys()].map((id) => this.delete(id)));
    this.#closed = true;
  }

  /** Wall-clock completion the emulated device would give a transfer issued now, or null without emulation. */
  emulationTarget(direction: 'read' | 'write', bytes: number): number | null {
    return this.#emulator ? this.#emulator.admit(direction, bytes) : null;
  }

  /** A shared copy of `pieces` (back to back) for a worker to write from (the caller's buffers are not shareable). */
  #stage(pieces: readonly Uint8Array[]): Uint8Array {
    const shared = gatherBytes(pieces, new Uint8Array(new SharedArrayBuffer(scatterBytesLength(pieces))));
    this.#stats.stagedBytes += shared.byteLength;
    return shared;
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidArgumentError(`slow tier ${this.name}: used after close()`);
  }
}
