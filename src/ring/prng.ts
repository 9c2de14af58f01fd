import { chacha20 } from '@noble/ciphers/chacha.js';
import { shake256 } from '@noble/hashes/sha3.js';
import { assertInteger, check, describe } from '../util/assert.ts';
import { InvalidArgumentError, SecurityError } from '../util/errors.ts';
import { defaultContext, type KernelContext } from './context.ts';

/**
 * Length in bytes of a PRNG seed (a ChaCha20 key).
 *
 * @example
 * ```ts
 * const prng = Prng.fromSeed(new Uint8Array(SEED_BYTES));
 * ```
 */
export const SEED_BYTES = 32;

const CHACHA_BLOCK_BYTES = 64;
// 4 KiB amortizes the per-call cost of the cipher (key copy, argument checks) to well under 1 % of the work.
const BUFFER_BYTES = 4096;
const BUFFER_WORDS = BUFFER_BYTES >>> 2;
const BLOCKS_PER_BUFFER = BUFFER_BYTES / CHACHA_BLOCK_BYTES;
// Noble refuses to produce the block with counter 2^32 - 1 (it never wraps the 32-bit RFC 8439 counter), so a
// refill must stay at or below block 2^32 - 2; past that the stream continues under the next nonce.
const LAST_USABLE_BLOCK = 2 ** 32 - 2;
const NONCE_BYTES = 12;
const ZERO_PLAINTEXT = new Uint8Array(BUFFER_BYTES);
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const FORK_DOMAIN = new TextEncoder().encode('HomE prng fork v1');
const TWO_POW_26 = 2 ** 26;
const TWO_POW_53 = 2 ** 53;

/**
 * A deterministic, seeded stream of pseudo-random bytes: the raw ChaCha20 keystream of RFC 8439 with the seed as
 * key, nonce 0 and block counter starting at 0, computed by the SIMD kernel when the kernels are loaded and by a
 * JavaScript cipher otherwise: the same bytes either way, so one seed yields the same stream in Node and in browsers;
 * this is what lets a public polynomial be sent as a 32-byte seed and re-expanded by the receiver.
 *
 * Words (`nextUint32`, `fillUint32`) are the keystream read as little-endian 32-bit integers on 4-byte
 * boundaries: after `nextBytes` has read a length that is not a multiple of 4, the next word read skips the 1–3
 * bytes up to the following boundary.
 *
 * The seed is kept private: `toString`, `JSON.stringify` and `util.inspect` print `Prng {<seeded>}`. Only
 * {@link Prng.exportSeed} reveals it.
 *
 * @example
 * ```ts
 * const prng = Prng.fromSeed(Prng.freshSeed());
 * const word = prng.nextUint32();
 * const coin = prng.nextDouble() < 0.5;
 * const keyPart = prng.fork(1);
 * ```
 */
export class Prng {
  readonly #key: Uint8Array;
  readonly #nonce = new Uint8Array(NONCE_BYTES);
  // Nonce words as numbers, so they can be incremented without caring about host byte order.
  readonly #nonceWords = [0, 0, 0];
  #counter = 0;
  readonly #bytes = new Uint8Array(BUFFER_BYTES);
  readonly #words: Uint32Array;
  // Byte offset of the first unread byte of #bytes; BUFFER_BYTES means the buffer is used up.
  #position = BUFFER_BYTES;

  private constructor(seed: Uint8Array) {
    this.#key = Uint8Array.from(seed);
    // On the (rare) big-endian host the word view gets its own storage, byte-swapped at each refill, so the
    // words stay the little-endian reading of the keystream everywhere.
    this.#words = LITTLE_ENDIAN ? new Uint32Array(this.#bytes.buffer) : new Uint32Array(BUFFER_WORDS);
  }

  /**
   * Creates the stream of `seed`, which must be exactly 32 bytes. The seed is copied.
   *
   * @example
   * ```ts
   * const a = Prng.fromSeed(new Uint8Array(32)).nextUint32();
   * const b = Prng.fromSeed(new Uint8Array(32)).nextUint32(); // a === b
   * ```
   */
  static fromSeed(seed: Uint8Array): Prng {
    if (!(seed instanceof Uint8Array)) {
      throw new InvalidArgumentError(
        `seed = ${describe(seed)}: expected a Uint8Array of ${SEED_BYTES} bytes`,
      );
    }
    check(
      seed.length === SEED_BYTES,
      () => `seed.length = ${seed.length}: expected exactly ${SEED_BYTES} bytes`,
    );
    return new Prng(seed);
  }

  /**
   * Creates a stream from a fresh seed drawn from `crypto.getRandomValues`.
   *
   * @throws {SecurityError} when the platform has no `crypto.getRandomValues`.
   * @example
   * ```ts
   * const prng = Prng.fresh();
   * ```
   */
  static fresh(): Prng {
    return new Prng(Prng.freshSeed());
  }

  /**
   * Returns 32 bytes from `crypto.getRandomValues`, the only entropy source of the project.
   *
   * @throws {SecurityError} when the platform has no `crypto.getRandomValues`.
   * @example
   * ```ts
   * const seed = Prng.freshSeed(); // store it to re-create the same stream later
   * const prng = Prng.fromSeed(seed);
   * ```
   */
  static freshSeed(): Uint8Array {
    const source = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
    if (typeof source?.getRandomValues !== 'function') {
      throw new SecurityError(
        'globalThis.crypto.getRandomValues is unavailable: expected a Web Crypto CSPRNG',
      );
    }
    const seed = new Uint8Array(SEED_BYTES);
    source.getRandomValues(seed);
    return seed;
  }

  /**
   * Derives the child stream number `label`: its seed is SHAKE256 over a domain tag, this stream's seed and the
   * label (8 bytes, little-endian). The child depends only on the seed and label, not on how much of this stream
   * was read; distinct labels give independent streams, and the same label always gives the same stream.
   *
   * @param label - an integer in [0, 2^53 - 1].
   * @example
   * ```ts
   * const root = Prng.fromSeed(seed);
   * const secretPrng = root.fork(0);
   * const errorPrng = root.fork(1);
   * ```
   */
  fork(label: number): Prng {
    assertInteger(label, 'label', 0, Number.MAX_SAFE_INTEGER);
    const input = new Uint8Array(FORK_DOMAIN.length + SEED_BYTES + 8);
    input.set(FORK_DOMAIN, 0);
    input.set(this.#key, FORK_DOMAIN.length);
    const view = new DataView(input.buffer, FORK_DOMAIN.length + SEED_BYTES, 8);
    view.setUint32(0, label % 2 ** 32, true);
    view.setUint32(4, Math.floor(label / 2 ** 32), true);
    const childSeed = shake256(input, { dkLen: SEED_BYTES });
    input.fill(0);
    const child = new Prng(childSeed);
    childSeed.fill(0);
    return child;
  }

  /**
   * Returns a copy of the seed.
   *
   * **Warning:** whoever holds the seed can reproduce every value of this stream and of all its forks. Export it
   * only for public randomness (e.g. the uniform `a` of a key sent in seeded, compressed form), never for a
   * stream that sampled secrets or encryption noise.
   *
   * @example
   * ```ts
   * const prng = Prng.fresh();
   * const a = sampleUniformRns(prng, moduli, n, new Uint32Array(moduli.length * n));
   * const compressed = { seed: prng.exportSeed() }; // the receiver re-expands `a` from it
   * ```
   */
  exportSeed(): Uint8Array {
    return Uint8Array.from(this.#key);
  }

  /**
   * Fills `out` with the next `out.length` bytes of the stream.
   *
   * @example
   * ```ts
   * const nonce = new Uint8Array(12);
   * prng.nextBytes(nonce);
   * ```
   */
  nextBytes(out: Uint8Array): void {
    if (!(out instanceof Uint8Array)) {
      throw new InvalidArgumentError(`out = ${describe(out)}: expected a Uint8Array`);
    }
    let written = 0;
    while (written < out.length) {
      if (this.#position === BUFFER_BYTES) this.#refill();
      const count = Math.min(BUFFER_BYTES - this.#position, out.length - written);
      out.set(this.#bytes.subarray(this.#position, this.#position + count), written);
      this.#position += count;
      written += count;
    }
  }

  /**
   * Returns the next 32-bit word of the stream, uniform in [0, 2^32).
   *
   * @example
   * ```ts
   * const bit = prng.nextUint32() & 1;
   * ```
   */
  nextUint32(): number {
    let index = (this.#position + 3) >>> 2;
    if (index === BUFFER_WORDS) {
      this.#refill();
      index = 0;
    }
    this.#position = (index + 1) << 2;
    return this.#words[index];
  }

  /**
   * Fills `out` with the next `out.length` words of the stream (the same values as as many `nextUint32` calls).
   *
   * @example
   * ```ts
   * const words = new Uint32Array(1 << 20);
   * prng.fillUint32(words);
   * ```
   */
  fillUint32(out: Uint32Array): void {
    if (!(out instanceof Uint32Array)) {
      throw new InvalidArgumentError(`out = ${describe(out)}: expected a Uint32Array`);
    }
    const words = this.#words;
    let written = 0;
    while (written < out.length) {
      const start = this.firstUnreadWord();
      const count = Math.min(BUFFER_WORDS - start, out.length - written);
      out.set(words.subarray(start, start + count), written);
      this.markWordsRead(start + count);
      written += count;
    }
  }

  /**
   * Returns a uniform double in [0, 1) with 53 random bits (two words: 27 high bits, then 26 low bits).
   *
   * @example
   * ```ts
   * const u = prng.nextDouble(); // 0 <= u < 1
   * ```
   */
  nextDouble(): number {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * TWO_POW_26 + low) / TWO_POW_53;
  }

  /**
   * The buffered keystream words, refilled in place. For the samplers of `src/ring`, whose hot loops read words
   * straight from the buffer: call {@link Prng.firstUnreadWord}, read from there, then {@link Prng.markWordsRead}.
   *
   * @internal
   * @example
   * ```ts
   * const words = prng.bufferedWords;
   * let index = prng.firstUnreadWord();
   * const word = words[index++];
   * prng.markWordsRead(index);
   * ```
   */
  get bufferedWords(): Uint32Array {
    return this.#words;
  }

  /**
   * Index in {@link Prng.bufferedWords} of the first unread word, after refilling the buffer if every word was read.
   *
   * @internal
   * @example
   * ```ts
   * const index = prng.firstUnreadWord(); // 0 <= index < prng.bufferedWords.length
   * ```
   */
  firstUnreadWord(): number {
    const index = (this.#position + 3) >>> 2;
    if (index < BUFFER_WORDS) return index;
    this.#refill();
    return 0;
  }

  /**
   * Marks the buffered words before index `end` as read. `end` must lie between the value returned by the
   * preceding {@link Prng.firstUnreadWord} and the buffer length; it is not checked, as it sits in hot loops.
   *
   * @internal
   * @example
   * ```ts
   * prng.markWordsRead(prng.firstUnreadWord() + 1); // skip one word
   * ```
   */
  markWordsRead(end: number): void {
    this.#position = end << 2;
  }

  /**
   * Never reveals the seed.
   *
   * @example
   * ```ts
   * String(Prng.fresh()); // 'Prng {<seeded>}'
   * ```
   */
  toString(): string {
    return 'Prng {<seeded>}';
  }

  /**
   * Never reveals the seed: `JSON.stringify` gives the string `"Prng {<seeded>}"`.
   *
   * @example
   * ```ts
   * JSON.stringify({ prng: Prng.fresh() }); // '{"prng":"Prng {<seeded>}"}'
   * ```
   */
  toJSON(): string {
    return 'Prng {<seeded>}';
  }

  /**
   * Never reveals the seed: Node's `util.inspect` and `console.log` print `Prng {<seeded>}`.
   *
   * @example
   * ```ts
   * console.log(Prng.fresh()); // Prng {<seeded>}
   * ```
   */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'Prng {<seeded>}';
  }

  #refill(): void {
    if (this.#counter + BLOCKS_PER_BUFFER - 1 > LAST_USABLE_BLOCK) this.#nextNonce();
    keystream(this.#key, this.#nonce, this.#counter, this.#bytes);
    this.#counter += BLOCKS_PER_BUFFER;
    if (!LITTLE_ENDIAN) {
      const view = new DataView(this.#bytes.buffer);
      for (let i = 0; i < BUFFER_WORDS; i++) this.#words[i] = view.getUint32(i << 2, true);
    }
    this.#position = 0;
  }

  // The 96-bit nonce counts 256 GiB segments of the stream; reaching its end would take 2^134 bytes.
  #nextNonce(): void {
    const words = this.#nonceWords;
    for (let i = 0; i < words.length; i++) {
      words[i] = (words[i] + 1) % 2 ** 32;
      if (words[i] !== 0) break;
    }
    const view = new DataView(this.#nonce.buffer);
    for (let i = 0; i < words.length; i++) view.setUint32(i << 2, words[i], true);
    this.#counter = 0;
  }
}

type Keystream = (key: Uint8Array, nonce: Uint8Array, counter: number, out: Uint8Array) => void;

/** The kernel keystream, `null` where the kernels are not available (then the JavaScript cipher). */
let kernelKeystream: Keystream | null | undefined;

/**
 * One buffer (BUFFER_BYTES) of ChaCha20 keystream from block `counter`: by the SIMD kernel (assembly/chacha.ts,
 * 4× the JavaScript cipher's speed: it expands the uniform halves of keys and ciphertexts) when the kernels are
 * loaded, else by the JavaScript cipher. Both give the RFC 8439 keystream, so a seed expands to the same bytes
 * everywhere.
 */
function keystream(key: Uint8Array, nonce: Uint8Array, counter: number, out: Uint8Array): void {
  if (kernelKeystream === undefined) kernelKeystream = makeKernelKeystream();
  if (kernelKeystream) kernelKeystream(key, nonce, counter, out);
  else chacha20(key, nonce, ZERO_PLAINTEXT, out, counter);
}

/** Key (32 bytes) and nonce (12, padded to 16) before the keystream, in one kernel-memory region. */
const KERNEL_REGION_BYTES = 48 + BUFFER_BYTES;

function makeKernelKeystream(): Keystream | null {
  let context: KernelContext;
  try {
    context = defaultContext();
  } catch {
    // A browser that has not loaded the kernels, or a build without them.
    return null;
  }
  const exports = context.exports as unknown as {
    chacha20Blocks?: (key: number, nonce: number, counter: number, blocks: number, out: number) => void;
  };
  const blocks = exports.chacha20Blocks;
  if (typeof blocks !== 'function' || !LITTLE_ENDIAN) return null;
  const words = KERNEL_REGION_BYTES / 4;
  return (key, nonce, counter, out) => {
    const pointer = context.allocator.alloc(words);
    try {
      const memory = new Uint8Array(context.memory.buffer);
      memory.set(key, pointer);
      memory.set(nonce, pointer + 32);
      blocks(pointer, pointer + 32, counter, BLOCKS_PER_BUFFER, pointer + 48);
      out.set(new Uint8Array(context.memory.buffer, pointer + 48, BUFFER_BYTES));
    } finally {
      // The key and its keystream (a secret's, for the secret key) do not outlive the call in shared memory.
      new Uint8Array(context.memory.buffer, pointer, KERNEL_REGION_BYTES).fill(0);
      context.allocator.free(pointer, words);
    }
  };
}
