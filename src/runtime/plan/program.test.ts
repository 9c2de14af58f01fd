import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../util/errors.ts';
import type { AccessProgram } from '../../program/access.ts';
import { analyzeProgram, renumberSteps, stepComputeNs } from './program.ts';

const objects: AccessProgram['objects'] = [
  { id: 'x', bytes: 100, kind: 'input', readOnly: true },
  { id: 'w', bytes: 50, kind: 'plaintext', readOnly: true },
  { id: 't', bytes: 100, kind: 'intermediate', readOnly: false },
  { id: 'y', bytes: 100, kind: 'output', readOnly: false },
];

function program(steps: Omit<AccessProgram['steps'][number], 'index'>[]): AccessProgram {
  return { name: 'p', objects, steps: steps.map((s, index) => ({ ...s, index })) };
}

test('analysis finds initial objects, next uses and dead contents', () => {
  const p = program([
    { op: 'mul_plain', reads: ['x', 'w'], writes: ['t'] },
    { op: 'add', reads: ['t', 'x'], writes: ['t'] },
    { op: 'mul_plain', reads: ['t', 'w'], writes: ['y'] },
    { op: 'mul_const', reads: ['x'], writes: ['t'] },
  ]);
  const a = analyzeProgram(p);
  assert.deepEqual([...a.initial].sort(), ['w', 'x']);
  assert.deepEqual(a.nextUse('w', 0), { step: 2, needsContent: true });
  assert.deepEqual(
    a.nextUse('t', 2),
    { step: 3, needsContent: false },
    'step 3 overwrites t without reading it',
  );
  assert.equal(a.contentLiveAfter('t', 2), false);
  assert.equal(a.contentLiveAfter('t', 3), false, 'never read again');
  assert.deepEqual(a.nextUse('y', 2), { step: 4, needsContent: true }, 'outputs are read after the run');
  assert.equal(a.nextUse('w', 2).step, Infinity);
  assert.equal(a.initialBytes, 150);
  assert.equal(a.maxStepBytes, 250);
  assert.equal(a.peakLiveProducedBytes, 200);
});

test('invalid programs are rejected with the bad step named', () => {
  assert.throws(
    () => analyzeProgram(program([{ op: 'add', reads: ['t'], writes: ['y'] }])),
    (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.match(e.message, /step 0 reads "t" \(kind intermediate\) before any step wrote it/);
      return true;
    },
  );
  assert.throws(
    () => analyzeProgram(program([{ op: 'add', reads: ['x'], writes: ['w'] }])),
    /writes "w": expected no writes to a read-only/,
  );
  assert.throws(
    () => analyzeProgram(program([{ op: 'add', reads: ['nope'], writes: ['y'] }])),
    /reads "nope"/,
  );
  assert.throws(
    () => analyzeProgram(program([{ op: 'add', reads: ['x'], writes: ['y'], frees: ['y'] }])),
    /frees output "y"/,
  );
  assert.throws(
    () =>
      analyzeProgram(
        program([
          { op: 'add', reads: ['x'], writes: ['t'], frees: ['t'] },
          { op: 'sub', reads: ['t'], writes: ['y'] },
        ]),
      ),
    /since it was freed/,
  );
  assert.throws(
    () => analyzeProgram({ ...program([]), steps: [{ index: 3, op: 'add', reads: [], writes: [] }] }),
    /index = 3/,
  );
});

test('compute cost falls back to modular multiplies', () => {
  assert.equal(stepComputeNs({ index: 0, op: 'add', reads: [], writes: [], computeCostNs: 7 }), 7);
  assert.equal(stepComputeNs({ index: 0, op: 'add', reads: [], writes: [], modularMultiplies: 10 }, 0.5), 5);
  assert.equal(stepComputeNs({ index: 0, op: 'add', reads: [], writes: [] }), 0);
  assert.deepEqual(
    renumberSteps([
      { index: 5, op: 'add', reads: [], writes: [] },
      { index: 2, op: 'sub', reads: [], writes: [] },
    ]).map((s) => s.index),
    [0, 1],
  );
});

test('per-step operands and departures: dead contents and frees leave after their step', () => {
  const p = program([
    { op: 'mul_plain', reads: ['x', 'w', 'x'], writes: ['t'] },
    { op: 'add', reads: ['t', 'w'], writes: ['y'], frees: ['t'] },
    { op: 'square', reads: ['y'], writes: ['y'] },
  ]);
  const a = analyzeProgram(p);
  assert.deepEqual(a.operandsOf(0), ['x', 'w', 't']);
  assert.deepEqual(a.departuresAfter(0), ['x']);
  assert.deepEqual(a.operandsOf(1), ['t', 'w', 'y']);
  assert.deepEqual([...a.departuresAfter(1)].sort(), ['t', 'w']);
  // The output's contents are read by the caller after the last step.
  assert.deepEqual(a.departuresAfter(2), []);
});
