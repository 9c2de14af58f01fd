import { existsSync } from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { Bootstrapper } from '../src/ckks/bootstrapping/bootstrapper.ts';
import { BootstrappingParameters } from '../src/ckks/bootstrapping/parameters.ts';
import { Encoder } from '../src/ckks/encoder.ts';
import { Encryptor } from '../src/ckks/encryptor.ts';
import { Evaluator } from '../src/ckks/evaluator.ts';
import { KeyGenerator } from '../src/ckks/keys.ts';
import { Parameters, PRESETS, type ParametersLiteral } from '../src/ckks/parameters.ts';
import { runInfer } from '../src/cli/infer.ts';
import { findDataFile, findModelFile } from '../src/platform/bundled-files.ts';
import { defaultContext, type KernelContext, setDefaultThreads } from '../src/ring/context.ts';
import { inttInPlace, nttInPlace } from '../src/ring/ops.ts';
import { Poly } from '../src/ring/poly.ts';
import { assertInteger } from '../src/util/assert.ts';
import { median } from './support/median.ts';

/**
 * One workload at one thread and at `threads`, both measured in this run.
 */
export interface ThreadsRecord {
  suite: 'threads';
  workload: string;
  threads: number;
  /** Seconds of one unit of work (an operation, all images, one image) on one thread and on `threads`. */
  seconds_1: number;
  seconds_n: number;
  speedup: number;
  /** CryptoNets: images per second at `threads` (and at one thread). */
  images_per_s?: number;
  images_per_s_1?: number;
  /** Bit-identical results at both thread counts (digests of the outputs; for inference, accuracy and agreement). */
  identical: boolean;
  /** Inference: the phases of each run (compute and stall per image; setup and planning in all). */
  phases_1?: Phases;
  phases_n?: Phases;
  compute_speedup?: number;
  /** What one unit is, and the parameters. */
  unit: string;
}

/**
 * Options of {@link runThreadsBench}.
 *
 * @example
 * ```ts
 * await runThreadsBench({ threads: 2, reps: 5 });
 * ```
 */
export interface ThreadsBenchOptions {
  /** Threads of the parallel side (default: the available cores). */
  readonly threads?: number;
  /** Repetitions per operation, alternating 1 and n threads (medians reported; the speed-up is the median of the pairs'). */
  readonly reps?: number;
  /** CryptoNets: MNIST images (default 10,000, the demo's run). */
  readonly images?: number;
  /** The zoo MNIST CNN (latency packing): its ONNX file, or none to skip it. */
  readonly zooModel?: string;
  /** Images of the zoo CNN per thread count. */
  readonly zooImages?: number;
  /** Only these workloads. */
  readonly workloads?: readonly string[];
  /** Bootstrapping: pairs of runs (one on each side); default 2. */
  readonly bootstrapPairs?: number;
  readonly write?: (line: string) => void;
  readonly progress?: (line: string) => void;
}

const round = (x: number, digits = 4) => Number(x.toFixed(digits));

/** A run's phases: compute and stall seconds per image, setup and planning seconds in all. */
interface Phases {
  compute: number;
  setup: number;
  stall: number;
  planning: number;
}

function roundPhases(p: Phases): Phases {
  return {
    compute: round(p.compute),
    setup: round(p.setup),
    stall: round(p.stall),
    planning: round(p.planning),
  };
}

/** SHA-256 of the words of some polynomials: equal digests for the same bits. */
function digest(context: KernelContext, polys: readonly Poly[]): string {
  const hash = sha256.create();
  for (const p of polys) hash.update(context.bytes(p.pointer, p.n * p.limbCount * 4));
  return bytesToHex(hash.digest());
}

/**
 * Times `work` alternately on one thread and on `threads`, `reps` times each, after a warm-up on each. `work`
 * returns what to do after the clock stops: digest its results (and free them), outside the time measured.
 */
function alternate(
  context: KernelContext,
  threads: number,
  reps: number,
  work: () => () => string,
  options: { warmUp?: boolean } = {},
): { seconds1: number; secondsN: number; speedup: number; identical: boolean } {
  const times: Record<'1' | 'n', number[]> = { '1': [], n: [] };
  const digests = new Set<string>();
  // Warm-up, untimed: at least half a second on each side (new threads start, and their copy of the kernels is
  // optimized as it runs; a long-running server pays this once). Long work warms up by itself.
  for (const side of options.warmUp === false ? [] : [1, threads]) {
    context.setThreads(side);
    const start = performance.now();
    for (let r = 0; r < 2 || performance.now() - start < 500; r++) digests.add(work()());
  }
  for (let r = 0; r < reps; r++) {
    for (const side of ['1', 'n'] as const) {
      context.setThreads(side === '1' ? 1 : threads);
      const start = performance.now();
      const finish = work();
      times[side].push((performance.now() - start) / 1000);
      digests.add(finish());
    }
  }
  context.setThreads(threads);
  // The speed-up of each pair (one rep on each side, back to back), then their median: a shared machine's speed
  // drifts between reps, and a ratio of two medians can pair a slow rep of one side with a fast one of the other.
  const ratios = times['1'].map((t, r) => t / times.n[r]);
  return {
    seconds1: median(times['1']),
    secondsN: median(times.n),
    speedup: median(ratios),
    identical: digests.size === 1,
  };
}

/**
 * `home bench threads`: each workload on one thread and on `threads` in the same run — NTT (logN 16),
 * multiply + relinearize + rescale and rotate (logN 15), bootstrapping (logN 16), CryptoNets batch inference
 * (images/s) and, given its model, the zoo MNIST CNN in latency packing (s/image) — one JSON line each with both times and the speed-up.
 * Operations alternate between the thread counts rep by rep (medians), so drift on a shared machine hits both.
 *
 * @example
 * ```ts
 * await runThreadsBench({ threads: 2 });
 * ```
 */
export async function runThreadsBench(options: ThreadsBenchOptions = {}): Promise<ThreadsRecord[]> {
  const context = defaultContext();
  const threads = options.threads ?? context.threads;
  assertInteger(threads, 'threads', 2, 1024);
  const reps = options.reps ?? 25;
  assertInteger(reps, 'reps', 1, 1000);
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const wanted = (name: string) => !options.workloads || options.workloads.includes(name);
  const records: ThreadsRecord[] = [];
  const emit = (record: ThreadsRecord) => {
    records.push(record);
    write(JSON.stringify(record));
  };
  const opRecord = (workload: string, unit: string, r: ReturnType<typeof alternate>): ThreadsRecord => ({
    suite: 'threads',
    workload,
    threads,
    seconds_1: round(r.seconds1, 6),
    seconds_n: round(r.secondsN, 6),
    speedup: round(r.speedup, 3),
    identical: r.identical,
    unit,
  });

  if (wanted('ntt')) {
    progress('threads: NTT, logN 16');
    const params = Parameters.create(PRESETS.PN16QP1747, { context });
    const poly = Poly.alloc(params.moduliQPAtLevel(params.depth), false);
    for (let i = 0; i < poly.limbCount; i++) {
      const limb = poly.limb(i);
      const p = poly.moduli[i].value;
      for (let j = 0; j < limb.length; j++) limb[j] = (Math.imul(j + 1, 0x9e3779b1) >>> 0) % p;
    }
    const r = alternate(context, threads, reps, () => {
      nttInPlace(poly);
      inttInPlace(poly);
      return () => digest(context, [poly]);
    });
    emit(opRecord('ntt-logN16', `forward + inverse NTT of ${poly.limbCount} limbs (PN16QP1747, Q ∪ P)`, r));
    poly.dispose();
  }

  if (wanted('mul-relin-rescale') || wanted('rotate')) {
    progress('threads: multiply + relinearize + rescale and rotate, logN 15');
    const literal: ParametersLiteral = PRESETS.PN15QP881;
    const params = Parameters.create(literal, { context });
    const keygen = new KeyGenerator(params);
    const secretKey = keygen.generateSecretKey();
    const publicKey = keygen.generatePublicKey(secretKey);
    const keys = keygen.generateEvaluationKeys(secretKey, { rotations: [1] });
    const encoder = new Encoder(params);
    const encryptor = new Encryptor(params, publicKey);
    const evaluator = new Evaluator(params, keys);
    const values = Float64Array.from({ length: params.slots }, (_, i) => Math.sin(i));
    const x = encryptor.encryptNew(encoder.encodeNew(values));
    const y = encryptor.encryptNew(encoder.encodeNew(values.map((v) => v / 2)));
    if (wanted('mul-relin-rescale')) {
      const r = alternate(context, threads, reps, () => {
        const product = evaluator.mulNew(x, y);
        const relinearized = evaluator.relinearizeNew(product);
        const rescaled = evaluator.rescaleNew(relinearized);
        return () => {
          const d = digest(context, rescaled.polys);
          for (const c of [product, relinearized, rescaled]) c.dispose();
          return d;
        };
      });
      emit(
        opRecord(
          'mul-relin-rescale-logN15',
          'multiply, relinearize, rescale at the top level (PN15QP881)',
          r,
        ),
      );
    }
    if (wanted('rotate')) {
      const r = alternate(context, threads, reps, () => {
        const rotated = evaluator.rotateNew(x, 1);
        return () => {
          const d = digest(context, rotated.polys);
          rotated.dispose();
          return d;
        };
      });
      emit(opRecord('rotate-logN15', 'rotate by one slot at the top level (PN15QP881)', r));
    }
    x.dispose();
    y.dispose();
  }

  if (wanted('bootstrap')) {
    progress('threads: bootstrapping, logN 16 (keys, then a warm-up that encodes the transforms)');
    const bp = BootstrappingParameters.create({ logN: 16 });
    const params = bp.params;
    const keygen = new KeyGenerator(params);
    const secretKey = keygen.generateSecretKey();
    const keys = Bootstrapper.generateKeys(bp, keygen, secretKey);
    const bootstrapper = new Bootstrapper(bp, keys);
    const encoder = new Encoder(params);
    const values = Float64Array.from({ length: params.slots }, (_, i) => Math.sin(i));
    const x = new Encryptor(params, keygen.generatePublicKey(secretKey)).encryptNew(
      encoder.encodeNew(values, 0, params.scaleAtLevel[0]),
    );
    bootstrapper.bootstrapNew(x).dispose();
    // Two pairs, one bootstrapping on each side back to back (each takes half a minute or more).
    const r = alternate(
      context,
      threads,
      options.bootstrapPairs ?? 2,
      () => {
        const out = bootstrapper.bootstrapNew(x);
        return () => {
          const d = digest(context, out.polys);
          out.dispose();
          return d;
        };
      },
      { warmUp: false },
    );
    emit(
      opRecord(
        'bootstrap-logN16',
        `one bootstrapping, logN 16, ${bp.slots} slots, ${bp.levelsLeft} levels left (keys in host memory)`,
        r,
      ),
    );
    x.dispose();
  }

  const inferBoth = async (workload: string, unit: string, infer: () => ReturnType<typeof runInfer>) => {
    const seconds: number[] = [];
    const predictions: string[] = [];
    const rates: number[] = [];
    const phases: { compute: number; setup: number; stall: number; planning: number }[] = [];
    for (const count of [1, threads]) {
      // The default context and any context the run makes.
      setDefaultThreads(count);
      context.setThreads(count);
      progress(`threads: ${workload} on ${count} thread(s)`);
      const summary = await infer();
      seconds.push(summary.eval_s / summary.count);
      rates.push(summary.images_per_s);
      phases.push({
        compute: summary.compute_seconds / summary.count,
        setup: summary.setup_seconds,
        stall: summary.stall_seconds / summary.count,
        planning: summary.planning_seconds,
      });
      predictions.push(`${summary.accuracy} ${summary.agreement}`);
    }
    setDefaultThreads(threads);
    context.setThreads(threads);
    return { seconds, rates, phases, identical: predictions[0] === predictions[1], unit };
  };

  if (wanted('cryptonets')) {
    const images = options.images ?? 10_000;
    const result = await inferBoth('cryptonets-batch', `${images} MNIST images, batch packing`, () =>
      runInfer({
        model: findModelFile('cryptonets-mnist.onnx'),
        data: findDataFile('mnist/t10k-images-idx3-ubyte.gz'),
        labels: findDataFile('mnist/t10k-labels-idx1-ubyte.gz'),
        inputScale: 1 / 256,
        count: images,
        mode: 'batch',
        json: true,
        print: () => {},
      }),
    );
    emit({
      suite: 'threads',
      workload: 'cryptonets-batch',
      threads,
      seconds_1: round(result.seconds[0] * images, 4),
      seconds_n: round(result.seconds[1] * images, 4),
      speedup: round(result.seconds[0] / result.seconds[1], 3),
      images_per_s: round(result.rates[1], 1),
      images_per_s_1: round(result.rates[0], 1),
      identical: result.identical,
      phases_1: roundPhases(result.phases[0]),
      phases_n: roundPhases(result.phases[1]),
      compute_speedup: round(result.phases[0].compute / result.phases[1].compute, 3),
      unit: `evaluation of ${images} MNIST images (accuracy and agreement compared)`,
    });
  }

  if (wanted('zoo') && options.zooModel !== undefined && existsSync(options.zooModel)) {
    const images = options.zooImages ?? 4;
    const zooModel = options.zooModel;
    const result = await inferBoth('zoo-cnn-latency', `${images} images`, () =>
      runInfer({
        model: zooModel,
        data: findDataFile('mnist/t10k-images-idx3-ubyte.gz'),
        labels: findDataFile('mnist/t10k-labels-idx1-ubyte.gz'),
        inputScale: 1 / 255,
        count: images,
        mode: 'latency',
        // As the out-of-core check runs it: the tiered runtime under a 2 GiB DRAM budget.
        dramBudget: '2GiB',
        json: true,
        print: () => {},
      }),
    );
    emit({
      suite: 'threads',
      workload: 'zoo-cnn-latency',
      threads,
      seconds_1: round(result.seconds[0], 4),
      seconds_n: round(result.seconds[1], 4),
      speedup: round(result.seconds[0] / result.seconds[1], 3),
      identical: result.identical,
      unit: `seconds per image: the run's wall time (setup, planning, compute, stalls) over ${images} images, latency packing, 2 GiB DRAM budget`,
      phases_1: roundPhases(result.phases[0]),
      phases_n: roundPhases(result.phases[1]),
      compute_speedup: round(result.phases[0].compute / result.phases[1].compute, 3),
    });
  }
  return records;
}
