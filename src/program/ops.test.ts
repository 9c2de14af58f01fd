import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Ciphertext } from '../ckks/objects.ts';
import { testContext } from '../../tests/support/ckks-context.ts';
import { ParametersShape } from '../ckks/shape.ts';
import { galoisElementForRotation } from '../ring/galois.ts';
import { HE_OPS, type HeOp, OPS, opKeys, type ValueShape } from './ops.ts';

/**
 * The op table's facets agree with each other: what an op means on float vectors (the simulator) is what it does
 * to ciphertexts (the executor), and its result rule predicts the level, scale and degree the evaluator produces.
 */
const ctx = testContext(
  { logN: 13, depth: 4, basePrimes: 2, specialPrimes: 1 },
  { rotations: [1, 3, -2] },
  11,
);
const params = ctx.params;
const slots = params.slots;
const top = params.depth;

function vector(salt: number): Float64Array {
  return ctx.uniform(slots, salt);
}

function shapeOf(ct: { level: number; scale: number; degree: number }): ValueShape {
  return { level: ct.level, scale: ct.scale, degree: ct.degree };
}

/** Operands, fields and constants for one instance of each op (free has none). */
const cases: Record<
  Exclude<HeOp, 'free' | 'bootstrap'>,
  { arity: number; fields: Record<string, unknown>; constant?: number; weights?: Float64Array }
> = {
  mul_const: { arity: 1, fields: { constantScale: params.scaleAtLevel[top] }, constant: 0.75 },
  mul_then_add: { arity: 2, fields: { constantScale: params.scaleAtLevel[top] }, constant: 0.5 },
  // Three rows over two operands (variadic: the case reads x and y).
  mul_matrix: {
    arity: -1,
    fields: { constantScale: params.scaleAtLevel[top], rows: 3 },
    weights: Float64Array.of(0.5, -0.25, 1, 0.75, -1, 0.125),
  },
  mul_plain: { arity: 1, fields: {} },
  mul_plain_then_add: { arity: 2, fields: {} },
  mul_ct: { arity: 2, fields: {} },
  square: { arity: 1, fields: {} },
  add: { arity: 2, fields: {} },
  sub: { arity: 2, fields: {} },
  add_const: { arity: 1, fields: {}, constant: -0.25 },
  add_plain: { arity: 1, fields: {} },
  relinearize: { arity: 1, fields: {} },
  rescale: { arity: 1, fields: {} },
  drop_level: { arity: 1, fields: { level: top - 2 } },
  match_scale: { arity: 1, fields: { level: top - 1, scale: params.scaleAtLevel[top - 1] } },
  rotate: { arity: 1, fields: { steps: [3] } },
  rotate_hoisted: { arity: 1, fields: { steps: [1, -2, 3, 1] } },
};

describe('the op table', () => {
  it('defines every op, with arities that match how the ops are used', () => {
    assert.deepEqual(Object.keys(OPS).sort(), [...HE_OPS].sort());
    for (const op of HE_OPS)
      if (op !== 'free' && op !== 'bootstrap') assert.equal(OPS[op].arity, cases[op].arity, op);
    // bootstrap's facets are checked against a real bootstrapper in src/runtime/he/bootstrap-program.test.ts.
    assert.equal(OPS.bootstrap.arity, 1);
    assert.equal(OPS.free.arity, -1);
  });

  it('derives the keys each op uses', () => {
    const g = (s: number) => galoisElementForRotation(s, params.logN);
    assert.deepEqual(opKeys('relinearize', undefined, g), ['relin']);
    assert.deepEqual(opKeys('rotate_hoisted', [1, -2], g), [`galois:${g(1)}`, `galois:${g(-2)}`]);
    assert.deepEqual(opKeys('mul_plain', undefined, g), []);
  });

  it('prices key switching above element-wise work, and hoisting below separate rotations', () => {
    const shape = ParametersShape.of(params.literal);
    const ins = (degree: number, steps?: number[]) => ({
      level: top,
      degree,
      bytes: { args: [shape.ciphertextBytes(top, 1)] },
      steps,
    });
    assert.ok(OPS.rotate.cost(shape, ins(1)) > 10 * OPS.mul_plain.cost(shape, ins(1)));
    const hoisted = OPS.rotate_hoisted.cost(shape, ins(1, [1, 2, 3, 4]));
    assert.ok(hoisted < 4 * OPS.rotate.cost(shape, ins(1)) && hoisted > OPS.rotate.cost(shape, ins(1)));
    assert.equal(OPS.free.cost(shape, ins(1)), 0);
  });

  for (const op of HE_OPS) {
    if (op === 'free' || op === 'bootstrap') continue;
    it(`${op}: the simulator and the evaluator compute the same slots, at the level, scale and degree of the rule`, () => {
      const spec = cases[op];
      const definition = OPS[op];
      const xs = vector(1);
      const ys = vector(2);
      const ps = vector(3);
      const x = ctx.encrypt(xs);
      let y: Ciphertext = ctx.encrypt(ys);
      let yValues = ys;
      if (op === 'mul_then_add' || op === 'mul_plain_then_add') {
        // The accumulator has the scale of x · c at x's level: the product of two fresh scales.
        y = ctx.evaluator.mulNew(ctx.encrypt(ys), 1, params.scaleAtLevel[top]);
        yValues = Float64Array.from(ys);
      }
      let operand: Ciphertext = x;
      if (op === 'relinearize') operand = ctx.evaluator.mulNew(x, x);
      if (op === 'rescale') operand = ctx.evaluator.mulNew(x, 2, params.scaleAtLevel[top]);
      const operandValues =
        op === 'relinearize' ? xs.map((v) => v * v) : op === 'rescale' ? xs.map((v) => 2 * v) : xs;
      const plaintext = ctx.encoder.encodeNew(
        ps,
        top,
        op === 'add_plain' ? operand.scale : params.scaleAtLevel[top],
      );
      const args = spec.arity !== 1 ? [operand, y] : [operand];
      const simArgs =
        spec.arity !== 1
          ? [Float64Array.from(operandValues), Float64Array.from(yValues)]
          : [Float64Array.from(operandValues)];
      const constant = spec.constant ?? 0;
      const fields = spec.fields;
      const rule = definition.result(args.map(shapeOf), fields, {
        plaintext: { level: plaintext.level, scale: plaintext.scale },
        rescaleScale: (level, scale) => scale / params.qPrimes[params.limbsAtLevel(level) - 1],
      });
      const weights = spec.weights;
      const simulated = definition.simulate(simArgs, { constant, weights, plaintext: ps, fields });
      const evaluated = definition.evaluate(ctx.evaluator, args, { constant, weights, plaintext, fields });
      const results = definition.inPlace ? [args[args.length - 1]] : evaluated;
      const expected = definition.inPlace ? [simArgs[simArgs.length - 1]] : simulated;
      assert.equal(results.length, expected.length);
      assert.equal(results.length, rule.length);
      results.forEach((ct, k) => {
        assert.equal(ct.level, rule[k].level, `${op} level`);
        assert.equal(ct.degree, rule[k].degree, `${op} degree`);
        assert.ok(
          Math.abs(ct.scale / rule[k].scale - 1) < 2 ** -30,
          `${op} scale ${ct.scale} vs ${rule[k].scale}`,
        );
        const decrypted = ctx.decrypt(ct.degree === 2 ? ctx.evaluator.relinearizeNew(ct) : ct);
        let worst = 0;
        for (let i = 0; i < slots; i++) worst = Math.max(worst, Math.abs(decrypted[i] - expected[k][i]));
        assert.ok(worst < 2 ** -8, `${op} result ${k}: max slot error ${worst}`);
      });
    });
  }
});
