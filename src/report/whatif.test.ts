import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEVICE_PROFILES, scaleBandwidth } from '../runtime/store/devices.ts';
import { simulate } from '../runtime/plan/planner.ts';
import { analyzeProgram } from '../runtime/plan/program.ts';
import { deepCnnProgram } from '../../bench/workloads/synthetic.ts';
import { scaleCompute, whatIf, whatIfReplanned } from './whatif.ts';

const program = deepCnnProgram({ layers: 6, channels: 3 });
const budget = Math.floor(analyzeProgram(program).totalBytes / 8);

test('what-if replays the recorded plan: speed-up 1 on the run’s own device reproduces the run', async () => {
  const run = simulate(program, { policy: 'home', dramBudgetBytes: budget, slow: 'nvme-gen4' });
  const report = whatIf(run, { devices: ['nvme-gen4'], speedups: [1] });
  assert.equal(report.baselineTotalNs, run.summary.totalNs);
  assert.equal(report.predictions[0].totalNs, run.summary.totalNs);
  assert.deepEqual(whatIf(run, { devices: ['nvme-gen4'], speedups: [1] }), report, 'deterministic');
});

test('faster compute raises the stall; faster devices become the bottleneck later', async () => {
  const run = simulate(program, { policy: 'home', dramBudgetBytes: budget, slow: 'nvme-gen4' });
  const report = whatIf(run, { speedups: [1, 10, 100], stallThreshold: 0.05 });
  for (const device of Object.keys(DEVICE_PROFILES)) {
    const stalls = report.predictions.filter((p) => p.device === device).map((p) => p.stallFraction);
    assert.equal(stalls.length, 3);
    assert.ok(stalls[0] <= stalls[1] + 1e-12 && stalls[1] <= stalls[2] + 1e-12, `${device}: ${stalls}`);
  }
  const at = (d: string) => report.bottlenecks.find((b) => b.device === d)!.speedup ?? Infinity;
  assert.ok(at('nvme-gen4') <= at('nvme-gen5'));
  assert.ok(at('nvme-gen5') <= at('optane-appdirect'));
  assert.ok(at('nvme-gen4') > 1, 'at today’s speed the NVMe tier keeps up (prefetch hides it)');
  const bound = report.predictions.find((p) => p.device === 'nvme-gen4' && p.speedup === 100)!;
  assert.ok(bound.slowTierBound);
  assert.ok(report.findings.some((f) => f.startsWith('nvme-gen4: becomes the bottleneck')));
  if (bound.bandwidthToRemoveStallGBps !== null) {
    // Replaying at the reported bandwidth brings the stall to the threshold.
    const factor = bound.bandwidthToRemoveStallGBps / DEVICE_PROFILES['nvme-gen4'].readBytesPerNs;
    const check = whatIf(run, {
      devices: [scaleBandwidth(DEVICE_PROFILES['nvme-gen4'], factor * 1.0001)],
      speedups: [100],
    });
    assert.ok(check.predictions[0].stallFraction <= 0.05);
    assert.ok(bound.bandwidthToRemoveStallGBps >= bound.averageReadGBps * 0.5);
  }
});

test('re-planned what-if re-simulates each configuration and agrees with the recorded run at speed-up 1', async () => {
  const config = { policy: 'home', dramBudgetBytes: budget } as const;
  const run = simulate(program, { ...config, slow: 'nvme-gen4' });
  const report = await whatIfReplanned(program, config, {
    devices: ['nvme-gen4'],
    speedups: [1, 100],
    maxSpeedup: 200,
  });
  assert.equal(report.plan, 'replanned');
  assert.equal(report.predictions[0].totalNs, run.summary.totalNs);
  assert.ok(report.predictions[1].stallFraction > report.predictions[0].stallFraction);
  const scaled = scaleCompute(program, 0.5);
  assert.equal(scaled.steps[3].computeCostNs, (program.steps[3].computeCostNs ?? 0) * 0.5);
});
