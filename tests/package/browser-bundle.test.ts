import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

/**
 * The `.` entry bundled for the browser, as a web application's bundler would: resolution with the browser's
 * export conditions (never `node`), so the kernel loader is the fetch-based one and no Node module is reachable.
 * The bundle is then run in a process that is given the kernel bytes, not a file system path.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'home-bundle-'));

describe('browser bundle of home-he', () => {
  after(() => rmSync(work, { recursive: true, force: true }));

  it('bundles with browser conditions and contains no node: import', async () => {
    assert.ok(existsSync(join(root, 'dist/index.js')), 'dist/ is missing: run `npm run build`');
    const result = await build({
      stdin: { contents: "export * from 'home-he';", resolveDir: root, loader: 'js' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      outfile: join(work, 'home-he.browser.js'),
    });
    const code = result.outputFiles[0].text;
    writeFileSync(join(work, 'home-he.browser.mjs'), code);
    assert.doesNotMatch(code, /from\s*["']node:|import\(\s*["']node:|require\(\s*["']node:/);
    assert.doesNotMatch(code, /readFileSync|kernel-loader\.node/);
    assert.match(code, /fetch\(KERNEL_URL\)/, 'the browser loader is the one bundled');
  });

  it('the bundle runs once given the kernel bytes (no file system, no synchronous load)', () => {
    const script = `
      const home = await import(${JSON.stringify(pathToFileURL(join(work, 'home-he.browser.mjs')).href)});
      let refused = '';
      try { home.Parameters.create(home.PRESETS.PN13QP218); } catch (e) { refused = e.name; }
      const bytes = new Uint8Array(await (await import('node:fs/promises')).readFile(${JSON.stringify(join(root, 'build/kernels.wasm'))}));
      await home.loadKernels(bytes);
      const params = home.Parameters.create(home.PRESETS.PN13QP218);
      const keygen = new home.KeyGenerator(params);
      const sk = keygen.generateSecretKey();
      const encoder = new home.Encoder(params);
      const ct = new home.SymmetricEncryptor(params, sk).encryptNew(encoder.encodeNew([0.5]));
      const out = encoder.decode(new home.Decryptor(params, sk).decryptNew(ct));
      console.log(JSON.stringify({ refused, value: out[0] }));
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const { refused, value } = JSON.parse(run.stdout) as { refused: string; value: number };
    assert.equal(refused, 'ResourceError', 'before loadKernels the browser build refuses with a typed error');
    assert.ok(Math.abs(value - 0.5) < 1e-4, `decrypted ${value}`);
  });
});
