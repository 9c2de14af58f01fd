import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runOnnxRuntime } from '../../tests/support/ort-reference.ts';
import { rowRelativeError } from '../../tests/support/test-helpers.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { loadIdxImages, loadIdxLabels } from './data.ts';
import { findDataFile, findModelFile } from '../platform/bundled-files.ts';
import type { LayerModel } from './layers.ts';
import { importOnnx } from './onnx/import.ts';
import { argmaxRows, simulate } from './simulate.ts';

// The models take pixel / 256 (models/PROVENANCE.md).
const images = loadIdxImages(readFileSync(findDataFile('mnist/t10k-images-idx3-ubyte.gz')), {
  scale: 1 / 256,
});
const labels = loadIdxLabels(readFileSync(findDataFile('mnist/t10k-labels-idx1-ubyte.gz')));
const N = 1000;

for (const file of ['cryptonets-mnist.onnx', 'lola-small-mnist.onnx']) {
  describe(`float simulator on ${file}, first ${N} MNIST test images`, () => {
    const bytes = readFileSync(findModelFile(file));
    const model = importOnnx(bytes);
    const simulated = simulate(model, images.data, N);

    it('predicts the same class as onnxruntime on every image, logits within 1e-4 of the row scale', async () => {
      const ort = await runOnnxRuntime(bytes, images.data.subarray(0, N * 784), [N, 1, 28, 28]);
      const ours = argmaxRows(simulated, N, 10);
      const theirs = argmaxRows(ort.data, N, 10);
      for (let i = 0; i < N; i++) assert.equal(ours[i], theirs[i], `image ${i}`);
      // onnxruntime computes in float32: its logits (up to a few thousand for LoLa) carry float32 rounding, so the
      // bound is relative to each image's largest |logit|; measured ≈ 1e-6.
      const err = rowRelativeError(simulated, ort.data, 10);
      assert.ok(err < 1e-4, `relative logit error ${err}`);
    });

    it('is accurate on the labels', () => {
      const predicted = argmaxRows(simulated, N, 10);
      let correct = 0;
      for (let i = 0; i < N; i++) if (predicted[i] === labels[i]) correct++;
      assert.ok(correct / N > (file.startsWith('cryptonets') ? 0.97 : 0.95), `accuracy ${correct / N}`);
    });

    it('gives the same logits whatever the chunk size', () => {
      const small = simulate(model, images.data, 37, { chunkSize: 5 });
      assert.deepEqual(small, simulated.subarray(0, 370));
    });
  });
}

describe('simulate arguments', () => {
  const model: LayerModel = importOnnx(readFileSync(findModelFile('lola-small-mnist.onnx')));

  it('rejects too few input values', () => {
    assert.throws(() => simulate(model, new Float64Array(100), 1), InvalidArgumentError);
  });

  it('polynomial mode needs approximations only for non-polynomial layers (none in LoLa)', () => {
    const exact = simulate(model, images.data, 3);
    assert.deepEqual(simulate(model, images.data, 3, { mode: 'polynomial' }), exact);
  });

  it('argmaxRows picks the first maximum', () => {
    assert.deepEqual([...argmaxRows(Float64Array.of(0, 3, 3, 5, 2, 4), 2, 3)], [1, 0]);
  });
});
