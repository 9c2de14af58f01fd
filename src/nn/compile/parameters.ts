/** Parameter choice: the smallest 128-bit-secure CKKS parameters that hold a program's depth. */
import { Parameters, type ParametersLiteral } from '../../ckks/parameters.ts';
import { maxLogQP128 } from '../../ckks/security.ts';
import { defaultBasePrimes } from '../../ckks/shape.ts';
import { nttFriendlyPrimes } from '../../ring/primes.ts';
import { assertInteger } from '../../util/assert.ts';
import { SecurityError } from '../../util/errors.ts';

/**
 * The smallest 128-bit-secure parameters for `depth` levels: the smallest logN whose bound holds
 * base + depth·primesPerLevel Q primes and at least one special prime; special primes fill the rest of the budget
 * (fewer key-switching digits, faster relinearization).
 *
 * @throws SecurityError naming the depth and the largest depth any secure set in range offers.
 * @example
 * ```ts
 * chooseParameters(5, { primesPerLevel: 1, basePrimes: 2 }); // logN 14 for CryptoNets
 * ```
 */
export function chooseParameters(
  depth: number,
  options: {
    primesPerLevel?: 1 | 2;
    basePrimes?: number;
    minLogN?: number;
    maxLogN?: number;
    /** Tests only: this ring degree whatever its security (made with `insecure: true`, which warns). */
    insecureLogN?: number;
  } = {},
): Parameters {
  assertInteger(depth, 'depth', 0);
  const ppl = options.primesPerLevel ?? 1;
  const base = options.basePrimes ?? defaultBasePrimes(ppl);
  if (options.insecureLogN !== undefined) {
    assertInteger(options.insecureLogN, 'insecureLogN', 10, 17);
    const qCount = base + depth * ppl;
    // About a quarter as many special primes as Q primes: four key-switching digits, as the secure sets have.
    return Parameters.create({
      logN: options.insecureLogN,
      depth,
      primesPerLevel: ppl,
      basePrimes: base,
      specialPrimes: Math.max(1, Math.ceil(qCount / 4)),
      insecure: true,
    });
  }
  const minLogN = options.minLogN ?? 13;
  const maxLogN = options.maxLogN ?? 16;
  assertInteger(minLogN, 'minLogN', 10, 17);
  assertInteger(maxLogN, 'maxLogN', minLogN, 17);
  const qCount = base + depth * ppl;
  let largestDepth = -1;
  let largestAt = minLogN;
  for (let logN = minLogN; logN <= maxLogN; logN++) {
    const bound = maxLogQP128(logN);
    if (bound === undefined) continue;
    // Every prime is below 2^30, so ⌊bound/30⌋ primes always fit; one more may, which Parameters checks.
    const budget = Math.min(Math.floor(bound / 30), nttFriendlyPrimes(logN).length);
    const fits = Math.floor((budget - base - 1) / ppl);
    if (fits > largestDepth) {
      largestDepth = fits;
      largestAt = logN;
    }
    if (qCount + 1 > budget) continue;
    const literal: ParametersLiteral = {
      logN,
      depth,
      primesPerLevel: ppl,
      basePrimes: base,
      specialPrimes: Math.min(qCount, budget - qCount),
    };
    try {
      return Parameters.create(literal);
    } catch (e) {
      if (!(e instanceof SecurityError)) throw e;
    }
  }
  throw new SecurityError(
    `the model needs multiplicative depth ${depth} (${qCount} moduli of ${30 * ppl} bits per level and base), ` +
      `but the largest depth a 128-bit-secure parameter set offers is ${Math.max(0, largestDepth)} ` +
      `(logN = ${largestAt}, logN ≤ ${maxLogN}): use a shallower model (fewer multiplicative layers, lower ` +
      'polynomial degrees)',
  );
}
