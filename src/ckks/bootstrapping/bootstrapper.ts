import { BasisExtender } from '../../ring/base-conversion.ts';
import { galoisElementForConjugation, galoisElementForRotation } from '../../ring/galois.ts';
import { addPoly, addScalarPoly, inttInPlace, nttInPlace, scalarResidues } from '../../ring/ops.ts';
import { Poly } from '../../ring/poly.ts';
import type { Prng } from '../../ring/prng.ts';
import { InvalidArgumentError, MismatchError } from '../../util/errors.ts';
import { Evaluator } from '../evaluator.ts';
import { type GaloisKeySource, ResidentKeys, StashedKeys, withGaloisKeys } from '../key-source.ts';
import type { Stash } from '../stash.ts';
import { EvaluationKeys, type KeyGenerator, type SecretKey, type SwitchingKey } from '../keys.ts';
import { KeySwitcher } from '../keyswitch.ts';
import { LinearTransform } from '../linear-transform.ts';
import { Ciphertext, Plaintext } from '../objects.ts';
import type { Parameters } from '../parameters.ts';
import { coeffsToSlotsMaps, composeMaps, type DiagonalMap, pointwiseMap, slotsToCoeffsMaps } from './dft.ts';
import { type BootstrappingKeys, generateEncapsulationKeys } from './keys.ts';
import type { BootstrappingParameters } from './parameters.ts';

/**
 * Seconds spent in each step of the last bootstrapping (for benchmarks and characterisation).
 *
 * @example
 * ```ts
 * bootstrapper.lastTimings.evalMod; // seconds
 * ```
 */
export interface BootstrappingTimings {
  modRaise: number;
  coeffsToSlots: number;
  evalMod: number;
  slotsToCoeffs: number;
}

/**
 * The transforms of one parameter set as diagonal maps, built once per `BootstrappingParameters` (composing the
 * butterflies takes seconds at logN 16); each Bootstrapper makes its own `LinearTransform`s from them, which hold
 * its encoded diagonals (in kernel memory or in its stash).
 */
interface TransformPlan {
  coeffsToSlots: DiagonalMap[];
  /** SlotsToCoeffs for Δ₀ (its last factor is q0/(2πΔ₀)), made when first needed. */
  slotsToCoeffs?: DiagonalMap[];
  /** Rotation steps of the sub-sum that projects onto the sparse subring (empty for full slots). */
  subSumSteps: number[];
  /**
   * R: the raised ciphertext is declared at scale R·S_top with R ≈ q0/S_top, so that its slots are ≈ t/q0 and
   * CoeffsToSlots needs no tiny constants (encoded at ≈ 2^60, a constant of 2^-11 would keep only 49 bits and
   * the error would grow with N). R = S_c/M for the integer M that then brings R·S_c back to S_{c−1}.
   */
  raisedRatio: number;
  /** M, the integer of that normalization. */
  normalizer: number;
  /** Each rotation step with the highest level it is used at (computed once). */
  rotationLevels?: Map<number, number>;
}

const plans = new WeakMap<BootstrappingParameters, TransformPlan>();

/**
 * CKKS bootstrapping (Cheon, Han, Kim, Kim and Song, 2018, with the improvements Lattigo and OpenFHE use): a
 * ciphertext at level 0 comes back at level `levelsLeft` holding the same slots.
 *
 * 1. **Scale-up and encapsulation.** The input is dropped to level 0 and multiplied by an integer so that its
 *    scale is Δ ≈ q0/2^messageRatioBits, then switched from the dense secret to an ephemeral sparse one
 *    ({@link DenseToSparseKey}).
 * 2. **ModRaise.** Its centred coefficients, read modulo the whole chain Q, decrypt to t = Δ·m + e + q0·I with
 *    |I| small because the secret is sparse; it is switched back to the dense secret at the top level.
 * 3. **Sub-sum** (fewer slots only): log2(N/2n) rotations project onto the subring of the n slots.
 * 4. **CoeffsToSlots**: the inverse special FFT, factored into butterflies merged into `coeffsToSlotsLevels`
 *    BSGS transforms with hoisted baby rotations, puts t/(q0·K′) into the slots; one level of an exact integer
 *    product brings its scale back to the canonical one; real and imaginary halves go to two ciphertexts (full
 *    slots) or to one (fewer slots), split with one conjugation.
 * 5. **EvalMod** ({@link EvalMod}) turns each slot into sin(2π·t/q0) ≈ 2π(Δ·m + e)/q0.
 * 6. **SlotsToCoeffs**: the special FFT back, times q0/(2πΔ), gives m at the canonical scale of `levelsLeft`.
 *
 * Every transform's constants are spread over its levels, and every level holds two 30-bit primes, so each
 * intermediate scale is ≈ 2^60.
 *
 * @example
 * ```ts
 * const bp = BootstrappingParameters.create({ logN: 16 });
 * const keys = Bootstrapper.generateKeys(bp, keygen, secretKey);
 * const fresh = new Bootstrapper(bp, keys).bootstrapNew(ct);
 * ```
 */
export class Bootstrapper {
  readonly parameters: BootstrappingParameters;
  readonly params: Parameters;
  readonly keys: BootstrappingKeys;
  /** The evaluator with the relinearization key only; Galois keys join it phase by phase. */
  readonly evaluator: Evaluator;
  /** Phase times of the last {@link bootstrapNew}, seconds. */
  lastTimings: BootstrappingTimings = { modRaise: 0, coeffsToSlots: 0, evalMod: 0, slotsToCoeffs: 0 };
  readonly #extender: BasisExtender;
  readonly #halfQ0: { base: ReturnType<typeof scalarResidues>; others: ReturnType<typeof scalarResidues> };
  readonly #stash: Stash | undefined;
  readonly #plan: TransformPlan;
  readonly #coeffsToSlots: LinearTransform[];
  /** SlotsToCoeffs (for Δ₀, whatever the input's Δ: the result's scale absorbs the ratio), made when first needed. */
  #slotsToCoeffs: LinearTransform[] | undefined;

  /**
   * @param options.stash - where the transforms' encoded diagonals wait between uses (default: the keys' stash
   *   when they are stashed, else none: the diagonals stay in kernel memory).
   */
  constructor(parameters: BootstrappingParameters, keys: BootstrappingKeys, options: { stash?: Stash } = {}) {
    this.parameters = parameters;
    this.#stash = options.stash ?? (keys.galois instanceof StashedKeys ? keys.galois.stash : undefined);
    this.params = parameters.params;
    this.keys = keys;
    const params = this.params;
    params.checkSame(keys.relinearization.params, 'bootstrapping keys: relinearization');
    params.checkSame(keys.galois.params, 'bootstrapping keys: Galois keys');
    params.checkSame(keys.sparseToDense.params, 'bootstrapping keys: sparse → dense');
    params.checkSame(keys.denseToSparse.params, 'bootstrapping keys: dense → sparse');
    this.evaluator = new Evaluator(params, new EvaluationKeys(keys.relinearization));
    this.#plan = planOf(parameters);
    this.#coeffsToSlots = this.#plan.coeffsToSlots.map((m) => new LinearTransform(params, m));
    const base = params.moduliAtLevel(0);
    const others = params.moduliAtLevel(params.depth).slice(base.length);
    this.#extender = new BasisExtender(base, others);
    const q0 = base.reduce((product, m) => product * BigInt(m.value), 1n);
    const half = q0 / 2n;
    this.#halfQ0 = {
      base: scalarResidues(base, (m) => Number(half % BigInt(m.value))),
      others: scalarResidues(others, (m) =>
        Number((BigInt(m.value) - (half % BigInt(m.value))) % BigInt(m.value)),
      ),
    };
    const have = new Set(keys.galois.galoisElements);
    const missing = Bootstrapper.rotationsNeeded(parameters).filter(
      (step) => !have.has(galoisElementForRotation(step, params.logN)),
    );
    if (missing.length > 0 || !have.has(galoisElementForConjugation(params.logN))) {
      throw new MismatchError(
        `bootstrapping keys lack ${missing.length > 0 ? `the rotations ${missing.join(', ')}` : 'conjugation'}: ` +
          'make them with Bootstrapper.generateKeys',
      );
    }
  }

  /**
   * The rotation steps bootstrapping uses (conjugation is needed too), each with the highest level it is used at,
   * so that keys used only low in the chain are made smaller.
   */
  static rotationLevels(parameters: BootstrappingParameters): Map<number, number> {
    const plan = planOf(parameters);
    if (plan.rotationLevels) return new Map(plan.rotationLevels);
    const params = parameters.params;
    const levels = new Map<number, number>();
    const note = (step: number, level: number) => levels.set(step, Math.max(levels.get(step) ?? 0, level));
    const top = parameters.topLevel;
    for (const step of plan.subSumSteps) note(step, top);
    // The steps depend on the diagonals' indices only, so transforms made just to read them are enough.
    plan.coeffsToSlots.forEach((map, i) => {
      for (const step of new LinearTransform(params, map).rotationsNeeded()) note(step, top - i);
    });
    const stcTop = parameters.levelsLeft + parameters.slotsToCoeffsLevels;
    slotsToCoeffsMapsOf(parameters).forEach((map, i) => {
      for (const step of new LinearTransform(params, map).rotationsNeeded()) note(step, stcTop - i);
    });
    plan.rotationLevels = levels;
    return new Map(levels);
  }

  /**
   * Kernel memory one bootstrapping holds at its peak when its Galois keys and diagonals wait in a stash, an upper
   * bound: the largest transform's working set — its baby steps' keys (they come in together; each giant step's
   * alone after them), as many rotated ciphertexts, the hoisted decomposition, and its encoded diagonals — plus the
   * relinearization key and four ciphertexts of the top level. A runtime keeps this much of its kernel memory free
   * while a bootstrap runs.
   */
  static workingSetBytes(parameters: BootstrappingParameters): number {
    const params = parameters.params;
    const plan = planOf(parameters);
    const top = parameters.topLevel;
    const stcTop = parameters.levelsLeft + parameters.slotsToCoeffsLevels;
    let largest = 0;
    const consider = (map: DiagonalMap, level: number) => {
      const lt = new LinearTransform(params, map);
      const babies = lt.babyRotations().length;
      const key = params.switchingKeyBytes(level);
      const ct = params.ciphertextBytes(level, 1);
      const bytes = babies * key + key / 2 + (babies + 3) * ct + lt.diagonals.size * (ct / 2);
      largest = Math.max(largest, bytes);
    };
    plan.coeffsToSlots.forEach((map, i) => {
      consider(map, top - i);
    });
    slotsToCoeffsMapsOf(parameters).forEach((map, i) => {
      consider(map, stcTop - i);
    });
    return largest + params.switchingKeyBytes(params.depth) + 4 * params.ciphertextBytes(params.depth, 1);
  }

  /**
   * The evaluation keys each phase of a bootstrapping uses: `touched`, the bytes of every key it uses, and `peak`,
   * the most it holds at once when the keys wait in a stash (a transform's baby-step keys together, its giant steps
   * one at a time). ModRaise: the dense → sparse and sparse → dense keys and the sub-sum's rotations; EvalMod: the
   * relinearization key. What the memory hierarchy must move per bootstrap, phase by phase.
   */
  static phaseKeyBytes(
    parameters: BootstrappingParameters,
  ): Record<keyof BootstrappingTimings, { touched: number; peak: number }> {
    const params = parameters.params;
    const plan = planOf(parameters);
    const top = parameters.topLevel;
    const stcTop = parameters.levelsLeft + parameters.slotsToCoeffsLevels;
    const transforms = (maps: readonly DiagonalMap[], first: number, extra: number) => {
      let touched = extra;
      let peak = extra;
      maps.forEach((map, i) => {
        const lt = new LinearTransform(params, map);
        const key = params.switchingKeyBytes(first - i);
        const babies = lt.babyRotations().length;
        const steps = lt.rotationsNeeded().length;
        touched += steps * key;
        peak = Math.max(peak, extra + Math.max(babies, steps > babies ? 1 : 0) * key);
      });
      return { touched, peak };
    };
    // The encapsulation keys live over q0 (dense → sparse) and the whole chain (sparse → dense).
    const encapsulation = params.switchingKeyBytes(0) + params.switchingKeyBytes(top);
    const subSum = plan.subSumSteps.length * params.switchingKeyBytes(top);
    const conjugation = params.switchingKeyBytes(top - parameters.coeffsToSlotsLevels - 1);
    const coeffsToSlots = transforms(plan.coeffsToSlots, top, 0);
    return {
      modRaise: {
        touched: encapsulation + subSum,
        peak: Math.max(encapsulation, params.switchingKeyBytes(top)),
      },
      coeffsToSlots: {
        touched: coeffsToSlots.touched + conjugation,
        peak: Math.max(coeffsToSlots.peak, conjugation),
      },
      evalMod: {
        touched: params.switchingKeyBytes(params.depth),
        peak: params.switchingKeyBytes(params.depth),
      },
      slotsToCoeffs: transforms(slotsToCoeffsMapsOf(parameters), stcTop, 0),
    };
  }

  /** The rotation steps bootstrapping needs (ascending); conjugation is needed too. */
  static rotationsNeeded(parameters: BootstrappingParameters): number[] {
    return [...Bootstrapper.rotationLevels(parameters).keys()].sort((a, b) => a - b);
  }

  /**
   * Makes every key bootstrapping needs from the client's secret key: relinearization, the Galois keys at the
   * levels they are used, and the encapsulation keys of a fresh ephemeral secret.
   *
   * @example
   * ```ts
   * const keys = Bootstrapper.generateKeys(bp, new KeyGenerator(bp.params), secretKey);
   * ```
   */
  static generateKeys(
    parameters: BootstrappingParameters,
    keygen: KeyGenerator,
    secretKey: SecretKey,
    options: {
      prng?: Prng;
      keyMemory?: 'kernel' | 'stash';
      stash?: Stash;
      /** A relinearization key of `secretKey` made already (shared, not copied); default: a new one. */
      relinearization?: SwitchingKey;
    } = {},
  ): BootstrappingKeys {
    const params = parameters.params;
    params.checkSame(secretKey.params, 'bootstrapping keys: secret key');
    const rotationLevels = Bootstrapper.rotationLevels(parameters);
    const keyLevels = new Map<number, number>();
    for (const [step, level] of rotationLevels)
      keyLevels.set(galoisElementForRotation(step, params.logN), level);
    const conjugationLevel = parameters.topLevel - parameters.coeffsToSlotsLevels - 1;
    keyLevels.set(galoisElementForConjugation(params.logN), conjugationLevel);
    let galoisBytes = params.switchingKeyBytes(conjugationLevel);
    for (const level of rotationLevels.values()) galoisBytes += params.switchingKeyBytes(level);
    // Beyond a quarter of kernel memory the keys wait in a stash (host memory unless one is given) and come in a
    // few at a time.
    const keyMemory = options.keyMemory ?? (options.stash || galoisBytes > 2 ** 30 ? 'stash' : 'kernel');
    const keyOptions = {
      rotations: [...rotationLevels.keys()],
      conjugation: true,
      keyLevels,
      relinearization: false,
    };
    const galois: GaloisKeySource =
      keyMemory === 'stash'
        ? StashedKeys.fromStream(params, keygen.streamEvaluationKeys(secretKey, keyOptions), options.stash)
        : new ResidentKeys(params, keygen.generateEvaluationKeys(secretKey, keyOptions));
    const encapsulation = generateEncapsulationKeys(
      params,
      keygen,
      secretKey,
      parameters.ephemeralHammingWeight,
      options.prng,
    );
    const relinearization = options.relinearization ?? keygen.generateRelinearizationKey(secretKey);
    params.checkSame(relinearization.params, 'bootstrapping keys: relinearization');
    return { relinearization, galois, ...encapsulation };
  }

  /** Runs `f` with an evaluator holding the Galois keys of `steps` (and of conjugation if asked), then lets them go. */
  #withGalois<T>(steps: readonly number[], conjugation: boolean, f: (evaluator: Evaluator) => T): T {
    const logN = this.params.logN;
    const elements = steps.map((s) => galoisElementForRotation(s, logN));
    if (conjugation) elements.push(galoisElementForConjugation(logN));
    return withGaloisKeys(this.keys.galois, this.evaluator, elements, f);
  }

  /**
   * Bootstraps `ct` (degree 1, any level, slots within `parameters.slots`, |values| ≤ `bound`, an integer, default 1):
   * a new ciphertext at level `levelsLeft` holding the same values, at the scale {@link bootstrapResultScale} gives:
   * the canonical scale of `levelsLeft` times Δ/Δ₀, where Δ is the scale the input reached by its integer scale-up
   * and Δ₀ the one SlotsToCoeffs was built for (within 1/(2·factor) of 1, factor the integer of the scale-up;
   * exactly 1 for an input at level 0's canonical scale). The input is read as values / bound, so that the sine of EvalMod sees them within its range, and the
   * result is multiplied back by the integer `bound` (no level): one set of SlotsToCoeffs diagonals serves every
   * input scale and bound, and the result's scale stays canonical, as a polynomial evaluated after it needs (its
   * squarings double a scale's deviation at every level).
   *
   * @throws {InvalidArgumentError} when ct's scale times `bound` is above q0/2^messageRatioBits (no integer
   *   scale-up reaches Δ), or `bound` is not an integer ≥ 1.
   */
  bootstrapNew(
    ct: Ciphertext,
    options: {
      bound?: number;
      trace?: (step: 'modRaise' | 'coeffsToSlots' | 'evalMod', values: readonly Ciphertext[]) => void;
    } = {},
  ): Ciphertext {
    const trace = options.trace;
    const params = this.params;
    params.checkSame(ct.params, 'bootstrap: ciphertext');
    if (ct.degree !== 1) {
      throw new MismatchError(`bootstrap: ciphertext of degree ${ct.degree}: expected 1 (relinearize first)`);
    }
    const bp = this.parameters;
    const ev = this.evaluator;
    const { factor, delta, scale: resultScale } = bootstrapResultScale(bp, ct.scale, options.bound ?? 1);
    let start = performance.now();
    const lap = (): number => {
      const now = performance.now();
      const seconds = (now - start) / 1000;
      start = now;
      return seconds;
    };
    const low = ev.dropLevelNew(ct, 0);
    ev.mulInt(low, factor, low);
    // Read as values / bound at scale Δ (the same coefficients).
    low.scale = delta;
    const sparse = this.keys.denseToSparse.switchNew(low);
    low.dispose();
    let x = this.#modRaise(sparse);
    sparse.dispose();
    const t = this.#plan;
    for (const step of t.subSumSteps) {
      const rotated = this.#withGalois([step], false, (e) => e.rotateNew(x, step));
      ev.add(x, rotated, x);
      rotated.dispose();
    }
    trace?.('modRaise', [x]);
    const modRaise = lap();
    for (const lt of this.#coeffsToSlots) x = replace(x, this.#transform(lt, x));
    // x carries the scale R·S_c: one exact integer product and a rescale bring it to the canonical S_{c−1}.
    ev.mul(x, 1, x, t.normalizer);
    ev.rescale(x, x);
    const conjugate = this.#withGalois([], true, (e) => e.conjugateNew(x));
    const parts: Ciphertext[] = [];
    if (bp.slots === params.slots) {
      parts.push(ev.addNew(x, conjugate));
      const imaginary = ev.subNew(x, conjugate);
      const minusI = this.#monomial(imaginary.level, -1);
      ev.mul(imaginary, minusI, imaginary);
      minusI.dispose();
      parts.push(imaginary);
    } else parts.push(ev.addNew(x, conjugate));
    conjugate.dispose();
    x.dispose();
    trace?.('coeffsToSlots', parts);
    const coeffsToSlots = lap();
    const reduced = parts.map((part) => replace(part, bp.evalMod.evaluateNew(ev, part)));
    trace?.('evalMod', reduced);
    const evalMod = lap();
    let y = reduced[0];
    if (reduced.length === 2) {
      const plusI = this.#monomial(reduced[1].level, 1);
      ev.mul(reduced[1], plusI, reduced[1]);
      plusI.dispose();
      ev.add(y, reduced[1], y);
      reduced[1].dispose();
    }
    this.#slotsToCoeffs ??= slotsToCoeffsMapsOf(bp).map((m) => new LinearTransform(params, m));
    for (const lt of this.#slotsToCoeffs) y = replace(y, this.#transform(lt, y));
    this.lastTimings = { modRaise, coeffsToSlots, evalMod, slotsToCoeffs: lap() };
    // Every step kept the canonical scale; only float rounding of the rescales remains, which this drops. The
    // slots hold (values / bound)·Δ/Δ₀ at that scale: times the integer bound, the values at the result scale.
    const canonical = params.scaleAtLevel[y.level];
    if (Math.abs(y.scale / canonical - 1) > 2 ** -40) {
      throw new MismatchError(`bootstrap: result scale ${y.scale} drifted from the canonical ${canonical}`);
    }
    const bound = options.bound ?? 1;
    if (bound !== 1) ev.mulInt(y, bound, y);
    y.scale = resultScale;
    return y;
  }

  /**
   * Frees the transforms' encoded diagonals (kernel memory, and their entries in the stash). The keys are the
   * caller's.
   */
  dispose(): void {
    for (const lt of this.#coeffsToSlots) lt.dispose();
    for (const lt of this.#slotsToCoeffs ?? []) lt.dispose();
    this.#slotsToCoeffs = undefined;
  }

  /** lt(x), rescaled: one level down at the canonical scale. */
  #transform(lt: LinearTransform, x: Ciphertext): Ciphertext {
    const out = lt.evaluateNew(this.evaluator, x, { keys: this.keys.galois });
    if (this.#stash) lt.offload(this.#stash);
    this.evaluator.rescale(out, out);
    return out;
  }

  /** The plaintext ±X^{N/2} at `level`, scale 1: it multiplies every slot by ±i exactly. */
  #monomial(level: number, sign: 1 | -1): Plaintext {
    const moduli = this.params.moduliAtLevel(level);
    const poly = Poly.alloc(moduli, false);
    const half = this.params.n / 2;
    for (let i = 0; i < moduli.length; i++) poly.limb(i)[half] = sign === 1 ? 1 : moduli[i].value - 1;
    nttInPlace(poly);
    return new Plaintext(this.params, poly, level, 1);
  }

  /**
   * ModRaise: the level-0 ciphertext's coefficients, centred in (−q0/2, q0/2], extended exactly to every prime
   * of the top level (add ⌊q0/2⌋, extend the representative in [0, q0), subtract ⌊q0/2⌋); then the switch from
   * the ephemeral secret back to the dense one. Declared scale: the canonical top scale.
   */
  #modRaise(ct: Ciphertext): Ciphertext {
    const params = this.params;
    const n = params.n;
    const top = params.depth;
    const base = params.moduliAtLevel(0);
    const all = params.moduliAtLevel(top);
    const allocator = params.context.allocator;
    const scratchWords = (base.length + 1) * n;
    const scratch = allocator.alloc(scratchWords);
    const raised: Poly[] = [];
    try {
      for (const poly of ct.polys) {
        const shifted = poly.copy();
        inttInPlace(shifted);
        const out = Poly.alloc(all, false, false);
        for (let i = 0; i < base.length; i++) out.limb(i).set(shifted.limb(i));
        addScalarPoly(shifted, this.#halfQ0.base, shifted);
        this.#extender.extendExact(
          (i) => shifted.limbPointer(i),
          (j) => out.limbPointer(base.length + j),
          n,
          scratch,
        );
        shifted.dispose();
        const batch = params.context.batch(n * (all.length - base.length));
        for (let j = base.length; j < all.length; j++) {
          const c = this.#halfQ0.others;
          batch
            .task()
            .addScalar(out.limbPointer(j), out.limbPointer(j), n, all[j].value, c.values[j - base.length]);
        }
        batch.run();
        nttInPlace(out);
        raised.push(out);
      }
    } finally {
      allocator.free(scratch, scratchWords);
    }
    const [c0, c1] = raised;
    const [d0, d1] = KeySwitcher.for(params).switchKey(c1, this.keys.sparseToDense, top);
    c1.dispose();
    addPoly(c0, d0, c0);
    d0.dispose();
    return new Ciphertext(params, [c0, d1], top, params.scaleAtLevel[top] * this.#plan.raisedRatio);
  }
}

/** q0, the product of the level-0 primes, as a float (≈ 2^89.9; its rounding is far below every error here). */
function baseModulus(params: Parameters): number {
  return params.moduliAtLevel(0).reduce((product, m) => product * m.value, 1);
}

/** Disposes `old` and returns `next` (for chains of ciphertext steps). */
function replace(old: Ciphertext, next: Ciphertext): Ciphertext {
  if (old !== next) old.dispose();
  return next;
}

function planOf(bp: BootstrappingParameters): TransformPlan {
  let t = plans.get(bp);
  if (t) return t;
  const params = bp.params;
  const slots = params.slots;
  const period = bp.slots;
  const gap = slots / period;
  const k = bp.evalMod.bound + 1;
  const q0 = baseModulus(params);
  // Slots of the raised ciphertext hold F(gap·w)/S_top; the split halves come out as t/(q0·K′).
  const full = period === slots;
  const top = params.depth;
  const afterCoeffsToSlots = params.scaleAtLevel[top - bp.coeffsToSlotsLevels];
  const normalizer = Math.round((afterCoeffsToSlots * params.scaleAtLevel[top]) / q0);
  const raisedRatio = afterCoeffsToSlots / normalizer;
  const factor = (params.scaleAtLevel[top] * raisedRatio) / (q0 * k * gap) / (full ? 2 : 1);
  const maps = coeffsToSlotsMaps(slots, period, bp.coeffsToSlotsLevels, factor);
  if (!full) {
    // Pack: slots with i mod 2n < n keep Re, the others Im (×1/(2i) before adding the conjugate).
    const pack = pointwiseMap(slots, (i) => (i % (2 * period) < period ? [0.5, 0] : [0, -0.5]));
    maps[maps.length - 1] = composeMaps(pack, maps[maps.length - 1], slots);
  }
  const subSumSteps: number[] = [];
  for (let step = period; step < slots; step *= 2) subSumSteps.push(step);
  t = {
    coeffsToSlots: maps,
    subSumSteps,
    raisedRatio,
    normalizer,
  };
  plans.set(bp, t);
  return t;
}

/** Δ₀: the Δ of an input at level 0 with its canonical scale, which SlotsToCoeffs is built for. */
function canonicalDelta(bp: BootstrappingParameters): number {
  const params = bp.params;
  const q0 = baseModulus(params);
  const scale = params.scaleAtLevel[0];
  return scale * Math.round(q0 / (2 ** bp.messageRatioBits * scale));
}

/**
 * What {@link Bootstrapper.bootstrapNew} does with an input of scale `inputScale` and values within ±`bound`: the
 * integer `factor` of its scale-up, the scale Δ that reaches (the input read as values / bound), and the scale of
 * the result at `levelsLeft` (the canonical one times Δ/Δ₀, within 1/(2·factor) of it). The compiler sizes bootstrap
 * instructions with it.
 *
 * @throws {InvalidArgumentError} when no integer scale-up reaches q0/2^messageRatioBits, or `bound` is not an
 *   integer ≥ 1.
 * @example
 * ```ts
 * const { scale } = bootstrapResultScale(bp, ct.scale, 8);
 * ```
 */
export function bootstrapResultScale(
  bp: BootstrappingParameters,
  inputScale: number,
  bound: number,
): { factor: number; delta: number; scale: number } {
  if (!(Number.isSafeInteger(bound) && bound >= 1)) {
    throw new InvalidArgumentError(`bootstrap: bound = ${bound}: expected an integer ≥ 1`);
  }
  const params = bp.params;
  const q0 = baseModulus(params);
  const read = inputScale * bound;
  const factor = Math.round(q0 / (2 ** bp.messageRatioBits * read));
  if (!(factor >= 1) || factor > 2 ** 40) {
    throw new InvalidArgumentError(
      `bootstrap: ciphertext scale 2^${Math.log2(inputScale).toFixed(1)} × bound ${bound}: expected between ` +
        `2^${(Math.log2(q0) - bp.messageRatioBits - 40).toFixed(1)} and ` +
        `2^${(Math.log2(q0) - bp.messageRatioBits).toFixed(1)} (q0 / 2^messageRatioBits)`,
    );
  }
  const delta = read * factor;
  const canonical = params.scaleAtLevel[bp.levelsLeft];
  const ratio = delta / canonicalDelta(bp);
  return { factor, delta, scale: ratio === 1 ? canonical : canonical * ratio };
}

/** The SlotsToCoeffs maps for Δ₀ (cached in the plan). */
function slotsToCoeffsMapsOf(bp: BootstrappingParameters): DiagonalMap[] {
  const plan = planOf(bp);
  if (plan.slotsToCoeffs) return plan.slotsToCoeffs;
  const params = bp.params;
  const slots = params.slots;
  const period = bp.slots;
  const maps = slotsToCoeffsMaps(
    slots,
    period,
    bp.slotsToCoeffsLevels,
    baseModulus(params) / (2 * Math.PI * canonicalDelta(bp)),
  );
  if (period < slots) maps[0] = composeMaps(maps[0], unpackMap(slots, period), slots);
  plan.slotsToCoeffs = maps;
  return maps;
}

/** Real halves (Re in i mod 2n < n, Im in the rest) → the n-periodic complex vector Re + i·Im. */
function unpackMap(slots: number, period: number): DiagonalMap {
  const first = (i: number) => i % (2 * period) < period;
  const map: DiagonalMap = new Map();
  const d = (f: (i: number) => [number, number]) =>
    pointwiseMap(slots, f).get(0) as { re: Float64Array; im: Float64Array };
  map.set(
    0,
    d((i) => (first(i) ? [1, 0] : [0, 1])),
  );
  map.set(
    period,
    d((i) => (first(i) ? [0, 1] : [0, 0])),
  );
  map.set(
    slots - period,
    d((i) => (first(i) ? [0, 0] : [1, 0])),
  );
  return map;
}
