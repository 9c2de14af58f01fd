/**
 * A minimal PNG codec for input images: decodes non-interlaced 8-bit grayscale, gray+alpha, RGB and RGBA files
 * (filters 0–4, CRC-checked chunks, zlib via node:zlib) and encodes the same, which tests and reports use to write
 * fixtures. Anything else (palette, 16-bit, interlaced) is rejected with a FormatError saying what it is.
 */
import { deflateSync, inflateSync } from 'node:zlib';
import { assertInteger, check } from '../util/assert.ts';
import { FormatError } from '../util/errors.ts';

/**
 * Decoded pixels, row-major, `channels` interleaved bytes per pixel (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
 *
 * @example
 * ```ts
 * const { width, height, channels, pixels } = decodePng(readFileSync('7.png'));
 * ```
 */
export interface PngImage {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 2 | 3 | 4;
  readonly pixels: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const CHANNELS_BY_COLOR_TYPE: ReadonlyMap<number, 1 | 2 | 3 | 4> = new Map([
  [0, 1],
  [4, 2],
  [2, 3],
  [6, 4],
]);
/** Pixels per image the decoder accepts: far above any model input, far below memory trouble. */
const MAX_PIXELS = 1 << 26;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Decodes a PNG file.
 *
 * @throws FormatError for a bad signature, a truncated or CRC-failing chunk, an unsupported color type, bit depth
 *   or interlacing, a corrupted zlib stream, a wrong amount of pixel data or an unknown filter type.
 * @example
 * ```ts
 * const image = decodePng(encodePng({ width: 2, height: 1, channels: 1, pixels: Uint8Array.of(0, 255) }));
 * ```
 */
export function decodePng(bytes: Uint8Array): PngImage {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b))
    throw new FormatError('PNG: bad signature');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 8;
  let header: { width: number; height: number; channels: 1 | 2 | 3 | 4 } | undefined;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (!ended) {
    if (offset + 12 > bytes.length) throw new FormatError(`PNG: truncated at byte ${offset} (no IEND chunk)`);
    const length = view.getUint32(offset, false);
    const type = String.fromCharCode(
      bytes[offset + 4],
      bytes[offset + 5],
      bytes[offset + 6],
      bytes[offset + 7],
    );
    if (length > bytes.length - offset - 12)
      throw new FormatError(`PNG: chunk '${type}' of ${length} bytes is truncated`);
    const body = bytes.subarray(offset + 8, offset + 8 + length);
    const crc = view.getUint32(offset + 8 + length, false);
    if (crc32(bytes.subarray(offset + 4, offset + 8 + length)) !== crc)
      throw new FormatError(`PNG: chunk '${type}' fails its CRC`);
    offset += 12 + length;
    if (header === undefined && type !== 'IHDR')
      throw new FormatError(`PNG: first chunk is '${type}', expected IHDR`);
    switch (type) {
      case 'IHDR': {
        if (header !== undefined) throw new FormatError('PNG: second IHDR chunk');
        if (length !== 13) throw new FormatError(`PNG: IHDR of ${length} bytes, expected 13`);
        const width = view.getUint32(offset - 12 - length + 8, false);
        const height = view.getUint32(offset - 12 - length + 12, false);
        const [depth, colorType, compression, filter, interlace] = body.subarray(8, 13);
        if (width === 0 || height === 0 || width * height > MAX_PIXELS) {
          throw new FormatError(`PNG: ${width}×${height} pixels, expected 1 to ${MAX_PIXELS}`);
        }
        const channels = CHANNELS_BY_COLOR_TYPE.get(colorType);
        if (channels === undefined) {
          throw new FormatError(
            `PNG: color type ${colorType} (${colorType === 3 ? 'palette' : 'unknown'}); expected gray, gray+alpha, RGB or RGBA`,
          );
        }
        if (depth !== 8) throw new FormatError(`PNG: bit depth ${depth}, only 8-bit images are supported`);
        if (compression !== 0 || filter !== 0)
          throw new FormatError(`PNG: compression ${compression} / filter method ${filter}, expected 0 / 0`);
        if (interlace !== 0) throw new FormatError('PNG: interlaced (Adam7) images are not supported');
        header = { width, height, channels };
        break;
      }
      case 'IDAT':
        idat.push(body);
        break;
      case 'IEND':
        ended = true;
        break;
      case 'PLTE':
        break;
      default:
        // Bit 5 of the first byte marks an ancillary chunk, which a decoder may skip; critical ones it must know.
        if ((bytes[offset - 12 - length + 4] & 0x20) === 0)
          throw new FormatError(`PNG: unknown critical chunk '${type}'`);
    }
  }
  if (header === undefined) throw new FormatError('PNG: no IHDR chunk');
  if (idat.length === 0) throw new FormatError('PNG: no IDAT chunk');
  const { width, height, channels } = header;
  const rowBytes = width * channels;
  const expected = height * (rowBytes + 1);
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: expected + 1 });
  } catch (e) {
    throw new FormatError(`PNG: corrupted image data (${(e as Error).message})`);
  }
  if (raw.length !== expected)
    throw new FormatError(`PNG: ${raw.length} bytes of image data, expected ${expected}`);
  const pixels = new Uint8Array(height * rowBytes);
  for (let y = 0; y < height; y++) {
    const filterType = raw[y * (rowBytes + 1)];
    const src = y * (rowBytes + 1) + 1;
    const row = y * rowBytes;
    const prev = row - rowBytes;
    for (let i = 0; i < rowBytes; i++) {
      const a = i >= channels ? pixels[row + i - channels] : 0;
      const b = y > 0 ? pixels[prev + i] : 0;
      const c = y > 0 && i >= channels ? pixels[prev + i - channels] : 0;
      let predictor: number;
      switch (filterType) {
        case 0:
          predictor = 0;
          break;
        case 1:
          predictor = a;
          break;
        case 2:
          predictor = b;
          break;
        case 3:
          predictor = (a + b) >> 1;
          break;
        case 4:
          predictor = paeth(a, b, c);
          break;
        default:
          throw new FormatError(`PNG: row ${y} has filter type ${filterType}, expected 0–4`);
      }
      pixels[row + i] = (raw[src + i] + predictor) & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length, false);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)), false);
  return out;
}

/**
 * Encodes 8-bit pixels as a non-interlaced PNG. Each row uses filter `filter` (default: cycles through 0–4 so every
 * filter is exercised).
 *
 * @example
 * ```ts
 * writeFileSync('digit.png', encodePng({ width: 28, height: 28, channels: 1, pixels }));
 * ```
 */
export function encodePng(image: PngImage, filter?: 0 | 1 | 2 | 3 | 4): Uint8Array {
  const { width, height, channels, pixels } = image;
  assertInteger(width, 'width', 1);
  assertInteger(height, 'height', 1);
  const colorType = [...CHANNELS_BY_COLOR_TYPE].find(([, c]) => c === channels)?.[0];
  check(colorType !== undefined, () => `channels = ${channels}: expected 1, 2, 3 or 4`);
  const rowBytes = width * channels;
  check(
    pixels.length === height * rowBytes,
    () => `pixels.length = ${pixels.length}: expected ${height * rowBytes}`,
  );
  const raw = new Uint8Array(height * (rowBytes + 1));
  for (let y = 0; y < height; y++) {
    const f = filter ?? y % 5;
    raw[y * (rowBytes + 1)] = f;
    for (let i = 0; i < rowBytes; i++) {
      const x = pixels[y * rowBytes + i];
      const a = i >= channels ? pixels[y * rowBytes + i - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * rowBytes + i] : 0;
      const c = y > 0 && i >= channels ? pixels[(y - 1) * rowBytes + i - channels] : 0;
      const predictor = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : paeth(a, b, c);
      raw[y * (rowBytes + 1) + 1 + i] = (x - predictor) & 0xff;
    }
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width, false);
  view.setUint32(4, height, false);
  ihdr.set([8, colorType as number, 0, 0, 0], 8);
  const parts = [
    Uint8Array.from(SIGNATURE),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ];
  return Uint8Array.from(Buffer.concat(parts));
}
