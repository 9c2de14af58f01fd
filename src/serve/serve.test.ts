import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KeyGenerator } from '../ckks/keys.ts';
import { serializeEvaluationKeys } from '../ckks/serialization/index.ts';
import { importOnnx } from '../nn/onnx/import.ts';
import { simulate } from '../nn/simulate.ts';
import { findModelFile } from '../platform/bundled-files.ts';
import { Prng } from '../ring/prng.ts';
import { createServer, type HomeServer } from './app.ts';
import { RemoteModel, ServeClient, ServerError } from './client.ts';
import { normalizeImages } from './he-client.ts';
import { injectFetch } from './inject-fetch.ts';
import { disposeKeys } from './keys.ts';

const ADMIN = 'test-admin-token-0123456789';
const onnx = readFileSync(findModelFile('cryptonets-mnist.onnx'));
const plainModel = importOnnx(onnx);
/** CryptoNets in latency packing at an insecure ring degree 2^11 (tests only): a one-image round in about 1 s. */
const UPLOAD = '?input_scale=1/256&mode=latency&insecure_log_n=11';

/** `count` MNIST-like raw images (bytes 0…255), deterministic. */
function rawImages(count: number, seed: number): Float64Array {
  const bytes = new Uint8Array(count * 784);
  Prng.fromSeed(new Uint8Array(32).fill(seed)).nextBytes(bytes);
  return Float64Array.from(bytes);
}

/** Largest |encrypted − plaintext| logit over the logit range of each image. */
function relativeError(logits: Float64Array, plain: Float64Array, classes: number): number {
  let worst = 0;
  for (let i = 0; i < logits.length / classes; i++) {
    const row = plain.subarray(i * classes, (i + 1) * classes);
    const range = Math.max(...row) - Math.min(...row);
    for (let j = 0; j < classes; j++)
      worst = Math.max(worst, Math.abs(logits[i * classes + j] - row[j]) / range);
  }
  return worst;
}

async function createTenant(server: HomeServer, name: string, scopes?: string[]): Promise<string> {
  const reply = await server.app.inject({
    method: 'POST',
    url: '/v2/admin/tenants',
    headers: { authorization: `Bearer ${ADMIN}` },
    payload: { name, ...(scopes ? { scopes } : {}) },
  });
  assert.equal(reply.statusCode, 201, reply.body);
  return reply.json().token;
}

async function uploadModel(server: HomeServer, token: string, name: string) {
  return server.app.inject({
    method: 'PUT',
    url: `/v2/repository/models/${name}${UPLOAD}`,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    payload: onnx,
  });
}

describe('home serve', () => {
  const dir = mkdtempSync(join(tmpdir(), 'home-serve-'));
  let server: HomeServer;
  let token: string;
  let model: RemoteModel;
  let keyId: string;
  before(async () => {
    server = await createServer({ dataDir: dir, adminToken: ADMIN, allowInsecureParameters: true });
    token = await createTenant(server, 'acme');
    const reply = await uploadModel(server, token, 'mnist');
    assert.equal(reply.statusCode, 201, reply.body);
  });
  after(async () => {
    await server.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('speaks the KServe V2 health and metadata endpoints, with the HE parameters a client needs', async () => {
    assert.deepEqual((await server.app.inject('/v2/health/live')).json(), { live: true });
    assert.deepEqual((await server.app.inject('/v2/health/ready')).json(), { ready: true });
    const meta = (await server.app.inject('/v2')).json();
    assert.equal(meta.name, 'home-he');
    assert.ok(meta.extensions.includes('binary_tensor_data') && meta.extensions.includes('he_keys'));
    const auth = { authorization: `Bearer ${token}` };
    const m = (await server.app.inject({ url: '/v2/models/mnist', headers: auth })).json();
    assert.equal(m.name, 'mnist');
    assert.deepEqual(m.versions, ['1']);
    assert.equal(m.inputs[0].datatype, 'BYTES');
    assert.equal(m.he.packing, 'latency');
    assert.equal(m.he.log_n, 11);
    assert.ok(m.he.rotations.length > 0 && m.he.rotations.length === m.he.galois_elements.length);
    assert.deepEqual(
      m.he.key_levels.map((e: number[]) => e[0]),
      [...m.he.galois_elements].sort((a: number, b: number) => a - b),
    );
    assert.equal(m.he.normalization.scale, 1 / 256);
    assert.deepEqual(
      (await server.app.inject({ url: '/v2/models/mnist/versions/1', headers: auth })).json(),
      m,
    );
    assert.equal(
      (await server.app.inject({ url: '/v2/models/mnist/versions/2', headers: auth })).statusCode,
      404,
    );
    assert.equal(
      (await server.app.inject({ url: '/v2/models/mnist/ready', headers: auth })).json().ready,
      true,
    );
  });

  it('encrypted inference over HTTP: the decrypted logits match the plaintext model', async () => {
    const client = new ServeClient({ server: 'http://in-process', token, fetch: injectFetch(server.app) });
    model = await RemoteModel.open(client, 'mnist', { seed: new Uint8Array(32).fill(7) });
    const images = normalizeImages(model.he, rawImages(1, 3));
    const logits = await model.classify(images, 1);
    const plain = simulate(plainModel, images, 1);
    assert.ok(relativeError(logits, plain, 10) < 1e-2, `${relativeError(logits, plain, 10)}`);
    keyId = await model.uploadKeys();
    assert.match(keyId, /^k_[0-9a-f]{32}$/);
    assert.ok(client.traffic.keys > 0 && client.traffic.up > 0 && client.traffic.down > 0);
    // The key set as stored: only evaluation keys, exactly the model's Galois elements.
    const stored = (
      await server.app.inject({ url: `/v2/keys/${keyId}`, headers: { authorization: `Bearer ${token}` } })
    ).json();
    assert.deepEqual(
      [...stored.galois_elements].sort((a: number, b: number) => a - b),
      model.he.key_levels.map(([g]) => g),
    );
    assert.equal(stored.relinearization, true);
  });

  it('keys missing a Galois key the model uses are refused with MISSING_KEY', async () => {
    const params = model.crypto.params;
    const keygen = new KeyGenerator(params, Prng.fromSeed(new Uint8Array(32).fill(9)));
    const sk = keygen.generateSecretKey();
    const evk = keygen.generateEvaluationKeys(sk, { rotations: model.he.rotations.slice(1) });
    const bytes = serializeEvaluationKeys(evk, { seeded: true });
    disposeKeys(evk);
    const reply = await server.app.inject({
      method: 'POST',
      url: '/v2/keys?model=mnist',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      payload: Buffer.from(bytes),
    });
    assert.equal(reply.statusCode, 400, reply.body);
    assert.equal(reply.json().code, 'MISSING_KEY');
  });

  it('tenants see only their own models and keys (404), and scopes are enforced', async () => {
    const other = await createTenant(server, 'globex');
    const headers = { authorization: `Bearer ${other}` };
    for (const [method, url] of [
      ['GET', '/v2/models/mnist'],
      ['GET', '/v2/models/mnist/ready'],
      ['POST', '/v2/models/mnist/infer'],
      ['POST', '/v2/repository/models/mnist/unload'],
      ['DELETE', '/v2/repository/models/mnist'],
    ] as const) {
      const reply = await server.app.inject({ method, url, headers });
      assert.equal(reply.statusCode, 404, `${method} ${url}: ${reply.body}`);
      assert.equal(reply.json().code, 'MODEL_NOT_FOUND');
    }
    for (const method of ['GET', 'DELETE'] as const) {
      const reply = await server.app.inject({ method, url: `/v2/keys/${keyId}`, headers });
      assert.equal(reply.statusCode, 404);
      assert.equal(reply.json().code, 'KEY_NOT_FOUND');
    }
    assert.deepEqual(
      (await server.app.inject({ method: 'POST', url: '/v2/repository/index', headers })).json(),
      [],
    );
    // globex's own copy of the model, inferred with acme's key id: the key is not found either.
    assert.equal((await uploadModel(server, other, 'mnist')).statusCode, 201);
    const client = new ServeClient({
      server: 'http://in-process',
      token: other,
      fetch: injectFetch(server.app),
    });
    const inputs = model.crypto.encrypt(normalizeImages(model.he, rawImages(1, 4)), 1);
    await assert.rejects(
      client.infer('mnist', keyId, inputs),
      (e: unknown) => e instanceof ServerError && e.status === 404 && e.code === 'KEY_NOT_FOUND',
    );
    // Scopes: an infer-only token cannot upload models or keys; the admin token owns no models; no token is 401.
    const inferOnly = await createTenant(server, 'initech', ['infer']);
    const upload = await uploadModel(server, inferOnly, 'x');
    assert.equal(upload.statusCode, 403);
    assert.equal(upload.json().code, 'FORBIDDEN');
    const keys = await server.app.inject({
      method: 'GET',
      url: '/v2/keys',
      headers: { authorization: `Bearer ${inferOnly}` },
    });
    assert.equal(keys.statusCode, 403);
    assert.equal(
      (await server.app.inject({ url: '/v2/models/mnist', headers: { authorization: `Bearer ${ADMIN}` } }))
        .statusCode,
      403,
    );
    const anonymous = await server.app.inject({ url: '/v2/models/mnist' });
    assert.equal(anonymous.statusCode, 401);
    assert.equal(anonymous.json().code, 'UNAUTHENTICATED');
    assert.equal(
      (await server.app.inject({ url: '/v2/models/mnist', headers: { authorization: 'Bearer home_nope' } }))
        .statusCode,
      401,
    );
    // Tenants are the admin's: a tenant token cannot create one.
    const create = await server.app.inject({
      method: 'POST',
      url: '/v2/admin/tenants',
      headers: { authorization: `Bearer ${token}` },
      payload: { name: 'evil' },
    });
    assert.equal(create.statusCode, 403);
  });

  it('unload and load: an unloaded model answers MODEL_NOT_READY, a loaded one serves again', async () => {
    const headers = { authorization: `Bearer ${token}` };
    assert.equal(
      (await server.app.inject({ method: 'POST', url: '/v2/repository/models/mnist/unload', headers }))
        .statusCode,
      200,
    );
    assert.equal((await server.app.inject({ url: '/v2/models/mnist/ready', headers })).json().ready, false);
    const index = (await server.app.inject({ method: 'POST', url: '/v2/repository/index', headers })).json();
    assert.deepEqual(index, [{ name: 'mnist', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' }]);
    await assert.rejects(
      model.classify(normalizeImages(model.he, rawImages(1, 5)), 1),
      (e: unknown) => e instanceof ServerError && e.code === 'MODEL_NOT_READY' && e.status === 409,
    );
    assert.equal(
      (await server.app.inject({ method: 'POST', url: '/v2/repository/models/mnist/load', headers }))
        .statusCode,
      200,
    );
    assert.equal((await server.app.inject({ url: '/v2/models/mnist/ready', headers })).json().ready, true);
  });

  it('a restarted server on the same data directory serves the models, keys and tokens without re-upload', async () => {
    await server.app.close();
    server = await createServer({ dataDir: dir, adminToken: ADMIN, allowInsecureParameters: true });
    // The same client (its key id from before the restart) on a real port.
    await server.app.listen({ port: 0, host: '127.0.0.1' });
    const address = server.app.server.address();
    assert.ok(address !== null && typeof address === 'object');
    const client = new ServeClient({ server: `http://127.0.0.1:${address.port}`, token });
    const meta = await client.metadata('mnist');
    assert.deepEqual(meta.he, model.he);
    const images = normalizeImages(model.he, rawImages(1, 6));
    const outputs = await client.infer('mnist', keyId, model.crypto.encrypt(images, 1));
    const logits = model.crypto.decrypt(outputs, 1);
    assert.ok(relativeError(logits, simulate(plainModel, images, 1), 10) < 1e-2);
    assert.equal(client.traffic.keys, 0, 'the keys were not uploaded again');
  });

  it('generates an admin token into <data-dir>/admin-token (mode 0600) when none is given', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'home-serve-admin-'));
    try {
      const s = await createServer({ dataDir: fresh });
      assert.equal(s.adminTokenSource, 'generated');
      assert.equal(statSync(s.adminTokenPath).mode & 0o777, 0o600);
      const admin = readFileSync(s.adminTokenPath, 'utf8').trim();
      const reply = await s.app.inject({
        method: 'POST',
        url: '/v2/admin/tenants',
        headers: { authorization: `Bearer ${admin}` },
        payload: { name: 't1' },
      });
      assert.equal(reply.statusCode, 201);
      await s.app.close();
      const again = await createServer({ dataDir: fresh });
      assert.equal(again.adminTokenSource, 'file');
      assert.deepEqual(again.tenants.names(), ['t1']);
      await again.app.close();
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});
