/**
 * The messages between a page and its crypto worker (`crypto-worker.ts`): a request names an operation and an id,
 * the answer carries the id and a value or an error. Only evaluation keys, ciphertexts and decrypted values cross:
 * there is no message that carries the secret key.
 */
import type { HeModelDescriptor } from './he-metadata.ts';

/**
 * A request to the crypto worker.
 *
 * @example
 * ```ts
 * worker.postMessage({ id: 1, op: 'encrypt', images, count: 1, first: 0 } satisfies WorkerRequest);
 * ```
 */
export type WorkerRequest =
  | {
      readonly id: number;
      readonly op: 'init';
      readonly he: HeModelDescriptor;
      readonly seed?: Uint8Array;
      /** Where the kernels are, when not beside the library (a bundler moved them). */
      readonly kernels?: string;
    }
  | { readonly id: number; readonly op: 'keys' }
  | {
      readonly id: number;
      readonly op: 'encrypt';
      readonly images: Float64Array;
      readonly count: number;
      readonly first: number;
    }
  | { readonly id: number; readonly op: 'decrypt'; readonly outputs: Uint8Array[]; readonly count: number };

/**
 * The crypto worker's answer to the request of the same id.
 *
 * @example
 * ```ts
 * if (!answer.ok) throw new HomeError(answer.error.code, answer.error.message);
 * ```
 */
export type WorkerAnswer =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | {
      readonly id: number;
      readonly ok: false;
      readonly error: { readonly name: string; readonly code: string; readonly message: string };
    };
