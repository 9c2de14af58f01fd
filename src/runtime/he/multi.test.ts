import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { compileModel } from '../../nn/compile/index.ts';
import { InferenceClient } from '../../nn/client.ts';
import { InferenceServer } from './server.ts';
import type { Layer, LayerModel } from '../../nn/layers.ts';
import { Prng } from '../../ring/prng.ts';
import { FileTier } from '../store/file-tier.ts';
import { multiModelProgram, requestOrder, runTieredRequests } from './multi.ts';
import { realRunHomePolicy } from './program.ts';
import { IoPool } from '../io/io-pool.ts';
import { LruPolicy } from '../plan/policy.ts';
import { analyzeProgram } from '../plan/program.ts';

/** A dense 16 → 8 → 4 model with a square between, weights from a fixed-seed stream. */
function tinyModel(seed: number): LayerModel {
  const prng = Prng.fromSeed(new Uint8Array(32).fill(seed));
  const values = (n: number, scale: number) =>
    Float64Array.from({ length: n }, () => (2 * prng.nextDouble() - 1) * scale);
  const layers: Layer[] = [
    {
      kind: 'dense',
      name: 'fc0',
      sources: ['fc0'],
      inputs: ['x'],
      output: 'fc0',
      shape: [8],
      inFeatures: 16,
      outFeatures: 8,
      weight: values(128, 0.25),
      bias: values(8, 0.1),
    },
    { kind: 'square', name: 'sq', sources: ['sq'], inputs: ['fc0'], output: 'sq', shape: [8] },
    {
      kind: 'dense',
      name: 'fc1',
      sources: ['fc1'],
      inputs: ['sq'],
      output: 'fc1',
      shape: [4],
      inFeatures: 8,
      outFeatures: 4,
      weight: values(32, 0.35),
      bias: values(4, 0.1),
    },
  ];
  return {
    inputName: 'x',
    inputShape: [16],
    onnxInputShape: [16],
    outputName: 'fc1',
    outputShape: [4],
    layers,
    droppedSoftmax: false,
    source: { producerName: 'test', producerVersion: '1', opset: 13, irVersion: 8 },
  };
}

describe('many models in one tiered run', () => {
  const io = new IoPool({ workers: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'home-he-multi-'));
  after(async () => {
    await io.terminate();
    rmSync(dir, { recursive: true, force: true });
  });

  it('key-aware request order groups a model’s requests within each window, keeping first arrivals first', () => {
    const requests = [3, 1, 3, 2, 1, 3, 2].map((model) => ({ model }));
    assert.deepEqual(requestOrder(requests), [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(requestOrder(requests, 4), [0, 2, 1, 3, 4, 5, 6]);
    assert.deepEqual(requestOrder(requests, 7), [0, 2, 5, 1, 4, 3, 6]);
  });

  it('each model with its own keys, requests interleaved, budget below the footprint: outputs bit-identical', async () => {
    const programs = [1, 2, 3].map(
      (seed) => compileModel(tinyModel(seed), { mode: 'batch', batchSize: 4, inputRange: [0, 1] }).program,
    );
    const clients = programs.map((p, m) => new InferenceClient(p, { seed: new Uint8Array(32).fill(40 + m) }));
    const prng = Prng.fromSeed(new Uint8Array(32).fill(5));
    const arrivals = [2, 0, 1, 2, 0, 1];
    const requests = arrivals.map((m) => {
      const images = Float64Array.from({ length: 4 * 16 }, () => prng.nextDouble());
      return { model: m, inputs: clients[m].encryptPass(images, 0, 4) };
    });
    const expected: Float64Array[] = [];
    for (const q of requests) {
      const server = new InferenceServer(programs[q.model], clients[q.model].evaluationKeys);
      const out = await server.run(new Map([...q.inputs].map(([id, ct]) => [id, ct.copy()])));
      expected.push(clients[q.model].decryptPass(out, 4));
    }
    const combined = multiModelProgram(programs, requests, requestOrder(requests, 6));
    const analysis = analyzeProgram(combined);
    const footprint = analysis.initialBytes;
    const budget = Math.max(analysis.maxStepBytes + (1 << 20), Math.floor(footprint / 6));
    assert.ok(budget < footprint / 2);
    const tier = await FileTier.open({ name: 'disk', dir, io });
    for (const policy of [realRunHomePolicy(), new LruPolicy()]) {
      const result = await runTieredRequests({
        models: programs.map((program, m) => ({ program, evaluationKeys: clients[m].evaluationKeys })),
        requests,
        params: clients[0].params,
        policy,
        memoryBudgetBytes: budget,
        tiers: [tier],
        groupWindow: 6,
      });
      assert.deepEqual(result.order, [0, 3, 1, 4, 2, 5]);
      result.outputs.forEach((outputs, r) => {
        assert.deepEqual(clients[requests[r].model].decryptPass(outputs, 4), expected[r], `request ${r}`);
      });
      const s = result.stats;
      assert.ok(s.arenaPeakBytes + s.dramPeakBytes <= budget);
      assert.ok(s.keyBytesRead > 0, 'keys move in and out of memory');
      assert.deepEqual(s.readOnlyWritten, []);
    }
    await tier.close();
    for (const q of requests) for (const ct of q.inputs.values()) ct.dispose();
  });
});
