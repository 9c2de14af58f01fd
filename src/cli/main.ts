import { Command, CommanderError } from 'commander';
import { HomeError, InvalidArgumentError } from '../util/errors.ts';

/**
 * The value of `--threads`: a whole number of threads from 1 to 1024.
 *
 * @example
 * ```ts
 * parseThreads('2'); // 2
 * ```
 */
export function parseThreads(text: string): number {
  const threads = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(threads) || threads < 1 || threads > 1024) {
    throw new InvalidArgumentError(`--threads ${text}: expected a whole number of threads from 1 to 1024`);
  }
  return threads;
}

/**
 * Entry point of the `home` command line. Each subcommand lives in its own module and registers itself here.
 *
 * @example
 * ```ts
 * await main(['node', 'home', 'demo']);
 * ```
 */
export async function main(argv: readonly string[]): Promise<void> {
  const program = new Command();
  program
    .name('home')
    .description('HomE: encrypted deep-learning inference (RNS-CKKS) with a tiered memory runtime')
    .addHelpText(
      'after',
      '\nBenchmarks (`home bench <suite>`) come with the source repository and run from a checkout.',
    )
    .option(
      '--threads <n>',
      'threads computing kernels, the main one included (default: the available cores)',
    )
    .showHelpAfterError()
    .exitOverride()
    .hook('preAction', async (command) => {
      const { threads } = command.opts<{ threads?: string }>();
      if (threads === undefined) return;
      const { setDefaultThreads } = await import('../ring/context.ts');
      setDefaultThreads(parseThreads(threads));
    });
  const { registerDemo } = await import('./demo.ts');
  registerDemo(program);
  const { registerInfer } = await import('./infer-command.ts');
  registerInfer(program);
  const { registerCharacterize } = await import('./characterize.ts');
  registerCharacterize(program);
  const { registerServe } = await import('./serve.ts');
  registerServe(program);
  const { registerAdmin } = await import('./admin.ts');
  registerAdmin(program);
  const { registerClient } = await import('./client.ts');
  registerClient(program);
  try {
    await program.parseAsync(argv as string[]);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    if (error instanceof HomeError) {
      console.error(`home: ${error.name} (${error.code}): ${error.message}`);
      if (process.env.HOME_DEBUG_STACK) console.error(error.stack);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
}
