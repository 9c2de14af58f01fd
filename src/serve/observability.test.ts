import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findModelFile } from '../platform/bundled-files.ts';
import { createServer, type HomeServer } from './app.ts';
import { operationOptions, parseDuration, parsePositive } from './cli-options.ts';
import { RemoteModel, ServeClient } from './client.ts';
import { normalizeImages } from './he-client.ts';
import { injectFetch } from './inject-fetch.ts';
import { tenantWithMnist } from '../../tests/support/serve-tenant.ts';
import { openApiDocument } from './openapi.ts';

const ADMIN = 'test-admin-token-0123456789';
const onnx = readFileSync(findModelFile('cryptonets-mnist.onnx'));

describe('home serve: metrics, logs, OpenAPI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'home-serve-obs-'));
  const lines: string[] = [];
  let server: HomeServer;
  let token: string;
  let keyBytes: Uint8Array;
  let ciphertext: Uint8Array;
  let keyId: string;
  before(async () => {
    server = await createServer({
      dataDir: dir,
      adminToken: ADMIN,
      allowInsecureParameters: true,
      logger: { level: 'trace', stream: { write: (line) => lines.push(line) } },
    });
    token = await tenantWithMnist(server.app, ADMIN, 'acme', onnx);
    const client = new ServeClient({ server: 'http://in-process', token, fetch: injectFetch(server.app) });
    const model = await RemoteModel.open(client, 'mnist', { seed: new Uint8Array(32).fill(3) });
    keyBytes = model.crypto.evaluationKeyBytes();
    // Once in one request, once in chunks; then an inference.
    keyId = await client.uploadKeys('mnist', keyBytes, { chunkBytes: keyBytes.length });
    await client.uploadKeys('mnist', keyBytes, { chunkBytes: Math.ceil(keyBytes.length / 3) });
    const inputs = model.crypto.encrypt(normalizeImages(model.he, new Float64Array(784).fill(90)), 1);
    ciphertext = inputs[0];
    await client.infer('mnist', keyId, inputs);
  });
  after(async () => {
    await server.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs carry no token, no key bytes and no ciphertext bytes', () => {
    const log = lines.join('');
    assert.ok(lines.length > 10, 'requests were logged');
    assert.ok(log.includes('/v2/keys/uploads'), 'the log names the routes');
    assert.ok(!log.includes(token), 'no tenant token');
    assert.ok(!log.includes(ADMIN), 'no admin token');
    for (const [what, bytes] of [
      ['key', keyBytes],
      ['ciphertext', ciphertext],
    ] as const) {
      const slice = Buffer.from(bytes.subarray(bytes.length >> 1, (bytes.length >> 1) + 24));
      for (const encoding of ['hex', 'base64', 'base64url', 'latin1'] as const) {
        assert.ok(!log.includes(slice.toString(encoding)), `no ${what} bytes (${encoding})`);
      }
      // A JSON dump of a Buffer or typed array lists the byte values.
      assert.ok(!log.includes(Array.from(slice.subarray(0, 12)).join(',')), `no ${what} byte list`);
    }
  });

  it('serves Prometheus metrics to the admin token: requests, latency, inference, queue, bytes, per tenant', async () => {
    expectForbidden(
      await server.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } }),
    );
    const reply = await server.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(reply.statusCode, 200);
    assert.match(String(reply.headers['content-type']), /^text\/plain/);
    const text = reply.body;
    const value = (pattern: RegExp) => {
      const match = pattern.exec(text);
      assert.ok(match, `${pattern} in the metrics`);
      return Number(match[1]);
    };
    assert.equal(
      value(
        /^home_http_requests_total\{route="\/v2\/keys\/uploads\/:id",method="PUT",status="200",tenant="acme"\} (\d+)$/m,
      ),
      3,
    );
    assert.equal(
      value(
        /^home_http_requests_total\{route="\/v2\/models\/:model\/infer",method="POST",status="200",tenant="acme"\} (\d+)$/m,
      ),
      1,
    );
    assert.ok(
      value(
        /^home_http_request_duration_seconds_count\{route="\/v2\/keys",method="POST",tenant="acme"\} (\d+)$/m,
      ) >= 1,
    );
    assert.equal(value(/^home_inference_seconds_count\{tenant="acme",model="mnist"\} (\d+)$/m), 1);
    assert.equal(value(/^home_inference_queue_depth (\d+)$/m), 0);
    // Bytes in on the key route: the one-request upload's body.
    assert.ok(
      value(/^home_http_request_bytes_total\{route="\/v2\/keys",tenant="acme"\} (\d+)$/m) >= keyBytes.length,
    );
    assert.ok(
      value(/^home_http_response_bytes_total\{route="\/v2\/models\/:model\/infer",tenant="acme"\} (\d+)$/m) >
        0,
    );
    // Labels are route patterns and names: no key id, token or upload id.
    assert.ok(!text.includes(keyId) && !text.includes(token) && !/u_[0-9a-f]{32}/.test(text));
  });

  it('the OpenAPI document describes every registered route, and only those', async () => {
    const doc = (await server.app.inject('/v2/openapi.json')).json() as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    assert.equal(doc.openapi, '3.1.0');
    const version = (doc as unknown as { info: { version: string } }).info.version;
    assert.deepEqual(doc, JSON.parse(JSON.stringify(openApiDocument(version))));
    const registered = new Set(
      server.routes.map((r) => `${r.method.toLowerCase()} ${r.url.replace(/:([A-Za-z]+)/g, '{$1}')}`),
    );
    const described = new Set(
      Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.keys(ops).map((method) => `${method} ${path}`),
      ),
    );
    assert.ok(registered.size > 30, `${registered.size} routes`);
    assert.deepEqual(
      [...registered].filter((r) => !described.has(r)),
      [],
      'routes missing from the document',
    );
    assert.deepEqual(
      [...described].filter((r) => !registered.has(r)),
      [],
      'described routes that do not exist',
    );
  });
});

function expectForbidden(reply: { statusCode: number; json(): unknown }) {
  assert.equal(reply.statusCode, 403);
  assert.equal((reply.json() as { code: string }).code, 'FORBIDDEN');
}

describe('home serve: TLS and command-line options', () => {
  const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
  const dir = mkdtempSync(join(tmpdir(), 'home-serve-tls-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serves HTTPS with --tls-cert / --tls-key (a self-signed certificate made here)', {
    skip: hasOpenssl ? false : 'openssl is not installed: no certificate can be made',
  }, async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const options = await operationOptions({ tlsCert: cert, tlsKey: key });
    const server = await createServer({ dataDir: join(dir, 'data'), adminToken: ADMIN, ...options });
    try {
      await server.app.listen({ port: 0, host: '127.0.0.1' });
      const address = server.app.server.address();
      assert.ok(address !== null && typeof address === 'object');
      const ca = readFileSync(cert);
      const body = await new Promise<string>((resolve, reject) => {
        const request = httpsRequest(
          { host: '127.0.0.1', port: address.port, path: '/v2/health/live', ca },
          (response) => {
            let text = '';
            response.on('data', (chunk: Buffer) => {
              text += chunk.toString();
            });
            response.on('end', () => resolve(text));
          },
        );
        request.on('error', reject);
        request.end();
      });
      assert.deepEqual(JSON.parse(body), { live: true });
      // Plain HTTP gets no answer from a TLS port.
      await assert.rejects(fetch(`http://127.0.0.1:${address.port}/v2/health/live`));
    } finally {
      await server.app.close();
    }
  });

  it('parses durations, limits, the log level and refuses half a TLS configuration', async () => {
    assert.equal(parseDuration('7d', '--key-ttl'), 604800);
    assert.equal(parseDuration('90', '--key-ttl'), 90);
    assert.equal(parseDuration('15m', '--key-ttl'), 900);
    assert.throws(() => parseDuration('0', '--key-ttl'), /--key-ttl 0/);
    assert.throws(() => parseDuration('1w', '--key-ttl'), /expected a duration/);
    assert.equal(parsePositive('2.5', '--tenant-rps'), 2.5);
    assert.throws(() => parsePositive('-1', '--max-queue'), /--max-queue -1/);
    const options = await operationOptions({
      keyTtl: '1h',
      logLevel: 'warn',
      tenantRps: '10',
      tenantInferences: '2',
      maxQueue: '8',
    });
    assert.deepEqual(options, {
      keyTtlSeconds: 3600,
      logger: { level: 'warn' },
      quotas: { requestsPerSecond: 10, concurrentInferences: 2, maxQueue: 8 },
    });
    await assert.rejects(operationOptions({ logLevel: 'loud' }), /--log-level loud/);
    await assert.rejects(operationOptions({ tlsCert: 'cert.pem' }), /give both/);
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    await assert.rejects(operationOptions({ tlsCert: notPem, tlsKey: notPem }), /not a PEM file/);
    await assert.rejects(
      operationOptions({ tlsCert: join(dir, 'none'), tlsKey: notPem }),
      /cannot read \(ENOENT\)/,
    );
  });
});
