import { check } from '../../util/assert.ts';
import { InvalidArgumentError, ResourceError } from '../../util/errors.ts';
import { type ExecutablePlan, initialPlacements, type Plan, planProgram } from '../plan/planner.ts';
import { startStreamedPlan } from '../plan/streamed-plan.ts';
import type { Policy } from '../plan/policy.ts';
import type { ObjectId, AccessProgram, AccessStep } from '../../program/access.ts';
import { analyzeProgram, type ProgramAnalysis } from '../plan/program.ts';
import { BufferPool } from '../store/buffer-pool.ts';
import { type DeviceProfile, nowNs } from '../store/devices.ts';
import { type ScatterBytes, scatterBytesLength, type SlowTier } from '../store/slow-tier.ts';
import { type ExecArena, type ExecutionResult, executePlan } from './executor.ts';

/**
 * An object that exists before the run, as its source hands it over: the run asks for the forms it needs (the
 * stored form for its slow tier, the byte form to start it in memory; when the arena's two forms of the object have
 * the same size they are the same bytes, and only the stored form is asked for) and then closes it.
 *
 * @example
 * ```ts
 * const object: InitialObject = { writeStored: (into) => into.set(bytes), writeFull: (into) => into.set(bytes), close() {} };
 * ```
 */
export interface InitialObject {
  /** Writes the slow-tier form into `into` (the arena's `storedBytes` long). */
  writeStored(into: Uint8Array): void;
  /** Writes the byte form into `into` (the arena's `fullBytes` long). */
  writeFull(into: Uint8Array): void;
  /**
   * Optional: makes the object live in the arena as the source holds it, with no byte form made (the arena takes it
   * on loan and hands it back when it is done with it, instead of the run closing it). The run asks only for objects
   * no step writes, placed in the compute level: an all-in-memory run then starts without copying its inputs.
   */
  lend?(): void;
  /**
   * Optional: the slow-tier form where it already lies in shared memory (one view, or pieces back to back), valid
   * until {@link close}: setup writes it from there instead of serializing it into a staging slab. Null when the
   * object has no such form.
   */
  storedView?(): ScatterBytes | null;
  /** The run needs nothing more of the object from its source. */
  close(): void;
}

/**
 * Options of {@link runTiered}.
 *
 * @example
 * ```ts
 * const options: TieredRunOptions<Uint8Array> = { program, policy, dramBudgetBytes, tiers, arena, initial, compute, outputIds };
 * ```
 */
export interface TieredRunOptions<Out> {
  program: AccessProgram;
  policy: Policy;
  /** Capacity of the arena; omit to compute on DRAM buffers (the arena then holds them, within the DRAM budget). */
  arenaBytes?: number;
  /** Hard budget of the DRAM pool (Infinity with `arenaBytes` Infinity: everything in memory). */
  dramBudgetBytes: number;
  /** Slow tiers in order of preference; none when everything fits in memory. */
  tiers?: readonly SlowTier[];
  /** Profile the planner times each tier with (default: the tier's own `device`). */
  planningDevices?: readonly DeviceProfile[];
  warmStart?: boolean;
  /** A plan made (or cached) earlier for the same program, policy, budgets and tiers (skips planning). */
  plan?: ExecutablePlan;
  /** The program's analysis, if the caller has it (reused by the planner). */
  analysis?: ProgramAnalysis;
  label?: string;
  nsPerModularMultiply?: number;
  /** The compute level, empty; the run clears it when it ends. */
  arena: ExecArena<Out>;
  /** The initial object `id` of `bytes` bytes; called once per initial object, before its forms are needed. */
  initial(id: ObjectId, bytes: number): InitialObject;
  /** Runs a step on the live operands in the arena. */
  compute: (step: AccessStep) => void;
  /** Objects handed back after the run (copies the caller owns), or a function of the plan naming them. */
  outputIds: readonly ObjectId[] | ((plan: ExecutablePlan) => readonly ObjectId[]);
  /** Objects whose slow-tier copies are kept between runs on the same tier instance (model state). */
  persistent?: (id: ObjectId) => boolean;
  /**
   * For a persistent object an earlier run committed to a tier: declare it to the arena without its source (e.g.
   * from metadata kept by the caller) and return true, so setup neither asks the source for it nor serializes it
   * again; false when it cannot (the object is then made and written as usual).
   */
  describeKept?: (id: ObjectId, bytes: number) => boolean;
  /**
   * Plan on a planning thread while the run executes the plan (see {@link StreamedPlan}): the run starts once the
   * initial placements are known. Only without `plan`, with slow tiers, and for a policy with a descriptor
   * (built-in policies); otherwise the plan is made here before the run.
   */
  streamPlan?: boolean;
  /** Called after setup, right before the timed execution (e.g. to let the OS flush the setup writes). */
  beforeRun?: () => void | Promise<void>;
  onStep?: (index: number, total: number) => void;
}

/**
 * Result of {@link runTiered}.
 *
 * @example
 * ```ts
 * console.log(result.execution.totalNs / 1e9, result.plan.run.summary.totalNs / 1e9);
 * ```
 */
export interface TieredRunResult<Out> {
  outputs: Map<ObjectId, Out>;
  plan: ExecutablePlan;
  /** The plan with its virtual-clock trace, when this run made it (not when one was given). */
  madePlan?: Plan;
  execution: ExecutionResult;
  /**
   * Wall time of planning (0 with a plan given; for a streamed plan, the planning thread's) and of setup
   * (slow-tier copies written, warm starts placed).
   */
  planningNs: number;
  /**
   * What planning cost the run before its execution started: all of the planning when made here, only the wait
   * for the initial placements when streamed (waits for actions during execution are the execution's
   * `planWaitNs`, inside its time).
   */
  planStartWaitNs: number;
  setupNs: number;
}

/** Stored-form sizes of the persistent objects each tier instance holds from earlier runs. */
const persistentCopies = new WeakMap<SlowTier, Map<ObjectId, number>>();

/**
 * Runs a program through the tiered runtime, any kind of objects: plan, preflight, setup, execute, outputs,
 * cleanup. HE runs ({@link runTieredHe}) and byte programs ({@link runByteProgram}) are this with their arena.
 *
 * Phases: plan (virtual clock, before anything is written; errors about capacity surface here), preflight of the
 * tiers (still writable, room for the most the plan keeps there), setup (each initial object's slow-tier form
 * written once, warm-start copies placed in memory), the timed execution ({@link executePlan}), then the outputs
 * handed back and every byte the run held in memory or in the tiers released (persistent copies stay). A failure
 * in any phase (a full or missing tier, a corrupted object) throws after in-flight I/O settled; nothing partial is
 * returned.
 *
 * @example
 * ```ts
 * const { outputs, execution } = await runTiered({ program, policy, dramBudgetBytes, tiers, arena, initial, compute, outputIds });
 * ```
 */
export async function runTiered<Out>(options: TieredRunOptions<Out>): Promise<TieredRunResult<Out>> {
  const { program, arena } = options;
  const tiers = options.tiers ?? [];
  const analysis = options.analysis ?? analyzeProgram(program);

  // 1. Plan (no side effects): here, or on a planning thread while the run goes on.
  const planningStart = nowNs();
  const canStream =
    options.streamPlan === true &&
    !options.plan &&
    tiers.length > 0 &&
    options.policy.descriptor !== undefined;
  // The room a plan has on a tier: what is left, plus the copies an earlier run left there of this program's
  // persistent objects (the plan places them there, as new; they take no new room).
  const plannedTiers = tiers.map((t, i) => {
    let stored = 0;
    for (const id of persistentCopies.get(t)?.keys() ?? []) {
      if (t.has(id) && analysis.objects.has(id)) stored += analysis.bytesOf(id) + t.objectOverheadBytes;
    }
    return {
      name: t.name,
      device: options.planningDevices?.[i] ?? t.device,
      capacityBytes: t.capacityBytes - t.usedBytes + stored,
      objectOverheadBytes: t.objectOverheadBytes,
    };
  });
  // The run starts from the initial placements, computed here (cheap, deterministic); the planning thread makes
  // the same ones and checks them.
  const known = canStream
    ? initialPlacements(program, {
        dramBudgetBytes: options.dramBudgetBytes,
        ...(options.arenaBytes !== undefined ? { arenaBytes: options.arenaBytes } : {}),
        tiers: plannedTiers,
        warmStart: options.warmStart ?? true,
        analysis,
      })
    : undefined;
  const streamed = canStream
    ? startStreamedPlan(
        program,
        {
          policy: options.policy.descriptor!,
          dramBudgetBytes: options.dramBudgetBytes,
          ...(options.arenaBytes !== undefined ? { arenaBytes: options.arenaBytes } : {}),
          tiers: plannedTiers,
          warmStart: options.warmStart ?? true,
          ...(options.label !== undefined ? { label: options.label } : {}),
          ...(options.nsPerModularMultiply !== undefined
            ? { nsPerModularMultiply: options.nsPerModularMultiply }
            : {}),
        },
        known,
      )
    : undefined;
  const madePlan: Plan | undefined =
    options.plan || streamed
      ? undefined
      : planProgram(program, {
          policy: options.policy,
          dramBudgetBytes: options.dramBudgetBytes,
          ...(options.arenaBytes !== undefined ? { arenaBytes: options.arenaBytes } : {}),
          tiers: plannedTiers,
          warmStart: options.warmStart ?? true,
          label: options.label,
          nsPerModularMultiply: options.nsPerModularMultiply,
          analysis,
        });
  if (streamed) {
    try {
      await streamed.ready;
    } catch (error) {
      await streamed.cancel();
      throw error;
    }
  }
  const plan: ExecutablePlan = options.plan ?? streamed ?? (madePlan as Plan);
  const startWaitNs = options.plan ? 0 : nowNs() - planningStart;

  // 2. Preflight: every tier still there and writable, with room for the most the plan keeps there at once, plus
  // the persistent copies, which are never deleted during the run — less those an earlier run left there, which
  // take no new room (counted twice, they made a second pass of the zoo CNN ask for 69.6 GB beside 33 GB kept).
  // That sum counts a copy the plan places on the tier twice, once in its peak and once kept (86 GB for LeNet,
  // whose keys and diagonals are 42.8 GB): every initial object once (wherever it starts: one warm in memory may
  // be evicted here) plus the most produced bytes ever live at once bounds the tier as well; the smaller is asked.
  // Room is the tier's capacity and its file system's free space both.
  for (let i = 0; i < tiers.length; i++) {
    let kept = 0;
    // Copies an earlier run left on the tier: counted in the plan's peak and in the initial bytes, but already
    // stored (a second pass of LeNet asked for 43.3 GB more beside its 43 GB of model state already there).
    let stored = 0;
    const committed = persistentCopies.get(tiers[i]);
    const overhead = tiers[i].objectOverheadBytes;
    for (const [id, placement] of plan.initial) {
      if (placement.slowTier !== i || !options.persistent?.(id)) continue;
      if (committed?.has(id) && tiers[i].has(id)) stored += analysis.bytesOf(id) + overhead;
      else kept += analysis.bytesOf(id) + overhead;
    }
    const everything =
      analysis.initialBytes + analysis.peakLiveProducedBytes + analysis.objects.size * overhead - stored;
    await tiers[i].check();
    let peak = plan.slowPeakBytes[i];
    if (peak === undefined && streamed) {
      // The peak is known when planning ends; until then, every object at once bounds it. Without room for the
      // smaller bound, wait for the exact peak (the run must not fail half-way for lack of space).
      let bound = -stored;
      for (const info of program.objects) bound += info.bytes + overhead;
      const boundFits = await tiers[i].ensureRoom(Math.min(bound, everything)).then(
        () => true,
        (error: unknown) => {
          if (error instanceof ResourceError) return false;
          throw error;
        },
      );
      if (boundFits) continue;
      await streamed.finished.catch(async (error: unknown) => {
        await streamed.cancel();
        throw error;
      });
      peak = plan.slowPeakBytes[i];
    }
    await tiers[i].ensureRoom(Math.max(0, Math.min((peak ?? 0) + kept - stored, everything)));
  }

  const dramInitial = new Map<ObjectId, Uint8Array>();
  const outputs = new Map<ObjectId, Out>();
  try {
    // 3. Setup.
    const setupStart = nowNs();
    await setupInitialObjects(options, tiers, plan, analysis, dramInitial);
    const setupNs = nowNs() - setupStart;
    await options.beforeRun?.();

    // 4. The run.
    const total = program.steps.length;
    const execution = await executePlan({
      plan,
      tiers,
      dramBudgetBytes: options.dramBudgetBytes,
      dramInitial,
      arena,
      compute: options.compute,
      keep: options.persistent,
      onStep: options.onStep && ((index) => options.onStep!(index, total)),
      ...(streamed ? { stream: streamed } : {}),
    });
    if (streamed) await streamed.finished;
    dramInitial.clear();

    // 5. Outputs, detached from the runtime's memory.
    const ids = typeof options.outputIds === 'function' ? options.outputIds(plan) : options.outputIds;
    for (const id of ids) {
      let bytes: Uint8Array | null = execution.dram.get(id) ?? null;
      if (!arena.has(id) && bytes === null) {
        const tier = tiers.find((t) => t.has(id));
        if (!tier) throw new ResourceError(`output "${id}": in no tier after the run`);
        bytes = new Uint8Array(new SharedArrayBuffer(arena.storedBytes(id)));
        await tier.read(id, bytes);
      }
      outputs.set(id, arena.materializeDetached(id, bytes));
    }
    const planningNs = options.plan ? 0 : streamed ? streamed.planningNs : startWaitNs;
    return {
      outputs,
      plan,
      ...(madePlan ? { madePlan } : {}),
      execution,
      planningNs,
      planStartWaitNs: startWaitNs,
      setupNs,
    };
  } catch (error) {
    for (const out of outputs.values()) arena.disposeDetached(out);
    await streamed?.cancel();
    throw error;
  } finally {
    arena.clear();
    // Copies of this run's objects are deleted; the tiers stay open for the caller.
    await Promise.allSettled(
      program.objects
        .filter((o) => !options.persistent?.(o.id))
        .map((o) => Promise.all(tiers.map((t) => t.delete(o.id)))),
    );
  }
}

/** Least staging slab of setup (many small objects in flight). */
const SETUP_STAGING_BYTES = 64 * 2 ** 20;

/** Writes each initial object's slow-tier form and places the warm-start copies the plan asks for. */
async function setupInitialObjects<Out>(
  options: TieredRunOptions<Out>,
  tiers: readonly SlowTier[],
  plan: ExecutablePlan,
  analysis: ProgramAnalysis,
  dramInitial: Map<ObjectId, Uint8Array>,
): Promise<void> {
  // Objects with a stored view are written from where they lie. The others go through one slab, reused: a fresh
  // SharedArrayBuffer per object would stay resident until both this thread's and the I/O worker's garbage
  // collectors drop it (10 GB of RSS writing the 24 GiB of keys of a logN-16 CNN). Writes in flight are bounded by
  // bytes as well as by count (a large object's write overlaps the making of the next).
  let largest = 0;
  for (const id of plan.initial.keys()) largest = Math.max(largest, analysis.objects.get(id)!.bytes);
  const capacity = Math.max(2 * largest, SETUP_STAGING_BYTES);
  // Made when first needed (an HE run with views never needs it: 244 MB of resident memory at logN 16); the slab
  // of an earlier run is taken when it is large enough (a new one per run would leave the old resident).
  let staging: BufferPool | undefined;
  const slab = () => {
    if (staging) return staging;
    staging = idleStaging;
    idleStaging = undefined;
    if (!staging || staging.capacityBytes < capacity)
      staging = new BufferPool(capacity, 'setup', { shared: true });
    return staging;
  };
  try {
    await writeInitialObjects(options, tiers, plan, analysis, dramInitial, slab, capacity);
  } finally {
    const used = staging as BufferPool | undefined;
    if (used && used.bytesInUse === 0) idleStaging = used;
  }
}

/** The setup slab no run holds (see {@link setupInitialObjects}). */
let idleStaging: BufferPool | undefined;

async function writeInitialObjects<Out>(
  options: TieredRunOptions<Out>,
  tiers: readonly SlowTier[],
  plan: ExecutablePlan,
  analysis: ProgramAnalysis,
  dramInitial: Map<ObjectId, Uint8Array>,
  slab: () => BufferPool,
  capacityBytes: number,
): Promise<void> {
  const { arena } = options;
  const inFlight = new Set<Promise<void>>();
  const maxInFlight = 4;
  /** Bytes of writes in flight, from the slab or from objects' own memory. */
  let bytesInFlight = 0;
  const drainOne = async () => {
    try {
      await Promise.race(inFlight);
    } catch (error) {
      await Promise.allSettled(inFlight);
      throw error;
    }
  };
  // Objects only written to their tier first, then those the plan also places in memory: the writes in flight
  // (and an object being made, such as a streamed key) then never sit beside a filled arena. In plan order the
  // first warm placements filled the arena while 850 MB keys were made and written beside them, and the
  // ruiyangju CNN's kernel memory reached 2.5 GB under a 2 GiB budget.
  const slowOnlyFirst = [...plan.initial].sort(
    ([, a], [, b]) => (a.level === null ? 0 : 1) - (b.level === null ? 0 : 1),
  );
  for (const [id, placement] of slowOnlyFirst) {
    const info = analysis.objects.get(id)!;
    // Room for this object's stored and full forms next to the writes in flight.
    while (inFlight.size > 0 && bytesInFlight + 2 * info.bytes > capacityBytes) await drainOne();
    if (placement.level === null && placement.slowTier >= 0 && options.persistent?.(id)) {
      // Model state an earlier run committed, needed only in its tier: nothing to make, encode or write.
      const tier = tiers[placement.slowTier];
      const kept = persistentCopies.get(tier)?.get(id);
      if (
        kept !== undefined &&
        tier.has(id) &&
        options.describeKept?.(id, info.bytes) === true &&
        arena.storedBytes(id) === kept
      ) {
        continue;
      }
    }
    const object = options.initial(id, info.bytes);
    let lent = false;
    let closeAfterWrite = false;
    try {
      check(
        placement.slowTier >= 0 || placement.level !== null,
        () => `initial object "${id}": the plan put it in no slow tier and no memory level`,
      );
      const storedBytes = arena.storedBytes(id);
      // Written from the object itself when it offers a view and needs no byte form in memory besides.
      const view =
        placement.slowTier >= 0 && (placement.level === null || object.lend !== undefined)
          ? (object.storedView?.() ?? null)
          : null;
      if (view && scatterBytesLength(view) !== storedBytes) {
        throw new InvalidArgumentError(
          `initial object "${id}": its stored view is ${scatterBytesLength(view)} bytes: expected ${storedBytes}`,
        );
      }
      const stored = placement.slowTier >= 0 && !view ? slab().acquire(storedBytes) : null;
      if (stored) object.writeStored(stored);
      if (placement.level === plan.computeLevel && info.readOnly && object.lend) {
        object.lend();
        lent = true;
      } else if (placement.level !== null) {
        // Forms of the same size are the same bytes: the stored form is serialized once and serves both.
        const sameForm = stored !== null && storedBytes === arena.fullBytes(id);
        if (placement.level === plan.computeLevel) {
          const full = sameForm && stored ? stored : slab().acquire(arena.fullBytes(id));
          if (!sameForm) object.writeFull(full);
          arena.fromBytes(id, full);
          if (full !== stored) slab().release(full);
        } else {
          // A DRAM copy is kept by the run (within its DRAM budget): its own buffer.
          const full =
            sameForm && stored ? stored : new Uint8Array(new SharedArrayBuffer(arena.fullBytes(id)));
          if (!sameForm) object.writeFull(full);
          dramInitial.set(id, sameForm ? Uint8Array.from(full) : full);
        }
      }
      const data = view ?? stored;
      if (!data) continue;
      const tier = tiers[placement.slowTier];
      const persistent = options.persistent?.(id) ?? false;
      let kept = persistentCopies.get(tier);
      if (persistent && tier.has(id) && kept?.get(id) === storedBytes) {
        // Model state committed by an earlier run: reuse it.
        if (stored) slab().release(stored);
        continue;
      }
      if (persistent) {
        if (!kept) persistentCopies.set(tier, (kept = new Map()));
        kept.set(id, storedBytes);
      }
      // An object written from its own memory stays open until its write is done.
      closeAfterWrite = view !== null && !lent;
      bytesInFlight += storedBytes;
      const job: Promise<void> = tier.write(id, data).finally(() => {
        bytesInFlight -= storedBytes;
        if (stored) slab().release(stored);
        if (closeAfterWrite) object.close();
        inFlight.delete(job);
      });
      inFlight.add(job);
    } finally {
      if (!lent && !closeAfterWrite) object.close();
    }
    if (inFlight.size >= maxInFlight) await drainOne();
  }
  const results = await Promise.allSettled(inFlight);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}
