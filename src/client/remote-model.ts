/**
 * A served model from the client's side: its metadata, the keys made for it (uploaded once, and again by
 * themselves when the server answers KEY_NOT_FOUND or KEY_EXPIRED), and inference on plaintext images in, logits
 * out, with each stage's time and bytes. The cryptography is a {@link ClientCrypto}: {@link ModelCrypto} on the
 * calling thread (Node, tests) or a `WorkerCrypto` in a Web Worker (browsers, so the page stays responsive). The
 * secret key stays in it. Browser-safe.
 */
import type { HeModelDescriptor } from './he-metadata.ts';
import { type JobStatus, type KeyUploadOptions, keysGone, type ServeClient } from './http.ts';
import { ModelCrypto } from './model-crypto.ts';

/**
 * What a client's cryptography does for one model: made from the model's metadata, it holds the secret key and
 * gives out only evaluation keys, ciphertexts and decrypted results. Methods may answer at once or later.
 *
 * @example
 * ```ts
 * const crypto: ClientCrypto = new ModelCrypto(meta.he); // or: await WorkerCrypto.create(meta.he)
 * ```
 */
export interface ClientCrypto {
  readonly he: HeModelDescriptor;
  /** Seconds spent making the secret and evaluation keys. */
  readonly keygenSeconds: number;
  evaluationKeyBytes(): Uint8Array | Promise<Uint8Array>;
  encrypt(images: ArrayLike<number>, count: number, first?: number): Uint8Array[] | Promise<Uint8Array[]>;
  decrypt(outputs: readonly Uint8Array[], count: number): Float64Array | Promise<Float64Array>;
}

/**
 * A stage of {@link RemoteModel.run}, reported as it starts (and, for key upload and inference, as it goes).
 *
 * @example
 * ```ts
 * onStage: (s) => { bar.value = s.stage === 'infer' ? s.fraction : 0; }
 * ```
 */
export interface StageEvent {
  readonly stage: 'encrypt' | 'upload-keys' | 'infer' | 'decrypt' | 'done';
  /** How far the stage is, 0…1 (key bytes sent, program instructions run). */
  readonly fraction: number;
}

/**
 * One {@link RemoteModel.run}: the logits and where the time and the bytes went.
 *
 * @example
 * ```ts
 * const { logits, seconds, bytes } = await model.run(images, 1);
 * console.log(seconds.infer, bytes.up, bytes.down);
 * ```
 */
export interface Classification {
  /** `count × outputs` values. */
  readonly logits: Float64Array;
  readonly seconds: {
    readonly encrypt: number;
    /** 0 when the keys were on the server already. */
    readonly uploadKeys: number;
    /** Request sent to answer received (the server's queue and run, and the network). */
    readonly infer: number;
    readonly decrypt: number;
  };
  readonly bytes: {
    /** Key bytes sent by this run (0 when they were on the server already). */
    readonly keys: number;
    /** Inference request body. */
    readonly up: number;
    /** Inference response body. */
    readonly down: number;
  };
}

/**
 * Options of {@link RemoteModel.run}.
 *
 * @example
 * ```ts
 * await model.run(images, 1, 0, { onStage: console.log, asJob: true });
 * ```
 */
export interface RunOptions {
  /** Run the inference as a job (progress while it runs); default: when `onProgress` or `onStage` is given. */
  readonly asJob?: boolean;
  readonly onStage?: (event: StageEvent) => void;
  readonly onProgress?: (job: JobStatus) => void;
  readonly pollMs?: number;
  readonly keyUpload?: KeyUploadOptions;
}

const seconds = (start: number) => (performance.now() - start) / 1000;

/**
 * A served model: metadata, keys, encrypted inference.
 *
 * @example
 * ```ts
 * const model = await RemoteModel.open(new ServeClient({ server, token }), 'mnist');
 * const logits = await model.classify(normalizeImages(model.he, pixels), 1);
 * ```
 */
export class RemoteModel<C extends ClientCrypto = ModelCrypto> {
  readonly client: ServeClient;
  readonly name: string;
  readonly crypto: C;
  #keyId: string | undefined;

  private constructor(client: ServeClient, name: string, crypto: C) {
    this.client = client;
    this.name = name;
    this.crypto = crypto;
  }

  /**
   * Fetches the metadata and makes the keys on this thread (not uploaded until the first inference or
   * {@link uploadKeys}).
   *
   * @param options.seed - deterministic keys and encryptions (tests only).
   */
  static async open(
    client: ServeClient,
    name: string,
    options: { seed?: Uint8Array } = {},
  ): Promise<RemoteModel<ModelCrypto>> {
    const meta = await client.metadata(name);
    return new RemoteModel(client, name, new ModelCrypto(meta.he, options));
  }

  /**
   * Fetches the metadata and makes the keys with the given cryptography (e.g. `WorkerCrypto.create` in a browser).
   *
   * @example
   * ```ts
   * const model = await RemoteModel.openWith(client, 'mnist', (he) => WorkerCrypto.create(he));
   * ```
   */
  static async openWith<C extends ClientCrypto>(
    client: ServeClient,
    name: string,
    make: (he: HeModelDescriptor) => C | Promise<C>,
  ): Promise<RemoteModel<C>> {
    const meta = await client.metadata(name);
    return new RemoteModel(client, name, await make(meta.he));
  }

  get he(): HeModelDescriptor {
    return this.crypto.he;
  }

  /** The key id on the server (uploading the keys first if they are not there yet). */
  async uploadKeys(options: KeyUploadOptions = {}): Promise<string> {
    this.#keyId ??= await this.client.uploadKeys(this.name, await this.crypto.evaluationKeyBytes(), options);
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
    return (await this.run(images, count, first, options)).logits;
  }

  /**
   * {@link classify} with each stage reported as it starts and timed, and the bytes of this run.
   *
   * @throws the client's ServerError (after its retries) or the cryptography's errors.
   */
  async run(
    images: ArrayLike<number>,
    count: number,
    first = 0,
    options: RunOptions = {},
  ): Promise<Classification> {
    const stage = options.onStage ?? (() => {});
    const asJob = options.asJob ?? (options.onProgress !== undefined || options.onStage !== undefined);
    const traffic = this.client.traffic;
    const before = { ...traffic };
    stage({ stage: 'encrypt', fraction: 0 });
    let start = performance.now();
    const inputs = await this.crypto.encrypt(images, count, first);
    const encrypt = seconds(start);
    let uploadKeys = 0;
    const upload = async (): Promise<string> => {
      if (this.#keyId !== undefined) return this.#keyId;
      const started = performance.now();
      stage({ stage: 'upload-keys', fraction: 0 });
      const id = await this.uploadKeys({
        ...options.keyUpload,
        onProgress: (sent, total) => {
          stage({ stage: 'upload-keys', fraction: sent / total });
          options.keyUpload?.onProgress?.(sent, total);
        },
      });
      uploadKeys += seconds(started);
      return id;
    };
    const infer = async (keyId: string) => {
      start = performance.now();
      stage({ stage: 'infer', fraction: 0 });
      return asJob
        ? this.client.inferAsJob(this.name, keyId, inputs, {
            ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
            onProgress: (job) => {
              stage({ stage: 'infer', fraction: job.progress.fraction });
              options.onProgress?.(job);
            },
          })
        : this.client.infer(this.name, keyId, inputs);
    };
    let outputs: Uint8Array[];
    try {
      outputs = await infer(await upload());
    } catch (error) {
      if (!keysGone(error)) throw error;
      this.#keyId = undefined;
      outputs = await infer(await upload());
    }
    const inferSeconds = seconds(start);
    stage({ stage: 'decrypt', fraction: 0 });
    start = performance.now();
    const logits = await this.crypto.decrypt(outputs, count);
    const decrypt = seconds(start);
    stage({ stage: 'done', fraction: 1 });
    return {
      logits,
      seconds: { encrypt, uploadKeys, infer: inferSeconds, decrypt },
      bytes: {
        keys: traffic.keys - before.keys,
        up: traffic.up - before.up,
        down: traffic.down - before.down,
      },
    };
  }
}
