/**
 * The ONNX importer's entry point: decoding ({@link decodeOnnx}) then lowering ({@link lowerGraph}) in one step.
 */
import type { LayerModel } from '../layers.ts';
import { type DecodeOptions, decodeOnnx } from './decode.ts';
import { type LowerOptions, lowerGraph } from './lower/index.ts';

/**
 * Options of {@link importOnnx}: those of decoding (external data) and of lowering (input shape).
 *
 * @example
 * ```ts
 * const options: ImportOptions = { inputShape: [3, 32, 32], externalData: (location) => readFileSync(location) };
 * ```
 */
export interface ImportOptions extends DecodeOptions, LowerOptions {}

/**
 * Decodes ONNX bytes and lowers them to the canonical layer IR in one step.
 *
 * @throws FormatError for malformed bytes; UnsupportedModelError for a model outside the supported subset.
 * @example
 * ```ts
 * const model = importOnnx(readFileSync(findModelFile('cryptonets-mnist.onnx')));
 * console.log(model.inputShape, model.layers.length);
 * ```
 */
export function importOnnx(bytes: Uint8Array, options: ImportOptions = {}): LayerModel {
  return lowerGraph(decodeOnnx(bytes, options), options);
}
