import { assertInteger } from '../util/assert.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import type { KernelContext } from './context.ts';
import { barrettConstant, invMod, mulMod, shoupConstant } from './modarith.ts';
import { isPrime, PRIME_MAX, PRIME_MIN, primitiveRoot2N } from './primes.ts';

/**
 * Bit reversal of `value` over `bits` bits.
 *
 * @example
 * ```ts
 * bitReverse(1, 3); // 4
 * ```
 */
export function bitReverse(value: number, bits: number): number {
  let r = 0;
  for (let i = 0; i < bits; i++) {
    r = (r << 1) | ((value >>> i) & 1);
  }
  return r >>> 0;
}

/**
 * One NTT-friendly prime with everything the kernels need for ring degree 2^logN: the Barrett constant and the
 * twiddle tables (psi powers in bit-reversed order with Shoup companions), which live in the memory of one
 * {@link KernelContext} for as long as the context does.
 *
 * @example
 * ```ts
 * const q = Modulus.get(1073479681, 14, context);
 * context.exports.nttForward(ptr, q.n, q.value, q.twiddles, q.twiddlesShoup);
 * ```
 */
export class Modulus {
  readonly value: number;
  readonly logN: number;
  /** The context whose memory holds the tables; polynomials over this modulus live there too. */
  readonly context: KernelContext;
  readonly n: number;
  /** floor(2^61 / p), for the Barrett `mul` kernels. */
  readonly barrett: number;
  /** The primitive 2N-th root of unity the tables are built from. */
  readonly psi: number;
  /** Byte offsets (kernel memory) of the four twiddle tables, n words each. */
  readonly twiddles: number;
  readonly twiddlesShoup: number;
  readonly inverseTwiddles: number;
  readonly inverseTwiddlesShoup: number;
  readonly nInverse: number;
  readonly nInverseShoup: number;

  static readonly #cache = new WeakMap<KernelContext, Map<string, Modulus>>();

  /** The shared instance for (p, logN) in `context`; tables are built once per context. */
  static get(p: number, logN: number, context: KernelContext): Modulus {
    let cache = Modulus.#cache.get(context);
    if (!cache) {
      cache = new Map();
      Modulus.#cache.set(context, cache);
    }
    const key = `${p}:${logN}`;
    let modulus = cache.get(key);
    if (!modulus) {
      modulus = new Modulus(p, logN, context);
      cache.set(key, modulus);
    }
    return modulus;
  }

  private constructor(p: number, logN: number, context: KernelContext) {
    assertInteger(logN, 'logN', 3, 17);
    if (!Number.isInteger(p) || p <= PRIME_MIN || p >= PRIME_MAX || !isPrime(p)) {
      throw new InvalidArgumentError(`modulus ${p}: expected a prime in (2^29, 2^30)`);
    }
    const n = 2 ** logN;
    if ((p - 1) % (2 * n) !== 0)
      throw new InvalidArgumentError(`modulus ${p}: expected p ≡ 1 (mod ${2 * n})`);
    this.value = p;
    this.logN = logN;
    this.context = context;
    this.n = n;
    this.barrett = barrettConstant(p);
    this.psi = primitiveRoot2N(p, logN);
    const psiInverse = invMod(this.psi, p);
    const alloc = context.allocator;
    this.twiddles = alloc.alloc(n);
    this.twiddlesShoup = alloc.alloc(n);
    this.inverseTwiddles = alloc.alloc(n);
    this.inverseTwiddlesShoup = alloc.alloc(n);
    const tw = context.view(this.twiddles, n);
    const twShoup = context.view(this.twiddlesShoup, n);
    const itw = context.view(this.inverseTwiddles, n);
    const itwShoup = context.view(this.inverseTwiddlesShoup, n);
    const powers = new Float64Array(n);
    const inversePowers = new Float64Array(n);
    powers[0] = 1;
    inversePowers[0] = 1;
    for (let i = 1; i < n; i++) {
      powers[i] = mulMod(powers[i - 1], this.psi, p);
      inversePowers[i] = mulMod(inversePowers[i - 1], psiInverse, p);
    }
    for (let k = 0; k < n; k++) {
      const r = bitReverse(k, logN);
      tw[k] = powers[r];
      twShoup[k] = shoupConstant(powers[r], p);
      itw[k] = inversePowers[r];
      itwShoup[k] = shoupConstant(inversePowers[r], p);
    }
    this.nInverse = invMod(n % p, p);
    this.nInverseShoup = shoupConstant(this.nInverse, p);
  }
}
