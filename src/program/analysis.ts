/**
 * Analyses of an HE program: its peak live bytes, where plaintexts are last read, op counts, and its access
 * sequence — the objects it touches with their exact sizes and, per instruction, what it reads, writes and frees —
 * which is the program as the tiered runtime plans it.
 */
import { ParametersShape } from '../ckks/shape.ts';
import { HE_OPS, type HeOp } from './ops.ts';
import type { HeProgram } from './program.ts';

/**
 * Peak live bytes of a program by liveness (values are live from their definition to their `free`), and where.
 * Plaintexts are resident from the start, except those marked `encodeOnUse`, which count only during the
 * instruction that reads them. `plaintextBytes` is the size of all plaintexts encoded, `residentPlaintextBytes`
 * the part kept across the pass.
 *
 * @example
 * ```ts
 * const { peakBytes, peakInstruction, inputBytes } = programFootprint(program);
 * ```
 */
export function programFootprint(program: HeProgram): {
  peakBytes: number;
  peakInstruction: number;
  inputBytes: number;
  outputBytes: number;
  plaintextBytes: number;
  residentPlaintextBytes: number;
} {
  const size = new Map<number, number>();
  let live = 0;
  for (const input of program.inputs) {
    size.set(input.id, input.bytes);
    live += input.bytes;
  }
  const inputBytes = live;
  const plaintextBytes = program.plaintexts.reduce((s, p) => s + p.bytes, 0);
  const residentPlaintextBytes = program.plaintexts.reduce((s, p) => s + (p.encodeOnUse ? 0 : p.bytes), 0);
  live += residentPlaintextBytes;
  let peakBytes = live;
  let peakInstruction = -1;
  program.instructions.forEach((ins, i) => {
    if (ins.op === 'free') {
      for (const id of ins.args) {
        live -= size.get(id) ?? 0;
        size.delete(id);
      }
      return;
    }
    for (const id of ins.out) {
      if (!size.has(id)) {
        size.set(id, ins.bytes.out);
        live += ins.bytes.out;
      }
    }
    const pt = ins.plaintext === undefined ? undefined : program.plaintexts[ins.plaintext];
    const transient = pt?.encodeOnUse ? pt.bytes : 0;
    if (live + transient > peakBytes) {
      peakBytes = live + transient;
      peakInstruction = i;
    }
  });
  const outputBytes = program.outputs.reduce((s, o) => s + o.bytes, 0);
  return { peakBytes, peakInstruction, inputBytes, outputBytes, plaintextBytes, residentPlaintextBytes };
}

/**
 * For each plaintext, the index of the last instruction that reads it (−1 if none): where a server that encodes
 * `encodeOnUse` plaintexts on demand frees them. In latency packing every plaintext has exactly one reader.
 *
 * @example
 * ```ts
 * const last = plaintextLastUse(program);
 * program.instructions.forEach((ins, i) => { … if (ins.plaintext !== undefined && last[ins.plaintext] === i) pt.dispose(); });
 * ```
 */
export function plaintextLastUse(program: HeProgram): Int32Array {
  const last = new Int32Array(program.plaintexts.length).fill(-1);
  program.instructions.forEach((ins, i) => {
    if (ins.plaintext !== undefined && ins.plaintext >= 0 && ins.plaintext < last.length)
      last[ins.plaintext] = i;
  });
  return last;
}

/**
 * Object kinds in the access sequence (the names the tiered runtime uses).
 *
 * @example
 * ```ts
 * const kind: AccessObjectKind = 'relin-key';
 * ```
 */
export type AccessObjectKind =
  | 'input'
  | 'intermediate'
  | 'output'
  | 'plaintext'
  | 'relin-key'
  | 'rotation-key';

/**
 * The program as a sequence of object accesses, in the shape of the tiered runtime's `Program` (`src/runtime/
 * program.ts`): objects with exact sizes, and per instruction the ids read, written and freed. Object ids:
 * `ct:<id>` for ciphertext values, `pt:<id>` for plaintexts, `key:relin`, `key:galois:<element>`.
 *
 * @example
 * ```ts
 * const access = accessSequence(program);
 * for (const step of access.steps) console.log(step.op, step.reads, step.writes, step.frees);
 * ```
 */
export function accessSequence(program: HeProgram): {
  name: string;
  objects: { id: string; bytes: number; kind: AccessObjectKind; readOnly: boolean }[];
  steps: {
    index: number;
    op: string;
    layer?: string;
    reads: string[];
    writes: string[];
    frees?: string[];
    readBytes: number;
    writeBytes: number;
  }[];
} {
  const params = program.parameters;
  const objects: { id: string; bytes: number; kind: AccessObjectKind; readOnly: boolean }[] = [];
  const outputs = new Set(program.outputs.map((o) => o.id));
  const keyBytes = ParametersShape.of(params).switchingKeyBytes();
  if (program.relinearization)
    objects.push({ id: 'key:relin', bytes: keyBytes, kind: 'relin-key', readOnly: true });
  for (const g of program.galoisElements)
    objects.push({ id: `key:galois:${g}`, bytes: keyBytes, kind: 'rotation-key', readOnly: true });
  for (const pt of program.plaintexts)
    objects.push({ id: `pt:${pt.id}`, bytes: pt.bytes, kind: 'plaintext', readOnly: true });
  // An input read by a later in-place step would break readOnly; inputs are only ever read.
  for (const input of program.inputs)
    objects.push({ id: `ct:${input.id}`, bytes: input.bytes, kind: 'input', readOnly: true });
  for (const ins of program.instructions) {
    if (ins.op === 'free' || ins.op === 'mul_then_add') continue;
    for (const id of ins.out) {
      objects.push({
        id: `ct:${id}`,
        bytes: ins.bytes.out,
        kind: outputs.has(id) ? 'output' : 'intermediate',
        readOnly: false,
      });
    }
  }
  const steps: ReturnType<typeof accessSequence>['steps'] = [];
  for (const ins of program.instructions) {
    if (ins.op === 'free') {
      // The runtime attaches frees to steps: fold them into the previous step.
      const last = steps[steps.length - 1];
      const ids = ins.args.map((id) => `ct:${id}`);
      if (last) last.frees = [...(last.frees ?? []), ...ids];
      continue;
    }
    const reads = ins.args.map((id) => `ct:${id}`);
    if (ins.plaintext !== undefined) reads.push(`pt:${ins.plaintext}`);
    for (const key of ins.keys) reads.push(`key:${key}`);
    let readBytes = ins.bytes.args.reduce((a, b) => a + b, 0);
    if (ins.plaintext !== undefined) readBytes += program.plaintexts[ins.plaintext].bytes;
    readBytes += ins.keys.length * keyBytes;
    steps.push({
      index: steps.length,
      op: ins.op,
      layer: ins.layer,
      reads,
      writes: ins.out.map((id) => `ct:${id}`),
      readBytes,
      writeBytes: ins.out.length * ins.bytes.out,
    });
  }
  return { name: program.name, objects, steps };
}

/**
 * Counts of each op in a program.
 *
 * @example
 * ```ts
 * opCounts(program).relinearize; // relinearizations per pass
 * ```
 */
export function opCounts(program: HeProgram): Record<HeOp, number> {
  const counts = Object.fromEntries(HE_OPS.map((op) => [op, 0])) as Record<HeOp, number>;
  for (const ins of program.instructions) counts[ins.op]++;
  return counts;
}

/**
 * Throws InvalidArgumentError unless the argument looks like a program (for API entry points).
 *
 * @example
 * ```ts
 * assertProgram(program);
 * ```
 */
