/**
 * Graphs written the way PyTorch, tf2onnx, keras2onnx and CNTK export MNIST/CIFAR-10 classifiers, checked against
 * onnxruntime on seeded inputs. Each pattern was seen in a real third-party export (tests/fixtures/nn/README.md
 * lists the files; they are not in this repository, see src/nn/onnx/third-party.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import { OnnxBuilder } from '../../../tests/support/onnx-builder.ts';
import { runOnnxRuntime } from '../../../tests/support/ort-reference.ts';
import { rowRelativeError, seededValues } from '../../../tests/support/test-helpers.ts';
import { UnsupportedModelError } from '../errors.ts';
import type { LayerModel } from '../layers.ts';
import { argmaxRows, simulate } from '../simulate.ts';
import { shapeSize } from './graph.ts';
import { importOnnx } from './import.ts';

const { onnx } = onnxProto;

let seed = 500;
const v = (n: number, scale = 0.3) => seededValues(n, seed++, -scale, scale);

async function agreesWithOrt(
  bytes: Uint8Array,
  count = 4,
  final: 'Softmax' | 'LogSoftmax' = 'Softmax',
): Promise<LayerModel> {
  const model = importOnnx(bytes);
  const input = Float32Array.from(seededValues(count * shapeSize(model.onnxInputShape), seed++, 0, 1));
  const ours = simulate(model, input, count);
  const ort = await runOnnxRuntime(bytes, input, [count, ...model.onnxInputShape]);
  const classes = shapeSize(model.outputShape);
  if (model.droppedSoftmax) {
    // The importer drops the final (Log)Softmax; apply it here to compare with onnxruntime's output.
    for (let r = 0; r < count; r++) {
      const row = ours.subarray(r * classes, (r + 1) * classes);
      const top = Math.max(...row);
      const logSum = Math.log(row.reduce((s, t) => s + Math.exp(t - top), 0)) + top;
      for (let c = 0; c < classes; c++)
        row[c] = final === 'Softmax' ? Math.exp(row[c] - logSum) : row[c] - logSum;
    }
    assert.deepEqual(argmaxRows(ours, count, classes), argmaxRows(ort.data, count, classes));
  }
  const err = rowRelativeError(ours, ort.data, classes);
  assert.ok(err < 1e-5, `relative error ${err}`);
  return model;
}

/**
 * PyTorch without dynamic_axes (as in real exports seen in the wild): the batch is fixed at the example batch's 32,
 * Flatten, Gemm, a `view(32, -1)` folded to a constant Reshape target, LogSoftmax, opset 14.
 */
function pytorchFixedBatch(): Uint8Array {
  const b = new OnnxBuilder({ opset: 14, producerName: 'pytorch' });
  const x = b.input('input', [32, 1, 28, 28]);
  let y = b.flatten(x);
  y = b.relu(b.gemm(y, { weight: v(16 * 784, 0.1), weightDims: [16, 784], bias: v(16), transB: true }));
  y = b.reshape(y, [32, -1]);
  y = b.gemm(y, { weight: v(10 * 16), weightDims: [10, 16], bias: v(10), transB: true });
  b.node('LogSoftmax', [y], { axis: 1 }, { outputs: ['output'] });
  b.output('output', [32, 10]);
  return b.toBytes();
}

/**
 * PyTorch ≥ 2.9 (dynamo exporter, opset 20, IR 10): the batch size read by `Shape(start=0, end=1)` of the input,
 * concatenated with −1 and used by a `Reshape(allowzero=1)` to flatten, Linear as Gemm(transB).
 */
function pytorchDynamo(): Uint8Array {
  const b = new OnnxBuilder({ opset: 20, producerName: 'pytorch', irVersion: 10 });
  const x = b.input('input', ['s77', 1, 28, 28]);
  const batch = b.node('Shape', [x], { start: 0, end: 1 })[0];
  let y = b.relu(b.conv(x, { weight: v(4 * 9), weightDims: [4, 1, 3, 3], bias: v(4), pads: [0, 0, 0, 0] }));
  const minusOne = b.initializer('val_3', { dims: [1], values: [-1], dtype: 'int64' });
  const target = b.node('Concat', [batch, minusOne], { axis: 0 })[0];
  y = b.node('Reshape', [y, target], { allowzero: 1 })[0];
  const features = 4 * 26 * 26;
  y = b.gemm(y, { weight: v(10 * features, 0.05), weightDims: [10, features], bias: v(10), transB: true });
  b.output(y, ['s77', 10]);
  return b.toBytes();
}

/**
 * keras2onnx 1.5 (opset 10): NHWC input transposed to NCHW, Conv with pads and bias, MaxPool `SAME_UPPER`, NHWC
 * transpose before the flattening Reshape, MatMul+Add, Softmax, an Identity to the output name, and the nodes
 * written in reverse order.
 */
function keras2onnxStyle(): Uint8Array {
  const b = new OnnxBuilder({ opset: 10, producerName: 'keras2onnx', irVersion: 5 });
  const x = b.input('conv2d_input', ['N', 28, 28, 1]);
  let y = b.node('Transpose', [x], { perm: [0, 3, 1, 2] })[0];
  y = b.relu(b.conv(y, { weight: v(2 * 9), weightDims: [2, 1, 3, 3], bias: v(2), pads: [1, 1, 1, 1] }));
  y = b.node('MaxPool', [y], { kernel_shape: [2, 2], strides: [2, 2], auto_pad: 'SAME_UPPER' })[0];
  y = b.relu(b.conv(y, { weight: v(2 * 2 * 9), weightDims: [2, 2, 3, 3], bias: v(2), pads: [1, 1, 1, 1] }));
  y = b.node('MaxPool', [y], { kernel_shape: [2, 2], strides: [2, 2], auto_pad: 'SAME_UPPER' })[0];
  y = b.node('Transpose', [y], { perm: [0, 2, 3, 1] })[0];
  y = b.reshape(y, [-1, 98]);
  y = b.matmulAdd(y, { weight: v(98 * 4), weightDims: [98, 4], bias: v(4) });
  y = b.matmulAdd(y, { weight: v(4 * 10, 1), weightDims: [4, 10], bias: v(10) });
  const p = b.node('Softmax', [y], { axis: -1 })[0];
  b.node('Identity', [p], {}, { outputs: ['dense/Softmax:0'] });
  b.output('dense/Softmax:0', ['N', 10]);
  const model = onnx.ModelProto.decode(b.toBytes());
  model.graph?.node?.reverse();
  return onnx.ModelProto.encode(model).finish();
}

/** PyTorch: Conv+BN+ReLU blocks, MaxPool, `x.view(x.size(0), -1)` as Shape→Gather→Unsqueeze→Concat→Reshape, Linear as Gemm(transB). */
function pytorchStyle(opset: number, channels: number, size: number): Uint8Array {
  const b = new OnnxBuilder({ opset, producerName: 'pytorch' });
  const x = b.input('input', ['batch_size', channels, size, size]);
  const bn = (y: string, c: number) =>
    b.batchNorm(y, {
      scale: v(c, 1).map((t) => 1 + t),
      bias: v(c),
      mean: v(c),
      variance: v(c).map((t) => 1 + Math.abs(t)),
    });
  let y = b.relu(
    bn(
      b.conv(x, {
        weight: v(6 * channels * 9),
        weightDims: [6, channels, 3, 3],
        bias: v(6),
        pads: [1, 1, 1, 1],
      }),
      6,
    ),
  );
  y = b.pool('MaxPool', y, { kernel: [2, 2], strides: [2, 2] });
  y = b.relu(bn(b.conv(y, { weight: v(8 * 6 * 9), weightDims: [8, 6, 3, 3], bias: v(8) }), 8));
  y = b.pool('AveragePool', y, { kernel: [2, 2], strides: [2, 2] });
  const spatial = Math.floor((size / 2 - 2) / 2);
  const features = 8 * spatial * spatial;
  const shape = b.node('Shape', [y])[0];
  const zero = b.initializer('zero', { dims: [], values: [0], dtype: 'int64' });
  const n = b.node('Gather', [shape, zero], { axis: 0 })[0];
  const nUnsq =
    opset >= 13
      ? b.node('Unsqueeze', [n, b.initializer('ax0', { dims: [1], values: [0], dtype: 'int64' })])[0]
      : b.node('Unsqueeze', [n], { axes: [0] })[0];
  const minusOne = b.initializer('minus_one', { dims: [1], values: [-1], dtype: 'int64' });
  const target = b.node('Concat', [nUnsq, minusOne], { axis: 0 })[0];
  y = b.node('Reshape', [y, target])[0];
  y = b.relu(b.gemm(y, { weight: v(16 * features), weightDims: [16, features], bias: v(16), transB: true }));
  y = b.node('Dropout', [y])[0];
  const logits = b.gemm(y, { weight: v(10 * 16), weightDims: [10, 16], bias: v(10), transB: true });
  b.output(logits, ['batch_size', 10]);
  return b.toBytes();
}

/** tf2onnx (Keras): NHWC input transposed to NCHW, bias as a separate Add, NCHW→NHWC Transpose before the flattening Reshape, MatMul+Add, Softmax. */
function tf2onnxStyle(channels: number, size: number): Uint8Array {
  const b = new OnnxBuilder({ opset: 13, producerName: 'tf2onnx' });
  const x = b.input('input_1', ['unk__6', size, size, channels]);
  let y = b.node('Transpose', [x], { perm: [0, 3, 1, 2] })[0];
  y = b.conv(y, { weight: v(8 * channels * 9), weightDims: [8, channels, 3, 3], autoPad: 'SAME_UPPER' });
  y = b.relu(b.withConstant('Add', y, [1, 8, 1, 1], v(8)));
  y = b.pool('MaxPool', y, { kernel: [2, 2], strides: [2, 2] });
  y = b.node('Transpose', [y], { perm: [0, 2, 3, 1] })[0];
  const features = 8 * (size / 2) * (size / 2);
  y = b.reshape(y, [-1, features]);
  y = b.relu(b.matmulAdd(y, { weight: v(features * 12), weightDims: [features, 12], bias: v(12) }));
  y = b.matmulAdd(y, { weight: v(12 * 10, 1), weightDims: [12, 10], bias: v(10) });
  b.node('Softmax', [y], { axis: -1 }, { outputs: ['dense_1'] });
  b.output('dense_1', ['unk__6', 10]);
  return b.toBytes();
}

/** CNTK (as in the ONNX zoo MNIST): fixed batch 1, SAME_UPPER convs with Add bias [C,1,1], weights reshaped by a constant Reshape, opset 8. */
function cntkStyle(): Uint8Array {
  const b = new OnnxBuilder({ opset: 8, producerName: 'CNTK', irVersion: 3 });
  const x = b.input('Input3', [1, 1, 28, 28]);
  let y = b.withConstant('Div', x, [], [255]);
  y = b.conv(y, { weight: v(4 * 25), weightDims: [4, 1, 5, 5], autoPad: 'SAME_UPPER' });
  y = b.relu(b.withConstant('Add', y, [4, 1, 1], v(4)));
  y = b.pool('MaxPool', y, { kernel: [2, 2], strides: [2, 2] });
  y = b.conv(y, { weight: v(8 * 4 * 25), weightDims: [8, 4, 5, 5], autoPad: 'SAME_UPPER' });
  y = b.relu(b.withConstant('Add', y, [8, 1, 1], v(8)));
  y = b.pool('MaxPool', y, { kernel: [3, 3], strides: [3, 3] });
  y = b.reshape(y, [1, 128]);
  const w = b.initializer('Parameter193', { dims: [8, 4, 4, 10], values: v(1280) });
  const wShape = b.initializer('Parameter193_reshape1_shape', {
    dims: [2],
    values: [128, 10],
    dtype: 'int64',
  });
  const w2 = b.node('Reshape', [w, wShape])[0];
  y = b.node('MatMul', [y, w2])[0];
  y = b.withConstant('Add', y, [1, 10], v(10));
  b.node('Identity', [y], {}, { outputs: ['Plus214_Output_0'] });
  b.output('Plus214_Output_0', [1, 10]);
  return b.toBytes();
}

describe('exporter idioms import and match onnxruntime', () => {
  for (const opset of [11, 13, 17]) {
    it(`PyTorch style, MNIST 1×28×28 and CIFAR 3×32×32, opset ${opset}`, async () => {
      const mnist = await agreesWithOrt(pytorchStyle(opset, 1, 28));
      assert.deepEqual(
        mnist.layers.map((l) => l.kind),
        [
          'conv',
          'activation',
          'maxPool',
          'conv',
          'activation',
          'avgPool',
          'reshape',
          'dense',
          'activation',
          'dense',
        ],
      );
      await agreesWithOrt(pytorchStyle(opset, 3, 32));
    });
  }

  it('tf2onnx style with NHWC input: the input transpose becomes an input permutation, the inner one folds into the Dense', async () => {
    const cifar = await agreesWithOrt(tf2onnxStyle(3, 32));
    assert.deepEqual(cifar.onnxInputShape, [32, 32, 3]);
    assert.deepEqual(cifar.inputShape, [3, 32, 32]);
    assert.ok(cifar.inputPermutation);
    assert.equal(cifar.droppedSoftmax, true);
    assert.deepEqual(
      cifar.layers.map((l) => l.kind),
      ['conv', 'activation', 'maxPool', 'dense', 'activation', 'dense'],
    );
    const mnist = await agreesWithOrt(tf2onnxStyle(1, 28));
    assert.equal(mnist.inputPermutation, undefined, 'moving a unit channel axis is no layout change');
  });

  it('CNTK style (fixed batch 1, opset 8)', async () => {
    const model = await agreesWithOrt(cntkStyle(), 1);
    assert.equal(model.source.producerName, 'CNTK');
    assert.equal(model.layers[0].kind, 'affine');
  });

  it('PyTorch with a fixed batch of 32: lowered per image, the spelled-out batch in a Reshape target is the batch axis', async () => {
    const model = await agreesWithOrt(pytorchFixedBatch(), 32, 'LogSoftmax');
    assert.equal(model.fixedBatch, 32);
    assert.deepEqual(model.onnxInputShape, [1, 28, 28]);
    assert.deepEqual(
      model.layers.map((l) => l.kind),
      ['reshape', 'dense', 'activation', 'dense'],
    );
  });

  it('PyTorch dynamo exporter (opset 20): Shape(start, end) → Concat → Reshape(allowzero) flattening', async () => {
    const model = await agreesWithOrt(pytorchDynamo());
    assert.equal(model.source.opset, 20);
    assert.deepEqual(
      model.layers.map((l) => l.kind),
      ['conv', 'activation', 'reshape', 'dense'],
    );
  });

  it('keras2onnx 1.5 with nodes in reverse order: sorted, NHWC input of one channel, SAME_UPPER MaxPool', async () => {
    const model = await agreesWithOrt(keras2onnxStyle());
    assert.equal(model.source.producerName, 'keras2onnx');
    assert.equal(model.droppedSoftmax, true);
    assert.deepEqual(
      model.layers.map((l) => l.kind),
      ['reshape', 'conv', 'activation', 'maxPool', 'conv', 'activation', 'maxPool', 'dense', 'dense'],
    );
  });

  it('SqueezeNet fire module (tf2onnx): Concat of activations is rejected, naming the node', () => {
    const b = new OnnxBuilder({ opset: 9, producerName: 'tf2onnx' });
    const x = b.input('input_1', ['unk__84', 8, 8, 3]);
    const nchw = b.node('Transpose', [x], { perm: [0, 3, 1, 2] })[0];
    const squeeze = b.relu(b.conv(nchw, { weight: v(4 * 3), weightDims: [4, 3, 1, 1], bias: v(4) }));
    const e1 = b.relu(b.conv(squeeze, { weight: v(4 * 4), weightDims: [4, 4, 1, 1], bias: v(4) }));
    const e3 = b.relu(
      b.conv(squeeze, { weight: v(4 * 4 * 9), weightDims: [4, 4, 3, 3], bias: v(4), pads: [1, 1, 1, 1] }),
    );
    const cat = b.node('Concat', [e1, e3], { axis: 1 }, { name: 'squeezenet/fire2/concat/concat' })[0];
    b.output(b.globalAveragePool(cat));
    assert.throws(
      () => importOnnx(b.toBytes()),
      (e: unknown) =>
        e instanceof UnsupportedModelError &&
        e.node === 'squeezenet/fire2/concat/concat' &&
        /concatenation of activations/.test(e.message),
    );
  });

  it('a layout-changing Transpose that does not reach a Dense is rejected with the Transpose named', () => {
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 2, 4, 4]);
    const t = b.node('Transpose', [b.relu(x)], { perm: [0, 2, 3, 1] }, { name: 'to_nhwc' })[0];
    b.output(b.node('Softmax', [t])[0]);
    assert.throws(
      () => importOnnx(b.toBytes()),
      (e: unknown) => e instanceof UnsupportedModelError && /to_nhwc/.test(e.message),
    );
  });
});
