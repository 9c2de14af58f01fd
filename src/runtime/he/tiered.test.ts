import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Encoder } from '../../ckks/encoder.ts';
import { KeyGenerator } from '../../ckks/keys.ts';
import { Prng } from '../../ring/prng.ts';
import { programKeyLevels } from '../../program/analysis.ts';
import type { Ciphertext } from '../../ckks/objects.ts';
import { compileModel } from '../../nn/compile/index.ts';
import { loadIdxImages } from '../../nn/data.ts';
import { InferenceClient } from '../../nn/client.ts';
import { simulateProgram } from '../../program/simulate.ts';
import { InferenceServer } from './server.ts';
import { findDataFile, findModelFile } from '../../platform/bundled-files.ts';
import { importOnnx } from '../../nn/onnx/import.ts';
import type { HeProgram } from '../../program/program.ts';
import { argmaxRows } from '../../nn/simulate.ts';
import { FormatError, ResourceError } from '../../util/errors.ts';
import { DEVICE_PROFILES } from '../store/devices.ts';
import { simulate } from '../plan/planner.ts';
import { FileTier } from '../store/file-tier.ts';
import { heRuntimeProgram } from './program.ts';
import { heObjectSource, runTieredHe, type TieredHeResult } from './tiered.ts';
import { IoPool } from '../io/io-pool.ts';
import { HomePolicy, LruPolicy, type Policy } from '../plan/policy.ts';
import { analyzeProgram } from '../plan/program.ts';

const SEED = new Uint8Array(32).fill(11);
const images = loadIdxImages(readFileSync(findDataFile('mnist/t10k-images-idx3-ubyte.gz')), {
  scale: 1 / 256,
}).data;

interface Fixture {
  program: HeProgram;
  client: InferenceClient;
  inputs: Map<number, Ciphertext>;
  count: number;
  reference: Float64Array;
  peak: number;
}

/** A model pass encrypted with fixed seeds and its all-in-memory reference (the plain server). */
async function fixture(mode: 'batch' | 'latency', count: number): Promise<Fixture> {
  const model = importOnnx(readFileSync(findModelFile('lola-small-mnist.onnx')));
  const options = { mode, ...(mode === 'batch' ? { batchSize: count } : {}) };
  // Compiled for the smallest budget the tests run at (1/8 of the footprint), as `home infer` compiles for its
  // budget: no instruction holds more than half of it (a dense layer's block is split into groups of rows).
  const footprint = await peakOf(compileModel(model, options).program);
  const { program } = compileModel(model, { ...options, limits: { stepBytes: Math.floor(footprint / 16) } });
  const client = new InferenceClient(program, { seed: SEED });
  const pass = images.subarray(0, count * 784);
  const inputs = client.encryptPass(pass, 0, count);
  const server = new InferenceServer(program, client.evaluationKeys);
  const outputs = await server.run(new Map([...inputs].map(([id, ct]) => [id, ct.copy()])));
  server.dispose();
  const reference = client.decryptPass(outputs, count);
  // The encrypted reference agrees with the float simulation of the program.
  assert.deepEqual(
    argmaxRows(reference, count, 10),
    argmaxRows(simulateProgram(program, pass, count), count, 10),
  );
  return { program, client, inputs, count, reference, peak: 0 };
}

async function peakOf(program: HeProgram): Promise<number> {
  const run = simulate(heRuntimeProgram(program, { schedule: 'program' }), {
    policy: 'home',
    dramBudgetBytes: Infinity,
    slow: null,
  });
  return run.summary.peakBytes.dram;
}

describe('tiered encrypted execution (LoLa-Small)', () => {
  const io = new IoPool({ workers: 1 });
  const dirs: string[] = [];
  const tierIn = async (
    options: { capacityBytes?: number; beforeCommit?: (tempPath: string, id: string) => Promise<void> } = {},
  ) => {
    const dir = mkdtempSync(join(tmpdir(), 'home-he-tiered-'));
    dirs.push(dir);
    const tier = await FileTier.open({
      name: 'nvme',
      dir,
      io,
      device: DEVICE_PROFILES['nvme-gen4'],
      ...options,
    });
    return { dir, tier };
  };
  let batch: Fixture;
  before(async () => {
    batch = await fixture('batch', 8);
    batch.peak = await peakOf(batch.program);
  });
  after(async () => {
    await io.terminate();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    for (const ct of batch?.inputs.values() ?? []) ct.dispose();
  });

  /** The objects of a pass of `fx` (keys, inputs, weights encoded on demand), fresh for each run. */
  const sourceOf = (fx: Fixture) =>
    heObjectSource({
      program: fx.program,
      evaluationKeys: fx.client.evaluationKeys,
      inputs: fx.inputs,
      encoder: new Encoder(fx.client.params),
    });

  const run = async (
    fx: Fixture,
    policy: Policy,
    budget: number,
    tier: FileTier,
    options: { seededKeys?: boolean; streamPlan?: boolean } = {},
  ) => {
    const result = await runTieredHe({
      program: fx.program,
      params: fx.client.params,
      source: sourceOf(fx),
      policy,
      memoryBudgetBytes: budget,
      tiers: [tier],
      seededKeys: options.seededKeys ?? false,
      ...(options.streamPlan ? { streamPlan: true } : {}),
    });
    const logits = fx.client.decryptPass(result.outputs, fx.count);
    return { logits, result };
  };

  const checkRun = (fx: Fixture, result: TieredHeResult, logits: Float64Array, budget: number) => {
    assert.deepEqual(logits, fx.reference, 'decrypted outputs bit-identical to the all-in-memory run');
    const s = result.stats;
    assert.ok(s.dramPeakBytes <= s.dramPoolBytes, `DRAM pool peak ${s.dramPeakBytes} ≤ ${s.dramPoolBytes}`);
    assert.ok(s.arenaPeakBytes <= s.arenaBytes, `arena peak ${s.arenaPeakBytes} ≤ ${s.arenaBytes}`);
    assert.ok(s.arenaBytes + s.dramPoolBytes <= budget);
    // What the run held, measured: live objects in the arena plus byte-form buffers in the DRAM pool.
    assert.ok(
      s.arenaPeakBytes + s.dramPeakBytes <= budget,
      `arena peak ${s.arenaPeakBytes} + DRAM pool peak ${s.dramPeakBytes} ≤ budget ${budget}`,
    );
    assert.ok(s.slowBytesRead > 0, 'the budget forces slow-tier traffic');
    // Only dirty objects are written, each once per version it had when evicted.
    const analysis = analyzeProgram(result.runtimeProgram);
    assert.deepEqual(s.readOnlyWritten, []);
    for (const [id, times] of result.execution.writes) {
      assert.equal(analysis.objects.get(id)?.readOnly, false, `${id} is writable`);
      const versions = result.runtimeProgram.steps.filter((step) => step.writes.includes(id)).length;
      assert.ok(times <= versions, `${id} written ${times} times for ${versions} versions`);
    }
  };

  it('HomE and LRU at 1/8 of the peak footprint: identical outputs, budget kept, only dirty objects written', async () => {
    const budget = Math.floor(batch.peak / 8);
    const { tier } = await tierIn();
    for (const policy of [new HomePolicy({ lookahead: 64, minLookaheadSteps: 16 }), new LruPolicy()]) {
      const { logits, result } = await run(batch, policy, budget, tier);
      checkRun(batch, result, logits, budget);
      // The run held at most 1/8 of what the program holds at once when memory is unlimited.
      assert.ok(result.stats.arenaPeakBytes + result.stats.dramPeakBytes <= batch.peak / 8);
    }
    assert.deepEqual(
      readdirSync(tier.dir).filter((f) => f.endsWith('.hobj') || f.endsWith('.tmp')),
      [],
      'no object files left behind',
    );
  });

  it('a plan streamed from the planning thread while the run executes it: the same actions, identical outputs', async () => {
    const budget = Math.floor(batch.peak / 8);
    const { tier } = await tierIn();
    const policy = () => new HomePolicy({ lookahead: 64, minLookaheadSteps: 16 });
    const inline = await run(batch, policy(), budget, tier);
    const { logits, result: streamed } = await run(batch, policy(), budget, tier, { streamPlan: true });
    checkRun(batch, streamed, logits, budget);
    assert.equal(streamed.madePlan, undefined, 'the plan came from the planning thread');
    const strip = (actions: readonly { startNs: number; endNs: number }[]) =>
      actions.map(({ startNs: _s, endNs: _e, ...rest }) => rest);
    assert.deepEqual(strip(streamed.plan.actions), strip(inline.result.plan.actions));
    assert.deepEqual([...streamed.plan.initial], [...inline.result.plan.initial]);
    assert.deepEqual(streamed.plan.slowPeakBytes, inline.result.plan.slowPeakBytes);
    assert.ok(streamed.stats.planningSeconds > 0);
    assert.equal(streamed.stats.slowBytesRead, inline.result.stats.slowBytesRead);
  });

  it("a streamed plan that cannot be made fails the run with the planner's typed error, before anything is written", async () => {
    const { tier } = await tierIn({ capacityBytes: 2 ** 20 });
    const source = sourceOf(batch);
    await assert.rejects(
      runTieredHe({
        program: batch.program,
        params: batch.client.params,
        source,
        policy: new HomePolicy(),
        memoryBudgetBytes: Math.floor(batch.peak / 8),
        tiers: [tier],
        streamPlan: true,
      }),
      (e: unknown) => e instanceof ResourceError && /slow tier|capacity|full/.test(e.message),
    );
    assert.deepEqual(
      readdirSync(tier.dir).filter((f) => f.endsWith('.hobj')),
      [],
    );
  });

  it('all in memory is the same executor with an unlimited budget and no tier: identical outputs, nothing moved', async () => {
    const source = sourceOf(batch);
    const result = await runTieredHe({
      program: batch.program,
      params: batch.client.params,
      source,
      policy: new HomePolicy(),
      memoryBudgetBytes: Infinity,
    });
    assert.deepEqual(batch.client.decryptPass(result.outputs, batch.count), batch.reference);
    const kinds = new Set(result.plan.actions.map((a) => a.kind));
    assert.deepEqual([...kinds].sort(), ['alloc', 'compute', 'decision', 'release']);
    assert.equal(result.stats.slowBytesRead + result.stats.slowBytesWritten + result.stats.copyBytes, 0);
    assert.equal(result.stats.arenaPeakBytes, result.plan.run.summary.peakBytes.arena);
  });

  it('seeded keys: identical outputs, half the key bytes read', async () => {
    const budget = Math.floor(batch.peak / 8);
    const { tier } = await tierIn();
    const full = await run(batch, new HomePolicy(), budget, tier, { seededKeys: false });
    const seeded = await run(batch, new HomePolicy(), budget, tier, { seededKeys: true });
    checkRun(batch, seeded.result, seeded.logits, budget);
    assert.deepEqual(seeded.logits, full.logits);
    const keyBytes = batch.client.evaluationKeys.relinearization!.byteLength;
    assert.ok(
      full.result.stats.keyBytesRead >= keyBytes,
      'the relinearization key is read from the slow tier',
    );
    assert.equal(
      seeded.result.stats.keyBytesRead * 2,
      full.result.stats.keyBytesRead + 64 * (full.result.stats.keyBytesRead / keyBytes),
    );
  });

  it('keys made for the top level are cut to the levels the program uses them at: same outputs to noise, seeded too', async () => {
    const fx = await fixture('latency', 1);
    const params = fx.client.params;
    const levels = programKeyLevels(fx.program);
    assert.ok(
      [...levels.values()].some((l) => l < params.depth),
      'some rotation is used below the top level',
    );
    for (const [g, level] of levels) assert.equal(fx.client.evaluationKeys.galois.get(g)!.key.level, level);
    // The client's secret key (its key generator's stream, seeded alike), with every key made at the top level.
    const keygen = new KeyGenerator(params, Prng.fromSeed(SEED).fork(1));
    const secretKey = keygen.generateSecretKey();
    const top = keygen.generateEvaluationKeys(secretKey, {
      relinearization: fx.program.relinearization,
      rotations: fx.program.rotations,
    });
    // Below the peak (a tiered run), above the largest step (a hoisted rotation group) with room to spare.
    const peak = await peakOf(fx.program);
    const budget = Math.max(
      Math.floor(peak / 4),
      2 * analyzeProgram(heRuntimeProgram(fx.program)).maxStepBytes,
    );
    assert.ok(budget < peak, `budget ${budget} below the peak ${peak}`);
    for (const seededKeys of [false, true]) {
      const { tier } = await tierIn();
      const result = await runTieredHe({
        program: fx.program,
        params,
        source: heObjectSource({
          program: fx.program,
          evaluationKeys: top,
          inputs: fx.inputs,
          encoder: new Encoder(params),
        }),
        policy: new HomePolicy(),
        memoryBudgetBytes: budget,
        tiers: [tier],
        seededKeys,
      });
      const logits = fx.client.decryptPass(result.outputs, fx.count);
      let worst = 0;
      for (let i = 0; i < logits.length; i++) worst = Math.max(worst, Math.abs(logits[i] - fx.reference[i]));
      assert.ok(
        worst < 1e-2,
        `seeded ${seededKeys}: logits within ${worst} of the run with the client's keys`,
      );
      assert.ok(result.stats.keyBytesRead > 0, 'keys were read back from the slow tier');
    }
    for (const k of top.galois.values())
      assert.equal(k.key.level, params.depth, "the caller's keys are left whole");
    top.relinearization?.dispose();
    for (const k of top.galois.values()) k.key.dispose();
    for (const ct of fx.inputs.values()) ct.dispose();
  });

  it('model state kept between runs: written once, reused by the next run, identical outputs', async () => {
    const budget = Math.floor(batch.peak / 8);
    const { tier } = await tierIn();
    const source = () => sourceOf(batch);
    const writes: number[] = [];
    for (let round = 0; round < 2; round++) {
      const before = tier.stats.writes;
      const result = await runTieredHe({
        program: batch.program,
        params: batch.client.params,
        source: source(),
        policy: new HomePolicy(),
        memoryBudgetBytes: budget,
        tiers: [tier],
        keepModelState: true,
      });
      writes.push(tier.stats.writes - before);
      assert.deepEqual(batch.client.decryptPass(result.outputs, batch.count), batch.reference);
      assert.ok(tier.has('key:relin'), 'the relinearization key stays in the slow tier');
    }
    assert.equal(writes[0] - writes[1], 1, 'the second run does not write the key again');
  });

  it('a corrupted object on the slow tier is detected by its checksum and reported by id', async () => {
    const budget = Math.floor(batch.peak / 8);
    // Corrupt the inputs used last (the run reads at least one of them back from the slow tier).
    const corrupted = new Set<string>();
    const { tier } = await tierIn({
      beforeCommit: async (tempPath, id) => {
        if (!id.startsWith('ct:') || Number(id.slice(3)) < 700 || Number(id.slice(3)) >= 784) return;
        corrupted.add(id);
        const bytes = readFileSync(tempPath);
        bytes[bytes.length - 100] ^= 0x40;
        writeFileSync(tempPath, bytes);
      },
    });
    await assert.rejects(
      () => run(batch, new HomePolicy(), budget, tier),
      (error: unknown) => {
        assert.ok(error instanceof FormatError, String(error));
        const named = /object "(ct:\d+)"/.exec(error.message)?.[1];
        assert.ok(named !== undefined && corrupted.has(named), error.message);
        assert.match(error.message, /checksum mismatch/);
        return true;
      },
    );
  });

  it('a streamed plan on a tier with room for every object at once (not twice the model state) runs', async () => {
    const probe = await tierIn();
    let bound = 0;
    for (const o of heRuntimeProgram(batch.program).objects)
      bound += o.bytes + probe.tier.objectOverheadBytes;
    // Room for the bound and 1 MiB: the persistent copies are among the objects, so they need no room beside it.
    const { tier } = await tierIn({ capacityBytes: bound + 2 ** 20 });
    const budget = Math.floor(batch.peak / 8);
    const result = await runTieredHe({
      program: batch.program,
      params: batch.client.params,
      source: sourceOf(batch),
      policy: new HomePolicy(),
      memoryBudgetBytes: budget,
      tiers: [tier],
      keepModelState: true,
      streamPlan: true,
    });
    checkRun(batch, result, batch.client.decryptPass(result.outputs, batch.count), budget);
  });

  it('a tier with room for the model state once and the live produced bytes runs (the plan peak + kept copies count the state twice)', async () => {
    // Latency packing: keys and plaintext diagonals (the model state) are most of the bytes, as in LeNet.
    const fx = await fixture('latency', 1);
    fx.peak = await peakOf(fx.program);
    // Above the largest step (a hoisted rotation group) with room to spare, well below the footprint.
    const budget = Math.max(
      Math.floor(fx.peak / 8),
      2 * analyzeProgram(heRuntimeProgram(fx.program)).maxStepBytes,
    );
    const options = {
      program: fx.program,
      params: fx.client.params,
      policy: new HomePolicy(),
      memoryBudgetBytes: budget,
      keepModelState: true,
    };
    // The plan's own bound, on a tier of unlimited room.
    const probe = await tierIn();
    const first = await runTieredHe({ ...options, source: sourceOf(fx), tiers: [probe.tier] });
    for (const ct of first.outputs.values()) ct.dispose();
    const analysis = analyzeProgram(first.runtimeProgram);
    const overhead = probe.tier.objectOverheadBytes;
    let kept = 0;
    for (const [id, placement] of first.plan.initial) {
      if (placement.slowTier === 0 && !id.startsWith('ct:')) kept += analysis.bytesOf(id) + overhead;
    }
    const everything =
      analysis.initialBytes + analysis.peakLiveProducedBytes + analysis.objects.size * overhead;
    const planBound = (first.plan.slowPeakBytes[0] ?? 0) + kept;
    assert.ok(
      planBound > everything,
      `plan bound ${planBound} vs ${everything}: the case this test is about`,
    );
    // A tier with just the smaller bound: before, the run was refused for lack of the larger.
    // A second pass finds the model state stored by the first: it needs room only beside it.
    const { tier } = await tierIn({ capacityBytes: everything });
    for (let pass = 0; pass < 2; pass++) {
      const result = await runTieredHe({ ...options, source: sourceOf(fx), tiers: [tier] });
      checkRun(fx, result, fx.client.decryptPass(result.outputs, fx.count), budget);
    }
    for (const ct of fx.inputs.values()) ct.dispose();
  });

  it('a slow tier without room fails before anything is written', async () => {
    const { tier, dir } = await tierIn({ capacityBytes: 4 << 20 });
    await assert.rejects(() => run(batch, new HomePolicy(), Math.floor(batch.peak / 8), tier), ResourceError);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('a budget below the largest step is refused before the run', async () => {
    const { tier } = await tierIn();
    await assert.rejects(() => run(batch, new HomePolicy(), 1 << 20, tier), /largest step/);
  });
});
