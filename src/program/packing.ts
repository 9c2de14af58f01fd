/**
 * How a program's client packs images into input slot vectors and reads results out of output slots (batch:
 * one image per slot; latency: one image spread over the slots), and the slot vectors of its weight constants.
 * The float simulator and the encrypted client share these, so both see exactly the same slots.
 */
import { assertInteger, check, describe } from '../util/assert.ts';
import { InvalidArgumentError, MismatchError } from '../util/errors.ts';
import { assertProgram, type HeProgram, type InputDescriptor, type PlaintextDescriptor } from './program.ts';

/**
 * Values per image (the product of the program's input shape).
 *
 * @example
 * ```ts
 * imageSize(program); // 784 for MNIST
 * ```
 */
export function imageSize(program: HeProgram): number {
  return program.inputShape.reduce((a, b) => a * b, 1);
}

/**
 * Values per result (the product of the program's output shape).
 *
 * @example
 * ```ts
 * outputSize(program); // 10 classes
 * ```
 */
export function outputSize(program: HeProgram): number {
  return program.outputShape.reduce((a, b) => a * b, 1);
}

/**
 * Checks a batch of images against the program: length, finiteness and the input range it was compiled for.
 *
 * @throws InvalidArgumentError naming the image, element and value at fault.
 * @example
 * ```ts
 * checkImages(program, images, 100);
 * ```
 */
export function checkImages(program: HeProgram, images: ArrayLike<number>, count: number): void {
  assertProgram(program);
  assertInteger(count, 'count', 1);
  const size = imageSize(program);
  if (images === null || typeof images !== 'object' || typeof images.length !== 'number') {
    throw new InvalidArgumentError(
      `images = ${describe(images)}: expected a Float64Array of ${count} × ${size}`,
    );
  }
  check(
    images.length === count * size,
    () =>
      `images.length = ${images.length}: expected ${count} images × ${size} values ` +
      `(per-image shape [${program.inputShape.join(', ')}])`,
  );
  const [lo, hi] = program.inputRange;
  for (let i = 0; i < images.length; i++) {
    const v = images[i];
    if (!Number.isFinite(v)) {
      throw new InvalidArgumentError(
        `image ${Math.floor(i / size)} element ${i % size} = ${describe(v)}: expected a finite number`,
      );
    }
    if (v < lo || v > hi) {
      throw new InvalidArgumentError(
        `image ${Math.floor(i / size)} element ${i % size} = ${v}: outside the input range [${lo}, ${hi}] the ` +
          'program was compiled for (raw pixels? apply the input scale, e.g. 1/255 or 1/256)',
      );
    }
  }
}

/**
 * Slot vectors of the input ciphertexts of one pass (batch packing: slot s of input e is element e of image
 * first + s): input id → values.
 *
 * @example
 * ```ts
 * const slots = packBatch(program, images, 0, program.batchSize);
 * ```
 */
export function packBatch(program: HeProgram, images: ArrayLike<number>, first: number, count: number) {
  const size = imageSize(program);
  const permutation = program.inputPermutation;
  const packed = new Map<number, Float64Array>();
  for (const input of program.inputs) {
    const element = input.element ?? 0;
    const source = permutation ? permutation[element] : element;
    const values = new Float64Array(count);
    for (let s = 0; s < count; s++) values[s] = images[(first + s) * size + source];
    packed.set(input.id, values);
  }
  return packed;
}

/**
 * Slot vectors of the data inputs of one latency pass: image first + b in the b-th block of `period` slots, for
 * b < count (blocks past the images stay zero).
 *
 * @example
 * ```ts
 * const slots = packLatency(program, images, 8, program.batchSize);
 * ```
 */
export function packLatency(program: HeProgram, images: ArrayLike<number>, first: number, count: number) {
  const size = imageSize(program);
  const permutation = program.inputPermutation;
  const period = latencyPeriod(program);
  const packed = new Map<number, Float64Array>();
  for (const input of program.inputs) {
    if (input.owner === 'model') continue;
    const layout = input.slotElements ?? [];
    const values = new Float64Array(program.slots);
    for (let b = 0; b < count; b++) {
      const image = (first + b) * size;
      for (let i = 0; i < layout.length; i++) {
        const element = layout[i];
        if (element >= 0)
          values[b * period + i] = images[image + (permutation ? permutation[element] : element)];
      }
    }
    packed.set(input.id, values);
  }
  return packed;
}

/**
 * The slots of one image's block in a latency-packed ciphertext (the period of its layout).
 *
 * @example
 * ```ts
 * latencyPeriod(program); // e.g. 8192: four images in 32768 slots
 * ```
 */
export function latencyPeriod(program: HeProgram): number {
  return program.slots / program.batchSize;
}

/**
 * Writes one pass's decoded output slots into the logits (count × outputs, image-major).
 *
 * @example
 * ```ts
 * unpack(program, decoded, logits, pass.first, pass.count);
 * ```
 */
export function unpack(
  program: HeProgram,
  decoded: Map<number, ArrayLike<number>>,
  logits: Float64Array,
  first: number,
  count: number,
): void {
  const classes = outputSize(program);
  for (const output of program.outputs) {
    const values = decoded.get(output.id);
    if (!values) throw new MismatchError(`output ${output.id} missing from the results`);
    if (program.packing === 'batch') {
      for (let s = 0; s < count; s++) logits[(first + s) * classes + (output.element ?? 0)] = values[s];
    } else {
      const period = latencyPeriod(program);
      for (let b = 0; b < count; b++) {
        (output.slotOfElement ?? []).forEach((slot, j) => {
          logits[(first + b) * classes + j] = values[b * period + slot];
        });
      }
    }
  }
}

/**
 * The passes that cover `count` images, up to `batchSize` images each (batch packing: one per slot; latency: one
 * per block of slots).
 *
 * @example
 * ```ts
 * passes(program, 10000); // [{ first: 0, count: 8192 }, { first: 8192, count: 1808 }]
 * ```
 */
export function passes(program: HeProgram, count: number): { first: number; count: number }[] {
  const per = program.batchSize;
  const list: { first: number; count: number }[] = [];
  for (let first = 0; first < count; first += per) list.push({ first, count: Math.min(per, count - first) });
  return list;
}

/**
 * The slot values of an encrypted weight input (its constants repeated over all slots).
 *
 * @example
 * ```ts
 * const slots = weightSlots(program, program.inputs.find((i) => i.owner === 'model')!);
 * ```
 */
export function weightSlots(program: HeProgram, w: InputDescriptor): Float64Array {
  return plaintextSlots(program, {
    id: w.id,
    level: w.level,
    scale: w.scale,
    bytes: w.bytes,
    offset: w.offset ?? 0,
    length: w.length ?? 1,
    replicate: true,
  });
}

/**
 * Writes the `p.length` values of a plaintext vector (every stored form: dense, sparse pairs, palette) into the
 * first slots of `out`, which holds zeros where a sparse form names no slot.
 */
function writePeriod(program: HeProgram, p: PlaintextDescriptor, out: Float64Array): Float64Array {
  const { constants } = program;
  if (p.palette !== undefined) {
    const palette = constants.subarray(p.offset, p.offset + p.palette);
    const codes = program.paletteCodes;
    let c = p.codeOffset ?? 0;
    if (p.entries === undefined) for (let i = 0; i < p.length; i++) out[i] = palette[codes[c++]];
    else
      for (let e = 0; e < p.entries; e++, c += 3) out[codes[c] | (codes[c + 1] << 8)] = palette[codes[c + 2]];
  } else if (p.entries !== undefined) {
    const pairs = constants.subarray(p.offset, p.offset + 2 * p.entries);
    for (let e = 0; e < pairs.length; e += 2) out[pairs[e]] = pairs[e + 1];
  } else out.set(constants.subarray(p.offset, p.offset + p.length));
  return out;
}

/**
 * The slot values of a plaintext weight (tiled over all slots when it is replicated), written into `out` (every
 * slot) when given.
 *
 * @example
 * ```ts
 * const slots = plaintextSlots(program, program.plaintexts[0]);
 * ```
 */
export function plaintextSlots(
  program: HeProgram,
  p: PlaintextDescriptor,
  out: Float64Array = new Float64Array(program.slots),
): Float64Array {
  check(
    out.length === program.slots,
    () => `plaintextSlots: out has ${out.length} slots, expected ${program.slots}`,
  );
  if (!p.replicate) {
    // Not tiled: the vector straight into the slots.
    out.fill(0);
    writePeriod(program, p, out);
    return out;
  }
  // One period in the first slots, then doubled: every copy starts at a multiple of the period.
  out.fill(0, 0, p.length);
  writePeriod(program, p, out);
  for (let filled = p.length; filled < out.length; filled *= 2)
    out.copyWithin(filled, 0, Math.min(filled, out.length - filled));
  return out;
}
