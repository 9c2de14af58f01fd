/**
 * Inferences run as jobs (`Prefer: respond-async`): the request is accepted at once (202 and a job id), runs in
 * the engine's queue like any other, and its state, progress (the program's instructions done out of the total,
 * as the runtime reports them) and result are read later. Jobs live in memory, per tenant, and are forgotten a
 * while after they finish (a restart forgets them all: the client submits again).
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { errorAnswer, type ErrorBody, NotFoundError, RetryLaterError, StateError } from './errors.ts';
import type { InferenceHooks, InferenceResult } from './engine.ts';

/**
 * A job's state: waiting behind other requests, running, or finished one way or the other.
 *
 * @example
 * ```ts
 * if (job.state === 'succeeded') fetchResult(job.id);
 * ```
 */
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed';

/**
 * One job as the registry holds it.
 *
 * @example
 * ```ts
 * const job = jobs.get('acme', id);
 * console.log(job.state, job.done, job.total);
 * ```
 */
export interface Job {
  readonly id: string;
  readonly tenant: string;
  readonly model: string;
  readonly version: string;
  readonly keyId: string;
  /** The request's `id` field, echoed in the result as in a synchronous answer. */
  readonly requestId: string | undefined;
  state: JobState;
  /** Instructions done and their total (0 / 0 until the runtime reports the first step). */
  done: number;
  total: number;
  /** Clock readings (ms since the epoch). */
  readonly createdMs: number;
  startedMs: number | undefined;
  finishedMs: number | undefined;
  result: InferenceResult | undefined;
  error: { status: number; body: ErrorBody } | undefined;
}

/**
 * Options of {@link JobRegistry}.
 *
 * @example
 * ```ts
 * const jobs = new JobRegistry({ retainSeconds: 600, perTenant: 100 });
 * ```
 */
export interface JobRegistryOptions {
  /** A finished job is kept this long for its result to be read (default 10 minutes). */
  readonly retainSeconds?: number;
  /** Jobs one tenant may hold (default 100): past it, its oldest finished job is forgotten. */
  readonly perTenant?: number;
  /** The clock, in milliseconds since the epoch (default `Date.now`). */
  readonly now?: () => number;
}

const JOB_ID = /^j_[0-9a-f]{32}$/;

/**
 * The jobs of a server.
 *
 * @example
 * ```ts
 * const jobs = new JobRegistry();
 * const job = jobs.submit({ tenant: 'acme', model: 'mnist', version: '1', keyId, requestId: undefined }, (hooks) =>
 *   engine.infer('acme', 'mnist', keyId, inputs, hooks),
 * );
 * jobs.view(jobs.get('acme', job.id)); // { id, status: 'queued', progress: {...}, ... }
 * ```
 */
export class JobRegistry {
  readonly #jobs = new Map<string, Job>();
  readonly #retainMs: number;
  readonly #perTenant: number;
  readonly #now: () => number;

  constructor(options: JobRegistryOptions = {}) {
    this.#retainMs = (options.retainSeconds ?? 600) * 1000;
    this.#perTenant = options.perTenant ?? 100;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Creates a job and starts `run` at once (it queues in the engine); the job follows its hooks and keeps its
   * result or error.
   *
   * @throws RetryLaterError (QUOTA_EXCEEDED) when the tenant holds its most jobs and none has finished.
   */
  submit(
    request: {
      readonly tenant: string;
      readonly model: string;
      readonly version: string;
      readonly keyId: string;
      readonly requestId: string | undefined;
    },
    run: (hooks: InferenceHooks) => Promise<InferenceResult>,
  ): Job {
    const tenant = request.tenant;
    this.#forgetOld();
    const mine = [...this.#jobs.values()].filter((j) => j.tenant === tenant);
    if (mine.length >= this.#perTenant) {
      const finished = mine.filter((j) => j.finishedMs !== undefined);
      if (finished.length === 0) {
        throw new RetryLaterError('QUOTA_EXCEEDED', `tenant "${tenant}": ${mine.length} jobs unfinished`, 1);
      }
      this.#jobs.delete(finished[0].id);
    }
    const id = newJobId();
    const job: Job = {
      id,
      ...request,
      state: 'queued',
      done: 0,
      total: 0,
      createdMs: this.#now(),
      startedMs: undefined,
      finishedMs: undefined,
      result: undefined,
      error: undefined,
    };
    this.#jobs.set(id, job);
    const hooks: InferenceHooks = {
      onStart: () => {
        job.state = 'running';
        job.startedMs = this.#now();
      },
      onProgress: (done, total) => {
        job.done = done;
        job.total = total;
      },
    };
    // Started in this call: the engine counts the job as pending before submit returns (admission sees it).
    run(hooks).then(
      (result) => {
        job.result = result;
        job.state = 'succeeded';
        job.finishedMs = this.#now();
      },
      (error: unknown) => {
        job.error = errorAnswer(error);
        job.state = 'failed';
        job.finishedMs = this.#now();
      },
    );
    return job;
  }

  /**
   * The tenant's job `id`.
   *
   * @throws NotFoundError (JOB_NOT_FOUND) for a malformed, unknown, forgotten or another
   *   tenant's id.
   */
  get(tenant: string, id: string): Job {
    this.#forgetOld();
    const job = JOB_ID.test(id) ? this.#jobs.get(id) : undefined;
    if (!job || job.tenant !== tenant) {
      throw new NotFoundError('JOB_NOT_FOUND', `job ${JSON.stringify(id.slice(0, 40))}: no such job`);
    }
    return job;
  }

  /** The tenant's jobs, oldest first. */
  list(tenant: string): Job[] {
    this.#forgetOld();
    return [...this.#jobs.values()].filter((j) => j.tenant === tenant);
  }

  /**
   * Forgets a finished job.
   *
   * @throws NotFoundError for an unknown job; StateError (JOB_NOT_DONE) for one not finished (a run cannot be
   *   stopped midway).
   */
  delete(tenant: string, id: string): void {
    const job = this.get(tenant, id);
    if (job.finishedMs === undefined) {
      throw new StateError('JOB_NOT_DONE', `job ${id} is ${job.state}: a job is deleted once finished`);
    }
    this.#jobs.delete(id);
  }

  /**
   * A job's status as `GET /v2/jobs/{id}` answers it.
   *
   * @example
   * ```ts
   * reply.send(jobs.view(job)); // { id, model, status, progress: { done, total, fraction }, elapsed_seconds, … }
   * ```
   */
  view(job: Job): Record<string, unknown> {
    const end = job.finishedMs ?? this.#now();
    return {
      id: job.id,
      model: job.model,
      key_id: job.keyId,
      status: job.state,
      progress: {
        done: job.done,
        total: job.total,
        fraction: job.state === 'succeeded' ? 1 : job.total > 0 ? job.done / job.total : 0,
      },
      created_at: new Date(job.createdMs).toISOString(),
      started_at: job.startedMs === undefined ? null : new Date(job.startedMs).toISOString(),
      finished_at: job.finishedMs === undefined ? null : new Date(job.finishedMs).toISOString(),
      elapsed_seconds: (end - job.createdMs) / 1000,
      ...(job.result ? { queue_seconds: job.result.queueSeconds, seconds: job.result.seconds } : {}),
      ...(job.error ? { error: job.error.body } : {}),
      result: job.state === 'succeeded' ? `/v2/jobs/${job.id}/result` : null,
    };
  }

  #forgetOld(): void {
    const limit = this.#now() - this.#retainMs;
    for (const [id, job] of this.#jobs) {
      if (job.finishedMs !== undefined && job.finishedMs <= limit) this.#jobs.delete(id);
    }
  }
}

/**
 * A fresh job id: `j_` and 128 random bits in hex (from `crypto.getRandomValues`).
 *
 * @example
 * ```ts
 * newJobId(); // 'j_1f…'
 * ```
 */
export function newJobId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `j_${bytesToHex(bytes)}`;
}
