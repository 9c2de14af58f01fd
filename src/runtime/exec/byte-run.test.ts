import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FormatError, ResourceError } from '../../util/errors.ts';
import { HomePolicy, LruPolicy } from '../plan/policy.ts';
import type { AccessProgram } from '../../program/access.ts';
import { randomProgram } from '../../../bench/workloads/synthetic.ts';
import { DEVICE_PROFILES } from '../store/devices.ts';
import { FileTier, HEADER_BYTES } from '../store/file-tier.ts';
import { runByteProgram, syntheticCompute } from './byte-run.ts';

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'home-byte-run-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function dir(name: string): Promise<string> {
  const path = join(root, name);
  await mkdir(path, { recursive: true });
  return path;
}

test('a missing tier directory or a tier without room fails before the first step', async () => {
  const program = randomProgram(3, { steps: 20 });
  let steps = 0;
  const compute = () => {
    steps++;
  };
  const gone = await dir('gone');
  const tier = await FileTier.open({ name: 'nvme0', dir: gone });
  await rm(gone, { recursive: true });
  await assert.rejects(
    runByteProgram({ program, policy: new HomePolicy(), dramBudgetBytes: 1 << 20, tiers: [tier], compute }),
    (e: unknown) => {
      assert.ok(e instanceof ResourceError);
      assert.match(e.message, /slow tier nvme0: directory .*gone is not accessible/);
      return true;
    },
  );
  const small = await dir('small');
  const tiny = await FileTier.open({ name: 'tiny', dir: small, capacityBytes: 1000 });
  await assert.rejects(
    runByteProgram({ program, policy: new HomePolicy(), dramBudgetBytes: 1 << 20, tiers: [tiny], compute }),
    /may need \d+ bytes in slow tiers/,
  );
  assert.deepEqual(await readdir(small), [], 'nothing was written');
  await assert.rejects(
    runByteProgram({ program, policy: new LruPolicy(), dramBudgetBytes: 1 << 20, arenaBytes: 100, compute }),
    /largest step needs \d+ bytes in arena/,
  );
  assert.equal(steps, 0, 'no step ran');
});

test('operands reach compute, the plan and the execution carry their clocks, corruption surfaces with the object id', async () => {
  const objects: AccessProgram['objects'] = [
    { id: 'a', bytes: 5000, kind: 'input', readOnly: true },
    { id: 'b', bytes: 7000, kind: 'plaintext', readOnly: true },
    { id: 't', bytes: 5000, kind: 'intermediate', readOnly: false },
    { id: 'y', bytes: 5000, kind: 'output', readOnly: false },
  ];
  const program: AccessProgram = {
    name: 'two-steps',
    objects,
    steps: [
      { index: 0, op: 'mul_plain', layer: 'l0', reads: ['a'], writes: ['t'], computeCostNs: 1e5 },
      { index: 1, op: 'add', layer: 'l1', reads: ['b', 't'], writes: ['y'], computeCostNs: 1e5 },
    ],
  };
  const tier = await FileTier.open({
    name: 'disk',
    dir: await dir('ok'),
    emulate: DEVICE_PROFILES['nvme-gen5'],
  });
  const seen: string[] = [];
  const result = await runByteProgram({
    program,
    policy: new HomePolicy(),
    dramBudgetBytes: 20_000,
    arenaBytes: 17_000,
    tiers: [tier],
    warmStart: false,
    compute: (step, io) => {
      for (const id of step.reads) seen.push(`${id}:${io.read(id).length}`);
      syntheticCompute(step, io);
    },
  });
  assert.deepEqual(seen, ['a:5000', 'b:7000', 't:5000']);
  assert.equal(result.plan.run.steps.length, 2);
  assert.ok(result.plan.run.steps.every((s) => s.virtualEndNs > s.virtualStartNs));
  assert.deepEqual(
    result.execution.steps.map((s) => s.index),
    [0, 1],
  );
  assert.ok(result.execution.steps.every((s) => s.computeNs >= 0 && s.startNs >= 0));
  assert.equal(result.summary.mode, 'real');
  assert.equal(result.summary.virtualTotalNs, result.plan.run.summary.totalNs);
  assert.equal(result.summary.slowBytesRead, 12_000, 'a and b loaded once');
  assert.equal(result.outputs.get('y')?.length, 5000);
  await tier.close();

  // Damage b's file while step 0 computes: step 1's load must fail naming b.
  const badTier = await FileTier.open({ name: 'disk', dir: await dir('bad') });
  const run = runByteProgram({
    program,
    policy: new LruPolicy(),
    dramBudgetBytes: 20_000,
    tiers: [badTier],
    warmStart: false,
    compute: (step, io) => {
      if (step.index === 0) {
        const bytes = readFileSync(badTier.pathOf('b'));
        bytes[HEADER_BYTES + 100] ^= 0xff;
        writeFileSync(badTier.pathOf('b'), bytes);
      }
      syntheticCompute(step, io);
    },
  });
  await assert.rejects(run, (e: unknown) => e instanceof FormatError && /object "b"/.test(e.message));
  await badTier.close();
});
