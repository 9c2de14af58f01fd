import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { reluModel } from '../../tests/support/models.ts';
import { npyBytes } from '../../tests/support/npy.ts';
import type { ImageBatch } from '../nn/data.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { CALIBRATION_IMAGES, calibrationImages } from './images.ts';

/** `count` 6×6 images, image i filled with i / 1000. */
function batchOf(count: number): ImageBatch {
  const data = new Float64Array(count * 36);
  for (let i = 0; i < count; i++) data.fill(i / 1000, i * 36, (i + 1) * 36);
  return { count, shape: [1, 6, 6], data };
}

describe('calibration images', () => {
  const dir = mkdtempSync(join(tmpdir(), 'home-calibration-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const model = reluModel();

  it("the data set's first 256, normalized like the inputs, whatever images are classified", () => {
    const data = batchOf(600);
    const images = calibrationImages(model, data, { scale: 1, inputMean: [0.5], inputStd: [2] });
    assert.equal(images.length, CALIBRATION_IMAGES * 36);
    assert.equal(images[0], (0 - 0.5) / 2);
    assert.equal(images[255 * 36], (0.255 - 0.5) / 2);
    assert.equal(data.data[0], 0, 'the data set itself is not normalized here');
    assert.equal(calibrationImages(model, batchOf(30), { scale: 1 }).length, 30 * 36, 'all of a short set');
    assert.equal(calibrationImages(model, data, { scale: 1, count: 7 }).length, 7 * 36);
  });

  it('--calibration reads another set (npy, uint8, times the scale); bad counts and files are typed errors', () => {
    const path = join(dir, 'calibration.npy');
    writeFileSync(path, npyBytes('|u1', [2, 1, 6, 6], new Uint8Array(72).fill(200)));
    const images = calibrationImages(model, batchOf(600), { path, scale: 1 / 255 });
    assert.equal(images.length, 2 * 36);
    assert.ok(images.every((v) => Math.abs(v - 200 / 255) < 1e-12));
    assert.throws(
      () => calibrationImages(model, batchOf(3), { path: join(dir, 'none.npy'), scale: 1 }),
      (e: Error) =>
        e instanceof InvalidArgumentError && /--calibration .*none\.npy: no such file/.test(e.message),
    );
    for (const count of [0, 1.5, -3]) {
      assert.throws(
        () => calibrationImages(model, batchOf(3), { scale: 1, count }),
        (e: Error) =>
          e instanceof InvalidArgumentError &&
          e.message.includes(`--calibration-count ${count}: expected a positive integer`),
      );
    }
  });
});
