import { check } from '../../src/util/assert.js';
/**
 * The median of a non-empty list (the mean of the two middle values for an even count); benchmarks report it over
 * rounds because a shared machine's slow outliers would move a mean.
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * median([4, 1, 3, 2]); // 2.5
 * ```
 */
export function median(values) {
  check(values.length > 0, () => 'median: expected at least one value, got an empty list');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
