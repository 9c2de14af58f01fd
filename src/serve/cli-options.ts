/**
 * The operational flags of `home serve` turned into server options: durations (`--key-ttl 7d`), positive limits
 * (`--max-queue 64`), the log level and the TLS files. Kept apart from the command so they are tested without
 * starting a process.
 */
import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../util/errors.ts';
import type { ServerOptions } from './app.ts';

const UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Seconds of a duration: a whole number with an optional unit `s`, `m`, `h` or `d` (`90`, `15m`, `7d`).
 *
 * @throws InvalidArgumentError naming `flag` for anything else or zero.
 * @example
 * ```ts
 * parseDuration('7d', '--key-ttl'); // 604800
 * ```
 */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  const seconds = match ? Number(match[1]) * UNITS[match[2] || 's'] : 0;
  if (!(seconds > 0)) {
    throw new InvalidArgumentError(`${flag} ${text}: expected a duration such as 3600, 30m, 12h or 7d`);
  }
  return seconds;
}

/**
 * A positive number flag.
 *
 * @throws InvalidArgumentError naming `flag` for anything else.
 * @example
 * ```ts
 * parsePositive('64', '--max-queue'); // 64
 * ```
 */
export function parsePositive(text: string, flag: string): number {
  const value = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!(value > 0)) throw new InvalidArgumentError(`${flag} ${text}: expected a positive number`);
  return value;
}

/**
 * The flags of `home serve` that shape its operation, as given on the command line.
 *
 * @example
 * ```ts
 * const flags: OperationFlags = { keyTtl: '7d', logLevel: 'info', maxQueue: '64' };
 * ```
 */
export interface OperationFlags {
  readonly keyTtl?: string;
  readonly uploadIdle?: string;
  readonly logLevel?: string;
  readonly tenantRps?: string;
  readonly tenantBurst?: string;
  readonly tenantInferences?: string;
  readonly maxQueue?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
}

/**
 * The server options the flags ask for; the TLS files are read here.
 *
 * @throws InvalidArgumentError for a malformed value, an unknown log level, only one of `--tls-cert` and
 *   `--tls-key`, or a TLS file that cannot be read or is not PEM.
 * @example
 * ```ts
 * const options = await operationOptions({ keyTtl: '1d', tlsCert: 'cert.pem', tlsKey: 'key.pem' });
 * await createServer({ dataDir, ...options });
 * ```
 */
export async function operationOptions(
  flags: OperationFlags,
): Promise<Pick<ServerOptions, 'keyTtlSeconds' | 'uploadIdleSeconds' | 'logger' | 'quotas' | 'tls'>> {
  const level = flags.logLevel;
  if (level !== undefined && !LEVELS.includes(level)) {
    throw new InvalidArgumentError(`--log-level ${level}: expected one of ${LEVELS.join(', ')}`);
  }
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new InvalidArgumentError(
      '--tls-cert and --tls-key: give both (the certificate and its private key)',
    );
  }
  const pem = async (path: string, flag: string) => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw new InvalidArgumentError(
        `${flag} ${path}: cannot read (${(error as NodeJS.ErrnoException).code})`,
      );
    }
    if (!text.includes('-----BEGIN ')) throw new InvalidArgumentError(`${flag} ${path}: not a PEM file`);
    return text;
  };
  const quotas = {
    ...(flags.tenantRps !== undefined
      ? { requestsPerSecond: parsePositive(flags.tenantRps, '--tenant-rps') }
      : {}),
    ...(flags.tenantBurst !== undefined ? { burst: parsePositive(flags.tenantBurst, '--tenant-burst') } : {}),
    ...(flags.tenantInferences !== undefined
      ? { concurrentInferences: parsePositive(flags.tenantInferences, '--tenant-inferences') }
      : {}),
    ...(flags.maxQueue !== undefined ? { maxQueue: parsePositive(flags.maxQueue, '--max-queue') } : {}),
  };
  return {
    ...(flags.keyTtl !== undefined ? { keyTtlSeconds: parseDuration(flags.keyTtl, '--key-ttl') } : {}),
    ...(flags.uploadIdle !== undefined
      ? { uploadIdleSeconds: parseDuration(flags.uploadIdle, '--upload-idle') }
      : {}),
    logger: level === undefined || level === 'silent' ? false : { level },
    quotas,
    ...(flags.tlsCert !== undefined && flags.tlsKey !== undefined
      ? { tls: { cert: await pem(flags.tlsCert, '--tls-cert'), key: await pem(flags.tlsKey, '--tls-key') } }
      : {}),
  };
}
