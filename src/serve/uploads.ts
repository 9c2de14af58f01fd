/**
 * Chunked, resumable uploads of evaluation keys (the HE key extension's `/v2/keys/uploads`): an upload is opened
 * with the total size and the SHA-256 of the whole, receives chunks in order at the offset it reports, survives a
 * dropped connection and a server restart (received bytes and the offset are on disk under
 * `<data-dir>/uploads/<tenant>/<id>/`), and is committed once: the checksum is verified and the key set published
 * atomically by the key registry under an id derived from the upload's, so a commit repeated after a lost answer
 * or a crash returns the same key set instead of publishing a second one (the committed upload is kept, without its
 * bytes, for its lifetime). An upload left idle past its lifetime is deleted.
 */
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { HomeError, InvalidArgumentError } from '../util/errors.ts';
import { removeFolderAtomic, TEMP_PREFIX, writeFolderAtomic, writeJsonAtomic } from './atomic.ts';
import { ChecksumError, NotFoundError, RetryLaterError, StateError } from './errors.ts';
import { checkName } from './names.ts';

/**
 * An open upload as stored in `upload.json`.
 *
 * @example
 * ```ts
 * console.log(`${record.offset} of ${record.size} bytes received`);
 * ```
 */
export interface UploadRecord {
  readonly id: string;
  readonly tenant: string;
  /** The model the keys are for (checked at commit, like a one-request upload). */
  readonly model: string;
  readonly size: number;
  /** SHA-256 of the whole key set, 64 lowercase hex digits. */
  readonly sha256: string;
  /** Lifetime asked for the key set once committed (bounded by the server's `--key-ttl`). */
  readonly key_ttl_seconds?: number;
  readonly created: string;
  /** Bytes received and flushed so far: the next chunk starts here. */
  readonly offset: number;
  /** When an idle upload is deleted (ISO time); every chunk moves it forward. */
  readonly expires_at: string;
  /** Set once committed: the id of the key set it was published as (a repeated commit returns it). */
  readonly committed_as?: string;
}

/**
 * Options of {@link UploadStore.open}.
 *
 * @example
 * ```ts
 * const uploads = await UploadStore.open(dataDir, { maxSize: 2 ** 31 - 1, idleSeconds: 3600 });
 * ```
 */
export interface UploadStoreOptions {
  /** Largest total size an upload may announce (the key route's body limit). */
  readonly maxSize: number;
  /** An upload with no chunk for this long is deleted (default one hour). */
  readonly idleSeconds?: number;
  /** Uploads one tenant may have open at once (default 8): each holds disk space until committed or expired. */
  readonly perTenant?: number;
  /** The clock, in milliseconds since the epoch (default `Date.now`). */
  readonly now?: () => number;
}

const RECORD = 'upload.json';
const DATA = 'data';
const UPLOAD_ID = /^u_[0-9a-f]{32}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Every tenant's open uploads.
 *
 * @example
 * ```ts
 * const uploads = await UploadStore.open(dataDir, { maxSize: limits.keys });
 * const u = await uploads.create('acme', { model: 'mnist', size: bytes.length, sha256: hex });
 * await uploads.append('acme', u.id, 0, bytes);
 * const key = await uploads.commit('acme', u.id, (whole, record) => keys.upload('acme', record.model, he, whole));
 * ```
 */
export class UploadStore {
  readonly #root: string;
  readonly #records = new Map<string, UploadRecord>();
  /** The tail of each upload's operations: chunks and commits of one upload run one after the other. */
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #maxSize: number;
  readonly #idleMs: number;
  readonly #perTenant: number;
  readonly #now: () => number;

  private constructor(root: string, options: UploadStoreOptions) {
    this.#root = root;
    this.#maxSize = options.maxSize;
    this.#idleMs = (options.idleSeconds ?? 3600) * 1000;
    this.#perTenant = options.perTenant ?? 8;
    this.#now = options.now ?? Date.now;
  }

  /** Reads the uploads left open under `<dataDir>/uploads/` (a restart resumes them). */
  static async open(dataDir: string, options: UploadStoreOptions): Promise<UploadStore> {
    const store = new UploadStore(join(dataDir, 'uploads'), options);
    await mkdir(store.#root, { recursive: true });
    for (const tenant of await readdir(store.#root)) {
      if (tenant.startsWith('.')) continue;
      for (const id of await readdir(join(store.#root, tenant))) {
        if (id.startsWith(TEMP_PREFIX) || id.startsWith('.')) continue;
        const record = JSON.parse(
          await readFile(join(store.#root, tenant, id, RECORD), 'utf8'),
        ) as UploadRecord;
        store.#records.set(keyOf(tenant, id), record);
      }
    }
    return store;
  }

  /**
   * Opens an upload of `size` bytes whose SHA-256 is `sha256` (hex).
   *
   * @throws InvalidArgumentError for a bad model name, size, checksum or lifetime; RetryLaterError
   *   (QUOTA_EXCEEDED) when the tenant has its most uploads open.
   */
  async create(
    tenant: string,
    request: { model: unknown; size: unknown; sha256: unknown; key_ttl_seconds?: unknown },
  ): Promise<UploadRecord> {
    checkName(request.model, 'model');
    const size = request.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0 || size > this.#maxSize) {
      throw new InvalidArgumentError(
        `size ${JSON.stringify(size)?.slice(0, 40)}: expected the key set's length in bytes, 1 to ${this.#maxSize}`,
      );
    }
    const hash = typeof request.sha256 === 'string' ? request.sha256.toLowerCase() : undefined;
    if (hash === undefined || !SHA256_HEX.test(hash)) {
      throw new InvalidArgumentError('sha256: expected the SHA-256 of the whole key set, 64 hex digits');
    }
    const ttl = request.key_ttl_seconds;
    if (ttl !== undefined && !(typeof ttl === 'number' && Number.isSafeInteger(ttl) && ttl > 0)) {
      throw new InvalidArgumentError('key_ttl_seconds: expected a positive whole number of seconds');
    }
    await this.sweep();
    const open = [...this.#records.values()].filter(
      (r) => r.tenant === tenant && r.committed_as === undefined,
    ).length;
    if (open >= this.#perTenant) {
      throw new RetryLaterError(
        'QUOTA_EXCEEDED',
        `tenant "${tenant}": ${open} key uploads open, the most allowed: commit or delete one`,
        this.#idleMs / 1000,
      );
    }
    const now = this.#now();
    const record: UploadRecord = {
      id: newUploadId(),
      tenant,
      model: request.model,
      size,
      sha256: hash,
      ...(ttl !== undefined ? { key_ttl_seconds: ttl } : {}),
      created: new Date(now).toISOString(),
      offset: 0,
      expires_at: new Date(now + this.#idleMs).toISOString(),
    };
    await writeFolderAtomic(join(this.#root, tenant, record.id), {
      [DATA]: new Uint8Array(0),
      [RECORD]: jsonBytes(record),
    });
    this.#records.set(keyOf(tenant, record.id), record);
    return record;
  }

  /**
   * The tenant's upload `id` (after an interruption, its `offset` says where to resume).
   *
   * @throws InvalidArgumentError for a malformed id; NotFoundError (UPLOAD_NOT_FOUND) for an unknown, another
   *   tenant's or an expired upload.
   */
  get(tenant: string, id: string): UploadRecord {
    if (!UPLOAD_ID.test(id)) {
      throw new InvalidArgumentError(
        `upload id ${JSON.stringify(id.slice(0, 80))}: expected "u_" and 32 hex digits`,
      );
    }
    const record = this.#records.get(keyOf(tenant, id));
    if (!record || Date.parse(record.expires_at) <= this.#now()) {
      throw new NotFoundError(
        'UPLOAD_NOT_FOUND',
        `upload ${id}: no such upload (it may have expired: open another)`,
      );
    }
    return record;
  }

  /**
   * Writes a chunk at `offset`, which must be the offset received so far (a resent chunk after a lost answer is
   * refused rather than guessed at: the client asks the offset and resumes from it). The bytes are flushed before
   * the new offset is recorded, so a recorded offset always covers bytes on disk.
   *
   * @throws StateError (OFFSET_MISMATCH) for another offset; InvalidArgumentError for an empty chunk or one past
   *   the announced size; NotFoundError for an unknown upload.
   */
  async append(tenant: string, id: string, offset: number, chunk: Uint8Array): Promise<UploadRecord> {
    return this.#locked(tenant, id, async () => {
      const record = this.get(tenant, id);
      if (record.committed_as !== undefined) {
        throw new StateError(
          'UPLOAD_COMMITTED',
          `upload ${id}: already committed as key set ${record.committed_as} (open another upload for other keys)`,
        );
      }
      if (offset !== record.offset) {
        throw new StateError(
          'OFFSET_MISMATCH',
          `upload ${id}: chunk at offset ${offset}; ${record.offset} bytes received so far (resume from there)`,
        );
      }
      if (chunk.length === 0) throw new InvalidArgumentError(`upload ${id}: empty chunk`);
      if (offset + chunk.length > record.size) {
        throw new InvalidArgumentError(
          `upload ${id}: chunk of ${chunk.length} bytes at offset ${offset} passes the announced size ${record.size}`,
        );
      }
      const dir = join(this.#root, tenant, id);
      const handle = await open(join(dir, DATA), 'r+');
      try {
        let written = 0;
        while (written < chunk.length) {
          const { bytesWritten } = await handle.write(
            chunk,
            written,
            chunk.length - written,
            offset + written,
          );
          written += bytesWritten;
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      const next: UploadRecord = {
        ...record,
        offset: offset + chunk.length,
        expires_at: new Date(this.#now() + this.#idleMs).toISOString(),
      };
      await writeJsonAtomic(join(dir, RECORD), next);
      this.#records.set(keyOf(tenant, id), next);
      return next;
    });
  }

  /**
   * Verifies a complete upload against its SHA-256 and hands its bytes to `publish` with the id the result must
   * take ({@link resultIdOf}: `publish` returns what is already stored under it, so a commit cut short after
   * publishing and committed again publishes nothing new). The upload is then kept as committed, without its
   * bytes, until it expires, and a repeated commit answers `committed(id)`. An upload whose bytes `publish` refuses
   * (a typed error: the same bytes would be refused again) is deleted; one that fails otherwise (a disk error) is
   * kept: committing again may succeed.
   *
   * @throws StateError (UPLOAD_INCOMPLETE) before every byte arrived; ChecksumError (CHECKSUM_MISMATCH) when the
   *   bytes are not the announced ones (the upload is deleted: start again); whatever `publish` or `committed`
   *   throws.
   */
  async commit<T>(
    tenant: string,
    id: string,
    publish: (bytes: Uint8Array, record: UploadRecord, resultId: string) => Promise<T>,
    committed: (resultId: string) => T,
  ): Promise<T> {
    return this.#locked(tenant, id, async () => {
      const record = this.get(tenant, id);
      if (record.committed_as !== undefined) return committed(record.committed_as);
      if (record.offset !== record.size) {
        throw new StateError(
          'UPLOAD_INCOMPLETE',
          `upload ${id}: ${record.offset} of ${record.size} bytes received (send the rest first)`,
        );
      }
      const dir = join(this.#root, tenant, id);
      const stored = await readFile(join(dir, DATA));
      // A crash after a write and before its offset was recorded can leave bytes past the size: they are not part.
      const bytes: Uint8Array = stored.subarray(0, record.size);
      if (bytes.length !== record.size || bytesToHex(sha256(bytes)) !== record.sha256) {
        await this.#remove(tenant, id);
        throw new ChecksumError(
          `upload ${id}: the SHA-256 of the ${record.size} bytes received differs from the one announced (upload again)`,
        );
      }
      const resultId = resultIdOf(id);
      let result: T;
      try {
        result = await publish(bytes, record, resultId);
      } catch (error) {
        if (error instanceof HomeError) await this.#remove(tenant, id);
        throw error;
      }
      // The record first (a crash after it leaves bytes no one reads), then the bytes go.
      const done: UploadRecord = {
        ...record,
        committed_as: resultId,
        expires_at: new Date(this.#now() + this.#idleMs).toISOString(),
      };
      await writeJsonAtomic(join(dir, RECORD), done);
      this.#records.set(keyOf(tenant, id), done);
      await rm(join(dir, DATA), { force: true });
      return result;
    });
  }

  /**
   * Deletes an upload (the client gives up).
   *
   * @throws NotFoundError for an unknown upload.
   */
  async delete(tenant: string, id: string): Promise<void> {
    await this.#locked(tenant, id, async () => {
      this.get(tenant, id);
      await this.#remove(tenant, id);
    });
  }

  /** Deletes the uploads idle past their lifetime; returns how many. */
  async sweep(): Promise<number> {
    let count = 0;
    for (const record of [...this.#records.values()]) {
      if (Date.parse(record.expires_at) > this.#now()) continue;
      await this.#remove(record.tenant, record.id);
      count++;
    }
    return count;
  }

  async #remove(tenant: string, id: string): Promise<void> {
    if (!this.#records.delete(keyOf(tenant, id))) return;
    await removeFolderAtomic(join(this.#root, tenant, id)).catch(async () => {
      await rm(join(this.#root, tenant, id), { recursive: true, force: true });
    });
  }

  async #locked<T>(tenant: string, id: string, task: () => Promise<T>): Promise<T> {
    const key = keyOf(tenant, id);
    const run = (this.#locks.get(key) ?? Promise.resolve()).then(task);
    const tail = run.catch(() => undefined);
    this.#locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    }
  }
}

/**
 * A fresh upload id: `u_` and 128 random bits in hex (from `crypto.getRandomValues`).
 *
 * @example
 * ```ts
 * newUploadId(); // 'u_4c…'
 * ```
 */
export function newUploadId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `u_${bytesToHex(bytes)}`;
}

/**
 * The id a committed upload's key set takes: `k_` and the upload id's 128 random bits, so that committing one
 * upload twice names one key set.
 *
 * @example
 * ```ts
 * resultIdOf('u_4c1f…'); // 'k_4c1f…'
 * ```
 */
export function resultIdOf(uploadId: string): string {
  return `k_${uploadId.slice(2)}`;
}

function jsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

function keyOf(tenant: string, id: string): string {
  return `${tenant}/${id}`;
}
