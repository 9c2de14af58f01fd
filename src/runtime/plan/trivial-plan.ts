import { check } from '../../util/assert.ts';
import type { PlanLedger, TierTraffic } from './ledger.ts';
import { type ProgramAnalysis, stepComputeNs } from './program.ts';
import { type PlannedSteps, type PlanTotals, type StepTrace, stepTrace } from './run-result.ts';

/**
 * The plan of a run with unlimited memory, in one pass over the steps: every initial object is already in the
 * compute level (the caller placed it there), so nothing is ever loaded, copied, prefetched or written back. Per
 * step: the decision, room for each object written without being read, the compute, then the release of what the
 * step frees and (with `dropDead`, a policy that knows the future) of every operand whose contents are not read
 * again, and the delete of slow copies that went stale. That is exactly what the general planner records on the
 * same ledger, action for action, but without asking the policy anything or snapshotting traffic: O(steps +
 * operands). The per-step traces are made from compact records only when read, since an all-in-memory run that
 * just executes its plan never needs them.
 *
 * @throws {InvalidArgumentError} if a step reads an object that is not in the compute level (the caller's
 *   placement was not unlimited).
 * @example
 * ```ts
 * const { totals, traces } = planTrivially(ledger, analysis, policy.knowsFuture, 0.4);
 * ```
 */
export function planTrivially(
  ledger: PlanLedger,
  analysis: ProgramAnalysis,
  dropDead: boolean,
  nsPerModularMultiply: number,
): PlannedSteps {
  const level = ledger.computeLevel;
  const steps = analysis.program.steps;
  const n = steps.length;
  const decisions = new Int32Array(n);
  const computes = new Int32Array(n);
  // Occupancy after each step was planned: arena, DRAM, then each slow tier.
  const width = 2 + ledger.slowTiers.length;
  const occupancy = new Float64Array(n * width);
  // The compute level in use while each step computes, its scratch included (as the general planner records it).
  const working = new Float64Array(n);
  const totals: PlanTotals = { steps: n, totalNs: 0, computeNs: 0, stallNs: 0, modularMultiplies: 0 };
  const actions = ledger.actions;
  let previousCompute = -1;
  for (let i = 0; i < n; i++) {
    const step = steps[i];
    const decision = ledger.decision(i, previousCompute >= 0 ? [previousCompute] : []);
    const operands = analysis.operandsOf(i);
    for (const id of operands) {
      const state = ledger.state(id);
      if (state.level === level) continue;
      check(
        !step.reads.includes(id),
        () => `step ${i} reads "${id}", which is not in ${level}: expected unlimited memory holding it`,
      );
      if (state.exists) ledger.discard(id, i, decision);
      ledger.allocate(id, level, i, decision);
    }
    working[i] = ledger.used(level) + (step.scratchBytes ?? 0);
    const deps = [decision];
    for (const id of operands) deps.push(ledger.tailOf(id));
    const computeSeq = ledger.compute(i, deps, stepComputeNs(step, nsPerModularMultiply));
    for (const id of operands) ledger.afterCompute(id, computeSeq, step.writes.includes(id));
    for (const id of step.frees ?? []) ledger.discard(id, i, computeSeq);
    if (dropDead) {
      for (const id of analysis.departuresAfter(i)) {
        if (ledger.state(id).exists && !analysis.contentLiveAfter(id, i)) ledger.discard(id, i, computeSeq);
      }
    }
    decisions[i] = decision;
    computes[i] = computeSeq;
    occupancy[i * width] = ledger.used('arena');
    occupancy[i * width + 1] = ledger.used('dram');
    for (let t = 2; t < width; t++) occupancy[i * width + t] = ledger.slowUsed(t - 2);
    const c = actions[computeSeq];
    totals.computeNs += c.endNs - c.startNs;
    totals.stallNs += c.startNs - actions[decision].endNs;
    totals.modularMultiplies += step.modularMultiplies ?? 0;
    totals.totalNs = c.endNs;
    previousCompute = computeSeq;
  }
  const names = ['arena', 'dram', ...ledger.slowTiers.map((t) => t.name)];
  const traces = (): StepTrace[] => {
    // Nothing moves, so every step's traffic is the same zero record: one shared, frozen object.
    const noTraffic: Record<string, TierTraffic> = {};
    for (const name of names) noTraffic[name] = Object.freeze({ read: 0, written: 0 });
    Object.freeze(noTraffic);
    return steps.map((step, i) => {
      const resident: Record<string, number> = {};
      names.forEach((name, t) => {
        resident[name] = occupancy[i * width + t];
      });
      return stepTrace(step, actions, decisions[i], computes[i], noTraffic, resident, 0, 0, working[i]);
    });
  };
  return { totals, traces };
}
