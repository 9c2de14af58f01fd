import { InvalidArgumentError } from '../util/errors.ts';

const UNITS: Record<string, number> = {
  b: 1,
  k: 2 ** 10,
  kb: 1e3,
  kib: 2 ** 10,
  m: 2 ** 20,
  mb: 1e6,
  mib: 2 ** 20,
  g: 2 ** 30,
  gb: 1e9,
  gib: 2 ** 30,
  t: 2 ** 40,
  tb: 1e12,
  tib: 2 ** 40,
};

/**
 * Parses a byte size: a number with an optional unit — `B`, binary `KiB` `MiB` `GiB` `TiB` (also `K` `M` `G` `T`),
 * or decimal `KB` `MB` `GB` `TB` — e.g. `512MiB`, `1GiB`, `1.5 GB`, `4096`. Rounds down to whole bytes.
 *
 * @throws InvalidArgumentError naming the flag and the text, with examples of what is expected.
 * @example
 * ```ts
 * parseByteSize('512MiB', '--dram-budget'); // 536870912
 * ```
 */
export function parseByteSize(text: string, flag: string): number {
  const match = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(String(text));
  const unit = match ? UNITS[match[2].toLowerCase() || 'b'] : undefined;
  if (!match || unit === undefined) {
    throw new InvalidArgumentError(
      `${flag} ${text}: expected a size like 512MiB, 1GiB, 1.5GB or 1048576 (units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)`,
    );
  }
  const bytes = Math.floor(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new InvalidArgumentError(`${flag} ${text}: expected a positive size below 2^53 bytes`);
  }
  return bytes;
}

/**
 * A slow tier given on the command line as `name:path`, e.g. `nvme:/data/he` or `pmem:/mnt/pmem0`.
 *
 * @example
 * ```ts
 * const spec: TierSpec = parseTierSpec('nvme:/data/he');
 * ```
 */
export interface TierSpec {
  name: string;
  dir: string;
}

/**
 * Parses `name:path` (the name: letters, digits, `-` and `_`; the path: everything after the first colon).
 *
 * @throws InvalidArgumentError for a missing name or path.
 * @example
 * ```ts
 * parseTierSpec('pmem:/mnt/pmem0'); // { name: 'pmem', dir: '/mnt/pmem0' }
 * ```
 */
export function parseTierSpec(text: string): TierSpec {
  const at = text.indexOf(':');
  const name = at > 0 ? text.slice(0, at) : '';
  const dir = at > 0 ? text.slice(at + 1) : '';
  if (!/^[A-Za-z0-9_-]+$/.test(name) || dir.length === 0) {
    throw new InvalidArgumentError(
      `--tier ${text}: expected name:path, e.g. nvme:/data/he or pmem:/mnt/pmem0 (name of letters, digits, - and _)`,
    );
  }
  if (['arena', 'dram', 'memcpy', 'compute'].includes(name)) {
    throw new InvalidArgumentError(
      `--tier ${text}: the name ${name} is reserved; expected another, e.g. nvme`,
    );
  }
  return { name, dir };
}

/**
 * Parses a comma-separated list of numbers (fractions allowed), e.g. `0.4914,0.4822,0.4465`.
 *
 * @throws InvalidArgumentError naming the flag and the text.
 * @example
 * ```ts
 * parseNumberList('0.5,1/4', '--input-mean'); // [0.5, 0.25]
 * ```
 */
export function parseNumberList(text: string, flag: string): number[] {
  return text.split(',').map((part) => {
    try {
      return parseNumberOrFraction(part, flag);
    } catch {
      throw new InvalidArgumentError(
        `${flag} ${text}: expected a number or a fraction like 1/256 for each comma-separated value ("${part}" is not)`,
      );
    }
  });
}

/**
 * Parses a number or a fraction like `1/256`.
 *
 * @throws InvalidArgumentError naming the flag and the text.
 * @example
 * ```ts
 * parseNumberOrFraction('1/255', '--input-scale'); // 0.00392…
 * ```
 */
export function parseNumberOrFraction(text: string, flag: string): number {
  const match = /^\s*([0-9.eE+-]+)\s*(?:\/\s*([0-9.eE+-]+)\s*)?$/.exec(text);
  const value = match ? Number(match[1]) / (match[2] === undefined ? 1 : Number(match[2])) : Number.NaN;
  if (!Number.isFinite(value))
    throw new InvalidArgumentError(`${flag} ${text}: expected a number or a fraction like 1/256`);
  return value;
}
