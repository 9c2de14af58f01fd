/**
 * Crash safety of `home serve` (issue 13, criterion 3): a real server process is killed with SIGKILL at seeded
 * random moments while a client uploads keys (in one request and in chunks), opens, resumes and commits chunked
 * uploads, deletes keys, creates tenants, uploads, unloads, loads and deletes a model and runs inferences; after
 * each kill it restarts on the same data directory and the test checks that every answer the client saw as 2xx is
 * on disk byte for byte, that nothing half-written is visible through the API or left on disk, and that the
 * server still serves an inference.
 *
 * A server start is the test's main cost: through tsx it takes about 2 s (the loader hooks transform each module),
 * so the server (`crash-child.ts`, which calls `createServer` as `home serve` does) is bundled once by esbuild
 * into one file, each module's `import.meta.url` pinned to its source file so files beside the sources (the
 * kernels, package.json) are found; a start then takes about 0.5 s.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { OnnxBuilder } from '../../tests/support/onnx-builder.ts';
import { Prng } from '../ring/prng.ts';
import { TEMP_PREFIX } from './atomic.ts';
import type { HeModelDescriptor } from './he-metadata.ts';
import { ModelCrypto } from './he-client.ts';
import { decodeMessage, encodeMessage, HEADER_LENGTH } from './protocol.ts';

const ADMIN = 'test-admin-token-0123456789';
const KILLS = 100;
const SRC = fileURLToPath(new URL('..', import.meta.url));

/** A two-layer model (Gemm, square, Gemm) on 16 inputs: keys of about 1.8 MB, an inference of about 50 ms. */
function tinyModel(): { onnx: Uint8Array; plain: (x: readonly number[]) => number[] } {
  const w1 = Array.from({ length: 16 * 8 }, (_, i) => Math.sin(i) / 4);
  const w2 = Array.from({ length: 8 * 4 }, (_, i) => Math.cos(i) / 4);
  const b = new OnnxBuilder();
  const x = b.input('x', ['N', 16]);
  const hidden = b.square(b.gemm(x, { weight: w1, weightDims: [16, 8] }));
  b.output(b.gemm(hidden, { weight: w2, weightDims: [8, 4] }));
  const plain = (input: readonly number[]) => {
    const h = Array.from({ length: 8 }, (_, j) => input.reduce((s, v, i) => s + v * w1[i * 8 + j], 0) ** 2);
    return Array.from({ length: 4 }, (_, k) => h.reduce((s, v, j) => s + v * w2[j * 4 + k], 0));
  };
  return { onnx: b.toBytes(), plain };
}

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Bundles `crash-child.ts` and what it imports into `<dir>/child.mjs` (see the module comment). */
async function bundleChild(dir: string): Promise<string> {
  const outfile = join(dir, 'child.mjs');
  await build({
    entryPoints: [join(SRC, 'serve', 'crash-child.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['home-source'],
    outfile,
    logLevel: 'error',
    // CommonJS dependencies (Fastify's) call require(): give the ES module bundle one.
    banner: {
      js: "import { createRequire as __home_require } from 'node:module'; const require = __home_require(import.meta.url);",
    },
    plugins: [
      {
        name: 'pin-import-meta-url',
        setup(b) {
          b.onLoad({ filter: /\.ts$/ }, async (args) => {
            if (!args.path.startsWith(SRC)) return undefined;
            const text = await readFile(args.path, 'utf8');
            return {
              contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
              loader: 'ts',
            };
          });
        },
      },
    ],
  });
  return outfile;
}

/** A running server process and the base URL it listens on. */
interface Child {
  readonly process: ChildProcess;
  readonly url: string;
  readonly exited: Promise<void>;
}

/** Starts the bundled server on `dataDir` and waits for its port. */
function startChild(bundle: string, dataDir: string): Promise<Child> {
  const child = spawn(process.execPath, [bundle, dataDir], {
    env: { ...process.env, HOME_ADMIN_TOKEN: ADMIN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      const match = /port (\d+)/.exec(stdout);
      if (match) resolve({ process: child, url: `http://127.0.0.1:${match[1]}`, exited });
    });
    void exited.then(() => reject(new Error(`server exited before listening: ${stderr.slice(-2000)}`)));
  });
}

/** Every file under `dir`, as paths relative to it. */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(relative(dir, full));
    }
  };
  walk(dir);
  return out.sort();
}

/** The request the client had sent when the server died: its outcome is unknown. */
type InFlight =
  | { kind: 'key-upload' }
  | { kind: 'key-delete'; id: string }
  | { kind: 'open' }
  | { kind: 'chunk' }
  | { kind: 'commit' }
  | { kind: 'upload-delete' }
  | { kind: 'tenant'; name: string }
  | { kind: 'aux-upload' }
  | { kind: 'aux-delete' }
  | { kind: 'aux-state' }
  | { kind: 'infer' };

/** What the client knows is stored: every fact here was acknowledged (2xx) or seen after a restart. */
interface Truth {
  /** Key id → SHA-256 of its bytes. */
  readonly keys: Map<string, string>;
  /** Key ids whose DELETE was acknowledged: never visible again. */
  readonly deletedKeys: Set<string>;
  /** Tenant name → token. */
  readonly tenants: Map<string, string>;
  /** Tenants created without an answer and seen after the restart: they exist, their token is lost. */
  readonly orphanTenants: Set<string>;
  /** The second model: absent, or present ready or unloaded. */
  aux: 'absent' | 'READY' | 'UNAVAILABLE';
  /** The chunked upload in progress: its id, the bytes and the offset the server acknowledged. */
  upload: { id: string; set: number; offset: number } | undefined;
  inFlight: InFlight | undefined;
}

describe('home serve: SIGKILL at random points', () => {
  const work = mkdtempSync(join(tmpdir(), 'home-serve-crash-'));
  const dataDir = join(work, 'data');
  let bundle: string;
  let child: Child | undefined;

  before(async () => {
    bundle = await bundleChild(work);
  });
  after(async () => {
    if (child) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
    rmSync(work, { recursive: true, force: true });
  });

  it(`restarts after ${KILLS} kills with every acknowledged object intact and nothing partial visible`, async (t) => {
    const tiny = tinyModel();
    const auxModel = new OnnxBuilder();
    auxModel.output(auxModel.square(auxModel.input('x', ['N', 8])));
    const auxOnnx = auxModel.toBytes();
    const onnxHashes = new Set([sha(tiny.onnx), sha(auxOnnx)]);
    const prng = Prng.fromSeed(new Uint8Array(32).fill(13));
    const int = (n: number) => prng.nextUint32() % n;

    child = await startChild(bundle, dataDir);
    const call = async (
      path: string,
      init: {
        method?: string;
        token?: string;
        json?: unknown;
        bytes?: Uint8Array;
        headers?: Record<string, string>;
      } = {},
    ) => {
      const headers: Record<string, string> = { ...init.headers };
      if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
      let body: BodyInit | undefined;
      if (init.json !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(init.json);
      } else if (init.bytes !== undefined) {
        headers['content-type'] = 'application/octet-stream';
        body = init.bytes as Uint8Array<ArrayBuffer>;
      }
      const response = await fetch(`${(child as Child).url}${path}`, {
        method: init.method ?? 'GET',
        headers,
        ...(body !== undefined ? { body } : {}),
      });
      return {
        status: response.status,
        bytes: new Uint8Array(await response.arrayBuffer()),
        headers: response.headers,
      };
    };
    const jsonOf = (reply: { bytes: Uint8Array }) => JSON.parse(new TextDecoder().decode(reply.bytes));
    const expectStatus = (reply: { status: number; bytes: Uint8Array }, status: number, what: string) =>
      assert.equal(reply.status, status, `${what}: ${new TextDecoder().decode(reply.bytes).slice(0, 300)}`);

    // Setup (before any kill): a tenant, the model, two key sets made by the client.
    const created = await call('/v2/admin/tenants', { method: 'POST', token: ADMIN, json: { name: 'acme' } });
    expectStatus(created, 201, 'tenant');
    const token = jsonOf(created).token as string;
    const upload = await call('/v2/repository/models/tiny?mode=latency&input_scale=1&insecure_log_n=11', {
      method: 'PUT',
      token,
      bytes: tiny.onnx,
    });
    expectStatus(upload, 201, 'model upload');
    const he = jsonOf(upload).he as HeModelDescriptor;
    const cryptos = [1, 2].map((s) => new ModelCrypto(he, { seed: new Uint8Array(32).fill(s) }));
    const sets = cryptos.map((c) => c.evaluationKeyBytes());
    const setHashes = sets.map(sha);
    const input = Array.from({ length: 16 }, (_, i) => ((i * 7) % 11) / 11 - 0.5);
    const expected = tiny.plain(input);
    const ciphertexts = cryptos.map((c) => c.encrypt(input, 1));

    const truth: Truth = {
      keys: new Map(),
      deletedKeys: new Set(),
      tenants: new Map([['acme', token]]),
      orphanTenants: new Set(),
      aux: 'absent',
      upload: undefined,
      inFlight: undefined,
    };
    let inferences = 0;

    /** One inference with a stored key set; checks the decrypted answer against the plain model. */
    const infer = async (keyId: string) => {
      const set = setHashes.indexOf(truth.keys.get(keyId) as string);
      const { bytes, headerLength } = encodeMessage(
        { parameters: { key_id: keyId } },
        'inputs',
        new Map([['input', ciphertexts[set]]]),
      );
      const reply = await call('/v2/models/tiny/infer', {
        method: 'POST',
        token,
        bytes,
        headers: { [HEADER_LENGTH]: String(headerLength) },
      });
      expectStatus(reply, 200, 'inference');
      const { tensors } = decodeMessage(
        reply.bytes,
        reply.headers.get(HEADER_LENGTH) ?? undefined,
        'outputs',
      );
      const logits = cryptos[set].decrypt(tensors.get('output') ?? [], 1);
      for (let k = 0; k < expected.length; k++) {
        assert.ok(Math.abs(logits[k] - expected[k]) < 1e-2, `logit ${k}: ${logits[k]} vs ${expected[k]}`);
      }
      inferences++;
    };

    /** After a restart: what the API and the disk show against what was acknowledged. */
    const verify = async (cycle: number) => {
      const where = `after kill ${cycle} (in flight: ${JSON.stringify(truth.inFlight)})`;
      const inFlight = truth.inFlight;
      // No temporary name survives a start, and every file belongs to a complete object.
      const onDisk = files(dataDir);
      assert.deepEqual(
        onDisk.filter((f) => f.split('/').some((part) => part.startsWith(TEMP_PREFIX))),
        [],
        where,
      );
      const layout = [
        /^tenants\/[A-Za-z0-9_-]+\.json$/,
        /^models\/acme\/(tiny|aux)\/(model\.onnx|program\.hep|model\.json)$/,
        /^keys\/acme\/k_[0-9a-f]{32}\/(keys\.evk|key\.json)$/,
        /^uploads\/acme\/u_[0-9a-f]{32}\/(data|upload\.json)$/,
      ];
      for (const f of onDisk)
        assert.ok(
          layout.some((re) => re.test(f)),
          `${where}: unexpected file ${f}`,
        );
      const folders = (prefix: string) => [
        ...new Set(onDisk.filter((f) => f.startsWith(prefix)).map((f) => f.split('/').slice(0, 3).join('/'))),
      ];
      const onDiskNames = (folder: string) =>
        onDisk.filter((f) => f.startsWith(`${folder}/`)).map((f) => f.slice(folder.length + 1));
      const complete = (folder: string, names: string[]) =>
        assert.deepEqual(onDiskNames(folder), names, `${where}: ${folder}`);

      // Tenants: every acknowledged one listed, its token accepted.
      const tenants = await call('/v2/admin/tenants', { token: ADMIN });
      expectStatus(tenants, 200, where);
      const names = (jsonOf(tenants) as { name: string }[]).map((t) => t.name);
      for (const [name, t] of truth.tenants) {
        assert.ok(names.includes(name), `${where}: tenant ${name} lost`);
        expectStatus(await call('/v2/keys', { token: t }), 200, `${where}: token of ${name}`);
      }
      const extraTenants = names.filter((n) => !truth.tenants.has(n) && !truth.orphanTenants.has(n));
      assert.ok(
        extraTenants.length === 0 ||
          (inFlight?.kind === 'tenant' && extraTenants.length === 1 && extraTenants[0] === inFlight.name),
        `${where}: unexpected tenants ${extraTenants}`,
      );
      for (const name of extraTenants) truth.orphanTenants.add(name);
      assert.equal(names.length, truth.tenants.size + truth.orphanTenants.size, `${where}: tenants lost`);
      for (const name of names) JSON.parse(readFileSync(join(dataDir, 'tenants', `${name}.json`), 'utf8'));

      // Models: the index, the metadata and the stored files of each.
      const index = await call('/v2/repository/index', { method: 'POST', token, json: {} });
      expectStatus(index, 200, where);
      const models = new Map(
        (jsonOf(index) as { name: string; state: string }[]).map((m) => [m.name, m.state]),
      );
      assert.equal(models.get('tiny'), 'READY', where);
      const aux = models.get('aux') as 'READY' | 'UNAVAILABLE' | undefined;
      if (
        inFlight?.kind !== 'aux-upload' &&
        inFlight?.kind !== 'aux-delete' &&
        inFlight?.kind !== 'aux-state'
      ) {
        assert.equal(aux ?? 'absent', truth.aux, `${where}: model aux`);
      }
      truth.aux = aux ?? 'absent';
      for (const folder of folders('models/')) {
        complete(folder, ['model.json', 'model.onnx', 'program.hep']);
        const name = folder.split('/')[2];
        assert.ok(models.has(name), `${where}: ${folder} on disk, not listed`);
        const record = JSON.parse(readFileSync(join(dataDir, folder, 'model.json'), 'utf8'));
        const onnx = readFileSync(join(dataDir, folder, 'model.onnx'));
        assert.equal(sha(onnx), record.onnx_sha256, `${where}: ${folder}/model.onnx`);
        assert.ok(onnxHashes.has(record.onnx_sha256), `${where}: ${folder} holds another ONNX file`);
        expectStatus(await call(`/v2/models/${name}`, { token }), 200, `${where}: metadata of ${name}`);
      }
      assert.equal(folders('models/').length, models.size, where);

      // Keys: each acknowledged set listed, active and byte-identical; an unacknowledged one (its upload or
      // commit was cut) is complete; an acknowledged delete stays deleted.
      const list = await call('/v2/keys', { token });
      expectStatus(list, 200, where);
      const listed = jsonOf(list) as { key_id: string; status: string; bytes: number }[];
      const listedIds = new Set(listed.map((k) => k.key_id));
      for (const [id, hash] of truth.keys) {
        if (inFlight?.kind === 'key-delete' && inFlight.id === id && !listedIds.has(id)) continue;
        assert.ok(listedIds.has(id), `${where}: acknowledged key ${id} lost`);
        assert.equal(
          sha(readFileSync(join(dataDir, 'keys', 'acme', id, 'keys.evk'))),
          hash,
          `${where}: key ${id}`,
        );
      }
      for (const id of truth.deletedKeys) {
        assert.ok(!listedIds.has(id), `${where}: deleted key ${id} is back`);
        expectStatus(await call(`/v2/keys/${id}`, { token }), 404, where);
      }
      const fresh = listed.filter((k) => !truth.keys.has(k.key_id));
      assert.ok(
        fresh.length === 0 ||
          (fresh.length === 1 && (inFlight?.kind === 'key-upload' || inFlight?.kind === 'commit')),
        `${where}: unexpected keys ${fresh.map((k) => k.key_id)}`,
      );
      for (const k of listed) {
        assert.equal(k.status, 'active', where);
        const hash = sha(readFileSync(join(dataDir, 'keys', 'acme', k.key_id, 'keys.evk')));
        assert.ok(setHashes.includes(hash), `${where}: key ${k.key_id} is not a whole key set`);
        assert.equal(k.bytes, sets[setHashes.indexOf(hash)].length, where);
        truth.keys.set(k.key_id, hash);
      }
      for (const id of truth.keys.keys()) if (!listedIds.has(id)) truth.keys.delete(id);
      const keyFolders = folders('keys/');
      for (const folder of keyFolders) complete(folder, ['key.json', 'keys.evk']);
      assert.deepEqual(keyFolders.map((f) => f.split('/')[2]).sort(), [...listedIds].sort(), where);

      // Chunked uploads: the one in progress resumes at an offset at least the acknowledged one, over the bytes
      // sent; one opened without an answer is empty (the client, having no id, abandons it: deleted here).
      for (const folder of folders('uploads/')) {
        const id = folder.split('/')[2];
        const status = await call(`/v2/keys/uploads/${id}`, { token });
        expectStatus(status, 200, `${where}: upload ${id}`);
        const { offset, size, committed_as } = jsonOf(status) as {
          offset: number;
          size: number;
          committed_as?: string;
        };
        if (committed_as !== undefined) {
          // Committed (its bytes gone, unless the crash came between marking it and removing them): committing
          // again answers the same key set, never a second one.
          const cut = inFlight?.kind === 'commit' && truth.upload?.id === id;
          complete(
            folder,
            cut && onDiskNames(folder).includes('data') ? ['data', 'upload.json'] : ['upload.json'],
          );
          assert.equal(committed_as, `k_${id.slice(2)}`, `${where}: upload ${id} committed as`);
          if (truth.upload?.id === id || listedIds.has(committed_as)) {
            const again = await call(`/v2/keys/uploads/${id}/commit`, { method: 'POST', token });
            expectStatus(again, 200, `${where}: commit of ${id} again`);
            assert.equal(jsonOf(again).key_id, committed_as, `${where}: commit of ${id} again`);
          }
          if (truth.upload?.id === id) truth.upload = undefined;
          continue;
        }
        complete(folder, ['data', 'upload.json']);
        const data = readFileSync(join(dataDir, folder, 'data'));
        assert.ok(data.length >= offset, `${where}: upload ${id} has ${data.length} of ${offset} bytes`);
        if (truth.upload?.id === id) {
          assert.ok(offset >= truth.upload.offset && offset <= size, `${where}: upload offset ${offset}`);
          assert.ok(
            Buffer.from(sets[truth.upload.set].subarray(0, offset)).equals(data.subarray(0, offset)),
            `${where}: upload ${id} bytes`,
          );
          truth.upload.offset = offset;
        } else {
          assert.ok(inFlight?.kind === 'open' && offset === 0, `${where}: unexpected upload ${id}`);
          expectStatus(await call(`/v2/keys/uploads/${id}`, { method: 'DELETE', token }), 204, where);
        }
      }
      if (truth.upload && !folders('uploads/').some((f) => f.endsWith(truth.upload?.id ?? '-'))) {
        // Gone: only a commit (which publishes, then removes the upload) or a delete may have removed it.
        assert.ok(inFlight?.kind === 'commit' || inFlight?.kind === 'upload-delete', `${where}: upload lost`);
        truth.upload = undefined;
      }
      truth.inFlight = undefined;
      // And the restarted server serves (a key set is uploaded first when none is stored).
      if (cycle % 10 === 0) {
        if (truth.keys.size === 0) await keyUpload();
        await infer([...truth.keys.keys()][0]);
      }
    };

    const keyUpload = async () => {
      const set = int(2);
      truth.inFlight = { kind: 'key-upload' };
      const reply = await call('/v2/keys?model=tiny', { method: 'POST', token, bytes: sets[set] });
      expectStatus(reply, 201, 'key upload');
      truth.keys.set(jsonOf(reply).key_id, setHashes[set]);
    };

    /** One step of the client's work, chosen by the seeded generator. */
    const step = async (cycle: number) => {
      const r = int(100);
      const ids = [...truth.keys.keys()];
      if (r < 25) {
        await keyUpload();
      } else if (r < 35 && ids.length > 0) {
        const id = ids[int(ids.length)];
        truth.inFlight = { kind: 'key-delete', id };
        expectStatus(await call(`/v2/keys/${id}`, { method: 'DELETE', token }), 204, 'key delete');
        truth.keys.delete(id);
        truth.deletedKeys.add(id);
      } else if (r < 65) {
        if (truth.upload === undefined) {
          const set = int(2);
          truth.inFlight = { kind: 'open' };
          const reply = await call('/v2/keys/uploads', {
            method: 'POST',
            token,
            json: { model: 'tiny', size: sets[set].length, sha256: setHashes[set] },
          });
          expectStatus(reply, 201, 'upload open');
          truth.upload = { id: jsonOf(reply).upload_id, set, offset: 0 };
        } else if (truth.upload.offset < sets[truth.upload.set].length) {
          const { id, set, offset } = truth.upload;
          // Small chunks: many per upload, so that kills land inside chunk writes too (each is flushed).
          const size = [65_536, 131_072, 200_001][int(3)];
          truth.inFlight = { kind: 'chunk' };
          const reply = await call(`/v2/keys/uploads/${id}?offset=${offset}`, {
            method: 'PUT',
            token,
            bytes: sets[set].subarray(offset, offset + size),
          });
          expectStatus(reply, 200, 'chunk');
          truth.upload.offset = jsonOf(reply).offset;
        } else if (int(8) === 0) {
          truth.inFlight = { kind: 'upload-delete' };
          expectStatus(
            await call(`/v2/keys/uploads/${truth.upload.id}`, { method: 'DELETE', token }),
            204,
            'abandon',
          );
          truth.upload = undefined;
        } else {
          truth.inFlight = { kind: 'commit' };
          const reply = await call(`/v2/keys/uploads/${truth.upload.id}/commit`, { method: 'POST', token });
          expectStatus(reply, 201, 'commit');
          truth.keys.set(jsonOf(reply).key_id, setHashes[truth.upload.set]);
          truth.upload = undefined;
        }
      } else if (r < 72) {
        const name = `t${cycle}-${int(1000)}`;
        truth.inFlight = { kind: 'tenant', name };
        const reply = await call('/v2/admin/tenants', { method: 'POST', token: ADMIN, json: { name } });
        expectStatus(reply, 201, 'tenant');
        truth.tenants.set(name, jsonOf(reply).token);
      } else if (r < 85) {
        if (truth.aux === 'absent') {
          truth.inFlight = { kind: 'aux-upload' };
          const reply = await call('/v2/repository/models/aux?mode=batch&input_scale=1&insecure_log_n=11', {
            method: 'PUT',
            token,
            bytes: auxOnnx,
          });
          expectStatus(reply, 201, 'aux upload');
          truth.aux = 'READY';
        } else if (int(3) === 0) {
          truth.inFlight = { kind: 'aux-delete' };
          expectStatus(
            await call('/v2/repository/models/aux', { method: 'DELETE', token }),
            204,
            'aux delete',
          );
          truth.aux = 'absent';
        } else {
          const action = truth.aux === 'READY' ? 'unload' : 'load';
          truth.inFlight = { kind: 'aux-state' };
          expectStatus(
            await call(`/v2/repository/models/aux/${action}`, { method: 'POST', token }),
            200,
            action,
          );
          truth.aux = action === 'load' ? 'READY' : 'UNAVAILABLE';
        }
      } else if (ids.length > 0) {
        truth.inFlight = { kind: 'infer' };
        await infer(ids[int(ids.length)]);
      } else {
        await keyUpload();
      }
      truth.inFlight = undefined;
    };

    const phases = new Map<string, number>();
    for (let cycle = 1; cycle <= KILLS; cycle++) {
      // Steps run until the kill, which lands after a seeded delay: most steps take 10–150 ms (an inference on a restarted server about 500: it sets up the model first), so kills fall
      // before, inside and after their writes.
      let killed = false;
      const delay = 5 + int(200);
      const running = (async () => {
        while (!killed) await step(cycle);
      })().catch((error: unknown) => {
        if (!killed) throw error;
      });
      await new Promise((resolve) => setTimeout(resolve, delay));
      killed = true;
      const current = child as Child;
      current.process.kill('SIGKILL');
      await current.exited;
      await running;
      phases.set(truth.inFlight?.kind ?? 'idle', (phases.get(truth.inFlight?.kind ?? 'idle') ?? 0) + 1);
      child = await startChild(bundle, dataDir);
      await verify(cycle);
    }
    // Kills landed inside the writes of key uploads and chunks (the commonest steps) and in other steps too; the
    // exact spread depends on timing, so only the common cases are required.
    t.diagnostic(
      `kills by step in flight: ${JSON.stringify(Object.fromEntries(phases))}; ${inferences} inferences`,
    );
    assert.ok(
      (phases.get('key-upload') ?? 0) > 0 && (phases.get('chunk') ?? 0) > 0,
      JSON.stringify([...phases]),
    );
    assert.ok(phases.size >= 5, JSON.stringify([...phases]));
    assert.ok(inferences >= KILLS / 10, `${inferences} inferences`);
    assert.ok(existsSync(join(dataDir, 'models', 'acme', 'tiny', 'program.hep')));
  });
});
