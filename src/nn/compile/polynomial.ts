/**
 * Polynomials under encryption: a Chebyshev series evaluated through its basis recursion, the count of
 * instructions that evaluation emits (the up-front size estimates rely on it, so both follow the same recursion),
 * and the max of a pooling window as pairwise trees of polynomial maxima (along its rows, then across them).
 */
import type { ChebyshevSeries } from '../chebyshev.ts';
import type { Emitter, Sym, Term } from './emitter.ts';

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
