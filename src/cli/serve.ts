/**
 * `home serve`: the multi-tenant encrypted-inference server (KServe V2 / Open Inference Protocol) on a port,
 * with its data directory, and optionally a DRAM budget and slow tier for the runs.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { ServerMemory } from '../runtime/he/server.ts';
import { IoPool } from '../runtime/io/io-pool.ts';
import type { DeviceProfile } from '../runtime/store/devices.ts';
import { FileTier } from '../runtime/store/file-tier.ts';
import { probeTier } from '../runtime/store/tier-probe.ts';
import { createServer } from '../serve/app.ts';
import { type OperationFlags, operationOptions } from '../serve/cli-options.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { parseByteSize, parseTierSpec } from './sizes.ts';

/**
 * Registers `home serve`.
 *
 * @example
 * ```sh
 * HOME_ADMIN_TOKEN=$(openssl rand -hex 32) home serve --port 8080 --data-dir ./home-data
 * ```
 */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'serve encrypted inference over HTTP (KServe V2 / Open Inference Protocol) to several tenants',
    )
    .option('--port <p>', 'TCP port', '8080')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .requiredOption('--data-dir <dir>', 'where models, keys, tenants and the generated admin token persist')
    .option(
      '--dram-budget <size>',
      'arena + DRAM pool of each model run, e.g. 2GiB (default: unbounded, all in memory)',
    )
    .option('--tier <name:path>', 'slow tier folder for runs over the budget (default: <data-dir>/tier)')
    .option('--allow-insecure-parameters', 'accept insecure_log_n on model uploads (tests and demos only)')
    .option('--log', 'log requests at level info (same as --log-level info)')
    .option(
      '--log-level <level>',
      'pino log level on stdout: fatal, error, warn, info, debug, trace or silent (no header or body is logged)',
    )
    .option('--key-ttl <duration>', 'lifetime of uploaded key sets, e.g. 7d, 12h, 3600 (default: no expiry)')
    .option('--upload-idle <duration>', 'delete a chunked key upload idle this long (default 1h)')
    .option(
      '--tenant-rps <n>',
      'requests per second per tenant; over it 429 QUOTA_EXCEEDED (default: no limit)',
    )
    .option('--tenant-burst <n>', 'requests a tenant may send at once after a pause (default: --tenant-rps)')
    .option('--tenant-inferences <n>', 'inferences per tenant waiting or running at once (default: no limit)')
    .option('--max-queue <n>', 'inferences waiting or running past which the server answers 503 OVERLOADED')
    .option('--tls-cert <file>', 'PEM certificate (chain): serve HTTPS (with --tls-key)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .action(
      async (
        flags: {
          port: string;
          host: string;
          dataDir: string;
          dramBudget?: string;
          tier?: string;
          allowInsecureParameters?: boolean;
          log?: boolean;
        } & OperationFlags,
      ) => {
        const port = Number(flags.port);
        if (!/^\d+$/.test(flags.port) || port > 65535) {
          throw new InvalidArgumentError(`--port ${flags.port}: expected a port number from 0 to 65535`);
        }
        const memory =
          flags.dramBudget !== undefined
            ? await tieredMemory(flags.dramBudget, flags.tier ?? `tier:${join(flags.dataDir, 'tier')}`)
            : undefined;
        if (memory === undefined && flags.tier !== undefined) {
          throw new InvalidArgumentError(
            '--tier: needs --dram-budget (without a budget every run is in memory)',
          );
        }
        const operation = await operationOptions({
          ...flags,
          ...(flags.logLevel === undefined && flags.log === true ? { logLevel: 'info' } : {}),
        });
        const server = await createServer({
          dataDir: flags.dataDir,
          adminToken: process.env.HOME_ADMIN_TOKEN,
          allowInsecureParameters: flags.allowInsecureParameters === true,
          ...operation,
          ...(memory ? { engine: { memoryFor: memory.memoryFor } } : {}),
        });
        const address = await server.app.listen({ port, host: flags.host });
        console.log(`home serve: listening on ${address}`);
        console.log(
          server.adminTokenSource === 'env'
            ? 'home serve: admin token from HOME_ADMIN_TOKEN'
            : `home serve: admin token in ${server.adminTokenPath} (mode 0600)`,
        );
        console.log(
          `home serve: ${server.tenants.names().length} tenants; ${memory ? `DRAM budget ${flags.dramBudget} per run` : 'runs all in memory'}`,
        );
        const stop = async () => {
          await server.app.close();
          await memory?.close();
          process.exit(0);
        };
        process.once('SIGINT', () => void stop());
        process.once('SIGTERM', () => void stop());
      },
    );
}

/** One slow tier folder per model + key pair under the tier path, planned with the tier's measured profile. */
async function tieredMemory(
  budget: string,
  tierSpec: string,
): Promise<{ memoryFor: (name: string) => Promise<ServerMemory>; close: () => Promise<void> }> {
  const budgetBytes = parseByteSize(budget, '--dram-budget');
  if (!(budgetBytes > 0)) throw new InvalidArgumentError(`--dram-budget ${budget}: expected a positive size`);
  const spec = parseTierSpec(tierSpec);
  await mkdir(spec.dir, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    throw new InvalidArgumentError(`--tier ${tierSpec}: cannot create ${spec.dir} (${error.code})`);
  });
  const io = new IoPool();
  const tiers: FileTier[] = [];
  let profile: DeviceProfile | undefined;
  return {
    async memoryFor(name: string) {
      const dir = join(spec.dir, name.replace(/[^A-Za-z0-9_-]/g, '_'));
      await mkdir(dir, { recursive: true });
      const tier = await FileTier.open({ name: spec.name, dir, io });
      tiers.push(tier);
      profile ??= await probeTier(tier);
      return { budgetBytes, tiers: [tier], planningDevices: [profile] };
    },
    async close() {
      for (const tier of tiers) await tier.close();
      await io.terminate();
    },
  };
}
