import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  deepModel,
  maxPoolModel,
  reluModel,
  twoPoolModel,
  wideMaxPoolModel,
} from '../../../tests/support/models.ts';
import { UnsupportedModelError } from '../errors.ts';
import { OnnxBuilder } from '../../../tests/support/onnx-builder.ts';
import { rowRelativeError, seededValues } from '../../../tests/support/test-helpers.ts';
import { HomeError, InvalidArgumentError, ResourceError, SecurityError } from '../../util/errors.ts';
import { checkImages } from '../../program/packing.ts';
import { simulateProgram } from '../../program/simulate.ts';
import type { HeProgram } from '../../program/program.ts';
import { findModelFile } from '../../platform/bundled-files.ts';
import { importOnnx } from '../onnx/import.ts';
import { opCounts, programFootprint } from '../../program/analysis.ts';
import { simulate } from '../simulate.ts';
import { depthLowerBound } from '../approx.ts';
import { chooseParameters, compileModel } from './index.ts';
import { hybridRow, planLatencyLayouts, replicateByDoubling } from './latency-layout.ts';

describe('parameter choice', () => {
  it('takes the smallest secure logN for the depth and fills the budget with special primes', () => {
    const p5 = chooseParameters(5);
    assert.equal(p5.logN, 14);
    assert.equal(p5.qPrimes.length, 7);
    assert.ok(p5.logQP <= 438);
    const p3 = chooseParameters(3);
    assert.equal(p3.logN, 13);
    assert.ok(p3.logQP <= 218);
    assert.equal(chooseParameters(20).logN, 15);
    assert.equal(chooseParameters(10, { primesPerLevel: 2 }).logN, 15);
  });

  it('insecureLogN (tests only) takes that ring degree below the 128-bit bound, marked insecure, with a warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(String(w.code));
    process.on('warning', onWarning);
    try {
      const p = chooseParameters(20, { insecureLogN: 13 });
      assert.equal(p.logN, 13);
      assert.equal(p.insecure, true);
      assert.ok(p.logQP > 218, `log2 QP ${p.logQP}: beyond the 128-bit bound of logN 13`);
      assert.equal(p.qPrimes.length, chooseParameters(20).qPrimes.length, 'the Q chain of the secure choice');
      // The secure choice for the same depth is unchanged.
      assert.equal(chooseParameters(20).insecure, false);
    } finally {
      await new Promise((resolve) => setImmediate(resolve));
      process.off('warning', onWarning);
    }
    assert.ok(warnings.includes('HOME_INSECURE_PARAMETERS'), warnings.join(', '));
    assert.throws(() => chooseParameters(5, { insecureLogN: 9 }), /insecureLogN/);
  });

  it('asks two primes per level (a 2^60 scale) for more than 24 bits of precision', () => {
    const { params, program } = compileModel(deepModel(2), { precisionBits: 40 });
    assert.equal(params.primesPerLevel, 2);
    assert.equal(program.parameters.primesPerLevel, 2);
  });

  it('names the depth and the largest secure depth when nothing fits', () => {
    assert.throws(
      () => chooseParameters(80),
      (e: unknown) =>
        e instanceof SecurityError &&
        /depth 80/.test(e.message) &&
        /largest depth .* is 55 \(logN = 16/.test(e.message),
    );
    // Sixty squares are at least 60 levels: refused before any approximation or emission.
    assert.throws(
      () => compileModel(deepModel(60)),
      (e: unknown) =>
        e instanceof SecurityError &&
        /multiplicative depth at least 60 .*largest depth .* is 55/.test(e.message) &&
        /before calibration/.test(e.message),
    );
    // Fifty fit the bound (50 ≤ 55) but not the program (one more level for the input and output): the exact
    // depth then comes from the dry run.
    assert.throws(
      () => compileModel(deepModel(55)),
      (e: unknown) => e instanceof SecurityError && /multiplicative depth 56 /.test(e.message),
    );
  });

  it('bounds the depth from below before calibration (a bound the compiled depth never undercuts)', () => {
    for (const n of [1, 2, 5]) {
      const model = deepModel(n);
      assert.ok(depthLowerBound(model) <= compileModel(model).program.depth);
    }
    const cryptonets = importOnnx(readFileSync(findModelFile('cryptonets-mnist.onnx')));
    assert.ok(depthLowerBound(cryptonets) <= compileModel(cryptonets).program.depth);
  });
});

describe('MaxPool (batch packing): the program simulator equals the layer simulator in polynomial mode', () => {
  const model = maxPoolModel();
  const count = 32;
  const images = seededValues(count * 16, 33, 0, 1);
  for (const maxPool of ['polynomial', 'average'] as const) {
    it(`${maxPool}: program simulator = layer simulator in polynomial mode`, () => {
      const {
        program,
        substitutions,
        model: compiled,
      } = compileModel(model, {
        calibration: { images, count },
        approximation: { maxPool, degree: { abs: 6 } },
      });
      assert.equal(substitutions[0].op, 'MaxPool');
      const sim = simulateProgram(program, images, count);
      assert.ok(rowRelativeError(sim, simulate(compiled, images, count, { mode: 'polynomial' }), 2) < 1e-9);
    });
  }
});

describe('MaxPool (latency packing): rotations, a max tree, and the next layers reading the strided slots', () => {
  const count = 16;
  for (const [name, make, side] of [
    ['one pooling', maxPoolModel, 4],
    ['two poolings and a convolution on a strided grid', twoPoolModel, 8],
  ] as const) {
    for (const maxPool of ['polynomial', 'average'] as const) {
      it(`${name}, ${maxPool}: program simulator = layer simulator in polynomial mode`, () => {
        const images = seededValues(count * side * side, 34, 0, 1);
        const { program, model: compiled } = compileModel(make(), {
          mode: 'latency',
          calibration: { images, count },
          approximation: { maxPool, degree: { abs: 6 } },
        });
        // All 16 images share one ciphertext, one per block of slots: rotations must not carry values between
        // blocks (a block reading its neighbour would give another image's logits).
        assert.ok(program.batchSize >= count, `batchSize ${program.batchSize}`);
        const sim = simulateProgram(program, images, count);
        const poly = simulate(compiled, images, count, { mode: 'polynomial' });
        const classes = compiled.outputShape.reduce((a, b) => a * b, 1);
        assert.ok(rowRelativeError(sim, poly, classes) < 1e-9, `${rowRelativeError(sim, poly, classes)}`);
        // Plaintexts expanded when read, into one reused vector (programs whose plaintexts would not fit
        // expanded): the same logits, bit for bit.
        assert.deepEqual(simulateProgram(program, images, count, { plaintextCacheBytes: 0 }), sim);
        if (maxPool === 'polynomial') assert.ok(opCounts(program).rotate_hoisted > 0);
      });
    }
  }

  it('a 3×3 window: along its rows, then across them — 4 polynomial maxima over whole ciphertexts, not 8', () => {
    const images = seededValues(16 * 36, 38, 0, 1);
    const { program, model: compiled } = compileModel(wideMaxPoolModel(3, 3), {
      mode: 'latency',
      calibration: { images, count: 16 },
      approximation: { maxPool: 'polynomial', degree: { relu: 4, abs: 6 } },
    });
    const pool = program.instructions.filter((i) => i.layer === 'pool1');
    // The input sits on a 6-wide grid: a row's elements 1 and 2 slots after its first, the rows 6 and 12.
    assert.deepEqual(
      pool.filter((i) => i.op === 'rotate_hoisted').map((i) => i.steps),
      [
        [1, 2],
        [6, 12],
      ],
    );
    // A degree-6 |·| is T₂, T₄ (relinearized) and T₆ (a leaf): 2 relinearizations per max plus its sum's.
    const perMax = pool.filter((i) => i.op === 'relinearize').length / 4;
    assert.equal(perMax, 3);
    // Four maxima in sequence take twice the levels of a 2×2 window's two: the value a 3-tree carries up is
    // matched to its partner's level and scale (match_scale) instead of the sum spending a level.
    const levelsOf = (instructions: typeof pool) => {
      const levels = instructions.filter((i) => i.op !== 'free').map((i) => i.level);
      return Math.max(...levels) - Math.min(...levels);
    };
    const small = compileModel(wideMaxPoolModel(2, 2), {
      mode: 'latency',
      calibration: { images, count: 16 },
      approximation: { maxPool: 'polynomial', degree: { relu: 4, abs: 6 } },
    }).program.instructions.filter((i) => i.layer === 'pool1');
    assert.equal(levelsOf(pool), 2 * levelsOf(small));
    assert.equal(pool.filter((i) => i.op === 'match_scale').length, 2);
    const sim = simulateProgram(program, images, 16);
    const poly = simulate(compiled, images, 16, { mode: 'polynomial' });
    assert.ok(rowRelativeError(sim, poly, 2) < 1e-9, `${rowRelativeError(sim, poly, 2)}`);
  });

  it('batch packing reduces clipped windows (padding) the simulator’s way too', () => {
    const images = seededValues(8 * 36, 39, 0, 1);
    const { program, model: compiled } = compileModel(wideMaxPoolModel(3, 2, 1), {
      mode: 'batch',
      calibration: { images, count: 8 },
      approximation: { maxPool: 'polynomial', degree: { relu: 4, abs: 6 } },
    });
    const sim = simulateProgram(program, images, 8);
    const poly = simulate(compiled, images, 8, { mode: 'polynomial' });
    assert.ok(rowRelativeError(sim, poly, 2) < 1e-9, `${rowRelativeError(sim, poly, 2)}`);
  });

  it('a convolution after a pooling puts channels in the grid gaps instead of doubling the period', () => {
    // conv1 writes 2 × 64 values (period 128); conv2's 3 channels on pool1's stride-2 grid would reach slot 191
    // in a block each: two share a block (offsets 0 and 1), so the period, and the images per ciphertext, stay.
    const plan = planLatencyLayouts(twoPoolModel(), 2 ** 15);
    assert.equal(plan.period, 128);
    const grids = [...plan.steps].map(([layer, step]) => [layer.kind, step.output.grid?.sub] as const);
    assert.deepEqual(
      grids.filter(([kind]) => kind === 'conv'),
      [
        ['conv', [0]],
        ['conv', [0, 1]],
      ],
    );
    for (const step of plan.steps.values()) {
      const slots = [...step.output.slots];
      assert.equal(new Set(slots).size, slots.length, 'one element per slot');
      assert.ok(Math.max(...slots) < 128);
    }
  });

  it('the first convolution copies its one-block input into every output block; a later one does not', () => {
    // conv1 reads the input (zero outside its 64 slots) and writes 2 channel blocks: one doubling, then a diagonal
    // per kernel offset (9) instead of one per (block, offset) (18). conv2 reads a pooling's output, which is not
    // zero between its slots (the max tree leaves values there): copying it would add them onto its neighbours.
    const plan = planLatencyLayouts(twoPoolModel(), 2 ** 15);
    const convs = [...plan.steps].filter(([layer]) => layer.kind === 'conv').map(([, step]) => step);
    assert.deepEqual(
      convs.map((step) => (step.kind === 'matrix' ? step.replicate : 'not a matrix')),
      [{ shift: 64, copies: 2 }, undefined],
    );
    const images = seededValues(16 * 64, 35, 0, 1);
    const { program, model } = compileModel(twoPoolModel(), {
      mode: 'latency',
      calibration: { images, count: 16 },
      approximation: { maxPool: 'polynomial', degree: { abs: 6 } },
    });
    // One plaintext diagonal per kernel offset that some channel weighs (the model's weights have zeros).
    const conv = model.layers[0];
    assert.ok(conv.kind === 'conv');
    const offsets = new Set<number>();
    conv.weight.forEach((w, index) => {
      if (w !== 0) offsets.add(index % 9);
    });
    const conv1 = program.instructions.filter((i) => i.layer === conv.name);
    assert.equal(
      conv1.filter((i) => i.op === 'mul_plain' || i.op === 'mul_plain_then_add').length,
      offsets.size,
    );
    assert.ok(offsets.size > 1);
  });

  it('replicateByDoubling makes copies 0 … c−1 exactly once, none past the last block', () => {
    for (let copies = 1; copies <= 40; copies++) {
      const { result, moves } = replicateByDoubling(
        [0],
        copies,
        (blocks, k) => blocks.map((b) => b + k),
        (a, b) => [...a, ...b],
      );
      assert.deepEqual(
        result.sort((a, b) => a - b),
        Array.from({ length: copies }, (_, i) => i),
        `copies ${copies}`,
      );
      assert.ok(moves <= 2 * Math.log2(copies) + 1e-9, `copies ${copies}: ${moves} moves`);
    }
  });

  it('a dense layer after two strided poolings gathers its input first: fewer diagonals, the same outputs', () => {
    // 8 channels of 4×4 after two 2×2 poolings sit every 4th slot of every 4th row of 16-slot rows, in blocks of
    // 256 slots: 128 inputs over 2,048 slots. Read there, a 128 → 10 dense layer has a diagonal for nearly every
    // (input, output) difference; gathered into 128 slots first, it has 137.
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 1, 16, 16]);
    const c1 = b.conv(x, {
      weight: seededValues(4 * 9, 51, -0.5, 0.5),
      weightDims: [4, 1, 3, 3],
      pads: [1, 1, 1, 1],
    });
    const s1 = b.node('Mul', [c1, c1])[0];
    const p1 = b.node('MaxPool', [s1], { kernel_shape: [2, 2], strides: [2, 2] })[0];
    const c2 = b.conv(p1, {
      weight: seededValues(8 * 4 * 9, 52, -0.5, 0.5),
      weightDims: [8, 4, 3, 3],
      pads: [1, 1, 1, 1],
    });
    const s2 = b.node('Mul', [c2, c2])[0];
    const p2 = b.node('MaxPool', [s2], { kernel_shape: [2, 2], strides: [2, 2] })[0];
    b.output(b.gemm(b.flatten(p2), { weight: seededValues(128 * 10, 53, -0.3, 0.3), weightDims: [128, 10] }));
    const model = importOnnx(b.toBytes());
    const count = 4;
    const images = seededValues(count * 256, 54, 0, 1);
    const { program, model: compiled } = compileModel(model, {
      mode: 'latency',
      calibration: { images, count },
      approximation: { maxPool: 'polynomial', degree: { abs: 6 } },
    });
    const plan = planLatencyLayouts(compiled, 2 ** 15);
    const gemm = compiled.layers.find((l) => l.kind === 'dense');
    assert.ok(gemm);
    const gather = plan.gathers.get(gemm);
    assert.ok(gather, 'the dense layer gathers its input');
    const gathered = [...gather.output.slots];
    assert.equal(new Set(gathered).size, 128, 'one input per slot');
    assert.ok(Math.max(...gathered) < 256, `gathered into ${Math.max(...gathered) + 1} slots`);
    const dense = program.instructions.filter((i) => i.layer === gemm.name && i.op === 'mul_plain').length;
    assert.ok(dense < 400, `${dense} diagonals (gather and dense)`);
    const sim = simulateProgram(program, images, count);
    const poly = simulate(compiled, images, count, { mode: 'polynomial' });
    assert.ok(rowRelativeError(sim, poly, 10) < 1e-9, `${rowRelativeError(sim, poly, 10)}`);
  });

  it('hybridRow: the first slot from the input slot on that is the output row modulo rows', () => {
    for (const rows of [1, 2, 8, 128])
      for (let i = 0; i < rows; i++)
        for (const j of [0, 1, 5, 127, 128, 845, 3000]) {
          const s = hybridRow(i, j, { rows, span: 4096 });
          assert.ok(s >= j && s - j < rows && s % rows === i, `rows ${rows}, i ${i}, j ${j}: slot ${s}`);
        }
  });

  it('a dense layer read only through a square by a dense layer uses the hybrid method: rows diagonals, the same outputs', () => {
    // 4 channels of 7×7 after a stride-2 convolution share one block of 256 slots, in the gaps of the strided grid:
    // 196 inputs spread over 256 slots. The 196 → 20 layer needs at most 32 diagonals (its rows rounded up) and
    // log2(256 / 32) = 3 rotations, with no gather, against 215 or more by the plain method; its partial sums stay
    // outside slots 0 … 19, which the square keeps and the last layer does not read. With a Relu in place of the
    // square it keeps the plain method.
    const build = (activation: 'square' | 'relu') => {
      const b = new OnnxBuilder();
      const x = b.input('x', ['N', 1, 16, 16]);
      const c = b.conv(x, {
        weight: seededValues(4 * 9, 61, -0.5, 0.5),
        weightDims: [4, 1, 3, 3],
        strides: [2, 2],
      });
      const h = b.gemm(b.flatten(b.square(c)), {
        weight: seededValues(196 * 20, 62, -0.2, 0.2),
        weightDims: [196, 20],
        bias: seededValues(20, 63, -0.5, 0.5),
      });
      const a = activation === 'square' ? b.square(h) : b.relu(h);
      b.output(b.gemm(a, { weight: seededValues(20 * 10, 64, -0.3, 0.3), weightDims: [20, 10] }));
      return importOnnx(b.toBytes());
    };
    const count = 4;
    const images = seededValues(count * 256, 65, 0, 1);
    for (const activation of ['square', 'relu'] as const) {
      const { program, model } = compileModel(build(activation), {
        mode: 'latency',
        calibration: { images, count },
        approximation: { degree: { relu: 4 } },
      });
      const plan = planLatencyLayouts(model, 2 ** 15);
      const [hidden, logits] = model.layers.filter((l) => l.kind === 'dense');
      const step = plan.steps.get(hidden);
      assert.ok(step?.kind === 'matrix');
      const diagonals = program.instructions.filter(
        (i) => i.layer === hidden.name && (i.op === 'mul_plain' || i.op === 'mul_plain_then_add'),
      ).length;
      if (activation === 'square') {
        assert.deepEqual(step.hybrid, { rows: 32, span: 256 });
        assert.equal(plan.gathers.get(hidden), undefined);
        assert.ok(diagonals <= 32, `${diagonals} diagonals`);
      } else {
        assert.equal(step.hybrid, undefined);
        assert.ok(diagonals > 32, `${diagonals} diagonals`);
      }
      assert.equal(
        (plan.steps.get(logits) as { hybrid?: unknown }).hybrid,
        undefined,
        'the output stays clean',
      );
      const sim = simulateProgram(program, images, count);
      const poly = simulate(model, images, count, { mode: 'polynomial' });
      assert.ok(rowRelativeError(sim, poly, 10) < 1e-9, `${activation}: ${rowRelativeError(sim, poly, 10)}`);
    }
  });

  it('refuses a polynomial MaxPool whose windows padding clips, naming the layer', () => {
    const b = new OnnxBuilder();
    b.node(
      'MaxPool',
      [b.input('x', ['N', 1, 4, 4])],
      { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1] },
      { name: 'clipped', outputs: ['y'] },
    );
    b.output('y');
    const images = seededValues(4 * 16, 35, 0, 1);
    assert.throws(
      () => compileModel(importOnnx(b.toBytes()), { mode: 'latency', calibration: { images, count: 4 } }),
      (e: unknown) => e instanceof UnsupportedModelError && /clipped.*unpadded windows/.test(e.message),
    );
  });
});

describe('compiler + executors on a model with Relu', () => {
  const model = reluModel();
  const count = 48;
  const images = seededValues(count * 36, 5, 0, 1);

  it('needs calibration data (or intervals) for the approximation', () => {
    assert.throws(
      () => compileModel(model),
      (e: unknown) => e instanceof InvalidArgumentError && /relu1.*calibration/.test(e.message),
    );
  });

  it('approximates Relu and reports it; the program simulator matches the layer simulator', () => {
    const {
      program,
      substitutions,
      model: compiled,
    } = compileModel(model, {
      calibration: { images, count },
      approximation: { degree: { relu: 7 } },
      batchSize: 64,
    });
    assert.equal(substitutions.length, 1);
    assert.equal(substitutions[0].op, 'Relu');
    assert.equal(substitutions[0].degree, 7);
    // Relu: Chebyshev basis (3) + sum (1), its affine map folded into the conv; conv 1; gemm 1.
    assert.equal(program.depth, 6);
    const sim = simulateProgram(program, images, count);
    const poly = simulate(compiled, images, count, { mode: 'polynomial' });
    assert.ok(rowRelativeError(sim, poly, 4) < 1e-9, 'program simulator = layer simulator (polynomial mode)');
  });

  it('rejects images of the wrong size, non-finite values and values outside the compiled range', () => {
    const { program } = compileModel(model, { calibration: { images, count } });
    assert.throws(
      () => checkImages(program, images.subarray(0, 35), 1),
      /images\.length = 35: expected 1 images × 36/,
    );
    const bad = Float64Array.from(images.subarray(0, 36));
    bad[7] = Number.NaN;
    assert.throws(() => simulateProgram(program, bad, 1), /image 0 element 7 = NaN/);
    bad[7] = 255;
    assert.throws(
      () => checkImages(program, bad, 1),
      (e: unknown) => e instanceof InvalidArgumentError && /outside the input range/.test(e.message),
    );
  });

  it('rejects corrupted ONNX with a typed error', () => {
    const b = new OnnxBuilder();
    b.output(b.node('Relu', [b.input('x', ['N', 4])])[0]);
    const bytes = b.toBytes();
    for (const cut of [1, 7, Math.floor(bytes.length / 2)]) {
      assert.throws(() => importOnnx(bytes.subarray(0, bytes.length - cut)), HomeError);
    }
    assert.throws(() => importOnnx(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])), HomeError);
  });
});

/** `n` non-zero weights of magnitude ≤ `scale` (every weight counts in the size estimates). */
function denseWeights(n: number, scale: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => scale * Math.sin(i + 1));
}

/** Conv 3→32 (3×3) then conv 32→64 on 32×32 images: batch packing needs far over 5 million instructions. */
function wideCnn() {
  const b = new OnnxBuilder();
  const x = b.input('x', ['N', 3, 32, 32]);
  const c1 = b.conv(x, { weight: denseWeights(32 * 27, 0.3), weightDims: [32, 3, 3, 3] });
  b.output(b.conv(c1, { weight: denseWeights(64 * 288, 0.1), weightDims: [64, 32, 3, 3] }));
  return importOnnx(b.toBytes());
}

/** Conv 1→32 (3×3) on 28×28, then a 21,632 → 10 dense layer: 21,641 plaintext diagonals of 32,768 slots. */
function wideDense() {
  const b = new OnnxBuilder();
  const x = b.input('x', ['N', 1, 28, 28]);
  const c = b.conv(x, { weight: denseWeights(32 * 9, 0.3), weightDims: [32, 1, 3, 3] });
  b.output(b.gemm(b.flatten(c), { weight: denseWeights(21632 * 10, 0.01), weightDims: [21632, 10] }));
  return importOnnx(b.toBytes());
}

describe('resource limits (a ResourceError naming the layer, the figure and the limit, before allocating)', () => {
  const isResource = (pattern: RegExp) => (e: unknown) =>
    e instanceof ResourceError && pattern.test(e.message);

  it('instructions: batch packing of a wide CNN stops on the up-front estimate at the default limit', () => {
    const started = performance.now();
    assert.throws(
      () => compileModel(wideCnn()),
      isResource(
        /batch packing\): layer '[^']+' \(conv.*brings the program to about [\d,]+ instructions, .*14,450,688 multiply-adds into 50,176 ciphertexts.*over the limit of 5,000,000 \(limits\.instructions/,
      ),
    );
    // The estimate walks the weights once; the emission it prevents would take minutes and abort V8.
    assert.ok(performance.now() - started < 30_000);
  });

  it('constants: latency packing of a 21,632 → 10 dense layer stops on its plaintext diagonals', () => {
    // 23,520 diagonals of at most 10 distinct entries each, stored by palette as (slot, code) entries: 11 bytes
    // an entry, 2,379,520 bytes of its own (dense float64 diagonals would be 6.2 GB), over a limit of 2,000,000.
    assert.throws(
      () => compileModel(wideDense(), { mode: 'latency', limits: { constantBytes: 2_000_000 } }),
      isResource(
        /latency packing\): layer '[^']+' \(dense.*constants to [\d,]+ bytes .*2,379,520 of them its own \(23,520 diagonals of 32,768 slots\).*over the limit of 2,000,000 \(limits\.constantBytes\)/,
      ),
    );
  });

  it('slots: latency packing needs a period that fits the largest ring', () => {
    const b = new OnnxBuilder();
    b.output(b.gemm(b.input('x', ['N', 2]), { weight: denseWeights(2 * 5000, 1), weightDims: [2, 5000] }));
    assert.throws(
      () => compileModel(importOnnx(b.toBytes()), { mode: 'latency', maxLogN: 13 }),
      isResource(
        /layer '[^']+' \(dense.*5,000 values.*period of 8,192 slots, more than the 4,096 slots of logN ≤ 13/,
      ),
    );
  });

  it('memory: batch packing whose live ciphertexts exceed limits.memoryBytes', () => {
    const model = reluModel();
    const images = seededValues(16 * 36, 5, 0, 1);
    const options = { calibration: { images, count: 16 }, approximation: { degree: { relu: 7 } } };
    const { resources } = compileModel(model, options);
    assert.ok(resources.peakCiphertextBytes > 0 && resources.serverBytes >= resources.peakCiphertextBytes);
    assert.equal(resources.plaintextBytes, 0);
    assert.throws(
      () => compileModel(model, { ...options, limits: { memoryBytes: resources.serverBytes - 1 } }),
      isResource(
        /batch packing, logN \d+, depth \d+\): at layer '[^']+'.*server would hold [\d.]+ GiB at once — live ciphertexts.*limits\.memoryBytes/,
      ),
    );
    assert.throws(
      () => compileModel(model, { ...options, limits: { instructions: 0 } }),
      InvalidArgumentError,
    );
  });

  it('latency plaintexts: encoded on use when they would not fit, an error when that is refused', () => {
    const model = reluModel();
    const images = seededValues(16 * 36, 5, 0, 1);
    const options = {
      mode: 'latency' as const,
      calibration: { images, count: 16 },
      approximation: { degree: { relu: 7 } },
    };
    const resident = compileModel(model, options);
    assert.equal(resident.resources.lazyPlaintexts, false);
    assert.ok(resident.program.plaintexts.every((p) => p.encodeOnUse === undefined));
    const { plaintextBytes, serverBytes } = resident.resources;
    assert.ok(plaintextBytes > 0);
    // Room for everything but all plaintexts at once: 'auto' encodes them on use.
    const limits = { memoryBytes: serverBytes - 1 };
    const lazy = compileModel(model, { ...options, limits });
    assert.equal(lazy.resources.lazyPlaintexts, true);
    assert.ok(lazy.program.plaintexts.every((p) => p.encodeOnUse === true));
    assert.ok(lazy.resources.serverBytes < serverBytes);
    assert.equal(programFootprint(lazy.program).residentPlaintextBytes, 0);
    assert.ok(programFootprint(lazy.program).peakBytes < programFootprint(resident.program).peakBytes);
    // Same instructions and constants: only where the server keeps the plaintexts changes.
    assert.deepEqual(lazy.program.instructions, resident.program.instructions);
    assert.deepEqual(lazy.program.constants, resident.program.constants);
    assert.throws(
      () => compileModel(model, { ...options, limits, lazyPlaintexts: false }),
      isResource(
        /latency packing.*plaintext weights [\d.]+ GiB \(.* in layer '[^']+'\).*limits\.memoryBytes.*lazyPlaintexts/,
      ),
    );
    assert.throws(
      () => compileModel(model, { ...options, limits: { memoryBytes: lazy.resources.serverBytes - 1 } }),
      isResource(/plaintext weights encoded on use/),
    );
  });
});

describe('public surface', () => {
  it('index.ts offers compileModel, checkDepthBound, chooseParameters and DEFAULT_COMPILE_LIMITS; the helpers stay internal', async () => {
    const surface = Object.keys(await import('./index.ts')).sort();
    assert.deepEqual(surface, [
      'DEFAULT_COMPILE_LIMITS',
      'checkDepthBound',
      'chooseParameters',
      'compileModel',
    ]);
  });
});

describe('linear layers in batch packing: a block of rows per mul_matrix, within limits.stepBytes', () => {
  const model = importOnnx(readFileSync(findModelFile('cryptonets-mnist.onnx')));
  const count = 8;
  const images = seededValues(count * 784, 41, 0, 1);
  const matrices = (program: HeProgram, layer: string) =>
    program.instructions.filter((i) => i.op === 'mul_matrix' && i.layer === layer);
  const { program } = compileModel(model, { mode: 'batch', batchSize: count });
  const reference = simulateProgram(program, images, count);

  it('CryptoNets: one block per position of the convolution (5 channels) and one per dense layer', () => {
    const conv = matrices(program, 'conv1');
    assert.equal(conv.length, 169);
    assert.ok(conv.every((i) => i.rows === 5 && i.args.length <= 25));
    assert.deepEqual(
      matrices(program, 'fc1').map((i) => [i.rows, i.args.length]),
      [[100, 845]],
    );
    assert.equal(opCounts(program).mul_then_add ?? 0, 0);
  });

  it('splits the rows where a step may hold fewer values, and falls back to multiply-adds where one row does not fit', () => {
    const bytes = matrices(program, 'fc1')[0].bytes.args[0];
    const grouped = compileModel(model, {
      mode: 'batch',
      batchSize: count,
      limits: { stepBytes: 900 * bytes },
    });
    const rows = matrices(grouped.program, 'fc1').map((i) => i.rows);
    assert.deepEqual(rows, [55, 45]);
    const fallback = compileModel(model, {
      mode: 'batch',
      batchSize: count,
      limits: { stepBytes: 300 * bytes },
    });
    assert.equal(matrices(fallback.program, 'fc1').length, 0);
    assert.ok(fallback.program.instructions.some((i) => i.op === 'mul_then_add' && i.layer === 'fc1'));
    for (const p of [grouped.program, fallback.program]) {
      for (const ins of p.instructions) {
        const held = ins.bytes.args.reduce((a, b) => a + b, 0) + ins.out.length * ins.bytes.out;
        if (ins.op === 'mul_matrix' && ins.layer === 'fc1') assert.ok(held <= 900 * bytes);
      }
      assert.ok(rowRelativeError(simulateProgram(p, images, count), reference, 10) < 1e-9);
    }
  });
});
