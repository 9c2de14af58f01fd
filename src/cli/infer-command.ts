/**
 * The `home infer` command: its flags, parsed and checked, handed to {@link runInfer}.
 */
import type { Command } from 'commander';
import { type InferOptions, runInfer } from './infer.ts';
import { runInferSimulated } from './infer-simulate.ts';
import { parseNumberList, parseNumberOrFraction } from './sizes.ts';

/**
 * Registers `home infer`.
 *
 * @example
 * ```sh
 * home infer --model models/cryptonets-mnist.onnx --data data/mnist/t10k-images-idx3-ubyte.gz \
 *   --labels data/mnist/t10k-labels-idx1-ubyte.gz --input-scale 0.00390625 --json
 * ```
 */
export function registerInfer(program: Command): void {
  program
    .command('infer')
    .description(
      'encrypted inference of an ONNX model over a data set (accuracy, agreement, timings, memory)',
    )
    .requiredOption('--model <file>', 'ONNX model')
    .requiredOption('--data <path>', 'images: idx file (gzip or not), .npy, or a folder of PNGs')
    .option('--labels <file>', 'labels (idx1, gzip or not)')
    .option(
      '--calibration <path>',
      "images the polynomial approximations are calibrated on, read like --data (default: --data's)",
    )
    .option('--calibration-count <k>', 'calibration images at most', '256')
    .option('--input-scale <s>', 'multiplier of raw values (CryptoNets/LoLa want 1/256)', '1/255')
    .option('--count <k>', 'images to classify (default: all)')
    .option(
      '--mode <mode>',
      "auto (the packing with the lower estimated time for --count images), batch (one image per slot) or latency (one image per block of a ciphertext's slots)",
      'auto',
    )
    .option('--input-mean <m>', 'per-channel mean subtracted after --input-scale: m or m,m,m')
    .option('--input-std <s>', 'per-channel standard deviation divided by after the mean: s or s,s,s')
    .option(
      '--dram-budget <size>',
      'arena + DRAM pool for the server, e.g. 2GiB (default: half of the free memory)',
    )
    .option(
      '--tier <name:path>',
      'slow tier folder (default: a private folder under the OS temp directory, removed at exit)',
    )
    .option('--profile <device>', 'device profile emulated on the slow tier (file: none)', 'file')
    .option(
      '--plaintexts <form>',
      'plaintext weights of a tiered run: auto (per plaintext, whichever costs less by the measured encoder and tier), stored (encoded once, kept or read back) or on-use (encoded by each reader)',
      'auto',
    )
    .option(
      '--plan-cache <dir>',
      'folder of cached plans (default ~/.cache/home-he/plans; none: plan every run)',
    )
    .option('--encrypt-weights', 'encrypt the model weights too (ciphertext × ciphertext)')
    .option('--output <file>', 'write predictions as JSON (atomically) when the run succeeds')
    .option('--json', 'JSON lines on stdout, ending with the summary object')
    .option(
      '--simulate',
      'no encryption: the float simulation of the HE program (packing, approximations, bootstrap noise model) on every image, against the plaintext model',
    )
    .option('--noise-bits <b>', 'with --simulate: each bootstrap adds an error uniform in ±bound·2^-b', '20')
    .action(
      async (flags: {
        model: string;
        data: string;
        calibration?: string;
        calibrationCount: string;
        labels?: string;
        inputScale: string;
        count?: string;
        mode: string;
        inputMean?: string;
        inputStd?: string;
        dramBudget?: string;
        tier?: string;
        profile: string;
        plaintexts: string;
        planCache?: string;
        encryptWeights?: boolean;
        output?: string;
        json?: boolean;
        simulate?: boolean;
        noiseBits: string;
      }) => {
        const run = flags.simulate
          ? (options: InferOptions) =>
              runInferSimulated({
                ...options,
                noiseBits: parseNumberOrFraction(flags.noiseBits, '--noise-bits'),
              })
          : runInfer;
        await run({
          model: flags.model,
          data: flags.data,
          ...(flags.calibration !== undefined ? { calibration: flags.calibration } : {}),
          calibrationCount: parseNumberOrFraction(flags.calibrationCount, '--calibration-count'),
          labels: flags.labels,
          inputScale: parseNumberOrFraction(flags.inputScale, '--input-scale'),
          count: flags.count === undefined ? undefined : parseNumberOrFraction(flags.count, '--count'),
          mode: flags.mode as 'auto' | 'batch' | 'latency',
          ...(flags.inputMean !== undefined
            ? { inputMean: parseNumberList(flags.inputMean, '--input-mean') }
            : {}),
          ...(flags.inputStd !== undefined
            ? { inputStd: parseNumberList(flags.inputStd, '--input-std') }
            : {}),
          ...(flags.dramBudget !== undefined ? { dramBudget: flags.dramBudget } : {}),
          ...(flags.tier !== undefined ? { tier: flags.tier } : {}),
          profile: flags.profile,
          plaintexts: flags.plaintexts as 'auto' | 'stored' | 'on-use',
          ...(flags.planCache !== undefined ? { planCache: flags.planCache } : {}),
          encryptWeights: flags.encryptWeights === true,
          output: flags.output,
          json: flags.json === true,
        });
      },
    );
}
