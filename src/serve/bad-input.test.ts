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
    const tenant = await server.app.inject({
      method: 'POST',
      url: '/v2/admin/tenants',
      headers: { authorization: `Bearer ${ADMIN}` },
      payload: { name: 'acme' },
    });
    token = tenant.json().token;
    const upload = await server.app.inject({
      method: 'PUT',
      url: '/v2/repository/models/mnist?input_scale=1/256&mode=latency&insecure_log_n=11',
      headers: { ...auth(), 'content-type': 'application/octet-stream' },
      payload: onnx,
    });
    assert.equal(upload.statusCode, 201, upload.body);
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

  it('fuzz: 300 seeded malformed requests, no 5xx and no stored object changed', async () => {
    const before = snapshot(dir);
    const prng = Prng.fromSeed(new Uint8Array(32).fill(42));
    const int = (n: number) => prng.nextUint32() % n;
    const good = inferRequest(inputs);
    const routes = [
      ['POST', '/v2/models/mnist/infer'],
      ['POST', '/v2/models/mnist/versions/1/infer'],
      ['POST', '/v2/keys?model=mnist'],
      ['GET', '/v2/models/mnist'],
      ['POST', '/v2/repository/index'],
      ['PUT', '/v2/repository/models/fuzz'],
      ['POST', '/v2/admin/tenants'],
      ['GET', `/v2/keys/${keyId}`],
    ] as const;
    const statuses = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      const [method, url] = routes[int(routes.length)];
      let payload: Buffer;
      let headerLength: string | undefined = String(good.headerLength);
      const kind = int(6);
      if (kind === 0) {
        // A valid request with 1–8 bytes flipped (ciphertext checksums and JSON parsing catch them).
        payload = Buffer.from(good.bytes);
        for (let f = 1 + int(8); f > 0; f--) payload[int(payload.length)] ^= 1 + int(255);
      } else if (kind === 1) {
        payload = good.bytes.subarray(0, int(good.bytes.length));
      } else if (kind === 2) {
        payload = Buffer.from(keyBytes.subarray(0, int(4096)));
        headerLength = String(int(5000));
      } else if (kind === 3) {
        const bytes = new Uint8Array(int(2048));
        prng.nextBytes(bytes);
        payload = Buffer.from(bytes);
        headerLength = int(2) ? String(int(3000)) : undefined;
      } else if (kind === 4) {
        const junk = [
          '{',
          '[]',
          'null',
          '{"inputs": 5}',
          '{"parameters": {"key_id": 1}}',
          '{"inputs": [{"name": "input"}]}',
          '"\u0000"',
        ];
        payload = Buffer.from(junk[int(junk.length)]);
        headerLength = String(payload.length);
      } else {
        const name = Buffer.from(keyBytes.subarray(int(100), int(100) + 40)).toString('latin1');
        payload = Buffer.from(JSON.stringify({ name, scopes: [name] }));
      }
      const contentTypes = [
        'application/octet-stream',
        'application/json',
        'text/plain',
        'application/octet-stream',
      ];
      // No payload is an ONNX file (uploads get flipped requests, key bytes or noise), so nothing can be
      // published; the admin route gets the tenant's token (403) or none (401).
      const reply = await server.app.inject({
        method,
        url,
        headers: {
          ...(int(5) === 0 ? {} : auth()),
          'content-type': contentTypes[int(contentTypes.length)],
          ...(headerLength !== undefined ? { [HEADER_LENGTH]: headerLength } : {}),
        },
        payload,
      });
      statuses.set(reply.statusCode, (statuses.get(reply.statusCode) ?? 0) + 1);
      assert.ok(reply.statusCode < 500, `request ${i} ${method} ${url}: ${reply.statusCode} ${reply.body}`);
      if (reply.statusCode >= 400) {
        const body = reply.json() as { error?: unknown; code?: unknown };
        assert.equal(typeof body.code, 'string', reply.body);
        assert.equal(typeof body.error, 'string', reply.body);
      }
    }
    assert.ok(
      [...statuses.keys()].some((s) => s >= 400),
      JSON.stringify([...statuses]),
    );
    assert.deepEqual(snapshot(dir), before);
    // And the server still serves.
    assert.equal((await infer(good.bytes, good.headerLength)).statusCode, 200);
  });
});
