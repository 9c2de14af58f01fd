/**
 * Polynomials under encryption: a Chebyshev series evaluated through its basis recursion, the count of
 * instructions that evaluation emits (the up-front size estimates rely on it, so both follow the same recursion),
 * and the max of a pooling window as pairwise trees of polynomial maxima (along its rows, then across them).
 */
import { chebyshevDivide } from '../../ckks/polynomial.ts';
import { PolynomialEvaluator } from '../../ckks/polynomial-evaluator.ts';
import type { ChebyshevSeries } from '../chebyshev.ts';
import type { Emitter, Sym, Term } from './emitter.ts';

/**
 * How the compiler evaluates a Chebyshev series: `basis` builds every needed T_k by the basis recursion and sums
 * c_k·T_k at the end (⌈log2 d⌉ + 1 levels for degree d); `bsgs` is the baby-step giant-step evaluation of the CKKS
 * library's PolynomialEvaluator (Bossuat et al., Eurocrypt 2021), whose constants ride on the products'
 * rescales (⌈log2(d + 1)⌉ levels: degree 127 in the 7 levels degree 63 takes by the basis recursion).
 *
 * @example
 * ```ts
 * const evaluation: PolynomialEvaluation = 'bsgs';
 * ```
 */
export type PolynomialEvaluation = 'basis' | 'bsgs';

/**
 * Evaluates a Chebyshev series at `x`, the sum of `inputTerms`: the series times `factor`, plus optional extra
 * linear terms in the final sum. T_1 maps the series' interval [a, b] onto [−1, 1]; every further
 * T_k = 2·T_m·T_n − T_{m−n}, with m the largest power of two below k and n = k − m.
 *
 * @internal
 * @example
 * ```ts
 * const y = emitChebyshev(emitter, layer.approx, [{ x, w: 1 }]); // an approximated activation of x
 * ```
 */
export function emitChebyshev(
  emitter: Emitter,
  series: ChebyshevSeries,
  inputTerms: readonly Term[],
  extra: readonly Term[] = [],
  factor = 1,
): Sym {
  if (emitter.polynomials === 'bsgs') return emitChebyshevBsgs(emitter, series, inputTerms, extra, factor);
  const c = series.coeffs;
  const alpha = 2 / (series.b - series.a);
  const beta = -(series.a + series.b) / (series.b - series.a);
  const largest = c.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const needed: number[] = [];
  for (let k = 1; k < c.length; k++) if (Math.abs(c[k]) > largest * 1e-13) needed.push(k);
  const t1 = emitter.linear(
    inputTerms.map((t) => ({ x: t.x, w: t.w * alpha })),
    beta,
  );
  const basis = new Map<number, Sym>([[1, t1]]);
  // A needed T_k no other T_j is made from (a leaf: T_9 … T_15 of a degree-15 series) only enters the final sum:
  // its product 2·T_m·T_n stays unrelinearized there and its T_{m−n} correction becomes a term of the sum, so the
  // sum is relinearized once instead of each leaf.
  const operands = new Set<number>();
  const mark = (k: number): void => {
    if (k === 1 || operands.has(-k)) return;
    operands.add(-k);
    const m = 2 ** Math.floor(Math.log2(k - 1e-9));
    const n = k - m;
    for (const j of m === n ? [m] : [m, n, m - n]) {
      operands.add(j);
      mark(j);
    }
  };
  for (const k of needed) mark(k);
  const get = (k: number): Sym => {
    const known = basis.get(k);
    if (known) return known;
    const m = 2 ** Math.floor(Math.log2(k - 1e-9));
    const n = k - m;
    const tm = get(m);
    const tn = get(n);
    // T_{m+n} = 2·T_m·T_n − T_{m−n}
    let p = emitter.relinearize(emitter.mulCt(tm, tn));
    p = emitter.addSub('add', p, p);
    if (m === n) p = emitter.addConst(p, -1);
    else {
      const low = get(m - n);
      emitter.mulThenAdd(low, -1, p, p.scale / low.scale);
    }
    const result = emitter.rescale(p);
    basis.set(k, result);
    return result;
  };
  const terms: Term[] = [];
  let constant = (c[0] ?? 0) * factor;
  for (const k of needed) {
    const w = c[k] * factor;
    if (k === 1 || operands.has(k)) {
      terms.push({ x: get(k), w });
      continue;
    }
    // c·T_k = 2c·(T_m·T_n) − c·T_{m−n} (or − c when m = n), the product rescaled but not relinearized.
    const m = 2 ** Math.floor(Math.log2(k - 1e-9));
    const n = k - m;
    terms.push({ x: emitter.rescale(emitter.mulCt(get(m), get(n))), w: 2 * w });
    if (m === n) constant -= w;
    else terms.push({ x: get(m - n), w: -w });
  }
  terms.push(...extra);
  if (terms.length === 0) terms.push({ x: t1, w: 0 });
  return emitter.linear(mergeTerms(terms), constant);
}

/**
 * {@link emitChebyshev} by baby steps and giant steps (`emitter.polynomials === 'bsgs'`), the recursion of the CKKS
 * library's PolynomialEvaluator on the emitter's symbols: p = q·T_{2^j} + r split until a part is a leaf Σ c_k·T_k
 * (constant multiplications, no rescale) whose T_k have the levels to spare. Each part is asked for at a level
 * and an exact scale and derives its children's from them, so every sum adds equal scales and the result lands
 * on the canonical scale of its level: ⌈log2(d + 1)⌉ levels for degree d (plus T_1's, free when the interval map is
 * folded into the layer before).
 */
function emitChebyshevBsgs(
  emitter: Emitter,
  series: ChebyshevSeries,
  inputTerms: readonly Term[],
  extra: readonly Term[],
  factor: number,
): Sym {
  const alpha = 2 / (series.b - series.a);
  const beta = -(series.a + series.b) / (series.b - series.a);
  const t1 = emitter.linear(
    inputTerms.map((t) => ({ x: t.x, w: t.w * alpha })),
    beta,
  );
  const scaled = Float64Array.from(series.coeffs, (v) => v * factor);
  const largest = scaled.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const negligible = largest * 1e-13;
  const trim = (c: Float64Array): Float64Array => {
    let length = c.length;
    while (length > 1 && Math.abs(c[length - 1]) <= negligible) length--;
    return c.subarray(0, length);
  };
  const c = trim(scaled);
  const degree = c.length - 1;
  if (degree <= 1) {
    // c₀ + c₁·T₁ (+ extra terms): one constant multiplication and its rescale.
    return emitter.linear(mergeTerms([{ x: t1, w: degree === 1 ? c[1] : 0 }, ...extra]), c[0]);
  }
  const chain = emitter.chain;
  const modulus = (level: number): number => chain.rescalePrimes(level).reduce((p, q) => p * q, 1);
  const depthOf = (k: number): number => Math.ceil(Math.log2(k) - 1e-12);
  const powerOfTwoAtMost = (k: number): number => 2 ** Math.floor(Math.log2(k) + 1e-12);
  const levels = Math.ceil(Math.log2(degree + 1) - 1e-12);
  const outLevel = t1.level - levels;
  if (outLevel < 0) {
    throw new Error(
      `compiler: a degree-${degree} polynomial needs ${levels} levels; layer ${emitter.layer} has ${t1.level}`,
    );
  }
  const babyBound = PolynomialEvaluator.plan(degree).babyBound;
  const powers = new Map<number, Sym>([[1, t1]]);
  const power = (k: number): Sym => {
    const known = powers.get(k);
    if (known) return known;
    const j = powerOfTwoAtMost(k);
    let p: Sym;
    if (j === k) {
      // T_{2h} = 2·T_h² − 1
      const half = power(k / 2);
      p = emitter.relinearize(emitter.mulCt(half, half));
      p = emitter.addSub('add', p, p);
      p = emitter.addConst(p, -1);
    } else {
      // T_k = 2·T_j·T_{k−j} − T_{2j−k}, the last brought to the product's scale by a multiplication by 1.
      const a = power(j);
      const b = power(k - j);
      const low = power(2 * j - k);
      p = emitter.relinearize(emitter.mulCt(a, b));
      p = emitter.addSub('add', p, p);
      emitter.mulThenAdd(low, -1, p, p.scale / low.scale);
    }
    const result = emitter.rescale(p);
    if (result.level !== t1.level - depthOf(k)) {
      throw new Error(`compiler: T_${k} at level ${result.level}, not ${t1.level - depthOf(k)}`);
    }
    powers.set(k, result);
    return result;
  };
  /** c·T at `level` with exactly `scale` (c encoded at scale/scale(T)), not rescaled. */
  const term = (t: Sym, coefficient: number, level: number, scale: number): Sym => {
    const source = t.level > level ? emitter.dropLevel(t, level) : t;
    return emitter.mulConst(source, coefficient, scale / t.scale);
  };
  const combine = (a: Sym | number | undefined, b: Sym | number): Sym | number => {
    if (a === undefined) return b;
    if (typeof a === 'number' && typeof b === 'number') return a + b;
    if (typeof a === 'number') return combine(b, a);
    if (typeof b === 'number') return b === 0 ? a : emitter.addConst(a, b);
    return emitter.addSub('add', a, b);
  };
  const leaf = (coefficients: Float64Array, level: number, scale: number): Sym | number => {
    let acc: Sym | undefined;
    for (let k = coefficients.length - 1; k >= 1; k--) {
      if (Math.abs(coefficients[k]) <= negligible) continue;
      const t = power(k);
      if (acc === undefined) acc = term(t, coefficients[k], level, scale);
      else emitter.mulThenAdd(t, coefficients[k], acc, acc.scale / t.scale);
    }
    return combine(acc, coefficients[0]);
  };
  /** The part with coefficients `p` at `level`, with exactly `scale`, before its rescale (a number if constant). */
  const part = (p: Float64Array, level: number, scale: number): Sym | number => {
    const d = p.length - 1;
    if (d === 0) return p[0];
    if (d <= babyBound && t1.level - depthOf(d) >= level) return leaf(p, level, scale);
    const n = powerOfTwoAtMost(d);
    const { quotient, remainder } = chebyshevDivide(p, n);
    const q = trim(quotient);
    const giant = power(n);
    let result: Sym | undefined;
    if (q.length === 1) {
      if (Math.abs(q[0]) > negligible) result = term(giant, q[0], level, scale);
    } else {
      const inner = part(q, level + 1, (scale * modulus(level + 1)) / giant.scale);
      if (typeof inner === 'number')
        throw new Error('compiler: a non-constant quotient evaluated to a constant');
      result = emitter.relinearize(emitter.mulCt(emitter.rescale(inner), giant));
    }
    return combine(result, part(trim(remainder), level, scale));
  };
  const top = part(c, outLevel + 1, chain.scaleAt(outLevel) * modulus(outLevel + 1));
  if (typeof top === 'number') {
    return emitter.linear(mergeTerms([{ x: t1, w: 0 }, ...extra]), top);
  }
  for (const t of extra) emitter.mulThenAdd(t.x, t.w, top, top.scale / t.x.scale);
  return emitter.rescale(emitter.relinearize(top));
}

/** Terms of the same operand added into one. */
function mergeTerms(terms: readonly Term[]): Term[] {
  const byId = new Map<number, Term>();
  for (const t of terms) {
    const known = byId.get(t.x.id);
    byId.set(t.x.id, known ? { x: t.x, w: known.w + t.w } : t);
  }
  return [...byId.values()];
}

/**
 * Instructions {@link emitChebyshev} emits for one evaluation of `series` (same basis recursion).
 *
 * @internal
 * @example
 * ```ts
 * const perElement = 1 + chebyshevInstructions(layer.approx, 1); // relinearization, then the series
 * ```
 */
export function chebyshevInstructions(series: ChebyshevSeries, inputTerms: number, extraTerms = 0): number {
  const c = series.coeffs;
  const largest = c.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const basis = new Set<number>([1]);
  const get = (k: number): void => {
    if (basis.has(k)) return;
    const m = 2 ** Math.floor(Math.log2(k - 1e-9));
    get(m);
    get(k - m);
    if (m !== k - m) get(m - (k - m));
    basis.add(k);
  };
  let needed = 0;
  for (let k = 1; k < c.length; k++) {
    if (Math.abs(c[k]) > largest * 1e-13) {
      needed++;
      get(k);
    }
  }
  // t1: the input terms, the shift, the rescale; each further T_k: product, relinearize, doubling, the T_{m−n}
  // correction, rescale (a leaf: product and rescale, its correction a term of the sum); then the final sum (two
  // accumulators added), its relinearization and rescale. An upper bound: it counts every T_k as made whole.
  return inputTerms + 2 + 5 * (basis.size - 1) + Math.max(1, needed + extraTerms) + 3;
}

/**
 * The simulator's max of a row-major window (`reduceWindowRows`): each row of `columns` values by a pairwise
 * tree of max(a, b) = (a+b)/2 + p(a−b)/2, then the rows' maxima by the same tree.
 *
 * @internal
 * @example
 * ```ts
 * const y = polynomialMax(emitter, window.map((j) => emitter.relinearize(x[j]())), layer.approx.abs, 2);
 * ```
 */
export function polynomialMax(
  emitter: Emitter,
  values: readonly Sym[],
  abs: ChebyshevSeries,
  columns = values.length,
): Sym {
  if (columns <= 0 || values.length % columns !== 0) {
    throw new Error(`compiler: a max over ${values.length} values in rows of ${columns}`);
  }
  const rows: Sym[] = [];
  for (let r = 0; r < values.length; r += columns)
    rows.push(pairwiseMax(emitter, values.slice(r, r + columns), abs));
  return pairwiseMax(emitter, rows, abs);
}

/**
 * The pairwise max tree: pairs (0,1), (2,3), …, an odd last value carried up (the simulator's `reducePairwise`).
 *
 * @internal
 * @example
 * ```ts
 * const rowMax = pairwiseMax(emitter, [v, ...emitter.rotateHoisted(v, [1, 2])], layer.approx.abs);
 * ```
 */
export function pairwiseMax(emitter: Emitter, values: readonly Sym[], abs: ChebyshevSeries): Sym {
  let v = values;
  while (v.length > 1) {
    const next: Sym[] = [];
    for (let i = 0; i + 1 < v.length; i += 2) {
      const a = v[i];
      const b = v[i + 1];
      next.push(
        emitChebyshev(
          emitter,
          abs,
          [
            { x: a, w: 1 },
            { x: b, w: -1 },
          ],
          [
            { x: a, w: 0.5 },
            { x: b, w: 0.5 },
          ],
          0.5,
        ),
      );
    }
    if (v.length % 2 === 1) next.push(v[v.length - 1]);
    v = next;
  }
  return v[0];
}
