/**
 * `home-he/client`: the client SDK of `home serve`, the same code in Node and browsers (fetch and no Node module).
 * Fetch a model's metadata, make exactly the keys it needs, upload them once, encrypt, infer, decrypt, with
 * progress and retries. The secret key stays in the client: in a {@link ModelCrypto} on the calling thread, or in
 * a Web Worker through {@link WorkerCrypto}.
 *
 * @example
 * ```ts
 * import { normalizeImages, RemoteModel, ServeClient } from 'home-he/client';
 * const model = await RemoteModel.open(new ServeClient({ server, token }), 'mnist');
 * const logits = await model.classify(normalizeImages(model.he, pixels), 1);
 * ```
 */
export type { HeModelDescriptor } from './he-metadata.ts';
export {
  type JobStatus,
  type KeyUploadOptions,
  keysGone,
  type ModelMetadata,
  type RepositoryEntry,
  type RetryEvent,
  ServeClient,
  type ServeClientOptions,
  ServerError,
  type Traffic,
} from './http.ts';
export { ModelCrypto, normalizeImages } from './model-crypto.ts';
export {
  type Classification,
  type ClientCrypto,
  RemoteModel,
  type RunOptions,
  type StageEvent,
} from './remote-model.ts';
export { WorkerCrypto, type WorkerCryptoOptions } from './worker-crypto.ts';
