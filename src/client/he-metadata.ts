/**
 * The HE part of a model's metadata (the `he` object of `GET /v2/models/{m}`): what a client needs to make
 * exactly the keys the program uses, pack and encrypt its inputs and unpack the outputs — the CKKS parameters,
 * the packing, the input and output ciphertext descriptors, the rotations with their Galois elements and the
 * level each Galois key is used at. It carries no weights. Browser-safe (no Node module).
 */
import { Parameters, type ParametersLiteral } from '../ckks/parameters.ts';
import { programKeyLevels } from '../program/analysis.ts';
import {
  type HeProgram,
  type InputDescriptor,
  type OutputDescriptor,
  PROGRAM_FORMAT,
  PROGRAM_VERSION,
} from '../program/program.ts';
import { FormatError } from '../util/errors.ts';

/**
 * The HE description of a served model.
 *
 * @example
 * ```ts
 * const he: HeModelDescriptor = (await (await fetch(`${url}/v2/models/mnist`)).json()).he;
 * ```
 */
export interface HeModelDescriptor {
  readonly scheme: 'ckks';
  readonly parameters: ParametersLiteral;
  /** The parameters id every serialized object carries. */
  readonly parameters_id: string;
  readonly log_n: number;
  readonly slots: number;
  readonly depth: number;
  readonly packing: 'batch' | 'latency';
  /** Images per request at most. */
  readonly batch_size: number;
  /** Per-image shape (channels first) and the ONNX layout permutation, if any. */
  readonly input_shape: readonly number[];
  readonly input_permutation?: readonly number[];
  readonly output_shape: readonly number[];
  /** Values (after normalization) the program accepts. */
  readonly input_range: readonly [number, number];
  /** Raw values × scale, then (x − mean[c]) / std[c] per channel. */
  readonly normalization: {
    readonly scale: number;
    readonly mean?: readonly number[];
    readonly std?: readonly number[];
  };
  /** The input ciphertexts, in the order of the request's `input` BYTES tensor. */
  readonly inputs: readonly InputDescriptor[];
  /** The output ciphertexts, in the order of the response's `output` BYTES tensor. */
  readonly outputs: readonly OutputDescriptor[];
  readonly relinearization: boolean;
  readonly rotations: readonly number[];
  readonly galois_elements: readonly number[];
  /** `[galoisElement, level]`: the highest level each Galois key is used at (a key made there is enough). */
  readonly key_levels: readonly (readonly [number, number])[];
}

/**
 * The descriptor of a compiled program with its input normalization.
 *
 * @example
 * ```ts
 * const he = describeProgram(program, { scale: 1 / 256 });
 * ```
 */
export function describeProgram(
  program: HeProgram,
  normalization: HeModelDescriptor['normalization'],
): HeModelDescriptor {
  const params = Parameters.create(program.parameters);
  return {
    scheme: 'ckks',
    parameters: program.parameters,
    parameters_id: params.id,
    log_n: program.logN,
    slots: program.slots,
    depth: program.depth,
    packing: program.packing,
    batch_size: program.batchSize,
    input_shape: program.inputShape,
    ...(program.inputPermutation ? { input_permutation: program.inputPermutation } : {}),
    output_shape: program.outputShape,
    input_range: program.inputRange,
    normalization,
    inputs: program.inputs.filter((i) => i.owner !== 'model'),
    outputs: program.outputs,
    relinearization: program.relinearization,
    rotations: program.rotations,
    galois_elements: program.galoisElements,
    key_levels: [...programKeyLevels(program)].sort((a, b) => a[0] - b[0]),
  };
}

/**
 * A program with the descriptor's packing and no instructions or weights: enough for the packing functions
 * (`packBatch`, `packLatency`, `unpack`, `checkImages`) on the client.
 *
 * @throws FormatError for a descriptor missing a field those functions read.
 * @example
 * ```ts
 * const skeleton = packingProgram(he);
 * const slots = packLatency(skeleton, images, 0, 1);
 * ```
 */
export function packingProgram(he: HeModelDescriptor): HeProgram {
  checkDescriptor(he);
  return {
    format: PROGRAM_FORMAT,
    version: PROGRAM_VERSION,
    name: 'client',
    parameters: he.parameters,
    logN: he.log_n,
    slots: he.slots,
    depth: he.depth,
    packing: he.packing,
    batchSize: he.batch_size,
    inputShape: [...he.input_shape],
    ...(he.input_permutation ? { inputPermutation: [...he.input_permutation] } : {}),
    outputShape: [...he.output_shape],
    inputRange: [he.input_range[0], he.input_range[1]],
    inputs: he.inputs.map((i) => ({ ...i })),
    outputs: he.outputs.map((o) => ({ ...o })),
    plaintexts: [],
    constants: new Float64Array(0),
    paletteCodes: new Uint8Array(0),
    rotations: [...he.rotations],
    galoisElements: [...he.galois_elements],
    relinearization: he.relinearization,
    instructions: [],
    layers: [],
  };
}

/**
 * Checks the shape of a descriptor received from a server (types of the fields the client reads).
 *
 * @throws FormatError naming the first bad field.
 * @example
 * ```ts
 * checkDescriptor(metadata.he);
 * ```
 */
export function checkDescriptor(value: unknown): asserts value is HeModelDescriptor {
  const fail = (field: string): never => {
    throw new FormatError(`model metadata: he.${field} is missing or malformed`);
  };
  if (typeof value !== 'object' || value === null) fail('(object)');
  const he = value as Record<string, unknown>;
  const isInt = (v: unknown) => Number.isSafeInteger(v);
  const ints = (v: unknown) => Array.isArray(v) && v.every(isInt);
  if (he.scheme !== 'ckks') fail('scheme');
  if (typeof he.parameters !== 'object' || he.parameters === null) fail('parameters');
  for (const f of ['log_n', 'slots', 'depth', 'batch_size']) if (!isInt(he[f])) fail(f);
  if (he.packing !== 'batch' && he.packing !== 'latency') fail('packing');
  for (const f of ['input_shape', 'output_shape', 'rotations', 'galois_elements']) if (!ints(he[f])) fail(f);
  const range = he.input_range;
  if (!Array.isArray(range) || range.length !== 2 || !range.every((v) => typeof v === 'number'))
    fail('input_range');
  if (!Array.isArray(he.inputs) || he.inputs.length === 0) fail('inputs');
  if (!Array.isArray(he.outputs) || he.outputs.length === 0) fail('outputs');
  for (const d of [...(he.inputs as unknown[]), ...(he.outputs as unknown[])]) {
    const r = d as Record<string, unknown> | null;
    if (
      typeof r !== 'object' ||
      r === null ||
      !isInt(r.id) ||
      !isInt(r.level) ||
      typeof r.scale !== 'number'
    ) {
      fail('inputs/outputs[]');
    }
  }
  const levels = he.key_levels;
  if (!Array.isArray(levels) || !levels.every((e) => Array.isArray(e) && e.length === 2 && ints(e)))
    fail('key_levels');
  if (typeof he.relinearization !== 'boolean') fail('relinearization');
  const n = he.normalization as Record<string, unknown> | undefined;
  if (typeof n !== 'object' || n === null || typeof n.scale !== 'number') fail('normalization');
}
