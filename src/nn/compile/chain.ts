/**
 * The modulus chain the emitter works against: real parameters, or the stand-in of the depth probe, which emits
 * the whole program before any parameters exist to measure how many levels it consumes.
 */
import { Bootstrapper, bootstrapResultScale } from '../../ckks/bootstrapping/bootstrapper.ts';
import type { BootstrappingParameters } from '../../ckks/bootstrapping/parameters.ts';
import type { Parameters } from '../../ckks/parameters.ts';
import { galoisElementForRotation } from '../../ring/galois.ts';
import { ParametersShape } from '../../ckks/shape.ts';
import { OPS } from '../../program/ops.ts';

/**
 * Scales and rescale divisors of a modulus chain (real parameters, or the depth probe's stand-in).
 *
 * @internal
 * @example
 * ```ts
 * const chain = chainOf(params);
 * const scale = chain.scaleAt(chain.top - 1); // the canonical scale one level down
 * ```
 */
export interface Chain {
  readonly top: number;
  scaleAt(level: number): number;
  /** Primes a rescale at `level` divides by, in division order. */
  rescalePrimes(level: number): readonly number[];
  bytes(level: number, degree: number): number;
  /** Bytes of one key-switching key made for `level` (0 in the depth probe). */
  keyBytes(level: number): number;
  /** Kernel scratch of a hoisted rotation of a degree-1 ciphertext at `level` (`OPS.rotate_hoisted.scratch`). */
  hoistScratchBytes(level: number): number;
  /** Galois element of a left rotation by `steps`. */
  galois(steps: number): number;
  /** What a bootstrap does on this chain (absent: the chain has no bootstrapping). */
  readonly bootstrap?: BootstrapChain;
}

/**
 * A bootstrap on a chain: the level it returns to, the scale of its result, and the kernel memory it holds.
 *
 * @internal
 * @example
 * ```ts
 * const refreshed = chain.bootstrap?.resultScale(x.scale, 4);
 * ```
 */
export interface BootstrapChain {
  readonly levelsLeft: number;
  /** The result's scale for an input of `inputScale` with values within ±`bound` (`bootstrapResultScale`). */
  resultScale(inputScale: number, bound: number): number;
  /** `Bootstrapper.workingSetBytes` of the parameters. */
  readonly scratchBytes: number;
}

/**
 * Top level of the depth probe, far above any real depth so that its emission never reaches level 0: the depth
 * is `PROBE_TOP` minus the lowest level the probe reached.
 *
 * @internal
 * @example
 * ```ts
 * const depth = PROBE_TOP - probe.minLevel;
 * ```
 */
export const PROBE_TOP = 1 << 20;

/**
 * The depth probe's chain: a 2^30 scale at every level, one 2^30 prime per rescale, and placeholder byte sizes and
 * Galois elements ({@link probeMemory} sizes the probed program at the real parameters).
 *
 * @internal
 * @example
 * ```ts
 * const probe = new Emitter(probeChain, limits, true);
 * ```
 */
export const probeChain: Chain = {
  top: PROBE_TOP,
  scaleAt: () => 2 ** 30,
  rescalePrimes: () => [2 ** 30],
  bytes: () => 1,
  keyBytes: () => 0,
  hoistScratchBytes: () => 0,
  galois: (steps) => steps,
};

/**
 * The chain of real parameters: their canonical scales, the primes each rescale divides by, ciphertext sizes and
 * Galois elements.
 *
 * @internal
 * @example
 * ```ts
 * const emitter = new Emitter(chainOf(params), limits);
 * ```
 */
export function chainOf(params: Parameters, bootstrapping?: BootstrappingParameters): Chain {
  if (bootstrapping) params.checkSame(bootstrapping.params, 'chainOf: bootstrapping');
  const bootstrap: BootstrapChain | undefined = bootstrapping && {
    levelsLeft: bootstrapping.levelsLeft,
    resultScale: (inputScale, bound) => bootstrapResultScale(bootstrapping, inputScale, bound).scale,
    scratchBytes: Bootstrapper.workingSetBytes(bootstrapping),
  };
  return {
    bootstrap,
    top: params.depth,
    scaleAt: (level) => params.scaleAtLevel[level],
    rescalePrimes: (level) => {
      const limbs = params.limbsAtLevel(level);
      const primes: number[] = [];
      for (let d = 0; d < params.primesPerLevel; d++) primes.push(params.qPrimes[limbs - d - 1]);
      return primes;
    },
    bytes: (level, degree) => params.ciphertextBytes(level, degree),
    keyBytes: (level) => params.switchingKeyBytes(level),
    hoistScratchBytes: (level) =>
      OPS.rotate_hoisted.scratch(ParametersShape.of(params.literal), {
        level,
        degree: 1,
        bytes: { args: [params.ciphertextBytes(level, 1)] },
      }),
    galois: (steps) => galoisElementForRotation(steps, params.logN),
  };
}
