import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CrtComposer } from '../ring/crt.ts';
import {
  automorphismCoefficients,
  galoisElementForConjugation,
  galoisElementForRotation,
} from '../ring/galois.ts';
import { mulMod } from '../ring/modarith.ts';
import {
  inttInPlace,
  mulAddPoly,
  mulPoly,
  mulScalarPoly,
  nttInPlace,
  scalarResidues,
  setSigned,
  subPoly,
} from '../ring/ops.ts';
import { Poly } from '../ring/poly.ts';
import { DEFAULT_GAUSSIAN_SIGMA } from '../ring/sampling.ts';
import type { Decryptor } from './encryptor.ts';
import type { SecretKey, SwitchingKey } from './keys.ts';
import type { Ciphertext } from './objects.ts';
import { type Parameters, type ParametersLiteral, PRESETS } from './parameters.ts';
import { testContext } from '../../tests/support/ckks-context.ts';

/*
 * Noise-bound tests for key switching, in the spirit of Lattigo's rlwe noise tests: measure the noise a key or an
 * operation adds, in the coefficient domain and centered, and compare its log2 standard deviation with what the
 * parameters predict. A silent change in the error sampler, the key generator, the decomposition, the basis
 * extension or ModDown moves these figures.
 *
 * Notation: N ring degree, σ = 3.2 the error deviation, Q_ℓ the modulus at level ℓ, Q_j the product of the
 * primes of digit j of Q_ℓ (digits of `digitSize` = α primes, the last one possibly shorter), P the product of
 * the special primes, V_s the variance of a secret coefficient (2/3 for uniform ternary, h/N for weight h).
 *
 * Key error. A switching key from s' to s has, for every digit j, b_j + a_j·s = e_j + P·T_j·s' over Q_L ∪ P
 * (T_j ≡ 1 mod the primes of digit j, 0 mod the other primes of Q). So e_j is one fresh Gaussian: its log2 std is
 * log2 σ, and the clipped sampler keeps |e_j| ≤ ⌊6σ⌋. Lattigo checks the sum of the digits' errors against
 * log2(√dnum·σ) + 1; checking every digit, its mean and the correlation between digits is stricter.
 *
 * Key-switching noise (hybrid key switching: Han–Ki, "Better Bootstrapping for Approximate Homomorphic
 * Encryption", CT-RSA 2020; noise analysis as in Kim–Polyakov–Zucca, "Revisiting Homomorphic Encryption Schemes
 * for Finite Fields", ASIACRYPT 2021, written here as coefficient variances instead of canonical-embedding
 * bounds). With D_j the centered residue of c mod Q_j (extended exactly to Q_ℓ ∪ P), the inner product gives
 * acc_0 + acc_1·s = P·c·s' + Σ_j D_j·e_j, and ModDown returns d_i = (acc_i − r_i)/P with r_i the centered
 * residue of acc_i mod P (rounding). Hence
 *   d_0 + d_1·s − c·s' = (Σ_j D_j·e_j − r_0 − r_1·s) / P,
 * whose coefficients (D_j uniform on (−Q_j/2, Q_j/2), r_i/P uniform on (−1/2, 1/2), all independent) have
 *   V_ks = N·σ²/12 · Σ_j (Q_j/P)²   +   (1 + N·V_s)/12
 *          key errors times digits       ModDown rounding of d_0 and of d_1·s
 * and mean 0. The tests assert predicted − ¼ ≤ measured log2 std ≤ predicted + ¼ (Lattigo allows +1 bit; every case
 * here measures within 0.04 bits of its prediction, and a Gaussian of σ 4.0 instead of 3.2 moves it 0.32 bits)
 * and |mean| ≤ 6 standard errors. The lower bound sits above the rounding-only floor ½·log2((1 + N·V_s)/12), so
 * a key switch that lost its key term fails; one that stopped switching gives noise ≈ Q_ℓ and fails the upper
 * bound. The mean check catches biased rounding (floor for round in ModDown) and uncentered digits.
 *
 * Public-key encryption works over Q_ℓ ∪ P and divides by P: c_i = round((v·pk_i + e_i)/P), so
 *   c_0 + c_1·s − m = (v·e_pk + e_0 + e_1·s − r_0 − r_1·s) / P,
 *   V_pk = (N·(2/3)·σ² + σ² + N·V_s·σ²)/P²   +   (1 + N·V_s)/12
 * (v uniform ternary): the errors vanish under P and only the ModDown rounding is left. Secret-key encryption
 * adds exactly one Gaussian: log2 std = log2 σ.
 */

const SIGMA = DEFAULT_GAUSSIAN_SIGMA;
/** Slack above the predicted log2 std, and the margin below it (bits). */
const SLACK_ABOVE = 0.25;
const MARGIN_BELOW = 0.25;
/** Tolerance of the key errors' and of the fresh error's log2 std around log2 σ (bits). */
const SIGMA_TOLERANCE = 0.25;

const cases: { name: string; literal: ParametersLiteral }[] = [
  { name: 'logN 13, depth 4, 1 prime per level, 1 special prime (α 1, dnum 6)', literal: PRESETS.PN13QP218 },
  {
    name: 'logN 13, depth 3, 1 prime per level, 2 special primes (α 2, dnum 3)',
    literal: { logN: 13, depth: 3, specialPrimes: 2 },
  },
  {
    name: 'logN 13, depth 1, 2 primes per level, 2 special primes (α 2, dnum 3)',
    literal: { logN: 13, depth: 1, primesPerLevel: 2, specialPrimes: 2 },
  },
];

// ---------------------------------------------------------------------------------------------------------
// Measurement

interface NoiseStats {
  readonly values: Float64Array;
  readonly mean: number;
  readonly std: number;
  readonly log2Std: number;
  readonly max: number;
}

const composers = new Map<string, CrtComposer>();

/** The centered integer coefficients of `poly` (either domain; `poly` is left unchanged). */
function centeredCoefficients(poly: Poly): Float64Array {
  const copy = poly.copy();
  if (copy.isNtt) inttInPlace(copy);
  const moduli = copy.moduli.map((m) => m.value);
  const key = moduli.join(',');
  let composer = composers.get(key);
  if (!composer) {
    composer = new CrtComposer(moduli, copy.context);
    composers.set(key, composer);
  }
  const out = new Float64Array(copy.n);
  composer.compose(copy, out);
  copy.dispose();
  return out;
}

function statistics(values: Float64Array): NoiseStats {
  let sum = 0;
  let max = 0;
  for (const v of values) {
    sum += v;
    max = Math.max(max, Math.abs(v));
  }
  const mean = sum / values.length;
  let squares = 0;
  for (const v of values) squares += (v - mean) ** 2;
  const std = Math.sqrt(squares / values.length);
  return { values, mean, std, log2Std: Math.log2(std), max };
}

/** The noise a − b (same moduli, same domain), centered, in the coefficient domain. */
function difference(a: Poly, b: Poly): NoiseStats {
  const d = Poly.alloc(a.moduli, a.isNtt, false);
  subPoly(a, b, d);
  const stats = statistics(centeredCoefficients(d));
  d.dispose();
  return stats;
}

/** Pearson correlation of two equally long samples. */
function correlation(x: NoiseStats, y: NoiseStats): number {
  let c = 0;
  for (let i = 0; i < x.values.length; i++) c += (x.values[i] - x.mean) * (y.values[i] - y.mean);
  return c / (x.values.length * x.std * y.std);
}

/**
 * X → X^g on a coefficient-domain RNS polynomial, limb by limb (X^N = −1), written here from the definition so
 * that the expected result does not share the NTT-domain index tables the evaluator uses.
 */
function automorphismRns(poly: Poly, g: number): Poly {
  const n = poly.n;
  const out = Poly.alloc(poly.moduli, false, true);
  for (let l = 0; l < poly.limbCount; l++) {
    const q = poly.moduli[l].value;
    const from = poly.limb(l);
    const to = out.limb(l);
    for (let i = 0; i < n; i++) {
      const target = (i * g) % (2 * n);
      if (target < n) to[target] = from[i];
      else to[target - n] = from[i] === 0 ? 0 : q - from[i];
    }
  }
  return out;
}

/** The decryption of `ct` (any degree) without decoding, in the coefficient domain over Q_ℓ. */
function decryptCoefficients(decryptor: Decryptor, ct: Ciphertext): Poly {
  const poly = decryptor.decryptNew(ct).poly;
  inttInPlace(poly);
  return poly;
}

/** The secret's coefficients in {−1, 0, 1}. */
function secretCoefficients(secretKey: SecretKey): Int8Array {
  const copy = secretKey.poly.copy(1);
  inttInPlace(copy);
  const q = copy.moduli[0].value;
  const s = Int8Array.from(copy.limb(0), (v) => (v > q / 2 ? v - q : v));
  copy.dispose();
  return s;
}

/** The error e_j = b_j + a_j·s − P·T_j·target of every digit of `key` (target over Q_L ∪ P, NTT domain). */
function keyErrors(params: Parameters, key: SwitchingKey, secretKey: SecretKey, target: Poly): NoiseStats[] {
  const moduli = secretKey.poly.moduli;
  const qCount = params.qPrimes.length;
  return key.digits.map(({ b, a }, j) => {
    const start = j * params.digitSize;
    const end = Math.min(start + params.digitSize, qCount);
    // P·T_j: P mod q on the primes of digit j, 0 on the other primes of Q and on P.
    const factor = scalarResidues(moduli, (m, i) => {
      if (i < start || i >= end) return 0;
      return params.pPrimes.reduce((product, p) => mulMod(product, p % m.value, m.value), 1);
    });
    const shifted = Poly.alloc(moduli, true, false);
    mulScalarPoly(target, factor, shifted);
    const decrypted = b.copy();
    mulAddPoly(a, secretKey.poly, decrypted);
    const stats = difference(decrypted, shifted);
    shifted.dispose();
    decrypted.dispose();
    return stats;
  });
}

// ---------------------------------------------------------------------------------------------------------
// Predictions

/** Variance of one secret coefficient. */
function secretVariance(params: Parameters): number {
  return params.secret.kind === 'sparse-ternary' ? params.secret.hammingWeight / params.n : 2 / 3;
}

/** The ModDown rounding term (1 + N·V_s)/12: the noise floor of anything divided by P. */
function roundingVariance(params: Parameters): number {
  return (1 + params.n * secretVariance(params)) / 12;
}

/** Σ_j (Q_j / P)² over the digits of Q_ℓ, from the primes (not from the key switcher's own digit ranges). */
function digitRatioSquares(params: Parameters, level: number): number {
  const limbs = params.limbsAtLevel(level);
  const P = params.pPrimes.reduce((product, p) => product * p, 1);
  let sum = 0;
  for (let start = 0; start < limbs; start += params.digitSize) {
    let Qj = 1;
    for (let i = start; i < Math.min(start + params.digitSize, limbs); i++) Qj *= params.qPrimes[i];
    sum += (Qj / P) ** 2;
  }
  return sum;
}

/** Predicted log2 std of the noise one key switch adds at `level`, and the rounding-only floor. */
function keySwitchPrediction(params: Parameters, level: number): { log2Std: number; log2Floor: number } {
  const keyTerm = ((params.n * SIGMA ** 2) / 12) * digitRatioSquares(params, level);
  const rounding = roundingVariance(params);
  return { log2Std: 0.5 * Math.log2(keyTerm + rounding), log2Floor: 0.5 * Math.log2(rounding) };
}

/** Predicted log2 std of fresh public-key encryption noise. */
function publicKeyPrediction(params: Parameters): number {
  const P = params.pPrimes.reduce((product, p) => product * p, 1);
  const n = params.n;
  const errors = (n * (2 / 3) * SIGMA ** 2 + SIGMA ** 2 + n * secretVariance(params) * SIGMA ** 2) / P ** 2;
  return 0.5 * Math.log2(errors + roundingVariance(params));
}

const fmt = (x: number) => x.toFixed(3);

/** 6 standard errors of a sample mean: the noise is zero-mean, so a larger |mean| is a bias. */
function meanBound(stats: NoiseStats): number {
  return (6 * stats.std) / Math.sqrt(stats.values.length);
}

function assertWithinPrediction(what: string, noise: NoiseStats, predicted: number, floor?: number): void {
  const measured = noise.log2Std;
  const upper = predicted + SLACK_ABOVE;
  const lower = predicted - MARGIN_BELOW;
  assert.ok(
    measured <= upper,
    `${what}: log2 std ${fmt(measured)} above the bound ${fmt(upper)} (predicted ${fmt(predicted)} + ${SLACK_ABOVE})`,
  );
  assert.ok(
    measured >= lower,
    `${what}: log2 std ${fmt(measured)} below the bound ${fmt(lower)} (predicted ${fmt(predicted)} − ${MARGIN_BELOW})`,
  );
  assert.ok(
    Math.abs(noise.mean) <= meanBound(noise),
    `${what}: mean ${fmt(noise.mean)}, expected |mean| ≤ 6·std/√N = ${fmt(meanBound(noise))}`,
  );
  if (floor !== undefined) {
    // The lower bound only catches a key switch that lost its key term if it lies above the rounding floor.
    assert.ok(
      lower > floor,
      `${what}: lower bound ${fmt(lower)} not above the rounding-only floor ${fmt(floor)}: the check is vacuous`,
    );
  }
}

function assertSigma(what: string, noise: NoiseStats): void {
  assert.ok(
    Math.abs(noise.log2Std - Math.log2(SIGMA)) <= SIGMA_TOLERANCE,
    `${what}: log2 std ${fmt(noise.log2Std)}, expected log2 σ = ${fmt(Math.log2(SIGMA))} ± ${SIGMA_TOLERANCE}`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Tests

for (const { name, literal } of cases) {
  describe(`key-switching noise, ${name}`, () => {
    const ctx = testContext(literal, { rotations: [1, 3], conjugation: true }, 5);
    const { params, secretKey, evaluator: ev, decryptor } = ctx;
    const relinearizationKey = ctx.evaluationKeys.relinearization!;
    const rotateBy1 = galoisElementForRotation(1, params.logN);
    const rotateBy3 = galoisElementForRotation(3, params.logN);
    const conjugation = galoisElementForConjugation(params.logN);
    const levels = [params.depth, 0];

    it('relinearization and Galois keys: every digit error is one Gaussian (std σ, |e| ≤ 6σ, unbiased, independent)', () => {
      const square = Poly.alloc(secretKey.poly.moduli, true, false);
      mulPoly(secretKey.poly, secretKey.poly, square);
      const s = secretCoefficients(secretKey);
      const keys: [string, SwitchingKey, Poly][] = [['relinearization key', relinearizationKey, square]];
      for (const g of [rotateBy1, rotateBy3, conjugation]) {
        // s(X^g) from the coefficients, independently of the NTT-domain automorphism key generation uses.
        const target = Poly.alloc(secretKey.poly.moduli, false, false);
        setSigned(target, automorphismCoefficients(s, g));
        nttInPlace(target);
        keys.push([`Galois key ${g}`, ctx.evaluationKeys.galois.get(g)!.key, target]);
      }
      const correlationBound = 6 / Math.sqrt(params.n);
      for (const [what, key, target] of keys) {
        assert.equal(
          key.digits.length,
          params.digits,
          `${what}: ${key.digits.length} digits, expected ${params.digits}`,
        );
        const errors = keyErrors(params, key, secretKey, target);
        errors.forEach((e, j) => {
          const label = `${what}, digit ${j}`;
          assertSigma(label, e);
          assert.ok(e.max <= 6 * SIGMA, `${label}: max |e| = ${e.max}, expected ≤ 6σ = ${6 * SIGMA}`);
          assert.ok(
            Math.abs(e.mean) <= meanBound(e),
            `${label}: mean ${fmt(e.mean)}, expected |mean| ≤ 6·std/√N = ${fmt(meanBound(e))}`,
          );
          for (let k = 0; k < j; k++) {
            const r = correlation(errors[k], e);
            assert.ok(
              Math.abs(r) <= correlationBound,
              `${what}, digits ${k} and ${j}: error correlation ${fmt(r)}, expected |ρ| ≤ 6/√N = ${fmt(correlationBound)}`,
            );
          }
        });
        target.dispose();
      }
    });

    it('relinearization adds the predicted key-switching noise', () => {
      for (const level of levels) {
        const a = ctx.encrypt(ctx.uniform(params.slots, 1), level);
        const b = ctx.encrypt(ctx.uniform(params.slots, 2), level);
        const product = ev.mulNew(a, b);
        const relinearized = ev.relinearizeNew(product);
        // Exact arithmetic: relinearization must not change Dec(c_0, c_1, c_2) = c_0 + c_1·s + c_2·s².
        const expected = decryptCoefficients(decryptor, product);
        const got = decryptCoefficients(decryptor, relinearized);
        const { log2Std, log2Floor } = keySwitchPrediction(params, level);
        assertWithinPrediction(
          `relinearization, level ${level}`,
          difference(got, expected),
          log2Std,
          log2Floor,
        );
        for (const x of [a, b, product, relinearized, expected, got]) x.dispose();
      }
    });

    it('rotation, conjugation and hoisted rotation add the predicted key-switching noise', () => {
      for (const level of levels) {
        const ct = ctx.encrypt(ctx.uniform(params.slots, 3), level);
        const input = decryptCoefficients(decryptor, ct);
        const { log2Std, log2Floor } = keySwitchPrediction(params, level);
        const hoisted = ev.rotateHoistedNew(ct, [1, 3]);
        const results: [string, number, Ciphertext][] = [
          ['rotation by 1', rotateBy1, ev.rotateNew(ct, 1)],
          ['conjugation', conjugation, ev.conjugateNew(ct)],
          ['hoisted rotation by 1', rotateBy1, hoisted.get(1)!],
          ['hoisted rotation by 3', rotateBy3, hoisted.get(3)!],
        ];
        for (const [what, g, result] of results) {
          // Exact arithmetic: Dec(σ_g(ct) switched back to s) = σ_g(Dec(ct)).
          const expected = automorphismRns(input, g);
          const got = decryptCoefficients(decryptor, result);
          assertWithinPrediction(`${what}, level ${level}`, difference(got, expected), log2Std, log2Floor);
          for (const x of [expected, got, result]) x.dispose();
        }
        input.dispose();
        ct.dispose();
      }
    });

    it('fresh encryption: public key (divided by P) and secret key', () => {
      for (const level of levels) {
        const values = ctx.uniform(params.slots, 4);
        const pt = ctx.encoder.encodeNew(values, level);
        const publicCt = ctx.encryptPublic(values, level);
        const secretCt = ctx.encrypt(values, level);
        const publicDecrypted = decryptCoefficients(decryptor, publicCt);
        const secretDecrypted = decryptCoefficients(decryptor, secretCt);
        inttInPlace(pt.poly);
        assertWithinPrediction(
          `public-key encryption, level ${level}`,
          difference(publicDecrypted, pt.poly),
          publicKeyPrediction(params),
        );
        assertSigma(`secret-key encryption, level ${level}`, difference(secretDecrypted, pt.poly));
        for (const x of [pt, publicCt, secretCt, publicDecrypted, secretDecrypted]) x.dispose();
      }
    });
  });
}
