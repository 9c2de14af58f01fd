/**
 * The HE program: the contract between the compiler (`nn/compile/`) and the executors (the float simulator of
 * `simulate.ts`, the tiered runtime). An explicit list of CKKS instructions over numbered ciphertext values, with
 * the level, scale, degree and byte size of every operand and result, the evaluation keys each instruction needs,
 * the layer it belongs to, the parameters literal, how the client packs inputs and unpacks outputs, and the
 * constants it references. What each operation means is defined once, in `ops.ts`.
 *
 * Values are in SSA form: every id is written by exactly one instruction (or is an input), except the accumulator
 * of `mul_then_add`, which is updated in place (same size, same level and scale). `free` ends a value's life.
 * The constants (scalar weights, biases) live in a separate float64 blob referenced by index, so the JSON stays
 * small and the weights are stored bit-exactly.
 */
import type { BootstrappingParametersLiteral } from '../ckks/bootstrapping/parameters.ts';
import type { ParametersLiteral } from '../ckks/parameters.ts';
import { describe } from '../util/assert.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import type { HeOp } from './ops.ts';

export const PROGRAM_FORMAT = 'home-he-program';
/**
 * The version this code writes and reads. 5: a plaintext vector may be stored by palette: its distinct values among
 * the constants, a byte per slot (or per (slot, value) entry) in {@link HeProgram.paletteCodes}
 * ({@link PlaintextDescriptor.palette}). 4: `mul_matrix`, a block of a linear layer as one instruction, and
 * `mul_plain_then_add`, a plaintext product added in place. 3: a plaintext vector may be stored sparse, as (slot, value) pairs
 * ({@link PlaintextDescriptor.entries}). 2: a latency-packed ciphertext holds `batchSize` images, one per block
 * of `slots / batchSize` slots (version 1 held one image repeated over the slots).
 */
export const PROGRAM_VERSION = 5;

/**
 * One instruction. `level`, `scale` and `degree` describe the result(s); `bytes.args[i]` is the size of operand i
 * as it is read, `bytes.out` the size of each result.
 *
 * @example
 * ```ts
 * const step: HeInstruction = {
 *   op: 'mul_then_add', args: [3, 10], out: [10], level: 5, scale: 2 ** 60, degree: 1,
 *   bytes: { args: [917504, 917504], out: 917504 }, keys: [], layer: 'conv1', constant: 42, constantScale: 2 ** 30,
 * };
 * ```
 */
export interface HeInstruction {
  op: HeOp;
  /** Operand value ids. */
  args: number[];
  /** Result value ids (one for most ops, one per step for `rotate_hoisted`, none for `free`). */
  out: number[];
  level: number;
  scale: number;
  degree: number;
  bytes: { args: number[]; out: number };
  /** Evaluation keys used: `relin`, `galois:<element>`. */
  keys: string[];
  layer: string;
  /** Index into {@link HeProgram.constants} (mul_const, mul_then_add, add_const; mul_matrix: its first weight). */
  constant?: number;
  /** Scale the constant is encoded at (mul_const, mul_then_add, mul_matrix). */
  constantScale?: number;
  /** Results of a mul_matrix: the rows of its weight matrix (rows × args.length constants from `constant`). */
  rows?: number;
  /** Plaintext id (mul_plain, mul_plain_then_add, add_plain). */
  plaintext?: number;
  /** Rotation steps (rotate: one; rotate_hoisted: one per result). */
  steps?: number[];
  /** bootstrap: the bootstrapper's working set, bytes of kernel memory (`Bootstrapper.workingSetBytes`). */
  scratchBytes?: number;
}

/**
 * A ciphertext the client encrypts. Batch packing: slot s holds input element `element` of image s. Latency packing:
 * slot b·L + i (L = `slotElements.length`, the period) holds element `slotElements[i]` of image b of the pass
 * (−1: zero); `replicate` is set and L · batchSize = slots. With `owner: 'model'` it is an encrypted weight: the model
 * owner encrypts constants `offset … offset+length−1` (repeated over the slots) under the client's public key, the
 * server keeps it across images, and no instruction frees it.
 *
 * @example
 * ```ts
 * const input: InputDescriptor = { id: 0, level: 5, scale: 2 ** 29.9, bytes: 917504, element: 0 };
 * ```
 */
export interface InputDescriptor {
  id: number;
  level: number;
  scale: number;
  bytes: number;
  element?: number;
  slotElements?: number[];
  replicate?: boolean;
  owner?: 'data' | 'model';
  offset?: number;
  length?: number;
}

/**
 * A ciphertext the client decrypts: batch packing, slot s holds output element `element` of image s; latency
 * packing, output element j of image b is in slot b·L + `slotOfElement[j]` (L = slots / batchSize).
 *
 * @example
 * ```ts
 * const output: OutputDescriptor = { id: 812, level: 0, scale: 2 ** 29.9, degree: 1, bytes: 262144, element: 3 };
 * ```
 */
export interface OutputDescriptor {
  id: number;
  level: number;
  scale: number;
  degree: number;
  bytes: number;
  element?: number;
  slotOfElement?: number[];
}

/**
 * A plaintext weight vector the server encodes once: `length` values starting at `offset` of the constants blob,
 * repeated over all slots when `replicate` is set (latency packing keeps vectors periodic). With `encodeOnUse` the
 * server does not keep it encoded: it encodes it from the constants right before each instruction that reads it
 * and frees it after the last one of the pass ({@link plaintextLastUse}), trading encoding time for memory (the
 * compiler sets it when all plaintexts together would not fit in the server's memory). Ignoring the flag gives the
 * same results with more memory.
 *
 * @example
 * ```ts
 * const pt: PlaintextDescriptor = { id: 0, level: 4, scale: 2 ** 30, bytes: 393216, offset: 120, length: 8192 };
 * ```
 */
export interface PlaintextDescriptor {
  id: number;
  level: number;
  scale: number;
  bytes: number;
  offset: number;
  length: number;
  /**
   * Sparse storage: the constants at `offset` hold `entries` (slot, value) pairs, slots ascending below `length`,
   * and every other slot of the `length`-slot vector is zero. A latency diagonal of a layer whose output is spread
   * thin over the slots is mostly zeros (ten times fewer constants for a CIFAR-size CNN).
   */
  entries?: number;
  /**
   * Palette storage: the constants at `offset` hold the vector's `palette` distinct values (at most 256), and
   * {@link HeProgram.paletteCodes} from `codeOffset` says which one each slot takes: one byte per slot, or with
   * `entries` three per entry (its slot as a little-endian uint16, then its value's index in the palette). A
   * latency diagonal takes a handful of weights over thousands of slots, so a code byte instead of a float64
   * (16 bytes per sparse entry) keeps the program a sixth of its size: ResNet-56 fits where its float64 diagonals
   * (1.7 GB) would not.
   */
  palette?: number;
  /** Where the vector's codes start in {@link HeProgram.paletteCodes} (with `palette`). */
  codeOffset?: number;
  replicate?: boolean;
  encodeOnUse?: boolean;
}

/**
 * Per-layer summary for reports.
 *
 * @example
 * ```ts
 * const s: LayerSummary = { name: 'fc1', kind: 'dense', levels: 1, instructions: 84600 };
 * ```
 */
export interface LayerSummary {
  name: string;
  kind: string;
  /** Levels the layer consumed on its deepest path. */
  levels: number;
  instructions: number;
}

/**
 * A complete HE program.
 *
 * @example
 * ```ts
 * const { program } = compileModel(model, { mode: 'batch' });
 * console.log(program.instructions.length, program.rotations, programFootprint(program).peakBytes);
 * ```
 */
export interface HeProgram {
  format: typeof PROGRAM_FORMAT;
  version: number;
  name: string;
  parameters: ParametersLiteral;
  /**
   * The bootstrapping parameters of its `bootstrap` instructions (their `params` are `parameters`); absent when
   * it has none. The client makes the bootstrapping keys from them.
   */
  bootstrapping?: BootstrappingParametersLiteral;
  /** Ring degree and slots of `parameters`, repeated so readers need not build them. */
  logN: number;
  slots: number;
  /** Multiplicative depth used (levels from the inputs' level to the lowest value). */
  depth: number;
  packing: 'batch' | 'latency';
  /** Images per pass (batch: up to `slots`, one per slot; latency: `slots / period`, one per block of slots). */
  batchSize: number;
  /** Per-image input shape (model layout, channels first) and its ONNX layout permutation, if any. */
  inputShape: number[];
  inputPermutation?: number[];
  outputShape: number[];
  /**
   * Input values the program was sized for (magnitudes, approximation intervals): the client rejects values
   * outside it, since they could overflow the modulus or leave a polynomial's interval.
   */
  inputRange: [number, number];
  inputs: InputDescriptor[];
  outputs: OutputDescriptor[];
  plaintexts: PlaintextDescriptor[];
  /** Scalar constants and plaintext vectors (float64; serialized as a separate little-endian blob). */
  constants: Float64Array;
  /** The codes of plaintext vectors stored by palette ({@link PlaintextDescriptor.palette}; a third blob). */
  paletteCodes: Uint8Array;
  /** Exactly the rotation steps the instructions use (sorted) and their Galois elements. */
  rotations: number[];
  galoisElements: number[];
  relinearization: boolean;
  instructions: HeInstruction[];
  layers: LayerSummary[];
}

/**
 * The weights of a `mul_matrix` instruction (its rows · operands constants, row by row, a view of the program's
 * constants); undefined for any other instruction.
 *
 * @example
 * ```ts
 * const weights = instructionWeights(program, ins); // Float64Array of ins.rows × ins.args.length
 * ```
 */
export function instructionWeights(program: HeProgram, ins: HeInstruction): Float64Array | undefined {
  if (ins.rows === undefined || ins.constant === undefined) return undefined;
  return program.constants.subarray(ins.constant, ins.constant + ins.rows * ins.args.length);
}

/**
 * Throws InvalidArgumentError unless the argument looks like a program (for API entry points).
 *
 * @example
 * ```ts
 * assertProgram(program);
 * ```
 */ export function assertProgram(program: unknown): asserts program is HeProgram {
  if (
    typeof program !== 'object' ||
    program === null ||
    (program as { format?: unknown }).format !== PROGRAM_FORMAT
  ) {
    throw new InvalidArgumentError(
      `program = ${describe(program)}: expected an HE program from compileModel`,
    );
  }
}
