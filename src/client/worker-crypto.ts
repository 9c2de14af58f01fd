/**
 * A {@link ClientCrypto} whose kernels run in a Web Worker (`crypto-worker.ts`): the page's thread stays free to
 * draw a progress bar while keys are made and inputs encrypted. The worker makes and keeps the secret key; this
 * object only sends it images and ciphertexts and gets back evaluation keys, ciphertexts and decrypted values.
 */
import { HomeError } from '../util/errors.ts';
import type { HeModelDescriptor } from './he-metadata.ts';
import type { ClientCrypto } from './remote-model.ts';
import type { WorkerAnswer, WorkerRequest } from './worker-messages.ts';

/** A request without its id (the id is added when it is sent). */
type Unsent<R> = R extends { id: number } ? Omit<R, 'id'> : never;

/** Sends a request to the worker and resolves with its answer's value. */
type Call = (request: Unsent<WorkerRequest>, transfer?: Transferable[]) => Promise<unknown>;

/**
 * Options of {@link WorkerCrypto.create}.
 *
 * @example
 * ```ts
 * await WorkerCrypto.create(he, { kernels: new URL('/assets/kernels.wasm', location.href) });
 * ```
 */
export interface WorkerCryptoOptions {
  /** The worker to use (default: `crypto-worker.js` beside this module, started as a module worker). */
  readonly worker?: Worker;
  /** Where the kernels are, when a bundler moved `kernels.wasm` (default: beside the library). */
  readonly kernels?: URL;
  /** Deterministic keys and encryptions (tests only). */
  readonly seed?: Uint8Array;
}

/**
 * A model's client cryptography in a Web Worker.
 *
 * @example
 * ```ts
 * const model = await RemoteModel.openWith(client, 'mnist', (he) => WorkerCrypto.create(he));
 * const { logits } = await model.run(normalizeImages(model.he, pixels), 1);
 * model.crypto.terminate();
 * ```
 */
export class WorkerCrypto implements ClientCrypto {
  readonly he: HeModelDescriptor;
  readonly keygenSeconds: number;
  readonly #worker: Worker;
  readonly #call: Call;

  private constructor(he: HeModelDescriptor, worker: Worker, call: Call, keygenSeconds: number) {
    this.he = he;
    this.#worker = worker;
    this.#call = call;
    this.keygenSeconds = keygenSeconds;
  }

  /**
   * Starts the worker (unless one is given), loads the kernels there and makes the model's keys there.
   *
   * @throws the worker's error (a HomeError with the worker's code) when the kernels or the keys cannot be made.
   */
  static async create(he: HeModelDescriptor, options: WorkerCryptoOptions = {}): Promise<WorkerCrypto> {
    const worker =
      options.worker ?? new Worker(new URL('./crypto-worker.js', import.meta.url), { type: 'module' });
    const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
    let next = 1;
    worker.onmessage = (event: MessageEvent<WorkerAnswer>) => {
      const answer = event.data;
      const waiting = pending.get(answer.id);
      if (!waiting) return;
      pending.delete(answer.id);
      if (answer.ok) waiting.resolve(answer.value);
      else waiting.reject(new HomeError(answer.error.code, `crypto worker: ${answer.error.message}`));
    };
    // A script that fails to load or throws at the top level answers nothing: fail every waiting call.
    worker.onerror = (event: ErrorEvent) => {
      const error = new HomeError('WORKER_ERROR', `crypto worker: ${event.message || 'failed to start'}`);
      for (const waiting of pending.values()) waiting.reject(error);
      pending.clear();
    };
    const call: Call = (request, transfer = []) =>
      new Promise<unknown>((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        worker.postMessage({ ...request, id }, transfer);
      });
    const started = (await call({
      op: 'init',
      he,
      ...(options.seed ? { seed: options.seed } : {}),
      ...(options.kernels ? { kernels: options.kernels.href } : {}),
    })) as { keygenSeconds: number };
    return new WorkerCrypto(he, worker, call, started.keygenSeconds);
  }

  /** The evaluation keys, serialized seeded: what the server gets. */
  async evaluationKeyBytes(): Promise<Uint8Array> {
    return (await this.#call({ op: 'keys' })) as Uint8Array;
  }

  /** Packs and encrypts `count` normalized images starting at `first`, in the worker. */
  async encrypt(images: ArrayLike<number>, count: number, first = 0): Promise<Uint8Array[]> {
    return (await this.#call({
      op: 'encrypt',
      images: Float64Array.from(images),
      count,
      first,
    })) as Uint8Array[];
  }

  /** Decrypts and unpacks a reply's output ciphertexts, in the worker. */
  async decrypt(outputs: readonly Uint8Array[], count: number): Promise<Float64Array> {
    return (await this.#call({ op: 'decrypt', outputs: [...outputs], count })) as Float64Array;
  }

  /** Stops the worker; its keys are gone with it. */
  terminate(): void {
    this.#worker.terminate();
  }
}
