import { performance } from 'node:perf_hooks';

/**
 * Union length of time intervals reported out of order (completions of concurrent transfers): busy wall time.
 * Each transfer is registered when issued ({@link BusyIntervals.begin}); no interval reported later can start
 * before the earliest issue still in flight, so everything that ended before it is folded into a running total.
 * Memory stays proportional to the transfers in flight and merging costs amortised O(log n) per transfer, however
 * long the owner lives (an unbounded list re-sorted on every completion once it grew past a threshold had made
 * each read of a long-lived tier slower than the last).
 *
 * @example
 * ```ts
 * const busy = new BusyIntervals();
 * const token = busy.begin();
 * const done = await transfer(); // { startMs, endMs } in absolute milliseconds
 * busy.end(token, done);
 * console.log(busy.busyNs);
 * ```
 */
export class BusyIntervals {
  #list: [number, number][] = [];
  #foldedMs = 0;
  #mergeAt = 256;
  /** Issue time (absolute ms) of each transfer in flight, by token. */
  readonly #inFlight = new Map<number, number>();
  #nextToken = 0;
  readonly #nowMs: () => number;

  /** `nowMs`: the clock intervals are measured in (default: absolute milliseconds, comparable across threads). */
  constructor(nowMs: () => number = () => performance.timeOrigin + performance.now()) {
    this.#nowMs = nowMs;
  }

  /** Registers a transfer about to be issued; pass the token to {@link BusyIntervals.end}. */
  begin(): number {
    const token = this.#nextToken++;
    this.#inFlight.set(token, this.#nowMs());
    return token;
  }

  /** The transfer `token` finished; `interval` is when it was busy, if it ran (omit it for a failed transfer). */
  end(token: number, interval?: { startMs: number; endMs: number }): void {
    this.#inFlight.delete(token);
    if (!interval) return;
    this.#list.push([interval.startMs, interval.endMs]);
    if (this.#list.length >= this.#mergeAt) this.#merge();
  }

  /** Busy time so far: the length of the union of every reported interval, in nanoseconds. */
  get busyNs(): number {
    this.#merge();
    let total = this.#foldedMs;
    for (const [a, b] of this.#list) total += b - a;
    return total * 1e6;
  }

  /** Intervals held unmerged or not yet folded (bounded by the transfers in flight, not by those finished). */
  get retained(): number {
    return this.#list.length;
  }

  #merge(): void {
    const sorted = this.#list.sort((x, y) => x[0] - y[0]);
    const merged: [number, number][] = [];
    for (const [a, b] of sorted) {
      const last = merged[merged.length - 1];
      if (last && a <= last[1]) last[1] = Math.max(last[1], b);
      else merged.push([a, b]);
    }
    let horizon = this.#nowMs();
    for (const issued of this.#inFlight.values()) horizon = Math.min(horizon, issued);
    let folded = 0;
    while (folded < merged.length && merged[folded][1] < horizon) {
      this.#foldedMs += merged[folded][1] - merged[folded][0];
      folded++;
    }
    this.#list = merged.slice(folded);
    this.#mergeAt = Math.max(256, 2 * this.#list.length);
  }
}
