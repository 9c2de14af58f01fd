/**
 * A third-party CNN (the ONNX Model Zoo MNIST CNN: Conv, ReLU, MaxPool, Gemm, exported by CNTK) encrypted through
 * the tiered path, as `home infer` runs it: latency packing, keys streamed, a budget below the footprint. The ring
 * is cut to 2^14 (insecure, tests only) so that a pass takes under a minute; the program is the same one a secure
 * run compiles, only smaller. The model is read from ../shared/models/third-party (required in CI).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileModel } from '../../nn/compile/index.ts';
import { InferenceClient } from '../../nn/client.ts';
import { loadIdxImages } from '../../nn/data.ts';
import { importOnnx } from '../../nn/onnx/import.ts';
import { argmaxRows, simulate } from '../../nn/simulate.ts';
import { findDataFile } from '../../platform/bundled-files.ts';
import { simulateProgram } from '../../program/simulate.ts';
import { IoPool } from '../io/io-pool.ts';
import { analyzeProgram } from '../plan/program.ts';
import { FileTier } from '../store/file-tier.ts';
import { heRuntimeProgram } from './program.ts';
import { InferenceServer } from './server.ts';

const MODEL = fileURLToPath(
  new URL('../../../../shared/models/third-party/mnist-cntk-zoo-mnist-8.onnx', import.meta.url),
);
const SEED = new Uint8Array(32).fill(41);

describe('third-party CNN encrypted through the tiered runtime (ONNX zoo MNIST CNN)', () => {
  const io = new IoPool({ workers: 1 });
  const dirs: string[] = [];
  after(async () => {
    await io.terminate();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('runs under a budget below its footprint, keys streamed; argmax agrees with the float simulation', async (t) => {
    if (!existsSync(MODEL)) {
      assert.ok(!process.env.CI, `CI: ${MODEL} is missing (../shared is expected beside the checkout)`);
      t.skip(`no ${MODEL}`);
      return;
    }
    const model = importOnnx(readFileSync(MODEL));
    const images = loadIdxImages(readFileSync(findDataFile('mnist/t10k-images-idx3-ubyte.gz')), {
      scale: 1 / 255,
    }).data.subarray(0, 64 * 784);
    const { program, resources } = compileModel(model, {
      mode: 'latency',
      insecureLogN: 14,
      calibration: { images, count: 64 },
      // As `home infer` compiles for a budget: memory is the runtime's; one instruction holds at most 256 MiB.
      limits: { memoryBytes: Number.POSITIVE_INFINITY, stepBytes: 2 ** 28 },
    });
    assert.equal(program.logN, 14);
    assert.ok(
      model.layers.some((l) => l.kind === 'maxPool') && model.layers.some((l) => l.kind === 'conv'),
      'a CNN with MaxPool',
    );
    const count = program.batchSize;
    const maxStep = analyzeProgram(heRuntimeProgram(program)).maxStepBytes;
    // Room for the largest step and a quarter more; the footprint is many times that.
    const budget = Math.ceil(maxStep * 1.25);
    assert.ok(
      resources.serverBytes > 4 * budget,
      `footprint ${resources.serverBytes} B vs budget ${budget} B`,
    );
    const dir = mkdtempSync(join(tmpdir(), 'home-third-party-cnn-'));
    dirs.push(dir);
    const tier = await FileTier.open({ name: 'tmp', dir, io });
    const client = new InferenceClient(program, { seed: SEED, streamKeys: true });
    const server = new InferenceServer(program, client.keyStream!, {
      memory: { budgetBytes: budget, tiers: [tier] },
    });
    try {
      const outputs = await server.run(client.encryptPass(images, 0, count));
      const logits = client.decryptPass(outputs, count);
      const stats = server.lastRunStats!;
      assert.ok(
        stats.slowBytesRead > resources.keyBytes / 2,
        `read ${stats.slowBytesRead} B from the slow tier`,
      );
      assert.ok(stats.arenaPeakBytes <= budget, `arena peak ${stats.arenaPeakBytes} B within ${budget} B`);
      t.diagnostic(
        `logN ${program.logN}, ${count} image(s), footprint ${resources.serverBytes} B, budget ${budget} B, ` +
          `slow tier read ${stats.slowBytesRead} B written ${stats.slowBytesWritten} B, compute ${stats.computeSeconds.toFixed(1)} s`,
      );
      const pass = images.subarray(0, count * 784);
      const encrypted = argmaxRows(logits, count, 10);
      assert.deepEqual(encrypted, argmaxRows(simulateProgram(program, pass, count), count, 10));
      assert.deepEqual(encrypted, argmaxRows(simulate(model, pass, count), count, 10));
    } finally {
      server.dispose();
      await tier.close();
    }
  });
});
