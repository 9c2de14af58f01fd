/**
 * The measured runs of `home characterize`: their per-step trace (trace.json), its sums per layer and tier, and
 * their part of the report (charts and the HTML section).
 */
import type { BootstrappingTimings } from '../ckks/bootstrapping/bootstrapper.ts';
import type { BootstrapRecord } from './he-workload.ts';
import { type Characterization, residentChart } from '../report/characterize.ts';
import type { ChartSpec } from '../report/render.ts';
import type { HeProgram } from '../program/program.ts';
import type { TieredHeResult, TieredHeStats } from '../runtime/he/tiered.ts';
import type { TierSpec } from './sizes.ts';

/**
 * One instruction of a measured run, as written to trace.json (columns, one entry per step in run order).
 *
 * @example
 * ```ts
 * const trace: MeasuredTrace = JSON.parse(text).runs[0].steps;
 * ```
 */
export interface MeasuredTrace {
  instruction: number[];
  op: string[];
  layer: string[];
  level: number[];
  /** Wall-clock compute and stall per step (ns) and the compute start from the run's start. */
  compute_ns: number[];
  stall_ns: number[];
  start_ns: number[];
  /** Bytes the step's planned actions moved, per tier (slow tiers, arena, dram): read and written. */
  bytes_read: Record<string, number[]>;
  bytes_written: Record<string, number[]>;
  /** Bytes resident per tier after the step was planned. */
  occupancy: Record<string, number[]>;
  modular_multiplies: number[];
}

export interface MeasuredRun {
  policy: string;
  correct: boolean;
  /** Seconds over the all-in-memory run's (null: a model that does not fit in memory has no such run). */
  ratio_vs_unlimited: number | null;
  /** Client key generation during the run's setup (keys streamed to the store), not the server's time. */
  keygen_seconds: number;
  stats: TieredHeStats;
  summary: {
    peak_bytes: Record<string, number>;
    bytes_moved: Record<string, { read: number; written: number }>;
    stall_fraction: number;
    arithmetic_intensity: number | null;
  };
  /** Per layer, in run order: time, and bytes read, written and resident at most, per tier. */
  layers: LayerBytes[];
  steps: MeasuredTrace;
  /** Programs with bootstraps: each bootstrap's layer and phase seconds, in run order. */
  bootstraps?: BootstrapRecord[];
  /** Per bootstrap phase: the bytes of every key it uses, and the most it holds at once (`phaseKeyBytes`). */
  bootstrap_keys?: Record<keyof BootstrappingTimings, { touched: number; peak: number }>;
}

/**
 * One layer of a measured run (its steps, wherever they fall in run order): what it cost and moved per tier.
 *
 * @example
 * ```ts
 * const conv1: LayerBytes = trace.runs[0].layers[0];
 * ```
 */
export interface LayerBytes {
  layer: string;
  steps: number;
  compute_seconds: number;
  stall_seconds: number;
  /** Bytes the layer's steps read from / wrote to each tier (slow tiers by name, `arena`, `dram`). */
  bytes_read: Record<string, number>;
  bytes_written: Record<string, number>;
  /** Most bytes resident in each tier while one of the layer's steps ran. */
  peak_resident_bytes: Record<string, number>;
}

/**
 * Sums a measured trace per layer (first appearance order): time, bytes moved per tier, peak bytes per tier.
 *
 * @example
 * ```ts
 * const layers = layerBytes(run.steps);
 * ```
 */
export function layerBytes(trace: MeasuredTrace): LayerBytes[] {
  const byLayer = new Map<string, LayerBytes>();
  const tiers = Object.keys(trace.bytes_read);
  const resident = Object.keys(trace.occupancy);
  trace.layer.forEach((name, k) => {
    const layer = name === '' ? '(no layer)' : name;
    let row = byLayer.get(layer);
    if (!row) {
      row = {
        layer,
        steps: 0,
        compute_seconds: 0,
        stall_seconds: 0,
        bytes_read: Object.fromEntries(tiers.map((t) => [t, 0])),
        bytes_written: Object.fromEntries(tiers.map((t) => [t, 0])),
        peak_resident_bytes: Object.fromEntries(resident.map((t) => [t, 0])),
      };
      byLayer.set(layer, row);
    }
    row.steps++;
    row.compute_seconds += trace.compute_ns[k] / 1e9;
    row.stall_seconds += trace.stall_ns[k] / 1e9;
    for (const t of tiers) {
      row.bytes_read[t] += trace.bytes_read[t][k];
      row.bytes_written[t] += trace.bytes_written[t][k];
    }
    for (const t of resident) {
      row.peak_resident_bytes[t] = Math.max(row.peak_resident_bytes[t], trace.occupancy[t][k]);
    }
  });
  return [...byLayer.values()];
}

export function traceOf(program: HeProgram, result: TieredHeResult): MeasuredTrace {
  const steps = result.runtimeProgram.steps;
  // Characterization plans every run itself, so the plan's per-step virtual-clock trace is there.
  const made = result.madePlan;
  if (!made) throw new Error('characterize: expected the run to make its own plan (with its per-step trace)');
  const planned = made.run.steps;
  const tiers = Object.keys(planned[0]?.io ?? {});
  const occupancyTiers = Object.keys(planned[0]?.occupancy ?? {});
  const trace: MeasuredTrace = {
    instruction: [],
    op: [],
    layer: [],
    level: [],
    compute_ns: [],
    stall_ns: [],
    start_ns: [],
    bytes_read: Object.fromEntries(tiers.map((t) => [t, [] as number[]])),
    bytes_written: Object.fromEntries(tiers.map((t) => [t, [] as number[]])),
    occupancy: Object.fromEntries(occupancyTiers.map((t) => [t, [] as number[]])),
    modular_multiplies: [],
  };
  result.execution.steps.forEach((measured, k) => {
    const step = steps[measured.index];
    const plan = planned[k];
    const instruction = step.instruction ?? -1;
    trace.instruction.push(instruction);
    trace.op.push(step.op);
    trace.layer.push(step.layer ?? '');
    trace.level.push(program.instructions[instruction]?.level ?? -1);
    trace.compute_ns.push(Math.round(measured.computeNs));
    trace.stall_ns.push(Math.round(measured.stallNs));
    trace.start_ns.push(Math.round(measured.startNs));
    for (const t of tiers) {
      trace.bytes_read[t].push(plan.io[t]?.read ?? 0);
      trace.bytes_written[t].push(plan.io[t]?.written ?? 0);
    }
    for (const t of occupancyTiers) trace.occupancy[t].push(plan.occupancy[t] ?? 0);
    trace.modular_multiplies.push(step.modularMultiplies ?? 0);
  });
  return trace;
}

export const MB = 1e6;

export function layerChart(runs: MeasuredRun[]): ChartSpec {
  const rows: object[] = [];
  for (const run of runs) {
    for (const l of run.layers) {
      rows.push(
        {
          layer: l.layer,
          policy: run.policy,
          kind: 'compute',
          value: l.compute_seconds * 1e3,
          panel: 'time (ms)',
        },
        {
          layer: l.layer,
          policy: run.policy,
          kind: 'stall',
          value: l.stall_seconds * 1e3,
          panel: 'time (ms)',
        },
      );
      // Bytes per tier: what each tier gave (read from it) and took (written to it) during the layer.
      for (const tier of Object.keys(l.bytes_read)) {
        rows.push(
          {
            layer: l.layer,
            policy: run.policy,
            kind: `${tier} read`,
            value: l.bytes_read[tier] / MB,
            panel: 'MB per tier',
          },
          {
            layer: l.layer,
            policy: run.policy,
            kind: `${tier} written`,
            value: l.bytes_written[tier] / MB,
            panel: 'MB per tier',
          },
        );
      }
    }
  }
  return {
    title: 'Measured: time and bytes read / written per tier, per layer (bars per policy)',
    data: { values: rows },
    mark: 'bar',
    width: 280,
    height: 180,
    encoding: {
      column: { field: 'panel', type: 'nominal', title: null },
      x: { field: 'layer', type: 'nominal', sort: null },
      xOffset: { field: 'policy', type: 'nominal' },
      y: { field: 'value', type: 'quantitative', title: null, stack: 'zero' },
      color: { field: 'kind', type: 'nominal' },
    },
    resolve: { scale: { y: 'independent' } },
  } as ChartSpec;
}

export function occupancyChart(run: MeasuredRun): ChartSpec {
  const t = run.steps;
  const n = t.start_ns.length;
  const stride = Math.max(1, Math.ceil(n / 1500));
  const rows: object[] = [];
  for (let k = 0; k < n; k += stride) {
    for (const [tier, values] of Object.entries(t.occupancy)) {
      rows.push({ seconds: t.start_ns[k] / 1e9, tier, MB: values[k] / MB });
    }
  }
  return residentChart(
    `Measured run (${run.policy}): bytes resident per tier over wall-clock time`,
    rows,
    'wall time (s)',
    220,
  );
}

export function comparisonChart(runs: MeasuredRun[], unlimitedSeconds: number | null): ChartSpec {
  const rows = [
    ...(unlimitedSeconds === null ? [] : [{ config: 'unlimited', part: 'compute', s: unlimitedSeconds }]),
    ...runs.flatMap((r) => [
      { config: r.policy, part: 'compute', s: r.stats.computeSeconds },
      { config: r.policy, part: 'stall', s: r.stats.stallSeconds },
    ]),
  ];
  return {
    title:
      unlimitedSeconds === null
        ? 'Measured: the policies (wall seconds; no all-in-memory run: the model does not fit)'
        : 'Measured: the policies against all-in-memory (wall seconds)',
    width: 420,
    data: { values: rows },
    mark: 'bar',
    encoding: {
      y: { field: 'config', type: 'nominal', sort: null, title: null },
      x: { field: 's', type: 'quantitative', stack: 'zero', title: 'seconds' },
      color: { field: 'part', type: 'nominal', scale: { range: ['#4c78a8', '#e45756'] } },
    },
  };
}

export const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function withMeasuredSection(
  html: string,
  trace: {
    workload: string;
    memory_budget_bytes: number;
    arena_bytes: number;
    dram_pool_bytes: number;
    footprint_bytes: number;
    profile: string;
    unlimited_seconds: number | null;
    tiers: TierSpec[];
  },
  runs: MeasuredRun[],
  charts: string[],
  report: Characterization,
): string {
  const fmt = (x: number, d = 4) => (Number.isFinite(x) ? Number(x.toPrecision(d)).toString() : String(x));
  const reference =
    trace.unlimited_seconds === null
      ? `<tr><td>all in memory</td><td colspan="8">not run: the footprint (${fmt(trace.footprint_bytes / MB)} MB) does not fit in memory; outputs checked against the float simulation and between runs</td></tr>`
      : `<tr><td>all in memory</td><td>${fmt(trace.unlimited_seconds)}</td><td>1</td><td>–</td><td>0</td><td>0</td><td>–</td><td>–</td><td>reference</td></tr>`;
  const rows = [
    reference,
    ...runs.map(
      (r) =>
        `<tr><td>${escapeHtml(r.policy)}</td><td>${fmt(r.stats.seconds)}</td><td>${r.ratio_vs_unlimited === null ? '–' : fmt(r.ratio_vs_unlimited)}</td>` +
        `<td>${(100 * r.summary.stall_fraction).toFixed(1)} %</td><td>${fmt(r.stats.slowBytesRead / MB)}</td>` +
        `<td>${fmt(r.stats.slowBytesWritten / MB)}</td><td>${fmt(r.stats.arenaPeakBytes / MB)}</td>` +
        `<td>${fmt(r.stats.dramPeakBytes / MB)}</td><td>${r.correct ? (trace.unlimited_seconds === null ? 'agree' : 'identical') : 'DIFFERENT'}</td></tr>`,
    ),
  ].join('\n');
  const layerTables = runs.map((r) => layerTable(r, fmt)).join('\n');
  const section = `<h2>Measured encrypted run: ${escapeHtml(trace.workload)}</h2>
<p>Memory budget ${fmt(trace.memory_budget_bytes / MB)} MB = arena ${fmt(trace.arena_bytes / MB)} MB (live objects) + DRAM pool
${fmt(trace.dram_pool_bytes / MB)} MB (byte buffers); footprint of an all-in-memory run ${fmt(trace.footprint_bytes / MB)} MB;
slow tiers ${trace.tiers.map((t) => escapeHtml(`${t.name} (${t.dir})`)).join(', ')};
profile ${escapeHtml(trace.profile)}. Wall-clock times on this machine; plans made ahead on the virtual clock and replayed.
Per-instruction trace in trace.json. The sections above compare the policies on the virtual clock for
${escapeHtml(
  report.runs
    .map((r) => r.device)
    .filter((d, i, a) => a.indexOf(d) === i)
    .join(', '),
)}.</p>
<table><thead><tr><th>run</th><th>seconds</th><th>× all in memory</th><th>stall</th><th>slow MB read</th><th>slow MB written</th><th>arena peak MB</th><th>DRAM pool peak MB</th><th>outputs</th></tr></thead>
<tbody>${rows}</tbody></table>
${layerTables}
${charts.join('\n')}
`;
  const at = html.lastIndexOf('</body>');
  return at < 0 ? html + section : `${html.slice(0, at)}${section}${html.slice(at)}`;
}

/** One run's per-layer table: time, then MB read / written and peak MB resident for each tier. */
function layerTable(run: MeasuredRun, fmt: (x: number, d?: number) => string): string {
  const first = run.layers[0];
  if (!first) return '';
  const moved = Object.keys(first.bytes_read);
  const resident = Object.keys(first.peak_resident_bytes);
  const head =
    '<tr><th>layer</th><th>steps</th><th>compute s</th><th>stall s</th>' +
    moved.map((t) => `<th>${escapeHtml(t)} MB read / written</th>`).join('') +
    resident.map((t) => `<th>${escapeHtml(t)} peak MB</th>`).join('') +
    '</tr>';
  const body = run.layers
    .map(
      (l) =>
        `<tr><td>${escapeHtml(l.layer)}</td><td>${l.steps}</td><td>${fmt(l.compute_seconds)}</td><td>${fmt(l.stall_seconds)}</td>` +
        moved.map((t) => `<td>${fmt(l.bytes_read[t] / MB)} / ${fmt(l.bytes_written[t] / MB)}</td>`).join('') +
        resident.map((t) => `<td>${fmt(l.peak_resident_bytes[t] / MB)}</td>`).join('') +
        '</tr>',
    )
    .join('\n');
  return `<h3>Per layer, bytes per tier (${escapeHtml(run.policy)})</h3>
<table><thead>${head}</thead>
<tbody>${body}</tbody></table>`;
}
