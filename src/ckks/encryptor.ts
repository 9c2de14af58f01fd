import type { Modulus } from '../ring/modulus.ts';
import { addPoly, mulPoly, mulSubPoly, nttInPlace, setSigned } from '../ring/ops.ts';
import { Poly } from '../ring/poly.ts';
import { Prng } from '../ring/prng.ts';
import { sampleGaussian, sampleTernary } from '../ring/sampling.ts';
import { MismatchError } from '../util/errors.ts';
import { expandUniform, type PublicKey, type SecretKey } from './keys.ts';
import { KeySwitcher } from './keyswitch.ts';
import { Ciphertext, Plaintext } from './objects.ts';
import type { Parameters } from './parameters.ts';

function checkKeyParameters(
  kind: string,
  key: { params: Parameters; parametersId: string },
  params: Parameters,
): void {
  params.checkSame(key.params, kind);
}

function signedPoly(moduli: readonly Modulus[], values: Int8Array | Int32Array): Poly {
  const poly = Poly.alloc(moduli, false, false);
  setSigned(poly, values);
  nttInPlace(poly);
  return poly;
}

/**
 * Public-key encryption: (v·b + e_0 + m, v·a + e_1) with v ternary and e_i Gaussian.
 *
 * @example
 * ```ts
 * const ct = new Encryptor(params, publicKey).encryptNew(encoder.encodeNew([1, 2, 3]));
 * ```
 */
export class Encryptor {
  readonly params: Parameters;
  readonly #publicKey: PublicKey;

  constructor(params: Parameters, publicKey: PublicKey) {
    checkKeyParameters('public key', publicKey, params);
    this.params = params;
    this.#publicKey = publicKey;
  }

  /** Encrypts at the plaintext's level and scale. */
  encryptNew(pt: Plaintext, prng: Prng = Prng.fresh()): Ciphertext {
    checkPlaintext(this.params, pt);
    const params = this.params;
    const moduli = params.moduliQPAtLevel(pt.level);
    const limbs = params.limbsAtLevel(pt.level);
    const qTop = params.qPrimes.length;
    const n = params.n;
    const v = signedPoly(moduli, sampleTernary(prng, n));
    const x0 = Poly.alloc(moduli, true, false);
    const x1 = Poly.alloc(moduli, true, false);
    const k = this.params.context.exports;
    const { b, a } = this.#publicKey;
    for (let i = 0; i < moduli.length; i++) {
      const keyLimb = i < limbs ? i : qTop + (i - limbs);
      const m = moduli[i];
      k.mul(x0.limbPointer(i), v.limbPointer(i), b.limbPointer(keyLimb), n, m.value, m.barrett);
      k.mul(x1.limbPointer(i), v.limbPointer(i), a.limbPointer(keyLimb), n, m.value, m.barrett);
    }
    v.dispose();
    // (v·b + e0, v·a + e1) / P: the errors enter ModDown in the coefficient domain (no NTT needed for them).
    const switcher = KeySwitcher.for(params);
    const c0 = switcher.modDown(x0, pt.level, sampleGaussian(prng, n));
    const c1 = switcher.modDown(x1, pt.level, sampleGaussian(prng, n));
    x0.dispose();
    x1.dispose();
    addPoly(c0, pt.poly, c0);
    return new Ciphertext(params, [c0, c1], pt.level, pt.scale);
  }
}

/**
 * A symmetric-key ciphertext whose uniform half is expanded from a 32-byte seed: it serializes at half size.
 *
 * @example
 * ```ts
 * const bytes = serializeCiphertext(new SymmetricEncryptor(params, sk).encryptNew(pt), { seeded: true });
 * ```
 */
export class SeededCiphertext extends Ciphertext {
  readonly seed: Uint8Array;

  constructor(params: Parameters, polys: Poly[], level: number, scale: number, seed: Uint8Array) {
    super(params, polys, level, scale);
    this.seed = seed;
  }
}

/**
 * Secret-key encryption (−a·s + e + m, a) with a expanded from a fresh seed, so the ciphertext can be sent as
 * (c_0, seed). Used by the client, which holds the secret key.
 *
 * @example
 * ```ts
 * const ct = new SymmetricEncryptor(params, secretKey).encryptNew(pt);
 * ```
 */
export class SymmetricEncryptor {
  readonly params: Parameters;
  readonly #secretKey: SecretKey;

  constructor(params: Parameters, secretKey: SecretKey) {
    checkKeyParameters('secret key', secretKey, params);
    this.params = params;
    this.#secretKey = secretKey;
  }

  encryptNew(
    pt: Plaintext,
    seed: Uint8Array = Prng.freshSeed(),
    prng: Prng = Prng.fresh(),
  ): SeededCiphertext {
    checkPlaintext(this.params, pt);
    const moduli = this.params.moduliAtLevel(pt.level);
    const a = expandUniform(moduli, seed, 0);
    const c0 = signedPoly(moduli, sampleGaussian(prng, this.params.n));
    mulSubPoly(a, this.#secretKey.poly, c0);
    addPoly(c0, pt.poly, c0);
    return new SeededCiphertext(this.params, [c0, a], pt.level, pt.scale, seed);
  }
}

/**
 * Decryption: m = Σ_i c_i·s^i (handles degree-2 ciphertexts too).
 *
 * @example
 * ```ts
 * const values = encoder.decode(new Decryptor(params, secretKey).decryptNew(ct));
 * ```
 */
export class Decryptor {
  readonly params: Parameters;
  readonly #secretKey: SecretKey;

  constructor(params: Parameters, secretKey: SecretKey) {
    checkKeyParameters('secret key', secretKey, params);
    this.params = params;
    this.#secretKey = secretKey;
  }

  decryptNew(ct: Ciphertext): Plaintext {
    if (ct.params !== this.params) {
      throw new MismatchError(
        `ciphertext parameters ${ct.parametersId} differ from the decryptor's ${this.params.id}`,
      );
    }
    const moduli = this.params.moduliAtLevel(ct.level);
    const out = ct.polys[ct.degree].copy(moduli.length);
    // Horner: ((c_d·s + c_{d−1})·s + …)·s + c_0.
    for (let i = ct.degree - 1; i >= 0; i--) {
      mulPoly(out, this.#secretKey.poly, out);
      addPoly(out, ct.polys[i], out);
    }
    return new Plaintext(this.params, out, ct.level, ct.scale);
  }
}

function checkPlaintext(params: Parameters, pt: Plaintext): void {
  if (pt.params !== params) {
    throw new MismatchError(
      `plaintext parameters ${pt.parametersId} differ from the encryptor's ${params.id}`,
    );
  }
  if (!pt.poly.isNtt)
    throw new MismatchError('plaintext is in the coefficient domain: expected the NTT domain');
}
