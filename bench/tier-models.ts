import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Ciphertext } from '../src/ckks/objects.ts';
import { compileModel } from '../src/nn/compile/index.ts';
import { InferenceClient } from '../src/nn/client.ts';
import { InferenceServer } from '../src/runtime/he/server.ts';
import type { HeProgram } from '../src/program/program.ts';
import { Prng } from '../src/ring/prng.ts';
import { nowNs } from '../src/runtime/store/devices.ts';
import { FileTier } from '../src/runtime/store/file-tier.ts';
import { runTieredRequests } from '../src/runtime/he/multi.ts';
import { realRunHomePolicy } from '../src/runtime/he/program.ts';
import type { TieredHeStats } from '../src/runtime/he/tiered.ts';
import { IoPool } from '../src/runtime/io/io-pool.ts';
import type { ExecutablePlan } from '../src/runtime/plan/planner.ts';
import { LruPolicy } from '../src/runtime/plan/policy.ts';
import { probeTier } from '../src/runtime/store/tier-probe.ts';
import { assertInteger } from '../src/util/assert.ts';
import { median } from './support/median.ts';
import { generatedMlp } from './tier-large.ts';

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
  /** Rounds behind the medians (`seconds`, `unlimited_seconds`, the ratios, compute and stall). */
  rounds: number;
  dram_budget_bytes: number;
  /** Keys, weights and inputs of every model and request: what all-in-memory serving holds. */
  peak_footprint_bytes: number;
  bytes_read_slow: number;
  bytes_written_slow: number;
  key_bytes_read_slow: number;
  seconds: number;
  /** All-in-memory runs, each made right before one of this configuration's runs (median). */
  unlimited_seconds: number;
  requests_per_s: number;
  unlimited_requests_per_s: number;
  /** Median over the rounds of each round's all-in-memory time over its tiered time. */
  throughput_vs_unlimited: number;
  ratio_vs_unlimited: number;
  /** Time in the kernels; `seconds` minus this and `stall_seconds` is the runtime's own bookkeeping. */
  compute_seconds: number;
  stall_seconds: number;
  /** Planning the first round (later rounds replay its plan); not part of `seconds`. */
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
  /** Rounds per configuration, medians reported (default 3). */
  rounds?: number;
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
 * 16 arrivals), HomE in arrival order, and LRU — each beside the same requests served with everything in memory,
 * run right before it (a first all-in-memory run warms up and gives the reference outputs); medians over `rounds`
 * rounds of these pairs, as the machine's speed drifts.
 * `correct`: every request's decrypted outputs are bit-identical to the all-in-memory runs'.
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
  const rounds = options.rounds ?? 3;
  assertInteger(rounds, 'rounds', 1);
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
  // All in memory: every model's server holds its keys; requests in arrival order. Each tiered configuration is
  // compared with an all-in-memory run made right before it, so that drift in the machine's speed during the bench
  // (it is shared) does not land on one side of the ratio.
  const servers = programs.map((p, m) => new InferenceServer(p, clients[m].evaluationKeys));
  const runUnlimited = async (): Promise<{ seconds: number; logits: Float64Array[] }> => {
    const start = nowNs();
    const outputs: Map<number, Ciphertext>[] = [];
    for (const q of requests) {
      outputs.push(await servers[q.model].run(new Map([...q.inputs].map(([id, ct]) => [id, ct.copy()]))));
    }
    const seconds = (nowNs() - start) / 1e9;
    const logits = outputs.map((o, r) => clients[requests[r].model].decryptPass(o, batch));
    for (const o of outputs) for (const ct of o.values()) ct.dispose();
    return { seconds, logits };
  };
  const sameLogits = (a: readonly Float64Array[], b: readonly Float64Array[]): boolean =>
    a.every((x, r) => x.every((v, i) => Object.is(v, b[r][i])));
  const reference = (await runUnlimited()).logits;
  const records: ManyModelsRecord[] = [];
  const dir = await mkdtemp(join(options.dir ?? tmpdir(), 'home-bench-models-'));
  const io = new IoPool();
  try {
    const tier = await FileTier.open({ name: 'disk', dir, io });
    const planning = await probeTier(tier);
    const configurations = [
      { policy: 'home', window: 16 },
      { policy: 'home', window: 1 },
      { policy: 'lru', window: 16 },
    ] as const;
    const runs = configurations.map(() => ({
      plan: undefined as ExecutablePlan | undefined,
      correct: true,
      stats: [] as TieredHeStats[],
      unlimitedSeconds: [] as number[],
    }));
    for (let round = 0; round < rounds; round++) {
      for (const [c, { policy, window }] of configurations.entries()) {
        const acc = runs[c];
        const unlimited = await runUnlimited();
        const result = await runTieredRequests({
          models: programs.map((program, m) => ({ program, evaluationKeys: clients[m].evaluationKeys })),
          requests,
          params: clients[0].params,
          policy: policy === 'home' ? realRunHomePolicy() : new LruPolicy(),
          memoryBudgetBytes: budget,
          tiers: [tier],
          planningDevices: [planning],
          groupWindow: window,
          plan: acc.plan,
        });
        acc.plan ??= result.plan;
        const s = result.stats;
        acc.correct &&=
          s.readOnlyWritten.length === 0 &&
          s.arenaPeakBytes + s.dramPeakBytes <= budget &&
          sameLogits(unlimited.logits, reference) &&
          sameLogits(
            result.outputs.map((outputs: Map<number, Ciphertext>, r) =>
              clients[requests[r].model].decryptPass(outputs, batch),
            ),
            reference,
          );
        for (const outputs of result.outputs) for (const ct of outputs.values()) ct.dispose();
        acc.stats.push(s);
        acc.unlimitedSeconds.push(unlimited.seconds);
      }
    }
    for (const [c, { policy, window }] of configurations.entries()) {
      const { stats, unlimitedSeconds, correct } = runs[c];
      const last = stats[stats.length - 1];
      const seconds = median(stats.map((s) => s.seconds));
      const unlimited = median(unlimitedSeconds);
      const record: ManyModelsRecord = {
        suite: 'tier',
        workload: `${modelCount}-models-mlp-16x32x4`,
        policy,
        group_window: window,
        profile: 'file',
        mode: 'real',
        models: modelCount,
        requests: requestCount,
        rounds,
        dram_budget_bytes: budget,
        peak_footprint_bytes: footprint,
        bytes_read_slow: last.slowBytesRead,
        bytes_written_slow: last.slowBytesWritten,
        key_bytes_read_slow: last.keyBytesRead,
        seconds: round(seconds),
        unlimited_seconds: round(unlimited),
        requests_per_s: round(requestCount / seconds),
        unlimited_requests_per_s: round(requestCount / unlimited),
        throughput_vs_unlimited: round(median(stats.map((s, i) => unlimitedSeconds[i] / s.seconds))),
        ratio_vs_unlimited: round(median(stats.map((s, i) => s.seconds / unlimitedSeconds[i]))),
        compute_seconds: round(median(stats.map((s) => s.computeSeconds))),
        stall_seconds: round(median(stats.map((s) => s.stallSeconds))),
        planning_seconds: round(stats[0].planningSeconds),
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
