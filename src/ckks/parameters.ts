import { sha256 } from '@noble/hashes/sha2.js';
import { defaultContext, type KernelContext } from '../ring/context.ts';
import { Modulus } from '../ring/modulus.ts';
import { choosePrimes, nttFriendlyPrimes } from '../ring/primes.ts';
import { assertInteger } from '../util/assert.ts';
import { InvalidArgumentError, MismatchError, SecurityError } from '../util/errors.ts';
import { maxLogQP128 } from './security.ts';
import { ParametersShape } from './shape.ts';

/**
 * The secret-key distribution: uniform ternary, or sparse ternary with a fixed Hamming weight.
 *
 * @example
 * ```ts
 * Parameters.create({ logN: 14, depth: 4, secret: { kind: 'sparse-ternary', hammingWeight: 192 } });
 * ```
 */
export type SecretDistribution = { kind: 'ternary' } | { kind: 'sparse-ternary'; hammingWeight: number };

/**
 * A plain description of a CKKS parameter set, turned into checked, immutable {@link Parameters} by
 * `Parameters.create`. All primes are 30-bit NTT-friendly primes chosen deterministically.
 *
 * @example
 * ```ts
 * const literal: ParametersLiteral = { logN: 14, depth: 10, primesPerLevel: 1, specialPrimes: 2 };
 * ```
 */
export interface ParametersLiteral {
  /** log2 of the ring degree N; slots = N/2. 10 … 17. */
  logN: number;
  /** Number of rescalings (multiplicative levels) available above level 0. */
  depth: number;
  /** Primes dropped per rescale: 1 gives a scale ≈ 2^30, 2 gives ≈ 2^60. Default 1. */
  primesPerLevel?: 1 | 2;
  /** Primes in the level-0 modulus q0 (its size bounds |message| · scale). Default 2, or 3 with 2 primes per level. */
  basePrimes?: number;
  /** Special primes P for hybrid key switching. Default: ⌈(Q primes) / digits⌉. */
  specialPrimes?: number;
  /** Decomposition digits (dnum) for hybrid key switching. Default: ⌈(Q primes) / specialPrimes⌉, or 3. */
  digits?: number;
  /** log2 of the default scale at the top level. Default 29.9 · primesPerLevel. */
  logDefaultScale?: number;
  /** Secret distribution; default uniform ternary. */
  secret?: SecretDistribution;
  /** Allow a set above the 128-bit bound of the HE standard (prints a warning). */
  insecure?: boolean;
}

/**
 * Checked, immutable CKKS parameters: ring degree, the modulus chain Q = q_0 … q_L (limbs), special primes P,
 * the key-switching decomposition, the scale of each level and the parameters id that every object carries.
 *
 * @example
 * ```ts
 * const params = Parameters.create({ logN: 14, depth: 10 });
 * params.slots; // 8192
 * ```
 */
export class Parameters {
  readonly logN: number;
  readonly n: number;
  readonly slots: number;
  readonly depth: number;
  readonly primesPerLevel: 1 | 2;
  readonly basePrimes: number;
  /** Q primes, limb order: base primes, then level 1 … depth. */
  readonly qPrimes: readonly number[];
  readonly pPrimes: readonly number[];
  /** Modulus objects (NTT tables) of Q and P. */
  readonly moduliQ: readonly Modulus[];
  readonly moduliP: readonly Modulus[];
  /** Number of Q primes per key-switching digit (alpha) and the number of digits (dnum). */
  readonly digitSize: number;
  readonly digits: number;
  readonly defaultScale: number;
  /** scaleAtLevel[ℓ] is the canonical scale of a fresh or rescaled ciphertext at level ℓ. */
  readonly scaleAtLevel: readonly number[];
  readonly secret: SecretDistribution;
  readonly logQP: number;
  readonly insecure: boolean;
  /** A 16-hex-digit hash of everything above; objects from other parameters are rejected by it. */
  readonly id: string;
  readonly literal: Readonly<ParametersLiteral>;
  /**
   * The kernel context every object of these parameters lives in. Equal literals in two contexts give two
   * instances with the same {@link Parameters.id}; objects of one are rejected by the other's evaluator.
   */
  readonly context: KernelContext;
  /** Limb counts, digits and byte sizes (the arithmetic that needs no primes). */
  readonly shape: ParametersShape;

  static readonly #cache = new WeakMap<KernelContext, Map<ParametersShape, Parameters>>();

  /**
   * Validates a literal and builds the parameters in `options.context` (default: {@link defaultContext}),
   * memoized per context: equal literals give the same instance.
   *
   * @example
   * ```ts
   * const params = Parameters.create({ logN: 13, depth: 4 });
   * const isolated = Parameters.create({ logN: 13, depth: 4 }, { context: KernelContext.create() });
   * ```
   */
  static create(literal: ParametersLiteral, options: { context?: KernelContext } = {}): Parameters {
    const context = options.context ?? defaultContext();
    let cache = Parameters.#cache.get(context);
    if (!cache) {
      cache = new Map();
      Parameters.#cache.set(context, cache);
    }
    const shape = ParametersShape.of(literal);
    let params = cache.get(shape);
    if (!params) {
      params = new Parameters(shape, context);
      cache.set(shape, params);
    }
    return params;
  }

  private constructor(shape: ParametersShape, context: KernelContext) {
    const literal = shape.literal;
    this.shape = shape;
    this.context = context;
    this.literal = Object.freeze({ ...literal });
    this.logN = literal.logN;
    this.n = 2 ** literal.logN;
    this.slots = this.n / 2;
    this.depth = literal.depth;
    this.primesPerLevel = literal.primesPerLevel;
    this.basePrimes = literal.basePrimes;
    this.secret = literal.secret;
    this.insecure = literal.insecure;
    const qCount = shape.qCount;
    const digitSize = shape.specialPrimes;
    this.digitSize = digitSize;
    this.digits = shape.digits;

    const available = nttFriendlyPrimes(this.logN).length;
    const needed = qCount + literal.specialPrimes;
    if (needed > available) {
      throw new InvalidArgumentError(
        `depth = ${literal.depth}: needs ${needed} primes but logN = ${this.logN} has only ${available} ` +
          'NTT-friendly primes in (2^29, 2^30)',
      );
    }

    // Choose level primes from the top down so that the scale of every level stays next to the default:
    // S_{ℓ-1} = S_ℓ² / Q_ℓ, with Q_ℓ picked closest to S_ℓ.
    const used = new Set<number>();
    const defaultScale = 2 ** literal.logDefaultScale;
    const levelPrimes: number[][] = [];
    const scales: number[] = new Array(literal.depth + 1);
    let scale = defaultScale;
    for (let level = literal.depth; level >= 1; level--) {
      scales[level] = scale;
      const primes =
        literal.primesPerLevel === 1
          ? choosePrimes(this.logN, 1, () => scale, used)
          : choosePrimes(this.logN, 2, (i, chosen) => (i === 0 ? Math.sqrt(scale) : scale / chosen[0]), used);
      levelPrimes[level] = primes;
      const product = primes.reduce((a, b) => a * b, 1);
      scale = (scale * scale) / product;
    }
    scales[0] = scale;
    const largest = (count: number) => choosePrimes(this.logN, count, () => 2 ** 30, used);
    const base = largest(literal.basePrimes);
    const special = largest(literal.specialPrimes);
    const q = [...base];
    for (let level = 1; level <= literal.depth; level++) q.push(...levelPrimes[level]);
    this.qPrimes = Object.freeze(q);
    this.pPrimes = Object.freeze(special);
    this.scaleAtLevel = Object.freeze(scales);
    this.defaultScale = defaultScale;
    this.moduliQ = Object.freeze(q.map((p) => Modulus.get(p, this.logN, context)));
    this.moduliP = Object.freeze(special.map((p) => Modulus.get(p, this.logN, context)));
    this.logQP = [...q, ...special].reduce((sum, p) => sum + Math.log2(p), 0);

    const bound = maxLogQP128(this.logN);
    if (bound === undefined || this.logQP > bound) {
      const why =
        `log2(QP) = ${this.logQP.toFixed(1)} at logN = ${this.logN} exceeds the 128-bit bound ` +
        `${bound ?? 'none'} of the HomomorphicEncryption.org standard`;
      if (!literal.insecure)
        throw new SecurityError(`${why}; pass insecure: true to use it anyway (not secure)`);
      const message = `HomE: INSECURE parameters: ${why}`;
      const nodeProcess = (globalThis as { process?: { emitWarning?: (m: string, o: object) => void } })
        .process;
      if (nodeProcess?.emitWarning) nodeProcess.emitWarning(message, { code: 'HOME_INSECURE_PARAMETERS' });
      else console.warn(message);
    }

    const idSource = JSON.stringify({
      logN: this.logN,
      q,
      p: special,
      digitSize,
      secret: this.secret,
      scale: defaultScale,
      ppl: this.primesPerLevel,
      base: this.basePrimes,
    });
    const digest = sha256(new TextEncoder().encode(idSource));
    this.id = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
    Object.freeze(this);
  }

  /**
   * Throws {@link MismatchError} unless `other` is this very instance: objects of other parameters, or of the
   * same parameters in another kernel context (their limbs live in another memory), never meet.
   *
   * @example
   * ```ts
   * params.checkSame(ct.params, 'add: operand');
   * ```
   */
  checkSame(other: Parameters, what: string): void {
    if (other === this) return;
    if (other.id !== this.id)
      throw new MismatchError(`${what} parameters ${other.id} differ from the expected ${this.id}`);
    throw new MismatchError(
      `${what} parameters ${other.id} belong to kernel context ${other.context.id}: expected context ` +
        `${this.context.id} (objects of two contexts never mix)`,
    );
  }

  /** Q limbs of a ciphertext at `level`. */
  limbsAtLevel(level: number): number {
    return this.shape.limbsAtLevel(level);
  }

  /** The level a ciphertext with `limbs` Q limbs is at. */
  levelOfLimbs(limbs: number): number {
    return this.shape.levelOfLimbs(limbs);
  }

  /** Key-switching digits of a ciphertext at `level` (the top level has {@link digits}). */
  keyDigitsAtLevel(level: number): number {
    return this.shape.keyDigitsAtLevel(level);
  }

  /** Bytes of a key-switching key made for `level` (default: the top; see SwitchingKey.level). */
  switchingKeyBytes(level: number = this.depth): number {
    return this.shape.switchingKeyBytes(level);
  }

  /** Q moduli of `level`, as a cached array (identity-stable, so polys can compare moduli). */
  moduliAtLevel(level: number): readonly Modulus[] {
    this.checkLevel(level);
    return this.#qSlices(this.limbsAtLevel(level));
  }

  /** Q moduli of `level` followed by the special primes P: the extended basis of key switching. */
  moduliQPAtLevel(level: number): readonly Modulus[] {
    this.checkLevel(level);
    const limbs = this.limbsAtLevel(level);
    let slice = this.#qpCache.get(limbs);
    if (!slice) {
      slice = Object.freeze([...this.moduliQ.slice(0, limbs), ...this.moduliP]);
      this.#qpCache.set(limbs, slice);
    }
    return slice;
  }

  #qCache = new Map<number, readonly Modulus[]>();
  #qpCache = new Map<number, readonly Modulus[]>();

  #qSlices(limbs: number): readonly Modulus[] {
    let slice = this.#qCache.get(limbs);
    if (!slice) {
      slice = Object.freeze(this.moduliQ.slice(0, limbs));
      this.#qCache.set(limbs, slice);
    }
    return slice;
  }

  /** Throws unless `level` is an integer in [0, depth]. */
  checkLevel(level: number): void {
    assertInteger(level, 'level', 0, this.depth);
  }

  /** Bytes of a ciphertext of `degree + 1` polynomials at `level` (limbs only). */
  ciphertextBytes(level: number, degree = 1): number {
    return this.shape.ciphertextBytes(level, degree);
  }

  /** A short human-readable summary. */
  toString(): string {
    return (
      `CKKS logN=${this.logN} depth=${this.depth} Q=${this.qPrimes.length}×30-bit P=${this.pPrimes.length} ` +
      `dnum=${this.digits} logQP=${this.logQP.toFixed(1)} scale=2^${Math.log2(this.defaultScale).toFixed(2)} ` +
      `id=${this.id}${this.insecure ? ' INSECURE' : ''}`
    );
  }
}

/**
 * Named 128-bit-secure presets (Lattigo-style names: PN<logN>QP<bits>), one prime per level (scale ≈ 2^30),
 * and `…S60` variants with two primes per level (scale ≈ 2^60).
 *
 * @example
 * ```ts
 * const params = Parameters.create(PRESETS.PN14QP438);
 * ```
 */
export const PRESETS = Object.freeze({
  PN13QP218: { logN: 13, depth: 4, specialPrimes: 1 },
  PN14QP438: { logN: 14, depth: 10, specialPrimes: 2 },
  PN15QP881: { logN: 15, depth: 22, specialPrimes: 5 },
  PN16QP1747: { logN: 16, depth: 48, specialPrimes: 8 },
  PN14QP438S60: { logN: 14, depth: 4, primesPerLevel: 2, basePrimes: 3, specialPrimes: 3 },
  PN15QP881S60: { logN: 15, depth: 10, primesPerLevel: 2, basePrimes: 3, specialPrimes: 5 },
  PN16QP1747S60: { logN: 16, depth: 24, primesPerLevel: 2, basePrimes: 3, specialPrimes: 7 },
} satisfies Record<string, ParametersLiteral>);
