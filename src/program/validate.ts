/**
 * The structural and semantic check of an HE program (what a deserialized program must pass before anything runs
 * it): every field's type and range, SSA ids, byte sizes from the parameters, operand counts, required fields, keys
 * and the level, degree and scale of every result, all by the op table of `ops.ts`.
 */
import { ParametersShape } from '../ckks/shape.ts';
import { describe } from '../util/assert.ts';
import { FormatError } from '../util/errors.ts';
import { HE_OPS, OPS, opKeys, type ValueShape } from './ops.ts';
import { type HeProgram, PROGRAM_FORMAT, PROGRAM_VERSION, type PlaintextDescriptor } from './program.ts';

/**
 * The declared result of an instruction against its op's result rule: level and degree exactly, the scale to
 * floating-point rounding (a rescale's scale depends on the primes, which the literal does not name: it must only
 * fall below its operand's).
 */
function checkResult(
  where: string,
  op: string,
  declared: ValueShape,
  rule: ValueShape,
  operand: ValueShape,
): void {
  if (declared.level !== rule.level)
    fail(
      `${where}.level = ${declared.level}: ${op} of a level-${operand.level} value gives level ${rule.level}`,
    );
  if (declared.degree !== rule.degree)
    fail(`${where}.degree = ${declared.degree}: ${op} gives degree ${rule.degree}`);
  if (Number.isNaN(rule.scale)) {
    if (!(declared.scale < operand.scale))
      fail(`${where}.scale = ${declared.scale}: ${op} must lower the scale ${operand.scale}`);
  } else if (Math.abs(declared.scale / rule.scale - 1) > SCALE_TOLERANCE) {
    fail(`${where}.scale = ${declared.scale}: ${op} gives scale ${rule.scale}`);
  }
}

/** Relative difference allowed between a declared scale and its rule's (floating-point rounding only). */
const SCALE_TOLERANCE = 2 ** -40;

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

/**
 * Checks a program's structure and consistency: known ops with the operand counts and fields the op table asks
 * for, every id written once (inputs included) and read only while alive, levels in [0, depth], positive finite
 * scales, byte sizes that match the parameters, constant, plaintext and key references that exist, keys exactly
 * as the op table derives them, and every result's level, degree and scale as the op's result rule gives them
 * (the scale of a rescale, which depends on the primes, only positive and below its operand's).
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
  let shape: ParametersShape;
  try {
    shape = ParametersShape.of(p);
  } catch (error) {
    fail(`parameters: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (program.logN !== p.logN) fail(`logN = ${describe(program.logN)}: expected parameters.logN = ${p.logN}`);
  if (program.slots !== 2 ** (p.logN - 1))
    fail(`slots = ${describe(program.slots)}: expected ${2 ** (p.logN - 1)}`);
  if (!isInt(program.depth, 0, p.depth)) fail(`depth = ${describe(program.depth)}: expected 0 … ${p.depth}`);
  if (program.packing !== 'batch' && program.packing !== 'latency')
    fail(`packing = ${describe(program.packing)}: expected "batch" or "latency"`);
  if (!isInt(program.batchSize, 1, program.slots))
    fail(`batchSize = ${describe(program.batchSize)}: expected an integer in [1, ${program.slots}]`);
  if (program.packing === 'latency' && program.slots % program.batchSize !== 0)
    fail(`batchSize = ${program.batchSize}: latency packing needs a divisor of the ${program.slots} slots`);
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
  if (!(program.paletteCodes instanceof Uint8Array)) fail('paletteCodes: expected a Uint8Array');
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
  const bootstrapping = program.bootstrapping;
  let levelsLeft: number | undefined;
  if (bootstrapping !== undefined) {
    if (typeof bootstrapping !== 'object' || bootstrapping === null || Array.isArray(bootstrapping))
      fail(`bootstrapping = ${describe(bootstrapping)}: expected a bootstrapping parameters literal`);
    if (bootstrapping.logN !== p.logN)
      fail(`bootstrapping.logN = ${describe(bootstrapping.logN)}: expected parameters.logN = ${p.logN}`);
    levelsLeft = bootstrapping.levelsLeft ?? 8;
    if (!isInt(levelsLeft, 1, p.depth))
      fail(`bootstrapping.levelsLeft = ${describe(levelsLeft)}: expected an integer in [1, ${p.depth}]`);
  }

  const checkLevelScale = (where: string, level: unknown, scale: unknown) => {
    if (!isInt(level, 0, p.depth))
      fail(`${where}.level = ${describe(level)}: expected an integer in [0, ${p.depth}]`);
    if (!isPositive(scale)) fail(`${where}.scale = ${describe(scale)}: expected a positive finite number`);
  };
  // alive: id → bytes and shape of the value now; written: every id ever defined.
  const alive = new Map<number, { bytes: number; value: ValueShape }>();
  const written = new Set<number>();
  const define = (where: string, id: unknown, bytes: number, value: ValueShape) => {
    if (!isInt(id)) fail(`${where} id = ${describe(id)}: expected an integer ≥ 0`);
    if (written.has(id))
      fail(`${where} writes value ${id}, which is already defined (values are written once)`);
    written.add(id);
    alive.set(id, { bytes, value });
  };
  program.inputs.forEach((input, i) => {
    const where = `inputs[${i}]`;
    if (typeof input !== 'object' || input === null) fail(`${where}: expected an object`);
    checkLevelScale(where, input.level, input.scale);
    const expected = shape.ciphertextBytes(input.level, 1);
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
      if (slots.length * program.batchSize !== program.slots)
        fail(
          `${where}.slotElements: ${slots.length} slots per image × batchSize ${program.batchSize} ≠ ${program.slots} slots`,
        );
    }
    define(where, input.id, input.bytes, { level: input.level, scale: input.scale, degree: 1 });
  });
  program.plaintexts.forEach((pt, i) => {
    const where = `plaintexts[${i}]`;
    if (typeof pt !== 'object' || pt === null) fail(`${where}: expected an object`);
    if (!isInt(pt.id)) fail(`${where}.id = ${describe(pt.id)}: expected an integer ≥ 0`);
    if (pt.id !== i) fail(`${where}.id = ${pt.id}: expected ${i}`);
    checkLevelScale(where, pt.level, pt.scale);
    if (!isInt(pt.length, 1, program.slots))
      fail(`${where}.length = ${describe(pt.length)}: expected 1 ≤ length ≤ ${program.slots}`);
    if (pt.entries !== undefined && !isInt(pt.entries, 0, pt.length))
      fail(`${where}.entries = ${describe(pt.entries)}: expected 0 ≤ entries ≤ length (${pt.length})`);
    if (pt.palette !== undefined) checkPalette(program, pt, where);
    else if (pt.entries !== undefined) {
      if (!isInt(pt.offset, 0) || pt.offset + 2 * pt.entries > constantCount)
        fail(
          `${where}: offset ${describe(pt.offset)} + ${pt.entries} (slot, value) pairs outside the ${constantCount} constants`,
        );
      let previous = -1;
      for (let e = 0; e < pt.entries; e++) {
        const slot = program.constants[pt.offset + 2 * e];
        if (!Number.isInteger(slot) || slot <= previous || slot >= pt.length)
          fail(
            `${where}: entry ${e} names slot ${describe(slot)}: expected an integer above ${previous} and below ${pt.length}`,
          );
        previous = slot;
      }
    } else if (!isInt(pt.offset, 0) || pt.offset + pt.length > constantCount)
      fail(
        `${where}: offset ${describe(pt.offset)} + length ${pt.length} outside the ${constantCount} constants`,
      );
    if (pt.encodeOnUse !== undefined && typeof pt.encodeOnUse !== 'boolean')
      fail(`${where}.encodeOnUse = ${describe(pt.encodeOnUse)}: expected true or false`);
    if (pt.bytes !== shape.plaintextBytes(pt.level))
      fail(`${where}.bytes = ${describe(pt.bytes)}: expected ${shape.plaintextBytes(pt.level)}`);
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
    const op = OPS[ins.op];
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
    if (op.arity === -1 ? args.length === 0 : args.length !== op.arity)
      fail(
        `${where}: ${ins.op} with ${args.length} operands: expected ${op.arity === -1 ? 'at least 1' : op.arity}`,
      );
    if (typeof ins.layer !== 'string') fail(`${where}.layer = ${describe(ins.layer)}: expected a string`);
    checkLevelScale(where, ins.level, ins.scale);
    if (ins.degree !== 1 && ins.degree !== 2)
      fail(`${where}.degree = ${describe(ins.degree)}: expected 1 or 2`);
    if (typeof ins.bytes !== 'object' || ins.bytes === null) fail(`${where}.bytes: expected { args, out }`);
    const argBytes = intArray(ins.bytes.args, `${where}.bytes.args`, 1);
    if (argBytes.length !== args.length) fail(`${where}.bytes.args: expected ${args.length} entries`);
    const operands = args.map((id, k) => {
      const value = alive.get(id);
      if (!value) fail(`${where} reads value ${id}, which is ${written.has(id) ? 'freed' : 'undefined'}`);
      if (value.bytes !== argBytes[k])
        fail(`${where}.bytes.args[${k}] = ${argBytes[k]}: value ${id} has ${value.bytes} bytes`);
      return value.value;
    });
    const outBytes = shape.ciphertextBytes(ins.level, ins.degree);
    if (ins.bytes.out !== outBytes)
      fail(`${where}.bytes.out = ${describe(ins.bytes.out)}: expected ${outBytes}`);
    if (!Array.isArray(ins.keys) || ins.keys.some((k) => typeof k !== 'string'))
      fail(`${where}.keys: expected an array of strings`);
    if ((op.needs.constant || ins.constant !== undefined) && !isInt(ins.constant, 0, constantCount - 1))
      fail(`${where}.constant = ${describe(ins.constant)}: expected an index below ${constantCount}`);
    if (op.needs.rows) {
      if (!isInt(ins.rows, 1, 1 << 20))
        fail(`${where}.rows = ${describe(ins.rows)}: expected an integer ≥ 1`);
      if (ins.constant! + ins.rows * args.length > constantCount)
        fail(
          `${where}: ${ins.rows} × ${args.length} weights from constant ${ins.constant} outside the ${constantCount} constants`,
        );
    }
    if (op.needs.constantScale && !isPositive(ins.constantScale))
      fail(`${where}.constantScale = ${describe(ins.constantScale)}: expected a positive number`);
    if (op.needs.plaintext && !isInt(ins.plaintext, 0, program.plaintexts.length - 1))
      fail(`${where}.plaintext = ${describe(ins.plaintext)}: expected a plaintext id`);
    let steps: number[] = [];
    if (op.needs.steps !== 'none') {
      steps = intArray(ins.steps, `${where}.steps`, -(program.slots - 1), program.slots - 1);
      if (steps.length === 0 || (op.needs.steps === 'one' && steps.length !== 1))
        fail(`${where}: ${ins.op} with ${steps.length} steps`);
      for (const s of steps) {
        if (!galoisOf.has(s)) fail(`${where}: rotation by ${s} is not in the program's rotations`);
        usedSteps.add(s);
      }
    }
    if (op.keys === 'relin') usesRelin = true;
    const keys = opKeys(ins.op, steps, (s) => galoisOf.get(s)!);
    if (ins.keys.length !== keys.length || keys.some((k, n) => ins.keys[n] !== k))
      fail(`${where}.keys = ${describe(ins.keys)}: ${ins.op} uses exactly ${describe(keys)}`);
    if (ins.op === 'bootstrap') {
      if (levelsLeft === undefined) fail(`${where}: bootstrap in a program without bootstrapping parameters`);
      if (ins.level !== levelsLeft)
        fail(
          `${where}.level = ${ins.level}: a bootstrap gives level ${levelsLeft} (bootstrapping.levelsLeft)`,
        );
      if (operands[0].degree !== 1) fail(`${where}: bootstrap of a degree-${operands[0].degree} value`);
      const bound = program.constants[ins.constant as number];
      if (!(Number.isSafeInteger(bound) && bound >= 1))
        fail(`${where}: bootstrap bound ${describe(bound)}: expected an integer ≥ 1`);
      if (!isInt(ins.scratchBytes, 0, Number.MAX_SAFE_INTEGER))
        fail(`${where}.scratchBytes = ${describe(ins.scratchBytes)}: expected an integer ≥ 0`);
    }
    if (ins.op === 'drop_level' && !(ins.level < operands[0].level))
      fail(
        `${where}: drop_level to level ${ins.level} from level ${operands[0].level}: expected a lower level`,
      );
    if (ins.op === 'match_scale' && !(ins.level < operands[0].level))
      fail(
        `${where}: match_scale to level ${ins.level} from level ${operands[0].level}: expected a lower level`,
      );
    const plaintext = op.needs.plaintext ? program.plaintexts[ins.plaintext!] : undefined;
    let results: ValueShape[];
    try {
      results = op.result(operands, ins, { plaintext });
    } catch (error) {
      fail(`${where}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const expectedOut = op.inPlace ? 1 : results.length;
    if (out.length !== expectedOut)
      fail(`${where}: ${ins.op} with ${out.length} results: expected ${expectedOut}`);
    const declared = { level: ins.level, scale: ins.scale, degree: ins.degree };
    checkResult(where, ins.op, declared, results[0], operands[0]);
    if (op.inPlace) {
      const acc = args[args.length - 1];
      if (out[0] !== acc) fail(`${where}: ${ins.op} must write its accumulator ${acc}`);
      if (argBytes[args.length - 1] !== outBytes)
        fail(`${where}: accumulator of ${argBytes[args.length - 1]} bytes becomes ${outBytes}`);
      return;
    }
    for (const id of out) define(where, id, outBytes, declared);
  });
  if (usesRelin && !program.relinearization) fail('relinearization = false but an instruction relinearizes');
  for (const r of rotations) if (!usedSteps.has(r)) fail(`rotations lists ${r}, which no instruction uses`);
  program.outputs.forEach((o, i) => {
    const where = `outputs[${i}]`;
    if (typeof o !== 'object' || o === null) fail(`${where}: expected an object`);
    if (!isInt(o.id) || !alive.has(o.id))
      fail(`${where}.id = ${describe(o.id)}: expected a value alive at the end`);
    checkLevelScale(where, o.level, o.scale);
    if (o.bytes !== alive.get(o.id)!.bytes)
      fail(`${where}.bytes = ${describe(o.bytes)}: value has ${alive.get(o.id)!.bytes}`);
    if (program.packing === 'batch') {
      if (!isInt(o.element, 0, outSize - 1))
        fail(`${where}.element = ${describe(o.element)}: expected < ${outSize}`);
    } else {
      const period = program.slots / program.batchSize;
      const slots = intArray(o.slotOfElement, `${where}.slotOfElement`, 0, period - 1);
      if (slots.length === 0) fail(`${where}.slotOfElement: expected at least one entry`);
    }
  });
}

/** A plaintext stored by palette: its values within the constants, its codes within `paletteCodes`, each in range. */
function checkPalette(program: HeProgram, pt: PlaintextDescriptor, where: string): void {
  const codes = program.paletteCodes;
  const palette = pt.palette;
  if (!isInt(palette, 1, 256)) fail(`${where}.palette = ${describe(palette)}: expected 1 … 256 values`);
  if (!isInt(pt.offset, 0) || pt.offset + palette > program.constants.length)
    fail(
      `${where}: offset ${describe(pt.offset)} + a palette of ${palette} outside the ${program.constants.length} constants`,
    );
  const codeBytes = pt.entries === undefined ? pt.length : 3 * pt.entries;
  const from = pt.codeOffset;
  if (!isInt(from, 0) || from + codeBytes > codes.length)
    fail(
      `${where}.codeOffset = ${describe(from)}: its ${codeBytes} code bytes fall outside the ${codes.length} palette codes`,
    );
  if (pt.entries === undefined) {
    for (let i = 0; i < pt.length; i++)
      if (codes[from + i] >= palette)
        fail(`${where}: slot ${i} takes palette value ${codes[from + i]}: expected below ${palette}`);
    return;
  }
  let previous = -1;
  for (let e = 0, c = from; e < pt.entries; e++, c += 3) {
    const slot = codes[c] | (codes[c + 1] << 8);
    if (slot <= previous || slot >= pt.length)
      fail(`${where}: entry ${e} names slot ${slot}: expected above ${previous} and below ${pt.length}`);
    if (codes[c + 2] >= palette)
      fail(`${where}: entry ${e} takes palette value ${codes[c + 2]}: expected below ${palette}`);
    previous = slot;
  }
}
