import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Bootstrapper } from '../../ckks/bootstrapping/bootstrapper.ts';
import { compileModel } from '../../nn/compile/index.ts';
import { simulate } from '../../nn/simulate.ts';
import { decodeProgram, encodeProgram } from '../../program/codec.ts';
import { OPS } from '../../program/ops.ts';
import type { HeProgram } from '../../program/program.ts';
import { simulateProgram } from '../../program/simulate.ts';
import { validateProgram } from '../../program/validate.ts';
import { FormatError, MissingKeyError } from '../../util/errors.ts';
import { InferenceClient } from '../../nn/client.ts';
import { deepModel, residualModel } from '../../../tests/support/models.ts';
import { InferenceServer, runEncrypted } from './server.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StashedKeys } from '../../ckks/key-source.ts';
import { defaultContext } from '../../ring/context.ts';
import { IoPool } from '../io/io-pool.ts';
import { analyzeProgram } from '../plan/program.ts';
import { FileStash } from '../store/file-stash.ts';
import { FileTier } from '../store/file-tier.ts';
import { heRuntimeProgram } from './program.ts';

/**
 * Programs with bootstraps (logN 10, insecure, for speed): the compiler places them where the levels run out, the
 * program format carries them, and the encrypted run of a small residual network computes what its float
 * simulation computes. The logN 16 figures are `home bench bootstrap`'s and ResNet-20's.
 */
function calibration(count: number, size: number): Float64Array {
  return Float64Array.from({ length: count * size }, (_, i) => Math.sin(0.37 * i + 1) * 0.9);
}

function bootstraps(program: HeProgram) {
  return program.instructions.filter((ins) => ins.op === 'bootstrap');
}

/**
 * Runs `program` encrypted on `count` images and checks its logits against the program's float simulation (to
 * CKKS noise) and the simulation against the float model with the same polynomials (to rounding); returns the
 * simulated logits.
 */
async function assertEncryptedIsSimulated(
  program: HeProgram,
  model: Parameters<typeof simulate>[0],
  images: Float64Array,
  count: number,
  seed: number,
): Promise<Float64Array> {
  const run = await runEncrypted(program, images, count, { seed: new Uint8Array(32).fill(seed) });
  const simulated = simulateProgram(program, images, count);
  const polynomial = simulate(model, images, count, { mode: 'polynomial' });
  for (let i = 0; i < run.logits.length; i++) {
    assert.ok(
      Math.abs(run.logits[i] - simulated[i]) < 1e-4,
      `logit ${i}: ${run.logits[i]} vs ${simulated[i]}`,
    );
    assert.ok(Math.abs(simulated[i] - polynomial[i]) < 1e-9, `logit ${i}: the simulator is the float model`);
  }
  return simulated;
}

describe('bootstraps in HE programs (logN 10)', () => {
  const model = residualModel(2);
  const images = calibration(32, 32);
  const { program, model: approximated } = compileModel(model, {
    mode: 'latency',
    insecureLogN: 10,
    calibration: { images, count: 32 },
    approximation: { degree: 15 },
    bootstrapping: true,
    name: 'resnet-mini',
  });

  it('places bootstraps only where a layer would run out of levels', () => {
    const placed = bootstraps(program);
    assert.ok(program.bootstrapping, 'the program names its bootstrapping parameters');
    assert.ok(placed.length >= 1, 'a 5-ReLU network of degree-15 ReLUs needs more than 23 levels');
    const levelsLeft = program.bootstrapping.levelsLeft ?? 8;
    const levelOf = new Map<number, number>(program.inputs.map((i) => [i.id, i.level]));
    for (const ins of program.instructions) for (const id of ins.out) levelOf.set(id, ins.level);
    for (const ins of placed) {
      assert.equal(ins.level, levelsLeft);
      // The value it refreshes had fewer levels than its reader consumes (at most 6: a degree-15 ReLU after a sum).
      assert.ok(
        (levelOf.get(ins.args[0]) as number) < 7,
        `bootstrap of a level-${levelOf.get(ins.args[0])} value`,
      );
      assert.ok(program.constants[ins.constant as number] >= 1);
    }
  });

  it('round-trips through the program format, which checks bootstrap fields', () => {
    const again = decodeProgram(encodeProgram(program));
    assert.deepEqual(again.bootstrapping, program.bootstrapping);
    assert.equal(bootstraps(again).length, bootstraps(program).length);
    const at = program.instructions.findIndex((ins) => ins.op === 'bootstrap');
    const broken = (edit: (p: HeProgram) => void) => {
      const copy = decodeProgram(encodeProgram(program));
      edit(copy);
      return () => validateProgram(copy);
    };
    assert.throws(
      broken((p) => {
        p.instructions[at].level = 3;
      }),
      FormatError,
    );
    assert.throws(
      broken((p) => {
        delete p.bootstrapping;
      }),
      /without bootstrapping parameters/,
    );
    assert.throws(
      broken((p) => {
        p.constants[p.instructions[at].constant as number] = 0.25;
      }),
      /bound/,
    );
  });

  it('runs encrypted: the logits of the float simulation, bootstraps and all', async () => {
    const count = 2;
    const few = images.subarray(0, count * 32);
    const simulated = await assertEncryptedIsSimulated(program, approximated, few, count, 9);
    // The noise model moves the logits by about the bootstrap's error, no more.
    const noisy = simulateProgram(program, few, count, { bootstrapNoise: { bits: 16 } });
    let moved = 0;
    for (let i = 0; i < noisy.length; i++) moved = Math.max(moved, Math.abs(noisy[i] - simulated[i]));
    assert.ok(moved > 0 && moved < 1e-2, `noise model moved the logits by ${moved}`);
  });

  it('runs tiered under a budget, bootstrapping keys and diagonals in a file stash: the same logits', async () => {
    const count = 2;
    const few = images.subarray(0, count * 32);
    const dir = mkdtempSync(join(tmpdir(), 'home-he-bootstrap-'));
    const io = new IoPool();
    const tier = await FileTier.open({ name: 'disk', dir, io });
    const stash = FileStash.create(defaultContext(), dir);
    try {
      const client = new InferenceClient(program, {
        seed: new Uint8Array(32).fill(9),
        bootstrapStash: stash,
      });
      const keys = client.bootstrappingKeys;
      assert.ok(keys?.galois instanceof StashedKeys, 'the bootstrapping Galois keys wait in the stash');
      // Room for the largest step (a bootstrap's declared working set) and little more.
      const largestStep = analyzeProgram(heRuntimeProgram(program)).maxStepBytes;
      const server = new InferenceServer(program, client.evaluationKeys, {
        memory: { budgetBytes: Math.ceil(largestStep * 1.5), tiers: [tier] },
        bootstrappingKeys: keys,
        bootstrapStash: stash,
      });
      const logits = client.decryptPass(await server.run(client.encryptPass(few, 0, count)), count);
      const inMemory = await runEncrypted(program, few, count, { seed: new Uint8Array(32).fill(9) });
      for (let i = 0; i < logits.length; i++)
        assert.ok(
          Math.abs(logits[i] - inMemory.logits[i]) < 1e-6,
          `logit ${i}: ${logits[i]} vs ${inMemory.logits[i]}`,
        );
      assert.ok(server.lastBootstrapTimings && server.lastBootstrapTimings.evalMod > 0);
      server.dispose();
      assert.ok(stash.byteLength > 0);
    } finally {
      stash.close();
      await tier.close();
      await io.terminate();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to serve a bootstrapping program without the bootstrapping keys', () => {
    const client = new InferenceClient(program, { seed: new Uint8Array(32).fill(2) });
    assert.ok(client.bootstrappingKeys);
    assert.throws(() => new InferenceServer(program, client.evaluationKeys), MissingKeyError);
  });

  it('bootstrap op: the identity on slot vectors, its noise model aside', () => {
    const x = Float64Array.of(0.5, -1.5, 2);
    const [y] = OPS.bootstrap.simulate([x], { constant: 4, fields: { level: 8, scale: 2 ** 50 } });
    assert.deepEqual(y, x);
    assert.notEqual(y, x);
    const [z] = OPS.bootstrap.simulate([x], {
      constant: 4,
      fields: {},
      bootstrapNoise: (v, bound) => v.fill(bound),
    });
    assert.deepEqual(z, Float64Array.of(4, 4, 4));
    assert.equal(
      OPS.bootstrap.scratch({} as never, { level: 8, degree: 1, bytes: { args: [] }, scratchBytes: 7 }),
      7,
    );
  });
});

describe('baby-step giant-step polynomials in programs (logN 10)', () => {
  const images = calibration(32, 32);
  const compile = (polynomials: 'basis' | 'bsgs', degree: number) =>
    compileModel(residualModel(2), {
      mode: 'latency',
      insecureLogN: 10,
      calibration: { images, count: 32 },
      approximation: { degree },
      bootstrapping: true,
      polynomials,
    });
  const reluLevels = (program: HeProgram) =>
    program.layers.filter((l) => l.name.includes('Relu')).map((l) => l.levels);

  it('a degree-d ReLU takes ⌈log2(d + 1)⌉ levels (one fewer than the basis recursion): fewer bootstraps', () => {
    const basis = compile('basis', 63).program;
    const bsgs = compile('bsgs', 63).program;
    assert.deepEqual(new Set(reluLevels(basis)), new Set([7]));
    assert.deepEqual(new Set(reluLevels(bsgs)), new Set([6]));
    assert.ok(bootstraps(bsgs).length < bootstraps(basis).length);
    assert.ok(bsgs.instructions.length < basis.instructions.length);
    // Degree 127 in the levels degree 63 took.
    assert.deepEqual(new Set(reluLevels(compile('bsgs', 127).program)), new Set([7]));
  });

  it('runs encrypted: the logits of the float model with the same polynomials', async () => {
    const { program, model } = compile('bsgs', 127);
    await assertEncryptedIsSimulated(program, model, images.subarray(0, 2 * 32), 2, 5);
  });

  it('rejects an unknown evaluation by name', () => {
    assert.throws(
      () => compileModel(residualModel(1), { polynomials: 'horner' as 'bsgs' }),
      /polynomials = horner: expected 'basis' or 'bsgs'/,
    );
  });
});

describe('bootstrap placement on a deep chain', () => {
  it('needs ⌈(depth − top) / levelsLeft⌉ bootstraps for a chain of squares, each at level 0', () => {
    // Gemm then 40 squares: 41 levels; the chain offers 23 from the top and 8 after each bootstrap.
    const model = deepModel(40);
    const images = calibration(16, 2);
    const { program } = compileModel(model, {
      mode: 'latency',
      insecureLogN: 10,
      calibration: { images, count: 16 },
      bootstrapping: true,
    });
    const top = program.parameters.depth;
    const levelsLeft = program.bootstrapping?.levelsLeft ?? 8;
    assert.equal(top, 23);
    const placed = bootstraps(program);
    assert.equal(placed.length, Math.ceil((41 - top) / levelsLeft));
    const levelOf = new Map<number, number>(program.inputs.map((i) => [i.id, i.level]));
    for (const ins of program.instructions) for (const id of ins.out) levelOf.set(id, ins.level);
    for (const ins of placed) assert.equal(levelOf.get(ins.args[0]), 0);
    // Its working set is declared for the runtime's plan.
    const bp = new InferenceClient(program, { seed: new Uint8Array(32) }).bootstrappingParameters;
    assert.ok(bp);
    assert.equal(placed[0].scratchBytes, Bootstrapper.workingSetBytes(bp));
  });

  it('is refused with bootstrapping: false, and in batch packing when asked for', () => {
    assert.throws(
      () =>
        compileModel(deepModel(40), {
          mode: 'latency',
          maxLogN: 15,
          calibration: { images: calibration(4, 2), count: 4 },
          bootstrapping: false,
        }),
      /depth/,
    );
    assert.throws(() => compileModel(deepModel(2), { mode: 'batch', bootstrapping: true }), /latency/);
  });
});
