/**
 * Locates the model and data files the package bundles (Node only): first in the package (`models/`, `data/`,
 * two levels above `src/platform` and `dist/platform` alike), then in the shared folder checked out beside a
 * repository (`../shared/models`, `../shared/data`), so the demo, tests and benchmarks find them either way.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '../util/errors.ts';

const REPO = new URL('../../', import.meta.url);

function locate(kind: 'models' | 'data', relative: string): string {
  if (relative.split(/[\\/]/).includes('..')) {
    throw new InvalidArgumentError(`${kind} path '${relative}': expected a path inside the ${kind} folder`);
  }
  const candidates = [
    new URL(`${kind}/${relative}`, REPO),
    new URL(`../shared/${kind}/${relative}`, REPO),
  ].map((u) => fileURLToPath(u));
  for (const path of candidates) if (existsSync(path)) return path;
  throw new InvalidArgumentError(
    `${kind} file '${relative}' not found; looked in ${candidates.join(' and ')}`,
  );
}

/**
 * Absolute path of a model file, e.g. `cryptonets-mnist.onnx`.
 *
 * @throws InvalidArgumentError when neither `<repo>/models` nor `../shared/models` has it.
 * @example
 * ```ts
 * const bytes = readFileSync(findModelFile('lola-small-mnist.onnx'));
 * ```
 */
export function findModelFile(name: string): string {
  return locate('models', name);
}

/**
 * Absolute path of a data file, e.g. `mnist/t10k-images-idx3-ubyte.gz`.
 *
 * @throws InvalidArgumentError when neither `<repo>/data` nor `../shared/data` has it.
 * @example
 * ```ts
 * const images = loadIdxImages(readFileSync(findDataFile('mnist/t10k-images-idx3-ubyte.gz')));
 * ```
 */
export function findDataFile(relative: string): string {
  return locate('data', relative);
}
