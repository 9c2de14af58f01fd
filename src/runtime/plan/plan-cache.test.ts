import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { cryptoNetsProgram } from '../../../bench/workloads/synthetic.ts';
import { FormatError } from '../../util/errors.ts';
import { DEVICE_PROFILES } from '../store/devices.ts';
import { accessProgramDigest, PlanCache } from './plan-cache.ts';
import { decodePlan, encodePlan } from './plan-codec.ts';
import { type Plan, planProgram } from './planner.ts';
import { HomePolicy } from './policy.ts';
import { analyzeProgram } from './program.ts';

const dir = mkdtempSync(join(tmpdir(), 'home-plan-cache-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const program = cryptoNetsProgram({ imageSide: 12, hidden: 16 });
const budget = Math.floor(analyzeProgram(program).totalBytes / 5);
const plan: Plan = planProgram(program, {
  policy: new HomePolicy({ lookahead: 32 }),
  dramBudgetBytes: budget,
  arenaBytes: Math.floor(budget / 2),
  tiers: [
    { name: 'nvme', device: DEVICE_PROFILES['nvme-gen4'], capacityBytes: 1e12, objectOverheadBytes: 4096 },
  ],
});

describe('plan byte form', () => {
  it('round-trips every action, initial placement and figure the executor reads', () => {
    assert.ok(
      plan.actions.some((a) => a.kind === 'load') && plan.actions.some((a) => a.kind === 'writeback'),
    );
    const decoded = decodePlan(encodePlan(plan), program);
    assert.deepEqual(decoded.actions, plan.actions);
    assert.deepEqual([...decoded.initial], [...plan.initial]);
    assert.equal(decoded.computeLevel, plan.computeLevel);
    assert.deepEqual(decoded.slowPeakBytes, plan.slowPeakBytes);
    assert.deepEqual(decoded.run.summary, plan.run.summary);
    assert.equal(decoded.program, program);
  });

  it('refuses a plan of another program, a truncated or a corrupted file with a FormatError', () => {
    const bytes = encodePlan(plan);
    const other = cryptoNetsProgram({ imageSide: 10, hidden: 16 });
    assert.throws(
      () => decodePlan(bytes, other),
      (e: unknown) => e instanceof FormatError && /made for program/.test(e.message),
    );
    assert.throws(() => decodePlan(bytes.subarray(0, bytes.length - 1), program), /checksum mismatch/);
    const flipped = bytes.slice();
    flipped[bytes.length >> 1] ^= 1;
    assert.throws(() => decodePlan(flipped, program), /checksum mismatch/);
    const version = bytes.slice();
    version[8] = 99;
    assert.throws(() => decodePlan(version, program), /version 99/);
  });

  it('fuzz: any byte string decodes to a plan or throws a FormatError, nothing else', () => {
    const bytes = encodePlan(plan);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 256 }),
          fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
            const copy = bytes.slice();
            copy[at] ^= x;
            return copy;
          }),
          fc.nat(bytes.length).map((n) => bytes.slice(0, n)),
        ),
        (input) => {
          try {
            decodePlan(input, program);
          } catch (error) {
            assert.ok(error instanceof FormatError, String(error));
          }
        },
      ),
      { numRuns: 300, seed: 12 },
    );
  });
});

describe('plan cache', () => {
  const parts = {
    arenaBytes: Math.floor(budget / 2),
    dramPoolBytes: budget,
    policy: 'home/32',
    devices: 'nvme-gen4',
  };

  it('keys by program, memory split, policy and devices; stores, then loads the same plan', () => {
    const cache = new PlanCache(join(dir, 'a'));
    const key = cache.keyOf(program, parts);
    assert.equal(cache.load(key, program), undefined);
    assert.equal(cache.lastMiss, 'absent');
    assert.deepEqual(cache.store(key, plan), { ok: true });
    const loaded = cache.load(key, program);
    assert.ok(loaded);
    assert.deepEqual(loaded.actions, plan.actions);
    for (const change of [
      { arenaBytes: parts.arenaBytes + 1 },
      { policy: 'lru' },
      { devices: 'file' },
      { extra: 'seeded' },
    ]) {
      assert.notEqual(cache.keyOf(program, { ...parts, ...change }), key, JSON.stringify(change));
    }
    assert.notEqual(cache.keyOf(cryptoNetsProgram({ imageSide: 10, hidden: 16 }), parts), key);
    assert.equal(
      accessProgramDigest(program),
      accessProgramDigest(cryptoNetsProgram({ imageSide: 12, hidden: 16 })),
    );
  });

  it('a corrupted file is a miss that says why, and the next store replaces it', () => {
    const cache = new PlanCache(join(dir, 'b'));
    const key = cache.keyOf(program, parts);
    cache.store(key, plan);
    const path = join(cache.dir, key);
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, 100));
    assert.equal(cache.load(key, program), undefined);
    assert.match(cache.lastMiss ?? '', /checksum mismatch|shorter/);
    cache.store(key, plan);
    assert.ok(cache.load(key, program));
  });

  it('a folder it cannot write is reported, not thrown', () => {
    const file = join(dir, 'not-a-folder');
    writeFileSync(file, 'x');
    const result = new PlanCache(join(file, 'plans')).store('k.plan', plan);
    assert.equal(result.ok, false);
  });
});
