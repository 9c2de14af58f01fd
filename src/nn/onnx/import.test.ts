import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { OnnxBuilder } from '../../../tests/support/onnx-builder.ts';
import { FormatError, HomeError, InvalidArgumentError } from '../../util/errors.ts';
import { UnsupportedModelError } from '../errors.ts';
import { findModelFile } from '../../platform/bundled-files.ts';
import { shapeSize } from './graph.ts';
import { importOnnx } from './import.ts';

const cryptonets = readFileSync(findModelFile('cryptonets-mnist.onnx'));
const lola = readFileSync(findModelFile('lola-small-mnist.onnx'));

describe('importOnnx', () => {
  it('lowers CryptoNets to conv → square → reshape → dense → square → dense', () => {
    const m = importOnnx(cryptonets);
    assert.deepEqual(
      m.layers.map((l) => l.kind),
      ['conv', 'square', 'reshape', 'dense', 'square', 'dense'],
    );
    assert.deepEqual(m.inputShape, [1, 28, 28]);
    assert.deepEqual(m.outputShape, [10]);
    assert.deepEqual(
      m.layers.map((l) => l.shape),
      [[5, 13, 13], [5, 13, 13], [845], [100], [100], [10]],
    );
    const conv = m.layers[0];
    assert.equal(conv.kind, 'conv');
    if (conv.kind === 'conv') assert.deepEqual(conv.pads, [0, 0, 1, 1]);
    assert.equal(m.droppedSoftmax, false);
  });

  it('lowers LoLa-Small (Gemm with transB) to conv → square → reshape → dense', () => {
    const m = importOnnx(lola);
    assert.deepEqual(
      m.layers.map((l) => l.kind),
      ['conv', 'square', 'reshape', 'dense'],
    );
    const dense = m.layers[3];
    assert.ok(dense.kind === 'dense' && dense.inFeatures === 845 && dense.outFeatures === 10);
  });

  it('names the node, the op type and the supported list for an unknown operator', () => {
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 4]);
    b.output(b.node('Erf', [x], {}, { name: 'my_erf' })[0]);
    assert.throws(
      () => importOnnx(b.toBytes()),
      (e: unknown) =>
        e instanceof UnsupportedModelError &&
        e instanceof InvalidArgumentError &&
        e.node === 'my_erf' &&
        e.opType === 'Erf' &&
        /'my_erf' \(Erf\).*supported operators: .*Conv.*Gemm/.test(e.message),
    );
  });

  it('rejects dynamic image dimensions unless inputShape is given', () => {
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 3, 'H', 'W']);
    b.output(b.relu(x));
    assert.throws(
      () => importOnnx(b.toBytes()),
      (e: unknown) => e instanceof UnsupportedModelError && /dynamic/.test(e.message),
    );
    assert.deepEqual(importOnnx(b.toBytes(), { inputShape: [3, 8, 8] }).outputShape, [3, 8, 8]);
  });

  it('lowers a fixed batch per image, rejects reshapes across it and custom-domain operators', () => {
    const b = new OnnxBuilder();
    b.output(b.reshape(b.relu(b.input('x', [8, 2, 2])), [8, 4]), [8, 4]);
    const m = importOnnx(b.toBytes());
    assert.equal(m.fixedBatch, 8);
    assert.deepEqual(m.outputShape, [4]);
    const merged = new OnnxBuilder();
    merged.output(merged.reshape(merged.relu(merged.input('x', [8, 4])), [4, 8]));
    assert.throws(
      () => importOnnx(merged.toBytes()),
      (e: unknown) => e instanceof UnsupportedModelError && /reshape/i.test(e.message),
    );
    const c = new OnnxBuilder();
    const x = c.input('x', ['N', 4]);
    c.output(c.node('Gelu', [x], {}, { domain: 'com.microsoft', name: 'g' })[0]);
    assert.throws(
      () => importOnnx(c.toBytes()),
      (e: unknown) => e instanceof UnsupportedModelError && /com\.microsoft/.test(e.message),
    );
  });

  it('survives random byte mutations and truncations: only FormatError or UnsupportedModelError', () => {
    const mutation = fc.record({
      edits: fc.array(
        fc.record({ at: fc.nat({ max: cryptonets.length - 1 }), value: fc.nat({ max: 255 }) }),
        {
          minLength: 1,
          maxLength: 8,
        },
      ),
      cut: fc.option(fc.nat({ max: cryptonets.length }), { nil: undefined }),
      // Mutations near the start hit the header and graph structure; the tail is mostly float weights.
      headBias: fc.boolean(),
    });
    const outcomes = { ok: 0, format: 0, unsupported: 0 };
    fc.assert(
      fc.property(mutation, ({ edits, cut, headBias }) => {
        const bytes = Uint8Array.from(cryptonets.subarray(0, cut ?? cryptonets.length));
        for (const { at, value } of edits) {
          const i = headBias ? at % Math.min(400, bytes.length || 1) : at;
          if (i < bytes.length) bytes[i] = value;
        }
        try {
          const model = importOnnx(bytes);
          assert.ok(model.layers.length > 0);
          outcomes.ok++;
        } catch (e) {
          if (e instanceof UnsupportedModelError) outcomes.unsupported++;
          else if (e instanceof FormatError) outcomes.format++;
          else throw e;
        }
      }),
      { seed: 20240611, numRuns: 1500 },
    );
    assert.ok(outcomes.format > 0 && outcomes.ok > 0, JSON.stringify(outcomes));
  });

  it('every error raised for mutated bytes is a HomeError with a message', () => {
    for (let cut = 0; cut < 600; cut += 7) {
      try {
        importOnnx(cryptonets.subarray(0, cut));
      } catch (e) {
        assert.ok(e instanceof HomeError && e.message.length > 10, String(e));
      }
    }
    assert.equal(shapeSize(importOnnx(cryptonets).inputShape), 784);
  });
});
