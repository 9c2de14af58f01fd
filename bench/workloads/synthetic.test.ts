import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyzeProgram } from '../../src/runtime/plan/program.ts';
import {
  cryptoNetsProgram,
  DEEP_HE_SHAPE,
  deepCnnProgram,
  opModularMultiplies,
  heSizes,
  interleavedModelsProgram,
  randomProgram,
  SMALL_HE_SHAPE,
} from './synthetic.ts';

test('HE sizes and costs follow the shape', () => {
  assert.deepEqual(heSizes(DEEP_HE_SHAPE), {
    ciphertext: 2 * 16384 * 16 * 4,
    plaintext: 16384 * 16 * 4,
    keySwitchKey: 4 * 2 * 16384 * 20 * 4,
  });
  assert.equal(heSizes(SMALL_HE_SHAPE).ciphertext, 524_288);
  const rotateMs = (opModularMultiplies(DEEP_HE_SHAPE, 'rotate') * DEEP_HE_SHAPE.nsPerModularMultiply) / 1e6;
  // node-seal rotates at N=16384 in 34.7 ms (ANCHORS §1); the SIMD kernels are ≈ 3.6× faster per NTT (§2).
  assert.ok(rotateMs > 34.7 / 6 && rotateMs < 34.7 / 2, `modelled rotation ${rotateMs} ms`);
  assert.ok(opModularMultiplies(DEEP_HE_SHAPE, 'mul_plain') < opModularMultiplies(DEEP_HE_SHAPE, 'rescale'));
});

test('generated programs are valid and deterministic', () => {
  for (const program of [
    cryptoNetsProgram({ imageSide: 12, hidden: 8 }),
    cryptoNetsProgram({ imageSide: 12, hidden: 8, frees: 'last-use' }),
    deepCnnProgram({ layers: 4, channels: 2 }),
    deepCnnProgram({ layers: 3, channels: 2, frees: 'none' }),
    interleavedModelsProgram({ models: 3, requestsPerModel: 2 }),
    randomProgram(1),
  ]) {
    const a = analyzeProgram(program);
    assert.ok(a.outputs.size > 0, `${program.name} has outputs`);
    assert.ok(
      program.steps.every((s) => (s.computeCostNs ?? 0) > 0),
      `${program.name} has costs`,
    );
  }
  assert.deepEqual(randomProgram(42), randomProgram(42));
  assert.notDeepEqual(randomProgram(42), randomProgram(43));
  const deep = analyzeProgram(deepCnnProgram({ layers: 20, channels: 4 }));
  assert.ok(deep.totalBytes > 4e9, 'the default deep CNN has gigabytes of objects');
  const keys = deepCnnProgram({ layers: 6, stages: 3 }).objects.filter((o) => o.kind === 'rotation-key');
  assert.equal(keys.length, 3 * 8, 'one rotation key per tap and stage');
});
