/**
 * Runs encrypted inferences for the server: checks a request's ciphertexts against the model's program, runs
 * them through the runtime's {@link InferenceServer} made for that model and key set (kept in a small
 * least-recently-used cache, since setting one up encodes the model's weights and reads the keys), one request at
 * a time (the kernels' arena is shared), and serializes the outputs.
 */
import type { EvaluationKeys } from '../ckks/keys.ts';
import type { Ciphertext } from '../ckks/objects.ts';
import { Parameters } from '../ckks/parameters.ts';
import { deserializeCiphertext, serializeCiphertext } from '../ckks/serialization/index.ts';
import { InferenceServer, type ServerMemory } from '../runtime/he/server.ts';
import { InvalidArgumentError, MismatchError, MissingKeyError } from '../util/errors.ts';
import { ModelNotReadyError } from './errors.ts';
import { disposeKeys, type KeyRegistry } from './keys.ts';
import type { ModelRecord, ModelRepository } from './models.ts';

/**
 * Options of {@link InferenceEngine}.
 *
 * @example
 * ```ts
 * const engine = new InferenceEngine(models, keys, { cachedServers: 8 });
 * ```
 */
export interface EngineOptions {
  /** Model + key set pairs kept set up between requests (default 4). */
  readonly cachedServers?: number;
  /**
   * The memory of each pair's server (`--dram-budget`, `--tier`): called once per pair set up, with a name
   * unique to it; without it, or when it answers undefined, the pair's runs are all in memory.
   */
  readonly memoryFor?: (name: string) => Promise<ServerMemory | undefined>;
}

/**
 * What a caller learns while its request waits and runs: when it leaves the queue, and the program's
 * instructions done out of the total as the runtime reports them (about 200 times per run).
 *
 * @example
 * ```ts
 * await engine.infer(tenant, model, keyId, inputs, { onStart: () => (job.state = 'running'), onProgress: (d, t) => … });
 * ```
 */
export interface InferenceHooks {
  readonly onStart?: () => void;
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * What one inference returned: the serialized output ciphertexts, in the order of the model's outputs, and
 * timings.
 *
 * @example
 * ```ts
 * const { outputs, seconds } = await engine.infer('acme', 'mnist', keyId, ciphertexts);
 * ```
 */
export interface InferenceResult {
  readonly outputs: Uint8Array[];
  /** Waiting for the requests before this one. */
  readonly queueSeconds: number;
  /** Evaluation (setting up the model + key pair included when it was not cached). */
  readonly seconds: number;
}

interface Entry {
  readonly server: InferenceServer;
  readonly keys: EvaluationKeys;
}

/**
 * The inference engine of a server.
 *
 * @example
 * ```ts
 * const engine = new InferenceEngine(models, keys);
 * const { outputs } = await engine.infer(tenant, model, keyId, inputs);
 * ```
 */
export class InferenceEngine {
  readonly #models: ModelRepository;
  readonly #keys: KeyRegistry;
  readonly #options: EngineOptions;
  /** Set-up servers by `tenant/model/keyId`, least recently used first. */
  readonly #servers = new Map<string, Entry>();
  #tail: Promise<unknown> = Promise.resolve();
  /** Requests accepted and not finished (waiting or running), in all and per tenant. */
  #depth = 0;
  readonly #perTenant = new Map<string, number>();

  constructor(models: ModelRepository, keys: KeyRegistry, options: EngineOptions = {}) {
    this.#models = models;
    this.#keys = keys;
    this.#options = options;
  }

  /** Requests accepted and not finished: the one running and those waiting behind it. */
  get depth(): number {
    return this.#depth;
  }

  /** The tenant's requests accepted and not finished. */
  pending(tenant: string): number {
    return this.#perTenant.get(tenant) ?? 0;
  }

  /**
   * Checks and runs one request: `inputs` are the serialized input ciphertexts in the order of the model's
   * `he.inputs`. The request counts in {@link depth} and {@link pending} from the moment the call returns until
   * the result (or error) is settled, so an admission check just before the call sees it.
   *
   * @throws NotFoundError for an unknown model or key id; ModelNotReadyError for an unloaded model;
   *   InvalidArgumentError for a wrong ciphertext count; FormatError for corrupted ciphertext bytes;
   *   MismatchError for a ciphertext of other parameters, level or scale, or keys of other parameters;
   *   MissingKeyError for a key set without a key the model uses.
   */
  async infer(
    tenant: string,
    model: string,
    keyId: string,
    inputs: readonly Uint8Array[],
    hooks: InferenceHooks = {},
  ): Promise<InferenceResult> {
    const record = this.#models.get(tenant, model);
    if (record.state !== 'ready') {
      throw new ModelNotReadyError(
        `model "${model}" is unloaded: load it first (POST /v2/repository/models/${model}/load)`,
      );
    }
    const keyRecord = this.#keys.get(tenant, keyId);
    checkKeysFit(record, keyRecord.parameters_id, keyRecord.relinearization, keyRecord.galois);
    const expected = record.he.inputs;
    if (inputs.length !== expected.length) {
      throw new InvalidArgumentError(
        `input: ${inputs.length} ciphertexts: model "${model}" takes ${expected.length} (see he.inputs in its metadata)`,
      );
    }
    const queued = performance.now();
    this.#depth++;
    this.#perTenant.set(tenant, this.pending(tenant) + 1);
    const run = this.#tail.then(async () => {
      const start = performance.now();
      hooks.onStart?.();
      const outputs = await this.#run(record, keyId, inputs, hooks.onProgress);
      return { outputs, queueSeconds: (start - queued) / 1000, seconds: (performance.now() - start) / 1000 };
    });
    this.#tail = run.catch(() => undefined);
    try {
      return await run;
    } finally {
      this.#depth--;
      const left = this.pending(tenant) - 1;
      if (left > 0) this.#perTenant.set(tenant, left);
      else this.#perTenant.delete(tenant);
    }
  }

  async #run(
    record: ModelRecord,
    keyId: string,
    inputs: readonly Uint8Array[],
    onProgress: ((done: number, total: number) => void) | undefined,
  ): Promise<Uint8Array[]> {
    const params = Parameters.create(record.he.parameters);
    const cts = new Map<number, Ciphertext>();
    try {
      record.he.inputs.forEach((input, i) => {
        const ct = deserializeCiphertext(params, inputs[i]);
        cts.set(input.id, ct);
        if (ct.polys.length !== 2) {
          throw new MismatchError(
            `input ciphertext ${i}: degree ${ct.polys.length - 1}: expected a fresh degree-1 ciphertext`,
          );
        }
        if (ct.level !== input.level || Math.abs(ct.scale / input.scale - 1) > 2 ** -30) {
          throw new MismatchError(
            `input ciphertext ${i}: level ${ct.level}, scale 2^${Math.log2(ct.scale).toFixed(3)}; the model expects level ` +
              `${input.level}, scale 2^${Math.log2(input.scale).toFixed(3)}`,
          );
        }
      });
    } catch (error) {
      for (const ct of cts.values()) ct.dispose();
      throw error;
    }
    let entry: Entry;
    try {
      entry = await this.#entry(record, keyId, params);
    } catch (error) {
      for (const ct of cts.values()) ct.dispose();
      throw error;
    }
    // The run consumes the inputs, whether it succeeds or not.
    const outputs = await entry.server.run(cts, onProgress);
    try {
      return record.he.outputs.map((o) => {
        const ct = outputs.get(o.id);
        if (!ct) throw new MismatchError(`output ${o.id}: missing from the run's results`);
        return serializeCiphertext(ct);
      });
    } finally {
      for (const ct of outputs.values()) ct.dispose();
    }
  }

  async #entry(record: ModelRecord, keyId: string, params: Parameters): Promise<Entry> {
    const id = `${record.tenant}/${record.name}/${keyId}`;
    const cached = this.#servers.get(id);
    if (cached) {
      this.#servers.delete(id);
      this.#servers.set(id, cached);
      return cached;
    }
    const program = await this.#models.program(record.tenant, record.name);
    const keys = await this.#keys.load(record.tenant, keyId, params);
    let server: InferenceServer;
    try {
      const memory = this.#options.memoryFor ? await this.#options.memoryFor(id) : undefined;
      server = new InferenceServer(program, keys, memory ? { memory } : {});
      server.prepare();
    } catch (error) {
      disposeKeys(keys);
      throw error;
    }
    const entry = { server, keys };
    this.#servers.set(id, entry);
    const limit = Math.max(1, this.#options.cachedServers ?? 4);
    while (this.#servers.size > limit) {
      const [oldest] = this.#servers.keys();
      this.#drop(oldest);
    }
    return entry;
  }

  /**
   * Drops the set-up servers of a tenant's model or key set (after an unload or a delete), once the requests
   * already queued have run.
   *
   * @example
   * ```ts
   * await engine.forget('acme', { model: 'mnist' });
   * ```
   */
  async forget(tenant: string, what: { model?: string; keyId?: string }): Promise<void> {
    await this.#tail;
    for (const id of [...this.#servers.keys()]) {
      const [t, m, k] = id.split('/');
      if (t === tenant && (m === what.model || k === what.keyId)) this.#drop(id);
    }
  }

  /** Frees every set-up server once the queued requests have run. */
  async close(): Promise<void> {
    await this.#tail;
    for (const id of [...this.#servers.keys()]) this.#drop(id);
  }

  #drop(id: string): void {
    const entry = this.#servers.get(id);
    if (!entry) return;
    this.#servers.delete(id);
    entry.server.dispose();
    disposeKeys(entry.keys);
  }
}

/**
 * Checks a stored key set against a model without reading the keys: same parameters, and every key the model
 * uses made for at least its level.
 *
 * @throws MismatchError for other parameters; MissingKeyError for a missing key.
 * @example
 * ```ts
 * checkKeysFit(record, keyRecord.parameters_id, keyRecord.relinearization, keyRecord.galois);
 * ```
 */
export function checkKeysFit(
  record: ModelRecord,
  parametersId: string,
  relinearization: boolean,
  galois: readonly (readonly [number, number])[],
): void {
  if (parametersId !== record.he.parameters_id) {
    throw new MismatchError(
      `key set: made for parameters ${parametersId}; model "${record.name}" uses ${record.he.parameters_id} (upload keys made for it)`,
    );
  }
  if (record.he.relinearization && !relinearization) {
    throw new MissingKeyError(`key set: no relinearization key; model "${record.name}" relinearizes`);
  }
  const levels = new Map(galois.map(([g, l]) => [g, l]));
  for (const [g, level] of record.he.key_levels) {
    const have = levels.get(g);
    if (have === undefined || have < level) {
      throw new MissingKeyError(
        `key set: no Galois key for element ${g} at level ≥ ${level}; model "${record.name}" uses it`,
      );
    }
  }
}
