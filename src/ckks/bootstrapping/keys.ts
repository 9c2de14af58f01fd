import { inttInPlace, mulAddPoly, mulSubPoly, nttInPlace, setSigned } from '../../ring/ops.ts';
import { Poly } from '../../ring/poly.ts';
import { Prng } from '../../ring/prng.ts';
import { sampleGaussian, sampleSparseTernary } from '../../ring/sampling.ts';
import { MismatchError } from '../../util/errors.ts';
import type { GaloisKeySource } from '../key-source.ts';
import {
  disposeKeyDigits,
  expandUniform,
  type KeyGenerator,
  type SecretKey,
  type SwitchingKey,
} from '../keys.ts';
import { Ciphertext } from '../objects.ts';
import type { Parameters } from '../parameters.ts';

/**
 * The key that moves a level-0 ciphertext from the dense secret s to the ephemeral sparse secret s′: one RLWE
 * sample per prime q_j of q0, (b_j, a_j) = (−a_j·s′ + e_j + T_j·s, a_j) mod q0, with T_j ≡ 1 (mod q_j) and
 * ≡ 0 modulo the other primes. It is a BV-style key over q0 alone (no special primes): its modulus is the
 * smallest in the scheme, which is what makes a sparse secret safe here (see docs/bootstrapping.md). The
 * switch adds Σ_j d_j·e_j with |d_j| < q_j/2: about 2^40 at N = 2^16, 2^-36 of the message at the default ratio.
 *
 * @example
 * ```ts
 * const moved = keys.denseToSparse.switchNew(ct); // ct at level 0
 * ```
 */
export class DenseToSparseKey {
  readonly params: Parameters;
  readonly digits: ReadonlyArray<{ readonly b: Poly; readonly a: Poly }>;

  constructor(params: Parameters, digits: ReadonlyArray<{ b: Poly; a: Poly }>) {
    this.params = params;
    this.digits = digits;
  }

  get byteLength(): number {
    return this.digits.reduce((sum, d) => sum + d.a.byteLength + d.b.byteLength, 0);
  }

  /** The level-0 ciphertext `ct` (under s) as a new ciphertext under s′, same level and scale. */
  switchNew(ct: Ciphertext): Ciphertext {
    this.params.checkSame(ct.params, 'denseToSparse: ciphertext');
    if (ct.level !== 0 || ct.degree !== 1) {
      throw new MismatchError(
        `denseToSparse: ciphertext at level ${ct.level}, degree ${ct.degree}: expected level 0, degree 1`,
      );
    }
    const moduli = this.params.moduliAtLevel(0);
    const n = this.params.n;
    const c1 = ct.polys[1].copy();
    inttInPlace(c1);
    const c0 = ct.polys[0].copy();
    const c1Out = Poly.alloc(moduli, true);
    const digit = Poly.alloc(moduli, false, false);
    try {
      for (let j = 0; j < moduli.length; j++) {
        // d_j = [c1]_{q_j}, centered, written modulo every prime of q0.
        const qj = moduli[j].value;
        const source = c1.limb(j);
        for (let i = 0; i < moduli.length; i++) {
          const qi = moduli[i].value;
          const limb = digit.limb(i);
          for (let k = 0; k < n; k++) {
            const v = source[k] > qj / 2 ? source[k] - qj : source[k];
            limb[k] = v < 0 ? (v % qi) + qi : v % qi;
          }
        }
        digit.isNtt = false;
        nttInPlace(digit);
        mulAddPoly(digit, this.digits[j].b, c0);
        mulAddPoly(digit, this.digits[j].a, c1Out);
      }
    } catch (error) {
      // The result's polynomials are kernel memory: an arena that runs out mid-way must not keep them.
      c0.dispose();
      c1Out.dispose();
      throw error;
    } finally {
      c1.dispose();
      digit.dispose();
    }
    return new Ciphertext(this.params, [c0, c1Out], 0, ct.scale);
  }

  dispose(): void {
    disposeKeyDigits(this.digits);
  }
}

/**
 * Everything a bootstrapping evaluator needs from the client: the relinearization key, the Galois keys of the
 * transforms (a {@link GaloisKeySource}: at logN 16 they outgrow kernel memory), and the two keys of sparse-secret
 * encapsulation (Bossuat, Troncoso-Pastoriza and Hubaux, 2022): dense → sparse at level 0 (over q0 only) and
 * sparse → dense at the top (an ordinary hybrid key under the dense secret). The ephemeral secret itself is dropped
 * once they are made.
 *
 * @example
 * ```ts
 * const keys = Bootstrapper.generateKeys(bp, keygen, sk);
 * ```
 */
export interface BootstrappingKeys {
  readonly relinearization: SwitchingKey;
  /** The Galois keys of the rotations and of conjugation: in kernel memory, or fetched a few at a time. */
  readonly galois: GaloisKeySource;
  readonly denseToSparse: DenseToSparseKey;
  readonly sparseToDense: SwitchingKey;
}

/**
 * Makes the two encapsulation keys for a fresh ephemeral sparse secret of weight `hammingWeight`.
 *
 * @example
 * ```ts
 * const { denseToSparse, sparseToDense } = generateEncapsulationKeys(params, keygen, sk, 32);
 * ```
 */
export function generateEncapsulationKeys(
  params: Parameters,
  keygen: KeyGenerator,
  secretKey: SecretKey,
  hammingWeight: number,
  prng: Prng = Prng.fresh(),
): { denseToSparse: DenseToSparseKey; sparseToDense: SwitchingKey } {
  params.checkSame(secretKey.params, 'bootstrapping keys: secret key');
  const n = params.n;
  const coefficients = sampleSparseTernary(prng, n, hammingWeight);
  const sparse = Poly.alloc(params.moduliQPAtLevel(params.depth), false, false);
  setSigned(sparse, coefficients);
  coefficients.fill(0);
  nttInPlace(sparse);
  try {
    const sparseToDense = keygen.generateSwitchingKey(secretKey, sparse);
    const base = params.moduliAtLevel(0);
    const seed = new Uint8Array(32);
    prng.nextBytes(seed);
    const sparseBase = sparse.copy(base.length);
    const digits: { b: Poly; a: Poly }[] = [];
    for (let j = 0; j < base.length; j++) {
      const a = expandUniform(base, seed, j);
      const b = Poly.alloc(base, false, false);
      setSigned(b, sampleGaussian(prng, n));
      nttInPlace(b);
      mulSubPoly(a, sparseBase, b);
      // + T_j·s: s on limb j only.
      const limb = b.limb(j);
      const s = secretKey.poly.limb(j);
      const q = base[j].value;
      for (let k = 0; k < n; k++) {
        const v = limb[k] + s[k];
        limb[k] = v >= q ? v - q : v;
      }
      digits.push({ b, a });
    }
    sparseBase.words().fill(0);
    sparseBase.dispose();
    return { denseToSparse: new DenseToSparseKey(params, digits), sparseToDense };
  } finally {
    sparse.words().fill(0);
    sparse.dispose();
  }
}
