/**
 * The onnxruntime reference: runs an ONNX model with onnxruntime-node (CPU) to check the importer and the float
 * simulator against an independent implementation. onnxruntime-node is a devDependency, so this module sits with the
 * test support code and loads it with a dynamic import only when a test or benchmark calls it (the one importer under
 * `src/` is the inference benchmark, `src/cli/bench-infer.ts`).
 */
import { InvalidArgumentError } from '../../src/util/errors.ts';

/**
 * Runs `count` inputs through an ONNX model with onnxruntime-node and returns its first output as float64.
 *
 * @throws InvalidArgumentError when onnxruntime-node is not installed (production installs omit it).
 * @example
 * ```ts
 * const logits = await runOnnxRuntime(bytes, images, [100, 1, 28, 28]);
 * ```
 */
export async function runOnnxRuntime(
  model: Uint8Array,
  input: ArrayLike<number>,
  dims: readonly number[],
): Promise<{ data: Float64Array; dims: number[] }> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (e) {
    throw new InvalidArgumentError(
      `onnxruntime-node is not available (a devDependency): ${(e as Error).message}`,
    );
  }
  const session = await ort.InferenceSession.create(model);
  try {
    const tensor = new ort.Tensor('float32', Float32Array.from(input), [...dims]);
    const result = await session.run({ [session.inputNames[0]]: tensor });
    const out = result[session.outputNames[0]];
    return { data: Float64Array.from(out.data as Float32Array), dims: [...out.dims] };
  } finally {
    await session.release();
  }
}
