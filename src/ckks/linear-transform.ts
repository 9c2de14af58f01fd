import { galoisElementForRotation } from '../ring/galois.ts';
import { Poly } from '../ring/poly.ts';
import { assertFinite, assertInteger, check, describe } from '../util/assert.ts';
import { InvalidArgumentError, MismatchError, MissingKeyError } from '../util/errors.ts';
import { type ComplexValues, Encoder } from './encoder.ts';
import type { Evaluator } from './evaluator.ts';
import { type GaloisKeySource, withGaloisKeys } from './key-source.ts';
import { HostStash, type Stash } from './stash.ts';
import { Ciphertext, Plaintext } from './objects.ts';
import type { Parameters } from './parameters.ts';

/**
 * How a dense matrix is laid out on the slots by {@link LinearTransform.fromMatrix}:
 *
 * - `padded`: an r×c matrix (r, c ≤ slots). The input vector sits in slots 0 … c−1 (the other slots may hold
 *   anything: they are ignored); the output lands in slots 0 … r−1 and every other slot is 0. Up to r + c − 1
 *   diagonals (indices −(r−1) … c−1).
 * - `replicated`: the matrix is zero-padded to d×d with d the smallest power of two ≥ max(r, c) (d must divide the
 *   slot count). The input must be the c-vector zero-padded to d and repeated slots/d times
 *   ({@link LinearTransform.replicate}); the output is the r-vector zero-padded to d, repeated the same way, so
 *   replicated transforms chain. Only d diagonals (indices 0 … d−1), hence fewer rotations.
 *
 * @example
 * ```ts
 * LinearTransform.fromMatrix(params, rows, { layout: 'replicated' });
 * ```
 */
export type MatrixLayout = 'padded' | 'replicated';

/**
 * What a transform was built from.
 *
 * @example
 * ```ts
 * if (transform.shape.kind === 'replicated') console.log(transform.shape.period);
 * ```
 */
export type TransformShape =
  | { kind: 'diagonals' }
  | { kind: 'padded'; rows: number; columns: number }
  | { kind: 'replicated'; rows: number; columns: number; period: number };

/**
 * Options of the {@link LinearTransform} constructor and of {@link LinearTransform.fromMatrix}.
 *
 * @example
 * ```ts
 * new LinearTransform(params, diagonals, { babySteps: 8 });
 * ```
 */
export interface LinearTransformOptions {
  /**
   * n1, the number of baby steps (1 … slots): diagonal k is handled as giant step ⌊k/n1⌋ and baby step k mod n1.
   * Default: the power of two minimizing the rotation cost, a hoisted baby rotation counting half a giant one.
   * 1 rotates once per diagonal without hoisting; `slots` rotates once per diagonal, all hoisted.
   */
  babySteps?: number;
}

const encoders = new WeakMap<Parameters, Encoder>();

let nextTransformId = 0;

function encoderFor(params: Parameters): Encoder {
  let encoder = encoders.get(params);
  if (!encoder) {
    encoder = new Encoder(params);
    encoders.set(params, encoder);
  }
  return encoder;
}

/**
 * A plaintext linear map on the slots, out[i] = Σ_k d_k[i]·in[(i + k) mod slots], stored as its non-zero
 * generalized diagonals d_k (k normalized to 0 … slots−1), and evaluated homomorphically with the baby-step
 * giant-step method of Halevi–Shoup as in Lattigo:
 *
 *   out = Σ_g rot_{n1·g}( Σ_b rot_{−n1·g}(d_{n1·g+b}) ⊙ rot_b(in) ),
 *
 * with the baby rotations rot_b(in) computed once, hoisted (`Evaluator.rotateHoistedNew`: one key-switch
 * decomposition for all of them), the diagonals pre-rotated by −n1·g, and one plain rotation per giant step.
 *
 * Diagonals are encoded at the ciphertext's level ℓ with the canonical scale S_ℓ (cached per level), and
 * `evaluateNew` returns the result **not rescaled**: level ℓ, scale in.scale·S_ℓ. One `Evaluator.rescale` then
 * lands on S_{ℓ−1} for a canonical input (S_ℓ²/Q_ℓ = S_{ℓ−1}); keeping the rescale with the caller lets it add
 * other terms at the same scale first. The transform costs one level.
 *
 * `rotationsNeeded()` lists exactly the rotation steps the evaluation uses, so that callers generate only those
 * Galois keys; a missing one raises MissingKeyError naming the step before any work is done.
 *
 * Precision: the baby rotations act on the input at its own scale, so their key-switching noise (at PN14QP438
 * about 2.5 bits above fresh-encryption noise) dominates the error; giant rotations act after the plaintext
 * products, at scale ≈ S², where their noise is negligible. `babySteps: 1` (giant steps only) is therefore about
 * 3 bits more precise, at the cost of one rotation key and one full rotation per diagonal.
 *
 * @example
 * ```ts
 * const transform = LinearTransform.fromMatrix(params, rows, { layout: 'replicated' });
 * const evk = keygen.generateEvaluationKeys(sk, { rotations: transform.rotationsNeeded() });
 * const out = transform.evaluateNew(new Evaluator(params, evk), ct);
 * evaluator.rescale(out, out); // level ct.level − 1, canonical scale
 * ```
 */
export class LinearTransform {
  readonly params: Parameters;
  /** Non-zero diagonals d_k, k in 0 … slots−1, each of length `slots` (their real parts). */
  readonly diagonals: ReadonlyMap<number, Float64Array>;
  /** The imaginary parts of the complex diagonals (only those with a non-zero one; same keys as `diagonals`). */
  readonly imaginaryDiagonals: ReadonlyMap<number, Float64Array>;
  /** n1 of the baby-step giant-step split. */
  readonly babySteps: number;
  readonly shape: TransformShape;
  /** Giant step g → the diagonal indices k with ⌊k/n1⌋ = g, ascending. */
  readonly #groups: Map<number, number[]>;
  readonly #encoded = new Map<number, Map<number, Plaintext>>();
  /** Encoded diagonals moved to {@link offload}'s stash: level → diagonal index → scale. */
  readonly #stashed = new Map<number, Map<number, number>>();
  #stash: Stash | undefined;
  /** Distinguishes this transform's entries in a shared stash. */
  readonly #uid = nextTransformId++;

  /**
   * A transform from its diagonals: index k (any integer, taken modulo the slot count) → `slots` values.
   * All-zero diagonals are dropped; two indices equal modulo the slot count are rejected.
   *
   * @example
   * ```ts
   * // out[i] = 2·in[i] + in[i + 1]
   * const t = new LinearTransform(params, new Map([[0, new Float64Array(params.slots).fill(2)],
   *                                                 [1, new Float64Array(params.slots).fill(1)]]));
   * ```
   */
  constructor(
    params: Parameters,
    diagonals: ReadonlyMap<number, ArrayLike<number> | ComplexValues>,
    options: LinearTransformOptions = {},
    shape: TransformShape = { kind: 'diagonals' },
  ) {
    this.params = params;
    const slots = params.slots;
    if (!(diagonals instanceof Map)) {
      throw new InvalidArgumentError(`diagonals = ${describe(diagonals)}: expected a Map index → values`);
    }
    const normalized = new Map<number, Float64Array>();
    const imaginary = new Map<number, Float64Array>();
    for (const [index, values] of diagonals) {
      assertInteger(index, 'diagonal index');
      const complex = isComplex(values);
      const re = complex ? values.re : values;
      const im = complex ? values.im : undefined;
      for (const part of im ? [re, im] : [re]) {
        if (typeof part !== 'object' || part === null || part.length !== slots) {
          throw new InvalidArgumentError(
            `diagonal ${index} = ${describe(values)}: expected ${slots} values (one per slot), or { re, im } of ` +
              `${slots} each`,
          );
        }
      }
      const k = ((index % slots) + slots) % slots;
      check(
        !normalized.has(k),
        () => `diagonal ${index}: index ${k} (mod ${slots}) given twice: merge the two diagonals`,
      );
      const copy = new Float64Array(slots);
      const copyIm = new Float64Array(slots);
      let nonZero = false;
      let imaginaryNonZero = false;
      for (let i = 0; i < slots; i++) {
        assertFinite(re[i], `diagonal ${index}[${i}]`);
        copy[i] = re[i];
        if (re[i] !== 0) nonZero = true;
        if (im) {
          assertFinite(im[i], `diagonal ${index}.im[${i}]`);
          copyIm[i] = im[i];
          if (im[i] !== 0) imaginaryNonZero = true;
        }
      }
      if (nonZero || imaginaryNonZero) normalized.set(k, copy);
      if (imaginaryNonZero) imaginary.set(k, copyIm);
    }
    const sorted = new Map([...normalized].sort((x, y) => x[0] - y[0]));
    this.diagonals = sorted;
    this.imaginaryDiagonals = imaginary;
    const indices = [...sorted.keys()];
    if (options.babySteps !== undefined) assertInteger(options.babySteps, 'babySteps', 1, slots);
    this.babySteps = options.babySteps ?? chooseBabySteps(indices, slots);
    this.shape = Object.freeze({ ...shape });
    this.#groups = new Map();
    for (const k of indices) {
      const g = Math.floor(k / this.babySteps);
      let group = this.#groups.get(g);
      if (!group) {
        group = [];
        this.#groups.set(g, group);
      }
      group.push(k);
    }
  }

  /**
   * A transform from a dense r×c matrix (`rows[i][j]`), laid out as {@link MatrixLayout} says (default
   * `padded`). For `replicated`, `period` overrides the default power of two ≥ max(r, c), so that transforms of
   * different shapes can share one period and chain.
   *
   * @example
   * ```ts
   * const t = LinearTransform.fromMatrix(params, [[1, 2], [3, 4]]); // input in slots 0, 1; output in slots 0, 1
   * ```
   */
  static fromMatrix(
    params: Parameters,
    rows: ArrayLike<ArrayLike<number>>,
    options: LinearTransformOptions & { layout?: MatrixLayout; period?: number } = {},
  ): LinearTransform {
    const slots = params.slots;
    const layout = options.layout ?? 'padded';
    check(
      layout === 'padded' || layout === 'replicated',
      () => `layout = ${describe(layout)}: expected "padded" or "replicated"`,
    );
    if (typeof rows !== 'object' || rows === null || typeof rows.length !== 'number' || rows.length === 0) {
      throw new InvalidArgumentError(`rows = ${describe(rows)}: expected a non-empty array of rows`);
    }
    const r = rows.length;
    const first = rows[0];
    if (
      typeof first !== 'object' ||
      first === null ||
      typeof first.length !== 'number' ||
      first.length === 0
    ) {
      throw new InvalidArgumentError(`rows[0] = ${describe(first)}: expected a non-empty array of numbers`);
    }
    const c = first.length;
    for (let i = 0; i < r; i++) {
      const row = rows[i];
      if (typeof row !== 'object' || row === null || row.length !== c) {
        throw new InvalidArgumentError(`rows[${i}] = ${describe(row)}: expected ${c} numbers like rows[0]`);
      }
      for (let j = 0; j < c; j++) assertFinite(row[j], `rows[${i}][${j}]`);
    }
    const diagonals = new Map<number, Float64Array>();
    const diagonal = (k: number): Float64Array => {
      let d = diagonals.get(k);
      if (!d) {
        d = new Float64Array(slots);
        diagonals.set(k, d);
      }
      return d;
    };
    if (layout === 'padded') {
      check(
        r <= slots && c <= slots,
        () => `matrix ${r}×${c}: expected at most ${slots} rows and columns (the slot count)`,
      );
      // Slot i < r reads column j = i + k or i + k − slots: the two never both fall in [0, c) since c ≤ slots.
      for (let i = 0; i < r; i++) {
        for (let j = 0; j < c; j++)
          if (rows[i][j] !== 0) diagonal((((j - i) % slots) + slots) % slots)[i] = rows[i][j];
      }
      return new LinearTransform(params, diagonals, options, { kind: 'padded', rows: r, columns: c });
    }
    let period = 1;
    while (period < Math.max(r, c)) period *= 2;
    if (options.period !== undefined) {
      assertInteger(options.period, 'period', period, slots);
      check(
        slots % options.period === 0,
        () => `period = ${options.period}: expected a divisor of slots = ${slots} (a power of two)`,
      );
      period = options.period;
    }
    check(
      period <= slots,
      () =>
        `matrix ${r}×${c}: the replicated layout needs a power of two ≥ ${Math.max(r, c)} dividing ${slots}`,
    );
    for (let k = 0; k < period; k++) {
      for (let i = 0; i < slots; i++) {
        const row = i % period;
        const column = (row + k) % period;
        const value = row < r && column < c ? rows[row][column] : 0;
        if (value !== 0) diagonal(k)[i] = value;
      }
    }
    return new LinearTransform(params, diagonals, options, {
      kind: 'replicated',
      rows: r,
      columns: c,
      period,
    });
  }

  /**
   * `values` zero-padded to `period` and repeated over all slots: the input (and output) form of a `replicated`
   * transform.
   *
   * @example
   * ```ts
   * LinearTransform.replicate([1, 2, 3], 4, 8); // [1, 2, 3, 0, 1, 2, 3, 0]
   * ```
   */
  static replicate(values: ArrayLike<number>, period: number, slots: number): Float64Array {
    assertInteger(slots, 'slots', 1);
    assertInteger(period, 'period', 1, slots);
    check(slots % period === 0, () => `period = ${period}: expected a divisor of slots = ${slots}`);
    check(
      values.length <= period,
      () => `values.length = ${values.length}: expected at most period = ${period}`,
    );
    const out = new Float64Array(slots);
    for (let i = 0; i < slots; i++) {
      const j = i % period;
      out[i] = j < values.length ? values[j] : 0;
    }
    return out;
  }

  /**
   * The rotation steps (in 1 … slots−1, ascending) `evaluateNew` uses: the non-zero baby steps and giant steps.
   *
   * @example
   * ```ts
   * keygen.generateEvaluationKeys(sk, { rotations: transform.rotationsNeeded() });
   * ```
   */
  rotationsNeeded(): number[] {
    const steps = new Set<number>();
    for (const [g, group] of this.#groups) {
      if (g !== 0) steps.add(g * this.babySteps);
      for (const k of group) if (k % this.babySteps !== 0) steps.add(k % this.babySteps);
    }
    return [...steps].sort((x, y) => x - y);
  }

  /**
   * The non-zero baby steps (ascending): the rotations `evaluateNew` makes of its input, hoisted, before any
   * giant step; their keys are used together.
   *
   * @example
   * ```ts
   * const held = transform.babyRotations().length * params.switchingKeyBytes(level); // keys in use at once
   * ```
   */
  babyRotations(): number[] {
    const babies = new Set<number>();
    for (const k of this.diagonals.keys()) if (k % this.babySteps !== 0) babies.add(k % this.babySteps);
    return [...babies].sort((x, y) => x - y);
  }

  /**
   * The map in plain float64 on slot values (missing trailing slots are 0): the reference for tests.
   *
   * @example
   * ```ts
   * const expected = transform.apply(LinearTransform.replicate(x, 64, params.slots));
   * ```
   */
  apply(values: ArrayLike<number>): Float64Array {
    check(
      this.imaginaryDiagonals.size === 0,
      () => 'apply: the transform has complex diagonals: use applyComplex',
    );
    const slots = this.params.slots;
    check(values.length <= slots, () => `values.length = ${values.length}: expected at most ${slots}`);
    const input = new Float64Array(slots);
    for (let i = 0; i < values.length; i++) {
      assertFinite(values[i], `values[${i}]`);
      input[i] = values[i];
    }
    const out = new Float64Array(slots);
    for (const [k, d] of this.diagonals) {
      for (let i = 0; i < slots; i++) {
        const j = i + k < slots ? i + k : i + k - slots;
        out[i] += d[i] * input[j];
      }
    }
    return out;
  }

  /**
   * The map in plain float64 on complex slot values (missing trailing slots are 0).
   *
   * @example
   * ```ts
   * const { re, im } = transform.applyComplex({ re: x, im: y });
   * ```
   */
  applyComplex(values: ComplexValues): { re: Float64Array; im: Float64Array } {
    const slots = this.params.slots;
    check(
      values.re.length <= slots && values.im.length === values.re.length,
      () =>
        `values: re.length = ${values.re.length}, im.length = ${values.im.length}: expected equal, at most ${slots}`,
    );
    const inRe = new Float64Array(slots);
    const inIm = new Float64Array(slots);
    for (let i = 0; i < values.re.length; i++) {
      assertFinite(values.re[i], `values.re[${i}]`);
      assertFinite(values.im[i], `values.im[${i}]`);
      inRe[i] = values.re[i];
      inIm[i] = values.im[i];
    }
    const re = new Float64Array(slots);
    const im = new Float64Array(slots);
    const zero = new Float64Array(slots);
    for (const [k, dRe] of this.diagonals) {
      const dIm = this.imaginaryDiagonals.get(k) ?? zero;
      for (let i = 0; i < slots; i++) {
        const j = i + k < slots ? i + k : i + k - slots;
        re[i] += dRe[i] * inRe[j] - dIm[i] * inIm[j];
        im[i] += dRe[i] * inIm[j] + dIm[i] * inRe[j];
      }
    }
    return { re, im };
  }

  /**
   * Applies the transform to `ct` (degree 1, level ≥ 1). Returns a new ciphertext at ct's level with scale
   * ct.scale·S_ℓ, not rescaled. `hoisted: false` computes the baby rotations one by one (for comparison).
   *
   * @example
   * ```ts
   * const out = transform.evaluateNew(evaluator, ct);
   * evaluator.rescale(out, out);
   * ```
   */
  evaluateNew(
    evaluator: Evaluator,
    ct: Ciphertext,
    options: { hoisted?: boolean; keys?: GaloisKeySource } = {},
  ): Ciphertext {
    const params = this.params;
    if (evaluator.params !== params || ct.params !== params) {
      throw new MismatchError(
        `linear transform parameters ${params.id} differ from the evaluator's ${evaluator.params.id} ` +
          `or the ciphertext's ${ct.parametersId}`,
      );
    }
    if (ct.degree !== 1) {
      throw new MismatchError(
        `linear transform: ciphertext of degree ${ct.degree}: expected 1 (relinearize first)`,
      );
    }
    if (ct.level < 1) {
      throw new InvalidArgumentError(
        'linear transform: ciphertext at level 0: expected level ≥ 1 (the transform consumes one level)',
      );
    }
    // With a key source the keys come in when used: the baby steps' together, then each giant step's alone.
    const source = options.keys;
    const have = source ? new Set(source.galoisElements) : undefined;
    for (const step of this.rotationsNeeded()) {
      const g = galoisElementForRotation(step, params.logN);
      if (!(have ? have.has(g) : evaluator.keys?.galois.has(g))) {
        throw new MissingKeyError(
          `linear transform: no Galois key for rotation by ${step} (Galois element ${g}); generate the keys of ` +
            'rotationsNeeded()',
        );
      }
    }
    const level = ct.level;
    const outScale = ct.scale * params.scaleAtLevel[level];
    if (this.diagonals.size === 0) return evaluator.mulNew(ct, 0);
    const plaintexts = this.#encodedAt(level);
    const n1 = this.babySteps;
    const babies = this.babyRotations();
    const withKeys = <T>(steps: number[], f: (e: Evaluator) => T): T =>
      source
        ? withGaloisKeys(
            source,
            evaluator,
            steps.map((s) => galoisElementForRotation(s, params.logN)),
            f,
          )
        : f(evaluator);
    const rotated = withKeys(babies, (e) =>
      options.hoisted === false || babies.length === 0
        ? new Map(babies.map((b) => [b, e.rotateNew(ct, b)]))
        : e.rotateHoistedNew(ct, babies),
    );
    const moduli = params.moduliAtLevel(level);
    let total: Ciphertext | undefined;
    try {
      for (const [g, group] of this.#groups) {
        const c0 = Poly.alloc(moduli, true);
        const c1 = Poly.alloc(moduli, true);
        // One task per (output polynomial, limb) holding the group's every product into it, in order.
        const terms = group.map((k) => {
          const b = k % n1;
          return {
            source: b === 0 ? ct : (rotated.get(b) as Ciphertext),
            pt: plaintexts.get(k) as Plaintext,
          };
        });
        const batch = params.context.batch(2 * moduli.length * group.length * params.n);
        for (const [j, out] of [c0, c1].entries()) {
          for (let i = 0; i < moduli.length; i++) {
            const task = batch.task();
            const m = moduli[i];
            for (const { source, pt } of terms) {
              task.mulAdd(
                out.limbPointer(i),
                source.polys[j].limbPointer(i),
                pt.poly.limbPointer(i),
                params.n,
                m.value,
                m.barrett,
              );
            }
          }
        }
        batch.run();
        const inner = new Ciphertext(params, [c0, c1], level, outScale);
        if (g !== 0) withKeys([g * n1], (e) => e.rotate(inner, g * n1, inner));
        if (total) {
          evaluator.add(total, inner, total);
          inner.dispose();
        } else total = inner;
      }
    } catch (error) {
      total?.dispose();
      throw error;
    } finally {
      for (const r of rotated.values()) r.dispose();
    }
    return total as Ciphertext;
  }

  /** Returns the cached encoded diagonals to the allocator. */
  dispose(): void {
    for (const byIndex of this.#encoded.values()) for (const pt of byIndex.values()) pt.dispose();
    this.#encoded.clear();
    if (this.#stash) {
      for (const [level, stashed] of this.#stashed)
        for (const k of stashed.keys()) this.#stash.delete(`lt:${this.#uid}:${level}:${k}`);
    }
    this.#stashed.clear();
  }

  /**
   * Moves the encoded diagonals out of kernel memory into `stash` (default: host memory); the next evaluation at
   * their level copies them back (a copy instead of an encoding). For transforms too large to stay in kernel memory
   * together. Diagonals already stashed are not written again.
   *
   * @example
   * ```ts
   * const out = transform.evaluateNew(evaluator, ct);
   * transform.offload(stash);
   * ```
   */
  offload(stash: Stash = this.#stash ?? new HostStash()): void {
    if (this.#stash && this.#stash !== stash) {
      throw new MismatchError('offload: this transform already keeps its diagonals in another stash');
    }
    this.#stash = stash;
    const memory = this.params.context.memory.buffer;
    for (const [level, byIndex] of this.#encoded) {
      let stashed = this.#stashed.get(level);
      if (!stashed) {
        stashed = new Map();
        this.#stashed.set(level, stashed);
      }
      for (const [k, pt] of byIndex) {
        const id = `lt:${this.#uid}:${level}:${k}`;
        if (!stash.has(id)) stash.put(id, [new Uint8Array(memory, pt.poly.pointer, pt.poly.byteLength)]);
        stashed.set(k, pt.scale);
        pt.dispose();
      }
    }
    this.#encoded.clear();
  }

  /** The diagonals pre-rotated by −n1·⌊k/n1⌋ and encoded at `level` with the canonical scale (cached). */
  #encodedAt(level: number): Map<number, Plaintext> {
    let byIndex = this.#encoded.get(level);
    if (byIndex) return byIndex;
    byIndex = new Map();
    const stashed = this.#stashed.get(level);
    if (stashed && this.#stash) {
      const moduli = this.params.moduliAtLevel(level);
      const memory = this.params.context.memory.buffer;
      for (const [k, scale] of stashed) {
        const poly = Poly.alloc(moduli, true, false);
        byIndex.set(k, new Plaintext(this.params, poly, level, scale));
        this.#stash.get(`lt:${this.#uid}:${level}:${k}`, [
          new Uint8Array(memory, poly.pointer, poly.byteLength),
        ]);
      }
      this.#encoded.set(level, byIndex);
      return byIndex;
    }
    const slots = this.params.slots;
    const encoder = encoderFor(this.params);
    const scale = this.params.scaleAtLevel[level];
    const shifted = new Float64Array(slots);
    const shiftedIm = new Float64Array(slots);
    for (const [k, d] of this.diagonals) {
      const shift = Math.floor(k / this.babySteps) * this.babySteps;
      for (let i = 0; i < slots; i++) shifted[i] = d[(i - shift + slots) % slots];
      const dIm = this.imaginaryDiagonals.get(k);
      if (dIm) {
        for (let i = 0; i < slots; i++) shiftedIm[i] = dIm[(i - shift + slots) % slots];
        byIndex.set(k, encoder.encodeNew({ re: shifted, im: shiftedIm }, level, scale));
      } else byIndex.set(k, encoder.encodeNew(shifted, level, scale));
    }
    this.#encoded.set(level, byIndex);
    return byIndex;
  }
}

/**
 * The power-of-two n1 minimizing ½·(baby rotations) + (giant rotations), ties broken by fewer keys, then by
 * smaller n1.
 */
function chooseBabySteps(indices: readonly number[], slots: number): number {
  let best = { n1: 1, cost: Infinity, keys: Infinity };
  for (let n1 = 1; n1 <= slots; n1 *= 2) {
    const babies = new Set<number>();
    const giants = new Set<number>();
    for (const k of indices) {
      if (k % n1 !== 0) babies.add(k % n1);
      if (k >= n1) giants.add(Math.floor(k / n1));
    }
    const cost = 0.5 * babies.size + giants.size;
    const keys = babies.size + giants.size;
    if (cost < best.cost || (cost === best.cost && keys < best.keys)) best = { n1, cost, keys };
  }
  return best.n1;
}

function isComplex(values: ArrayLike<number> | ComplexValues): values is ComplexValues {
  return typeof values === 'object' && values !== null && 're' in values && 'im' in values;
}
