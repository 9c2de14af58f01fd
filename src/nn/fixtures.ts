/**
 * Locates the project's model and data files: first inside the repository (`models/`, `data/`), then in the shared
 * folder checked out beside it (`../shared/models`, `../shared/data`), so tests and benchmarks run before and after
 * the project ships its own copies.
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
