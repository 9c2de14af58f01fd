import type { Encoder } from '../../ckks/encoder.ts';
import { Evaluator } from '../../ckks/evaluator.ts';
import type { EvaluationKeys } from '../../ckks/keys.ts';
import type { Ciphertext, Plaintext } from '../../ckks/objects.ts';
import { evaluateInstruction, type InstructionOperands } from '../../program/evaluate.ts';
import type { HeProgram } from '../../program/program.ts';
import { check } from '../../util/assert.ts';
import { InvalidArgumentError } from '../../util/errors.ts';
import { heRuntimeProgram } from './program.ts';
import {
  evaluatorWithKeys,
  type HeObjectSource,
  heObjectSource,
  runTieredObjects,
  type TieredHeOptions,
  type TieredHeStats,
} from './tiered.ts';
import type { ExecutablePlan } from '../plan/planner.ts';
import type { ObjectId, ObjectInfo, AccessProgram, AccessStep } from '../../program/access.ts';

/**
 * A step of a many-model program: the model and request it belongs to, and the instruction of that model's
 * program (`send` steps hand a request's outputs back to its client).
 *
 * @example
 * ```ts
 * const step = program.steps[0] as MultiModelStep;
 * console.log(step.model, step.request);
 * ```
 */
export interface MultiModelStep extends AccessStep {
  model: number;
  request: number;
}

/**
 * Options of {@link multiModelProgram}.
 *
 * @example
 * ```ts
 * const options: MultiModelOptions = { groupWindow: 16 };
 * ```
 */
export interface MultiModelOptions {
  /**
   * Key-aware request scheduling: requests are taken in windows of this many arrivals and, within a window, those
   * of the same model run back to back (first-arrival order between models), so a model's keys are loaded once per
   * group. 1 (default) keeps arrival order.
   */
  groupWindow?: number;
}

/**
 * The order requests run in: arrival order, regrouped by model within each window of `groupWindow` arrivals.
 *
 * @example
 * ```ts
 * requestOrder([{ model: 1 }, { model: 2 }, { model: 1 }], 3); // [0, 2, 1]
 * ```
 */
export function requestOrder(requests: readonly { model: number }[], groupWindow = 1): number[] {
  check(
    Number.isInteger(groupWindow) && groupWindow >= 1,
    () => `groupWindow = ${groupWindow}: expected ≥ 1`,
  );
  const order: number[] = [];
  for (let start = 0; start < requests.length; start += groupWindow) {
    const groups = new Map<number, number[]>();
    for (let r = start; r < Math.min(requests.length, start + groupWindow); r++) {
      const list = groups.get(requests[r].model) ?? [];
      list.push(r);
      groups.set(requests[r].model, list);
    }
    for (const list of groups.values()) order.push(...list);
  }
  return order;
}

/** Object id of model `m`'s object (a key, a plaintext weight, an encrypted weight). */
const modelId = (m: number, id: string) => `m${m}/${id}`;
/** Object id of request `r`'s object (an input or a value it computes). */
const requestId = (r: number, id: string) => `r${r}/${id}`;

/**
 * One runtime program for many requests to many models, each model with its own keys and weights: every request
 * runs its model's program on its own values; keys, plaintext and encrypted weights are the model's objects,
 * shared by its requests; after a request's last instruction a `send` step hands its outputs to the client (they
 * leave the server's memory). Requests run in the given order.
 *
 * @example
 * ```ts
 * const program = multiModelProgram(models.map((m) => m.program), requests, requestOrder(requests, 16));
 * ```
 */
export function multiModelProgram(
  programs: readonly HeProgram[],
  requests: readonly { model: number }[],
  order: readonly number[],
): AccessProgram {
  check(
    order.length === requests.length,
    () => 'multiModelProgram: expected every request once in the order',
  );
  const perModel = programs.map((p) => heRuntimeProgram(p, { schedule: 'program' }));
  const weightIds = programs.map(
    (p) => new Set(p.inputs.filter((i) => i.owner === 'model').map((i) => `ct:${i.id}`)),
  );
  const objects: ObjectInfo[] = [];
  const modelObjectsAdded = new Set<number>();
  const steps: MultiModelStep[] = [];
  for (const r of order) {
    const m = requests[r].model;
    check(m >= 0 && m < programs.length, () => `request ${r}: model ${m} out of range`);
    const runtime = perModel[m];
    const isModelObject = (id: string) => !id.startsWith('ct:') || weightIds[m].has(id);
    const map = (id: string) => (isModelObject(id) ? modelId(m, id) : requestId(r, id));
    if (!modelObjectsAdded.has(m)) {
      modelObjectsAdded.add(m);
      for (const o of runtime.objects) if (isModelObject(o.id)) objects.push({ ...o, id: modelId(m, o.id) });
    }
    const outputs = new Set(programs[m].outputs.map((o) => `ct:${o.id}`));
    for (const o of runtime.objects) {
      if (isModelObject(o.id)) continue;
      // Outputs leave with the `send` step, so for the server they are intermediates.
      objects.push({ ...o, id: requestId(r, o.id), kind: o.kind === 'output' ? 'intermediate' : o.kind });
    }
    for (const step of runtime.steps) {
      steps.push({
        ...step,
        index: steps.length,
        layer: `m${m}`,
        reads: step.reads.map(map),
        writes: step.writes.map(map),
        ...(step.frees ? { frees: step.frees.map(map) } : {}),
        model: m,
        request: r,
      });
    }
    const sent = [...outputs].map((id) => requestId(r, id));
    steps.push({
      index: steps.length,
      op: 'send',
      layer: `m${m}`,
      reads: sent,
      writes: [],
      frees: sent,
      computeCostNs: 0,
      model: m,
      request: r,
    });
  }
  return { name: `${programs.length}-models-${requests.length}-requests`, objects, steps };
}

/**
 * A model served by {@link runTieredRequests}: its program, its own evaluation keys, and its encrypted weights if
 * the program has any.
 *
 * @example
 * ```ts
 * const model: ServedModel = { program, evaluationKeys: client.evaluationKeys };
 * ```
 */
export interface ServedModel {
  program: HeProgram;
  evaluationKeys: EvaluationKeys;
  weights?: ReadonlyMap<number, Ciphertext>;
  encoder?: Encoder;
}

/**
 * Options of {@link runTieredRequests}.
 *
 * @example
 * ```ts
 * const options: TieredRequestsOptions = { models, requests, params, policy, memoryBudgetBytes, tiers, groupWindow: 16 };
 * ```
 */
export interface TieredRequestsOptions
  extends Omit<TieredHeOptions, 'program' | 'runtimeProgram' | 'source' | 'onStep'> {
  models: readonly ServedModel[];
  requests: readonly { model: number; inputs: ReadonlyMap<number, Ciphertext> }[];
  groupWindow?: number;
}

/**
 * Serves many requests to many models in one process under one memory budget: every key, weight and value of
 * every model and request is held by the tiered runtime. Returns each request's outputs (by request index) and the
 * run's figures.
 *
 * @example
 * ```ts
 * const { outputs, stats } = await runTieredRequests({ models, requests, params, policy: realRunHomePolicy(), memoryBudgetBytes, tiers });
 * ```
 */
export async function runTieredRequests(options: TieredRequestsOptions): Promise<{
  outputs: Map<number, Ciphertext>[];
  stats: TieredHeStats;
  order: number[];
  program: AccessProgram;
  plan: ExecutablePlan;
}> {
  const { models, requests } = options;
  const order = requestOrder(requests, options.groupWindow ?? 1);
  const program = multiModelProgram(
    models.map((m) => m.program),
    requests,
    order,
  );
  const modelSources = models.map((m) =>
    heObjectSource({
      program: m.program,
      evaluationKeys: m.evaluationKeys,
      inputs: new Map(),
      weights: m.weights,
      encoder: m.encoder,
    }),
  );
  const requestSources = requests.map((q) =>
    heObjectSource({
      program: models[q.model].program,
      evaluationKeys: models[q.model].evaluationKeys,
      inputs: q.inputs,
    }),
  );
  const split = (id: ObjectId): { source: HeObjectSource; local: string } => {
    const slash = id.indexOf('/');
    const owner = Number(id.slice(1, slash));
    const local = id.slice(slash + 1);
    if (id[0] === 'm') return { source: modelSources[owner], local };
    if (id[0] === 'r') return { source: requestSources[owner], local };
    throw new InvalidArgumentError(`object "${id}": not a model or request object`);
  };
  const source: HeObjectSource = {
    get: (id) => {
      const s = split(id);
      return s.source.get(s.local);
    },
    done: (id, live) => {
      const s = split(id);
      s.source.done?.(s.local, live);
    },
  };
  const outputs: Map<number, Ciphertext>[] = requests.map(() => new Map());
  const result = await runTieredObjects({
    ...options,
    runtimeProgram: program,
    source,
    outputIds: [],
    makeCompute: (arena, analysis) => {
      const base = new Evaluator(options.params);
      const keyPrefixes = models.map((_, m) => `m${m}/key:`);
      const weightIds = models.map(
        (m) => new Set(m.program.inputs.filter((i) => i.owner === 'model').map((i) => i.id)),
      );
      // One operand resolver for all steps, pointed at the current step's model and request, with the object ids
      // built once per model value and per request value: building a closure and a fresh id string for every
      // operand of every step cost ~3 % of the many-models run.
      let model = 0;
      let request = -1;
      const modelValueIds = models.map(() => new Map<number, string>());
      let requestValueIds = new Map<number, string>();
      const valueId = (id: number): string => {
        const isWeight = weightIds[model].has(id);
        const cache = isWeight ? modelValueIds[model] : requestValueIds;
        let full = cache.get(id);
        if (full === undefined) {
          full = isWeight ? `m${model}/ct:${id}` : `r${request}/ct:${id}`;
          cache.set(id, full);
        }
        return full;
      };
      const operands: InstructionOperands = {
        value: (id) => arena.get(valueId(id)) as Ciphertext,
        plaintext: (index) => arena.get(`m${model}/pt:${index}`) as Plaintext,
        define: (id, ct) => {
          const full = valueId(id);
          arena.adopt(full, ct, analysis.bytesOf(full));
        },
      };
      return (raw: AccessStep) => {
        const step = raw as MultiModelStep;
        if (step.request !== request) {
          request = step.request;
          requestValueIds = new Map();
        }
        model = step.model;
        if (step.op === 'send') {
          for (const id of step.reads) {
            const value = Number(id.slice(id.indexOf('ct:') + 3));
            outputs[request].set(value, (arena.get(id) as Ciphertext).copy());
          }
          return;
        }
        const program = models[model].program;
        const ins = program.instructions[step.instruction!];
        evaluateInstruction(program, ins, evaluatorWithKeys(base, ins, arena, keyPrefixes[model]), operands);
      };
    },
  });
  return { outputs, stats: result.stats, order, program, plan: result.plan };
}
