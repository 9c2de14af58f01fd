import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  unlinkSync,
  writevSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Stash } from '../../ckks/stash.ts';
import type { KernelContext } from '../../ring/context.ts';
import { type HashSegment, xxh32Segments } from '../../ring/hash.ts';
import { check } from '../../util/assert.ts';
import { FormatError, MissingKeyError } from '../../util/errors.ts';
import { idHash64 } from './checksum.ts';

/** "HSTS", a version, the payload length (two words) and its XXH32. */
const HEADER_WORDS = 5;
const MAGIC = 0x53545348;
const VERSION = 1;

/**
 * A {@link Stash} in files: one file per id in a directory of its own, written and read synchronously (the
 * computation that needs the bytes waits for them anyway), each with a header holding its length and the XXH32 of
 * its payload, checked on every read. The bytes then sit in the operating system's page cache or on the device,
 * not in the process: bootstrapping at logN 16 keeps its 6.8 GB of Galois keys and 3.4 GB of diagonals here and
 * runs in about 3 GB of process memory.
 *
 * @example
 * ```ts
 * const stash = FileStash.create(context);
 * const keys = Bootstrapper.generateKeys(bp, keygen, sk, { stash });
 * // …
 * stash.close();
 * ```
 */
export class FileStash implements Stash {
  readonly dir: string;
  readonly #context: KernelContext;
  readonly #lengths = new Map<string, number>();
  #bytes = 0;
  #closed = false;

  private constructor(dir: string, context: KernelContext) {
    this.dir = dir;
    this.#context = context;
  }

  /**
   * A stash in a new directory under `parent` (default: the OS temporary directory), removed by {@link close}.
   * `context` is the kernel context whose memory the pieces usually live in: those are hashed in place.
   */
  static create(context: KernelContext, parent: string = tmpdir()): FileStash {
    mkdirSync(parent, { recursive: true });
    return new FileStash(mkdtempSync(join(parent, 'home-stash-')), context);
  }

  #path(id: string): string {
    return join(this.dir, `${idHash64(id)}.stash`);
  }

  #segments(pieces: readonly Uint8Array[]): HashSegment[] {
    const memory = this.#context.memory.buffer;
    return pieces.map((p) => (p.buffer === memory ? { pointer: p.byteOffset, byteLength: p.byteLength } : p));
  }

  put(id: string, pieces: readonly Uint8Array[]): void {
    this.#assertOpen();
    const length = pieces.reduce((sum, p) => sum + p.byteLength, 0);
    const header = new Uint32Array([
      MAGIC,
      VERSION,
      length % 2 ** 32,
      Math.floor(length / 2 ** 32),
      xxh32Segments(this.#segments(pieces), this.#context),
    ]);
    const fd = openSync(this.#path(id), 'w');
    try {
      const chunks = [new Uint8Array(header.buffer), ...pieces];
      let written = 0;
      const total = length + HEADER_WORDS * 4;
      // writev may write less than asked: continue from where it stopped.
      while (written < total) {
        let skip = written;
        const rest: Uint8Array[] = [];
        for (const c of chunks) {
          if (skip >= c.byteLength) skip -= c.byteLength;
          else {
            rest.push(skip > 0 ? c.subarray(skip) : c);
            skip = 0;
          }
        }
        written += writevSync(fd, rest.slice(0, 1024));
      }
    } finally {
      closeSync(fd);
    }
    this.#bytes += length - (this.#lengths.get(id) ?? 0);
    this.#lengths.set(id, length);
  }

  get(id: string, into: readonly Uint8Array[]): void {
    this.#assertOpen();
    const length = this.#lengths.get(id);
    if (length === undefined) throw new MissingKeyError(`stash: nothing stored under "${id}"`);
    const total = into.reduce((sum, p) => sum + p.byteLength, 0);
    check(total === length, () => `stash "${id}": ${length} bytes stored, ${total} asked for`);
    const path = this.#path(id);
    const fd = openSync(path, 'r');
    try {
      const header = new Uint32Array(HEADER_WORDS);
      const headerBytes = new Uint8Array(header.buffer);
      if (readSync(fd, headerBytes, 0, headerBytes.length, 0) !== headerBytes.length) {
        throw new FormatError(`stash "${id}" (${path}): truncated header`);
      }
      const stored = header[2] + header[3] * 2 ** 32;
      if (header[0] !== MAGIC || header[1] !== VERSION || stored !== length) {
        throw new FormatError(
          `stash "${id}" (${path}): header says magic ${header[0]}, version ${header[1]}, ${stored} bytes: ` +
            `expected ${MAGIC}, ${VERSION}, ${length}`,
        );
      }
      let position = headerBytes.length;
      for (const piece of into) {
        let done = 0;
        while (done < piece.byteLength) {
          const n = readSync(fd, piece, done, piece.byteLength - done, position);
          if (n === 0) throw new FormatError(`stash "${id}" (${path}): truncated at byte ${position}`);
          done += n;
          position += n;
        }
      }
      const checksum = xxh32Segments(this.#segments(into), this.#context);
      if (checksum !== header[4]) {
        throw new FormatError(
          `stash "${id}" (${path}): payload checksum ${checksum.toString(16)}, expected ${header[4].toString(16)}`,
        );
      }
    } finally {
      closeSync(fd);
    }
  }

  has(id: string): boolean {
    return this.#lengths.has(id);
  }

  delete(id: string): void {
    const length = this.#lengths.get(id);
    if (length === undefined || this.#closed) return;
    unlinkSync(this.#path(id));
    this.#lengths.delete(id);
    this.#bytes -= length;
  }

  get byteLength(): number {
    return this.#bytes;
  }

  /** Removes the directory and everything in it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    rmSync(this.dir, { recursive: true, force: true });
    this.#lengths.clear();
    this.#bytes = 0;
  }

  #assertOpen(): void {
    if (this.#closed) throw new MissingKeyError(`stash ${this.dir}: closed`);
  }
}
