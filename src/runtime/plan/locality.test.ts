import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { simulate } from './planner.ts';
import { scheduleForLocality } from './locality.ts';
import type { ObjectInfo, AccessProgram, AccessStep } from '../../program/access.ts';
import type { HeOp } from '../../program/ops.ts';
import { analyzeProgram } from './program.ts';

interface TaggedStep extends AccessStep {
  tag: number;
}

const KB = 1024;

/** Layers of accumulation chains (output-major, as the compiler emits dense layers), then a map per output. */
function chainsProgram(seed: number, layers: number[], fanIn: number, inputs: number): AccessProgram {
  let x = seed | 1;
  const rand = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const objects: ObjectInfo[] = [];
  const steps: TaggedStep[] = [];
  const step = (op: HeOp, reads: string[], writes: string[], frees?: string[]) => {
    const index = steps.length;
    steps.push({ index, op, reads, writes, ...(frees ? { frees } : {}), tag: index });
  };
  let previous = Array.from({ length: inputs }, (_, i) => `in${i}`);
  for (const id of previous) objects.push({ id, bytes: 64 * KB, kind: 'input', readOnly: true });
  layers.forEach((width, l) => {
    const next: string[] = [];
    for (let j = 0; j < width; j++) {
      const acc = `acc${l}.${j}`;
      const out = `y${l}.${j}`;
      objects.push({ id: acc, bytes: 64 * KB, kind: 'intermediate', readOnly: false });
      const kind = l === layers.length - 1 ? 'output' : 'intermediate';
      objects.push({ id: out, bytes: 32 * KB, kind, readOnly: false });
      const taps = Array.from(
        { length: Math.min(fanIn, previous.length) },
        () => previous[rand(previous.length)],
      );
      step('mul_const', [taps[0]], [acc]);
      for (const tap of taps.slice(1)) step('mul_then_add', [tap, acc], [acc]);
      step('rescale', [acc], [out], [acc]);
      next.push(out);
    }
    previous = next;
  });
  return { name: `chains-${seed}`, objects, steps };
}

/** Runs a program on 32-bit values: `mta` adds (commutes), every other op mixes its operands with its tag. */
function evaluate(program: AccessProgram): Map<string, number> {
  const values = new Map<string, number>();
  const mix = (a: number, b: number) => Math.imul(a ^ (b + 0x9e3779b9), 0x85ebca6b) ^ (a >>> 13);
  for (const o of program.objects)
    if (o.kind === 'input') values.set(o.id, mix(o.id.length, o.id.charCodeAt(2)));
  for (const step of program.steps as TaggedStep[]) {
    const read = (id: string) => {
      const v = values.get(id);
      assert.ok(v !== undefined, `${step.op} #${step.tag} reads ${id} before it exists`);
      return v;
    };
    if (step.op === 'mul_then_add') {
      const acc = step.writes[0];
      values.set(acc, (read(acc) + mix(read(step.reads[0]), step.tag)) >>> 0);
    } else {
      let h = step.tag;
      for (const id of step.reads) h = mix(h, read(id));
      values.set(step.writes[0], h >>> 0);
    }
    for (const id of step.frees ?? []) values.delete(id);
  }
  return values;
}

test('locality scheduling keeps every result: commutative updates reorder, everything else keeps its order (property)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1_000_000 }),
      fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 3 }),
      fc.integer({ min: 1, max: 7 }),
      fc.constantFrom(undefined, 256 * KB, 1024 * KB),
      (seed, layers, fanIn, cap) => {
        const program = chainsProgram(seed, layers, fanIn, 12);
        const reordered = scheduleForLocality(program, {
          commutativeOps: ['mul_then_add'],
          liveCapBytes: cap,
        });
        analyzeProgram(reordered);
        assert.equal(reordered.steps.length, program.steps.length);
        assert.deepEqual(
          [...new Set((reordered.steps as TaggedStep[]).map((s) => s.tag))].length,
          program.steps.length,
        );
        const before = evaluate(program);
        const after = evaluate(reordered);
        for (const o of program.objects)
          if (o.kind === 'output') assert.equal(after.get(o.id), before.get(o.id));
      },
    ),
    { seed: 4242, numRuns: 300 },
  );
});

test('without commutative ops only independent steps move: each object sees its reads and writes in order', () => {
  const program = chainsProgram(7, [6, 4], 5, 10);
  const reordered = scheduleForLocality(program);
  const touches = (p: AccessProgram) => {
    const map = new Map<string, number[]>();
    for (const s of p.steps as TaggedStep[]) {
      for (const id of new Set([...s.writes, ...(s.frees ?? [])])) {
        const list = map.get(id) ?? [];
        list.push(s.tag);
        map.set(id, list);
      }
    }
    return map;
  };
  assert.deepEqual(touches(reordered), touches(program));
});

test('a dense layer emitted output-major is interchanged: each input read once instead of once per output', async () => {
  // 32 outputs × 64 inputs: accumulators (32 × 64 KiB) fit the budget, the inputs (64 × 64 KiB) do not.
  const objects: ObjectInfo[] = [];
  const steps: AccessStep[] = [];
  for (let i = 0; i < 64; i++) objects.push({ id: `x${i}`, bytes: 64 * KB, kind: 'input', readOnly: true });
  for (let j = 0; j < 32; j++) {
    objects.push({ id: `a${j}`, bytes: 64 * KB, kind: 'output', readOnly: false });
    steps.push({
      index: steps.length,
      op: 'mul_const',
      reads: ['x0'],
      writes: [`a${j}`],
      computeCostNs: 1e4,
    });
    for (let i = 1; i < 64; i++) {
      steps.push({
        index: steps.length,
        op: 'mul_then_add',
        reads: [`x${i}`, `a${j}`],
        writes: [`a${j}`],
        computeCostNs: 1e4,
      });
    }
  }
  const program: AccessProgram = { name: 'dense', objects, steps };
  const reordered = scheduleForLocality(program, { commutativeOps: ['mul_then_add'] });
  const budget = 48 * 64 * KB;
  const read = async (p: AccessProgram) =>
    simulate(p, { policy: 'home', dramBudgetBytes: budget, slow: 'nvme-gen4', warmStart: false }).summary
      .slowBytesRead;
  const original = await read(program);
  const interchanged = await read(reordered);
  assert.ok(interchanged <= 64 * 64 * KB * 1.25, `interchanged reads ${interchanged} bytes`);
  assert.ok(original > 8 * interchanged, `original ${original} vs interchanged ${interchanged}`);
});
