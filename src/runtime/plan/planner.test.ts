import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { compileModel } from '../../nn/compile/index.ts';
import { findModelFile } from '../../platform/bundled-files.ts';
import { importOnnx } from '../../nn/onnx/import.ts';
import { heRuntimeProgram, realRunHomePolicy } from '../he/program.ts';
import { DEVICE_PROFILES } from '../store/devices.ts';
import { VirtualTier } from '../store/virtual-tier.ts';
import {
  cryptoNetsProgram,
  deepCnnProgram,
  interleavedModelsProgram,
  randomProgram,
} from '../../../bench/workloads/synthetic.ts';
import { type PlanOptions, planProgram, simulate } from './planner.ts';
import { HomePolicy, LruPolicy } from './policy.ts';
import type { AccessProgram } from '../../program/access.ts';
import { analyzeProgram } from './program.ts';
import type { RunResult } from './run-result.ts';
import { replayActions } from './timeline.ts';

function stripWall(result: RunResult) {
  const { wallNs: _wall, ...summary } = result.summary;
  return { summary, steps: result.steps, times: result.actions.map((a) => [a.startNs, a.endNs]) };
}

test('the virtual clock is deterministic and its action log replays to the same times', () => {
  const program = cryptoNetsProgram({ imageSide: 16, hidden: 20 });
  const budget = analyzeProgram(program).totalBytes / 6;
  const config = {
    policy: 'home',
    dramBudgetBytes: budget,
    arenaBytes: budget / 3,
    slow: 'nvme-gen4',
  } as const;
  const a = simulate(program, config);
  const b = simulate(program, config);
  assert.deepEqual(stripWall(a), stripWall(b));
  const ends = replayActions(a.actions, { devices: a.devices });
  assert.deepEqual(
    [...ends],
    a.actions.map((x) => x.endNs),
  );
  assert.ok(
    a.summary.slowBytesMoved > 0 && a.summary.moved.arena.written > 0,
    'the run moved data through all tiers',
  );
});

test('a program 8× larger than DRAM runs with HomE within 1.10× of unlimited on optane-appdirect', (t) => {
  for (const program of [deepCnnProgram(), cryptoNetsProgram()]) {
    const analysis = analyzeProgram(program);
    const budget = Math.floor(analysis.totalBytes / 8);
    assert.ok(budget >= analysis.maxStepBytes);
    const unlimited = simulate(program, { policy: 'home', dramBudgetBytes: Infinity, slow: null });
    const home = simulate(program, {
      policy: 'home',
      dramBudgetBytes: budget,
      slow: 'optane-appdirect',
    });
    const lru = simulate(program, { policy: 'lru', dramBudgetBytes: budget, slow: 'optane-appdirect' });
    const ratio = home.summary.totalNs / unlimited.summary.totalNs;
    const lruRatio = lru.summary.totalNs / unlimited.summary.totalNs;
    t.diagnostic(
      `${program.name}: ${(analysis.totalBytes / 1e9).toFixed(2)} GB of objects, DRAM ${(budget / 1e6).toFixed(0)} MB; ` +
        `time vs unlimited: HomE ${ratio.toFixed(3)}, LRU ${lruRatio.toFixed(3)}; slow-tier bytes HomE ` +
        `${(home.summary.slowBytesMoved / 1e6).toFixed(0)} MB, LRU ${(lru.summary.slowBytesMoved / 1e6).toFixed(0)} MB`,
    );
    assert.ok(home.summary.peakBytes.dram <= budget);
    assert.ok(ratio <= 1.1, `${program.name}: HomE at ${ratio}× unlimited`);
    assert.ok(home.summary.slowBytesMoved <= lru.summary.slowBytesMoved);
  }
});

test('HomE prefetches a weight stream as deep as its lookahead while short-lived intermediates come and go', () => {
  // Step i multiplies weight w_i into an accumulator that lives one step: each step allocates 1 MiB and frees
  // 1 MiB. Counting every future allocation without the frees would cap the lead at about half the arena.
  const mib = 2 ** 20;
  const n = 400;
  const objects: AccessProgram['objects'] = [{ id: 'acc0', bytes: mib, kind: 'ciphertext', readOnly: false }];
  const steps: AccessProgram['steps'] = [];
  for (let i = 0; i < n; i++) {
    objects.push({ id: `w${i}`, bytes: mib, kind: 'plaintext', readOnly: true });
    objects.push({
      id: `acc${i + 1}`,
      bytes: mib,
      kind: i + 1 === n ? 'output' : 'intermediate',
      readOnly: false,
    });
    steps.push({
      index: i,
      op: 'mul_plain',
      reads: [`acc${i}`, `w${i}`],
      writes: [`acc${i + 1}`],
      frees: [`acc${i}`],
      computeCostNs: 1e6,
    });
  }
  const lookahead = 64;
  const policy = new HomePolicy({ lookahead, minLookaheadSteps: lookahead, prefetchBudgetFraction: 1 });
  const run = simulate(
    { name: 'stream', objects, steps },
    { policy, dramBudgetBytes: 112 * mib, arenaBytes: 96 * mib, slow: 'nvme-gen4', warmStart: false },
  );
  const leads = run.actions
    .filter((a) => a.kind === 'load' && a.id?.startsWith('w') && a.step > 0)
    .map((a) => Number(a.id!.slice(1)) - a.step);
  assert.equal(leads.length, n - lookahead - 1, 'every weight past the first window is prefetched once');
  assert.equal(Math.min(...leads), lookahead, `prefetch leads ${Math.min(...leads)}..${Math.max(...leads)}`);
  assert.ok(run.summary.peakBytes.arena <= 96 * mib, `arena peak ${run.summary.peakBytes.arena}`);
});

/** Everything a plan determines, without the wall-clock times of planning itself. */
function planned(options: PlanOptions, program: AccessProgram) {
  const plan = planProgram(program, options);
  const { wallNs: _wall, ...summary } = plan.run.summary;
  return {
    actions: plan.actions,
    initial: [...plan.initial],
    computeLevel: plan.computeLevel,
    slowPeakBytes: plan.slowPeakBytes,
    summary,
    steps: plan.run.steps,
  };
}

test('with unlimited memory the one-pass plan equals the general planner’s, action for action', (t) => {
  const programs: AccessProgram[] = [
    cryptoNetsProgram({ imageSide: 12, hidden: 10 }),
    cryptoNetsProgram({ imageSide: 12, hidden: 8, frees: 'last-use' }),
    deepCnnProgram({ layers: 3, channels: 2, frees: 'none' }),
    interleavedModelsProgram({ models: 3, requestsPerModel: 2 }),
    ...Array.from({ length: 12 }, (_, seed) => randomProgram(seed, { steps: 50 })),
  ];
  // A real HE runtime program: LoLa-Small in batch mode, reordered for locality.
  const lola = compileModel(importOnnx(readFileSync(findModelFile('lola-small-mnist.onnx'))), {
    mode: 'batch',
    batchSize: 8,
  }).program;
  programs.push(heRuntimeProgram(lola));
  let actions = 0;
  for (const program of programs) {
    for (const policy of [() => realRunHomePolicy(), () => new LruPolicy()]) {
      for (const layout of [
        { dramBudgetBytes: Infinity },
        { dramBudgetBytes: Infinity, arenaBytes: Infinity },
        { dramBudgetBytes: 1 << 20, arenaBytes: Infinity },
        { dramBudgetBytes: Infinity, tiers: [new VirtualTier('nvme', DEVICE_PROFILES['nvme-gen4'])] },
      ]) {
        const fast = planned({ policy: policy(), ...layout }, program);
        const general = planned({ policy: policy(), ...layout, fastPath: false }, program);
        assert.deepEqual(fast, general, `${program.name}, ${policy().name}, ${JSON.stringify(layout)}`);
        assert.ok(
          !fast.actions.some((a) => a.kind === 'load' || a.kind === 'writeback' || a.kind === 'copy'),
        );
        actions += fast.actions.length;
      }
    }
  }
  t.diagnostic(`${programs.length} programs, ${actions} actions compared`);
});

test('the one-pass plan of an all-in-memory run: decision, allocations, compute, releases per step', () => {
  const program: AccessProgram = {
    name: 'three-steps',
    objects: [
      { id: 'x', bytes: 100, kind: 'input', readOnly: true },
      { id: 't', bytes: 100, kind: 'intermediate', readOnly: false },
      { id: 'y', bytes: 100, kind: 'output', readOnly: false },
    ],
    steps: [
      { index: 0, op: 'square', reads: ['x'], writes: ['t'], computeCostNs: 10 },
      { index: 1, op: 'add', reads: ['t', 'x'], writes: ['y'], computeCostNs: 20 },
    ],
  };
  const plan = planProgram(program, { policy: new HomePolicy(), dramBudgetBytes: Infinity });
  assert.deepEqual([...plan.initial], [['x', { slowTier: -1, level: 'dram' }]]);
  assert.deepEqual(
    plan.actions.map((a) => [a.kind, a.id ?? '', a.deps]),
    [
      ['decision', '', []],
      ['alloc', 't', [0]],
      ['compute', '', [0, 1]],
      ['decision', '', [2]],
      ['alloc', 'y', [3]],
      ['compute', '', [3, 2, 4]],
      ['release', 't', [5]],
      ['release', 'x', [5]],
    ],
  );
  assert.equal(plan.run.summary.totalNs, 30);
  assert.equal(plan.run.summary.peakBytes.dram, 300);
});

test('a step with scratch finds it free in the compute level: neither demand nor prefetch takes it', () => {
  const base = cryptoNetsProgram({ imageSide: 16, hidden: 20 });
  const analysis = analyzeProgram(base);
  const budget = Math.floor(analysis.totalBytes / 6);
  const arenaBytes = Math.floor(budget / 3);
  // Every third step allocates a fifth of the arena while it runs (as a key switch does).
  const scratch = Math.floor(arenaBytes / 5);
  const program: AccessProgram = {
    ...base,
    steps: base.steps.map((step) => (step.index % 3 === 0 ? { ...step, scratchBytes: scratch } : step)),
  };
  const run = simulate(program, { policy: 'home', dramBudgetBytes: budget, arenaBytes, slow: 'nvme-gen4' });
  let binding = 0;
  for (const trace of run.steps) {
    const working = trace.workingBytes ?? Number.NaN;
    assert.ok(
      working <= arenaBytes,
      `step ${trace.index}: ${working} bytes in the arena, over its ${arenaBytes}`,
    );
    // Without the step's scratch the arena would have been fuller: prefetches stopped short of it.
    if (program.steps[trace.index].scratchBytes && working > arenaBytes - scratch) binding++;
  }
  assert.ok(binding > 0, 'the scratch reservation decided some step');
  // The largest step's working set counts its scratch.
  const withScratch = analyzeProgram(program);
  let largest = 0;
  for (const step of program.steps) {
    let bytes = step.scratchBytes ?? 0;
    for (const id of withScratch.operandsOf(step.index)) bytes += withScratch.bytesOf(id);
    largest = Math.max(largest, bytes);
  }
  assert.equal(withScratch.maxStepBytes, largest);
  assert.ok(withScratch.maxStepBytes > analysis.maxStepBytes);
});
