import { assertInteger, check } from '../../util/assert.ts';
import { SecurityError } from '../../util/errors.ts';
import type { KernelContext } from '../../ring/context.ts';
import { Parameters } from '../parameters.ts';
import { maxLogQP128 } from '../security.ts';
import { EvalMod } from './eval-mod.ts';

/**
 * A plain description of a bootstrappable CKKS parameter set, turned into checked, immutable
 * {@link BootstrappingParameters} by `BootstrappingParameters.create` (Lattigo's `bootstrapping.ParametersLiteral`).
 *
 * @example
 * ```ts
 * const literal: BootstrappingParametersLiteral = { logN: 16, levelsLeft: 8 };
 * ```
 */
export interface BootstrappingParametersLiteral {
  /** log2 of the ring degree. */
  logN: number;
  /** Slots bootstrapped: a power of two ≤ N/2 (default N/2). Fewer slots: one EvalMod instead of two. */
  slots?: number;
  /** Levels left for computation after bootstrapping (default 8). */
  levelsLeft?: number;
  /** Levels of CoeffsToSlots and of SlotsToCoeffs (default 3 each). */
  coeffsToSlotsLevels?: number;
  slotsToCoeffsLevels?: number;
  /**
   * k = log2(q0/Δ): the message sits this many bits below q0 during the reduction. Default ⌈14.25 − log2(slots)/2⌉
   * (7 for the 2^15 slots of logN 16): larger k, smaller cubic error of the sine but more noise
   * (docs/bootstrapping.md).
   */
  messageRatioBits?: number;
  /** Hamming weight of the ephemeral sparse secret (default 32). */
  ephemeralHammingWeight?: number;
  /** K, the overflow bound of the reduction (default 16 for the default weight 32; see EvalMod). */
  bound?: number;
  /** Double-angle steps of EvalMod (default 2: a degree-59 interpolant, 8 levels in all). */
  doubleAngle?: number;
  /** Allow a chain above the 128-bit bound (small ring degrees, for tests; prints a warning). */
  insecure?: boolean;
}

/**
 * Checked bootstrapping parameters: the CKKS parameters (a dense ternary secret, two 30-bit primes per level so
 * every scale is ≈ 2^60, three base primes for q0) and the shape of each bootstrapping step.
 *
 * The chain, from the top: CoeffsToSlots, one level that normalizes its scale, EvalMod, SlotsToCoeffs, then `levelsLeft` levels for the user, then
 * q0. The key-switching split is the fewest digits (dnum) whose Q·P stays within the 128-bit bound of the HE
 * standard for a ternary secret: more digits mean a smaller P and larger keys.
 *
 * @example
 * ```ts
 * const bp = BootstrappingParameters.create({ logN: 16 });
 * bp.params.depth; // 23
 * ```
 */
export class BootstrappingParameters {
  readonly params: Parameters;
  readonly slots: number;
  readonly levelsLeft: number;
  readonly coeffsToSlotsLevels: number;
  readonly slotsToCoeffsLevels: number;
  readonly messageRatioBits: number;
  readonly ephemeralHammingWeight: number;
  readonly evalMod: EvalMod;
  readonly literal: Readonly<BootstrappingParametersLiteral>;

  private constructor(
    params: Parameters,
    literal: Required<Omit<BootstrappingParametersLiteral, 'insecure' | 'bound' | 'doubleAngle'>>,
    evalMod: EvalMod,
    original: BootstrappingParametersLiteral,
  ) {
    this.params = params;
    this.slots = literal.slots;
    this.levelsLeft = literal.levelsLeft;
    this.coeffsToSlotsLevels = literal.coeffsToSlotsLevels;
    this.slotsToCoeffsLevels = literal.slotsToCoeffsLevels;
    this.messageRatioBits = literal.messageRatioBits;
    this.ephemeralHammingWeight = literal.ephemeralHammingWeight;
    this.evalMod = evalMod;
    this.literal = Object.freeze({ ...original });
    Object.freeze(this);
  }

  /** The level bootstrapping starts from (the top): CoeffsToSlots runs here. */
  get topLevel(): number {
    return this.params.depth;
  }

  /**
   * Checks the literal and builds the chain.
   *
   * @throws {SecurityError} when no digit count keeps Q·P within the 128-bit bound (and `insecure` is unset).
   */
  static create(
    literal: BootstrappingParametersLiteral,
    options: { context?: KernelContext } = {},
  ): BootstrappingParameters {
    assertInteger(literal.logN, 'logN', 4, 17);
    const n = 2 ** literal.logN;
    const slots = literal.slots ?? n / 2;
    assertInteger(slots, 'slots', 2, n / 2);
    check((slots & (slots - 1)) === 0, () => `slots = ${slots}: expected a power of two`);
    const levelsLeft = literal.levelsLeft ?? 8;
    assertInteger(levelsLeft, 'levelsLeft', 0, 60);
    const stages = Math.log2(slots);
    const coeffsToSlotsLevels = Math.min(literal.coeffsToSlotsLevels ?? 3, stages);
    const slotsToCoeffsLevels = Math.min(literal.slotsToCoeffsLevels ?? 3, stages);
    assertInteger(coeffsToSlotsLevels, 'coeffsToSlotsLevels', 1, stages);
    assertInteger(slotsToCoeffsLevels, 'slotsToCoeffsLevels', 1, stages);
    // The coefficients of n uniform slot values are ≈ 2^-(log2 n)/2: this k keeps the cubic error of the sine
    // near 2^-25 for them while the noise, multiplied by 2^k, stays as small as it can (docs/bootstrapping.md).
    const messageRatioBits = literal.messageRatioBits ?? Math.ceil(14.25 - Math.log2(slots) / 2);
    assertInteger(messageRatioBits, 'messageRatioBits', 4, 28);
    const ephemeralHammingWeight = literal.ephemeralHammingWeight ?? 32;
    assertInteger(ephemeralHammingWeight, 'ephemeralHammingWeight', 2, n);
    const evalMod = EvalMod.create({ bound: literal.bound ?? 16, doubleAngle: literal.doubleAngle ?? 2 });
    // One level after CoeffsToSlots normalizes its scale (see Bootstrapper).
    const depth = levelsLeft + slotsToCoeffsLevels + evalMod.levels + 1 + coeffsToSlotsLevels;
    const params = chooseChain(literal.logN, depth, literal.insecure === true, options.context);
    return new BootstrappingParameters(
      params,
      {
        logN: literal.logN,
        slots,
        levelsLeft,
        coeffsToSlotsLevels,
        slotsToCoeffsLevels,
        messageRatioBits,
        ephemeralHammingWeight,
      },
      evalMod,
      literal,
    );
  }
}

/**
 * Two primes per level, three base primes, dense ternary secret; the fewest digits within the bound (insecure
 * sets, for tests at small ring degrees, take four special primes).
 */
function chooseChain(
  logN: number,
  depth: number,
  insecure: boolean,
  context: KernelContext | undefined,
): Parameters {
  const basePrimes = 3;
  const qCount = basePrimes + 2 * depth;
  const create = (specialPrimes: number) =>
    Parameters.create(
      {
        logN,
        depth,
        primesPerLevel: 2,
        basePrimes,
        specialPrimes,
        secret: { kind: 'ternary' },
        insecure,
      },
      { context },
    );
  if (insecure) return create(Math.min(4, qCount));
  const bound = maxLogQP128(logN) ?? 0;
  for (let digits = 1; digits <= qCount; digits++) {
    const specialPrimes = Math.ceil(qCount / digits);
    // Every prime exceeds 2^29.8: skip splits that cannot fit before building them.
    if (29.8 * (qCount + specialPrimes) > bound) continue;
    try {
      return create(specialPrimes);
    } catch (error) {
      if (!(error instanceof SecurityError)) throw error;
    }
  }
  throw new SecurityError(
    `bootstrapping at logN = ${logN} needs depth ${depth} (${qCount} primes of Q), which exceeds the 128-bit ` +
      `bound log2(QP) ≤ ${bound} for every key-switching split: fewer levelsLeft, or insecure: true (not secure)`,
  );
}
