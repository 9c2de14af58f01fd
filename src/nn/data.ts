/**
 * Loading of input images for inference and calibration: MNIST-style idx files (gzip or plain), NumPy `.npy`
 * arrays and folders of PNG files. Every parser validates headers and sizes and rejects truncated or corrupted input
 * with a FormatError that names the problem. Raw values are multiplied by the input scale S (default 1/255).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { assertFinite } from '../util/assert.ts';
import { FormatError, InvalidArgumentError } from '../util/errors.ts';
import { decodePng } from './png.ts';

/**
 * The default input scale: 8-bit pixels to [0, 1].
 *
 * @example
 * ```ts
 * loadIdxImages(bytes, { scale: DEFAULT_INPUT_SCALE });
 * ```
 */
export const DEFAULT_INPUT_SCALE = 1 / 255;

/** Largest decompressed file the loaders accept (bytes). */
const MAX_DECODED_BYTES = 1 << 30;

/**
 * A batch of images, C order `[count, ...shape]`, already multiplied by the input scale.
 *
 * @example
 * ```ts
 * const batch: ImageBatch = { count: 2, shape: [1, 28, 28], data: new Float64Array(2 * 784) };
 * ```
 */
export interface ImageBatch {
  readonly count: number;
  /** Per-image shape, e.g. `[1, 28, 28]` (channels first). */
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

/**
 * Options of the image loaders.
 *
 * @example
 * ```ts
 * const options: LoadOptions = { scale: 1 / 256 };
 * ```
 */
export interface LoadOptions {
  /** Multiplier applied to every raw value (default 1/255; the CryptoNets/LoLa models expect 1/256). */
  readonly scale?: number;
}

function scaleOf(options: LoadOptions): number {
  const s = options.scale ?? DEFAULT_INPUT_SCALE;
  assertFinite(s, 'scale');
  return s;
}

/**
 * Returns the bytes, gunzipped when they start with the gzip magic 1f 8b.
 *
 * @throws FormatError for a corrupted or truncated gzip stream.
 * @example
 * ```ts
 * const raw = maybeGunzip(readFileSync('t10k-labels-idx1-ubyte.gz'));
 * ```
 */
export function maybeGunzip(bytes: Uint8Array, what = 'input'): Uint8Array {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return gunzipSync(bytes, { maxOutputLength: MAX_DECODED_BYTES });
    } catch (e) {
      throw new FormatError(`${what}: corrupted or truncated gzip stream (${(e as Error).message})`);
    }
  }
  return bytes;
}

function readIdx(
  bytes: Uint8Array,
  expectedRank: number,
  what: string,
): { dims: number[]; body: Uint8Array } {
  const raw = maybeGunzip(bytes, what);
  if (raw.length < 4) throw new FormatError(`${what}: ${raw.length} bytes, too short for an idx header`);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const magic = view.getUint32(0, false);
  const expected = 0x800 | expectedRank;
  if (magic !== expected) {
    throw new FormatError(
      `${what}: magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x${expected.toString(16).padStart(8, '0')} ` +
        `(unsigned bytes, ${expectedRank} dimension${expectedRank === 1 ? '' : 's'})`,
    );
  }
  const headerLength = 4 + 4 * expectedRank;
  if (raw.length < headerLength)
    throw new FormatError(`${what}: ${raw.length} bytes, header needs ${headerLength}`);
  const dims: number[] = [];
  let size = 1;
  for (let i = 0; i < expectedRank; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    size *= d;
  }
  if (raw.length !== headerLength + size) {
    throw new FormatError(
      `${what}: header declares [${dims.join(', ')}] = ${size} bytes of data but the file holds ${raw.length - headerLength}`,
    );
  }
  return { dims, body: raw.subarray(headerLength) };
}

/**
 * Parses an idx3 image file (magic 0x00000803, big-endian header; gzip or plain) into `[count, 1, rows, cols]`.
 *
 * @throws FormatError naming the bad magic, size or truncation.
 * @example
 * ```ts
 * const test = loadIdxImages(readFileSync(findDataFile('mnist/t10k-images-idx3-ubyte.gz')), { scale: 1 / 256 });
 * test.count; // 10000
 * ```
 */
export function loadIdxImages(bytes: Uint8Array, options: LoadOptions = {}): ImageBatch {
  const scale = scaleOf(options);
  const { dims, body } = readIdx(bytes, 3, 'idx image file');
  const [count, rows, cols] = dims;
  const data = new Float64Array(body.length);
  for (let i = 0; i < body.length; i++) data[i] = body[i] * scale;
  return { count, shape: [1, rows, cols], data };
}

/**
 * Parses an idx1 label file (magic 0x00000801; gzip or plain).
 *
 * @throws FormatError naming the bad magic, size or truncation.
 * @example
 * ```ts
 * const labels = loadIdxLabels(readFileSync(findDataFile('mnist/t10k-labels-idx1-ubyte.gz')));
 * labels[0]; // 7
 * ```
 */
export function loadIdxLabels(bytes: Uint8Array): Uint8Array {
  const { body } = readIdx(bytes, 1, 'idx label file');
  return Uint8Array.from(body);
}

/**
 * A parsed `.npy` array: shape and values (multiplied by the scale) as float64.
 *
 * @example
 * ```ts
 * const { shape, data } = loadNpy(readFileSync('images.npy'), { scale: 1 });
 * ```
 */
export interface NpyArray {
  readonly shape: readonly number[];
  readonly dtype: 'float32' | 'float64' | 'uint8';
  readonly data: Float64Array;
}

function npyHeaderField(header: string, key: string): string {
  const m = new RegExp(`['"]${key}['"]\\s*:\\s*`).exec(header);
  if (m === null)
    throw new FormatError(`.npy header: no '${key}' entry in ${JSON.stringify(header.slice(0, 120))}`);
  return header.slice(m.index + m[0].length);
}

/**
 * Parses a NumPy `.npy` file (format versions 1–3; dtypes `<f4`, `>f4`, `<f8`, `>f8`, `|u1`; C order only).
 * Values are multiplied by the scale (default 1/255: pass `{ scale: 1 }` for arrays that are already scaled).
 *
 * @throws FormatError for a bad magic, header, dtype, Fortran order or a data length that disagrees with the shape.
 * @example
 * ```ts
 * const batch = npyToImages(loadNpy(readFileSync('x.npy'), { scale: 1 / 255 }), [1, 28, 28]);
 * ```
 */
export function loadNpy(bytes: Uint8Array, options: LoadOptions = {}): NpyArray {
  const scale = scaleOf(options);
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b))
    throw new FormatError('.npy: missing the \\x93NUMPY magic');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new FormatError('.npy: truncated version 2 header');
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new FormatError(`.npy: format version ${major}.${bytes[7]}, expected 1, 2 or 3`);
  }
  if (headerStart + headerLength > bytes.length) {
    throw new FormatError(
      `.npy: header of ${headerLength} bytes runs past the end of the ${bytes.length}-byte file`,
    );
  }
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    bytes.subarray(headerStart, headerStart + headerLength),
  );
  if (!header.trimStart().startsWith('{')) throw new FormatError('.npy: header is not a Python dict literal');
  const descr = /^['"]([<>|=]?)([a-zA-Z])(\d+)['"]/.exec(npyHeaderField(header, 'descr'));
  if (descr === null) throw new FormatError('.npy: descr is not a simple dtype string');
  const [, order, kind, width] = descr;
  let dtype: NpyArray['dtype'];
  if (kind === 'f' && width === '4') dtype = 'float32';
  else if (kind === 'f' && width === '8') dtype = 'float64';
  else if (kind === 'u' && width === '1') dtype = 'uint8';
  else throw new FormatError(`.npy: dtype '${order}${kind}${width}', expected float32, float64 or uint8`);
  const littleEndian = order !== '>';
  const fortran = /^(True|False)/.exec(npyHeaderField(header, 'fortran_order'));
  if (fortran === null) throw new FormatError('.npy: fortran_order is neither True nor False');
  if (fortran[1] === 'True')
    throw new FormatError('.npy: Fortran-order arrays are not supported (save in C order)');
  const shapeText = /^\(([^)]*)\)/.exec(npyHeaderField(header, 'shape'));
  if (shapeText === null) throw new FormatError('.npy: shape is not a tuple');
  const parts = shapeText[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const shape: number[] = [];
  let count = 1;
  for (const p of parts) {
    if (!/^\d+L?$/.test(p)) throw new FormatError(`.npy: shape entry '${p}' is not a non-negative integer`);
    const d = Number.parseInt(p, 10);
    shape.push(d);
    count *= d;
    if (count > MAX_DECODED_BYTES) throw new FormatError(`.npy: shape (${parts.join(', ')}) is too large`);
  }
  const itemSize = dtype === 'float64' ? 8 : dtype === 'float32' ? 4 : 1;
  const dataStart = headerStart + headerLength;
  const available = bytes.length - dataStart;
  if (available !== count * itemSize) {
    throw new FormatError(
      `.npy: shape (${shape.join(', ')}) needs ${count * itemSize} data bytes, the file holds ${available}`,
    );
  }
  const data = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const at = dataStart + i * itemSize;
    const v =
      dtype === 'uint8'
        ? bytes[at]
        : dtype === 'float32'
          ? view.getFloat32(at, littleEndian)
          : view.getFloat64(at, littleEndian);
    data[i] = v * scale;
  }
  return { shape, dtype, data };
}

/**
 * Interprets an array as a batch of images of the given per-image shape (first axis = images; the remaining axes
 * must hold exactly that many values, e.g. `[n, 28, 28]` for `[1, 28, 28]`).
 *
 * @throws InvalidArgumentError when the sizes do not fit.
 * @example
 * ```ts
 * const batch = npyToImages(loadNpy(bytes), [1, 28, 28]);
 * ```
 */
export function npyToImages(array: NpyArray, imageShape: readonly number[]): ImageBatch {
  const size = imageShape.reduce((p, d) => p * d, 1);
  if (
    array.shape.length < 1 ||
    size === 0 ||
    array.data.length % size !== 0 ||
    array.data.length / size !== array.shape[0]
  ) {
    throw new InvalidArgumentError(
      `array of shape (${array.shape.join(', ')}) is not a batch of [${imageShape.join(', ')}] images`,
    );
  }
  return { count: array.shape[0], shape: [...imageShape], data: array.data };
}

/**
 * Options of {@link loadPngFolder}.
 *
 * @example
 * ```ts
 * const options: PngFolderOptions = { channels: 1, scale: 1 / 255 };
 * ```
 */
export interface PngFolderOptions extends LoadOptions {
  /** Channels per image: 1 converts color to luminance, 3 replicates gray; default: as decoded (alpha dropped). */
  readonly channels?: 1 | 3;
}

/**
 * Loads every `*.png` file of a folder (sorted by name) as a channels-first batch. All images must have the same
 * size and, unless `channels` is given, the same color type. 8-bit gray, gray+alpha, RGB and RGBA non-interlaced
 * PNGs are accepted; alpha is dropped.
 *
 * @throws FormatError naming the file for a malformed or unsupported PNG; InvalidArgumentError for an empty folder
 *   or images of different sizes.
 * @example
 * ```ts
 * const { batch, files } = loadPngFolder('digits/', { scale: 1 / 256, channels: 1 });
 * ```
 */
export function loadPngFolder(
  dir: string,
  options: PngFolderOptions = {},
): { batch: ImageBatch; files: string[] } {
  const scale = scaleOf(options);
  const files = readdirSync(dir)
    .filter((f) => f.toLowerCase().endsWith('.png'))
    .sort();
  if (files.length === 0) throw new InvalidArgumentError(`folder '${dir}' has no .png files`);
  let shape: number[] | undefined;
  let data: Float64Array | undefined;
  files.forEach((file, index) => {
    let image: ReturnType<typeof decodePng>;
    try {
      image = decodePng(readFileSync(join(dir, file)));
    } catch (e) {
      if (e instanceof FormatError) throw new FormatError(`${file}: ${e.message}`);
      throw e;
    }
    const colorChannels = image.channels >= 3 ? 3 : 1;
    const channels = options.channels ?? colorChannels;
    const planes = image.width * image.height;
    if (shape === undefined) {
      shape = [channels, image.height, image.width];
      data = new Float64Array(files.length * channels * planes);
    } else if (shape[0] !== channels || shape[1] !== image.height || shape[2] !== image.width) {
      throw new InvalidArgumentError(
        `${file}: ${colorChannels}-channel ${image.width}×${image.height} image, expected ${shape[0]}-channel ${shape[2]}×${shape[1]} like the first`,
      );
    }
    const out = data as Float64Array;
    const base = index * channels * planes;
    const px = image.pixels;
    const stride = image.channels;
    for (let p = 0; p < planes; p++) {
      const at = p * stride;
      if (channels === 1) {
        // ITU-R BT.601 luma, the conversion most image libraries use for "L" mode.
        const v = colorChannels === 3 ? 0.299 * px[at] + 0.587 * px[at + 1] + 0.114 * px[at + 2] : px[at];
        out[base + p] = v * scale;
      } else {
        for (let c = 0; c < 3; c++)
          out[base + c * planes + p] = (colorChannels === 3 ? px[at + c] : px[at]) * scale;
      }
    }
  });
  return { batch: { count: files.length, shape: shape as number[], data: data as Float64Array }, files };
}
