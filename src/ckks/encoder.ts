import { CrtComposer } from '../ring/crt.ts';
import { reduceFloat } from '../ring/modarith.ts';
import { inttInPlace, nttInPlace } from '../ring/ops.ts';
import { Poly } from '../ring/poly.ts';
import { assertFinite, check, describe } from '../util/assert.ts';
import { InvalidArgumentError, MismatchError } from '../util/errors.ts';
import { SpecialFft } from './fft.ts';
import { Plaintext } from './objects.ts';
import type { Parameters } from './parameters.ts';

/**
 * Complex slot values as two parallel arrays.
 *
 * @example
 * ```ts
 * encoder.encodeNew({ re: [1, 0], im: [0, 1] }); // 1 and i
 * ```
 */
export interface ComplexValues {
  re: ArrayLike<number>;
  im: ArrayLike<number>;
}

/**
 * CKKS encoder: slot values (real or complex, up to N/2 of them) ↔ plaintext polynomials, through the canonical
 * embedding. Encoding is exact after rounding to integers — residues are reduced exactly even beyond 2^53 —
 * and decoding composes the RNS value exactly before converting to float.
 *
 * @example
 * ```ts
 * const encoder = new Encoder(params);
 * const pt = encoder.encodeNew([0.5, -1, 0.25]);
 * encoder.decode(pt).slice(0, 3); // ≈ [0.5, -1, 0.25]
 * ```
 */
export class Encoder {
  readonly params: Parameters;
  readonly #fft: SpecialFft;
  readonly #signedScratch: number;
  readonly #composers = new Map<number, CrtComposer>();
  /** Reused coefficient buffer of the encode path. */
  readonly #coefficients: Float64Array;

  constructor(params: Parameters) {
    this.params = params;
    this.#fft = new SpecialFft(params.logN);
    this.#signedScratch = this.params.context.allocator.alloc(params.n);
    this.#coefficients = new Float64Array(params.n);
  }

  /**
   * Encodes into a new plaintext at `level` (default: top) and `scale` (default: the level's canonical scale).
   *
   * @example
   * ```ts
   * const weights = encoder.encodeNew(row, 3, params.scaleAtLevel[3]);
   * ```
   */
  encodeNew(
    values: ArrayLike<number> | ComplexValues,
    level = this.params.depth,
    scale = this.params.scaleAtLevel[level],
  ): Plaintext {
    this.params.checkLevel(level);
    // Every limb is overwritten by encode, so the allocation skips zeroing.
    const poly = Poly.alloc(this.params.moduliAtLevel(level), false, false);
    const pt = new Plaintext(this.params, poly, level, scale);
    this.encode(values, pt);
    return pt;
  }

  /** Encodes into an existing plaintext, using its level and scale. */
  encode(values: ArrayLike<number> | ComplexValues, out: Plaintext): void {
    if (out.params !== this.params) {
      throw new MismatchError(
        `plaintext parameters ${out.parametersId} differ from the encoder's ${this.params.id}`,
      );
    }
    assertFinite(out.scale, 'scale');
    check(out.scale > 0, () => `scale = ${out.scale}: expected a positive number`);
    const { re, im } = splitValues(values, this.params.slots);
    const coefficients = this.#fft.slotsToCoefficients(re, im, out.scale, this.#coefficients);
    this.#toRns(coefficients, out.poly, out.level);
    nttInPlace(out.poly);
  }

  /**
   * Writes integer-rounded coefficients (given as float64 values) into the RNS polynomial, coefficient domain.
   * Throws if a value does not fit the level's modulus.
   */
  #toRns(coefficients: Float64Array, poly: Poly, level: number): void {
    const n = this.params.n;
    // One pass: round, track the largest magnitude, and stage the int32 image for the vectorized path.
    const signed = new Int32Array(
      this.params.context.view(this.#signedScratch, n).buffer,
      this.#signedScratch,
      n,
    );
    let maxAbs = 0;
    for (let k = 0; k < n; k++) {
      const v = Math.round(coefficients[k]);
      coefficients[k] = v;
      const a = v < 0 ? -v : v;
      if (a > maxAbs) maxAbs = a;
      signed[k] = v;
    }
    if (!Number.isFinite(maxAbs)) {
      throw new InvalidArgumentError(
        'encoded values × scale overflow float64: expected values far below 2^1000 / scale',
      );
    }
    const logQ = this.#logQ(level);
    if (maxAbs > 0 && Math.log2(maxAbs) >= logQ - 1) {
      throw new InvalidArgumentError(
        `values × scale reach 2^${Math.log2(maxAbs).toFixed(1)}: expected below 2^${(logQ - 1).toFixed(1)} ` +
          `(half the modulus at level ${level}); lower the scale or the values`,
      );
    }
    if (maxAbs < 2 ** 29) {
      // Every prime exceeds 2^29, so each residue is v or v + p: one vectorized pass per limb (a task each).
      const batch = this.params.context.batch(n * poly.limbCount);
      for (let i = 0; i < poly.limbCount; i++) {
        batch.task().fromSigned(poly.limbPointer(i), this.#signedScratch, n, poly.moduli[i].value);
      }
      batch.run();
    } else {
      for (let i = 0; i < poly.limbCount; i++) {
        const limb = poly.limb(i);
        const p = poly.moduli[i].value;
        for (let j = 0; j < n; j++) limb[j] = reduceFloat(coefficients[j], p);
      }
    }
    poly.isNtt = false;
  }

  readonly #logQs = new Map<number, number>();

  #logQ(level: number): number {
    let logQ = this.#logQs.get(level);
    if (logQ === undefined) {
      logQ = this.params.qPrimes
        .slice(0, this.params.limbsAtLevel(level))
        .reduce((sum, q) => sum + Math.log2(q), 0);
      this.#logQs.set(level, logQ);
    }
    return logQ;
  }

  /**
   * Decodes the real parts of all N/2 slots.
   *
   * @example
   * ```ts
   * const values = encoder.decode(decryptor.decryptNew(ct));
   * ```
   */
  decode(pt: Plaintext): Float64Array {
    return this.decodeComplex(pt).re;
  }

  /** Decodes all N/2 slots as complex values. */
  decodeComplex(pt: Plaintext): { re: Float64Array; im: Float64Array } {
    if (pt.params !== this.params) {
      throw new MismatchError(
        `plaintext parameters ${pt.parametersId} differ from the encoder's ${this.params.id}`,
      );
    }
    const poly = pt.poly.copy();
    if (poly.isNtt) inttInPlace(poly);
    const coefficients = new Float64Array(this.params.n);
    this.#composer(poly.limbCount).compose(poly, coefficients);
    poly.dispose();
    const inverseScale = 1 / pt.scale;
    for (let i = 0; i < coefficients.length; i++) coefficients[i] *= inverseScale;
    return this.#fft.coefficientsToSlots(coefficients);
  }

  #composer(limbs: number): CrtComposer {
    let composer = this.#composers.get(limbs);
    if (!composer) {
      composer = new CrtComposer(
        this.params.qPrimes.slice(0, limbs),
        this.params.context,
        this.params.basePrimes,
      );
      this.#composers.set(limbs, composer);
    }
    return composer;
  }
}

function splitValues(
  values: ArrayLike<number> | ComplexValues,
  slots: number,
): { re: ArrayLike<number>; im: ArrayLike<number> | undefined } {
  let re: ArrayLike<number>;
  let im: ArrayLike<number> | undefined;
  if (typeof values === 'object' && values !== null && 're' in values && 'im' in values) {
    re = values.re;
    im = values.im;
    check(
      re.length === im.length,
      () => `complex values: re.length = ${re.length} but im.length = ${im?.length}`,
    );
  } else if (
    typeof values === 'object' &&
    values !== null &&
    typeof (values as ArrayLike<number>).length === 'number'
  ) {
    re = values as ArrayLike<number>;
  } else {
    throw new InvalidArgumentError(
      `values = ${describe(values)}: expected an array of numbers or { re, im }`,
    );
  }
  check(re.length <= slots, () => `values.length = ${re.length}: expected at most ${slots} slots`);
  for (const [name, array] of [
    ['values', re],
    ['values.im', im],
  ] as const) {
    if (!array) continue;
    for (let i = 0; i < array.length; i++) {
      const v = array[i];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new InvalidArgumentError(`${name}[${i}] = ${describe(v)}: expected a finite number`);
      }
    }
  }
  return { re, im };
}
