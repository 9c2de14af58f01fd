import { BasisExtender } from '../ring/base-conversion.ts';
import { invMod, mulMod, shoupConstant } from '../ring/modarith.ts';
import type { Modulus } from '../ring/modulus.ts';
import { inttInPlace, nttInPlace } from '../ring/ops.ts';
import { Poly } from '../ring/poly.ts';
import type { SwitchingKey } from './keys.ts';
import type { Parameters } from './parameters.ts';
import { MismatchError } from '../util/errors.ts';

/**
 * Hybrid key switching (Han–Ki): decompose into `digits` groups of Q primes, raise each to Q_ℓ ∪ P (ModUp),
 * multiply-accumulate with the key, and divide by P (ModDown). A decomposition can be kept and reused for many
 * Galois keys (hoisting).
 *
 * @example
 * ```ts
 * const switcher = KeySwitcher.for(params);
 * const [d0, d1] = switcher.switchKey(c2, relinKey, level);
 * ```
 */
export class KeySwitcher {
  readonly params: Parameters;
  static readonly #cache = new WeakMap<Parameters, KeySwitcher>();
  readonly #modUp = new Map<string, { extender: BasisExtender; half: Float64Array }>();
  readonly #modDown = new Map<
    number,
    {
      extender: BasisExtender;
      pInverse: Float64Array;
      pInverseShoup: Float64Array;
      halfP: Float64Array;
      halfQ: Float64Array;
    }
  >();

  static for(params: Parameters): KeySwitcher {
    let switcher = KeySwitcher.#cache.get(params);
    if (!switcher) {
      switcher = new KeySwitcher(params);
      KeySwitcher.#cache.set(params, switcher);
    }
    return switcher;
  }

  private constructor(params: Parameters) {
    this.params = params;
  }

  /** The digits of Q_ℓ: [start, end) limb ranges. */
  digitRanges(level: number): [number, number][] {
    const limbs = this.params.limbsAtLevel(level);
    const ranges: [number, number][] = [];
    for (let start = 0; start < limbs; start += this.params.digitSize) {
      ranges.push([start, Math.min(start + this.params.digitSize, limbs)]);
    }
    return ranges;
  }

  /**
   * ModUp: the decomposition of c (NTT, Q_ℓ) as one polynomial per digit over Q_ℓ ∪ P, NTT domain.
   * The caller owns (and disposes) the returned polys.
   */
  decompose(c: Poly, level: number): Poly[] {
    const params = this.params;
    const limbs = params.limbsAtLevel(level);
    const moduliQP = params.moduliQPAtLevel(level);
    const n = params.n;
    const alpha = params.digitSize;
    const coefficients = c.copy(limbs);
    inttInPlace(coefficients);
    const out: Poly[] = [];
    // Scratch: the shifted digit (alpha limbs) and the exact extension's workspace (alpha + 1 limbs).
    const shifted = this.params.context.allocator.alloc(alpha * n);
    const scratch = this.params.context.allocator.alloc((alpha + 1) * n);
    const k = this.params.context.exports;
    try {
      for (const [start, end] of this.digitRanges(level)) {
        const extended = Poly.alloc(moduliQP, true, false);
        const targets: number[] = [];
        for (let i = 0; i < moduliQP.length; i++) if (i < start || i >= end) targets.push(i);
        const { extender, half } = this.#modUpData(level, start, end, targets, moduliQP);
        // Extend the centered representative of c mod Q_j: shift by (Q_j − 1)/2, extend exactly, shift back.
        // A centered, exact digit keeps the key-switching noise zero-mean and unstructured.
        for (let i = start; i < end; i++) {
          k.addScalar(
            shifted + (i - start) * n * 4,
            coefficients.limbPointer(i),
            n,
            moduliQP[i].value,
            half[i],
          );
        }
        extender.extendExact(
          (i) => shifted + i * n * 4,
          (j) => extended.limbPointer(targets[j]),
          n,
          scratch,
        );
        for (const i of targets) {
          const m = moduliQP[i];
          k.addScalar(
            extended.limbPointer(i),
            extended.limbPointer(i),
            n,
            m.value,
            (m.value - half[i]) % m.value,
          );
          k.nttForward(extended.limbPointer(i), n, m.value, m.twiddles, m.twiddlesShoup);
        }
        for (let i = start; i < end; i++) k.copy(extended.limbPointer(i), c.limbPointer(i), n);
        out.push(extended);
      }
    } finally {
      this.params.context.allocator.free(shifted, alpha * n);
      this.params.context.allocator.free(scratch, (alpha + 1) * n);
      coefficients.dispose();
    }
    return out;
  }

  /**
   * Inner product of a decomposition with a switching key, then ModDown: returns (d0, d1) over Q_ℓ, NTT, with
   * d0 + d1·s ≈ c·s'. `permutation` (a Galois index table) is applied to the decomposition on the fly.
   */
  keySwitchDecomposed(
    decomposition: Poly[],
    key: SwitchingKey,
    level: number,
    permutation?: number,
  ): [Poly, Poly] {
    const params = this.params;
    const limbs = params.limbsAtLevel(level);
    const moduliQP = params.moduliQPAtLevel(level);
    // The key may be made for a lower level than the top (fewer limbs, fewer digits): it must reach `level`.
    const keyLevel = key.level;
    if (keyLevel < level || key.digits.length < decomposition.length) {
      throw new MismatchError(
        `switching key made for level ${keyLevel} (${key.digits.length} digits): expected one for level ≥ ${level} ` +
          `(${decomposition.length} digits); make it with a higher level in keyLevels`,
      );
    }
    const keyQ = params.limbsAtLevel(keyLevel);
    const n = params.n;
    const k = this.params.context.exports;
    const acc0 = Poly.alloc(moduliQP, true, false);
    const acc1 = Poly.alloc(moduliQP, true, false);
    const permuted: Poly[] = [];
    const count = decomposition.length;
    // The fused kernel accumulates ≤ 8 products of < 2^60 in 64 bits; more digits go in chunks.
    const chunk = 8;
    const table = this.params.context.allocator.alloc(3 * chunk);
    const tableWords = this.params.context.view(table, 3 * chunk);
    try {
      let digits = decomposition;
      if (permutation !== undefined) {
        digits = decomposition.map((digit) => {
          const p = Poly.alloc(moduliQP, true, false);
          for (let i = 0; i < moduliQP.length; i++)
            k.permute(p.limbPointer(i), digit.limbPointer(i), permutation, n);
          permuted.push(p);
          return p;
        });
      }
      const partial0 = count > chunk ? this.params.context.allocator.alloc(n) : -1;
      const partial1 = count > chunk ? this.params.context.allocator.alloc(n) : -1;
      for (let i = 0; i < moduliQP.length; i++) {
        // Key limbs: Q_keyLevel first, then P.
        const keyLimb = i < limbs ? i : keyQ + (i - limbs);
        const m = moduliQP[i];
        const c32 = 2 ** 32 % m.value;
        for (let start = 0; start < count; start += chunk) {
          const size = Math.min(chunk, count - start);
          for (let j = 0; j < size; j++) {
            tableWords[3 * j] = digits[start + j].limbPointer(i);
            tableWords[3 * j + 1] = key.digits[start + j].b.limbPointer(keyLimb);
            tableWords[3 * j + 2] = key.digits[start + j].a.limbPointer(keyLimb);
          }
          if (start === 0) {
            k.innerProduct2(
              acc0.limbPointer(i),
              acc1.limbPointer(i),
              table,
              size,
              n,
              m.value,
              m.barrett,
              c32,
            );
          } else {
            k.innerProduct2(partial0, partial1, table, size, n, m.value, m.barrett, c32);
            k.add(acc0.limbPointer(i), acc0.limbPointer(i), partial0, n, m.value);
            k.add(acc1.limbPointer(i), acc1.limbPointer(i), partial1, n, m.value);
          }
        }
      }
      if (partial0 >= 0) {
        this.params.context.allocator.free(partial0, n);
        this.params.context.allocator.free(partial1, n);
      }
      return [this.modDown(acc0, level), this.modDown(acc1, level)];
    } finally {
      this.params.context.allocator.free(table, 3 * chunk);
      acc0.dispose();
      acc1.dispose();
      for (const p of permuted) p.dispose();
    }
  }

  /** Key switch of c (NTT over Q_ℓ) under `key`: (d0, d1) with d0 + d1·s ≈ c·s'. */
  switchKey(c: Poly, key: SwitchingKey, level: number): [Poly, Poly] {
    const decomposition = this.decompose(c, level);
    try {
      return this.keySwitchDecomposed(decomposition, key, level);
    } finally {
      for (const d of decomposition) d.dispose();
    }
  }

  /**
   * ModDown: x over Q_ℓ ∪ P (NTT) ↦ round((x + e) / P) over Q_ℓ (NTT), where the optional small error e is
   * given in the coefficient domain. The input is left in an unspecified state.
   */
  modDown(x: Poly, level: number, error?: Int32Array): Poly {
    const params = this.params;
    const limbs = params.limbsAtLevel(level);
    const n = params.n;
    const K = params.pPrimes.length;
    const k = this.params.context.exports;
    const { extender, pInverse, pInverseShoup, halfP, halfQ } = this.#modDownData(level);
    inttInPlace(x, limbs, limbs + K);
    const correction = Poly.alloc(params.moduliAtLevel(level), false, false);
    const scratch = this.params.context.allocator.alloc((K + 1) * n);
    // A small error e (coefficient domain) joins x here without any NTT: it is added to the P limbs before the
    // extension and subtracted from the coefficient-domain correction, so the result is round((x + e) / P).
    const errorWords = error ? this.params.context.allocator.alloc(2 * n) : -1;
    const residues = errorWords + n * 4;
    if (error) new Int32Array(this.params.context.memory.buffer, errorWords, n).set(error);
    try {
      // Round instead of floor: extend [x + (P−1)/2]_P exactly, then subtract (P−1)/2 again on the Q side.
      for (let j = 0; j < K; j++) {
        const limb = x.limbPointer(limbs + j);
        const p = params.pPrimes[j];
        k.addScalar(limb, limb, n, p, halfP[j]);
        if (error) {
          k.fromSigned(residues, errorWords, n, p);
          k.add(limb, limb, residues, n, p);
        }
      }
      extender.extendExact(
        (i) => x.limbPointer(limbs + i),
        (j) => correction.limbPointer(j),
        n,
        scratch,
      );
      for (let i = 0; i < limbs; i++) {
        const q = params.qPrimes[i];
        const limb = correction.limbPointer(i);
        k.addScalar(limb, limb, n, q, (q - halfQ[i]) % q);
        if (error) {
          k.fromSigned(residues, errorWords, n, q);
          k.sub(limb, limb, residues, n, q);
        }
      }
      nttInPlace(correction);
      const out = Poly.alloc(params.moduliAtLevel(level), true, false);
      for (let i = 0; i < limbs; i++) {
        const q = out.moduli[i].value;
        k.subMulScalar(
          out.limbPointer(i),
          x.limbPointer(i),
          correction.limbPointer(i),
          n,
          q,
          pInverse[i],
          pInverseShoup[i],
        );
      }
      return out;
    } finally {
      correction.dispose();
      this.params.context.allocator.free(scratch, (K + 1) * n);
      if (error) this.params.context.allocator.free(errorWords, 2 * n);
    }
  }

  #modUpData(level: number, start: number, end: number, targets: number[], moduliQP: readonly Modulus[]) {
    const key = `${level}:${start}`;
    let data = this.#modUp.get(key);
    if (!data) {
      const extender = new BasisExtender(
        moduliQP.slice(start, end),
        targets.map((i) => moduliQP[i]),
      );
      // (Q_j − 1)/2 mod every modulus of Q_ℓ ∪ P.
      const half = Float64Array.from(moduliQP, (m) => {
        let product = 1;
        for (let i = start; i < end; i++) product = mulMod(product, moduliQP[i].value % m.value, m.value);
        return mulMod((product - 1 + m.value) % m.value, invMod(2, m.value), m.value);
      });
      data = { extender, half };
      this.#modUp.set(key, data);
    }
    return data;
  }

  #modDownData(level: number) {
    let data = this.#modDown.get(level);
    if (!data) {
      const moduliQ = this.params.moduliAtLevel(level);
      const extender = new BasisExtender(this.params.moduliP, moduliQ);
      const pInverse = new Float64Array(moduliQ.length);
      const pInverseShoup = new Float64Array(moduliQ.length);
      const halfOf = (m: number) => {
        // (P − 1)/2 mod m = (P mod m − 1) · 2^{-1} mod m
        let product = 1;
        for (const p of this.params.pPrimes) product = mulMod(product, p % m, m);
        return mulMod((product - 1 + m) % m, invMod(2, m), m);
      };
      moduliQ.forEach((m, i) => {
        let product = 1;
        for (const p of this.params.pPrimes) product = mulMod(product, p % m.value, m.value);
        pInverse[i] = invMod(product, m.value);
        pInverseShoup[i] = shoupConstant(pInverse[i], m.value);
      });
      const halfP = Float64Array.from(this.params.pPrimes, halfOf);
      const halfQ = Float64Array.from(moduliQ, (m) => halfOf(m.value));
      data = { extender, pInverse, pInverseShoup, halfP, halfQ };
      this.#modDown.set(level, data);
    }
    return data;
  }
}
