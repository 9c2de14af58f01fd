import { check } from '../../util/assert.ts';
import { ResourceError } from '../../util/errors.ts';
import type { ObjectId, AccessProgram } from '../../program/access.ts';
import { analyzeProgram } from './program.ts';

/**
 * The minimum traffic of a short program and how much work finding it took.
 *
 * @example
 * ```ts
 * const { bytesMoved, states } = optimalBytesMoved(program, capacity);
 * ```
 */
export interface OptimalResult {
  /** Minimum bytes read from plus written to the slow tier. */
  bytesMoved: number;
  bytesRead: number;
  bytesWritten: number;
  /** Distinct cache states visited. */
  states: number;
}

/**
 * Options of {@link optimalBytesMoved}.
 *
 * @example
 * ```ts
 * optimalBytesMoved(program, capacity, { maxObjects: 16 });
 * ```
 */
export interface OptimalOptions {
  /** Refuse programs touching more objects than this (the state space is 3^objects). */
  maxObjects?: number;
  /** Refuse when more states than this would be kept at one step. */
  maxStates?: number;
}

/**
 * The exact minimum of bytes moved between one memory tier of `capacityBytes` and a slow tier, by dynamic
 * programming over cache states (which objects are resident, which of those are dirty) step by step. The model
 * is the executor's without an arena and without warm start: objects that exist before the run start in the slow
 * tier; a step needs all its operands resident at once; a read of a non-resident object costs its size; evicting a
 * dirty object with live contents costs its size (then it is clean in the slow tier); contents never read again
 * are dropped for free; a write without a read needs room but no load.
 *
 * Only maximal keep-sets are expanded: keeping an object is free now, and any eviction can be postponed to the
 * next time room is needed at no greater cost (a clean drop stays free; a dirty write costs the same or nothing if
 * the contents die meanwhile), so some optimal schedule evicts only when forced and then keeps a maximal set.
 *
 * @throws {ResourceError} if a step cannot fit, or the program is too large for an exact search.
 * @example
 * ```ts
 * const best = optimalBytesMoved(randomProgram(3, { steps: 10 }), 16_384);
 * console.log(best.bytesMoved);
 * ```
 */
export function optimalBytesMoved(
  program: AccessProgram,
  capacityBytes: number,
  options: OptimalOptions = {},
): OptimalResult {
  const analysis = analyzeProgram(program);
  const maxObjects = options.maxObjects ?? 20;
  const maxStates = options.maxStates ?? 2_000_000;
  const used: ObjectId[] = [];
  const index = new Map<ObjectId, number>();
  for (const step of program.steps) {
    for (const id of [...step.reads, ...step.writes]) {
      if (!index.has(id)) {
        index.set(id, used.length);
        used.push(id);
      }
    }
  }
  const n = used.length;
  check(
    n <= maxObjects && n <= 24,
    () =>
      `program "${program.name}" touches ${n} objects: expected at most ${Math.min(maxObjects, 24)} for an exact search`,
  );
  const sizes = used.map((id) => analysis.bytesOf(id));
  const bit = (id: ObjectId) => 1 << index.get(id)!;
  const maskBytes = (mask: number) => {
    let sum = 0;
    for (let k = 0; k < n; k++) if (mask & (1 << k)) sum += sizes[k];
    return sum;
  };
  const SHIFT = 2 ** n;
  interface Cost {
    read: number;
    written: number;
  }
  let states = new Map<number, Cost>([[0, { read: 0, written: 0 }]]);
  let visited = 1;
  program.steps.forEach((step, i) => {
    let readMask = 0;
    let needMask = 0;
    let writeMask = 0;
    for (const id of step.reads) readMask |= bit(id);
    for (const id of step.writes) writeMask |= bit(id);
    needMask = readMask | writeMask;
    const needBytes = maskBytes(needMask);
    if (needBytes > capacityBytes) {
      throw new ResourceError(
        `step ${i} needs ${needBytes} bytes at once: expected at most the capacity ${capacityBytes}`,
      );
    }
    // Contents dead after this step (no later read): dropped for free.
    let deadAfter = 0;
    for (let k = 0; k < n; k++) if (!analysis.contentLiveAfter(used[k], i)) deadAfter |= 1 << k;
    const writeOnly = writeMask & ~readMask;
    const next = new Map<number, Cost>();
    for (const [key, cost] of states) {
      const resident = Math.floor(key / SHIFT);
      const dirty = key % SHIFT;
      // A write without a read kills the old contents: drop them for free first.
      const res = resident & ~writeOnly;
      const dir = dirty & ~writeOnly;
      const loadBytes = maskBytes(readMask & ~res);
      const others = res & ~needMask;
      const room = capacityBytes - needBytes;
      const otherBits: number[] = [];
      for (let k = 0; k < n; k++) if (others & (1 << k)) otherBits.push(k);
      const m = otherBits.length;
      for (let sub = 0; sub < 1 << m; sub++) {
        let keep = 0;
        let keepBytes = 0;
        for (let b = 0; b < m; b++) {
          if (sub & (1 << b)) {
            keep |= 1 << otherBits[b];
            keepBytes += sizes[otherBits[b]];
          }
        }
        if (keepBytes > room) continue;
        // Maximal: no evicted object would still fit.
        let maximal = true;
        for (let b = 0; b < m && maximal; b++) {
          if (!(sub & (1 << b)) && keepBytes + sizes[otherBits[b]] <= room) maximal = false;
        }
        if (!maximal) continue;
        const evicted = others & ~keep;
        const writeBytes = maskBytes(evicted & dir);
        let newResident = keep | needMask;
        let newDirty = ((dir & (keep | needMask)) | writeMask) & newResident;
        newResident &= ~deadAfter;
        newDirty &= newResident;
        const newKey = newResident * SHIFT + newDirty;
        const candidate = { read: cost.read + loadBytes, written: cost.written + writeBytes };
        const best = next.get(newKey);
        if (!best || candidate.read + candidate.written < best.read + best.written)
          next.set(newKey, candidate);
      }
    }
    if (next.size > maxStates) {
      throw new ResourceError(
        `step ${i}: ${next.size} cache states: expected at most ${maxStates} for an exact search`,
      );
    }
    visited += next.size;
    states = next;
  });
  let best: Cost = { read: Infinity, written: 0 };
  for (const cost of states.values()) if (cost.read + cost.written < best.read + best.written) best = cost;
  return {
    bytesMoved: best.read + best.written,
    bytesRead: best.read,
    bytesWritten: best.written,
    states: visited,
  };
}
