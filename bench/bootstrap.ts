/**
 * `home bench bootstrap`: one CKKS bootstrapping at logN 16 (default), full or fewer slots, on one kernel thread
 * (default), timed in phases, with its precision over uniform inputs in [−1, 1], the levels it leaves, its key
 * bytes and the peak RSS (with a DRAM budget, keys and diagonals wait in files and the peak RSS is checked against
 * it); and, when the OpenFHE peer binary is given, OpenFHE's single-threaded bootstrapping
 * measured in the same run (a child process, so its memory is its own).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { Bootstrapper } from '../src/ckks/bootstrapping/bootstrapper.ts';
import { BootstrappingParameters } from '../src/ckks/bootstrapping/parameters.ts';
import { Encoder } from '../src/ckks/encoder.ts';
import { Decryptor, Encryptor } from '../src/ckks/encryptor.ts';
import { StashedKeys } from '../src/ckks/key-source.ts';
import { KeyGenerator, type PublicKey, type SecretKey } from '../src/ckks/keys.ts';
import { maxLogQP128 } from '../src/ckks/security.ts';
import { setDefaultThreads } from '../src/ring/context.ts';
import { Prng } from '../src/ring/prng.ts';
import { FileStash } from '../src/runtime/store/file-stash.ts';
import { median } from './support/median.ts';

/** The `bootstrap` line: HomE's figures (and the peer's, when measured, in `peer_*`). */
export interface BootstrapRecord {
  suite: 'bootstrap';
  logN: number;
  slots: number;
  threads: number;
  /** Median seconds of one bootstrapping (after the first, which also encodes the transforms). */
  seconds: number;
  seconds_all: number[];
  /** The first bootstrapping, which encodes the transforms' diagonals. */
  first_seconds: number;
  phases: { modRaise: number; coeffsToSlots: number; evalMod: number; slotsToCoeffs: number };
  setup_seconds: number;
  keygen_seconds: number;
  /** −log2 of the largest slot error (real and imaginary parts) over uniform inputs in [−1, 1]. */
  precision_bits: number;
  levels_left: number;
  key_bytes: number;
  peak_rss_bytes: number;
  secure: boolean;
  logQP: number;
  dnum: number;
  message_ratio_bits: number;
  /** Where the Galois keys and encoded diagonals wait between uses. */
  key_memory: 'kernel' | 'host' | 'files';
  dram_budget_bytes?: number;
  /** peak_rss_bytes ≤ dram_budget_bytes (the whole process: kernel memory, JavaScript heap, code). */
  within_budget?: boolean;
  peer?: PeerRecord;
  /** seconds / peer seconds (below 1: HomE faster). */
  ratio_to_peer?: number;
}

/** What the OpenFHE peer binary prints (one JSON line). */
export interface PeerRecord {
  peer: string;
  version?: string;
  seconds: number;
  precision_bits?: number;
  levels_left?: number;
  [field: string]: unknown;
}

/**
 * Runs the benchmark and prints its JSON line; progress goes to stderr.
 *
 * @example
 * ```ts
 * await runBootstrapBench({ logN: 16, reps: 3, threads: 1 });
 * ```
 */
export async function runBootstrapBench(options: {
  logN: number;
  slots?: number;
  reps: number;
  threads: number;
  messageRatioBits?: number;
  peer?: string;
  /** Keep keys and diagonals in files (a FileStash under `dir`) and report whether the peak RSS stayed within. */
  dramBudgetBytes?: number;
  dir?: string;
  progress?: (line: string) => void;
}): Promise<BootstrapRecord> {
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  setDefaultThreads(options.threads);
  let start = performance.now();
  const elapsed = () => {
    const now = performance.now();
    const seconds = (now - start) / 1000;
    start = now;
    return seconds;
  };
  const bp = BootstrappingParameters.create({
    logN: options.logN,
    slots: options.slots,
    messageRatioBits: options.messageRatioBits,
    insecure: (maxLogQP128(options.logN) ?? 0) < 1700,
  });
  const params = bp.params;
  const prng = Prng.fresh();
  const keygen = new KeyGenerator(params, prng);
  const secretKey = keygen.generateSecretKey();
  const publicKey = keygen.generatePublicKey(secretKey);
  const setupSeconds = elapsed();
  progress(
    `bootstrap: logN ${params.logN}, ${bp.slots} slots, depth ${params.depth}, dnum ${params.digits}; keys…`,
  );
  const stash =
    options.dramBudgetBytes === undefined ? undefined : FileStash.create(params.context, options.dir);
  try {
    return await measure(
      options,
      bp,
      keygen,
      secretKey,
      publicKey,
      prng,
      setupSeconds,
      elapsed,
      progress,
      stash,
    );
  } finally {
    stash?.close();
  }
}

async function measure(
  options: Parameters<typeof runBootstrapBench>[0],
  bp: BootstrappingParameters,
  keygen: KeyGenerator,
  secretKey: SecretKey,
  publicKey: PublicKey,
  prng: Prng,
  setupSeconds: number,
  elapsed: () => number,
  progress: (line: string) => void,
  stash: FileStash | undefined,
): Promise<BootstrapRecord> {
  const params = bp.params;
  const keys = Bootstrapper.generateKeys(bp, keygen, secretKey, { stash });
  const keygenSeconds = elapsed();
  const keyBytes =
    keys.galois.byteLength +
    keys.relinearization.byteLength +
    keys.sparseToDense.byteLength +
    keys.denseToSparse.byteLength;
  const bootstrapper = new Bootstrapper(bp, keys);
  const encoder = new Encoder(params);
  const decryptor = new Decryptor(params, secretKey);
  const period = bp.slots;
  const first = Float64Array.from({ length: period }, () => 2 * prng.nextDouble() - 1);
  const values = Float64Array.from({ length: params.slots }, (_, i) => first[i % period]);
  const ct = new Encryptor(params, publicKey).encryptNew(
    encoder.encodeNew(values, 0, params.scaleAtLevel[0]),
  );
  const times: number[] = [];
  let precision = Infinity;
  let levelsLeft = 0;
  let phases = bootstrapper.lastTimings;
  for (let rep = 0; rep <= options.reps; rep++) {
    elapsed();
    const out = bootstrapper.bootstrapNew(ct);
    const seconds = elapsed();
    times.push(seconds);
    const got = encoder.decodeComplex(decryptor.decryptNew(out));
    let error = 0;
    for (let i = 0; i < params.slots; i++) {
      error = Math.max(error, Math.abs(got.re[i] - values[i]), Math.abs(got.im[i]));
    }
    precision = Math.min(precision, -Math.log2(error));
    levelsLeft = out.level;
    if (rep > 0) phases = bootstrapper.lastTimings;
    out.dispose();
    progress(
      `bootstrap: run ${rep + 1}/${options.reps + 1}: ${seconds.toFixed(2)} s, ${(-Math.log2(error)).toFixed(2)} bits`,
    );
  }
  const record: BootstrapRecord = {
    suite: 'bootstrap',
    logN: params.logN,
    slots: bp.slots,
    threads: options.threads,
    seconds: round(median(times.slice(1))),
    seconds_all: times.map(round),
    first_seconds: round(times[0]),
    phases: {
      modRaise: round(phases.modRaise),
      coeffsToSlots: round(phases.coeffsToSlots),
      evalMod: round(phases.evalMod),
      slotsToCoeffs: round(phases.slotsToCoeffs),
    },
    setup_seconds: round(setupSeconds),
    keygen_seconds: round(keygenSeconds),
    precision_bits: round(precision),
    levels_left: levelsLeft,
    key_bytes: keyBytes,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    secure: !params.insecure,
    logQP: round(params.logQP),
    dnum: params.digits,
    message_ratio_bits: bp.messageRatioBits,
    key_memory: stash ? 'files' : keys.galois instanceof StashedKeys ? 'host' : 'kernel',
  };
  if (options.dramBudgetBytes !== undefined) {
    record.dram_budget_bytes = options.dramBudgetBytes;
    record.within_budget = record.peak_rss_bytes <= options.dramBudgetBytes;
  }
  if (options.peer !== undefined) {
    if (!existsSync(options.peer)) throw new Error(`--peer ${options.peer}: no such file`);
    progress(`bootstrap: OpenFHE peer ${options.peer}…`);
    // OpenFHE's sparse-ternary secret: with a uniform one, 8 levels left do not fit the 128-bit bound at logN 16.
    const args = [
      '--logN',
      String(options.logN),
      '--slots',
      String(bp.slots),
      '--sparse',
      '--levels',
      String(bp.levelsLeft),
    ];
    progress(`bootstrap: ${options.peer} ${args.join(' ')} (OMP_NUM_THREADS=1)`);
    const { stdout } = await promisify(execFile)(options.peer, args, {
      env: { ...process.env, OMP_NUM_THREADS: '1' },
      maxBuffer: 1 << 20,
      timeout: 60 * 60 * 1000,
    });
    const line = stdout.split('\n').find((l) => l.startsWith('{'));
    if (line === undefined) throw new Error(`the peer printed no JSON line: ${stdout.slice(0, 200)}`);
    record.peer = JSON.parse(line) as PeerRecord;
    record.ratio_to_peer = round(record.seconds / record.peer.seconds);
  }
  console.log(JSON.stringify(record));
  return record;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
