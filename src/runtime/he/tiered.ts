import { Evaluator } from '../../ckks/evaluator.ts';
import type { Encoder } from '../../ckks/encoder.ts';
import { EvaluationKeys, GaloisKey, type SwitchingKey } from '../../ckks/keys.ts';
import type { Ciphertext, Plaintext } from '../../ckks/objects.ts';
import type { Parameters } from '../../ckks/parameters.ts';
import { encodePlaintextWeight, evaluateInstruction, type InstructionOperands } from '../../nn/executor.ts';
import type { HeInstruction, HeProgram } from '../../nn/program.ts';
import { check } from '../../util/assert.ts';
import { InvalidArgumentError, MismatchError, ResourceError } from '../../util/errors.ts';
import { BufferPool } from '../store/buffer-pool.ts';
import { type DeviceProfile, nowNs } from '../store/devices.ts';
import type { SlowTier } from '../store/slow-tier.ts';
import { HeArena, type HeLiveObject, writeHeObject } from '../exec/he-arena.ts';
import { PlacementAllocator } from '../exec/placement-allocator.ts';
import { type Plan, planProgram } from '../plan/plan.ts';
import type { Policy } from '../plan/policy.ts';
import {
  analyzeProgram,
  type ObjectId,
  type Program,
  type ProgramAnalysis,
  type ProgramStep,
} from '../plan/program.ts';
import { type ReplayResult, replayPlan } from '../exec/executor.ts';
import { type HeRuntimeStep, heRuntimeProgram } from './program.ts';

/**
 * Where the runtime gets the objects that exist before a run (keys, encrypted weights, inputs, plaintext
 * weights). It serializes each into its slow tier (and warm-starts some in memory) and then calls `done`, so a
 * source can produce objects one at a time and free them (e.g. encrypt a weight, hand it over, dispose it).
 *
 * @example
 * ```ts
 * const source = heObjectSource({ program, evaluationKeys: client.evaluationKeys, inputs, encoder });
 * ```
 */
export interface HeObjectSource {
  get(id: ObjectId): HeLiveObject;
  /** The runtime no longer needs the object from the source. */
  done?(id: ObjectId, live: HeLiveObject): void;
}

/**
 * A source over objects the caller holds (and keeps): evaluation keys, encrypted weights, input ciphertexts;
 * plaintext weights are encoded on demand and disposed after use.
 *
 * @example
 * ```ts
 * const source = heObjectSource({ program, evaluationKeys, weights, inputs, encoder: new Encoder(params) });
 * ```
 */
export function heObjectSource(options: {
  program: HeProgram;
  evaluationKeys: EvaluationKeys;
  inputs: ReadonlyMap<number, Ciphertext>;
  weights?: ReadonlyMap<number, Ciphertext>;
  /**
   * Encrypts encrypted weight `id` on demand (e.g. `ModelOwner.encryptWeight`); each is disposed once written, so
   * the weights never have to fit in memory together.
   */
  encryptWeight?: (id: number) => Ciphertext;
  encoder?: Encoder;
}): HeObjectSource {
  const { evaluationKeys, inputs, weights } = options;
  const streamed = new Set<string>();
  const modelWeights = new Set(options.program.inputs.filter((i) => i.owner === 'model').map((i) => i.id));
  return {
    get(id) {
      if (id === 'key:relin') {
        const key = evaluationKeys.relinearization;
        if (!key) throw new MismatchError('key:relin: the evaluation keys have no relinearization key');
        return key;
      }
      if (id.startsWith('key:galois:')) {
        const g = Number(id.slice('key:galois:'.length));
        const key = evaluationKeys.galois.get(g)?.key;
        if (!key) throw new MismatchError(`${id}: the evaluation keys have no Galois key for element ${g}`);
        return key;
      }
      if (id.startsWith('ct:')) {
        const value = Number(id.slice(3));
        const ct = inputs.get(value) ?? weights?.get(value);
        if (ct) return ct;
        if (options.encryptWeight && modelWeights.has(value)) {
          streamed.add(id);
          return options.encryptWeight(value);
        }
        throw new MismatchError(`${id}: missing input or encrypted weight ciphertext ${value}`);
      }
      if (id.startsWith('pt:')) {
        check(options.encoder !== undefined, () => `${id}: plaintext weights need an encoder`);
        return encodePlaintextWeight(options.program, options.encoder, Number(id.slice(3)));
      }
      throw new InvalidArgumentError(`object "${id}": not an object of an HE program`);
    },
    done(id, live) {
      if (id.startsWith('pt:') || streamed.delete(id)) live.dispose();
    },
  };
}

/**
 * Options of {@link runTieredHe}.
 *
 * @example
 * ```ts
 * const options: TieredHeOptions = { program, params, source, policy: new HomePolicy(), memoryBudgetBytes: 145e6, tiers: [tier] };
 * ```
 */
export interface TieredHeOptions {
  program: HeProgram;
  /** The parameters every object uses (the same instance, as the evaluator checks identity). */
  params: Parameters;
  /** The runtime program to run (default: {@link heRuntimeProgram} of `program`). */
  runtimeProgram?: Program;
  source: HeObjectSource;
  policy: Policy;
  /**
   * Memory for objects: the arena of live objects plus the DRAM pool of byte-form buffers. Both are host DRAM;
   * the budget bounds their sum.
   */
  memoryBudgetBytes: number;
  /** Part of the budget for the DRAM pool (default 1/16 of it, leaving the arena at least the largest step). */
  dramPoolBytes?: number;
  tiers: readonly SlowTier[];
  /** Profile the planner times each tier with (default: the tier's own `device`). */
  planningDevices?: readonly DeviceProfile[];
  /** Keep only the b halves and seed of each key in the slow tiers; regenerate the a halves when loading. */
  seededKeys?: boolean;
  warmStart?: boolean;
  /**
   * Model state (keys, plaintext and encrypted weights) stays in the slow tier between runs: a run on the same tier
   * instance reuses the copy an earlier run committed (with the same seeded-keys setting) instead of writing it
   * again, and leaves it there at the end. Per-request objects (inputs, intermediates) are always per run.
   */
  keepModelState?: boolean;
  /** Called after setup, right before the timed run (e.g. to let the OS flush the setup writes). */
  beforeRun?: () => void | Promise<void>;
  /** A plan made earlier for the same program, policy, budgets and tiers (skips planning). */
  plan?: Plan;
  onStep?: (index: number, total: number) => void;
}

/**
 * Figures of a tiered run.
 *
 * @example
 * ```ts
 * console.log(result.stats.seconds, result.stats.slowBytesRead);
 * ```
 */
export interface TieredHeStats {
  /** Wall time of the run (replay), seconds. */
  seconds: number;
  computeSeconds: number;
  stallSeconds: number;
  planningSeconds: number;
  /** Writing the initial objects to the slow tiers and warm-starting some in memory. */
  setupSeconds: number;
  memoryBudgetBytes: number;
  arenaBytes: number;
  dramPoolBytes: number;
  arenaPeakBytes: number;
  dramPeakBytes: number;
  slowBytesRead: number;
  slowBytesWritten: number;
  /** Slow-tier bytes of key objects read (halved with seeded keys). */
  keyBytesRead: number;
  /** Time regenerating seeded key halves. */
  keyExpandSeconds: number;
  copyBytes: number;
  gatherBytes: number;
  /** The planner's virtual-clock prediction of the run time. */
  predictedSeconds: number;
  /** Objects written back during the run (all of them writable; read-only objects are never written). */
  objectsWritten: number;
  readOnlyWritten: string[];
}

/**
 * Result of {@link runTieredHe}.
 *
 * @example
 * ```ts
 * const logits = client.decryptPass(result.outputs, count);
 * ```
 */
export interface TieredHeResult {
  /** The program's output ciphertexts (the caller owns them). */
  outputs: Map<number, Ciphertext>;
  stats: TieredHeStats;
  plan: Plan;
  replay: ReplayResult;
  runtimeProgram: Program;
}

/**
 * The arena/DRAM split of a memory budget for a program.
 *
 * @throws {ResourceError} if the budget cannot hold the program's largest step.
 * @example
 * ```ts
 * const { arenaBytes, dramPoolBytes } = splitMemoryBudget(analysis.maxStepBytes, 145e6);
 * ```
 */
export function splitMemoryBudget(
  maxStepBytes: number,
  memoryBudgetBytes: number,
  dramPoolBytes?: number,
): { arenaBytes: number; dramPoolBytes: number } {
  check(
    Number.isFinite(memoryBudgetBytes) ? memoryBudgetBytes > 0 : memoryBudgetBytes === Infinity,
    () => `memory budget = ${memoryBudgetBytes}: expected a positive byte count`,
  );
  if (memoryBudgetBytes === Infinity) return { arenaBytes: Infinity, dramPoolBytes: dramPoolBytes ?? 1 };
  if (memoryBudgetBytes < maxStepBytes + 1) {
    throw new ResourceError(
      `memory budget of ${memoryBudgetBytes} bytes: the program's largest step needs ${maxStepBytes} bytes in memory at ` +
        'once; expected a budget above that',
    );
  }
  let pool = dramPoolBytes ?? Math.floor(memoryBudgetBytes / 16);
  pool = Math.max(1, Math.min(pool, memoryBudgetBytes - maxStepBytes));
  return { arenaBytes: memoryBudgetBytes - pool, dramPoolBytes: pool };
}

/**
 * Runs an HE program with every object held by the tiered runtime: live objects in the arena (WebAssembly
 * memory), byte forms in a budgeted DRAM pool, and files in the slow tiers, moved as `policy` planned ahead of the
 * run. Steps are the HE instructions themselves ({@link evaluateInstruction}, the server's own code), so the
 * outputs are bit-identical to the all-in-memory run.
 *
 * Phases: plan (virtual clock, before anything is written; errors about capacity surface here), preflight of the
 * tiers (still writable, room for the plan's peak), setup (each initial object's slow-tier form written once,
 * warm-start copies placed in memory), the timed run (replay), then the outputs handed back and every byte the
 * run held in memory released. A failure in any phase (a full or missing tier, a corrupted object) throws after
 * in-flight I/O settled; nothing partial is returned.
 *
 * @example
 * ```ts
 * const tier = await FileTier.open({ name: 'nvme', dir });
 * const result = await runTieredHe({ program, params: client.params, source, policy: new HomePolicy(), memoryBudgetBytes: 256 << 20, tiers: [tier] });
 * const logits = client.decryptPass(result.outputs, count);
 * ```
 */
export async function runTieredHe(options: TieredHeOptions): Promise<TieredHeResult> {
  const { program } = options;
  const runtimeProgram =
    options.runtimeProgram ?? heRuntimeProgram(program, { liveCapBytes: 0.7 * options.memoryBudgetBytes });
  const weights = new Set(program.inputs.filter((i) => i.owner === 'model').map((i) => `ct:${i.id}`));
  const result = await runTieredObjects({
    ...options,
    runtimeProgram,
    outputIds: program.outputs.map((o) => `ct:${o.id}`),
    ...(options.keepModelState
      ? { persistent: (id: ObjectId) => !id.startsWith('ct:') || weights.has(id) }
      : {}),
    makeCompute: (arena, analysis) => {
      const base = new Evaluator(options.params);
      // Object ids by value id, made once (a template string per operand per step adds up over 10^5 steps).
      const ctIds: string[] = [];
      const ctId = (id: number) => {
        ctIds[id] ??= `ct:${id}`;
        return ctIds[id];
      };
      const operands: InstructionOperands = {
        value: (id) => arena.get(ctId(id)) as Ciphertext,
        plaintext: (index) => arena.get(`pt:${index}`) as Plaintext,
        define: (id, ct) => arena.adopt(ctId(id), ct, analysis.bytesOf(ctId(id))),
      };
      return (step) => {
        const ins = program.instructions[(step as HeRuntimeStep).instruction];
        evaluateInstruction(program, ins, evaluatorWithKeys(base, ins, arena, 'key:'), operands);
      };
    },
  });
  const outputs = new Map<number, Ciphertext>();
  for (const o of program.outputs) outputs.set(o.id, result.outputs.get(`ct:${o.id}`) as Ciphertext);
  return { ...result, outputs, runtimeProgram };
}

/**
 * `base` with the evaluation keys instruction `ins` lists, taken live from the arena under `keyPrefix` (e.g.
 * `key:` → `key:relin`, `key:galois:5`); `base` itself for an instruction without keys.
 *
 * @example
 * ```ts
 * const evaluator = evaluatorWithKeys(base, ins, arena, 'm3/key:');
 * ```
 */
export function evaluatorWithKeys(
  base: Evaluator,
  ins: HeInstruction,
  arena: HeArena,
  keyPrefix: string,
): Evaluator {
  if (ins.keys.length === 0) return base;
  let relin: SwitchingKey | undefined;
  const galois: GaloisKey[] = [];
  for (const key of ins.keys) {
    const live = arena.get(`${keyPrefix}${key}`) as SwitchingKey;
    if (key === 'relin') relin = live;
    else galois.push(new GaloisKey(Number(key.slice('galois:'.length)), live));
  }
  return base.withKeys(new EvaluationKeys(relin, galois));
}

/**
 * Options of {@link runTieredObjects}: a runtime program over HE objects, where its objects come from, which of
 * them to hand back, and how a step computes on the live objects.
 *
 * @example
 * ```ts
 * const options: TieredObjectsOptions = { runtimeProgram, params, source, policy, memoryBudgetBytes, tiers, outputIds, makeCompute };
 * ```
 */
export interface TieredObjectsOptions extends Omit<TieredHeOptions, 'program' | 'runtimeProgram'> {
  runtimeProgram: Program;
  /** Objects handed back after the run (detached copies the caller owns). */
  outputIds: readonly ObjectId[];
  /** Builds the step function once the arena exists. */
  makeCompute: (arena: HeArena, analysis: ProgramAnalysis) => (step: ProgramStep) => void;
  /** Objects kept in their slow tier between runs (see {@link TieredHeOptions.keepModelState}). */
  persistent?: (id: ObjectId) => boolean;
}

/** Stored-form sizes of the persistent objects each tier instance holds from earlier runs. */
const persistentCopies = new WeakMap<SlowTier, Map<ObjectId, number>>();

/**
 * The engine of {@link runTieredHe}, for any runtime program over HE objects (one model's program, or many models'
 * requests interleaved): plan, preflight, setup, replay, outputs, cleanup. See {@link runTieredHe}.
 *
 * @example
 * ```ts
 * const { outputs, stats } = await runTieredObjects({ ...options, runtimeProgram, outputIds, makeCompute });
 * ```
 */
export async function runTieredObjects(
  options: TieredObjectsOptions,
): Promise<Omit<TieredHeResult, 'outputs'> & { outputs: Map<ObjectId, HeLiveObject> }> {
  const { params, tiers, runtimeProgram } = options;
  check(tiers.length > 0, () => 'runTieredHe: expected at least one slow tier');
  const analysis = analyzeProgram(runtimeProgram);
  const split = splitMemoryBudget(analysis.maxStepBytes, options.memoryBudgetBytes, options.dramPoolBytes);
  const arenaBytes = split.arenaBytes;
  const dramPoolBytes = split.dramPoolBytes;

  // 1. Plan (no side effects).
  const planningStart = nowNs();
  const plan =
    options.plan ??
    (await planProgram(runtimeProgram, {
      policy: options.policy,
      dramBudgetBytes: dramPoolBytes,
      arenaBytes,
      tiers: tiers.map((t, i) => ({
        name: t.name,
        device: options.planningDevices?.[i] ?? t.device,
        capacityBytes: t.capacityBytes - t.usedBytes,
      })),
      warmStart: options.warmStart ?? true,
    }));
  const planningNs = options.plan ? 0 : nowNs() - planningStart;

  // 2. Preflight: every tier still there and writable, with room for the most it will hold. The replay removes the
  // files of a run's objects when the run ends, so a tier must hold its initial objects plus every write-back.
  for (let i = 0; i < tiers.length; i++) {
    let bytes = 0;
    let files = 0;
    for (const [id, placement] of plan.initial) {
      if (placement.slowTier !== i) continue;
      bytes += analysis.bytesOf(id);
      files++;
    }
    for (const a of plan.actions) {
      if (a.kind !== 'writeback' || a.to !== tiers[i].name) continue;
      bytes += a.bytes;
      files++;
    }
    await tiers[i].check();
    await tiers[i].ensureRoom(Math.max(bytes, plan.slowPeakBytes[i]), files);
  }

  const placement = PlacementAllocator.install(params.context);
  const arena = new HeArena(params, placement, { seededKeys: options.seededKeys ?? false });
  const dramInitial = new Map<ObjectId, Uint8Array>();
  const outputs = new Map<ObjectId, HeLiveObject>();
  try {
    // 3. Setup: slow-tier copies of the initial objects, warm-start copies in memory.
    const setupStart = nowNs();
    await setupInitialObjects(options, plan, analysis.objects, arena, dramInitial);
    const setupNs = nowNs() - setupStart;
    await options.beforeRun?.();

    // 4. The run.
    const total = runtimeProgram.steps.length;
    const replay = await replayPlan({
      program: runtimeProgram,
      actions: plan.actions,
      tiers,
      dramBudgetBytes: dramPoolBytes,
      dramInitial,
      arena,
      compute: options.makeCompute(arena, analysis),
      onStep: options.onStep && ((index) => options.onStep!(index, total)),
    });
    dramInitial.clear();

    // 5. Outputs, detached from the runtime's memory.
    for (const id of options.outputIds) {
      let bytes: Uint8Array | null = replay.dram.get(id) ?? null;
      if (!arena.has(id) && bytes === null) {
        const tier = tiers.find((t) => t.has(id));
        if (!tier) throw new ResourceError(`output "${id}": in no tier after the run`);
        bytes = new Uint8Array(new SharedArrayBuffer(arena.storedBytes(id)));
        await tier.read(id, bytes);
      }
      outputs.set(id, arena.materializeDetached(id, bytes));
    }

    const isKey = (id: string) => {
      const kind = analysis.objects.get(id)?.kind;
      return kind === 'relin-key' || kind === 'rotation-key';
    };
    const keyReads = plan.actions
      .filter((a) => a.kind === 'load' && a.id !== undefined && isKey(a.id))
      .reduce((s, a) => s + arena.storedBytes(a.id!), 0);
    const readOnlyWritten = [...replay.writes.keys()].filter((id) => analysis.objects.get(id)?.readOnly);
    const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    const stats: TieredHeStats = {
      seconds: replay.totalNs / 1e9,
      computeSeconds: replay.computeNs / 1e9,
      stallSeconds: replay.stallNs / 1e9,
      planningSeconds: planningNs / 1e9,
      setupSeconds: setupNs / 1e9,
      memoryBudgetBytes: options.memoryBudgetBytes,
      arenaBytes,
      dramPoolBytes,
      arenaPeakBytes: replay.arenaPeakBytes,
      dramPeakBytes: replay.dramPeakBytes,
      slowBytesRead: sum(replay.slowRead),
      slowBytesWritten: sum(replay.slowWritten),
      keyBytesRead: keyReads,
      keyExpandSeconds: arena.expandNs / 1e9,
      copyBytes: replay.copyBytes,
      gatherBytes: replay.gatherBytes,
      predictedSeconds: plan.run.summary.totalNs / 1e9,
      objectsWritten: replay.writes.size,
      readOnlyWritten,
    };
    return { outputs, stats, plan, replay, runtimeProgram };
  } catch (error) {
    for (const live of outputs.values()) live.dispose();
    throw error;
  } finally {
    arena.clear();
    placement.uninstall();
    // Files of this run's objects are deleted; the tiers stay open for the caller.
    await Promise.allSettled(
      analysis.program.objects
        .filter((o) => !options.persistent?.(o.id))
        .map((o) => Promise.all(tiers.map((t) => t.delete(o.id)))),
    );
  }
}

/** Writes each initial object's slow-tier form and places the warm-start copies the plan asks for. */
async function setupInitialObjects(
  options: TieredObjectsOptions,
  plan: Plan,
  objects: ReadonlyMap<ObjectId, { bytes: number; readOnly: boolean }>,
  arena: HeArena,
  dramInitial: Map<ObjectId, Uint8Array>,
): Promise<void> {
  const staging = new BufferPool(Infinity, 'setup', { shared: true });
  const inFlight = new Set<Promise<void>>();
  const maxInFlight = 4;
  for (const [id, placement] of plan.initial) {
    const bytes = objects.get(id)!.bytes;
    const live = options.source.get(id);
    try {
      arena.describeFrom(id, live, bytes);
      const seeded = arena.storedBytes(id) !== bytes;
      const stored = staging.acquire(arena.storedBytes(id));
      writeHeObject(live, stored, { seeded });
      let full: Uint8Array | null = null;
      if (placement.level !== null) {
        full = seeded ? new Uint8Array(new SharedArrayBuffer(bytes)) : stored;
        if (seeded) writeHeObject(live, full);
        if (placement.level === 'arena') arena.fromBytes(id, full);
        else dramInitial.set(id, full === stored ? Uint8Array.from(full) : full);
      }
      check(placement.slowTier >= 0, () => `initial object "${id}": the plan put it in no slow tier`);
      const tier = options.tiers[placement.slowTier];
      const persistent = options.persistent?.(id) ?? false;
      let kept = persistentCopies.get(tier);
      if (persistent && tier.has(id) && kept?.get(id) === stored.byteLength) {
        // Model state committed by an earlier run: reuse it.
        staging.release(stored);
        continue;
      }
      if (persistent) {
        if (!kept) persistentCopies.set(tier, (kept = new Map()));
        kept.set(id, stored.byteLength);
      }
      const job: Promise<void> = tier.write(id, stored).finally(() => {
        staging.release(stored);
        inFlight.delete(job);
      });
      inFlight.add(job);
    } finally {
      options.source.done?.(id, live);
    }
    if (inFlight.size >= maxInFlight) {
      try {
        await Promise.race(inFlight);
      } catch (error) {
        await Promise.allSettled(inFlight);
        throw error;
      }
    }
  }
  const results = await Promise.allSettled(inFlight);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}
