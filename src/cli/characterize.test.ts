import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findDataFile, findModelFile } from '../platform/bundled-files.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { parseByteSize, parseTierSpec } from './sizes.ts';

const HOME = fileURLToPath(new URL('../../scripts/home-source.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'home-characterize-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const model = findModelFile('lola-small-mnist.onnx');
const images = findDataFile('mnist/t10k-images-idx3-ubyte.gz');

function home(...args: string[]) {
  const r = spawnSync(
    process.execPath,
    ['--conditions=home-source', '--import', 'tsx', HOME, 'characterize', ...args],
    {
      encoding: 'utf8',
      // A guard against a hang, not a speed check: on a loaded 2-core machine (a fresh-clone CI beside a 2-core
      // run) the report test's two runs took over 180 s, and the killed child failed it with status null.
      timeout: 600_000,
    },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('sizes and tier specs', () => {
  it('parses binary and decimal units, rounding down to bytes', () => {
    assert.equal(parseByteSize('512MiB', '--dram-budget'), 512 * 2 ** 20);
    assert.equal(parseByteSize('1GiB', '--dram-budget'), 2 ** 30);
    assert.equal(parseByteSize('1.5 GB', '--dram-budget'), 1.5e9);
    assert.equal(parseByteSize('64k', '--dram-budget'), 65536);
    assert.equal(parseByteSize('4096', '--dram-budget'), 4096);
    for (const bad of ['', 'MiB', '-1GiB', '12XB', '1e3', '0', '0.1B']) {
      assert.throws(
        () => parseByteSize(bad, '--dram-budget'),
        (e: unknown) => e instanceof InvalidArgumentError && e.message.startsWith(`--dram-budget ${bad}:`),
        bad,
      );
    }
  });

  it('parses name:path tiers and names what is wrong', () => {
    assert.deepEqual(parseTierSpec('nvme:/data/he'), { name: 'nvme', dir: '/data/he' });
    assert.deepEqual(parseTierSpec('pmem:C:/x'), { name: 'pmem', dir: 'C:/x' });
    assert.throws(() => parseTierSpec('/data/he'), /expected name:path/);
    assert.throws(() => parseTierSpec('nvme:'), /expected name:path/);
    assert.throws(() => parseTierSpec('dram:/x'), /reserved/);
  });
});

describe('home characterize', () => {
  it('a missing tier directory fails before the run, with a clear error and nothing written', () => {
    const out = join(dir, 'never');
    const r = home(
      '--model',
      model,
      '--data',
      images,
      '--dram-budget',
      '64MiB',
      '--tier',
      `nvme:${join(dir, 'no-such-dir')}`,
      '--out',
      out,
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /ResourceError.*slow tier nvme: directory .*no-such-dir is not accessible/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('partial')),
      [],
    );
  });

  it('a bad size or profile is refused before anything runs', () => {
    const tier = join(dir, 'tier-a');
    mkdirSync(tier);
    const base = ['--model', model, '--data', images, '--tier', `nvme:${tier}`, '--out', join(dir, 'x')];
    let r = home(...base, '--dram-budget', '64 MegaBytes');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dram-budget 64 MegaBytes: expected a size like 512MiB/);
    r = home(...base, '--dram-budget', '64MiB', '--profile', 'floppy');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /device profile "floppy": expected one of/);
    r = home(...base, '--dram-budget', '64MiB', '--policies', 'home,fifo');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--policies home,fifo: fifo is not home or lru/);
    r = home(...base, '--dram-budget', '64MiB', '--input-std', '0.3,x');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--input-std 0.3,x: expected a number/);
    assert.equal(existsSync(join(dir, 'x')), false);
  });

  it('writes the trace, the HTML report with SVG charts and PNGs; both policies reproduce the outputs', () => {
    const tier = join(dir, 'tier-b');
    mkdirSync(tier);
    const out = join(dir, 'report');
    const r = home(
      '--model',
      model,
      '--data',
      images,
      '--count',
      '8',
      '--dram-budget',
      '56MiB',
      '--tier',
      `nvme:${tier}`,
      '--profile',
      'optane-appdirect',
      '--out',
      out,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /home: .* outputs identical/);
    assert.match(r.stdout, /lru: .* outputs identical/);
    const files = readdirSync(out);
    for (const f of [
      'trace.json',
      'report.json',
      'report.html',
      'whatif.svg',
      'whatif.png',
      'measured-layers.svg',
    ])
      assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
    const trace = JSON.parse(readFileSync(join(out, 'trace.json'), 'utf8'));
    assert.equal(trace.runs.length, 2);
    for (const run of trace.runs) {
      assert.equal(run.correct, true);
      assert.equal(run.steps.op.length, run.steps.compute_ns.length);
      assert.ok(run.stats.dramPeakBytes <= run.stats.dramPoolBytes);
      assert.ok(run.stats.arenaPeakBytes <= run.stats.arenaBytes);
    }
    // Per layer, bytes per tier: the model's layers in order, summing to the run's totals per tier.
    for (const run of trace.runs) {
      const layers: {
        layer: string;
        steps: number;
        bytes_read: Record<string, number>;
        bytes_written: Record<string, number>;
        peak_resident_bytes: Record<string, number>;
      }[] = run.layers;
      assert.ok(layers.length >= 3, `layers: ${layers.map((l) => l.layer).join(', ')}`);
      assert.equal(
        layers.reduce((n, l) => n + l.steps, 0),
        run.steps.op.length,
      );
      for (const tier of ['nvme', 'arena', 'dram']) {
        assert.ok(tier in layers[0].bytes_read, `${tier} in ${Object.keys(layers[0].bytes_read).join(', ')}`);
        const read = layers.reduce((n, l) => n + l.bytes_read[tier], 0);
        const written = layers.reduce((n, l) => n + l.bytes_written[tier], 0);
        assert.equal(
          read,
          run.steps.bytes_read[tier].reduce((a: number, b: number) => a + b, 0),
        );
        assert.equal(
          written,
          run.steps.bytes_written[tier].reduce((a: number, b: number) => a + b, 0),
        );
      }
      assert.ok(
        layers.some((l) => l.bytes_read.nvme > 0),
        'some layer reads from the slow tier',
      );
      assert.ok(
        layers.every((l) => l.peak_resident_bytes.arena > 0),
        'every layer holds objects in the arena',
      );
    }
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /Per layer, bytes per tier \(home\)/);
    assert.match(html, /What-if/);
    assert.match(html, /Measured encrypted run/);
    assert.ok((html.match(/<svg/g) ?? []).length >= 6, 'charts inline as SVG');
    assert.deepEqual(readdirSync(tier), [], 'the tier is left empty');
  });
});
