import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deepModel, maxPoolModel, reluModel } from '../../../tests/support/models.ts';
import { rowRelativeError, seededValues } from '../../../tests/support/test-helpers.ts';
import { compileModel } from '../../nn/compile/index.ts';
import { argmaxRows } from '../../nn/simulate.ts';
import { simulateProgram } from '../../program/simulate.ts';
import { InvalidArgumentError } from '../../util/errors.ts';
import { runEncrypted } from './server.ts';
import { readFileSync } from 'node:fs';
import { importOnnx } from '../../nn/onnx/import.ts';
import { findModelFile } from '../../platform/bundled-files.ts';
import { analyzeProgram } from '../plan/program.ts';
import { heRuntimeProgram } from './program.ts';

/**
 * Compiled programs run encrypted, client and server in one process: the decrypted logits match the float
 * simulation of the same program (the approximations included), within CKKS noise.
 */
describe('compiled programs under encryption', () => {
  it('two primes per level (a 2^60 scale): encrypted = simulated to 1e-9', async () => {
    const { program } = compileModel(deepModel(2), { precisionBits: 40 });
    assert.equal(program.parameters.primesPerLevel, 2);
    const images = Float64Array.of(0.5, -0.25, 0.125, 0.75);
    const enc = await runEncrypted(program, images, 2, { seed: new Uint8Array(32).fill(2) });
    const sim = simulateProgram(program, images, 2);
    assert.ok(rowRelativeError(enc.logits, sim, 2) < 1e-9, `${rowRelativeError(enc.logits, sim, 2)}`);
  });

  for (const maxPool of ['polynomial', 'average'] as const) {
    it(`MaxPool (${maxPool}, batch packing): encrypted = simulated`, async () => {
      const count = 32;
      const images = seededValues(count * 16, 33, 0, 1);
      const { program } = compileModel(maxPoolModel(), {
        calibration: { images, count },
        approximation: { maxPool, degree: { abs: 6 } },
      });
      const sim = simulateProgram(program, images, count);
      const enc = await runEncrypted(program, images, count, { seed: new Uint8Array(32).fill(8) });
      // Two rounds of a degree-6 Chebyshev |·| at a 2^30 scale: about 10 bits of the noise budget go to it.
      const tolerance = maxPool === 'polynomial' ? 1e-2 : 1e-3;
      assert.ok(rowRelativeError(enc.logits, sim, 2) < tolerance, `${rowRelativeError(enc.logits, sim, 2)}`);
    });
  }

  describe('a model with Relu', () => {
    const model = reluModel();
    const count = 48;
    const images = seededValues(count * 36, 5, 0, 1);
    const approximation = { degree: { relu: 7 } };

    it('batch packing: encrypted = simulated, the same argmax, every phase timed', async () => {
      const { program } = compileModel(model, {
        calibration: { images, count },
        approximation,
        batchSize: 64,
      });
      const sim = simulateProgram(program, images, count);
      const enc = await runEncrypted(program, images, count, { seed: new Uint8Array(32).fill(3) });
      assert.ok(
        rowRelativeError(enc.logits, sim, 4) < 1e-3,
        `encrypted vs simulated ${rowRelativeError(enc.logits, sim, 4)}`,
      );
      const a = argmaxRows(enc.logits, count, 4);
      const b = argmaxRows(sim, count, 4);
      let agree = 0;
      for (let i = 0; i < count; i++) if (a[i] === b[i]) agree++;
      assert.ok(agree >= count - 1, `${agree}/${count}`);
      assert.ok(enc.timings.evaluate > 0 && enc.keyBytes > 0 && enc.uploadBytes > 0);
    });

    it('latency packing (Relu on all slots at once): encrypted = simulated', async () => {
      const { program } = compileModel(model, {
        mode: 'latency',
        calibration: { images, count },
        approximation,
      });
      const sim = simulateProgram(program, images.subarray(0, 72), 2);
      const enc = await runEncrypted(program, images.subarray(0, 72), 2, {
        seed: new Uint8Array(32).fill(5),
      });
      assert.ok(rowRelativeError(enc.logits, sim, 4) < 1e-3, `${rowRelativeError(enc.logits, sim, 4)}`);
    });

    it('refuses images outside the compiled range before encrypting anything', async () => {
      const { program } = compileModel(model, { calibration: { images, count } });
      const bad = Float64Array.from(images.subarray(0, 36));
      bad[7] = 255;
      await assert.rejects(
        () => runEncrypted(program, bad, 1),
        (e: unknown) => e instanceof InvalidArgumentError && /outside the input range/.test(e.message),
      );
    });

    it('plaintexts encoded on use give the same logits, bit for bit, as plaintexts kept resident', async () => {
      const sampleCount = 16;
      const sampleImages = images.subarray(0, sampleCount * 36);
      const options = {
        mode: 'latency' as const,
        calibration: { images: sampleImages, count: sampleCount },
        approximation,
      };
      const resident = compileModel(model, options);
      const forced = compileModel(model, { ...options, lazyPlaintexts: true });
      assert.ok(forced.program.plaintexts.every((p) => p.encodeOnUse === true));
      const sample = sampleImages.subarray(0, 72);
      const seed = new Uint8Array(32).fill(6);
      const onUse = await runEncrypted(forced.program, sample, 2, { seed });
      const kept = await runEncrypted(resident.program, sample, 2, { seed });
      assert.deepEqual(onUse.logits, kept.logits);
      assert.deepEqual(
        (await runEncrypted(resident.program, sample, 2, { seed, lazyPlaintexts: true })).logits,
        kept.logits,
      );
      const sim = simulateProgram(forced.program, sample, 2);
      assert.ok(rowRelativeError(onUse.logits, sim, 4) < 1e-3, `${rowRelativeError(onUse.logits, sim, 4)}`);
    });
  });
});

describe('limits.stepBytes: hoisted rotations split so no step of the runtime program holds more', () => {
  it('LoLa-Small latency: every step within the limit, more hoisted groups than unlimited, same simulation', () => {
    const model = importOnnx(readFileSync(findModelFile('lola-small-mnist.onnx')));
    const unlimited = compileModel(model, { mode: 'latency' }).program;
    const largest = analyzeProgram(heRuntimeProgram(unlimited, { schedule: 'program' })).maxStepBytes;
    const stepBytes = Math.floor(largest / 3);
    const { program } = compileModel(model, { mode: 'latency', limits: { stepBytes } });
    const runtime = analyzeProgram(heRuntimeProgram(program, { schedule: 'program' }));
    assert.ok(runtime.maxStepBytes <= stepBytes, `largest step ${runtime.maxStepBytes} ≤ ${stepBytes}`);
    const hoisted = (p: typeof program) => p.instructions.filter((i) => i.op === 'rotate_hoisted').length;
    assert.ok(
      hoisted(program) > hoisted(unlimited),
      `${hoisted(program)} > ${hoisted(unlimited)} hoisted groups`,
    );
    const images = seededValues(784, 5, 0, 1);
    assert.deepEqual(simulateProgram(program, images, 1), simulateProgram(unlimited, images, 1));
    // The groups are consumed into the giant steps' partial sums one after another instead of all being held.
    const peak = (p: typeof program) =>
      analyzeProgram(heRuntimeProgram(p, { schedule: 'program' })).peakLiveProducedBytes;
    assert.ok(peak(program) < peak(unlimited), `peak live ${peak(program)} < ${peak(unlimited)} bytes`);
  });
});
