/**
 * Names of tenants and models: they become folder names in the data directory and URL path segments, so only a
 * safe alphabet is accepted (no dots first, no slashes, bounded length).
 */
import { InvalidArgumentError } from '../util/errors.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * Checks a tenant or model name: 1–64 characters of letters, digits, `_` and `-`, starting with a letter or digit.
 *
 * @throws InvalidArgumentError naming `what` and the value.
 * @example
 * ```ts
 * checkName('mnist-cryptonets', 'model name');
 * ```
 */
export function checkName(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(name)?.slice(0, 80)}: expected 1–64 letters, digits, "_" or "-", starting with a letter or digit`,
    );
  }
}

const KEY_ID = /^k_[0-9a-f]{32}$/;

/**
 * Checks a key id (`k_` and 32 hex digits, as {@link newKeyId} makes).
 *
 * @throws InvalidArgumentError for anything else.
 * @example
 * ```ts
 * checkKeyId('k_0123456789abcdef0123456789abcdef');
 * ```
 */
export function checkKeyId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !KEY_ID.test(id)) {
    throw new InvalidArgumentError(
      `key id ${JSON.stringify(id)?.slice(0, 80)}: expected "k_" and 32 hex digits`,
    );
  }
}

/**
 * A fresh key id: `k_` and 128 random bits in hex (from `crypto.getRandomValues`).
 *
 * @example
 * ```ts
 * const id = newKeyId(); // 'k_9f…'
 * ```
 */
export function newKeyId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `k_${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}
