import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OnnxBuilder } from '../../../../tests/support/onnx-builder.ts';
import { runOnnxRuntime } from '../../../../tests/support/ort-reference.ts';
import { rowRelativeError, seededValues } from '../../../../tests/support/test-helpers.ts';
import { UnsupportedModelError } from '../../errors.ts';
import type { LayerModel } from '../../layers.ts';
import { argmaxRows, simulate } from '../../simulate.ts';
import { shapeSize } from '../graph.ts';
import { importOnnx } from '../import.ts';

/** Imports the model, runs `count` seeded inputs through the simulator and onnxruntime, and compares. */
async function compareWithOrt(bytes: Uint8Array, count = 3, seed = 1, tolerance = 1e-5): Promise<LayerModel> {
  const model = importOnnx(bytes);
  const input = Float32Array.from(seededValues(count * shapeSize(model.inputShape), seed, -2, 2));
  const simulated = simulate(model, input, count);
  const ort = await runOnnxRuntime(bytes, input, [count, ...model.inputShape]);
  assert.equal(ort.data.length, simulated.length);
  const columns = shapeSize(model.outputShape);
  const err = rowRelativeError(simulated, ort.data, columns);
  assert.ok(err < tolerance, `simulator vs onnxruntime: relative error ${err}`);
  return model;
}

let seed = 100;
const values = (n: number, min = -1, max = 1) => seededValues(n, seed++, min, max);
const positive = (n: number) => values(n, 0.5, 2);

describe('lowering vs onnxruntime', () => {
  it('folds BatchNormalization into the preceding Conv and Gemm', async () => {
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 2, 9, 9]);
    const c = b.conv(x, {
      weight: values(3 * 2 * 3 * 3),
      weightDims: [3, 2, 3, 3],
      bias: values(3),
      pads: [1, 1, 1, 1],
    });
    const bn = b.batchNorm(c, {
      scale: values(3),
      bias: values(3),
      mean: values(3),
      variance: positive(3),
      epsilon: 1e-3,
    });
    const f = b.flatten(b.relu(bn));
    const g = b.gemm(f, { weight: values(243 * 4), weightDims: [243, 4], bias: values(4) });
    const out = b.batchNorm(g, { scale: values(4), bias: values(4), mean: values(4), variance: positive(4) });
    b.output(out, ['N', 4]);
    const model = await compareWithOrt(b.toBytes());
    assert.deepEqual(
      model.layers.map((l) => l.kind),
      ['conv', 'activation', 'reshape', 'dense'],
    );
    assert.equal(model.layers[0].sources.length, 2, 'conv layer records the folded BN node');
    assert.equal(model.layers[3].sources.length, 2);
  });

  it('keeps a BatchNormalization without a foldable predecessor as a per-channel affine', async () => {
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 3, 4, 4]);
    const r = b.relu(x);
    b.output(b.batchNorm(r, { scale: values(3), bias: values(3), mean: values(3), variance: positive(3) }));
    const model = await compareWithOrt(b.toBytes());
    assert.deepEqual(
      model.layers.map((l) => l.kind),
      ['activation', 'affine'],
    );
    const affine = model.layers[1];
    assert.ok(affine.kind === 'affine' && affine.broadcast === 'channel' && affine.scale.length === 3);
  });

  for (const [label, p] of [
    ['strides 2, asymmetric pads', { strides: [2, 2], pads: [0, 1, 2, 1] }],
    ['SAME_UPPER, stride 2', { strides: [2, 2], autoPad: 'SAME_UPPER' }],
    ['SAME_LOWER, stride 2', { strides: [2, 2], autoPad: 'SAME_LOWER' }],
    ['VALID', { autoPad: 'VALID' }],
  ] as const) {
    it(`Conv with ${label}`, async () => {
      const b = new OnnxBuilder();
      const x = b.input('x', ['N', 2, 8, 7]);
      b.output(b.conv(x, { weight: values(4 * 2 * 3 * 3), weightDims: [4, 2, 3, 3], bias: values(4), ...p }));
      await compareWithOrt(b.toBytes());
    });
  }

  it('Conv with groups and depthwise Conv', async () => {
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 4, 6, 6]);
    const grouped = b.conv(x, {
      weight: values(6 * 2 * 3 * 3),
      weightDims: [6, 2, 3, 3],
      group: 2,
      pads: [1, 1, 1, 1],
    });
    b.output(
      b.conv(grouped, { weight: values(6 * 3 * 3), weightDims: [6, 1, 3, 3], bias: values(6), group: 6 }),
    );
    const model = await compareWithOrt(b.toBytes());
    assert.deepEqual(
      model.layers.map((l) => (l.kind === 'conv' ? l.group : 0)),
      [2, 6],
    );
  });

  it('Gemm with alpha, beta, transB and MatMul followed by Add fused into one Dense', async () => {
    const b = new OnnxBuilder({ opset: 11 });
    const x = b.input('x', ['N', 6]);
    const g1 = b.gemm(x, {
      weight: values(5 * 6),
      weightDims: [5, 6],
      bias: values(5),
      transB: true,
      alpha: 0.5,
      beta: 2,
    });
    const g2 = b.gemm(b.tanh(g1), { weight: values(5 * 4), weightDims: [5, 4], bias: values(4), alpha: 1.5 });
    b.output(b.matmulAdd(b.sigmoid(g2), { weight: values(4 * 3), weightDims: [4, 3], bias: values(3) }));
    const model = await compareWithOrt(b.toBytes());
    assert.deepEqual(
      model.layers.map((l) => l.kind),
      ['dense', 'activation', 'dense', 'activation', 'dense'],
    );
  });

  it('Add/Sub/Mul/Div by scalar, per-channel and per-element constants; x·x and Pow(x, 2) become Square', async () => {
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 3, 4, 4]);
    let y = b.withConstant('Add', x, [], [0.5]);
    y = b.withConstant('Mul', y, [3, 1, 1], values(3));
    y = b.withConstant('Sub', y, [1, 3, 4, 4], values(48), true);
    y = b.withConstant('Div', y, [4], values(4, 1, 2));
    y = b.square(y);
    const two = b.initializer('two', { dims: [], values: [2] });
    y = b.node('Pow', [y, two])[0];
    b.output(y);
    const model = await compareWithOrt(b.toBytes(), 3, 7, 1e-5);
    assert.equal(model.layers.filter((l) => l.kind === 'square').length, 2);
  });

  it('residual Add and gating Mul between activations', async () => {
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 2, 5, 5]);
    const c1 = b.conv(x, { weight: values(2 * 2 * 9), weightDims: [2, 2, 3, 3], pads: [1, 1, 1, 1] });
    const r = b.relu(c1);
    const c2 = b.conv(r, {
      weight: values(2 * 2 * 9),
      weightDims: [2, 2, 3, 3],
      pads: [1, 1, 1, 1],
      bias: values(2),
    });
    const sum = b.node('Add', [r, c2])[0];
    b.output(b.node('Mul', [sum, x])[0]);
    const model = await compareWithOrt(b.toBytes());
    assert.deepEqual(
      model.layers.filter((l) => l.kind === 'binary').map((l) => (l.kind === 'binary' ? l.op : '')),
      ['add', 'mul'],
    );
  });

  it('AveragePool (with and without count_include_pad), MaxPool with pads, GlobalAveragePool', async () => {
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 2, 7, 7]);
    const a1 = b.pool('AveragePool', x, { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    const a2 = b.pool('AveragePool', x, {
      kernel: [3, 3],
      strides: [2, 2],
      pads: [1, 1, 1, 1],
      countIncludePad: true,
    });
    const m = b.pool('MaxPool', b.node('Add', [a1, a2])[0], {
      kernel: [2, 2],
      strides: [1, 1],
      pads: [0, 0, 1, 1],
    });
    b.output(b.globalAveragePool(m));
    const model = await compareWithOrt(b.toBytes());
    assert.deepEqual(model.outputShape, [2, 1, 1]);
  });

  it('shape-only ops: Reshape, Squeeze/Unsqueeze (opset 11 and 13), layout-preserving Transpose, Identity, Dropout', async () => {
    for (const opset of [11, 13]) {
      const b = new OnnxBuilder({ opset });
      const x = b.input('x', ['N', 1, 4, 5]);
      let y = b.node('Transpose', [x], { perm: [0, 2, 3, 1] })[0]; // moves only the unit channel axis
      y = b.reshape(y, [0, -1]);
      y =
        opset >= 13
          ? b.node('Unsqueeze', [
              y,
              b.initializer(b.fresh('axes'), { dims: [1], values: [2], dtype: 'int64' }),
            ])[0]
          : b.node('Unsqueeze', [y], { axes: [2] })[0];
      y = b.node('Identity', [b.node('Dropout', [y])[0]])[0];
      y =
        opset >= 13
          ? b.node('Squeeze', [
              y,
              b.initializer(b.fresh('axes'), { dims: [1], values: [-1], dtype: 'int64' }),
            ])[0]
          : b.node('Squeeze', [y], { axes: [-1] })[0];
      b.output(b.gemm(y, { weight: values(20 * 3), weightDims: [20, 3] }));
      const model = await compareWithOrt(b.toBytes());
      assert.deepEqual(model.outputShape, [3]);
    }
  });

  it('folds a Transpose of a constant weight and drops a final Softmax (flagged)', async () => {
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 6]);
    const w = b.initializer('w', { dims: [6, 4], values: values(24) });
    const wT = b.node('Transpose', [w], { perm: [1, 0] })[0];
    const logits = b.node('Gemm', [x, wT], { transB: 1 })[0];
    b.node('Softmax', [logits], { axis: -1 }, { outputs: ['probs'] });
    b.output('probs', ['N', 4]);
    const bytes = b.toBytes();
    const model = importOnnx(bytes);
    assert.equal(model.droppedSoftmax, true);
    const input = Float32Array.from(values(5 * 6, -2, 2));
    const ort = await runOnnxRuntime(bytes, input, [5, 6]);
    assert.deepEqual(argmaxRows(simulate(model, input, 5), 5, 4), argmaxRows(ort.data, 5, 4));
  });

  it('rejects what it cannot lower, naming node and reason', () => {
    const cases: [string, (b: OnnxBuilder, x: string) => string, RegExp][] = [
      [
        'layout-changing Transpose feeding a non-dense op',
        (b, x) => b.relu(b.node('Transpose', [b.relu(x)], { perm: [0, 1, 3, 2] }, { name: 't' })[0]),
        /\(Relu\).*Transpose 't'.*layout/,
      ],
      [
        'dilated Conv',
        (b, x) =>
          b.node(
            'Conv',
            [x, b.initializer('w', { dims: [1, 2, 3, 3], values: values(18) })],
            { dilations: [2, 2] },
            { name: 'c' },
          )[0],
        /'c' \(Conv\).*dilations/,
      ],
      [
        'non-final Softmax',
        (b, x) => b.relu(b.node('Softmax', [x], {}, { name: 's' })[0]),
        /'s' \(Softmax\).*final/,
      ],
      [
        'Mul by an activation-dependent weight',
        (b, x) => b.node('Conv', [x, x], {}, { name: 'cx' })[0],
        /'cx' \(Conv\).*constant/,
      ],
      [
        'Pow with exponent 3',
        (b, x) => b.node('Pow', [x, b.initializer('e', { dims: [], values: [3] })], {}, { name: 'p' })[0],
        /'p' \(Pow\).*exponent 3/,
      ],
    ];
    for (const [label, build, pattern] of cases) {
      const b = new OnnxBuilder();
      const x = b.input('x', ['N', 2, 4, 6]);
      b.output(build(b, x));
      assert.throws(
        () => importOnnx(b.toBytes()),
        (e: unknown) => e instanceof UnsupportedModelError && pattern.test(e.message),
        label,
      );
    }
  });
});
