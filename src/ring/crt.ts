import type { KernelContext } from './context.ts';
import { barrettConstant, invMod, mulMod } from './modarith.ts';
import type { Poly } from './poly.ts';

/**
 * Exact RNS → integer composition of coefficients, returned as the nearest float64 of the centered value in
 * (−Q/2, Q/2]. Garner's mixed-radix digits are exact integers; the float conversion happens last, so a value
 * beyond 2^53 keeps full relative precision.
 *
 * Fast path: the digits of the first `candidateLimbs` limbs give a candidate, checked exactly against every other
 * limb (O(limbs) per coefficient); a coefficient that fails the check is composed over all limbs (O(limbs²)).
 *
 * @example
 * ```ts
 * const composer = new CrtComposer(poly.moduli.map((m) => m.value), poly.context);
 * composer.compose(poly, out); // poly in the coefficient domain
 * ```
 */
export class CrtComposer {
  readonly moduli: readonly number[];
  /** The context whose memory holds the tables; it composes polynomials of that context. */
  readonly context: KernelContext;
  /** inverseOfPrefix[i] = (q_0 … q_{i−1})^{-1} mod q_i */
  readonly #inverseOfPrefix: Float64Array;
  /** prefixMod[j * L + i] = (q_0 … q_{i−1}) mod q_j */
  readonly #prefixMod: Float64Array;
  readonly #candidateLimbs: number;

  /** Kernel-memory tables for the vectorized candidate pass. */
  readonly #moduliTable: number;
  readonly #barrettTable: number;
  readonly #perLimbTable: number;

  constructor(moduli: readonly number[], context: KernelContext, candidateLimbs = 3) {
    this.moduli = moduli;
    this.context = context;
    const L = moduli.length;
    this.#candidateLimbs = Math.min(Math.max(candidateLimbs, 1), 3, L);
    this.#inverseOfPrefix = new Float64Array(L);
    this.#prefixMod = new Float64Array(L * (L + 1));
    for (let j = 0; j < L; j++) {
      let prefix = 1;
      for (let i = 0; i <= L; i++) {
        this.#prefixMod[j * (L + 1) + i] = prefix;
        if (i < L) prefix = mulMod(prefix, moduli[i] % moduli[j], moduli[j]);
      }
    }
    for (let i = 0; i < L; i++) {
      this.#inverseOfPrefix[i] = i === 0 ? 1 : invMod(this.#prefixMod[i * (L + 1) + i], moduli[i]);
    }
    const alloc = context.allocator;
    this.#moduliTable = alloc.alloc(L);
    this.#barrettTable = alloc.alloc(L);
    this.#perLimbTable = alloc.alloc(3 * L);
    const moduliWords = context.view(this.#moduliTable, L);
    const barrettWords = context.view(this.#barrettTable, L);
    const perLimb = context.view(this.#perLimbTable, 3 * L);
    const c = this.#candidateLimbs;
    for (let j = 0; j < L; j++) {
      moduliWords[j] = moduli[j];
      barrettWords[j] = barrettConstant(moduli[j]);
      perLimb[3 * j] = moduli[0] % moduli[j];
      perLimb[3 * j + 1] = this.#prefixMod[j * (L + 1) + 2];
      perLimb[3 * j + 2] = this.#prefixMod[j * (L + 1) + c];
    }
  }

  /** Writes the centered value of every coefficient of `poly` (coefficient domain) into `out`. */
  compose(poly: Poly, out: Float64Array): void {
    const n = poly.n;
    const L = this.moduli.length;
    const c = this.#candidateLimbs;
    const context = this.context;
    context.check(poly.context, 'CrtComposer.compose');
    const alloc = context.allocator;
    const outPointer = alloc.alloc(2 * n);
    const flagsPointer = alloc.alloc(n / 4);
    try {
      const failures = context.exports.crtCandidate(
        outPointer,
        flagsPointer,
        poly.pointer,
        n,
        L,
        c,
        this.#moduliTable,
        this.#barrettTable,
        c > 1 ? this.#inverseOfPrefix[1] : 0,
        c > 2 ? this.#inverseOfPrefix[2] : 0,
        this.#perLimbTable,
      );
      const memory = context.memory.buffer;
      out.set(new Float64Array(memory, outPointer, n));
      if (failures > 0) {
        const flags = new Uint8Array(memory, flagsPointer, n);
        const limbs: Uint32Array[] = [];
        for (let i = 0; i < L; i++) limbs.push(poly.limb(i));
        const digits = new Float64Array(L);
        const residues = new Float64Array(L);
        for (let k = 0; k < n; k++) {
          if (flags[k] === 0) continue;
          for (let i = 0; i < L; i++) residues[i] = limbs[i][k];
          out[k] = this.#composeDigits(residues, L, digits);
        }
      }
    } finally {
      alloc.free(outPointer, 2 * n);
      alloc.free(flagsPointer, n / 4);
    }
  }

  /**
   * Reference composition of one coefficient over the first `count` limbs (plain TypeScript), used for the
   * slow path and as the test oracle.
   */
  composeOne(residues: ArrayLike<number>, count = this.moduli.length): number {
    return this.#composeDigits(Float64Array.from(residues), count, new Float64Array(this.moduli.length));
  }

  /** Garner over the first `count` limbs; returns the centered value as a float. */
  #composeDigits(residues: Float64Array, count: number, digits: Float64Array): number {
    const q = this.moduli;
    const L = q.length;
    for (let i = 0; i < count; i++) {
      const qi = q[i];
      // partial = (d_0 + d_1 q_0 + … + d_{i-1} q_0…q_{i-2}) mod q_i
      let partial = 0;
      for (let t = 0; t < i; t++)
        partial = (partial + mulMod(digits[t] % qi, this.#prefixMod[i * (L + 1) + t], qi)) % qi;
      digits[i] = mulMod((residues[i] - partial + qi) % qi, this.#inverseOfPrefix[i], qi);
    }
    // Negative iff, at the highest digit where d_i ≠ q_i − 1 − d_i, d_i is the larger (Q_count is odd).
    let negative = false;
    for (let i = count - 1; i >= 0; i--) {
      const complement = q[i] - 1 - digits[i];
      if (digits[i] !== complement) {
        negative = digits[i] > complement;
        break;
      }
    }
    let value = 0;
    if (negative) {
      for (let i = count - 1; i >= 0; i--) value = value * q[i] + (q[i] - 1 - digits[i]);
      return -(value + 1);
    }
    for (let i = count - 1; i >= 0; i--) value = value * q[i] + digits[i];
    return value;
  }
}
