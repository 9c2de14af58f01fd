import { check } from '../../util/assert.ts';
import { InvalidArgumentError, ResourceError } from '../../util/errors.ts';
import { DEVICE_PROFILES, type DeviceProfile } from '../store/devices.ts';
import type { ObjectId, ObjectInfo } from '../../program/access.ts';
import { type Action, type ActionKind, Timeline } from './timeline.ts';

/**
 * The in-memory tiers: `arena` is where compute reads and writes operands (WebAssembly memory for the HE layer),
 * `dram` is the host-side cache with a hard budget. Without an arena, compute works on DRAM buffers directly.
 *
 * @example
 * ```ts
 * const level: MemoryLevel = ledger.computeLevel;
 * ```
 */
export type MemoryLevel = 'arena' | 'dram';

/**
 * A slow tier as the planner sees it: its name (the one actions use), the device profile it times transfers
 * with, the bytes the plan may keep there and what each object costs beyond its payload. Every {@link SlowTier}
 * is one; a planner given a tier that already holds data passes its remaining room as `capacityBytes`.
 *
 * @example
 * ```ts
 * const tier: PlannedTier = { name: 'nvme', device: DEVICE_PROFILES['nvme-gen4'], capacityBytes: 100e9 };
 * ```
 */
export interface PlannedTier {
  readonly name: string;
  readonly device: DeviceProfile;
  readonly capacityBytes: number;
  /** Bytes per stored object beyond its payload (default 0). */
  readonly objectOverheadBytes?: number;
}

/**
 * Options of {@link PlanLedger}.
 *
 * @example
 * ```ts
 * const options: PlanLedgerOptions = { dramBudgetBytes: 8 << 30, arena: { capacityBytes: 2 << 30 }, slowTiers: [tier] };
 * ```
 */
export interface PlanLedgerOptions {
  /** Hard budget for object bytes in DRAM (Infinity for an unlimited reference run). */
  dramBudgetBytes: number;
  /** A capacity-limited arena where compute operands must be; omit to compute on DRAM buffers. */
  arena?: { capacityBytes: number };
  /** Slow tiers in order of preference; objects spill to the first with room. */
  slowTiers?: readonly PlannedTier[];
  /** Timing of arena <-> DRAM copies; defaults to the `dram` profile. */
  memcpy?: DeviceProfile;
}

/**
 * Where one object is and whether it must be written before its memory copy can be dropped.
 *
 * @example
 * ```ts
 * if (ledger.state('w3').level === null) console.log('w3 is only in a slow tier');
 * ```
 */
export interface ObjectState {
  info: ObjectInfo;
  /** Memory level holding its bytes, or null. */
  level: MemoryLevel | null;
  /** Index of the slow tier holding a valid copy, or -1. */
  slowTier: number;
  /** The memory copy is newer than any slow copy (or there is none). */
  dirty: boolean;
  /** The object has contents (initial, or written and not freed since). */
  exists: boolean;
}

/**
 * Where an initial object starts: the slow tier holding its copy (index, or -1) and the memory level it is
 * warm-started in (or null).
 *
 * @example
 * ```ts
 * const placement: InitialPlacement = { slowTier: 0, level: 'arena' };
 * ```
 */
export interface InitialPlacement {
  slowTier: number;
  level: MemoryLevel | null;
}

interface Entry extends ObjectState {
  /** Last action touching the object; later actions on it depend on this one. */
  tail: number;
}

/**
 * Bytes moved through one tier: read = data leaving it, written = data entering it.
 *
 * @example
 * ```ts
 * const { read, written } = ledger.traffic().nvme0;
 * ```
 */
export interface TierTraffic {
  read: number;
  written: number;
}

/**
 * Logical byte accounting of one tier plus the physical-reuse ledger. A release is logical at once but physical
 * only when its action completes (for example after a write-back); a reservation that needs bytes still
 * physically held depends on the oldest pending releases covering the shortfall. The dependencies are computed
 * without looking at time, so they are valid under any timing: physical use stays within the capacity too.
 */
class Capacity {
  readonly name: string;
  readonly capacity: number;
  used = 0;
  peak = 0;
  readonly #pending: { bytes: number; seq: number }[] = [];
  #head = 0;
  #pendingBytes = 0;

  constructor(name: string, capacity: number) {
    this.name = name;
    this.capacity = capacity;
  }

  get free(): number {
    return this.capacity - this.used;
  }

  reserve(bytes: number, what: string): number[] {
    if (this.used + bytes > this.capacity) {
      throw new ResourceError(
        `${this.name}: placing ${what} (${bytes} bytes) would use ${this.used + bytes} bytes: expected at most the ` +
          `budget of ${this.capacity} bytes (the runtime must evict first)`,
      );
    }
    const physicalFree = this.capacity - this.used - this.#pendingBytes;
    let shortfall = bytes - physicalFree;
    const deps: number[] = [];
    while (shortfall > 0 && this.#head < this.#pending.length) {
      const entry = this.#pending[this.#head];
      deps.push(entry.seq);
      const take = Math.min(entry.bytes, shortfall);
      entry.bytes -= take;
      this.#pendingBytes -= take;
      shortfall -= take;
      if (entry.bytes === 0) this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending.splice(0, this.#head);
      this.#head = 0;
    }
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
    return deps;
  }

  release(bytes: number, seq: number): void {
    this.used -= bytes;
    if (!Number.isFinite(this.capacity)) return;
    this.#pending.push({ bytes, seq });
    this.#pendingBytes += bytes;
  }
}

/** Where an action's bytes go: the channel it occupies and the tiers they leave and enter. */
type Route = Pick<Action, 'channel' | 'direction' | 'from' | 'to'> & { prefetch?: boolean };

const NO_ROUTE: Route = {};
const COMPUTE: Route = { channel: 'compute' };

/**
 * The planner's ledger: every object of a run by id with its exact size, in one of the arena, DRAM (hard budget)
 * or a slow tier. It holds no data. It moves objects when told (by the planner, following a policy), keeps byte
 * accounting per tier (asserting budgets and capacities), and records every action with the actions it depends on
 * — the plan the executor carries out — timing each on the virtual clock ({@link Timeline}) as it goes.
 *
 * The dependencies make the plan safe under any timing: an action on an object waits for the previous one on it,
 * and a reservation of memory or slow-tier room still physically held by an earlier release (a write-back in
 * flight, a stale slow copy not yet deleted) waits for that release.
 *
 * @example
 * ```ts
 * const ledger = new PlanLedger({ dramBudgetBytes: 1 << 30, slowTiers: [new VirtualTier('nvme', DEVICE_PROFILES['nvme-gen4'])] });
 * ledger.register({ id: 'w', bytes: 1 << 20, kind: 'plaintext', readOnly: true });
 * ledger.setup('w', null);
 * const d = ledger.decision(0, []);
 * const seq = ledger.load('w', 'dram', 0, d, false);
 * console.log(ledger.actions[seq].endNs);
 * ```
 */
export class PlanLedger {
  readonly computeLevel: MemoryLevel;
  readonly slowTiers: readonly PlannedTier[];
  /** The action log, in issue order. */
  readonly actions: Action[] = [];
  readonly timeline: Timeline;
  /** Where {@link PlanLedger.setup} put each initial object. */
  readonly initial = new Map<ObjectId, InitialPlacement>();
  readonly #entries = new Map<ObjectId, Entry>();
  readonly #memory: Record<MemoryLevel, Capacity>;
  readonly #residents: Record<MemoryLevel, Set<ObjectId>> = { arena: new Set(), dram: new Set() };
  readonly #slow: Capacity[];
  readonly #overhead: number[];
  readonly #traffic = new Map<string, TierTraffic>();

  constructor(options: PlanLedgerOptions) {
    check(
      options.dramBudgetBytes > 0,
      () => `dramBudgetBytes = ${options.dramBudgetBytes}: expected > 0 (or Infinity)`,
    );
    const slow = options.slowTiers ?? [];
    const names = new Set<string>(['arena', 'dram', 'memcpy', 'compute']);
    for (const tier of slow) {
      if (names.has(tier.name)) {
        throw new InvalidArgumentError(
          `slow tier name "${tier.name}": expected a unique name other than arena/dram/memcpy/compute`,
        );
      }
      names.add(tier.name);
    }
    this.slowTiers = slow;
    this.#slow = slow.map((t) => new Capacity(t.name, t.capacityBytes));
    this.#overhead = slow.map((t) => t.objectOverheadBytes ?? 0);
    const arenaCapacity = options.arena?.capacityBytes;
    if (arenaCapacity !== undefined)
      check(arenaCapacity > 0, () => `arena.capacityBytes = ${arenaCapacity}: expected > 0`);
    this.computeLevel = options.arena ? 'arena' : 'dram';
    this.#memory = {
      arena: new Capacity('arena', arenaCapacity ?? 0),
      dram: new Capacity('dram', options.dramBudgetBytes),
    };
    const devices: Record<string, DeviceProfile> = { memcpy: options.memcpy ?? DEVICE_PROFILES.dram };
    for (const tier of slow) devices[tier.name] = tier.device;
    this.timeline = new Timeline({ devices });
    for (const name of ['arena', 'dram', ...slow.map((t) => t.name)])
      this.#traffic.set(name, { read: 0, written: 0 });
  }

  /** Whether compute operands live in a separate arena. */
  get hasArena(): boolean {
    return this.computeLevel === 'arena';
  }

  /** Adds an object (no bytes placed anywhere yet). */
  register(info: ObjectInfo): void {
    if (this.#entries.has(info.id)) throw new InvalidArgumentError(`object "${info.id}": registered twice`);
    this.#entries.set(info.id, { info, level: null, slowTier: -1, dirty: false, exists: false, tail: -1 });
  }

  /** Current placement of `id`. */
  state(id: ObjectId): Readonly<ObjectState> {
    return this.#entry(id);
  }

  /** Objects whose bytes are in `level`, in the order they arrived. */
  residents(level: MemoryLevel): ReadonlySet<ObjectId> {
    return this.#residents[level];
  }

  /** Bytes in use in `level`. */
  used(level: MemoryLevel): number {
    return this.#memory[level].used;
  }

  /** Capacity of `level` (0 for a missing arena). */
  capacity(level: MemoryLevel): number {
    return this.#memory[level].capacity;
  }

  /** Free bytes of `level`. */
  free(level: MemoryLevel): number {
    return this.#memory[level].free;
  }

  /** Highest bytes in use seen in `level`. */
  peak(level: MemoryLevel): number {
    return this.#memory[level].peak;
  }

  /** Bytes of valid object copies held by slow tier `index` (payload plus per-object overhead). */
  slowUsed(index: number): number {
    return this.#slow[index].used;
  }

  /** Highest {@link PlanLedger.slowUsed} seen for tier `index`. */
  slowPeak(index: number): number {
    return this.#slow[index].peak;
  }

  /** Bytes moved through every tier so far (data leaving = read, entering = written). */
  traffic(): Record<string, TierTraffic> {
    const out: Record<string, TierTraffic> = {};
    for (const [name, t] of this.#traffic) out[name] = { ...t };
    return out;
  }

  /**
   * Before the run: makes `id` exist. Its bytes are written to the first slow tier with room, so evicting it later
   * never costs a write; with `placeIn`, a copy is also kept in that memory level (warm start). Without slow tiers
   * the object must be placed in memory.
   */
  setup(id: ObjectId, placeIn: MemoryLevel | null): void {
    const entry = this.#entry(id);
    check(!entry.exists, () => `object "${id}": set up twice`);
    entry.exists = true;
    if (this.slowTiers.length > 0) {
      // Nothing has been released yet, so the reservation waits for nothing.
      entry.slowTier = this.#chooseTier(entry).index;
      entry.dirty = false;
    } else {
      check(
        placeIn !== null,
        () => `object "${id}": no slow tier to hold it, so it must be placed in memory`,
      );
      entry.dirty = true;
    }
    if (placeIn !== null) {
      this.#memory[placeIn].reserve(entry.info.bytes, `"${id}"`);
      this.#setLevel(entry, placeIn);
    }
    this.initial.set(id, { slowTier: entry.slowTier, level: placeIn });
  }

  /** Records the planning point of `step`; I/O issued while planning depends on it (it cannot start earlier). */
  decision(step: number, deps: number[]): number {
    return this.#add('decision', step, deps);
  }

  /** Reserves room for a new object (written by a step without reading it) in `level`. */
  allocate(id: ObjectId, level: MemoryLevel, step: number, issue: number): number {
    const entry = this.#entry(id);
    check(
      entry.level === null,
      () => `allocate "${id}": expected it not to be in memory (it is in ${entry.level})`,
    );
    const deps = this.#memory[level].reserve(entry.info.bytes, `"${id}"`);
    this.#setLevel(entry, level);
    entry.exists = true;
    entry.dirty = true;
    entry.tail = this.#add('alloc', step, [issue, entry.tail, ...deps], id, entry.info.bytes, { to: level });
    return entry.tail;
  }

  /** Reads `id` from its slow tier into `level`. */
  load(id: ObjectId, level: MemoryLevel, step: number, issue: number, prefetch: boolean): number {
    const entry = this.#entry(id);
    check(
      entry.level === null && entry.slowTier >= 0,
      () => `load "${id}": expected it only in a slow tier (memory: ${entry.level})`,
    );
    const tier = this.slowTiers[entry.slowTier];
    const bytes = entry.info.bytes;
    const deps = this.#memory[level].reserve(bytes, `"${id}"`);
    this.#setLevel(entry, level);
    entry.dirty = false;
    entry.tail = this.#add('load', step, [issue, entry.tail, ...deps], id, bytes, {
      channel: tier.name,
      direction: 'read',
      from: tier.name,
      to: level,
      prefetch,
    });
    this.#count(tier.name, level, bytes);
    return entry.tail;
  }

  /** Copies `id` between the arena and DRAM (it must be in the other level) and frees the source. */
  copy(id: ObjectId, level: MemoryLevel, step: number, issue: number, prefetch: boolean): number {
    const entry = this.#entry(id);
    const from = entry.level;
    check(
      from !== null && from !== level,
      () => `copy "${id}" to ${level}: expected it in the other memory level (it is in ${from})`,
    );
    const bytes = entry.info.bytes;
    const deps = this.#memory[level].reserve(bytes, `"${id}"`);
    const seq = this.#add('copy', step, [issue, entry.tail, ...deps], id, bytes, {
      channel: 'memcpy',
      direction: 'read',
      from,
      to: level,
      prefetch,
    });
    this.#count(from, level, bytes);
    this.#memory[from].release(bytes, seq);
    this.#setLevel(entry, level);
    entry.tail = seq;
    return seq;
  }

  /**
   * Removes the memory copy of `id`. With `writeBack` and a dirty copy, first writes it to a slow tier (after which
   * the object is clean there). Without a valid slow copy the contents would be lost, so that is refused unless the
   * caller uses {@link PlanLedger.discard}.
   */
  evict(id: ObjectId, step: number, issue: number, writeBack: boolean): number {
    const entry = this.#entry(id);
    const level = entry.level;
    check(level !== null, () => `evict "${id}": expected it in memory`);
    const bytes = entry.info.bytes;
    let last = entry.tail;
    if (entry.dirty) {
      check(writeBack, () => `evict "${id}": its only copy is in ${level}; expected writeBack or discard`);
      const { index, deps } = this.#chooseTier(entry);
      const tier = this.slowTiers[index];
      last = this.#add('writeback', step, [issue, entry.tail, ...deps], id, bytes, {
        channel: tier.name,
        direction: 'write',
        from: level,
        to: tier.name,
      });
      this.#count(level, tier.name, bytes);
      entry.slowTier = index;
      entry.dirty = false;
    }
    const seq = this.#add('release', step, [issue, last], id, bytes, { from: level });
    this.#memory[level].release(bytes, seq);
    this.#setLevel(entry, null);
    entry.tail = seq;
    return seq;
  }

  /** The contents of `id` are dead: drops its memory copy and deletes any slow copy, without writing anything. */
  discard(id: ObjectId, step: number, issue: number): void {
    const entry = this.#entry(id);
    if (entry.level !== null) {
      const level = entry.level;
      const seq = this.#add('release', step, [issue, entry.tail], id, entry.info.bytes, { from: level });
      this.#memory[level].release(entry.info.bytes, seq);
      this.#setLevel(entry, null);
      entry.tail = seq;
    }
    this.#dropSlowCopy(entry, step, issue);
    entry.exists = false;
    entry.dirty = false;
  }

  /** Records a compute action of `step` that runs after `deps`. */
  compute(step: number, deps: number[], computeNs: number): number {
    return this.#add('compute', step, deps, undefined, 0, COMPUTE, computeNs);
  }

  /**
   * After compute action `seq` used `id`: later actions on it wait for the compute; if the step wrote it, its
   * memory copy is now the only valid one (any slow copy is deleted).
   */
  afterCompute(id: ObjectId, seq: number, wrote: boolean): void {
    const entry = this.#entry(id);
    entry.tail = seq;
    if (wrote) {
      entry.dirty = true;
      entry.exists = true;
      this.#dropSlowCopy(entry, this.actions[seq].step, seq);
    }
  }

  /** Last action touching `id` (its bytes are ready when that action completes), or -1. */
  tailOf(id: ObjectId): number {
    return this.#entry(id).tail;
  }

  #entry(id: ObjectId): Entry {
    const entry = this.#entries.get(id);
    if (!entry) throw new InvalidArgumentError(`object "${id}": expected a registered object`);
    return entry;
  }

  #setLevel(entry: Entry, level: MemoryLevel | null): void {
    if (entry.level !== null) this.#residents[entry.level].delete(entry.info.id);
    entry.level = level;
    if (level !== null) this.#residents[level].add(entry.info.id);
  }

  /** The first slow tier with room for `entry`, its room reserved; `deps`: releases that room waits for. */
  #chooseTier(entry: Entry): { index: number; deps: number[] } {
    const bytes = entry.info.bytes;
    for (let i = 0; i < this.slowTiers.length; i++) {
      const size = bytes + this.#overhead[i];
      if (this.#slow[i].free >= size)
        return { index: i, deps: this.#slow[i].reserve(size, `"${entry.info.id}"`) };
    }
    if (this.slowTiers.length === 0) {
      throw new ResourceError(
        `object "${entry.info.id}" must leave memory but there is no slow tier: expected one, or a larger budget`,
      );
    }
    throw new ResourceError(
      `object "${entry.info.id}" (${bytes} bytes) must be written to a slow tier but all are full ` +
        `(${this.slowTiers.map((t, i) => `${t.name}: ${this.#slow[i].used}/${t.capacityBytes}`).join(', ')}): ` +
        'expected more slow-tier capacity',
    );
  }

  /** Deletes `entry`'s slow copy (stale or dead): the executor removes it during the run, freeing its room. */
  #dropSlowCopy(entry: Entry, step: number, issue: number): void {
    if (entry.slowTier < 0) return;
    const index = entry.slowTier;
    const tier = this.slowTiers[index];
    entry.slowTier = -1;
    entry.tail = this.#add('delete', step, [issue, entry.tail], entry.info.id, 0, { from: tier.name });
    this.#slow[index].release(entry.info.bytes + this.#overhead[index], entry.tail);
  }

  #count(from: string, to: string, bytes: number): void {
    this.#traffic.get(from)!.read += bytes;
    this.#traffic.get(to)!.written += bytes;
  }

  /**
   * Records an action. Positional rather than one object per kind: every action then has the same fields (absent
   * ones undefined) and this method reads one shape, which keeps the 10^5–10^6 actions of a large program cheap.
   */
  #add(
    kind: ActionKind,
    step: number,
    dependsOn: readonly number[],
    id: ObjectId | undefined = undefined,
    bytes = 0,
    route: Route = NO_ROUTE,
    computeNs = 0,
  ): number {
    // Distinct non-negative dependencies in first-seen order (lists have a handful of entries).
    const deps: number[] = [];
    for (let k = 0; k < dependsOn.length; k++) {
      const d = dependsOn[k];
      if (d >= 0 && !deps.includes(d)) deps.push(d);
    }
    const action: Action = {
      seq: this.actions.length,
      step,
      kind,
      id,
      bytes,
      channel: route.channel,
      direction: route.direction,
      from: route.from,
      to: route.to,
      // An exact-size copy: a pushed-to array keeps room for 16 more entries, and plans hold 10^5–10^6 actions.
      deps: deps.slice(),
      prefetch: route.prefetch ?? false,
      computeNs,
      startNs: 0,
      endNs: 0,
    };
    this.actions.push(action);
    this.timeline.add(action);
    return action.seq;
  }
}
