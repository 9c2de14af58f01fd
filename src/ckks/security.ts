/**
 * Largest log2(Q·P) for 128-bit classical security with a ternary (uniform or sparse) secret and error σ = 3.2.
 *
 * Source: HomomorphicEncryption.org Security Standard (Albrecht et al., 2018), Table 1, as tabulated in
 * Microsoft SEAL `native/src/seal/util/hestdparms.h` (N = 1024 … 32768); N = 65536 and 131072 from OpenFHE
 * `src/core/lib/lattice/stdlatticeparms.cpp` (ternary secret, 128-bit classical).
 *
 * @example
 * ```ts
 * MAX_LOG_QP_128[15]; // 881
 * ```
 */
export const MAX_LOG_QP_128: Readonly<Record<number, number>> = Object.freeze({
  10: 27,
  11: 54,
  12: 109,
  13: 218,
  14: 438,
  15: 881,
  16: 1747,
  17: 3523,
});

/**
 * The 128-bit bound for ring degree 2^logN, or undefined where the standard gives none.
 *
 * @example
 * ```ts
 * maxLogQP128(14); // 438
 * ```
 */
export function maxLogQP128(logN: number): number | undefined {
  return MAX_LOG_QP_128[logN];
}
