/**
 * HTTP calls to `home serve` with one tenant token: model metadata, key upload (in one request or in resumable
 * chunks), inference (synchronous or as a job with progress), with the byte counts a caller reports. Refusals that
 * say "later" (429 `QUOTA_EXCEEDED`, 503 `OVERLOADED`, with `Retry-After`) and dropped connections are retried by
 * themselves. Browser-safe: the global `fetch` and no Node module, the same code in Node and browsers.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { HomeError, InvalidArgumentError } from '../util/errors.ts';
import { checkDescriptor, type HeModelDescriptor } from './he-metadata.ts';
import { decodeMessage, encodeMessage, HEADER_LENGTH } from './protocol.ts';

/**
 * A server's error answer, with its HTTP status and stable code.
 *
 * @example
 * ```ts
 * try { await client.metadata('mnist'); } catch (e) { if (e instanceof ServerError && e.status === 404) … }
 * ```
 */
export class ServerError extends HomeError {
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.status = status;
  }
}

/**
 * `GET /v2/models/{m}` as this server answers it.
 *
 * @example
 * ```ts
 * const { he } = await client.metadata('mnist');
 * ```
 */
export interface ModelMetadata {
  readonly name: string;
  readonly versions: readonly string[];
  readonly platform: string;
  readonly inputs: readonly { name: string; datatype: string; shape: number[] }[];
  readonly outputs: readonly { name: string; datatype: string; shape: number[] }[];
  readonly he: HeModelDescriptor;
}

/**
 * Bytes a client sent and received (bodies only).
 *
 * @example
 * ```ts
 * console.log(client.traffic.up, client.traffic.down, client.traffic.keys);
 * ```
 */
export interface Traffic {
  /** Inference request bodies. */
  up: number;
  /** Inference response bodies. */
  down: number;
  /** Key uploads. */
  keys: number;
}

/**
 * Options of {@link ServeClient.uploadKeys}.
 *
 * @example
 * ```ts
 * await client.uploadKeys('mnist', bytes, { chunkBytes: 8 * 2 ** 20, onProgress: (sent, total) => … });
 * ```
 */
export interface KeyUploadOptions {
  /**
   * Key sets larger than this go up in chunks of this size through a resumable upload; smaller ones in one
   * request (default 16 MiB).
   */
  readonly chunkBytes?: number;
  /** Times a failed chunk is resumed from the offset the server reports (default 3). */
  readonly retries?: number;
  /** Lifetime asked for the key set (the server's `--key-ttl` bounds it). */
  readonly ttlSeconds?: number;
  /** Called after each chunk with the bytes the server has and the total. */
  readonly onProgress?: (sent: number, total: number) => void;
}

/**
 * A job's status as `GET /v2/jobs/{id}` answers it.
 *
 * @example
 * ```ts
 * const job = await client.job(id);
 * console.log(job.status, job.progress.done, job.progress.total);
 * ```
 */
export interface JobStatus {
  readonly id: string;
  readonly model: string;
  readonly status: 'queued' | 'running' | 'succeeded' | 'failed';
  readonly progress: { readonly done: number; readonly total: number; readonly fraction: number };
  readonly elapsed_seconds: number;
  readonly error?: { readonly error: string; readonly code: string };
  readonly result: string | null;
}

/**
 * A model as `POST /v2/repository/index` lists it.
 *
 * @example
 * ```ts
 * const ready = (await client.models()).filter((m) => m.state === 'READY');
 * ```
 */
export interface RepositoryEntry {
  readonly name: string;
  readonly version: string;
  readonly state: string;
  readonly reason: string;
}

/**
 * Options of {@link ServeClient}.
 *
 * @example
 * ```ts
 * const client = new ServeClient({ server, token, retries: 5, onRetry: (r) => console.warn(r.reason) });
 * ```
 */
export interface ServeClientOptions {
  readonly server: string;
  readonly token: string;
  /** The fetch to use (default: the global one). */
  readonly fetch?: typeof fetch;
  /**
   * Times one call is sent again after a 429/503 (waiting its `Retry-After`) or a dropped connection (waiting
   * 0.5 s, 1 s, 2 s …), default 3. A dropped connection is retried only for calls that are safe to repeat (reads,
   * chunks at an offset, inferences), never for a key upload or commit, which would store a second copy.
   */
  readonly retries?: number;
  /** The longest wait before a retry, in milliseconds (default 30 s): a longer `Retry-After` is cut to it. */
  readonly maxRetryWaitMs?: number;
  /** Told before each retry (e.g. to show "server busy, retrying in 2 s"). */
  readonly onRetry?: (retry: RetryEvent) => void;
  /** How a retry waits (default `setTimeout`; tests record the waits instead). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Why and when a call is sent again.
 *
 * @example
 * ```ts
 * onRetry: ({ attempt, waitMs, reason }) => console.warn(`retry ${attempt} in ${waitMs} ms: ${reason}`)
 * ```
 */
export interface RetryEvent {
  readonly path: string;
  /** 1 for the first retry. */
  readonly attempt: number;
  readonly waitMs: number;
  /** `QUOTA_EXCEEDED`, `OVERLOADED` (or another 429/503 code) or `NETWORK`. */
  readonly reason: string;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * HTTP calls to one server with one tenant token.
 *
 * @example
 * ```ts
 * const client = new ServeClient({ server: 'http://127.0.0.1:8080', token });
 * const meta = await client.metadata('mnist');
 * ```
 */
export class ServeClient {
  readonly server: string;
  readonly traffic: Traffic = { up: 0, down: 0, keys: 0 };
  readonly #token: string;
  readonly #fetch: typeof fetch;
  readonly #retries: number;
  readonly #maxWaitMs: number;
  readonly #onRetry: ((retry: RetryEvent) => void) | undefined;
  readonly #sleep: (ms: number) => Promise<void>;

  /** @throws InvalidArgumentError for a server that is not an http(s) URL or a negative retry count. */
  constructor(options: ServeClientOptions) {
    let url: URL;
    try {
      url = new URL(options.server);
    } catch {
      throw new InvalidArgumentError(
        `--server ${options.server}: expected a URL such as http://127.0.0.1:8080`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InvalidArgumentError(`--server ${options.server}: expected an http:// or https:// URL`);
    }
    this.server = url.href.replace(/\/+$/, '');
    this.#token = options.token;
    // Bound to globalThis: a browser's fetch called as a method of another object throws "Illegal invocation".
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#retries = options.retries ?? 3;
    if (!(Number.isSafeInteger(this.#retries) && this.#retries >= 0)) {
      throw new InvalidArgumentError(`retries ${options.retries}: expected a whole number ≥ 0`);
    }
    this.#maxWaitMs = options.maxRetryWaitMs ?? 30_000;
    this.#onRetry = options.onRetry;
    this.#sleep = options.sleep ?? defaultSleep;
  }

  /**
   * One call, sent again after a 429/503 or (when `repeatable`) a dropped connection, up to the retry count.
   *
   * @throws ServerError for any other non-2xx answer, or the last one once retries run out.
   */
  async #call(path: string, init: RequestInit = {}, repeatable = true): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.#token}`);
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.#fetch(`${this.server}${path}`, { ...init, headers });
      } catch (error) {
        // fetch rejects (a TypeError) only when no answer came: refused, reset or dropped connections.
        if (!repeatable || attempt >= this.#retries) throw error;
        await this.#wait(path, attempt, 500 * 2 ** attempt, 'NETWORK');
        continue;
      }
      if (response.ok) return response;
      const error = await serverError(response, `${init.method ?? 'GET'} ${path}`);
      if ((response.status === 429 || response.status === 503) && attempt < this.#retries) {
        const after = Number(response.headers.get('retry-after'));
        const waitMs = Number.isFinite(after) && after >= 0 ? after * 1000 : 1000 * 2 ** attempt;
        await this.#wait(path, attempt, waitMs, error.code);
        continue;
      }
      throw error;
    }
  }

  async #wait(path: string, attempt: number, waitMs: number, reason: string): Promise<void> {
    const ms = Math.min(waitMs, this.#maxWaitMs);
    this.#onRetry?.({ path, attempt: attempt + 1, waitMs: ms, reason });
    await this.#sleep(ms);
  }

  /**
   * The model's metadata, its HE descriptor checked.
   *
   * @throws ServerError (404 MODEL_NOT_FOUND, 401, 403 …); FormatError for a malformed descriptor.
   */
  async metadata(model: string): Promise<ModelMetadata> {
    const meta = (await (
      await this.#call(`/v2/models/${encodeURIComponent(model)}`)
    ).json()) as ModelMetadata;
    checkDescriptor(meta.he);
    return meta;
  }

  /** The tenant's models (`POST /v2/repository/index`), optionally only the ready ones. */
  async models(options: { ready?: boolean } = {}): Promise<RepositoryEntry[]> {
    const response = await this.#call('/v2/repository/index', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ready: options.ready === true }),
    });
    return (await response.json()) as RepositoryEntry[];
  }

  /**
   * Uploads a serialized evaluation-key set made for `model`; returns its key id. A large set goes up in chunks:
   * a chunk that fails (a dropped connection, a 5xx, an offset the server does not expect) is resent from the
   * offset the server reports, up to `retries` times in a row.
   *
   * @throws ServerError (400 MISSING_KEY, FORMAT, CHECKSUM_MISMATCH …); the last error once retries run out.
   */
  async uploadKeys(model: string, keys: Uint8Array, options: KeyUploadOptions = {}): Promise<string> {
    const chunkBytes = options.chunkBytes ?? 16 * 2 ** 20;
    if (!(Number.isSafeInteger(chunkBytes) && chunkBytes > 0)) {
      throw new InvalidArgumentError(`chunkBytes ${chunkBytes}: expected a positive whole number`);
    }
    const ttl = options.ttlSeconds;
    if (keys.length <= chunkBytes) {
      const query = `model=${encodeURIComponent(model)}${ttl !== undefined ? `&ttl_seconds=${ttl}` : ''}`;
      const response = await this.#call(
        `/v2/keys?${query}`,
        { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: asBody(keys) },
        false,
      );
      this.traffic.keys += keys.length;
      options.onProgress?.(keys.length, keys.length);
      return ((await response.json()) as { key_id: string }).key_id;
    }
    const opened = (await (
      await this.#call(
        '/v2/keys/uploads',
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model,
            size: keys.length,
            sha256: bytesToHex(sha256(keys)),
            ...(ttl !== undefined ? { ttl_seconds: ttl } : {}),
          }),
        },
        false,
      )
    ).json()) as { upload_id: string; offset: number };
    const path = `/v2/keys/uploads/${encodeURIComponent(opened.upload_id)}`;
    let offset = opened.offset;
    let failures = 0;
    while (offset < keys.length) {
      const chunk = keys.subarray(offset, Math.min(keys.length, offset + chunkBytes));
      try {
        const answer = (await (
          await this.#call(`${path}?offset=${offset}`, {
            method: 'PUT',
            headers: { 'content-type': 'application/octet-stream' },
            body: asBody(chunk),
          })
        ).json()) as { offset: number };
        this.traffic.keys += chunk.length;
        offset = answer.offset;
        failures = 0;
      } catch (error) {
        const resumable =
          !(error instanceof ServerError) || error.status >= 500 || error.code === 'OFFSET_MISMATCH';
        if (!resumable || ++failures > (options.retries ?? 3)) throw error;
        // Where to resume: the server flushed some prefix of what was sent, maybe all of it.
        offset = ((await (await this.#call(path)).json()) as { offset: number }).offset;
      }
      options.onProgress?.(offset, keys.length);
    }
    const committed = await this.#call(`${path}/commit`, { method: 'POST' }, false);
    return ((await committed.json()) as { key_id: string }).key_id;
  }

  /**
   * One inference: the input ciphertexts (serialized, in the order of `he.inputs`) → the output ciphertexts.
   *
   * @throws ServerError (404 KEY_NOT_FOUND for a key id the server does not know, 400 for bad input …).
   */
  async infer(model: string, keyId: string, inputs: readonly Uint8Array[]): Promise<Uint8Array[]> {
    return this.#outputs(await this.#postInfer(model, keyId, inputs, false));
  }

  /**
   * One inference as a job (`Prefer: respond-async`): submitted, polled every `pollMs` with its progress
   * reported, and its result fetched once done.
   *
   * @throws ServerError: the submission's error, or the job's own (e.g. 404 KEY_NOT_FOUND) when it failed.
   */
  async inferAsJob(
    model: string,
    keyId: string,
    inputs: readonly Uint8Array[],
    options: { pollMs?: number; onProgress?: (job: JobStatus) => void } = {},
  ): Promise<Uint8Array[]> {
    const submitted = (await (await this.#postInfer(model, keyId, inputs, true)).json()) as JobStatus;
    let job = submitted;
    options.onProgress?.(job);
    while (job.status === 'queued' || job.status === 'running') {
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
      job = await this.job(submitted.id);
      options.onProgress?.(job);
    }
    // A failed job's result answers with the job's error, which #call turns into a ServerError.
    return this.#outputs(await this.#call(`/v2/jobs/${encodeURIComponent(job.id)}/result`));
  }

  /** A job's status and progress. */
  async job(id: string): Promise<JobStatus> {
    return (await (await this.#call(`/v2/jobs/${encodeURIComponent(id)}`)).json()) as JobStatus;
  }

  async #postInfer(
    model: string,
    keyId: string,
    inputs: readonly Uint8Array[],
    async: boolean,
  ): Promise<Response> {
    const { bytes, headerLength } = encodeMessage(
      { parameters: { key_id: keyId } },
      'inputs',
      new Map([['input', inputs]]),
    );
    // Repeatable: an inference changes nothing on the server (a repeated job submission runs the job twice).
    const response = await this.#call(`/v2/models/${encodeURIComponent(model)}/infer`, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        [HEADER_LENGTH]: String(headerLength),
        ...(async ? { prefer: 'respond-async' } : {}),
      },
      body: asBody(bytes),
    });
    this.traffic.up += bytes.length;
    return response;
  }

  async #outputs(response: Response): Promise<Uint8Array[]> {
    const body = new Uint8Array(await response.arrayBuffer());
    this.traffic.down += body.length;
    const { tensors } = decodeMessage(body, response.headers.get(HEADER_LENGTH) ?? undefined, 'outputs');
    const outputs = tensors.get('output');
    if (!outputs) throw new InvalidArgumentError('inference response: no "output" tensor');
    return outputs;
  }
}

/** A non-2xx answer as a ServerError: its JSON `{error, code}` when it has one, else the status line. */
async function serverError(response: Response, what: string): Promise<ServerError> {
  let code = 'HTTP_ERROR';
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = (await response.json()) as { error?: unknown; code?: unknown };
    if (typeof body.code === 'string') code = body.code;
    if (typeof body.error === 'string') message = body.error;
  } catch {
    // Not a JSON error body: keep the status line.
  }
  return new ServerError(response.status, code, `${what}: ${message}`);
}

/**
 * Whether an error means the server no longer has the key set (unknown or expired): the client uploads the same
 * keys again and retries.
 *
 * @example
 * ```ts
 * if (keysGone(error)) keyId = await client.uploadKeys(model, bytes);
 * ```
 */
export function keysGone(error: unknown): boolean {
  return error instanceof ServerError && (error.code === 'KEY_NOT_FOUND' || error.code === 'KEY_EXPIRED');
}

/** A body fetch accepts: the bytes themselves when they sit on an ArrayBuffer (not a SharedArrayBuffer). */
function asBody(bytes: Uint8Array): BodyInit {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : bytes.slice();
}
