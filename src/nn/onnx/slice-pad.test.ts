/**
 * Slice and Pad on activations (lowered to 1×1 convolutions), the "option A" shortcut of CIFAR ResNets, checked
 * against onnxruntime; and the two ResNet-20s of ../shared, which import and agree with onnxruntime.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { OnnxBuilder } from '../../../tests/support/onnx-builder.ts';
import { runOnnxRuntime } from '../../../tests/support/ort-reference.ts';
import { rowRelativeError, seededValues } from '../../../tests/support/test-helpers.ts';
import { loadNpy } from '../data.ts';
import { SecurityError } from '../../util/errors.ts';
import { depthLowerBound } from '../approx.ts';
import { compileModel } from '../compile/index.ts';
import { mergePointwiseConvs } from '../compile/merge-pointwise.ts';
import { UnsupportedModelError } from '../errors.ts';
import { argmaxRows, simulate } from '../simulate.ts';
import { shapeSize } from './graph.ts';
import { importOnnx } from './import.ts';
import { resolveSliceAxis } from './lower/slice-pad.ts';

let seed = 900;
const v = (n: number, scale = 0.3) => seededValues(n, seed++, -scale, scale);
// Exporters write int64 extremes for "to the end"; 2^62 is as far as the test builder encodes exactly.
const INT64_MAX = 2 ** 62;

/** An int64 constant tensor node (as PyTorch exports them). */
function int64(b: OnnxBuilder, values: readonly number[]): string {
  return b.node('Constant', [], { value: { tensor: { dims: [values.length], values, dtype: 'int64' } } })[0];
}

/**
 * A residual block with the option-A shortcut as PyTorch 1.13 exports `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p))`:
 * two Slices, then Pad whose pads come from a ConstantOfShape/Concat/Reshape/Slice/Transpose/Reshape/Cast chain.
 */
function optionABlock(torchPads: boolean): Uint8Array {
  const b = new OnnxBuilder({ opset: 13, producerName: 'pytorch' });
  const x = b.input('input', [1, 4, 8, 8]);
  const main = b.relu(
    b.conv(x, {
      weight: v(8 * 4 * 9),
      weightDims: [8, 4, 3, 3],
      bias: v(8),
      strides: [2, 2],
      pads: [1, 1, 1, 1],
    }),
  );
  const rows = b.node('Slice', [x, int64(b, [0]), int64(b, [INT64_MAX]), int64(b, [2]), int64(b, [2])])[0];
  const both = b.node('Slice', [rows, int64(b, [0]), int64(b, [INT64_MAX]), int64(b, [3]), int64(b, [2])])[0];
  let pads: string;
  if (torchPads) {
    const zeros = b.node('ConstantOfShape', [int64(b, [2])], {
      value: { tensor: { dims: [1], values: [0], dtype: 'int64' } },
    })[0];
    const all = b.node('Concat', [int64(b, [0, 0, 0, 0, 2, 2]), zeros], { axis: 0 })[0];
    const pairs = b.node('Reshape', [all, int64(b, [-1, 2])])[0];
    const reversed = b.node('Slice', [
      pairs,
      int64(b, [-1]),
      int64(b, [-INT64_MAX]),
      int64(b, [0]),
      int64(b, [-1]),
    ])[0];
    const transposed = b.node('Transpose', [reversed], { perm: [1, 0] })[0];
    const flat = b.node('Reshape', [transposed, int64(b, [-1])])[0];
    pads = b.node('Cast', [flat], { to: 7 })[0];
  } else pads = int64(b, [0, 2, 0, 0, 0, 2, 0, 0]);
  const shortcut = b.node('Pad', [both, pads], { mode: 'constant' })[0];
  let y = b.relu(b.node('Add', [main, shortcut])[0]);
  y = b.flatten(b.globalAveragePool(y));
  b.output(b.gemm(y, { weight: v(10 * 8), weightDims: [10, 8], bias: v(10), transB: true }));
  return b.toBytes();
}

async function agreesWithOrt(bytes: Uint8Array, count: number, input?: Float32Array): Promise<number> {
  const model = importOnnx(bytes);
  const x = input ?? Float32Array.from(seededValues(count * shapeSize(model.onnxInputShape), seed++, -1, 1));
  const ours = simulate(model, x, count);
  const classes = shapeSize(model.outputShape);
  let ort: Float64Array;
  if (model.fixedBatch === 1) {
    // A model fixed at batch 1: one image at a time.
    const parts: number[] = [];
    const size = shapeSize(model.onnxInputShape);
    for (let i = 0; i < count; i++) {
      parts.push(
        ...(await runOnnxRuntime(bytes, x.subarray(i * size, (i + 1) * size), [1, ...model.onnxInputShape]))
          .data,
      );
    }
    ort = Float64Array.from(parts);
  } else ort = (await runOnnxRuntime(bytes, x, [count, ...model.onnxInputShape])).data;
  assert.deepEqual(argmaxRows(ours, count, classes), argmaxRows(ort, count, classes));
  return rowRelativeError(ours, ort, classes);
}

describe('Slice and Pad on activations', () => {
  it('resolves ONNX slice bounds like onnxruntime (negative, clamped, int64 extremes, negative steps)', () => {
    assert.deepEqual(resolveSliceAxis(32, 0, INT64_MAX, 2), { start: 0, step: 2, count: 16 });
    assert.deepEqual(resolveSliceAxis(5, -1, -INT64_MAX, -1), { start: 4, step: -1, count: 5 });
    assert.deepEqual(resolveSliceAxis(10, -3, 100, 1), { start: 7, step: 1, count: 3 });
    assert.deepEqual(resolveSliceAxis(10, 8, 2, 1), { start: 8, step: 1, count: 0 });
    assert.throws(() => resolveSliceAxis(10, 0, 10, 0), /step 0/);
  });

  for (const torchPads of [false, true]) {
    it(`an option-A shortcut (strided Slices, channel Pad${torchPads ? ' from the PyTorch pads subgraph' : ''}) becomes 1×1 convolutions that agree with onnxruntime`, async () => {
      const bytes = optionABlock(torchPads);
      const model = importOnnx(bytes);
      const shortcut = model.layers.filter((l) => l.kind === 'conv' && l.kernel[0] === 1);
      assert.equal(shortcut.length, 3, 'two strided slices and one pad');
      const error = await agreesWithOrt(bytes, 4);
      assert.ok(error < 1e-6, `relative error ${error}`);
      // The compiler merges the three into one (one level), and the pooling and Flatten into the Gemm: the same
      // outputs.
      const merged = mergePointwiseConvs(model);
      assert.equal(merged.layers.filter((l) => l.kind === 'conv' && l.kernel[0] === 1).length, 1);
      assert.ok(!merged.layers.some((l) => l.kind === 'globalAvgPool' || l.kind === 'reshape'));
      assert.equal(merged.layers.length, model.layers.length - 4);
      const x = seededValues(4 * 256, 77, -1, 1);
      const before = simulate(model, x, 4);
      const after = simulate(merged, x, 4);
      for (let i = 0; i < before.length; i++) assert.ok(Math.abs(before[i] - after[i]) < 1e-12, `${i}`);
    });
  }

  it('refuses what it cannot express, naming the node and the reason', () => {
    const build = (op: (b: OnnxBuilder, x: string) => string) => {
      const b = new OnnxBuilder({ opset: 13 });
      const x = b.input('input', [1, 2, 4, 4]);
      b.output(b.flatten(b.globalAveragePool(op(b, x))));
      return b.toBytes();
    };
    const reject = (bytes: Uint8Array, pattern: RegExp) =>
      assert.throws(
        () => importOnnx(bytes),
        (e: unknown) => e instanceof UnsupportedModelError && pattern.test(e.message),
      );
    reject(
      build(
        (b, x) =>
          b.node(
            'Slice',
            [x, int64(b, [1]), int64(b, [4]), int64(b, [2]), int64(b, [2])],
            {},
            { name: 'odd' },
          )[0],
      ),
      /'odd'.*spatial axis 2: start 1/,
    );
    reject(
      build((b, x) => b.node('Slice', [x, int64(b, [1]), int64(b, [2]), int64(b, [0]), int64(b, [1])])[0]),
      /batch axis/,
    );
    reject(
      build((b, x) => b.node('Pad', [x, int64(b, [0, 0, 1, 1, 0, 0, 1, 1])], { mode: 'reflect' })[0]),
      /mode 'reflect'/,
    );
    reject(
      build((b, x) => b.node('Pad', [x, int64(b, [1, 0, 0, 0, 0, 0, 0, 0])])[0]),
      /batch axis/,
    );
  });
});

const shared = fileURLToPath(new URL('../../../../shared/', import.meta.url));

describe('CIFAR-10 ResNet-20s (../shared/models/cifar10)', {
  skip: !existsSync(`${shared}models/cifar10`) && !process.env.CI,
}, () => {
  const count = 4;
  const normalized = () => {
    const npy = loadNpy(new Uint8Array(readFileSync(`${shared}data/cifar10/test-0000-0499-images.npy`)), {
      scale: 1,
    });
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    return Float32Array.from({ length: count * 3072 }, (_, i) => {
      const c = Math.floor(i / 1024) % 3;
      return (npy.data[i] / 255 - mean[c]) / std[c];
    });
  };
  it('resnet20-ace without bootstrapping is refused at once for its depth, before any calibration', () => {
    const model = importOnnx(new Uint8Array(readFileSync(`${shared}models/cifar10/resnet20-ace.onnx`)));
    assert.equal(depthLowerBound(model), 19 * 4);
    assert.throws(
      () => compileModel(model, { mode: 'latency', bootstrapping: false }),
      (e: unknown) => e instanceof SecurityError && /depth at least 76 .*before calibration/.test(e.message),
    );
  });

  for (const name of ['resnet20-akamaster', 'resnet20-ace']) {
    it(`${name} imports and agrees with onnxruntime on ${count} test images`, async () => {
      const bytes = new Uint8Array(readFileSync(`${shared}models/cifar10/${name}.onnx`));
      const error = await agreesWithOrt(bytes, count, normalized());
      assert.ok(error < 1e-5, `relative error ${error}`);
    });
  }
});
