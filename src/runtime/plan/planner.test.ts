import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FormatError, ResourceError } from '../../util/errors.ts';
import { DEVICE_PROFILES } from '../store/devices.ts';
import { type RunResult, runProgram, simulate, syntheticCompute } from './planner.ts';
import { FileTier, HEADER_BYTES } from '../store/file-tier.ts';
import { HomePolicy, LruPolicy } from './policy.ts';
import { analyzeProgram, type Program } from './program.ts';
import { TieredStore } from './ledger.ts';
import { cryptoNetsProgram, deepCnnProgram, randomProgram } from '../synthetic.ts';
import { replayActions } from './timeline.ts';

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'home-exec-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function dir(name: string): Promise<string> {
  const path = join(root, name);
  await mkdir(path, { recursive: true });
  return path;
}

function stripWall(result: RunResult) {
  const { wallNs: _wall, ...summary } = result.summary;
  return { summary, steps: result.steps, times: result.actions.map((a) => [a.startNs, a.endNs]) };
}

test('the virtual clock is deterministic and its action log replays to the same times', async () => {
  const program = cryptoNetsProgram({ imageSide: 16, hidden: 20 });
  const budget = analyzeProgram(program).totalBytes / 6;
  const config = {
    policy: 'home',
    dramBudgetBytes: budget,
    arenaBytes: budget / 3,
    slow: 'nvme-gen4',
  } as const;
  const a = await simulate(program, config);
  const b = await simulate(program, config);
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

test('a program 8× larger than DRAM runs with HomE within 1.10× of unlimited on optane-appdirect', async (t) => {
  for (const program of [deepCnnProgram(), cryptoNetsProgram()]) {
    const analysis = analyzeProgram(program);
    const budget = Math.floor(analysis.totalBytes / 8);
    assert.ok(budget >= analysis.maxStepBytes);
    const unlimited = await simulate(program, { policy: 'home', dramBudgetBytes: Infinity, slow: null });
    const home = await simulate(program, {
      policy: 'home',
      dramBudgetBytes: budget,
      slow: 'optane-appdirect',
    });
    const lru = await simulate(program, { policy: 'lru', dramBudgetBytes: budget, slow: 'optane-appdirect' });
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

test('a missing tier directory or a tier without room fails before the first step', async () => {
  const program = randomProgram(3, { steps: 20 });
  const gone = await dir('gone');
  const tier = await FileTier.open({ name: 'nvme0', dir: gone });
  await rm(gone, { recursive: true });
  const store = new TieredStore({ mode: 'real', dramBudgetBytes: 1 << 20, slowTiers: [tier] });
  await assert.rejects(runProgram({ program, store, policy: new HomePolicy() }), (e: unknown) => {
    assert.ok(e instanceof ResourceError);
    assert.match(e.message, /slow tier nvme0: directory .*gone is not accessible/);
    return true;
  });
  assert.equal(store.actions.length, 0, 'nothing ran');
  const small = await dir('small');
  const tiny = await FileTier.open({ name: 'tiny', dir: small, capacityBytes: 1000 });
  const store2 = new TieredStore({ mode: 'real', dramBudgetBytes: 1 << 20, slowTiers: [tiny] });
  await assert.rejects(
    runProgram({ program, store: store2, policy: new HomePolicy() }),
    /may need \d+ bytes in slow tiers/,
  );
  assert.deepEqual(await readdir(small), [], 'nothing was written');
  const store3 = new TieredStore({
    mode: 'virtual',
    dramBudgetBytes: 1 << 20,
    arena: { capacityBytes: 100 },
  });
  await assert.rejects(
    runProgram({ program, store: store3, policy: new LruPolicy() }),
    /largest step needs \d+ bytes in arena/,
  );
});

test('real mode: operands reach compute, traces carry both clocks, corruption surfaces with the object id', async () => {
  const objects: Program['objects'] = [
    { id: 'a', bytes: 5000, kind: 'input', readOnly: true },
    { id: 'b', bytes: 7000, kind: 'plaintext', readOnly: true },
    { id: 't', bytes: 5000, kind: 'intermediate', readOnly: false },
    { id: 'y', bytes: 5000, kind: 'output', readOnly: false },
  ];
  const program: Program = {
    name: 'two-steps',
    objects,
    steps: [
      { index: 0, op: 'mul-plain', layer: 'l0', reads: ['a'], writes: ['t'], computeCostNs: 1e5 },
      { index: 1, op: 'add', layer: 'l1', reads: ['b', 't'], writes: ['y'], computeCostNs: 1e5 },
    ],
  };
  const tier = await FileTier.open({
    name: 'disk',
    dir: await dir('ok'),
    emulate: DEVICE_PROFILES['nvme-gen5'],
  });
  const store = new TieredStore({
    mode: 'real',
    dramBudgetBytes: 20_000,
    arena: { capacityBytes: 17_000 },
    slowTiers: [tier],
  });
  const seen: string[] = [];
  const result = await runProgram({
    program,
    store,
    policy: new HomePolicy(),
    warmStart: false,
    compute: (step, io) => {
      for (const id of step.reads) seen.push(`${id}:${io.read(id).length}`);
      syntheticCompute(step, io);
    },
  });
  assert.deepEqual(seen, ['a:5000', 'b:7000', 't:5000']);
  assert.equal(result.steps.length, 2);
  assert.ok(result.steps.every((s) => s.virtualEndNs > s.virtualStartNs && s.endNs >= s.startNs));
  assert.equal(result.summary.slowBytesRead, 12_000, 'a and b loaded once');
  assert.equal((await store.readObject('y')).length, 5000);
  await store.close();

  // Damage b's file while step 0 computes: step 1's load must fail naming b.
  const badTier = await FileTier.open({ name: 'disk', dir: await dir('bad') });
  const badStore = new TieredStore({ mode: 'real', dramBudgetBytes: 20_000, slowTiers: [badTier] });
  const run = runProgram({
    program,
    store: badStore,
    policy: new LruPolicy(),
    warmStart: false,
    compute: async (step, io) => {
      if (step.index === 0) {
        const bytes = await readFile(badTier.pathOf('b'));
        bytes[HEADER_BYTES + 100] ^= 0xff;
        await writeFile(badTier.pathOf('b'), bytes);
      }
      syntheticCompute(step, io);
    },
  });
  await assert.rejects(run, (e: unknown) => e instanceof FormatError && /object "b"/.test(e.message));
  await badStore.close();
});

test('HomE prefetches a weight stream as deep as its lookahead while short-lived intermediates come and go', async () => {
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
  const run = await simulate(
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
