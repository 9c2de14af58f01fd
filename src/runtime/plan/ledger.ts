import { check } from '../../util/assert.ts';
import { InvalidArgumentError, ResourceError } from '../../util/errors.ts';
import { type ArenaProvider, BufferPool, HeapArena } from '../store/buffer-pool.ts';
import { DEVICE_PROFILES, type DeviceProfile } from '../store/devices.ts';
import type { SlowTier } from '../store/slow-tier.ts';
import type { ObjectId, ObjectInfo } from './program.ts';
import { type Action, type ActionKind, Timeline } from './timeline.ts';

/**
 * The in-memory tiers: `arena` is where compute reads and writes operands (WebAssembly memory for the HE layer),
 * `dram` is the host-side cache with a hard budget. Without an arena, compute works on DRAM buffers directly.
 *
 * @example
 * ```ts
 * const level: MemoryLevel = store.computeLevel;
 * ```
 */
export type MemoryLevel = 'arena' | 'dram';

/**
 * `virtual`: only sizes and a deterministic virtual clock, no data; `real`: actual buffers and file I/O (the
 * virtual clock still runs alongside as a model prediction).
 *
 * @example
 * ```ts
 * const mode: StoreMode = 'virtual';
 * ```
 */
export type StoreMode = 'virtual' | 'real';

/**
 * Options of {@link TieredStore}.
 *
 * @example
 * ```ts
 * const options: TieredStoreOptions = { mode: 'real', dramBudgetBytes: 8 << 30, arena: { capacityBytes: 2 << 30 }, slowTiers: [tier] };
 * ```
 */
export interface TieredStoreOptions {
  mode: StoreMode;
  /** Hard budget for object bytes in DRAM (Infinity for an unlimited reference run). */
  dramBudgetBytes: number;
  /** A capacity-limited arena where compute operands must be; omit to compute on DRAM buffers. */
  arena?: { capacityBytes: number; provider?: ArenaProvider };
  /** Slow tiers in order of preference; objects spill to the first with room. */
  slowTiers?: readonly SlowTier[];
  /** Timing of arena <-> DRAM copies; defaults to the `dram` profile. */
  memcpy?: DeviceProfile;
}

/**
 * Where one object is and whether it must be written before its memory copy can be dropped.
 *
 * @example
 * ```ts
 * if (store.state('w3').level === null) console.log('w3 is only in a slow tier');
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

interface Entry extends ObjectState {
  /** Last action touching the object; later actions on it depend on this one. */
  tail: number;
  buffer: Uint8Array | null;
  bufferLevel: MemoryLevel | null;
}

/**
 * Bytes moved through one tier: read = data leaving it, written = data entering it.
 *
 * @example
 * ```ts
 * const { read, written } = store.traffic().nvme0;
 * ```
 */
export interface TierTraffic {
  read: number;
  written: number;
}

/**
 * Logical byte accounting of one memory level plus the physical-reuse ledger. A release is logical at once but
 * physical only when its action completes (for example after a write-back); a reservation that needs bytes still
 * physically held depends on the oldest pending releases covering the shortfall. The dependencies are computed
 * without looking at time, so they are valid under any timing: physical use stays within the budget too.
 */
class Ledger {
  readonly name: MemoryLevel;
  readonly capacity: number;
  used = 0;
  peak = 0;
  readonly #pending: { bytes: number; seq: number }[] = [];
  #head = 0;
  #pendingBytes = 0;

  constructor(name: MemoryLevel, capacity: number) {
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

/**
 * Every object of a run by id with its exact size, in one of: the arena, DRAM (hard budget), or a slow tier. The
 * store is mechanism only: it moves objects when told (by the executor, following a policy), keeps byte accounting
 * per tier (asserting budgets), records every action with its dependencies for the virtual clock
 * ({@link Timeline}), and in real mode performs the transfers with actual buffers and files, ordered by those same
 * dependencies.
 *
 * @example
 * ```ts
 * const store = new TieredStore({ mode: 'virtual', dramBudgetBytes: 1 << 30, slowTiers: [new VirtualTier('nvme', DEVICE_PROFILES['nvme-gen4'])] });
 * store.register({ id: 'w', bytes: 1 << 20, kind: 'plaintext', readOnly: true });
 * store.setup('w', null, null);
 * const d = store.decision(0, []);
 * const seq = store.load('w', 'dram', 0, d, false);
 * console.log(store.actions[seq].endNs);
 * ```
 */
export class TieredStore {
  readonly mode: StoreMode;
  readonly computeLevel: MemoryLevel;
  readonly slowTiers: readonly SlowTier[];
  /** The action log, in issue order. */
  readonly actions: Action[] = [];
  readonly timeline: Timeline;
  readonly #entries = new Map<ObjectId, Entry>();
  readonly #ledgers: Record<MemoryLevel, Ledger>;
  readonly #residents: Record<MemoryLevel, Set<ObjectId>> = { arena: new Set(), dram: new Set() };
  readonly #slowUsed: number[];
  readonly #slowPeak: number[];
  readonly #traffic = new Map<string, TierTraffic>();
  readonly #dramPool: BufferPool;
  readonly #arena: ArenaProvider | null;
  readonly #promises: Promise<void>[] = [];
  readonly #setupJobs: Promise<void>[] = [];
  #failure: unknown = null;

  constructor(options: TieredStoreOptions) {
    check(
      options.mode === 'virtual' || options.mode === 'real',
      () => `mode = ${String(options.mode)}: expected 'virtual' or 'real'`,
    );
    check(
      options.dramBudgetBytes > 0,
      () => `dramBudgetBytes = ${options.dramBudgetBytes}: expected > 0 (or Infinity)`,
    );
    this.mode = options.mode;
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
    this.#slowUsed = slow.map(() => 0);
    this.#slowPeak = slow.map(() => 0);
    const arenaCapacity = options.arena?.capacityBytes;
    if (arenaCapacity !== undefined)
      check(arenaCapacity > 0, () => `arena.capacityBytes = ${arenaCapacity}: expected > 0`);
    this.computeLevel = options.arena ? 'arena' : 'dram';
    this.#ledgers = {
      arena: new Ledger('arena', arenaCapacity ?? 0),
      dram: new Ledger('dram', options.dramBudgetBytes),
    };
    // Real-mode buffers are shared so that the I/O workers load into and write back from them in place.
    const shared = options.mode === 'real';
    this.#dramPool = new BufferPool(options.dramBudgetBytes, 'dram', { shared });
    this.#arena =
      options.mode === 'real' && options.arena
        ? (options.arena.provider ?? new HeapArena(options.arena.capacityBytes, { shared }))
        : null;
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
    this.#entries.set(info.id, {
      info,
      level: null,
      slowTier: -1,
      dirty: false,
      exists: false,
      tail: -1,
      buffer: null,
      bufferLevel: null,
    });
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
    return this.#ledgers[level].used;
  }

  /** Capacity of `level` (0 for a missing arena). */
  capacity(level: MemoryLevel): number {
    return this.#ledgers[level].capacity;
  }

  /** Free bytes of `level`. */
  free(level: MemoryLevel): number {
    return this.#ledgers[level].free;
  }

  /** Highest bytes in use seen in `level`. */
  peak(level: MemoryLevel): number {
    return this.#ledgers[level].peak;
  }

  /** Bytes of valid object copies held by slow tier `index` (payload plus per-file header). */
  slowUsed(index: number): number {
    return this.#slowUsed[index];
  }

  /** Highest {@link TieredStore.slowUsed} seen for tier `index`. */
  slowPeak(index: number): number {
    return this.#slowPeak[index];
  }

  /** Bytes moved through every tier so far (data leaving = read, entering = written). */
  traffic(): Record<string, TierTraffic> {
    const out: Record<string, TierTraffic> = {};
    for (const [name, t] of this.#traffic) out[name] = { ...t };
    return out;
  }

  /** Physical DRAM buffer accounting (real mode): bytes in use and peak, never above the budget. */
  get dramPhysical(): { inUse: number; peak: number } {
    return { inUse: this.#dramPool.bytesInUse, peak: this.#dramPool.peakBytes };
  }

  /**
   * Before the run: makes `id` exist. Its bytes (real mode: `data`) are written to the first slow tier with room, so
   * evicting it later never costs a write; with `placeIn`, a copy is also kept in that memory level (warm start).
   * Without slow tiers the object must be placed in memory.
   */
  setup(id: ObjectId, data: Uint8Array | null, placeIn: MemoryLevel | null): void {
    const entry = this.#entry(id);
    check(!entry.exists, () => `object "${id}": set up twice`);
    if (this.mode === 'real') {
      check(
        data instanceof Uint8Array && data.byteLength === entry.info.bytes,
        () => `setup data of "${id}": expected a Uint8Array of ${entry.info.bytes} bytes`,
      );
    }
    entry.exists = true;
    if (this.slowTiers.length > 0) {
      const tier = this.#chooseTier(entry);
      entry.slowTier = tier;
      entry.dirty = false;
      if (this.mode === 'real') this.#setupJobs.push(this.slowTiers[tier].write(id, data!));
    } else {
      check(
        placeIn !== null,
        () => `object "${id}": no slow tier to hold it, so it must be placed in memory`,
      );
      entry.dirty = true;
    }
    if (placeIn !== null) {
      this.#ledgers[placeIn].reserve(entry.info.bytes, `"${id}"`);
      this.#setLevel(entry, placeIn);
      if (this.mode === 'real') {
        const buffer = this.#acquire(placeIn, entry.info.bytes);
        buffer.set(data!);
        entry.buffer = buffer;
        entry.bufferLevel = placeIn;
      }
    }
  }

  /** Resolves when every setup write is committed (real mode). */
  async setupComplete(): Promise<void> {
    await Promise.all(this.#setupJobs);
  }

  /** Records the planning point of `step`; I/O issued while planning depends on it (it cannot start earlier). */
  decision(step: number, deps: number[]): number {
    return this.#add({ step, kind: 'decision', bytes: 0, deps, prefetch: false });
  }

  /** Reserves room for a new object (written by a step without reading it) in `level`. */
  allocate(id: ObjectId, level: MemoryLevel, step: number, issue: number): number {
    const entry = this.#entry(id);
    check(
      entry.level === null,
      () => `allocate "${id}": expected it not to be in memory (it is in ${entry.level})`,
    );
    const deps = this.#ledgers[level].reserve(entry.info.bytes, `"${id}"`);
    this.#setLevel(entry, level);
    entry.exists = true;
    entry.dirty = true;
    const seq = this.#add({
      step,
      kind: 'alloc',
      id,
      bytes: entry.info.bytes,
      to: level,
      deps: [issue, entry.tail, ...deps],
      prefetch: false,
    });
    this.#physical(seq, () => {
      entry.buffer = this.#acquire(level, entry.info.bytes);
      entry.bufferLevel = level;
    });
    entry.tail = seq;
    return seq;
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
    const deps = this.#ledgers[level].reserve(bytes, `"${id}"`);
    this.#setLevel(entry, level);
    entry.dirty = false;
    const seq = this.#add({
      step,
      kind: 'load',
      id,
      bytes,
      channel: tier.name,
      direction: 'read',
      from: tier.name,
      to: level,
      deps: [issue, entry.tail, ...deps],
      prefetch,
    });
    this.#count(tier.name, level, bytes);
    this.#physical(seq, async () => {
      const buffer = this.#acquire(level, bytes);
      await tier.read(id, buffer);
      entry.buffer = buffer;
      entry.bufferLevel = level;
    });
    entry.tail = seq;
    return seq;
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
    const deps = this.#ledgers[level].reserve(bytes, `"${id}"`);
    const seq = this.#add({
      step,
      kind: 'copy',
      id,
      bytes,
      channel: 'memcpy',
      direction: 'read',
      from,
      to: level,
      deps: [issue, entry.tail, ...deps],
      prefetch,
    });
    this.#count(from, level, bytes);
    this.#ledgers[from].release(bytes, seq);
    this.#setLevel(entry, level);
    this.#physical(seq, () => {
      const target = this.#acquire(level, bytes);
      target.set(entry.buffer!);
      this.#releaseBuffer(entry);
      entry.buffer = target;
      entry.bufferLevel = level;
    });
    entry.tail = seq;
    return seq;
  }

  /**
   * Removes the memory copy of `id`. With `writeBack` and a dirty copy, first writes it to a slow tier (after which
   * the object is clean there). Without a valid slow copy the contents would be lost, so that is refused unless the
   * caller uses {@link TieredStore.discard}.
   */
  evict(id: ObjectId, step: number, issue: number, writeBack: boolean): number {
    const entry = this.#entry(id);
    const level = entry.level;
    check(level !== null, () => `evict "${id}": expected it in memory`);
    const bytes = entry.info.bytes;
    let last = entry.tail;
    if (entry.dirty) {
      check(writeBack, () => `evict "${id}": its only copy is in ${level}; expected writeBack or discard`);
      const tierIndex = this.#chooseTier(entry);
      const tier = this.slowTiers[tierIndex];
      last = this.#add({
        step,
        kind: 'writeback',
        id,
        bytes,
        channel: tier.name,
        direction: 'write',
        from: level,
        to: tier.name,
        deps: [issue, entry.tail],
        prefetch: false,
      });
      this.#count(level, tier.name, bytes);
      this.#physical(last, () => tier.write(id, entry.buffer!));
      entry.slowTier = tierIndex;
      entry.dirty = false;
    }
    const seq = this.#add({
      step,
      kind: 'release',
      id,
      bytes,
      from: level,
      deps: [issue, last],
      prefetch: false,
    });
    this.#ledgers[level].release(bytes, seq);
    this.#setLevel(entry, null);
    this.#physical(seq, () => this.#releaseBuffer(entry));
    entry.tail = seq;
    return seq;
  }

  /** The contents of `id` are dead: drops its memory copy and deletes any slow copy, without writing anything. */
  discard(id: ObjectId, step: number, issue: number): void {
    const entry = this.#entry(id);
    if (entry.level !== null) {
      const level = entry.level;
      const seq = this.#add({
        step,
        kind: 'release',
        id,
        bytes: entry.info.bytes,
        from: level,
        deps: [issue, entry.tail],
        prefetch: false,
      });
      this.#ledgers[level].release(entry.info.bytes, seq);
      this.#setLevel(entry, null);
      this.#physical(seq, () => this.#releaseBuffer(entry));
      entry.tail = seq;
    }
    this.#dropSlowCopy(entry, step, issue);
    entry.exists = false;
    entry.dirty = false;
  }

  /** Records a compute action; `run` (real mode) executes after `deps` with the operands' buffers ready. */
  compute(step: number, deps: number[], computeNs: number, run?: () => void | Promise<void>): number {
    const seq = this.#add({
      step,
      kind: 'compute',
      bytes: 0,
      channel: 'compute',
      deps,
      prefetch: false,
      computeNs,
    });
    // Transfers queued while planning start before compute holds the thread.
    this.#physical(seq, run && (() => this.#startQueuedIo(run)));
    return seq;
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

  /** Waits for action `seq` (real mode; immediate in virtual mode). Rethrows its failure. */
  async wait(seq: number): Promise<void> {
    if (seq >= 0 && this.mode === 'real') await this.#promises[seq];
  }

  /** The first failure of any physical action so far, or null. */
  get failure(): unknown {
    return this.#failure;
  }

  /** The buffer of `id` (real mode, after its tail action completed). */
  view(id: ObjectId): Uint8Array {
    const entry = this.#entry(id);
    if (!entry.buffer)
      throw new InvalidArgumentError(
        `object "${id}": expected its bytes in memory (it is in ${entry.level ?? 'no memory level'})`,
      );
    return entry.buffer;
  }

  /**
   * A copy of the current contents of `id` (real mode), from memory or read from its slow tier into a new buffer
   * outside the budget (the caller owns it).
   */
  async readObject(id: ObjectId): Promise<Uint8Array> {
    check(this.mode === 'real', () => 'readObject: expected a real-mode store');
    const entry = this.#entry(id);
    check(entry.exists, () => `object "${id}": expected it to exist`);
    await this.wait(entry.tail);
    if (entry.buffer) return Uint8Array.from(entry.buffer);
    // Shared memory: the I/O worker reads into it directly.
    const out = new Uint8Array(new SharedArrayBuffer(entry.info.bytes));
    await this.slowTiers[entry.slowTier].read(id, out);
    return out;
  }

  /** Waits for every recorded action (real mode) and rethrows the first failure. */
  async drain(): Promise<void> {
    if (this.mode !== 'real') return;
    await Promise.allSettled(this.#promises);
    if (this.#failure) throw this.#failure;
  }

  /** Drains, then closes the slow tiers (deleting their copies unless `keepFiles`). */
  async close(options: { keepFiles?: boolean } = {}): Promise<void> {
    await Promise.allSettled(this.#promises);
    await Promise.allSettled(this.#setupJobs);
    for (const tier of this.slowTiers) await tier.close(options);
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

  #chooseTier(entry: Entry): number {
    const bytes = entry.info.bytes;
    for (let i = 0; i < this.slowTiers.length; i++) {
      const tier = this.slowTiers[i];
      const size = bytes + tier.objectOverheadBytes;
      if (this.#slowUsed[i] + size <= tier.capacityBytes) {
        this.#slowUsed[i] += size;
        if (this.#slowUsed[i] > this.#slowPeak[i]) this.#slowPeak[i] = this.#slowUsed[i];
        return i;
      }
    }
    if (this.slowTiers.length === 0) {
      throw new ResourceError(
        `object "${entry.info.id}" must leave memory but there is no slow tier: expected one, or a larger budget`,
      );
    }
    throw new ResourceError(
      `object "${entry.info.id}" (${bytes} bytes) must be written to a slow tier but all are full ` +
        `(${this.slowTiers.map((t, i) => `${t.name}: ${this.#slowUsed[i]}/${t.capacityBytes}`).join(', ')}): ` +
        'expected more slow-tier capacity',
    );
  }

  #dropSlowCopy(entry: Entry, step: number, issue: number): void {
    if (entry.slowTier < 0) return;
    const index = entry.slowTier;
    const tier = this.slowTiers[index];
    this.#slowUsed[index] -= entry.info.bytes + tier.objectOverheadBytes;
    entry.slowTier = -1;
    if (this.mode === 'real') {
      const seq = this.#add({
        step,
        kind: 'delete',
        id: entry.info.id,
        bytes: 0,
        from: tier.name,
        deps: [issue, entry.tail],
        prefetch: false,
      });
      this.#physical(seq, () => tier.delete(entry.info.id));
      entry.tail = seq;
    }
  }

  #count(from: string, to: string, bytes: number): void {
    this.#traffic.get(from)!.read += bytes;
    this.#traffic.get(to)!.written += bytes;
  }

  #add(fields: {
    step: number;
    kind: ActionKind;
    id?: ObjectId;
    bytes: number;
    channel?: string;
    direction?: 'read' | 'write';
    from?: string;
    to?: string;
    deps: number[];
    prefetch: boolean;
    computeNs?: number;
  }): number {
    const deps = [...new Set(fields.deps.filter((d) => d >= 0))];
    const action: Action = {
      ...fields,
      seq: this.actions.length,
      deps,
      computeNs: fields.computeNs ?? 0,
      startNs: 0,
      endNs: 0,
    };
    this.actions.push(action);
    this.timeline.add(action);
    return action.seq;
  }

  #physical(seq: number, work?: () => void | Promise<void>): void {
    if (this.mode !== 'real') return;
    const deps = this.actions[seq].deps;
    const before = deps.length === 0 ? Promise.resolve() : Promise.all(deps.map((d) => this.#promises[d]));
    const promise = work ? before.then(work) : before.then(() => {});
    promise.catch((error: unknown) => {
      this.#failure ??= error;
    });
    this.#promises[seq] = promise;
  }

  #startQueuedIo(run: () => void | Promise<void>): void | Promise<void> {
    for (const tier of this.slowTiers) tier.flush();
    return run();
  }

  #acquire(level: MemoryLevel, bytes: number): Uint8Array {
    return level === 'dram' ? this.#dramPool.acquire(bytes) : this.#arena!.acquire(bytes);
  }

  #releaseBuffer(entry: Entry): void {
    if (!entry.buffer) return;
    if (entry.bufferLevel === 'dram') this.#dramPool.release(entry.buffer);
    else this.#arena!.release(entry.buffer);
    entry.buffer = null;
    entry.bufferLevel = null;
  }
}
