import { assertInteger, check } from '../../util/assert.ts';

/**
 * A linear map on the slots in diagonal form, out[i] = Σ_k d_k[i]·in[(i + k) mod slots], with complex diagonals
 * d_k (k in 0 … slots−1). The homomorphic DFTs of bootstrapping are products of such maps with two or three
 * diagonals each; a product of a few of them is one level of CoeffsToSlots or SlotsToCoeffs.
 *
 * @example
 * ```ts
 * const map: DiagonalMap = new Map([[0, { re: Float64Array.of(1, 1), im: new Float64Array(2) }]]);
 * ```
 */
export type DiagonalMap = Map<number, { re: Float64Array; im: Float64Array }>;

/** The diagonal `k` of `map`, created zero if absent. */
function diagonal(map: DiagonalMap, k: number, slots: number): { re: Float64Array; im: Float64Array } {
  let d = map.get(k);
  if (!d) {
    d = { re: new Float64Array(slots), im: new Float64Array(slots) };
    map.set(k, d);
  }
  return d;
}

/**
 * after ∘ before: (A∘B)_{a+b}[i] = Σ A_a[i]·B_b[i + a], indices modulo `slots`.
 *
 * @example
 * ```ts
 * const both = composeMaps(second, first, slots); // applies `first`, then `second`
 * ```
 */
export function composeMaps(after: DiagonalMap, before: DiagonalMap, slots: number): DiagonalMap {
  const out: DiagonalMap = new Map();
  for (const [a, A] of after) {
    for (const [b, B] of before) {
      const d = diagonal(out, (a + b) % slots, slots);
      for (let i = 0; i < slots; i++) {
        const j = i + a < slots ? i + a : i + a - slots;
        const xr = A.re[i];
        const xi = A.im[i];
        const yr = B.re[j];
        const yi = B.im[j];
        d.re[i] += xr * yr - xi * yi;
        d.im[i] += xr * yi + xi * yr;
      }
    }
  }
  return out;
}

/**
 * The map on plain complex slot values: the reference the tests compare the homomorphic transforms with.
 *
 * @example
 * ```ts
 * const z = applyMap(map, { re, im }, slots);
 * ```
 */
export function applyMap(
  map: DiagonalMap,
  values: { re: ArrayLike<number>; im: ArrayLike<number> },
  slots: number,
): { re: Float64Array; im: Float64Array } {
  const re = new Float64Array(slots);
  const im = new Float64Array(slots);
  for (const [k, d] of map) {
    for (let i = 0; i < slots; i++) {
      const j = (i + k) % slots;
      const xr = values.re[j] ?? 0;
      const xi = values.im[j] ?? 0;
      re[i] += d.re[i] * xr - d.im[i] * xi;
      im[i] += d.re[i] * xi + d.im[i] * xr;
    }
  }
  return { re, im };
}

/** The map multiplying slot i by `factor(i)` (one diagonal, index 0). */
export function pointwiseMap(slots: number, factor: (i: number) => [number, number]): DiagonalMap {
  const d = { re: new Float64Array(slots), im: new Float64Array(slots) };
  for (let i = 0; i < slots; i++) [d.re[i], d.im[i]] = factor(i);
  return new Map([[0, d]]);
}

/** Multiplies every diagonal of `map` by the real `factor`, in place. */
export function scaleMap(map: DiagonalMap, factor: number): void {
  for (const d of map.values()) {
    for (let i = 0; i < d.re.length; i++) {
      d.re[i] *= factor;
      d.im[i] *= factor;
    }
  }
}

/**
 * The butterfly twiddle of the stage with blocks of `len` slots, for position j < len/2 of a block:
 * ω = exp(2πi·(5^j mod 4·len)/(4·len)).
 */
function twiddle(len: number, j: number): [number, number] {
  const modulus = 4 * len;
  let g = 1;
  for (let t = 0; t < j; t++) g = (g * 5) % modulus;
  const angle = (2 * Math.PI * g) / modulus;
  return [Math.cos(angle), Math.sin(angle)];
}

/**
 * One radix-2 stage of the special FFT, on vectors of `period` slots repeated over all `slots`.
 *
 * Decoding a polynomial whose complex coefficient vector is w (w_k = c_k + i·c_{k+period}, in the subring of
 * X^{N/(2·period)} when period < N/2) gives slot j the value Σ_k w_k ξ^{(5^j)·k}, ξ a primitive 4·period-th root
 * of unity. Splitting k into even and odd halves and using 5^{period/2} ≡ 1 + 2·period (mod 4·period) turns this
 * into the butterflies z_j = A_j + ω_j B_j, z_{j+len/2} = A_j − ω_j B_j on blocks of len = 2, 4, …, period, with
 * the input in bit-reversed order. A stage has the diagonals 0, +len/2 and −len/2; its inverse halves the
 * butterfly: u = (o_1 + o_2)/2, v = (o_1 − o_2)/(2ω).
 */
function butterflyStage(slots: number, len: number, inverse: boolean): DiagonalMap {
  const h = len / 2;
  const map: DiagonalMap = new Map();
  const d0 = diagonal(map, 0, slots);
  const plus = diagonal(map, h % slots, slots);
  const minus = diagonal(map, (slots - h) % slots, slots);
  const omegas: [number, number][] = [];
  for (let j = 0; j < h; j++) omegas.push(twiddle(len, j));
  for (let i = 0; i < slots; i++) {
    const p = i % len;
    if (p < h) {
      const [wr, wi] = omegas[p];
      if (inverse) {
        d0.re[i] += 0.5;
        plus.re[i] += 0.5;
      } else {
        d0.re[i] += 1;
        plus.re[i] += wr;
        plus.im[i] += wi;
      }
    } else {
      const [wr, wi] = omegas[p - h];
      if (inverse) {
        // 1/(2ω) = conj(ω)/2 since |ω| = 1.
        d0.re[i] -= wr / 2;
        d0.im[i] += wi / 2;
        minus.re[i] += wr / 2;
        minus.im[i] -= wi / 2;
      } else {
        d0.re[i] -= wr;
        d0.im[i] -= wi;
        minus.re[i] += 1;
      }
    }
  }
  return map;
}

/**
 * Sizes of `levels` consecutive groups of `stages` stages, near-equal, the later groups one stage longer when the
 * split is uneven (fewer levels than asked when there are fewer stages).
 */
function groupSizes(stages: number, levels: number): number[] {
  const count = Math.min(levels, stages);
  const sizes: number[] = [];
  for (let g = 0; g < count; g++)
    sizes.push(Math.floor(stages / count) + (g >= count - (stages % count) ? 1 : 0));
  return sizes;
}

/** Multiplies out consecutive runs of `stages` (application order) of the given sizes: one map per run. */
function groupStages(stages: readonly DiagonalMap[], sizes: readonly number[], slots: number): DiagonalMap[] {
  const groups: DiagonalMap[] = [];
  let next = 0;
  for (const size of sizes) {
    let product = stages[next];
    for (let s = 1; s < size; s++) product = composeMaps(stages[next + s], product, slots);
    next += size;
    groups.push(product);
  }
  return groups;
}

/** Multiplies the product of `groups` by `factor`, spread evenly so that no diagonal becomes tiny. */
function spreadFactor(groups: DiagonalMap[], factor: number): DiagonalMap[] {
  check(
    Number.isFinite(factor) && factor !== 0,
    () => `factor = ${factor}: expected a finite non-zero number`,
  );
  const each = Math.abs(factor) ** (1 / groups.length);
  groups.forEach((g, i) => {
    scaleMap(g, i === 0 ? Math.sign(factor) * each : each);
  });
  return groups;
}

/** Checks the slot count and the period of a homomorphic DFT. */
function checkShape(slots: number, period: number, levels: number): void {
  assertInteger(slots, 'slots', 2);
  assertInteger(period, 'period', 2, slots);
  assertInteger(levels, 'levels', 1, 30);
  check(
    (period & (period - 1)) === 0 && slots % period === 0,
    () => `period = ${period}: expected a power of two dividing slots = ${slots}`,
  );
}

/**
 * SlotsToCoeffs as at most `levels` maps (application order): the special FFT without its bit-reversal, so it
 * takes the coefficient vector in bit-reversed order (as {@link coeffsToSlotsMaps} leaves it) and returns slot
 * values (repeated with period `period` over all `slots`), times `factor`.
 *
 * @example
 * ```ts
 * const maps = slotsToCoeffsMaps(params.slots, params.slots, 3, 1);
 * ```
 */
export function slotsToCoeffsMaps(
  slots: number,
  period: number,
  levels: number,
  factor: number,
): DiagonalMap[] {
  return factoredDft(slots, period, levels, factor, false);
}

/**
 * CoeffsToSlots as at most `levels` maps (application order): the inverse of {@link slotsToCoeffsMaps}, taking
 * slot values (period `period`) to the complex coefficient vector in bit-reversed order, times `factor`. Its
 * groups mirror those of SlotsToCoeffs.
 *
 * @example
 * ```ts
 * const maps = coeffsToSlotsMaps(params.slots, params.slots, 3, 1);
 * ```
 */
export function coeffsToSlotsMaps(
  slots: number,
  period: number,
  levels: number,
  factor: number,
): DiagonalMap[] {
  return factoredDft(slots, period, levels, factor, true);
}

/** The butterfly stages in application order (inverse: largest blocks first), grouped into levels, times factor. */
function factoredDft(
  slots: number,
  period: number,
  levels: number,
  factor: number,
  inverse: boolean,
): DiagonalMap[] {
  checkShape(slots, period, levels);
  const stages: DiagonalMap[] = [];
  for (let len = 2; len <= period; len *= 2) stages.push(butterflyStage(slots, len, inverse));
  const sizes = groupSizes(stages.length, levels);
  if (inverse) {
    stages.reverse();
    sizes.reverse();
  }
  return spreadFactor(groupStages(stages, sizes, slots), factor);
}
