import { BasisExtender, coefficientRanges } from '../ring/base-conversion.ts';
import { invMod, mulMod, shoupConstant } from '../ring/modarith.ts';
import type { Modulus } from '../ring/modulus.ts';
import { inttInPlace } from '../ring/ops.ts';
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
    const context = params.context;
    const limbs = params.limbsAtLevel(level);
    const moduliQP = params.moduliQPAtLevel(level);
    const n = params.n;
    const alpha = params.digitSize;
    const ranges = this.digitRanges(level);
    const coefficients = c.copy(limbs);
    inttInPlace(coefficients);
    // Per digit: the shifted digit (alpha limbs) and the exact extension's workspace (alpha + 1 limbs), so that
    // the digits' tasks never share words.
    const shiftedWords = alpha * n;
    const scratchWords = (alpha + 1) * n;
    const shifted = context.allocator.alloc(shiftedWords * ranges.length);
    const scratch = context.allocator.alloc(scratchWords * ranges.length);
    const out: Poly[] = [];
    try {
      const digits = ranges.map(([start, end], d) => {
        const targets: number[] = [];
        for (let i = 0; i < moduliQP.length; i++) if (i < start || i >= end) targets.push(i);
        const extended = Poly.alloc(moduliQP, true, false);
        out.push(extended);
        return {
          start,
          end,
          targets,
          extended,
          shifted: shifted + d * shiftedWords * 4,
          scratch: scratch + d * scratchWords * 4,
          ...this.#modUpData(level, start, end, targets, moduliQP),
        };
      });
      // Extend the centered representative of c mod Q_j: shift by (Q_j − 1)/2, extend exactly, shift back.
      // A centered, exact digit keeps the key-switching noise zero-mean and unstructured.
      let batch = context.batch(n * limbs);
      for (const d of digits) {
        for (let i = d.start; i < d.end; i++) {
          const k = batch.task();
          const limb = d.shifted + (i - d.start) * n * 4;
          k.addScalar(limb, coefficients.limbPointer(i), n, moduliQP[i].value, d.half[i]);
          d.extender.scaleLimb(k, i - d.start, limb, n, d.scratch);
        }
      }
      batch.run();
      batch = context.batch(n * limbs);
      for (const d of digits) {
        for (const [from, to] of coefficientRanges(n))
          d.extender.countOverflow(batch.task(), n, d.scratch, from, to);
      }
      batch.run();
      batch = context.batch(8 * n * moduliQP.length * digits.length);
      for (const d of digits) {
        d.targets.forEach((i, j) => {
          const m = moduliQP[i];
          const limb = d.extended.limbPointer(i);
          const k = batch.task();
          d.extender.extendLimb(k, j, limb, n, d.scratch, true);
          k.addScalar(limb, limb, n, m.value, (m.value - d.half[i]) % m.value);
          k.nttForward(limb, n, m.value, m.twiddles, m.twiddlesShoup);
        });
        for (let i = d.start; i < d.end; i++)
          batch.task().copy(d.extended.limbPointer(i), c.limbPointer(i), n);
      }
      batch.run();
    } catch (error) {
      for (const p of out) p.dispose();
      throw error;
    } finally {
      context.allocator.free(shifted, shiftedWords * ranges.length);
      context.allocator.free(scratch, scratchWords * ranges.length);
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
    const context = params.context;
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
    const count = decomposition.length;
    const acc0 = Poly.alloc(moduliQP, true, false);
    const acc1 = Poly.alloc(moduliQP, true, false);
    const permuted: Poly[] = [];
    // The fused kernel accumulates ≤ 8 products of < 2^60 in 64 bits; more digits go in chunks. One pointer
    // table per limb (and, past one chunk, one pair of partial sums per limb) so that limbs are separate tasks.
    const chunk = 8;
    const tableWords = 3 * count;
    const table = context.allocator.alloc(tableWords * moduliQP.length);
    const tables = context.view(table, tableWords * moduliQP.length);
    const partialWords = count > chunk ? 2 * n * moduliQP.length : 0;
    const partials = partialWords > 0 ? context.allocator.alloc(partialWords) : -1;
    try {
      let digits = decomposition;
      if (permutation !== undefined) {
        const batch = context.batch(n * moduliQP.length * count);
        digits = decomposition.map((digit) => {
          const p = Poly.alloc(moduliQP, true, false);
          for (let i = 0; i < moduliQP.length; i++)
            batch.task().permute(p.limbPointer(i), digit.limbPointer(i), permutation, n);
          permuted.push(p);
          return p;
        });
        batch.run();
      }
      const batch = context.batch(2 * n * moduliQP.length * count);
      for (let i = 0; i < moduliQP.length; i++) {
        // Key limbs: Q_keyLevel first, then P.
        const keyLimb = i < limbs ? i : keyQ + (i - limbs);
        const m = moduliQP[i];
        const c32 = 2 ** 32 % m.value;
        const row = i * tableWords;
        for (let j = 0; j < count; j++) {
          tables[row + 3 * j] = digits[j].limbPointer(i);
          tables[row + 3 * j + 1] = key.digits[j].b.limbPointer(keyLimb);
          tables[row + 3 * j + 2] = key.digits[j].a.limbPointer(keyLimb);
        }
        const k = batch.task();
        const partial0 = partials + 2 * i * n * 4;
        const partial1 = partial0 + n * 4;
        for (let start = 0; start < count; start += chunk) {
          const size = Math.min(chunk, count - start);
          const rows = table + (row + 3 * start) * 4;
          if (start === 0) {
            k.innerProduct2(acc0.limbPointer(i), acc1.limbPointer(i), rows, size, n, m.value, m.barrett, c32);
          } else {
            k.innerProduct2(partial0, partial1, rows, size, n, m.value, m.barrett, c32);
            k.add(acc0.limbPointer(i), acc0.limbPointer(i), partial0, n, m.value);
            k.add(acc1.limbPointer(i), acc1.limbPointer(i), partial1, n, m.value);
          }
        }
      }
      batch.run();
      return this.#modDownAll([acc0, acc1], level) as [Poly, Poly];
    } finally {
      context.allocator.free(table, tableWords * moduliQP.length);
      if (partials >= 0) context.allocator.free(partials, partialWords);
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
    return this.#modDownAll([x], level, error)[0];
  }

  /** ModDown of several polynomials at once (their limbs are tasks of the same batches). */
  #modDownAll(xs: Poly[], level: number, error?: Int32Array): Poly[] {
    const params = this.params;
    const context = params.context;
    const limbs = params.limbsAtLevel(level);
    const n = params.n;
    const K = params.pPrimes.length;
    const { extender, pInverse, pInverseShoup, halfP, halfQ } = this.#modDownData(level);
    const moduliQ = params.moduliAtLevel(level);
    let batch = context.batch(8 * n * K * xs.length);
    for (const x of xs) inttInPlace(x, limbs, limbs + K, batch);
    batch.run();
    const scratchWords = (K + 1) * n;
    const scratch = context.allocator.alloc(scratchWords * xs.length);
    // A small error e (coefficient domain) joins x here without any NTT: it is added to the P limbs before the
    // extension and subtracted from the coefficient-domain correction, so the result is round((x + e) / P). Each
    // limb's task turns e into its residues in a buffer of its own.
    const residueWords = error ? (K + limbs) * n * xs.length : 0;
    const errorWords = error ? context.allocator.alloc(n + residueWords) : -1;
    if (error) new Int32Array(context.memory.buffer, errorWords, n).set(error);
    const corrections: Poly[] = [];
    const outs: Poly[] = [];
    try {
      // Round instead of floor: extend [x + (P−1)/2]_P exactly, then subtract (P−1)/2 again on the Q side.
      batch = context.batch(n * K * xs.length);
      xs.forEach((x, t) => {
        for (let j = 0; j < K; j++) {
          const k = batch.task();
          const limb = x.limbPointer(limbs + j);
          const p = params.pPrimes[j];
          k.addScalar(limb, limb, n, p, halfP[j]);
          if (error) {
            const residues = errorWords + (n + (t * (K + limbs) + j) * n) * 4;
            k.fromSigned(residues, errorWords, n, p);
            k.add(limb, limb, residues, n, p);
          }
          extender.scaleLimb(k, j, limb, n, scratch + t * scratchWords * 4);
        }
      });
      batch.run();
      batch = context.batch(n * K * xs.length);
      xs.forEach((_, t) => {
        for (const [from, to] of coefficientRanges(n)) {
          extender.countOverflow(batch.task(), n, scratch + t * scratchWords * 4, from, to);
        }
      });
      batch.run();
      batch = context.batch(8 * n * limbs * xs.length);
      xs.forEach((x, t) => {
        const correction = Poly.alloc(moduliQ, false, false);
        corrections.push(correction);
        const out = Poly.alloc(moduliQ, true, false);
        outs.push(out);
        for (let i = 0; i < limbs; i++) {
          const k = batch.task();
          const q = moduliQ[i];
          const limb = correction.limbPointer(i);
          extender.extendLimb(k, i, limb, n, scratch + t * scratchWords * 4, true);
          k.addScalar(limb, limb, n, q.value, (q.value - halfQ[i]) % q.value);
          if (error) {
            const residues = errorWords + (n + (t * (K + limbs) + K + i) * n) * 4;
            k.fromSigned(residues, errorWords, n, q.value);
            k.sub(limb, limb, residues, n, q.value);
          }
          k.nttForward(limb, n, q.value, q.twiddles, q.twiddlesShoup);
          k.subMulScalar(
            out.limbPointer(i),
            x.limbPointer(i),
            limb,
            n,
            q.value,
            pInverse[i],
            pInverseShoup[i],
          );
        }
      });
      batch.run();
      for (const correction of corrections) correction.isNtt = true;
      return outs;
    } catch (failure) {
      for (const out of outs) out.dispose();
      throw failure;
    } finally {
      for (const correction of corrections) correction.dispose();
      context.allocator.free(scratch, scratchWords * xs.length);
      if (error) context.allocator.free(errorWords, n + residueWords);
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
