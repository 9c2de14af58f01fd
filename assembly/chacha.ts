// The ChaCha20 keystream of RFC 8439 (section 2.3: 20 rounds, 32-byte key, 96-bit nonce, 32-bit block counter),
// four blocks at a time in SIMD128: word i of the four blocks is one i32x4 (lane b = block counter + b), so a
// quarter round on four vectors is the quarter round of four blocks. The blocks are then transposed back into
// keystream order. The project's PRNG (src/ring/prng.ts) expands its seeds with this keystream; the JavaScript
// cipher it falls back to gives the same bytes.

const SIGMA0: i32 = 0x61707865;
const SIGMA1: i32 = 0x3320646e;
const SIGMA2: i32 = 0x79622d32;
const SIGMA3: i32 = 0x6b206574;

@inline
function rotl(x: v128, bits: i32): v128 {
  return v128.or(i32x4.shl(x, bits), i32x4.shr_u(x, 32 - bits));
}

// Rotations by whole bytes are one byte shuffle instead of two shifts and an or.
@inline
function rotl16(x: v128): v128 {
  return v128.shuffle<u8>(x, x, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
}

@inline
function rotl8(x: v128): v128 {
  return v128.shuffle<u8>(x, x, 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);
}

/**
 * Writes `blocks` (a multiple of 4) 64-byte ChaCha20 keystream blocks to `out`, the first with block counter
 * `counter`: key = the 8 little-endian words at `key`, nonce = the 3 words at `nonce`. The counter is a 32-bit
 * word that the caller keeps from wrapping (counter + blocks − 1 < 2^32).
 */
export function chacha20Blocks(key: usize, nonce: usize, counter: u32, blocks: i32, out: usize): void {
  const k0 = i32x4.splat(load<i32>(key));
  const k1 = i32x4.splat(load<i32>(key, 4));
  const k2 = i32x4.splat(load<i32>(key, 8));
  const k3 = i32x4.splat(load<i32>(key, 12));
  const k4 = i32x4.splat(load<i32>(key, 16));
  const k5 = i32x4.splat(load<i32>(key, 20));
  const k6 = i32x4.splat(load<i32>(key, 24));
  const k7 = i32x4.splat(load<i32>(key, 28));
  const n0 = i32x4.splat(load<i32>(nonce));
  const n1 = i32x4.splat(load<i32>(nonce, 4));
  const n2 = i32x4.splat(load<i32>(nonce, 8));
  const c0 = i32x4.splat(SIGMA0);
  const c1 = i32x4.splat(SIGMA1);
  const c2 = i32x4.splat(SIGMA2);
  const c3 = i32x4.splat(SIGMA3);
  for (let g = 0; g < blocks; g += 4) {
    const ctr = i32x4.add(i32x4.splat(<i32>(counter + <u32>g)), i32x4(0, 1, 2, 3));
    let x0 = c0, x1 = c1, x2 = c2, x3 = c3;
    let x4 = k0, x5 = k1, x6 = k2, x7 = k3;
    let x8 = k4, x9 = k5, x10 = k6, x11 = k7;
    let x12 = ctr, x13 = n0, x14 = n1, x15 = n2;
    for (let r = 0; r < 10; r++) {
      // Column rounds.
      x0 = i32x4.add(x0, x4); x12 = rotl16(v128.xor(x12, x0));
      x8 = i32x4.add(x8, x12); x4 = rotl(v128.xor(x4, x8), 12);
      x0 = i32x4.add(x0, x4); x12 = rotl8(v128.xor(x12, x0));
      x8 = i32x4.add(x8, x12); x4 = rotl(v128.xor(x4, x8), 7);
      x1 = i32x4.add(x1, x5); x13 = rotl16(v128.xor(x13, x1));
      x9 = i32x4.add(x9, x13); x5 = rotl(v128.xor(x5, x9), 12);
      x1 = i32x4.add(x1, x5); x13 = rotl8(v128.xor(x13, x1));
      x9 = i32x4.add(x9, x13); x5 = rotl(v128.xor(x5, x9), 7);
      x2 = i32x4.add(x2, x6); x14 = rotl16(v128.xor(x14, x2));
      x10 = i32x4.add(x10, x14); x6 = rotl(v128.xor(x6, x10), 12);
      x2 = i32x4.add(x2, x6); x14 = rotl8(v128.xor(x14, x2));
      x10 = i32x4.add(x10, x14); x6 = rotl(v128.xor(x6, x10), 7);
      x3 = i32x4.add(x3, x7); x15 = rotl16(v128.xor(x15, x3));
      x11 = i32x4.add(x11, x15); x7 = rotl(v128.xor(x7, x11), 12);
      x3 = i32x4.add(x3, x7); x15 = rotl8(v128.xor(x15, x3));
      x11 = i32x4.add(x11, x15); x7 = rotl(v128.xor(x7, x11), 7);
      // Diagonal rounds.
      x0 = i32x4.add(x0, x5); x15 = rotl16(v128.xor(x15, x0));
      x10 = i32x4.add(x10, x15); x5 = rotl(v128.xor(x5, x10), 12);
      x0 = i32x4.add(x0, x5); x15 = rotl8(v128.xor(x15, x0));
      x10 = i32x4.add(x10, x15); x5 = rotl(v128.xor(x5, x10), 7);
      x1 = i32x4.add(x1, x6); x12 = rotl16(v128.xor(x12, x1));
      x11 = i32x4.add(x11, x12); x6 = rotl(v128.xor(x6, x11), 12);
      x1 = i32x4.add(x1, x6); x12 = rotl8(v128.xor(x12, x1));
      x11 = i32x4.add(x11, x12); x6 = rotl(v128.xor(x6, x11), 7);
      x2 = i32x4.add(x2, x7); x13 = rotl16(v128.xor(x13, x2));
      x8 = i32x4.add(x8, x13); x7 = rotl(v128.xor(x7, x8), 12);
      x2 = i32x4.add(x2, x7); x13 = rotl8(v128.xor(x13, x2));
      x8 = i32x4.add(x8, x13); x7 = rotl(v128.xor(x7, x8), 7);
      x3 = i32x4.add(x3, x4); x14 = rotl16(v128.xor(x14, x3));
      x9 = i32x4.add(x9, x14); x4 = rotl(v128.xor(x4, x9), 12);
      x3 = i32x4.add(x3, x4); x14 = rotl8(v128.xor(x14, x3));
      x9 = i32x4.add(x9, x14); x4 = rotl(v128.xor(x4, x9), 7);
    }
    const base = out + (<usize>g << 6);
    store4(base, i32x4.add(x0, c0), i32x4.add(x1, c1), i32x4.add(x2, c2), i32x4.add(x3, c3));
    store4(base + 16, i32x4.add(x4, k0), i32x4.add(x5, k1), i32x4.add(x6, k2), i32x4.add(x7, k3));
    store4(base + 32, i32x4.add(x8, k4), i32x4.add(x9, k5), i32x4.add(x10, k6), i32x4.add(x11, k7));
    store4(base + 48, i32x4.add(x12, ctr), i32x4.add(x13, n0), i32x4.add(x14, n1), i32x4.add(x15, n2));
  }
}

/**
 * Words w..w+3 of four blocks (a = word w of blocks 0–3, b = word w+1, …) transposed: block j's four words go to
 * `at + 64·j`.
 */
@inline
function store4(at: usize, a: v128, b: v128, c: v128, d: v128): void {
  const ab01 = v128.shuffle<i32>(a, b, 0, 4, 1, 5);
  const ab23 = v128.shuffle<i32>(a, b, 2, 6, 3, 7);
  const cd01 = v128.shuffle<i32>(c, d, 0, 4, 1, 5);
  const cd23 = v128.shuffle<i32>(c, d, 2, 6, 3, 7);
  v128.store(at, v128.shuffle<i64>(ab01, cd01, 0, 2));
  v128.store(at + 64, v128.shuffle<i64>(ab01, cd01, 1, 3));
  v128.store(at + 128, v128.shuffle<i64>(ab23, cd23, 0, 2));
  v128.store(at + 192, v128.shuffle<i64>(ab23, cd23, 1, 3));
}

/**
 * Rejection sampling of values uniform modulo `q` (the PRNG's sampleUniformMod): reads the `count` words at
 * `src` in order, keeps `word & mask` when it is below `q`, and writes kept values to `dst` until `want` are
 * written. Returns the words read plus 65536 × the values written (both ≤ count ≤ 65535).
 */
export function uniformFromWords(src: usize, count: i32, dst: usize, want: i32, q: u32, mask: u32): i32 {
  let read = 0;
  let written = 0;
  while (read < count && written < want) {
    const candidate = load<u32>(src + (<usize>read << 2)) & mask;
    read++;
    if (candidate < q) {
      store<u32>(dst + (<usize>written << 2), candidate);
      written++;
    }
  }
  return read | (written << 16);
}
