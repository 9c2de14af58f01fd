import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { HEADER_BYTES } from '../store/object-format.ts';
import { type IoReply, type IoRequest, type IoTierConfig, serveIoRequests } from './io-worker.ts';

/** Bytes of shared memory (a read lands in it in place, as in a worker thread) with a pattern from `seed`. */
function shared(length: number, seed = 0): Uint8Array {
  const bytes = new Uint8Array(new SharedArrayBuffer(length));
  for (let k = 0; k < length; k++) bytes[k] = (k * 31 + seed * 7) & 0xff;
  return bytes;
}

/**
 * The I/O worker's request loop, served in this thread over a MessageChannel (the worker thread runs the same
 * `serveIoRequests` over its parent port): requests go out in batches, replies come back by sequence number.
 */
describe('the I/O worker, driven directly', () => {
  let dir = '';
  let port: MessagePort;
  let serverPort: MessagePort;
  let seq = 0;
  const waiting = new Map<number, (reply: IoReply) => void>();
  const tier: IoTierConfig = { key: 9001, name: 'disk', chunkBytes: 4096, maxInFlight: 3 };
  const pathOf = (name: string) => join(dir, `${name}.hobj`);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'home-io-worker-'));
    const channel = new MessageChannel();
    port = channel.port1;
    serverPort = channel.port2;
    serveIoRequests(serverPort);
    port.on('message', (replies: IoReply[]) => {
      for (const reply of replies) {
        waiting.get(reply.seq)?.(reply);
        waiting.delete(reply.seq);
      }
    });
  });
  after(async () => {
    port.close();
    serverPort.close();
    await rm(dir, { recursive: true, force: true });
  });

  type Body = IoRequest extends infer R ? (R extends IoRequest ? Omit<R, 'seq'> : never) : never;
  /** Posts `bodies` in one batch; resolves with their replies in request order. */
  const send = (...bodies: Body[]): Promise<IoReply[]> => {
    const batch = bodies.map((body) => ({ ...body, seq: seq++ }) as IoRequest);
    const replies = batch.map((r) => new Promise<IoReply>((resolve) => waiting.set(r.seq, resolve)));
    port.postMessage(batch);
    return Promise.all(replies);
  };
  const write = (id: string, data: Uint8Array, finalPath: string | null = pathOf(id)): Body => ({
    op: 'write',
    tier,
    id,
    tempPath: join(dir, `${id}.${process.pid}.${seq}.tmp`),
    finalPath,
    dir,
    data,
    durable: false,
    settleAtMs: null,
  });
  const read = (id: string, into: Uint8Array, path = pathOf(id)): Body => ({
    op: 'read',
    tier,
    id,
    path,
    into,
    settleAtMs: null,
  });
  const temps = () => readdirSync(dir).filter((f) => f.endsWith('.tmp'));
  const failure = (reply: IoReply) => {
    assert.equal(reply.ok, false, 'expected the request to fail');
    return (reply as Extract<IoReply, { ok: false }>).error;
  };

  it('writes, reads back and deletes an object; the file is header plus payload, no temp file left', async () => {
    const data = shared(10_000, 1);
    const [written] = await send(write('a', data));
    assert.equal(written.ok, true);
    assert.equal(readFileSync(pathOf('a')).length, HEADER_BYTES + data.length);
    assert.deepEqual(temps(), []);
    const back = shared(data.length, 99);
    const [done] = await send(read('a', back));
    assert.equal(done.ok, true);
    assert.deepEqual(back, data);
    const [deleted] = await send({ op: 'delete', path: pathOf('a'), what: 'deleting "a"' });
    assert.equal(deleted.ok, true);
    assert.equal(existsSync(pathOf('a')), false);
    const [again] = await send({ op: 'delete', path: pathOf('a'), what: 'deleting "a" again' });
    assert.equal(again.ok, true, 'deleting what is gone is not an error');
  });

  it('a write left uncommitted is renamed into place by a commit, then reads back', async () => {
    const data = shared(9000, 2);
    const body = write('b', data, null);
    const tempPath = (body as Extract<IoRequest, { op: 'write' }>).tempPath;
    const [written] = await send(body);
    assert.equal(written.ok, true);
    assert.ok(existsSync(tempPath) && !existsSync(pathOf('b')), 'complete in its temp file, not committed');
    const [committed] = await send({
      op: 'commit',
      tier,
      id: 'b',
      tempPath,
      finalPath: pathOf('b'),
      dir,
      durable: false,
      settleAtMs: null,
    });
    assert.equal(committed.ok, true);
    assert.equal(existsSync(tempPath), false);
    const back = shared(data.length, 50);
    assert.equal((await send(read('b', back)))[0].ok, true);
    assert.deepEqual(back, data);
  });

  it('many requests in flight at once, several chunks each, complete and read back exactly', async () => {
    const objects = Array.from({ length: 12 }, (_, i) => ({
      id: `m${i}`,
      data: shared(4096 * 3 + 100 * i, i),
    }));
    const writes = await send(...objects.map((o) => write(o.id, o.data)));
    assert.ok(writes.every((r) => r.ok));
    const backs = objects.map((o) => shared(o.data.length, 77));
    const reads = await send(...objects.map((o, i) => read(o.id, backs[i])));
    assert.ok(reads.every((r) => r.ok));
    for (const [i, o] of objects.entries()) assert.deepEqual(backs[i], o.data, o.id);
    // The worker took every request of the batch before the first one finished: all were in flight at once.
    const starts = reads.map((r) => (r.ok ? r.startMs : Infinity));
    const ends = reads.map((r) => (r.ok ? r.endMs : 0));
    assert.ok(Math.max(...starts) <= Math.min(...ends), 'the reads overlapped');
    assert.deepEqual(temps(), []);
  });

  it('typed errors name the object: a missing file, a short file, a payload checksum mismatch', async () => {
    const missing = failure((await send(read('nothing', shared(100))))[0]);
    assert.equal(missing.name, 'ResourceError');
    assert.match(missing.message, /object "nothing" has no committed file/);

    const data = shared(20_000, 3);
    await send(write('short', data), write('flipped', data));
    truncateSync(pathOf('short'), HEADER_BYTES + 5000);
    const short = failure((await send(read('short', shared(data.length))))[0]);
    assert.equal(short.name, 'FormatError');
    assert.match(short.message, /object "short"/);

    const bytes = readFileSync(pathOf('flipped'));
    bytes[HEADER_BYTES + 12_345] ^= 0x10;
    writeFileSync(pathOf('flipped'), bytes);
    const flipped = failure((await send(read('flipped', shared(data.length))))[0]);
    assert.equal(flipped.name, 'FormatError');
    assert.match(flipped.message, /object "flipped"/);
    assert.match(flipped.message, /checksum mismatch/);

    const wrongLength = failure((await send(read('flipped', shared(data.length + 1))))[0]);
    assert.equal(wrongLength.name, 'FormatError', 'a read of another length is refused, not truncated');
  });

  it('nothing is left half-written: a failed write or commit removes its temp file and keeps the old copy', async () => {
    const old = shared(5000, 4);
    await send(write('kept', old));
    // The rename target's folder does not exist: the complete temp file must not stay behind.
    const failed = failure(
      (await send(write('kept', shared(5000, 5), join(dir, 'no-such-dir', 'kept.hobj'))))[0],
    );
    assert.equal(failed.name, 'ResourceError');
    assert.deepEqual(temps(), []);
    const back = shared(old.length);
    assert.equal((await send(read('kept', back)))[0].ok, true);
    assert.deepEqual(back, old, 'the committed copy is unchanged');
    // A commit of a temp file that was never written fails without creating anything.
    const commit = failure(
      (
        await send({
          op: 'commit',
          tier,
          id: 'ghost',
          tempPath: join(dir, 'ghost.tmp'),
          finalPath: pathOf('ghost'),
          dir,
          durable: false,
          settleAtMs: null,
        })
      )[0],
    );
    assert.equal(commit.name, 'ResourceError');
    assert.equal(existsSync(pathOf('ghost')), false);
    assert.deepEqual(temps(), []);
  });
});
