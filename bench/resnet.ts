/**
 * `home bench resnet`: encrypted CIFAR-10 inference through ResNets of the family of the shared ResNet-20 —
 * ResNet-20 itself and deeper members (32, 44, 56 layers) grown from it by {@link deepenResNet} — each run by
 * `home infer --mode latency` (compile, keys, bootstraps, tiered memory under the DRAM budget) in a child process
 * of its own, so that each peak RSS is its own. One JSON line per depth, with its time and bootstraps beside
 * ResNet-20's from the same run (the baseline: what depth costs).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findDataFile, findModelFile } from '../src/platform/bundled-files.ts';
import { InvalidArgumentError } from '../src/util/errors.ts';
import { deepenResNet } from './workloads/resnet-family.ts';

/**
 * Options of {@link runResNetBench}.
 *
 * @example
 * ```ts
 * const options: ResNetBenchOptions = { depths: [20, 56], count: 1, dramBudget: '4GiB' };
 * ```
 */
export interface ResNetBenchOptions {
  /** Depths 6n + 2 (default 20, 32, 44, 56). */
  readonly depths?: readonly number[];
  /** Test images per depth (default 1). */
  readonly count?: number;
  /** `home infer --dram-budget` (default 4GiB). */
  readonly dramBudget?: string;
  /** `home --threads` of each run (default: home's). */
  readonly threads?: number;
  /** `home infer --calibration-count` (default: home's). */
  readonly calibrationCount?: number;
  /** The ResNet-20 the family grows from (default: the shared resnet20-akamaster.onnx). */
  readonly model?: string;
  readonly write?: (line: string) => void;
}

/** One depth's line. */
export interface ResNetRecord {
  suite: 'resnet';
  depth: number;
  /** Trained (ResNet-20) or grown from it (not trained). */
  weights: 'trained' | 'grown';
  count: number;
  agreement: number;
  accuracy: number | null;
  plain_accuracy: number | null;
  max_logit_error_of_range: number;
  bootstraps: number;
  seconds_per_image: number;
  compile_s: number;
  keygen_s: number;
  setup_s: number;
  /** Everything the user waited for: the child process from start to exit. */
  wall_s: number;
  peak_rss_bytes: number;
  dram_budget_bytes: number;
  /** This depth's seconds per image and bootstraps over ResNet-20's in this run (when it ran first). */
  seconds_ratio_to_resnet20?: number;
  bootstraps_ratio_to_resnet20?: number;
}

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** Runs `home infer` from the sources in a child process; returns its last `infer` JSON line. */
async function inferChild(args: readonly string[]): Promise<Record<string, unknown>> {
  const child = spawn(
    process.execPath,
    ['--conditions=home-source', '--import', 'tsx', join(ROOT, 'scripts/home-source.ts'), ...args],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
  });
  const code = await new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', done);
  });
  if (code !== 0) throw new Error(`home ${args.join(' ')} exited with ${code}`);
  const lines = stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((record) => record.suite === 'infer');
  const last = lines.at(-1);
  if (!last) throw new Error(`home ${args.join(' ')} printed no infer summary`);
  return last;
}

/**
 * Runs every depth; prints one {@link ResNetRecord} per depth and returns them.
 *
 * @throws InvalidArgumentError for a depth that is not 6n + 2 ≥ 20, or a count outside 1 … 500.
 * @example
 * ```ts
 * await runResNetBench({ depths: [20, 32], count: 1 });
 * ```
 */
export async function runResNetBench(options: ResNetBenchOptions = {}): Promise<ResNetRecord[]> {
  const write = options.write ?? ((line: string) => console.log(line));
  const depths = options.depths ?? [20, 32, 44, 56];
  for (const depth of depths) {
    if (!Number.isInteger(depth) || depth < 20 || (depth - 2) % 6 !== 0) {
      throw new InvalidArgumentError(`--depth ${depth}: expected 6n + 2 with n ≥ 3 (20, 32, 44, 56, …)`);
    }
  }
  const count = options.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > 500) {
    throw new InvalidArgumentError(`--count ${count}: expected 1 … 500`);
  }
  const source = options.model ?? findModelFile('cifar10/resnet20-akamaster.onnx');
  const resnet20 = readFileSync(source);
  const images = findDataFile('cifar10/test-0000-0499-images.npy');
  const labels = findDataFile('cifar10/test-0000-0499-labels-idx1-ubyte');
  const dir = mkdtempSync(join(tmpdir(), 'home-bench-resnet-'));
  const records: ResNetRecord[] = [];
  let baseline: ResNetRecord | undefined;
  try {
    for (const depth of depths) {
      const file = join(dir, `resnet${depth}.onnx`);
      writeFileSync(file, depth === 20 ? resnet20 : deepenResNet(resnet20, { depth }));
      const args = [
        ...(options.threads !== undefined ? ['--threads', String(options.threads)] : []),
        'infer',
        '--model',
        file,
        '--data',
        images,
        '--labels',
        labels,
        '--input-scale',
        '1/255',
        '--input-mean',
        '0.485,0.456,0.406',
        '--input-std',
        '0.229,0.224,0.225',
        '--count',
        String(count),
        '--mode',
        'latency',
        '--dram-budget',
        options.dramBudget ?? '4GiB',
        ...(options.calibrationCount !== undefined
          ? ['--calibration-count', String(options.calibrationCount)]
          : []),
        '--plan-cache',
        'none',
        '--json',
      ];
      process.stderr.write(`home bench resnet: ResNet-${depth}, ${count} image(s)\n`);
      const start = performance.now();
      const r = await inferChild(args);
      const wall = (performance.now() - start) / 1000;
      const record: ResNetRecord = {
        suite: 'resnet',
        depth,
        weights: depth === 20 ? 'trained' : 'grown',
        count,
        agreement: r.agreement as number,
        accuracy: r.accuracy as number | null,
        plain_accuracy: r.plain_accuracy as number | null,
        max_logit_error_of_range: r.max_logit_error_of_range as number,
        bootstraps: r.bootstraps as number,
        seconds_per_image: r.seconds_per_image as number,
        compile_s: r.compile_s as number,
        keygen_s: r.keygen_s as number,
        setup_s: r.setup_s as number,
        wall_s: Number(wall.toFixed(1)),
        peak_rss_bytes: r.peak_rss_bytes as number,
        dram_budget_bytes: r.dram_budget_bytes as number,
      };
      if (depth === 20) baseline = record;
      else if (baseline) {
        record.seconds_ratio_to_resnet20 = Number(
          (record.seconds_per_image / baseline.seconds_per_image).toFixed(3),
        );
        record.bootstraps_ratio_to_resnet20 = Number((record.bootstraps / baseline.bootstraps).toFixed(3));
      }
      records.push(record);
      write(JSON.stringify(record));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return records;
}
