import { assertFinite, assertInteger, check, describe } from '../util/assert.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { KernelContext } from './context.ts';
import { Prng } from './prng.ts';

/**
 * Largest modulus the samplers accept: RNS limbs are stored in 32-bit words and kept at or below 2^30.
 *
 * @example
 * ```ts
 * check(q <= MAX_SAMPLING_MODULUS, () => `q = ${q}: expected at most 2^30`);
 * ```
 */
export const MAX_SAMPLING_MODULUS = 2 ** 30;
/**
 * Largest polynomial length the samplers accept.
 *
 * @example
 * ```ts
 * assertInteger(n, 'n', 1, MAX_SAMPLE_COUNT);
 * ```
 */
export const MAX_SAMPLE_COUNT = 2 ** 30;
/**
 * Standard deviation of the RLWE error used by SEAL and the HE standard.
 *
 * @example
 * ```ts
 * const error = sampleGaussian(prng, n, DEFAULT_GAUSSIAN_SIGMA);
 * ```
 */
export const DEFAULT_GAUSSIAN_SIGMA = 3.2;

function assertPrng(prng: unknown): asserts prng is Prng {
  if (!(prng instanceof Prng)) throw new InvalidArgumentError(`prng = ${describe(prng)}: expected a Prng`);
}

function assertUint32Array(out: unknown, name: string): asserts out is Uint32Array {
  if (!(out instanceof Uint32Array))
    throw new InvalidArgumentError(`${name} = ${describe(out)}: expected a Uint32Array`);
}

function assertModuli(moduli: unknown): asserts moduli is readonly number[] {
  if (!Array.isArray(moduli) || moduli.length === 0) {
    throw new InvalidArgumentError(`moduli = ${describe(moduli)}: expected a non-empty array of moduli`);
  }
  for (let i = 0; i < moduli.length; i++) assertInteger(moduli[i], `moduli[${i}]`, 2, MAX_SAMPLING_MODULUS);
}

// Smallest all-ones mask covering `value`; rejection against it accepts more than half of the words.
function coveringMask(value: number): number {
  let mask = value >>> 0;
  mask |= mask >>> 1;
  mask |= mask >>> 2;
  mask |= mask >>> 4;
  mask |= mask >>> 8;
  mask |= mask >>> 16;
  return mask >>> 0;
}

/**
 * Returns an unbiased integer in [0, `bound`), by rejection of masked 32-bit words.
 *
 * @param bound - an integer in [1, 2^32].
 * @example
 * ```ts
 * const die = randomBoundedInt(prng, 6) + 1;
 * ```
 */
export function randomBoundedInt(prng: Prng, bound: number): number {
  assertPrng(prng);
  assertInteger(bound, 'bound', 1, 2 ** 32);
  const mask = coveringMask(bound - 1);
  for (;;) {
    const candidate = (prng.nextUint32() & mask) >>> 0;
    if (candidate < bound) return candidate;
  }
}

/** The rejection-sampling kernel of assembly/chacha.ts. */
interface UniformKernel {
  uniformFromWords?: (
    src: number,
    count: number,
    dst: number,
    want: number,
    q: number,
    mask: number,
  ) => number;
}

/** Below this many values the JavaScript loop is as fast as staging the words for the kernel. */
const KERNEL_MIN_VALUES = 256;

/**
 * Fills `out[offset, offset + length)` with integers uniform in [0, `modulus`), by rejection of 32-bit words
 * masked to the bit length of `modulus - 1` (no modulo bias). Consumes exactly the words it tests, so the stream
 * position afterwards depends only on the seed and the arguments.
 *
 * @param modulus - an integer in [2, 2^30].
 * @param length - defaults to `out.length - offset`.
 * @example
 * ```ts
 * const limb = new Uint32Array(4096);
 * sampleUniformMod(prng, 1073479681, limb);
 * ```
 */
export function sampleUniformMod(
  prng: Prng,
  modulus: number,
  out: Uint32Array,
  offset = 0,
  length?: number,
): void {
  assertPrng(prng);
  assertInteger(modulus, 'modulus', 2, MAX_SAMPLING_MODULUS);
  assertUint32Array(out, 'out');
  assertInteger(offset, 'offset', 0, out.length);
  length ??= out.length - offset;
  assertInteger(length, 'length', 0, out.length - offset);
  const mask = coveringMask(modulus - 1);
  const words = prng.bufferedWords;
  const wordCount = words.length;
  const end = offset + length;
  let i = offset;
  const context = length >= KERNEL_MIN_VALUES ? KernelContext.ofBuffer(out.buffer) : undefined;
  const kernel = (context?.exports as unknown as UniformKernel | undefined)?.uniformFromWords;
  if (context && kernel) {
    // Into kernel memory (a polynomial's limb): the kept values are written by the kernel, which runs the same
    // rejection over the same words; only the stream's buffered words are copied in.
    const staged = context.allocator.alloc(wordCount);
    try {
      const stage = new Uint32Array(context.memory.buffer, staged, wordCount);
      while (i < end) {
        const w = prng.firstUnreadWord();
        stage.set(words.subarray(w));
        const done = kernel(staged, wordCount - w, out.byteOffset + i * 4, end - i, modulus, mask);
        prng.markWordsRead(w + (done & 0xffff));
        i += done >>> 16;
      }
    } finally {
      context.allocator.free(staged, wordCount);
    }
    return;
  }
  while (i < end) {
    let w = prng.firstUnreadWord();
    while (w < wordCount && i < end) {
      // mask < 2^30, so the masked word is a non-negative int32.
      const candidate = words[w++] & mask;
      if (candidate < modulus) out[i++] = candidate;
    }
    prng.markWordsRead(w);
  }
}

/**
 * Advances `prng` past `length` values of {@link sampleUniformMod} modulo `modulus` without writing them: the
 * stream is left where sampling them would leave it. Skipping the limbs of a seeded polynomial that are not kept
 * (a key made below the top level) costs the keystream but not the writes.
 *
 * @example
 * ```ts
 * skipUniformMod(prng, 1073479681, 4096); // as sampleUniformMod(prng, 1073479681, new Uint32Array(4096))
 * ```
 */
export function skipUniformMod(prng: Prng, modulus: number, length: number): void {
  assertPrng(prng);
  assertInteger(modulus, 'modulus', 2, MAX_SAMPLING_MODULUS);
  assertInteger(length, 'length', 0, MAX_SAMPLE_COUNT);
  const mask = coveringMask(modulus - 1);
  const words = prng.bufferedWords;
  const wordCount = words.length;
  let left = length;
  while (left > 0) {
    let w = prng.firstUnreadWord();
    while (w < wordCount && left > 0) if ((words[w++] & mask) < modulus) left--;
    prng.markWordsRead(w);
  }
}

/**
 * Fills `out` with a polynomial uniform modulo each of `moduli`, limb `i` (modulo `moduli[i]`) at
 * `out[i * n, (i + 1) * n)`. Limbs are sampled independently in order, limb 0 first, so a seed determines the
 * polynomial: this is how the uniform `a` of a key or ciphertext is re-expanded from its seed.
 *
 * @param moduli - each an integer in [2, 2^30].
 * @param n - the number of coefficients per limb.
 * @param out - a Uint32Array of exactly `moduli.length * n` words.
 * @example
 * ```ts
 * const a = new Uint32Array(moduli.length * n);
 * sampleUniformRns(Prng.fromSeed(seed), moduli, n, a);
 * ```
 */
export function sampleUniformRns(prng: Prng, moduli: readonly number[], n: number, out: Uint32Array): void {
  assertPrng(prng);
  assertModuli(moduli);
  assertInteger(n, 'n', 1, MAX_SAMPLE_COUNT);
  assertUint32Array(out, 'out');
  check(
    out.length === moduli.length * n,
    () =>
      `out.length = ${out.length}: expected moduli.length * n = ${moduli.length} * ${n} = ${moduli.length * n}`,
  );
  for (let i = 0; i < moduli.length; i++) sampleUniformMod(prng, moduli[i], out, i * n, n);
}

/**
 * Returns `n` values uniform in {-1, 0, 1}: 2-bit chunks of the stream's words, chunk 3 rejected (0 → 0, 1 → 1,
 * 2 → -1). The chunks left in the last word are discarded.
 *
 * @example
 * ```ts
 * const secret = sampleTernary(prng, 4096);
 * ```
 */
export function sampleTernary(prng: Prng, n: number): Int8Array {
  assertPrng(prng);
  assertInteger(n, 'n', 1, MAX_SAMPLE_COUNT);
  const out = new Int8Array(n);
  const words = prng.bufferedWords;
  const wordCount = words.length;
  let i = 0;
  while (i < n) {
    let w = prng.firstUnreadWord();
    while (w < wordCount && i < n) {
      let word = words[w++];
      for (let chunk = 0; chunk < 16 && i < n; chunk++) {
        const value = word & 3;
        word >>>= 2;
        if (value !== 3) out[i++] = value - 3 * (value >>> 1);
      }
    }
    prng.markWordsRead(w);
  }
  return out;
}

/**
 * Returns `n` values with exactly `hammingWeight` entries ±1 (each sign with probability 1/2) at uniformly random
 * distinct positions, and 0 elsewhere. Positions come from a partial Fisher–Yates shuffle with unbiased bounded
 * integers, then one sign bit per nonzero entry.
 *
 * @param hammingWeight - an integer in [1, n].
 * @example
 * ```ts
 * const secret = sampleSparseTernary(prng, 65536, 192);
 * ```
 */
export function sampleSparseTernary(prng: Prng, n: number, hammingWeight: number): Int8Array {
  assertPrng(prng);
  assertInteger(n, 'n', 1, MAX_SAMPLE_COUNT);
  assertInteger(hammingWeight, 'hammingWeight', 1, n);
  const positions = new Uint32Array(n);
  for (let i = 0; i < n; i++) positions[i] = i;
  for (let i = 0; i < hammingWeight; i++) {
    const j = i + randomBoundedInt(prng, n - i);
    const chosen = positions[j];
    positions[j] = positions[i];
    positions[i] = chosen;
  }
  const out = new Int8Array(n);
  let signBits = 0;
  for (let i = 0; i < hammingWeight; i++) {
    if ((i & 31) === 0) signBits = prng.nextUint32();
    out[positions[i]] = signBits & 1 ? -1 : 1;
    signBits >>>= 1;
  }
  return out;
}

const gaussianTables = new Map<string, Float64Array>();

/**
 * table[k] = 2^53 · P(|X| ≤ k) for X = round(N(0, σ²)) conditioned on |X| ≤ bound, where a sign bit splits the
 * mass of each k > 0 evenly. The masses come from Simpson integration of the normal density (error < 2^-60).
 */
function gaussianTable(sigma: number, bound: number): Float64Array {
  const key = `${sigma}:${bound}`;
  let table = gaussianTables.get(key);
  if (table) return table;
  const density = (x: number) => Math.exp((-x * x) / (2 * sigma * sigma));
  const integrate = (a: number, b: number) => {
    const steps = 4096;
    const h = (b - a) / steps;
    let sum = density(a) + density(b);
    for (let i = 1; i < steps; i++) sum += density(a + i * h) * (i % 2 === 1 ? 4 : 2);
    return (sum * h) / 3;
  };
  // With a sign bit choosing ±k, the k = 0 mass must be drawn as if from the folded distribution: P(|X| = 0) is
  // the mass of [−0.5, 0.5] and P(|X| = k) twice the mass of [k − 0.5, k + 0.5]; a sign bit on 0 keeps 0.
  const masses = new Float64Array(bound + 1);
  let total = 0;
  for (let k = 0; k <= bound; k++) {
    masses[k] = k === 0 ? integrate(-0.5, 0.5) : 2 * integrate(k - 0.5, k + 0.5);
    total += masses[k];
  }
  table = new Float64Array(bound + 1);
  let cumulative = 0;
  for (let k = 0; k <= bound; k++) {
    cumulative += masses[k];
    table[k] = Math.min(2 ** 53, Math.round((cumulative / total) * 2 ** 53));
  }
  table[bound] = 2 ** 53;
  gaussianTables.set(key, table);
  return table;
}

/**
 * Returns `n` samples of a discrete Gaussian: the distribution of a continuous normal of deviation `sigma`
 * rounded to the nearest integer, conditioned on |x| ≤ `bound`, drawn by inversion of its exact cumulative
 * table with one 53-bit uniform (two {@link Prng} words) per sample. The default bound, ⌊6σ⌋ (19 for σ = 3.2), matches SEAL's clipped normal.
 *
 * The table is built with `Math.exp`; an engine whose `Math.exp` differs in the last bit could move a table
 * entry by one unit of 2^-53, so a seed gives the same samples everywhere except with probability ~2^-50.
 *
 * @param sigma - a finite standard deviation > 0.
 * @param bound - an integer in [⌈σ⌉, 2^31 - 1].
 * @example
 * ```ts
 * const error = sampleGaussian(prng, 4096); // σ = 3.2, |e| <= 19
 * ```
 */
export function sampleGaussian(
  prng: Prng,
  n: number,
  sigma: number = DEFAULT_GAUSSIAN_SIGMA,
  bound: number = Math.floor(6 * sigma),
): Int32Array {
  assertPrng(prng);
  assertInteger(n, 'n', 1, MAX_SAMPLE_COUNT);
  assertFinite(sigma, 'sigma');
  check(sigma > 0, () => `sigma = ${sigma}: expected a standard deviation > 0`);
  // A bound below σ would reject most draws and no longer resemble a Gaussian.
  assertInteger(bound, 'bound', Math.ceil(sigma), 2 ** 31 - 1);
  // Cumulative-distribution-table sampling: one 53-bit uniform per sample against the exact distribution of
  // round(N(0, σ²)) clipped to |x| ≤ bound (about 20× faster than Box–Muller, same distribution).
  const table = gaussianTable(sigma, bound);
  const out = new Int32Array(n);
  const words = new Uint32Array(2 * n);
  prng.fillUint32(words);
  const last = table.length - 1;
  for (let i = 0; i < n; i++) {
    const high = words[2 * i];
    const low = words[2 * i + 1];
    const u = (high >>> 5) * 67108864 + (low >>> 6); // 27 + 26 bits, uniform in [0, 2^53)
    let k = 0;
    while (k < last && u >= table[k]) k++;
    out[i] = (low & 1) === 1 ? -k : k;
  }
  return out;
}

// Symmetric rounding keeps the distribution symmetric about 0 (Math.round sends -2.5 to -2 but 2.5 to 3).

/**
 * Writes small signed `values` into RNS form: limb `i` at `out[i * n, (i + 1) * n)` holds each value modulo
 * `moduli[i]` in [0, moduli[i]) (negative x becomes x + q), with n = `values.length`.
 *
 * @param moduli - each an integer in [2, 2^30].
 * @param out - a Uint32Array of exactly `moduli.length * values.length` words.
 * @example
 * ```ts
 * const e = sampleGaussian(prng, n);
 * const eRns = new Uint32Array(moduli.length * n);
 * signedToRns(e, moduli, eRns);
 * ```
 */
export function signedToRns(
  values: Int8Array | Int32Array,
  moduli: readonly number[],
  out: Uint32Array,
): void {
  if (!(values instanceof Int8Array || values instanceof Int32Array)) {
    throw new InvalidArgumentError(`values = ${describe(values)}: expected an Int8Array or Int32Array`);
  }
  assertModuli(moduli);
  assertUint32Array(out, 'out');
  const n = values.length;
  check(
    out.length === moduli.length * n,
    () =>
      `out.length = ${out.length}: expected moduli.length * values.length = ${moduli.length} * ${n} = ${moduli.length * n}`,
  );
  for (let limb = 0; limb < moduli.length; limb++) {
    const modulus = moduli[limb];
    const base = limb * n;
    for (let j = 0; j < n; j++) {
      const residue = values[j] % modulus;
      out[base + j] = residue < 0 ? residue + modulus : residue;
    }
  }
}
