import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  fsync,
  openSync,
  readv,
  renameSync,
  unlink,
  unlinkSync,
  writev,
} from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { collectGarbage } from '../../platform/collect-garbage.ts';
import { xxh32InPlace } from '../../ring/hash.ts';
import { FormatError, InvalidArgumentError, ResourceError } from '../../util/errors.ts';
import {
  encodeObjectHeader,
  HEADER_BYTES,
  OBJECT_FORMAT_VERSION,
  payloadChecksum,
  payloadChecksumAlgorithm,
  verifyObjectHeader,
  verifyPayloadChecksum,
} from '../store/object-format.ts';
import type { ObjectId } from '../../program/access.ts';

/*
 * The body of an I/O worker thread ({@link IoPool} starts it). Every stage of a slow-tier transfer runs here:
 * open, positional vectored reads and writes of large chunks with several in flight (in the thread pool), payload
 * checksum, fsync, rename, close, and the wait of device emulation. The main thread only posts a request and receives one message when the
 * transfer is complete and verified, so compute holding the main thread no longer stalls I/O.
 */

/**
 * The tier a request belongs to: chunk size and chunk operations in flight (per worker).
 *
 * @example
 * ```ts
 * const tier: IoTierConfig = { key: 1, name: 'nvme0', chunkBytes: 4 << 20, maxInFlight: 4 };
 * ```
 */
export interface IoTierConfig {
  /** Unique per FileTier instance in the process (semaphores are per tier). */
  key: number;
  name: string;
  chunkBytes: number;
  maxInFlight: number;
}

/**
 * Bytes of a SharedArrayBuffer the worker already holds (sent once with a `share` message): posting a
 * SharedArrayBuffer costs ~10 µs of main-thread time per message, a reference by number almost nothing.
 *
 * @example
 * ```ts
 * const ref: SharedBytesRef = { memory: 3, byteOffset: 1 << 20, byteLength: 512 << 10 };
 * ```
 */
export interface SharedBytesRef {
  memory: number;
  byteOffset: number;
  byteLength: number;
}

/**
 * A payload buffer in a request: a view of a SharedArrayBuffer, or a reference into one shared before.
 *
 * @example
 * ```ts
 * const bytes: IoBytes = new Uint8Array(new SharedArrayBuffer(4096));
 * ```
 */
export type IoBytes = Uint8Array | SharedBytesRef;

/**
 * A request to an I/O worker. Buffers are views of SharedArrayBuffers: the worker reads into and writes from the
 * caller's memory directly. `settleAtMs` (absolute, `performance.timeOrigin + performance.now()`) delays the
 * reply until an emulated slower device would have finished.
 *
 * @example
 * ```ts
 * const request: IoRequest = { op: 'delete', seq: 7, path: '/mnt/nvme/home/0123456789abcdef.hobj' };
 * ```
 */
export type IoRequest =
  | {
      op: 'read';
      seq: number;
      tier: IoTierConfig;
      id: ObjectId;
      path: string;
      /** The payload's memory: one buffer, or pieces filled back to back (a scatter read). */
      into: IoBytes | IoBytes[];
      settleAtMs: number | null;
    }
  | {
      op: 'write';
      seq: number;
      tier: IoTierConfig;
      id: ObjectId;
      tempPath: string;
      /** Rename target; null leaves the complete temp file for a later `commit`. */
      finalPath: string | null;
      dir: string;
      /** The payload: one buffer, or pieces taken back to back (a gather write). */
      data: IoBytes | IoBytes[];
      durable: boolean;
      settleAtMs: number | null;
    }
  | {
      op: 'commit';
      seq: number;
      tier: IoTierConfig;
      id: ObjectId;
      tempPath: string;
      finalPath: string;
      dir: string;
      durable: boolean;
      settleAtMs: number | null;
    }
  | { op: 'adopt'; seq: number; tier: IoTierConfig; id: ObjectId; path: string; bytes: number }
  | { op: 'delete'; seq: number; path: string; what: string }
  | { op: 'crash'; seq: number }
  /**
   * Keeps `memory` for later {@link SharedBytesRef}s (no reply). With `kernel`, `memory` is that kernel memory's
   * buffer: the thread instantiates the kernels over it and hashes payloads there in place, with its own state.
   */
  | {
      op: 'share';
      seq: number;
      id: number;
      memory: SharedArrayBuffer;
      kernel?: { memory: WebAssembly.Memory; module: WebAssembly.Module; state: number };
    }
  /** Forgets a shared memory (no reply). */
  | { op: 'unshare'; seq: number; id: number };

/**
 * The operation kinds of {@link IoRequest}.
 *
 * @example
 * ```ts
 * const op: IoOp = 'read';
 * ```
 */
export type IoOp = IoRequest['op'];

/**
 * A worker's answer to one request. Times are absolute milliseconds (comparable across threads).
 *
 * @example
 * ```ts
 * const busyMs = reply.ok ? reply.endMs - reply.startMs : 0;
 * ```
 */
export type IoReply =
  | {
      seq: number;
      ok: true;
      /** The transfer began (the worker took the request). */
      startMs: number;
      /** The transfer and verification finished (before any emulation wait). */
      endMs: number;
      /** Nanoseconds spent computing the payload checksum. */
      checksumNs: number;
      /** Payload bytes hashed where they lie in a kernel memory (read, write), with no copy. */
      hashedInPlaceBytes?: number;
      /** Nanoseconds the reply was held back by device emulation. */
      delayNs: number;
      /** `adopt`: whether a committed file was found. */
      found?: boolean;
    }
  | { seq: number; ok: false; error: { name: string; message: string } };

/**
 * Absolute milliseconds, comparable between threads (each has its own `performance.timeOrigin`).
 *
 * @example
 * ```ts
 * const settleAtMs = absoluteMs() + 0.25; // 250 µs from now, in any thread
 * ```
 */
export function absoluteMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A FIFO counting semaphore bounding chunk operations in flight. */
class Semaphore {
  #available: number;
  readonly #waiting: (() => void)[] = [];
  constructor(count: number) {
    this.#available = count;
  }
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.#available > 0) this.#available--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await job();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#available++;
    }
  }
}

const slots = new Map<number, Semaphore>();
const sharedMemories = new Map<number, SharedArrayBuffer>();

/** The kernels instantiated over a kernel memory shared with this thread, and this thread's hash state there. */
interface InPlaceHasher {
  readonly exports: WebAssembly.Exports;
  readonly state: number;
}

/** By shared memory id: the kernels over that memory (its buffer is a kernel memory's). */
const inPlaceHashers = new Map<number, InPlaceHasher>();

/**
 * The payload checksum of `refs` (whose bytes are `pieces`): in place when every piece lies in one kernel memory
 * and the format hashes with XXH32 — no copy into this thread's own memory, which cost as much as the hash —
 * else by {@link payloadChecksum}. Both give the same value.
 */
function checksumOf(
  refs: readonly IoBytes[],
  pieces: readonly Uint8Array[],
  version: number,
): { checksum: number; inPlace: boolean } {
  let hasher: InPlaceHasher | undefined;
  if (payloadChecksumAlgorithm(version) === 'xxh32') {
    for (const ref of refs) {
      const found = ref instanceof Uint8Array ? undefined : inPlaceHashers.get(ref.memory);
      if (!found || (hasher && hasher.state !== found.state)) {
        hasher = undefined;
        break;
      }
      hasher = found;
    }
  }
  if (!hasher)
    return { checksum: payloadChecksum(pieces.length === 1 ? pieces[0] : pieces, version), inPlace: false };
  const segments = (refs as readonly SharedBytesRef[]).map((ref) => ({
    pointer: ref.byteOffset,
    byteLength: ref.byteLength,
  }));
  return { checksum: xxh32InPlace(hasher.exports, hasher.state, segments), inPlace: true };
}

function bytesOf(bytes: IoBytes): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  const memory = sharedMemories.get(bytes.memory);
  if (!memory) throw new InvalidArgumentError(`I/O worker: shared memory ${bytes.memory} was never shared`);
  return new Uint8Array(memory, bytes.byteOffset, bytes.byteLength);
}

function slotsOf(tier: IoTierConfig): Semaphore {
  let semaphore = slots.get(tier.key);
  if (!semaphore) slots.set(tier.key, (semaphore = new Semaphore(tier.maxInFlight)));
  return semaphore;
}

async function settle(atMs: number | null): Promise<number> {
  if (atMs === null) return 0;
  const wait = atMs - absoluteMs();
  if (wait <= 0) return 0;
  // A timer for the bulk, then polling for the last millisecond (timers fire with ~1 ms granularity).
  if (wait > 2) await new Promise<void>((resolve) => setTimeout(resolve, Math.floor(wait - 1)));
  while (absoluteMs() < atMs) await new Promise<void>((resolve) => setImmediate(resolve));
  return wait * 1e6;
}

/**
 * Positional vectored I/O on a file descriptor, several calls in flight at once (the thread pool runs them).
 * Metadata calls (open, close, rename, fstat) are made synchronously on this thread instead: each is a few
 * microseconds of kernel work, while handing it to the thread pool and back costs two thread wake-ups, which on a
 * machine with few cores can each take the core from compute or from this thread. Deleting an object's file is
 * the exception (see {@link deleteFile}).
 */
function preadv(fd: number, buffers: Uint8Array[], position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    readv(fd, buffers, position, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead)));
  });
}

function pwritev(fd: number, buffers: Uint8Array[], position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    writev(fd, buffers, position, (error, bytesWritten) => (error ? reject(error) : resolve(bytesWritten)));
  });
}

function flushToDisk(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fsync(fd, (error) => (error ? reject(error) : resolve()));
  });
}

/** The parts of `buffers` (back to back) after their first `skip` bytes. */
function unfilled(buffers: Uint8Array[], skip: number): Uint8Array[] {
  if (skip === 0) return buffers;
  const rest: Uint8Array[] = [];
  for (const b of buffers) {
    if (skip >= b.byteLength) {
      skip -= b.byteLength;
      continue;
    }
    rest.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return rest;
}

function totalBytes(buffers: Uint8Array[]): number {
  let total = 0;
  for (const b of buffers) total += b.byteLength;
  return total;
}

async function writevFully(fd: number, buffers: Uint8Array[], position: number): Promise<void> {
  const total = totalBytes(buffers);
  let done = 0;
  while (done < total) done += await pwritev(fd, unfilled(buffers, done), position + done);
}

/**
 * Reads `buffers` back to back from `position` until they are full or the file ends; returns the bytes read.
 * One preadv in the common case (a regular file returns everything unless it ends first).
 */
async function readvFully(fd: number, buffers: Uint8Array[], position: number): Promise<number> {
  const total = totalBytes(buffers);
  let done = 0;
  while (done < total) {
    const bytesRead = await preadv(fd, unfilled(buffers, done), position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

async function syncDirectory(dir: string): Promise<void> {
  const fd = openSync(dir, 'r');
  try {
    await flushToDisk(fd);
  } finally {
    closeSync(fd);
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

interface Done {
  startMs: number;
  endMs: number;
  checksumNs: number;
  hashedInPlaceBytes?: number;
  found?: boolean;
}

function openForReading(path: string, id: ObjectId, tier: string): number {
  try {
    return openSync(path, 'r');
  } catch (error) {
    throw new ResourceError(
      `slow tier ${tier}: object "${id}" has no committed file ${path} ` +
        `(${(error as NodeJS.ErrnoException).code}): expected it to have been written`,
      { cause: error },
    );
  }
}

/**
 * The payload `pieces` (back to back) cut into chunks of at most `chunkBytes`, each as the buffers one vectored
 * call fills, with its offset in the payload. An empty payload is one empty chunk.
 */
function payloadChunks(
  pieces: readonly Uint8Array[],
  chunkBytes: number,
): { offset: number; buffers: Uint8Array[] }[] {
  const chunks: { offset: number; buffers: Uint8Array[] }[] = [];
  let current: { offset: number; buffers: Uint8Array[] } = { offset: 0, buffers: [] };
  let room = chunkBytes;
  let offset = 0;
  for (const piece of pieces) {
    let at = 0;
    while (at < piece.byteLength) {
      if (room === 0) {
        chunks.push(current);
        current = { offset, buffers: [] };
        room = chunkBytes;
      }
      const take = Math.min(room, piece.byteLength - at);
      current.buffers.push(piece.subarray(at, at + take));
      at += take;
      offset += take;
      room -= take;
    }
  }
  chunks.push(current);
  return chunks;
}

async function readObject(request: Extract<IoRequest, { op: 'read' }>): Promise<Done> {
  const { tier, id, path } = request;
  const refs = Array.isArray(request.into) ? request.into : [request.into];
  const pieces = refs.map(bytesOf);
  let payloadBytes = 0;
  for (const piece of pieces) payloadBytes += piece.byteLength;
  const startMs = absoluteMs();
  let checksumNs = 0;
  let hashedInPlaceBytes = 0;
  let fd = -1;
  try {
    fd = openForReading(path, id, tier.name);
    const file = fd;
    const semaphore = slotsOf(tier);
    const header = new Uint8Array(HEADER_BYTES);
    // The header travels with the first chunk and a one-byte probe with the last, so a small object costs one
    // preadv and a file of the wrong length shows up without a stat (which then only runs to report it).
    const probe = new Uint8Array(1);
    const chunks = payloadChunks(pieces, tier.chunkBytes);
    const jobs: Promise<boolean>[] = [];
    chunks.forEach(({ offset, buffers: payload }, c) => {
      const buffers = c === 0 ? [header, ...payload] : [...payload];
      if (c === chunks.length - 1) buffers.push(probe);
      const position = c === 0 ? 0 : HEADER_BYTES + offset;
      let expected = c === 0 ? HEADER_BYTES : 0;
      for (const b of payload) expected += b.byteLength;
      jobs.push(semaphore.run(async () => (await readvFully(file, buffers, position)) === expected));
    });
    const settled = await Promise.allSettled(jobs);
    for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
    const exact = settled.every((o) => o.status === 'fulfilled' && o.value);
    // A short or long file: the header check names the problem precisely (truncated, torn, foreign object).
    const size = exact ? HEADER_BYTES + payloadBytes : fstatSync(file).size;
    const parsed = verifyObjectHeader(header, id, payloadBytes, size, tier.name, path);
    if (!exact) {
      throw new FormatError(
        `object "${id}" in slow tier ${tier.name} (${path}): file is ${size} bytes: expected ` +
          `${HEADER_BYTES + payloadBytes}; it changed while being read`,
      );
    }
    const t0 = performance.now();
    const { checksum, inPlace } = checksumOf(refs, pieces, parsed.version);
    checksumNs = (performance.now() - t0) * 1e6;
    if (inPlace) hashedInPlaceBytes = payloadBytes;
    verifyPayloadChecksum(parsed, checksum, id, tier.name, path);
  } catch (error) {
    throw wrapIoError(error, `slow tier ${tier.name}: reading "${id}" from ${path}`);
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  return { startMs, endMs: absoluteMs(), checksumNs, hashedInPlaceBytes };
}

async function writeObject(request: Extract<IoRequest, { op: 'write' }>): Promise<Done> {
  const { tier, id, tempPath, finalPath } = request;
  const refs = Array.isArray(request.data) ? request.data : [request.data];
  const pieces = refs.map(bytesOf);
  let payloadBytes = 0;
  for (const piece of pieces) payloadBytes += piece.byteLength;
  const startMs = absoluteMs();
  let checksumNs = 0;
  let hashedInPlaceBytes = 0;
  let fd = -1;
  try {
    fd = openSync(tempPath, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o600);
    const file = fd;
    const semaphore = slotsOf(tier);
    const jobs: Promise<unknown>[] = [];
    const chunks = payloadChunks(pieces, tier.chunkBytes);
    for (const { offset, buffers } of chunks.slice(1)) {
      jobs.push(semaphore.run(() => writevFully(file, buffers, HEADER_BYTES + offset)));
    }
    // Later chunks are under way in the thread pool while this thread hashes; the header, which needs the
    // checksum, then goes out with the first chunk in one pwritev.
    const t0 = performance.now();
    const { checksum, inPlace } = checksumOf(refs, pieces, OBJECT_FORMAT_VERSION);
    checksumNs = (performance.now() - t0) * 1e6;
    if (inPlace) hashedInPlaceBytes = payloadBytes;
    const header = encodeObjectHeader(id, payloadBytes, checksum);
    jobs.push(semaphore.run(() => writevFully(file, [header, ...chunks[0].buffers], 0)));
    const settled = await Promise.allSettled(jobs);
    for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
    if (request.durable) await flushToDisk(file);
    closeSync(file);
    fd = -1;
    if (finalPath !== null) {
      renameSync(tempPath, finalPath);
      if (request.durable) await syncDirectory(request.dir);
    }
  } catch (error) {
    if (fd >= 0) closeSync(fd);
    try {
      unlinkSync(tempPath);
    } catch {
      // Already gone or never created.
    }
    throw wrapIoError(error, `slow tier ${tier.name}: writing "${id}" to ${tempPath}`);
  }
  return { startMs, endMs: absoluteMs(), checksumNs, hashedInPlaceBytes };
}

async function commitObject(request: Extract<IoRequest, { op: 'commit' }>): Promise<Done> {
  const startMs = absoluteMs();
  try {
    renameSync(request.tempPath, request.finalPath);
    if (request.durable) await syncDirectory(request.dir);
  } catch (error) {
    try {
      unlinkSync(request.tempPath);
    } catch {
      // Already gone.
    }
    throw wrapIoError(
      error,
      `slow tier ${request.tier.name}: committing "${request.id}" (${request.tempPath})`,
    );
  }
  return { startMs, endMs: absoluteMs(), checksumNs: 0 };
}

async function adoptObject(request: Extract<IoRequest, { op: 'adopt' }>): Promise<Done> {
  const startMs = absoluteMs();
  let fd: number;
  try {
    fd = openSync(request.path, 'r');
  } catch {
    return { startMs, endMs: absoluteMs(), checksumNs: 0, found: false };
  }
  try {
    const header = new Uint8Array(HEADER_BYTES);
    const { size } = fstatSync(fd);
    await readvFully(fd, [header.subarray(0, Math.min(HEADER_BYTES, size))], 0);
    verifyObjectHeader(header, request.id, request.bytes, size, request.tier.name, request.path);
  } finally {
    closeSync(fd);
  }
  return { startMs, endMs: absoluteMs(), checksumNs: 0, found: true };
}

/**
 * Deletes in the thread pool, not on this thread: unlinking a file of a few MB frees its blocks and its cached
 * pages, ~0.4 ms here, and the many-models bench deletes thousands of consumed request files; done synchronously
 * that held this thread for 1.6 s of a 16.7 s run, with reads queued behind it. Order is kept by the caller: a
 * later transfer of the same object depends on the delete's completion.
 */
async function deleteFile(request: Extract<IoRequest, { op: 'delete' }>): Promise<Done> {
  const startMs = absoluteMs();
  await new Promise<void>((resolve, reject) => {
    unlink(request.path, (error) => {
      if (error && error.code !== 'ENOENT') reject(wrapIoError(error, request.what));
      else resolve();
    });
  });
  return { startMs, endMs: absoluteMs(), checksumNs: 0 };
}

async function serve(request: IoRequest): Promise<IoReply> {
  let done: Done;
  let settleAtMs: number | null = null;
  switch (request.op) {
    case 'read':
      done = await readObject(request);
      settleAtMs = request.settleAtMs;
      break;
    case 'write':
      done = await writeObject(request);
      settleAtMs = request.settleAtMs;
      break;
    case 'commit':
      done = await commitObject(request);
      settleAtMs = request.settleAtMs;
      break;
    case 'adopt':
      done = await adoptObject(request);
      break;
    case 'delete':
      done = await deleteFile(request);
      break;
    default:
      throw new InvalidArgumentError(`I/O worker: unknown request ${JSON.stringify(request)}`);
  }
  const delayNs = await settle(settleAtMs);
  return { seq: request.seq, ok: true, ...done, delayNs };
}

function errorReply(seq: number, error: unknown): IoReply {
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  return { seq, ok: false, error: { name, message } };
}

/**
 * Starts serving requests on `port` (called by the worker bootstrap, never on the main thread). Requests arrive
 * in batches (arrays) and replies leave in batches.
 *
 * @example
 * ```ts
 * serveIoRequests(parentPort!);
 * ```
 */
export function serveIoRequests(port: NonNullable<typeof parentPort>): void {
  // Replies finished in one turn of this thread travel in one message.
  let outbox: IoReply[] = [];
  const reply = (message: IoReply) => {
    if (outbox.push(message) === 1) {
      setImmediate(() => {
        const batch = outbox;
        outbox = [];
        port.postMessage(batch);
      });
    }
  };
  port.on('message', (batch: IoRequest[]) => {
    let unshared = false;
    for (const request of batch) {
      if (request.op === 'share') {
        sharedMemories.set(request.id, request.memory);
        if (request.kernel) {
          const { memory, module, state } = request.kernel;
          try {
            const instance = new WebAssembly.Instance(module, { env: { memory } });
            inPlaceHashers.set(request.id, { exports: instance.exports, state });
          } catch {
            // Without the kernels here the payloads are hashed through this thread's memory, as other ones are.
          }
        }
      } else if (request.op === 'unshare') {
        sharedMemories.delete(request.id);
        inPlaceHashers.delete(request.id);
        unshared = true;
      } else if (request.op === 'crash') {
        // Test hook: an uncaught exception ends the thread, as a bug or a native failure would.
        throw new Error('I/O worker: crash requested (test hook)');
      } else {
        serve(request).then(reply, (error: unknown) => reply(errorReply(request.seq, error)));
      }
    }
    // A shared memory lives until every thread that saw it has collected its handle. This thread allocates
    // little, so its old generation (where a memory shared at the start of a run ends up) was collected rarely:
    // each pass's DRAM pool and staging slabs, dropped by the main thread, stayed resident here — ~60 MB more RSS
    // per pass of the ruiyangju CNN, 3.05 GiB after 10 passes under a 2 GiB budget. A full collection of this
    // small heap takes about a millisecond.
    if (unshared) collectGarbage();
  });
}

if (parentPort && (workerData as { homeIoWorker?: boolean } | null)?.homeIoWorker)
  serveIoRequests(parentPort);
