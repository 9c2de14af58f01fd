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
}
