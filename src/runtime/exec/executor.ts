import { check } from '../../util/assert.ts';
import { InvalidArgumentError, ResourceError } from '../../util/errors.ts';
import { BufferPool } from '../store/buffer-pool.ts';
import { nowNs } from '../store/devices.ts';
import { type ScatterBytes, scatterBytesLength, type SlowTier } from '../store/slow-tier.ts';
import type { Plan } from '../plan/planner.ts';
import type { ObjectId, AccessStep } from '../../program/access.ts';
import type { Action } from '../plan/timeline.ts';

/**
 * The compute level a plan is executed against: live objects plus their byte forms (DRAM buffers) and stored forms
 * (slow-tier copies). {@link HeArena} implements it for CKKS objects, {@link ByteArena} for programs whose compute
 * works on bytes. `Out` is what {@link ExecArena.materializeDetached} hands back for an output.
 *
 * @example
 * ```ts
 * const arena: ExecArena = new ByteArena(64 << 20, (id) => analysis.bytesOf(id));
 * ```
 */
export interface ExecArena<Out = unknown> {
  /** Logical bytes of live objects and the most seen at once. */
  readonly bytesInUse: number;
  readonly peakBytes: number;
  has(id: ObjectId): boolean;
  /** Bytes of the byte form (DRAM buffers) and of the slow-tier form (may be smaller, e.g. a seeded key). */
  fullBytes(id: ObjectId): number;
  storedBytes(id: ObjectId): number;
  /** Byte form → live (DRAM → arena, and warm starts). */
  fromBytes(id: ObjectId, bytes: Uint8Array): void;
  /** Live → byte form (arena → DRAM, write-back). */
  toBytes(id: ObjectId, into: Uint8Array): void;
  /**
   * The live object's byte form where it lies in shared memory — one view, or pieces back to back — for a
   * write-back straight from it; null where it must first be gathered into a staging buffer.
   */
  byteView(id: ObjectId): ScatterBytes | null;
  /**
   * Memory a slow-tier read of the stored form fills directly (one buffer, or pieces back to back); then
   * completeLoad or abortLoad.
   */
  loadTarget(id: ObjectId): ScatterBytes;
  completeLoad(id: ObjectId, target: ScatterBytes): void;
  abortLoad(id: ObjectId): void;
  /** A stored form read into the front of a byte-form buffer becomes the byte form (in place). */
  expandStored(id: ObjectId, buffer: Uint8Array): void;
  /**
   * Room for `id`, which the next step writes without reading it. An arena whose compute creates its results
   * (HE: the evaluator allocates, the step adopts them) has nothing to do here.
   */
  allocate?(id: ObjectId): void;
  drop(id: ObjectId): void;
  /** A copy the caller owns of `id`, live here or given as its byte form `bytes` (outputs after a run). */
  materializeDetached(id: ObjectId, bytes: Uint8Array | null): Out;
  /** Frees what {@link ExecArena.materializeDetached} returned (a run that fails after making some outputs). */
  disposeDetached(out: Out): void;
  /** Drops every live object and every load in flight (after the I/O settled). */
  clear(): void;
}

/**
 * Options of {@link executePlan}.
 *
 * @example
 * ```ts
 * const options: ExecuteOptions = { plan, tiers: [tier], dramBudgetBytes: 64 << 20, arena, compute };
 * ```
 */
export interface ExecuteOptions {
  /** The plan: its program (steps in the planned order), action log and compute level. */
  plan: Pick<Plan, 'program' | 'actions' | 'computeLevel'>;
  /** Slow tiers by the names the plan used. */
  tiers: readonly SlowTier[];
  /** Hard budget of the DRAM pool (bytes of byte-form buffers) when the plan has an arena. */
  dramBudgetBytes: number;
  /** DRAM buffers placed before the run (warm start), by object id; the pool takes them over. */
  dramInitial?: ReadonlyMap<ObjectId, Uint8Array>;
  /** The compute level; with a plan that has no arena it also holds what the plan keeps in DRAM. */
  arena: ExecArena;
  /** Runs step `step` on the live operands (synchronously, on this thread). */
  compute: (step: AccessStep) => void;
  /** Objects whose slow copies outlive the run (model state kept between runs): their deletes are skipped. */
  keep?: (id: ObjectId) => boolean;
  /**
   * While steps run back to back without waiting, let I/O completions in at least this often (ns) when transfers
   * wait on them (default 0.5 ms).
   */
  yieldEveryNs?: number;
  /** Called after each step with its index (progress). */
  onStep?: (index: number) => void;
  /** Called when action `seq` starts and when it completes (tests of the ordering). */
  onAction?: (seq: number, phase: 'start' | 'end') => void;
  /**
   * A plan still being made ({@link StreamedPlan}): `plan.actions` grows while the run executes it, and the run
   * waits for an action the planner has not logged yet.
   */
  stream?: { waitForAction(seq: number): Promise<boolean> };
}

/**
 * What one executed step did, measured on the wall clock.
 *
 * @example
 * ```ts
 * const stalled = result.steps.filter((s: ExecutedStep) => s.stallNs > 1e6);
 * ```
 */
export interface ExecutedStep {
  index: number;
  /** From the end of the previous step's compute (the planning point) to this step's compute start. */
  stallNs: number;
  computeNs: number;
  /** Wall time of the compute start, from the run's start. */
  startNs: number;
}

/**
 * Totals of an execution.
 *
 * @example
 * ```ts
 * console.log(result.totalNs / 1e9, result.dramPeakBytes <= budget);
 * ```
 */
export interface ExecutionResult {
  steps: ExecutedStep[];
  totalNs: number;
  computeNs: number;
  stallNs: number;
  /** Physical DRAM pool peak (never above the budget) and the arena's peak (what it counts as in use). */
  dramPeakBytes: number;
  arenaPeakBytes: number;
  /** Bytes actually read from / written to each slow tier (stored forms). */
  slowRead: Record<string, number>;
  slowWritten: Record<string, number>;
  /** Objects written to a slow tier during the run, with how often (dirty intermediates are written once). */
  writes: Map<ObjectId, number>;
  /** Bytes copied between the arena and DRAM by this thread, and gathered for write-backs. */
  copyBytes: number;
  gatherBytes: number;
  /** Byte-form buffers still in DRAM after the run, by object id (outputs are read from here). */
  dram: Map<ObjectId, Uint8Array>;
  /** Time the run waited for a streamed plan's next actions (part of `totalNs` and of the stalls). */
  planWaitNs: number;
}

/**
 * The executor: carries out a plan with real memory and real slow-tier I/O. The plan is the action log the
 * planner recorded ({@link planProgram}, ahead of time: HE programs are data-oblivious, so the whole schedule is
 * known before the first instruction); executing it costs a few array lookups per action instead of planning work
 * on the compute thread. With unlimited memory the plan is only decisions, allocations, computes and releases, so
 * an all-in-memory run is this same loop.
 *
 * Every action runs once its dependencies have completed, so the DRAM pool, the arena and the slow tiers never
 * exceed what the plan allows under any timing (the planner's ledger derived those dependencies without looking
 * at time). Compute runs on this thread in plan order; loads, write-backs and deletes of stale or dead slow-tier
 * copies run in the tiers (a file tier's I/O workers) and overlap it; copies between the arena and DRAM run here.
 * When the plan has no arena, the arena holds the objects the plan keeps in DRAM and compute works on them.
 *
 * @throws the first failure of any action (e.g. {@link FormatError} naming a corrupted object), after every
 *   transfer in flight has settled; nothing is left half-done in memory.
 * @example
 * ```ts
 * const result = await executePlan({ plan, tiers, dramBudgetBytes, arena, compute });
 * ```
 */
export async function executePlan(options: ExecuteOptions): Promise<ExecutionResult> {
  const { program, actions, computeLevel } = options.plan;
  const { arena, onAction } = options;
  /** Whether `level` is the arena's (the compute level); the other memory level is the DRAM pool. */
  const inArena = (level: string | undefined) => level === computeLevel;
  const tiers = new Map(options.tiers.map((t) => [t.name, t]));
  const pool = new BufferPool(options.dramBudgetBytes, 'dram', { shared: true });
  const staging = new BufferPool(Infinity, 'staging', { shared: true });
  const dram = new Map<ObjectId, Uint8Array>();
  for (const [id, bytes] of options.dramInitial ?? []) {
    const buffer = pool.acquire(bytes.byteLength);
    buffer.set(bytes);
    dram.set(id, buffer);
  }
  const yieldEvery = options.yieldEveryNs ?? 5e5;
  // Sized for the actions known now; a streamed plan grows them.
  let done = new Uint8Array(Math.max(16, actions.length));
  let remaining = new Int32Array(done.length);
  const waiters: (number[] | undefined)[] = [];
  const reserve = (count: number) => {
    if (count <= done.length) return;
    const size = Math.max(count, done.length * 2);
    const grownDone = new Uint8Array(size);
    grownDone.set(done);
    done = grownDone;
    const grownRemaining = new Int32Array(size);
    grownRemaining.set(remaining);
    remaining = grownRemaining;
  };
  let planWaitNs = 0;
  const inFlight = new Set<Promise<void>>();
  let failure: unknown = null;
  let wake: (() => void) | null = null;
  /** Actions waiting for others to complete (they may wait on I/O completions). */
  let deferred = 0;
  const slowRead: Record<string, number> = {};
  const slowWritten: Record<string, number> = {};
  for (const t of options.tiers) {
    slowRead[t.name] = 0;
    slowWritten[t.name] = 0;
  }
  const writes = new Map<ObjectId, number>();
  let copyBytes = 0;
  let gatherBytes = 0;
  let issued = false;

  const tierOf = (name: string | undefined): SlowTier => {
    const tier = tiers.get(name ?? '');
    if (!tier)
      throw new InvalidArgumentError(
        `plan uses slow tier "${name}": expected one of ${[...tiers.keys()].join(', ') || 'no tier'}`,
      );
    return tier;
  };
  const bufferOf = (id: ObjectId): Uint8Array => {
    const buffer = dram.get(id);
    if (!buffer)
      throw new ResourceError(`plan execution: "${id}" has no DRAM buffer where the plan expects one`);
    return buffer;
  };

  const markDone = (seq: number) => {
    done[seq] = 1;
    onAction?.(seq, 'end');
    const list = waiters[seq];
    if (list) {
      waiters[seq] = undefined;
      for (const w of list) {
        if (--remaining[w] === 0) {
          deferred--;
          start(w);
        }
      }
    }
    if (wake) {
      const w = wake;
      wake = null;
      w();
    }
  };
  const fail = (error: unknown) => {
    failure ??= error;
    if (wake) {
      const w = wake;
      wake = null;
      w();
    }
  };
  const track = (seq: number, promise: Promise<void>) => {
    issued = true;
    const tracked = promise.then(
      () => {
        inFlight.delete(tracked);
        if (failure === null) markDone(seq);
      },
      (error: unknown) => {
        inFlight.delete(tracked);
        fail(error);
      },
    );
    inFlight.add(tracked);
  };

  /** Performs a non-compute action whose dependencies are complete. */
  function start(seq: number): void {
    if (failure !== null) return;
    const a = actions[seq];
    const id = a.id as ObjectId;
    onAction?.(seq, 'start');
    try {
      switch (a.kind) {
        case 'decision':
          break;
        case 'alloc':
          if (inArena(a.to)) arena.allocate?.(id);
          else dram.set(id, pool.acquire(a.bytes));
          break;
        case 'release':
          if (inArena(a.from)) {
            arena.drop(id);
          } else {
            pool.release(bufferOf(id));
            dram.delete(id);
          }
          break;
        case 'copy':
          if (inArena(a.to)) {
            const buffer = bufferOf(id);
            arena.fromBytes(id, buffer);
            pool.release(buffer);
            dram.delete(id);
          } else {
            const buffer = pool.acquire(arena.fullBytes(id));
            arena.toBytes(id, buffer);
            arena.drop(id);
            dram.set(id, buffer);
          }
          copyBytes += a.bytes;
          break;
        case 'load': {
          const tier = tierOf(a.from);
          const stored = arena.storedBytes(id);
          slowRead[tier.name] += stored;
          if (inArena(a.to)) {
            const target = arena.loadTarget(id);
            track(
              seq,
              tier.read(id, target).then(
                () => arena.completeLoad(id, target),
                (error: unknown) => {
                  arena.abortLoad(id);
                  throw error;
                },
              ),
            );
          } else {
            const buffer = pool.acquire(arena.fullBytes(id));
            dram.set(id, buffer);
            track(
              seq,
              tier.read(id, buffer.subarray(0, stored)).then(() => arena.expandStored(id, buffer)),
            );
          }
          return;
        }
        case 'writeback': {
          const tier = tierOf(a.to);
          writes.set(id, (writes.get(id) ?? 0) + 1);
          let data: ScatterBytes;
          let stage: Uint8Array | null = null;
          if (!inArena(a.from)) {
            data = bufferOf(id);
          } else {
            const view = arena.byteView(id);
            if (view) {
              data = view;
            } else {
              stage = staging.acquire(arena.fullBytes(id));
              arena.toBytes(id, stage);
              gatherBytes += stage.byteLength;
              data = stage;
            }
          }
          slowWritten[tier.name] += scatterBytesLength(data);
          const written = tier.write(id, data);
          track(seq, stage ? written.finally(() => staging.release(stage!)) : written);
          return;
        }
        case 'delete':
          // A stale or dead slow copy; model state kept between runs stays.
          if (options.keep?.(id)) break;
          track(seq, tierOf(a.from).delete(id));
          return;
        default:
          throw new InvalidArgumentError(`plan execution: unexpected action kind "${a.kind}" at ${seq}`);
      }
    } catch (error) {
      fail(error);
      return;
    }
    markDone(seq);
  }

  const undone = (a: Action): number => {
    let count = 0;
    for (const d of a.deps) if (!done[d]) count++;
    return count;
  };
  const flushIo = () => {
    if (!issued) return;
    issued = false;
    for (const tier of options.tiers) tier.flush();
  };
  const settle = async () => {
    await Promise.allSettled([...inFlight]);
  };

  const traces: ExecutedStep[] = [];
  const runStart = nowNs();
  let lastYield = runStart;
  let previousEnd = runStart;
  let computeTotal = 0;
  let stallTotal = 0;
  try {
    for (let seq = 0; ; seq++) {
      if (failure !== null) break;
      if (seq >= actions.length) {
        if (!options.stream) break;
        // The planner has not logged this action yet: let I/O proceed and wait for it.
        flushIo();
        const waitStart = nowNs();
        let more: boolean;
        try {
          more = await options.stream.waitForAction(seq);
        } catch (error) {
          fail(error);
          break;
        }
        planWaitNs += nowNs() - waitStart;
        if (!more) break;
      }
      reserve(actions.length);
      const a = actions[seq];
      if (a.kind !== 'compute') {
        const count = undone(a);
        if (count === 0) {
          start(seq);
        } else {
          remaining[seq] = count;
          for (const d of a.deps) {
            if (done[d]) continue;
            let list = waiters[d];
            if (!list) waiters[d] = list = [];
            list.push(seq);
          }
          deferred++;
        }
        continue;
      }
      // A compute: wait for its operands, letting I/O completions in.
      flushIo();
      while (failure === null && undone(a) > 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        flushIo();
      }
      if (failure !== null) break;
      let now = nowNs();
      if (deferred > 0 && inFlight.size > 0 && now - lastYield > yieldEvery) {
        // Completions unblock queued transfers (a load waiting for room a write-back frees): take them in.
        await new Promise<void>((resolve) => setImmediate(resolve));
        flushIo();
        lastYield = now = nowNs();
      }
      const step = program.steps[a.step];
      check(step !== undefined, () => `plan execution: compute action ${seq} for missing step ${a.step}`);
      onAction?.(seq, 'start');
      try {
        options.compute(step);
      } catch (error) {
        fail(error);
        break;
      }
      const end = nowNs();
      const stall = Math.max(0, now - previousEnd);
      traces.push({ index: step.index, stallNs: stall, computeNs: end - now, startNs: now - runStart });
      computeTotal += end - now;
      stallTotal += stall;
      previousEnd = end;
      markDone(seq);
      options.onStep?.(step.index);
    }
    // Trailing transfers (write-backs of outputs, deletes) complete before the run counts as done.
    while (failure === null && inFlight.size > 0) await Promise.race([...inFlight]);
    await settle();
    if (failure !== null) throw failure;
    for (let seq = 0; seq < actions.length; seq++) {
      if (!done[seq])
        throw new ResourceError(`plan execution: action ${seq} (${actions[seq].kind}) never ran`);
    }
  } catch (error) {
    await settle();
    for (const buffer of dram.values()) pool.release(buffer);
    dram.clear();
    throw error;
  }
  const totalNs = nowNs() - runStart;
  return {
    steps: traces,
    totalNs,
    computeNs: computeTotal,
    stallNs: stallTotal,
    dramPeakBytes: pool.peakBytes,
    arenaPeakBytes: arena.peakBytes,
    slowRead,
    slowWritten,
    writes,
    copyBytes,
    gatherBytes,
    dram,
    planWaitNs,
  };
}
