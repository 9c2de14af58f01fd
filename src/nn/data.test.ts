import assert from 'node:assert/strict';
import { npyBytes as npy } from '../../tests/support/npy.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { FormatError, InvalidArgumentError } from '../util/errors.ts';
import { loadIdxImages, loadIdxLabels, loadNpy, loadPngFolder, maybeGunzip, npyToImages } from './data.ts';
import { findDataFile } from '../platform/bundled-files.ts';
import { encodePng } from './png.ts';

const imagesGz = readFileSync(findDataFile('mnist/t10k-images-idx3-ubyte.gz'));
const labelsGz = readFileSync(findDataFile('mnist/t10k-labels-idx1-ubyte.gz'));

function idx(rank: 1 | 3, dims: number[], body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * rank + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x800 | rank, false);
  for (let i = 0; i < dims.length; i++) view.setUint32(4 + 4 * i, dims[i], false);
  out.set(body, 4 + 4 * rank);
  return out;
}

/** Must throw FormatError or succeed; anything else fails the property. */
function formatErrorOrSuccess(parse: () => unknown): void {
  try {
    parse();
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
  }
}

const mutations = (length: number) =>
  fc.record({
    edits: fc.array(
      fc.record({ at: fc.nat({ max: Math.max(0, length - 1) }), value: fc.nat({ max: 255 }) }),
      { maxLength: 6 },
    ),
    cut: fc.option(fc.nat({ max: length }), { nil: undefined }),
    headBias: fc.boolean(),
  });

function mutate(
  base: Uint8Array,
  m: { edits: { at: number; value: number }[]; cut: number | undefined; headBias: boolean },
): Uint8Array {
  const bytes = Uint8Array.from(base.subarray(0, m.cut ?? base.length));
  for (const { at, value } of m.edits) {
    const i = m.headBias ? at % Math.max(1, Math.min(64, bytes.length)) : at;
    if (i < bytes.length) bytes[i] = value;
  }
  return bytes;
}

describe('idx files', () => {
  it('loads the MNIST test set (gzip): 10,000 images, documented labels and class counts', () => {
    const images = loadIdxImages(imagesGz);
    assert.equal(images.count, 10000);
    assert.deepEqual(images.shape, [1, 28, 28]);
    assert.equal(images.data.length, 7840000);
    assert.ok(images.data.every((v) => v >= 0 && v <= 1));
    assert.equal(Math.max(...images.data.subarray(0, 784)), 1, 'default scale 1/255 maps 255 to 1');
    const labels = loadIdxLabels(labelsGz);
    assert.deepEqual([...labels.subarray(0, 8)], [7, 2, 1, 0, 4, 1, 4, 9]);
    const counts = new Array<number>(10).fill(0);
    for (const l of labels) counts[l]++;
    assert.deepEqual(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  });

  it('loads plain (uncompressed) files and applies the scale', () => {
    const plain = idx(3, [2, 2, 3], Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 256 - 1));
    const images = loadIdxImages(plain, { scale: 0.5 });
    assert.deepEqual([...images.data], [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 127.5]);
    assert.deepEqual(images.shape, [1, 2, 3]);
  });

  it('rejects a wrong magic, a size mismatch and a truncated gzip stream', () => {
    assert.throws(
      () => loadIdxImages(idx(1, [3], Uint8Array.of(1, 2, 3))),
      (e: unknown) => e instanceof FormatError && /magic/.test(e.message),
    );
    assert.throws(
      () => loadIdxLabels(idx(1, [4], Uint8Array.of(1, 2, 3))),
      (e: unknown) => e instanceof FormatError && /4 bytes.*holds 3/.test(e.message),
    );
    assert.throws(
      () => loadIdxLabels(labelsGz.subarray(0, labelsGz.length - 10)),
      (e: unknown) => e instanceof FormatError && /gzip/.test(e.message),
    );
    assert.throws(() => maybeGunzip(Uint8Array.of(0x1f, 0x8b, 0, 0)), FormatError);
  });

  it('fuzz: mutated or truncated idx files (plain and gzip) throw FormatError or parse', () => {
    const plain = idx(
      3,
      [3, 4, 4],
      Uint8Array.from({ length: 48 }, (_, i) => i),
    );
    const gz = gzipSync(plain);
    const labels = idx(1, [5], Uint8Array.of(1, 2, 3, 4, 5));
    for (const base of [plain, gz, labels]) {
      fc.assert(
        fc.property(mutations(base.length), (m) => {
          const bytes = mutate(base, m);
          formatErrorOrSuccess(() => loadIdxImages(bytes));
          formatErrorOrSuccess(() => loadIdxLabels(bytes));
        }),
        { seed: 11, numRuns: 500 },
      );
    }
  });
});

describe('.npy files', () => {
  it('loads float32, float64 (both byte orders) and uint8 arrays, versions 1 and 2', () => {
    const f32 = new Uint8Array(Float32Array.of(0.5, -1, 2, 3).buffer);
    assert.deepEqual([...loadNpy(npy('<f4', [2, 2], f32), { scale: 1 }).data], [0.5, -1, 2, 3]);
    const f64 = new Uint8Array(Float64Array.of(1.25, 2.5).buffer);
    const a = loadNpy(npy('<f8', [2], f64, 2), { scale: 2 });
    assert.deepEqual([...a.data], [2.5, 5]);
    assert.equal(a.dtype, 'float64');
    const be = new Uint8Array(8);
    new DataView(be.buffer).setFloat64(0, -7.5, false);
    assert.deepEqual([...loadNpy(npy('>f8', [1], be), { scale: 1 }).data], [-7.5]);
    const u8 = loadNpy(npy('|u1', [2, 1, 2, 2], Uint8Array.of(0, 255, 51, 102, 1, 2, 3, 4)));
    assert.deepEqual(u8.shape, [2, 1, 2, 2]);
    assert.ok(Math.abs(u8.data[1] - 1) < 1e-12 && Math.abs(u8.data[2] - 0.2) < 1e-12);
    const batch = npyToImages(u8, [1, 2, 2]);
    assert.equal(batch.count, 2);
    assert.throws(() => npyToImages(u8, [1, 3, 3]), InvalidArgumentError);
  });

  it('rejects Fortran order, unknown dtypes, a bad magic and a short body', () => {
    const body = new Uint8Array(4);
    assert.throws(
      () => loadNpy(npy('<f4', [1], body, 1, true)),
      (e: unknown) => e instanceof FormatError && /Fortran/.test(e.message),
    );
    assert.throws(
      () => loadNpy(npy('<i8', [1], new Uint8Array(8))),
      (e: unknown) => e instanceof FormatError && /dtype/.test(e.message),
    );
    assert.throws(
      () => loadNpy(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)),
      (e: unknown) => e instanceof FormatError && /magic/.test(e.message),
    );
    assert.throws(
      () => loadNpy(npy('<f4', [2], body)),
      (e: unknown) => e instanceof FormatError && /8 data bytes.*holds 4/.test(e.message),
    );
  });

  it('fuzz: mutated or truncated .npy files throw FormatError or parse', () => {
    const base = npy('<f4', [2, 3], new Uint8Array(Float32Array.of(1, 2, 3, 4, 5, 6).buffer));
    const base2 = npy('|u1', [4], Uint8Array.of(1, 2, 3, 4), 2);
    for (const b of [base, base2]) {
      fc.assert(
        fc.property(mutations(b.length), (m) => formatErrorOrSuccess(() => loadNpy(mutate(b, m)))),
        { seed: 12, numRuns: 800 },
      );
    }
  });
});

describe('PNG folders', () => {
  it('loads gray, RGB and RGBA files in name order, converting channels on request', () => {
    const dir = mkdtempSync(join(tmpdir(), 'home-png-'));
    try {
      const gray = Uint8Array.from({ length: 12 }, (_, i) => i * 20);
      writeFileSync(join(dir, 'b.png'), encodePng({ width: 4, height: 3, channels: 1, pixels: gray }));
      const rgba = new Uint8Array(48);
      for (let p = 0; p < 12; p++) rgba.set([p * 20, p * 20, p * 20, 255], 4 * p);
      writeFileSync(join(dir, 'a.png'), encodePng({ width: 4, height: 3, channels: 4, pixels: rgba }));
      writeFileSync(join(dir, 'notes.txt'), 'ignored');
      const { batch, files } = loadPngFolder(dir, { channels: 1, scale: 1 });
      assert.deepEqual(files, ['a.png', 'b.png']);
      assert.deepEqual(batch.shape, [1, 3, 4]);
      for (let i = 0; i < 12; i++) {
        assert.ok(Math.abs(batch.data[i] - i * 20) < 1e-9, 'luma of gray RGB is the gray value');
        assert.equal(batch.data[12 + i], i * 20);
      }
      const rgb = loadPngFolder(dir, { channels: 3 });
      assert.deepEqual(rgb.batch.shape, [3, 3, 4]);
      assert.throws(() => loadPngFolder(dir), InvalidArgumentError, 'mixed color types need channels');
      writeFileSync(join(dir, 'c.png'), Uint8Array.of(1, 2, 3));
      assert.throws(
        () => loadPngFolder(dir, { channels: 1 }),
        (e: unknown) => e instanceof FormatError && /c\.png: PNG: bad signature/.test(e.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
