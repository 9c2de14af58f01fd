/**
 * `home-he` in a real browser (headless Chromium): the package bundled for the browser, served cross-origin
 * isolated (COOP/COEP, so `SharedArrayBuffer` exists), runs CKKS on 1 and on 2 kernel threads — Web Workers over the
 * shared kernel memory — and gets the same bits on both, and the same bits as Node; a page that is not isolated
 * runs on one thread, with the same bits. CI installs Debian's chromium
 * (`.ci/run`); elsewhere the test is skipped when no Chromium is found (`CHROMIUM` names one explicitly).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import * as home from 'home-he';
import { ckksDigests } from './browser/ckks-threads.ts';
import { chromiumOrSkip } from '../support/chromium.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface PageResult {
  error?: string;
  crossOriginIsolated: boolean;
  sharedMemory: boolean;
  one: string[];
  two: string[];
  /** Threads the context asked for 2 got. */
  threads: number;
  tasksOnThreads: number;
}

describe('home-he in a browser: kernel threads on Web Workers', () => {
  const work = mkdtempSync(join(tmpdir(), 'home-browser-'));
  let chromium: ChildProcess | undefined;
  after(async () => {
    // Chromium's helper processes can still be writing its profile just after the kill: wait for the exit, and
    // let rmSync retry a directory that fills again (ENOTEMPTY) while they die.
    if (chromium && chromium.exitCode === null && chromium.signalCode === null) {
      const exited = new Promise((resolve) => chromium?.once('exit', resolve));
      chromium.kill('SIGKILL');
      await exited;
    }
    rmSync(work, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  });

  it('CKKS gives the same bits on 1 and 2 threads in Chromium, and the same as Node; one thread when not isolated', async (t) => {
    const browser = chromiumOrSkip(t);
    if (browser === undefined) return;
    const bundle = await build({
      entryPoints: [join(root, 'tests/package/browser/page.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      // The browser build of the package (dist/ with the browser conditions), as an application would bundle it.
      conditions: [],
      outfile: join(work, 'page.js'),
    });
    const script = bundle.outputFiles[0].text;
    assert.doesNotMatch(script, /kernel-threads\.node|kernel-loader\.node/);
    const kernels = readFileSync(join(root, 'build/kernels.wasm'));
    const html =
      '<!doctype html><meta charset="utf-8"><title>home-he</title><script type="module" src="/page.js"></script>';
    const waiting = new Map<string, (result: PageResult) => void>();
    // Pages under /isolated/ are cross-origin isolated (COOP + COEP: SharedArrayBuffer exists, so threads); pages
    // under /plain/ are not.
    const server = createServer((request: IncomingMessage, response: ServerResponse) => {
      const url = request.url ?? '/';
      if (url.startsWith('/isolated/')) {
        response.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
        response.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      }
      const send = (type: string, body: string | Uint8Array) => {
        response.writeHead(200, { 'Content-Type': type, 'Cross-Origin-Resource-Policy': 'same-origin' });
        response.end(body);
      };
      if (request.method === 'POST' && url.endsWith('/result')) {
        const chunks: Buffer[] = [];
        request.on('data', (c: Buffer) => chunks.push(c));
        request.on('end', () => {
          send('text/plain', 'ok');
          waiting.get(url.slice(0, -'result'.length))?.(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        });
        return;
      }
      if (url === '/isolated/' || url === '/plain/') send('text/html', html);
      else if (url === '/page.js') send('text/javascript', script);
      else if (url === '/kernels.wasm') send('application/wasm', kernels);
      else {
        response.writeHead(404);
        response.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    /** Opens `page` in a fresh headless Chromium and returns what the page posted. */
    const visit = async (page: '/isolated/' | '/plain/'): Promise<PageResult> => {
      const posted = new Promise<PageResult>((resolve) => waiting.set(page, resolve));
      const process = spawn(
        browser,
        [
          '--headless=new',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-dev-shm-usage',
          '--no-first-run',
          `--user-data-dir=${join(work, `profile-${page.slice(1, -1)}`)}`,
          `http://127.0.0.1:${port}${page}`,
        ],
        { stdio: 'ignore' },
      );
      chromium = process;
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          posted,
          new Promise<never>((_, reject) =>
            process.on('exit', (code) =>
              reject(new Error(`chromium exited (${code}) before ${page} posted`)),
            ),
          ),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no result from ${page} within 240 s`)), 240_000);
          }),
        ]);
      } finally {
        clearTimeout(timer);
        process.kill('SIGKILL');
      }
    };
    try {
      const node = await ckksDigests(home, 1);
      const isolated = await visit('/isolated/');
      assert.equal(isolated.error, undefined, isolated.error);
      assert.equal(isolated.crossOriginIsolated, true, 'the page is cross-origin isolated');
      assert.equal(isolated.sharedMemory, true);
      assert.equal(isolated.one.length, 7);
      assert.equal(isolated.threads, 2);
      assert.ok(isolated.tasksOnThreads > 0, 'a Web Worker ran kernel tasks');
      assert.deepEqual(isolated.two, isolated.one, '2 threads = 1 thread, bit for bit');
      assert.deepEqual(isolated.one, node.digests, 'the browser = Node, bit for bit');
      // Without isolation there is no SharedArrayBuffer: asked for 2 threads, the context runs on 1, same bits.
      const plain = await visit('/plain/');
      assert.equal(plain.error, undefined, plain.error);
      assert.equal(plain.crossOriginIsolated, false);
      assert.equal(plain.sharedMemory, false);
      assert.equal(plain.threads, 1);
      assert.deepEqual(plain.two, node.digests);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

if (!existsSync(join(root, 'build/kernels.wasm')))
  throw new Error('build/kernels.wasm is missing: run npm ci');
