import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Encoder } from '../src/ckks/encoder.ts';
import { compileModel } from '../src/nn/compile/index.ts';
import { loadIdxImages } from '../src/nn/data.ts';
import { InferenceClient } from '../src/nn/client.ts';
import { ModelOwner } from '../src/nn/owner.ts';
import { simulateProgram } from '../src/program/simulate.ts';
import { findDataFile } from '../src/platform/bundled-files.ts';
import type { Layer, LayerModel } from '../src/nn/layers.ts';
import { argmaxRows } from '../src/nn/simulate.ts';
import { Prng } from '../src/ring/prng.ts';
import { simulate } from '../src/runtime/plan/planner.ts';
import { FileTier } from '../src/runtime/store/file-tier.ts';
import { heRuntimeProgram, realRunHomePolicy } from '../src/runtime/he/program.ts';
import { heObjectSource, runTieredHe } from '../src/runtime/he/tiered.ts';
import { IoPool } from '../src/runtime/io/io-pool.ts';
import { probeTier } from '../src/runtime/store/tier-probe.ts';

/**
 * A generated multilayer perceptron (default input 1×28×28): dense layers of the given widths with a square between them,
 * weights uniform in ±1/√fan-in from a fixed-seed ChaCha20 stream (so every run builds the same model).
 *
 * @example
 * ```ts
 * const model = generatedMlp([4096, 4096, 10]);
 * ```
 */
export function generatedMlp(
  widths: readonly number[],
  seed = 7,
  inputShape: readonly number[] = [1, 28, 28],
): LayerModel {
  const seedBytes = new Uint8Array(32);
  new DataView(seedBytes.buffer).setUint32(0, seed, true);
  const prng = Prng.fromSeed(seedBytes);
  const uniform = (n: number, scale: number) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = (2 * prng.nextDouble() - 1) * scale;
    return out;
  };
  const layers: Layer[] = [];
  let previous = 'input';
  let inFeatures = inputShape.reduce((a, b) => a * b, 1);
  widths.forEach((width, i) => {
    const output = `fc${i}`;
    layers.push({
      kind: 'dense',
      name: output,
      sources: [output],
      inputs: [previous],
      output,
      shape: [width],
      inFeatures,
      outFeatures: width,
      weight: uniform(width * inFeatures, 1 / Math.sqrt(inFeatures)),
      bias: uniform(width, 0.1),
    });
    previous = output;
    inFeatures = width;
    if (i < widths.length - 1) {
      const square = `square${i}`;
      layers.push({
        kind: 'square',
        name: square,
        sources: [square],
        inputs: [previous],
        output: square,
        shape: [width],
      });
      previous = square;
    }
  });
  return {
    inputName: 'input',
    inputShape: [...inputShape],
    onnxInputShape: [...inputShape],
    outputName: previous,
    outputShape: [inFeatures],
    layers,
    droppedSoftmax: false,
    source: { producerName: 'home generatedMlp', producerVersion: '1', opset: 13, irVersion: 8 },
  };
}

/**
 * What {@link runLargeModelBench} prints (one line): the tiered run of a model whose encrypted weights alone exceed
 * the 4 GiB WebAssembly arena, so there is no all-in-memory run to compare with; `correct` compares the decrypted
 * logits with the float simulation of the same program (same argmax, error below `max_abs_error_limit`).
 *
 * @example
 * ```ts
 * const record: LargeModelRecord = JSON.parse(line);
 * ```
 */
export interface LargeModelRecord {
  suite: 'tier';
  workload: string;
  policy: 'home';
  profile: string;
  mode: 'real';
  dram_budget_bytes: number;
  peak_footprint_bytes: number;
  encrypted_weight_bytes: number;
  key_bytes: number;
  objects_total_bytes: number;
  bytes_read_slow: number;
  bytes_written_slow: number;
  seconds: number;
  compute_seconds: number;
  stall_seconds: number;
  setup_seconds: number;
  planning_seconds: number;
  unlimited_seconds: null;
  ratio_vs_unlimited: null;
  arena_peak_bytes: number;
  dram_pool_peak_bytes: number;
  max_abs_error: number;
  max_abs_error_limit: number;
  correct: boolean;
}

/**
 * The large-model run of `home bench tier --large`: a generated MLP 784 → 4096 → 4096 → 10 in latency packing
 * with encrypted weights (12,291 weight ciphertexts, 8.06 GB; with keys and intermediates over 8 GB) through the
 * tiered runtime under a 1 GiB memory budget, the weights encrypted one at a time by the model owner and written
 * to a slow tier (they never fit in memory together), one MNIST image classified and checked against the float
 * simulation.
 *
 * @example
 * ```ts
 * const record = await runLargeModelBench({ dir: '/data/he' });
 * ```
 */
export async function runLargeModelBench(
  options: { dir?: string; widths?: number[]; budgetBytes?: number; out?: (line: string) => void } = {},
): Promise<LargeModelRecord> {
  const write = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const widths = options.widths ?? [4096, 4096, 10];
  const budget = options.budgetBytes ?? 2 ** 30;
  const model = generatedMlp(widths);
  const { program } = compileModel(model, {
    mode: 'latency',
    encryptWeights: true,
    inputRange: [0, 1],
    name: `mlp-784x${widths.join('x')}`,
    // The tiered runtime holds the weights in a slow tier, not in the arena.
    limits: { memoryBytes: 2 ** 50 },
  });
  const image = loadIdxImages(readFileSync(findDataFile('mnist/t10k-images-idx3-ubyte.gz')), {
    scale: 1 / 256,
  }).data.subarray(0, 784);
  const classes = widths[widths.length - 1];
  const simulated = simulateProgram(program, image, 1);
  const client = new InferenceClient(program);
  const owner = new ModelOwner(program, client.publicKey!);
  const inputs = client.encryptPass(image, 0, 1);
  const runtimeProgram = heRuntimeProgram(program, { liveCapBytes: 0.7 * budget });
  const unlimitedPlan = simulate(heRuntimeProgram(program, { schedule: 'program' }), {
    policy: 'home',
    dramBudgetBytes: Infinity,
    slow: null,
  });
  const objectsTotal = runtimeProgram.objects.reduce((s, o) => s + o.bytes, 0);
  const weightBytes = program.inputs.filter((i) => i.owner === 'model').reduce((s, i) => s + i.bytes, 0);
  const dir = await mkdtemp(join(options.dir ?? tmpdir(), 'home-bench-large-'));
  const io = new IoPool();
  let tier: FileTier | null = null;
  try {
    tier = await FileTier.open({ name: 'disk', dir, io });
    const planning = await probeTier(tier);
    const result = await runTieredHe({
      program,
      params: client.params,
      runtimeProgram,
      source: heObjectSource({
        program,
        evaluationKeys: client.evaluationKeys,
        inputs,
        encryptWeight: (id) => owner.encryptWeight(id),
        encoder: new Encoder(client.params),
      }),
      policy: realRunHomePolicy(),
      memoryBudgetBytes: budget,
      tiers: [tier],
      planningDevices: [planning],
    });
    const logits = client.decryptPass(result.outputs, 1);
    let maxError = 0;
    let scale = 1;
    for (let i = 0; i < classes; i++) {
      maxError = Math.max(maxError, Math.abs(logits[i] - simulated[i]));
      scale = Math.max(scale, Math.abs(simulated[i]));
    }
    const limit = 1e-3 * scale;
    const s = result.stats;
    const record: LargeModelRecord = {
      suite: 'tier',
      workload: `mlp-784x${widths.join('x')}-encw`,
      policy: 'home',
      profile: 'file',
      mode: 'real',
      dram_budget_bytes: budget,
      peak_footprint_bytes: unlimitedPlan.summary.peakBytes.dram,
      encrypted_weight_bytes: weightBytes,
      key_bytes: client.evaluationKeys.byteLength,
      objects_total_bytes: objectsTotal,
      bytes_read_slow: s.slowBytesRead,
      bytes_written_slow: s.slowBytesWritten,
      seconds: round(s.seconds),
      compute_seconds: round(s.computeSeconds),
      stall_seconds: round(s.stallSeconds),
      setup_seconds: round(s.setupSeconds),
      planning_seconds: round(s.planningSeconds),
      unlimited_seconds: null,
      ratio_vs_unlimited: null,
      arena_peak_bytes: s.arenaPeakBytes,
      dram_pool_peak_bytes: s.dramPeakBytes,
      max_abs_error: maxError,
      max_abs_error_limit: limit,
      correct:
        argmaxRows(logits, 1, classes)[0] === argmaxRows(simulated, 1, classes)[0] &&
        maxError <= limit &&
        s.arenaPeakBytes + s.dramPeakBytes <= budget,
    };
    write(JSON.stringify(record));
    return record;
  } finally {
    for (const ct of inputs.values()) ct.dispose();
    await tier?.close();
    await io.terminate();
    await rm(dir, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Number(x.toPrecision(5));
}
