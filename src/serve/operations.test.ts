import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { importOnnx } from '../nn/onnx/import.ts';
import { simulate } from '../nn/simulate.ts';
import { findModelFile } from '../platform/bundled-files.ts';
import { Prng } from '../ring/prng.ts';
import { createServer, type HomeServer, type ServerOptions } from './app.ts';
import { type JobStatus, RemoteModel, ServeClient, ServerError } from './client.ts';
import { normalizeImages } from './he-client.ts';
import { injectFetch } from './inject-fetch.ts';
import { encodeMessage, HEADER_LENGTH } from './protocol.ts';

const ADMIN = 'test-admin-token-0123456789';
const onnx = readFileSync(findModelFile('cryptonets-mnist.onnx'));
const plainModel = importOnnx(onnx);
const UPLOAD = '?input_scale=1/256&mode=latency&insecure_log_n=11';
const image = (seed: number) => {
  const bytes = new Uint8Array(784);
  Prng.fromSeed(new Uint8Array(32).fill(seed)).nextBytes(bytes);
  return Float64Array.from(bytes);
};

/** A clock the test moves by hand: expiries and quotas are checked without waiting. */
class Clock {
  ms = Date.parse('2030-01-01T00:00:00Z');
  readonly now = () => this.ms;
  advance(seconds: number) {
    this.ms += seconds * 1000;
  }
}

/** A promise the test resolves when it wants: holds the engine's first run in its setup. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** A server with tenants `names` (all scopes) and the MNIST model uploaded by each; returns their tokens. */
async function serverWith(
  dir: string,
  names: string[],
  options: Partial<ServerOptions> = {},
): Promise<{ server: HomeServer; tokens: string[] }> {
  const server = await createServer({
    dataDir: dir,
    adminToken: ADMIN,
    allowInsecureParameters: true,
    ...options,
  });
  const tokens: string[] = [];
  for (const name of names) {
    const tenant = await server.app.inject({
      method: 'POST',
      url: '/v2/admin/tenants',
      headers: { authorization: `Bearer ${ADMIN}` },
      payload: { name },
    });
    assert.equal(tenant.statusCode, 201, tenant.body);
    const token = tenant.json().token as string;
    const model = await server.app.inject({
      method: 'PUT',
      url: `/v2/repository/models/mnist${UPLOAD}`,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      payload: onnx,
    });
    assert.equal(model.statusCode, 201, model.body);
    tokens.push(token);
  }
  return { server, tokens };
}

function expectCode(reply: { statusCode: number; body: string }, status: number, code: string) {
  assert.equal(reply.statusCode, status, reply.body);
  assert.equal(JSON.parse(reply.body).code, code, reply.body);
}

/** The max |encrypted − plaintext| logit relative to the logit range. */
function error(logits: Float64Array, images: Float64Array): number {
  const plain = simulate(plainModel, images, 1);
  const range = Math.max(...plain) - Math.min(...plain);
  return Math.max(...logits.map((v, i) => Math.abs(v - plain[i]))) / range;
}

describe('home serve: chunked key uploads, key expiry, jobs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'home-serve-ops-'));
  const clock = new Clock();
  const options = { keyTtlSeconds: 3600, now: clock.now };
  let server: HomeServer;
  let token: string;
  let other: string;
  let model: RemoteModel;
  let keyBytes: Uint8Array;
  const auth = (t = token) => ({ authorization: `Bearer ${t}` });
  before(async () => {
    ({
      server,
      tokens: [token, other],
    } = await serverWith(dir, ['acme', 'globex'], options));
    const client = new ServeClient({ server: 'http://in-process', token, fetch: injectFetch(server.app) });
    model = await RemoteModel.open(client, 'mnist', { seed: new Uint8Array(32).fill(5) });
    keyBytes = model.crypto.evaluationKeyBytes();
  });
  after(async () => {
    await server.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a chunked upload resumes from the offset the server reports, across a restart, and commits atomically', async () => {
    const hash = bytesToHex(sha256(keyBytes));
    const open = await server.app.inject({
      method: 'POST',
      url: '/v2/keys/uploads',
      headers: auth(),
      payload: { model: 'mnist', size: keyBytes.length, sha256: hash },
    });
    assert.equal(open.statusCode, 201, open.body);
    const id = open.json().upload_id as string;
    assert.match(id, /^u_[0-9a-f]{32}$/);
    assert.equal(open.headers.location, `/v2/keys/uploads/${id}`);
    const third = Math.ceil(keyBytes.length / 3);
    const put = (offset: number, bytes: Uint8Array, t = token) =>
      server.app.inject({
        method: 'PUT',
        url: `/v2/keys/uploads/${id}?offset=${offset}`,
        headers: { ...auth(t), 'content-type': 'application/octet-stream' },
        payload: Buffer.from(bytes),
      });
    const first = await put(0, keyBytes.subarray(0, third));
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(first.json().offset, third);
    // A chunk resent at an old offset, a commit before the end, another tenant: each refused by its own code.
    expectCode(await put(0, keyBytes.subarray(0, third)), 409, 'OFFSET_MISMATCH');
    expectCode(
      await server.app.inject({ method: 'POST', url: `/v2/keys/uploads/${id}/commit`, headers: auth() }),
      409,
      'UPLOAD_INCOMPLETE',
    );
    expectCode(await put(third, keyBytes.subarray(third, 2 * third), other), 404, 'UPLOAD_NOT_FOUND');
    expectCode(await put(third, keyBytes), 400, 'INVALID_ARGUMENT');
    // The server restarts: the upload and its offset are still there.
    const restartServer = async () => {
      await server.app.close();
      server = await createServer({
        dataDir: dir,
        adminToken: ADMIN,
        allowInsecureParameters: true,
        ...options,
      });
    };
    await restartServer();
    const status = await server.app.inject({ url: `/v2/keys/uploads/${id}`, headers: auth() });
    assert.equal(status.statusCode, 200, status.body);
    assert.equal(status.json().offset, third);
    assert.equal(status.json().size, keyBytes.length);
    assert.equal((await put(third, keyBytes.subarray(third))).json().offset, keyBytes.length);
    // No key is visible before the commit.
    assert.deepEqual((await server.app.inject({ url: '/v2/keys', headers: auth() })).json(), []);
    const commit = await server.app.inject({
      method: 'POST',
      url: `/v2/keys/uploads/${id}/commit`,
      headers: auth(),
    });
    assert.equal(commit.statusCode, 201, commit.body);
    const key = commit.json();
    assert.equal(key.bytes, keyBytes.length);
    assert.equal(key.status, 'active');
    assert.equal(key.expires_at, new Date(clock.ms + 3600_000).toISOString());
    // The client lost that answer and commits again: the same key set (200, not a second one), also after a
    // restart; the upload says what it became and takes no more chunks.
    for (const restart of [false, true]) {
      if (restart) await restartServer();
      const again = await server.app.inject({
        method: 'POST',
        url: `/v2/keys/uploads/${id}/commit`,
        headers: auth(),
      });
      assert.equal(again.statusCode, 200, again.body);
      assert.deepEqual(again.json(), key);
      assert.equal((await server.app.inject({ url: '/v2/keys', headers: auth() })).json().length, 1);
      const view = await server.app.inject({ url: `/v2/keys/uploads/${id}`, headers: auth() });
      assert.equal(view.json().committed_as, key.key_id);
      expectCode(await put(keyBytes.length, keyBytes.subarray(0, 1)), 409, 'UPLOAD_COMMITTED');
    }
    // The committed keys serve an inference.
    const client = new ServeClient({ server: 'http://in-process', token, fetch: injectFetch(server.app) });
    const images = normalizeImages(model.he, image(1));
    const outputs = await client.infer('mnist', key.key_id, model.crypto.encrypt(images, 1));
    assert.ok(error(model.crypto.decrypt(outputs, 1), images) < 1e-2);
  });

  it('a commit whose bytes do not match the announced SHA-256 answers CHECKSUM_MISMATCH and drops the upload', async () => {
    const open = await server.app.inject({
      method: 'POST',
      url: '/v2/keys/uploads',
      headers: auth(),
      payload: { model: 'mnist', size: keyBytes.length, sha256: bytesToHex(sha256(keyBytes)) },
    });
    const id = open.json().upload_id as string;
    const flipped = keyBytes.slice();
    flipped[1000] ^= 1;
    const put = await server.app.inject({
      method: 'PUT',
      url: `/v2/keys/uploads/${id}?offset=0`,
      headers: { ...auth(), 'content-type': 'application/octet-stream' },
      payload: Buffer.from(flipped),
    });
    assert.equal(put.statusCode, 200, put.body);
    const commit = await server.app.inject({
      method: 'POST',
      url: `/v2/keys/uploads/${id}/commit`,
      headers: auth(),
    });
    expectCode(commit, 400, 'CHECKSUM_MISMATCH');
    expectCode(
      await server.app.inject({ url: `/v2/keys/uploads/${id}`, headers: auth() }),
      404,
      'UPLOAD_NOT_FOUND',
    );
    // Bad openings: no such model, a size past the limit, a malformed checksum.
    for (const [payload, status, code] of [
      [{ model: 'nope', size: 10, sha256: 'a'.repeat(64) }, 404, 'MODEL_NOT_FOUND'],
      [{ model: 'mnist', size: 2 ** 40, sha256: 'a'.repeat(64) }, 400, 'INVALID_ARGUMENT'],
      [{ model: 'mnist', size: 10, sha256: 'xyz' }, 400, 'INVALID_ARGUMENT'],
    ] as const) {
      expectCode(
        await server.app.inject({ method: 'POST', url: '/v2/keys/uploads', headers: auth(), payload }),
        status,
        code,
      );
    }
  });

  it('the client uploads in chunks and resumes by itself after a lost answer and a dropped connection', async () => {
    const inner = injectFetch(server.app);
    let puts = 0;
    const flaky: typeof fetch = async (input, init) => {
      if (init?.method === 'PUT') {
        puts++;
        // The 2nd chunk reaches the server but its answer is lost; the 4th never reaches it.
        if (puts === 2) {
          await inner(input, init);
          throw new TypeError('fetch failed: connection reset');
        }
        if (puts === 4) throw new TypeError('fetch failed: connection refused');
      }
      return inner(input, init);
    };
    const client = new ServeClient({ server: 'http://in-process', token, fetch: flaky });
    const progress: number[] = [];
    const chunkBytes = Math.ceil(keyBytes.length / 5);
    const keyId = await client.uploadKeys('mnist', keyBytes, {
      chunkBytes,
      onProgress: (sent) => progress.push(sent),
    });
    assert.equal(progress.at(-1), keyBytes.length);
    assert.ok(progress.every((p, i) => i === 0 || p >= progress[i - 1]));
    assert.ok(puts >= 6, `${puts} chunk requests`);
    const stored = (await server.app.inject({ url: `/v2/keys/${keyId}`, headers: auth() })).json();
    assert.equal(stored.bytes, keyBytes.length);
    // An error that resuming cannot fix is passed on at once.
    await assert.rejects(
      client.uploadKeys('nope', keyBytes, { chunkBytes }),
      (e: unknown) => e instanceof ServerError && e.code === 'MODEL_NOT_FOUND',
    );
  });

  it('an expired key answers KEY_EXPIRED (410), not KEY_NOT_FOUND, and the client re-uploads by itself', async () => {
    const client = new ServeClient({ server: 'http://in-process', token, fetch: injectFetch(server.app) });
    const remote = await RemoteModel.open(client, 'mnist', { seed: new Uint8Array(32).fill(5) });
    const keyId = await remote.uploadKeys();
    // A shorter lifetime may be asked for; a longer one is cut to the server's.
    const short = await client.uploadKeys('mnist', keyBytes, { ttlSeconds: 60 });
    const long = await client.uploadKeys('mnist', keyBytes, { ttlSeconds: 10 ** 7 });
    const view = async (id: string) =>
      (await server.app.inject({ url: `/v2/keys/${id}`, headers: auth() })).json();
    assert.equal((await view(short)).expires_at, new Date(clock.ms + 60_000).toISOString());
    assert.equal((await view(long)).expires_at, new Date(clock.ms + 3600_000).toISOString());
    clock.advance(3601);
    assert.equal((await view(keyId)).status, 'expired');
    const images = normalizeImages(remote.he, image(2));
    const { bytes, headerLength } = encodeMessage(
      { parameters: { key_id: keyId } },
      'inputs',
      new Map([['input', remote.crypto.encrypt(images, 1)]]),
    );
    const expired = await server.app.inject({
      method: 'POST',
      url: '/v2/models/mnist/infer',
      headers: {
        ...auth(),
        'content-type': 'application/octet-stream',
        [HEADER_LENGTH]: String(headerLength),
      },
      payload: Buffer.from(bytes),
    });
    expectCode(expired, 410, 'KEY_EXPIRED');
    const keysBefore = client.traffic.keys;
    const logits = await remote.classify(images, 1);
    assert.ok(error(logits, images) < 1e-2);
    assert.ok(client.traffic.keys > keysBefore, 'the keys were uploaded again');
    assert.notEqual(await remote.uploadKeys(), keyId);
    // After the grace period the expired set is deleted: then it is unknown.
    clock.advance(86400);
    await server.keys.sweep();
    expectCode(await server.app.inject({ url: `/v2/keys/${keyId}`, headers: auth() }), 404, 'KEY_NOT_FOUND');
  });

  it('Prefer: respond-async answers 202 with a job whose status, progress and result are read later, by its tenant only', async () => {
    const client = new ServeClient({ server: 'http://in-process', token, fetch: injectFetch(server.app) });
    const remote = await RemoteModel.open(client, 'mnist', { seed: new Uint8Array(32).fill(6) });
    const keyId = await remote.uploadKeys();
    const images = normalizeImages(remote.he, image(3));
    const { bytes, headerLength } = encodeMessage(
      { id: 'req-1', parameters: { key_id: keyId } },
      'inputs',
      new Map([['input', remote.crypto.encrypt(images, 1)]]),
    );
    const submitted = await server.app.inject({
      method: 'POST',
      url: '/v2/models/mnist/infer',
      headers: {
        ...auth(),
        'content-type': 'application/octet-stream',
        [HEADER_LENGTH]: String(headerLength),
        prefer: 'respond-async',
      },
      payload: Buffer.from(bytes),
    });
    assert.equal(submitted.statusCode, 202, submitted.body);
    const job = submitted.json() as JobStatus;
    assert.match(job.id, /^j_[0-9a-f]{32}$/);
    assert.equal(submitted.headers.location, `/v2/jobs/${job.id}`);
    assert.ok(job.status === 'queued' || job.status === 'running');
    // Another tenant cannot see it.
    expectCode(
      await server.app.inject({ url: `/v2/jobs/${job.id}`, headers: auth(other) }),
      404,
      'JOB_NOT_FOUND',
    );
    expectCode(
      await server.app.inject({ url: `/v2/jobs/${job.id}/result`, headers: auth(other) }),
      404,
      'JOB_NOT_FOUND',
    );
    let status = job;
    while (status.status !== 'succeeded' && status.status !== 'failed') {
      await new Promise((resolve) => setTimeout(resolve, 20));
      status = await client.job(job.id);
    }
    assert.equal(status.status, 'succeeded', JSON.stringify(status));
    assert.ok(status.progress.total > 0 && status.progress.done === status.progress.total);
    assert.equal(status.result, `/v2/jobs/${job.id}/result`);
    const result = await server.app.inject({ url: `/v2/jobs/${job.id}/result`, headers: auth() });
    assert.equal(result.statusCode, 200);
    const header = JSON.parse(
      result.rawPayload.subarray(0, Number(result.headers[HEADER_LENGTH])).toString(),
    );
    assert.equal(header.id, 'req-1');
    // The client's job round: progress reported, the same logits as a synchronous inference.
    const seen: JobStatus[] = [];
    const logits = await remote.classify(images, 1, 0, { onProgress: (j) => seen.push(j), pollMs: 10 });
    assert.ok(error(logits, images) < 1e-2);
    assert.equal(seen.at(-1)?.status, 'succeeded');
    assert.ok(seen.every((s, i) => i === 0 || s.progress.done >= seen[i - 1].progress.done));
    // A finished job is forgotten on DELETE.
    assert.equal(
      (await server.app.inject({ method: 'DELETE', url: `/v2/jobs/${job.id}`, headers: auth() })).statusCode,
      204,
    );
    expectCode(await server.app.inject({ url: `/v2/jobs/${job.id}`, headers: auth() }), 404, 'JOB_NOT_FOUND');
  });
});

describe('home serve: quotas (429) and overload (503)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'home-serve-quota-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a tenant over its request rate gets 429 QUOTA_EXCEEDED with Retry-After; other tenants are served', async () => {
    const clock = new Clock();
    const { server, tokens } = await serverWith(join(dir, 'rate'), ['acme', 'globex'], { now: clock.now });
    await server.app.close();
    // The quota applies from a fresh start (the uploads above would have spent it).
    const limited = await createServer({
      dataDir: join(dir, 'rate'),
      adminToken: ADMIN,
      now: clock.now,
      quotas: { requestsPerSecond: 2, burst: 3 },
    });
    try {
      const get = (t: string) =>
        limited.app.inject({ url: '/v2/models/mnist/ready', headers: { authorization: `Bearer ${t}` } });
      for (let i = 0; i < 3; i++) assert.equal((await get(tokens[0])).statusCode, 200);
      const refused = await get(tokens[0]);
      expectCode(refused, 429, 'QUOTA_EXCEEDED');
      assert.equal(refused.headers['retry-after'], '1');
      assert.equal((await get(tokens[1])).statusCode, 200, 'another tenant is not limited');
      clock.advance(0.5);
      assert.equal((await get(tokens[0])).statusCode, 200, 'a token came back after 1 / rate seconds');
      expectCode(await get(tokens[0]), 429, 'QUOTA_EXCEEDED');
      // Health needs no token and counts against no tenant.
      assert.equal((await limited.app.inject('/v2/health/ready')).statusCode, 200);
    } finally {
      await limited.app.close();
    }
  });

  it('concurrent inferences over a tenant quota get 429; a full server queue gets 503 OVERLOADED', async () => {
    const held = gate();
    let setups = 0;
    const { server, tokens } = await serverWith(join(dir, 'queue'), ['a', 'b', 'c'], {
      quotas: { concurrentInferences: 1, maxQueue: 2 },
      // The first run waits in its setup until the test opens the gate: the queue state is known, not timed.
      engine: {
        memoryFor: async () => {
          if (setups++ === 0) await held.wait;
          return undefined;
        },
      },
    });
    try {
      const remotes = await Promise.all(
        tokens.map(async (t, i) =>
          RemoteModel.open(
            new ServeClient({ server: 'http://in-process', token: t, fetch: injectFetch(server.app) }),
            'mnist',
            { seed: new Uint8Array(32).fill(10 + i) },
          ),
        ),
      );
      const images = normalizeImages(remotes[0].he, image(4));
      const requests = await Promise.all(
        remotes.map(async (r) => {
          const { bytes, headerLength } = encodeMessage(
            { parameters: { key_id: await r.uploadKeys() } },
            'inputs',
            new Map([['input', r.crypto.encrypt(images, 1)]]),
          );
          return { bytes: Buffer.from(bytes), headerLength };
        }),
      );
      const submit = (i: number) =>
        server.app.inject({
          method: 'POST',
          url: '/v2/models/mnist/infer',
          headers: {
            authorization: `Bearer ${tokens[i]}`,
            'content-type': 'application/octet-stream',
            [HEADER_LENGTH]: String(requests[i].headerLength),
            prefer: 'respond-async',
          },
          payload: requests[i].bytes,
        });
      const first = await submit(0);
      assert.equal(first.statusCode, 202, first.body);
      const again = await submit(0);
      expectCode(again, 429, 'QUOTA_EXCEEDED');
      assert.ok(Number(again.headers['retry-after']) >= 1);
      assert.equal((await submit(1)).statusCode, 202);
      assert.equal(server.engine.depth, 2);
      const full = await submit(2);
      expectCode(full, 503, 'OVERLOADED');
      assert.ok(Number(full.headers['retry-after']) >= 1);
      // The first job is running (held in its setup), with no instruction done yet.
      const running = await server.app.inject({
        url: `/v2/jobs/${first.json().id}`,
        headers: { authorization: `Bearer ${tokens[0]}` },
      });
      assert.equal(running.json().status, 'running');
      assert.equal(running.json().progress.done, 0);
      held.open();
      while (server.engine.depth > 0) await new Promise((resolve) => setTimeout(resolve, 20));
      const done = await server.app.inject({
        url: `/v2/jobs/${first.json().id}`,
        headers: { authorization: `Bearer ${tokens[0]}` },
      });
      assert.equal(done.json().status, 'succeeded', done.body);
      assert.equal((await submit(2)).statusCode, 202, 'served once the queue drained');
      while (server.engine.depth > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      held.open();
      await server.app.close();
    }
  });
});
