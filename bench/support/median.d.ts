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
export declare function median(values: readonly number[]): number;
