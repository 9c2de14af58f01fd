import { check } from '../../util/assert.ts';
import type { ObjectId, ObjectKind, AccessProgram, AccessStep } from '../../program/access.ts';
import type { ProgramAnalysis } from './program.ts';
import { renumberSteps, stepComputeNs } from './program.ts';
import type { MemoryLevel, PlanLedger } from './ledger.ts';

/**
 * What a policy may look at when it decides: the program (with its future), the ledger's placement, the step
 * being planned and which objects the step pins.
 *
 * @example
 * ```ts
 * const order = policy.victimOrder('dram', view);
 * ```
 */
export interface PolicyView {
  readonly analysis: ProgramAnalysis;
  readonly ledger: PlanLedger;
  /** The step being planned: its operands are pinned; everything else may move. */
  readonly step: number;
  isPinned(id: ObjectId): boolean;
  /** Bytes fetched ahead and not yet used. */
  readonly outstandingPrefetchBytes: number;
}

/**
 * An object to fetch ahead, needed by step `useStep`.
 *
 * @example
 * ```ts
 * const request: PrefetchRequest = { id: 'rk[3]', useStep: 12 };
 * ```
 */
export interface PrefetchRequest {
  id: ObjectId;
  useStep: number;
}

/**
 * An eviction and prefetch policy. The planner owns the mechanics (pinning, write-back, the prefetch throttle);
 * a policy orders victims and proposes prefetches.
 *
 * @example
 * ```ts
 * const policies: Policy[] = [new LruPolicy(), new HomePolicy({ lookahead: 32 })];
 * ```
 */
export interface Policy {
  readonly name: string;
  /**
   * Whether the policy uses the program's future. Then contents with no later read are dropped right after their
   * last use and never written back, and prefetch may only displace objects needed later than what it brings.
   */
  readonly knowsFuture: boolean;
  /** Called once before a run. */
  reset(analysis: ProgramAnalysis): void;
  /** `id` was used by `step`. */
  touch(id: ObjectId, step: number): void;
  /** Unpinned residents of `level` in the order they should leave it. */
  victimOrder(level: MemoryLevel, view: PolicyView): ObjectId[];
  /** Objects to bring towards compute now, most urgent first. */
  prefetch(view: PolicyView): PrefetchRequest[];
  /** How to make the same policy in another thread ({@link policyFromDescriptor}); absent for custom policies. */
  readonly descriptor?: PolicyDescriptor;
}

/**
 * A built-in policy and its options as plain data (what a planning thread is sent).
 *
 * @example
 * ```ts
 * const d: PolicyDescriptor = { kind: 'home', options: { lookahead: 256, minLookaheadSteps: 160 } };
 * ```
 */
export type PolicyDescriptor = { kind: 'lru' } | { kind: 'home'; options: HomePolicyOptions };

/**
 * The policy a descriptor names.
 *
 * @example
 * ```ts
 * const policy = policyFromDescriptor(realRunHomePolicy().descriptor!);
 * ```
 */
export function policyFromDescriptor(descriptor: PolicyDescriptor): Policy {
  if (descriptor.kind === 'lru') return new LruPolicy();
  check(
    descriptor.kind === 'home',
    () => `policy kind ${String((descriptor as { kind: unknown }).kind)}: expected lru or home`,
  );
  return new HomePolicy(descriptor.options);
}

/**
 * Baseline: on-demand loading with least-recently-used eviction. It knows nothing of the future, so a dirty
 * object is written back when evicted even if it will never be read again (unless the program freed it).
 *
 * @example
 * ```ts
 * const result = simulate(program, { policy: new LruPolicy(), dramBudgetBytes: 1 << 30, slow: 'nvme-gen4' });
 * ```
 */
export class LruPolicy implements Policy {
  readonly name = 'lru';
  readonly knowsFuture = false;
  readonly descriptor: PolicyDescriptor = { kind: 'lru' };
  #recency = new Map<ObjectId, number>();

  reset(): void {
    this.#recency = new Map();
  }

  touch(id: ObjectId, step: number): void {
    this.#recency.delete(id);
    this.#recency.set(id, step);
  }

  victimOrder(level: MemoryLevel, view: PolicyView): ObjectId[] {
    const residents = view.ledger.residents(level);
    const order: ObjectId[] = [];
    // Never-touched residents (warm-started, not yet used) go first, in arrival order.
    for (const id of residents) if (!this.#recency.has(id) && !view.isPinned(id)) order.push(id);
    for (const id of this.#recency.keys()) if (residents.has(id) && !view.isPinned(id)) order.push(id);
    return order;
  }

  prefetch(): PrefetchRequest[] {
    return [];
  }
}

/**
 * Options of {@link HomePolicy}.
 *
 * @example
 * ```ts
 * const options: HomePolicyOptions = { lookahead: 64, margin: 3 };
 * ```
 */
export interface HomePolicyOptions {
  /** Steps ahead to prefetch for (0 disables prefetch). */
  lookahead?: number;
  /** Prefetched-but-unused bytes are capped at this fraction of the compute tier (the DRAM budget without arena). */
  prefetchBudgetFraction?: number;
  /**
   * Size awareness: an object's eviction score is scaled by bytes / (bytes + latencyBytes), so objects whose
   * reload is latency-bound (small ones) are kept in preference to large ones at similar distance. `latencyBytes`
   * = slow-tier latency × bandwidth; default: computed from the ledger's first slow tier.
   */
  latencyBytes?: number;
  /** Score divisor for dirty objects, whose eviction costs a write now and a read later (default 2). */
  dirtyWeight?: number;
  /**
   * Just-in-time prefetch: fetch an object now only if waiting for the next planning point could make it late,
   * i.e. if the compute time until its use is below `margin` × (the current step's compute + device latency +
   * queued bytes / bandwidth). Fetching earlier than needed only shrinks the cache for reuse. 0 disables the
   * timing test (fetch everything in the lookahead window). Default 2.
   */
  margin?: number;
  /**
   * Steps always prefetched for, whatever the timing test says (default 0). Real-I/O runs benefit from a few: the
   * I/O workers read and verify while compute holds the main thread, but a load is only posted between two steps
   * (and its completion collected between two steps), and the device profile the timing test uses may overstate
   * what the real files deliver.
   */
  minLookaheadSteps?: number;
}

/**
 * HomE policy: size-aware Belady eviction with lookahead prefetch. Victims are ordered by
 * distance-to-next-use × size factor / dirty weight, largest first; contents never read again go first (free).
 * Read-only and other clean objects are dropped (their slow copy is valid); dirty intermediates are written once
 * (afterwards they are clean). Prefetch proposes the reads of the next `lookahead` steps; the executor admits a
 * prefetch only if it fits by displacing objects whose next use is later than the prefetched object's.
 *
 * @example
 * ```ts
 * const policy = new HomePolicy({ lookahead: 32, prefetchBudgetFraction: 0.5 });
 * ```
 */
export class HomePolicy implements Policy {
  readonly name: string;
  readonly knowsFuture = true;
  readonly lookahead: number;
  readonly prefetchBudgetFraction: number;
  readonly dirtyWeight: number;
  readonly margin: number;
  readonly minLookaheadSteps: number;
  readonly #latencyBytesOption: number | undefined;
  #analysis: ProgramAnalysis | null = null;
  readonly descriptor: PolicyDescriptor;

  constructor(options: HomePolicyOptions = {}) {
    this.descriptor = { kind: 'home', options: { ...options } };
    this.lookahead = options.lookahead ?? 32;
    this.prefetchBudgetFraction = options.prefetchBudgetFraction ?? 0.5;
    this.dirtyWeight = options.dirtyWeight ?? 2;
    this.margin = options.margin ?? 2;
    this.minLookaheadSteps = options.minLookaheadSteps ?? 0;
    this.#latencyBytesOption = options.latencyBytes;
    check(
      Number.isInteger(this.lookahead) && this.lookahead >= 0,
      () => `lookahead = ${this.lookahead}: expected an integer >= 0`,
    );
    check(
      this.prefetchBudgetFraction >= 0 && this.prefetchBudgetFraction <= 1,
      () => `prefetchBudgetFraction = ${this.prefetchBudgetFraction}: expected a value in [0, 1]`,
    );
    this.name = this.lookahead > 0 ? 'home' : 'home-noprefetch';
  }

  reset(analysis: ProgramAnalysis): void {
    this.#analysis = analysis;
  }

  touch(): void {}

  /** Eviction score of `id` at the decision point of `step`: higher leaves first; Infinity for dead contents. */
  score(id: ObjectId, view: PolicyView): number {
    const next = view.analysis.nextUse(id, view.step - 1);
    if (!next.needsContent) return Infinity;
    const state = view.ledger.state(id);
    const bytes = state.info.bytes;
    const latencyBytes = this.#latencyBytesOption ?? latencyBytesOf(view.ledger);
    const sizeFactor = bytes / (bytes + latencyBytes);
    const cost = state.dirty ? this.dirtyWeight : 1;
    return ((next.step - view.step) * sizeFactor) / cost;
  }

  victimOrder(level: MemoryLevel, view: PolicyView): ObjectId[] {
    const scored: { id: ObjectId; score: number; bytes: number }[] = [];
    for (const id of view.ledger.residents(level)) {
      if (view.isPinned(id)) continue;
      scored.push({ id, score: this.score(id, view), bytes: view.ledger.state(id).info.bytes });
    }
    scored.sort((a, b) => b.score - a.score || b.bytes - a.bytes || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return scored.map((s) => s.id);
  }

  prefetch(view: PolicyView): PrefetchRequest[] {
    if (this.lookahead === 0) return [];
    const analysis = this.#analysis ?? view.analysis;
    const steps = analysis.program.steps;
    const ledger = view.ledger;
    const budget = ledger.capacity(ledger.computeLevel) * this.prefetchBudgetFraction;
    let bytes = view.outstandingPrefetchBytes;
    const seen = new Set<ObjectId>();
    const requests: PrefetchRequest[] = [];
    const end = Math.min(steps.length - 1, view.step + this.lookahead);
    const device = ledger.slowTiers[0]?.device;
    const nowStepNs = stepComputeNs(steps[view.step]);
    // Compute time from now until step j starts (the current step included: prefetch overlaps it).
    let aheadNs = nowStepNs;
    for (let j = view.step + 1; j <= end; j++) {
      if (j > view.step + 1) aheadNs += stepComputeNs(steps[j - 1]);
      if (this.margin > 0 && device && j > view.step + this.minLookaheadSteps) {
        const transferNs = device.readLatencyNs + bytes / device.readBytesPerNs;
        if (aheadNs > this.margin * (nowStepNs + transferNs)) return requests;
      }
      for (const id of steps[j].reads) {
        if (seen.has(id)) continue;
        seen.add(id);
        const state = ledger.state(id);
        if (state.level === ledger.computeLevel || !state.exists) continue;
        // Only the current contents' next reader is worth fetching for; if the object is overwritten first, skip.
        const next = analysis.nextUse(id, view.step);
        if (next.step !== j || !next.needsContent) continue;
        bytes += state.info.bytes;
        if (bytes > budget) return requests;
        requests.push({ id, useStep: j });
      }
    }
    return requests;
  }
}

function latencyBytesOf(ledger: PlanLedger): number {
  const tier = ledger.slowTiers[0];
  if (!tier) return 0;
  return tier.device.readLatencyNs * tier.device.readBytesPerNs;
}

/**
/**
 * A policy by name: `lru`, `home` (lookahead 32) or `home-noprefetch`.
 *
 * @example
 * ```ts
 * const name: PolicyName = 'home';
 * ```
 */
export type PolicyName = 'lru' | 'home' | 'home-noprefetch';

/**
 * Makes a policy from its name (a policy given as itself is returned as is).
 *
 * @example
 * ```ts
 * const policy = makePolicy('home');
 * ```
 */
export function makePolicy(name: PolicyName | Policy): Policy {
  if (typeof name !== 'string') return name;
  if (name === 'lru') return new LruPolicy();
  if (name === 'home') return new HomePolicy();
  return new HomePolicy({ lookahead: 0 });
}

/**
 * Options of {@link scheduleKeyAware}.
 *
 * @example
 * ```ts
 * scheduleKeyAware(program, { window: 128, groupKinds: ['rotation-key'] });
 * ```
 */
export interface KeyAwareOptions {
  /** How far (in original positions) a step may move ahead of the earliest unscheduled step. */
  window?: number;
  /** Object kinds whose reuse is grouped. */
  groupKinds?: readonly ObjectKind[];
}

/**
 * Key-aware scheduling: a list scheduler over the program's dependency graph (read-after-write,
 * write-after-read, write-after-write, with frees counting as writes) that, among ready steps, prefers one using a
 * rotation or relinearization key the previously scheduled step used; then a ready step using no key (so that
 * dependency chains of other requests catch up before the key changes); then the earliest ready step.
 * Steps sharing a key end up adjacent, so a key is fetched once per group instead of once per use. Results are
 * unchanged: only independent steps are reordered.
 *
 * @example
 * ```ts
 * const grouped = scheduleKeyAware(interleavedModelsProgram({ models: 8 }), { window: 256 });
 * ```
 */
export function scheduleKeyAware(program: AccessProgram, options: KeyAwareOptions = {}): AccessProgram {
  const window = options.window ?? 256;
  const kinds = new Set<ObjectKind>(options.groupKinds ?? ['rotation-key', 'relin-key']);
  const kindOf = new Map(program.objects.map((o) => [o.id, o.kind]));
  const steps = program.steps;
  const n = steps.length;
  const successors: number[][] = Array.from({ length: n }, () => []);
  const preds = new Int32Array(n);
  const lastWriter = new Map<ObjectId, number>();
  const readersSince = new Map<ObjectId, number[]>();
  const edge = (from: number, to: number) => {
    if (from === to) return;
    successors[from].push(to);
    preds[to]++;
  };
  steps.forEach((step, i) => {
    const readSet = new Set(step.reads);
    for (const id of readSet) {
      const w = lastWriter.get(id);
      if (w !== undefined) edge(w, i);
    }
    const writeSet = new Set([...step.writes, ...(step.frees ?? [])]);
    for (const id of writeSet) {
      const w = lastWriter.get(id);
      if (w !== undefined) edge(w, i);
      for (const r of readersSince.get(id) ?? []) edge(r, i);
    }
    for (const id of readSet) {
      if (writeSet.has(id)) continue;
      let list = readersSince.get(id);
      if (!list) readersSince.set(id, (list = []));
      list.push(i);
    }
    for (const id of writeSet) {
      lastWriter.set(id, i);
      readersSince.set(id, []);
    }
  });
  const keysOf = (step: AccessStep) => step.reads.filter((id) => kinds.has(kindOf.get(id)!));
  const ready = new Set<number>();
  for (let i = 0; i < n; i++) if (preds[i] === 0) ready.add(i);
  const done = new Uint8Array(n);
  let earliest = 0;
  let currentKeys: ObjectId[] = [];
  const order: AccessStep[] = [];
  while (order.length < n) {
    while (done[earliest]) earliest++;
    let pick = -1;
    let keyless = -1;
    let fallback = -1;
    for (const i of ready) {
      if (i >= earliest + window) continue;
      if (fallback < 0 || i < fallback) fallback = i;
      const keys = keysOf(steps[i]);
      if (keys.length === 0) {
        if (keyless < 0 || i < keyless) keyless = i;
      } else if ((pick < 0 || i < pick) && keys.some((k) => currentKeys.includes(k))) {
        pick = i;
      }
    }
    // Before switching keys, run key-free ready steps, so chains waiting on them catch up and can share the next key.
    if (pick < 0) pick = keyless >= 0 ? keyless : fallback;
    check(pick >= 0, () => 'scheduleKeyAware: no ready step (dependency cycle)');
    ready.delete(pick);
    done[pick] = 1;
    order.push(steps[pick]);
    const keys = keysOf(steps[pick]);
    if (keys.length > 0) currentKeys = keys;
    for (const s of successors[pick]) if (--preds[s] === 0) ready.add(s);
  }
  return { name: `${program.name}+keyaware`, objects: program.objects, steps: renumberSteps(order) };
}
