import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { scheduleKeyAware } from '../runtime/plan/policy.ts';
import { analyzeProgram } from '../runtime/plan/program.ts';
import {
  cryptoNetsProgram,
  deepCnnProgram,
  interleavedModelsProgram,
} from '../../bench/workloads/synthetic.ts';
import { type Characterization, characterize } from './characterize.ts';

test('characterize writes JSON, HTML with inline SVG charts, and PNGs', async () => {
  const out = await mkdtemp(join(tmpdir(), 'home-report-'));
  try {
    const deep = deepCnnProgram({ layers: 4, channels: 2 });
    const nets = cryptoNetsProgram({ imageSide: 12, hidden: 10 });
    const many = interleavedModelsProgram({ models: 4, requestsPerModel: 2 });
    const eighth = (p: typeof deep) => Math.floor(analyzeProgram(p).totalBytes / 8);
    const { files, report } = await characterize({
      outDir: out,
      workloads: [
        { name: 'deep', program: deep, dramBudgetBytes: eighth(deep) },
        {
          name: 'nets',
          program: nets,
          dramBudgetBytes: eighth(nets),
          arenaBytes: analyzeProgram(nets).maxStepBytes + (1 << 20),
        },
        { name: 'many-keyaware', program: scheduleKeyAware(many), dramBudgetBytes: eighth(many) },
      ],
      devices: ['optane-appdirect', 'nvme-gen4'],
      speedups: [1, 10],
      fileIoDir: out,
      fileIo: { objectBytes: 1 << 20, objects: 4 },
    });
    assert.equal(report.runs.length, 3 * 2 * 2);
    for (const run of report.runs) {
      assert.ok(run.timeVsUnlimited >= 1 - 1e-9, `${run.workload} ${run.policy} faster than unlimited?`);
      assert.ok(run.summary.peakBytes.dram <= run.summary.budgets.dram);
    }
    assert.equal(report.whatIf.length, 6, 'recorded-plan and re-planned what-ifs per workload');
    assert.deepEqual(new Set(report.whatIf.map((w) => w.plan)), new Set(['fixed', 'replanned']));
    assert.ok(report.fileIo && report.fileIo.readGBps > 0 && report.fileIo.crcGBps > 0);
    const json = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Characterization;
    assert.equal(json.runs.length, report.runs.length);
    const html = await readFile(join(out, 'report.html'), 'utf8');
    assert.ok(
      (html.match(/<svg/g) ?? []).length >= 8,
      'occupancy and per-layer charts per workload, plus summaries',
    );
    assert.match(html, /LRU vs HomE/);
    const pngs = files.filter((f) => f.endsWith('.png'));
    assert.equal(pngs.length, files.filter((f) => f.endsWith('.svg')).length);
    const png = await readFile(pngs[0]);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
