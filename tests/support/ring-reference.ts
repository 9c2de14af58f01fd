import { invMod, mulMod } from '../../src/ring/modarith.ts';
import { bitReverse } from '../../src/ring/modulus.ts';
import { primitiveRoot2N } from '../../src/ring/primes.ts';

/**
 * Plain TypeScript references of every kernel: the oracle of the differential tests, never a runtime path.
 * Inputs are arrays of residues in [0, p); outputs are fully reduced.
 */

/**
 * Forward negacyclic NTT, bit-reversed output: out[bitrev(j)] = Σ_i a[i] psi^((2j+1) i).
 *
 * @example
 * ```ts
 * const evals = referenceNttForward(coeffs, p, 10);
 * ```
 */
export function referenceNttForward(a: ArrayLike<number>, p: number, logN: number): Uint32Array {
  const n = 2 ** logN;
  const psi = primitiveRoot2N(p, logN);
  const out = Uint32Array.from(a);
  let t = n;
  for (let m = 1; m < n; m *= 2) {
    t /= 2;
    for (let i = 0; i < m; i++) {
      const w = powTable(psi, p, bitReverse(m + i, logN));
      const j1 = 2 * i * t;
      for (let j = j1; j < j1 + t; j++) {
        const x = out[j];
        const y = mulMod(out[j + t], w, p);
        out[j] = (x + y) % p;
        out[j + t] = (x - y + p) % p;
      }
    }
  }
  return out;
}

/**
 * Inverse of {@link referenceNttForward}, including the factor 1/n.
 *
 * @example
 * ```ts
 * const coeffs = referenceNttInverse(evals, p, 10);
 * ```
 */
export function referenceNttInverse(a: ArrayLike<number>, p: number, logN: number): Uint32Array {
  const n = 2 ** logN;
  const psiInverse = invMod(primitiveRoot2N(p, logN), p);
  const out = Uint32Array.from(a);
  let t = 1;
  for (let m = n; m > 1; m /= 2) {
    const h = m / 2;
    let j1 = 0;
    for (let i = 0; i < h; i++) {
      const w = powTable(psiInverse, p, bitReverse(h + i, logN));
      for (let j = j1; j < j1 + t; j++) {
        const u = out[j];
        const v = out[j + t];
        out[j] = (u + v) % p;
        out[j + t] = mulMod((u - v + p) % p, w, p);
      }
      j1 += 2 * t;
    }
    t *= 2;
  }
  const nInverse = invMod(n % p, p);
  for (let i = 0; i < n; i++) out[i] = mulMod(out[i], nInverse, p);
  return out;
}

const powCache = new Map<string, Float64Array>();
function powTable(base: number, p: number, exponent: number): number {
  const key = `${base}:${p}`;
  let table = powCache.get(key);
  if (!table) {
    table = new Float64Array(1 << 17);
    table[0] = 1;
    for (let i = 1; i < table.length; i++) table[i] = mulMod(table[i - 1], base, p);
    powCache.set(key, table);
  }
  return table[exponent];
}

/**
 * Schoolbook negacyclic product a·b mod (X^n + 1, p): the definition the NTT must agree with.
 *
 * @example
 * ```ts
 * const c = referenceNegacyclicProduct(a, b, p);
 * ```
 */
export function referenceNegacyclicProduct(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  p: number,
): Uint32Array {
  const n = a.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const prod = mulMod(a[i], b[j], p);
      const k = i + j;
      if (k < n) out[k] = (out[k] + prod) % p;
      else out[k - n] = (out[k - n] - prod + p) % p;
    }
  }
  return Uint32Array.from(out);
}

/**
 * Element-wise references, one per kernel of the same name.
 *
 * @example
 * ```ts
 * referenceElementwise.mul(a, b, p) === mulMod(a, b, p);
 * ```
 */
export const referenceElementwise = {
  add: (a: number, b: number, p: number) => (a + b) % p,
  sub: (a: number, b: number, p: number) => (a - b + p) % p,
  neg: (a: number, p: number) => (p - a) % p,
  mul: (a: number, b: number, p: number) => mulMod(a, b, p),
  mulAdd: (acc: number, a: number, b: number, p: number) => (acc + mulMod(a, b, p)) % p,
  mulSub: (acc: number, a: number, b: number, p: number) => (acc - mulMod(a, b, p) + p) % p,
  /** a may be any 32-bit value. */
  mulScalar: (a: number, w: number, p: number) => mulMod(a % p, w, p),
  mulScalarAdd: (acc: number, a: number, w: number, p: number) => (acc + mulMod(a % p, w, p)) % p,
  subMulScalar: (a: number, b: number, w: number, p: number) => mulMod((a - b + p) % p, w, p),
  addScalar: (a: number, c: number, p: number) => (a + c) % p,
  liftCentered: (a: number, pFrom: number, pTo: number) => {
    const signed = a > pFrom / 2 ? a - pFrom : a;
    return ((signed % pTo) + pTo) % pTo;
  },
};

/**
 * Reference Galois automorphism X → X^g on residues (coefficient domain).
 *
 * @example
 * ```ts
 * const rotated = referenceAutomorphism(coeffs, 5, p);
 * ```
 */
export function referenceAutomorphism(a: ArrayLike<number>, galoisElement: number, p: number): Uint32Array {
  const n = a.length;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const target = (i * galoisElement) % (2 * n);
    if (target < n) out[target] = a[i];
    else out[target - n] = (p - a[i]) % p;
  }
  return out;
}

/**
 * @example
 * ```ts
 * referenceBasisExtension([1, 1], [q0, q1], [p0]).exact; // [1]
 * ```
 *
 * Reference exact basis extension (the integer x in [0, Q) reduced mod each target), via CRT with BigInt —
 * fine for an oracle. The fast kernel may differ from it by a multiple u·Q with 0 ≤ u < from.length.
 */
export function referenceBasisExtension(
  residues: readonly number[],
  from: readonly number[],
  to: readonly number[],
): { exact: number[]; modulusProduct: bigint; value: bigint } {
  let product = 1n;
  for (const q of from) product *= BigInt(q);
  let x = 0n;
  for (let i = 0; i < from.length; i++) {
    const qi = BigInt(from[i]);
    const hat = product / qi;
    const hatInverse = BigInt(invMod(Number(hat % qi), from[i]));
    x += ((BigInt(residues[i]) * hatInverse) % qi) * hat;
  }
  x %= product;
  return { exact: to.map((p) => Number(x % BigInt(p))), modulusProduct: product, value: x };
}

/**
 * Reference of the fused key-switching inner product: (Σ_j d_j·b_j, Σ_j d_j·a_j) mod p, element-wise.
 *
 * @example
 * ```ts
 * const [s0, s1] = referenceInnerProduct2([d], [b], [a], p);
 * ```
 */
export function referenceInnerProduct2(
  d: readonly ArrayLike<number>[],
  b: readonly ArrayLike<number>[],
  a: readonly ArrayLike<number>[],
  p: number,
): [Uint32Array, Uint32Array] {
  const n = d[0].length;
  const out0 = new Uint32Array(n);
  const out1 = new Uint32Array(n);
  for (let k = 0; k < n; k++) {
    let s0 = 0;
    let s1 = 0;
    for (let j = 0; j < d.length; j++) {
      s0 = (s0 + mulMod(d[j][k], b[j][k], p)) % p;
      s1 = (s1 + mulMod(d[j][k], a[j][k], p)) % p;
    }
    out0[k] = s0;
    out1[k] = s1;
  }
  return [out0, out1];
}

/**
 * Reference centered CRT composition of one coefficient (BigInt; an oracle only).
 *
 * @example
 * ```ts
 * referenceCenteredCrt([5, 5], [q0, q1]); // 5n
 * ```
 */
export function referenceCenteredCrt(residues: readonly number[], moduli: readonly number[]): bigint {
  const { value, modulusProduct } = referenceBasisExtension(residues, moduli, []);
  return value > modulusProduct / 2n ? value - modulusProduct : value;
}
