import type { KernelContext } from '../../ring/context.ts';
/*
 * Reading a body: the shared reader every deserializer uses, which verifies the whole object before anything is
 * derived from it.
 */
import { Xxh32x4Stream } from '../../ring/hash.ts';
import type { Modulus } from '../../ring/modulus.ts';
import { Poly } from '../../ring/poly.ts';
import { SEED_BYTES } from '../../ring/prng.ts';
import { expandKeyUniform, expandUniform } from '../keys.ts';
import type { Parameters } from '../parameters.ts';
import { CHECKSUM_SEED, checkChecksum, combineChecksum, storedChecksum } from './checksum.ts';
import { formatError, HEADER_BYTES, type ObjectHeader } from './format.ts';

/**
 * Reads the body of an object whose header `open` (header.ts) accepted, in two phases. `read` takes the
 * polynomials and seeds in body order: each polynomial is copied into new limbs, limb by limb, and each limb is
 * hashed and range-checked in one kernel pass where it lies right after its copy (while it is in cache). Then the
 * checksum of the whole object is compared, then the residues, and only then `build` derives anything from the
 * body (seed expansion). If anything throws, every polynomial allocated is freed.
 *
 * @example
 * ```ts
 * const reader = new BodyReader(bytes, header, params.context);
 * const pt = reader.run(
 *   () => reader.poly(params.moduliAtLevel(header.level), header.ntt, 'polynomial'),
 *   (poly) => new Plaintext(params, poly, header.level, header.scale),
 * );
 * ```
 */
export class BodyReader {
  readonly #bytes: Uint8Array;
  readonly #header: ObjectHeader;
  readonly #what: string;
  #offset = HEADER_BYTES;
  readonly #owned: Poly[] = [];
  #lanes: Xxh32x4Stream | undefined;
  #outOfRange: { poly: Poly; limb: number; field: string } | undefined;

  readonly #context: KernelContext;

  constructor(bytes: Uint8Array, header: ObjectHeader, context: KernelContext) {
    this.#context = context;
    this.#bytes = bytes;
    this.#header = header;
    this.#what = header.typeName;
  }

  poly(moduli: readonly Modulus[], isNtt: boolean, field: string): Poly {
    const lanes = this.#reading();
    const poly = Poly.alloc(moduli, isNtt, false);
    this.#owned.push(poly);
    const words = poly.words();
    const target = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
    const n = poly.n;
    const limbBytes = n * 4;
    for (let i = 0; i < moduli.length; i++) {
      const at = i * limbBytes;
      target.set(this.#bytes.subarray(this.#offset + at, this.#offset + at + limbBytes), at);
      const largest = lanes.updateKernelMax(poly.limbPointer(i), n);
      if (largest >= moduli[i].value && this.#outOfRange === undefined) {
        this.#outOfRange = { poly, limb: i, field };
      }
    }
    this.#offset += words.byteLength;
    return poly;
  }

  seed(): Uint8Array {
    const seed = this.#bytes.slice(this.#offset, this.#offset + SEED_BYTES);
    this.#reading().update(seed);
    this.#offset += SEED_BYTES;
    return seed;
  }

  expanded(moduli: readonly Modulus[], seed: Uint8Array, label: number): Poly {
    if (this.#lanes !== undefined) throw new Error('BodyReader: expansion before the body was verified');
    const poly = expandUniform(moduli, seed, label);
    this.#owned.push(poly);
    return poly;
  }

  /** A switching key's a_`label` for a key made for `level` (see expandKeyUniform). */
  expandedKey(params: Parameters, level: number, seed: Uint8Array, label: number): Poly {
    if (this.#lanes !== undefined) throw new Error('BodyReader: expansion before the body was verified');
    const poly = expandKeyUniform(params, level, seed, label);
    this.#owned.push(poly);
    return poly;
  }

  /** Runs `read`, verifies what it read, then runs `build` on its result; frees everything if any step throws. */
  run<R, T>(read: () => R, build: (raw: R) => T): T {
    try {
      const lanes = new Xxh32x4Stream(this.#context, CHECKSUM_SEED);
      this.#lanes = lanes;
      let raw: R;
      try {
        raw = read();
        this.#verify(lanes);
      } finally {
        this.#lanes = undefined;
        lanes.dispose();
      }
      return build(raw);
    } catch (error) {
      for (const p of this.#owned) p.dispose();
      throw error;
    }
  }

  #reading(): Xxh32x4Stream {
    if (this.#lanes === undefined) throw new Error('BodyReader: body read outside run()');
    return this.#lanes;
  }

  #verify(lanes: Xxh32x4Stream): void {
    const end = HEADER_BYTES + this.#header.bodyLength;
    if (this.#offset !== end) {
      // The readers and the size functions disagree: a bug here, not a bad input.
      throw new Error(
        `BodyReader: read ${this.#offset - HEADER_BYTES} body bytes of ${this.#header.bodyLength}`,
      );
    }
    const computed = combineChecksum(this.#bytes.subarray(0, HEADER_BYTES), lanes.digests());
    checkChecksum(this.#what, storedChecksum(this.#bytes, this.#header), computed);
    const bad = this.#outOfRange;
    if (bad === undefined) return;
    const p = bad.poly.moduli[bad.limb].value;
    const limb = bad.poly.limb(bad.limb);
    const k = limb.findIndex((w) => w >= p);
    throw formatError(
      this.#what,
      `${bad.field} limb ${bad.limb} coefficient ${k}`,
      limb[k],
      `a residue below the prime ${p}`,
    );
  }
}
