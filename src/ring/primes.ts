import { assertInteger } from '../util/assert.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { mulMod, powMod } from './modarith.ts';

/**
 * Every prime HomE uses lies in (PRIME_MIN, PRIME_MAX) = (2^29, 2^30): lazy values up to 4p fit a 32-bit lane.
 *
 * @example
 * ```ts
 * const ok = p > PRIME_MIN && p < PRIME_MAX;
 * ```
 */
export const PRIME_MIN = 2 ** 29;
/** Upper bound of every prime (exclusive); see {@link PRIME_MIN}. @example `p < PRIME_MAX` */
export const PRIME_MAX = 2 ** 30;

/**
 * Deterministic primality test for n < 2^32 (Miller–Rabin with bases 2, 7, 61 is exact below 4,759,123,141).
 *
 * @example
 * ```ts
 * isPrime(1073479681); // true
 * ```
 */
export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (const small of [2, 3, 5, 7, 11, 13, 61]) {
    if (n === small) return true;
    if (n % small === 0) return false;
  }
  let d = n - 1;
  let s = 0;
  while (d % 2 === 0) {
    d /= 2;
    s++;
  }
  witness: for (const a of [2, 7, 61]) {
    let x = powMod(a, d, n);
    if (x === 1 || x === n - 1) continue;
    for (let r = 1; r < s; r++) {
      x = mulMod(x, x, n);
      if (x === n - 1) continue witness;
    }
    return false;
  }
  return true;
}

const primeLists = new Map<number, readonly number[]>();

/**
 * All NTT-friendly primes p ≡ 1 (mod 2N) in (2^29, 2^30), in decreasing order (deterministic).
 *
 * @example
 * ```ts
 * const primes = nttFriendlyPrimes(14); // p ≡ 1 mod 32768
 * ```
 */
export function nttFriendlyPrimes(logN: number): readonly number[] {
  assertInteger(logN, 'logN', 1, 17);
  const cached = primeLists.get(logN);
  if (cached) return cached;
  const step = 2 ** (logN + 1);
  const out: number[] = [];
  for (let p = Math.floor((PRIME_MAX - 1) / step) * step + 1; p > PRIME_MIN; p -= step) {
    if (isPrime(p)) out.push(p);
  }
  primeLists.set(logN, out);
  return out;
}

/**
 * Picks `count` distinct NTT-friendly primes for ring degree 2^logN, each the unused prime closest to the
 * target the callback returns for its position (targets may depend on the primes already chosen, which is how
 * the scale chain keeps the scale near its nominal value).
 *
 * @example
 * ```ts
 * const q = choosePrimes(14, 3, () => 2 ** 29.9, new Set());
 * ```
 */
export function choosePrimes(
  logN: number,
  count: number,
  target: (index: number, chosen: readonly number[]) => number,
  used: Set<number>,
): number[] {
  const candidates = nttFriendlyPrimes(logN);
  const chosen: number[] = [];
  for (let i = 0; i < count; i++) {
    const want = target(i, chosen);
    let best = -1;
    for (const p of candidates) {
      if (used.has(p)) continue;
      if (best < 0 || Math.abs(p - want) < Math.abs(best - want)) best = p;
    }
    if (best < 0) {
      throw new InvalidArgumentError(
        `logN = ${logN}: only ${candidates.length} NTT-friendly primes in (2^29, 2^30), ${count + used.size} needed`,
      );
    }
    used.add(best);
    chosen.push(best);
  }
  return chosen;
}

/**
 * The smallest primitive 2N-th root of unity modulo p (deterministic, so tables are reproducible).
 *
 * @example
 * ```ts
 * const psi = primitiveRoot2N(p, 14);
 * ```
 */
export function primitiveRoot2N(p: number, logN: number): number {
  const twoN = 2 ** (logN + 1);
  if ((p - 1) % twoN !== 0) throw new InvalidArgumentError(`p = ${p}: expected p ≡ 1 (mod ${twoN})`);
  const cofactor = (p - 1) / twoN;
  let best = -1;
  // Any generator's power is a primitive root; take the minimum over the group of such roots for determinism.
  for (let g = 2; g < p; g++) {
    const candidate = powMod(g, cofactor, p);
    if (powMod(candidate, twoN / 2, p) === p - 1) {
      // Primitive: the odd powers of one root are all the primitive roots.
      best = candidate;
      break;
    }
  }
  if (best < 0) throw new InvalidArgumentError(`p = ${p}: no primitive ${twoN}-th root found`);
  let minimum = best;
  const square = mulMod(best, best, p);
  let power = best;
  for (let k = 1; k < twoN; k += 2) {
    if (power < minimum) minimum = power;
    power = mulMod(power, square, p);
  }
  return minimum;
}
