/**
 * `home bench <suite>`: benchmarks that print one JSON object per line, each HomE figure beside its peer measured
 * in the same run. They come with the repository, not the package: bin/home.mjs hands `home bench …` to this file
 * (through tsx, with the `home-source` condition), and `npm run bench -- <suite>` does the same.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { HomeError, InvalidArgumentError } from '../src/util/errors.ts';

/** The value of a whole-number flag within [min, max] (undefined when the flag is absent). */
function wholeFlag(text: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new InvalidArgumentError(`${flag} ${text}: expected a whole number from ${min} to ${max}`);
  }
  return value;
}

/**
 * The `home bench` command line with every suite.
 *
 * @example
 * ```ts
 * await benchCommand().parseAsync(['node', 'home-bench', 'ckks', '--logN', '13']);
 * ```
 */
export function benchCommand(): Command {
  const bench = new Command('home bench')
    .description('benchmarks (JSON lines; each figure beside its peer)')
    .showHelpAfterError()
    .exitOverride();
  bench
    .command('ckks')
    .description('CKKS operations: HomE vs node-seal 6.0.3, interleaved in one process')
    .option('--json', 'print JSON lines (default)', true)
    .option('--logN <n>', 'ring degree log2: 13, 14 or 15', '14')
    .option('--reps <k>', 'repetitions per op (median reported)', '5')
    .action(async (options: { logN: string; reps: string }) => {
      const { runCkksBench } = await import('./ckks.ts');
      await runCkksBench({ logN: Number(options.logN), reps: Number(options.reps) });
    });
  bench
    .command('infer')
    .description(
      'encrypted MNIST inference (CryptoNets, LoLa-Small) beside the float simulation and onnxruntime-node',
    )
    .option('--json', 'print JSON lines (default)', true)
    .option('--count <k>', 'MNIST test images (default 10000)', '10000')
    .option(
      '--model <name...>',
      'bundled model file names (default: cryptonets-mnist.onnx lola-small-mnist.onnx)',
    )
    .action(async (options: { count: string; model?: string[] }) => {
      const { runInferBench } = await import('./infer.ts');
      await runInferBench({ count: Number(options.count), models: options.model });
    });
  bench
    .command('tier')
    .description(
      'tiered memory: encrypted CryptoNets (batch; latency with encrypted weights) at 1/8 of its peak footprint, ' +
        'HomE vs LRU vs all in memory, real files and optane-appdirect emulation',
    )
    .option('--json', 'print JSON lines (default)', true)
    .option('--quick', 'the CryptoNets workloads only, two rounds, without the seeded-keys variant')
    .option('--dir <path>', 'parent of the temporary slow-tier directories (default: the OS temp directory)')
    .option('--rounds <k>', 'rounds per configuration (medians reported; default 3, 2 with --quick)')
    .option('--images <k>', 'images per batch pass (default 64; same program for any count)')
    .option(
      '--workload <name...>',
      'only these workloads (cryptonets-batch, cryptonets-latency-encw, lola-small-batch, …)',
    )
    .option('--no-synthetic', 'without --quick: skip the synthetic workloads (deep CNN, interleaved models)')
    .option(
      '--threads <n>',
      'kernel threads of every run, tiered and all-in-memory alike (default: the cores beside the I/O threads)',
    )
    .option(
      '--large',
      'only the large model: a generated MLP with 8 GB of encrypted weights under a 1 GiB budget',
    )
    .option(
      '--models',
      'only the many-models run: 200 small models with their own keys, 400 requests in random order, one budget',
    )
    .action(
      async (options: {
        quick?: boolean;
        dir?: string;
        rounds?: string;
        images?: string;
        workload?: string[];
        synthetic: boolean;
        large?: boolean;
        models?: boolean;
        threads?: string;
      }) => {
        const { parseThreads } = await import('../src/cli/main.ts');
        const positive = (text: string | undefined, flag: string) => {
          if (text === undefined) return undefined;
          const value = Number(text);
          if (!Number.isInteger(value) || value < 1) {
            throw new InvalidArgumentError(`${flag} ${text}: expected a positive integer`);
          }
          return value;
        };
        if (options.models) {
          const { runManyModelsBench } = await import('./tier-models.ts');
          await runManyModelsBench({ dir: options.dir, rounds: positive(options.rounds, '--rounds') });
          return;
        }
        if (options.large) {
          const { runLargeModelBench } = await import('./tier-large.ts');
          await runLargeModelBench({ dir: options.dir });
          return;
        }
        const { runHeTierBench } = await import('./tier.ts');
        await runHeTierBench({
          quick: options.quick === true,
          dir: options.dir,
          rounds: positive(options.rounds, '--rounds'),
          batchImages: positive(options.images, '--images'),
          workloads: options.workload,
          threads: options.threads === undefined ? undefined : parseThreads(options.threads),
        });
        if (!options.quick && options.synthetic) {
          const { runTierBench } = await import('./tier-synthetic.ts');
          await runTierBench({ dir: options.dir });
        }
      },
    );
  bench
    .command('threads')
    .description(
      'kernel threads: NTT (logN 16), multiply+relinearize+rescale and rotate (logN 15), bootstrapping ' +
        '(logN 16), CryptoNets batch inference and the zoo MNIST CNN (latency packing), each on 1 thread and on ' +
        '--threads in one run',
    )
    .option('--json', 'print JSON lines (default)', true)
    .option('--threads <n>', 'threads of the parallel side (default: the available cores, at least 2)')
    .option('--reps <k>', 'repetitions per operation, alternating the thread counts (medians)', '25')
    .option('--images <k>', 'CryptoNets: MNIST test images (default 10000, as `npm start`)', '10000')
    .option(
      '--zoo <path>',
      'the zoo MNIST CNN ONNX file (default: ../shared/models/third-party/mnist-cntk-zoo-mnist-8.onnx beside ' +
        'the checkout; skipped when absent)',
    )
    .option('--zoo-images <k>', 'zoo CNN: images per thread count', '4')
    .option('--workload <name...>', 'only these: ntt, mul-relin-rescale, rotate, bootstrap, cryptonets, zoo')
    .action(
      async (options: {
        threads?: string;
        reps: string;
        images: string;
        zoo?: string;
        zooImages: string;
        workload?: string[];
      }) => {
        const { parseThreads } = await import('../src/cli/main.ts');
        const { availableCores } = await import('#kernel-threads');
        const { setDefaultThreads } = await import('../src/ring/context.ts');
        const threads =
          options.threads === undefined ? Math.max(2, availableCores()) : parseThreads(options.threads);
        setDefaultThreads(threads);
        const whole = (text: string, flag: string, max: number) => wholeFlag(text, flag, 1, max) as number;
        const { runThreadsBench } = await import('./threads.ts');
        await runThreadsBench({
          threads,
          reps: whole(options.reps, '--reps', 1000),
          images: whole(options.images, '--images', 10_000),
          zooModel:
            options.zoo ??
            fileURLToPath(
              new URL('../../shared/models/third-party/mnist-cntk-zoo-mnist-8.onnx', import.meta.url),
            ),
          zooImages: whole(options.zooImages, '--zoo-images', 10_000),
          workloads: options.workload,
        });
      },
    );
  bench
    .command('bootstrap')
    .description(
      'CKKS bootstrapping (logN 16, full slots, one thread by default): time per phase, precision, levels left, ' +
        'key bytes, peak RSS; beside OpenFHE when --peer gives its benchmark binary',
    )
    .option('--json', 'print JSON lines (default)', true)
    .option('--logN <n>', 'ring degree log2 (below 16 the chain is insecure, for quick runs)', '16')
    .option('--slots <k>', 'slots bootstrapped, a power of two ≤ N/2 (default N/2)')
    .option('--reps <k>', 'timed bootstrappings after the first (median reported)', '3')
    .option('--threads <n>', 'kernel threads', '1')
    .option('--message-ratio <bits>', "log2(q0/Δ) during the reduction (default: the parameters' default)")
    .option('--peer <path>', 'the OpenFHE bootstrapping benchmark binary (or HOME_OPENFHE_BOOTSTRAP)')
    .option(
      '--dram-budget <size>',
      'Galois keys and diagonals wait in files and the peak RSS is checked against this; none: they wait in ' +
        'host memory',
      '4GiB',
    )
    .option('--dir <path>', 'parent of the temporary stash directory (default: the OS temporary directory)')
    .action(
      async (options: {
        logN: string;
        slots?: string;
        reps: string;
        threads: string;
        messageRatio?: string;
        peer?: string;
        dramBudget?: string;
        dir?: string;
      }) => {
        const { parseByteSize } = await import('../src/cli/sizes.ts');
        const { runBootstrapBench } = await import('./bootstrap.ts');
        await runBootstrapBench({
          logN: wholeFlag(options.logN, '--logN', 10, 17) as number,
          slots: wholeFlag(options.slots, '--slots', 2, 2 ** 16),
          reps: wholeFlag(options.reps, '--reps', 1, 100) as number,
          threads: wholeFlag(options.threads, '--threads', 1, 1024) as number,
          messageRatioBits: wholeFlag(options.messageRatio, '--message-ratio', 4, 28),
          peer: options.peer ?? process.env.HOME_OPENFHE_BOOTSTRAP,
          dramBudgetBytes:
            options.dramBudget === undefined || options.dramBudget === 'none'
              ? undefined
              : parseByteSize(options.dramBudget, '--dram-budget'),
          dir: options.dir,
        });
      },
    );
  bench
    .command('resnet')
    .description(
      'encrypted CIFAR-10 ResNets (home infer --mode latency): ResNet-20 and deeper members of its family ' +
        '(32, 44, 56 layers, grown from it, untrained), each in its own process, time and bootstraps beside ResNet-20',
    )
    .option('--json', 'print JSON lines (default)', true)
    .option('--depth <n...>', 'depths 6n + 2 (default 20 32 44 56)')
    .option('--count <k>', 'test images per depth', '1')
    .option('--threads <n>', "kernel threads of each run (default: home infer's)")
    .option('--dram-budget <size>', 'home infer --dram-budget', '4GiB')
    .option('--calibration-count <k>', "home infer --calibration-count (default: home infer's)")
    .option('--model <file>', 'the ResNet-20 to grow from (default: cifar10/resnet20-akamaster.onnx)')
    .action(
      async (options: {
        depth?: string[];
        count: string;
        threads?: string;
        dramBudget: string;
        calibrationCount?: string;
        model?: string;
      }) => {
        const { runResNetBench } = await import('./resnet.ts');
        await runResNetBench({
          depths: options.depth?.map((d) => wholeFlag(d, '--depth', 20, 1000) as number),
          count: wholeFlag(options.count, '--count', 1, 500) as number,
          threads: wholeFlag(options.threads, '--threads', 1, 1024),
          dramBudget: options.dramBudget,
          calibrationCount: wholeFlag(options.calibrationCount, '--calibration-count', 1, 500),
          model: options.model,
        });
      },
    );
  return bench;
}

async function main(argv: readonly string[]): Promise<void> {
  try {
    await benchCommand().parseAsync(argv as string[]);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    if (error instanceof HomeError) {
      console.error(`home bench: ${error.name} (${error.code}): ${error.message}`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
}

// Run as the entry point (not when a test imports benchCommand).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href)
  await main(process.argv);
