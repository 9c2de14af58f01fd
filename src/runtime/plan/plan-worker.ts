/**
 * The planning thread of a streamed plan ({@link startStreamedPlan}): plans the program it is sent and posts the
 * initial placements, then the action log in batches as the steps are planned, then the summary. Runs only as a
 * worker (it does nothing when imported elsewhere).
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { AccessProgram } from '../../program/access.ts';
import type { PlannedTier } from './ledger.ts';
import { planProgram } from './planner.ts';
import { type PolicyDescriptor, policyFromDescriptor } from './policy.ts';
import type { Action } from './timeline.ts';

/** What the planning thread is sent. */
export interface PlanWorkerRequest {
  program: AccessProgram;
  policy: PolicyDescriptor;
  dramBudgetBytes: number;
  arenaBytes?: number;
  tiers: PlannedTier[];
  warmStart: boolean;
  label?: string;
  nsPerModularMultiply?: number;
}

/** What it posts back, in order: `initial`, any number of `actions`, then `done` (or `error` at any point). */
export type PlanWorkerMessage =
  | {
      type: 'initial';
      initial: [string, { slowTier: number; level: 'arena' | 'dram' | null }][];
      computeLevel: 'arena' | 'dram';
    }
  | { type: 'actions'; actions: Action[] }
  | { type: 'done'; summary: unknown; slowPeakBytes: number[]; planningNs: number }
  | { type: 'error'; name: string; message: string }
  | { type: 'loaded' };

/** Actions per posted batch (a batch also goes out every `BATCH_STEPS` steps, so the first steps start early). */
const BATCH_ACTIONS = 2048;
const BATCH_STEPS = 16;

if (
  !isMainThread &&
  (workerData as { homePlanWorker?: boolean } | null)?.homePlanWorker === true &&
  parentPort
) {
  const port = parentPort;
  // The planning modules are loaded: a prewarmed thread is ready.
  port.postMessage({ type: 'loaded' } satisfies PlanWorkerMessage);
  port.once('message', (request: PlanWorkerRequest) => {
    let sent = 0;
    let lastStep = -1;
    const post = (message: PlanWorkerMessage) => port.postMessage(message);
    try {
      const plan = planProgram(request.program, {
        policy: policyFromDescriptor(request.policy),
        dramBudgetBytes: request.dramBudgetBytes,
        ...(request.arenaBytes !== undefined ? { arenaBytes: request.arenaBytes } : {}),
        tiers: request.tiers,
        warmStart: request.warmStart,
        ...(request.label !== undefined ? { label: request.label } : {}),
        ...(request.nsPerModularMultiply !== undefined
          ? { nsPerModularMultiply: request.nsPerModularMultiply }
          : {}),
        onInitial: (initial, computeLevel) => post({ type: 'initial', initial: [...initial], computeLevel }),
        onStepPlanned: (actions, step) => {
          if (
            actions.length - sent < BATCH_ACTIONS &&
            step - lastStep < BATCH_STEPS &&
            step < request.program.steps.length - 1
          )
            return;
          post({ type: 'actions', actions: actions.slice(sent) as Action[] });
          sent = actions.length;
          lastStep = step;
        },
      });
      if (plan.actions.length > sent)
        post({ type: 'actions', actions: plan.actions.slice(sent) as Action[] });
      post({
        type: 'done',
        summary: plan.run.summary,
        slowPeakBytes: plan.slowPeakBytes,
        planningNs: plan.planningNs,
      });
    } catch (error) {
      const e = error as Error;
      post({ type: 'error', name: e.name, message: e.message });
    }
  });
}
