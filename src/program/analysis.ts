/**
 * Analyses of an HE program: its peak live bytes, where plaintexts are last read, and op counts (its access
 * sequence, the program as the runtime plans it, is in `access.ts`).
 */
import { ParametersShape } from '../ckks/shape.ts';
import { HE_OPS, type HeOp, OPS } from './ops.ts';
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

/**
 * Modular multiplies of one pass of the program by the op table's cost model (a model, not a measurement): what
 * choosing between packings compares.
 *
 * @example
 * ```ts
 * const seconds = programModularMultiplies(program) * 0.6e-9;
 * ```
 */
export function programModularMultiplies(program: HeProgram): number {
  const shape = ParametersShape.of(program.parameters);
  let total = 0;
  for (const ins of program.instructions) if (ins.op !== 'free') total += OPS[ins.op].cost(shape, ins);
  return total;
}

/**
 * The level each Galois key of `program` must be made for: the highest level of a ciphertext it switches
 * (instructions switch keys at their operands' level). A key used only low in the chain is made over
 * Q_level ∪ P — the zoo MNIST CNN's 209 rotation keys take 13.2 GiB instead of 23.8 GiB at the top level
 * (`home infer`: key_bytes 14.31 GB with the relinearization key, which stays at the top: the first activation
 * uses it there).
 *
 * @example
 * ```ts
 * const keyLevels = programKeyLevels(program);
 * const evk = keygen.generateEvaluationKeys(sk, { rotations: program.rotations, keyLevels });
 * ```
 */
export function programKeyLevels(program: HeProgram): Map<number, number> {
  const levels = new Map<number, number>();
  for (const ins of program.instructions) {
    for (const key of ins.keys) {
      if (!key.startsWith('galois:')) continue;
      const g = Number(key.slice('galois:'.length));
      levels.set(g, Math.max(levels.get(g) ?? 0, ins.level));
    }
  }
  // A listed key no instruction uses (validation refuses those) would still be made: at the top.
  const top = ParametersShape.of(program.parameters).depth;
  for (const g of program.galoisElements) if (!levels.has(g)) levels.set(g, top);
  return levels;
}
