import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { KernelContext } from '../../ring/context.ts';
import { FormatError, ResourceError } from '../../util/errors.ts';
import { crc32c } from './checksum.ts';
import { FileTier, HEADER_BYTES } from './file-tier.ts';
import { encodeObjectHeader } from './object-format.ts';

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'home-file-tier-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function freshDir(name: string): Promise<string> {
  const dir = join(root, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir);
  return dir;
}

function pattern(length: number, salt: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = salt | 1;
  for (let i = 0; i < length; i++) {
    x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + i;
    out[i] = x >>> 24;
  }
  return out;
}

test('objects read back byte-identical, across chunk boundaries and with several in flight', async () => {
  const dir = await freshDir('roundtrip');
  const tier = await FileTier.open({ name: 'disk', dir, chunkBytes: 4096, maxInFlight: 3 });
  try {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40_000 }), fc.nat(1000), async (length, salt) => {
        const id = `obj-${length}-${salt}`;
        const data = pattern(length, salt);
        await tier.write(id, data);
        const back = new Uint8Array(length);
        await tier.read(id, back);
        assert.deepEqual(back, data);
        assert.equal((await stat(tier.pathOf(id))).size, HEADER_BYTES + length);
      }),
      { seed: 7, numRuns: 40 },
    );
    // Several objects concurrently.
    const datas = Array.from({ length: 8 }, (_, i) => pattern(10_000 + i * 3001, i));
    await Promise.all(datas.map((d, i) => tier.write(`c${i}`, d)));
    const backs = await Promise.all(
      datas.map(async (d, i) => {
        const b = new Uint8Array(d.length);
        await tier.read(`c${i}`, b);
        return b;
      }),
    );
    for (const [i, b] of backs.entries()) assert.deepEqual(b, datas[i]);
    assert.equal(tier.stats.writes, tier.stats.reads);
  } finally {
    await tier.close();
  }
  assert.deepEqual(await readdir(dir), [], 'close() removes the files the tier wrote');
});

test('scatter reads and gather writes: pieces of shared memory (or not) back to back across chunks; a wrong total refused', async () => {
  const dir = await freshDir('scatter');
  const tier = await FileTier.open({ name: 'disk', dir, chunkBytes: 4096, maxInFlight: 3 });
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        fc.nat(1000),
        async (lengths, shared, salt) => {
          const total = lengths.reduce((a, b) => a + b, 0);
          const id = `scatter-${lengths.join('-')}-${salt}`;
          const data = pattern(total, salt);
          await tier.write(id, data);
          // Pieces scattered through one shared memory with gaps (the arena's polynomials), or plain buffers.
          const memory = shared ? new SharedArrayBuffer(total + 64 * lengths.length) : null;
          let at = 0;
          const pieces = lengths.map((length) => {
            const piece = memory ? new Uint8Array(memory, at + 32, length) : new Uint8Array(length);
            at += length + 64;
            return piece;
          });
          await tier.read(id, pieces);
          let offset = 0;
          for (const piece of pieces) {
            assert.deepEqual(piece, data.subarray(offset, offset + piece.byteLength));
            offset += piece.byteLength;
          }
          await assert.rejects(tier.read(id, [...pieces, new Uint8Array(1)]), FormatError);
          // Written from the pieces (a gather write), it reads back as one buffer.
          await tier.write(`${id}-gathered`, pieces);
          const back = new Uint8Array(total);
          await tier.read(`${id}-gathered`, back);
          assert.deepEqual(back, data);
        },
      ),
      { seed: 11, numRuns: 30 },
    );
    // A flipped byte in the middle piece's range is caught by the payload checksum.
    const data = pattern(10_000, 3);
    await tier.write('flip', data);
    const file = await readFile(tier.pathOf('flip'));
    file[HEADER_BYTES + 5000] ^= 1;
    await writeFile(tier.pathOf('flip'), file);
    const memory = new SharedArrayBuffer(10_000);
    const pieces = [0, 3000, 7000].map(
      (start, i, all) => new Uint8Array(memory, start, (all[i + 1] ?? 10_000) - start),
    );
    await assert.rejects(tier.read('flip', pieces), /"flip"/);
  } finally {
    await tier.close();
  }
});

test('a flipped payload byte is detected by the checksum and reported with the object id', async () => {
  const dir = await freshDir('corrupt');
  const tier = await FileTier.open({ name: 'disk', dir });
  try {
    const data = pattern(50_000, 3);
    await tier.write('conv1/w[2][7]', data);
    const path = tier.pathOf('conv1/w[2][7]');
    const bytes = await readFile(path);
    bytes[HEADER_BYTES + 12_345] ^= 0x10;
    await writeFile(path, bytes);
    await assert.rejects(tier.read('conv1/w[2][7]', new Uint8Array(data.length)), (error: unknown) => {
      assert.ok(error instanceof FormatError);
      assert.match(error.message, /"conv1\/w\[2\]\[7\]"/);
      assert.match(error.message, /checksum mismatch/);
      return true;
    });
    // Header damage is caught by the header checksum.
    bytes[HEADER_BYTES + 12_345] ^= 0x10;
    bytes[30] ^= 0x01;
    await writeFile(path, bytes);
    await assert.rejects(
      tier.read('conv1/w[2][7]', new Uint8Array(data.length)),
      /"conv1\/w\[2\]\[7\]".*header checksum/,
    );
  } finally {
    await tier.close();
  }
});

test('payloads in kernel memory are hashed where they lie, to the checksums a copy gives; damage still caught', async () => {
  const dir = await freshDir('in-place');
  // 8 MiB of kernel memory: shared with the I/O thread by reference, as an arena's is.
  const context = KernelContext.create({ threads: 1, initialPages: 128 });
  const tier = await FileTier.open({ name: 'disk', dir, chunkBytes: 4096, maxInFlight: 3 });
  const regions: [number, number][] = [];
  const region = (bytes: number) => {
    const words = Math.ceil(bytes / 4);
    const pointer = context.allocator.alloc(words);
    regions.push([pointer, words]);
    return new Uint8Array(context.memory.buffer, pointer, bytes);
  };
  try {
    for (const [k, length] of [4, 4093, 10_004, 65_548].entries()) {
      const data = pattern(length, k + 1);
      const source = region(length);
      source.set(data);
      let inPlace = tier.stats.hashedInPlaceBytes;
      // Written from kernel memory (hashed in place), read into ordinary memory (staged, hashed through a copy).
      await tier.write(`k${k}`, source);
      assert.equal(tier.stats.hashedInPlaceBytes - inPlace, length, 'the write is hashed in place');
      const plain = new Uint8Array(length);
      await tier.read(`k${k}`, plain);
      assert.deepEqual(plain, data);
      assert.equal(tier.stats.hashedInPlaceBytes - inPlace, length, 'a staged read is hashed through a copy');
      // Written from ordinary memory, read into kernel memory: whole, then as three scattered pieces.
      await tier.write(`p${k}`, data);
      inPlace = tier.stats.hashedInPlaceBytes;
      const target = region(length);
      await tier.read(`p${k}`, target);
      assert.deepEqual(target, data);
      const cut = [Math.floor(length / 3), Math.floor((2 * length) / 3)];
      const pieces = [region(cut[0]), region(cut[1] - cut[0]), region(length - cut[1])];
      await tier.read(`p${k}`, pieces);
      assert.deepEqual(new Uint8Array(pieces.flatMap((p) => [...p])), data);
      assert.equal(tier.stats.hashedInPlaceBytes - inPlace, 2 * length, 'both reads are hashed in place');
    }
    // A flipped payload byte fails the in-place check too, and leaves the object's file as it was.
    const path = tier.pathOf('p2');
    const bytes = await readFile(path);
    bytes[HEADER_BYTES + 5_000] ^= 0x04;
    await writeFile(path, bytes);
    await assert.rejects(tier.read('p2', region(10_004)), (error: unknown) => {
      assert.ok(error instanceof FormatError);
      assert.match(error.message, /"p2".*checksum mismatch/);
      return true;
    });
    assert.deepEqual(await readFile(path), bytes);
  } finally {
    await tier.close();
    for (const [pointer, words] of regions) context.allocator.free(pointer, words);
    context.close();
  }
});

test('a truncated (torn) committed file, or another object’s file, is never accepted', async () => {
  const dir = await freshDir('torn');
  const tier = await FileTier.open({ name: 'disk', dir });
  try {
    await tier.write('a', pattern(9000, 1));
    await tier.write('b', pattern(9000, 2));
    await truncate(tier.pathOf('a'), HEADER_BYTES + 4000);
    await assert.rejects(
      tier.read('a', new Uint8Array(9000)),
      (e: unknown) => e instanceof FormatError && /"a".*truncated/.test(e.message),
    );
    // A file renamed into another object's place names the wrong object.
    await writeFile(tier.pathOf('a'), await readFile(tier.pathOf('b')));
    await assert.rejects(tier.read('a', new Uint8Array(9000)), /holds object "b": expected "a"/);
    // A wrong expected length is reported, not silently read.
    await assert.rejects(tier.read('b', new Uint8Array(100)), /"b".*payload is 9000 bytes: expected 100/);
  } finally {
    await tier.close();
  }
});

test('a writer killed mid-write leaves nothing a later run could take for a complete object', async () => {
  const dir = await freshDir('killed');
  const module = fileURLToPath(new URL('./file-tier.ts', import.meta.url));
  // The child writes one object and blocks in the hook between the complete temp file and the rename (a timer keeps
  // it alive there, so it is the kill that ends it, not Node exiting on an unsettled await).
  const script = `
    const { FileTier } = await import(${JSON.stringify(module)});
    const tier = await FileTier.open({ name: 'disk', dir: ${JSON.stringify(dir)}, durable: true,
      beforeCommit: async () => { process.stdout.write('READY\\n'); await new Promise(() => setInterval(() => {}, 1000)); } });
    await tier.write('victim', new Uint8Array(300000).fill(7));`;
  const child = spawn(
    process.execPath,
    ['--conditions=home-source', '--import', 'tsx', '--input-type=module', '-e', script],
    {
      cwd: fileURLToPath(new URL('../../..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('READY')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  const leftovers = await readdir(dir);
  assert.equal(leftovers.length, 1);
  assert.match(leftovers[0], /\.tmp$/, 'only an uncommitted temp file remains');
  // A later run: the temp file of the dead writer is removed and the object does not exist.
  const tier = await FileTier.open({ name: 'disk', dir });
  try {
    assert.deepEqual(await readdir(dir), []);
    assert.equal(await tier.adopt('victim', 300_000), false);
    await assert.rejects(
      tier.read('victim', new Uint8Array(300_000)),
      (e: unknown) => e instanceof ResourceError && /"victim"/.test(e.message),
    );
    // A partially written temp file of a dead process (pid 2^22+1 does not exist) is cleaned the same way.
    await writeFile(join(dir, 'deadbeefdeadbeef.4194305.0.tmp'), new Uint8Array(100));
    await FileTier.open({ name: 'disk2', dir });
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await tier.close();
  }
});

test('a process killed while its I/O worker writes leaves only complete objects or temp files', async () => {
  const dir = await freshDir('killed-worker');
  const module = fileURLToPath(new URL('./file-tier.ts', import.meta.url));
  // The child keeps 4 writes of 3 MB in flight in its worker and reports each commit; it is killed mid-stream.
  const script = `
    const { FileTier } = await import(${JSON.stringify(module)});
    const tier = await FileTier.open({ name: 'disk', dir: ${JSON.stringify(dir)}, chunkBytes: 1 << 20 });
    const make = (i) => { const b = new Uint8Array(new SharedArrayBuffer(3000000)); for (let k = 0; k < b.length; k += 4096) b[k] = i + k; return b; };
    let next = 0;
    const lane = async () => { for (let i = next++; i < 400; i = next++) { await tier.write('o' + i, make(i)); process.stdout.write('C' + i + '\\n'); } };
    await Promise.all([lane(), lane(), lane(), lane()]);`;
  const child = spawn(
    process.execPath,
    ['--conditions=home-source', '--import', 'tsx', '--input-type=module', '-e', script],
    {
      cwd: fileURLToPath(new URL('../../..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('C')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  const tier = await FileTier.open({ name: 'disk', dir });
  try {
    const names = await readdir(dir);
    assert.ok(
      names.every((n) => n.endsWith('.hobj')),
      'the temp files of the dead writer are removed at open',
    );
    assert.ok(names.length >= 1, 'at least the reported commit is there');
    // Every committed file is a whole, verified object with the bytes the child wrote.
    let found = 0;
    for (let i = 0; i < 400; i++) {
      if (!(await tier.adopt(`o${i}`, 3_000_000))) continue;
      found++;
      const back = new Uint8Array(new SharedArrayBuffer(3_000_000));
      await tier.read(`o${i}`, back);
      for (let k = 0; k < back.length; k += 4096) assert.equal(back[k], (i + k) & 0xff);
    }
    assert.equal(found, names.length, 'each committed file belongs to one written object');
  } finally {
    await tier.close();
  }
});

test('files of format 1 (CRC32C payload checksum) are still read and verified', async () => {
  const dir = await freshDir('format1');
  const tier = await FileTier.open({ name: 'disk', dir });
  try {
    const data = pattern(12_345, 4);
    const header = encodeObjectHeader('old', data.length, crc32c(0, data), 1);
    const file = new Uint8Array(HEADER_BYTES + data.length);
    file.set(header);
    file.set(data, HEADER_BYTES);
    await writeFile(tier.pathOf('old'), file);
    assert.equal(await tier.adopt('old', data.length), true);
    const back = new Uint8Array(data.length);
    await tier.read('old', back);
    assert.deepEqual(back, data);
    file[HEADER_BYTES + 5] ^= 1;
    await writeFile(tier.pathOf('old'), file);
    await assert.rejects(tier.read('old', back), /"old".*stored CRC32C/);
  } finally {
    await tier.close();
  }
});

test('committed objects survive for a later run and are adopted after a header check', async () => {
  const dir = await freshDir('adopt');
  const first = await FileTier.open({ name: 'disk', dir, durable: true });
  const data = pattern(20_000, 9);
  await first.write('rk[3]', data);
  await first.close({ keepFiles: true });
  const second = await FileTier.open({ name: 'disk', dir });
  try {
    assert.equal(await second.adopt('rk[3]', 20_000), true);
    const back = new Uint8Array(20_000);
    await second.read('rk[3]', back);
    assert.deepEqual(back, data);
    await assert.rejects(second.adopt('rk[3]', 123), /payload is 20000 bytes: expected 123/);
  } finally {
    await second.close();
  }
});

test('missing, non-directory and unwritable tier paths fail at open with a clear error', async () => {
  await assert.rejects(FileTier.open({ name: 'nvme0', dir: join(root, 'does-not-exist') }), (e: unknown) => {
    assert.ok(e instanceof ResourceError);
    assert.match(e.message, /slow tier nvme0: directory .*does-not-exist is not accessible \(ENOENT\)/);
    return true;
  });
  const file = join(root, 'plain-file');
  await writeFile(file, 'x');
  await assert.rejects(FileTier.open({ name: 'nvme0', dir: file }), /is not a directory/);
  // Root ignores permission bits, so as root use a directory no process can create files in.
  let readOnly = await freshDir('read-only');
  await chmod(readOnly, 0o500);
  if (process.getuid?.() === 0) readOnly = '/proc';
  try {
    await assert.rejects(FileTier.open({ name: 'nvme0', dir: readOnly }), (e: unknown) => {
      assert.ok(e instanceof ResourceError);
      assert.match(e.message, /is not writable/);
      return true;
    });
  } finally {
    await chmod(join(root, 'read-only'), 0o700);
  }
});

test('a tier without room for the program fails before writing anything', async () => {
  const dir = await freshDir('full');
  const tier = await FileTier.open({ name: 'small', dir, capacityBytes: 100_000 });
  try {
    await assert.rejects(
      tier.ensureRoom(200_000),
      (e: unknown) => e instanceof ResourceError && /small.*may need 200000 bytes/.test(e.message),
    );
    const free = await FileTier.freeBytes(dir);
    const huge = await FileTier.open({ name: 'fs', dir });
    await assert.rejects(huge.ensureRoom(free * 2), /file system free/);
    await tier.write('x', new Uint8Array(50_000));
    await assert.rejects(tier.write('y', new Uint8Array(50_000)), /capacity of 100000/);
    assert.deepEqual((await readdir(dir)).length, 1);
  } finally {
    await tier.close();
  }
});
