import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResourceError } from '../../util/errors.ts';
import { simulate } from './planner.ts';
import { optimalBytesMoved } from './optimal.ts';
import type { AccessProgram } from '../../program/access.ts';
import { analyzeProgram } from './program.ts';
import { randomProgram, syntheticPrng } from '../../../bench/workloads/synthetic.ts';

test('the exact solver finds the known optimum of a hand-made trace', () => {
  // a, b, c are 100-byte inputs, y a 1-byte accumulator; room for two inputs. Trace a b c a b: LRU misses all five
  // (500 bytes); the optimum loads a, b, evicts b at c (used later than a), hits a, reloads b: 400 bytes.
  const objects: AccessProgram['objects'] = ['a', 'b', 'c'].map((id) => ({
    id,
    bytes: 100,
    kind: 'input',
    readOnly: true,
  }));
  objects.push({ id: 'y', bytes: 1, kind: 'output', readOnly: false });
  const reads = ['a', 'b', 'c', 'a', 'b'];
  const program: AccessProgram = {
    name: 'abcab',
    objects,
    steps: reads.map((id, index) => ({
      index,
      op: 'add',
      reads: index === 0 ? [id] : [id, 'y'],
      writes: ['y'],
    })),
  };
  const best = optimalBytesMoved(program, 201);
  assert.equal(best.bytesRead, 400);
  assert.equal(best.bytesWritten, 0);
  assert.throws(() => optimalBytesMoved(program, 100), ResourceError);
});

test('dirty data costs a write unless it dies first', () => {
  const objects: AccessProgram['objects'] = [
    { id: 'x', bytes: 100, kind: 'input', readOnly: true },
    { id: 't', bytes: 100, kind: 'intermediate', readOnly: false },
    { id: 'u', bytes: 100, kind: 'intermediate', readOnly: false },
    { id: 'y', bytes: 100, kind: 'output', readOnly: false },
  ];
  const program: AccessProgram = {
    name: 'spill',
    objects,
    steps: [
      { index: 0, op: 'mul_const', reads: ['x'], writes: ['t'] },
      { index: 1, op: 'mul_const', reads: ['x'], writes: ['u'] },
      { index: 2, op: 'mul_ct', reads: ['u', 'x'], writes: ['y'] },
      { index: 3, op: 'add', reads: ['t', 'y'], writes: ['y'] },
    ],
  };
  // Capacity 300: at step 2 (x, u, y) one of t must leave; t is dirty and live: write 100 + read 100, plus x once.
  const best = optimalBytesMoved(program, 300);
  assert.deepEqual({ r: best.bytesRead, w: best.bytesWritten }, { r: 200, w: 100 });
});

test('HomE moves at least the optimum and stays within the reported distance of it on short traces', async (t) => {
  const prng = syntheticPrng(5);
  const ratios: Record<string, number[]> = { home: [], 'home-noprefetch': [], lru: [] };
  for (let seed = 0; seed < 120; seed++) {
    const program = randomProgram(seed, {
      steps: 6 + (seed % 7),
      initialObjects: 2 + (seed % 4),
      minBytes: 100,
      maxBytes: 1000,
    });
    const analysis = analyzeProgram(program);
    const capacity = analysis.maxStepBytes + Math.floor(prng.nextDouble() * analysis.maxStepBytes);
    const best = optimalBytesMoved(program, capacity);
    for (const policy of ['home', 'home-noprefetch', 'lru'] as const) {
      const run = simulate(program, {
        policy,
        dramBudgetBytes: capacity,
        slow: 'optane-appdirect',
        warmStart: false,
      });
      const moved = run.summary.slowBytesMoved;
      assert.ok(moved >= best.bytesMoved, `seed ${seed} ${policy}: ${moved} < optimum ${best.bytesMoved}`);
      ratios[policy].push(best.bytesMoved === 0 ? 1 : moved / best.bytesMoved);
    }
  }
  const stats = (list: number[]) => ({
    mean: list.reduce((a, b) => a + b, 0) / list.length,
    max: Math.max(...list),
    optimal: list.filter((r) => r === 1).length / list.length,
  });
  const home = stats(ratios.home);
  const exact = stats(ratios['home-noprefetch']);
  const lru = stats(ratios.lru);
  t.diagnostic(`bytes moved / optimum over 120 traces: home ${JSON.stringify(home)}`);
  t.diagnostic(`home-noprefetch ${JSON.stringify(exact)}; lru ${JSON.stringify(lru)}`);
  // The distance documented in the report: HomE averages within 10 % of optimal and at worst 3×; LRU is farther.
  assert.ok(home.mean <= 1.1, `home mean ratio ${home.mean}`);
  assert.ok(exact.mean <= 1.1, `home-noprefetch mean ratio ${exact.mean}`);
  assert.ok(home.max <= 3, `home worst ratio ${home.max}`);
  assert.ok(home.optimal >= 0.6, `home optimal on ${home.optimal} of traces`);
  assert.ok(lru.mean > home.mean);
});
