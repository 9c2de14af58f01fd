import { check } from '../../util/assert.ts';
import type { ObjectId, AccessProgram, AccessStep } from '../../program/access.ts';
import { renumberSteps } from './program.ts';

/**
 * Options of {@link scheduleForLocality}.
 *
 * @example
 * ```ts
 * const options: LocalityOptions = { window: 4096 };
 * ```
 */
export interface LocalityOptions {
  /**
   * How far (in original positions) a step may move ahead of the earliest unscheduled step (default: unlimited,
   * so a whole layer of accumulation chains can be interleaved).
   */
  window?: number;
  /**
   * Ops whose updates of an accumulator commute: a step with such an op that reads and writes the same object
   * (e.g. `mul_then_add`: acc += x · c, exact modular arithmetic with fully reduced results) may run in any order
   * relative to the other such updates of that object between the step that created it and its next other use.
   */
  commutativeOps?: readonly string[];
  /**
   * Memory awareness: while produced (non-initial) objects live at once exceed this many bytes, sharing an initial
   * object (an input, a weight, a key) may only pull in steps that create no new object; new objects are then
   * created in program order. Sharing a produced value may always create objects, since consuming it early lets it
   * die early. Keeps the interleaving from opening more accumulators than memory holds (default: unlimited).
   */
  liveCapBytes?: number;
}

/** A binary min-heap of step indices with lazy deletion (entries of scheduled steps are skipped on read). */
class IndexHeap {
  readonly #items: number[] = [];

  push(value: number): void {
    const items = this.#items;
    items.push(value);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent] <= value) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = value;
  }

  /** The smallest value for which `live` holds, dropping dead ones; -1 if none. */
  peek(live: (value: number) => boolean): number {
    const items = this.#items;
    while (items.length > 0 && !live(items[0])) this.#pop();
    return items.length > 0 ? items[0] : -1;
  }

  #pop(): void {
    const items = this.#items;
    const last = items.pop()!;
    if (items.length === 0) return;
    let i = 0;
    const n = items.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && items[right] < items[left] ? right : left;
      if (items[child] >= last) break;
      items[i] = items[child];
      i = child;
    }
    items[i] = last;
  }
}

/**
 * Locality-aware scheduling: a list scheduler over the program's dependency graph (read-after-write,
 * write-after-read, write-after-write; frees count as writes) that, among ready steps, prefers the earliest one
 * that reads — without writing — an object the previously scheduled step read or wrote; otherwise the earliest
 * ready step. Steps that consume the same operand end up adjacent, and a value is consumed right after it is
 * produced.
 *
 * The effect on a compiled dense layer (one accumulation chain per output, each reading every input in order) is a
 * loop interchange: the chains advance in lockstep, so each input is read once while all accumulators stay in
 * memory, instead of every input being streamed once per output. Feeding layers fuse the same way (a value is
 * squared and folded into the next layer's accumulators as soon as it is complete), which shrinks the live set.
 * Results are unchanged: only independent steps are reordered, and each accumulator's updates keep their order
 * (CKKS arithmetic is exact modular arithmetic, so the decrypted values are bit-identical).
 *
 * @example
 * ```ts
 * const reordered = scheduleForLocality(heRuntimeProgram);
 * const run = simulate(reordered, { policy: 'home', dramBudgetBytes: budget, slow: 'nvme-gen4' });
 * ```
 */
export function scheduleForLocality(program: AccessProgram, options: LocalityOptions = {}): AccessProgram {
  const window = options.window ?? Infinity;
  check(window >= 1, () => `window = ${window}: expected >= 1`);
  const steps = program.steps;
  const n = steps.length;
  const successors: number[][] = Array.from({ length: n }, () => []);
  const preds = new Int32Array(n);
  const lastWriter = new Map<ObjectId, number>();
  const readersSince = new Map<ObjectId, number[]>();
  /** Commutative updates of an object since its last other write (they must all precede its next other use). */
  const updatesSince = new Map<ObjectId, number[]>();
  const commutative = new Set(options.commutativeOps ?? []);
  const edge = (from: number, to: number) => {
    if (from === to) return;
    successors[from].push(to);
    preds[to]++;
  };
  /** Per step: objects it reads without writing them (the operands it could share with a neighbour). */
  const pureReads: ObjectId[][] = new Array(n);
  steps.forEach((step, i) => {
    const readSet = new Set(step.reads);
    const writeSet = new Set([...step.writes, ...(step.frees ?? [])]);
    // The accumulator of a commutative update: read and written by it, and not freed.
    const accumulator =
      commutative.has(step.op) &&
      step.writes.length === 1 &&
      readSet.has(step.writes[0]) &&
      !step.frees?.includes(step.writes[0])
        ? step.writes[0]
        : null;
    for (const id of readSet) {
      const w = lastWriter.get(id);
      if (w !== undefined) edge(w, i);
      if (id === accumulator) {
        for (const r of readersSince.get(id) ?? []) edge(r, i);
      } else {
        for (const u of updatesSince.get(id) ?? []) edge(u, i);
      }
    }
    if (accumulator !== null) {
      let list = updatesSince.get(accumulator);
      if (!list) updatesSince.set(accumulator, (list = []));
      list.push(i);
    }
    for (const id of writeSet) {
      if (id === accumulator) continue;
      const w = lastWriter.get(id);
      if (w !== undefined) edge(w, i);
      for (const r of readersSince.get(id) ?? []) edge(r, i);
      for (const u of updatesSince.get(id) ?? []) edge(u, i);
    }
    for (const id of readSet) {
      if (writeSet.has(id)) continue;
      let list = readersSince.get(id);
      if (!list) readersSince.set(id, (list = []));
      list.push(i);
    }
    for (const id of writeSet) {
      if (id === accumulator) continue;
      lastWriter.set(id, i);
      readersSince.set(id, []);
      updatesSince.set(id, []);
    }
    const written = new Set(step.writes);
    pureReads[i] = [...readSet].filter((id) => !written.has(id));
  });
  const sizes = new Map(program.objects.map((o) => [o.id, o.bytes]));
  const cap = options.liveCapBytes ?? Infinity;
  /** Bytes of the objects a step creates (writes without reading). */
  const allocBytes = new Float64Array(n);
  const usesLeft = new Map<ObjectId, number>();
  const initial = new Set<ObjectId>();
  const seen = new Set<ObjectId>();
  steps.forEach((step, i) => {
    for (const id of step.reads) if (!seen.has(id)) initial.add(id);
    const touched = new Set([...step.reads, ...step.writes, ...(step.frees ?? [])]);
    for (const id of touched) {
      seen.add(id);
      usesLeft.set(id, (usesLeft.get(id) ?? 0) + 1);
    }
    const reads = new Set(step.reads);
    for (const id of step.writes) if (!reads.has(id)) allocBytes[i] += sizes.get(id) ?? 0;
  });
  const done = new Uint8Array(n);
  const ready = new IndexHeap();
  /** Ready steps that create no object (they finish or advance work already started). */
  const readyAdvancing = new IndexHeap();
  /** Ready steps that read a produced value without writing it (consuming values lets them die). */
  const readyConsumers = new IndexHeap();
  /** Ready steps by an object they read without writing: those creating no object, and those creating some. */
  const readyReaders = new Map<ObjectId, IndexHeap>();
  const readyCreators = new Map<ObjectId, IndexHeap>();
  const makeReady = (i: number) => {
    ready.push(i);
    if (allocBytes[i] === 0) readyAdvancing.push(i);
    if (pureReads[i].some((id) => !initial.has(id))) readyConsumers.push(i);
    const byObject = allocBytes[i] > 0 ? readyCreators : readyReaders;
    for (const id of pureReads[i]) {
      let heap = byObject.get(id);
      if (!heap) byObject.set(id, (heap = new IndexHeap()));
      heap.push(i);
    }
  };
  for (let i = 0; i < n; i++) if (preds[i] === 0) makeReady(i);
  let earliest = 0;
  let live = 0;
  const notDone = (i: number) => done[i] === 0;
  const order: AccessStep[] = [];
  let previous: AccessStep | null = null;
  while (order.length < n) {
    while (done[earliest]) earliest++;
    const limit = earliest + window;
    let pick = -1;
    if (previous !== null) {
      // First steps sharing an operand the previous step only read (siblings: advance in lockstep), then steps
      // consuming what it wrote (children: a value is used right after it is made).
      for (const group of [pureReads[previous.index], previous.writes]) {
        for (const id of group) {
          // Creating an object to consume a produced value frees that value sooner; for an initial (read-only)
          // one, only while memory allows.
          const maps = live < cap || !initial.has(id) ? [readyReaders, readyCreators] : [readyReaders];
          for (const map of maps) {
            const heap = map.get(id);
            if (!heap) continue;
            const candidate = heap.peek(notDone);
            if (candidate >= 0 && candidate < limit && (pick < 0 || candidate < pick)) pick = candidate;
          }
        }
        if (pick >= 0) break;
      }
    }
    // Then consume values already made (depth first), and over the cap finish what is open before opening more.
    if (pick < 0) pick = readyConsumers.peek(notDone);
    if (pick < 0 && live >= cap) pick = readyAdvancing.peek(notDone);
    if (pick < 0) pick = ready.peek(notDone);
    check(pick >= 0, () => 'scheduleForLocality: no ready step (dependency cycle)');
    done[pick] = 1;
    const step = steps[pick];
    order.push(step);
    previous = step;
    live += allocBytes[pick];
    for (const id of new Set([...step.reads, ...step.writes, ...(step.frees ?? [])])) {
      const left = usesLeft.get(id)! - 1;
      usesLeft.set(id, left);
      if (left === 0 && !initial.has(id)) live -= sizes.get(id) ?? 0;
    }
    for (const s of successors[pick]) if (--preds[s] === 0) makeReady(s);
  }
  return { name: `${program.name}+locality`, objects: program.objects, steps: renumberSteps(order) };
}
