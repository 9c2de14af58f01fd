import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type EvaluationKeyStream, KeyGenerator } from '../../ckks/keys.ts';
import { compileModel } from '../../nn/compile/index.ts';
import { InferenceClient } from '../../nn/client.ts';
import { loadIdxImages } from '../../nn/data.ts';
import { importOnnx } from '../../nn/onnx/import.ts';
import { argmaxRows } from '../../nn/simulate.ts';
import { findDataFile, findModelFile } from '../../platform/bundled-files.ts';
import { ParametersShape } from '../../ckks/shape.ts';
import { analyzeProgram } from '../plan/program.ts';
import { heRuntimeProgram } from './program.ts';
import { simulateProgram } from '../../program/simulate.ts';
import { InvalidArgumentError } from '../../util/errors.ts';
import { IoPool } from '../io/io-pool.ts';
import { DEVICE_PROFILES } from '../store/devices.ts';
import { FileTier } from '../store/file-tier.ts';
import { InferenceServer } from './server.ts';

const SEED = new Uint8Array(32).fill(23);

describe('streamed evaluation keys (made when the tiered store asks, written to the slow tier, freed)', () => {
  const io = new IoPool({ workers: 1 });
  const dirs: string[] = [];
  after(async () => {
    await io.terminate();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('LoLa-Small latency packing, keys over the budget: the client never holds the keys, outputs agree', async () => {
    const model = importOnnx(readFileSync(findModelFile('lola-small-mnist.onnx')));
    const { program } = compileModel(model, { mode: 'latency' });
    const count = Math.min(program.batchSize, 4);
    const images = loadIdxImages(readFileSync(findDataFile('mnist/t10k-images-idx3-ubyte.gz')), {
      scale: 1 / 256,
    }).data.subarray(0, 2 * count * 784);
    const client = new InferenceClient(program, { seed: SEED, streamKeys: true });
    const stream = client.keyStream;
    assert.ok(stream, 'the client streams its keys');
    assert.equal(client.evaluationKeys.galois.size, 0, 'no key made up front');
    assert.equal(client.evaluationKeys.relinearization, undefined);
    assert.equal(stream.galoisElements.length, program.rotations.length);
    const dir = mkdtempSync(join(tmpdir(), 'home-he-key-stream-'));
    dirs.push(dir);
    const tier = await FileTier.open({ name: 'nvme', dir, io, device: DEVICE_PROFILES['nvme-gen4'] });
    // Room for the largest step and a little more: far below the keys (they alone exceed it).
    const largestStep = analyzeProgram(heRuntimeProgram(program, { schedule: 'program' })).maxStepBytes;
    const budget = Math.ceil(largestStep * 1.5);
    const keyBytes = ParametersShape.of(program.parameters).switchingKeyBytes() * program.rotations.length;
    assert.ok(keyBytes > budget, `keys ${keyBytes} B over the budget ${budget} B`);
    const server = new InferenceServer(program, stream, { memory: { budgetBytes: budget, tiers: [tier] } });
    const keyCount = program.rotations.length + (program.relinearization ? 1 : 0);
    const madeByRun: number[] = [];
    for (let pass = 0; pass < 2; pass++) {
      const before = stream.made;
      const outputs = await server.run(client.encryptPass(images, pass * count, count));
      madeByRun.push(stream.made - before);
      const logits = client.decryptPass(outputs, count);
      const slice = images.subarray(pass * count * 784, (pass + 1) * count * 784);
      assert.deepEqual(
        argmaxRows(logits, count, 10),
        argmaxRows(simulateProgram(program, slice, count), count, 10),
        `pass ${pass}: encrypted argmax = simulator argmax`,
      );
      for (const g of stream.galoisElements)
        assert.ok(tier.has(`key:galois:${g}`), `key ${g} in the slow tier`);
    }
    server.dispose();
    assert.equal(madeByRun[0], keyCount, 'the first run makes every key once');
    // Later runs read the keys from the slow tier; only a key the plan warm-starts in memory is made again.
    assert.ok(madeByRun[1] < keyCount, `second run made ${madeByRun[1]} of ${keyCount} keys`);
    assert.ok(client.keygenSeconds >= stream.seconds && stream.seconds > 0);
  });

  it('needs a tiered server; refuses keys it does not make, by name', () => {
    const model = importOnnx(readFileSync(findModelFile('lola-small-mnist.onnx')));
    const { program } = compileModel(model, { mode: 'latency' });
    const client = new InferenceClient(program, { seed: SEED, streamKeys: true });
    assert.throws(
      () => new InferenceServer(program, client.keyStream as EvaluationKeyStream),
      /streamed evaluation keys need a tiered server/,
    );
    const keygen = new KeyGenerator(client.params);
    const stream = keygen.streamEvaluationKeys(keygen.generateSecretKey(), {
      relinearization: false,
      rotations: [1],
    });
    assert.throws(
      () => stream.make(3),
      (e: unknown) =>
        e instanceof InvalidArgumentError && /Galois element 3: not one of the 1/.test(e.message),
    );
    assert.throws(() => stream.make('relinearization'), /makes none/);
    const key = stream.make(stream.galoisElements[0]);
    assert.equal(key.params, client.params);
    key.dispose();
    assert.equal(stream.made, 1);
  });
});
