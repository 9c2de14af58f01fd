/**
 * Helpers shared by the `src/nn` tests only (never imported by library code): deterministic pseudo-random values
 * from fast-check's seeded generator and a tolerance check against onnxruntime's float32 outputs.
 */
import fc from 'fast-check';

/**
 * `n` doubles in [min, max], the same for the same seed.
 *
 * @example
 * ```ts
 * const weights = seededValues(75, 42, -0.5, 0.5);
 * ```
 */
export function seededValues(n: number, seed: number, min = -1, max = 1): Float64Array {
  const [values] = fc.sample(
    fc.array(fc.double({ min, max, noNaN: true, noDefaultInfinity: true }), { minLength: n, maxLength: n }),
    { seed, numRuns: 1 },
  );
  return Float64Array.from(values);
}

/**
 * Largest difference between two output batches relative to each row's magnitude: |a − b| / max(1, max|row of b|).
 * onnxruntime computes in float32, so an absolute bound cannot hold for large logits; this is the scale-aware one.
 *
 * @example
 * ```ts
 * assert.ok(rowRelativeError(simulated, reference, 10) < 1e-4);
 * ```
 */
export function rowRelativeError(a: ArrayLike<number>, b: ArrayLike<number>, columns: number): number {
  let worst = 0;
  for (let r = 0; r * columns < b.length; r++) {
    let scale = 1;
    for (let c = 0; c < columns; c++) scale = Math.max(scale, Math.abs(b[r * columns + c]));
    for (let c = 0; c < columns; c++) {
      const d = Math.abs(a[r * columns + c] - b[r * columns + c]) / scale;
      worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(worst, d);
    }
  }
  return worst;
}
