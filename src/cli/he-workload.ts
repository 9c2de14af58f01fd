import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Bootstrapper, type BootstrappingTimings } from '../ckks/bootstrapping/bootstrapper.ts';
import { Encoder } from '../ckks/encoder.ts';
import { defaultContext } from '../ring/context.ts';
import { FileStash } from '../runtime/store/file-stash.ts';
import type { Ciphertext } from '../ckks/objects.ts';
import { awaitsApproximation } from '../nn/approx.ts';
import { compileModel } from '../nn/compile/index.ts';
import { InferenceClient } from '../nn/client.ts';
import { ModelOwner } from '../nn/owner.ts';
import { checkImages } from '../program/packing.ts';
import { simulateProgram } from '../program/simulate.ts';
import { InferenceServer } from '../runtime/he/server.ts';
import { shapeSize } from '../nn/onnx/graph.ts';
import { importOnnx } from '../nn/onnx/import.ts';
import type { HeProgram } from '../program/program.ts';
import { argmaxRows } from '../nn/simulate.ts';
import { nowNs } from '../runtime/store/devices.ts';
import {
  heObjectSource,
  runTieredHe,
  type TieredHeOptions,
  type TieredHeResult,
} from '../runtime/he/tiered.ts';
import { InvalidArgumentError, ResourceError } from '../util/errors.ts';
import { ARENA_LIMIT_BYTES } from './infer-memory.ts';
import { calibrationImages, loadImageSet } from './images.ts';
import { DEEP_DEGREES, needsBootstraps, normalizeChannels } from './infer-packing.ts';
import type { KernelContext } from '../ring/context.ts';

/**
 * Options of {@link prepareHeWorkload}.
 *
 * @example
 * ```ts
 * const options: HeWorkloadOptions = { model: 'models/cryptonets-mnist.onnx', data: 'data/mnist/t10k-images-idx3-ubyte.gz', count: 64, mode: 'batch' };
 * ```
 */
export interface HeWorkloadOptions {
  model: string;
  data: string;
  /** Images in the pass (batch: up to the slots; latency: the first image is used). */
  count?: number;
  mode?: 'batch' | 'latency';
  encryptWeights?: boolean;
  /** Multiplier of raw pixel values (default 1/256, as CryptoNets and LoLa expect). */
  inputScale?: number;
  /** Per-channel normalization after the scale: `(x − mean[c]) / std[c]` (one value, or one per channel). */
  inputMean?: readonly number[];
  inputStd?: readonly number[];
  /** Images the approximations are calibrated on (read like `data`; default: `data`'s). */
  calibration?: string;
  /** Calibration images at most (default 256). */
  calibrationCount?: number;
  /**
   * Memory for the run (arena + DRAM pool). Given, memory is the tiered runtime's to manage: the compiler refuses
   * only what cannot be compiled at all, and one instruction may hold at most half of it (as `home infer`).
   */
  budgetBytes?: number;
  /** Deterministic keys and encryptions (tests). */
  seed?: Uint8Array;
  /** Folder for the bootstrapping keys' and diagonals' files (default: the OS temp folder). */
  stashDir?: string;
  /**
   * The kernel context the workload's keys, ciphertexts and runs live in (default: the process's). A workload in
   * a context of its own leaves no freed blocks of its sizes behind for the next one.
   */
  context?: KernelContext;
}

/**
 * One pass of a model, encrypted and ready to run: the program, the client (keys), the encrypted weights (if any),
 * the input ciphertexts of the pass, and the float simulation's predictions for the same images.
 *
 * @example
 * ```ts
 * const workload = await prepareHeWorkload({ model, data, count: 64 });
 * const reference = await runUnlimited(workload);
 * ```
 */
export interface HeWorkload {
  name: string;
  program: HeProgram;
  client: InferenceClient;
  weights: Map<number, Ciphertext>;
  inputs: Map<number, Ciphertext>;
  /** Images in the pass and classes per image. */
  count: number;
  classes: number;
  /** argmax of the float64 simulation of the program on the same images. */
  simulatedArgmax: Int32Array;
  /** Seconds spent encrypting the weights (model owner) and the inputs (client). */
  encryptSeconds: number;
  /** What an all-in-memory run would hold (live ciphertexts, plaintext weights, keys). */
  footprintBytes: number;
  /**
   * Whether the all-in-memory reference can run: its keys were made up front (not streamed), it has no bootstraps
   * and its footprint fits in the kernel memory left beside them.
   */
  fitsInMemory: boolean;
  /** The server's bootstrapper (programs with bootstraps), its keys and diagonals in `bootstrapStash`. */
  bootstrapper?: Bootstrapper;
  bootstrapStash?: FileStash;
}

/**
 * Compiles a model, encrypts one pass of images (and the weights, with `encryptWeights`) and simulates it in
 * float64. Everything is checked before any encryption: the model file, the data, the count and the mode.
 *
 * @throws InvalidArgumentError for a missing or bad model, data, count or mode.
 * @example
 * ```ts
 * const workload = await prepareHeWorkload({ model: findModelFile('cryptonets-mnist.onnx'), data, mode: 'latency', encryptWeights: true });
 * ```
 */
export function prepareHeWorkload(options: HeWorkloadOptions): HeWorkload {
  const mode = options.mode ?? 'batch';
  if (mode !== 'batch' && mode !== 'latency')
    throw new InvalidArgumentError(`--mode ${String(mode)}: expected batch or latency`);
  if (options.encryptWeights && mode !== 'latency') {
    throw new InvalidArgumentError(
      '--encrypt-weights needs --mode latency: in batch packing every scalar weight would be its own ciphertext',
    );
  }
  if (!existsSync(options.model)) throw new InvalidArgumentError(`--model ${options.model}: no such file`);
  const model = importOnnx(readFileSync(options.model));
  const scale = options.inputScale ?? 1 / 256;
  const batch = loadImageSet(options.data, scale, model.onnxInputShape, '--data');
  const size = shapeSize(model.onnxInputShape);
  if (batch.data.length / batch.count !== size) {
    throw new InvalidArgumentError(
      `--data ${options.data}: images of ${batch.data.length / batch.count} values, but the model expects ${size}`,
    );
  }
  const wanted = options.count ?? (mode === 'latency' ? 1 : Math.min(batch.count, 64));
  if (!Number.isInteger(wanted) || wanted < 1)
    throw new InvalidArgumentError(`--count ${wanted}: expected a positive integer`);
  if (wanted > batch.count)
    throw new InvalidArgumentError(`--count ${wanted}: the data has only ${batch.count} images`);
  const needsCalibration = awaitsApproximation(model);
  const calibration = needsCalibration
    ? calibrationImages(model, batch, {
        path: options.calibration,
        count: options.calibrationCount,
        scale,
        inputMean: options.inputMean,
        inputStd: options.inputStd,
      })
    : undefined;
  normalizeChannels(batch.data, model.onnxInputShape, options.inputMean, options.inputStd);
  const budget = options.budgetBytes;
  // A model deeper than any chain compiles with bootstraps (latency packing), its ReLUs as `home infer` makes them.
  const deep = needsBootstraps(model, mode);
  const { program, resources } = compileModel(model, {
    mode,
    encryptWeights: options.encryptWeights === true,
    name: basename(options.model),
    ...(mode === 'batch' ? { batchSize: Math.max(wanted, 1) } : {}),
    ...(budget !== undefined
      ? {
          limits: {
            memoryBytes: Number.POSITIVE_INFINITY,
            stepBytes: Number.isFinite(budget) ? Math.floor(budget / 2) : Number.POSITIVE_INFINITY,
          },
        }
      : {}),
    ...(calibration
      ? {
          calibration: { images: calibration, count: calibration.length / size },
          approximation: { measureCosts: false, ...(deep ? { degree: DEEP_DEGREES } : {}) },
        }
      : {}),
    // Deep models as `home infer` runs them (see choosePacking).
    ...(deep ? { polynomials: 'bsgs' as const } : {}),
  });
  const count = Math.min(wanted, program.batchSize);
  const images = batch.data.subarray(0, count * size);
  checkImages(program, images, count);
  const classes = shapeSize(model.outputShape);
  const simulatedArgmax = argmaxRows(simulateProgram(program, images, count), count, classes);
  const start = nowNs();
  // Keys that would take more than half the kernel memory are made one at a time as a run's store writes them.
  const streamKeys = resources.keyBytes > ARENA_LIMIT_BYTES / 2;
  // Bootstrapping keys and diagonals wait in files (gigabytes at logN 16), in memory only while a bootstrap runs.
  const bootstrapStash = program.bootstrapping
    ? FileStash.create(options.context ?? defaultContext(), options.stashDir)
    : undefined;
  const client = new InferenceClient(program, {
    seed: options.seed,
    streamKeys,
    ...(options.context ? { context: options.context } : {}),
    ...(bootstrapStash ? { bootstrapStash } : {}),
  });
  const bp = client.bootstrappingParameters;
  const bootstrapKeys = client.bootstrappingKeys;
  const bootstrapper =
    bp && bootstrapKeys
      ? new Bootstrapper(bp, bootstrapKeys, bootstrapStash ? { stash: bootstrapStash } : {})
      : undefined;
  const arenaRoom = ARENA_LIMIT_BYTES - client.params.context.allocator.bytesInUse;
  const weights = client.publicKey
    ? new ModelOwner(program, client.publicKey, { seed: options.seed }).encryptWeights()
    : new Map<number, Ciphertext>();
  const inputs = client.encryptPass(images, 0, count);
  return {
    name: `${basename(options.model, '.onnx')}-${mode}${options.encryptWeights ? '-encw' : ''}`,
    program,
    client,
    weights,
    inputs,
    count,
    classes,
    simulatedArgmax,
    encryptSeconds: (nowNs() - start) / 1e9,
    footprintBytes: resources.serverBytes,
    fitsInMemory: !streamKeys && !bootstrapper && resources.serverBytes <= arenaRoom,
    ...(bootstrapper ? { bootstrapper } : {}),
    ...(bootstrapStash ? { bootstrapStash } : {}),
  };
}

/**
 * The all-in-memory reference: the plain server on copies of the inputs (the workload keeps its own).
 *
 * @example
 * ```ts
 * const { logits, seconds } = await runUnlimited(workload);
 * ```
 */
export async function runUnlimited(workload: HeWorkload): Promise<{ logits: Float64Array; seconds: number }> {
  if (!workload.fitsInMemory) {
    throw new ResourceError(
      `${workload.name}: an all-in-memory run would hold ${workload.footprintBytes} bytes` +
        `${workload.client.keyStream ? ' and its keys are streamed' : ''}: expected a workload that fits in the kernel memory (${ARENA_LIMIT_BYTES} bytes)`,
    );
  }
  const server = new InferenceServer(workload.program, workload.client.evaluationKeys, {
    context: workload.client.params.context,
  });
  server.prepare();
  // The server keeps the weights by reference (no copy) and must not dispose them: the workload owns them.
  if (workload.weights.size > 0) server.loadWeights(workload.weights);
  const inputs = new Map([...workload.inputs].map(([id, ct]) => [id, ct.copy()]));
  const start = nowNs();
  try {
    const outputs = await server.run(inputs);
    const seconds = (nowNs() - start) / 1e9;
    const logits = workload.client.decryptPass(outputs, workload.count);
    for (const ct of outputs.values()) ct.dispose();
    return { logits, seconds };
  } finally {
    // Each round makes a new reference server: its encoded plaintext weights go with it (the weights stay).
    server.dispose({ keepWeights: true });
  }
}

/**
 * Runs the workload's pass through the tiered runtime and decrypts it.
 *
 * @example
 * ```ts
 * const { logits, result } = await runTieredWorkload(workload, { policy: new HomePolicy(), memoryBudgetBytes, tiers });
 * ```
 */
export async function runTieredWorkload(
  workload: HeWorkload,
  options: Omit<TieredHeOptions, 'program' | 'params' | 'source'>,
): Promise<{ logits: Float64Array; result: TieredHeResult; bootstraps: BootstrapRecord[] }> {
  const source = heObjectSource({
    program: workload.program,
    evaluationKeys: workload.client.keyStream ?? workload.client.evaluationKeys,
    inputs: workload.inputs,
    weights: workload.weights,
    encoder: new Encoder(workload.client.params),
  });
  const runtimeProgram = options.runtimeProgram;
  const bootstrapper = workload.bootstrapper;
  const bootstraps: BootstrapRecord[] = [];
  const result = await runTieredHe({
    ...options,
    program: workload.program,
    params: workload.client.params,
    source,
    ...(bootstrapper ? { bootstrapper } : {}),
    onStep: (index, total) => {
      options.onStep?.(index, total);
      const at = runtimeProgram?.steps[index]?.instruction;
      const ins = at === undefined ? undefined : workload.program.instructions[at];
      if (bootstrapper && ins?.op === 'bootstrap')
        bootstraps.push({
          instruction: at as number,
          layer: ins.layer,
          phases: { ...bootstrapper.lastTimings },
        });
    },
  });
  return { logits: workload.client.decryptPass(result.outputs, workload.count), result, bootstraps };
}

/**
 * One bootstrap of a measured run: its instruction, the layer it refreshed a value for, and its phases' seconds.
 *
 * @example
 * ```ts
 * const evalMod = bootstraps[0].phases.evalMod;
 * ```
 */
export interface BootstrapRecord {
  instruction: number;
  layer: string;
  phases: BootstrappingTimings;
}

/**
 * Whether a run's logits equal the reference bit for bit and its predictions the float simulation's.
 *
 * @example
 * ```ts
 * const correct = sameResults(workload, logits, reference.logits);
 * ```
 */
export function sameResults(workload: HeWorkload, logits: Float64Array, reference: Float64Array): boolean {
  if (logits.length !== reference.length) return false;
  for (let i = 0; i < logits.length; i++) if (!Object.is(logits[i], reference[i])) return false;
  const argmax = argmaxRows(logits, workload.count, workload.classes);
  for (let i = 0; i < argmax.length; i++) if (argmax[i] !== workload.simulatedArgmax[i]) return false;
  return true;
}

/**
 * Releases the workload's ciphertexts.
 *
 * @example
 * ```ts
 * disposeWorkload(workload);
 * ```
 */
export function disposeWorkload(workload: HeWorkload): void {
  workload.bootstrapper?.dispose();
  workload.bootstrapStash?.close();
  for (const ct of workload.inputs.values()) ct.dispose();
  for (const ct of workload.weights.values()) ct.dispose();
  workload.inputs.clear();
  workload.weights.clear();
}
