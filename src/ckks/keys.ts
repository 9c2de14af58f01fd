import {
  galoisElementForConjugation,
  galoisElementForRotation,
  nttAutomorphismIndex,
} from '../ring/galois.ts';
import type { Modulus } from '../ring/modulus.ts';
import {
  automorphismNtt,
  mulPoly,
  mulSubPoly,
  nttInPlace,
  scalarResidues,
  mulScalarAddPoly,
  setSigned,
} from '../ring/ops.ts';
import { Poly } from '../ring/poly.ts';
import { Prng } from '../ring/prng.ts';
import {
  sampleGaussian,
  sampleSparseTernary,
  sampleTernary,
  sampleUniformMod,
  sampleUniformRns,
  skipUniformMod,
} from '../ring/sampling.ts';
import { mulMod } from '../ring/modarith.ts';
import { assertInteger } from '../util/assert.ts';
import { InvalidArgumentError, MismatchError } from '../util/errors.ts';
import type { Parameters } from './parameters.ts';

/**
 * The secret key s (ternary), held in the NTT domain over Q ∪ P. It never leaves the client: it has no
 * serializer of its own for the wire, and printing it shows no coefficient.
 *
 * @example
 * ```ts
 * const { secretKey } = new KeyGenerator(params).generateSecretKey();
 * ```
 */
export class SecretKey {
  readonly params: Parameters;
  /** s over Q_L ∪ P, NTT domain. */
  readonly poly: Poly;

  constructor(params: Parameters, poly: Poly) {
    this.params = params;
    this.poly = poly;
  }

  get parametersId(): string {
    return this.params.id;
  }

  toString(): string {
    return `SecretKey {<hidden> params=${this.params.id}}`;
  }

  toJSON(): string {
    return this.toString();
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/**
 * Public key (b, a) = (−a·s + e, a) over Q_L ∪ P, NTT domain; `seed` regenerates `a`. Encryption works over
 * Q_ℓ ∪ P and divides by P, which shrinks the fresh noise by P (as SEAL does with its special prime).
 *
 * @example
 * ```ts
 * const publicKey = keygen.generatePublicKey(secretKey);
 * ```
 */
export class PublicKey {
  readonly params: Parameters;
  readonly b: Poly;
  readonly a: Poly;
  readonly seed: Uint8Array;

  constructor(params: Parameters, b: Poly, a: Poly, seed: Uint8Array) {
    this.params = params;
    this.b = b;
    this.a = a;
    this.seed = seed;
  }

  get parametersId(): string {
    return this.params.id;
  }
}

/**
 * A key-switching key from s' to s for hybrid key switching: one pair (b_j, a_j) per decomposition digit j,
 * over Q_L ∪ P in the NTT domain, with b_j = −a_j·s + e_j + P·T_j·s' (T_j the CRT indicator of digit j).
 * Every a_j is expanded from `seed`, so a seeded copy stores only the b_j.
 *
 * @example
 * ```ts
 * const relin = keygen.generateRelinearizationKey(secretKey);
 * relin.digits.length === params.digits;
 * ```
 */
export class SwitchingKey {
  readonly params: Parameters;
  readonly digits: ReadonlyArray<{ readonly b: Poly; readonly a: Poly }>;
  readonly seed: Uint8Array;

  constructor(params: Parameters, digits: ReadonlyArray<{ b: Poly; a: Poly }>, seed: Uint8Array) {
    this.params = params;
    this.digits = digits;
    this.seed = seed;
  }

  get parametersId(): string {
    return this.params.id;
  }

  /**
   * The highest level of the ciphertexts this key switches: its polynomials are over Q_level ∪ P, one digit per
   * key-switching digit of that level (a key made for a low level is a fraction of a top-level one).
   */
  get level(): number {
    return this.params.levelOfLimbs(this.digits[0].b.limbCount - this.params.pPrimes.length);
  }

  /** Bytes of the full key (both halves), and of its seeded form (b halves plus the 32-byte seed). */
  get byteLength(): number {
    return this.digits.reduce((sum, d) => sum + d.b.byteLength + d.a.byteLength, 0);
  }

  get seededByteLength(): number {
    return this.digits.reduce((sum, d) => sum + d.b.byteLength, 0) + this.seed.length;
  }

  /**
   * A copy of this key for ciphertexts up to `level` (≤ {@link level}): the digits of that level, each over
   * Q_level ∪ P. It is the key that would have been made for `level` with the same seed and errors (so its seeded
   * form still expands correctly). The caller owns the copy.
   *
   * @example
   * ```ts
   * const low = galoisKey.key.atLevel(3); // then low.dispose()
   * ```
   */
  atLevel(level: number): SwitchingKey {
    assertInteger(level, 'level', 0, this.level);
    // Always new polynomials (at its own level, a copy): the caller disposes the result, not this key.
    const cut = (p: Poly) =>
      level === this.level ? p.copy() : restrictToLevel(this.params, p, level, this.level);
    const digits = this.digits
      .slice(0, this.params.keyDigitsAtLevel(level))
      .map((d) => ({ b: cut(d.b), a: cut(d.a) }));
    return new SwitchingKey(this.params, digits, Uint8Array.from(this.seed));
  }

  dispose(): void {
    disposeKeyDigits(this.digits);
  }
}

/**
 * Frees the polynomials of a key's digits (switching keys, and the digit-per-prime keys of encapsulation).
 *
 * @example
 * ```ts
 * disposeKeyDigits(key.digits);
 * ```
 */
export function disposeKeyDigits(digits: ReadonlyArray<{ readonly b: Poly; readonly a: Poly }>): void {
  for (const d of digits) {
    d.a.dispose();
    d.b.dispose();
  }
}

/**
 * A key-switching key for one Galois element (a rotation step or conjugation).
 *
 * @example
 * ```ts
 * const rotateByOne = keygen.generateGaloisKey(sk, galoisElementForRotation(1, params.logN));
 * ```
 */
export class GaloisKey {
  readonly galoisElement: number;
  readonly key: SwitchingKey;

  constructor(galoisElement: number, key: SwitchingKey) {
    this.galoisElement = galoisElement;
    this.key = key;
  }
}

/** The Galois elements of rotation steps (and conjugation), without the identity, each once, in order. */
function galoisElementsOf(
  params: Parameters,
  options: { rotations?: readonly number[]; conjugation?: boolean },
): number[] {
  const elements = new Set<number>();
  for (const step of options.rotations ?? []) {
    const g = galoisElementForRotation(step, params.logN);
    if (g !== 1) elements.add(g);
  }
  if (options.conjugation) elements.add(galoisElementForConjugation(params.logN));
  return [...elements];
}

/**
 * Which evaluation keys to make: the relinearization key (default yes), the Galois keys of `rotations` (and of
 * conjugation), and optionally the level each Galois key is made for (Galois element → level, default the top):
 * a key used only low in the chain is made over Q_level ∪ P (see {@link SwitchingKey.level}).
 *
 * @example
 * ```ts
 * const options: EvaluationKeyOptions = { rotations: [1], keyLevels: new Map([[galoisElementForRotation(1, 14), 2]]) };
 * ```
 */
export interface EvaluationKeyOptions {
  relinearization?: boolean;
  rotations?: readonly number[];
  conjugation?: boolean;
  keyLevels?: ReadonlyMap<number, number>;
}

/**
 * The limbs of `poly` (over Q_from ∪ P, default the top level) on Q_level ∪ P, as a new polynomial; `poly` itself
 * when the levels are equal.
 */
function restrictToLevel(params: Parameters, poly: Poly, level: number, from: number = params.depth): Poly {
  if (level === from) return poly;
  const moduli = params.moduliQPAtLevel(level);
  const limbs = params.limbsAtLevel(level);
  const fromLimbs = params.limbsAtLevel(from);
  const out = Poly.alloc(moduli, poly.isNtt, false);
  for (let i = 0; i < moduli.length; i++) out.limb(i).set(poly.limb(i < limbs ? i : fromLimbs + (i - limbs)));
  return out;
}

/**
 * The uniform polynomial a_`label` of a switching key made for `level` with `seed`: the top-level expansion
 * restricted to Q_level ∪ P, so a key's copy at a lower level ({@link SwitchingKey.atLevel}) expands from the same
 * seed as a key made there.
 *
 * @example
 * ```ts
 * const a0 = expandKeyUniform(params, key.level, key.seed, 0);
 * ```
 */
export function expandKeyUniform(params: Parameters, level: number, seed: Uint8Array, label: number): Poly {
  const top = params.moduliQPAtLevel(params.depth);
  if (level === params.depth) return expandUniform(top, seed, label);
  // The top-level stream, limb by limb: the limbs of Q_level are kept, those of the levels above are skipped (their
  // words drawn but not written), then the P limbs are kept.
  const moduli = params.moduliQPAtLevel(level);
  const limbs = params.limbsAtLevel(level);
  const topLimbs = params.limbsAtLevel(params.depth);
  const n = params.n;
  const poly = Poly.alloc(moduli, true, false);
  const words = poly.words();
  const prng = Prng.fromSeed(seed).fork(label);
  for (let i = 0; i < limbs; i++) sampleUniformMod(prng, moduli[i].value, words, i * n, n);
  for (let i = limbs; i < topLimbs; i++) skipUniformMod(prng, top[i].value, n);
  for (let i = limbs; i < moduli.length; i++) sampleUniformMod(prng, moduli[i].value, words, i * n, n);
  return poly;
}

/**
 * Evaluation keys made one at a time, when asked: for a client whose keys would not fit in memory all at once
 * (tens of GiB of rotation keys at logN 16), the server's tiered store asks for each key, writes it to its slow
 * tier and frees it before asking for the next. The keys are made with the client's secret key, which this object
 * holds privately and never hands out; a key asked for twice is made twice (a fresh, equally valid key).
 *
 * @example
 * ```ts
 * const stream = keygen.streamEvaluationKeys(sk, { rotations: [1, 2] });
 * const key = stream.make(stream.galoisElements[0]); // the caller owns it: store it, then key.dispose()
 * ```
 */
export class EvaluationKeyStream {
  readonly params: Parameters;
  /** Whether the stream makes a relinearization key. */
  readonly relinearization: boolean;
  /** The Galois elements it makes keys for. */
  readonly galoisElements: readonly number[];
  readonly #make: (key: 'relinearization' | number) => SwitchingKey;
  #seconds = 0;
  #made = 0;

  constructor(
    params: Parameters,
    relinearization: boolean,
    galoisElements: readonly number[],
    make: (key: 'relinearization' | number) => SwitchingKey,
  ) {
    this.params = params;
    this.relinearization = relinearization;
    this.galoisElements = galoisElements;
    this.#make = make;
  }

  /**
   * A fresh key: `'relinearization'` or one of {@link galoisElements}. The caller owns it (and disposes it).
   *
   * @throws InvalidArgumentError for a key this stream does not make.
   */
  make(key: 'relinearization' | number): SwitchingKey {
    if (key === 'relinearization' && !this.relinearization) {
      throw new InvalidArgumentError('relinearization key: this key stream makes none');
    }
    const start = performance.now();
    const made = this.#make(key);
    this.#seconds += (performance.now() - start) / 1000;
    this.#made++;
    return made;
  }

  /** Seconds spent making keys so far (the client's key generation). */
  get seconds(): number {
    return this.#seconds;
  }

  /** Keys made so far. */
  get made(): number {
    return this.#made;
  }
}

/**
 * The evaluation keys a server needs: the relinearization key and exactly the Galois keys that were asked for.
 *
 * @example
 * ```ts
 * const evk = new EvaluationKeys(relin, [keygen.generateGaloisKey(sk, galoisElementForRotation(1, params.logN))]);
 * ```
 */
export class EvaluationKeys {
  readonly relinearization: SwitchingKey | undefined;
  readonly galois: ReadonlyMap<number, GaloisKey>;

  constructor(relinearization?: SwitchingKey, galois: Iterable<GaloisKey> = []) {
    this.relinearization = relinearization;
    const map = new Map<number, GaloisKey>();
    for (const key of galois) map.set(key.galoisElement, key);
    this.galois = map;
  }

  /** Total bytes of all keys (full form). */
  get byteLength(): number {
    let total = this.relinearization?.byteLength ?? 0;
    for (const key of this.galois.values()) total += key.key.byteLength;
    return total;
  }

  /** Total bytes of all keys in seeded form (b halves and seeds). */
  get seededByteLength(): number {
    let total = this.relinearization?.seededByteLength ?? 0;
    for (const key of this.galois.values()) total += key.key.seededByteLength;
    return total;
  }
}

/**
 * Generates secret, public, relinearization and Galois keys. Every random value comes from a seed drawn with
 * `crypto.getRandomValues` and expanded by ChaCha20 ({@link Prng}).
 *
 * @example
 * ```ts
 * const keygen = new KeyGenerator(params);
 * const secretKey = keygen.generateSecretKey();
 * const publicKey = keygen.generatePublicKey(secretKey);
 * const evk = keygen.generateEvaluationKeys(secretKey, { rotations: [1, 2, 4], conjugation: false });
 * ```
 */
export class KeyGenerator {
  readonly params: Parameters;
  readonly #prng: Prng;

  /**
   * @param prng - the source of every seed and error of the keys made here; default: fresh from
   *   `crypto.getRandomValues`. Pass a seeded one only for reproducible tests.
   */
  constructor(params: Parameters, prng: Prng = Prng.fresh()) {
    this.params = params;
    this.#prng = prng;
  }

  #seed(): Uint8Array {
    const seed = new Uint8Array(32);
    this.#prng.nextBytes(seed);
    return seed;
  }

  #stream(): Prng {
    return Prng.fromSeed(this.#seed());
  }

  #moduliQP(): readonly Modulus[] {
    return this.params.moduliQPAtLevel(this.params.depth);
  }

  /** A fresh secret key (ternary or sparse ternary, as the parameters say). */
  generateSecretKey(prng: Prng = this.#stream()): SecretKey {
    const { n, secret } = this.params;
    const coefficients =
      secret.kind === 'sparse-ternary'
        ? sampleSparseTernary(prng, n, secret.hammingWeight)
        : sampleTernary(prng, n);
    const moduli = this.#moduliQP();
    const poly = Poly.alloc(moduli, false, false);
    setSigned(poly, coefficients);
    coefficients.fill(0);
    nttInPlace(poly);
    return new SecretKey(this.params, poly);
  }

  /** A fresh public key for `secretKey`. */
  generatePublicKey(secretKey: SecretKey, seed: Uint8Array = this.#seed()): PublicKey {
    this.#check(secretKey);
    const moduli = this.#moduliQP();
    const a = expandUniform(moduli, seed, 0);
    const b = this.#errorPoly(moduli, this.#stream());
    mulSubPoly(a, secretKey.poly, b);
    return new PublicKey(this.params, b, a, seed);
  }

  /**
   * Key switching from `target` (NTT over Q ∪ P at the top level) to s, for ciphertexts up to `level` (default:
   * the top): the key's polynomials are over Q_level ∪ P, with the digits of that level.
   */
  generateSwitchingKey(
    secretKey: SecretKey,
    target: Poly,
    seed: Uint8Array = this.#seed(),
    level: number = this.params.depth,
  ): SwitchingKey {
    this.#check(secretKey);
    const params = this.params;
    assertInteger(level, 'level', 0, params.depth);
    const moduli = params.moduliQPAtLevel(level);
    const qCount = params.limbsAtLevel(level);
    const s = restrictToLevel(params, secretKey.poly, level);
    const t = restrictToLevel(params, target, level);
    const errorPrng = this.#stream();
    const digits: { b: Poly; a: Poly }[] = [];
    for (let j = 0; j < params.keyDigitsAtLevel(level); j++) {
      const a = expandKeyUniform(params, level, seed, j);
      const b = this.#errorPoly(moduli, errorPrng);
      mulSubPoly(a, s, b);
      // + P·s' on the limbs of digit j (T_j ≡ 1 there, 0 on other Q limbs; P ≡ 0 on the P limbs).
      const start = j * params.digitSize;
      const end = Math.min(start + params.digitSize, qCount);
      const factor = scalarResidues(moduli, (m, i) => {
        if (i < start || i >= end) return 0;
        let product = 1;
        for (const p of params.pPrimes) product = mulMod(product, p % m.value, m.value);
        return product;
      });
      mulScalarAddPoly(t, factor, b);
      digits.push({ b, a });
    }
    if (s !== secretKey.poly) s.dispose();
    if (t !== target) t.dispose();
    return new SwitchingKey(params, digits, seed);
  }

  /** The relinearization key (switches s² to s). */
  generateRelinearizationKey(secretKey: SecretKey): SwitchingKey {
    const square = Poly.alloc(secretKey.poly.moduli, true, false);
    mulPoly(secretKey.poly, secretKey.poly, square);
    const key = this.generateSwitchingKey(secretKey, square);
    square.dispose();
    return key;
  }

  /**
   * The Galois key for X → X^g (switches σ_g(s) to s), for ciphertexts up to `level` (default: the top; see
   * {@link SwitchingKey.level}).
   */
  generateGaloisKey(
    secretKey: SecretKey,
    galoisElement: number,
    level: number = this.params.depth,
  ): GaloisKey {
    this.#check(secretKey);
    assertInteger(galoisElement, 'galoisElement', 1, 2 * this.params.n - 1);
    const rotated = Poly.alloc(secretKey.poly.moduli, true, false);
    automorphismNtt(
      secretKey.poly,
      nttAutomorphismIndex(this.params.logN, galoisElement, this.params.context),
      rotated,
    );
    const key = this.generateSwitchingKey(secretKey, rotated, undefined, level);
    rotated.dispose();
    return new GaloisKey(galoisElement, key);
  }

  /**
   * The relinearization key and the Galois keys for exactly the rotation steps (and conjugation) asked for.
   *
   * @example
   * ```ts
   * const evk = keygen.generateEvaluationKeys(sk, { rotations: [1, -1], conjugation: true });
   * ```
   */
  generateEvaluationKeys(secretKey: SecretKey, options: EvaluationKeyOptions = {}): EvaluationKeys {
    const relin = options.relinearization === false ? undefined : this.generateRelinearizationKey(secretKey);
    const levelOf = this.#levels(options);
    return new EvaluationKeys(
      relin,
      galoisElementsOf(this.params, options).map((g) => this.generateGaloisKey(secretKey, g, levelOf(g))),
    );
  }

  /**
   * The same keys as {@link generateEvaluationKeys}, made one at a time when asked (see
   * {@link EvaluationKeyStream}).
   *
   * @example
   * ```ts
   * const stream = keygen.streamEvaluationKeys(sk, { rotations: [1, 2, 4] });
   * ```
   */
  streamEvaluationKeys(secretKey: SecretKey, options: EvaluationKeyOptions = {}): EvaluationKeyStream {
    this.#check(secretKey);
    const levelOf = this.#levels(options);
    const elements = galoisElementsOf(this.params, options);
    const known = new Set(elements);
    return new EvaluationKeyStream(this.params, options.relinearization !== false, elements, (key) => {
      if (key === 'relinearization') return this.generateRelinearizationKey(secretKey);
      if (!known.has(key)) {
        throw new InvalidArgumentError(
          `Galois element ${key}: not one of the ${elements.length} this key stream makes`,
        );
      }
      return this.generateGaloisKey(secretKey, key, levelOf(key)).key;
    });
  }

  /** The level each Galois key is made for: `options.keyLevels` (checked), else the top. */
  #levels(options: EvaluationKeyOptions): (galoisElement: number) => number {
    const levels = options.keyLevels;
    if (!levels) return () => this.params.depth;
    const wanted = new Set(galoisElementsOf(this.params, options));
    for (const [g, level] of levels) {
      if (!wanted.has(g)) {
        throw new InvalidArgumentError(`keyLevels: Galois element ${g} is not among the keys asked for`);
      }
      assertInteger(level, `keyLevels level of Galois element ${g}`, 0, this.params.depth);
    }
    return (g) => levels.get(g) ?? this.params.depth;
  }

  #errorPoly(moduli: readonly Modulus[], prng: Prng): Poly {
    const error = sampleGaussian(prng, this.params.n);
    const poly = Poly.alloc(moduli, false, false);
    setSigned(poly, error);
    nttInPlace(poly);
    return poly;
  }

  #check(secretKey: SecretKey): void {
    if (secretKey.params !== this.params) {
      throw new MismatchError(
        `secret key parameters ${secretKey.parametersId} differ from the key generator's ${this.params.id}`,
      );
    }
  }
}

/**
 * The uniform polynomial `a` of a key or seeded ciphertext, sampled directly in the NTT domain from `seed`
 * (stream `label`); the same seed always gives the same polynomial.
 *
 * @example
 * ```ts
 * const a = expandUniform(params.moduliQPAtLevel(params.depth), seed, 0);
 * ```
 */
export function expandUniform(moduli: readonly Modulus[], seed: Uint8Array, label: number): Poly {
  const poly = Poly.alloc(moduli, true, false);
  sampleUniformRns(
    Prng.fromSeed(seed).fork(label),
    moduli.map((m) => m.value),
    moduli[0].n,
    poly.words(),
  );
  return poly;
}
