import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Allocator } from '../ring/arena.ts';
import { KernelContext } from '../ring/context.ts';
import { Prng } from '../ring/prng.ts';
import { Encoder } from '../ckks/encoder.ts';
import { SymmetricEncryptor } from '../ckks/encryptor.ts';
import { Evaluator } from '../ckks/evaluator.ts';
import { KeyGenerator } from '../ckks/keys.ts';
import type { Ciphertext } from '../ckks/objects.ts';
import { Parameters, type ParametersLiteral } from '../ckks/parameters.ts';
import { ParametersShape } from '../ckks/shape.ts';
import { type CostedInstruction, type EvaluationOperands, type HeOp, OPS } from './ops.ts';

/** Passes allocations through and records the most bytes in use above a starting point. */
class PeakAllocator implements Allocator {
  readonly base: Allocator;
  #start = 0;
  #peak = 0;
  constructor(base: Allocator) {
    this.base = base;
  }
  alloc(words: number): number {
    const pointer = this.base.alloc(words);
    this.#peak = Math.max(this.#peak, this.base.bytesInUse - this.#start);
    return pointer;
  }
  free(pointer: number, words: number): void {
    this.base.free(pointer, words);
  }
  get bytesInUse(): number {
    return this.base.bytesInUse;
  }
  get peakBytes(): number {
    return this.base.peakBytes;
  }
  /** Starts measuring from the bytes in use now. */
  restart(): void {
    this.#start = this.base.bytesInUse;
    this.#peak = 0;
  }
  /** The most bytes in use above the start since {@link restart}. */
  get peakAboveStart(): number {
    return this.#peak;
  }
}

function seed(label: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? label : (3 + 7 * i) & 0xff));
}

const contexts: KernelContext[] = [];
after(() => {
  for (const context of contexts) context.close();
});

/**
 * Every op evaluated on real ciphertexts at several levels: the kernel memory it allocated beyond its results, at
 * its peak, must not exceed `OPS[op].scratch` (the runtime keeps that much of the arena free for the step) and must
 * come close to it (a loose bound would waste the budget). Two parameter sets: α = 2 (≤ 6 digits), and α = 1 with
 * 11 digits at the top (the inner product's partial sums past eight digits).
 */
describe('op table: scratch memory', () => {
  const literals: [string, ParametersLiteral][] = [
    ['logN 12, α 2', { logN: 12, depth: 9, specialPrimes: 2, insecure: true }],
    ['logN 11, α 1', { logN: 11, depth: 9, specialPrimes: 1, insecure: true }],
  ];
  for (const [name, literal] of literals) {
    it(`measured peaks stay within the model, close to it: ${name}`, () => {
      const context = KernelContext.create({ threads: 1 });
      contexts.push(context);
      const params = Parameters.create(literal, { context });
      const shape = ParametersShape.of(literal);
      const keygen = new KeyGenerator(params, Prng.fromSeed(seed(1)));
      const secretKey = keygen.generateSecretKey(Prng.fromSeed(seed(2)));
      const evaluator = new Evaluator(
        params,
        keygen.generateEvaluationKeys(secretKey, { rotations: [1, 2, 3] }),
      );
      const encoder = new Encoder(params);
      const values = Float64Array.from({ length: params.slots }, (_, i) => ((i * 13) % 17) / 17 - 0.5);
      const fresh = new SymmetricEncryptor(params, secretKey).encryptNew(
        encoder.encodeNew(values),
        seed(3),
        Prng.fromSeed(seed(4)),
      );
      const peak = new PeakAllocator(context.allocator);
      context.setAllocator(peak);
      const limbBytes = params.n * 4;
      const bytesOf = (c: Ciphertext) => (c.degree + 1) * params.limbsAtLevel(c.level) * limbBytes;
      let checked = 0;
      try {
        for (const level of [literal.depth, literal.depth - 3, 1]) {
          const x = evaluator.dropLevelNew(fresh, level);
          const y = evaluator.dropLevelNew(fresh, level);
          const x2 = evaluator.mulNew(x, y);
          const plaintext = encoder.encodeNew(values, level, x.scale);
          const cases: [HeOp, Ciphertext[], Partial<EvaluationOperands['fields']>, number][] = [
            ['relinearize', [x2], {}, 0],
            ['rotate', [x], { steps: [1] }, 0],
            ['rotate_hoisted', [x], { steps: [1, 2, 3] }, 0],
            ['rescale', [x], {}, 0],
            ['rescale', [x2], {}, 0],
            ['mul_ct', [x, y], {}, 0],
            ['square', [x], {}, 0],
            ['add', [x, y], {}, 0],
            ['sub', [x, y], {}, 0],
            ['mul_const', [x], { constantScale: 2 ** 20 }, 0.5],
            ['add_const', [x], {}, 0.25],
            ['mul_plain', [x], {}, 0],
            ['add_plain', [x], {}, 0],
            ['drop_level', [x], { level: level - 1 }, 0],
            ['match_scale', [x], { level: level - 1, scale: params.scaleAtLevel[level - 1] }, 0],
            ['mul_then_add', [x, evaluator.mulNew(y, 0.5, 2 ** 20)], { constantScale: 2 ** 20 }, 0.5],
            ['mul_plain_then_add', [x, evaluator.mulNew(y, plaintext)], {}, 0],
            ['mul_matrix', [x, y, x], { constantScale: 2 ** 20, rows: 2 }, 0],
          ];
          for (const [op, args, fields, constant] of cases) {
            const weights = Float64Array.of(0.5, -0.25, 1, 0.75, 0, -1);
            const operands: EvaluationOperands = { constant, weights, plaintext, fields };
            peak.restart();
            const results = OPS[op].evaluate(evaluator, args, operands);
            const measured = peak.peakAboveStart - results.reduce((s, c) => s + bytesOf(c), 0);
            const out = results[0] ?? args[args.length - 1];
            const costed: CostedInstruction = {
              level: out.level,
              degree: out.degree,
              bytes: { args: args.map(bytesOf) },
              ...(fields.steps ? { steps: fields.steps } : {}),
              ...(fields.rows ? { rows: fields.rows } : {}),
            };
            const model = OPS[op].scratch(shape, costed);
            const what = `${op} of degree ${args[0].degree} at level ${level}`;
            assert.ok(measured <= model, `${what}: measured ${measured} bytes of scratch, model ${model}`);
            // Close: within 8 limbs or 5 % of the model (the model rounds each part up).
            assert.ok(
              model - measured <= Math.max(8 * limbBytes, 0.05 * model),
              `${what}: the model ${model} is far above the measured ${measured}`,
            );
            for (const r of results) r.dispose();
            checked++;
          }
          for (const c of [x, y, x2, plaintext]) c.dispose();
        }
      } finally {
        context.setAllocator(peak.base);
      }
      assert.equal(checked, 54);
    });
  }
});
