/**
 * The script of the crypto worker (a module Web Worker started by `WorkerCrypto`): it loads the kernels, makes the
 * model's keys with {@link ModelCrypto} and then encrypts and decrypts on request, so the page's thread never runs
 * a kernel. The secret key is made here and stays here: the answers are evaluation keys, ciphertexts and
 * decrypted values only.
 */
import { loadKernels } from '../ring/context.ts';
import { HomeError } from '../util/errors.ts';
import { ModelCrypto } from './model-crypto.ts';
import type { WorkerAnswer, WorkerRequest } from './worker-messages.ts';

/** The part of a worker's global scope used here (the project's types are the page's, not a worker's). */
interface WorkerScope {
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerAnswer, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;
let crypto: ModelCrypto | undefined;

async function handle(request: WorkerRequest): Promise<{ value: unknown; transfer: Transferable[] }> {
  if (request.op === 'init') {
    await loadKernels(request.kernels === undefined ? undefined : new URL(request.kernels));
    crypto = new ModelCrypto(request.he, request.seed ? { seed: request.seed } : {});
    return { value: { keygenSeconds: crypto.keygenSeconds }, transfer: [] };
  }
  if (!crypto) throw new HomeError('INVALID_STATE', 'the crypto worker got a request before init');
  if (request.op === 'keys') {
    const bytes = crypto.evaluationKeyBytes();
    return { value: bytes, transfer: [bytes.buffer] };
  }
  if (request.op === 'encrypt') {
    const cts = crypto.encrypt(request.images, request.count, request.first);
    return { value: cts, transfer: cts.map((c) => c.buffer) };
  }
  const logits = crypto.decrypt(request.outputs, request.count);
  return { value: logits, transfer: [logits.buffer] };
}

scope.onmessage = (event) => {
  const request = event.data;
  handle(request).then(
    ({ value, transfer }) => scope.postMessage({ id: request.id, ok: true, value }, transfer),
    (error: unknown) => {
      const e = error instanceof Error ? error : new Error(String(error));
      const code = error instanceof HomeError ? error.code : 'WORKER_ERROR';
      scope.postMessage({ id: request.id, ok: false, error: { name: e.name, code, message: e.message } });
    },
  );
};
