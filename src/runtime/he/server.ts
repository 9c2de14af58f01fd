/**
 * The server's side of encrypted inference (evaluation keys only) and the client and server in one process.
 */
import { Bootstrapper, type BootstrappingTimings } from '../../ckks/bootstrapping/bootstrapper.ts';
import type { BootstrappingKeys } from '../../ckks/bootstrapping/keys.ts';
import { BootstrappingParameters } from '../../ckks/bootstrapping/parameters.ts';
import type { Stash } from '../../ckks/stash.ts';
import { Encoder } from '../../ckks/encoder.ts';
import { Evaluator } from '../../ckks/evaluator.ts';
import { type EvaluationKeys, EvaluationKeyStream } from '../../ckks/keys.ts';
import type { Ciphertext, Plaintext } from '../../ckks/objects.ts';
import { Parameters } from '../../ckks/parameters.ts';
import { InferenceClient } from '../../nn/client.ts';
import { ModelOwner } from '../../nn/owner.ts';
import type { AccessProgram } from '../../program/access.ts';
import { encodePlaintextWeight } from '../../program/evaluate.ts';
import { programKeyLevels } from '../../program/analysis.ts';
import { checkImages, outputSize, passes } from '../../program/packing.ts';
import { assertProgram, type HeProgram, type InputDescriptor } from '../../program/program.ts';
import type { KernelContext } from '../../ring/context.ts';
import { check } from '../../util/assert.ts';
import { MismatchError, MissingKeyError } from '../../util/errors.ts';
import type { ExecutablePlan } from '../plan/planner.ts';
import { analyzeProgram, type ProgramAnalysis } from '../plan/program.ts';
import type { DeviceProfile } from '../store/devices.ts';
import type { SlowTier } from '../store/slow-tier.ts';
import { heRuntimeProgram, REAL_RUN_POLICY_KEY, realRunHomePolicy } from './program.ts';
import {
  choosePlaintextForms,
  measureEncodeNsPerLimb,
  type PlaintextForm,
  type PlaintextFormChoice,
} from './plaintext-forms.ts';
import {
  type HeObjectSource,
  runTieredHe,
  splitMemoryBudget,
  storedKey,
  type TieredHeStats,
} from './tiered.ts';
import type { PlanCache } from '../plan/plan-cache.ts';
import { prewarmPlanningThread } from '../plan/streamed-plan.ts';

/**
 * Called while a program runs with the instructions done so far and the total.
 *
 * @example
 * ```ts
 * const onProgress: ProgressCallback = (done, total) => bar.update(done / total);
 * ```
 */
export type ProgressCallback = (done: number, total: number) => void;

/**
 * Wall-clock seconds per phase.
 *
 * @example
 * ```ts
 * console.log(`evaluate ${timings.evaluate.toFixed(1)} s`);
 * ```
 */
export interface PhaseTimings {
  keygen: number;
  /** The model owner encrypting the weights (encrypted-weight programs). */
  encryptWeights: number;
  /** Server setup: encoding the plaintext weights once. */
  setup: number;
  encrypt: number;
  evaluate: number;
  decrypt: number;
}

/**
 * Where an {@link InferenceServer} keeps the objects of its runs when memory is bounded.
 *
 * @example
 * ```ts
 * const memory: ServerMemory = { budgetBytes: 2 * 2 ** 30, tiers: [await FileTier.open({ name: 'nvme', dir, io })] };
 * ```
 */
export interface ServerMemory {
  /** Arena + DRAM pool bytes for the run's objects. */
  readonly budgetBytes: number;
  /** Slow tiers in order of preference (at least one). */
  readonly tiers: readonly SlowTier[];
  /** Profile the planner times each tier with (default: the tier's own). */
  readonly planningDevices?: readonly DeviceProfile[];
  /** Part of the budget for the DRAM pool (default 1/32 of it). */
  readonly dramPoolBytes?: number;
  /** Keep only the b halves and seed of each key in the slow tier. */
  readonly seededKeys?: boolean;
  /**
   * Plans kept between processes: the first run loads the plan made for this program, memory split and devices
   * (named by `devices`, e.g. the profile name) instead of planning, and stores the one it makes.
   */
  readonly planCache?: { readonly cache: PlanCache; readonly devices: string };
}

/**
 * Where the plan of a server's run came from and what getting it cost.
 *
 * @example
 * ```ts
 * if (server.lastPlan?.source === 'planned') console.log(`planned in ${server.lastPlan.seconds} s`);
 * ```
 */
export interface PlanOrigin {
  /** `planned`: made by this run; `cache`: loaded from the plan cache; `reused`: kept from an earlier run. */
  readonly source: 'planned' | 'cache' | 'reused';
  /** Planning or loading time (0 when reused). */
  readonly seconds: number;
  /** Why the cache had no plan (`absent`, or what was wrong with the file), when it was asked. */
  readonly cacheMiss?: string;
  /** Why a plan made by this run could not be stored. */
  readonly storeError?: string;
}

/**
 * The server's side: evaluation keys only. Runs the program's instructions on the client's ciphertexts through the
 * runtime's planner and executor. Without `memory`, the budget is unlimited (all in memory: no slow tier, no
 * transfer) — the same code path as a tiered run; keys, encrypted weights and the plaintext weights it encodes once
 * are lent to the run, not copied. With `memory`, every object lives where the plan puts it (arena, DRAM pool,
 * slow tier): the model state (keys, plaintext and encrypted weights) is written to the slow tier on the first run
 * and kept there for the later ones, plaintext weights are encoded when they are first written and never held all
 * at once. Either way the plan is made on the first run and reused by every later one (HE programs are
 * data-oblivious); inputs are consumed (disposed after their last use).
 *
 * @example
 * ```ts
 * const server = new InferenceServer(program, evaluationKeys);
 * const outputs = await server.run(inputs, (done, total) => bar.update(done / total));
 * ```
 */
export class InferenceServer {
  readonly program: HeProgram;
  readonly params: Parameters;
  readonly #evaluationKeys: EvaluationKeys | EvaluationKeyStream;
  readonly #encoder: Encoder;
  /** Resident encoded plaintexts by index; `undefined` for those encoded on use. */
  #plaintexts: (Plaintext | undefined)[] | undefined;
  #weights: Map<number, Ciphertext> = new Map();
  readonly #transient: (index: number) => boolean;
  readonly #runtimeProgram: AccessProgram;
  #plan: ExecutablePlan | undefined;
  #planOrigin: PlanOrigin | undefined;
  #analysis: ProgramAnalysis | undefined;
  #keyLevels: Map<number, number> | undefined;
  #stats: TieredHeStats | undefined;
  readonly #memory: ServerMemory | undefined;
  readonly #bootstrapper: Bootstrapper | undefined;
  /** With `memory`: the form chosen for each plaintext weight, and why. */
  readonly plaintextForms: PlaintextFormChoice | undefined;

  /**
   * With `lazyPlaintexts`, every plaintext weight is encoded right before the instruction that reads it and freed
   * after its last use in the pass, as the program already asks for those it marks `encodeOnUse`. With `memory`,
   * runs are bounded by its budget and spill to its tiers.
   *
   * A client's {@link EvaluationKeyStream} instead of its keys (with `memory` only): each key is made when the
   * first run stores it in the slow tier, and freed once written, so the keys never need to fit in memory together.
   *
   * @throws ResourceError (on the first run) when one instruction's objects cannot fit in the budget's arena.
   */
  constructor(
    program: HeProgram,
    evaluationKeys: EvaluationKeys | EvaluationKeyStream,
    options: {
      lazyPlaintexts?: boolean;
      context?: KernelContext;
      memory?: ServerMemory;
      /**
       * Runs expected with this program (default `Infinity`, a long-lived server). With `memory`, it decides which
       * plaintexts are encoded on use rather than stored ({@link choosePlaintextForms}).
       */
      expectedRuns?: number;
      /**
       * With `memory`: `auto` (default) chooses per plaintext; `stored` stores every plaintext the program does
       * not mark `encodeOnUse`; `encode-on-use` encodes every one on use (as `lazyPlaintexts`).
       */
      plaintextForms?: 'auto' | PlaintextForm;
      /**
       * The client's bootstrapping keys (programs with `bootstrapping`): the server's bootstrapper runs on them, its
       * encoded diagonals waiting in the keys' stash (or in `bootstrapStash`).
       */
      bootstrappingKeys?: BootstrappingKeys;
      bootstrapStash?: Stash;
    } = {},
  ) {
    assertProgram(program);
    this.program = program;
    this.params = Parameters.create(program.parameters, { context: options.context });
    if (program.bootstrapping) {
      const keys = options.bootstrappingKeys;
      if (!keys) {
        throw new MissingKeyError(
          "the program bootstraps: the server needs the client's bootstrapping keys (InferenceClient.bootstrappingKeys)",
        );
      }
      const bp = BootstrappingParameters.create(program.bootstrapping, { context: options.context });
      this.params.checkSame(bp.params, 'program bootstrapping');
      this.#bootstrapper = new Bootstrapper(
        bp,
        keys,
        options.bootstrapStash ? { stash: options.bootstrapStash } : {},
      );
    }
    if (evaluationKeys instanceof EvaluationKeyStream) {
      this.params.checkSame(evaluationKeys.params, 'evaluation key stream:');
      check(
        options.memory !== undefined,
        () => 'streamed evaluation keys need a tiered server (memory): the keys are stored in its slow tier',
      );
    } else {
      // The evaluator's own checks of the keys' parameters, before anything runs.
      new Evaluator(this.params, evaluationKeys);
    }
    this.#evaluationKeys = evaluationKeys;
    this.#encoder = new Encoder(this.params);
    const lazyAll = options.lazyPlaintexts === true || options.plaintextForms === 'encode-on-use';
    this.#transient = (index) => lazyAll || program.plaintexts[index]?.encodeOnUse === true;
    const memory = options.memory;
    if (memory !== undefined) {
      check(
        Number.isFinite(memory.budgetBytes) && memory.budgetBytes > 0,
        () => `memory.budgetBytes = ${memory.budgetBytes}: expected a positive byte count`,
      );
      check(memory.tiers.length > 0, () => 'memory.tiers: expected at least one slow tier');
      if (!lazyAll && (options.plaintextForms ?? 'auto') === 'auto' && program.plaintexts.length > 0) {
        // Each plaintext stored (and read back when the plan spills it) or encoded on use, whichever costs less
        // on this machine's encoder and this tier.
        const choice = choosePlaintextForms(program, {
          device: memory.planningDevices?.[0] ?? memory.tiers[0].device,
          runs: options.expectedRuns ?? Number.POSITIVE_INFINITY,
          encodeNsPerLimb: measureEncodeNsPerLimb(program, this.#encoder),
        });
        this.plaintextForms = choice;
        this.#transient = (index) => choice.forms[index] === 'encode-on-use';
      }
    }
    this.#memory = memory;
    // The first run plans on a planning thread (unless its plan is cached): start one now, before the run.
    if (memory) void prewarmPlanningThread();
    // Unbounded: the compiled order. Bounded: the order that keeps fewer bytes live (dense layers interchanged,
    // layers fused), as the tiered benchmarks run.
    this.#runtimeProgram = memory
      ? heRuntimeProgram(program, {
          liveCapBytes: 0.7 * memory.budgetBytes,
          transientPlaintexts: this.#transient,
        })
      : heRuntimeProgram(program, { schedule: 'program', transientPlaintexts: this.#transient });
  }

  /** Keeps the model owner's encrypted weights for every later run. */
  loadWeights(weights: Map<number, Ciphertext>): void {
    for (const w of this.program.inputs) {
      if (w.owner !== 'model') continue;
      const ct = weights.get(w.id);
      if (!ct) throw new MismatchError(`encrypted weight ${w.id}: missing`);
      this.#checkInput(w, ct);
      this.#weights.set(w.id, ct);
    }
  }

  #checkInput(input: InputDescriptor, ct: Ciphertext): void {
    this.params.checkSame(ct.params, `input ${input.id}:`);
    if (ct.level !== input.level || Math.abs(ct.scale / input.scale - 1) > 2 ** -30) {
      throw new MismatchError(
        `input ${input.id}: level ${ct.level}, scale 2^${Math.log2(ct.scale).toFixed(3)}; expected level ` +
          `${input.level}, scale 2^${Math.log2(input.scale).toFixed(3)}`,
      );
    }
  }

  /** The resident plaintext weight vectors, encoded once at their level and scale (not those encoded on use). */
  #encodedWeights(): (Plaintext | undefined)[] {
    this.#plaintexts ??= this.program.plaintexts.map((_, i) =>
      this.#transient(i) ? undefined : encodePlaintextWeight(this.program, this.#encoder, i),
    );
    return this.#plaintexts;
  }

  /** Plaintext weights encoded once and kept (`stored`) and those encoded by each reader (`encodeOnUse`). */
  get plaintextFormCounts(): { stored: number; encodeOnUse: number } {
    let encodeOnUse = 0;
    for (let i = 0; i < this.program.plaintexts.length; i++) if (this.#transient(i)) encodeOnUse++;
    return { stored: this.program.plaintexts.length - encodeOnUse, encodeOnUse };
  }

  /** Where the last run's plan came from. */
  get lastPlan(): PlanOrigin | undefined {
    return this.#planOrigin;
  }

  /** The figures of the last run (planning, execution, compute and arena peak), if any. */
  get lastRunStats(): TieredHeStats | undefined {
    return this.#stats;
  }

  /**
   * Executes the program. `inputs` (input id → ciphertext) are consumed: disposed after their last use.
   *
   * @throws MismatchError when an input is missing or at the wrong level/scale; MissingKeyError for a missing key.
   */
  async run(
    inputs: Map<number, Ciphertext>,
    onProgress?: ProgressCallback,
  ): Promise<Map<number, Ciphertext>> {
    const program = this.program;
    const data = new Map<number, Ciphertext>();
    for (const input of program.inputs) {
      if (input.owner === 'model') {
        if (!this.#weights.has(input.id))
          throw new MismatchError(`encrypted weight ${input.id}: missing (call loadWeights first)`);
        continue;
      }
      const ct = inputs.get(input.id);
      if (!ct) throw new MismatchError(`input ${input.id} (element ${input.element}): missing ciphertext`);
      this.#checkInput(input, ct);
      data.set(input.id, ct);
    }
    const memory = this.#memory;
    // Bounded memory: plaintext weights are encoded when the runtime first asks for them (then written to the slow
    // tier and freed), never all at once.
    const plaintexts = program.plaintexts.length > 0 && !memory ? this.#encodedWeights() : [];
    const keys = this.#evaluationKeys;
    const keyLevels = (this.#keyLevels ??= programKeyLevels(program));
    // Keys made for this run's store (streamed, or cut down to the level the program uses them at): freed once stored.
    const cut = new Set<string>();
    const source: HeObjectSource = {
      get: (id) => {
        if (id === 'key:relin' || id.startsWith('key:galois:')) {
          const { key, owned } = storedKey(keys, id, keyLevels);
          if (owned) cut.add(id);
          return key;
        }
        if (id.startsWith('pt:')) {
          const index = Number(id.slice(3));
          return memory ? encodePlaintextWeight(program, this.#encoder, index) : plaintexts[index]!;
        }
        const value = Number(id.slice(3));
        return data.get(value) ?? this.#weights.get(value)!;
      },
      // The run hands back what it was lent: the client's inputs are consumed, model state stays (plaintexts
      // encoded for a bounded run were written to its tier and are freed).
      done: (id, live) => {
        if (id.startsWith('ct:') && data.has(Number(id.slice(3)))) live.dispose();
        else if (memory && id.startsWith('pt:')) live.dispose();
        // A streamed or cut-down key was made for this run's store: written (or lent and returned), it is freed.
        else if (cut.delete(id)) live.dispose();
      },
    };
    const total = this.#runtimeProgram.steps.length;
    const every = Math.max(1, Math.floor(total / 200));
    const analysis = (this.#analysis ??= analyzeProgram(this.#runtimeProgram));
    const dramPoolBytes = memory ? (memory.dramPoolBytes ?? Math.floor(memory.budgetBytes / 32)) : undefined;
    let origin: PlanOrigin = { source: 'reused', seconds: 0 };
    let cacheKey: string | undefined;
    const planCache = memory?.planCache;
    if (!this.#plan && memory && planCache) {
      const start = performance.now();
      const split = splitMemoryBudget(analysis.maxStepBytes, memory.budgetBytes, dramPoolBytes);
      cacheKey = planCache.cache.keyOf(this.#runtimeProgram, {
        ...split,
        policy: REAL_RUN_POLICY_KEY,
        devices: planCache.devices,
        extra: memory.seededKeys ? 'seeded-keys' : 'full-keys',
      });
      this.#plan = planCache.cache.load(cacheKey, this.#runtimeProgram);
      origin = this.#plan
        ? { source: 'cache', seconds: (performance.now() - start) / 1000 }
        : { source: 'planned', seconds: 0, cacheMiss: planCache.cache.lastMiss ?? 'absent' };
    } else if (!this.#plan) {
      origin = { source: 'planned', seconds: 0 };
    }
    try {
      const result = await runTieredHe({
        program,
        params: this.params,
        runtimeProgram: this.#runtimeProgram,
        source,
        policy: realRunHomePolicy(),
        memoryBudgetBytes: memory?.budgetBytes ?? Infinity,
        ...(memory
          ? {
              tiers: memory.tiers,
              dramPoolBytes,
              ...(memory.planningDevices ? { planningDevices: memory.planningDevices } : {}),
              seededKeys: memory.seededKeys ?? false,
              keepModelState: true,
              // A plan not in the cache is made on the planning thread while this run executes it.
              streamPlan: true,
            }
          : {}),
        transientPlaintexts: { isTransient: this.#transient, encoder: this.#encoder },
        analysis,
        ...(this.#bootstrapper ? { bootstrapper: this.#bootstrapper } : {}),
        ...(this.#plan ? { plan: this.#plan } : {}),
        ...(onProgress
          ? {
              onStep: (index: number) =>
                (index % every === 0 || index === total - 1) && onProgress(index + 1, total),
            }
          : {}),
      });
      if (!this.#plan) {
        this.#plan = result.plan;
        origin = { ...origin, seconds: result.stats.planningSeconds };
        if (planCache && cacheKey !== undefined) {
          const stored = planCache.cache.store(cacheKey, result.plan);
          if (!stored.ok) origin = { ...origin, storeError: stored.reason };
        }
      }
      this.#planOrigin = origin;
      this.#stats = result.stats;
      return result.outputs;
    } finally {
      // Inputs the run did not take (it failed before lending them) are consumed all the same.
      for (const ct of data.values()) ct.dispose();
    }
  }

  /**
   * Encodes the plaintext weights now (server setup; otherwise the first run does it). Returns the seconds spent.
   */
  prepare(): number {
    const start = performance.now();
    // A bounded server encodes each plaintext weight when its run first writes it to the slow tier.
    if (!this.#memory) this.#encodedWeights();
    return (performance.now() - start) / 1000;
  }

  /**
   * Releases the encoded plaintext weights and the encrypted weights (with `keepWeights`, the encrypted weights are
   * left to the caller that lent them).
   */
  dispose(options: { keepWeights?: boolean } = {}): void {
    for (const p of this.#plaintexts ?? []) p?.dispose();
    this.#plaintexts = undefined;
    if (!options.keepWeights) for (const w of this.#weights.values()) w.dispose();
    this.#weights.clear();
    this.#bootstrapper?.dispose();
  }

  /** Phase times of the last bootstrap the server ran (undefined for a program without bootstraps). */
  get lastBootstrapTimings(): BootstrappingTimings | undefined {
    return this.#bootstrapper?.lastTimings;
  }
}

/**
 * Result of {@link runEncrypted}.
 *
 * @example
 * ```ts
 * const { logits, timings, peakArenaBytes } = await runEncrypted(program, images, 100);
 * ```
 */
export interface EncryptedRun {
  /** `count × outputs` decrypted values. */
  readonly logits: Float64Array;
  readonly timings: PhaseTimings;
  readonly passes: number;
  /** Largest arena use seen by the process so far (bytes). */
  readonly peakArenaBytes: number;
  /** Evaluation keys sent to the server: full and seeded size. */
  readonly keyBytes: number;
  readonly seededKeyBytes: number;
  /** Ciphertexts uploaded (seeded form: half of each input) and downloaded, all passes. */
  readonly uploadBytes: number;
  readonly downloadBytes: number;
}

/**
 * Client and server in one process: keygen, then per pass encrypt → evaluate → decrypt, timing each phase.
 *
 * @example
 * ```ts
 * const run = await runEncrypted(program, images, 1000, { onProgress: (d, t) => {} });
 * argmaxRows(run.logits, 1000, 10);
 * ```
 */
export async function runEncrypted(
  program: HeProgram,
  images: ArrayLike<number>,
  count: number,
  options: {
    seed?: Uint8Array;
    onProgress?: (imagesDone: number, fraction: number) => void;
    client?: InferenceClient;
    /** Encode every plaintext weight on use (see {@link InferenceServer}). */
    lazyPlaintexts?: boolean;
  } = {},
): Promise<EncryptedRun> {
  checkImages(program, images, count);
  const client = options.client ?? new InferenceClient(program, { seed: options.seed });
  const server = new InferenceServer(program, client.evaluationKeys, {
    lazyPlaintexts: options.lazyPlaintexts,
    ...(client.bootstrappingKeys ? { bootstrappingKeys: client.bootstrappingKeys } : {}),
  });
  const timings: PhaseTimings = {
    keygen: options.client ? 0 : client.keygenSeconds,
    encryptWeights: 0,
    setup: server.prepare(),
    encrypt: 0,
    evaluate: 0,
    decrypt: 0,
  };
  if (client.publicKey) {
    const start = performance.now();
    server.loadWeights(new ModelOwner(program, client.publicKey, { seed: options.seed }).encryptWeights());
    timings.encryptWeights = (performance.now() - start) / 1000;
  }
  const logits = new Float64Array(count * outputSize(program));
  const list = passes(program, count);
  let uploadBytes = 0;
  let downloadBytes = 0;
  try {
    for (const pass of list) {
      let t = performance.now();
      const inputs = client.encryptPass(images, pass.first, pass.count);
      for (const ct of inputs.values()) uploadBytes += ct.byteLength / 2;
      timings.encrypt += (performance.now() - t) / 1000;
      t = performance.now();
      const outputs = await server.run(inputs, (done, total) =>
        options.onProgress?.(pass.first, (pass.first + (pass.count * done) / total) / count),
      );
      timings.evaluate += (performance.now() - t) / 1000;
      for (const ct of outputs.values()) downloadBytes += ct.byteLength;
      t = performance.now();
      logits.set(client.decryptPass(outputs, pass.count), pass.first * outputSize(program));
      timings.decrypt += (performance.now() - t) / 1000;
      options.onProgress?.(pass.first + pass.count, (pass.first + pass.count) / count);
    }
  } finally {
    server.dispose();
  }
  const seededKeyBytes = client.evaluationKeys.seededByteLength;
  return {
    logits,
    timings,
    passes: list.length,
    peakArenaBytes: client.params.context.allocator.peakBytes,
    keyBytes: client.evaluationKeys.byteLength,
    seededKeyBytes,
    uploadBytes,
    downloadBytes,
  };
}
