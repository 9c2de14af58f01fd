/**
 * Admission of requests: per-tenant quotas (a request rate as a token bucket, and a number of inferences waiting
 * or running at once) refused with 429 `QUOTA_EXCEEDED`, and the server's own limit on its inference queue refused
 * with 503 `OVERLOADED`. The two differ for a reason: a tenant over its quota is told to slow down while others are
 * served; an overloaded server is full for everyone and a load balancer may send the request elsewhere.
 */
import { InvalidArgumentError } from '../util/errors.ts';
import { RetryLaterError } from './errors.ts';

/**
 * Limits of {@link Admission}; each is off when absent.
 *
 * @example
 * ```ts
 * const quotas: QuotaOptions = { requestsPerSecond: 20, burst: 40, concurrentInferences: 4, maxQueue: 64 };
 * ```
 */
export interface QuotaOptions {
  /** Requests per second one tenant may send on average (health, metadata and inference alike). */
  readonly requestsPerSecond?: number;
  /** Requests one tenant may send at once after a pause (default: the rate, at least 1). */
  readonly burst?: number;
  /** Inferences of one tenant waiting or running at once (synchronous and jobs). */
  readonly concurrentInferences?: number;
  /** Inferences of all tenants waiting or running at once past which the server answers 503. */
  readonly maxQueue?: number;
  /** The clock, in milliseconds since the epoch (default `Date.now`). */
  readonly now?: () => number;
}

/**
 * How full the inference queue is, as the engine counts it.
 *
 * @example
 * ```ts
 * const queue: QueueState = { depth: () => engine.depth, pending: (t) => engine.pending(t) };
 * ```
 */
export interface QueueState {
  depth(): number;
  pending(tenant: string): number;
}

/**
 * The admission checks of a server.
 *
 * @example
 * ```ts
 * const admission = new Admission({ requestsPerSecond: 10 }, queue);
 * admission.request('acme');   // each authenticated request
 * admission.inference('acme'); // before queueing an inference
 * ```
 */
export class Admission {
  readonly #rate: number | undefined;
  readonly #burst: number;
  readonly #concurrent: number | undefined;
  readonly #maxQueue: number | undefined;
  readonly #now: () => number;
  readonly #queue: QueueState;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  /** Mean seconds of an inference (exponentially weighted), for the overload answer's Retry-After. */
  #meanSeconds = 1;

  /** @throws InvalidArgumentError for a limit that is not a positive number. */
  constructor(options: QuotaOptions, queue: QueueState) {
    for (const name of ['requestsPerSecond', 'burst', 'concurrentInferences', 'maxQueue'] as const) {
      const value = options[name];
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
        throw new InvalidArgumentError(`${name} ${value}: expected a positive number`);
      }
    }
    this.#rate = options.requestsPerSecond;
    this.#burst = options.burst ?? Math.max(1, options.requestsPerSecond ?? 1);
    this.#concurrent = options.concurrentInferences;
    this.#maxQueue = options.maxQueue;
    this.#now = options.now ?? Date.now;
    this.#queue = queue;
  }

  /**
   * Takes one request from the tenant's bucket.
   *
   * @throws RetryLaterError (QUOTA_EXCEEDED, 429) when the bucket is empty, with the seconds until a token is back.
   */
  request(tenant: string): void {
    const rate = this.#rate;
    if (rate === undefined) return;
    const now = this.#now();
    const bucket = this.#buckets.get(tenant) ?? { tokens: this.#burst, at: now };
    bucket.tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    this.#buckets.set(tenant, bucket);
    if (bucket.tokens < 1) {
      throw new RetryLaterError(
        'QUOTA_EXCEEDED',
        `tenant "${tenant}": over its quota of ${rate} requests per second`,
        (1 - bucket.tokens) / rate,
      );
    }
    bucket.tokens -= 1;
  }

  /**
   * Checks that one more inference of the tenant may queue (call it right before queueing, in the same tick).
   *
   * @throws RetryLaterError: QUOTA_EXCEEDED (429) when the tenant has its most inferences in flight; OVERLOADED
   *   (503) when the server's queue is full.
   */
  inference(tenant: string): void {
    const mine = this.#queue.pending(tenant);
    if (this.#concurrent !== undefined && mine >= this.#concurrent) {
      throw new RetryLaterError(
        'QUOTA_EXCEEDED',
        `tenant "${tenant}": ${mine} inferences in flight, its quota is ${this.#concurrent}`,
        this.#meanSeconds,
      );
    }
    const depth = this.#queue.depth();
    if (this.#maxQueue !== undefined && depth >= this.#maxQueue) {
      throw new RetryLaterError(
        'OVERLOADED',
        `server overloaded: ${depth} inferences queued (the most is ${this.#maxQueue}); try again later`,
        this.#meanSeconds * (depth - this.#maxQueue + 1),
      );
    }
  }

  /** Records how long an inference took (for later Retry-After estimates). */
  finished(seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.#meanSeconds = 0.8 * this.#meanSeconds + 0.2 * seconds;
  }
}
