import type { AccessProgram, AccessStep, ObjectId, ObjectInfo, ObjectKind } from '../../program/access.ts';
import { check } from '../../util/assert.ts';
import { InvalidArgumentError } from '../../util/errors.ts';

/** Kinds an object may have when a step reads it before any step wrote it: it must exist before the run. */
const PREEXISTING_KINDS: ReadonlySet<ObjectKind> = new Set([
  'ciphertext',
  'plaintext',
  'relin-key',
  'rotation-key',
  'input',
]);

/**
 * A use of an object by a step: whether the step needs the object's previous contents.
 *
 * @example
 * ```ts
 * const { step, needsContent } = analysis.nextUse('acc', 12);
 * ```
 */
export interface NextUse {
  /** Step index of the use; `steps.length` for the final read of an output; `Infinity` for none. */
  step: number;
  /** True when the use reads the current contents; false when it only overwrites them (the contents are dead). */
  needsContent: boolean;
}

const NO_USE: NextUse = { step: Infinity, needsContent: false };

/**
 * Validated facts about a program that every policy needs: object table, which objects exist before the run,
 * and next-use queries (the future knowledge Belady-style eviction relies on).
 *
 * @example
 * ```ts
 * const analysis = analyzeProgram(program);
 * const next = analysis.nextUse('w3', 10); // first use of w3 after step 10
 * if (!analysis.contentLiveAfter('tmp', 10)) console.log('tmp can be dropped without write-back');
 * ```
 */
export class ProgramAnalysis {
  readonly program: AccessProgram;
  readonly objects: ReadonlyMap<ObjectId, ObjectInfo>;
  /** Objects that exist before step 0 (read before any write). They start in a slow tier or in memory. */
  readonly initial: ReadonlySet<ObjectId>;
  /** Objects of kind `output`: their contents are needed after the last step. */
  readonly outputs: ReadonlySet<ObjectId>;
  readonly #useSteps: Map<ObjectId, Int32Array>;
  readonly #useReads: Map<ObjectId, Uint8Array>;

  constructor(program: AccessProgram) {
    this.program = program;
    const objects = new Map<ObjectId, ObjectInfo>();
    for (const info of program.objects) {
      check(
        typeof info.id === 'string' && info.id.length > 0,
        () => `object id = ${String(info.id)}: expected a non-empty string`,
      );
      check(!objects.has(info.id), () => `object id "${info.id}" appears twice in program "${program.name}"`);
      check(
        Number.isSafeInteger(info.bytes) && info.bytes > 0,
        () => `object "${info.id}".bytes = ${info.bytes}: expected a positive integer`,
      );
      objects.set(info.id, info);
    }
    this.objects = objects;
    const initial = new Set<ObjectId>();
    const outputs = new Set<ObjectId>();
    for (const info of program.objects) if (info.kind === 'output') outputs.add(info.id);
    const steps = new Map<ObjectId, number[]>();
    const reads = new Map<ObjectId, number[]>();
    // exists: created (initial or written) and not freed since.
    const exists = new Set<ObjectId>();
    const everWritten = new Set<ObjectId>();
    const known = (id: ObjectId, i: number, role: string) => {
      if (!objects.has(id)) {
        throw new InvalidArgumentError(
          `step ${i} ${role} "${id}": expected an object declared in program "${program.name}"`,
        );
      }
    };
    program.steps.forEach((step, i) => {
      check(step.index === i, () => `steps[${i}].index = ${step.index}: expected ${i}`);
      check(
        step.computeCostNs === undefined || (Number.isFinite(step.computeCostNs) && step.computeCostNs >= 0),
        () => `step ${i}.computeCostNs = ${step.computeCostNs}: expected a finite number >= 0`,
      );
      check(
        step.scratchBytes === undefined ||
          (Number.isSafeInteger(step.scratchBytes) && step.scratchBytes >= 0),
        () => `step ${i}.scratchBytes = ${step.scratchBytes}: expected an integer >= 0`,
      );
      const touched = new Map<ObjectId, boolean>();
      for (const id of step.reads) {
        known(id, i, 'reads');
        if (!exists.has(id)) {
          const info = objects.get(id)!;
          if (everWritten.has(id) || !PREEXISTING_KINDS.has(info.kind)) {
            throw new InvalidArgumentError(
              `step ${i} reads "${id}" (kind ${info.kind}) before any step wrote it` +
                (everWritten.has(id) ? ' since it was freed' : '') +
                ': expected it to be written first, or to be an input, ciphertext, plaintext or key',
            );
          }
          initial.add(id);
          exists.add(id);
        }
        touched.set(id, true);
      }
      for (const id of step.writes) {
        known(id, i, 'writes');
        const info = objects.get(id)!;
        if (info.readOnly) {
          throw new InvalidArgumentError(
            `step ${i} writes "${id}": expected no writes to a read-only object`,
          );
        }
        exists.add(id);
        everWritten.add(id);
        if (!touched.has(id)) touched.set(id, false);
      }
      for (const [id, isRead] of touched) {
        let list = steps.get(id);
        if (!list) steps.set(id, (list = []));
        list.push(i);
        let flags = reads.get(id);
        if (!flags) reads.set(id, (flags = []));
        flags.push(isRead ? 1 : 0);
      }
      for (const id of step.frees ?? []) {
        known(id, i, 'frees');
        check(exists.has(id), () => `step ${i} frees "${id}": expected an object that exists at that point`);
        check(!outputs.has(id), () => `step ${i} frees output "${id}": expected outputs to survive the run`);
        exists.delete(id);
      }
    });
    for (const id of outputs) {
      check(exists.has(id), () => `output "${id}": expected some step to write it (and no step to free it)`);
    }
    this.initial = initial;
    this.outputs = outputs;
    this.#useSteps = new Map([...steps].map(([id, list]) => [id, Int32Array.from(list)]));
    this.#useReads = new Map([...reads].map(([id, list]) => [id, Uint8Array.from(list)]));
  }

  /**
   * The distinct objects step `step` reads or writes, reads first (computed for every step on first use).
   */
  operandsOf(step: number): readonly ObjectId[] {
    return this.#perStep().operands[step];
  }

  /**
   * The objects whose contents are dead once step `step` has run: its operands not read again (before being
   * overwritten) and the objects it frees. A planner can count their memory as available after the step.
   */
  departuresAfter(step: number): readonly ObjectId[] {
    return this.#perStep().departures[step];
  }

  #stepLists: { operands: ObjectId[][]; departures: ObjectId[][] } | null = null;

  #perStep(): { operands: ObjectId[][]; departures: ObjectId[][] } {
    if (this.#stepLists) return this.#stepLists;
    const operands: ObjectId[][] = [];
    const departures: ObjectId[][] = [];
    // Lists of a handful of ids: deduplicated by scanning, without a Set per step (10^5 steps add up).
    const steps = this.program.steps;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i];
      const touched: ObjectId[] = [];
      for (const id of step.reads) if (!touched.includes(id)) touched.push(id);
      for (const id of step.writes) if (!touched.includes(id)) touched.push(id);
      operands.push(touched);
      const leaving: ObjectId[] = [];
      for (const id of touched) if (!this.contentLiveAfter(id, i)) leaving.push(id);
      for (const id of step.frees ?? []) if (!leaving.includes(id)) leaving.push(id);
      departures.push(leaving);
    }
    this.#stepLists = { operands, departures };
    return this.#stepLists;
  }

  /** Number of steps. */
  get length(): number {
    return this.program.steps.length;
  }

  /** Byte size of `id`. */
  bytesOf(id: ObjectId): number {
    const info = this.objects.get(id);
    if (!info)
      throw new InvalidArgumentError(`object "${id}": expected an object of program "${this.program.name}"`);
    return info.bytes;
  }

  /** Step indices that use `id` (read or write), ascending. */
  usesOf(id: ObjectId): Int32Array {
    return this.#useSteps.get(id) ?? new Int32Array(0);
  }

  /**
   * The first use of `id` strictly after step `after` (use `-1` for "from the start"). An output with no later use
   * reports a reading use at `steps.length` (the caller reads it after the run).
   */
  nextUse(id: ObjectId, after: number): NextUse {
    const uses = this.#useSteps.get(id);
    if (uses) {
      const next = firstAfter(uses, after);
      if (next < uses.length) return { step: uses[next], needsContent: this.#useReads.get(id)![next] === 1 };
    }
    if (this.outputs.has(id)) return { step: this.program.steps.length, needsContent: true };
    return NO_USE;
  }

  /** Whether the contents `id` holds after step `after` are read again (by a step or, for outputs, by the caller). */
  contentLiveAfter(id: ObjectId, after: number): boolean {
    // As nextUse(id, after).needsContent, without a result object: planners ask this for every operand of every step.
    const uses = this.#useSteps.get(id);
    if (uses) {
      const next = firstAfter(uses, after);
      if (next < uses.length) return this.#useReads.get(id)![next] === 1;
    }
    return this.outputs.has(id);
  }

  /** Sum of the sizes of all objects. */
  get totalBytes(): number {
    let sum = 0;
    for (const info of this.program.objects) sum += info.bytes;
    return sum;
  }

  /** Sum of the sizes of the objects that exist before the run. */
  get initialBytes(): number {
    let sum = 0;
    for (const id of this.initial) sum += this.objects.get(id)!.bytes;
    return sum;
  }

  #maxStepBytes = -1;

  /**
   * Bytes one step needs in memory at once (its reads and writes, and the scratch it allocates while it runs); the
   * largest over the program.
   */
  get maxStepBytes(): number {
    if (this.#maxStepBytes >= 0) return this.#maxStepBytes;
    let max = 0;
    for (let i = 0; i < this.program.steps.length; i++) {
      let sum = this.program.steps[i].scratchBytes ?? 0;
      for (const id of this.operandsOf(i)) sum += this.objects.get(id)!.bytes;
      if (sum > max) max = sum;
    }
    this.#maxStepBytes = max;
    return max;
  }

  #peakLiveProducedBytes = -1;

  /**
   * The most bytes of objects produced during the run (not initial) whose contents are live at once: an upper bound
   * on what spilling can ever need in slow tiers beyond the initial objects.
   */
  get peakLiveProducedBytes(): number {
    if (this.#peakLiveProducedBytes >= 0) return this.#peakLiveProducedBytes;
    this.#peakLiveProducedBytes = this.#computePeakLiveProduced();
    return this.#peakLiveProducedBytes;
  }

  #computePeakLiveProduced(): number {
    let live = 0;
    let peak = 0;
    const alive = new Set<ObjectId>();
    this.program.steps.forEach((step, i) => {
      for (const id of step.writes) {
        if (!this.initial.has(id) && !alive.has(id)) {
          alive.add(id);
          live += this.objects.get(id)!.bytes;
        }
      }
      if (live > peak) peak = live;
      for (const id of this.operandsOf(i)) {
        if (alive.has(id) && !this.contentLiveAfter(id, i)) {
          alive.delete(id);
          live -= this.objects.get(id)!.bytes;
        }
      }
    });
    return peak;
  }
}

/** Index of the first element of ascending `uses` greater than `after` (uses.length if none). */
function firstAfter(uses: Int32Array, after: number): number {
  let lo = 0;
  let hi = uses.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (uses[mid] <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Validates `program` and returns its analysis; throws {@link InvalidArgumentError} naming the first bad step or
 * object (unknown id, read before write, write to a read-only object, index mismatch, freed output).
 *
 * @example
 * ```ts
 * const analysis = analyzeProgram(cryptoNetsProgram());
 * console.log(analysis.initialBytes, analysis.maxStepBytes);
 * ```
 */
export function analyzeProgram(program: AccessProgram): ProgramAnalysis {
  return new ProgramAnalysis(program);
}

/**
 * Compute time of `step` in nanoseconds: its `computeCostNs`, else its modular multiplies times
 * `nsPerModularMultiply`, else 0.
 *
 * @example
 * ```ts
 * const ns = stepComputeNs(step, 0.4);
 * ```
 */
export function stepComputeNs(step: AccessStep, nsPerModularMultiply = 0.4): number {
  if (step.computeCostNs !== undefined) return step.computeCostNs;
  if (step.modularMultiplies !== undefined) return step.modularMultiplies * nsPerModularMultiply;
  return 0;
}

/**
 * Renumbers `steps` so that each step's `index` equals its position; used after reordering passes.
 *
 * @example
 * ```ts
 * const reordered = renumberSteps([steps[2], steps[0], steps[1]]);
 * ```
 */
export function renumberSteps(steps: readonly AccessStep[]): AccessStep[] {
  return steps.map((step, index) => ({ ...step, index }));
}
