/**
 * The float64 simulator of an HE program: the program's own instructions, packing and polynomial approximations on
 * plain slot vectors, without encryption or noise — what the encrypted run computes, up to CKKS noise. Each
 * instruction means what `OPS[op].simulate` says.
 */
import { Prng } from '../ring/prng.ts';
import { check } from '../util/assert.ts';
import { MismatchError } from '../util/errors.ts';
import { OPS } from './ops.ts';
import {
  checkImages,
  outputSize,
  packBatch,
  packLatency,
  passes,
  plaintextSlots,
  unpack,
  weightSlots,
} from './packing.ts';
import { type HeInstruction, type HeProgram, instructionWeights } from './program.ts';

/**
 * Options of {@link simulateProgram}.
 *
 * @example
 * ```ts
 * const options: SimulateProgramOptions = { bootstrapNoise: { bits: 20 } };
 * ```
 */
export interface SimulateProgramOptions {
  /**
   * The bootstrap noise model: each bootstrap adds to every slot an error uniform in ±bound·2^-bits (bits default
   * 20: `home bench bootstrap` measures 21.9 bits over uniform inputs at logN 16), from a deterministic stream
   * (`seed`, 32 bytes, default zeros). Absent: bootstraps are exact.
   */
  readonly bootstrapNoise?: { readonly bits?: number; readonly seed?: Uint8Array };
  /** Called after each pass with the images simulated so far (a long simulation reports progress with it). */
  readonly onPass?: (imagesDone: number, count: number) => void;
  /**
   * Most bytes of plaintext slot vectors kept expanded across passes (default 1 GiB). A program whose plaintexts
   * take more has each expanded when an instruction reads it, into one reused vector: ResNet-20's 18,575 would
   * take 4.9 GB expanded, and the simulation's RSS reached 5.6 GB with them.
   */
  readonly plaintextCacheBytes?: number;
}

/**
 * Runs a program on float64 slot vectors: exactly the instructions, packing and polynomials of the encrypted run,
 * without encryption or noise. Returns `count × outputs` values.
 *
 * @throws InvalidArgumentError for images of the wrong size or range.
 * @example
 * ```ts
 * const logits = simulateProgram(program, images, 256);
 * ```
 */
export function simulateProgram(
  program: HeProgram,
  images: ArrayLike<number>,
  count: number,
  options: SimulateProgramOptions = {},
): Float64Array {
  checkImages(program, images, count);
  const noise = options.bootstrapNoise;
  let bootstrapNoise: ((values: Float64Array, bound: number) => void) | undefined;
  if (noise) {
    const bits = noise.bits ?? 20;
    check(
      Number.isFinite(bits) && bits > 0,
      () => `bootstrapNoise.bits = ${bits}: expected a positive number`,
    );
    const prng = Prng.fromSeed(noise.seed ?? new Uint8Array(32));
    bootstrapNoise = (values, bound) => {
      const size = bound * 2 ** -bits;
      for (let i = 0; i < values.length; i++) values[i] += size * (2 * prng.nextDouble() - 1);
    };
  }
  const logits = new Float64Array(count * outputSize(program));
  // Rotations mix slots: those programs need the full slot vector; batch programs only the images present.
  const full = program.packing === 'latency' || program.rotations.length > 0;
  const cacheBytes = options.plaintextCacheBytes ?? 2 ** 30;
  const expanded =
    program.plaintexts.length * program.slots * 8 <= cacheBytes
      ? program.plaintexts.map((p) => plaintextSlots(program, p))
      : undefined;
  const onUse = new Float64Array(expanded ? 0 : program.slots);
  // An op reads its plaintext within the instruction and keeps no reference to it (ops.ts), so one vector serves.
  const plaintext = (index: number) =>
    expanded ? expanded[index] : plaintextSlots(program, program.plaintexts[index], onUse);
  for (const pass of passes(program, count)) {
    const packed =
      program.packing === 'batch'
        ? packBatch(program, images, pass.first, pass.count)
        : packLatency(program, images, pass.first, pass.count);
    const length = full ? program.slots : pass.count;
    const values = new Map<number, Float64Array>();
    // Vectors of freed values, reused for results (only those of the pass's slot-vector length: weights and
    // inputs may be longer views).
    const spare: Float64Array[] = [];
    const vector = (n: number) => (n === length && spare.length > 0 ? spare.pop()! : new Float64Array(n));
    for (const w of program.inputs) if (w.owner === 'model') values.set(w.id, weightSlots(program, w));
    for (const [id, v] of packed) {
      const x = new Float64Array(length);
      x.set(v.subarray(0, length));
      values.set(id, x);
    }
    for (const ins of program.instructions)
      simulateInstruction(program, ins, values, plaintext, { spare, length, vector }, bootstrapNoise);
    const decoded = new Map<number, Float64Array>();
    for (const output of program.outputs) decoded.set(output.id, aliveValue(values, output.id));
    unpack(program, decoded, logits, pass.first, pass.count);
    options.onPass?.(pass.first + pass.count, count);
  }
  return logits;
}

function aliveValue(values: ReadonlyMap<number, Float64Array>, id: number): Float64Array {
  const v = values.get(id);
  if (!v) throw new MismatchError(`simulator: value ${id} is not alive`);
  return v;
}

/** One instruction on the slot vectors in `values` (results replace or join them; `free` deletes). */
function simulateInstruction(
  program: HeProgram,
  ins: HeInstruction,
  values: Map<number, Float64Array>,
  plaintext: (index: number) => Float64Array,
  recycled: { spare: Float64Array[]; length: number; vector: (length: number) => Float64Array },
  bootstrapNoise: ((values: Float64Array, bound: number) => void) | undefined,
): void {
  const { spare, length: spareLength } = recycled;
  if (ins.op === 'free') {
    for (const id of ins.args) {
      const v = values.get(id);
      values.delete(id);
      if (v && v.length === spareLength) spare.push(v);
    }
    return;
  }
  const results = OPS[ins.op].simulate(
    ins.args.map((id) => aliveValue(values, id)),
    {
      constant: ins.constant === undefined ? 0 : program.constants[ins.constant],
      plaintext: ins.plaintext === undefined ? undefined : plaintext(ins.plaintext),
      weights: instructionWeights(program, ins),
      fields: ins,
      vector: recycled.vector,
      bootstrapNoise,
    },
  );
  results.forEach((v, k) => {
    values.set(ins.out[k], v);
  });
}
