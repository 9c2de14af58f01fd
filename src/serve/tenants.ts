/**
 * The tenants of a server and their tokens, one JSON file per tenant under `<data-dir>/tenants/` (written
 * atomically), with an in-memory index from token hash to tenant for authentication.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '../util/errors.ts';
import { writeJsonAtomic } from './atomic.ts';
import { ALL_SCOPES, generateToken, hashToken, type Principal, type Scope } from './auth.ts';
import { ConflictError } from './errors.ts';
import { checkName } from './names.ts';

/**
 * A tenant as stored: its name and the hashes of its tokens (never the tokens).
 *
 * @example
 * ```ts
 * const record: TenantRecord = { name: 'acme', created: new Date().toISOString(), tokens: [] };
 * ```
 */
export interface TenantRecord {
  readonly name: string;
  readonly created: string;
  readonly tokens: readonly {
    readonly hash: string;
    readonly scopes: readonly Scope[];
    readonly created: string;
  }[];
}

/**
 * The tenants, loaded from and persisted to `<dataDir>/tenants/`.
 *
 * @example
 * ```ts
 * const tenants = await TenantRegistry.open(dataDir);
 * const { token } = await tenants.create('acme');
 * tenants.authenticate(token); // { kind: 'tenant', tenant: 'acme', scopes }
 * ```
 */
export class TenantRegistry {
  readonly #dir: string;
  readonly #tenants = new Map<string, TenantRecord>();
  readonly #byHash = new Map<string, { tenant: string; scopes: ReadonlySet<Scope> }>();

  private constructor(dir: string) {
    this.#dir = dir;
  }

  /**
   * Reads every tenant file under `<dataDir>/tenants/` (creating the folder).
   *
   * @throws FormatError-like InvalidArgumentError for a tenant file that is not a tenant record.
   */
  static async open(dataDir: string): Promise<TenantRegistry> {
    const registry = new TenantRegistry(join(dataDir, 'tenants'));
    await mkdir(registry.#dir, { recursive: true });
    for (const file of await readdir(registry.#dir)) {
      if (!file.endsWith('.json') || file.startsWith('.')) continue;
      const record = JSON.parse(await readFile(join(registry.#dir, file), 'utf8')) as TenantRecord;
      registry.#index(record);
    }
    return registry;
  }

  #index(record: TenantRecord): void {
    this.#tenants.set(record.name, record);
    for (const t of record.tokens)
      this.#byHash.set(t.hash, { tenant: record.name, scopes: new Set(t.scopes) });
  }

  /** Tenant names, sorted. */
  names(): string[] {
    return [...this.#tenants.keys()].sort();
  }

  /** Whether a tenant of this name exists. */
  has(name: string): boolean {
    return this.#tenants.has(name);
  }

  /**
   * Creates a tenant with one token holding `scopes` (default: all) and persists it before answering. The token
   * is returned once and only its hash is kept.
   *
   * @throws InvalidArgumentError for a bad name or scope; ConflictError for a name in use.
   */
  async create(
    name: string,
    scopes: readonly Scope[] = ALL_SCOPES,
  ): Promise<{ tenant: string; token: string; scopes: Scope[] }> {
    checkName(name, 'tenant name');
    for (const s of scopes) {
      if (!ALL_SCOPES.includes(s)) {
        throw new InvalidArgumentError(
          `scope ${JSON.stringify(s)}: expected one of ${ALL_SCOPES.join(', ')}`,
        );
      }
    }
    if (scopes.length === 0) throw new InvalidArgumentError('scopes: expected at least one scope');
    if (this.#tenants.has(name)) throw new ConflictError(`tenant "${name}" exists`);
    const token = generateToken();
    const now = new Date().toISOString();
    const unique = [...new Set(scopes)];
    const record: TenantRecord = {
      name,
      created: now,
      tokens: [{ hash: hashToken(token), scopes: unique, created: now }],
    };
    await writeJsonAtomic(join(this.#dir, `${name}.json`), record);
    this.#index(record);
    return { tenant: name, token, scopes: unique };
  }

  /** The tenant principal of a token, or undefined for an unknown token. */
  authenticate(token: string): Principal | undefined {
    const found = this.#byHash.get(hashToken(token));
    return found ? { kind: 'tenant', tenant: found.tenant, scopes: found.scopes } : undefined;
  }
}
