/**
 * Real third-party ONNX exports (PyTorch, tf2onnx/keras2onnx, CNTK) for MNIST and CIFAR-10. The files are not in this
 * repository: the steering team places them in `../shared/models/third-party/` (or `models/third-party/`, or the
 * folder named by `HOME_THIRD_PARTY_MODELS`), each `X.onnx` beside a sidecar `X.json` (format in
 * tests/fixtures/nn/README.md). Without that folder the test reports itself skipped. With it, every model must
 * import, come from the producer its sidecar names, and agree with onnxruntime on sample inputs.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runOnnxRuntime } from '../../../tests/support/ort-reference.ts';
import { rowRelativeError, seededValues } from '../../../tests/support/test-helpers.ts';
import { loadIdxImages, loadIdxLabels } from '../data.ts';
import { UnsupportedModelError } from '../errors.ts';
import { findDataFile } from '../../platform/bundled-files.ts';
import { argmaxRows, simulate } from '../simulate.ts';
import { inlineExternalData } from './external-data.ts';
import { shapeSize } from './graph.ts';
import { importOnnx } from './import.ts';

/** What a sidecar `X.json` says about `X.onnx`. */
interface Sidecar {
  /** Expected `producer_name` of the ONNX header (e.g. `pytorch`, `tf2onnx`, `keras2onnx`, `CNTK`). */
  readonly producer: string;
  readonly dataset: 'mnist' | 'cifar10';
  /** The model's input is `(pixel · scale − mean[c]) / std[c]` for pixels 0…255 (one entry, or one per channel). */
  readonly input: {
    readonly scale: number;
    readonly mean: readonly number[];
    readonly std: readonly number[];
  };
  /** Where the file came from (informative). */
  readonly source?: { readonly repository: string; readonly commit: string; readonly path: string };
  /** Set for a model known to be outside the importer's scope: its UnsupportedModelError must match this pattern. */
  readonly unsupported?: string;
}

const REPO = new URL('../../../', import.meta.url);
const COUNT = 64;

function modelFolder(): string | undefined {
  const named = process.env.HOME_THIRD_PARTY_MODELS;
  const candidates =
    named !== undefined && named !== ''
      ? [named]
      : [
          fileURLToPath(new URL('models/third-party/', REPO)),
          fileURLToPath(new URL('../shared/models/third-party/', REPO)),
        ];
  return candidates.find((dir) => existsSync(dir));
}

function readSidecar(path: string): Sidecar {
  const s = JSON.parse(readFileSync(path, 'utf8')) as Sidecar;
  assert.equal(typeof s.producer, 'string', `${path}: producer`);
  assert.ok(s.dataset === 'mnist' || s.dataset === 'cifar10', `${path}: dataset 'mnist' or 'cifar10'`);
  assert.ok(Number.isFinite(s.input?.scale), `${path}: input.scale`);
  assert.ok(
    s.input.mean.length >= 1 && s.input.mean.length === s.input.std.length,
    `${path}: input.mean/std`,
  );
  return s;
}

/** `count` images as the model takes them: MNIST test images when the data is there, else seeded pixels. */
function sampleImages(s: Sidecar, onnxShape: readonly number[], count: number, seed: number) {
  const size = shapeSize(onnxShape);
  let pixels: Float64Array;
  let labels: Uint8Array | undefined;
  let what = 'seeded random pixels';
  try {
    if (s.dataset !== 'mnist' || size !== 784) throw new Error('not an MNIST-shaped input');
    pixels = loadIdxImages(readFileSync(findDataFile('mnist/t10k-images-idx3-ubyte.gz')), { scale: 1 }).data;
    labels = loadIdxLabels(readFileSync(findDataFile('mnist/t10k-labels-idx1-ubyte.gz')));
    what = 'MNIST test images';
  } catch {
    pixels = seededValues(count * size, seed, 0, 255).map(Math.round);
  }
  // Channels are the last axis of an NHWC input (three values last) and the first of an NCHW one.
  const channels = s.input.mean.length;
  const nhwc = channels > 1 && onnxShape[onnxShape.length - 1] === channels;
  const images = new Float32Array(count * size);
  for (let i = 0; i < count * size; i++) {
    const j = i % size;
    const c = channels === 1 ? 0 : nhwc ? j % channels : Math.floor(j / (size / channels));
    images[i] = (pixels[i] * s.input.scale - s.input.mean[c]) / s.input.std[c];
  }
  return { images, labels: labels?.subarray(0, count), what };
}

/** onnxruntime's outputs, fed in batches of the size the model fixes (zero-padded), if it fixes one. */
async function reference(
  bytes: Uint8Array,
  images: Float32Array,
  onnxShape: readonly number[],
  batch: number,
) {
  const size = shapeSize(onnxShape);
  const count = images.length / size;
  const parts: Float64Array[] = [];
  for (let first = 0; first < count; first += batch) {
    const n = Math.min(batch, count - first);
    const chunk = new Float32Array(batch * size);
    chunk.set(images.subarray(first * size, (first + n) * size));
    const out = await runOnnxRuntime(bytes, chunk, [batch, ...onnxShape]);
    parts.push(out.data.subarray(0, (out.data.length / batch) * n));
  }
  const all = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/** Applies the final Softmax/LogSoftmax the importer dropped, row by row, to compare with onnxruntime. */
function normalizeRows(values: Float64Array, classes: number, log: boolean): Float64Array {
  const out = new Float64Array(values.length);
  for (let r = 0; r * classes < values.length; r++) {
    const row = values.subarray(r * classes, (r + 1) * classes);
    const top = Math.max(...row);
    const logSum = Math.log(row.reduce((s, t) => s + Math.exp(t - top), 0)) + top;
    for (let c = 0; c < classes; c++)
      out[r * classes + c] = log ? row[c] - logSum : Math.exp(row[c] - logSum);
  }
  return out;
}

const folder = modelFolder();

describe('third-party ONNX models (PyTorch, tf2onnx/keras2onnx, CNTK exports)', () => {
  // CI has ../shared beside the checkout: there a missing folder is a failure, not a skip.
  const required = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
  if (folder === undefined) {
    it('imports and matches onnxruntime for every model in ../shared/models/third-party', (t) => {
      assert.ok(!required, 'CI: ../shared/models/third-party is missing (expected beside the checkout)');
      t.skip('no third-party model folder (../shared/models/third-party); see tests/fixtures/nn/README.md');
    });
    return;
  }
  const files = readdirSync(folder)
    .filter((f) => f.endsWith('.onnx'))
    .sort();
  if (files.length === 0) {
    it(`imports every model in ${folder}`, (t) => {
      assert.ok(!required, `CI: ${folder} holds no .onnx file`);
      t.skip(`${folder} holds no .onnx file`);
    });
    return;
  }
  for (const [index, file] of files.entries()) {
    it(file, async (t) => {
      const sidecarPath = join(folder, file.replace(/\.onnx$/, '.json'));
      assert.ok(existsSync(sidecarPath), `${file}: sidecar ${sidecarPath} is missing`);
      const sidecar = readSidecar(sidecarPath);
      const raw = readFileSync(join(folder, file));
      const externalData = (location: string) => readFileSync(join(folder, location));
      if (sidecar.unsupported !== undefined) {
        assert.throws(
          () => importOnnx(raw, { externalData }),
          (e: unknown) =>
            e instanceof UnsupportedModelError && new RegExp(sidecar.unsupported ?? '').test(e.message),
        );
        t.diagnostic(`${file}: rejected as documented (${sidecar.unsupported})`);
        return;
      }
      const model = importOnnx(raw, { externalData });
      assert.equal(model.source.producerName, sidecar.producer, `${file}: producer_name`);
      const batch = model.fixedBatch ?? COUNT;
      const count = Math.ceil(COUNT / batch) * batch;
      const { images, labels, what } = sampleImages(sidecar, model.onnxInputShape, count, 9000 + index);
      const bytes = inlineExternalData(raw, externalData);
      const ort = await reference(bytes, images, model.onnxInputShape, batch);
      const classes = shapeSize(model.outputShape);
      const exact = simulate(model, images, count);
      // The importer drops a final Softmax/LogSoftmax; which one it was shows in onnxruntime's rows (sums to 1).
      const sumsToOne = Math.abs(ort.subarray(0, classes).reduce((s, v) => s + v, 0) - 1) < 1e-3;
      const ours = model.droppedSoftmax ? normalizeRows(exact, classes, !sumsToOne) : exact;
      const ourTop = argmaxRows(ours, count, classes);
      const ortTop = argmaxRows(ort, count, classes);
      let same = 0;
      let correct = 0;
      for (let i = 0; i < count; i++) {
        if (ourTop[i] === ortTop[i]) same++;
        if (labels !== undefined && ourTop[i] === labels[i]) correct++;
      }
      const error = rowRelativeError(ours, ort, classes);
      t.diagnostic(
        `${file}: producer ${model.source.producerName} ${model.source.producerVersion}, opset ${model.source.opset}, ` +
          `layers ${model.layers.map((l) => l.kind).join(' → ')}; ${count} ${what}: argmax agreement ${same}/${count}, ` +
          `row-relative error ${error.toExponential(2)}` +
          (labels === undefined ? '' : `, accuracy ${((100 * correct) / count).toFixed(1)} %`),
      );
      assert.ok(same >= 0.99 * count, `${file}: argmax agrees with onnxruntime on ${same}/${count}`);
      assert.ok(error < 1e-4, `${file}: simulator vs onnxruntime row-relative error ${error}`);
    });
  }
});
