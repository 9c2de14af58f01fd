import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runOnnxRuntime } from '../../../tests/support/ort-reference.ts';
import { rowRelativeError } from '../../../tests/support/test-helpers.ts';
import { compileModel } from '../../nn/compile/index.ts';
import { loadIdxImages, loadIdxLabels } from '../../nn/data.ts';
import { simulateProgram } from '../../program/simulate.ts';
import { runEncrypted } from './server.ts';
import { findDataFile, findModelFile } from '../../platform/bundled-files.ts';
import { importOnnx } from '../../nn/onnx/import.ts';
import { validateProgram } from '../../program/validate.ts';
import { argmaxRows } from '../../nn/simulate.ts';

const COUNT = 256;
const images = loadIdxImages(readFileSync(findDataFile('mnist/t10k-images-idx3-ubyte.gz')), {
  scale: 1 / 256,
}).data.subarray(0, COUNT * 784);
const labels = loadIdxLabels(readFileSync(findDataFile('mnist/t10k-labels-idx1-ubyte.gz'))).subarray(
  0,
  COUNT,
);

function agreement(a: Int32Array, b: ArrayLike<number>): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

for (const [file, expectedLogN, expectedDepth] of [
  ['cryptonets-mnist.onnx', 14, 5],
  ['lola-small-mnist.onnx', 13, 3],
] as const) {
  describe(`${file}, batch packing, first ${COUNT} MNIST test images`, () => {
    const bytes = readFileSync(findModelFile(file));
    const model = importOnnx(bytes);
    const { program } = compileModel(model, { batchSize: COUNT });

    it('encrypted argmax = simulator argmax = onnxruntime argmax on ≥ 99 % of the images', async () => {
      assert.equal(program.logN, expectedLogN);
      assert.equal(program.depth, expectedDepth);
      const ort = await runOnnxRuntime(bytes, images, [COUNT, 1, 28, 28]);
      const simulated = simulateProgram(program, images, COUNT);
      assert.ok(rowRelativeError(simulated, ort.data, 10) < 1e-4, 'simulator logits ≈ onnxruntime logits');
      const run = await runEncrypted(program, images, COUNT, { seed: new Uint8Array(32).fill(9) });
      assert.ok(rowRelativeError(run.logits, simulated, 10) < 1e-3, 'encrypted logits ≈ simulated logits');
      const encrypted = argmaxRows(run.logits, COUNT, 10);
      assert.ok(agreement(encrypted, argmaxRows(simulated, COUNT, 10)) >= 0.99);
      assert.ok(agreement(encrypted, argmaxRows(ort.data, COUNT, 10)) >= 0.99);
      assert.ok(agreement(encrypted, labels) >= 0.95, 'accuracy on these images');
      assert.equal(run.passes, 1);
    });
  });
}

describe('latency packing: images in blocks of one ciphertext, diagonal method with BSGS and hoisted rotations', () => {
  // LoLa-Small's layout fills the 4,096 slots of logN 13 (one image per ciphertext); CryptoNets' takes half of
  // the 8,192 of logN 14 (two).
  for (const [file, imagesPerCiphertext] of [
    ['lola-small-mnist.onnx', 1],
    ['cryptonets-mnist.onnx', 2],
  ] as const) {
    it(`${file}: encrypted logits ≈ simulator ≈ onnxruntime on 2 images`, async () => {
      const bytes = readFileSync(findModelFile(file));
      const model = importOnnx(bytes);
      const { program } = compileModel(model, { mode: 'latency' });
      assert.equal(program.packing, 'latency');
      assert.equal(program.inputs.length, 1);
      assert.ok(program.rotations.length > 0 && program.rotations.length === program.galoisElements.length);
      const hoisted = program.instructions.filter((i) => i.op === 'rotate_hoisted');
      assert.ok(hoisted.length >= 2, 'baby steps are hoisted');
      const two = images.subarray(0, 2 * 784);
      const ort = await runOnnxRuntime(bytes, two, [2, 1, 28, 28]);
      const simulated = simulateProgram(program, two, 2);
      assert.ok(rowRelativeError(simulated, ort.data, 10) < 1e-4);
      const run = await runEncrypted(program, two, 2, { seed: new Uint8Array(32).fill(4) });
      // With two blocks, both images share one ciphertext and each still gets its own logits.
      assert.equal(program.batchSize, imagesPerCiphertext);
      assert.equal(run.passes, 2 / imagesPerCiphertext);
      assert.ok(rowRelativeError(run.logits, simulated, 10) < 1e-3);
      assert.deepEqual(argmaxRows(run.logits, 2, 10), argmaxRows(ort.data, 2, 10));
    });
  }
});

describe('encrypted weights (latency packing): the model owner encrypts the diagonals under the client public key', () => {
  it('lola-small-mnist.onnx: ciphertext × ciphertext products give the same logits as plaintext weights', async () => {
    const model = importOnnx(readFileSync(findModelFile('lola-small-mnist.onnx')));
    const { program } = compileModel(model, { mode: 'latency', encryptWeights: true });
    validateProgram(program);
    const weights = program.inputs.filter((i) => i.owner === 'model');
    assert.ok(weights.length > 100, 'one ciphertext per diagonal and bias');
    assert.equal(program.plaintexts.length, 0);
    assert.ok(program.instructions.some((i) => i.op === 'mul_ct'));
    const freed = new Set(program.instructions.filter((i) => i.op === 'free').flatMap((i) => i.args));
    for (const w of weights) assert.ok(!freed.has(w.id), 'weights stay for the next image');
    const two = images.subarray(0, 2 * 784);
    const simulated = simulateProgram(program, two, 2);
    const run = await runEncrypted(program, two, 2, { seed: new Uint8Array(32).fill(6) });
    assert.ok(run.timings.encryptWeights > 0);
    assert.ok(rowRelativeError(run.logits, simulated, 10) < 1e-3);
    assert.deepEqual(argmaxRows(run.logits, 2, 10), argmaxRows(simulated, 2, 10));
  });
});
