/**
 * `home client infer`: a data owner's encrypted inference against a running `home serve` — fetch the model's
 * metadata, make and upload its keys, then for each request encrypt, infer, decrypt — with a JSON summary of
 * accuracy, latency and bytes moved.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadIdxLabels } from '../nn/data.ts';
import { argmaxRows } from '../nn/simulate.ts';
import { RemoteModel, ServeClient } from '../serve/client.ts';
import { normalizeImages } from '../serve/he-client.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { loadImageSet } from './images.ts';

/**
 * The summary `home client infer --json` prints.
 *
 * @example
 * ```ts
 * const s: ClientSummary = JSON.parse(lastLine);
 * console.log(s.accuracy, s.p50_ms);
 * ```
 */
export interface ClientSummary {
  suite: 'client';
  model: string;
  count: number;
  /** Correct predictions over `count` (null without labels). */
  accuracy: number | null;
  /** Wall time per image of the requests (encrypt + infer + decrypt), keys excluded. */
  seconds_per_image: number;
  /** Request latency percentiles (one request per batch of up to the model's batch size). */
  p50_ms: number;
  p99_ms: number;
  bytes_up: number;
  bytes_down: number;
  key_upload_bytes: number;
  keygen_s: number;
  requests: number;
}

/**
 * Registers `home client infer`.
 *
 * @example
 * ```sh
 * home client infer --server http://127.0.0.1:8080 --token "$TOKEN" --model mnist \
 *   --data data/mnist/t10k-images-idx3-ubyte.gz --labels data/mnist/t10k-labels-idx1-ubyte.gz --count 10 --json
 * ```
 */
export function registerClient(program: Command): void {
  program
    .command('client')
    .description('a client of `home serve`')
    .command('infer')
    .description('encrypt images, infer on the server, decrypt; the secret key stays here')
    .requiredOption('--server <url>', 'server URL')
    .requiredOption('--token <t>', 'a tenant token with the scopes infer and keys')
    .requiredOption('--model <name>', 'model name on the server')
    .requiredOption(
      '--data <path>',
      'raw images (bytes 0…255): idx file (gzip or not), .npy, or a folder of PNGs',
    )
    .option('--labels <file>', 'labels (idx1, gzip or not)')
    .option('--count <k>', 'images to classify (default: all)')
    .option('--json', 'print the summary as JSON')
    .action(async (flags: ClientInferFlags & { json?: boolean }) => {
      const summary = await runClientInfer(flags);
      if (flags.json) console.log(JSON.stringify(summary));
      else {
        console.log(
          `${summary.model}: ${summary.count} images in ${summary.requests} requests, ` +
            `${summary.accuracy === null ? 'no labels' : `accuracy ${(summary.accuracy * 100).toFixed(1)} %`}, ` +
            `p50 ${summary.p50_ms} ms, p99 ${summary.p99_ms} ms; keys ${summary.key_upload_bytes} B up, ` +
            `requests ${summary.bytes_up} B up / ${summary.bytes_down} B down`,
        );
      }
    });
}

/**
 * The flags of `home client infer`, as commander gives them (numbers still text).
 *
 * @example
 * ```ts
 * const flags: ClientInferFlags = { server, token, model: 'mnist', data: 'images.idx', count: '4' };
 * ```
 */
export interface ClientInferFlags {
  server: string;
  token: string;
  model: string;
  data: string;
  labels?: string;
  count?: string;
}

/**
 * The work of `home client infer`.
 *
 * @throws InvalidArgumentError for bad flags or files; ServerError for the server's error answers.
 * @example
 * ```ts
 * const summary = await runClientInfer({ server, token, model: 'mnist', data: 'images.idx', count: '4' });
 * ```
 */
export async function runClientInfer(flags: ClientInferFlags): Promise<ClientSummary> {
  const client = new ServeClient({ server: flags.server, token: flags.token });
  const model = await RemoteModel.open(client, flags.model);
  const he = model.he;
  const batch = loadImageSet(flags.data, 1, [1, ...he.input_shape], '--data');
  const size = he.input_shape.reduce((a, b) => a * b, 1);
  if (batch.data.length !== batch.count * size) {
    throw new InvalidArgumentError(
      `--data ${flags.data}: images of shape [${batch.shape.join(', ')}]; the model takes [${he.input_shape.join(', ')}]`,
    );
  }
  let count = batch.count;
  if (flags.count !== undefined) {
    count = Number(flags.count);
    if (!Number.isInteger(count) || count < 1)
      throw new InvalidArgumentError(`--count ${flags.count}: expected a positive integer`);
    if (count > batch.count)
      throw new InvalidArgumentError(`--count ${count}: the data has only ${batch.count} images`);
  }
  let labels: Uint8Array | undefined;
  if (flags.labels !== undefined) {
    if (!existsSync(flags.labels)) throw new InvalidArgumentError(`--labels ${flags.labels}: no such file`);
    labels = loadIdxLabels(readFileSync(flags.labels));
    if (labels.length < count)
      throw new InvalidArgumentError(`--labels ${flags.labels}: ${labels.length} labels for ${count} images`);
  }
  const images = normalizeImages(he, batch.data.subarray(0, count * size));
  await model.uploadKeys();
  const classes = model.crypto.outputSize;
  const latencies: number[] = [];
  let correct = 0;
  const start = performance.now();
  for (let first = 0; first < count; first += he.batch_size) {
    const n = Math.min(he.batch_size, count - first);
    const t = performance.now();
    const logits = await model.classify(images, n, first);
    latencies.push(performance.now() - t);
    const predicted = argmaxRows(logits, n, classes);
    if (labels) for (let i = 0; i < n; i++) if (predicted[i] === labels[first + i]) correct++;
  }
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const percentile = (p: number) =>
    Number(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(1));
  return {
    suite: 'client',
    model: flags.model,
    count,
    accuracy: labels ? correct / count : null,
    seconds_per_image: Number((seconds / count).toFixed(4)),
    p50_ms: percentile(0.5),
    p99_ms: percentile(0.99),
    bytes_up: client.traffic.up,
    bytes_down: client.traffic.down,
    key_upload_bytes: client.traffic.keys,
    keygen_s: Number(model.crypto.keygenSeconds.toFixed(3)),
    requests: latencies.length,
  };
}
