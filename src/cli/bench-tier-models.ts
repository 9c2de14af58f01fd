import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Ciphertext } from '../ckks/objects.ts';
import { compileModel } from '../nn/compiler.ts';
import { InferenceClient, InferenceServer } from '../nn/executor.ts';
import type { HeProgram } from '../nn/program.ts';
import { Prng } from '../ring/prng.ts';
import { nowNs } from '../runtime/devices.ts';
import { FileTier } from '../runtime/file-tier.ts';
import { runTieredRequests } from '../runtime/he-multi.ts';
import { realRunHomePolicy } from '../runtime/he-tiered.ts';
import { IoPool } from '../runtime/io-pool.ts';
import { LruPolicy } from '../runtime/policy.ts';
import { probeTier } from '../runtime/tier-probe.ts';
import { generatedMlp } from './bench-tier-large.ts';

/**
 * One line of `home bench tier --models`: requests to many distinct encrypted models (each with its own keys),
 * arriving in random order, served by one process under one memory budget smaller than their total footprint,
 * against the same requests served with everything in memory.
 *
 * @example
 * ```ts
 * const record: ManyModelsRecord = JSON.parse(line);
 * console.log(record.throughput_vs_unlimited);
 * ```
 */
export interface ManyModelsRecord {
  suite: 'tier';
  workload: string;
  policy: 'home' | 'lru';
  /** Requests of one model run back to back within windows of this many arrivals (1: arrival order). */
  group_window: number;
  profile: string;
  mode: 'real';
  models: number;
  requests: number;
  dram_budget_bytes: number;
  /** Keys, weights and inputs of every model and request: what all-in-memory serving holds. */
  peak_footprint_bytes: number;
  bytes_read_slow: number;
  bytes_written_slow: number;
  key_bytes_read_slow: number;
  seconds: number;
  unlimited_seconds: number;
  requests_per_s: number;
  unlimited_requests_per_s: number;
  throughput_vs_unlimited: number;
  ratio_vs_unlimited: number;
  stall_seconds: number;
  planning_seconds: number;
  correct: boolean;
}

/**
 * Options of {@link runManyModelsBench}.
 *
 * @example
 * ```ts
 * await runManyModelsBench({ models: 20, requests: 40 });
 * ```
 */
export interface ManyModelsOptions {
  models?: number;
  requests?: number;
  /** Memory budget (default 192 MiB). */
  budgetBytes?: number;
  dir?: string;
  out?: (line: string) => void;
}

function round(x: number): number {
  return Number(x.toPrecision(5));
}

/**
 * `home bench tier --models`: 200 distinct small models (generated MLPs 16 → 32 → 4, each with its own weights and
 * its own client keys; batch packing, N = 2^13), 400 requests (two per model) in random order, served by the tiered
 * runtime under one budget well below their total footprint — HomE with key-aware request grouping (windows of
 * 16 arrivals), HomE in arrival order, and LRU — beside the same requests served with everything in memory.
 * `correct`: every request's decrypted outputs are bit-identical to the all-in-memory run's.
 *
 * @example
 * ```ts
 * const records = await runManyModelsBench();
 * ```
 */
export async function runManyModelsBench(options: ManyModelsOptions = {}): Promise<ManyModelsRecord[]> {
  const write = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const modelCount = options.models ?? 200;
  const requestCount = options.requests ?? 2 * modelCount;
  const budget = options.budgetBytes ?? 192 * 2 ** 20;
  const batch = 16;
  const prng = Prng.fromSeed(new Uint8Array(32).fill(23));
  // Models and their clients (each its own keys).
  const programs: HeProgram[] = [];
  const clients: InferenceClient[] = [];
  for (let m = 0; m < modelCount; m++) {
    const model = generatedMlp([32, 4], 1000 + m, [16]);
    const { program } = compileModel(model, {
      mode: 'batch',
      batchSize: batch,
      inputRange: [0, 1],
      name: `mlp-16x32x4-${m}`,
    });
    programs.push(program);
    clients.push(new InferenceClient(program));
  }
  // Requests in random arrival order, each with its own images.
  const arrivals: number[] = [];
  for (let r = 0; r < requestCount; r++) arrivals.push(r % modelCount);
  for (let i = arrivals.length - 1; i > 0; i--) {
    const j = Math.floor(prng.nextDouble() * (i + 1));
    [arrivals[i], arrivals[j]] = [arrivals[j], arrivals[i]];
  }
  const requests = arrivals.map((m) => {
    const images = new Float64Array(batch * 16);
    for (let k = 0; k < images.length; k++) images[k] = prng.nextDouble();
    return { model: m, inputs: clients[m].encryptPass(images, 0, batch) };
  });
  let footprint = 0;
  for (const c of clients) footprint += c.evaluationKeys.byteLength;
  for (const q of requests) for (const ct of q.inputs.values()) footprint += ct.byteLength;
  // All in memory: every model's server holds its keys; requests in arrival order.
  const servers = programs.map((p, m) => new InferenceServer(p, clients[m].evaluationKeys));
  const reference: Float64Array[] = [];
  const start = nowNs();
  const referenceOutputs = requests.map((q) =>
    servers[q.model].run(new Map([...q.inputs].map(([id, ct]) => [id, ct.copy()]))),
  );
  const unlimitedSeconds = (nowNs() - start) / 1e9;
  referenceOutputs.forEach((outputs, r) => {
    reference.push(clients[requests[r].model].decryptPass(outputs, batch));
  });
  const records: ManyModelsRecord[] = [];
  const dir = await mkdtemp(join(options.dir ?? tmpdir(), 'home-bench-models-'));
  const io = new IoPool();
  try {
    const tier = await FileTier.open({ name: 'disk', dir, io });
    const planning = await probeTier(tier);
    for (const [policy, window] of [
      ['home', 16],
      ['home', 1],
      ['lru', 16],
    ] as const) {
      const result = await runTieredRequests({
        models: programs.map((program, m) => ({ program, evaluationKeys: clients[m].evaluationKeys })),
        requests,
        params: clients[0].params,
        policy: policy === 'home' ? realRunHomePolicy() : new LruPolicy(),
        memoryBudgetBytes: budget,
        tiers: [tier],
        planningDevices: [planning],
        groupWindow: window,
      });
      let correct = result.stats.readOnlyWritten.length === 0;
      result.outputs.forEach((outputs: Map<number, Ciphertext>, r) => {
        const logits = clients[requests[r].model].decryptPass(outputs, batch);
        for (let i = 0; i < logits.length; i++) if (!Object.is(logits[i], reference[r][i])) correct = false;
      });
      const s = result.stats;
      correct &&= s.arenaPeakBytes + s.dramPeakBytes <= budget;
      const record: ManyModelsRecord = {
        suite: 'tier',
        workload: `${modelCount}-models-mlp-16x32x4`,
        policy,
        group_window: window,
        profile: 'file',
        mode: 'real',
        models: modelCount,
        requests: requestCount,
        dram_budget_bytes: budget,
        peak_footprint_bytes: footprint,
        bytes_read_slow: s.slowBytesRead,
        bytes_written_slow: s.slowBytesWritten,
        key_bytes_read_slow: s.keyBytesRead,
        seconds: round(s.seconds),
        unlimited_seconds: round(unlimitedSeconds),
        requests_per_s: round(requestCount / s.seconds),
        unlimited_requests_per_s: round(requestCount / unlimitedSeconds),
        throughput_vs_unlimited: round(unlimitedSeconds / s.seconds),
        ratio_vs_unlimited: round(s.seconds / unlimitedSeconds),
        stall_seconds: round(s.stallSeconds),
        planning_seconds: round(s.planningSeconds),
        correct,
      };
      records.push(record);
      write(JSON.stringify(record));
    }
    await tier.close();
  } finally {
    for (const q of requests) for (const ct of q.inputs.values()) ct.dispose();
    for (const s of servers) s.dispose();
    await io.terminate();
    await rm(dir, { recursive: true, force: true });
  }
  return records;
}
