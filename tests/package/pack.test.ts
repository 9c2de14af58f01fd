import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The package as a user gets it: `npm pack` of the checkout (dist/ as `npm ci` or `npm run build` left it),
 * installed into an empty folder, then used with plain `node` — no tsx, no TypeScript, no source files.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? files(full) : [full];
  });
}

describe('the packed package, installed in an empty folder', () => {
  let work = '';
  let installed = '';

  before(() => {
    assert.ok(
      existsSync(join(root, 'dist/index.js')),
      'dist/ is missing: `npm ci` (prepare) or `npm run build` builds it before the tests',
    );
    work = mkdtempSync(join(tmpdir(), 'home-pack-'));
    const packed = execFileSync(npm, ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], {
      cwd: root,
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .at(-1)!;
    writeFileSync(
      join(work, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    execFileSync(
      npm,
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', `./${packed}`],
      { cwd: work, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    installed = join(work, 'node_modules/home-he');
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships compiled ESM, declarations and the kernels, and no sources, tests or benchmarks', () => {
    const shipped = files(installed).map((f) => relative(installed, f));
    for (const needed of [
      'dist/index.js',
      'dist/index.d.ts',
      'build/kernels.wasm',
      'bin/home.mjs',
      'package.json',
    ])
      assert.ok(shipped.includes(needed), `${needed} is not in the package`);
    const unwanted = shipped.filter(
      (f) =>
        /^(src|tests|bench|scripts|assembly)\//.test(f) ||
        /\.test\.(js|d\.ts)$/.test(f) ||
        (f.endsWith('.ts') && !f.endsWith('.d.ts')),
    );
    assert.deepEqual(unwanted, []);
  });

  it('has no development tool among its dependencies', () => {
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const dev of ['tsx', 'typescript', 'node-seal', 'onnxruntime-node', 'fast-check', 'esbuild'])
      assert.equal(manifest.dependencies?.[dev], undefined, `${dev} is a runtime dependency`);
  });

  it('plain node runs keygen → encrypt → multiply → rotate → decrypt from `home-he`', () => {
    writeFileSync(
      join(work, 'round-trip.mjs'),
      `import { Decryptor, Encoder, Evaluator, KeyGenerator, Parameters, PRESETS, SymmetricEncryptor } from 'home-he';
const params = Parameters.create(PRESETS.PN13QP218);
const keygen = new KeyGenerator(params);
const sk = keygen.generateSecretKey();
const evaluator = new Evaluator(params, keygen.generateEvaluationKeys(sk, { rotations: [1] }));
const encoder = new Encoder(params);
const ct = new SymmetricEncryptor(params, sk).encryptNew(encoder.encodeNew([0.5, 0.25, -0.75]));
const squared = evaluator.mulRelinNew(ct, ct);
evaluator.rescale(squared, squared);
const out = encoder.decode(new Decryptor(params, sk).decryptNew(evaluator.rotateNew(squared, 1)));
console.log(JSON.stringify(Array.from(out.slice(0, 2))));
`,
    );
    const run = spawnSync(process.execPath, ['round-trip.mjs'], { cwd: work, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const [a, b] = JSON.parse(run.stdout) as number[];
    assert.ok(Math.abs(a - 0.0625) < 1e-3 && Math.abs(b - 0.5625) < 1e-3, run.stdout);
  });

  it('`npx home --help` works from the installed package', () => {
    const run = spawnSync(npm, ['exec', '--no-install', '--', 'home', '--help'], {
      cwd: work,
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /Usage: home/);
  });

  it('the tiered runtime writes and reads a slow-tier object through its I/O worker (compiled, no tsx)', () => {
    // The worker thread is started by URL: from dist/ it must load the compiled module, not the TypeScript one.
    const fileTier = pathToFileURL(join(installed, 'dist/runtime/store/file-tier.js')).href;
    writeFileSync(
      join(work, 'slow-tier.mjs'),
      `import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const { FileTier } = await import(${JSON.stringify(fileTier)});
const dir = mkdtempSync(join(tmpdir(), 'home-pack-tier-'));
const tier = await FileTier.open({ name: 'disk', dir });
const bytes = new Uint8Array(new SharedArrayBuffer(100_000)).map((_, i) => i * 7);
await tier.write('w', bytes);
const back = new Uint8Array(new SharedArrayBuffer(bytes.length));
await tier.read('w', back);
await tier.close();
rmSync(dir, { recursive: true, force: true });
console.log(back.every((b, i) => b === bytes[i]) ? 'same' : 'different');
`,
    );
    const run = spawnSync(process.execPath, ['slow-tier.mjs'], { cwd: work, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'same');
  });

  it('the core (util, ring, ckks) imports no Node module', () => {
    const offenders = files(join(installed, 'dist'))
      .filter((f) => /\/(util|ring|ckks)\//.test(f) && f.endsWith('.js'))
      .filter((f) =>
        /from\s*['"]node:|import\(\s*['"]node:|require\(\s*['"]node:/.test(readFileSync(f, 'utf8')),
      )
      .map((f) => relative(installed, f));
    assert.deepEqual(offenders, []);
  });

  it('its declarations type-check a TypeScript consumer', () => {
    writeFileSync(
      join(work, 'consumer.ts'),
      `import { type Ciphertext, Parameters, PRESETS } from 'home-he';
export const slots: number = Parameters.create(PRESETS.PN13QP218).slots;
export type Value = Ciphertext;
`,
    );
    writeFileSync(
      join(work, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          noEmit: true,
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const run = spawnSync(process.execPath, [tsc, '-p', work], { cwd: work, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stdout + run.stderr);
  });
});
