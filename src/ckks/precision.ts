/**
 * Precision statistics of a decrypted result against the exact values, as Lattigo reports them: log2 of the
 * maximum, mean and median absolute error over all slots (real parts, or complex modulus where given).
 *
 * @example
 * ```ts
 * const stats = precisionStats(expected, encoder.decode(decryptor.decryptNew(ct)));
 * stats.log2MaxError; // e.g. -15.4
 * ```
 */
export interface PrecisionStats {
  readonly log2MaxError: number;
  readonly log2MeanError: number;
  readonly log2MedianError: number;
  readonly slots: number;
}

/**
 * Computes {@link PrecisionStats} of `got` against `expected` over the first `count` slots.
 *
 * @example
 * ```ts
 * precisionStats([1, 2], [1.0001, 1.9999]).log2MaxError; // ≈ −13.3
 * ```
 */
export function precisionStats(
  expected: ArrayLike<number>,
  got: ArrayLike<number>,
  count = expected.length,
): PrecisionStats {
  const errors = new Float64Array(count);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const e = Math.abs(got[i] - expected[i]);
    errors[i] = e;
    if (e > max) max = e;
    sum += e;
  }
  errors.sort();
  return {
    log2MaxError: Math.log2(max),
    log2MeanError: Math.log2(sum / count),
    log2MedianError: Math.log2(errors[count >> 1]),
    slots: count,
  };
}
