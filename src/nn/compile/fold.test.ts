import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { convPoolGemmHead, residualModel } from '../../../tests/support/models.ts';
import { seededValues } from '../../../tests/support/test-helpers.ts';
import { approximateModel } from '../approx.ts';
import { importOnnx } from '../onnx/import.ts';
import { simulate } from '../simulate.ts';
import { compileModel } from './index.ts';
import { foldPolynomialMaps } from './fold.ts';

/** Conv → Relu → MaxPool → Flatten → Gemm, and a second Relu whose input is also the model's output branch. */
function cnn(shared: boolean) {
  const { b, gemm: g, weights: v } = convPoolGemmHead(40, 6);
  if (shared) {
    // The gemm's output feeds the Relu and an Add: its interval map cannot move into it.
    b.node('Relu', [g], {}, { name: 'relu2', outputs: ['r2'] });
    b.node('Add', ['r2', g], {}, { name: 'add', outputs: ['s'] });
    b.output(b.gemm('s', { weight: v(6 * 3, 2), weightDims: [6, 3], bias: v(3) }));
  } else {
    b.node('Relu', [g], {}, { name: 'relu2', outputs: ['r2'] });
    b.output(b.gemm('r2', { weight: v(6 * 3, 2), weightDims: [6, 3], bias: v(3) }));
  }
  return importOnnx(b.toBytes());
}

const count = 64;
const images = seededValues(count * 64, 11, 0, 1);

describe('foldPolynomialMaps', () => {
  it('moves every interval map into the linear layers: same outputs, polynomials on [-1, 1]', () => {
    const { model } = approximateModel(cnn(false), { calibration: { images, count } });
    const folded = foldPolynomialMaps(model);
    for (const l of folded.layers) {
      if (l.kind === 'activation') assert.deepEqual([l.approx?.a, l.approx?.b], [-1, 1], l.name);
      if (l.kind === 'maxPool' && l.approx?.method === 'polynomial')
        assert.deepEqual([l.approx.abs.a, l.approx.abs.b], [-1, 1], l.name);
    }
    const before = simulate(model, images, count, { mode: 'polynomial' });
    const after = simulate(folded, images, count, { mode: 'polynomial' });
    for (let i = 0; i < before.length; i++)
      assert.ok(Math.abs(before[i] - after[i]) < 1e-9 * (1 + Math.abs(before[i])), `${i}`);
    // The input model is left as it was.
    assert.notDeepEqual(model.layers, folded.layers);
  });

  it('leaves a polynomial whose producer is read elsewhere as it is', () => {
    const { model } = approximateModel(cnn(true), { calibration: { images, count } });
    const folded = foldPolynomialMaps(model);
    const relu2 = folded.layers.find((l) => l.name === 'relu2');
    const original = model.layers.find((l) => l.name === 'relu2');
    assert.ok(relu2?.kind === 'activation' && original?.kind === 'activation');
    assert.deepEqual([relu2.approx?.a, relu2.approx?.b], [original.approx?.a, original.approx?.b]);
    const before = simulate(model, images, count, { mode: 'polynomial' });
    const after = simulate(folded, images, count, { mode: 'polynomial' });
    for (let i = 0; i < before.length; i++)
      assert.ok(Math.abs(before[i] - after[i]) < 1e-9 * (1 + Math.abs(before[i])), `${i}`);
  });

  it("folds through a residual sum: the branch's conv takes the map, the shortcut a coefficient", () => {
    const model = residualModel(2);
    const calibration = { images: seededValues(32 * 32, 12, -1, 1), count: 32 };
    const { model: approximated } = approximateModel(model, { calibration, degree: { relu: 15 } });
    const folded = foldPolynomialMaps(approximated);
    for (const l of folded.layers)
      if (l.kind === 'activation') assert.deepEqual([l.approx?.a, l.approx?.b], [-1, 1], l.name);
    const sums = folded.layers.filter((l) => l.kind === 'binary');
    assert.equal(sums.length, 2);
    for (const sum of sums) {
      assert.ok(sum.kind === 'binary' && sum.coefficients, `${sum.name} has coefficients`);
      // Operand 0 is the block's second conv (folded); operand 1 the shortcut, scaled by α.
      assert.equal(sum.coefficients[0], 1);
      assert.ok(sum.coefficients[1] > 0 && sum.coefficients[1] !== 1);
    }
    const before = simulate(approximated, calibration.images, 32, { mode: 'polynomial' });
    const after = simulate(folded, calibration.images, 32, { mode: 'polynomial' });
    for (let i = 0; i < before.length; i++)
      assert.ok(Math.abs(before[i] - after[i]) < 1e-9 * (1 + Math.abs(before[i])), `${i}`);
  });

  it('saves a level per folded polynomial in the compiled program', () => {
    const model = cnn(false);
    const calibration = { images, count };
    const { model: approximated } = approximateModel(model, { calibration });
    // Relu (degree 15): basis 4 + sum 1; each of pool1's 2 tree levels (|·| degree 16): basis 4 + sum 1; conv, gemm
    // and gemm 1 each: 5 + 10 + 1 + 5 + 2 = 23, and 1 for gathering the pooled values (left on every other slot)
    // before the gemm: 24. Unfolded, each relu and each tree level also spent 1 on T₁ = αx + β (28).
    const { program } = compileModel(approximated, { calibration, mode: 'latency' });
    assert.equal(program.depth, 24);
  });
});
