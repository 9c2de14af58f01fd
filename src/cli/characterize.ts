import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { characterize } from '../report/characterize.ts';
import { type ChartSpec, renderPng, renderSvg } from '../report/render.ts';
import { DEVICE_PROFILES, type DeviceProfile, deviceProfile } from '../runtime/store/devices.ts';
import { FileTier } from '../runtime/store/file-tier.ts';
import { heRuntimeProgram, realRunHomePolicy } from '../runtime/he/program.ts';
import { splitMemoryBudget } from '../runtime/he/tiered.ts';
import { IoPool } from '../runtime/io/io-pool.ts';
import { LruPolicy } from '../runtime/plan/policy.ts';
import { Bootstrapper } from '../ckks/bootstrapping/bootstrapper.ts';
import { analyzeProgram } from '../runtime/plan/program.ts';
import { probeTier, slowerProfile } from '../runtime/store/tier-probe.ts';
import { InvalidArgumentError, ResourceError } from '../util/errors.ts';
import { planBudgetBytes } from './infer-memory.ts';
import {
  comparisonChart,
  escapeHtml,
  layerBytes,
  layerChart,
  MB,
  type MeasuredRun,
  occupancyChart,
  traceOf,
  withMeasuredSection,
} from './characterize-measured.ts';
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
  /** Images the approximations are calibrated on (default: `data`'s), and at most how many (default 256). */
  calibration?: string;
  calibrationCount?: number;
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
      ...(options.calibration !== undefined ? { calibration: options.calibration } : {}),
      ...(options.calibrationCount !== undefined ? { calibrationCount: options.calibrationCount } : {}),
      budgetBytes: budget,
      seed: options.seed,
      stashDir: tiers[0].dir,
    });
    try {
      // A bootstrapping program's run keeps more than its plan's objects in memory (the bootstrapper's resident
      // keys in kernel memory, the constants): its plan gets what `home infer` gives it (ResNet-20 under 4 GiB
      // otherwise ran the kernel memory past 4 GiB).
      const planBudget = workload.bootstrapper
        ? planBudgetBytes(budget, workload.program, workload.client.bootstrappingKeys)
        : budget;
      const runtimeProgram = heRuntimeProgram(workload.program, { liveCapBytes: 0.7 * planBudget });
      const split = splitMemoryBudget(
        analyzeProgram(runtimeProgram).maxStepBytes,
        planBudget,
        pool ?? Math.floor(planBudget / 32),
      );
      print(
        `${workload.name}: ${workload.program.instructions.length} instructions, footprint ${(workload.footprintBytes / MB).toFixed(0)} MB, ` +
          `memory budget ${(budget / MB).toFixed(1)} MB${planBudget < budget ? `, ${(planBudget / MB).toFixed(1)} MB of it for the plan` : ''} ` +
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
        // A long run (ResNet-20: a pass of 28,733 steps, tens of minutes) says how far it got on stderr, at most
        // a line every 30 s.
        const started = performance.now();
        let reported = started;
        const { logits, result, bootstraps } = await runTieredWorkload(workload, {
          onStep: (index, total) => {
            if (performance.now() - reported < 30_000) return;
            reported = performance.now();
            process.stderr.write(
              `home characterize: ${policyName}, step ${index + 1}/${total}, ${((reported - started) / 1000).toFixed(0)} s\n`,
            );
          },
          runtimeProgram,
          policy: policyName === 'home' ? realRunHomePolicy() : new LruPolicy(),
          memoryBudgetBytes: planBudget,
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
          ...(workload.bootstrapper
            ? {
                bootstraps,
                bootstrap_keys: Bootstrapper.phaseKeyBytes(workload.bootstrapper.parameters),
              }
            : {}),
        });
        if (bootstraps.length > 0) {
          const phase = (k: keyof (typeof bootstraps)[0]['phases']) =>
            bootstraps.reduce((sum, b) => sum + b.phases[k], 0);
          const total =
            phase('modRaise') + phase('coeffsToSlots') + phase('evalMod') + phase('slotsToCoeffs');
          print(
            `${policyName}: ${bootstraps.length} bootstraps, ${total.toFixed(1)} s (ModRaise ${phase('modRaise').toFixed(1)}, ` +
              `CoeffsToSlots ${phase('coeffsToSlots').toFixed(1)}, EvalMod ${phase('evalMod').toFixed(1)}, ` +
              `SlotsToCoeffs ${phase('slotsToCoeffs').toFixed(1)} s)`,
          );
        }
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
    .option(
      '--calibration <path>',
      "images the polynomial approximations are calibrated on, read like --data (default: --data's)",
    )
    .option('--calibration-count <k>', 'calibration images at most', '256')
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
        calibration?: string;
        calibrationCount: string;
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
          ...(flags.calibration !== undefined ? { calibration: flags.calibration } : {}),
          calibrationCount: parseNumberOrFraction(flags.calibrationCount, '--calibration-count'),
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
