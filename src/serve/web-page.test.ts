/**
 * `home serve`'s page end to end in headless Chromium (Debian's `chromium`, driven by playwright-core): a real
 * server on a port with a small model, the page opened with a tenant token in its query, an MNIST test digit
 * picked, encrypted in the page's Web Worker, classified by the server, decrypted in the page. The test checks
 * the answer against the plaintext model, that the page called only the documented endpoints and sent only
 * evaluation keys and ciphertexts (the secret key has no way out), and a screenshot of the finished page.
 * Skipped outside CI when no Chromium is found (`CHROMIUM` names one explicitly).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync, inflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { Parameters } from '../ckks/parameters.ts';
import { deserializeCiphertext } from '../ckks/serialization/ciphertext.ts';
import { deserializeEvaluationKeys } from '../ckks/serialization/switching-keys.ts';
import { checkDescriptor } from '../client/he-metadata.ts';
import { normalizeImages } from '../client/model-crypto.ts';
import { decodeMessage, HEADER_LENGTH } from '../client/protocol.ts';
import { importOnnx } from '../nn/onnx/import.ts';
import { simulate } from '../nn/simulate.ts';
import { findDataFile, findModelFile } from '../platform/bundled-files.ts';
import { createServer, type HomeServer } from './app.ts';
import { disposeKeys } from './keys.ts';
import { chromiumOrSkip } from '../../tests/support/chromium.ts';

const ADMIN = 'test-admin-token-web-0123456789';
const onnx = readFileSync(findModelFile('cryptonets-mnist.onnx'));
/** CryptoNets in latency packing at an insecure ring degree 2^11 (tests only), as the other serve tests use. */
const UPLOAD = '?input_scale=1/256&mode=latency&insecure_log_n=11';
const VIEWPORT = { width: 1000, height: 760 };

/** Width, height and RGBA pixels of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are). */
function decodePng(png: Buffer): { width: number; height: number; pixels: Uint8Array } {
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const [depth, colour, , , interlace] = png.subarray(24, 29);
  assert.equal(depth, 8);
  assert.equal(interlace, 0);
  const channels = colour === 6 ? 4 : colour === 2 ? 3 : 0;
  assert.ok(channels > 0, `colour type ${colour}`);
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    if (png.subarray(at + 4, at + 8).toString('latin1') === 'IDAT')
      idat.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const data = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const rows = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = data[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const v = data[y * (stride + 1) + 1 + x];
      const a = x >= channels ? rows[y * stride + x - channels] : 0;
      const b = y > 0 ? rows[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? rows[(y - 1) * stride + x - channels] : 0;
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
          ? a
          : Math.abs(p - b) <= Math.abs(p - c)
            ? b
            : c;
      const predicted = [0, a, b, (a + b) >> 1, paeth][filter];
      rows[y * stride + x] = (v + predicted) & 255;
    }
  }
  const pixels = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    pixels.set(rows.subarray(i * channels, i * channels + 3), 4 * i);
    pixels[4 * i + 3] = channels === 4 ? rows[i * channels + 3] : 255;
  }
  return { width, height, pixels };
}

describe('home serve: the web page in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'home-web-'));
  let server: HomeServer | undefined;
  after(async () => {
    await server?.app.close();
    rmSync(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  });

  it('classifies an MNIST test digit encrypted in the page as the plaintext model does, sending no secret', async (t) => {
    const executablePath = chromiumOrSkip(t);
    if (executablePath === undefined) return;
    server = await createServer({ dataDir: dir, adminToken: ADMIN, allowInsecureParameters: true });
    const created = await server.app.inject({
      method: 'POST',
      url: '/v2/admin/tenants',
      headers: { authorization: `Bearer ${ADMIN}` },
      payload: { name: 'acme' },
    });
    const token = created.json().token as string;
    const uploaded = await server.app.inject({
      method: 'PUT',
      url: `/v2/repository/models/mnist${UPLOAD}`,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      payload: onnx,
    });
    assert.equal(uploaded.statusCode, 201, uploaded.body);
    const he = (
      await server.app.inject({ url: '/v2/models/mnist', headers: { authorization: `Bearer ${token}` } })
    ).json().he;
    checkDescriptor(he);
    const origin = await server.app.listen({ port: 0, host: '127.0.0.1' });

    const browser = await chromium.launch({
      executablePath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
    });
    try {
      const context = await browser.newContext({ viewport: VIEWPORT });
      // Every request of the page and of its workers, with its body.
      const requests: { method: string; path: string; body: Buffer | null; headerLength?: string }[] = [];
      context.on('request', (request) => {
        const url = new URL(request.url());
        requests.push({
          method: request.method(),
          path: url.pathname,
          body: request.postDataBuffer(),
          headerLength: request.headers()[HEADER_LENGTH],
        });
      });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`${origin}/?token=${encodeURIComponent(token)}`);
      const settled = (states: string[]) =>
        page.waitForFunction((s) => s.includes(document.body.dataset.state ?? ''), states, {
          timeout: 240_000,
        });
      await settled(['ready', 'error']);
      assert.equal(
        await page.locator('body').getAttribute('data-state'),
        'ready',
        (await page.locator('#status').textContent()) ?? '',
      );
      assert.equal(page.url(), `${origin}/`, 'the token left the address bar');
      await page.locator('#samples canvas[data-index="0"]').click();
      await page.locator('#classify').click();
      await settled(['done', 'error']);
      const status = (await page.locator('#status').textContent()) ?? '';
      assert.equal(await page.locator('body').getAttribute('data-state'), 'done', status);
      assert.deepEqual(errors, []);

      // The answer shown is the plaintext model's on the same digit (MNIST test image 0, a 7).
      const shown = Number(await page.locator('#answer').getAttribute('data-label'));
      const logits = JSON.parse(
        (await page.locator('#answer').getAttribute('data-logits')) ?? '[]',
      ) as number[];
      const images = gunzipSync(readFileSync(findDataFile('mnist/t10k-images-idx3-ubyte.gz')));
      const digit = Float64Array.from(images.subarray(16, 16 + 784));
      const plain = [...simulate(importOnnx(onnx), normalizeImages(he, digit), 1)];
      const best = plain.indexOf(Math.max(...plain));
      assert.equal(shown, best);
      assert.equal(best, 7, 'the plaintext model reads test image 0 as its label');
      const range = Math.max(...plain) - Math.min(...plain);
      assert.equal(logits.length, plain.length);
      for (const [i, v] of logits.entries()) {
        assert.ok(Math.abs(v - plain[i]) / range < 1e-2, `logit ${i}: ${v} vs ${plain[i]}`);
      }
      const breakdown = (await page.locator('#breakdown').textContent()) ?? '';
      for (const row of [
        'encrypt',
        'key upload',
        'inference',
        'decrypt',
        'ciphertexts sent',
        'ciphertexts received',
      ])
        assert.ok(breakdown.includes(row), `breakdown names ${row}`);
      assert.equal(Number(await page.locator('#progress').getAttribute('value')), 1);

      // Only the page's files and the documented API were called; the only bodies are the model index query,
      // one evaluation-key set and one inference request of ciphertexts of the model's parameters.
      const documented = [
        /^GET \/$/,
        /^GET \/web\/(lib|deps)\/[\w@./-]+\.js$/,
        /^GET \/web\/build\/kernels\.wasm$/,
        /^GET \/web\/samples\/mnist$/,
        /^GET \/favicon\.ico$/,
        /^POST \/v2\/repository\/index$/,
        /^GET \/v2\/models\/mnist$/,
        /^POST \/v2\/keys$/,
        /^POST \/v2\/keys\/uploads$/,
        /^(PUT|GET) \/v2\/keys\/uploads\/[\w-]+$/,
        /^POST \/v2\/keys\/uploads\/[\w-]+\/commit$/,
        /^POST \/v2\/models\/mnist\/infer$/,
        /^GET \/v2\/jobs\/[\w-]+(\/result)?$/,
      ];
      for (const r of requests) {
        assert.ok(
          documented.some((p) => p.test(`${r.method} ${r.path}`)),
          `${r.method} ${r.path}`,
        );
      }
      const params = Parameters.create(he.parameters);
      const sent = requests.filter((r) => r.body !== null && r.body.length > 0);
      // The key set went up in one request or (above 16 MiB) as a chunked upload: its JSON opening, then chunks.
      const keyParts = sent.filter(
        (r) => r.path === '/v2/keys' || /^\/v2\/keys\/uploads\/[\w-]+$/.test(r.path),
      );
      assert.deepEqual(
        sent.filter((r) => !keyParts.includes(r)).map((r) => r.path),
        [
          '/v2/repository/index',
          ...(keyParts[0]?.path === '/v2/keys' ? [] : ['/v2/keys/uploads']),
          '/v2/models/mnist/infer',
        ],
      );
      assert.ok(keyParts.length > 0, 'the keys were uploaded');
      const keyBytes = new Uint8Array(Buffer.concat(keyParts.map((r) => r.body ?? Buffer.alloc(0))));
      const evk = deserializeEvaluationKeys(params, keyBytes);
      assert.deepEqual(
        [...evk.galois.keys()].sort((a, b) => a - b),
        he.key_levels.map(([g]) => g).sort((a, b) => a - b),
        'exactly the Galois keys the model needs',
      );
      assert.equal(evk.relinearization !== undefined, he.relinearization);
      disposeKeys(evk);
      const inference = sent[sent.length - 1];
      const body = new Uint8Array(inference.body ?? []);
      const inputs = decodeMessage(body, inference.headerLength, 'inputs').tensors.get('input') ?? [];
      assert.equal(inputs.length, he.inputs.length);
      for (const ct of inputs) deserializeCiphertext(params, ct).dispose();

      // The finished page as a person sees it: the viewport's size, and not blank.
      const shot = decodePng(await page.screenshot());
      assert.deepEqual([shot.width, shot.height], [VIEWPORT.width, VIEWPORT.height]);
      const colours = new Map<number, number>();
      for (let i = 0; i < shot.width * shot.height; i++) {
        const key = (shot.pixels[4 * i] << 16) | (shot.pixels[4 * i + 1] << 8) | shot.pixels[4 * i + 2];
        colours.set(key, (colours.get(key) ?? 0) + 1);
      }
      const commonest = Math.max(...colours.values());
      assert.ok(colours.size > 50, `${colours.size} colours`);
      assert.ok(commonest < 0.8 * shot.width * shot.height, 'one colour does not fill the page');
    } finally {
      await browser.close();
    }
  });
});
