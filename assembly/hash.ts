// Integrity-hash kernels: streaming XXH32 (Yann Collet's 32-bit xxHash, as specified in the xxHash repository's
// doc/xxhash_spec.md) and the residue range check of deserialization, SIMD128.
//
// XXH32 keeps four 32-bit accumulators and consumes 16-byte stripes: accumulator i takes 32-bit word i of each
// stripe. Those four lanes are exactly one i32x4, so a stripe is one v128 load and one vector round. The rounds
// of successive stripes depend on each other (a latency chain of add, rotate, multiply), so one stream cannot go
// faster than that chain; the range check fused into the same loop fills the idle issue slots for free.
//
// The state lives in kernel memory so data can be hashed where it lies (a polynomial's limbs) without a copy.
// State layout (XXH32_STATE_BYTES = 48, 16-byte aligned):
//   0  v1..v4 (i32x4)     16 total length (u64)     24 pending byte count (u32)     28 seed (u32)
//   32 pending bytes (16, fewer than one stripe)

const PRIME1: u32 = 0x9e3779b1;
const PRIME2: u32 = 0x85ebca77;
const PRIME3: u32 = 0xc2b2ae3d;
const PRIME4: u32 = 0x27d4eb2f;
const PRIME5: u32 = 0x165667b1;

const STATE_V: usize = 0;
const STATE_TOTAL: usize = 16;
const STATE_PENDING: usize = 24;
const STATE_SEED: usize = 28;
const STATE_BUFFER: usize = 32;
const XXH32_STATE_BYTES: i32 = 48;

/** Bytes of the XXH32 streaming state (callers reserve this much, 16-byte aligned). */
export function xxh32StateBytes(): i32 {
  return XXH32_STATE_BYTES;
}

// One XXH32 round on all four lanes: acc = rotl(acc + input * PRIME2, 13) * PRIME1.
@inline
function round4(acc: v128, input: v128): v128 {
  const sum = i32x4.add(acc, i32x4.mul(input, i32x4.splat(PRIME2)));
  return i32x4.mul(v128.or(i32x4.shl(sum, 13), i32x4.shr_u(sum, 19)), i32x4.splat(PRIME1));
}

// The rounds of a run of stripes, rewritten to shorten the dependency chain. With s = acc + input·PRIME2, the
// two halves of rotl(s, 13) have no common bits, so rotl(s, 13)·PRIME1 = s·(PRIME1 << 13) + (s >>> 19)·PRIME1
// (mod 2^32), and the next s adds the next input's product. Carrying s instead of acc, the chain per stripe is
// shift → multiply → add (5 cycles with a 3-cycle vector multiply) instead of add → shift → or → multiply (6):
// the product s·(PRIME1 << 13) and the input term are summed off the chain.
const PRIME1_SHL13: u32 = PRIME1 << 13;

@inline
function startRun(acc: v128, input: v128): v128 {
  return i32x4.add(acc, i32x4.mul(input, i32x4.splat(PRIME2)));
}

@inline
function stepRun(s: v128, input: v128): v128 {
  const offChain = i32x4.add(i32x4.mul(s, i32x4.splat(PRIME1_SHL13)), i32x4.mul(input, i32x4.splat(PRIME2)));
  return i32x4.add(offChain, i32x4.mul(i32x4.shr_u(s, 19), i32x4.splat(PRIME1)));
}

@inline
function endRun(s: v128): v128 {
  return i32x4.add(i32x4.mul(s, i32x4.splat(PRIME1_SHL13)), i32x4.mul(i32x4.shr_u(s, 19), i32x4.splat(PRIME1)));
}

// Full stripes from ptr to end (end − ptr a multiple of 16).
@inline
function stripes(acc: v128, ptr: usize, end: usize): v128 {
  if (ptr >= end) return acc;
  let s = startRun(acc, v128.load(ptr));
  ptr += 16;
  // Unrolled by 4: the loads and the input products are independent of the chain and issue early.
  while (ptr + 64 <= end) {
    s = stepRun(s, v128.load(ptr));
    s = stepRun(s, v128.load(ptr, 16));
    s = stepRun(s, v128.load(ptr, 32));
    s = stepRun(s, v128.load(ptr, 48));
    ptr += 64;
  }
  while (ptr < end) {
    s = stepRun(s, v128.load(ptr));
    ptr += 16;
  }
  return endRun(s);
}

/** Starts an XXH32 stream with `seed` in the state at `state`. */
export function xxh32Init(state: usize, seed: u32): void {
  const offsets = i32x4(<i32>(PRIME1 + PRIME2), <i32>PRIME2, 0, -(<i32>PRIME1));
  v128.store(state + STATE_V, i32x4.add(i32x4.splat(seed), offsets));
  store<u64>(state + STATE_TOTAL, 0);
  store<u32>(state + STATE_PENDING, 0);
  store<u32>(state + STATE_SEED, seed);
  v128.store(state + STATE_BUFFER, i32x4.splat(0));
}

/** Feeds `len` bytes at `ptr` (any alignment) to the stream at `state`. */
export function xxh32Update(state: usize, ptr: usize, len: usize): void {
  if (len == 0) return;
  store<u64>(state + STATE_TOTAL, load<u64>(state + STATE_TOTAL) + <u64>len);
  const pending = <usize>load<u32>(state + STATE_PENDING);
  if (pending + len < 16) {
    memory.copy(state + STATE_BUFFER + pending, ptr, len);
    store<u32>(state + STATE_PENDING, <u32>(pending + len));
    return;
  }
  let acc = v128.load(state + STATE_V);
  if (pending > 0) {
    const fill = <usize>16 - pending;
    memory.copy(state + STATE_BUFFER + pending, ptr, fill);
    acc = round4(acc, v128.load(state + STATE_BUFFER));
    ptr += fill;
    len -= fill;
  }
  const end = ptr + (len & ~(<usize>15));
  acc = stripes(acc, ptr, end);
  const rest = len & 15;
  memory.copy(state + STATE_BUFFER, end, rest);
  store<u32>(state + STATE_PENDING, <u32>rest);
  v128.store(state + STATE_V, acc);
}

/** The XXH32 of everything fed so far; the state is unchanged, so the stream may continue. */
export function xxh32Digest(state: usize): u32 {
  const total = load<u64>(state + STATE_TOTAL);
  let h: u32;
  if (total >= 16) {
    const v = v128.load(state + STATE_V);
    h =
      rotl<u32>(i32x4.extract_lane(v, 0), 1) +
      rotl<u32>(i32x4.extract_lane(v, 1), 7) +
      rotl<u32>(i32x4.extract_lane(v, 2), 12) +
      rotl<u32>(i32x4.extract_lane(v, 3), 18);
  } else {
    h = load<u32>(state + STATE_SEED) + PRIME5;
  }
  h += <u32>total;
  let p = state + STATE_BUFFER;
  const end = p + <usize>load<u32>(state + STATE_PENDING);
  while (p + 4 <= end) {
    h = rotl<u32>(h + load<u32>(p) * PRIME3, 17) * PRIME4;
    p += 4;
  }
  while (p < end) {
    h = rotl<u32>(h + <u32>load<u8>(p) * PRIME5, 11) * PRIME1;
    p++;
  }
  h ^= h >> 15;
  h *= PRIME2;
  h ^= h >> 13;
  h *= PRIME3;
  h ^= h >> 16;
  return h;
}

// The four lane counts of `counts` summed.
@inline
function laneSum(counts: v128): i32 {
  return (
    i32x4.extract_lane(counts, 0) +
    i32x4.extract_lane(counts, 1) +
    i32x4.extract_lane(counts, 2) +
    i32x4.extract_lane(counts, 3)
  );
}

/**
 * The number of the `n` 32-bit words at `ptr` that are ≥ p (0 for a limb of valid residues modulo p).
 * A comparison mask is −1 per true lane, so subtracting masks counts.
 */
export function countNotBelow(ptr: usize, n: i32, p: u32): i32 {
  const vp = i32x4.splat(p);
  let c0 = i32x4.splat(0);
  let c1 = i32x4.splat(0);
  const end = ptr + (<usize>n << 2);
  const vectorEnd = ptr + ((<usize>n << 2) & ~(<usize>31));
  while (ptr < vectorEnd) {
    c0 = i32x4.sub(c0, i32x4.ge_u(v128.load(ptr), vp));
    c1 = i32x4.sub(c1, i32x4.ge_u(v128.load(ptr, 16), vp));
    ptr += 32;
  }
  let count = laneSum(i32x4.add(c0, c1));
  while (ptr < end) {
    if (load<u32>(ptr) >= p) count++;
    ptr += 4;
  }
  return count;
}

/**
 * Feeds the `n` 32-bit words at `ptr` to the stream at `state` (as xxh32Update of 4n bytes) and returns how
 * many of them are ≥ p, in one pass over the words when the stream is at a stripe boundary.
 */
export function xxh32UpdateCountNotBelow(state: usize, ptr: usize, n: i32, p: u32): i32 {
  const len = <usize>n << 2;
  if (load<u32>(state + STATE_PENDING) != 0 || len < 16) {
    const count = countNotBelow(ptr, n, p);
    xxh32Update(state, ptr, len);
    return count;
  }
  store<u64>(state + STATE_TOTAL, load<u64>(state + STATE_TOTAL) + <u64>len);
  const vp = i32x4.splat(p);
  let c0 = i32x4.splat(0);
  let c1 = i32x4.splat(0);
  const end = ptr + (len & ~(<usize>15));
  const first = v128.load(ptr);
  c0 = i32x4.sub(c0, i32x4.ge_u(first, vp));
  let s = startRun(v128.load(state + STATE_V), first);
  ptr += 16;
  while (ptr + 64 <= end) {
    const x0 = v128.load(ptr);
    const x1 = v128.load(ptr, 16);
    const x2 = v128.load(ptr, 32);
    const x3 = v128.load(ptr, 48);
    c0 = i32x4.sub(c0, i32x4.ge_u(x0, vp));
    c1 = i32x4.sub(c1, i32x4.ge_u(x1, vp));
    c0 = i32x4.sub(c0, i32x4.ge_u(x2, vp));
    c1 = i32x4.sub(c1, i32x4.ge_u(x3, vp));
    s = stepRun(s, x0);
    s = stepRun(s, x1);
    s = stepRun(s, x2);
    s = stepRun(s, x3);
    ptr += 64;
  }
  while (ptr < end) {
    const x = v128.load(ptr);
    c0 = i32x4.sub(c0, i32x4.ge_u(x, vp));
    s = stepRun(s, x);
    ptr += 16;
  }
  const acc = endRun(s);
  v128.store(state + STATE_V, acc);
  let count = laneSum(i32x4.add(c0, c1));
  // At most three words are left; they wait in the pending buffer for the next stripe or the digest.
  const rest = len & 15;
  for (let q = ptr; q < ptr + rest; q += 4) if (load<u32>(q) >= p) count++;
  memory.copy(state + STATE_BUFFER, ptr, rest);
  store<u32>(state + STATE_PENDING, <u32>rest);
  return count;
}
