import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findDataFile, findModelFile } from '../src/platform/bundled-files.ts';
import { collectGarbage } from '../src/platform/collect-garbage.ts';
import { type DeviceProfile, deviceProfile } from '../src/runtime/store/devices.ts';
import { type ExecutablePlan, simulate } from '../src/runtime/plan/planner.ts';
import { prewarmPlanningThread } from '../src/runtime/plan/streamed-plan.ts';
import { FileTier } from '../src/runtime/store/file-tier.ts';
import { heRuntimeProgram, realRunHomePolicy } from '../src/runtime/he/program.ts';
import { splitMemoryBudget } from '../src/runtime/he/tiered.ts';
import { IoPool } from '../src/runtime/io/io-pool.ts';
import { LruPolicy } from '../src/runtime/plan/policy.ts';
import { analyzeProgram } from '../src/runtime/plan/program.ts';
import { probeTier, slowerProfile } from '../src/runtime/store/tier-probe.ts';
import { assertInteger, check } from '../src/util/assert.ts';
import { median } from './support/median.ts';
import { KernelContext } from '../src/ring/context.ts';
import { availableCores } from '#kernel-threads';
import {
  disposeWorkload,
  type HeWorkload,
  type HeWorkloadOptions,
  prepareHeWorkload,
  runTieredWorkload,
  runUnlimited,
  sameResults,
} from '../src/cli/he-workload.ts';

/**
 * One line of `home bench tier` for an encrypted workload: a budgeted tiered run (real file I/O, optionally an
 * emulated device on top) beside the all-in-memory run of the same pass in the same process. `seconds` and
 * `unlimited_seconds` are medians over the rounds; `ratio_vs_unlimited` is the median of the per-round ratios
 * (each round runs unlimited, then the tiered configurations, back to back). `correct`: every round's decrypted
 * outputs are bit-identical to the unlimited run's and their argmax equals the float simulation's.
 *
 * `dram_budget_bytes` is the memory the run may use for objects: the arena of live objects (`arena_bytes`) plus
 * the DRAM pool of byte buffers (`dram_pool_bytes`); both are host DRAM.
 *
 * @example
 * ```ts
 * const record: HeTierBenchRecord = JSON.parse(line);
 * console.log(record.workload, record.policy, record.ratio_vs_unlimited);
 * ```
 */
export interface HeTierBenchRecord {
  suite: 'tier';
  workload: string;
  policy: 'home' | 'lru';
  profile: string;
  mode: 'real';
  seeded_keys: boolean;
  dram_budget_bytes: number;
  arena_bytes: number;
  dram_pool_bytes: number;
  peak_footprint_bytes: number;
  bytes_read_slow: number;
  bytes_written_slow: number;
  key_bytes_read_slow: number;
  /**
   * Median over rounds of what a run cost: its execution plus the planning it paid (the first round plans; later
   * rounds reuse the plan, as a server's later requests do). See `seconds_include_planning`.
   */
  seconds: number | null;
  unlimited_seconds: number | null;
  /** Median over rounds of `seconds` / the all-in-memory run of the same round. */
  ratio_vs_unlimited: number | null;
  /** Always true: `seconds` and `ratio_vs_unlimited` include planning. */
  seconds_include_planning: true;
  /** The first round alone (planning included) and its ratio to the all-in-memory run of that round. */
  first_run_seconds: number | null;
  first_run_ratio: number | null;
  /** Median over rounds of the execution alone (no planning). */
  execution_seconds: number | null;
  stall_seconds: number | null;
  /** Regenerating seeded key halves (seeded runs). */
  key_expand_seconds: number | null;
  /**
   * Planning on the virtual clock, done by the first round on the planning thread while it runs: the planner's
   * own time, and what the first run waited for it — before starting (part of its `seconds`) and for actions
   * while running (inside its execution time).
   */
  planning_seconds: number;
  plan_start_wait_seconds: number;
  plan_wait_in_run_seconds: number;
  /** Kernel threads of both the tiered and the all-in-memory runs. */
  threads: number;
  /** Arena/DRAM physical peaks: never above their shares of the budget. */
  arena_peak_bytes: number | null;
  dram_pool_peak_bytes: number | null;
  rounds: number;
  correct: boolean;
  error?: string;
}

/**
 * Options of {@link runHeTierBench}.
 *
 * @example
 * ```ts
 * await runHeTierBench({ quick: true, out: (line) => console.log(line) });
 * ```
 */
export interface HeTierBenchOptions {
  /** CryptoNets only (batch, and latency with encrypted weights), two rounds, no seeded-keys variant. */
  quick?: boolean;
  out?: (line: string) => void;
  /** Parent of the temporary tier directories (default: the OS temp directory). */
  dir?: string;
  /** Images per batch pass (default 64; the program is the same for any count, 8192 slots at N = 2^14). */
  batchImages?: number;
  /** Rounds per configuration (default 3, 2 with `quick`: the first pays the planning, later ones replay the plan). */
  rounds?: number;
  /** Memory budget as a fraction of the peak footprint (default 1/8). */
  budgetFraction?: number;
  /** Profiles: `file` (real files) and device profiles emulated on them (default file, optane-appdirect). */
  profiles?: string[];
  /** Workload names to run (default all of the mode). */
  workloads?: string[];
  /**
   * Kernel threads of every run, the all-in-memory ones included (default: the cores left beside the I/O pool's
   * threads, at least 1). Both sides compute on as many threads, so the ratio measures what the tiers cost; on a
   * machine with no core to spare the I/O threads would also take compute time from the tiered runs.
   */
  threads?: number;
}

const homePolicy = realRunHomePolicy;

/**
 * Brings the process and the OS to a quiet state before a timed run: the setup's dirty pages written out (the
 * kernel's background writeback of gigabytes of model state would otherwise land inside the measurement) and a
 * full garbage collection (the previous run's garbage would otherwise be collected by V8's helper threads during
 * this one, and on a 2-core machine they take the core the I/O worker needs). Every timed run, the all-in-memory
 * ones included, starts from it.
 */
function quiesce(): void {
  try {
    execFileSync('sync', { stdio: 'ignore', timeout: 120_000 });
  } catch {
    // No sync(1) here: the run is measured without it.
  }
  collectGarbage();
}

interface BenchWorkload {
  name: string;
  options: HeWorkloadOptions;
  rounds: number;
}

function workloadsFor(options: HeTierBenchOptions): BenchWorkload[] {
  // Two rounds in --quick (the first plans, the second replays the plan), three otherwise.
  const defaultRounds = options.quick ? 2 : 3;
  const data = findDataFile('mnist/t10k-images-idx3-ubyte.gz');
  const images = options.batchImages ?? 64;
  const list: BenchWorkload[] = [
    {
      name: 'cryptonets-batch',
      options: { model: findModelFile('cryptonets-mnist.onnx'), data, count: images, mode: 'batch' },
      rounds: options.rounds ?? defaultRounds,
    },
    {
      name: 'cryptonets-latency-encw',
      options: {
        model: findModelFile('cryptonets-mnist.onnx'),
        data,
        count: 1,
        mode: 'latency',
        encryptWeights: true,
      },
      rounds: options.rounds ?? defaultRounds,
    },
  ];
  if (!options.quick) {
    list.push(
      {
        name: 'lola-small-batch',
        options: { model: findModelFile('lola-small-mnist.onnx'), data, count: images, mode: 'batch' },
        rounds: options.rounds ?? defaultRounds,
      },
      {
        name: 'lola-small-latency-encw',
        options: {
          model: findModelFile('lola-small-mnist.onnx'),
          data,
          count: 1,
          mode: 'latency',
          encryptWeights: true,
        },
        rounds: options.rounds ?? defaultRounds,
      },
    );
  }
  return options.workloads ? list.filter((w) => options.workloads!.includes(w.name)) : list;
}

/** Peak bytes of the objects the program holds at once when memory is unlimited (instruction order as compiled). */
async function peakFootprint(workload: HeWorkload): Promise<number> {
  const program = heRuntimeProgram(workload.program, { schedule: 'program' });
  const run = simulate(program, { policy: 'home', dramBudgetBytes: Infinity, slow: null });
  return run.summary.peakBytes.dram;
}

interface Config {
  policy: 'home' | 'lru';
  seeded: boolean;
}

/**
 * `home bench tier`: encrypted CryptoNets (batch mode, and latency mode with encrypted weights; with the full set
 * also LoLa-Small) through the tiered runtime with a memory budget of 1/8 of the program's peak footprint, HomE and
 * LRU (and HomE with seeded keys), on real files in a temporary directory and with `optane-appdirect` emulated on
 * them, each beside the all-in-memory run of the same pass. Prints one {@link HeTierBenchRecord} per line.
 *
 * @example
 * ```ts
 * const records = await runHeTierBench({ quick: true });
 * ```
 */
export async function runHeTierBench(options: HeTierBenchOptions = {}): Promise<HeTierBenchRecord[]> {
  const write = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const fraction = options.budgetFraction ?? 1 / 8;
  check(fraction > 0 && fraction <= 1, () => `budgetFraction = ${fraction}: expected a value in (0, 1]`);
  const profiles = options.profiles ?? ['file', 'optane-appdirect'];
  const emulated = profiles.map((p) => (p === 'file' ? null : deviceProfile(p)));
  const parent = options.dir ?? tmpdir();
  const records: HeTierBenchRecord[] = [];
  const io = new IoPool();
  const threads = options.threads ?? Math.max(1, availableCores() - io.size);
  assertInteger(threads, 'threads', 1, 1024);
  try {
    for (const spec of workloadsFor(options)) {
      // Each workload in a kernel context of its own: one workload's freed blocks (its polynomial sizes) cannot
      // serve the next one's, and the two together overflowed the 4 GiB of one context.
      const workload = prepareHeWorkload({ ...spec.options, context: KernelContext.create({ threads }) });
      try {
        const peak = await peakFootprint(workload);
        const budget = Math.floor(peak * fraction);
        const runtimeProgram = heRuntimeProgram(workload.program, { liveCapBytes: 0.7 * budget });
        const split = splitMemoryBudget(
          analyzeProgram(runtimeProgram).maxStepBytes,
          budget,
          Math.floor(budget / 32),
        );
        for (let p = 0; p < profiles.length; p++) {
          const dir = await mkdtemp(join(parent, 'home-bench-tier-'));
          const tiers: FileTier[] = [];
          try {
            const open = async (sub: string) => {
              await mkdir(join(dir, sub));
              return FileTier.open({
                name: 'disk',
                dir: join(dir, sub),
                io,
                ...(emulated[p] ? { emulate: emulated[p]! } : {}),
              });
            };
            const configs: Config[] = [
              { policy: 'home', seeded: false },
              // The seeded-keys variant is left out of --quick: the quick run must fit the 10 minutes a check
              // gives it on a 2-core machine, with two rounds of everything else.
              ...(options.quick ? [] : [{ policy: 'home' as const, seeded: true }]),
              { policy: 'lru', seeded: false },
            ];
            // The model state (keys, encrypted weights) is written once per tier and kept between runs. Each
            // configuration has a directory of its own: seeded and full keys have different stored forms, and HomE
            // runs reading the files an LRU run had just read were measurably slower on the test machine (cause
            // not found), which would have charged one policy for the other.
            for (const c of configs) tiers.push(await open(`${c.policy}${c.seeded ? '-seeded' : ''}`));
            const tier = tiers[0];
            const measured = await probeTier(tier);
            const planning: DeviceProfile = emulated[p] ? slowerProfile(measured, emulated[p]!) : measured;
            // Each configuration plans in its first round (the planning is part of that run's time) and reuses
            // the plan in the later rounds, as a server reuses it for every later request.
            const plans: (ExecutablePlan | undefined)[] = configs.map(() => undefined);
            const planningNs: number[] = configs.map(() => 0);
            const planWaits = configs.map(() => ({ start: 0, inRun: 0 }));
            const unlimitedSeconds: number[] = [];
            const perConfig = configs.map(() => ({
              seconds: [] as number[],
              ratios: [] as number[],
              execution: [] as number[],
              correct: true,
              last: null as Awaited<ReturnType<typeof runTieredWorkload>>['result']['stats'] | null,
              error: undefined as string | undefined,
            }));
            for (let round = 0; round < spec.rounds; round++) {
              quiesce();
              const reference = await runUnlimited(workload);
              unlimitedSeconds.push(reference.seconds);
              for (let c = 0; c < configs.length; c++) {
                const acc = perConfig[c];
                if (acc.error) continue;
                try {
                  // A planning thread started (modules loaded) before the run, like the I/O pool's threads;
                  // the planning itself is part of the run.
                  if (!plans[c]) await prewarmPlanningThread();
                  const { logits, result } = await runTieredWorkload(workload, {
                    runtimeProgram,
                    policy: configs[c].policy === 'home' ? homePolicy() : new LruPolicy(),
                    memoryBudgetBytes: budget,
                    dramPoolBytes: split.dramPoolBytes,
                    tiers: [tiers[c]],
                    seededKeys: configs[c].seeded,
                    keepModelState: true,
                    beforeRun: quiesce,
                    planningDevices: [planning],
                    // The first round plans on the planning thread while it runs; later rounds reuse the plan.
                    ...(plans[c] ? { plan: plans[c] } : { streamPlan: true }),
                  });
                  for (const ct of result.outputs.values()) ct.dispose();
                  if (!plans[c]) {
                    plans[c] = result.plan;
                    planningNs[c] = result.stats.planningSeconds * 1e9;
                    planWaits[c] = {
                      start: result.stats.planStartWaitSeconds,
                      inRun: result.stats.planWaitInRunSeconds,
                    };
                  }
                  // What the run cost: its execution (waits for a streamed plan's actions included) plus the wait
                  // for planning before it started (0 with the plan reused).
                  const paid = result.stats.seconds + result.stats.planStartWaitSeconds;
                  acc.execution.push(result.stats.seconds);
                  acc.seconds.push(paid);
                  acc.ratios.push(paid / reference.seconds);
                  acc.correct &&= sameResults(workload, logits, reference.logits);
                  acc.correct &&= result.stats.dramPeakBytes <= split.dramPoolBytes;
                  acc.correct &&= result.stats.arenaPeakBytes <= split.arenaBytes;
                  acc.correct &&= result.stats.readOnlyWritten.length === 0;
                  acc.last = result.stats;
                } catch (error) {
                  acc.error = (error as Error).message;
                  acc.correct = false;
                }
              }
            }
            configs.forEach((config, c) => {
              const acc = perConfig[c];
              const s = acc.last;
              const record: HeTierBenchRecord = {
                suite: 'tier',
                workload: spec.name,
                policy: config.policy,
                profile: profiles[p],
                mode: 'real',
                seeded_keys: config.seeded,
                dram_budget_bytes: budget,
                arena_bytes: split.arenaBytes,
                dram_pool_bytes: split.dramPoolBytes,
                peak_footprint_bytes: peak,
                threads,
                bytes_read_slow: s?.slowBytesRead ?? 0,
                bytes_written_slow: s?.slowBytesWritten ?? 0,
                key_bytes_read_slow: s?.keyBytesRead ?? 0,
                seconds: acc.seconds.length ? round(median(acc.seconds)) : null,
                unlimited_seconds: round(median(unlimitedSeconds)),
                ratio_vs_unlimited: acc.ratios.length ? round(median(acc.ratios)) : null,
                seconds_include_planning: true,
                first_run_seconds: acc.seconds.length ? round(acc.seconds[0]) : null,
                first_run_ratio: acc.ratios.length ? round(acc.ratios[0]) : null,
                execution_seconds: acc.execution.length ? round(median(acc.execution)) : null,
                stall_seconds: s ? round(s.stallSeconds) : null,
                key_expand_seconds: s ? round(s.keyExpandSeconds) : null,
                planning_seconds: round(planningNs[c] / 1e9),
                plan_start_wait_seconds: round(planWaits[c].start),
                plan_wait_in_run_seconds: round(planWaits[c].inRun),
                arena_peak_bytes: s?.arenaPeakBytes ?? null,
                dram_pool_peak_bytes: s?.dramPeakBytes ?? null,
                rounds: acc.seconds.length,
                correct: acc.correct && acc.seconds.length > 0,
                ...(acc.error ? { error: acc.error } : {}),
              };
              records.push(record);
              write(JSON.stringify(record));
            });
          } finally {
            for (const t of tiers) await t.close();
            await rm(dir, { recursive: true, force: true });
          }
        }
      } finally {
        disposeWorkload(workload);
      }
    }
  } finally {
    await io.terminate();
  }
  return records;
}

function round(x: number): number {
  return Number(x.toPrecision(5));
}
