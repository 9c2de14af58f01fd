/**
 * Exact scalar modular arithmetic on JavaScript numbers for moduli below 2^30. These run during setup
 * (tables, constants) and in the TypeScript reference kernels, never in a hot loop over coefficients.
 *
 * Products of two 30-bit values exceed 2^53, so `mulMod` splits one operand into 15-bit halves: every
 * intermediate stays below 2^46 and is exact in float64.
 */

/**
 * a * b mod p for 0 <= a, b < p < 2^30.
 *
 * @example
 * ```ts
 * mulMod(123456789, 987654321 % 998244353, 998244353);
 * ```
 */
export function mulMod(a: number, b: number, p: number): number {
  const high = Math.floor(b / 32768);
  const low = b - high * 32768;
  return (((a * high) % p) * 32768 + a * low) % p;
}

/**
 * base^exponent mod p (square and multiply), exponent a non-negative integer below 2^53.
 *
 * @example
 * ```ts
 * powMod(3, 1000, 1073479681);
 * ```
 */
export function powMod(base: number, exponent: number, p: number): number {
  let result = 1 % p;
  base %= p;
  while (exponent > 0) {
    if (exponent % 2 === 1) result = mulMod(result, base, p);
    base = mulMod(base, base, p);
    exponent = Math.floor(exponent / 2);
  }
  return result;
}

/**
 * The inverse of a modulo p (extended Euclid); throws if gcd(a, p) != 1.
 *
 * @example
 * ```ts
 * invMod(2, 1073479681); // (p + 1) / 2
 * ```
 */
export function invMod(a: number, p: number): number {
  let [r0, r1] = [p, ((a % p) + p) % p];
  let [t0, t1] = [0, 1];
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1);
    [r0, r1] = [r1, r0 - q * r1];
    [t0, t1] = [t1, t0 - q * t1];
  }
  if (r0 !== 1) throw new RangeError(`invMod: ${a} is not invertible modulo ${p}`);
  return t0 < 0 ? t0 + p : t0;
}

/** floor(x / p) for a non-negative integer x < 2^53, immune to rounding of the float division. */
function floorDiv(x: number, p: number): number {
  return (x - (x % p)) / p;
}

/**
 * Shoup's companion of a constant w < p: floor(w * 2^32 / p), so that w*y mod p costs two multiplies.
 *
 * @example
 * ```ts
 * const ws = shoupConstant(w, p); // pass (w, ws) to the mulScalar kernel
 * ```
 */
export function shoupConstant(w: number, p: number): number {
  const x = w * 65536; // < 2^46
  const high = floorDiv(x, p);
  const rest = (x % p) * 65536; // < 2^46
  return high * 65536 + floorDiv(rest, p);
}

/**
 * Barrett constant floor(2^61 / p) for 2^29 < p < 2^30, the value the `mul` kernels take.
 *
 * @example
 * ```ts
 * const mu = barrettConstant(p);
 * ```
 */
export function barrettConstant(p: number): number {
  // 2^61 / p = 2^31 * (2^30 / p); do it in two exact steps.
  const x = 2 ** 30 * 2 ** 16; // 2^46
  const high = floorDiv(x, p); // < 2^17
  const rest = (x % p) * 2 ** 15; // < 2^45
  return high * 2 ** 15 + floorDiv(rest, p);
}

/**
 * Reduces any finite float64 integer value x (possibly far beyond 2^53) exactly modulo p, returning [0, p).
 * Used by the encoder, whose scaled values may exceed 2^53.
 *
 * @example
 * ```ts
 * reduceFloat(2 ** 80, p) === powMod(2, 80, p);
 * ```
 */
export function reduceFloat(x: number, p: number): number {
  const negative = x < 0;
  let a = Math.abs(x);
  let r: number;
  if (a < 2 ** 53) {
    r = a % p;
  } else {
    // a = m * 2^e with m < 2^53 an integer; a mod p = (m mod p) * (2^e mod p).
    let e = 0;
    while (a >= 2 ** 53) {
      a /= 2 ** 32;
      e += 32;
    }
    // a may now be fractional: split off the integer part and push the remaining bits back.
    const whole = Math.floor(a);
    const frac = a - whole;
    // frac * 2^32 is an exact integer below 2^32 because a had at most 53 significant bits.
    const lowPart = frac * 2 ** 32;
    const m = mulMod(whole % p, 2 ** 32 % p, p);
    const mAll = (m + (lowPart % p)) % p;
    r = mulMod(mAll, powMod(2, e - 32, p), p);
  }
  return negative && r !== 0 ? p - r : r;
}
