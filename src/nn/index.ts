/**
 * `home-he/nn`: from a trained model to an HE program — ONNX import to a layer model, approximation of
 * non-polynomial activations, the float simulator, data loaders, the compiler to an HE program (parameters,
 * packing, keys), the HE program itself (types, op table, byte forms, analyses, float simulation) and the
 * client-side roles (the data owner's `InferenceClient`, the model owner's `ModelOwner`). Running a program on
 * ciphertexts is the runtime's job (`home-he/runtime`).
 *
 * @example
 * ```ts
 * import { compileModel, importOnnx, InferenceClient, simulateProgram } from 'home-he/nn';
 *
 * const { program } = compileModel(importOnnx(onnxBytes), { mode: 'batch' });
 * const client = new InferenceClient(program);
 * const ciphertexts = client.encryptPass(images, 0, 64);
 * ```
 */

export {
  type AccuracyCost,
  type ApproximationOptions,
  type ApproximationResult,
  approximateModel,
  type CalibrationData,
  calibrate,
  type DegreeOption,
  type LayerRange,
  type Substitution,
} from './approx.ts';
export { type ChebyshevSeries, chebyshevInterpolate, type ScalarFunction } from './chebyshev.ts';
export { InferenceClient } from './client.ts';
export {
  type CompileLimits,
  type CompileOptions,
  type CompileResult,
  chooseParameters,
  compileModel,
  DEFAULT_COMPILE_LIMITS,
  type ProgramResources,
  type RelinearizationPolicy,
} from './compile/index.ts';
export {
  DEFAULT_INPUT_SCALE,
  type ImageBatch,
  type LoadOptions,
  loadIdxImages,
  loadIdxLabels,
  loadNpy,
  loadPngFolder,
  maybeGunzip,
  type NpyArray,
  npyToImages,
  type PngFolderOptions,
} from './data.ts';
export { UnsupportedModelError } from './errors.ts';
export type { Layer, LayerModel, Shape } from './layers.ts';
export { type DecodeOptions, decodeOnnx, SUPPORTED_OPSETS } from './onnx/decode.ts';
export { type ExternalDataReader, inlineExternalData } from './onnx/external-data.ts';
export type { OnnxGraph } from './onnx/graph.ts';
export { type ImportOptions, importOnnx } from './onnx/import.ts';
export { type LowerOptions, lowerGraph, SUPPORTED_OPS } from './onnx/lower/index.ts';
export { ModelOwner } from './owner.ts';
export { decodePng, encodePng, type PngImage } from './png.ts';
export { argmaxRows, type SimulateOptions, type SimulationMode, simulate } from './simulate.ts';
export {
  opCounts,
  plaintextLastUse,
  programFootprint,
} from '../program/analysis.ts';
export { type AccessProgram, type AccessStep, accessSequence, type ObjectInfo } from '../program/access.ts';
export { decodeProgram, deserializeProgram, encodeProgram, serializeProgram } from '../program/codec.ts';
export { encodePlaintextWeight, evaluateInstruction, type InstructionOperands } from '../program/evaluate.ts';
export { HE_OPS, type HeOp, OPS, type OpDefinition, opKeys, type ValueShape } from '../program/ops.ts';
export { checkImages } from '../program/packing.ts';
export {
  assertProgram,
  type HeInstruction,
  type HeProgram,
  type InputDescriptor,
  type LayerSummary,
  type OutputDescriptor,
  type PlaintextDescriptor,
  PROGRAM_FORMAT,
  PROGRAM_VERSION,
} from '../program/program.ts';
export { simulateProgram } from '../program/simulate.ts';
export { validateProgram } from '../program/validate.ts';
