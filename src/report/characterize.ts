import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { crc32c } from '../runtime/store/checksum.ts';
import { DEVICE_PROFILES, nowNs } from '../runtime/store/devices.ts';
import { simulate } from '../runtime/plan/planner.ts';
import { FileTier, type FileTierStats } from '../runtime/store/file-tier.ts';
import type { PolicyName } from '../runtime/plan/policy.ts';
import type { AccessProgram } from '../program/access.ts';
import { analyzeProgram } from '../runtime/plan/program.ts';
import type { RunResult, RunSummary } from '../runtime/plan/run-result.ts';
import { check } from '../util/assert.ts';
import { type ChartSpec, renderPng, renderSvg } from './render.ts';
import { type WhatIfReport, whatIf, whatIfReplanned } from './whatif.ts';

/**
 * A program with the memory it is given.
 *
 * @example
 * ```ts
 * const w: Workload = { name: 'cryptonets', program: heRuntimeProgram(compiled.program), dramBudgetBytes: 145e6 };
 * ```
 */
export interface Workload {
  name: string;
  program: AccessProgram;
  dramBudgetBytes: number;
  arenaBytes?: number;
}

/**
 * Real file I/O through {@link FileTier}: objects written (with and without fsync) and read back (verified).
 * Reads right after writes are mostly served by the page cache.
 *
 * @example
 * ```ts
 * const io: FileIoMeasurement = await measureFileIo('/mnt/nvme/tmp');
 * console.log(io.readGBps, io.writeGBps);
 * ```
 */
export interface FileIoMeasurement {
  dir: string;
  objectBytes: number;
  objects: number;
  maxInFlight: number;
  /** Write throughput without fsync (temp file + rename), GB/s over wall time. */
  writeGBps: number;
  /** Write throughput with fsync of each object and the directory. */
  durableWriteGBps: number;
  /** Read throughput with header and CRC32C verification. */
  readGBps: number;
  /** CRC32C throughput alone on this machine (one core). */
  crcGBps: number;
  stats: FileTierStats;
}

/**
 * Options of {@link measureFileIo}.
 *
 * @example
 * ```ts
 * await measureFileIo(dir, { objectBytes: 16 << 20, objects: 16, maxInFlight: 8 });
 * ```
 */
export interface FileIoOptions {
  objectBytes?: number;
  objects?: number;
  maxInFlight?: number;
}

/**
 * Measures real FileTier throughput in `dir` (a scratch subdirectory is created and removed).
 *
 * @example
 * ```ts
 * const io = await measureFileIo(tmpdir(), { objectBytes: 8 << 20, objects: 32 });
 * ```
 */
export async function measureFileIo(dir: string, options: FileIoOptions = {}): Promise<FileIoMeasurement> {
  const objectBytes = options.objectBytes ?? 8 * 2 ** 20;
  const objects = options.objects ?? 24;
  const maxInFlight = options.maxInFlight ?? 4;
  const scratch = await mkdtemp(join(dir, 'home-io-'));
  try {
    const payloads = Array.from({ length: objects }, (_, i) => {
      const data = new Uint8Array(objectBytes);
      const words = new Uint32Array(data.buffer);
      for (let k = 0; k < words.length; k++) words[k] = Math.imul(k + 1, 0x9e3779b1) ^ i;
      return data;
    });
    const total = objectBytes * objects;
    const timed = async (work: () => Promise<unknown>) => {
      const t0 = nowNs();
      await work();
      return nowNs() - t0;
    };
    // Objects are issued a few at a time, as the runtime does (one transfer per object, chunks in flight within).
    const workers = Math.min(2, objects);
    const pipelined = async (job: (i: number, worker: number) => Promise<void>) => {
      let next = 0;
      const worker = async (_: unknown, w: number) => {
        while (next < objects) await job(next++, w);
      };
      await Promise.all(Array.from({ length: workers }, worker));
    };
    const tier = await FileTier.open({ name: 'bench', dir: scratch, maxInFlight });
    const writeNs = await timed(() => pipelined((i) => tier.write(`o${i}`, payloads[i])));
    const backs = Array.from({ length: workers }, () => new Uint8Array(objectBytes));
    const readNs = await timed(() => pipelined((i, w) => tier.read(`o${i}`, backs[w])));
    const stats = tier.stats;
    await tier.close();
    const durable = await FileTier.open({ name: 'bench-durable', dir: scratch, maxInFlight, durable: true });
    const durableNs = await timed(() => pipelined((i) => durable.write(`d${i}`, payloads[i])));
    await durable.close();
    const crcNs = await timed(async () => {
      for (const p of payloads) crc32c(0, p);
    });
    return {
      dir,
      objectBytes,
      objects,
      maxInFlight,
      writeGBps: total / writeNs,
      durableWriteGBps: total / durableNs,
      readGBps: total / readNs,
      crcGBps: total / crcNs,
      stats,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Options of {@link characterize}.
 *
 * @example
 * ```ts
 * await characterize({ outDir: 'report-out', workloads: [{ name: 'cryptonets', program, dramBudgetBytes }], devices: ['cxl', 'nvme-gen5'] });
 * ```
 */
export interface CharacterizeOptions {
  /** Directory for report.json, report.html, SVGs and PNGs (created if missing). */
  outDir: string;
  /** The programs to characterize, each with the memory it is given (e.g. a model's runtime program). */
  workloads: Workload[];
  /** Slow-tier device profiles to compare (default optane-appdirect and nvme-gen4). */
  devices?: string[];
  policies?: PolicyName[];
  /** Also write PNGs (default true). */
  png?: boolean;
  /** Compute speed-ups for the what-if study (default 1, 10, 100). */
  speedups?: number[];
  /** Also re-plan (re-simulate) each what-if configuration, slower but what a deployment would see (default true). */
  replannedWhatIf?: boolean;
  /** Directory for a real file-I/O measurement, or null to skip (default: the OS temp directory). */
  fileIoDir?: string | null;
  fileIo?: FileIoOptions;
}

/**
 * One simulated run in the report.
 *
 * @example
 * ```ts
 * const slow = report.runs.filter((r: CharacterizationRun) => r.timeVsUnlimited > 1.1);
 * ```
 */
export interface CharacterizationRun {
  workload: string;
  policy: string;
  device: string;
  timeVsUnlimited: number;
  summary: RunSummary;
}

/**
 * Everything the report shows, as written to report.json.
 *
 * @example
 * ```ts
 * const report: Characterization = JSON.parse(await readFile('report-out/report.json', 'utf8'));
 * ```
 */
export interface Characterization {
  generatedAt: string;
  machine: { cpus: number; cpuModel: string; node: string };
  deviceProfiles: typeof DEVICE_PROFILES;
  workloads: {
    name: string;
    program: string;
    steps: number;
    totalBytes: number;
    dramBudgetBytes: number;
    unlimitedNs: number;
    modularMultiplies: number;
  }[];
  runs: CharacterizationRun[];
  whatIf: WhatIfReport[];
  fileIo: FileIoMeasurement | null;
}

interface ChartFile {
  title: string;
  name: string;
  svg: string;
}

const MB = 1e6;

function downsample<T>(rows: T[], max: number): T[] {
  if (rows.length <= max) return rows;
  const stride = Math.ceil(rows.length / max);
  return rows.filter((_, i) => i % stride === 0 || i === rows.length - 1);
}

function occupancyChart(name: string, result: RunResult): ChartSpec {
  const rows = downsample(result.steps, 1500).flatMap((s) =>
    Object.entries(s.occupancy).map(([tier, bytes]) => ({
      seconds: s.virtualEndNs / 1e9,
      tier,
      MB: bytes / MB,
    })),
  );
  return residentChart(
    `${name}: bytes resident per tier over time (${result.summary.label})`,
    rows,
    'virtual time (s)',
    240,
  );
}

/**
 * A step chart of the bytes resident in each tier over time, from rows `{ seconds, tier, MB }` (a simulated run's
 * virtual clock or a measured run's wall clock).
 *
 * @example
 * ```ts
 * const chart = residentChart('run: bytes resident per tier', rows, 'wall time (s)', 220);
 * ```
 */
export function residentChart(title: string, rows: object[], timeTitle: string, height: number): ChartSpec {
  return {
    title,
    width: 640,
    height,
    data: { values: rows },
    mark: { type: 'line', interpolate: 'step-after' },
    encoding: {
      x: { field: 'seconds', type: 'quantitative', title: timeTitle },
      y: { field: 'MB', type: 'quantitative', title: 'resident (MB)' },
      color: { field: 'tier', type: 'nominal' },
    },
  };
}

function layerChart(name: string, runs: RunResult[]): ChartSpec {
  const bytes: object[] = [];
  const time: object[] = [];
  for (const run of runs) {
    const perLayer = new Map<string, { read: number; written: number; compute: number; stall: number }>();
    for (const s of run.steps) {
      let row = perLayer.get(s.layer);
      if (!row) perLayer.set(s.layer, (row = { read: 0, written: 0, compute: 0, stall: 0 }));
      for (const [tier, t] of Object.entries(s.io)) {
        if (tier === 'arena' || tier === 'dram') continue;
        row.read += t.read;
        row.written += t.written;
      }
      row.compute += s.virtualEndNs - s.virtualStartNs - s.virtualStallNs;
      row.stall += s.virtualStallNs;
    }
    for (const [layer, r] of perLayer) {
      const policy = run.summary.label;
      bytes.push(
        { layer, policy, kind: 'read', MB: r.read / MB },
        { layer, policy, kind: 'written', MB: r.written / MB },
      );
      time.push(
        { layer, policy, kind: 'compute', ms: r.compute / 1e6 },
        { layer, policy, kind: 'stall', ms: r.stall / 1e6 },
      );
    }
  }
  const bar = (values: object[], field: string, title: string) => ({
    width: 640,
    height: 180,
    data: { values },
    mark: 'bar' as const,
    encoding: {
      x: { field: 'layer', type: 'nominal' as const, sort: null, title: 'layer' },
      xOffset: { field: 'policy', type: 'nominal' as const },
      y: { field, type: 'quantitative' as const, title, stack: 'zero' as const },
      color: { field: 'kind', type: 'nominal' as const },
      opacity: {
        field: 'policy',
        type: 'nominal' as const,
        sort: 'ascending' as const,
        scale: { range: [1, 0.55] },
      },
      tooltip: [{ field: 'policy' }, { field: 'kind' }, { field, type: 'quantitative' as const }],
    },
  });
  return {
    title: `${name}: slow-tier traffic and time per layer (bars per policy)`,
    vconcat: [bar(bytes, 'MB', 'slow-tier MB'), bar(time, 'ms', 'virtual ms')],
    resolve: { scale: { color: 'independent' } },
  } as ChartSpec;
}

function stallChart(runs: CharacterizationRun[]): ChartSpec {
  const rows = runs.flatMap((r) => [
    { run: `${r.workload} · ${r.policy} · ${r.device}`, part: 'compute', s: r.summary.computeNs / 1e9 },
    { run: `${r.workload} · ${r.policy} · ${r.device}`, part: 'stall', s: r.summary.stallNs / 1e9 },
  ]);
  return {
    title: 'Compute vs stall (virtual clock)',
    width: 520,
    data: { values: rows },
    mark: 'bar',
    encoding: {
      y: { field: 'run', type: 'nominal', sort: null, title: null },
      x: { field: 's', type: 'quantitative', stack: 'zero', title: 'seconds' },
      color: { field: 'part', type: 'nominal', scale: { range: ['#4c78a8', '#e45756'] } },
    },
  };
}

function policyChart(runs: CharacterizationRun[]): ChartSpec {
  const rows = runs.map((r) => ({
    workload: r.workload,
    policy: r.policy,
    device: r.device,
    ratio: r.timeVsUnlimited,
    GB: r.summary.slowBytesMoved / 1e9,
  }));
  const panel = (field: string, title: string) => ({
    width: 260,
    height: 200,
    mark: 'bar' as const,
    encoding: {
      x: { field: 'workload', type: 'nominal' as const, title: null },
      xOffset: { field: 'policy', type: 'nominal' as const },
      y: { field, type: 'quantitative' as const, title },
      color: { field: 'policy', type: 'nominal' as const },
      column: { field: 'device', type: 'nominal' as const },
    },
  });
  return {
    title: 'LRU vs HomE: run time relative to unlimited DRAM, and slow-tier traffic',
    data: { values: rows },
    vconcat: [panel('ratio', 'time / unlimited'), panel('GB', 'slow-tier GB moved')],
  } as ChartSpec;
}

function whatIfChart(reports: WhatIfReport[]): ChartSpec {
  const rows = reports.flatMap((w) =>
    w.predictions.map((p) => ({
      workload: w.program,
      plan: w.plan,
      device: p.device,
      speedup: `${p.speedup}×`,
      stall: p.stallFraction,
    })),
  );
  return {
    title:
      'What-if: stall fraction with faster compute, per slow-tier device (HomE; recorded plan vs re-planned)',
    data: { values: rows },
    mark: 'bar',
    width: 200,
    height: 160,
    encoding: {
      x: { field: 'device', type: 'nominal', title: null },
      xOffset: { field: 'speedup', type: 'nominal', sort: null },
      y: { field: 'stall', type: 'quantitative', axis: { format: '%' }, title: 'stall' },
      color: { field: 'speedup', type: 'nominal', sort: null, title: 'compute speed-up' },
      column: { field: 'workload', type: 'nominal' },
      row: { field: 'plan', type: 'nominal' },
    },
  };
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function table(headers: string[], rows: (string | number)[][]): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(String(c))}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function html(report: Characterization, charts: ChartFile[]): string {
  const fmt = (x: number, digits = 3) => (Number.isFinite(x) ? x.toPrecision(digits) : String(x));
  const runRows = report.runs.map((r) => [
    r.workload,
    r.policy,
    r.device,
    fmt(r.timeVsUnlimited, 4),
    `${(r.summary.stallFraction * 100).toFixed(1)} %`,
    fmt(r.summary.slowBytesRead / MB, 4),
    fmt(r.summary.slowBytesWritten / MB, 4),
    fmt(r.summary.peakBytes.dram / MB, 4),
    r.summary.arithmeticIntensity === null ? '–' : fmt(r.summary.arithmeticIntensity),
  ]);
  const workloadRows = report.workloads.map((w) => [
    w.name,
    w.steps,
    fmt(w.totalBytes / MB, 5),
    fmt(w.dramBudgetBytes / MB, 4),
    fmt(w.unlimitedNs / 1e9, 4),
  ]);
  const io = report.fileIo;
  const ioSection = io
    ? `<h2>Real file I/O (FileTier, ${io.objects} × ${(io.objectBytes / 2 ** 20).toFixed(0)} MiB, ${io.maxInFlight} chunks in flight)</h2>
<p>Directory ${escapeHtml(io.dir)}. Reads follow the writes, so they are mostly served from the page cache.</p>
${table(
  ['write (rename commit)', 'write + fsync', 'read + verify', 'CRC32C alone'],
  [
    [
      `${fmt(io.writeGBps)} GB/s`,
      `${fmt(io.durableWriteGBps)} GB/s`,
      `${fmt(io.readGBps)} GB/s`,
      `${fmt(io.crcGBps)} GB/s`,
    ],
  ],
)}`
    : '';
  const findings = report.whatIf
    .map(
      (w) =>
        `<h3>${escapeHtml(w.program)}</h3><ul>${w.findings.map((f) => `<li>${escapeHtml(f)}</li>`).join('')}</ul>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HomE tiered-memory characterization</title>
<style>body{font-family:DejaVu Sans,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child{text-align:left}figure{margin:1.5em 0}</style></head><body>
<h1>HomE tiered-memory characterization</h1>
<p>Generated ${escapeHtml(report.generatedAt)} on ${report.machine.cpus} × ${escapeHtml(report.machine.cpuModel)}, Node ${escapeHtml(report.machine.node)}.
Simulated runs use the deterministic virtual clock: compute costs from the modelled modular multiplies (0.4 ns each,
ANCHORS §2) and slow-tier transfers from the device profiles (ANCHORS §6; see report.json for each figure's source).</p>
<h2>Workloads (DRAM budget = 1/8 of object bytes)</h2>
${table(['workload', 'steps', 'object MB', 'DRAM budget MB', 'unlimited s'], workloadRows)}
<h2>Runs</h2>
${table(['workload', 'policy', 'slow tier', 'time / unlimited', 'stall', 'slow MB read', 'slow MB written', 'DRAM peak MB', 'mulmod / slow byte'], runRows)}
${charts.map((c) => `<figure><figcaption>${escapeHtml(c.title)}</figcaption>${c.svg}</figure>`).join('\n')}
<h2>What-if</h2>
${findings}
${ioSection}

</body></html>
`;
}

/**
 * Characterizes the tiered runtime: simulates each workload unlimited and under each policy and slow-tier device,
 * runs the what-if study on the HomE plans, optionally measures real file I/O and a real-mode run, and writes
 * report.json, report.html (inline SVG charts) and one SVG (and PNG) per chart into `outDir`.
 *
 * @example
 * ```ts
 * const { files } = await characterize({ outDir: 'report-out' });
 * ```
 */
export async function characterize(
  options: CharacterizeOptions,
): Promise<{ report: Characterization; files: string[] }> {
  const outDir = resolve(options.outDir);
  await mkdir(outDir, { recursive: true });
  const { workloads } = options;
  const devices = options.devices ?? ['optane-appdirect', 'nvme-gen4'];
  const policies = options.policies ?? ['lru', 'home'];
  check(
    workloads.length > 0 && devices.length > 0 && policies.length > 0,
    () => 'characterize: expected workloads, devices and policies',
  );
  const runs: CharacterizationRun[] = [];
  const charts: { title: string; name: string; spec: ChartSpec }[] = [];
  const whatIfs: WhatIfReport[] = [];
  const workloadRows: Characterization['workloads'] = [];
  for (const workload of workloads) {
    const analysis = analyzeProgram(workload.program);
    const unlimited = simulate(workload.program, {
      policy: 'home',
      dramBudgetBytes: Infinity,
      slow: null,
      label: 'unlimited',
    });
    workloadRows.push({
      name: workload.name,
      program: workload.program.name,
      steps: workload.program.steps.length,
      totalBytes: analysis.totalBytes,
      dramBudgetBytes: workload.dramBudgetBytes,
      unlimitedNs: unlimited.summary.totalNs,
      modularMultiplies: unlimited.summary.modularMultiplies,
    });
    const firstDevice: RunResult[] = [];
    for (const device of devices) {
      for (const policy of policies) {
        const result = simulate(workload.program, {
          policy,
          dramBudgetBytes: workload.dramBudgetBytes,
          ...(workload.arenaBytes !== undefined ? { arenaBytes: workload.arenaBytes } : {}),
          slow: device,
        });
        runs.push({
          workload: workload.name,
          policy: result.summary.label,
          device,
          timeVsUnlimited: result.summary.totalNs / unlimited.summary.totalNs,
          summary: result.summary,
        });
        if (device === devices[0]) firstDevice.push(result);
        if (device === devices[devices.length - 1] && policy === 'home') {
          const speedups = options.speedups ?? [1, 10, 100];
          const fixed = whatIf(result, { speedups });
          fixed.program = workload.name;
          whatIfs.push(fixed);
          if (options.replannedWhatIf ?? true) {
            const replanned = await whatIfReplanned(
              workload.program,
              {
                policy,
                dramBudgetBytes: workload.dramBudgetBytes,
                ...(workload.arenaBytes !== undefined ? { arenaBytes: workload.arenaBytes } : {}),
              },
              { speedups },
            );
            replanned.program = workload.name;
            whatIfs.push(replanned);
          }
        }
      }
    }
    const home = firstDevice.find((r) => r.summary.policy === 'home') ?? firstDevice[0];
    charts.push({
      title: `Tier occupancy: ${workload.name}`,
      name: `occupancy-${workload.name}`,
      spec: occupancyChart(workload.name, home),
    });
    charts.push({
      title: `Per layer: ${workload.name}`,
      name: `layers-${workload.name}`,
      spec: layerChart(workload.name, firstDevice),
    });
  }
  charts.push({ title: 'Stall vs compute', name: 'stall-vs-compute', spec: stallChart(runs) });
  charts.push({ title: 'Policy comparison', name: 'policy-comparison', spec: policyChart(runs) });
  if (whatIfs.length > 0) charts.push({ title: 'What-if', name: 'whatif', spec: whatIfChart(whatIfs) });
  const fileIoDir = options.fileIoDir === undefined ? tmpdir() : options.fileIoDir;
  const fileIo = fileIoDir === null ? null : await measureFileIo(fileIoDir, options.fileIo);
  const report: Characterization = {
    generatedAt: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version },
    deviceProfiles: DEVICE_PROFILES,
    workloads: workloadRows,
    runs,
    whatIf: whatIfs,
    fileIo,
  };
  const files: string[] = [];
  const rendered: ChartFile[] = [];
  for (const chart of charts) {
    const svg = await renderSvg(chart.spec);
    rendered.push({ title: chart.title, name: chart.name, svg });
    const svgPath = join(outDir, `${chart.name}.svg`);
    await writeFile(svgPath, svg);
    files.push(svgPath);
    if (options.png ?? true) {
      const pngPath = join(outDir, `${chart.name}.png`);
      await writeFile(pngPath, renderPng(svg));
      files.push(pngPath);
    }
  }
  const jsonPath = join(outDir, 'report.json');
  await writeFile(jsonPath, `${JSON.stringify(report, (_k, v) => (v === Infinity ? 'Infinity' : v), 2)}\n`);
  const htmlPath = join(outDir, 'report.html');
  await writeFile(htmlPath, html(report, rendered));
  files.push(jsonPath, htmlPath);
  return { report, files };
}
