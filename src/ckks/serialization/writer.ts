import type { KernelContext } from '../../ring/context.ts';
/*
 * Writing an object: the output buffer, the body written segment by segment while it is hashed, and the
 * trailing object checksum.
 */
import { Xxh32x4Stream } from '../../ring/hash.ts';
import type { Poly } from '../../ring/poly.ts';
import { CHECKSUM_SEED, combineChecksum } from './checksum.ts';
import { CHECKSUM_BYTES, HEADER_BYTES, type HeaderFields, TYPE_NAMES } from './format.ts';
import { writeHeader } from './header.ts';

/** Node's Buffer when present (this layer must also run in a browser, where it is absent). */
const nodeBuffer = (globalThis as { Buffer?: { allocUnsafeSlow(size: number): Uint8Array } }).Buffer;

/**
 * A new Uint8Array of `length` bytes, owned by the caller, for a serializer's output. Under Node it skips the
 * zero fill of `new Uint8Array` (calloc: for a ciphertext a pass over 1.5 MB that is overwritten right after).
 * Safe only because the writers write every byte: writeHeader all 48 header bytes, writeObject the checksum, and
 * a body is written as contiguous segments whose total writeObject checks against the declared length; if
 * anything throws, the array is dropped unreturned. `allocUnsafeSlow` never hands out a slice of Node's shared
 * pool: the ArrayBuffer is the caller's alone.
 *
 * @example
 * ```ts
 * const out = outputBytes(HEADER_BYTES + bodyLength + CHECKSUM_BYTES);
 * ```
 */
export function outputBytes(length: number): Uint8Array {
  if (nodeBuffer === undefined) return new Uint8Array(length);
  return new Uint8Array(nodeBuffer.allocUnsafeSlow(length).buffer, 0, length);
}

/**
 * A piece of a body: a polynomial's limbs (copied out of kernel memory, hashed in place) or bytes (a seed).
 *
 * @example
 * ```ts
 * const body: BodySegment[] = seeded ? [pk.b, pk.seed] : [pk.b, pk.a, pk.seed];
 * ```
 */
export type BodySegment = Poly | Uint8Array;

/**
 * Writes the segments of a body at `offset` of `out` and feeds them to `lanes` (the lane stream of this body) and
 * to `outer` (the lane stream of an enclosing container's body, if any); returns the end offset. A polynomial is
 * copied limb by limb, each limb hashed where it lies in kernel memory right after its copy read it (so it is
 * read from cache): no pass over the output runs in JavaScript.
 */
function writeSegments(
  out: Uint8Array,
  offset: number,
  segments: readonly BodySegment[],
  lanes: Xxh32x4Stream,
  outer: Xxh32x4Stream | undefined,
): number {
  for (const segment of segments) {
    if (segment instanceof Uint8Array) {
      out.set(segment, offset);
      lanes.update(segment);
      outer?.update(segment);
      offset += segment.length;
    } else {
      const words = segment.words();
      const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
      const limbBytes = segment.n * 4;
      for (let i = 0; i < segment.limbCount; i++) {
        const at = i * limbBytes;
        out.set(bytes.subarray(at, at + limbBytes), offset + at);
        lanes.updateKernel(segment.limbPointer(i), limbBytes);
        outer?.updateKernel(segment.limbPointer(i), limbBytes);
      }
      offset += bytes.length;
    }
  }
  return offset;
}

/**
 * Writes complete objects from `bodyOffset` of the output, feeding `lanes` (the container body's lane stream)
 * every byte; returns the end offset.
 */
type NestedBodyWriter = (bodyOffset: number, lanes: Xxh32x4Stream) => number;

/**
 * Writes a whole object at `offset` of `out`: header, body and the trailing checksum; returns the end offset.
 * The body is its segments, or (for an evaluation-key set) a writer of nested objects that feeds the container's
 * lane stream as it writes, so each byte is hashed while it is written, once per enclosing object. `outer` is the
 * lane stream of the body of the container this object is nested in: it takes the whole object.
 *
 * @example
 * ```ts
 * writeObject(out, 0, fields, params.context, [pt.poly]);
 * ```
 */
export function writeObject(
  out: Uint8Array,
  offset: number,
  fields: HeaderFields,
  context: KernelContext,
  body: readonly BodySegment[] | NestedBodyWriter,
  outer?: Xxh32x4Stream,
): number {
  writeHeader(out, offset, fields);
  const header = out.subarray(offset, offset + HEADER_BYTES);
  const bodyStart = offset + HEADER_BYTES;
  const lanes = new Xxh32x4Stream(context, CHECKSUM_SEED);
  try {
    outer?.update(header);
    const bodyEnd =
      typeof body === 'function' ? body(bodyStart, lanes) : writeSegments(out, bodyStart, body, lanes, outer);
    if (bodyEnd - bodyStart !== fields.bodyLength) {
      // The size functions and the writers disagree: a bug here, not a bad input.
      throw new Error(
        `serialization: wrote ${bodyEnd - bodyStart} body bytes for a ${TYPE_NAMES[fields.type]}, declared ${fields.bodyLength}`,
      );
    }
    const checksum = combineChecksum(header, lanes.digests());
    new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(bodyEnd, checksum, true);
    outer?.update(out.subarray(bodyEnd, bodyEnd + CHECKSUM_BYTES));
    return bodyEnd + CHECKSUM_BYTES;
  } finally {
    lanes.dispose();
  }
}
