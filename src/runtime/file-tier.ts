import { constants as fsConstants } from 'node:fs';
import { type FileHandle, open, readdir, rename, stat, statfs, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { check } from '../util/assert.ts';
import { FormatError, InvalidArgumentError, ResourceError } from '../util/errors.ts';
import { crc32c, idHash64 } from './checksum.ts';
import { DEVICE_PROFILES, DeviceEmulator, type DeviceProfile, nowNs } from './devices.ts';
import type { ObjectId } from './program.ts';

/**
 * Bytes before an object's payload. 4 KiB keeps the payload aligned to the logical block size of NVMe drives and
 * to the 512-byte alignment O_DIRECT needs (ANCHORS §2), should direct I/O be added later.
 *
 * @example
 * ```ts
 * const fileBytes = HEADER_BYTES + payload.byteLength;
 * ```
 */
export const HEADER_BYTES = 4096;
const MAGIC = new TextEncoder().encode('HOMEOBJ\0');
const FORMAT_VERSION = 1;
const MAX_ID_BYTES = HEADER_BYTES - 64;
const OFFSET = {
  magic: 0,
  version: 8,
  headerBytes: 12,
  idHashHigh: 16,
  idHashLow: 20,
  payloadBytes: 24,
  payloadCrc: 32,
  idBytes: 36,
  flags: 40,
  headerCrc: 44,
  id: 48,
} as const;
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
  /** Chunk reads/writes in flight at once across the tier (ANCHORS §2: ~4 in flight of ≥ 1 MiB saturate). */
  maxInFlight?: number;
  /** Size of one positional read or write. */
  chunkBytes?: number;
  /** fsync each object (and the directory) before and after the rename commit; survives power loss. */
  durable?: boolean;
  /** Delay real I/O to match this (slower) device. */
  emulate?: DeviceProfile;
  /** Profile the virtual clock uses for this tier; defaults to `emulate`, else `nvme-gen4`. */
  device?: DeviceProfile;
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
  /** Wall time during which at least one read was in flight. */
  readBusyNs: number;
  /** Wall time during which at least one write was in flight. */
  writeBusyNs: number;
  /** Time added by device emulation. */
  emulationDelayNs: number;
}

/** Counts overlapping operations to measure busy wall time. */
class BusyClock {
  #active = 0;
  #since = 0;
  busyNs = 0;
  enter(): void {
    if (this.#active++ === 0) this.#since = nowNs();
  }
  leave(): void {
    if (--this.#active === 0) this.busyNs += nowNs() - this.#since;
  }
}

/** A FIFO counting semaphore bounding chunk operations in flight. */
class Semaphore {
  #available: number;
  readonly #waiting: (() => void)[] = [];
  constructor(count: number) {
    this.#available = count;
  }
  async acquire(): Promise<void> {
    if (this.#available > 0) {
      this.#available--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#available++;
  }
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A slow tier backed by files in one directory: one file per object, named by a 64-bit hash of the object id.
 *
 * Layout: a {@link HEADER_BYTES} header (magic `HOMEOBJ\0`, format version, id hash, payload length, CRC32C of
 * the payload, the id itself, CRC32C of the header) followed by the payload. Reads verify all of it and throw
 * {@link FormatError} naming the object id on any mismatch.
 *
 * Commit protocol: the object is written to `<hash>.<pid>.<seq>.tmp`, optionally fsynced, then renamed to
 * `<hash>.hobj` (rename is atomic), so a process killed mid-write leaves only a `.tmp` file, which no reader opens
 * and which {@link FileTier.open} deletes once its writer process is gone. A committed file is complete by
 * construction; the length and checksum checks catch torn or damaged files anyway.
 *
 * One file per object rather than one big file: the commit is a rename instead of a space allocator plus a commit
 * log, freeing is an unlink (no compaction), damage stays confined to one object, and the per-object cost of
 * open/close (tens of µs) is small beside transfers of megabytes (a 2 MiB ciphertext takes ≥ 100 µs even at
 * 20 GB/s). Transfers are split into `chunkBytes` positional reads/writes with up to `maxInFlight` in flight.
 *
 * @example
 * ```ts
 * const tier = await FileTier.open({ name: 'nvme0', dir: '/mnt/nvme/home' });
 * await tier.write('ct0', bytes);
 * const back = new Uint8Array(bytes.length);
 * await tier.read('ct0', back);
 * await tier.close();
 * ```
 */
export class FileTier {
  readonly name: string;
  readonly dir: string;
  readonly capacityBytes: number;
  readonly device: DeviceProfile;
  readonly durable: boolean;
  readonly #chunkBytes: number;
  readonly #slots: Semaphore;
  readonly #emulator: DeviceEmulator | null;
  readonly #beforeCommit: FileTierOptions['beforeCommit'];
  readonly #objects = new Map<ObjectId, number>();
  readonly #readClock = new BusyClock();
  readonly #writeClock = new BusyClock();
  readonly #stats = { bytesRead: 0, bytesWritten: 0, reads: 0, writes: 0 };
  #used = 0;
  #seq = 0;
  #closed = false;

  private constructor(options: FileTierOptions, dir: string, capacityBytes: number) {
    this.name = options.name;
    this.dir = dir;
    this.capacityBytes = capacityBytes;
    this.durable = options.durable ?? false;
    this.#chunkBytes = options.chunkBytes ?? 4 * 2 ** 20;
    this.#slots = new Semaphore(options.maxInFlight ?? 4);
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
    return join(this.dir, `${idHash64(id)}${COMMITTED_SUFFIX}`);
  }

  /** I/O counters so far. */
  get stats(): FileTierStats {
    return {
      ...this.#stats,
      readBusyNs: this.#readClock.busyNs,
      writeBusyNs: this.#writeClock.busyNs,
      emulationDelayNs: this.#emulator?.delayedNs ?? 0,
    };
  }

  /**
   * Writes `data` as object `id`, replacing any committed copy atomically. Resolves after the rename.
   */
  async write(id: ObjectId, data: Uint8Array): Promise<void> {
    this.#assertOpen();
    const previous = this.#objects.get(id) ?? 0;
    const size = data.byteLength + HEADER_BYTES;
    if (this.#used - previous + size > this.capacityBytes) {
      throw new ResourceError(
        `slow tier ${this.name}: writing "${id}" (${data.byteLength} bytes) would use ${this.#used - previous + size} ` +
          `bytes: expected at most its capacity of ${this.capacityBytes}`,
      );
    }
    const header = encodeHeader(id, data);
    const temp = join(this.dir, `${idHash64(id)}.${process.pid}.${this.#seq++}${TEMP_SUFFIX}`);
    const target = this.emulationTarget('write', size);
    this.#writeClock.enter();
    let handle: FileHandle | null = null;
    try {
      handle = await open(temp, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o600);
      const h = handle;
      const jobs: Promise<unknown>[] = [this.#chunked(() => h.write(header, 0, HEADER_BYTES, 0))];
      for (let offset = 0; offset < data.byteLength; offset += this.#chunkBytes) {
        const length = Math.min(this.#chunkBytes, data.byteLength - offset);
        jobs.push(this.#chunked(() => writeFully(h, data, offset, length, HEADER_BYTES + offset)));
      }
      await Promise.all(jobs);
      if (this.durable) await handle.sync();
      await handle.close();
      handle = null;
      if (this.#beforeCommit) await this.#beforeCommit(temp, id);
      await rename(temp, this.pathOf(id));
      if (this.durable) await syncDirectory(this.dir);
    } catch (error) {
      await handle?.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw wrapIoError(error, `slow tier ${this.name}: writing "${id}" to ${temp}`);
    } finally {
      this.#writeClock.leave();
    }
    if (target !== null) await this.#emulator!.settle(target);
    this.#used += size - previous;
    this.#objects.set(id, size);
    this.#stats.bytesWritten += data.byteLength;
    this.#stats.writes++;
  }

  /**
   * Reads object `id` into `into`, whose length must equal the stored payload length; verifies magic, version,
   * header checksum, id, length and payload CRC32C.
   *
   * @throws {FormatError} naming the object on any mismatch (corruption, truncation, another object's file).
   * @throws {ResourceError} if the file is missing.
   */
  async read(id: ObjectId, into: Uint8Array): Promise<void> {
    this.#assertOpen();
    const path = this.pathOf(id);
    const target = this.emulationTarget('read', into.byteLength + HEADER_BYTES);
    this.#readClock.enter();
    let handle: FileHandle | null = null;
    try {
      try {
        handle = await open(path, 'r');
      } catch (error) {
        throw new ResourceError(
          `slow tier ${this.name}: object "${id}" has no committed file ${path} ` +
            `(${(error as NodeJS.ErrnoException).code}): expected it to have been written`,
          { cause: error },
        );
      }
      const h = handle;
      const header = new Uint8Array(HEADER_BYTES);
      // The size check runs alongside the reads: each awaited step costs a turn of the main thread, which
      // compute may be holding, so a load should need as few of them as possible.
      const jobs: Promise<unknown>[] = [
        h.stat(),
        this.#chunked(() => readFully(h, header, 0, HEADER_BYTES, 0, id, this.name)),
      ];
      for (let offset = 0; offset < into.byteLength; offset += this.#chunkBytes) {
        const length = Math.min(this.#chunkBytes, into.byteLength - offset);
        jobs.push(
          this.#chunked(() => readFully(h, into, offset, length, HEADER_BYTES + offset, id, this.name)),
        );
      }
      const settled = await Promise.allSettled(jobs);
      if (settled[0].status === 'rejected') throw settled[0].reason;
      const { size } = settled[0].value as { size: number };
      // A short file makes some reads fail; the header check reports it precisely (truncated, torn, foreign).
      verifyHeader(header, id, into.byteLength, size, this.name, path);
      for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
      const crc = crc32c(0, into);
      const stored = new DataView(header.buffer).getUint32(OFFSET.payloadCrc, true);
      if (crc !== stored) {
        throw new FormatError(
          `object "${id}" in slow tier ${this.name} (${path}): payload checksum mismatch (stored CRC32C ` +
            `0x${hex32(stored)}, computed 0x${hex32(crc)}): expected an intact copy; the file is corrupted`,
        );
      }
      await h.close();
      handle = null;
    } catch (error) {
      await handle?.close().catch(() => {});
      throw error;
    } finally {
      this.#readClock.leave();
    }
    if (target !== null) await this.#emulator!.settle(target);
    this.#stats.bytesRead += into.byteLength;
    this.#stats.reads++;
  }

  /**
   * Registers an object committed by an earlier run (for model state kept between runs) after checking its header
   * and length; the payload checksum is verified when it is read. Returns false if there is no such file.
   */
  async adopt(id: ObjectId, bytes: number): Promise<boolean> {
    const path = this.pathOf(id);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch {
      return false;
    }
    try {
      const header = new Uint8Array(HEADER_BYTES);
      const { size } = await handle.stat();
      await readFully(handle, header, 0, Math.min(HEADER_BYTES, size), 0, id, this.name).catch(() => {});
      verifyHeader(header, id, bytes, size, this.name, path);
    } finally {
      await handle.close();
    }
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
    await unlink(this.pathOf(id)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw wrapIoError(error, `slow tier ${this.name}: deleting "${id}"`);
    });
  }

  /** Deletes the files of every object this instance wrote, unless `keepFiles`, and refuses further I/O. */
  async close(options: { keepFiles?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    if (!options.keepFiles) {
      for (const id of [...this.#objects.keys()]) await this.delete(id);
    }
    this.#closed = true;
  }

  /** Wall-clock completion the emulated device would give a transfer issued now, or null without emulation. */
  emulationTarget(direction: 'read' | 'write', bytes: number): number | null {
    return this.#emulator ? this.#emulator.admit(direction, bytes) : null;
  }

  async #chunked<T>(job: () => Promise<T>): Promise<T> {
    await this.#slots.acquire();
    try {
      return await job();
    } finally {
      this.#slots.release();
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidArgumentError(`slow tier ${this.name}: used after close()`);
  }
}

function hex32(x: number): string {
  return x.toString(16).padStart(8, '0');
}

function encodeHeader(id: ObjectId, data: Uint8Array): Uint8Array {
  const idBytes = new TextEncoder().encode(id);
  if (idBytes.length > MAX_ID_BYTES) {
    throw new InvalidArgumentError(
      `object id of ${idBytes.length} UTF-8 bytes: expected at most ${MAX_ID_BYTES}`,
    );
  }
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(MAGIC, OFFSET.magic);
  view.setUint32(OFFSET.version, FORMAT_VERSION, true);
  view.setUint32(OFFSET.headerBytes, HEADER_BYTES, true);
  const hash = idHash64(id);
  view.setUint32(OFFSET.idHashHigh, Number.parseInt(hash.slice(0, 8), 16), true);
  view.setUint32(OFFSET.idHashLow, Number.parseInt(hash.slice(8), 16), true);
  view.setFloat64(OFFSET.payloadBytes, data.byteLength, true);
  view.setUint32(OFFSET.payloadCrc, crc32c(0, data), true);
  view.setUint32(OFFSET.idBytes, idBytes.length, true);
  view.setUint32(OFFSET.flags, 0, true);
  header.set(idBytes, OFFSET.id);
  view.setUint32(OFFSET.headerCrc, crc32c(0, header), true);
  return header;
}

function verifyHeader(
  header: Uint8Array,
  id: ObjectId,
  expectedBytes: number,
  fileSize: number,
  tier: string,
  path: string,
): void {
  const fail = (what: string) => {
    throw new FormatError(`object "${id}" in slow tier ${tier} (${path}): ${what}`);
  };
  if (fileSize < HEADER_BYTES)
    fail(
      `file is ${fileSize} bytes, shorter than its ${HEADER_BYTES}-byte header: expected a complete object`,
    );
  for (let i = 0; i < MAGIC.length; i++) {
    if (header[i] !== MAGIC[i]) fail('bad magic: expected a HomE object file');
  }
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const storedCrc = view.getUint32(OFFSET.headerCrc, true);
  view.setUint32(OFFSET.headerCrc, 0, true);
  const crc = crc32c(0, header);
  view.setUint32(OFFSET.headerCrc, storedCrc, true);
  if (crc !== storedCrc)
    fail(
      `header checksum mismatch (stored 0x${hex32(storedCrc)}, computed 0x${hex32(crc)}): the file is corrupted`,
    );
  const version = view.getUint32(OFFSET.version, true);
  if (version !== FORMAT_VERSION) fail(`format version ${version}: expected ${FORMAT_VERSION}`);
  const hash = idHash64(id);
  const high = hex32(view.getUint32(OFFSET.idHashHigh, true));
  const low = hex32(view.getUint32(OFFSET.idHashLow, true));
  const idLength = view.getUint32(OFFSET.idBytes, true);
  const storedId = new TextDecoder().decode(
    header.subarray(OFFSET.id, OFFSET.id + Math.min(idLength, MAX_ID_BYTES)),
  );
  if (high + low !== hash || storedId !== id) fail(`file holds object "${storedId}": expected "${id}"`);
  const length = view.getFloat64(OFFSET.payloadBytes, true);
  if (length !== expectedBytes) fail(`payload is ${length} bytes: expected ${expectedBytes}`);
  if (fileSize !== HEADER_BYTES + length) {
    fail(
      `file is ${fileSize} bytes: expected ${HEADER_BYTES + length} (header + payload); it is truncated or torn`,
    );
  }
}

async function writeFully(
  handle: FileHandle,
  data: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await handle.write(data, offset + done, length - done, position + done);
    done += bytesWritten;
  }
}

async function readFully(
  handle: FileHandle,
  into: Uint8Array,
  offset: number,
  length: number,
  position: number,
  id: ObjectId,
  tier: string,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(into, offset + done, length - done, position + done);
    if (bytesRead === 0) {
      throw new FormatError(
        `object "${id}" in slow tier ${tier}: file ended at byte ${position + done}: expected ${position + length} bytes`,
      );
    }
    done += bytesRead;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function wrapIoError(error: unknown, context: string): Error {
  if (error instanceof ResourceError || error instanceof FormatError || error instanceof InvalidArgumentError)
    return error;
  const code = (error as NodeJS.ErrnoException).code;
  const hint =
    code === 'ENOSPC'
      ? 'the tier is full'
      : code === 'EACCES' || code === 'EROFS'
        ? 'the tier is not writable'
        : 'I/O failed';
  return new ResourceError(`${context}: ${hint} (${code ?? String(error)})`, { cause: error });
}
