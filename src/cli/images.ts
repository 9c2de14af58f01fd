/**
 * Image sets of the commands that run a model (`home infer`, `home characterize`): loading one from a path in any
 * format the data loaders read, checking it against the model's input, and choosing the images the polynomial
 * approximations are calibrated on.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { type ImageBatch, loadIdxImages, loadNpy, loadPngFolder, npyToImages } from '../nn/data.ts';
import type { LayerModel } from '../nn/layers.ts';
import { shapeSize } from '../nn/onnx/graph.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { normalizeChannels } from './infer-packing.ts';

/**
 * Images the approximations are calibrated on, at most: enough that the intervals hold on images beyond them
 * (calibrated on the 20 images of a 20-image run, the LeNet CNN's HE program reached 96.6 % in float simulation on
 * the first 1,000 MNIST test images, 1.6 points under plaintext; on 256 images, 98.2 % = plaintext).
 */
export const CALIBRATION_IMAGES = 256;

/**
 * Loads an image set (idx file, gzipped or not; `.npy`, channels first; a folder of PNGs), values times `scale`.
 *
 * @throws InvalidArgumentError naming `flag` for a missing path; the loaders' errors for a bad file.
 * @example
 * ```ts
 * const batch = loadImageSet('data/mnist/t10k-images-idx3-ubyte.gz', 1 / 255, model.onnxInputShape, '--data');
 * ```
 */
export function loadImageSet(
  path: string,
  scale: number,
  imageShape: readonly number[],
  flag: string,
): ImageBatch {
  if (!existsSync(path)) throw new InvalidArgumentError(`${flag} ${path}: no such file or folder`);
  if (statSync(path).isDirectory()) return loadPngFolder(path, { scale }).batch;
  const bytes = readFileSync(path);
  if (path.toLowerCase().endsWith('.npy')) return npyToImages(loadNpy(bytes, { scale }), imageShape);
  return loadIdxImages(bytes, { scale });
}

/**
 * Checks that a set's images have the model's input size (any shape of that many values).
 *
 * @throws InvalidArgumentError naming `flag`, the set's shape and the model's.
 * @example
 * ```ts
 * checkImageShape(batch, model, '--data', 'data/mnist/t10k-images-idx3-ubyte.gz');
 * ```
 */
export function checkImageShape(batch: ImageBatch, model: LayerModel, flag: string, path: string): void {
  const expected = model.onnxInputShape;
  const same = batch.shape.length === expected.length && batch.shape.every((d, i) => d === expected[i]);
  if (!same && shapeSize(batch.shape) !== shapeSize(expected)) {
    throw new InvalidArgumentError(
      `${flag} ${path}: images of shape [${batch.shape.join(', ')}], but the model expects [${expected.join(', ')}]`,
    );
  }
}

/**
 * The calibration images, normalized like the inputs: the first `count` (default {@link CALIBRATION_IMAGES}) of
 * `--calibration` when given (e.g. training images: the server never needs the client's), else of the data set —
 * not only the `--count` classified, so that a short run gets the intervals a long one would.
 *
 * @throws InvalidArgumentError for a missing or misshapen calibration set, or a count that is not a positive
 *   integer.
 * @example
 * ```ts
 * const calibration = calibrationImages(model, batch, { scale: 1 / 255, path: undefined });
 * ```
 */
export function calibrationImages(
  model: LayerModel,
  data: ImageBatch,
  options: {
    readonly path?: string | undefined;
    readonly count?: number | undefined;
    readonly scale: number;
    readonly inputMean?: readonly number[] | undefined;
    readonly inputStd?: readonly number[] | undefined;
  },
): Float64Array | Float32Array {
  const count = options.count ?? CALIBRATION_IMAGES;
  if (!Number.isInteger(count) || count < 1) {
    throw new InvalidArgumentError(`--calibration-count ${count}: expected a positive integer`);
  }
  let source = data;
  if (options.path !== undefined) {
    source = loadImageSet(options.path, options.scale, model.onnxInputShape, '--calibration');
    checkImageShape(source, model, '--calibration', options.path);
  }
  const size = shapeSize(model.onnxInputShape);
  const images = source.data.slice(0, Math.min(source.count, count) * size);
  normalizeChannels(images, model.onnxInputShape, options.inputMean, options.inputStd);
  return images;
}
