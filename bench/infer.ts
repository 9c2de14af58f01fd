import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { runOnnxRuntime } from '../tests/support/ort-reference.ts';
import { loadIdxImages, loadIdxLabels } from '../src/nn/data.ts';
import { findDataFile, findModelFile } from '../src/platform/bundled-files.ts';
import { importOnnx } from '../src/nn/onnx/import.ts';
import { argmaxRows, simulate } from '../src/nn/simulate.ts';
import { check } from '../src/util/assert.ts';
import { runInfer } from '../src/cli/infer.ts';

/**
 * Options of {@link runInferBench}.
 *
 * @example
 * ```ts
 * const options: InferBenchOptions = { models: ['cryptonets-mnist.onnx'], count: 10000 };
 * ```
 */
export interface InferBenchOptions {
  /** Bundled model file names (default: CryptoNets and LoLa-Small). */
  readonly models?: readonly string[];
  /** MNIST test images (default all 10,000). */
  readonly count?: number;
  readonly write?: (line: string) => void;
}

function accuracyOf(predictions: Int32Array, labels: Uint8Array): number {
  let correct = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === labels[i]) correct++;
  return correct / predictions.length;
}

/**
 * `home bench infer`: for each model, HomE's encrypted batch inference (accuracy, agreement with plaintext,
 * images/s, evaluation and keygen time, peak RSS) beside the float64 simulation and onnxruntime-node run on the
 * same images in the same process. One JSON object per line.
 *
 * @example
 * ```ts
 * await runInferBench({ count: 1000 });
 * ```
 */
export async function runInferBench(options: InferBenchOptions = {}): Promise<void> {
  const write = options.write ?? ((line: string) => console.log(line));
  const count = options.count ?? 10_000;
  check(
    Number.isInteger(count) && count >= 1 && count <= 10_000,
    () => `--count ${count}: expected 1 … 10000`,
  );
  const imagesPath = findDataFile('mnist/t10k-images-idx3-ubyte.gz');
  const labelsPath = findDataFile('mnist/t10k-labels-idx1-ubyte.gz');
  const images = loadIdxImages(readFileSync(imagesPath), { scale: 1 / 256 }).data.subarray(0, count * 784);
  const labels = loadIdxLabels(readFileSync(labelsPath)).subarray(0, count);
  for (const name of options.models ?? ['cryptonets-mnist.onnx', 'lola-small-mnist.onnx']) {
    const path = findModelFile(name);
    const bytes = readFileSync(path);
    const model = importOnnx(bytes);
    // Float64 simulation of the layer model (HomE's plaintext reference).
    let t = performance.now();
    const simulated = simulate(model, images, count);
    const simulateSeconds = (performance.now() - t) / 1000;
    const simulatedPredictions = argmaxRows(simulated, count, 10);
    // onnxruntime-node, float32, one batch.
    t = performance.now();
    const ort = await runOnnxRuntime(bytes, images, [count, ...model.onnxInputShape]);
    const ortSeconds = (performance.now() - t) / 1000;
    const ortPredictions = argmaxRows(ort.data, count, 10);
    // HomE encrypted.
    const summary = await runInfer({
      model: path,
      data: imagesPath,
      labels: labelsPath,
      inputScale: 1 / 256,
      count,
      json: true,
      print: () => {},
    });
    let agreeOrt = 0;
    for (let i = 0; i < count; i++) if (simulatedPredictions[i] === ortPredictions[i]) agreeOrt++;
    write(
      JSON.stringify({
        suite: 'infer',
        model: basename(path),
        mode: summary.mode,
        count,
        accuracy: summary.accuracy,
        plain_accuracy: summary.plain_accuracy,
        agreement: summary.agreement,
        images_per_s: summary.images_per_s,
        eval_s: summary.eval_s,
        keygen_s: summary.keygen_s,
        encrypt_s: summary.encrypt_s,
        decrypt_s: summary.decrypt_s,
        peak_rss_bytes: summary.peak_rss_bytes,
        peak_arena_bytes: summary.peak_arena_bytes,
        log_n: summary.log_n,
        passes: summary.passes,
        float_simulation: {
          accuracy: Number(accuracyOf(simulatedPredictions, labels).toFixed(6)),
          seconds: Number(simulateSeconds.toFixed(3)),
          images_per_s: Number((count / simulateSeconds).toFixed(1)),
        },
        onnxruntime: {
          accuracy: Number(accuracyOf(ortPredictions, labels).toFixed(6)),
          seconds: Number(ortSeconds.toFixed(3)),
          images_per_s: Number((count / ortSeconds).toFixed(1)),
          agreement_with_simulation: Number((agreeOrt / count).toFixed(6)),
        },
      }),
    );
  }
}
