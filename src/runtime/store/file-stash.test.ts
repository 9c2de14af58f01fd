import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defaultContext } from '../../ring/context.ts';
import { FormatError, MissingKeyError } from '../../util/errors.ts';
import { FileStash } from './file-stash.ts';

describe('FileStash', () => {
  const context = defaultContext();

  function kernelBytes(length: number, seed: number): { view: Uint8Array; free: () => void } {
    const words = Math.ceil(length / 4);
    const pointer = context.allocator.alloc(words);
    const view = new Uint8Array(context.memory.buffer, pointer, length);
    for (let i = 0; i < length; i++) view[i] = (i * 31 + seed) & 0xff;
    return { view, free: () => context.allocator.free(pointer, words) };
  }

  it('gives back what it stored, split differently, from kernel memory and from plain arrays', () => {
    const stash = FileStash.create(context);
    try {
      const a = kernelBytes(4096, 1);
      const b = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
      stash.put('x', [a.view, b]);
      assert.equal(stash.byteLength, 5096);
      const out = kernelBytes(5096, 0);
      out.view.fill(0);
      stash.get('x', [out.view.subarray(0, 100), out.view.subarray(100)]);
      assert.deepEqual(out.view.subarray(0, 4096), a.view);
      assert.deepEqual(out.view.subarray(4096), b);
      stash.put('x', [b]);
      assert.equal(stash.byteLength, 1000);
      a.free();
      out.free();
    } finally {
      stash.close();
    }
    assert.equal(existsSync(stash.dir), false);
  });

  it('refuses changed, truncated and unknown entries, naming them', () => {
    const stash = FileStash.create(context);
    try {
      stash.put('key:7', [Uint8Array.from({ length: 256 }, (_, i) => i)]);
      const [file] = readdirSync(stash.dir);
      const path = join(stash.dir, file);
      const bytes = readFileSync(path);
      bytes[100] ^= 1;
      writeFileSync(path, bytes);
      assert.throws(
        () => stash.get('key:7', [new Uint8Array(256)]),
        (e: unknown) => e instanceof FormatError && /key:7.*checksum/.test(e.message),
      );
      writeFileSync(path, bytes.subarray(0, 50));
      assert.throws(
        () => stash.get('key:7', [new Uint8Array(256)]),
        (e: unknown) => e instanceof FormatError && /truncated/.test(e.message),
      );
      assert.throws(() => stash.get('key:8', [new Uint8Array(256)]), MissingKeyError);
      assert.throws(() => stash.get('key:7', [new Uint8Array(255)]), /256 bytes stored, 255 asked/);
    } finally {
      stash.close();
    }
  });
});
