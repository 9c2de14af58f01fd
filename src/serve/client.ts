/**
 * A client of `home serve` over HTTP: model metadata, key upload, encrypted inference, with the byte counts a
 * caller reports. {@link RemoteModel} does the whole round: it makes the keys the model needs from its metadata,
 * uploads them once (again by itself when the server answers KEY_NOT_FOUND), encrypts, infers and decrypts. The
 * secret key stays in the client. Browser-safe: the global `fetch` and no Node module.
 */
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

  /** Uploads a serialized evaluation-key set made for `model`; returns its key id. */
  async uploadKeys(model: string, keys: Uint8Array): Promise<string> {
    const response = await this.#call(`/v2/keys?model=${encodeURIComponent(model)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: asBody(keys),
    });
    this.traffic.keys += keys.length;
    return ((await response.json()) as { key_id: string }).key_id;
  }

  /**
   * One inference: the input ciphertexts (serialized, in the order of `he.inputs`) → the output ciphertexts.
   *
   * @throws ServerError (404 KEY_NOT_FOUND for a key id the server does not know, 400 for bad input …).
   */
  async infer(model: string, keyId: string, inputs: readonly Uint8Array[]): Promise<Uint8Array[]> {
    const { bytes, headerLength } = encodeMessage(
      { parameters: { key_id: keyId } },
      'inputs',
      new Map([['input', inputs]]),
    );
    const response = await this.#call(`/v2/models/${encodeURIComponent(model)}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(headerLength) },
      body: asBody(bytes),
    });
    this.traffic.up += bytes.length;
    const body = new Uint8Array(await response.arrayBuffer());
    this.traffic.down += body.length;
    const { tensors } = decodeMessage(body, response.headers.get(HEADER_LENGTH) ?? undefined, 'outputs');
    const outputs = tensors.get('output');
    if (!outputs) throw new InvalidArgumentError('inference response: no "output" tensor');
    return outputs;
  }
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
  async uploadKeys(): Promise<string> {
    this.#keyId ??= await this.client.uploadKeys(this.name, this.crypto.evaluationKeyBytes());
    return this.#keyId;
  }

  /**
   * Encrypts `count` images (normalized model inputs, at most the batch size), infers on the server, decrypts:
   * `count × outputs` logits. Keys the server lost (KEY_NOT_FOUND) are uploaded again once.
   */
  async classify(images: ArrayLike<number>, count: number, first = 0): Promise<Float64Array> {
    const inputs = this.crypto.encrypt(images, count, first);
    let outputs: Uint8Array[];
    try {
      outputs = await this.client.infer(this.name, await this.uploadKeys(), inputs);
    } catch (error) {
      if (!(error instanceof ServerError) || error.code !== 'KEY_NOT_FOUND') throw error;
      this.#keyId = undefined;
      outputs = await this.client.infer(this.name, await this.uploadKeys(), inputs);
    }
    return this.crypto.decrypt(outputs, count);
  }
}

/** A body fetch accepts: the bytes themselves when they sit on an ArrayBuffer (not a SharedArrayBuffer). */
function asBody(bytes: Uint8Array): BodyInit {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : bytes.slice();
}
