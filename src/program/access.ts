/**
 * The access sequence: an HE program as the tiered runtime plans it — the objects it touches (ciphertexts,
 * plaintexts, keys) with their exact sizes, and per instruction the objects it reads, writes and frees, with its
 * cost from the op table. It is a view of an {@link HeProgram}, not a second program type: the runtime's planner,
 * policies and executor work on it, and every step names the instruction it runs.
 */
import { ParametersShape } from '../ckks/shape.ts';
import { type HeOp, type OpDefinition, OPS } from './ops.ts';
import type { HeProgram } from './program.ts';
import { programKeyLevels } from './analysis.ts';

/**
 * The name of one object the runtime manages: `ct:<id>` for a ciphertext value, `pt:<id>` for a plaintext,
 * `key:relin`, `key:galois:<element>` (prefixed per model when several programs share a run).
 *
 * @example
 * ```ts
 * const id: ObjectId = 'key:galois:5';
 * ```
 */
export type ObjectId = string;

/**
 * What an object is. Keys and plaintext weights are read-only model state; intermediates are produced and consumed
 * during a run; outputs must survive the run.
 *
 * @example
 * ```ts
 * const kind: ObjectKind = 'rotation-key';
 * ```
 */
export type ObjectKind =
  | 'ciphertext'
  | 'plaintext'
  | 'relin-key'
  | 'rotation-key'
  | 'intermediate'
  | 'input'
  | 'output';

/**
 * One object with its exact byte size.
 *
 * @example
 * ```ts
 * const key: ObjectInfo = { id: 'key:relin', bytes: 11_010_048, kind: 'relin-key', readOnly: true };
 * ```
 */
export interface ObjectInfo {
  id: ObjectId;
  /** Exact byte length of the object's payload. */
  bytes: number;
  kind: ObjectKind;
  /** Never written by a step; its copy in a slow tier stays valid, so evicting it never costs a write. */
  readOnly: boolean;
}

/**
 * What a step does: an HE operation of the op table, or `send`, a step of a server's run that hands values back to
 * whoever asked for them (it reads them and computes nothing).
 *
 * @example
 * ```ts
 * const op: AccessOp = 'send';
 * ```
 */
export type AccessOp = HeOp | 'send';

/**
 * One instruction as the runtime sees it: the objects it reads and writes (a write replaces the whole object) and,
 * in `frees`, those whose contents are dead after it.
 *
 * @example
 * ```ts
 * const step: AccessStep = { index: 0, op: 'rotate', layer: 'conv1', reads: ['ct:3', 'key:galois:5'], writes: ['ct:9'] };
 * ```
 */
export interface AccessStep {
  /** Position in the sequence (0-based); equal to the array index. */
  index: number;
  op: AccessOp;
  /** The network layer this step belongs to, for per-layer reports. */
  layer?: string;
  reads: ObjectId[];
  writes: ObjectId[];
  frees?: ObjectId[];
  /** The instruction of the HE program it runs (absent in hand-made sequences of tests and synthetic workloads). */
  instruction?: number;
  /** Modular multiplications the step performs ({@link OpDefinition.cost}); the planner times steps with it. */
  modularMultiplies?: number;
  /** Compute time of the step on the reference machine, in nanoseconds (overrides the modular multiplies). */
  computeCostNs?: number;
  /**
   * Bytes of compute-level memory the step allocates for itself while it runs, beyond its operands
   * ({@link OpDefinition.scratch}: key switching's digits and workspace; a plaintext encoded on use); the planner
   * keeps them free.
   */
  scratchBytes?: number;
}

/**
 * An access sequence: objects, and steps in execution order.
 *
 * @example
 * ```ts
 * const access: AccessProgram = accessSequence(program);
 * ```
 */
export interface AccessProgram {
  name: string;
  objects: ObjectInfo[];
  steps: AccessStep[];
}

/**
 * Options of {@link accessSequence}.
 *
 * @example
 * ```ts
 * const options: AccessSequenceOptions = { transientPlaintexts: (i) => program.plaintexts[i].encodeOnUse === true };
 * ```
 */
export interface AccessSequenceOptions {
  /**
   * Plaintexts that are not objects of the sequence: encoded inside the step that reads them and dropped after their
   * last reader (a server that encodes on use), so they neither occupy a tier nor appear among the reads.
   */
  transientPlaintexts?: (index: number) => boolean;
}

/**
 * The access sequence of `program`: its keys, plaintexts, inputs and results as objects, and one step per
 * instruction (each `free` folded into the step before it), costed by the op table at the program's parameters.
 *
 * @example
 * ```ts
 * const access = accessSequence(program);
 * for (const step of access.steps) console.log(step.op, step.reads, step.writes, step.frees);
 * ```
 */
export function accessSequence(program: HeProgram, options: AccessSequenceOptions = {}): AccessProgram {
  const shape = ParametersShape.of(program.parameters);
  const transient = options.transientPlaintexts ?? (() => false);
  const objects: ObjectInfo[] = [];
  const outputs = new Set(program.outputs.map((o) => o.id));
  const keyBytes = shape.switchingKeyBytes();
  if (program.relinearization)
    objects.push({ id: 'key:relin', bytes: keyBytes, kind: 'relin-key', readOnly: true });
  const keyLevels = programKeyLevels(program);
  for (const g of program.galoisElements) {
    const bytes = shape.switchingKeyBytes(keyLevels.get(g));
    objects.push({ id: `key:galois:${g}`, bytes, kind: 'rotation-key', readOnly: true });
  }
  for (const pt of program.plaintexts) {
    if (!transient(pt.id))
      objects.push({ id: `pt:${pt.id}`, bytes: pt.bytes, kind: 'plaintext', readOnly: true });
  }
  // Inputs are only ever read (in-place steps write intermediates), so their slow-tier copies stay valid.
  for (const input of program.inputs)
    objects.push({ id: `ct:${input.id}`, bytes: input.bytes, kind: 'input', readOnly: true });
  for (const ins of program.instructions) {
    if (ins.op === 'free' || OPS[ins.op].inPlace) continue;
    for (const id of ins.out) {
      objects.push({
        id: `ct:${id}`,
        bytes: ins.bytes.out,
        kind: outputs.has(id) ? 'output' : 'intermediate',
        readOnly: false,
      });
    }
  }
  const steps: AccessStep[] = [];
  // Object ids by value id, made once (a template string per operand per step adds up over 10^5 steps).
  const ctIds: string[] = [];
  const ct = (id: number) => {
    ctIds[id] ??= `ct:${id}`;
    return ctIds[id];
  };
  program.instructions.forEach((ins, instruction) => {
    if (ins.op === 'free') {
      const last = steps[steps.length - 1];
      if (last) last.frees = [...(last.frees ?? []), ...ins.args.map(ct)];
      return;
    }
    // Built at their exact size (a pushed-to array keeps room for 16 more entries, over 10^5 steps).
    const reads = [
      ...ins.args.map(ct),
      ...(ins.plaintext !== undefined && !transient(ins.plaintext) ? [`pt:${ins.plaintext}`] : []),
      ...ins.keys.map((key) => `key:${key}`),
    ];
    steps.push({
      index: steps.length,
      op: ins.op,
      layer: ins.layer,
      reads,
      writes: ins.out.map(ct),
      instruction,
      modularMultiplies: OPS[ins.op].cost(shape, ins),
      // A plaintext encoded on use lives in the same memory while its reader runs.
      scratchBytes:
        OPS[ins.op].scratch(shape, ins) +
        (ins.plaintext !== undefined && transient(ins.plaintext)
          ? (program.plaintexts[ins.plaintext]?.bytes ?? 0)
          : 0),
    });
  });
  return { name: program.name, objects, steps };
}
