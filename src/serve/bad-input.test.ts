import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { OnnxBuilder } from '../../tests/support/onnx-builder.ts';
import { findModelFile } from '../platform/bundled-files.ts';
import { Prng } from '../ring/prng.ts';
import { createServer, type HomeServer } from './app.ts';
import { RemoteModel, ServeClient } from './client.ts';
import { normalizeImages } from './he-client.ts';
import { injectFetch } from './inject-fetch.ts';
import { tenantWithMnist } from '../../tests/support/serve-tenant.ts';
import { encodeMessage, HEADER_LENGTH } from './protocol.ts';

const ADMIN = 'test-admin-token-0123456789';
const onnx = readFileSync(findModelFile('cryptonets-mnist.onnx'));

/** Every file under `dir` (relative path → SHA-256 of its bytes). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out[relative(dir, full)] = bytesToHex(sha256(readFileSync(full)));
    }
  };
  walk(dir);
  return out;
}

describe('home serve: bad input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'home-serve-bad-'));
  let server: HomeServer;
  let token: string;
  let keyId: string;
  let inputs: Uint8Array[];
  let keyBytes: Uint8Array;
  const auth = () => ({ authorization: `Bearer ${token}` });
  const inferRequest = (cts: readonly Uint8Array[], key = keyId, extra: Record<string, unknown> = {}) => {
    const { bytes, headerLength } = encodeMessage(
      { parameters: { key_id: key }, ...extra },
      'inputs',
      new Map([['input', cts]]),
    );
    return { bytes: Buffer.from(bytes), headerLength };
  };
  const infer = (
    payload: Buffer,
    headerLength: number | string | undefined,
    contentType = 'application/octet-stream',
  ) =>
    server.app.inject({
      method: 'POST',
      url: '/v2/models/mnist/infer',
      headers: {
        ...auth(),
        'content-type': contentType,
        ...(headerLength !== undefined ? { [HEADER_LENGTH]: String(headerLength) } : {}),
      },
      payload,
    });

  before(async () => {
    server = await createServer({
      dataDir: dir,
      adminToken: ADMIN,
      allowInsecureParameters: true,
      limits: { json: 4096, model: 8 * 2 ** 20 },
    });
    token = await tenantWithMnist(server.app, ADMIN, 'acme', onnx);
    const model = await RemoteModel.open(
      new ServeClient({ server: 'http://x', token, fetch: injectFetch(server.app) }),
      'mnist',
      {
        seed: new Uint8Array(32).fill(1),
      },
    );
    keyBytes = model.crypto.evaluationKeyBytes();
    keyId = await model.uploadKeys();
    inputs = model.crypto.encrypt(normalizeImages(model.he, new Float64Array(784).fill(100)), 1);
  });
  after(async () => {
    await server.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Sends a request and checks the answer is a 4xx `{ error, code }` with `code`. */
  async function expectError(
    reply: { statusCode: number; json(): unknown; body: string },
    status: number,
    code: string,
  ) {
    assert.equal(reply.statusCode, status, reply.body);
    const body = reply.json() as { error: unknown; code: unknown };
    assert.equal(body.code, code, reply.body);
    assert.equal(typeof body.error, 'string');
  }

  it('each bad request answers 4xx with a JSON { error, code } naming the problem', async () => {
    const good = inferRequest(inputs);
    assert.equal((await infer(good.bytes, good.headerLength)).statusCode, 200);
    // Malformed JSON and oversize JSON bodies.
    await expectError(
      await server.app.inject({
        method: 'POST',
        url: '/v2/admin/tenants',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        payload: '{"name": ',
      }),
      400,
      'MALFORMED_JSON',
    );
    await expectError(
      await server.app.inject({
        method: 'POST',
        url: '/v2/admin/tenants',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        payload: JSON.stringify({ name: 'x'.repeat(5000) }),
      }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    await expectError(
      await server.app.inject({
        method: 'POST',
        url: '/v2/admin/tenants',
        headers: { authorization: `Bearer ${ADMIN}` },
        payload: { name: '../etc' },
      }),
      400,
      'INVALID_ARGUMENT',
    );
    await expectError(
      await server.app.inject({
        method: 'POST',
        url: '/v2/admin/tenants',
        headers: { authorization: `Bearer ${ADMIN}` },
        payload: { name: 'acme' },
      }),
      409,
      'CONFLICT',
    );
    // Inference: no binary header, bad header length, a JSON header that is not JSON, wrong datatype, wrong count.
    await expectError(await infer(good.bytes, undefined), 400, 'INVALID_ARGUMENT');
    await expectError(await infer(good.bytes, good.bytes.length + 1), 400, 'FORMAT');
    await expectError(await infer(good.bytes, 'ten'), 400, 'FORMAT');
    await expectError(await infer(good.bytes, good.headerLength - 1), 400, 'FORMAT');
    const text = JSON.stringify({
      parameters: { key_id: keyId },
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1], parameters: { binary_data_size: 4 } }],
    });
    await expectError(
      await infer(Buffer.concat([Buffer.from(text), Buffer.alloc(4)]), text.length),
      400,
      'INVALID_ARGUMENT',
    );
    const two = inferRequest([inputs[0], inputs[0]]);
    await expectError(await infer(two.bytes, two.headerLength), 400, 'INVALID_ARGUMENT');
    // Corrupted and truncated ciphertext bytes: the checksum or the length names the problem.
    const corrupted = inferRequest([inputs[0].map((b, i) => (i === 200 ? b ^ 1 : b))]);
    await expectError(await infer(corrupted.bytes, corrupted.headerLength), 400, 'FORMAT');
    const truncated = inferRequest([inputs[0].subarray(0, inputs[0].length - 10)]);
    await expectError(await infer(truncated.bytes, truncated.headerLength), 400, 'FORMAT');
    // Key ids: malformed, unknown (its own code, so a client re-uploads).
    await expectError(
      await infer(inferRequest(inputs, 'nope').bytes, inferRequest(inputs, 'nope').headerLength),
      400,
      'INVALID_ARGUMENT',
    );
    const unknown = inferRequest(inputs, `k_${'0'.repeat(32)}`);
    await expectError(await infer(unknown.bytes, unknown.headerLength), 404, 'KEY_NOT_FOUND');
    // A JSON body where ciphertexts must be binary; an unknown model; an unknown route.
    await expectError(await infer(Buffer.from('{}'), undefined, 'application/json'), 400, 'INVALID_ARGUMENT');
    await expectError(
      await server.app.inject({
        method: 'POST',
        url: '/v2/models/nope/infer',
        headers: { ...auth(), 'content-type': 'application/octet-stream' },
        payload: good.bytes,
      }),
      404,
      'MODEL_NOT_FOUND',
    );
    await expectError(await server.app.inject({ url: '/v3/whatever' }), 404, 'NOT_FOUND');
    // Keys: not an evaluation-key set; a ciphertext instead of keys; corrupted.
    const postKeys = (payload: Buffer) =>
      server.app.inject({
        method: 'POST',
        url: '/v2/keys?model=mnist',
        headers: { ...auth(), 'content-type': 'application/octet-stream' },
        payload,
      });
    await expectError(await postKeys(Buffer.from('not keys')), 400, 'FORMAT');
    await expectError(await postKeys(Buffer.from(inputs[0])), 400, 'FORMAT');
    await expectError(
      await postKeys(Buffer.from(keyBytes.map((b, i) => (i === 4000 ? b ^ 0x10 : b)))),
      400,
      'FORMAT',
    );
    // Models: garbage ONNX, bad options, an oversize upload, a name taken.
    const put = (url: string, payload: Buffer) =>
      server.app.inject({
        method: 'PUT',
        url,
        headers: { ...auth(), 'content-type': 'application/octet-stream' },
        payload,
      });
    const garbage = await put('/v2/repository/models/junk', Buffer.from('definitely not onnx'));
    assert.ok(garbage.statusCode === 400 || garbage.statusCode === 422, garbage.body);
    await expectError(await put('/v2/repository/models/m2?mode=fast', onnx), 400, 'INVALID_ARGUMENT');
    await expectError(await put('/v2/repository/models/m2?input_scale=-1', onnx), 400, 'INVALID_ARGUMENT');
    await expectError(await put('/v2/repository/models/m2?colour=red', onnx), 400, 'INVALID_ARGUMENT');
    await expectError(
      await put('/v2/repository/models/m2', Buffer.alloc(9 * 2 ** 20)),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    await expectError(await put('/v2/repository/models/mnist?insecure_log_n=11', onnx), 409, 'CONFLICT');
  });

  it('a model needing calibrated approximations (ReLU) is refused with UNSUPPORTED_MODEL', async () => {
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 4]);
    const hidden = b.gemm(x, { weight: new Float32Array(12).fill(0.5), weightDims: [4, 3] });
    b.output(b.relu(hidden));
    const reply = await server.app.inject({
      method: 'PUT',
      url: '/v2/repository/models/relu?insecure_log_n=11',
      headers: { ...auth(), 'content-type': 'application/octet-stream' },
      payload: Buffer.from(b.toBytes()),
    });
    await expectError(reply, 422, 'UNSUPPORTED_MODEL');
    assert.match(reply.json().error, /relu/i);
  });

  it('fuzz: 10,000 seeded malformed requests on every route: no 5xx, JSON errors, no stored object changed', async () => {
    // An open chunked upload and a job of another tenant give the id routes real targets to miss.
    const opened = await server.app.inject({
      method: 'POST',
      url: '/v2/keys/uploads',
      headers: auth(),
      payload: { model: 'mnist', size: keyBytes.length, sha256: bytesToHex(sha256(keyBytes)) },
    });
    assert.equal(opened.statusCode, 201, opened.body);
    const uploadId = opened.json().upload_id as string;
    const chunk = await server.app.inject({
      method: 'PUT',
      url: `/v2/keys/uploads/${uploadId}?offset=0`,
      headers: { ...auth(), 'content-type': 'application/octet-stream' },
      payload: Buffer.from(keyBytes.subarray(0, 1000)),
    });
    assert.equal(chunk.statusCode, 200, chunk.body);
    const other = await server.app.inject({
      method: 'POST',
      url: '/v2/admin/tenants',
      headers: { authorization: `Bearer ${ADMIN}` },
      payload: { name: 'other' },
    });
    const otherToken = other.json().token as string;
    const before = snapshot(dir);

    const prng = Prng.fromSeed(new Uint8Array(32).fill(42));
    const int = (n: number) => prng.nextUint32() % n;
    const pick = <T>(items: readonly T[]): T => items[int(items.length)];
    const good = inferRequest(inputs);

    // Path parameters: the real objects (reached only with a token that does not own them, or with a malformed
    // rest of the request), unknown ones, traversal attempts, encodings, NUL, unicode, oversize.
    const hostile = [
      '..',
      '%2e%2e',
      '%2E%2E%2F%2E%2E%2Fadmin-token',
      '..%2f..%2fadmin-token',
      '..%5c..%5cadmin-token',
      '.tmp-x',
      'a%00b',
      '%00',
      '%ff%fe',
      '%',
      '%zz',
      'caf%C3%A9',
      '%F0%9F%92%A9',
      'x'.repeat(300),
      '-',
      '_',
      ' ',
      '%20',
      'k_',
      `k_${'0'.repeat(32)}`,
      `u_${'f'.repeat(32)}`,
      `j_${'0'.repeat(32)}`,
      'NaN',
      '__proto__',
      'constructor',
    ];
    const paramValues: Record<string, readonly string[]> = {
      model: ['mnist', 'nope', 'other', 'MNIST', ...hostile],
      version: ['1', '2', '0', '-1', '01', '1.0', ...hostile],
      id: [keyId, uploadId, keyId.toUpperCase(), `${keyId}x`, ...hostile],
    };
    const extraPaths = [
      '/',
      '/v2/',
      '/v2//keys',
      '/v2/keys/',
      '/v2/models',
      '/v2/models/mnist/versions',
      '/v2/models/mnist/../../keys',
      '/v2/models/%2e%2e/%2e%2e/admin-token',
      '/../../etc/passwd',
      '/v2/repository/models/mnist/load/extra',
      `/v2/keys/uploads/${uploadId}/commit/extra`,
      '/v2/keys\u0000',
      '/v2/%E2%80%AE',
      `/v2/${'a/'.repeat(500)}`,
    ];
    const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const;
    const tokens = [
      undefined,
      'Bearer',
      'Bearer ',
      'Basic YWRtaW46YWRtaW4=',
      `Bearer ${'x'.repeat(600)}`,
      'Bearer home_AAAA',
      `Bearer ${ADMIN}x`,
      `bearer ${otherToken}`,
      `Bearer ${otherToken}`,
      `Bearer ${ADMIN}`,
      'Bearer \u00e9\u00e9',
    ];
    const contentTypes = [
      undefined,
      'application/octet-stream',
      'application/json',
      'application/json; charset=utf-16',
      'text/plain',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
      'application/octet-stream; x=y',
      '',
      ';;;',
      'application/\u00e9',
    ];
    const headerLengths = [
      undefined,
      String(good.headerLength),
      String(good.headerLength + 1),
      String(good.headerLength - 1),
      '0',
      '-5',
      '1e3',
      ' 12',
      '0x10',
      '99999999999',
      '18446744073709551617',
      'abc',
      '',
    ];
    const queries = [
      '',
      '?model=mnist',
      '?model=nope',
      '?model=..%2F..%2Fadmin-token',
      '?model=mnist&ttl_seconds=-1',
      '?model=mnist&ttl_seconds=1e99',
      '?model=mnist&ttl_seconds=0',
      '?model=mnist&model=nope',
      '?offset=-1',
      '?offset=1e20',
      '?offset=99999999999999999999',
      '?offset=0x10',
      '?offset=',
      '?offset=%00',
      '?offset=1000&offset=0',
      '?offset=9007199254740993',
      '?input_scale=NaN',
      '?input_scale=1/0',
      '?mode=..',
      '?insecure_log_n=100',
      '?insecure_log_n=11&input_range=5,1',
      '?input_mean=1,,2',
      '?%00=1',
      '?__proto__=1',
      `?${'a=1&'.repeat(200)}`,
    ];
    const jsonBodies = [
      '{',
      '[]',
      'null',
      '""',
      '{"name": ',
      '{"inputs": 5}',
      '{"parameters": {"key_id": 1}}',
      '{"inputs": [{"name": "input"}]}',
      '{"name": "../../etc"}',
      '{"name": "a/b"}',
      '{"name": "a\\u0000b"}',
      '{"name": "\u00e9t\u00e9"}',
      `{"name": "${'n'.repeat(65)}"}`,
      '{"name": ".tmp-x"}',
      '{"name": ""}',
      '{"name": 5}',
      '{"name": "zz", "scopes": ["root"]}',
      '{"name": "zz", "scopes": "infer"}',
      '{"name": "zz", "scopes": []}',
      '{"__proto__": {"name": "zz"}}',
      '{"model": "mnist", "size": -1, "sha256": "00"}',
      '{"model": "mnist", "size": 1e300, "sha256": "00"}',
      '{"model": "mnist", "size": 10, "sha256": "xyz"}',
      `{"model": "mnist", "size": 0, "sha256": "${'0'.repeat(64)}"}`,
      `{"model": "mnist", "size": 9007199254740993, "sha256": "${'0'.repeat(64)}"}`,
      `{"model": "../keys", "size": 10, "sha256": "${'0'.repeat(64)}"}`,
      `{"model": "mnist", "size": 10, "sha256": "${'0'.repeat(64)}", "ttl_seconds": -5}`,
      '{"ready": "yes"}',
      `${'['.repeat(3000)}${']'.repeat(3000)}`,
      '\ufeff{}',
      '\u0000',
      '{"a": 1e999999}',
    ];
    /** A body by kind: bytes of a real request altered, noise, JSON junk, or nothing. */
    const body = (): Buffer | string | undefined => {
      const kind = int(9);
      if (kind === 0) {
        const payload = Buffer.from(good.bytes);
        for (let f = 1 + int(8); f > 0; f--) payload[int(payload.length)] ^= 1 + int(255);
        return payload;
      }
      if (kind === 1) return good.bytes.subarray(0, int(good.bytes.length));
      if (kind === 2) return Buffer.from(keyBytes.subarray(int(64), int(4096)));
      if (kind === 3) {
        const bytes = new Uint8Array(int(2048));
        prng.nextBytes(bytes);
        return Buffer.from(bytes);
      }
      if (kind === 4 || kind === 5) return pick(jsonBodies);
      if (kind === 6) {
        // A valid JSON header declaring tensors larger than the body, or absurd shapes.
        const header = JSON.stringify({
          parameters: { key_id: pick([keyId, 'k_x', 5, null]) },
          inputs: [
            {
              name: pick(['input', '', 'x'.repeat(100)]),
              datatype: pick(['BYTES', 'FP32', 'bytes']),
              shape: pick([[1], [0], [-1], [2 ** 40], [1, 1], 'x']),
              parameters: { binary_data_size: pick([2 ** 31, 2 ** 53, -1, 10, 0, 1.5]) },
            },
          ],
        });
        return Buffer.concat([Buffer.from(header), Buffer.alloc(int(64))]);
      }
      if (kind === 7) return '';
      return undefined;
    };

    /**
     * Whether a request with the owner's token would change a stored object: the fuzzed bodies and queries are
     * all refused, so only a bodiless delete, load or unload naming the tenant's own model, key or upload would.
     * Those go with another tenant's token instead (404).
     */
    const ownerWouldChange = (method: string, url: string): boolean => {
      const path = url.split('?')[0];
      if (method === 'DELETE') {
        return [`/v2/keys/${keyId}`, `/v2/keys/uploads/${uploadId}`, '/v2/repository/models/mnist'].includes(
          path,
        );
      }
      return method === 'POST' && /^\/v2\/repository\/models\/mnist\/(load|unload)$/.test(path);
    };
    const routes = server.routes;
    const statuses = new Map<number, number>();
    const covered = new Set<string>();
    const COUNT = 10_000;
    for (let i = 0; i < COUNT; i++) {
      let method: string;
      let url: string;
      let pattern: string;
      if (int(20) === 0) {
        method = pick(methods);
        url = pick(extraPaths);
        pattern = 'extra';
      } else {
        const route = routes[int(routes.length)];
        method = int(15) === 0 ? pick(methods) : route.method;
        pattern = `${route.method} ${route.url}`;
        url = route.url.replace(/:([A-Za-z]+)/g, (_, name: string) => pick(paramValues[name] ?? hostile));
        url += pick(queries);
      }
      let authorization = pick(tokens);
      if (int(3) === 0) authorization = `Bearer ${token}`;
      const payload = body();
      const headers: Record<string, string> = {};
      if (authorization !== undefined) headers.authorization = authorization;
      const type = pick(contentTypes);
      if (type !== undefined) headers['content-type'] = type;
      const length = pick(headerLengths);
      if (length !== undefined) headers[HEADER_LENGTH] = length;
      if (int(25) === 0) headers['content-length'] = pick(['-1', 'abc', '99999999999', '1']);
      if (int(20) === 0) headers.prefer = 'respond-async';
      if (int(30) === 0) headers['transfer-encoding'] = 'chunked';
      if (authorization === `Bearer ${token}` && ownerWouldChange(method, url)) {
        headers.authorization = `Bearer ${otherToken}`;
      }
      covered.add(pattern);
      const reply = await server.app.inject({
        method: method as 'GET',
        url,
        headers,
        ...(payload !== undefined ? { payload } : {}),
      });
      statuses.set(reply.statusCode, (statuses.get(reply.statusCode) ?? 0) + 1);
      const what = `request ${i}: ${method} ${url.slice(0, 120)}`;
      assert.ok(
        reply.statusCode < 500 || reply.statusCode === 503,
        `${what}: ${reply.statusCode} ${reply.body.slice(0, 300)}`,
      );
      if (reply.statusCode >= 400 && method !== 'HEAD') {
        const errorBody = reply.json() as { error?: unknown; code?: unknown };
        assert.equal(typeof errorBody.code, 'string', `${what}: ${reply.body.slice(0, 300)}`);
        assert.equal(typeof errorBody.error, 'string', `${what}: ${reply.body.slice(0, 300)}`);
      }
    }
    // Every registered route was hit, most requests were refused, and nothing stored changed.
    for (const route of routes) assert.ok(covered.has(`${route.method} ${route.url}`), route.url);
    const refused = [...statuses].filter(([s]) => s >= 400).reduce((sum, [, n]) => sum + n, 0);
    assert.ok(refused > COUNT * 0.8, JSON.stringify([...statuses]));
    assert.deepEqual(snapshot(dir), before);
    // And the server still serves: an inference, and the upload resumes where it was.
    assert.equal((await infer(good.bytes, good.headerLength)).statusCode, 200);
    const status = await server.app.inject({ url: `/v2/keys/uploads/${uploadId}`, headers: auth() });
    assert.equal(status.json().offset, 1000, status.body);
  });
});
