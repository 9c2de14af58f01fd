/**
 * The HE key extension's store: each tenant's evaluation keys (relinearization + Galois keys, as the client
 * serialized them, seeded or not) under `<data-dir>/keys/<tenant>/<key id>/`, checked against the model they
 * were made for when uploaded. Only evaluation keys exist here: the protocol has no place for a secret key, and
 * an upload of any other object type fails its type check.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EvaluationKeys } from '../ckks/keys.ts';
import { Parameters } from '../ckks/parameters.ts';
import { deserializeEvaluationKeys, readHeader } from '../ckks/serialization/index.ts';
import { InvalidArgumentError, MissingKeyError } from '../util/errors.ts';
import { removeFolderAtomic, TEMP_PREFIX, writeFolderAtomic } from './atomic.ts';
import { KeyExpiredError, NotFoundError } from './errors.ts';
import type { HeModelDescriptor } from './he-metadata.ts';
import { newKeyId } from './names.ts';

/**
 * An uploaded key set as stored in `key.json`.
 *
 * @example
 * ```ts
 * console.log(record.id, record.bytes, record.galois_elements.length);
 * ```
 */
export interface KeyRecord {
  readonly id: string;
  readonly tenant: string;
  /** The model the keys were checked against at upload (any model with the same parameters may use them). */
  readonly model: string;
  readonly parameters_id: string;
  readonly created: string;
  readonly bytes: number;
  readonly seeded: boolean;
  readonly relinearization: boolean;
  /** `[galoisElement, level]` of every Galois key in the set. */
  readonly galois: readonly (readonly [number, number])[];
  /** When the keys stop serving (ISO time); `null` or absent (sets stored before expiry existed): never. */
  readonly expires_at?: string | null;
}

/**
 * Options of {@link KeyRegistry.open}.
 *
 * @example
 * ```ts
 * const keys = await KeyRegistry.open(dataDir, { ttlSeconds: 7 * 86400 });
 * ```
 */
export interface KeyRegistryOptions {
  /** Lifetime of an uploaded key set (`--key-ttl`); default: no expiry. An upload may ask for less, not more. */
  readonly ttlSeconds?: number;
  /** Expired sets answer KEY_EXPIRED this long after their expiry, then are deleted (default one day). */
  readonly graceSeconds?: number;
  /** The clock, in milliseconds since the epoch (default `Date.now`; tests move it by hand). */
  readonly now?: () => number;
}

const RECORD = 'key.json';
const KEYS = 'keys.evk';

/**
 * Every tenant's evaluation keys, indexed in memory, persisted under `<dataDir>/keys/`.
 *
 * @example
 * ```ts
 * const keys = await KeyRegistry.open(dataDir);
 * const record = await keys.upload('acme', modelRecord.name, modelRecord.he, bytes);
 * const evk = await keys.load('acme', record.id, params); // the caller disposes it
 * ```
 */
export class KeyRegistry {
  readonly #root: string;
  readonly #records = new Map<string, KeyRecord>();
  readonly #ttlSeconds: number | undefined;
  readonly #graceSeconds: number;
  readonly #now: () => number;

  private constructor(root: string, options: KeyRegistryOptions) {
    this.#root = root;
    this.#ttlSeconds = options.ttlSeconds;
    this.#graceSeconds = options.graceSeconds ?? 86400;
    this.#now = options.now ?? Date.now;
  }

  /** Reads every published key folder under `<dataDir>/keys/`. */
  static async open(dataDir: string, options: KeyRegistryOptions = {}): Promise<KeyRegistry> {
    const registry = new KeyRegistry(join(dataDir, 'keys'), options);
    await mkdir(registry.#root, { recursive: true });
    for (const tenant of await readdir(registry.#root)) {
      if (tenant.startsWith('.')) continue;
      for (const id of await readdir(join(registry.#root, tenant))) {
        if (id.startsWith(TEMP_PREFIX) || id.startsWith('.')) continue;
        const record = JSON.parse(
          await readFile(join(registry.#root, tenant, id, RECORD), 'utf8'),
        ) as KeyRecord;
        registry.#records.set(keyOf(tenant, id), record);
      }
    }
    return registry;
  }

  /**
   * The tenant's key set `id`, expired or not (for status and delete).
   *
   * @throws NotFoundError (KEY_NOT_FOUND) when the tenant has no such key set.
   */
  find(tenant: string, id: string): KeyRecord {
    const record = this.#records.get(keyOf(tenant, id));
    if (!record) {
      throw new NotFoundError(
        'KEY_NOT_FOUND',
        `key id ${JSON.stringify(String(id).slice(0, 40))}: unknown key (upload the keys again)`,
      );
    }
    return record;
  }

  /**
   * The tenant's key set `id`, usable now.
   *
   * @throws NotFoundError (KEY_NOT_FOUND) when the tenant has no such key set; KeyExpiredError (KEY_EXPIRED) when
   *   its expiry has passed. Either way the client should upload its keys again.
   */
  get(tenant: string, id: string): KeyRecord {
    const record = this.find(tenant, id);
    if (this.status(record) === 'expired') {
      throw new KeyExpiredError(
        `key id ${JSON.stringify(id)}: expired at ${record.expires_at} (upload the keys again)`,
      );
    }
    return record;
  }

  /** `active`, or `expired` once the set's `expires_at` has passed. */
  status(record: KeyRecord): 'active' | 'expired' {
    const expires = record.expires_at;
    return typeof expires === 'string' && Date.parse(expires) <= this.#now() ? 'expired' : 'active';
  }

  /**
   * Deletes the key sets expired longer than the grace period ago (until then they answer KEY_EXPIRED, after it
   * KEY_NOT_FOUND); returns their `tenant/id` names.
   */
  async sweep(): Promise<string[]> {
    const limit = this.#now() - this.#graceSeconds * 1000;
    const gone: string[] = [];
    for (const record of [...this.#records.values()]) {
      const expires = record.expires_at;
      if (typeof expires === 'string' && Date.parse(expires) <= limit) {
        await this.delete(record.tenant, record.id);
        gone.push(keyOf(record.tenant, record.id));
      }
    }
    return gone;
  }

  /** The tenant's key sets, oldest first. */
  list(tenant: string): KeyRecord[] {
    return [...this.#records.values()]
      .filter((r) => r.tenant === tenant)
      .sort((a, b) => (a.created < b.created ? -1 : 1));
  }

  /**
   * Checks an evaluation-key set against a model (its parameters, the relinearization key and every Galois key
   * at the level the program uses it at) and stores it under `id` (a fresh one by default; an id already stored,
   * from a committed upload committed again, returns that set unchanged). It expires after `ttlSeconds` when given,
   * else after the registry's lifetime; a request cannot outlive the registry's lifetime.
   *
   * @throws FormatError for bytes that are not an evaluation-key set (truncated, corrupted, another object type);
   *   MismatchError for keys of other parameters; MissingKeyError for a key the model needs and the set lacks;
   *   InvalidArgumentError for a `ttlSeconds` that is not a positive integer.
   */
  async upload(
    tenant: string,
    model: string,
    he: HeModelDescriptor,
    bytes: Uint8Array,
    ttlSeconds?: number,
    id: string = newKeyId(),
  ): Promise<KeyRecord> {
    // Published under this id before (a chunked upload committed again after a crash): the same key set.
    const earlier = this.#records.get(keyOf(tenant, id));
    if (earlier) return earlier;
    if (ttlSeconds !== undefined && !(Number.isSafeInteger(ttlSeconds) && ttlSeconds > 0)) {
      throw new InvalidArgumentError(
        `ttl_seconds ${ttlSeconds}: expected a positive whole number of seconds`,
      );
    }
    const lifetimes = [ttlSeconds, this.#ttlSeconds].filter((t): t is number => t !== undefined);
    const lifetime = lifetimes.length > 0 ? Math.min(...lifetimes) : undefined;
    const params = Parameters.create(he.parameters);
    const evk = deserializeEvaluationKeys(params, bytes);
    let galois: [number, number][];
    try {
      checkCoverage(evk, he);
      galois = [...evk.galois.values()].map((g) => [g.galoisElement, g.key.level] as [number, number]);
    } finally {
      disposeKeys(evk);
    }
    const record: KeyRecord = {
      id,
      tenant,
      model,
      parameters_id: params.id,
      created: new Date(this.#now()).toISOString(),
      bytes: bytes.length,
      seeded: readHeader(bytes).seeded,
      relinearization: evk.relinearization !== undefined,
      galois: galois.sort((a, b) => a[0] - b[0]),
      expires_at: lifetime === undefined ? null : new Date(this.#now() + lifetime * 1000).toISOString(),
    };
    await writeFolderAtomic(join(this.#root, tenant, record.id), {
      [KEYS]: bytes,
      [RECORD]: new TextEncoder().encode(`${JSON.stringify(record, null, 2)}\n`),
    });
    this.#records.set(keyOf(tenant, record.id), record);
    return record;
  }

  /**
   * Reads and deserializes a stored key set (the caller disposes it with {@link disposeKeys}).
   *
   * @throws NotFoundError for an unknown id; MismatchError when `params` are not the keys' parameters.
   */
  async load(tenant: string, id: string, params: Parameters): Promise<EvaluationKeys> {
    this.get(tenant, id);
    const bytes = new Uint8Array(await readFile(join(this.#root, tenant, id, KEYS)));
    return deserializeEvaluationKeys(params, bytes);
  }

  /**
   * Deletes a key set.
   *
   * @throws NotFoundError for an unknown id.
   */
  async delete(tenant: string, id: string): Promise<void> {
    this.find(tenant, id);
    await removeFolderAtomic(join(this.#root, tenant, id));
    this.#records.delete(keyOf(tenant, id));
  }
}

/**
 * Checks that `evk` holds every key the model's program uses: the relinearization key when it relinearizes and
 * each Galois key made for at least the level it is used at.
 *
 * @throws MissingKeyError naming the first key missing or made too low.
 * @example
 * ```ts
 * checkCoverage(evk, record.he);
 * ```
 */
export function checkCoverage(evk: EvaluationKeys, he: HeModelDescriptor): void {
  if (he.relinearization && !evk.relinearization) {
    throw new MissingKeyError(
      'evaluation keys: the model relinearizes and the set has no relinearization key',
    );
  }
  for (const [g, level] of he.key_levels) {
    const key = evk.galois.get(g);
    if (!key)
      throw new MissingKeyError(
        `evaluation keys: no Galois key for element ${g} (the model rotates with it)`,
      );
    if (key.key.level < level) {
      throw new MissingKeyError(
        `evaluation keys: the Galois key for element ${g} is made for level ${key.key.level}; the model uses it at level ${level}`,
      );
    }
  }
}

/**
 * Frees the kernel memory of an evaluation-key set.
 *
 * @example
 * ```ts
 * disposeKeys(evk);
 * ```
 */
export function disposeKeys(evk: EvaluationKeys): void {
  evk.relinearization?.dispose();
  for (const g of evk.galois.values()) g.key.dispose();
}

function keyOf(tenant: string, id: string): string {
  return `${tenant}/${id}`;
}
