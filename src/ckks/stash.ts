import { check } from '../util/assert.ts';
import { MissingKeyError } from '../util/errors.ts';

/**
 * Bytes kept out of kernel memory by id — the Galois keys and encoded diagonals of a bootstrapping, which outgrow
 * the 4 GiB of kernel memory at logN 16 — and copied back in when used. {@link HostStash} keeps them in host memory;
 * in Node the runtime's `FileStash` keeps them in files, so the process holds only what it works on.
 *
 * @example
 * ```ts
 * stash.put('galois:5', [b, a]);
 * stash.get('galois:5', [bInKernel, aInKernel]);
 * ```
 */
export interface Stash {
  /** Stores the concatenation of `pieces` under `id`, replacing earlier bytes. */
  put(id: string, pieces: readonly Uint8Array[]): void;
  /**
   * Copies the bytes of `id` into `into` (the same total length, split anywhere).
   *
   * @throws MissingKeyError for an unknown id; FormatError when the stored bytes changed (files).
   */
  get(id: string, into: readonly Uint8Array[]): void;
  has(id: string): boolean;
  delete(id: string): void;
  /** Bytes stored. */
  readonly byteLength: number;
}

/**
 * A {@link Stash} in host memory: one copy per id, outside kernel memory.
 *
 * @example
 * ```ts
 * const stash = new HostStash();
 * ```
 */
export class HostStash implements Stash {
  readonly #entries = new Map<string, Uint8Array>();
  #bytes = 0;

  put(id: string, pieces: readonly Uint8Array[]): void {
    this.delete(id);
    const total = pieces.reduce((sum, p) => sum + p.byteLength, 0);
    const copy = new Uint8Array(total);
    let offset = 0;
    for (const p of pieces) {
      copy.set(p, offset);
      offset += p.byteLength;
    }
    this.#entries.set(id, copy);
    this.#bytes += total;
  }

  get(id: string, into: readonly Uint8Array[]): void {
    const bytes = this.#entries.get(id);
    if (!bytes) throw new MissingKeyError(`stash: nothing stored under "${id}"`);
    const total = into.reduce((sum, p) => sum + p.byteLength, 0);
    check(
      total === bytes.byteLength,
      () => `stash "${id}": ${bytes.byteLength} bytes stored, ${total} asked for`,
    );
    let offset = 0;
    for (const p of into) {
      p.set(bytes.subarray(offset, offset + p.byteLength));
      offset += p.byteLength;
    }
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  delete(id: string): void {
    const bytes = this.#entries.get(id);
    if (bytes) this.#bytes -= bytes.byteLength;
    this.#entries.delete(id);
  }

  get byteLength(): number {
    return this.#bytes;
  }
}
