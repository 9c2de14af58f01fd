import type { Command } from 'commander';

/**
 * `home bench <suite>`: benchmarks that print one JSON object per line, each HomE figure beside its peer measured
 * in the same run. Suites register here.
 *
 * @example
 * ```sh
 * home bench ckks --json --logN 14
 * ```
 */
export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks (JSON lines; each figure beside its peer)');
  bench
    .command('ckks')
    .description('CKKS operations: HomE vs node-seal 6.0.3, interleaved in one process')
    .option('--json', 'print JSON lines (default)', true)
    .option('--logN <n>', 'ring degree log2: 13, 14 or 15', '14')
    .option('--reps <k>', 'repetitions per op (median reported)', '5')
    .action(async (options: { logN: string; reps: string }) => {
      const { runCkksBench } = await import('./bench-ckks.ts');
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
      const { runInferBench } = await import('./bench-infer.ts');
      await runInferBench({ count: Number(options.count), models: options.model });
    });
}
