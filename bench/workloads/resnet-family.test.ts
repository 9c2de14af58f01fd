import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadImageSet } from '../../src/cli/images.ts';
import { normalizeChannels } from '../../src/cli/infer-packing.ts';
import { importOnnx } from '../../src/nn/onnx/import.ts';
import { simulate } from '../../src/nn/simulate.ts';
import { findDataFile, findModelFile } from '../../src/platform/bundled-files.ts';
import { deepenResNet } from './resnet-family.ts';

const resnet20 = readFileSync(findModelFile('cifar10/resnet20-akamaster.onnx'));

function logits(bytes: Uint8Array, count: number): Float64Array {
  const model = importOnnx(bytes);
  const set = loadImageSet(
    findDataFile('cifar10/test-0000-0499-images.npy'),
    1 / 255,
    model.onnxInputShape,
    '--data',
  );
  const images = set.data.slice(0, count * 3072);
  normalizeChannels(images, model.onnxInputShape, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
  return simulate(model, images, count);
}

describe('deepenResNet', () => {
  it('grows ResNet-20 to 6n + 2 layers: n identity blocks per stage, each a Conv, Relu, Conv, Add, Relu', () => {
    for (const [depth, blocks] of [
      [32, 5],
      [56, 9],
    ] as const) {
      const model = importOnnx(deepenResNet(resnet20, { depth }));
      const relus = model.layers.filter((l) => l.kind === 'activation' && l.fn === 'relu');
      // The stem's ReLU and two per block.
      assert.equal(relus.length, 1 + 2 * 3 * blocks, `ResNet-${depth}`);
      const convs = model.layers.filter((l) => l.kind === 'conv');
      assert.ok(convs.length >= 1 + 2 * 3 * blocks, `ResNet-${depth}: ${convs.length} convolutions`);
      const adds = model.layers.filter((l) => l.kind === 'binary' && l.op === 'add');
      assert.equal(adds.length, 3 * blocks, `ResNet-${depth}`);
    }
  });

  it('added blocks with a vanishing residual branch leave the trained network’s logits as they were', () => {
    // relu(x + ε·f(x)) = x + O(ε) for the non-negative x a block reads: the logits stay ResNet-20's.
    const base = logits(resnet20, 2);
    const grown = logits(deepenResNet(resnet20, { depth: 32, residualScale: 1e-9 }), 2);
    for (let i = 0; i < base.length; i++) assert.ok(Math.abs(base[i] - grown[i]) < 1e-5, `logit ${i}`);
    // With the default damping the added blocks do change them.
    const damped = logits(deepenResNet(resnet20, { depth: 32 }), 2);
    assert.ok(
      base.some((v, i) => Math.abs(v - damped[i]) > 1e-3),
      'the default residual scale changes the logits',
    );
  });

  it('rejects depths outside the family with a message naming the value', () => {
    assert.throws(() => deepenResNet(resnet20, { depth: 27 }), /depth = 27: expected 6n \+ 2/);
    assert.throws(() => deepenResNet(resnet20, { depth: 14 }), /depth = 14/);
    assert.throws(() => deepenResNet(resnet20, { depth: 32, residualScale: 0 }), /residualScale = 0/);
  });
});
