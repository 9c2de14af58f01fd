/**
 * `home admin`: the operator's and model owner's commands against a running `home serve` — create a tenant (with
 * the admin token), upload an ONNX model (with a tenant token holding `models:admin`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { ServerError } from '../serve/client.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { parseNumberList, parseNumberOrFraction } from './sizes.ts';

/**
 * Registers `home admin tenant create` and `home admin model upload`.
 *
 * @example
 * ```sh
 * home admin tenant create acme --server http://127.0.0.1:8080 --admin-token "$(cat data/admin-token)" --json
 * home admin model upload mnist models/cryptonets-mnist.onnx --server http://127.0.0.1:8080 --token "$TOKEN" --input-scale 1/256
 * ```
 */
export function registerAdmin(program: Command): void {
  const admin = program.command('admin').description('manage a running `home serve`: tenants and models');
  admin
    .command('tenant')
    .description('tenants')
    .command('create <name>')
    .description('create a tenant; prints its token (every scope), shown once')
    .requiredOption('--server <url>', 'server URL, e.g. http://127.0.0.1:8080')
    .requiredOption('--admin-token <t>', 'the admin token (HOME_ADMIN_TOKEN or <data-dir>/admin-token)')
    .option('--scopes <list>', 'comma-separated scopes (infer, keys, models:admin; default all)')
    .option('--json', 'print {tenant, token} as JSON')
    .action(
      async (
        name: string,
        flags: { server: string; adminToken: string; scopes?: string; json?: boolean },
      ) => {
        const scopes = flags.scopes?.split(',').map((s) => s.trim());
        const body = await call(flags.server, flags.adminToken, '/v2/admin/tenants', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name, ...(scopes ? { scopes } : {}) }),
        });
        const created = body as { tenant: string; token: string; scopes: string[] };
        console.log(
          flags.json
            ? JSON.stringify({ tenant: created.tenant, token: created.token, scopes: created.scopes })
            : `tenant ${created.tenant} (scopes ${created.scopes.join(', ')})\ntoken ${created.token}`,
        );
      },
    );
  admin
    .command('model')
    .description('models')
    .command('upload <name> <model>')
    .description('upload an ONNX model; the server compiles it to an HE program and serves it')
    .requiredOption('--server <url>', 'server URL')
    .requiredOption('--token <t>', 'a tenant token with the scope models:admin')
    .option('--input-scale <s>', 'multiplier of raw values (CryptoNets/LoLa want 1/256)', '1/255')
    .option('--input-mean <m>', 'per-channel mean subtracted after the scale: m or m,m,m')
    .option('--input-std <s>', 'per-channel standard deviation divided by after the mean: s or s,s,s')
    .option('--mode <mode>', 'packing: auto, batch or latency', 'auto')
    .option(
      '--insecure-log-n <k>',
      'tests and demos only: ring degree 2^k below 128-bit security (the server must allow it)',
    )
    .option('--json', 'print the model metadata as JSON')
    .action(
      async (
        name: string,
        model: string,
        flags: {
          server: string;
          token: string;
          inputScale: string;
          inputMean?: string;
          inputStd?: string;
          mode: string;
          insecureLogN?: string;
          json?: boolean;
        },
      ) => {
        if (!existsSync(model)) throw new InvalidArgumentError(`<model> ${model}: no such file`);
        if (!['auto', 'batch', 'latency'].includes(flags.mode)) {
          throw new InvalidArgumentError(`--mode ${flags.mode}: expected auto, batch or latency`);
        }
        const query = new URLSearchParams({
          input_scale: String(parseNumberOrFraction(flags.inputScale, '--input-scale')),
          mode: flags.mode,
        });
        if (flags.inputMean)
          query.set('input_mean', parseNumberList(flags.inputMean, '--input-mean').join(','));
        if (flags.inputStd) query.set('input_std', parseNumberList(flags.inputStd, '--input-std').join(','));
        if (flags.insecureLogN) query.set('insecure_log_n', flags.insecureLogN);
        const meta = (await call(
          flags.server,
          flags.token,
          `/v2/repository/models/${encodeURIComponent(name)}?${query}`,
          {
            method: 'PUT',
            headers: { 'content-type': 'application/octet-stream' },
            body: readFileSync(model),
          },
        )) as {
          name: string;
          he: { packing: string; log_n: number; batch_size: number; rotations: number[] };
        };
        console.log(
          flags.json
            ? JSON.stringify(meta)
            : `model ${meta.name} (${basename(model)}): ${meta.he.packing} packing, logN ${meta.he.log_n}, ` +
                `${meta.he.batch_size} images per request, ${meta.he.rotations.length} rotation keys`,
        );
      },
    );
}

/** A JSON call with a bearer token; a server error becomes a {@link ServerError} (exit code 2). */
async function call(server: string, token: string, path: string, init: RequestInit): Promise<unknown> {
  let url: URL;
  try {
    url = new URL(path, server);
  } catch {
    throw new InvalidArgumentError(`--server ${server}: expected a URL such as http://127.0.0.1:8080`);
  }
  const response = await fetch(url, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
  });
  const body = (await response.json().catch(() => ({}))) as { error?: string; code?: string };
  if (!response.ok) {
    throw new ServerError(
      response.status,
      body.code ?? 'HTTP_ERROR',
      `${response.status}: ${body.error ?? response.statusText}`,
    );
  }
  return body;
}
