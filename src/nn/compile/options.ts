/**
 * What {@link compileModel} takes and returns: its options, the size limits it checks before anything large is
 * allocated, and the result with the program's resources.
 */
import type { Parameters } from '../../ckks/parameters.ts';
import { MAX_PAGES, PAGE_BYTES } from '../../ring/kernels.ts';
import { check } from '../../util/assert.ts';
import type { AccuracyCost, ApproximationOptions, CalibrationData, Substitution } from '../approx.ts';
import type { LayerModel } from '../layers.ts';
import type { HeProgram } from '../../program/program.ts';
import type { PolynomialEvaluation } from './polynomial.ts';

/**
 * Where relinearizations go after a squaring that feeds a linear layer: `lazy` relinearizes the linear layer's
 * sums (fewer key switches, but every multiply-add then touches three polynomials), `eager` the squares, `auto`
 * picks the cheaper by a cost model of the two.
 *
 * @example
 * ```ts
 * const policy: RelinearizationPolicy = 'auto';
 * ```
 */
export type RelinearizationPolicy = 'auto' | 'lazy' | 'eager';

/**
 * Options of {@link compileModel}.
 *
 * @example
 * ```ts
 * compileModel(model, { mode: 'batch', calibration: { images, count: 256 }, precisionBits: 20 });
 * ```
 */
export interface CompileOptions {
  /** `batch` (default): one image per slot; `latency`: one image per block of slots. */
  readonly mode?: 'batch' | 'latency';
  /**
   * Latency packing only: the weights are ciphertexts too (encrypted by the model owner under the client's public
   * key), so products are ciphertext × ciphertext.
   */
  readonly encryptWeights?: boolean;
  /** Images per pass in batch mode (default: all slots). */
  readonly batchSize?: number;
  /** Bits of precision asked of every value (default 20: a 2^30 scale; above 24 two primes per level, 2^60). */
  readonly precisionBits?: number;
  readonly relinearize?: RelinearizationPolicy;
  /** Sample images: calibrate the approximations and bound value magnitudes. */
  readonly calibration?: CalibrationData;
  /** Passed to `approximateModel` for layers without an approximation (degree, intervals, margin, maxPool …). */
  readonly approximation?: Omit<ApproximationOptions, 'calibration'>;
  /** Smallest and largest log2 ring degree to consider (default 13 and 16). */
  readonly minLogN?: number;
  readonly maxLogN?: number;
  /**
   * Tests and experiments only: the ring degree 2^insecureLogN whatever the depth asks for 128-bit security. The
   * parameters are made with `insecure: true`, which warns (`HOME_INSECURE_PARAMETERS`); never for real data.
   */
  readonly insecureLogN?: number;
  /**
   * Input values the program must accept (default: the calibration images' range widened by 10 %, else [−1, 1]).
   */
  readonly inputRange?: readonly [number, number];
  /** Program name for reports (default `model`). */
  readonly name?: string;
  /** Size limits checked before anything large is allocated (defaults: {@link DEFAULT_COMPILE_LIMITS}). */
  readonly limits?: Partial<CompileLimits>;
  /**
   * Latency packing: mark the plaintext weights `encodeOnUse`, so the server encodes each one from the program's
   * constants right before the instruction that reads it and frees it after (encoding time traded for memory).
   * `'auto'` (default): only when keeping them all encoded would exceed `limits.memoryBytes`.
   */
  readonly lazyPlaintexts?: boolean | 'auto';
  /**
   * Latency packing: bootstraps refresh values that would run out of levels, placed lazily (right before the layer
   * that needs the levels, the fewest for a chain of layers) on bootstrapping parameters of the largest ring
   * degree (maxLogN, or insecureLogN). `'auto'` (default): only when no chain holds the model's depth; `true`:
   * always; `false`: never (a deep model is refused). Needs calibration images (they bound each bootstrap's input).
   */
  readonly bootstrapping?: boolean | 'auto';
  /** Levels a bootstrap leaves for computation (default: 8, or the most one layer consumes). */
  readonly bootstrapLevels?: number;
  /**
   * How polynomial approximations are evaluated: `'basis'` (default; ⌈log2 d⌉ + 1 levels for degree d) or
   * `'bsgs'` (baby-step giant-step with the constants on the products' rescales: ⌈log2(d + 1)⌉ levels, so degree
   * 127 fits where degree 63 did). Deep models run by `home infer` use `'bsgs'`.
   */
  readonly polynomials?: PolynomialEvaluation;
}

/**
 * Limits {@link compileModel} checks before emitting: an up-front estimate per layer (instructions, constants,
 * slots) before any emission, the server's memory (live ciphertexts, plaintext weights, evaluation keys) after the
 * depth probe, and the instruction and constant counts again while emitting. Past a limit it throws a
 * `ResourceError` naming the layer, the figure and the limit, instead of letting V8 abort or the kernel arena fail
 * halfway through inference.
 *
 * @example
 * ```ts
 * compileModel(model, { mode: 'latency', limits: { memoryBytes: 2 ** 31 } });
 * ```
 */
export interface CompileLimits {
  /** Instructions of the program body (each takes about 300 bytes of JavaScript heap). */
  readonly instructions: number;
  /**
   * Bytes of the program's constants: float64 scalar weights, plaintext and encrypted-weight vectors, and the
   * palette codes of the plaintexts stored by palette.
   */
  readonly constantBytes: number;
  /**
   * Bytes the server may hold at once: live ciphertexts, the plaintext weights (all of them, or the one in use when
   * they are encoded on use) and the evaluation keys. Default: 7/8 of the 4 GiB WebAssembly kernel arena (the rest
   * is headroom for key-switching scratch and allocator fragmentation: CNTK mnist-8 in latency packing, estimated
   * at 3.86 GiB, failed in the arena at 3.91 GB in use). A caller that executes through the tiered runtime, which
   * spills to slower tiers, may raise it.
   */
  readonly memoryBytes: number;
  /**
   * Bytes one instruction may hold at once (operands, results and keys; Infinity by default): a hoisted rotation
   * whose keys would take more is split into groups, each decomposing its input again, and a block of a linear layer
   * (`mul_matrix`) into groups of rows, or into one multiply-add per weight when one row with its operands does not
   * fit. A tiered run sets it from its budget, since every object of an instruction must be in the arena while it
   * runs.
   */
  readonly stepBytes: number;
}

/**
 * The default {@link CompileLimits}: 5 million instructions (≈ 1.5 GB of heap, frees included, within Node's
 * default 4 GiB heap), 1 GiB of constants, 3.5 GiB of server memory (7/8 of the kernel arena).
 *
 * @example
 * ```ts
 * compileModel(model, { limits: { ...DEFAULT_COMPILE_LIMITS, memoryBytes: 16 * 2 ** 30 } });
 * ```
 */
export const DEFAULT_COMPILE_LIMITS: Readonly<CompileLimits> = Object.freeze({
  instructions: 5_000_000,
  constantBytes: 2 ** 30,
  memoryBytes: (MAX_PAGES * PAGE_BYTES * 7) / 8,
  stepBytes: Number.POSITIVE_INFINITY,
});

/**
 * Sizes of a compiled program: the up-front estimate, what was emitted and what the server will hold.
 *
 * @example
 * ```ts
 * const { resources } = compileModel(model, { mode: 'latency' });
 * console.log(resources.serverBytes / 2 ** 30, 'GiB', resources.lazyPlaintexts);
 * ```
 */
export interface ProgramResources {
  /** Instructions the up-front estimate predicted (before frees). */
  readonly estimatedInstructions: number;
  /** Instructions emitted (before frees). */
  readonly instructions: number;
  /** Bytes of the program's constants (float64 values and palette codes). */
  readonly constantBytes: number;
  /** Largest sum of live ciphertext bytes (inputs and encrypted weights included). */
  readonly peakCiphertextBytes: number;
  /** Bytes of all plaintext weights once encoded. */
  readonly plaintextBytes: number;
  /** Bytes of the evaluation keys the program uses. */
  readonly keyBytes: number;
  /** Bytes the server holds at its peak: ciphertexts, plaintexts (all, or the one in use) and keys. */
  readonly serverBytes: number;
  /** The plaintext weights are marked `encodeOnUse`. */
  readonly lazyPlaintexts: boolean;
}

/**
 * What {@link compileModel} returns: the program, the parameters it chose, the model as compiled (with its
 * approximations) and the substitutions made.
 *
 * @example
 * ```ts
 * const { program, params, substitutions } = compileModel(model, { calibration });
 * ```
 */
export interface CompileResult {
  readonly program: HeProgram;
  readonly params: Parameters;
  readonly model: LayerModel;
  readonly substitutions: readonly Substitution[];
  readonly approximationCost: AccuracyCost | undefined;
  readonly resources: ProgramResources;
}

/**
 * The limits in force: {@link DEFAULT_COMPILE_LIMITS} overridden by the caller's, each checked to be a positive
 * integer or Infinity.
 *
 * @internal
 * @example
 * ```ts
 * resolveLimits({ memoryBytes: 2 ** 31 }).instructions; // 5_000_000
 * ```
 */
export function resolveLimits(given: Partial<CompileLimits> | undefined): CompileLimits {
  const limits = { ...DEFAULT_COMPILE_LIMITS, ...given };
  for (const key of ['instructions', 'constantBytes', 'memoryBytes'] as const) {
    const v = limits[key];
    check(
      typeof v === 'number' && v > 0 && (Number.isSafeInteger(v) || v === Number.POSITIVE_INFINITY),
      () => `limits.${key} = ${String(v)}: expected a positive integer (or Infinity)`,
    );
  }
  return limits;
}
