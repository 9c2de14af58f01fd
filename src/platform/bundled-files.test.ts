import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../util/errors.ts';
import { findDataFile, findModelFile } from './bundled-files.ts';

describe('fixtures', () => {
  it('finds the shared models and MNIST files', () => {
    for (const p of [
      findModelFile('cryptonets-mnist.onnx'),
      findModelFile('lola-small-mnist.onnx'),
      findDataFile('mnist/t10k-images-idx3-ubyte.gz'),
      findDataFile('mnist/t10k-labels-idx1-ubyte.gz'),
    ]) {
      assert.ok(existsSync(p), p);
    }
  });

  it('names both places it looked when a file is missing, and refuses paths that leave the folder', () => {
    assert.throws(
      () => findModelFile('no-such-model.onnx'),
      (e: unknown) => e instanceof InvalidArgumentError && /models.*shared/.test(e.message),
    );
    assert.throws(() => findDataFile('../models/cryptonets-mnist.onnx'), InvalidArgumentError);
  });
});
