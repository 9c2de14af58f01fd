import { existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { compileModel } from '../nn/compile/index.ts';
import { loadIdxLabels } from '../nn/data.ts';
import { InferenceClient } from '../nn/client.ts';
import { ModelOwner } from '../nn/owner.ts';
import { checkImages } from '../program/packing.ts';
import { InferenceServer, runEncrypted, type ServerMemory } from '../runtime/he/server.ts';
import type { LayerModel } from '../nn/layers.ts';
import { shapeSize } from '../nn/onnx/graph.ts';
import { importOnnx } from '../nn/onnx/import.ts';
import { opCounts, programFootprint, programKeyLevels } from '../program/analysis.ts';
import { argmaxRows, simulate } from '../nn/simulate.ts';
import { ParametersShape } from '../ckks/shape.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { defaultContext } from '../ring/context.ts';
import { FileStash } from '../runtime/store/file-stash.ts';
import { ARENA_LIMIT_BYTES, openRunMemory, planBudgetBytes, type RunMemory } from './infer-memory.ts';
import { calibrationImages, checkImageShape, loadImageSet } from './images.ts';
import { choosePacking, normalizeChannels } from './infer-packing.ts';
import { collectGarbage } from '../platform/collect-garbage.ts';

/**
 * Options of {@link runInfer} (the `home infer` flags).
 *
 * @example
 * ```ts
 * const options: InferOptions = { model: 'models/cryptonets-mnist.onnx', data: 'data/mnist/t10k-images-idx3-ubyte.gz', inputScale: 1 / 256 };
 * ```
 */
export interface InferOptions {
  readonly model: string;
  readonly data: string;
  /**
   * Images the approximations are calibrated on (same format, scale and normalization as `data`); default: the
   * data set's (its first 256, whatever `count`).
   */
  readonly calibration?: string;
  /** Calibration images at most (default 256). */
  readonly calibrationCount?: number;
  readonly labels?: string;
  /** Multiplier of raw values (default 1/255). */
  readonly inputScale?: number;
  /** Images to classify (default: all). */
  readonly count?: number;
  /** `auto` (default): the packing with the lower estimated time for `count` images. */
  readonly mode?: 'auto' | 'batch' | 'latency';
  /** Per-channel normalization: the model's input is (raw · inputScale − mean[c]) / std[c]. */
  readonly inputMean?: readonly number[];
  readonly inputStd?: readonly number[];
  /** Memory: arena + DRAM pool budget, slow tier and emulated device (see {@link MemoryFlags}). */
  readonly dramBudget?: string;
  readonly tier?: string;
  readonly profile?: string;
  /**
   * Plaintext weights of a tiered run: `auto` (default; per plaintext, by the measured encoder and tier and the
   * passes of this run), `stored` (encoded once, kept in memory or read back) or `on-use` (encoded by each reader).
   */
  readonly plaintexts?: 'auto' | 'stored' | 'on-use';
  /** Folder of cached plans (default `~/.cache/home-he/plans`); `none`: plan every time. */
  readonly planCache?: string;
  readonly encryptWeights?: boolean;
  /** JSON lines on stdout instead of text and a progress bar. */
  readonly json?: boolean;
  /** Write the predictions (JSON) here, atomically, when the run succeeds. */
  readonly output?: string;
  /** Deterministic keys and encryption (tests only). */
  readonly seed?: Uint8Array;
  /** Where lines go (default console.log). */
  readonly print?: (line: string) => void;
}

/**
 * The summary `home infer --json` ends with.
 *
 * @example
 * ```ts
 * const s: InferSummary = await runInfer(options);
 * console.log(s.accuracy, s.images_per_s);
 * ```
 */
export interface InferSummary {
  suite: 'infer';
  model: string;
  mode: 'batch' | 'latency';
  /** How the mode was chosen, with each packing's estimated evaluation seconds for `count` images. */
  mode_choice: {
    requested: 'auto' | 'batch' | 'latency';
    estimated_s: { batch: number | null; latency: number | null };
  };
  count: number;
  /** Arena + DRAM pool budget of the server's runs, and where it came from. */
  dram_budget_bytes: number;
  dram_budget_source: 'flag' | 'free-memory';
  /** Whether the runs spilled to the slow tier (false: everything fitted the budget, all in memory). */
  tiered: boolean;
  tier: string;
  profile: string;
  /** What an all-in-memory server would hold at once (live ciphertexts, plaintext weights, evaluation keys). */
  footprint_bytes: number;
  /** Largest arena + DRAM pool use of one run. */
  peak_dram_bytes: number;
  bytes_read_slow: number;
  bytes_written_slow: number;
  /** Server evaluation, all passes: wall time (planning, setup and execution), and its parts. */
  seconds: number;
  seconds_per_image: number;
  compute_seconds: number;
  stall_seconds: number;
  /** Planning (or loading the plan from the cache) — part of `seconds`. */
  planning_seconds: number;
  /** Where the plan came from: made by this run, loaded from the plan cache, or none (all in memory). */
  plan_source: 'planned' | 'cache' | 'none';
  /**
   * What planning added to `seconds`: a plan made on the planning thread overlaps the run, so only the waits for
   * it count (before the run starts and for actions not planned yet); a cached plan's load time.
   */
  plan_wait_seconds: number;
  setup_seconds: number;
  accuracy: number | null;
  plain_accuracy: number | null;
  agreement: number;
  images_per_s: number;
  eval_s: number;
  keygen_s: number;
  /** Compiling (approximations calibrated, both packings with `--mode auto`): before the server's `seconds`. */
  compile_s: number;
  /** Images the polynomial approximations were calibrated on (0: the model needed none). */
  calibration_images: number;
  /** --encrypt-weights: the model owner encrypting the weights, their size, and the evaluation time per pass of the
   * same program with plaintext weights (the cost of encrypting them). */
  encrypt_weights_s: number | null;
  encrypted_weight_bytes: number | null;
  plain_weights_eval_per_pass_s: number | null;
  /** Server setup: encoding the plaintext weights once (latency packing). */
  setup_s: number;
  /** Mean server-side evaluation seconds per pass (per image in latency mode). */
  eval_per_pass_s: number;
  rotation_keys: number;
  /** Bootstrap instructions of the program (each refreshes one ciphertext of a pass). */
  bootstraps: number;
  encrypt_s: number;
  decrypt_s: number;
  plain_s: number;
  passes: number;
  log_n: number;
  depth: number;
  instructions: number;
  peak_rss_bytes: number;
  /** Kernel memory in use at most (objects and scratch), and the WebAssembly memory it grew to. */
  peak_arena_bytes: number;
  kernel_memory_bytes: number;
  program_peak_bytes: number;
  key_bytes: number;
  /** Whether the client made each key when the server's store asked for it (keys too large to hold at once). */
  keys_streamed: boolean;
  /**
   * Tiered runs: plaintext weights encoded once and stored (kept in memory or read back from the slow tier) and
   * those encoded by each reader instead, chosen per plaintext by the encoder's and the tier's measured speed.
   */
  plaintexts_stored: number | null;
  plaintexts_encoded_on_use: number | null;
  seeded_key_bytes: number;
  upload_bytes: number;
  download_bytes: number;
  max_abs_logit_error: number;
  /**
   * Largest over the images of max |logit error| / (max logit − min logit) of the plaintext model: how far the
   * encrypted logits are from the plaintext ones, in units of each image's logit range.
   */
  max_logit_error_of_range: number;
  substitutions: {
    layer: string;
    op: string;
    degree: number;
    interval: readonly [number, number] | undefined;
  }[];
}

/** Atomic write: a temporary file renamed over the target, removed on failure. */
function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, path);
  } catch (e) {
    if (existsSync(temporary)) unlinkSync(temporary);
    throw e;
  }
}

function round(x: number, digits = 6): number {
  return Number(x.toFixed(digits));
}

/**
 * Encrypted inference over a data set: loads and checks everything first (nothing is printed or written before
 * the inputs are known to be good), compiles, runs the float model as the plaintext reference, then the client
 * and server of the encrypted executor pass by pass, and returns the summary.
 *
 * @throws InvalidArgumentError / FormatError / SecurityError for bad flags, files, shapes, ranges or models.
 * @example
 * ```ts
 * const summary = await runInfer({ model: 'models/lola-small-mnist.onnx', data: 'data/mnist/t10k-images-idx3-ubyte.gz',
 *   labels: 'data/mnist/t10k-labels-idx1-ubyte.gz', inputScale: 1 / 256, count: 1000, json: true });
 * ```
 */
export async function runInfer(options: InferOptions): Promise<InferSummary> {
  const print = options.print ?? ((line: string) => console.log(line));
  const json = options.json === true;
  const plaintextForms = options.plaintexts ?? 'auto';
  if (!['auto', 'stored', 'on-use'].includes(plaintextForms))
    throw new InvalidArgumentError(`--plaintexts ${String(plaintextForms)}: expected auto, stored or on-use`);
  const requested = options.mode ?? 'auto';
  if (requested !== 'auto' && requested !== 'batch' && requested !== 'latency') {
    throw new InvalidArgumentError(`--mode ${String(requested)}: expected auto, batch or latency`);
  }
  const scale = options.inputScale ?? 1 / 255;
  if (!Number.isFinite(scale) || scale <= 0) {
    throw new InvalidArgumentError(
      `--input-scale ${scale}: expected a positive number (e.g. 0.00390625 = 1/256)`,
    );
  }
  if (options.count !== undefined && (!Number.isInteger(options.count) || options.count < 1)) {
    throw new InvalidArgumentError(`--count ${options.count}: expected a positive integer`);
  }
  if (options.encryptWeights && requested === 'batch') {
    throw new InvalidArgumentError(
      '--encrypt-weights needs --mode latency: in batch packing every scalar weight would be its own ciphertext',
    );
  }
  // 1. Inputs: model, images, labels, all checked before anything is printed.
  const { model, images, count, calibration, labels } = loadInferInputs(options, scale);
  const runMemory = await openRunMemory({
    ...(options.dramBudget !== undefined ? { dramBudget: options.dramBudget } : {}),
    ...(options.tier !== undefined ? { tier: options.tier } : {}),
    ...(options.profile !== undefined ? { profile: options.profile } : {}),
    ...(options.planCache !== undefined ? { planCache: options.planCache } : {}),
  });
  try {
    return await inferWithMemory(options, {
      print,
      json,
      requested,
      model,
      images,
      count,
      calibration,
      labels,
      runMemory,
    });
  } finally {
    await runMemory.close();
  }
}

/**
 * The inputs of an inference run, all checked: the model, the images asked for (scaled and normalized), the
 * calibration images and the labels.
 *
 * @throws InvalidArgumentError / FormatError naming the flag of a missing or malformed file.
 * @example
 * ```ts
 * const { model, images, count } = loadInferInputs(options, 1 / 255);
 * ```
 */
export function loadInferInputs(
  options: Pick<
    InferOptions,
    'model' | 'data' | 'count' | 'inputMean' | 'inputStd' | 'calibration' | 'calibrationCount' | 'labels'
  >,
  scale: number,
): {
  model: LayerModel;
  images: Float64Array | Float32Array;
  count: number;
  calibration: Float64Array | Float32Array;
  labels: Uint8Array | undefined;
} {
  if (!existsSync(options.model)) throw new InvalidArgumentError(`--model ${options.model}: no such file`);
  const model = importOnnx(readFileSync(options.model));
  const batch = loadImageSet(options.data, scale, model.onnxInputShape, '--data');
  checkImageShape(batch, model, '--data', options.data);
  const count = options.count ?? batch.count;
  if (count > batch.count) {
    throw new InvalidArgumentError(`--count ${count}: the data has only ${batch.count} images`);
  }
  const size = shapeSize(model.onnxInputShape);
  // A copy of the images asked for: the whole set (63 MB for MNIST) is garbage once the run starts.
  const images = batch.data.slice(0, count * size);
  normalizeChannels(images, model.onnxInputShape, options.inputMean, options.inputStd);
  const calibration = calibrationImages(model, batch, {
    path: options.calibration,
    count: options.calibrationCount,
    scale,
    inputMean: options.inputMean,
    inputStd: options.inputStd,
  });
  let labels: Uint8Array | undefined;
  if (options.labels !== undefined) {
    if (!existsSync(options.labels))
      throw new InvalidArgumentError(`--labels ${options.labels}: no such file`);
    labels = loadIdxLabels(readFileSync(options.labels));
    if (labels.length < count) {
      throw new InvalidArgumentError(
        `--labels ${options.labels}: ${labels.length} labels for ${count} images`,
      );
    }
  }
  return { model, images, count, calibration, labels };
}

/**
 * Of `count` images: how many predictions equal the plaintext model's, and (with labels) how many of each are
 * correct.
 *
 * @example
 * ```ts
 * const { agree, correct, plainCorrect } = countAgreement(predictions, plainPredictions, labels, count);
 * ```
 */
export function countAgreement(
  predictions: ArrayLike<number>,
  plainPredictions: ArrayLike<number>,
  labels: ArrayLike<number> | undefined,
  count: number,
): { agree: number; correct: number; plainCorrect: number } {
  let agree = 0;
  let correct = 0;
  let plainCorrect = 0;
  for (let i = 0; i < count; i++) {
    if (predictions[i] === plainPredictions[i]) agree++;
    if (labels && predictions[i] === labels[i]) correct++;
    if (labels && plainPredictions[i] === labels[i]) plainCorrect++;
  }
  return { agree, correct, plainCorrect };
}

/**
 * How far `logits` are from the plaintext model's `plain` (both `count × classes`, row per image): the largest
 * |error| over all logits, and the largest over the images with finite logits of that image's largest |error|
 * divided by its plaintext logit range (max − min). `nonFinite` counts the images with a non-finite logit.
 *
 * @example
 * ```ts
 * const { maxOfRange } = logitErrors(decrypted, plain, count, 10); // 0.006: within 0.6 % of the range
 * ```
 */
export function logitErrors(
  logits: ArrayLike<number>,
  plain: ArrayLike<number>,
  count: number,
  classes: number,
): { maxError: number; maxOfRange: number; nonFinite: number } {
  let maxError = 0;
  let maxOfRange = 0;
  let nonFinite = 0;
  for (let i = 0; i < count; i++) {
    let error = 0;
    let low = Number.POSITIVE_INFINITY;
    let high = Number.NEGATIVE_INFINITY;
    let finite = true;
    for (let j = i * classes; j < (i + 1) * classes; j++) {
      if (!Number.isFinite(logits[j])) finite = false;
      error = Math.max(error, Math.abs(logits[j] - plain[j]));
      low = Math.min(low, plain[j]);
      high = Math.max(high, plain[j]);
    }
    if (!finite) {
      nonFinite++;
      continue;
    }
    maxError = Math.max(maxError, error);
    if (high > low) maxOfRange = Math.max(maxOfRange, error / (high - low));
  }
  return { maxError, maxOfRange, nonFinite };
}

async function inferWithMemory(
  options: InferOptions,
  context: {
    print: (line: string) => void;
    json: boolean;
    requested: 'auto' | 'batch' | 'latency';
    model: LayerModel;
    images: Float64Array | Float32Array;
    count: number;
    calibration: Float64Array | Float32Array;
    labels: Uint8Array | undefined;
    runMemory: RunMemory;
  },
): Promise<InferSummary> {
  const { print, json, requested, model, images, count, calibration, labels, runMemory } = context;
  const compileStart = performance.now();
  const encryptWeights = options.encryptWeights === true;
  const { compiled, mode, estimated } = choosePacking(
    model,
    options,
    requested,
    calibration,
    count,
    runMemory.budgetBytes,
  );
  const compileSeconds = (performance.now() - compileStart) / 1000;
  const program = compiled.program;
  checkImages(program, images, count);

  // 2. Everything is valid: report the program, run the float reference.
  const classes = shapeSize(model.outputShape);
  const footprint = programFootprint(program);
  const ops = opCounts(program);
  if (json) {
    print(
      JSON.stringify({
        event: 'compiled',
        model: basename(options.model),
        mode,
        estimated_s: estimated,
        parameters: String(compiled.params),
        log_n: program.logN,
        depth: program.depth,
        slots: program.slots,
        instructions: program.instructions.length,
        constant_bytes: compiled.resources.constantBytes,
        relinearizations: ops.relinearize,
        program_peak_bytes: footprint.peakBytes,
        substitutions: compiled.substitutions.length,
      }),
    );
  } else {
    print(`Model ${basename(options.model)}: ${model.layers.map((l) => l.kind).join(' → ')}`);
    const est = (x: number | null) => (x === null ? 'does not compile' : `~${x} s`);
    print(
      requested === 'auto'
        ? `Packing: ${mode} (--mode auto; estimated evaluation for ${count} images: batch ${est(estimated.batch)}, latency ${est(estimated.latency)})`
        : `Packing: ${mode}`,
    );
    print(`Parameters: ${compiled.params}`);
    print(
      `AccessProgram: ${program.instructions.length} instructions, depth ${program.depth}, ${ops.relinearize} relinearizations, ` +
        `${(footprint.peakBytes / 2 ** 30).toFixed(2)} GiB peak live ciphertexts, ${program.batchSize} images per pass`,
    );
    for (const s of compiled.substitutions) {
      print(
        `Substituted ${s.op} '${s.layer}' by a degree-${s.degree} ${s.method} polynomial on [${s.interval?.map((v) => v.toFixed(3)).join(', ')}]`,
      );
    }
  }
  let t = performance.now();
  const plain = simulate(model, images, count);
  const plainSeconds = (performance.now() - t) / 1000;
  const plainPredictions = argmaxRows(plain, count, classes);
  // A packing compiled only to be compared (auto mode's batch program: millions of instructions) is garbage now;
  // the encrypted run allocates too little JavaScript for V8 to collect it, so it would sit in the peak RSS.
  collectGarbage();

  // 3. Encrypted: the client makes keys and encrypts; the server evaluates; the client decrypts. Keys that would
  // take more than half the kernel memory, or a run over its budget, stream: the client makes each key when the
  // server's store asks for it, the store writes it to the slow tier and frees it.
  const footprintBytes = compiled.resources.serverBytes;
  const keyBytes = compiled.resources.keyBytes;
  const streamKeys = keyBytes > ARENA_LIMIT_BYTES / 2 || footprintBytes > runMemory.budgetBytes;
  // Bootstrapping keys and diagonals (gigabytes at logN 16) wait in files in the slow tier's folder, a few at a
  // time in memory while a bootstrap runs.
  const bootstrapStash = program.bootstrapping
    ? FileStash.create(defaultContext(), runMemory.tierDir)
    : undefined;
  const client = new InferenceClient(program, {
    seed: options.seed,
    streamKeys,
    ...(bootstrapStash ? { bootstrapStash } : {}),
  });
  // The server's runs share the kernel memory with the client's keys (one process): what is left bounds its arena.
  const arenaRoom = ARENA_LIMIT_BYTES - client.params.context.allocator.bytesInUse;
  const tiered = streamKeys || footprintBytes > runMemory.budgetBytes || footprintBytes > arenaRoom;
  let serverMemory: ServerMemory | undefined;
  if (tiered) {
    const base = await runMemory.serverMemory();
    // The plan keeps each step's kernel scratch (key-switching digits) free inside the arena; what else stays in
    // memory through the run comes out of the budget first (planBudgetBytes).
    const budgetBytes = planBudgetBytes(runMemory.budgetBytes, program, client.bootstrappingKeys);
    const pool = Math.max(Math.floor(budgetBytes / 32), budgetBytes - arenaRoom);
    serverMemory = { ...base, budgetBytes, dramPoolBytes: pool };
  }
  const bootstrapping = client.bootstrappingKeys
    ? { bootstrappingKeys: client.bootstrappingKeys, ...(bootstrapStash ? { bootstrapStash } : {}) }
    : {};
  const server = new InferenceServer(
    program,
    client.keyStream ?? client.evaluationKeys,
    serverMemory
      ? {
          memory: serverMemory,
          expectedRuns: Math.ceil(count / program.batchSize),
          plaintextForms: options.plaintexts === 'on-use' ? 'encode-on-use' : (options.plaintexts ?? 'auto'),
          ...bootstrapping,
        }
      : bootstrapping,
  );
  const setupSeconds = server.prepare();
  let weightSeconds = 0;
  let weightBytes = 0;
  if (client.publicKey) {
    // The model owner encrypts the weights under the client's public key; the server keeps them.
    const start = performance.now();
    const weights = new ModelOwner(program, client.publicKey, { seed: options.seed }).encryptWeights();
    weightSeconds = (performance.now() - start) / 1000;
    for (const ct of weights.values()) weightBytes += ct.byteLength;
    server.loadWeights(weights);
  }
  // Streamed keys are made during the first run's setup: their size from the parameters, their time as it comes.
  const shape = ParametersShape.of(program.parameters);
  const keySizes = [...programKeyLevels(program).values()].map((level) => shape.switchingKeyBytes(level));
  if (program.relinearization) keySizes.push(shape.switchingKeyBytes());
  const streamedBytes = keySizes.reduce((a, b) => a + b, 0);
  const evaluationKeyBytes = streamKeys ? streamedBytes : client.evaluationKeys.byteLength;
  const seededKeyBytes = streamKeys
    ? streamedBytes / 2 + 32 * keySizes.length
    : client.evaluationKeys.seededByteLength;
  if (json) {
    print(
      JSON.stringify({
        event: 'keygen',
        seconds: round(client.keygenSeconds),
        key_bytes: evaluationKeyBytes,
        streamed: streamKeys,
      }),
    );
  } else {
    print(
      streamKeys
        ? `Keys: ${keySizes.length} evaluation keys, ${(evaluationKeyBytes / 2 ** 30).toFixed(2)} GiB, streamed: each made when the server's store writes it to the slow tier`
        : `Keys: ${client.keygenSeconds.toFixed(2)} s, ${(evaluationKeyBytes / 2 ** 20).toFixed(1)} MiB of evaluation keys`,
    );
  }
  const showBar = !json && process.stderr.isTTY === true;
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = showBar
    ? new SingleBar(
        {
          format: 'encrypted inference [{bar}] {percentage}% | {value}/{total} images | {phase}',
          stream: process.stderr,
        },
        Presets.shades_classic,
      )
    : undefined;
  bar?.start(count, 0, { phase: 'encrypt' });
  // Without the bar (JSON, or stderr not a terminal) a long run still says how far it got: a line on stderr after
  // a pass, at most one every 10 s. (The JSON lines stop listing passes after the tenth of a latency run, and a
  // 20-image run of the ruiyangju CNN then printed nothing for 20 minutes.)
  const runStart = performance.now();
  let lastProgress = runStart;
  const logits = new Float64Array(count * classes);
  const timings = { encrypt: 0, evaluate: 0, decrypt: 0 };
  let upload = 0;
  let download = 0;
  let passIndex = 0;
  const run = {
    compute: 0,
    stall: 0,
    planning: 0,
    planWait: 0,
    setup: 0,
    read: 0,
    written: 0,
    peakDram: 0,
    planSource: 'none' as 'planned' | 'cache' | 'none',
  };
  for (let first = 0; first < count; first += program.batchSize) {
    const n = Math.min(program.batchSize, count - first);
    bar?.update(first, { phase: 'encrypt' });
    t = performance.now();
    const inputs = client.encryptPass(images, first, n);
    for (const ct of inputs.values()) upload += ct.byteLength / 2;
    const encryptSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    const keysBefore = client.keyStream?.seconds ?? 0;
    const outputs = await server.run(inputs, (done, total) => {
      bar?.update(first + Math.floor((n * done) / total), { phase: 'evaluate' });
      // Without the bar a long pass (a ResNet's takes many minutes) still says how far it got, every 30 s.
      if (!bar && performance.now() - lastProgress >= 30_000) {
        lastProgress = performance.now();
        process.stderr.write(
          `home infer: pass ${passIndex + 1}, step ${done}/${total}, ${((lastProgress - runStart) / 1000).toFixed(0)} s\n`,
        );
      }
    });
    // Keys streamed during the run's setup are the client's key generation (keygen_s), not the server's time.
    const streamedKeygen = (client.keyStream?.seconds ?? 0) - keysBefore;
    const evalSeconds = (performance.now() - t) / 1000 - streamedKeygen;
    const stats = server.lastRunStats;
    if (stats) {
      run.compute += stats.computeSeconds;
      run.stall += stats.stallSeconds;
      const origin = server.lastPlan;
      run.planning += origin?.source === 'cache' ? origin.seconds : stats.planningSeconds;
      run.planWait +=
        (origin?.source === 'cache' ? origin.seconds : stats.planStartWaitSeconds) +
        stats.planWaitInRunSeconds;
      if (origin && origin.source !== 'reused') run.planSource = origin.source;
      run.setup += stats.setupSeconds - streamedKeygen;
      run.read += stats.slowBytesRead;
      run.written += stats.slowBytesWritten;
      run.peakDram = Math.max(run.peakDram, stats.arenaPeakBytes + (tiered ? stats.dramPeakBytes : 0));
    }
    for (const ct of outputs.values()) download += ct.byteLength;
    t = performance.now();
    logits.set(client.decryptPass(outputs, n), first * classes);
    const decryptSeconds = (performance.now() - t) / 1000;
    timings.encrypt += encryptSeconds;
    timings.evaluate += evalSeconds;
    timings.decrypt += decryptSeconds;
    if (json && (mode === 'batch' || passIndex < 10)) {
      print(
        JSON.stringify({
          event: 'pass',
          pass: passIndex,
          first,
          images: n,
          encrypt_s: round(encryptSeconds),
          eval_s: round(evalSeconds),
          decrypt_s: round(decryptSeconds),
          ...(stats
            ? {
                planning_s: round(stats.planningSeconds),
                setup_s: round(stats.setupSeconds),
                stall_s: round(stats.stallSeconds),
                bytes_read_slow: stats.slowBytesRead,
              }
            : {}),
        }),
      );
    }
    passIndex++;
    if (!bar && performance.now() - lastProgress >= 10_000) {
      lastProgress = performance.now();
      process.stderr.write(
        `home infer: ${first + n}/${count} images, pass ${passIndex}, ${((lastProgress - runStart) / 1000).toFixed(0)} s\n`,
      );
    }
    // Each run's DRAM pool and staging buffers are garbage once it ends; the run allocates too little JavaScript
    // for V8 to collect them, so without this they piled up pass after pass (+0.2 GB of RSS over LeNet's 5 passes).
    collectGarbage();
  }
  bar?.update(count, { phase: 'done' });
  bar?.stop();
  server.dispose();
  bootstrapStash?.close();
  // The cost of encrypting the weights: the same images with plaintext weights, in this process.
  let plainWeightsEval: number | null = null;
  if (encryptWeights) {
    const plainWeights = compileModel(model, { mode, name: basename(options.model) }).program;
    const run = await runEncrypted(plainWeights, images, count, { seed: options.seed });
    plainWeightsEval = run.timings.evaluate / run.passes;
  }

  // 4. Figures.
  const predictions = argmaxRows(logits, count, classes);
  const { agree, correct, plainCorrect } = countAgreement(predictions, plainPredictions, labels, count);
  // A non-finite decrypted logit makes both figures non-finite (null in JSON), not smaller.
  const errors = logitErrors(logits, plain, count, classes);
  const maxError = errors.nonFinite > 0 ? Number.NaN : errors.maxError;
  const maxOfRange = errors.nonFinite > 0 ? Number.NaN : errors.maxOfRange;
  const summary: InferSummary = {
    suite: 'infer',
    model: basename(options.model),
    mode,
    mode_choice: { requested, estimated_s: estimated },
    count,
    dram_budget_bytes: runMemory.budgetBytes,
    dram_budget_source: runMemory.budgetSource,
    tiered,
    tier: tiered ? `${runMemory.tierName}:${runMemory.tierDir}` : '',
    profile: runMemory.profile,
    footprint_bytes: footprintBytes,
    peak_dram_bytes: run.peakDram,
    bytes_read_slow: run.read,
    bytes_written_slow: run.written,
    seconds: round(timings.evaluate, 3),
    seconds_per_image: round(timings.evaluate / count, 4),
    compute_seconds: round(run.compute, 3),
    stall_seconds: round(run.stall, 3),
    planning_seconds: round(run.planning, 3),
    plan_source: tiered ? run.planSource : 'none',
    plan_wait_seconds: round(run.planWait, 3),
    setup_seconds: round(run.setup, 3),
    accuracy: labels ? round(correct / count) : null,
    plain_accuracy: labels ? round(plainCorrect / count) : null,
    agreement: round(agree / count),
    images_per_s: round(count / timings.evaluate, 2),
    eval_s: round(timings.evaluate, 3),
    keygen_s: round(client.keygenSeconds, 3),
    compile_s: round(compileSeconds, 3),
    calibration_images:
      compiled.substitutions.length > 0 ? calibration.length / shapeSize(model.onnxInputShape) : 0,
    encrypt_weights_s: encryptWeights ? round(weightSeconds, 3) : null,
    encrypted_weight_bytes: encryptWeights ? weightBytes : null,
    plain_weights_eval_per_pass_s: plainWeightsEval === null ? null : round(plainWeightsEval, 4),
    setup_s: round(setupSeconds, 3),
    eval_per_pass_s: round(timings.evaluate / passIndex, 4),
    rotation_keys: program.rotations.length,
    bootstraps: program.instructions.filter((ins) => ins.op === 'bootstrap').length,
    encrypt_s: round(timings.encrypt, 3),
    decrypt_s: round(timings.decrypt, 3),
    plain_s: round(plainSeconds, 3),
    passes: passIndex,
    log_n: program.logN,
    depth: program.depth,
    instructions: program.instructions.length,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    peak_arena_bytes: client.params.context.allocator.peakBytes,
    kernel_memory_bytes: client.params.context.memory.buffer.byteLength,
    program_peak_bytes: footprint.peakBytes,
    key_bytes: evaluationKeyBytes,
    keys_streamed: streamKeys,
    plaintexts_stored: tiered ? server.plaintextFormCounts.stored : null,
    plaintexts_encoded_on_use: tiered ? server.plaintextFormCounts.encodeOnUse : null,
    seeded_key_bytes: seededKeyBytes,
    upload_bytes: upload,
    download_bytes: download,
    max_abs_logit_error: round(maxError, 9),
    max_logit_error_of_range: round(maxOfRange, 6),
    substitutions: compiled.substitutions.map((s) => ({
      layer: s.layer,
      op: s.op,
      degree: s.degree,
      interval: s.interval,
    })),
  };
  if (options.output !== undefined) {
    writeAtomically(
      options.output,
      `${JSON.stringify({ summary, predictions: Array.from(predictions), plain_predictions: Array.from(plainPredictions) })}\n`,
    );
  }
  if (json) print(JSON.stringify(summary));
  else {
    if (encryptWeights) {
      print(
        `Encrypted weights: ${(weightBytes / 2 ** 30).toFixed(2)} GiB, encrypted by the model owner in ${summary.encrypt_weights_s} s; ` +
          `evaluation ${summary.eval_per_pass_s} s per image against ${summary.plain_weights_eval_per_pass_s} s with plaintext weights`,
      );
    }
    const pct = (x: number | null) => (x === null ? 'n/a (no labels)' : `${(100 * x).toFixed(2)} %`);
    print(`Accuracy: encrypted ${pct(summary.accuracy)}, plaintext ${pct(summary.plain_accuracy)}`);
    print(
      `Same prediction as plaintext: ${pct(summary.agreement)} of ${count} images (max |logit error| ${maxError.toExponential(2)}, ${(100 * maxOfRange).toFixed(2)} % of the logit range)`,
    );
    print(
      `Time: compile ${summary.compile_s} s, keygen ${summary.keygen_s} s, encrypt ${summary.encrypt_s} s, evaluate ${summary.eval_s} s ` +
        `(${summary.images_per_s} images/s, ${passIndex} pass${passIndex > 1 ? 'es' : ''}, ${summary.eval_per_pass_s} s each), ` +
        `decrypt ${summary.decrypt_s} s; server setup ${summary.setup_s} s; plaintext ${summary.plain_s} s`,
    );
    print(
      summary.tiered
        ? `Tiered: footprint ${(footprintBytes / 2 ** 30).toFixed(2)} GiB over a budget of ${(runMemory.budgetBytes / 2 ** 30).toFixed(2)} GiB; ` +
            `peak arena + DRAM pool ${(run.peakDram / 2 ** 30).toFixed(2)} GiB; slow tier ${summary.tier} (${runMemory.profile}): ` +
            `read ${(run.read / 2 ** 30).toFixed(2)} GiB, written ${(run.written / 2 ** 30).toFixed(2)} GiB; ` +
            `compute ${summary.compute_seconds} s, stalls ${summary.stall_seconds} s, planning ${summary.planning_seconds} s (plan ${summary.plan_source === 'cache' ? 'loaded from the cache' : 'made by this run'}), setup ${summary.setup_seconds} s`
        : `All in memory: footprint ${(footprintBytes / 2 ** 30).toFixed(2)} GiB within a budget of ${(runMemory.budgetBytes / 2 ** 30).toFixed(2)} GiB`,
    );
    print(
      `Memory: peak RSS ${(summary.peak_rss_bytes / 2 ** 30).toFixed(2)} GiB, arena ${(summary.peak_arena_bytes / 2 ** 30).toFixed(2)} GiB; ` +
        `keys ${(summary.key_bytes / 2 ** 20).toFixed(1)} MiB${streamKeys ? ' (streamed)' : ''}; upload ${(upload / 2 ** 20).toFixed(0)} MiB, download ${(download / 2 ** 20).toFixed(1)} MiB`,
    );
  }
  return summary;
}
