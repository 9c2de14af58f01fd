// HomE hot kernels: negacyclic NTT and element-wise modular arithmetic on 32-bit limbs, SIMD128.
//
// Every prime p satisfies 2^29 < p < 2^30, so lazy values up to 4p fit in an unsigned 32-bit lane
// (Harvey's butterflies) and Barrett reduction of a 60-bit product needs only one 32-bit constant.
// Pointers are byte offsets into the shared memory the host imports; lengths are element counts, multiples of 8.
// Each TypeScript reference in src/ring/reference.ts computes the same values and is the test oracle.

// ---------------------------------------------------------------------------------------------------------
// Helpers

// High 32 bits of the four u32×u32 products: the Shoup quotient estimate floor(w' * y / 2^32).
@inline
function mulhi(a: v128, b: v128): v128 {
  const lo = i64x2.extmul_low_i32x4_u(a, b);
  const hi = i64x2.extmul_high_i32x4_u(a, b);
  return v128.shuffle<u32>(lo, hi, 1, 3, 5, 7);
}

// Shoup multiplication: w*y mod p, result in [0, 2p), for any 32-bit y.
@inline
function shoup(y: v128, w: v128, ws: v128, vp: v128): v128 {
  return i32x4.sub(i32x4.mul(w, y), i32x4.mul(mulhi(ws, y), vp));
}

// Conditional subtraction of m (branch-free): x in [0, 2m) becomes [0, m).
@inline
function csub(x: v128, m: v128): v128 {
  return i32x4.min_u(x, i32x4.sub(x, m));
}

// Barrett product a*b mod p for a, b < p, result in [0, p). mu = floor(2^61 / p).
@inline
function barrett(a: v128, b: v128, vp: v128, vp2: v128, vmu: v128): v128 {
  const lo = i64x2.extmul_low_i32x4_u(a, b);
  const hi = i64x2.extmul_high_i32x4_u(a, b);
  const qlo = i64x2.shr_u(i64x2.mul(i64x2.shr_u(lo, 29), vmu), 32);
  const qhi = i64x2.shr_u(i64x2.mul(i64x2.shr_u(hi, 29), vmu), 32);
  const t = v128.shuffle<u32>(lo, hi, 0, 2, 4, 6);
  const q = v128.shuffle<u32>(qlo, qhi, 0, 2, 4, 6);
  const r = i32x4.sub(t, i32x4.mul(q, vp));
  return csub(csub(r, vp2), vp);
}

// ---------------------------------------------------------------------------------------------------------
// NTT

/**
 * Forward negacyclic NTT in place (Cooley–Tukey, bit-reversed output order, Harvey lazy butterflies).
 * Input in [0, 4p); output in [0, p). tw[k] = psi^bitrev(k), twShoup[k] = floor(tw[k] * 2^32 / p).
 */
export function nttForward(a: usize, n: i32, p: u32, tw: usize, twShoup: usize): void {
  const vp = i32x4.splat(p);
  const vp2 = i32x4.splat(p << 1);
  let t = n;
  for (let m = 1; m < n; m <<= 1) {
    t >>= 1;
    if (t >= 4) {
      const tb = <usize>t << 2;
      for (let i = 0; i < m; i++) {
        const vw = i32x4.splat(load<u32>(tw + ((<usize>(m + i)) << 2)));
        const vws = i32x4.splat(load<u32>(twShoup + ((<usize>(m + i)) << 2)));
        let x = a + <usize>(2 * i) * tb;
        const end = x + tb;
        for (; x < end; x += 16) {
          let X = v128.load(x);
          const Y = v128.load(x + tb);
          X = csub(X, vp2);
          const Q = shoup(Y, vw, vws, vp);
          v128.store(x, i32x4.add(X, Q));
          v128.store(x + tb, i32x4.add(i32x4.sub(X, Q), vp2));
        }
      }
    } else if (t == 2) {
      // Pairs (j, j+2) inside groups of four; two groups per pair of vectors.
      for (let i = 0; i < m; i += 2) {
        const x = a + (<usize>i << 4);
        const v0 = v128.load(x);
        const v1 = v128.load(x + 16);
        let X = v128.shuffle<u32>(v0, v1, 0, 1, 4, 5);
        const Y = v128.shuffle<u32>(v0, v1, 2, 3, 6, 7);
        const w2 = v128.load64_zero(tw + ((<usize>(m + i)) << 2));
        const ws2 = v128.load64_zero(twShoup + ((<usize>(m + i)) << 2));
        const vw = v128.shuffle<u32>(w2, w2, 0, 0, 1, 1);
        const vws = v128.shuffle<u32>(ws2, ws2, 0, 0, 1, 1);
        X = csub(X, vp2);
        const Q = shoup(Y, vw, vws, vp);
        const oX = i32x4.add(X, Q);
        const oY = i32x4.add(i32x4.sub(X, Q), vp2);
        v128.store(x, v128.shuffle<u32>(oX, oY, 0, 1, 4, 5));
        v128.store(x + 16, v128.shuffle<u32>(oX, oY, 2, 3, 6, 7));
      }
    } else {
      // t == 1: pairs (2i, 2i+1), four consecutive twiddles per vector.
      for (let i = 0; i < m; i += 4) {
        const x = a + (<usize>i << 3);
        const v0 = v128.load(x);
        const v1 = v128.load(x + 16);
        let X = v128.shuffle<u32>(v0, v1, 0, 2, 4, 6);
        const Y = v128.shuffle<u32>(v0, v1, 1, 3, 5, 7);
        const vw = v128.load(tw + ((<usize>(m + i)) << 2));
        const vws = v128.load(twShoup + ((<usize>(m + i)) << 2));
        X = csub(X, vp2);
        const Q = shoup(Y, vw, vws, vp);
        const oX = i32x4.add(X, Q);
        const oY = i32x4.add(i32x4.sub(X, Q), vp2);
        v128.store(x, v128.shuffle<u32>(oX, oY, 0, 4, 1, 5));
        v128.store(x + 16, v128.shuffle<u32>(oX, oY, 2, 6, 3, 7));
      }
    }
  }
  const end = a + (<usize>n << 2);
  for (let x = a; x < end; x += 16) {
    v128.store(x, csub(csub(v128.load(x), vp2), vp));
  }
}

/**
 * Inverse negacyclic NTT in place (Gentleman–Sande, bit-reversed input order), including the factor 1/n.
 * Input in [0, 2p); output in [0, p). itw[k] = psi^-bitrev(k) with Shoup companions; nInv = n^-1 mod p.
 */
export function nttInverse(
  a: usize,
  n: i32,
  p: u32,
  itw: usize,
  itwShoup: usize,
  nInv: u32,
  nInvShoup: u32,
): void {
  const vp = i32x4.splat(p);
  const vp2 = i32x4.splat(p << 1);
  // t == 1: h = n/2 groups of one pair.
  let h = n >> 1;
  for (let i = 0; i < h; i += 4) {
    const x = a + (<usize>i << 3);
    const v0 = v128.load(x);
    const v1 = v128.load(x + 16);
    const U = v128.shuffle<u32>(v0, v1, 0, 2, 4, 6);
    const V = v128.shuffle<u32>(v0, v1, 1, 3, 5, 7);
    const vw = v128.load(itw + ((<usize>(h + i)) << 2));
    const vws = v128.load(itwShoup + ((<usize>(h + i)) << 2));
    const oU = csub(i32x4.add(U, V), vp2);
    const oV = shoup(i32x4.add(i32x4.sub(U, V), vp2), vw, vws, vp);
    v128.store(x, v128.shuffle<u32>(oU, oV, 0, 4, 1, 5));
    v128.store(x + 16, v128.shuffle<u32>(oU, oV, 2, 6, 3, 7));
  }
  // t == 2
  h >>= 1;
  for (let i = 0; i < h; i += 2) {
    const x = a + (<usize>i << 4);
    const v0 = v128.load(x);
    const v1 = v128.load(x + 16);
    const U = v128.shuffle<u32>(v0, v1, 0, 1, 4, 5);
    const V = v128.shuffle<u32>(v0, v1, 2, 3, 6, 7);
    const w2 = v128.load64_zero(itw + ((<usize>(h + i)) << 2));
    const ws2 = v128.load64_zero(itwShoup + ((<usize>(h + i)) << 2));
    const vw = v128.shuffle<u32>(w2, w2, 0, 0, 1, 1);
    const vws = v128.shuffle<u32>(ws2, ws2, 0, 0, 1, 1);
    const oU = csub(i32x4.add(U, V), vp2);
    const oV = shoup(i32x4.add(i32x4.sub(U, V), vp2), vw, vws, vp);
    v128.store(x, v128.shuffle<u32>(oU, oV, 0, 1, 4, 5));
    v128.store(x + 16, v128.shuffle<u32>(oU, oV, 2, 3, 6, 7));
  }
  // t >= 4
  let t = 4;
  h >>= 1;
  for (; h >= 1; h >>= 1) {
    const tb = <usize>t << 2;
    for (let i = 0; i < h; i++) {
      const vw = i32x4.splat(load<u32>(itw + ((<usize>(h + i)) << 2)));
      const vws = i32x4.splat(load<u32>(itwShoup + ((<usize>(h + i)) << 2)));
      let x = a + <usize>(2 * i) * tb;
      const end = x + tb;
      for (; x < end; x += 16) {
        const U = v128.load(x);
        const V = v128.load(x + tb);
        v128.store(x, csub(i32x4.add(U, V), vp2));
        v128.store(x + tb, shoup(i32x4.add(i32x4.sub(U, V), vp2), vw, vws, vp));
      }
    }
    t <<= 1;
  }
  const vn = i32x4.splat(nInv);
  const vns = i32x4.splat(nInvShoup);
  const end = a + (<usize>n << 2);
  for (let x = a; x < end; x += 16) {
    v128.store(x, csub(shoup(v128.load(x), vn, vns, vp), vp));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Element-wise arithmetic. Inputs in [0, p) unless stated; outputs in [0, p). out may alias an input.

/** out = a + b mod p */
export function add(out: usize, a: usize, b: usize, n: i32, p: u32): void {
  const vp = i32x4.splat(p);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    v128.store(out + k, csub(i32x4.add(v128.load(a + k), v128.load(b + k)), vp));
  }
}

/** out = a - b mod p */
export function sub(out: usize, a: usize, b: usize, n: i32, p: u32): void {
  const vp = i32x4.splat(p);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    v128.store(out + k, csub(i32x4.add(i32x4.sub(v128.load(a + k), v128.load(b + k)), vp), vp));
  }
}

/** out = -a mod p */
export function neg(out: usize, a: usize, n: i32, p: u32): void {
  const vp = i32x4.splat(p);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    v128.store(out + k, csub(i32x4.sub(vp, v128.load(a + k)), vp));
  }
}

/** out = a * b mod p (Barrett, mu = floor(2^61 / p)) */
export function mul(out: usize, a: usize, b: usize, n: i32, p: u32, mu: u32): void {
  const vp = i32x4.splat(p);
  const vp2 = i32x4.splat(p << 1);
  const vmu = i64x2.splat(<i64>mu);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    v128.store(out + k, barrett(v128.load(a + k), v128.load(b + k), vp, vp2, vmu));
  }
}

/** out = out + a * b mod p */
export function mulAdd(out: usize, a: usize, b: usize, n: i32, p: u32, mu: u32): void {
  const vp = i32x4.splat(p);
  const vp2 = i32x4.splat(p << 1);
  const vmu = i64x2.splat(<i64>mu);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    const r = barrett(v128.load(a + k), v128.load(b + k), vp, vp2, vmu);
    v128.store(out + k, csub(i32x4.add(v128.load(out + k), r), vp));
  }
}

/** out = out - a * b mod p */
export function mulSub(out: usize, a: usize, b: usize, n: i32, p: u32, mu: u32): void {
  const vp = i32x4.splat(p);
  const vp2 = i32x4.splat(p << 1);
  const vmu = i64x2.splat(<i64>mu);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    const r = barrett(v128.load(a + k), v128.load(b + k), vp, vp2, vmu);
    v128.store(out + k, csub(i32x4.add(i32x4.sub(v128.load(out + k), r), vp), vp));
  }
}

/** out = a * w mod p for a constant w < p (Shoup, ws = floor(w * 2^32 / p)); a may be any 32-bit value. */
export function mulScalar(out: usize, a: usize, n: i32, p: u32, w: u32, ws: u32): void {
  const vp = i32x4.splat(p);
  const vw = i32x4.splat(w);
  const vws = i32x4.splat(ws);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    v128.store(out + k, csub(shoup(v128.load(a + k), vw, vws, vp), vp));
  }
}

/** out = out + a * w mod p for a constant w (Shoup); a may be any 32-bit value. */
export function mulScalarAdd(out: usize, a: usize, n: i32, p: u32, w: u32, ws: u32): void {
  const vp = i32x4.splat(p);
  const vp2 = i32x4.splat(p << 1);
  const vw = i32x4.splat(w);
  const vws = i32x4.splat(ws);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    const s = i32x4.add(v128.load(out + k), shoup(v128.load(a + k), vw, vws, vp));
    v128.store(out + k, csub(csub(s, vp2), vp));
  }
}

/** out = (a - b) * w mod p for a constant w (Shoup): the rescale and ModDown step. */
export function subMulScalar(out: usize, a: usize, b: usize, n: i32, p: u32, w: u32, ws: u32): void {
  const vp = i32x4.splat(p);
  const vw = i32x4.splat(w);
  const vws = i32x4.splat(ws);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    const d = i32x4.add(i32x4.sub(v128.load(a + k), v128.load(b + k)), vp);
    v128.store(out + k, csub(shoup(d, vw, vws, vp), vp));
  }
}

/** out = a + c mod p for a constant c < p */
export function addScalar(out: usize, a: usize, n: i32, p: u32, c: u32): void {
  const vp = i32x4.splat(p);
  const vc = i32x4.splat(c);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    v128.store(out + k, csub(i32x4.add(v128.load(a + k), vc), vp));
  }
}

/**
 * Centered change of modulus: a holds residues mod pFrom in [0, pFrom); out gets the centered representative
 * (a or a - pFrom, whichever is in (-pFrom/2, pFrom/2]) reduced mod pTo. negFrom = (-pFrom) mod pTo.
 */
export function liftCentered(out: usize, a: usize, n: i32, pFrom: u32, pTo: u32, negFrom: u32): void {
  const vTo = i32x4.splat(pTo);
  const vHalf = i32x4.splat(pFrom >> 1);
  const vNeg = i32x4.splat(negFrom);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    const x = v128.load(a + k);
    const r = csub(x, vTo);
    const high = i32x4.gt_u(x, vHalf);
    v128.store(out + k, csub(i32x4.add(r, v128.and(high, vNeg)), vTo));
  }
}

/** Gather: out[i] = a[index[i]] (Galois automorphisms in the NTT domain). out must not alias a. */
export function permute(out: usize, a: usize, index: usize, n: i32): void {
  for (let i: usize = 0; i < <usize>n; i++) {
    store<u32>(out + (i << 2), load<u32>(a + (<usize>load<u32>(index + (i << 2)) << 2)));
  }
}

/** Copy n 32-bit words (regions may overlap). */
export function copy(out: usize, a: usize, n: i32): void {
  memory.copy(out, a, <usize>n << 2);
}

/** Fill n 32-bit words with v. */
export function fill(out: usize, n: i32, v: u32): void {
  const vv = i32x4.splat(v);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) v128.store(out + k, vv);
}

/** out = a mod p for signed 32-bit a with |a| < p (the encoder's fast path). */
export function fromSigned(out: usize, a: usize, n: i32, p: u32): void {
  const vp = i32x4.splat(p);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    const x = v128.load(a + k);
    v128.store(out + k, i32x4.add(x, v128.and(i32x4.shr_s(x, 31), vp)));
  }
}

// ---------------------------------------------------------------------------------------------------------
// RNS composition (decoder)

@inline
function barrett64(v: u64, q: u64, mu: u64): u64 {
  let r = v - (((v >> 29) * mu) >> 32) * q;
  while (r >= q) r -= q;
  return r;
}

/**
 * Candidate composition of RNS coefficients from the first c ∈ {1, 2, 3} limbs (Garner), centered, as f64, checked
 * exactly against every other limb. out[k] gets the value; flags[k] = 1 where the check failed (the caller composes
 * those over all limbs). Returns the number of failures.
 *
 * limbs: L×n words, limb i at limbs + i·n·4. moduli, mus: L words (mu = floor(2^61/q)).
 * table: [inv1, inv2, half..] see src/ring/crt.ts; perLimb: for each j, three words:
 *   (q0 mod q_j, q0·q1 mod q_j, Q_c mod q_j).
 */
export function crtCandidate(
  out: usize,
  flags: usize,
  limbs: usize,
  n: i32,
  L: i32,
  c: i32,
  moduli: usize,
  mus: usize,
  inv1: u32,
  inv2: u32,
  perLimb: usize,
): i32 {
  const q0 = <u64>load<u32>(moduli);
  const q1 = c > 1 ? <u64>load<u32>(moduli + 4) : 1;
  const q2 = c > 2 ? <u64>load<u32>(moduli + 8) : 1;
  const nb = <usize>n << 2;
  let failures = 0;
  for (let k: usize = 0; k < <usize>n; k++) {
    const x0 = <u64>load<u32>(limbs + (k << 2));
    const d0 = x0;
    let d1: u64 = 0;
    let d2: u64 = 0;
    if (c > 1) {
      const x1 = <u64>load<u32>(limbs + nb + (k << 2));
      d1 = (((x1 + q1 - (d0 % q1)) % q1) * <u64>inv1) % q1;
    }
    if (c > 2) {
      const x2 = <u64>load<u32>(limbs + 2 * nb + (k << 2));
      const partial = (d0 + q0 * d1) % q2;
      d2 = (((x2 + q2 - partial) % q2) * <u64>inv2) % q2;
    }
    // Sign from the highest differing digit against its complement.
    let negative = false;
    if (c > 2 && d2 != q2 - 1 - d2) negative = d2 > q2 - 1 - d2;
    else if (c > 1 && d1 != q1 - 1 - d1) negative = d1 > q1 - 1 - d1;
    else negative = d0 > q0 - 1 - d0;
    let value: f64;
    if (negative) {
      const e0 = q0 - 1 - d0;
      const e1 = c > 1 ? q1 - 1 - d1 : 0;
      const e2 = c > 2 ? q2 - 1 - d2 : 0;
      value = -(<f64>(e1 + q1 * e2) * <f64>q0 + <f64>e0 + 1.0);
    } else {
      value = <f64>(d1 + q1 * d2) * <f64>q0 + <f64>d0;
    }
    store<f64>(out + (k << 3), value);
    let ok = true;
    const u = d1 + q1 * d2;
    for (let j = c; j < L; j++) {
      const qj = <u64>load<u32>(moduli + (<usize>j << 2));
      const mu = <u64>load<u32>(mus + (<usize>j << 2));
      const row = perLimb + <usize>j * 12;
      const uMod = barrett64(u, qj, mu);
      let v = barrett64(d0 + <u64>load<u32>(row) * uMod, qj, mu);
      if (negative) v = (v + qj - <u64>load<u32>(row + 8)) % qj;
      if (v != <u64>load<u32>(limbs + <usize>j * nb + (k << 2))) {
        ok = false;
        break;
      }
    }
    store<u8>(flags + k, ok ? 0 : 1);
    if (!ok) failures++;
  }
  return failures;
}

// ---------------------------------------------------------------------------------------------------------
// Exact basis extension support (HPS-style overflow correction)

/**
 * u[k] = floor(Σ_i t_i[k] / p_i) for k < n, K limbs t_i (limb i at t + i·stride·4) and f64 inverses 1/p_i: the
 * multiple of P that the fast basis extension adds, so the extension can subtract it and become exact. A stride
 * above n lets threads split the coefficients of limbs `stride` words apart.
 */
export function overflowCount(u: usize, t: usize, n: i32, K: i32, inverses: usize, stride: i32): void {
  const sb = <usize>stride << 2;
  for (let k: usize = 0; k < <usize>n; k++) {
    let sum: f64 = 0;
    for (let i: usize = 0; i < <usize>K; i++) {
      sum += <f64>load<u32>(t + i * sb + (k << 2)) * load<f64>(inverses + (i << 3));
    }
    store<u32>(u + (k << 2), <u32>Math.floor(sum));
  }
}

/** out = out − u·w mod p for small non-negative integers u (Shoup constant w). */
export function subMulScalarSmall(out: usize, u: usize, n: i32, p: u32, w: u32, ws: u32): void {
  const vp = i32x4.splat(p);
  const vw = i32x4.splat(w);
  const vws = i32x4.splat(ws);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    const prod = csub(shoup(v128.load(u + k), vw, vws, vp), vp);
    v128.store(out + k, csub(i32x4.add(i32x4.sub(v128.load(out + k), prod), vp), vp));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Key-switching inner product

// S mod p for S < 2^63, via S = hi·2^32 + lo and c32 = 2^32 mod p, then Barrett; result in [0, p).
@inline
function reduce63(s: v128, vc32: v128, vmu: v128, vp64: v128): v128 {
  const lo = v128.and(s, i64x2.splat(0xffffffff));
  const t = i64x2.add(i64x2.mul(i64x2.shr_u(s, 32), vc32), lo);
  const q = i64x2.shr_u(i64x2.mul(i64x2.shr_u(t, 29), vmu), 32);
  return i64x2.sub(t, i64x2.mul(q, vp64));
}

/**
 * out0 = Σ_j d_j ⊙ b_j, out1 = Σ_j d_j ⊙ a_j mod p over `count` ≤ 8 terms, accumulated lazily in 64 bits and
 * reduced once. table holds 3·count byte offsets: (d_j, b_j, a_j) for j = 0 … count−1.
 */
export function innerProduct2(
  out0: usize,
  out1: usize,
  table: usize,
  count: i32,
  n: i32,
  p: u32,
  mu: u32,
  c32: u32,
): void {
  const vp = i32x4.splat(p);
  const vp2 = i32x4.splat(p << 1);
  const vp64 = i64x2.splat(<i64>p);
  const vmu = i64x2.splat(<i64>mu);
  const vc32 = i64x2.splat(<i64>c32);
  const bytes = <usize>n << 2;
  for (let k: usize = 0; k < bytes; k += 16) {
    let s0lo = i64x2.splat(0);
    let s0hi = i64x2.splat(0);
    let s1lo = i64x2.splat(0);
    let s1hi = i64x2.splat(0);
    for (let j = 0; j < count; j++) {
      const row = table + <usize>j * 12;
      const d = v128.load(<usize>load<u32>(row) + k);
      const b = v128.load(<usize>load<u32>(row, 4) + k);
      const a = v128.load(<usize>load<u32>(row, 8) + k);
      s0lo = i64x2.add(s0lo, i64x2.extmul_low_i32x4_u(d, b));
      s0hi = i64x2.add(s0hi, i64x2.extmul_high_i32x4_u(d, b));
      s1lo = i64x2.add(s1lo, i64x2.extmul_low_i32x4_u(d, a));
      s1hi = i64x2.add(s1hi, i64x2.extmul_high_i32x4_u(d, a));
    }
    const r0 = v128.shuffle<u32>(reduce63(s0lo, vc32, vmu, vp64), reduce63(s0hi, vc32, vmu, vp64), 0, 2, 4, 6);
    const r1 = v128.shuffle<u32>(reduce63(s1lo, vc32, vmu, vp64), reduce63(s1hi, vc32, vmu, vp64), 0, 2, 4, 6);
    v128.store(out0 + k, csub(csub(r0, vp2), vp));
    v128.store(out1 + k, csub(csub(r1, vp2), vp));
  }
}

// S ≡ hi·c32 + lo (mod p) with c32 = 2^32 mod p: any 64-bit S becomes a value below 2^62 + 2^32.
@inline
function fold64(s: v128, vc32: v128): v128 {
  return i64x2.add(i64x2.mul(i64x2.shr_u(s, 32), vc32), v128.and(s, i64x2.splat(0xffffffff)));
}

/**
 * A block of a linear layer on coefficients [offset, offset + length) of one limb: out_o = Σ_j w[o·k + j] · a_j mod p
 * for o < m, j < k (a_j < p, w < p). ptrs holds m output pointers, then k input pointers (byte offsets of the
 * limbs); w holds the m·k weights, row by row; stage is k·64 bytes of scratch. Sixteen coefficients at a time:
 * they are first gathered from every input into stage, back to back, and then every row runs over stage. So
 * memory traffic is one read of each input and one write of each output, not one read of every input per output,
 * and the rows read one contiguous block: the inputs themselves lie 2^logN·4 bytes apart, the same cache set, and
 * reading them in place evicts the block before the next row can use it. Products accumulate in 64 bits and fold
 * every twelve terms (12·2^60 plus a folded value stays below 2^64).
 */
export function mulScalarMatrix(
  ptrs: usize,
  w: usize,
  m: i32,
  k: i32,
  offset: i32,
  length: i32,
  p: u32,
  stage: usize,
): void {
  const c32 = <u32>((<u64>1 << 32) % <u64>p);
  const mu = <u32>((<u64>1 << 61) / <u64>p);
  const vp = i32x4.splat(p);
  const vp2 = i32x4.splat(p << 1);
  const vp64 = i64x2.splat(<i64>p);
  const vmu = i64x2.splat(<i64>mu);
  const vc32 = i64x2.splat(<i64>c32);
  const inputs = ptrs + (<usize>m << 2);
  const end = (<usize>(offset + length)) << 2;
  for (let t: usize = (<usize>offset) << 2; t < end; t += 64) {
    for (let j = 0; j < k; j++) {
      const a = <usize>load<u32>(inputs + (<usize>j << 2)) + t;
      const to = stage + (<usize>j << 6);
      v128.store(to, v128.load(a));
      v128.store(to, v128.load(a, 16), 16);
      v128.store(to, v128.load(a, 32), 32);
      v128.store(to, v128.load(a, 48), 48);
    }
    for (let o = 0; o < m; o++) {
      const row = w + (<usize>(o * k) << 2);
      let s0 = i64x2.splat(0);
      let s1 = i64x2.splat(0);
      let s2 = i64x2.splat(0);
      let s3 = i64x2.splat(0);
      let s4 = i64x2.splat(0);
      let s5 = i64x2.splat(0);
      let s6 = i64x2.splat(0);
      let s7 = i64x2.splat(0);
      let pending = 0;
      for (let j = 0; j < k; j++) {
        const a = stage + (<usize>j << 6);
        const wj = i32x4.splat(load<u32>(row + (<usize>j << 2)));
        const a0 = v128.load(a);
        const a1 = v128.load(a, 16);
        const a2 = v128.load(a, 32);
        const a3 = v128.load(a, 48);
        s0 = i64x2.add(s0, i64x2.extmul_low_i32x4_u(a0, wj));
        s1 = i64x2.add(s1, i64x2.extmul_high_i32x4_u(a0, wj));
        s2 = i64x2.add(s2, i64x2.extmul_low_i32x4_u(a1, wj));
        s3 = i64x2.add(s3, i64x2.extmul_high_i32x4_u(a1, wj));
        s4 = i64x2.add(s4, i64x2.extmul_low_i32x4_u(a2, wj));
        s5 = i64x2.add(s5, i64x2.extmul_high_i32x4_u(a2, wj));
        s6 = i64x2.add(s6, i64x2.extmul_low_i32x4_u(a3, wj));
        s7 = i64x2.add(s7, i64x2.extmul_high_i32x4_u(a3, wj));
        if (++pending === 12) {
          pending = 0;
          s0 = fold64(s0, vc32);
          s1 = fold64(s1, vc32);
          s2 = fold64(s2, vc32);
          s3 = fold64(s3, vc32);
          s4 = fold64(s4, vc32);
          s5 = fold64(s5, vc32);
          s6 = fold64(s6, vc32);
          s7 = fold64(s7, vc32);
        }
      }
      const out = <usize>load<u32>(ptrs + (<usize>o << 2)) + t;
      const r0 = v128.shuffle<u32>(reduce63(fold64(s0, vc32), vc32, vmu, vp64), reduce63(fold64(s1, vc32), vc32, vmu, vp64), 0, 2, 4, 6);
      const r1 = v128.shuffle<u32>(reduce63(fold64(s2, vc32), vc32, vmu, vp64), reduce63(fold64(s3, vc32), vc32, vmu, vp64), 0, 2, 4, 6);
      const r2 = v128.shuffle<u32>(reduce63(fold64(s4, vc32), vc32, vmu, vp64), reduce63(fold64(s5, vc32), vc32, vmu, vp64), 0, 2, 4, 6);
      const r3 = v128.shuffle<u32>(reduce63(fold64(s6, vc32), vc32, vmu, vp64), reduce63(fold64(s7, vc32), vc32, vmu, vp64), 0, 2, 4, 6);
      v128.store(out, csub(csub(r0, vp2), vp));
      v128.store(out, csub(csub(r1, vp2), vp), 16);
      v128.store(out, csub(csub(r2, vp2), vp), 32);
      v128.store(out, csub(csub(r3, vp2), vp), 48);
    }
  }
}

// Integrity hashing kernels live in their own file.
export * from "./hash";
// The ChaCha20 keystream of the PRNG.
export * from "./chacha";
