import { InvalidArgumentError } from '../util/errors.ts';
import type { Allocator } from './arena.ts';
import type { KernelContext } from './context.ts';

/*
 * XXH32 (the 32-bit xxHash of the xxHash specification, doc/xxhash_spec.md of the xxHash repository): a
 * non-cryptographic hash for integrity checks. It detects accidental corruption like a CRC (any change gives an
 * unrelated value with probability 1 − 2^−32) but consumes 16 bytes per round in four independent 32-bit lanes,
 * which are one WebAssembly i32x4: the kernel (assembly/hash.ts) runs several times faster than a table CRC in
 * JavaScript. Values equal those of the reference implementation (`xxhsum -H0`), so they can be cross-checked.
 */

const PRIME1 = 0x9e3779b1;
const PRIME2 = 0x85ebca77;
const PRIME3 = 0xc2b2ae3d;
const PRIME4 = 0x27d4eb2f;
const PRIME5 = 0x165667b1;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function round(acc: number, lane: number): number {
  return Math.imul(rotl((acc + Math.imul(lane, PRIME2)) | 0, 13), PRIME1);
}

function word(bytes: Uint8Array, i: number): number {
  return bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
}

/**
 * XXH32 of `bytes` with `seed`, in plain TypeScript: the reference the kernel is tested against, and the hash
 * for short inputs where no kernel memory is at hand (e.g. a 44-byte header).
 *
 * @param bytes - the input.
 * @param seed - a 32-bit seed (default 0).
 * @returns the hash as an unsigned 32-bit integer.
 * @example
 * ```ts
 * xxh32(new Uint8Array(0)); // 0x02cc5d05
 * xxh32(new TextEncoder().encode('abc')); // 0x32d153ff
 * ```
 */
export function xxh32(bytes: Uint8Array, seed = 0): number {
  const length = bytes.length;
  let i = 0;
  let h: number;
  if (length >= 16) {
    let v1 = (seed + PRIME1 + PRIME2) | 0;
    let v2 = (seed + PRIME2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - PRIME1) | 0;
    const limit = length - 16;
    while (i <= limit) {
      v1 = round(v1, word(bytes, i));
      v2 = round(v2, word(bytes, i + 4));
      v3 = round(v3, word(bytes, i + 8));
      v4 = round(v4, word(bytes, i + 12));
      i += 16;
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    h = (seed + PRIME5) | 0;
  }
  h = (h + length) | 0;
  while (i + 4 <= length) {
    h = Math.imul(rotl((h + Math.imul(word(bytes, i), PRIME3)) | 0, 17), PRIME4);
    i += 4;
  }
  while (i < length) {
    h = Math.imul(rotl((h + Math.imul(bytes[i], PRIME5)) | 0, 11), PRIME1);
    i++;
  }
  h ^= h >>> 15;
  h = Math.imul(h, PRIME2);
  h ^= h >>> 13;
  h = Math.imul(h, PRIME3);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The hashing kernels of assembly/hash.ts (their types; src/ring/kernels.ts lists the arithmetic ones). */
interface HashKernelExports {
  xxh32StateBytes(): number;
  xxh32Init(state: number, seed: number): void;
  xxh32Update(state: number, pointer: number, length: number): void;
  xxh32Digest(state: number): number;
  countNotBelow(pointer: number, words: number, prime: number): number;
  xxh32UpdateCountNotBelow(state: number, pointer: number, words: number, prime: number): number;
  xxh32x4StateBytes(): number;
  xxh32x4DigestsOffset(): number;
  xxh32x4Init(state: number, seed: number): void;
  xxh32x4Update(state: number, pointer: number, length: number): void;
  xxh32x4UpdateMax(state: number, pointer: number, words: number): number;
  xxh32x4Digest(state: number): void;
}

function hashKernels(context: KernelContext): HashKernelExports {
  return context.exports as unknown as HashKernelExports;
}

/** Bytes reserved for the state (48 used, rounded to 64). */
const STATE_BYTES = 64;
/** Uint8Array input is copied into kernel memory in chunks of this many bytes (fits L1/L2 with the hash). */
const SCRATCH_BYTES = 32768;
const REGION_WORDS = (STATE_BYTES + SCRATCH_BYTES) / 4;

/**
 * A run of bytes in kernel memory, e.g. a {@link Poly}'s limbs (`pointer`, `byteLength`).
 *
 * @example
 * ```ts
 * const segment: KernelSegment = { pointer: poly.pointer, byteLength: poly.byteLength };
 * ```
 */
export interface KernelSegment {
  readonly pointer: number;
  readonly byteLength: number;
}

/**
 * A piece of a hashed byte sequence: bytes in JavaScript memory, or bytes in kernel memory hashed in place.
 *
 * @example
 * ```ts
 * const segments: HashSegment[] = [header, poly, seed];
 * ```
 */
export type HashSegment = Uint8Array | KernelSegment;

/**
 * An XXH32 stream computed by the SIMD kernel, whose state lives in kernel memory: feed it bytes in order (in
 * any pieces) and read the digest, which equals {@link xxh32} of their concatenation. Kernel-memory bytes (a
 * polynomial's limbs) are hashed where they lie; a Uint8Array is copied through a small kernel scratch buffer.
 * Holds 32 KiB of kernel memory until {@link Xxh32Stream.dispose}.
 *
 * @example
 * ```ts
 * const stream = new Xxh32Stream(poly.context);
 * try {
 *   stream.update(header).updateKernel(poly.pointer, poly.byteLength).update(seed);
 *   const checksum = stream.digest();
 * } finally {
 *   stream.dispose();
 * }
 * ```
 */
export class Xxh32Stream {
  readonly #exports: HashKernelExports;
  readonly #memory: WebAssembly.Memory;
  readonly #allocator: Allocator;
  readonly #state: number;
  readonly #scratch: number;
  #disposed = false;

  constructor(context: KernelContext, seed = 0) {
    checkSeed(seed);
    this.#exports = hashKernels(context);
    this.#memory = context.memory;
    this.#allocator = context.allocator;
    this.#state = this.#allocator.alloc(REGION_WORDS);
    this.#scratch = this.#state + STATE_BYTES;
    this.#exports.xxh32Init(this.#state, seed | 0);
  }

  /** Feeds bytes from JavaScript memory (copied through the kernel scratch). */
  update(bytes: Uint8Array): this {
    this.#checkAlive();
    feedThroughScratch(this.#memory, this.#scratch, bytes, (chunk) =>
      this.#exports.xxh32Update(this.#state, this.#scratch, chunk),
    );
    return this;
  }

  /** Feeds `byteLength` bytes of kernel memory at byte offset `pointer`, in place. */
  updateKernel(pointer: number, byteLength: number): this {
    this.#checkAlive();
    this.#checkRange(pointer, byteLength);
    this.#exports.xxh32Update(this.#state, pointer, byteLength);
    return this;
  }

  /**
   * Feeds `words` 32-bit words of kernel memory at `pointer` (in place) and returns how many are ≥ `prime`: the
   * hash and the range check of a limb in one pass.
   */
  updateKernelCounting(pointer: number, words: number, prime: number): number {
    this.#checkAlive();
    this.#checkRange(pointer, words * 4);
    return this.#exports.xxh32UpdateCountNotBelow(this.#state, pointer, words, prime);
  }

  /** Feeds each segment in order. */
  updateSegments(segments: readonly HashSegment[]): this {
    for (const segment of segments) {
      if (segment instanceof Uint8Array) this.update(segment);
      else this.updateKernel(segment.pointer, segment.byteLength);
    }
    return this;
  }

  /** XXH32 of everything fed so far (the stream may continue). */
  digest(): number {
    this.#checkAlive();
    return this.#exports.xxh32Digest(this.#state) >>> 0;
  }

  /** Returns the kernel memory; the stream must not be used afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#allocator.free(this.#state, REGION_WORDS);
  }

  #checkAlive(): void {
    if (this.#disposed) throw new InvalidArgumentError('Xxh32Stream: used after dispose()');
  }

  #checkRange(pointer: number, byteLength: number): void {
    checkKernelRange(this.#memory, pointer, byteLength);
  }
}

function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new InvalidArgumentError(`seed = ${seed}: expected an integer in [0, 2^32 − 1]`);
  }
}

/** Copies `bytes` into the kernel scratch in chunks of at most SCRATCH_BYTES, calling `consume(chunkLength)` after each. */
function feedThroughScratch(
  memory: WebAssembly.Memory,
  scratch: number,
  bytes: Uint8Array,
  consume: (chunkLength: number) => void,
): void {
  for (let at = 0; at < bytes.length; at += SCRATCH_BYTES) {
    const chunk = Math.min(SCRATCH_BYTES, bytes.length - at);
    new Uint8Array(memory.buffer, scratch, chunk).set(bytes.subarray(at, at + chunk));
    consume(chunk);
  }
}

function checkKernelRange(memory: WebAssembly.Memory, pointer: number, byteLength: number): void {
  const size = memory.buffer.byteLength;
  if (
    !Number.isInteger(pointer) ||
    !Number.isInteger(byteLength) ||
    pointer < 0 ||
    byteLength < 0 ||
    pointer + byteLength > size
  ) {
    throw new InvalidArgumentError(
      `kernel segment at ${pointer} of ${byteLength} bytes: expected a range inside kernel memory (${size} bytes)`,
    );
  }
}

/**
 * XXH32 of the concatenation of `segments`, by the kernel: kernel-memory segments are hashed in place.
 *
 * @example
 * ```ts
 * const checksum = xxh32Segments([header, poly, seed], poly.context); // === xxh32(header ‖ poly bytes ‖ seed)
 * ```
 */
export function xxh32Segments(segments: readonly HashSegment[], context: KernelContext, seed = 0): number {
  const stream = new Xxh32Stream(context, seed);
  try {
    return stream.updateSegments(segments).digest();
  } finally {
    stream.dispose();
  }
}

/** Words of kernel memory an XXH32 stream's state takes (what {@link xxh32InPlace} needs at `state`). */
export const XXH32_STATE_WORDS = STATE_BYTES / 4;

/**
 * XXH32 of the concatenation of kernel-memory `segments` by `kernels`, an instance of the kernels over that memory
 * made by another thread (an I/O thread's, which has no {@link KernelContext} of its own there), with the stream
 * state at `state` ({@link XXH32_STATE_WORDS} words the caller owns). The same value as {@link xxh32Segments}.
 *
 * @example
 * ```ts
 * const checksum = xxh32InPlace(instance.exports, state, [{ pointer, byteLength }]);
 * ```
 */
export function xxh32InPlace(
  kernels: WebAssembly.Exports,
  state: number,
  segments: readonly KernelSegment[],
  seed = 0,
): number {
  checkSeed(seed);
  const k = kernels as unknown as HashKernelExports;
  k.xxh32Init(state, seed | 0);
  for (const segment of segments) k.xxh32Update(state, segment.pointer, segment.byteLength);
  return k.xxh32Digest(state) >>> 0;
}

/**
 * How many of the `words` 32-bit words of kernel memory at `pointer` are ≥ `prime` (0 for a limb of residues).
 *
 * @example
 * ```ts
 * countNotBelow(poly.context, poly.limbPointer(i), poly.n, poly.moduli[i].value); // 0 for a valid limb
 * ```
 */
export function countNotBelow(context: KernelContext, pointer: number, words: number, prime: number): number {
  const size = context.memory.buffer.byteLength;
  if (!Number.isInteger(words) || words < 0 || pointer < 0 || pointer + words * 4 > size) {
    throw new InvalidArgumentError(
      `kernel range at ${pointer} of ${words} words: expected a range inside kernel memory (${size} bytes)`,
    );
  }
  return hashKernels(context).countNotBelow(pointer, words, prime >>> 0);
}

/*
 * XXH32×4: four XXH32 lanes over one byte sequence, for long inputs where one XXH32 stream is too slow. The
 * sequence is cut into 16-byte stripes (the last one may be partial); stripe i, bytes 16i … 16i + 15, belongs to
 * lane i mod 4, and the digest of lane j is the plain XXH32 (with the given seed) of the concatenation of its
 * stripes. One XXH32 stream is bound by the latency of its round (each stripe waits for the previous one); the
 * four lanes of a 64-byte block are independent, so the kernel advances them in the same loop iteration and their
 * chains overlap. A user combines the four digests into one value as its format specifies (e.g. XXH32 of a header
 * followed by the digests).
 */

/**
 * The number of lanes of XXH32×4.
 *
 * @example
 * ```ts
 * xxh32x4(bytes).length === XXH32X4_LANES; // 4
 * ```
 */
export const XXH32X4_LANES = 4;

const LANE_STRIPE_BYTES = 16;
const X4_BLOCK_BYTES = XXH32X4_LANES * LANE_STRIPE_BYTES;

/**
 * The four lane digests of XXH32×4, lane 0 first.
 *
 * @example
 * ```ts
 * const [d0, d1, d2, d3]: Xxh32x4Digests = xxh32x4(bytes);
 * ```
 */
export type Xxh32x4Digests = [number, number, number, number];

/**
 * The bytes of lane `lane` of XXH32×4 over `bytes`: stripes lane, lane + 4, lane + 8, … concatenated.
 *
 * @example
 * ```ts
 * xxh32x4Lane(bytes, 1); // bytes 16 … 31, 80 … 95, …
 * ```
 */
export function xxh32x4Lane(bytes: Uint8Array, lane: number): Uint8Array {
  if (!Number.isInteger(lane) || lane < 0 || lane >= XXH32X4_LANES) {
    throw new InvalidArgumentError(`lane = ${lane}: expected an integer in [0, ${XXH32X4_LANES - 1}]`);
  }
  const parts: Uint8Array[] = [];
  let length = 0;
  for (let at = lane * LANE_STRIPE_BYTES; at < bytes.length; at += X4_BLOCK_BYTES) {
    const stripe = bytes.subarray(at, at + LANE_STRIPE_BYTES);
    parts.push(stripe);
    length += stripe.length;
  }
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * XXH32×4 of `bytes` with `seed`, in plain TypeScript from {@link xxh32}: each lane's bytes gathered and hashed.
 * The reference the kernel ({@link Xxh32x4Stream}) is tested against, and the hash of short inputs.
 *
 * @param bytes - the input.
 * @param seed - a 32-bit seed, the same for every lane (default 0).
 * @returns the four lane digests, unsigned 32-bit integers.
 * @example
 * ```ts
 * xxh32x4(new Uint8Array(20)); // [xxh32(16 zero bytes), xxh32(4 zero bytes), xxh32(empty), xxh32(empty)]
 * ```
 */
export function xxh32x4(bytes: Uint8Array, seed = 0): Xxh32x4Digests {
  return [0, 1, 2, 3].map((lane) => xxh32(xxh32x4Lane(bytes, lane), seed)) as Xxh32x4Digests;
}

/** Bytes reserved for the XXH32×4 state (160 used). */
const X4_STATE_BYTES = 160;
const X4_REGION_WORDS = (X4_STATE_BYTES + SCRATCH_BYTES) / 4;

/**
 * An XXH32×4 stream computed by the SIMD kernel, whose state lives in kernel memory: feed it bytes in order (in
 * any pieces) and read the four lane digests, which equal {@link xxh32x4} of their concatenation. Kernel-memory
 * bytes are hashed where they lie (with the range check of residues fused in, see
 * {@link Xxh32x4Stream.updateKernelMax}); a Uint8Array is copied through a small kernel scratch buffer. Holds
 * 32 KiB of kernel memory until {@link Xxh32x4Stream.dispose}.
 *
 * @example
 * ```ts
 * const stream = new Xxh32x4Stream(poly.context);
 * try {
 *   stream.updateKernel(poly.pointer, poly.byteLength).update(seed);
 *   const [d0, d1, d2, d3] = stream.digests();
 * } finally {
 *   stream.dispose();
 * }
 * ```
 */
export class Xxh32x4Stream {
  readonly #exports: HashKernelExports;
  readonly #memory: WebAssembly.Memory;
  readonly #allocator: Allocator;
  readonly #state: number;
  readonly #scratch: number;
  #disposed = false;

  constructor(context: KernelContext, seed = 0) {
    checkSeed(seed);
    this.#exports = hashKernels(context);
    if (this.#exports.xxh32x4StateBytes() > X4_STATE_BYTES) {
      throw new Error(`Xxh32x4Stream: the kernel state needs ${this.#exports.xxh32x4StateBytes()} bytes`);
    }
    this.#memory = context.memory;
    this.#allocator = context.allocator;
    this.#state = this.#allocator.alloc(X4_REGION_WORDS);
    this.#scratch = this.#state + X4_STATE_BYTES;
    this.#exports.xxh32x4Init(this.#state, seed | 0);
  }

  /** Feeds bytes from JavaScript memory (copied through the kernel scratch). */
  update(bytes: Uint8Array): this {
    this.#checkAlive();
    feedThroughScratch(this.#memory, this.#scratch, bytes, (chunk) =>
      this.#exports.xxh32x4Update(this.#state, this.#scratch, chunk),
    );
    return this;
  }

  /** Feeds `byteLength` bytes of kernel memory at byte offset `pointer`, in place. */
  updateKernel(pointer: number, byteLength: number): this {
    this.#checkAlive();
    checkKernelRange(this.#memory, pointer, byteLength);
    this.#exports.xxh32x4Update(this.#state, pointer, byteLength);
    return this;
  }

  /**
   * Feeds `words` 32-bit words of kernel memory at `pointer` (in place) and returns the largest of them (0 for
   * none): the hash and the range check of a limb in one pass (its residues are valid iff the largest is below
   * the prime). One pass when the stream is at a 64-byte block boundary, two otherwise.
   */
  updateKernelMax(pointer: number, words: number): number {
    this.#checkAlive();
    checkKernelRange(this.#memory, pointer, words * 4);
    return this.#exports.xxh32x4UpdateMax(this.#state, pointer, words) >>> 0;
  }

  /** Feeds each segment in order. */
  updateSegments(segments: readonly HashSegment[]): this {
    for (const segment of segments) {
      if (segment instanceof Uint8Array) this.update(segment);
      else this.updateKernel(segment.pointer, segment.byteLength);
    }
    return this;
  }

  /** The four lane digests of everything fed so far (the stream may continue). */
  digests(): Xxh32x4Digests {
    this.#checkAlive();
    this.#exports.xxh32x4Digest(this.#state);
    const at = this.#state + this.#exports.xxh32x4DigestsOffset();
    const words = new Uint32Array(this.#memory.buffer, at, XXH32X4_LANES);
    return [words[0], words[1], words[2], words[3]];
  }

  /** Returns the kernel memory; the stream must not be used afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#allocator.free(this.#state, X4_REGION_WORDS);
  }

  #checkAlive(): void {
    if (this.#disposed) throw new InvalidArgumentError('Xxh32x4Stream: used after dispose()');
  }
}

/**
 * XXH32×4 of the concatenation of `segments`, by the kernel: kernel-memory segments are hashed in place.
 *
 * @example
 * ```ts
 * const digests = xxh32x4Segments([poly, seed], poly.context); // deep-equals xxh32x4(poly bytes ‖ seed)
 * ```
 */
export function xxh32x4Segments(
  segments: readonly HashSegment[],
  context: KernelContext,
  seed = 0,
): Xxh32x4Digests {
  const stream = new Xxh32x4Stream(context, seed);
  try {
    return stream.updateSegments(segments).digests();
  } finally {
    stream.dispose();
  }
}
