import { expandKeyUniform, SwitchingKey } from '../../ckks/keys.ts';
import { Ciphertext, Plaintext } from '../../ckks/objects.ts';
import type { Parameters } from '../../ckks/parameters.ts';
import type { Modulus } from '../../ring/modulus.ts';
import { Poly } from '../../ring/poly.ts';
import { check } from '../../util/assert.ts';
import { InvalidArgumentError, MismatchError } from '../../util/errors.ts';
import type { ExecArena } from './executor.ts';
import type { ScatterBytes } from '../store/slow-tier.ts';
import type { PlacementAllocator } from './placement-allocator.ts';
import type { ObjectId } from '../../program/access.ts';

/**
 * A live HE object the arena holds: a ciphertext, an encoded plaintext or a key-switching key.
 *
 * @example
 * ```ts
 * const live: HeLiveObject = arena.get('ct:812');
 * ```
 */
export type HeLiveObject = Ciphertext | Plaintext | SwitchingKey;

/**
 * What the runtime remembers of an object besides its limbs, so the limbs alone can move between tiers: level,
 * scale and degree of a ciphertext (exactly as the evaluator left them), level and scale of a plaintext, the digit
 * count, 32-byte seed and level (the key's polynomials are over Q_level ∪ P) of a key-switching key.
 *
 * @example
 * ```ts
 * const meta: HeObjectMeta = { kind: 'ciphertext', level: 3, scale: 2 ** 29.9, degree: 1 };
 * ```
 */
export type HeObjectMeta =
  | { kind: 'ciphertext'; level: number; scale: number; degree: number }
  | { kind: 'plaintext'; level: number; scale: number }
  | { kind: 'key'; level: number; digits: number; seed: Uint8Array };

/** Bytes of the seed appended to a seeded key's stored form. */
const SEED_BYTES = 32;

function bytesOfPoly(poly: Poly): Uint8Array {
  const words = poly.words();
  return new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
}

/** The polynomials of a live object, in byte-form order (keys: every b_j, then every a_j). */
function polysOf(live: HeLiveObject): Poly[] {
  if (live instanceof Ciphertext) return live.polys;
  if (live instanceof Plaintext) return [live.poly];
  return [...live.digits.map((d) => d.b), ...live.digits.map((d) => d.a)];
}

/**
 * The arena tier of the tiered HE runtime: the live objects compute works on, in WebAssembly memory, with their
 * byte forms for the other tiers.
 *
 * Byte form (DRAM buffers, slow-tier files): the limbs of the object's polynomials back to back — a ciphertext's
 * c_0 … c_d, a plaintext's one polynomial, a key's b_0 … b_{d−1} then a_0 … a_{d−1} — so an object's bytes are
 * exactly the size the HE program declares. Level, scale, degree and key seeds stay in {@link HeObjectMeta}, in
 * the runtime's own tables. With `seededKeys`, a key's slow-tier form is only its b halves plus its 32-byte seed
 * (half the bytes); loading it regenerates every a_j = expandKeyUniform(params, level, seed, j), as key generation made them.
 *
 * Objects materialized from bytes (loads, DRAM → arena copies) are placed contiguously through the
 * {@link PlacementAllocator}, so a slow-tier read lands in kernel memory directly and a write-back of such an object
 * needs no gather. Results of compute are whatever the evaluator allocated; writing one back gathers its
 * polynomials (one copy per polynomial).
 *
 * @example
 * ```ts
 * const arena = new HeArena(params, placement, { seededKeys: true });
 * arena.adopt('ct:0', ciphertext);
 * arena.toBytes('ct:0', dramBuffer); // then arena.drop('ct:0')
 * ```
 */
export class HeArena implements ExecArena<HeLiveObject> {
  readonly params: Parameters;
  readonly seededKeys: boolean;
  readonly #placement: PlacementAllocator;
  readonly #live = new Map<ObjectId, HeLiveObject>();
  readonly #meta = new Map<ObjectId, HeObjectMeta>();
  /** Where a scattered load of a seeded key receives its seed (kernel memory, freed when the load ends). */
  readonly #seedSlots = new Map<ObjectId, number>();
  /** Loads in flight: the placed polynomials a worker is filling. */
  readonly #pending = new Map<ObjectId, Poly[]>();
  readonly #sizes = new Map<ObjectId, number>();
  /** Lent objects: live here, owned by the caller, who is told (the callback) when the arena is done with them. */
  readonly #lent = new Map<ObjectId, () => void>();
  #bytesInUse = 0;
  #peakBytes = 0;
  /** Time spent regenerating seeded key halves (ns). */
  expandNs = 0;
  /** Bytes copied by the main thread between live objects and byte buffers. */
  copiedBytes = 0;

  constructor(params: Parameters, placement: PlacementAllocator, options: { seededKeys?: boolean } = {}) {
    this.params = params;
    this.#placement = placement;
    this.seededKeys = options.seededKeys ?? false;
  }

  /** Logical bytes of the live objects (each at its declared size), and the most seen at once. */
  get bytesInUse(): number {
    return this.#bytesInUse;
  }

  get peakBytes(): number {
    return this.#peakBytes;
  }

  /** Live objects now. */
  get size(): number {
    return this.#live.size;
  }

  has(id: ObjectId): boolean {
    return this.#live.has(id);
  }

  /** The live object `id`; throws naming it if it is not in the arena. */
  get(id: ObjectId): HeLiveObject {
    const live = this.#live.get(id);
    if (!live) throw new MismatchError(`object "${id}": expected it live in the arena`);
    return live;
  }

  /** The metadata of `id` (known once it was adopted or described). */
  meta(id: ObjectId): HeObjectMeta {
    const meta = this.#meta.get(id);
    if (!meta) throw new InvalidArgumentError(`object "${id}": no metadata (never adopted or described)`);
    return meta;
  }

  /** Declares `id`'s metadata without a live object (an initial object kept only in a slow tier). */
  describe(id: ObjectId, meta: HeObjectMeta, bytes: number): void {
    this.#meta.set(id, meta);
    this.#sizes.set(id, bytes);
    check(
      this.fullBytes(id) === bytes,
      () =>
        `object "${id}": its byte form has ${this.fullBytes(id)} bytes: expected ${bytes} (the program's size)`,
    );
  }

  /** Declares `id`'s metadata from a live object the caller keeps (an initial object written to a slow tier). */
  describeFrom(id: ObjectId, live: HeLiveObject, bytes: number): void {
    this.describe(id, metaOf(live), bytes);
  }

  /** Takes ownership of a live object (an initial object, or a compute result); records its metadata. */
  adopt(id: ObjectId, live: HeLiveObject, bytes: number): void {
    check(!this.#live.has(id), () => `object "${id}": adopted while another live copy exists`);
    this.#meta.set(id, metaOf(live));
    this.#sizes.set(id, bytes);
    const actual = polysOf(live).reduce((s, p) => s + p.byteLength, 0);
    if (actual !== bytes) {
      throw new MismatchError(
        `object "${id}" has ${actual} bytes of limbs: expected ${bytes}, the size the program declares for it`,
      );
    }
    this.#setLive(id, live);
  }

  /**
   * Holds the caller's live object as `id` without taking it over: no copy is made, and when the arena is done
   * with it (dropped, or cleared) it calls `returned` instead of disposing it. Only for objects no step writes
   * (compute never changes an operand it only reads), e.g. an all-in-memory run's keys and inputs.
   */
  lend(id: ObjectId, live: HeLiveObject, bytes: number, returned: () => void): void {
    this.adopt(id, live, bytes);
    this.#lent.set(id, returned);
  }

  /** The live object leaves the arena without being disposed (the caller owns it now). */
  release(id: ObjectId): HeLiveObject {
    const live = this.get(id);
    check(!this.#lent.has(id), () => `object "${id}": lent to the arena, so not its to hand out; drop it`);
    this.#live.delete(id);
    this.#bytesInUse -= this.#sizes.get(id) ?? 0;
    return live;
  }

  /** Disposes live `id` (a lent object goes back to its owner instead). */
  drop(id: ObjectId): void {
    const live = this.#live.get(id);
    if (!live) return;
    this.#live.delete(id);
    this.#bytesInUse -= this.#sizes.get(id) ?? 0;
    const returned = this.#lent.get(id);
    if (returned === undefined) {
      live.dispose();
      return;
    }
    this.#lent.delete(id);
    returned();
  }

  /** Disposes every live object and every load in flight (after the I/O settled). */
  clear(): void {
    for (const id of [...this.#live.keys()]) this.drop(id);
    for (const polys of this.#pending.values()) for (const p of polys) p.dispose();
    this.#pending.clear();
  }

  /** Bytes of `id`'s byte form (its size in DRAM and in the program). */
  fullBytes(id: ObjectId): number {
    const meta = this.meta(id);
    const n = this.params.n;
    if (meta.kind === 'ciphertext') return (meta.degree + 1) * this.params.limbsAtLevel(meta.level) * n * 4;
    if (meta.kind === 'plaintext') return this.params.limbsAtLevel(meta.level) * n * 4;
    return 2 * meta.digits * this.#keyModuli(meta.level).length * n * 4;
  }

  /** Bytes of `id`'s slow-tier form: the byte form, or for a seeded key its b halves plus the seed. */
  storedBytes(id: ObjectId): number {
    const meta = this.meta(id);
    if (meta.kind === 'key' && this.seededKeys) return this.fullBytes(id) / 2 + SEED_BYTES;
    return this.fullBytes(id);
  }

  /** Writes live `id`'s byte form into `into` (one copy per polynomial). */
  toBytes(id: ObjectId, into: Uint8Array): void {
    const polys = polysOf(this.get(id));
    let offset = 0;
    for (const p of polys) {
      into.set(bytesOfPoly(p), offset);
      offset += p.byteLength;
    }
    check(
      offset === into.byteLength,
      () => `object "${id}": ${offset} bytes of limbs for a ${into.byteLength}-byte buffer`,
    );
    this.copiedBytes += offset;
  }

  /** Writes live `id`'s slow-tier form into `into` (the byte form, or b halves + seed for a seeded key). */
  toStored(id: ObjectId, into: Uint8Array): void {
    const meta = this.meta(id);
    if (!(meta.kind === 'key' && this.seededKeys)) {
      this.toBytes(id, into);
      return;
    }
    const key = this.get(id) as SwitchingKey;
    let offset = 0;
    for (const d of key.digits) {
      into.set(bytesOfPoly(d.b), offset);
      offset += d.b.byteLength;
    }
    into.set(key.seed, offset);
    this.copiedBytes += offset;
  }

  /**
   * Live `id`'s byte form in kernel memory: one view where its polynomials lie back to back (objects placed by this
   * arena), else a view of each polynomial in byte-form order (results of compute), which a write gathers without a
   * staging copy. Valid while the object is live.
   */
  byteView(id: ObjectId): ScatterBytes {
    const polys = polysOf(this.get(id));
    let contiguous = true;
    for (let i = 1; i < polys.length; i++) {
      if (polys[i].pointer !== polys[i - 1].pointer + polys[i - 1].byteLength) contiguous = false;
    }
    if (contiguous)
      return new Uint8Array(this.params.context.memory.buffer, polys[0].pointer, this.fullBytes(id));
    return polys.map(bytesOfPoly);
  }

  /** Makes `id` live from its byte form (a DRAM → arena copy): placed polynomials, one copy of the bytes. */
  fromBytes(id: ObjectId, bytes: Uint8Array): void {
    const full = this.fullBytes(id);
    check(
      bytes.byteLength >= full,
      () => `object "${id}": ${bytes.byteLength} bytes for a ${full}-byte form`,
    );
    const shapes = this.#shapes(id, false);
    const { value: polys, pointer } = this.#placement.placed(full / 4, () =>
      shapes.map((moduli) => Poly.alloc(moduli, true, false)),
    );
    new Uint8Array(this.params.context.memory.buffer, pointer, full).set(bytes.subarray(0, full));
    this.copiedBytes += full;
    this.#setLive(id, this.#assemble(id, polys));
  }

  /**
   * Kernel memory a slow-tier read of `id`'s stored form may fill directly; {@link HeArena.completeLoad} then makes
   * the object live (regenerating a seeded key's a halves), {@link HeArena.abortLoad} gives the memory back.
   */
  loadTarget(id: ObjectId): ScatterBytes {
    check(!this.#pending.has(id), () => `object "${id}": a load is already in flight`);
    const seeded = this.#isSeededKey(id);
    const shapes = this.#shapes(id, seeded);
    if (this.meta(id).kind === 'key') {
      // A key (up to 122 MB at logN 16) is read into its polynomials where each one fits, not into one region:
      // after hours of keys and ciphertexts of every level coming and going, kernel memory has room in pieces
      // (1 GB free, no hole of 122 MB, measured on the zoo CNN) and a contiguous key would grow it for good.
      const polys = shapes.map((moduli) => Poly.alloc(moduli, true, false));
      const pieces = polys.map(bytesOfPoly);
      this.#pending.set(id, polys);
      if (seeded) {
        const pointer = this.params.context.allocator.alloc(SEED_BYTES / 4);
        this.#seedSlots.set(id, pointer);
        pieces.push(new Uint8Array(this.params.context.memory.buffer, pointer, SEED_BYTES));
      }
      return pieces;
    }
    const words = shapes.reduce((s, m) => s + m.length * this.params.n, 0);
    const { value: polys, pointer } = this.#placement.placed(
      words,
      () => shapes.map((moduli) => Poly.alloc(moduli, true, false)),
      { slackWords: seeded ? SEED_BYTES / 4 : 0 },
    );
    this.#pending.set(id, polys);
    return new Uint8Array(this.params.context.memory.buffer, pointer, this.storedBytes(id));
  }

  /** The read into {@link HeArena.loadTarget} completed: `id` becomes live. */
  completeLoad(id: ObjectId, target: ScatterBytes): void {
    const polys = this.#pending.get(id);
    check(polys !== undefined, () => `object "${id}": no load in flight`);
    this.#pending.delete(id);
    if (!this.#isSeededKey(id)) {
      this.#setLive(id, this.#assemble(id, polys));
      return;
    }
    const meta = this.meta(id) as Extract<HeObjectMeta, { kind: 'key' }>;
    // The seed follows the b halves: the last piece of a scattered load, or bytes past them in one region.
    let seed: Uint8Array;
    if (target instanceof Uint8Array) {
      const half = this.fullBytes(id) / 2;
      seed = Uint8Array.from(target.subarray(half, half + SEED_BYTES));
    } else {
      seed = Uint8Array.from(target[target.length - 1]);
      this.#freeSeedSlot(id);
    }
    if (!equalBytes(seed, meta.seed)) {
      for (const p of polys) p.dispose();
      throw new MismatchError(`key "${id}": its stored seed differs from the one it was generated with`);
    }
    const start = performance.now();
    const a = Array.from({ length: meta.digits }, (_, j) =>
      expandKeyUniform(this.params, meta.level, seed, j),
    );
    this.expandNs += (performance.now() - start) * 1e6;
    this.#setLive(id, this.#assemble(id, [...polys, ...a]));
  }

  /** The read into {@link HeArena.loadTarget} failed: frees its memory. */
  abortLoad(id: ObjectId): void {
    this.#freeSeedSlot(id);
    const polys = this.#pending.get(id);
    if (!polys) return;
    this.#pending.delete(id);
    for (const p of polys) p.dispose();
  }

  #freeSeedSlot(id: ObjectId): void {
    const pointer = this.#seedSlots.get(id);
    if (pointer === undefined) return;
    this.#seedSlots.delete(id);
    this.params.context.allocator.free(pointer, SEED_BYTES / 4);
  }

  /**
   * Turns a stored form read into the front of `buffer` into the byte form in place (a DRAM load of a seeded key:
   * the a halves are regenerated from the seed after the b halves). Other objects are left as they are.
   */
  expandStored(id: ObjectId, buffer: Uint8Array): void {
    if (!this.#isSeededKey(id)) return;
    const meta = this.meta(id) as Extract<HeObjectMeta, { kind: 'key' }>;
    const half = this.fullBytes(id) / 2;
    const seed = Uint8Array.from(buffer.subarray(half, half + SEED_BYTES));
    if (!equalBytes(seed, meta.seed))
      throw new MismatchError(`key "${id}": its stored seed differs from the one it was generated with`);
    const start = performance.now();
    const polyBytes = half / meta.digits;
    for (let j = 0; j < meta.digits; j++) {
      const a = expandKeyUniform(this.params, meta.level, seed, j);
      buffer.set(bytesOfPoly(a), half + j * polyBytes);
      a.dispose();
    }
    this.expandNs += (performance.now() - start) * 1e6;
  }

  /**
   * A new live object (ordinary allocation) equal to `id`, wherever its bytes are: live here, or in `bytes`
   * (a byte form, e.g. a DRAM buffer or a slow-tier read). For handing outputs to the caller.
   */
  materializeDetached(id: ObjectId, bytes: Uint8Array | null): HeLiveObject {
    const live = this.#live.get(id);
    if (live) {
      if (live instanceof Ciphertext) return live.copy();
      throw new InvalidArgumentError(`object "${id}": only ciphertexts are handed out`);
    }
    check(bytes !== null, () => `object "${id}": expected its bytes`);
    const shapes = this.#shapes(id, false);
    let offset = 0;
    const polys = shapes.map((moduli) => {
      const words = moduli.length * this.params.n;
      const view = new Uint32Array(words);
      new Uint8Array(view.buffer).set(bytes.subarray(offset, offset + words * 4));
      offset += words * 4;
      return Poly.fromWords(moduli, true, view);
    });
    return this.#assemble(id, polys);
  }

  /** Disposes an object {@link HeArena.materializeDetached} made. */
  disposeDetached(out: HeLiveObject): void {
    out.dispose();
  }

  #setLive(id: ObjectId, live: HeLiveObject): void {
    this.#live.set(id, live);
    this.#bytesInUse += this.#sizes.get(id) ?? this.fullBytes(id);
    if (this.#bytesInUse > this.#peakBytes) this.#peakBytes = this.#bytesInUse;
  }

  #isSeededKey(id: ObjectId): boolean {
    return this.seededKeys && this.meta(id).kind === 'key';
  }

  /** Moduli of a key's polynomials: Q ∪ P of the level it was made for. */
  #keyModuli(level: number): readonly Modulus[] {
    return this.params.moduliQPAtLevel(level);
  }

  /** Moduli of each polynomial of `id`'s byte form (only the b halves of a key with `bOnly`). */
  #shapes(id: ObjectId, bOnly: boolean): (readonly Modulus[])[] {
    const meta = this.meta(id);
    if (meta.kind === 'ciphertext')
      return Array.from({ length: meta.degree + 1 }, () => this.params.moduliAtLevel(meta.level));
    if (meta.kind === 'plaintext') return [this.params.moduliAtLevel(meta.level)];
    return Array.from({ length: bOnly ? meta.digits : 2 * meta.digits }, () => this.#keyModuli(meta.level));
  }

  #assemble(id: ObjectId, polys: Poly[]): HeLiveObject {
    const meta = this.meta(id);
    if (meta.kind === 'ciphertext') return new Ciphertext(this.params, polys, meta.level, meta.scale);
    if (meta.kind === 'plaintext') return new Plaintext(this.params, polys[0], meta.level, meta.scale);
    const d = meta.digits;
    return new SwitchingKey(
      this.params,
      Array.from({ length: d }, (_, j) => ({ b: polys[j], a: polys[d + j] })),
      meta.seed,
    );
  }
}

/**
 * The metadata of a live object (what must be remembered besides its limbs).
 *
 * @example
 * ```ts
 * const meta = heObjectMeta(ciphertext); // { kind: 'ciphertext', level, scale, degree }
 * ```
 */
export function heObjectMeta(live: HeLiveObject): HeObjectMeta {
  return metaOf(live);
}

/**
 * Writes the byte form of any live object (in the arena or not) into `into`; with `seeded`, a key's stored form
 * (b halves and seed) instead. Returns the bytes written.
 *
 * @example
 * ```ts
 * const n = writeHeObject(key, buffer, { seeded: true });
 * ```
 */
export function writeHeObject(
  live: HeLiveObject,
  into: Uint8Array,
  options: { seeded?: boolean } = {},
): number {
  let offset = 0;
  if (options.seeded && live instanceof SwitchingKey) {
    for (const d of live.digits) {
      into.set(bytesOfPoly(d.b), offset);
      offset += d.b.byteLength;
    }
    into.set(live.seed, offset);
    return offset + live.seed.length;
  }
  for (const p of polysOf(live)) {
    into.set(bytesOfPoly(p), offset);
    offset += p.byteLength;
  }
  return offset;
}

/**
 * The slow-tier form of a live object where it lies in kernel memory: a view of each polynomial in byte-form order
 * (with `seeded`, a key's b halves and then its seed, in a 32-byte shared buffer), for a write straight from it.
 * Valid while the object is alive; null for an object outside shared memory.
 *
 * @example
 * ```ts
 * await tier.write(id, storedHeView(key, { seeded: true })!);
 * ```
 */
export function storedHeView(live: HeLiveObject, options: { seeded?: boolean } = {}): Uint8Array[] | null {
  const polys = options.seeded && live instanceof SwitchingKey ? live.digits.map((d) => d.b) : polysOf(live);
  const pieces = polys.map(bytesOfPoly);
  if (!pieces.every((p) => p.buffer instanceof SharedArrayBuffer)) return null;
  if (options.seeded && live instanceof SwitchingKey) {
    const seed = new Uint8Array(new SharedArrayBuffer(live.seed.length));
    seed.set(live.seed);
    pieces.push(seed);
  }
  return pieces;
}

function metaOf(live: HeLiveObject): HeObjectMeta {
  if (live instanceof Ciphertext)
    return { kind: 'ciphertext', level: live.level, scale: live.scale, degree: live.degree };
  if (live instanceof Plaintext) return { kind: 'plaintext', level: live.level, scale: live.scale };
  return { kind: 'key', level: live.level, digits: live.digits.length, seed: Uint8Array.from(live.seed) };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
