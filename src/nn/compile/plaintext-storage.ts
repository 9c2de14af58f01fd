/**
 * How the compiler stores a plaintext vector among the program's constants: the smallest of four forms (dense or
 * sparse, float64 or palette: see `PlaintextDescriptor` in src/program/program.ts). The emitter decides with it and the resource estimates predict with it, so a model
 * refused before emission is one whose emitted program would be refused too.
 */
/** Most distinct values a palette holds: its codes are bytes. */
export const PALETTE_VALUES = 256;
/** Most slots a sparse palette entry can name: its slot is a uint16. */
const PALETTE_SLOTS = 2 ** 16;

/**
 * The chosen form of a vector of `length` slots and the bytes it takes (float64 constants and palette codes).
 *
 * @internal
 */
export interface PlaintextStorage {
  /** Stored as entries (slot, value): only the non-zero slots. */
  readonly sparse: boolean;
  /** Stored as a palette of distinct values plus a code per slot or entry. */
  readonly palette: boolean;
  readonly bytes: number;
}

/**
 * The form {@link Emitter.plaintext} stores a vector in, from its length, its non-zero slots and how many distinct
 * non-zero values it has (counting stops past {@link PALETTE_VALUES}: more is as good as infinitely many).
 *
 * @internal
 * @example
 * ```ts
 * plaintextStorage(16384, 1536, 16); // { sparse: true, palette: true, bytes: 4736 }: 16 values, 3 bytes an entry
 * ```
 */
export function plaintextStorage(length: number, nonZero: number, distinctNonZero: number): PlaintextStorage {
  const distinct = distinctNonZero + (nonZero < length ? 1 : 0);
  const forms: PlaintextStorage[] = [
    { sparse: false, palette: false, bytes: 8 * length },
    { sparse: true, palette: false, bytes: 16 * nonZero },
  ];
  if (distinct <= PALETTE_VALUES) forms.push({ sparse: false, palette: true, bytes: 8 * distinct + length });
  if (distinctNonZero <= PALETTE_VALUES && length <= PALETTE_SLOTS)
    forms.push({ sparse: true, palette: true, bytes: 8 * distinctNonZero + 3 * nonZero });
  return forms.reduce((best, f) => (f.bytes < best.bytes ? f : best));
}

/**
 * Counts a vector's distinct non-zero values up to {@link PALETTE_VALUES} + 1.
 *
 * @internal
 */
export class DistinctCounter {
  readonly #seen = new Set<number>();

  add(value: number): void {
    if (value !== 0 && this.#seen.size <= PALETTE_VALUES) this.#seen.add(value);
  }

  get count(): number {
    return this.#seen.size;
  }
}

/**
 * Writes a vector in palette form: its distinct values (the palette, in order of first appearance) and its codes —
 * one per slot, or for `sparse` three per non-zero slot (the slot as a little-endian uint16, then the code).
 *
 * @internal
 */
export function paletteForm(
  values: ArrayLike<number>,
  sparse: boolean,
): { palette: Float64Array; codes: Uint8Array; entries: number } {
  const index = new Map<number, number>();
  const palette: number[] = [];
  const codeOf = (v: number): number => {
    let code = index.get(v);
    if (code === undefined) {
      code = palette.length;
      palette.push(v);
      index.set(v, code);
    }
    return code;
  };
  let entries = 0;
  for (let i = 0; i < values.length; i++) if (values[i] !== 0) entries++;
  const codes = new Uint8Array(sparse ? 3 * entries : values.length);
  if (sparse) {
    for (let i = 0, c = 0; i < values.length; i++)
      if (values[i] !== 0) {
        codes[c++] = i & 0xff;
        codes[c++] = i >>> 8;
        codes[c++] = codeOf(values[i]);
      }
  } else for (let i = 0; i < values.length; i++) codes[i] = codeOf(values[i] === 0 ? 0 : values[i]);
  return { palette: Float64Array.from(palette), codes, entries };
}
