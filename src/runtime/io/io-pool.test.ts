import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { xxh32 } from '../../ring/hash.ts';
import { collectGarbage } from '../../platform/collect-garbage.ts';
import { FormatError, ResourceError } from '../../util/errors.ts';
import { FileTier } from '../store/file-tier.ts';
import { IoPool } from './io-pool.ts';
import { HEADER_BYTES } from '../store/object-format.ts';

let root = '';
const pools: IoPool[] = [];
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'home-io-pool-'));
});
after(async () => {
  await Promise.all(pools.map((p) => p.terminate()));
  await rm(root, { recursive: true, force: true });
});

function pool(workers: number): IoPool {
  const p = new IoPool({ workers });
  pools.push(p);
  return p;
}

async function freshDir(name: string): Promise<string> {
  const dir = join(root, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir);
  return dir;
}

function pattern(length: number, salt: number, shared: boolean): Uint8Array {
  const out = shared ? new Uint8Array(new SharedArrayBuffer(length)) : new Uint8Array(length);
  let x = salt | 1;
  for (let i = 0; i < length; i++) {
    x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + i;
    out[i] = x >>> 24;
  }
  return out;
}

test('threads start on the first request, not before', async () => {
  const io = pool(2);
  const tier = await FileTier.open({ name: 'lazy', dir: await freshDir('lazy'), io });
  assert.equal(io.threadsStarted, 0, 'opening a tier starts no thread');
  await tier.write('x', pattern(1000, 1, false));
  assert.ok(io.threadsStarted >= 1);
  assert.equal(io.inFlight, 0);
  await tier.close();
});

test('worker I/O round trip: byte-identical across chunks, workers, and shared or private buffers', async () => {
  const io = pool(2);
  const dir = await freshDir('roundtrip');
  const tier = await FileTier.open({ name: 'disk', dir, chunkBytes: 4096, maxInFlight: 3, io });
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 30_000 }), fc.boolean()), {
          minLength: 1,
          maxLength: 12,
        }),
        async (specs) => {
          const datas = specs.map(([length, shared], i) => pattern(length, length + i, shared));
          // All in flight at once: completions arrive in any order, on either worker.
          await Promise.all(datas.map((d, i) => tier.write(`o${i}`, d)));
          const backs = specs.map(([length, shared]) =>
            shared ? new Uint8Array(new SharedArrayBuffer(length)) : new Uint8Array(length),
          );
          await Promise.all(backs.map((b, i) => tier.read(`o${i}`, b)));
          for (const [i, b] of backs.entries()) assert.deepEqual(b, datas[i]);
          await Promise.all(datas.map((_, i) => tier.delete(`o${i}`)));
        },
      ),
      { seed: 11, numRuns: 25 },
    );
    // A view into a large shared memory travels as a reference (the memory is sent to each thread once).
    const slab = new SharedArrayBuffer(8 * 2 ** 20);
    const views = [0, 3, 7].map((mib, i) => new Uint8Array(slab, mib * 2 ** 20, 300_000 + i));
    views.forEach((v, i) => {
      v.set(pattern(v.length, 100 + i, false));
    });
    const expected = views.map((v) => Uint8Array.from(v));
    await Promise.all(views.map((v, i) => tier.write(`slab${i}`, v)));
    for (const v of views) v.fill(0);
    await Promise.all(views.map((v, i) => tier.read(`slab${i}`, v)));
    for (const [i, v] of views.entries()) assert.deepEqual(Uint8Array.from(v), expected[i]);
    assert.ok(tier.stats.checksumNs > 0, 'the workers hashed the payloads');
  } finally {
    await tier.close();
  }
});

test('corruption is detected in the worker and reported as a FormatError naming the object', async () => {
  const io = pool(1);
  const dir = await freshDir('corrupt');
  const tier = await FileTier.open({ name: 'disk', dir, io });
  try {
    const data = pattern(70_000, 5, true);
    await tier.write('L2/w[1][0][4]', data);
    const path = tier.pathOf('L2/w[1][0][4]');
    const bytes = await readFile(path);
    // The header records the XXH32 of the payload.
    assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(32, true), xxh32(data));
    bytes[HEADER_BYTES + 65_432] ^= 0x04;
    await writeFile(path, bytes);
    await assert.rejects(
      tier.read('L2/w[1][0][4]', new Uint8Array(new SharedArrayBuffer(70_000))),
      (e: unknown) => {
        assert.ok(e instanceof FormatError, `got ${String(e)}`);
        assert.match(e.message, /object "L2\/w\[1\]\[0\]\[4\]"/);
        assert.match(e.message, /payload checksum mismatch \(stored XXH32/);
        return true;
      },
    );
  } finally {
    await tier.close();
  }
});

test('a worker crash becomes a ResourceError for its requests, and the next request gets a fresh thread', async () => {
  const io = pool(1);
  const dir = await freshDir('crash');
  const tier = await FileTier.open({ name: 'disk', dir, io });
  try {
    const data = pattern(200_000, 9, true);
    await tier.write('a', data);
    const started = io.threadsStarted;
    // A read posted just before the crash either completes or fails with a typed error; it never hangs.
    const back = new Uint8Array(new SharedArrayBuffer(data.length));
    const read = tier.read('a', back).then(
      () => 'done',
      (e: unknown) => e,
    );
    const crash = await io.crashWorker(0);
    assert.ok(crash instanceof ResourceError, `got ${String(crash)}`);
    assert.match(
      (crash as Error).message,
      /I\/O worker 0 (failed|exited).*while "crash \(test hook\)" was in flight/,
    );
    const outcome = await read;
    if (outcome === 'done') assert.deepEqual(back, data);
    else assert.ok(outcome instanceof ResourceError, `got ${String(outcome)}`);
    assert.equal(io.inFlight, 0, 'nothing is left waiting');
    // The pool recovers: a new thread serves the next request.
    const again = new Uint8Array(new SharedArrayBuffer(data.length));
    await tier.read('a', again);
    assert.deepEqual(again, data);
    assert.equal(io.threadsStarted, started + 1);
  } finally {
    await tier.close();
  }
});

test('a shared memory the main thread drops is freed in the worker too (resident memory does not pile up)', async () => {
  // Each round shares a fresh 64 MiB memory with the worker (a run's DRAM pool or staging slab), then drops it.
  // Without a collection in the worker after an unshare, its old generation kept every one resident: +640 MB
  // after these 10 rounds (a full collection there came only after ~17).
  const io = pool(1);
  const tier = await FileTier.open({ name: 'unshare', dir: await freshDir('unshare'), io });
  const MiB = 2 ** 20;
  const round = async (r: number) => {
    const memory = new SharedArrayBuffer(64 * MiB);
    new Uint8Array(memory).fill(r + 1);
    await tier.write('o', new Uint8Array(memory, 0, 8 * MiB));
  };
  const settle = async () => {
    collectGarbage();
    // The finalizer posts the unshare; a request after it makes sure the worker has taken it.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await tier.write('tick', new Uint8Array(new SharedArrayBuffer(4096)));
  };
  await round(0);
  await settle();
  const before = process.memoryUsage().rss;
  for (let r = 1; r <= 10; r++) {
    await round(r);
    await settle();
  }
  const grown = process.memoryUsage().rss - before;
  await tier.close();
  assert.ok(
    grown < 320 * MiB,
    `resident memory grew by ${(grown / MiB).toFixed(0)} MiB over 10 dropped 64 MiB memories`,
  );
});

test('a terminated pool refuses requests with a typed error', async () => {
  const io = pool(1);
  const tier = await FileTier.open({ name: 'disk', dir: await freshDir('terminated'), io });
  await tier.write('a', pattern(100, 1, false));
  await io.terminate();
  assert.equal(io.threadsAlive, 0);
  await assert.rejects(tier.read('a', new Uint8Array(100)), (e: unknown) => e instanceof ResourceError);
});

test('a process that leaves its tier open still exits on its own (idle threads are unref’d)', {
  timeout: 120_000,
}, async () => {
  const dir = await freshDir('exit');
  const module = fileURLToPath(new URL('../store/file-tier.ts', import.meta.url));
  const script = `
    const { FileTier } = await import(${JSON.stringify(module)});
    const tier = await FileTier.open({ name: 'disk', dir: ${JSON.stringify(dir)} });
    await tier.write('x', new Uint8Array(100000).fill(3));
    const back = new Uint8Array(100000);
    await tier.read('x', back);
    process.stdout.write(back[99999] === 3 ? 'OK' : 'BAD');`;
  const child = spawn(
    process.execPath,
    ['--conditions=home-source', '--import', 'tsx', '--input-type=module', '-e', script],
    {
      cwd: fileURLToPath(new URL('../../..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 0);
  assert.equal(output, 'OK');
});
