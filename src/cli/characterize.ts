import type { HeProgram } from '../program/program.ts';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { type Characterization, characterize } from '../report/characterize.ts';
import { type ChartSpec, renderPng, renderSvg } from '../report/render.ts';
import { DEVICE_PROFILES, type DeviceProfile, deviceProfile } from '../runtime/store/devices.ts';
import { FileTier } from '../runtime/store/file-tier.ts';
import { heRuntimeProgram, realRunHomePolicy } from '../runtime/he/program.ts';
import { splitMemoryBudget, type TieredHeResult, type TieredHeStats } from '../runtime/he/tiered.ts';
import { IoPool } from '../runtime/io/io-pool.ts';
import { LruPolicy } from '../runtime/plan/policy.ts';
import { analyzeProgram } from '../runtime/plan/program.ts';
import { probeTier, slowerProfile } from '../runtime/store/tier-probe.ts';
import { InvalidArgumentError, ResourceError } from '../util/errors.ts';
import {
  disposeWorkload,
  prepareHeWorkload,
  runTieredWorkload,
  runUnlimited,
  sameResults,
} from './he-workload.ts';
import {
  parseByteSize,
  parseNumberList,
  parseNumberOrFraction,
  parseTierSpec,
  type TierSpec,
} from './sizes.ts';

/**
 * Options of {@link runCharacterize} (the `home characterize` flags).
 *
 * @example
 * ```ts
 * const options: CharacterizeCliOptions = { model: 'models/cryptonets-mnist.onnx', data: 'data/mnist/t10k-images-idx3-ubyte.gz',
 *   dramBudget: '512MiB', tiers: ['nvme:/data/he'], profile: 'optane-appdirect', out: 'report' };
 * ```
 */
export interface CharacterizeCliOptions {
  model: string;
  data: string;
  count?: number;
  mode?: 'batch' | 'latency';
  encryptWeights?: boolean;
  inputScale?: number;
  /** Per-channel normalization after the scale: `(x − mean[c]) / std[c]`. */
  inputMean?: readonly number[];
  inputStd?: readonly number[];
  /** Policies measured (default both: HomE, then LRU). */
  policies?: readonly ('home' | 'lru')[];
  /** Memory for objects (arena + DRAM pool), e.g. `512MiB`. */
  dramBudget: string;
  /** Part of the budget for the DRAM pool, e.g. `16MiB` (default 1/32 of the budget). */
  dramPool?: string;
  /** Slow tiers as `name:path`. */
  tiers: string[];
  /** Device profile emulated on the tiers (`file` for none). */
  profile?: string;
  out: string;
  seededKeys?: boolean;
  png?: boolean;
  /** Deterministic keys (tests). */
  seed?: Uint8Array;
  print?: (line: string) => void;
}

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

interface MeasuredRun {
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

function traceOf(program: HeProgram, result: TieredHeResult): MeasuredTrace {
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

const MB = 1e6;

function layerChart(runs: MeasuredRun[]): ChartSpec {
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

function occupancyChart(run: MeasuredRun): ChartSpec {
  const t = run.steps;
  const n = t.start_ns.length;
  const stride = Math.max(1, Math.ceil(n / 1500));
  const rows: object[] = [];
  for (let k = 0; k < n; k += stride) {
    for (const [tier, values] of Object.entries(t.occupancy)) {
      rows.push({ seconds: t.start_ns[k] / 1e9, tier, MB: values[k] / MB });
    }
  }
  return {
    title: `Measured run (${run.policy}): bytes resident per tier over wall-clock time`,
    width: 640,
    height: 220,
    data: { values: rows },
    mark: { type: 'line', interpolate: 'step-after' },
    encoding: {
      x: { field: 'seconds', type: 'quantitative', title: 'wall time (s)' },
      y: { field: 'MB', type: 'quantitative', title: 'resident (MB)' },
      color: { field: 'tier', type: 'nominal' },
    },
  };
}

function comparisonChart(runs: MeasuredRun[], unlimitedSeconds: number | null): ChartSpec {
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

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Moves every file of `from` into `to` (created if missing), replacing same-named files, then removes `from`. */
async function publish(from: string, to: string): Promise<void> {
  if (!existsSync(to)) {
    await mkdir(dirname(to), { recursive: true });
    await rename(from, to);
    return;
  }
  for (const name of await readdir(from)) await rename(join(from, name), join(to, name));
  await rm(from, { recursive: true, force: true });
}

/**
 * `home characterize`: runs a model's pass through the tiered runtime under a memory budget (HomE and LRU, real
 * slow-tier I/O on the given directories, optionally emulating a device), next to the all-in-memory run, and writes
 * into `out`: trace.json (per-instruction trace of both measured runs and their summaries), report.json and
 * report.html from the characterization report (virtual-clock policy comparison per device, the what-if study, real
 * file-I/O measurement of the first tier) with a measured section, and every chart as SVG and PNG.
 *
 * Everything is checked before the run: sizes, tier specs, the tiers themselves (exist, writable, free space),
 * the profile, the model and data. The report is assembled in a sibling directory and moved into `out` only when
 * complete; a failure (a full tier, a corrupted object, reported by id) leaves `out` as it was.
 *
 * @throws InvalidArgumentError / ResourceError / FormatError with messages naming the bad value.
 * @example
 * ```ts
 * await runCharacterize({ model, data, dramBudget: '256MiB', tiers: ['nvme:/tmp/he'], profile: 'optane-appdirect', out: 'report' });
 * ```
 */
export async function runCharacterize(options: CharacterizeCliOptions): Promise<{ files: string[] }> {
  const print = options.print ?? ((line: string) => console.log(line));
  // 1. Flags, before anything heavy.
  const budget = parseByteSize(options.dramBudget, '--dram-budget');
  const pool = options.dramPool === undefined ? undefined : parseByteSize(options.dramPool, '--dram-pool');
  if (options.tiers.length === 0) throw new InvalidArgumentError('--tier: expected at least one name:path');
  const specs: TierSpec[] = options.tiers.map(parseTierSpec);
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name))
      throw new InvalidArgumentError(`--tier ${s.name}:…: the name ${s.name} is given twice`);
    names.add(s.name);
  }
  const policies = options.policies ?? (['home', 'lru'] as const);
  if (policies.length === 0 || new Set(policies).size !== policies.length) {
    throw new InvalidArgumentError(`--policies ${policies.join(',')}: expected home, lru or both, each once`);
  }
  for (const p of policies) {
    if (p !== 'home' && p !== 'lru')
      throw new InvalidArgumentError(`--policies ${policies.join(',')}: ${String(p)} is not home or lru`);
  }
  const profileName = options.profile ?? 'file';
  const emulate: DeviceProfile | null = profileName === 'file' ? null : deviceProfile(profileName);
  const out = resolve(options.out);
  if (existsSync(out) && !(await stat(out)).isDirectory())
    throw new InvalidArgumentError(`--out ${options.out}: exists and is not a directory`);
  const staging = join(dirname(out), `.${basename(out)}.partial-${process.pid}`);
  const io = new IoPool();
  const tiers: FileTier[] = [];
  try {
    for (const s of specs) {
      tiers.push(await FileTier.open({ name: s.name, dir: s.dir, io, ...(emulate ? { emulate } : {}) }));
    }
    try {
      await mkdir(staging, { recursive: true });
    } catch (error) {
      throw new ResourceError(
        `--out ${options.out}: cannot create ${staging} (${(error as NodeJS.ErrnoException).code}): expected a writable parent directory`,
        { cause: error },
      );
    }
    // 2. The workload and its all-in-memory reference.
    const workload = prepareHeWorkload({
      model: options.model,
      data: options.data,
      count: options.count,
      mode: options.mode,
      encryptWeights: options.encryptWeights,
      inputScale: options.inputScale,
      ...(options.inputMean !== undefined ? { inputMean: options.inputMean } : {}),
      ...(options.inputStd !== undefined ? { inputStd: options.inputStd } : {}),
      budgetBytes: budget,
      seed: options.seed,
    });
    try {
      const runtimeProgram = heRuntimeProgram(workload.program, { liveCapBytes: 0.7 * budget });
      const split = splitMemoryBudget(
        analyzeProgram(runtimeProgram).maxStepBytes,
        budget,
        pool ?? Math.floor(budget / 32),
      );
      print(
        `${workload.name}: ${workload.program.instructions.length} instructions, footprint ${(workload.footprintBytes / MB).toFixed(0)} MB, ` +
          `memory budget ${(budget / MB).toFixed(1)} MB ` +
          `(arena ${(split.arenaBytes / MB).toFixed(1)} MB + DRAM pool ${(split.dramPoolBytes / MB).toFixed(1)} MB), ` +
          `tiers ${specs.map((s) => `${s.name}:${s.dir}`).join(', ')}, profile ${profileName}`,
      );
      // A model whose all-in-memory run does not fit (its keys streamed, or its footprint beyond the kernel
      // memory) has no such reference: its runs are checked against the float simulation and each other.
      const reference = workload.fitsInMemory ? await runUnlimited(workload) : null;
      print(
        reference
          ? `all in memory: ${reference.seconds.toFixed(3)} s`
          : `all in memory: not run (footprint ${(workload.footprintBytes / 2 ** 30).toFixed(2)} GiB${workload.client.keyStream ? ', keys streamed' : ''}: beyond the kernel memory)`,
      );
      const measured = await probeTier(tiers[0]);
      const planning = emulate ? slowerProfile(measured, emulate) : measured;
      const runs: MeasuredRun[] = [];
      let firstLogits: Float64Array | undefined;
      for (const policyName of policies) {
        const keygenBefore = workload.client.keygenSeconds;
        const { logits, result } = await runTieredWorkload(workload, {
          runtimeProgram,
          policy: policyName === 'home' ? realRunHomePolicy() : new LruPolicy(),
          memoryBudgetBytes: budget,
          dramPoolBytes: split.dramPoolBytes,
          tiers,
          planningDevices: tiers.map(() => planning),
          seededKeys: options.seededKeys,
        });
        const keygenSeconds = workload.client.keygenSeconds - keygenBefore;
        for (const ct of result.outputs.values()) ct.dispose();
        const s = result.plan.run.summary;
        firstLogits ??= logits;
        const correct =
          (reference
            ? sameResults(workload, logits, reference.logits)
            : sameResults(workload, logits, firstLogits)) &&
          result.stats.dramPeakBytes <= split.dramPoolBytes &&
          result.stats.arenaPeakBytes <= split.arenaBytes;
        const slowMoved = result.stats.slowBytesRead + result.stats.slowBytesWritten;
        const steps = traceOf(workload.program, result);
        runs.push({
          policy: policyName,
          correct,
          ratio_vs_unlimited: reference ? result.stats.seconds / reference.seconds : null,
          keygen_seconds: keygenSeconds,
          stats: result.stats,
          summary: {
            peak_bytes: {
              ...s.peakBytes,
              arena: result.stats.arenaPeakBytes,
              dram: result.stats.dramPeakBytes,
            },
            bytes_moved: s.moved,
            stall_fraction: result.stats.stallSeconds / result.stats.seconds,
            arithmetic_intensity: slowMoved > 0 ? s.modularMultiplies / slowMoved : null,
          },
          layers: layerBytes(steps),
          steps,
        });
        const ratio = reference
          ? `${(result.stats.seconds / reference.seconds).toFixed(3)}× all in memory`
          : 'no all-in-memory run';
        print(
          `${policyName}: ${result.stats.seconds.toFixed(3)} s (${ratio}; compute ${result.stats.computeSeconds.toFixed(3)} s), ` +
            `stall ${result.stats.stallSeconds.toFixed(3)} s, slow tiers read ${(result.stats.slowBytesRead / MB).toFixed(0)} MB ` +
            `written ${(result.stats.slowBytesWritten / MB).toFixed(0)} MB, outputs ${correct ? (reference ? 'identical' : 'agree') : 'DIFFERENT'}`,
        );
      }
      // 3. Report: the characterization (virtual-clock comparison, what-if, file I/O), then the measured section.
      const devices = emulate ? [emulate.name, 'nvme-gen4'] : ['nvme-gen4', 'optane-appdirect'];
      const { report, files } = await characterize({
        outDir: staging,
        workloads: [
          {
            name: workload.name,
            program: runtimeProgram,
            dramBudgetBytes: split.dramPoolBytes,
            arenaBytes: split.arenaBytes,
          },
        ],
        devices,
        policies: ['lru', 'home'],
        png: options.png ?? true,
        replannedWhatIf: false,
        fileIoDir: tiers[0].dir,
        fileIo: { objectBytes: 2 ** 20, objects: 16 },
      });
      const trace = {
        model: basename(options.model),
        workload: workload.name,
        mode: workload.program.packing,
        images: workload.count,
        instructions: workload.program.instructions.length,
        memory_budget_bytes: budget,
        arena_bytes: split.arenaBytes,
        dram_pool_bytes: split.dramPoolBytes,
        tiers: specs.map((s, i) => ({ ...s, capacity_bytes: tiers[i].capacityBytes })),
        profile: profileName,
        planning_profile: planning,
        footprint_bytes: workload.footprintBytes,
        unlimited_seconds: reference ? reference.seconds : null,
        runs,
      };
      const tracePath = join(staging, 'trace.json');
      await writeFile(tracePath, `${JSON.stringify(trace)}\n`);
      const charts: { name: string; title: string; spec: ChartSpec }[] = [
        {
          name: 'measured-comparison',
          title: 'LRU vs HomE (measured)',
          spec: comparisonChart(runs, reference ? reference.seconds : null),
        },
        { name: 'measured-layers', title: 'Per layer (measured)', spec: layerChart(runs) },
        {
          name: 'measured-occupancy-home',
          title: 'Occupancy, HomE (measured)',
          spec: occupancyChart(runs[0]),
        },
      ];
      const rendered: string[] = [];
      const written = [...files, tracePath];
      for (const chart of charts) {
        const svg = await renderSvg(chart.spec);
        rendered.push(`<figure><figcaption>${escapeHtml(chart.title)}</figcaption>${svg}</figure>`);
        await writeFile(join(staging, `${chart.name}.svg`), svg);
        written.push(join(staging, `${chart.name}.svg`));
        if (options.png ?? true) {
          await writeFile(join(staging, `${chart.name}.png`), renderPng(svg));
          written.push(join(staging, `${chart.name}.png`));
        }
      }
      await writeFile(
        join(staging, 'report.html'),
        withMeasuredSection(
          await readFile(join(staging, 'report.html'), 'utf8'),
          trace,
          runs,
          rendered,
          report,
        ),
      );
      await publish(staging, out);
      const final = written.map((f) => join(out, basename(f)));
      print(`report: ${join(out, 'report.html')}`);
      return { files: final };
    } finally {
      disposeWorkload(workload);
    }
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  } finally {
    for (const tier of tiers) await tier.close();
    await io.terminate();
  }
}

function withMeasuredSection(
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

/**
 * Registers `home characterize`.
 *
 * @example
 * ```sh
 * home characterize --model models/cryptonets-mnist.onnx --data data/mnist/t10k-images-idx3-ubyte.gz \
 *   --dram-budget 512MiB --tier nvme:/data/he --profile optane-appdirect --out report/
 * ```
 */
export function registerCharacterize(program: Command): void {
  program
    .command('characterize')
    .description(
      'run a model through the tiered runtime (HomE and LRU, real slow-tier I/O) and write a JSON trace and an HTML report',
    )
    .requiredOption('--model <file>', 'ONNX model')
    .requiredOption('--data <path>', 'images: idx file (gzip or not), .npy, or a folder of PNGs')
    .option('--count <k>', 'images in the pass (batch mode; default 64)')
    .option('--mode <mode>', 'batch or latency', 'batch')
    .option('--encrypt-weights', 'encrypted weights (latency mode)')
    .option('--input-scale <s>', 'multiplier of raw values', '1/256')
    .option('--input-mean <m>', 'per-channel mean subtracted after --input-scale: m or m,m,m')
    .option('--input-std <s>', 'per-channel standard deviation divided by after the mean: s or s,s,s')
    .option('--policies <list>', 'policies measured: home, lru or home,lru', 'home,lru')
    .requiredOption('--dram-budget <size>', 'memory for objects (arena + DRAM pool), e.g. 512MiB')
    .option('--dram-pool <size>', 'part of the budget for the DRAM pool (default 1/32)')
    .option(
      '--tier <name:path>',
      'a slow tier directory (repeatable), e.g. nvme:/data/he',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option(
      '--profile <name>',
      `device emulated on the tiers: file (none), ${Object.keys(DEVICE_PROFILES).join(', ')}`,
      'file',
    )
    .option('--seeded-keys', 'keep only the b halves and seeds of keys in the slow tiers')
    .option('--no-png', 'SVG only')
    .requiredOption('--out <dir>', 'report directory')
    .action(
      async (flags: {
        model: string;
        data: string;
        count?: string;
        mode: string;
        encryptWeights?: boolean;
        inputScale: string;
        inputMean?: string;
        inputStd?: string;
        policies: string;
        dramBudget: string;
        dramPool?: string;
        tier: string[];
        profile: string;
        seededKeys?: boolean;
        png: boolean;
        out: string;
      }) => {
        const count = flags.count === undefined ? undefined : Number(flags.count);
        if (count !== undefined && (!Number.isInteger(count) || count < 1))
          throw new InvalidArgumentError(`--count ${flags.count}: expected a positive integer`);
        const inputScale = parseNumberOrFraction(flags.inputScale, '--input-scale');
        if (inputScale <= 0)
          throw new InvalidArgumentError(
            `--input-scale ${flags.inputScale}: expected a positive number or a fraction like 1/256`,
          );
        await runCharacterize({
          model: flags.model,
          data: flags.data,
          count,
          mode: flags.mode as 'batch' | 'latency',
          encryptWeights: flags.encryptWeights === true,
          inputScale,
          ...(flags.inputMean !== undefined
            ? { inputMean: parseNumberList(flags.inputMean, '--input-mean') }
            : {}),
          ...(flags.inputStd !== undefined
            ? { inputStd: parseNumberList(flags.inputStd, '--input-std') }
            : {}),
          policies: flags.policies.split(',').map((p) => p.trim()) as ('home' | 'lru')[],
          dramBudget: flags.dramBudget,
          dramPool: flags.dramPool,
          tiers: flags.tier,
          profile: flags.profile,
          seededKeys: flags.seededKeys === true,
          png: flags.png,
          out: flags.out,
        });
      },
    );
}
