import { assertFinite, assertInteger, check } from '../util/assert.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import type { ParametersLiteral, SecretDistribution } from './parameters.ts';

/**
 * Primes in q0 when a literal does not say: two at a 2^30 scale, three at a 2^60 scale (q0 bounds |message| · scale).
 *
 * @example
 * ```ts
 * defaultBasePrimes(2); // 3
 * ```
 */
export function defaultBasePrimes(primesPerLevel: 1 | 2): number {
  return primesPerLevel === 1 ? 2 : 3;
}

/**
 * A parameters literal with every default filled in and every field checked.
 *
 * @example
 * ```ts
 * const literal: NormalizedLiteral = ParametersShape.of({ logN: 13, depth: 4 }).literal;
 * ```
 */
export type NormalizedLiteral = Required<ParametersLiteral>;

function normalize(literal: ParametersLiteral): NormalizedLiteral {
  if (typeof literal !== 'object' || literal === null) {
    throw new InvalidArgumentError(`parameters literal = ${String(literal)}: expected an object`);
  }
  assertInteger(literal.logN, 'logN', 10, 17);
  assertInteger(literal.depth, 'depth', 0, 200);
  const primesPerLevel = literal.primesPerLevel ?? 1;
  check(
    primesPerLevel === 1 || primesPerLevel === 2,
    () => `primesPerLevel = ${primesPerLevel}: expected 1 or 2`,
  );
  const basePrimes = literal.basePrimes ?? defaultBasePrimes(primesPerLevel);
  assertInteger(basePrimes, 'basePrimes', 1, 8);
  const qCount = basePrimes + literal.depth * primesPerLevel;
  let specialPrimes = literal.specialPrimes;
  let digits = literal.digits;
  if (specialPrimes === undefined) {
    digits ??= Math.min(3, qCount);
    assertInteger(digits, 'digits', 1, qCount);
    specialPrimes = Math.ceil(qCount / digits);
  }
  assertInteger(specialPrimes, 'specialPrimes', 1, 64);
  if (digits !== undefined) {
    assertInteger(digits, 'digits', 1, qCount);
    check(
      Math.ceil(qCount / specialPrimes) <= digits,
      () =>
        `digits = ${digits} with specialPrimes = ${specialPrimes}: each digit must have at most as many primes as P ` +
        `(${qCount} Q primes need ≥ ${Math.ceil(qCount / specialPrimes)} digits)`,
    );
  }
  const logDefaultScale = literal.logDefaultScale ?? 29.9 * primesPerLevel;
  assertFinite(logDefaultScale, 'logDefaultScale');
  check(
    logDefaultScale >= 10 && logDefaultScale <= 30 * primesPerLevel,
    () =>
      `logDefaultScale = ${logDefaultScale}: expected 10 … ${30 * primesPerLevel} for ${primesPerLevel} prime(s) per level`,
  );
  const secret: SecretDistribution = literal.secret ?? { kind: 'ternary' };
  if (secret.kind === 'sparse-ternary') {
    assertInteger(secret.hammingWeight, 'secret.hammingWeight', 1, 2 ** literal.logN);
  } else if (secret.kind !== 'ternary') {
    throw new InvalidArgumentError(
      `secret.kind = ${JSON.stringify((secret as { kind: unknown }).kind)}: expected "ternary" or "sparse-ternary"`,
    );
  }
  return {
    logN: literal.logN,
    depth: literal.depth,
    primesPerLevel,
    basePrimes,
    specialPrimes,
    digits: Math.ceil(qCount / specialPrimes),
    logDefaultScale,
    secret,
    insecure: literal.insecure === true,
  };
}

/**
 * The arithmetic of a parameter set that needs no primes: the normalized literal (every default filled in), limb
 * counts per level, key-switching digits and the byte sizes of ciphertexts, plaintexts and keys. It is the one place
 * these are computed: `Parameters` builds on it, and the HE program's validator, the compiler and the runtime's cost
 * model read it from a program's literal without building NTT tables.
 *
 * @example
 * ```ts
 * const shape = ParametersShape.of({ logN: 14, depth: 5, specialPrimes: 2 });
 * shape.ciphertextBytes(5); // 2 · 7 limbs · 16384 · 4 = 917504
 * ```
 */
export class ParametersShape {
  readonly literal: Readonly<NormalizedLiteral>;
  readonly logN: number;
  readonly n: number;
  readonly slots: number;
  readonly depth: number;
  readonly primesPerLevel: 1 | 2;
  readonly basePrimes: number;
  /** Primes of Q at the top level (base primes, then primesPerLevel per level). */
  readonly qCount: number;
  /** Special primes P of hybrid key switching; each key-switching digit has at most this many Q primes. */
  readonly specialPrimes: number;
  /** Key-switching digits (dnum). */
  readonly digits: number;

  static readonly #cache = new Map<string, ParametersShape>();

  /**
   * The shape of a literal (validated; memoized by the normalized literal).
   *
   * @throws InvalidArgumentError naming the first bad field.
   * @example
   * ```ts
   * ParametersShape.of(PRESETS.PN14QP438).qCount; // 12
   * ```
   */
  static of(literal: ParametersLiteral): ParametersShape {
    const normalized = normalize(literal);
    const key = JSON.stringify(normalized);
    let shape = ParametersShape.#cache.get(key);
    if (!shape) {
      shape = new ParametersShape(normalized);
      ParametersShape.#cache.set(key, shape);
    }
    return shape;
  }

  private constructor(literal: NormalizedLiteral) {
    this.literal = Object.freeze({ ...literal });
    this.logN = literal.logN;
    this.n = 2 ** literal.logN;
    this.slots = this.n / 2;
    this.depth = literal.depth;
    this.primesPerLevel = literal.primesPerLevel;
    this.basePrimes = literal.basePrimes;
    this.qCount = literal.basePrimes + literal.depth * literal.primesPerLevel;
    this.specialPrimes = literal.specialPrimes;
    this.digits = literal.digits;
    Object.freeze(this);
  }

  /** Q limbs of a ciphertext at `level`. */
  limbsAtLevel(level: number): number {
    return this.basePrimes + level * this.primesPerLevel;
  }

  /** The level a ciphertext with `limbs` Q limbs is at. */
  levelOfLimbs(limbs: number): number {
    return (limbs - this.basePrimes) / this.primesPerLevel;
  }

  /** Bytes of a ciphertext of `degree + 1` polynomials at `level` (limbs only). */
  ciphertextBytes(level: number, degree = 1): number {
    return (degree + 1) * this.limbsAtLevel(level) * this.n * 4;
  }

  /** Bytes of a plaintext (one polynomial) at `level`. */
  plaintextBytes(level: number): number {
    return this.limbsAtLevel(level) * this.n * 4;
  }

  /**
   * Key-switching digits of a ciphertext at `level`: its Q limbs in groups of at most `specialPrimes` (the top
   * level has {@link digits}).
   */
  keyDigitsAtLevel(level: number): number {
    return Math.ceil(this.limbsAtLevel(level) / this.specialPrimes);
  }

  /**
   * Bytes of one key-switching key (relinearization or Galois) that switches ciphertexts up to `level` (default:
   * the top): a (b, a) pair over Q_level ∪ P per digit of that level. A key only ever used low in the chain is a
   * fraction of a top-level one (Lattigo's and OpenFHE's keys at a chosen level).
   */
  switchingKeyBytes(level: number = this.depth): number {
    return this.keyDigitsAtLevel(level) * 2 * (this.limbsAtLevel(level) + this.specialPrimes) * this.n * 4;
  }
}
