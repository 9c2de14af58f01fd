/*
 * What a writer checks of the object it is given before writing a byte: polynomials on the moduli its header
 * will declare, their domain, the scale, and that a seed still expands to the uniform half it stands for.
 */
import type { Modulus } from '../../ring/modulus.ts';
import type { Poly } from '../../ring/poly.ts';
import { SEED_BYTES } from '../../ring/prng.ts';
import { describe } from '../../util/assert.ts';
import { InvalidArgumentError } from '../../util/errors.ts';
import { expandUniform } from '../keys.ts';
import { FLAG_NTT } from './format.ts';

/**
 * Throws unless `poly` has exactly the degree, limb count and primes of `moduli`.
 *
 * @example
 * ```ts
 * checkPolyModuli(pt.poly, params.moduliAtLevel(pt.level), 'plaintext polynomial');
 * ```
 */
export function checkPolyModuli(poly: Poly, moduli: readonly Modulus[], what: string): void {
  const matches =
    poly.n === moduli[0].n &&
    poly.limbCount === moduli.length &&
    poly.moduli.every((m, i) => m.value === moduli[i].value);
  if (!matches) {
    throw new InvalidArgumentError(
      `${what}: ${poly.limbCount} limbs of degree ${poly.n} with primes [${poly.moduli.map((m) => m.value).join(', ')}]: ` +
        `expected ${moduli.length} limbs of degree ${moduli[0].n} with primes [${moduli.map((m) => m.value).join(', ')}]`,
    );
  }
}

/**
 * Throws unless `seed` is a Uint8Array of SEED_BYTES bytes.
 *
 * @example
 * ```ts
 * checkSeed(pk.seed, 'public key');
 * ```
 */
export function checkSeed(seed: Uint8Array, what: string): void {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_BYTES) {
    throw new InvalidArgumentError(
      `${what} seed = ${describe(seed)}: expected a Uint8Array of ${SEED_BYTES} bytes`,
    );
  }
}

/**
 * Throws unless limb 0 of `uniform` is still what `seed` expands to. Expanding one limb costs 1/limbs of a full
 * expansion and catches the real hazard: an object modified in place after it was made (which changes every limb),
 * whose seed would then regenerate a different polynomial on the receiver.
 *
 * @example
 * ```ts
 * checkSeedStillMatches(pk.a, pk.seed, 0, moduli[0], 'public key a');
 * ```
 */
export function checkSeedStillMatches(
  uniform: Poly,
  seed: Uint8Array,
  label: number,
  modulus: Modulus,
  what: string,
): void {
  const first = expandUniform([modulus], seed, label);
  const expected = first.limb(0);
  const actual = uniform.limb(0);
  let same = true;
  for (let i = 0; i < expected.length; i++) {
    if (expected[i] !== actual[i]) {
      same = false;
      break;
    }
  }
  first.dispose();
  if (!same) {
    throw new InvalidArgumentError(
      `${what} no longer equals the expansion of its seed (the object was modified after it was made): ` +
        'expected an unmodified object, or serialize it with seeded: false',
    );
  }
}

/**
 * Throws unless `scale` is finite and positive.
 *
 * @example
 * ```ts
 * checkScaleValue(ct.scale, 'ciphertext');
 * ```
 */
export function checkScaleValue(scale: number, what: string): void {
  if (!(Number.isFinite(scale) && scale > 0)) {
    throw new InvalidArgumentError(`${what} scale = ${scale}: expected a finite positive number`);
  }
}

/**
 * The NTT flag of polynomials that must all be in one domain (0 for the coefficient domain).
 *
 * @example
 * ```ts
 * const flags = domainFlag(ct.polys, 'ciphertext');
 * ```
 */
export function domainFlag(polys: readonly Poly[], what: string): number {
  const ntt = polys[0].isNtt;
  if (polys.some((p) => p.isNtt !== ntt)) {
    throw new InvalidArgumentError(
      `${what}: polynomials in mixed domains: expected all NTT or all coefficient`,
    );
  }
  return ntt ? FLAG_NTT : 0;
}

/**
 * Throws unless every polynomial is in the NTT domain (keys and seeded ciphertexts are stored only there).
 *
 * @example
 * ```ts
 * checkNtt([pk.b, pk.a], 'public key');
 * ```
 */
export function checkNtt(polys: readonly Poly[], what: string): void {
  if (polys.some((p) => !p.isNtt)) {
    throw new InvalidArgumentError(
      `${what}: a polynomial in the coefficient domain: expected the NTT domain`,
    );
  }
}
