import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cryptoNetsProgram, deepCnnProgram } from '../synthetic.ts';
import { simulate } from './planner.ts';
import { HomePolicy } from './policy.ts';
import { analyzeProgram, type Program } from './program.ts';
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
  const objects: Program['objects'] = [{ id: 'acc0', bytes: mib, kind: 'ciphertext', readOnly: false }];
  const steps: Program['steps'] = [];
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
      op: 'mul-plain',
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
