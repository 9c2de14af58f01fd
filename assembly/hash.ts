// Integrity-hash kernels: streaming XXH32 (Yann Collet's 32-bit xxHash, as specified in the xxHash repository's
// doc/xxhash_spec.md), XXH32×4 (four XXH32 lanes over interleaved 16-byte stripes, whose chains overlap; below)
// and the residue range check of deserialization, SIMD128.
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
  const p = state + STATE_BUFFER;
  return finish(h, p, p + <usize>load<u32>(state + STATE_PENDING));
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

// ---------------------------------------------------------------------------------------------------------------
// XXH32×4: four XXH32 lanes over one byte sequence. The sequence is cut into 16-byte stripes and stripe i goes to
// lane i mod 4 (the last stripe may be partial); each lane is hashed as plain XXH32 of its own bytes. A 64-byte
// block advances the four lanes once each, and their chains are independent, so they overlap: the kernel is
// bound by throughput instead of the 5-cycle latency of one chain.
//
// State layout (XXH32X4_STATE_BYTES = 160, 16-byte aligned):
//   0  accumulators of lanes 0 … 3 (4 × i32x4)   64 total length (u64)   72 pending byte count (u32)
//   76 seed (u32)   80 pending bytes (64, fewer than one block)   144 the four digests (4 × u32, by xxh32x4Digest)

const X4_ACC: usize = 0;
const X4_TOTAL: usize = 64;
const X4_PENDING: usize = 72;
const X4_SEED: usize = 76;
const X4_BUFFER: usize = 80;
const X4_DIGESTS: usize = 144;
const XXH32X4_STATE_BYTES: i32 = 160;

/** Bytes of the XXH32×4 streaming state (callers reserve this much, 16-byte aligned). */
export function xxh32x4StateBytes(): i32 {
  return XXH32X4_STATE_BYTES;
}

/** Byte offset in the state of the four lane digests written by xxh32x4Digest. */
export function xxh32x4DigestsOffset(): i32 {
  return <i32>X4_DIGESTS;
}

/** Starts an XXH32×4 stream with `seed` (every lane starts from it) in the state at `state`. */
export function xxh32x4Init(state: usize, seed: u32): void {
  const v = i32x4.add(i32x4.splat(seed), i32x4(<i32>(PRIME1 + PRIME2), <i32>PRIME2, 0, -(<i32>PRIME1)));
  v128.store(state + X4_ACC, v);
  v128.store(state + X4_ACC, v, 16);
  v128.store(state + X4_ACC, v, 32);
  v128.store(state + X4_ACC, v, 48);
  store<u64>(state + X4_TOTAL, 0);
  store<u32>(state + X4_PENDING, 0);
  store<u32>(state + X4_SEED, seed);
}

// Whole 64-byte blocks from ptr to end (end − ptr a multiple of 64): one round per lane and block, carrying
// s = acc + input·PRIME2 through the run as `stripes` does (5-cycle chain instead of 6). With four chains in
// flight the loop is bound by vector throughput, not latency.
@inline
function blocks4(state: usize, ptr: usize, end: usize): void {
  if (ptr >= end) return;
  let s0 = startRun(v128.load(state + X4_ACC), v128.load(ptr));
  let s1 = startRun(v128.load(state + X4_ACC, 16), v128.load(ptr, 16));
  let s2 = startRun(v128.load(state + X4_ACC, 32), v128.load(ptr, 32));
  let s3 = startRun(v128.load(state + X4_ACC, 48), v128.load(ptr, 48));
  ptr += 64;
  while (ptr < end) {
    s0 = stepRun(s0, v128.load(ptr));
    s1 = stepRun(s1, v128.load(ptr, 16));
    s2 = stepRun(s2, v128.load(ptr, 32));
    s3 = stepRun(s3, v128.load(ptr, 48));
    ptr += 64;
  }
  v128.store(state + X4_ACC, endRun(s0));
  v128.store(state + X4_ACC, endRun(s1), 16);
  v128.store(state + X4_ACC, endRun(s2), 32);
  v128.store(state + X4_ACC, endRun(s3), 48);
}

/** Feeds `len` bytes at `ptr` (any alignment) to the XXH32×4 stream at `state`. */
export function xxh32x4Update(state: usize, ptr: usize, len: usize): void {
  if (len == 0) return;
  store<u64>(state + X4_TOTAL, load<u64>(state + X4_TOTAL) + <u64>len);
  const pending = <usize>load<u32>(state + X4_PENDING);
  if (pending + len < 64) {
    memory.copy(state + X4_BUFFER + pending, ptr, len);
    store<u32>(state + X4_PENDING, <u32>(pending + len));
    return;
  }
  if (pending > 0) {
    const fill = <usize>64 - pending;
    memory.copy(state + X4_BUFFER + pending, ptr, fill);
    blocks4(state, state + X4_BUFFER, state + X4_BUFFER + 64);
    ptr += fill;
    len -= fill;
  }
  const end = ptr + (len & ~(<usize>63));
  blocks4(state, ptr, end);
  const rest = len & 63;
  memory.copy(state + X4_BUFFER, end, rest);
  store<u32>(state + X4_PENDING, <u32>rest);
}

// The largest of the words from ptr to end (a whole number of words), at least `max`.
@inline
function maxWords(max: u32, ptr: usize, end: usize): u32 {
  while (ptr < end) {
    const w = load<u32>(ptr);
    if (w > max) max = w;
    ptr += 4;
  }
  return max;
}

@inline
function laneMax(m: v128): u32 {
  const a = i32x4.max_u(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
  const b = i32x4.max_u(a, i32x4.shuffle(a, a, 1, 0, 3, 2));
  return <u32>i32x4.extract_lane(b, 0);
}

/**
 * Feeds the `n` 32-bit words at `ptr` to the XXH32×4 stream at `state` (as xxh32x4Update of 4n bytes) and returns
 * the largest of them (0 if n = 0), in one pass over the words when the stream is at a block boundary: the hash
 * and the range check of a limb (the limb is valid iff the largest word is below its prime). An unsigned maximum
 * costs one instruction per vector, where counting the words ≥ p costs three.
 */
export function xxh32x4UpdateMax(state: usize, ptr: usize, n: i32): u32 {
  const len = <usize>n << 2;
  if (load<u32>(state + X4_PENDING) != 0 || len < 64) {
    const max = maxWords(0, ptr, ptr + len);
    xxh32x4Update(state, ptr, len);
    return max;
  }
  store<u64>(state + X4_TOTAL, load<u64>(state + X4_TOTAL) + <u64>len);
  const end = ptr + (len & ~(<usize>63));
  // As blocks4, with the running unsigned maximum of the words (one instruction per vector) beside the rounds.
  let x0 = v128.load(ptr);
  let x1 = v128.load(ptr, 16);
  let x2 = v128.load(ptr, 32);
  let x3 = v128.load(ptr, 48);
  let m0 = i32x4.max_u(x0, x1);
  let m1 = i32x4.max_u(x2, x3);
  let s0 = startRun(v128.load(state + X4_ACC), x0);
  let s1 = startRun(v128.load(state + X4_ACC, 16), x1);
  let s2 = startRun(v128.load(state + X4_ACC, 32), x2);
  let s3 = startRun(v128.load(state + X4_ACC, 48), x3);
  ptr += 64;
  while (ptr < end) {
    x0 = v128.load(ptr);
    x1 = v128.load(ptr, 16);
    x2 = v128.load(ptr, 32);
    x3 = v128.load(ptr, 48);
    m0 = i32x4.max_u(m0, i32x4.max_u(x0, x1));
    m1 = i32x4.max_u(m1, i32x4.max_u(x2, x3));
    s0 = stepRun(s0, x0);
    s1 = stepRun(s1, x1);
    s2 = stepRun(s2, x2);
    s3 = stepRun(s3, x3);
    ptr += 64;
  }
  v128.store(state + X4_ACC, endRun(s0));
  v128.store(state + X4_ACC, endRun(s1), 16);
  v128.store(state + X4_ACC, endRun(s2), 32);
  v128.store(state + X4_ACC, endRun(s3), 48);
  const rest = len & 63;
  const max = maxWords(laneMax(i32x4.max_u(m0, m1)), ptr, ptr + rest);
  memory.copy(state + X4_BUFFER, ptr, rest);
  store<u32>(state + X4_PENDING, <u32>rest);
  return max;
}

// XXH32's end: the last bytes from p to end (fewer than 16) mixed into h, then the avalanche.
@inline
function finish(h: u32, p: usize, end: usize): u32 {
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

/**
 * Writes the XXH32 of each lane of everything fed so far at state + xxh32x4DigestsOffset() (4 × u32, lane 0
 * first); the stream is unchanged and may continue.
 */
export function xxh32x4Digest(state: usize): void {
  const total = load<u64>(state + X4_TOTAL);
  const fullBlocks = total >> 6;
  const tail = <i32>(total & 63);
  const seed = load<u32>(state + X4_SEED);
  for (let lane = 0; lane < 4; lane++) {
    // Lane `lane` has 16 bytes of each whole block and the lane-th stripe of the pending bytes, if any.
    const tailBytes = min(max(tail - lane * 16, 0), 16);
    const laneLength = (fullBlocks << 4) + <u64>tailBytes;
    let acc = v128.load(state + X4_ACC + (<usize>lane << 4));
    let p = state + X4_BUFFER + (<usize>lane << 4);
    const end = p + <usize>tailBytes;
    if (tailBytes == 16) {
      acc = round4(acc, v128.load(p));
      p = end;
    }
    let h: u32;
    if (laneLength >= 16) {
      h =
        rotl<u32>(i32x4.extract_lane(acc, 0), 1) +
        rotl<u32>(i32x4.extract_lane(acc, 1), 7) +
        rotl<u32>(i32x4.extract_lane(acc, 2), 12) +
        rotl<u32>(i32x4.extract_lane(acc, 3), 18);
    } else {
      h = seed + PRIME5;
    }
    h += <u32>laneLength;
    store<u32>(state + X4_DIGESTS + (<usize>lane << 2), finish(h, p, end));
  }
}
