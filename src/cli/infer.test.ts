import assert from 'node:assert/strict';
import { npyBytes } from '../../tests/support/npy.ts';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findDataFile, findModelFile } from '../platform/bundled-files.ts';

const HOME = fileURLToPath(new URL('../../scripts/home-source.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'home-infer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const model = findModelFile('lola-small-mnist.onnx');
const images = findDataFile('mnist/t10k-images-idx3-ubyte.gz');
const labels = findDataFile('mnist/t10k-labels-idx1-ubyte.gz');

function home(...args: string[]) {
  const r = spawnSync(
    process.execPath,
    ['--conditions=home-source', '--import', 'tsx', HOME, 'infer', ...args],
    { encoding: 'utf8', timeout: 120_000 },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A float64 .npy file of the given shape. */
function npy(path: string, shape: number[], fill: number): void {
  const values = new Float64Array(shape.reduce((a, b) => a * b, 1)).fill(fill);
  writeFileSync(path, npyBytes('<f8', shape, new Uint8Array(values.buffer)));
}

/** The model, the images with their labels, CryptoNets/LoLa's input scale and `count` images. */
function labelled(count: string): string[] {
  return ['--model', model, '--data', images, '--labels', labels, '--input-scale', '1/256', '--count', count];
}

/** Two labelled images in latency packing under a 160 MiB budget, as JSON, with `extra` flags. */
function latencyUnder160MiB(...extra: string[]) {
  return home(...labelled('2'), '--mode', 'latency', '--dram-budget', '160MiB', ...extra, '--json');
}

/** Resolves once `check` holds, polling every 50 ms (rejects after `ms`). */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('home infer', () => {
  it('--simulate: the HE program in float64 on every image, beside the plaintext model', () => {
    const r = home(...labelled('64'), '--mode', 'latency', '--simulate', '--json');
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
    assert.equal(summary.suite, 'infer-simulated');
    assert.equal(summary.count, 64);
    assert.equal(summary.bootstraps, 0);
    assert.ok(summary.agreement >= 0.95, `agreement ${summary.agreement}`);
    assert.ok(summary.accuracy >= 0.9 && summary.plain_accuracy >= 0.9, JSON.stringify(summary));
    assert.equal(home(...labelled('4'), '--simulate', '--noise-bits', '-3').code, 2);
  });

  it('classifies encrypted images and ends --json with the summary object', () => {
    const output = join(dir, 'predictions.json');
    const r = home(...labelled('40'), '--json', '--output', output);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const summary = lines[lines.length - 1];
    for (const key of [
      'suite',
      'model',
      'mode',
      'count',
      'accuracy',
      'plain_accuracy',
      'agreement',
      'images_per_s',
      'eval_s',
      'keygen_s',
      'peak_rss_bytes',
    ]) {
      assert.ok(key in summary, key);
    }
    assert.equal(summary.suite, 'infer');
    assert.equal(summary.model, 'lola-small-mnist.onnx');
    assert.equal(summary.count, 40);
    assert.ok(summary.agreement >= 0.99);
    assert.ok(summary.accuracy >= 0.9);
    const written = JSON.parse(readFileSync(output, 'utf8'));
    assert.equal(written.predictions.length, 40);
  });

  it('a budget below the footprint: the run spills to a private slow tier, removed at exit, same predictions', () => {
    const budget = 160 * 2 ** 20;
    const planCache = join(dir, 'plans');
    // LoLa-Small, latency packing: its footprint (keys and plaintext diagonals) is well above 160 MiB.
    // Stored plaintexts spill (`auto` may encode them on use instead, and the rest then fits the budget).
    const spilled = () => latencyUnder160MiB('--plan-cache', planCache, '--plaintexts', 'stored');
    const r = spilled();
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
    assert.equal(summary.mode, 'latency');
    assert.equal(summary.tiered, true);
    assert.equal(summary.dram_budget_bytes, budget);
    assert.ok(summary.footprint_bytes > budget, `footprint ${summary.footprint_bytes}`);
    assert.ok(
      summary.peak_dram_bytes > 0 && summary.peak_dram_bytes <= budget,
      `peak ${summary.peak_dram_bytes}`,
    );
    assert.ok(summary.bytes_read_slow > 0);
    assert.equal(summary.agreement, 1);
    // The wall time holds setup, compute and stalls; planning ran on its own thread beside them, and only the
    // waits for it are part of the wall time.
    const parts = summary.setup_seconds + summary.compute_seconds + summary.stall_seconds;
    assert.ok(parts <= summary.seconds * 1.001 + 0.01, `${parts} > ${summary.seconds}`);
    assert.ok(summary.plan_wait_seconds <= summary.seconds);
    assert.ok(summary.planning_seconds > 0);
    const tierDir = (summary.tier as string).slice((summary.tier as string).indexOf(':') + 1);
    assert.ok(tierDir.startsWith(tmpdir()));
    assert.equal(existsSync(tierDir), false, 'the private tier folder is removed at exit');
    assert.equal(summary.plan_source, 'planned');

    // The same program, budget and device again: the plan comes from the cache, the predictions are the same.
    const again = spilled();
    assert.equal(again.code, 0, again.stderr);
    const second = JSON.parse(again.stdout.trim().split('\n').at(-1) as string);
    assert.equal(second.plan_source, 'cache');
    assert.equal(second.agreement, 1);
    assert.equal(second.bytes_read_slow, summary.bytes_read_slow);
  });

  it('--plaintexts: on-use encodes every plaintext by its readers and writes none; auto accounts for every one', () => {
    const summaries = ['on-use', 'auto'].map((form) => {
      const r = latencyUnder160MiB('--plaintexts', form);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
    });
    const [onUse, auto] = summaries;
    assert.equal(onUse.tiered, true);
    assert.equal(onUse.plaintexts_stored, 0);
    assert.ok(onUse.plaintexts_encoded_on_use > 0);
    assert.equal(onUse.bytes_written_slow, 0);
    // Which plaintexts auto stores depends on the speeds it measures here; the split covers them all.
    assert.equal(auto.plaintexts_stored + auto.plaintexts_encoded_on_use, onUse.plaintexts_encoded_on_use);
    for (const summary of summaries) assert.equal(summary.agreement, 1);
  });

  it('a run stopped by SIGTERM removes its private tier folder', async () => {
    // Its own temp folder, so that the run's private folder is the only one there.
    const temp = mkdtempSync(join(dir, 'tmp-'));
    const child = spawn(
      process.execPath,
      [
        '--conditions=home-source',
        '--import',
        'tsx',
        HOME,
        'infer',
        ...labelled('4'),
        '--mode',
        'latency',
        '--dram-budget',
        '160MiB',
      ],
      { env: { ...process.env, TMPDIR: temp }, stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const tierFolder = () => readdirSync(temp).find((name) => name.startsWith('home-infer-'));
    // Stopped once the run has written objects to its tier.
    await until(
      () => {
        const name = tierFolder();
        return name !== undefined && readdirSync(join(temp, name)).length > 0;
      },
      110_000,
      'the run writes to its tier folder',
    );
    child.kill('SIGTERM');
    assert.equal(await exited, 143);
    assert.equal(tierFolder(), undefined, 'no tier folder left in the temp folder');
  });

  it('--mode auto says which packing it chose and why', () => {
    const r = home('--model', model, '--data', images, '--input-scale', '1/256', '--count', '1');
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /Packing: latency \(--mode auto; estimated evaluation for 1 images: batch ~[0-9.]+ s, latency ~[0-9.]+ s\)/,
    );
  });

  it('bad inputs: a clear typed error, exit code 2, nothing written', () => {
    const output = join(dir, 'never.json');
    const corrupted = join(dir, 'corrupted.onnx');
    writeFileSync(corrupted, readFileSync(model).subarray(0, 3000));
    const wrongSize = join(dir, 'wrong.npy');
    npy(wrongSize, [3, 10, 10], 0.5);
    const cases: [string[], RegExp][] = [
      [['--model', join(dir, 'missing.onnx'), '--data', images], /--model .*missing\.onnx: no such file/],
      [['--model', corrupted, '--data', images], /FormatError/],
      [
        ['--model', model, '--data', wrongSize],
        /images of shape \[10, 10\].*expects \[1, 28, 28\]|not a batch of \[1, 28, 28\]/,
      ],
      [['--model', model, '--data', images, '--input-scale', '1', '--count', '5'], /outside the input range/],
      [
        ['--model', model, '--data', images, '--count', '20000'],
        /--count 20000: the data has only 10000 images/,
      ],
      [['--model', model, '--data', images, '--input-scale', 'abc'], /--input-scale abc/],
      [
        ['--model', model, '--data', images, '--mode', 'fast'],
        /--mode fast: expected auto, batch or latency/,
      ],
      [['--model', model, '--data', images, '--dram-budget', 'lots'], /--dram-budget lots/],
      [
        ['--model', model, '--data', images, '--plaintexts', 'sometimes'],
        /--plaintexts sometimes: expected auto, stored or on-use/,
      ],
      [['--model', model, '--data', images, '--tier', '/no-name'], /--tier .*expected name:path/],
      [['--model', model, '--data', images, '--profile', 'floppy'], /device profile "floppy"/],
      [
        ['--model', model, '--data', images, '--input-mean', '0.1,0.2'],
        /--input-mean 0.1,0.2: expected 1 value \(the model's input has 1 channel\)/,
      ],
      [['--model', model, '--data', images, '--input-std', '0'], /--input-std 0: expected non-zero/],
      [
        ['--model', model, '--data', images, '--calibration', join(dir, 'none.idx')],
        /--calibration .*none\.idx: no such file/,
      ],
      [
        ['--model', model, '--data', images, '--calibration', wrongSize],
        /--calibration .*wrong\.npy: images of shape \[10, 10\].*expects \[1, 28, 28\]|not a batch of \[1, 28, 28\]/,
      ],
      [
        ['--model', model, '--data', images, '--calibration-count', '0'],
        /--calibration-count 0: expected a positive integer/,
      ],
      [
        ['--model', model, '--data', images, '--mode', 'batch', '--encrypt-weights'],
        /--encrypt-weights needs --mode latency/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = home(...args, '--output', output, '--json');
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '', 'nothing printed before the inputs are known to be good');
      assert.equal(existsSync(output), false);
    }
  });

  it('a model deeper than any secure chain is refused in batch packing (no bootstraps) before calibration', () => {
    const shared = fileURLToPath(new URL('../../../shared/', import.meta.url));
    const resnet = `${shared}models/cifar10/resnet20-ace.onnx`;
    if (!existsSync(resnet)) {
      assert.ok(!process.env.CI, 'CI has ../shared beside the checkout');
      return;
    }
    const cifar = `${shared}data/cifar10/`;
    const r = home(
      ...['--model', resnet, '--data', `${cifar}test-0000-0499-images.npy`, '--input-scale', '1/255'],
      ...['--input-mean', '0.485,0.456,0.406', '--input-std', '0.229,0.224,0.225', '--count', '1', '--json'],
      ...['--mode', 'batch'],
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /SecurityError.*depth at least 76 .*before calibration/);
    assert.equal(r.stdout, '');
  });
});
