import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check } from '../src/util/assert.ts';
import { median } from './support/median.ts';
import { idHash64 } from '../src/runtime/store/checksum.ts';
import { type DeviceProfile, deviceProfile, nowNs } from '../src/runtime/store/devices.ts';
import { type ByteRunResult, type ComputeFn, runByteProgram } from '../src/runtime/exec/byte-run.ts';
import { simulate } from '../src/runtime/plan/planner.ts';
import { FileTier } from '../src/runtime/store/file-tier.ts';
import { IoPool } from '../src/runtime/io/io-pool.ts';
import { payloadChecksum } from '../src/runtime/store/object-format.ts';
import { HomePolicy, LruPolicy, type Policy } from '../src/runtime/plan/policy.ts';
import type { ObjectId, ObjectInfo, AccessProgram } from '../src/program/access.ts';
import { analyzeProgram } from '../src/runtime/plan/program.ts';
import { cryptoNetsProgram, deepCnnProgram, interleavedModelsProgram } from './workloads/synthetic.ts';

/**
 * One line of `home bench tier`: a budgeted run beside the unlimited-DRAM run of the same workload, mode and
 * profile. `correct` (real mode): every slow-tier read was verified against the content hash written with the
 * object, every operand a step read carried the version last written to it, and every object that exists after
 * the run reads back with the content hash of what was written (virtual mode has no bytes: `correct` means the
 * run kept its budget).
 *
 * @example
 * ```ts
 * const record: TierBenchRecord = JSON.parse(line);
 * if (record.ratio_vs_unlimited > 1.1) console.log(record.workload, record.policy, record.profile);
 * ```
 */
export interface TierBenchRecord {
  suite: 'tier';
  workload: string;
  policy: 'home' | 'lru';
  /** `file` (real files, no emulation), a device profile emulated on real files, or the virtual device. */
  profile: string;
  mode: 'real' | 'virtual';
  dram_budget_bytes: number;
  peak_footprint_bytes: number;
  bytes_read_slow: number;
  bytes_written_slow: number;
  seconds: number | null;
  unlimited_seconds: number | null;
  ratio_vs_unlimited: number | null;
  /** Real mode: verified read throughput of the slow tier (bytes read / worker busy time), GB/s. */
  read_gbps?: number | null;
  /** Real mode: rounds behind the medians (`seconds`, `unlimited_seconds`, `ratio_vs_unlimited`, `read_gbps`). */
  repeats?: number;
  correct: boolean;
  error?: string;
}

/**
 * Options of {@link runTierBench}.
 *
 * @example
 * ```ts
 * await runTierBench({ quick: true, out: (line) => lines.push(line) });
 * ```
 */
export interface TierBenchOptions {
  /** Small instances of every workload (seconds instead of minutes). */
  quick?: boolean;
  /** Receives each JSON line: a function or a stream (default: stdout). */
  out?: ((line: string) => void) | { write(chunk: string): unknown };
  /** Parent of the temp directories of the real-I/O runs (default: the OS temp directory). */
  dir?: string;
  /** Which modes to run (default both). */
  modes?: ('real' | 'virtual')[];
  /** Workload names to run (default all: `cryptonets`, `deep-cnn`, `interleaved`). */
  workloads?: string[];
  /** DRAM budget as a fraction of the peak footprint (default 1/8). */
  budgetFraction?: number;
  /** Real-I/O rounds (unlimited, HomE, LRU back to back) per workload and profile; medians are reported. */
  repeats?: number;
}

interface BenchWorkload {
  name: string;
  program: AccessProgram;
}

function workloads(quick: boolean): BenchWorkload[] {
  return quick
    ? [
        { name: 'cryptonets', program: cryptoNetsProgram({ imageSide: 12, hidden: 12 }) },
        {
          name: 'deep-cnn',
          program: deepCnnProgram({ shape: SMALL_SHAPE, layers: 3, channels: 2, stages: 2 }),
        },
        { name: 'interleaved', program: interleavedModelsProgram({ models: 4, requestsPerModel: 1 }) },
      ]
    : [
        { name: 'cryptonets', program: cryptoNetsProgram() },
        { name: 'deep-cnn', program: deepCnnProgram({ shape: SMALL_SHAPE, layers: 6, channels: 3 }) },
        { name: 'interleaved', program: interleavedModelsProgram({ models: 8, requestsPerModel: 2 }) },
      ];
}

/** N = 2^13 with 8 limbs: 512 KiB ciphertexts, so real-I/O runs take seconds, not minutes. */
const SMALL_SHAPE = { logN: 13, limbs: 8, specialLimbs: 4, nsPerModularMultiply: 0.4 };

/**
 * The HomE policy of the benchmark. Real-I/O runs prefetch a few steps beyond what the timing test asks for: the
 * device profile the policy plans with is a model, and a late prefetch costs a stall while an early one only a
 * little cache.
 */
function homePolicy(mode: 'real' | 'virtual'): Policy {
  return mode === 'real' ? new HomePolicy({ minLookaheadSteps: 4 }) : new HomePolicy();
}

/**
 * Compute for timed real-mode runs: busy-waits the step's modelled cost (the HE kernels will hold the thread as
 * long), and within that time stamps what it writes and checks what it reads, so a stale, misplaced or torn
 * object is caught. Each written version fills its buffer with a byte, then puts a (version, id) stamp at both
 * ends and a position-dependent word on every 4 KiB page; a reader checks both ends and 16 words spread over the
 * buffer (initial contents are a per-word formula, checked the same way). Byte-level integrity of every
 * slow-tier read is the I/O worker's content-hash check.
 */
class StampedCompute {
  /** Expected first and last 8 bytes, and the version (-1: initial contents), of each object's current version. */
  readonly #expected = new Map<ObjectId, { edges: string; version: number }>();
  readonly failures: string[] = [];
  readonly #initialHashes = new Map<ObjectId, number>();
  #versions = 0;

  /** Initial contents: position-dependent words from the id (fast to make; any misplaced page shows). */
  initialContent = (info: ObjectInfo): Uint8Array => {
    const bytes = initialBytes(info);
    this.#initialHashes.set(info.id, payloadChecksum(bytes));
    this.#expected.set(info.id, { edges: edges(bytes), version: -1 });
    return bytes;
  };

  run: ComputeFn = (step, io) => {
    const until = nowNs() + (step.computeCostNs ?? 0);
    for (const id of step.reads) {
      const expected = this.#expected.get(id);
      const bytes = io.read(id);
      if (!expected) {
        this.failures.push(`step ${step.index} read "${id}" before any version was recorded`);
        continue;
      }
      if (edges(bytes) !== expected.edges || !wordsMatch(bytes, id, expected.version, step.index)) {
        const version = expected.version < 0 ? 'its initial contents' : `version ${expected.version}`;
        this.failures.push(`step ${step.index} read "${id}": expected ${version}, got other bytes`);
      }
    }
    for (const id of step.writes) {
      const version = ++this.#versions;
      const bytes = io.write(id);
      fillVersion(bytes, version, id);
      this.#expected.set(id, { edges: edges(bytes), version });
    }
    while (nowNs() < until) {
      // The modelled compute occupies this thread, as the HE kernels will.
    }
  };

  /** Compares the content hash of every object that exists after the run (as read back) with what was written. */
  verifyFinal(program: AccessProgram, readBack: ReadonlyMap<ObjectId, Uint8Array>): void {
    for (const info of program.objects) {
      const bytes = readBack.get(info.id);
      if (!bytes) continue;
      const expected = this.#expected.get(info.id)!;
      const actual = payloadChecksum(bytes);
      let want: number;
      if (expected.version < 0) {
        want = this.#initialHashes.get(info.id)!;
      } else {
        const reference = new Uint8Array(info.bytes);
        fillVersion(reference, expected.version, info.id);
        want = payloadChecksum(reference);
      }
      if (actual !== want) {
        this.failures.push(
          `object "${info.id}" reads back with content hash 0x${actual.toString(16)}: expected 0x${want.toString(16)}`,
        );
      }
    }
  }
}

function initialBytes(info: ObjectInfo): Uint8Array {
  const bytes = new Uint8Array(new SharedArrayBuffer(info.bytes));
  const words = new Uint32Array(bytes.buffer, 0, info.bytes >>> 2);
  const seed = seedOf(info.id);
  for (let k = 0; k < words.length; k++) words[k] = Math.imul(k + 1, 0x9e3779b1) ^ seed;
  for (let k = words.length * 4; k < bytes.length; k++) bytes[k] = k ^ seed;
  return bytes;
}

function fillVersion(bytes: Uint8Array, version: number, id: ObjectId): void {
  bytes.fill(version & 0xff);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idWord = Number.parseInt(idHash64(id).slice(8), 16);
  for (let page = 4096; page + 4 <= bytes.length; page += 4096)
    view.setUint32(page, (version ^ page) >>> 0, true);
  if (bytes.length >= 16) {
    view.setUint32(0, version, true);
    view.setUint32(4, idWord, true);
    view.setUint32(bytes.length - 8, version, true);
    view.setUint32(bytes.length - 4, idWord, true);
  }
}

/** The first and last 8 bytes (all of a shorter buffer), as a comparable string. */
function edges(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n <= 16) return bytes.join(',');
  const view = new DataView(bytes.buffer, bytes.byteOffset, n);
  return `${view.getUint32(0)},${view.getUint32(4)},${view.getUint32(n - 8)},${view.getUint32(n - 4)}`;
}

/**
 * Spot-checks 16 words of `bytes` spread over the buffer (offsets vary with `salt`, so successive reads of an
 * object look at different places): initial contents against their formula, written versions against their page
 * words. Cheap enough to run on every operand inside the modelled compute time.
 */
function wordsMatch(bytes: Uint8Array, id: ObjectId, version: number, salt: number): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (version < 0) {
    const words = bytes.length >>> 2;
    if (words === 0) return true;
    const seed = seedOf(id);
    for (let j = 0; j < 16; j++) {
      const k = (Math.imul(j, 0x9e3779b1) + salt) >>> 0;
      const at = k % words;
      if (view.getUint32(at * 4, true) !== (Math.imul(at + 1, 0x9e3779b1) ^ seed) >>> 0) return false;
    }
    return true;
  }
  const pages = Math.floor((bytes.length - 4) / 4096);
  for (let j = 0; j < 16 && pages >= 1; j++) {
    const at = (1 + (((Math.imul(j, 0x9e3779b1) + salt) >>> 0) % pages)) * 4096;
    if (view.getUint32(at, true) !== (version ^ at) >>> 0) return false;
  }
  return true;
}

function seedOf(id: ObjectId): number {
  return Number.parseInt(idHash64(id).slice(8), 16) | 0;
}

/** Peak DRAM of the unlimited run (what the program holds at once), from the virtual clock. */
async function peakFootprint(program: AccessProgram): Promise<number> {
  const unlimited = simulate(program, { policy: 'home', dramBudgetBytes: Infinity, slow: null });
  return unlimited.summary.peakBytes.dram;
}

interface RealRun {
  result: ByteRunResult | null;
  readGBps: number | null;
  correct: boolean;
  error?: string;
}

async function realRun(
  program: AccessProgram,
  policy: Policy,
  budget: number,
  emulate: DeviceProfile | null,
  parent: string,
  io: IoPool,
): Promise<RealRun> {
  const dir = await mkdtemp(join(parent, 'home-bench-tier-'));
  const compute = new StampedCompute();
  let tier: FileTier | null = null;
  try {
    tier = await FileTier.open({ name: 'disk', dir, io, ...(emulate ? { emulate } : {}) });
    const result = await runByteProgram({
      program,
      policy,
      dramBudgetBytes: budget,
      tiers: [tier],
      compute: compute.run,
      initialContent: compute.initialContent,
      readBack: 'existing',
    });
    const stats = tier.stats;
    compute.verifyFinal(program, result.outputs);
    const withinBudget = result.summary.peakBytes.dram <= budget && result.summary.dramPhysicalPeak <= budget;
    if (!withinBudget) compute.failures.push(`DRAM peak above the budget of ${budget} bytes`);
    return {
      result,
      readGBps: stats.readBusyNs > 0 ? stats.bytesRead / stats.readBusyNs : null,
      correct: compute.failures.length === 0,
      ...(compute.failures.length > 0 ? { error: compute.failures.slice(0, 3).join('; ') } : {}),
    };
  } catch (error) {
    return { result: null, readGBps: null, correct: false, error: (error as Error).message };
  } finally {
    await tier?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function writer(out: TierBenchOptions['out']): (line: string) => void {
  if (out === undefined) return (line) => process.stdout.write(`${line}\n`);
  if (typeof out === 'function') return out;
  return (line) => out.write(`${line}\n`);
}

/**
 * `home bench tier`: for each synthetic workload (CryptoNets-like, a deep CNN, many interleaved models), runs HomE
 * and LRU with DRAM = 1/8 of the peak footprint beside the unlimited-DRAM run, in real-I/O mode (files in a temp
 * directory, read and written by the I/O workers, busy-wait compute at the modelled cost; profiles `file` and
 * `optane-appdirect` emulated on the files) and on the virtual clock (`optane-appdirect`, `nvme-gen4`). Prints
 * one JSON line per budgeted run ({@link TierBenchRecord}) and returns the records.
 *
 * @example
 * ```ts
 * const records = await runTierBench({ quick: true, out: process.stdout });
 * console.log(records.filter((r) => r.policy === 'home').map((r) => r.ratio_vs_unlimited));
 * ```
 */
export async function runTierBench(options: TierBenchOptions = {}): Promise<TierBenchRecord[]> {
  const write = writer(options.out);
  const quick = options.quick ?? false;
  const fraction = options.budgetFraction ?? 1 / 8;
  check(fraction > 0 && fraction <= 1, () => `budgetFraction = ${fraction}: expected a value in (0, 1]`);
  const modes = options.modes ?? ['real', 'virtual'];
  const repeats = options.repeats ?? (quick ? 1 : 3);
  check(Number.isInteger(repeats) && repeats >= 1, () => `repeats = ${repeats}: expected an integer >= 1`);
  const parent = options.dir ?? tmpdir();
  const records: TierBenchRecord[] = [];
  const emit = (record: TierBenchRecord) => {
    records.push(record);
    write(JSON.stringify(record));
  };
  const io = new IoPool();
  try {
    for (const { name, program } of workloads(quick)) {
      if (options.workloads && !options.workloads.includes(name)) continue;
      const analysis = analyzeProgram(program);
      const peak = await peakFootprint(program);
      const budget = Math.max(Math.floor(peak * fraction), analysis.maxStepBytes);
      const base = {
        suite: 'tier' as const,
        workload: program.name,
        dram_budget_bytes: budget,
        peak_footprint_bytes: peak,
      };
      if (modes.includes('virtual')) {
        for (const profile of ['optane-appdirect', 'nvme-gen4']) {
          const unlimited = simulate(program, {
            policy: 'home',
            dramBudgetBytes: Infinity,
            slow: null,
          });
          for (const policyName of ['home', 'lru'] as const) {
            const run = simulate(program, {
              policy: policyName === 'home' ? homePolicy('virtual') : new LruPolicy(),
              dramBudgetBytes: budget,
              slow: profile,
            });
            const s = run.summary;
            emit({
              ...base,
              policy: policyName,
              profile,
              mode: 'virtual',
              bytes_read_slow: s.slowBytesRead,
              bytes_written_slow: s.slowBytesWritten,
              seconds: s.totalNs / 1e9,
              unlimited_seconds: unlimited.summary.totalNs / 1e9,
              ratio_vs_unlimited: s.totalNs / unlimited.summary.totalNs,
              correct: s.peakBytes.dram <= budget,
            });
          }
        }
      }
      if (modes.includes('real')) {
        for (const profile of ['file', 'optane-appdirect']) {
          const emulate = profile === 'file' ? null : deviceProfile(profile);
          // Unlimited, HomE and LRU back to back, `repeats` times: each ratio compares runs minutes apart at most,
          // and the median of the ratios resists a burst of load from other processes on the machine.
          const rounds: Record<'unlimited' | 'home' | 'lru', RealRun>[] = [];
          for (let r = 0; r < repeats; r++) {
            rounds.push({
              unlimited: await realRun(program, homePolicy('real'), Infinity, emulate, parent, io),
              home: await realRun(program, homePolicy('real'), budget, emulate, parent, io),
              lru: await realRun(program, new LruPolicy(), budget, emulate, parent, io),
            });
          }
          for (const policyName of ['home', 'lru'] as const) {
            const runs = rounds.map((round) => ({ run: round[policyName], unlimited: round.unlimited }));
            const ok = runs.every(({ run, unlimited }) => run.result && unlimited.result);
            const seconds = (pick: (x: (typeof runs)[number]) => RealRun) =>
              median(runs.map((x) => pick(x).result!.summary.totalNs / 1e9));
            const s = runs[0].run.result?.summary;
            const error = runs.map(({ run, unlimited }) => run.error ?? unlimited.error).find((e) => e);
            emit({
              ...base,
              policy: policyName,
              profile,
              mode: 'real',
              bytes_read_slow: s?.slowBytesRead ?? 0,
              bytes_written_slow: s?.slowBytesWritten ?? 0,
              seconds: ok ? seconds((x) => x.run) : null,
              unlimited_seconds: ok ? seconds((x) => x.unlimited) : null,
              ratio_vs_unlimited: ok
                ? median(runs.map((x) => x.run.result!.summary.totalNs / x.unlimited.result!.summary.totalNs))
                : null,
              read_gbps: ok ? median(runs.map((x) => x.run.readGBps ?? 0)) : null,
              repeats,
              correct: runs.every(({ run, unlimited }) => run.correct && unlimited.correct),
              ...(error ? { error } : {}),
            });
          }
        }
      }
    }
  } finally {
    await io.terminate();
  }
  return records;
}
