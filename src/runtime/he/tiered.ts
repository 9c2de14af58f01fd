import type { Bootstrapper } from '../../ckks/bootstrapping/bootstrapper.ts';
import { Evaluator } from '../../ckks/evaluator.ts';
import type { Encoder } from '../../ckks/encoder.ts';
import { EvaluationKeyStream, EvaluationKeys, GaloisKey, type SwitchingKey } from '../../ckks/keys.ts';
import type { Ciphertext, Plaintext } from '../../ckks/objects.ts';
import type { Parameters } from '../../ckks/parameters.ts';
import { plaintextLastUse, programKeyLevels } from '../../program/analysis.ts';
import {
  encodePlaintextWeight,
  evaluateInstruction,
  type InstructionOperands,
} from '../../program/evaluate.ts';
import type { HeInstruction, HeProgram } from '../../program/program.ts';
import { check } from '../../util/assert.ts';
import { InvalidArgumentError, MismatchError, MissingKeyError, ResourceError } from '../../util/errors.ts';
import type { ExecutionResult } from '../exec/executor.ts';
import {
  HeArena,
  storedHeView,
  type HeLiveObject,
  type HeObjectMeta,
  writeHeObject,
} from '../exec/he-arena.ts';
import { PlacementAllocator } from '../exec/placement-allocator.ts';
import { runTiered } from '../exec/run.ts';
import type { ExecutablePlan, Plan } from '../plan/planner.ts';
import type { Policy } from '../plan/policy.ts';
import type { ObjectId, AccessProgram, AccessStep } from '../../program/access.ts';
import { analyzeProgram, type ProgramAnalysis } from '../plan/program.ts';
import type { DeviceProfile } from '../store/devices.ts';
import type { SlowTier } from '../store/slow-tier.ts';
import { heRuntimeProgram } from './program.ts';

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
 * Galois key `key` (object `id`) as a program's store holds it, at `level`, the level the program uses it at
 * ({@link programKeyLevels}; undefined: as it is): the key itself, or a cut-down copy (the caller owns it) of a key
 * made higher.
 *
 * @throws MismatchError for a key made for a level below `level`.
 * @example
 * ```ts
 * const stored = keyAtProgramLevel('key:galois:5', key, programKeyLevels(program).get(5));
 * ```
 */
export function keyAtProgramLevel(id: string, key: SwitchingKey, level: number | undefined): SwitchingKey {
  if (level === undefined || key.level === level) return key;
  if (key.level < level) {
    throw new MismatchError(
      `${id}: the Galois key is made for level ${key.level}: the program uses it at level ${level}`,
    );
  }
  return key.atLevel(level);
}

/**
 * Key object `id` (`key:relin` or `key:galois:<g>`) as a program's store holds it: the client's key or one its
 * stream makes now, a Galois key cut to the level the program uses it at. `owned`: the key is the caller's to free
 * once stored (made by the stream, or a cut-down copy); otherwise it stays the client's.
 *
 * @throws MissingKeyError for a key the keys do not have; MismatchError for a key made below its program level.
 * @example
 * ```ts
 * const { key, owned } = storedKey(client.keyStream ?? client.evaluationKeys, 'key:galois:5', programKeyLevels(program));
 * ```
 */
export function storedKey(
  keys: EvaluationKeys | EvaluationKeyStream,
  id: string,
  keyLevels: ReadonlyMap<number, number>,
): { key: SwitchingKey; owned: boolean } {
  const fromStream = keys instanceof EvaluationKeyStream;
  if (id === 'key:relin') return { key: relinearizationKey(keys), owned: fromStream };
  const g = Number(id.slice('key:galois:'.length));
  const key = galoisKey(keys, g);
  let stored: SwitchingKey;
  try {
    stored = keyAtProgramLevel(id, key, keyLevels.get(g));
  } catch (error) {
    if (fromStream) key.dispose();
    throw error;
  }
  // A streamed key is the caller's own: its cut-down copy replaces it.
  if (stored !== key && fromStream) key.dispose();
  return { key: stored, owned: fromStream || stored !== key };
}

/**
 * The relinearization key: the client's, or made now by its key stream (the caller then owns it).
 *
 * @throws MissingKeyError when the keys have none.
 * @example
 * ```ts
 * const key = relinearizationKey(client.keyStream ?? client.evaluationKeys);
 * ```
 */
export function relinearizationKey(keys: EvaluationKeys | EvaluationKeyStream): SwitchingKey {
  const missing = () => new MissingKeyError('the evaluation keys have no relinearization key');
  if (keys instanceof EvaluationKeyStream) {
    if (!keys.relinearization) throw missing();
    return keys.make('relinearization');
  }
  if (!keys.relinearization) throw missing();
  return keys.relinearization;
}

/**
 * The Galois key for element `g`: the client's, or made now by its key stream (the caller then owns it).
 *
 * @throws MissingKeyError when the keys have none for `g`.
 * @example
 * ```ts
 * const key = galoisKey(client.keyStream ?? client.evaluationKeys, 5);
 * ```
 */
export function galoisKey(keys: EvaluationKeys | EvaluationKeyStream, g: number): SwitchingKey {
  const missing = () => new MissingKeyError(`the evaluation keys have no Galois key for element ${g}`);
  if (keys instanceof EvaluationKeyStream) {
    if (!keys.galoisElements.includes(g)) throw missing();
    return keys.make(g);
  }
  const key = keys.galois.get(g)?.key;
  if (!key) throw missing();
  return key;
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
  /** The client's keys, or its key stream: each key made when the store first writes it, then freed. */
  evaluationKeys: EvaluationKeys | EvaluationKeyStream;
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
  const keyLevels = programKeyLevels(options.program);
  const modelWeights = new Set(options.program.inputs.filter((i) => i.owner === 'model').map((i) => i.id));
  return {
    get(id) {
      if (id === 'key:relin' || id.startsWith('key:galois:')) {
        const { key, owned } = storedKey(evaluationKeys, id, keyLevels);
        if (owned) streamed.add(id);
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
  runtimeProgram?: AccessProgram;
  source: HeObjectSource;
  policy: Policy;
  /**
   * Memory for objects: the arena of live objects plus the DRAM pool of byte-form buffers. Both are host DRAM;
   * the budget bounds their sum.
   */
  memoryBudgetBytes: number;
  /** Part of the budget for the DRAM pool (default 1/16 of it, leaving the arena at least the largest step). */
  dramPoolBytes?: number;
  /** Slow tiers in order of preference; none when the budget holds every object (e.g. Infinity). */
  tiers?: readonly SlowTier[];
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
  plan?: ExecutablePlan;
  /** Plan on a planning thread while the run executes (see `TieredRunOptions.streamPlan`). */
  streamPlan?: boolean;
  /** The runtime program's analysis, made earlier for the same runtime program (reused instead of recomputed). */
  analysis?: ProgramAnalysis;
  /**
   * Plaintexts encoded inside the step that reads them, by `encoder`, and freed after their last reader, instead of
   * being objects of the run (a server that encodes on use; the runtime program must leave them out too:
   * `heRuntimeProgram(program, { transientPlaintexts })`).
   */
  transientPlaintexts?: { isTransient: (index: number) => boolean; encoder: Encoder };
  onStep?: (index: number, total: number) => void;
  /**
   * Runs the program's `bootstrap` instructions (its keys and diagonals wait in its own stash; each instruction
   * declares its working set, which the plan keeps free in the arena).
   */
  bootstrapper?: Bootstrapper;
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
  /** Wall time of the run (the plan's execution), seconds. */
  seconds: number;
  computeSeconds: number;
  stallSeconds: number;
  planningSeconds: number;
  /**
   * What planning added before the execution: all of it when planned before the run, only the wait for the
   * initial placements when streamed (0 with a plan given). The run cost `seconds` + this.
   */
  planStartWaitSeconds: number;
  /** Streamed plans: time the execution waited for the planner's next actions (part of `seconds`). */
  planWaitInRunSeconds: number;
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
  plan: ExecutablePlan;
  /** The plan with its virtual-clock trace (per-step figures), when this run made it. */
  madePlan?: Plan;
  execution: ExecutionResult;
  runtimeProgram: AccessProgram;
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
 * Phases ({@link runTiered}): plan (virtual clock, before anything is written; errors about capacity surface here),
 * preflight of the tiers (still writable, room for the plan's peak), setup (each initial object's slow-tier form
 * written once, warm-start copies placed in memory), the timed execution of the plan, then the outputs handed back
 * and every byte the run held in memory released. A failure in any phase (a full or missing tier, a corrupted
 * object) throws after in-flight I/O settled; nothing partial is returned. With `memoryBudgetBytes: Infinity` and
 * no tier the plan only allocates, computes and releases: that is the all-in-memory run, through the same code.
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
  const transient = options.transientPlaintexts;
  const runtimeProgram =
    options.runtimeProgram ??
    heRuntimeProgram(program, {
      liveCapBytes: 0.7 * options.memoryBudgetBytes,
      transientPlaintexts: transient?.isTransient,
    });
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
      // Plaintexts encoded on use live from their first reader to their last one in this run.
      const lastUse = transient ? plaintextLastUse(program) : undefined;
      const encoded = new Map<number, Plaintext>();
      const operands: InstructionOperands = {
        value: (id) => arena.get(ctId(id)) as Ciphertext,
        plaintext: (index) => {
          if (!transient?.isTransient(index)) return arena.get(`pt:${index}`) as Plaintext;
          let pt = encoded.get(index);
          if (pt === undefined) {
            pt = encodePlaintextWeight(program, transient.encoder, index);
            encoded.set(index, pt);
          }
          return pt;
        },
        define: (id, ct) => arena.adopt(ctId(id), ct, analysis.bytesOf(ctId(id))),
        bootstrapper: options.bootstrapper,
      };
      return (step) => {
        const at = step.instruction!;
        const ins = program.instructions[at];
        try {
          evaluateInstruction(program, ins, evaluatorWithKeys(base, ins, arena, 'key:'), operands);
        } finally {
          const index = ins.plaintext;
          if (index !== undefined && lastUse?.[index] === at) {
            encoded.get(index)?.dispose();
            encoded.delete(index);
          }
        }
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

/** Metadata of the persistent objects kept in a tier set (keyed by its first tier) between runs. */
const keptMetadata = new WeakMap<SlowTier, Map<ObjectId, HeObjectMeta>>();

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
  runtimeProgram: AccessProgram;
  /** Objects handed back after the run (detached copies the caller owns). */
  outputIds: readonly ObjectId[];
  /** Builds the step function once the arena exists. */
  makeCompute: (arena: HeArena, analysis: ProgramAnalysis) => (step: AccessStep) => void;
  /** Objects kept in their slow tier between runs (see {@link TieredHeOptions.keepModelState}). */
  persistent?: (id: ObjectId) => boolean;
}

/**
 * The engine of {@link runTieredHe}, for any runtime program over HE objects (one model's program, or many models'
 * requests interleaved): the run driver ({@link runTiered}) over an {@link HeArena}, with the initial objects taken
 * from `source` and the run's figures summed up. See {@link runTieredHe}.
 *
 * @example
 * ```ts
 * const { outputs, stats } = await runTieredObjects({ ...options, runtimeProgram, outputIds, makeCompute });
 * ```
 */
export async function runTieredObjects(
  options: TieredObjectsOptions,
): Promise<Omit<TieredHeResult, 'outputs'> & { outputs: Map<ObjectId, HeLiveObject> }> {
  const { params, runtimeProgram } = options;
  const analysis = options.analysis ?? analyzeProgram(runtimeProgram);
  const { arenaBytes, dramPoolBytes } = splitMemoryBudget(
    analysis.maxStepBytes,
    options.memoryBudgetBytes,
    options.dramPoolBytes,
  );
  const placement = PlacementAllocator.install(params.context);
  // Metadata of the model state kept in these tiers, so later runs declare it without making the objects again.
  const firstTier = options.tiers?.[0];
  let kept = firstTier ? keptMetadata.get(firstTier) : undefined;
  if (firstTier && !kept && options.persistent) keptMetadata.set(firstTier, (kept = new Map()));
  try {
    const arena = new HeArena(params, placement, { seededKeys: options.seededKeys ?? false });
    const run = await runTiered({
      ...options,
      program: runtimeProgram,
      analysis,
      arenaBytes,
      dramBudgetBytes: dramPoolBytes,
      warmStart: options.warmStart ?? true,
      arena,
      ...(kept
        ? {
            describeKept: (id: ObjectId, bytes: number) => {
              const meta = kept.get(id);
              if (meta === undefined) return false;
              arena.describe(id, meta, bytes);
              return true;
            },
          }
        : {}),
      initial: (id, bytes) => {
        const live = options.source.get(id);
        arena.describeFrom(id, live, bytes);
        if (kept && options.persistent?.(id)) kept.set(id, arena.meta(id));
        const seeded = arena.storedBytes(id) !== bytes;
        const done = () => options.source.done?.(id, live);
        return {
          writeStored: (into) => writeHeObject(live, into, { seeded }),
          storedView: () => storedHeView(live, { seeded }),
          writeFull: (into) => writeHeObject(live, into),
          lend: () => arena.lend(id, live, bytes, done),
          close: done,
        };
      },
      compute: options.makeCompute(arena, analysis),
    });
    const { plan, execution } = run;
    const isKey = (id: string) => {
      const kind = analysis.objects.get(id)?.kind;
      return kind === 'relin-key' || kind === 'rotation-key';
    };
    const keyReads = plan.actions
      .filter((a) => a.kind === 'load' && a.id !== undefined && isKey(a.id))
      .reduce((s, a) => s + arena.storedBytes(a.id!), 0);
    const readOnlyWritten = [...execution.writes.keys()].filter((id) => analysis.objects.get(id)?.readOnly);
    const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    const stats: TieredHeStats = {
      seconds: execution.totalNs / 1e9,
      computeSeconds: execution.computeNs / 1e9,
      stallSeconds: execution.stallNs / 1e9,
      planningSeconds: run.planningNs / 1e9,
      planStartWaitSeconds: run.planStartWaitNs / 1e9,
      planWaitInRunSeconds: execution.planWaitNs / 1e9,
      setupSeconds: run.setupNs / 1e9,
      memoryBudgetBytes: options.memoryBudgetBytes,
      arenaBytes,
      dramPoolBytes,
      arenaPeakBytes: execution.arenaPeakBytes,
      dramPeakBytes: execution.dramPeakBytes,
      slowBytesRead: sum(execution.slowRead),
      slowBytesWritten: sum(execution.slowWritten),
      keyBytesRead: keyReads,
      keyExpandSeconds: arena.expandNs / 1e9,
      copyBytes: execution.copyBytes,
      gatherBytes: execution.gatherBytes,
      predictedSeconds: plan.run.summary.totalNs / 1e9,
      objectsWritten: execution.writes.size,
      readOnlyWritten,
    };
    return {
      outputs: run.outputs,
      stats,
      plan,
      ...(run.madePlan ? { madePlan: run.madePlan } : {}),
      execution,
      runtimeProgram,
    };
  } finally {
    placement.uninstall();
  }
}
