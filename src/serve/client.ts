/**
 * A client of `home serve` over HTTP: model metadata, key upload, encrypted inference, with the byte counts a
 * caller reports. {@link RemoteModel} does the whole round: it makes the keys the model needs from its metadata,
 * uploads them once (in resumable chunks when large; again by itself when the server answers KEY_NOT_FOUND or
 * KEY_EXPIRED), encrypts, infers and decrypts. The
 * secret key stays in the client. Browser-safe: the global `fetch` and no Node module.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { HomeError, InvalidArgumentError } from '../util/errors.ts';
import { checkDescriptor, type HeModelDescriptor } from './he-metadata.ts';
import { ModelCrypto } from './he-client.ts';
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

  /** @param options.fetch - the fetch to use (default: the global one). */
  constructor(options: { server: string; token: string; fetch?: typeof fetch }) {
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
    this.#fetch = options.fetch ?? fetch;
  }

  async #call(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.#token}`);
    const response = await this.#fetch(`${this.server}${path}`, { ...init, headers });
    if (!response.ok) {
      let code = 'HTTP_ERROR';
      let message = `${response.status} ${response.statusText}`;
      try {
        const body = (await response.json()) as { error?: unknown; code?: unknown };
        if (typeof body.code === 'string') code = body.code;
        if (typeof body.error === 'string') message = body.error;
      } catch {
        // Not a JSON error body: keep the status line.
      }
      throw new ServerError(response.status, code, `${init.method ?? 'GET'} ${path}: ${message}`);
    }
    return response;
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
      const response = await this.#call(`/v2/keys?${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: asBody(keys),
      });
      this.traffic.keys += keys.length;
      options.onProgress?.(keys.length, keys.length);
      return ((await response.json()) as { key_id: string }).key_id;
    }
    const opened = (await (
      await this.#call('/v2/keys/uploads', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model,
          size: keys.length,
          sha256: bytesToHex(sha256(keys)),
          ...(ttl !== undefined ? { ttl_seconds: ttl } : {}),
        }),
      })
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
    const committed = await this.#call(`${path}/commit`, { method: 'POST' });
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

/**
 * A served model from the client's side: its metadata, the keys made for it (uploaded once) and inference on
 * plaintext images in, logits out.
 *
 * @example
 * ```ts
 * const model = await RemoteModel.open(new ServeClient({ server, token }), 'mnist');
 * const logits = await model.classify(normalizeImages(model.he, pixels), 1);
 * ```
 */
export class RemoteModel {
  readonly client: ServeClient;
  readonly name: string;
  readonly crypto: ModelCrypto;
  #keyId: string | undefined;

  private constructor(client: ServeClient, name: string, crypto: ModelCrypto) {
    this.client = client;
    this.name = name;
    this.crypto = crypto;
  }

  /**
   * Fetches the metadata and makes the keys (not uploaded until the first inference or {@link uploadKeys}).
   *
   * @param options.seed - deterministic keys and encryptions (tests only).
   */
  static async open(
    client: ServeClient,
    name: string,
    options: { seed?: Uint8Array } = {},
  ): Promise<RemoteModel> {
    const meta = await client.metadata(name);
    return new RemoteModel(client, name, new ModelCrypto(meta.he, options));
  }

  get he(): HeModelDescriptor {
    return this.crypto.he;
  }

  /** The key id on the server (uploading the keys first if they are not there yet). */
  async uploadKeys(options: KeyUploadOptions = {}): Promise<string> {
    this.#keyId ??= await this.client.uploadKeys(this.name, this.crypto.evaluationKeyBytes(), options);
    return this.#keyId;
  }

  /**
   * Encrypts `count` images (normalized model inputs, at most the batch size), infers on the server, decrypts:
   * `count × outputs` logits. Keys the server lost or let expire (KEY_NOT_FOUND, KEY_EXPIRED) are uploaded again
   * once. With `options.onProgress` the inference runs as a job whose progress is reported.
   */
  async classify(
    images: ArrayLike<number>,
    count: number,
    first = 0,
    options: { onProgress?: (job: JobStatus) => void; pollMs?: number } = {},
  ): Promise<Float64Array> {
    const inputs = this.crypto.encrypt(images, count, first);
    const infer = async (keyId: string) =>
      options.onProgress
        ? this.client.inferAsJob(this.name, keyId, inputs, options)
        : this.client.infer(this.name, keyId, inputs);
    let outputs: Uint8Array[];
    try {
      outputs = await infer(await this.uploadKeys());
    } catch (error) {
      if (!keysGone(error)) throw error;
      this.#keyId = undefined;
      outputs = await infer(await this.uploadKeys());
    }
    return this.crypto.decrypt(outputs, count);
  }
}

/** A body fetch accepts: the bytes themselves when they sit on an ArrayBuffer (not a SharedArrayBuffer). */
function asBody(bytes: Uint8Array): BodyInit {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : bytes.slice();
}
