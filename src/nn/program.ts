/**
 * The HE program: the contract between the compiler (`compile/`) and the executors (`executor.ts`, the tiered
 * runtime). An explicit list of CKKS instructions over numbered ciphertext values, with the level, scale, degree
 * and byte size of every operand and result, the evaluation keys each instruction needs, the layer it belongs to,
 * the parameters literal, how the client packs inputs and unpacks outputs, and the constants it references.
 *
 * Values are in SSA form: every id is written by exactly one instruction (or is an input), except the accumulator
 * of `mul_then_add`, which is updated in place (same size, same level and scale). `free` ends a value's life.
 * The constants (scalar weights, biases) live in a separate float64 blob referenced by index, so the JSON stays
 * small and the weights are stored bit-exactly.
 */
import type { ParametersLiteral } from '../ckks/parameters.ts';
import { describe } from '../util/assert.ts';
import { FormatError, InvalidArgumentError } from '../util/errors.ts';

/** The `format` field of every serialized program. */
export const PROGRAM_FORMAT = 'home-he-program';
/** The version this code writes and reads. */
export const PROGRAM_VERSION = 1;

/**
 * Instruction operations. Semantics on values x, y (ids in `args`), constant c = `constants[constant]`:
 * - `mul_const`: x · c, c encoded at `constantScale` (scale multiplies); `mul_then_add`: args [x, acc]: acc += x · c
 *   in place (result id = acc); `mul_plain`: x · plaintext `plaintext`; `mul_ct`: x · y (degree 2); `square`: x²;
 * - `add`, `sub`: x ± y (equal scales); `add_const`: x + c (encoded at x's scale); `add_plain`: x + plaintext
 *   `plaintext` (encoded at x's scale and level);
 * - `relinearize` (degree 2 → 1), `rescale` (level − 1, scale / q_level), `drop_level` (to `level`),
 *   `match_scale` (to `level` and `scale` exactly, through one rescale);
 * - `rotate`: slots rotated left by `steps[0]`; `rotate_hoisted`: one result per entry of `steps`;
 * - `free`: the values in `args` are dead.
 *
 * @example
 * ```ts
 * const op: HeOp = 'mul_then_add';
 * ```
 */
export type HeOp =
  | 'mul_const'
  | 'mul_then_add'
  | 'mul_plain'
  | 'mul_ct'
  | 'square'
  | 'add'
  | 'sub'
  | 'add_const'
  | 'add_plain'
  | 'relinearize'
  | 'rescale'
  | 'drop_level'
  | 'match_scale'
  | 'rotate'
  | 'rotate_hoisted'
  | 'free';

/** Every {@link HeOp}, in a fixed order (its index is the op's compact code). */
export const HE_OPS: readonly HeOp[] = Object.freeze([
  'mul_const',
  'mul_then_add',
  'mul_plain',
  'mul_ct',
  'square',
  'add',
  'sub',
  'add_const',
  'add_plain',
  'relinearize',
  'rescale',
  'drop_level',
  'match_scale',
  'rotate',
  'rotate_hoisted',
  'free',
]);

/** How many value operands each op reads (`free` reads any number ≥ 1). */
const ARITY: Record<HeOp, number> = {
  mul_const: 1,
  mul_then_add: 2,
  mul_plain: 1,
  mul_ct: 2,
  square: 1,
  add: 2,
  sub: 2,
  add_const: 1,
  add_plain: 1,
  relinearize: 1,
  rescale: 1,
  drop_level: 1,
  match_scale: 1,
  rotate: 1,
  rotate_hoisted: 1,
  free: -1,
};

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
  /** Index into {@link HeProgram.constants} (mul_const, mul_then_add, add_const). */
  constant?: number;
  /** Scale the constant is encoded at (mul_const, mul_then_add). */
  constantScale?: number;
  /** Plaintext id (mul_plain, add_plain). */
  plaintext?: number;
  /** Rotation steps (rotate: one; rotate_hoisted: one per result). */
  steps?: number[];
}

/**
 * A ciphertext the client encrypts. Batch packing: slot s holds input element `element` of image s. Latency packing:
 * slot i holds element `slotElements[i]` of the one image (−1: zero), the vector repeated every
 * `slotElements.length` slots when `replicate` is set. With `owner: 'model'` it is an encrypted weight: the model
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
 * packing, output element j is in slot `slotOfElement[j]`.
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
  /** Ring degree and slots of `parameters`, repeated so readers need not build them. */
  logN: number;
  slots: number;
  /** Multiplicative depth used (levels from the inputs' level to the lowest value). */
  depth: number;
  packing: 'batch' | 'latency';
  /** Images per pass (batch: up to `slots`; latency: 1). */
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
  /** Exactly the rotation steps the instructions use (sorted) and their Galois elements. */
  rotations: number[];
  galoisElements: number[];
  relinearization: boolean;
  instructions: HeInstruction[];
  layers: LayerSummary[];
}

// -----------------------------------------------------------------------------------------------------------
// Serialization

/**
 * Serializes a program: versioned JSON plus the constants as a little-endian float64 blob.
 *
 * @example
 * ```ts
 * const { json, blob } = serializeProgram(program);
 * const again = deserializeProgram(json, blob);
 * ```
 */
export function serializeProgram(program: HeProgram): { json: string; blob: Uint8Array } {
  const { constants, ...rest } = program;
  const json = JSON.stringify({ ...rest, constantCount: constants.length });
  const blob = new Uint8Array(constants.length * 8);
  const view = new DataView(blob.buffer);
  for (let i = 0; i < constants.length; i++) view.setFloat64(i * 8, constants[i], true);
  return { json, blob };
}

const MAGIC = [0x48, 0x45, 0x50, 0x31]; // "HEP1"

/**
 * One file for both parts: magic `HEP1`, the JSON length (uint32 LE), the UTF-8 JSON, then the blob.
 *
 * @example
 * ```ts
 * writeFileSync('model.hep', encodeProgram(program));
 * const program = decodeProgram(readFileSync('model.hep'));
 * ```
 */
export function encodeProgram(program: HeProgram): Uint8Array {
  const { json, blob } = serializeProgram(program);
  const text = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + text.length + blob.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(4, text.length, true);
  out.set(text, 8);
  out.set(blob, 8 + text.length);
  return out;
}

/**
 * Reads the single-file form written by {@link encodeProgram}, validating everything.
 *
 * @throws FormatError for a bad magic, truncation or an invalid program.
 * @example
 * ```ts
 * const program = decodeProgram(bytes);
 * ```
 */
export function decodeProgram(bytes: Uint8Array): HeProgram {
  if (!(bytes instanceof Uint8Array) || bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new FormatError('HE program file: expected the magic "HEP1" at offset 0');
  }
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  if (8 + length > bytes.length) {
    throw new FormatError(`HE program file: JSON of ${length} bytes but only ${bytes.length - 8} follow`);
  }
  let json: string;
  try {
    json = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + length));
  } catch {
    throw new FormatError('HE program file: the JSON part is not valid UTF-8');
  }
  return deserializeProgram(json, bytes.subarray(8 + length));
}

/**
 * Parses and validates a serialized program (see {@link validateProgram}).
 *
 * @throws FormatError naming the first field that is wrong.
 * @example
 * ```ts
 * const program = deserializeProgram(json, blob);
 * ```
 */
export function deserializeProgram(json: string, blob: Uint8Array): HeProgram {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new FormatError(`HE program: invalid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new FormatError(`HE program: expected a JSON object, got ${describe(raw)}`);
  }
  const record = raw as Record<string, unknown>;
  const count = record.constantCount;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
    throw new FormatError(`HE program: constantCount = ${describe(count)}: expected an integer ≥ 0`);
  }
  if (!(blob instanceof Uint8Array) || blob.length !== count * 8) {
    throw new FormatError(
      `HE program: constants blob of ${describe(blob)} ${blob?.length ?? 0} bytes: expected ${count} × 8 = ${count * 8}`,
    );
  }
  const constants = new Float64Array(count);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let i = 0; i < count; i++) constants[i] = view.getFloat64(i * 8, true);
  const { constantCount: _, ...rest } = record;
  const program = { ...rest, constants } as unknown as HeProgram;
  validateProgram(program);
  return program;
}

function fail(message: string): never {
  throw new FormatError(`HE program: ${message}`);
}

function isInt(v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
}

function isPositive(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

function intArray(v: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number[] {
  if (!Array.isArray(v)) fail(`${what} = ${describe(v)}: expected an array of integers`);
  for (let i = 0; i < v.length; i++) {
    if (!isInt(v[i], min, max))
      fail(`${what}[${i}] = ${describe(v[i])}: expected an integer in [${min}, ${max}]`);
  }
  return v as number[];
}

/** Limbs of a ciphertext at `level` for a literal, without building the parameters. */
function limbs(p: ParametersLiteral, level: number): number {
  const ppl = p.primesPerLevel ?? 1;
  const base = p.basePrimes ?? (ppl === 1 ? 2 : 3);
  return base + level * ppl;
}

/**
 * Bytes of a ciphertext of the given degree at `level` under the parameters literal (limbs only).
 *
 * @example
 * ```ts
 * ciphertextBytesFor({ logN: 14, depth: 5 }, 5, 1); // 2 · 7 limbs · 16384 · 4 = 917504
 * ```
 */
export function ciphertextBytesFor(p: ParametersLiteral, level: number, degree: number): number {
  return (degree + 1) * limbs(p, level) * 2 ** p.logN * 4;
}

/**
 * Checks a program's structure and consistency: known ops with the right operand counts, every id written once
 * (inputs included) and read only while alive, levels in [0, depth], positive finite scales, byte sizes that
 * match the parameters, constant, plaintext and key references that exist, rotation keys listed exactly.
 *
 * @throws FormatError naming the first offending field or instruction.
 * @example
 * ```ts
 * validateProgram(program);
 * ```
 */
export function validateProgram(program: HeProgram): void {
  if (typeof program !== 'object' || program === null) fail(`expected an object, got ${describe(program)}`);
  if (program.format !== PROGRAM_FORMAT)
    fail(`format = ${describe(program.format)}: expected "${PROGRAM_FORMAT}"`);
  if (program.version !== PROGRAM_VERSION)
    fail(`version = ${describe(program.version)}: this reader supports version ${PROGRAM_VERSION}`);
  if (typeof program.name !== 'string') fail(`name = ${describe(program.name)}: expected a string`);
  const p = program.parameters;
  if (typeof p !== 'object' || p === null) fail(`parameters = ${describe(p)}: expected a parameters literal`);
  if (!isInt(p.logN, 10, 17)) fail(`parameters.logN = ${describe(p.logN)}: expected an integer in [10, 17]`);
  if (!isInt(p.depth, 0, 200))
    fail(`parameters.depth = ${describe(p.depth)}: expected an integer in [0, 200]`);
  if (p.primesPerLevel !== undefined && p.primesPerLevel !== 1 && p.primesPerLevel !== 2)
    fail(`parameters.primesPerLevel = ${describe(p.primesPerLevel)}: expected 1 or 2`);
  if (p.basePrimes !== undefined && !isInt(p.basePrimes, 1, 8))
    fail(`parameters.basePrimes = ${describe(p.basePrimes)}: expected an integer in [1, 8]`);
  if (program.logN !== p.logN) fail(`logN = ${describe(program.logN)}: expected parameters.logN = ${p.logN}`);
  if (program.slots !== 2 ** (p.logN - 1))
    fail(`slots = ${describe(program.slots)}: expected ${2 ** (p.logN - 1)}`);
  if (!isInt(program.depth, 0, p.depth)) fail(`depth = ${describe(program.depth)}: expected 0 … ${p.depth}`);
  if (program.packing !== 'batch' && program.packing !== 'latency')
    fail(`packing = ${describe(program.packing)}: expected "batch" or "latency"`);
  if (!isInt(program.batchSize, 1, program.slots))
    fail(`batchSize = ${describe(program.batchSize)}: expected an integer in [1, ${program.slots}]`);
  intArray(program.inputShape, 'inputShape', 1);
  intArray(program.outputShape, 'outputShape', 1);
  const inSize = program.inputShape.reduce((a, b) => a * b, 1);
  const outSize = program.outputShape.reduce((a, b) => a * b, 1);
  if (program.inputPermutation !== undefined) {
    intArray(program.inputPermutation, 'inputPermutation', 0, inSize - 1);
    if (program.inputPermutation.length !== inSize)
      fail(`inputPermutation has ${program.inputPermutation.length} entries: expected ${inSize}`);
  }
  const range = program.inputRange;
  if (
    !Array.isArray(range) ||
    range.length !== 2 ||
    !range.every((v) => typeof v === 'number' && Number.isFinite(v)) ||
    range[0] > range[1]
  )
    fail(`inputRange = ${describe(range)}: expected [min, max] with finite min ≤ max`);
  if (!(program.constants instanceof Float64Array)) fail('constants: expected a Float64Array');
  const constantCount = program.constants.length;
  if (typeof program.relinearization !== 'boolean')
    fail(`relinearization = ${describe(program.relinearization)}: expected a boolean`);
  const rotations = intArray(program.rotations, 'rotations', -(program.slots - 1), program.slots - 1);
  const galois = intArray(program.galoisElements, 'galoisElements', 1, 2 ** (p.logN + 1) - 1);
  if (galois.length !== rotations.length)
    fail(`galoisElements has ${galois.length} entries: expected one per rotation (${rotations.length})`);
  if (!Array.isArray(program.layers)) fail('layers: expected an array');
  if (!Array.isArray(program.inputs) || program.inputs.length === 0)
    fail('inputs: expected a non-empty array');
  if (!Array.isArray(program.outputs) || program.outputs.length === 0)
    fail('outputs: expected a non-empty array');
  if (!Array.isArray(program.plaintexts)) fail('plaintexts: expected an array');
  if (!Array.isArray(program.instructions)) fail('instructions: expected an array');

  const checkLevelScale = (where: string, level: unknown, scale: unknown) => {
    if (!isInt(level, 0, p.depth))
      fail(`${where}.level = ${describe(level)}: expected an integer in [0, ${p.depth}]`);
    if (!isPositive(scale)) fail(`${where}.scale = ${describe(scale)}: expected a positive finite number`);
  };
  // alive: id → bytes of the value now; written: every id ever defined.
  const alive = new Map<number, number>();
  const written = new Set<number>();
  const define = (where: string, id: unknown, bytes: number) => {
    if (!isInt(id)) fail(`${where} id = ${describe(id)}: expected an integer ≥ 0`);
    if (written.has(id))
      fail(`${where} writes value ${id}, which is already defined (values are written once)`);
    written.add(id);
    alive.set(id, bytes);
  };
  program.inputs.forEach((input, i) => {
    const where = `inputs[${i}]`;
    if (typeof input !== 'object' || input === null) fail(`${where}: expected an object`);
    checkLevelScale(where, input.level, input.scale);
    const expected = ciphertextBytesFor(p, input.level, 1);
    if (input.bytes !== expected) fail(`${where}.bytes = ${describe(input.bytes)}: expected ${expected}`);
    if (input.owner !== undefined && input.owner !== 'data' && input.owner !== 'model')
      fail(`${where}.owner = ${describe(input.owner)}: expected "data" or "model"`);
    if (input.owner === 'model') {
      if (
        !isInt(input.length, 1, program.slots) ||
        !isInt(input.offset, 0) ||
        input.offset + input.length > constantCount
      )
        fail(
          `${where}: offset ${describe(input.offset)} + length ${describe(input.length)} outside the constants`,
        );
    } else if (program.packing === 'batch') {
      if (!isInt(input.element, 0, inSize - 1))
        fail(`${where}.element = ${describe(input.element)}: expected an integer in [0, ${inSize - 1}]`);
    } else {
      const slots = intArray(input.slotElements, `${where}.slotElements`, -1, inSize - 1);
      if (slots.length > program.slots) fail(`${where}.slotElements: more than ${program.slots} slots`);
    }
    define(where, input.id, input.bytes);
  });
  program.plaintexts.forEach((pt, i) => {
    const where = `plaintexts[${i}]`;
    if (typeof pt !== 'object' || pt === null) fail(`${where}: expected an object`);
    if (!isInt(pt.id)) fail(`${where}.id = ${describe(pt.id)}: expected an integer ≥ 0`);
    if (pt.id !== i) fail(`${where}.id = ${pt.id}: expected ${i}`);
    checkLevelScale(where, pt.level, pt.scale);
    if (!isInt(pt.length, 1, program.slots) || !isInt(pt.offset, 0) || pt.offset + pt.length > constantCount)
      fail(
        `${where}: offset ${describe(pt.offset)} + length ${describe(pt.length)} outside the ${constantCount} constants`,
      );
    if (pt.encodeOnUse !== undefined && typeof pt.encodeOnUse !== 'boolean')
      fail(`${where}.encodeOnUse = ${describe(pt.encodeOnUse)}: expected true or false`);
    if (pt.bytes !== limbs(p, pt.level) * 2 ** p.logN * 4)
      fail(`${where}.bytes = ${describe(pt.bytes)}: expected ${limbs(p, pt.level) * 2 ** p.logN * 4}`);
  });
  const modelInputs = new Set(program.inputs.filter((i) => i.owner === 'model').map((i) => i.id));
  const usedSteps = new Set<number>();
  let usesRelin = false;
  const galoisOf = new Map<number, number>(rotations.map((r, i) => [r, galois[i]]));
  program.instructions.forEach((ins, i) => {
    const where = `instructions[${i}]`;
    if (typeof ins !== 'object' || ins === null) fail(`${where}: expected an object`);
    if (!HE_OPS.includes(ins.op))
      fail(`${where}.op = ${describe(ins.op)}: expected one of ${HE_OPS.join(', ')}`);
    const args = intArray(ins.args, `${where}.args`);
    const out = intArray(ins.out, `${where}.out`);
    if (ins.op === 'free') {
      if (args.length === 0) fail(`${where}: free without operands`);
      for (const id of args) {
        if (modelInputs.has(id))
          fail(`${where} frees encrypted weight ${id}, which the server keeps across images`);
        if (!alive.has(id)) fail(`${where} frees value ${id}, which is not alive`);
        alive.delete(id);
      }
      return;
    }
    if (args.length !== ARITY[ins.op])
      fail(`${where}: ${ins.op} with ${args.length} operands: expected ${ARITY[ins.op]}`);
    if (typeof ins.layer !== 'string') fail(`${where}.layer = ${describe(ins.layer)}: expected a string`);
    checkLevelScale(where, ins.level, ins.scale);
    if (ins.degree !== 1 && ins.degree !== 2)
      fail(`${where}.degree = ${describe(ins.degree)}: expected 1 or 2`);
    if (typeof ins.bytes !== 'object' || ins.bytes === null) fail(`${where}.bytes: expected { args, out }`);
    const argBytes = intArray(ins.bytes.args, `${where}.bytes.args`, 1);
    if (argBytes.length !== args.length) fail(`${where}.bytes.args: expected ${args.length} entries`);
    args.forEach((id, k) => {
      if (!alive.has(id))
        fail(`${where} reads value ${id}, which is ${written.has(id) ? 'freed' : 'undefined'}`);
      if (alive.get(id) !== argBytes[k])
        fail(`${where}.bytes.args[${k}] = ${argBytes[k]}: value ${id} has ${alive.get(id)} bytes`);
    });
    const outBytes = ciphertextBytesFor(p, ins.level, ins.degree);
    if (ins.bytes.out !== outBytes)
      fail(`${where}.bytes.out = ${describe(ins.bytes.out)}: expected ${outBytes}`);
    if (!Array.isArray(ins.keys) || ins.keys.some((k) => typeof k !== 'string'))
      fail(`${where}.keys: expected an array of strings`);
    const needsConstant = ins.op === 'mul_const' || ins.op === 'mul_then_add' || ins.op === 'add_const';
    if (needsConstant && !isInt(ins.constant, 0, constantCount - 1))
      fail(`${where}.constant = ${describe(ins.constant)}: expected an index below ${constantCount}`);
    if ((ins.op === 'mul_const' || ins.op === 'mul_then_add') && !isPositive(ins.constantScale))
      fail(`${where}.constantScale = ${describe(ins.constantScale)}: expected a positive number`);
    if (
      (ins.op === 'mul_plain' || ins.op === 'add_plain') &&
      !isInt(ins.plaintext, 0, program.plaintexts.length - 1)
    )
      fail(`${where}.plaintext = ${describe(ins.plaintext)}: expected a plaintext id`);
    if (ins.op === 'relinearize') {
      usesRelin = true;
      if (!ins.keys.includes('relin')) fail(`${where}: relinearize must list the key "relin"`);
    }
    if (ins.op === 'rotate' || ins.op === 'rotate_hoisted') {
      const steps = intArray(ins.steps, `${where}.steps`, -(program.slots - 1), program.slots - 1);
      const expectedOut = ins.op === 'rotate' ? 1 : steps.length;
      if (steps.length === 0 || out.length !== expectedOut || (ins.op === 'rotate' && steps.length !== 1))
        fail(`${where}: ${ins.op} with ${steps.length} steps and ${out.length} results`);
      for (const s of steps) {
        const g = galoisOf.get(s);
        if (g === undefined) fail(`${where}: rotation by ${s} is not in the program's rotations`);
        if (!ins.keys.includes(`galois:${g}`))
          fail(`${where}: rotation by ${s} must list the key "galois:${g}"`);
        usedSteps.add(s);
      }
    } else if (ins.op === 'mul_then_add') {
      if (out.length !== 1 || out[0] !== args[1])
        fail(`${where}: mul_then_add must write its accumulator ${args[1]}`);
      if (argBytes[1] !== outBytes) fail(`${where}: accumulator of ${argBytes[1]} bytes becomes ${outBytes}`);
      return;
    } else if (out.length !== 1) fail(`${where}: ${ins.op} with ${out.length} results: expected 1`);
    for (const id of out) define(where, id, outBytes);
  });
  if (usesRelin && !program.relinearization) fail('relinearization = false but an instruction relinearizes');
  for (const r of rotations) if (!usedSteps.has(r)) fail(`rotations lists ${r}, which no instruction uses`);
  program.outputs.forEach((o, i) => {
    const where = `outputs[${i}]`;
    if (typeof o !== 'object' || o === null) fail(`${where}: expected an object`);
    if (!isInt(o.id) || !alive.has(o.id))
      fail(`${where}.id = ${describe(o.id)}: expected a value alive at the end`);
    checkLevelScale(where, o.level, o.scale);
    if (o.bytes !== alive.get(o.id))
      fail(`${where}.bytes = ${describe(o.bytes)}: value has ${alive.get(o.id)}`);
    if (program.packing === 'batch') {
      if (!isInt(o.element, 0, outSize - 1))
        fail(`${where}.element = ${describe(o.element)}: expected < ${outSize}`);
    } else {
      const slots = intArray(o.slotOfElement, `${where}.slotOfElement`, 0, program.slots - 1);
      if (slots.length === 0) fail(`${where}.slotOfElement: expected at least one entry`);
    }
  });
}

// -----------------------------------------------------------------------------------------------------------
// Analyses

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
  const qp = limbs(params, params.depth) + (params.specialPrimes ?? 1);
  const digits = Math.ceil(limbs(params, params.depth) / (params.specialPrimes ?? 1));
  const keyBytes = digits * 2 * qp * 2 ** params.logN * 4;
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
export function assertProgram(program: unknown): asserts program is HeProgram {
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
