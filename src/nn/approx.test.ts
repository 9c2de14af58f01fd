import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OnnxBuilder } from '../../tests/support/onnx-builder.ts';
import { convPoolGemmHead } from '../../tests/support/models.ts';
import { seededValues } from '../../tests/support/test-helpers.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { approximateModel, calibrate, widenInterval } from './approx.ts';
import { importOnnx } from './onnx/import.ts';
import { simulate } from './simulate.ts';

/** Conv → Relu → MaxPool → Flatten → Gemm → Sigmoid → Gemm: one of each substituted op. */
function smallCnn() {
  const { b, gemm: g, weights: v } = convPoolGemmHead(300, 8);
  b.node('Sigmoid', [g], {}, { name: 'sig1', outputs: ['s1'] });
  b.output(b.gemm('s1', { weight: v(8 * 3, 2), weightDims: [8, 3], bias: v(3) }));
  return importOnnx(b.toBytes());
}

const model = smallCnn();
const count = 200;
const images = seededValues(count * 64, 9, 0, 1);

describe('approximateModel', () => {
  it('calibrates per-layer input ranges with the exact model', () => {
    const ranges = calibrate(model, { images, count });
    assert.deepEqual([...ranges.keys()], ['relu1', 'pool1', 'sig1']);
    const relu = ranges.get('relu1');
    assert.ok(relu && relu.min < 0 && relu.max > 0);
    const pool = ranges.get('pool1');
    assert.ok(pool && pool.min >= 0, 'MaxPool sees Relu outputs');
  });

  it('measureCosts: false gives the same polynomials, without the accuracy costs', () => {
    const options = { calibration: { images, count }, degree: { relu: 15, sigmoid: 7, abs: 16 } };
    const full = approximateModel(model, options);
    const quick = approximateModel(model, { ...options, measureCosts: false });
    assert.equal(quick.overall, undefined);
    assert.ok(full.overall !== undefined);
    assert.equal(quick.substitutions.length, 3);
    quick.substitutions.forEach((s, k) => {
      assert.equal(s.cost, undefined);
      assert.equal(s.cumulativeCost, undefined);
      assert.deepEqual(s.interval, full.substitutions[k].interval, s.layer);
      assert.deepEqual(s.observed, full.substitutions[k].observed, s.layer);
    });
    assert.deepEqual(quick.model, full.model);
  });

  it('reports every substitution with degree, interval and measured accuracy cost', () => {
    const result = approximateModel(model, {
      calibration: { images, count },
      degree: { relu: 15, sigmoid: 7, abs: 16 },
    });
    assert.deepEqual(
      result.substitutions.map((s) => [s.layer, s.op, s.method, s.degree]),
      [
        ['relu1', 'Relu', 'least-squares', 15],
        ['pool1', 'MaxPool', 'least-squares', 16],
        ['sig1', 'Sigmoid', 'least-squares', 7],
      ],
    );
    for (const s of result.substitutions) {
      assert.ok(s.interval && s.observed && s.cost, s.layer);
      if (s.op !== 'MaxPool')
        assert.ok(s.interval[0] < s.observed[0] && s.interval[1] > s.observed[1], 'widened interval');
      assert.ok(
        s.approximationError > 0 && s.approximationError < 0.2,
        `${s.layer}: ${s.approximationError}`,
      );
      assert.equal(s.cost.images, count);
      assert.ok(
        s.cost.top1Agreement > 0.8 && s.cost.top1Agreement <= 1,
        `${s.layer}: ${s.cost.top1Agreement}`,
      );
      assert.ok(s.cost.maxAbsLogitError > 0 && Number.isFinite(s.cost.maxAbsLogitError));
    }
    assert.ok(result.overall && result.overall.top1Agreement > 0.8);
    // The attached approximations are what polynomial mode evaluates; exact mode ignores them.
    const exact = simulate(model, images, count);
    assert.deepEqual(simulate(result.model, images, count), exact);
    const poly = simulate(result.model, images, count, { mode: 'polynomial' });
    assert.notDeepEqual(poly, exact);
  });

  it('Remez refinement lowers the approximation error of Relu', () => {
    const cheb = approximateModel(model, { calibration: { images, count } }).substitutions[0];
    const remez = approximateModel(model, { calibration: { images, count }, remezIterations: 10 })
      .substitutions[0];
    assert.equal(remez.method, 'remez');
    assert.ok(remez.approximationError < cheb.approximationError);
  });

  it('replaces MaxPool by average pooling when the user allows it', () => {
    const result = approximateModel(model, { calibration: { images, count }, maxPool: 'average' });
    const pool = result.substitutions.find((s) => s.op === 'MaxPool');
    assert.equal(pool?.method, 'average-pool');
    const layer = result.model.layers.find((l) => l.name === 'pool1');
    assert.ok(layer?.kind === 'maxPool' && layer.approx?.method === 'average');
  });

  it('without calibration data an explicit interval per layer is required, else a clear error', () => {
    assert.throws(
      () => approximateModel(model),
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        /'relu1' \(Relu.*calibration images or intervals\['relu1'\]/.test(e.message),
    );
    const result = approximateModel(model, { intervals: { relu1: [-3, 3], pool1: [0, 3], sig1: [-8, 8] } });
    assert.deepEqual(result.substitutions[0].interval, [-3, 3]);
    assert.equal(result.substitutions[0].cost, undefined);
    assert.equal(result.overall, undefined);
  });

  it('polynomial mode refuses a model with unapproximated Relu', () => {
    assert.throws(
      () => simulate(model, images, 1, { mode: 'polynomial' }),
      (e: unknown) => e instanceof InvalidArgumentError && /relu1/.test(e.message),
    );
  });

  it('fits by least squares on the calibration values by default: closer logits than interpolation', () => {
    const calibration = { images, count };
    const degree = { relu: 7, sigmoid: 5, abs: 8 };
    const ls = approximateModel(model, { calibration, degree });
    const interpolated = approximateModel(model, { calibration, degree, fit: 'interpolation' });
    assert.deepEqual(
      ls.substitutions.map((s) => s.method),
      ['least-squares', 'least-squares', 'least-squares'],
    );
    assert.ok(ls.overall && interpolated.overall);
    assert.ok(
      ls.overall.maxAbsLogitError < interpolated.overall.maxAbsLogitError,
      `least squares ${ls.overall.maxAbsLogitError} vs interpolation ${interpolated.overall.maxAbsLogitError}`,
    );
    // MaxPool's |·| interval: the differences its tree takes, widened, within the input range's width.
    const [, poolLs] = ls.substitutions;
    const [, poolInterpolated] = interpolated.substitutions;
    assert.ok(poolLs.interval && poolInterpolated.interval);
    assert.ok(poolLs.interval[1] <= poolInterpolated.interval[1]);
    assert.throws(
      () => approximateModel(model, { calibration, fit: 'least-squares', remezIterations: 3 }),
      /remezIterations = 3 with fit 'least-squares'/,
    );
  });

  it('sequential calibration: a polynomial after another one is fitted on the values it will see', () => {
    // Tanh → Relu → Gemm. Inputs sit where tanh saturates (|x| in [3.5, 4.5]), so the exact Relu input stays
    // within ±1, but the cubic that replaces tanh overshoots to about ±1.28 there, beyond the exact range widened
    // by the 10 % margin (±1.2); a degree-32 polynomial diverges just outside its interval.
    const b = new OnnxBuilder();
    b.node('Tanh', [b.input('x', ['N', 4])], {}, { name: 'tanh1', outputs: ['t1'] });
    b.node('Relu', ['t1'], {}, { name: 'relu2', outputs: ['r2'] });
    b.output(b.gemm('r2', { weight: [1, -1, 0, 2, 0, 1, -1, 0, 3, 0, 1, -2], weightDims: [4, 3] }));
    const twoActivations = importOnnx(b.toBytes());
    const n = 100;
    const xs = seededValues(n * 4, 7, -1, 1).map((v) => Math.sign(v) * (3.5 + Math.abs(v)));
    const run = (calibrationMode: 'exact' | 'sequential') =>
      approximateModel(twoActivations, {
        calibration: { images: xs, count: n },
        degree: { tanh: 3, relu: 32 },
        calibrationMode,
        // The overshoot below is the Chebyshev interpolant's; calibration, not the fit, is under test.
        fit: 'interpolation',
      });
    const naive = run('exact');
    const sequential = run('sequential');
    const [tanhNaive, reluNaive] = naive.substitutions;
    const [tanhSeq, reluSeq] = sequential.substitutions;
    // The first layer is calibrated identically; the second sees the cubic's overshoot only sequentially.
    assert.deepEqual(tanhSeq.interval, tanhNaive.interval);
    assert.deepEqual(reluSeq.exactObserved, reluNaive.observed);
    assert.ok(reluNaive.observed && reluNaive.observed[1] < 1, `${reluNaive.observed}`);
    assert.ok(reluSeq.observed && reluSeq.observed[1] > 1.25, `${reluSeq.observed}`);
    assert.ok(reluSeq.interval && reluNaive.interval && reluSeq.interval[1] > reluNaive.interval[1] + 0.2);
    // Alone, each substitution is harmless; chained, naive calibration wrecks the logits, sequential does not.
    assert.ok(reluNaive.cost && reluNaive.cost.top1Agreement >= 0.9, `${reluNaive.cost?.top1Agreement}`);
    assert.ok(naive.overall && sequential.overall);
    assert.ok(naive.overall.maxAbsLogitError > 100, `naive ${naive.overall.maxAbsLogitError}`);
    assert.ok(naive.overall.top1Agreement < 0.5, `naive ${naive.overall.top1Agreement}`);
    assert.ok(sequential.overall.maxAbsLogitError < 1.5, `sequential ${sequential.overall.maxAbsLogitError}`);
    assert.ok(sequential.overall.top1Agreement >= 0.9, `sequential ${sequential.overall.top1Agreement}`);
    // Running costs: the last one is the overall cost; the first is tanh1's cost alone.
    assert.deepEqual(reluSeq.cumulativeCost, sequential.overall);
    assert.deepEqual(tanhSeq.cumulativeCost, tanhSeq.cost);
    assert.deepEqual(reluNaive.cumulativeCost, naive.overall);
  });

  it('sequential calibration names the layer when an earlier polynomial makes its input non-finite', () => {
    const b = new OnnxBuilder();
    b.node('Relu', [b.input('x', ['N', 2])], {}, { name: 'first', outputs: ['r1'] });
    b.node('Relu', ['r1'], {}, { name: 'second', outputs: ['r2'] });
    b.output('r2');
    const chained = importOnnx(b.toBytes());
    const xs = Float64Array.of(0.5, -0.5, 1e300, -1e300);
    assert.throws(
      () =>
        approximateModel(chained, { calibration: { images: xs, count: 2 }, intervals: { first: [-1, 1] } }),
      (e: unknown) =>
        e instanceof InvalidArgumentError && /'second' \(Relu.*not finite.*\(first\)/.test(e.message),
    );
  });

  it('widenInterval widens by the margin on both sides', () => {
    assert.deepEqual(widenInterval(-1, 3, 0.1), [-1.4, 3.4]);
    const [a, b] = widenInterval(2, 2, 0.1);
    assert.ok(a < 2 && b > 2);
  });
});
