/**
 * Bearer tokens: made from 256 random bits, stored only as their SHA-256 (a token of that entropy needs no slow
 * password hash: no guess list can reach it), checked by hashing what a request presents. The admin token comes
 * from `HOME_ADMIN_TOKEN` or is made at the first start into `<data-dir>/admin-token` (mode 0600).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { InvalidArgumentError } from '../util/errors.ts';
import { writeFileAtomic } from './atomic.ts';
import { AuthenticationError, ForbiddenError } from './errors.ts';

/**
 * What a tenant's token may do: `infer` (metadata and inference), `keys` (upload, read and delete evaluation
 * keys), `models:admin` (upload, load, unload and delete models).
 *
 * @example
 * ```ts
 * const scopes: Scope[] = ['infer', 'keys'];
 * ```
 */
export type Scope = 'infer' | 'keys' | 'models:admin';

/**
 * Every scope, in a stable order.
 *
 * @example
 * ```ts
 * tenants.create('acme', ALL_SCOPES);
 * ```
 */
export const ALL_SCOPES: readonly Scope[] = Object.freeze(['infer', 'keys', 'models:admin']);

/**
 * Who sent a request: the server's administrator, or one tenant with the scopes of its token.
 *
 * @example
 * ```ts
 * if (principal.kind === 'tenant') console.log(principal.tenant, [...principal.scopes]);
 * ```
 */
export type Principal =
  | { readonly kind: 'admin' }
  | { readonly kind: 'tenant'; readonly tenant: string; readonly scopes: ReadonlySet<Scope> };

/**
 * A fresh token: `home_` and 43 base64url characters (256 random bits from `crypto.getRandomValues`).
 *
 * @example
 * ```ts
 * const token = generateToken(); // 'home_3q2-…'
 * ```
 */
export function generateToken(): string {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  return `home_${Buffer.from(bytes).toString('base64url')}`;
}

/**
 * The stored form of a token: its SHA-256, hex.
 *
 * @example
 * ```ts
 * const hash = hashToken(token); // 64 hex digits
 * ```
 */
export function hashToken(token: string): string {
  return bytesToHex(sha256(new TextEncoder().encode(token)));
}

/**
 * The token of an `Authorization: Bearer <token>` header.
 *
 * @throws AuthenticationError for a missing or malformed header.
 * @example
 * ```ts
 * bearerToken('Bearer home_abc'); // 'home_abc'
 * ```
 */
export function bearerToken(header: string | string[] | undefined): string {
  if (header === undefined) throw new AuthenticationError('missing "Authorization: Bearer <token>" header');
  const value = Array.isArray(header) ? header[0] : header;
  const match = /^Bearer\s+(\S{1,512})\s*$/i.exec(value ?? '');
  if (!match) throw new AuthenticationError('malformed Authorization header: expected "Bearer <token>"');
  return match[1];
}

/**
 * Checks that `principal` is a tenant holding `scope` and returns the tenant's name.
 *
 * @throws ForbiddenError for the admin (it owns no models or keys) or a token without the scope.
 * @example
 * ```ts
 * const tenant = requireScope(principal, 'infer');
 * ```
 */
export function requireScope(principal: Principal, scope: Scope): string {
  if (principal.kind !== 'tenant') {
    throw new ForbiddenError(
      `the admin token manages tenants only: use a tenant token with scope "${scope}"`,
    );
  }
  if (!principal.scopes.has(scope)) throw new ForbiddenError(`this token lacks the scope "${scope}"`);
  return principal.tenant;
}

/**
 * The admin token's hash: from `fromEnv` when given (not written anywhere), else read from
 * `<dataDir>/admin-token`, else made and written there (mode 0600) so the operator can read it once.
 *
 * @throws InvalidArgumentError for an environment token shorter than 16 characters.
 * @example
 * ```ts
 * const { hash, source } = await loadAdminToken(dataDir, process.env.HOME_ADMIN_TOKEN);
 * ```
 */
export async function loadAdminToken(
  dataDir: string,
  fromEnv: string | undefined,
): Promise<{ hash: string; source: 'env' | 'file' | 'generated'; path: string }> {
  const path = join(dataDir, 'admin-token');
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.length < 16 || /\s/.test(fromEnv)) {
      throw new InvalidArgumentError(
        'HOME_ADMIN_TOKEN: expected at least 16 characters without spaces (e.g. from `openssl rand -hex 32`)',
      );
    }
    return { hash: hashToken(fromEnv), source: 'env', path };
  }
  try {
    const stored = (await readFile(path, 'utf8')).trim();
    if (stored.length >= 16) return { hash: hashToken(stored), source: 'file', path };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const token = generateToken();
  await writeFileAtomic(path, new TextEncoder().encode(`${token}\n`), 0o600);
  return { hash: hashToken(token), source: 'generated', path };
}
