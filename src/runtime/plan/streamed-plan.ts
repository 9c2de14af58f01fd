/**
 * A plan made on a planning thread while the run executes it. The planner's action log is append-only (an action
 * never changes once logged) and the executor consumes actions in log order, so execution can start once the
 * initial placements are known and follow the planner step by step: a first run costs about the larger of
 * planning and execution instead of their sum (the planner has a core of its own). The plan is complete, and
 * reusable like any other, once the thread is done.
 */
import { Worker } from 'node:worker_threads';
import type { AccessProgram, ObjectId } from '../../program/access.ts';
import { FormatError, HomeError, InvalidArgumentError, ResourceError } from '../../util/errors.ts';
import type { InitialPlacement, MemoryLevel } from './ledger.ts';
import type { ExecutablePlan } from './planner.ts';
import type { PlanWorkerMessage, PlanWorkerRequest } from './plan-worker.ts';
import type { RunSummary } from './run-result.ts';
import type { Action } from './timeline.ts';
import { workerEntry } from '../worker-entry.ts';

const ERROR_TYPES: Record<string, new (message: string) => Error> = {
  ResourceError,
  InvalidArgumentError,
  FormatError,
};

/** A planning thread started ahead of need, taken by the next streamed plan; `loaded` once its modules are. */
let spare: { worker: Worker; loaded: Promise<void> } | undefined;

function spawnPlanningThread(): Worker {
  const { entry, eval: isSource } = workerEntry(import.meta.url, 'plan-worker');
  return new Worker(entry, { eval: isSource, name: 'home-plan', workerData: { homePlanWorker: true } });
}

/**
 * Starts a planning thread now so that the next streamed plan does not wait for one to start (as the I/O pool's
 * threads are started before a run): call it when a model is loaded, before its first run. An idle spare thread
 * does not keep the process alive.
 *
 * @example
 * ```ts
 * await prewarmPlanningThread();
 * const result = await runTieredHe({ ...options, streamPlan: true });
 * ```
 */
export function prewarmPlanningThread(): Promise<void> {
  if (spare) return spare.loaded;
  const thread = spawnPlanningThread();
  thread.unref();
  const loaded = new Promise<void>((resolve) => {
    const onMessage = (message: PlanWorkerMessage) => {
      if (message.type !== 'loaded') return;
      thread.off('message', onMessage);
      resolve();
    };
    thread.on('message', onMessage);
    // A thread that dies before loading is forgotten; the next plan starts a new one.
    thread.once('exit', () => resolve());
  });
  const entry = { worker: thread, loaded };
  spare = entry;
  const forget = () => {
    if (spare === entry) spare = undefined;
  };
  thread.on('error', forget);
  thread.on('exit', forget);
  return loaded;
}

/**
 * A plan being made on a planning thread: an {@link ExecutablePlan} whose `actions` grow until `complete`.
 *
 * @example
 * ```ts
 * const plan = startStreamedPlan(program, { policy: { kind: 'home', options: {} }, dramBudgetBytes, arenaBytes, tiers });
 * await plan.ready;
 * await executePlan({ plan, stream: plan, … });
 * ```
 */
export class StreamedPlan implements ExecutablePlan {
  readonly program: AccessProgram;
  computeLevel: MemoryLevel = 'arena';
  readonly actions: Action[] = [];
  readonly initial = new Map<ObjectId, InitialPlacement>();
  run: { summary: RunSummary } = { summary: undefined as unknown as RunSummary };
  slowPeakBytes: number[] = [];
  planningNs = 0;
  /** True once the planning thread posted its last action. */
  complete = false;
  /** Resolves when the initial placements are known; rejects if planning fails before. */
  readonly ready: Promise<void>;
  /** Resolves when the plan is complete; rejects with the planner's error. */
  readonly finished: Promise<void>;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  readonly #worker: Worker;

  /**
   * @param known - the initial placements, when the caller computed them ({@link initialPlacements}): the plan is
   *   ready at once, and the planning thread's own are checked against them.
   */
  constructor(
    program: AccessProgram,
    request: Omit<PlanWorkerRequest, 'program'>,
    known?: { initial: ReadonlyMap<ObjectId, InitialPlacement>; computeLevel: MemoryLevel },
  ) {
    this.program = program;
    // A prewarmed thread if there is one (its modules are loaded), else a new one.
    const warm = spare;
    spare = undefined;
    this.#worker = warm?.worker ?? spawnPlanningThread();
    this.#worker.ref();
    let resolveReady!: () => void;
    let rejectReady!: (e: Error) => void;
    let resolveFinished!: () => void;
    let rejectFinished!: (e: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    this.finished = new Promise((resolve, reject) => {
      resolveFinished = resolve;
      rejectFinished = reject;
    });
    // Both are awaited by the run; unobserved rejections must not crash the process before it gets there.
    this.ready.catch(() => {});
    this.finished.catch(() => {});
    const fail = (error: Error) => {
      if (this.complete || this.#failure) return;
      this.#failure = error;
      rejectReady(error);
      rejectFinished(error);
      this.#notify();
      void this.#worker.terminate();
    };
    this.#worker.on('message', (message: PlanWorkerMessage) => {
      switch (message.type) {
        case 'initial':
          if (known) {
            const same =
              message.computeLevel === known.computeLevel &&
              message.initial.length === known.initial.size &&
              message.initial.every(([id, p]) => {
                const k = known.initial.get(id);
                return k !== undefined && k.slowTier === p.slowTier && k.level === p.level;
              });
            if (!same)
              fail(
                new HomeError(
                  'PLANNING_FAILED',
                  'planning thread: its initial placements differ from the ones the run started from',
                ),
              );
            break;
          }
          for (const [id, placement] of message.initial) this.initial.set(id, placement);
          this.computeLevel = message.computeLevel;
          resolveReady();
          break;
        case 'actions':
          for (const a of message.actions) this.actions.push(a);
          this.#notify();
          break;
        case 'done':
          this.run = { summary: message.summary as RunSummary };
          this.slowPeakBytes = message.slowPeakBytes;
          this.planningNs = message.planningNs;
          this.complete = true;
          resolveFinished();
          this.#notify();
          void this.#worker.terminate();
          break;
        case 'loaded':
          break;
        case 'error': {
          const Type = ERROR_TYPES[message.name];
          fail(
            Type
              ? new Type(message.message)
              : new HomeError('PLANNING_FAILED', `planning thread: ${message.name}: ${message.message}`),
          );
          break;
        }
      }
    });
    this.#worker.on('error', (error: Error) =>
      fail(new HomeError('PLANNING_FAILED', `planning thread failed: ${error.message}`, { cause: error })),
    );
    this.#worker.on('exit', (code) => {
      if (!this.complete)
        fail(
          new HomeError(
            'PLANNING_FAILED',
            `planning thread exited with code ${code} before the plan was complete`,
          ),
        );
    });
    if (known) {
      for (const [id, placement] of known.initial) this.initial.set(id, placement);
      this.computeLevel = known.computeLevel;
      resolveReady();
    }
    const message: PlanWorkerRequest = { ...request, program };
    this.#worker.postMessage(message);
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /**
   * Resolves true once action `seq` exists, false if the plan completed without it; rejects with the planner's
   * error.
   */
  async waitForAction(seq: number): Promise<boolean> {
    for (;;) {
      if (this.#failure) throw this.#failure;
      if (seq < this.actions.length) return true;
      if (this.complete) return false;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Stops planning (a run that failed no longer needs the plan). */
  async cancel(): Promise<void> {
    if (!this.complete) {
      this.#failure ??= new HomeError('PLANNING_FAILED', 'plan cancelled');
      this.#notify();
    }
    await this.#worker.terminate();
  }
}

/**
 * Starts planning `program` on a planning thread (see {@link StreamedPlan}).
 *
 * @example
 * ```ts
 * const plan = startStreamedPlan(program, { policy: realRunHomePolicy().descriptor!, dramBudgetBytes, arenaBytes, tiers, warmStart: true });
 * ```
 */
export function startStreamedPlan(
  program: AccessProgram,
  options: Omit<PlanWorkerRequest, 'program'>,
  known?: { initial: ReadonlyMap<ObjectId, InitialPlacement>; computeLevel: MemoryLevel },
): StreamedPlan {
  return new StreamedPlan(program, options, known);
}
