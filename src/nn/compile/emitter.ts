/**
 * The emitter: symbolic ciphertext values (level, scale, degree) and the instructions that make them, EVA-style: a
 * rescale after every multiplicative step, constants encoded at exactly the scale that makes a sum land on the
 * canonical scale of the next level. It also holds the program's constants, its plaintext and encrypted-weight
 * vectors and the rotations whose keys the program needs.
 */
import { ResourceError } from '../../util/errors.ts';
import { type HeOp, OPS, opKeys } from '../../program/ops.ts';
import type { HeInstruction, InputDescriptor, PlaintextDescriptor } from '../../program/program.ts';
import type { Chain } from './chain.ts';
import type { CompileLimits } from './options.ts';
import { DistinctCounter, paletteForm, plaintextStorage } from './plaintext-storage.ts';
import type { PolynomialEvaluation } from './polynomial.ts';

/** Rows per mul_matrix: enough to read each operand once per layer for the dense layers of MNIST-size models. */
const MATRIX_ROWS = 256;

/**
 * A ciphertext value during emission.
 *
 * @internal
 * @example
 * ```ts
 * const x: Sym = emitter.fresh(chain.top, chain.scaleAt(chain.top), 1);
 * ```
 */
export interface Sym {
  readonly id: number;
  readonly level: number;
  readonly scale: number;
  readonly degree: number;
}

/**
 * A linear term: coefficient × value.
 *
 * @internal
 * @example
 * ```ts
 * const terms: Term[] = [{ x, w: 0.5 }, { x: y, w: -1 }];
 * ```
 */
export interface Term {
  readonly x: Sym;
  readonly w: number;
}

/**
 * The program's float64 constants (or palette codes) while emitting: a growable typed array, because a JavaScript
 * number array cannot grow past about 2^27 elements (V8 aborts the process when it tries) and latency packing
 * stores every plaintext diagonal here.
 */
class GrowableArray<T extends Float64Array | Uint8Array> {
  #data: T;
  length = 0;

  constructor(readonly create: (length: number) => T) {
    this.#data = create(1024);
  }

  #reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.#data.length) return;
    const grown = this.create(Math.max(need, Math.ceil(this.#data.length * 1.5)));
    grown.set(this.#data.subarray(0, this.length));
    this.#data = grown;
  }

  append(value: number): void {
    this.#reserve(1);
    this.#data[this.length++] = value;
  }

  appendAll(values: ArrayLike<number>): void {
    this.#reserve(values.length);
    if (values instanceof this.#data.constructor) this.#data.set(values, this.length);
    else for (let i = 0; i < values.length; i++) this.#data[this.length + i] = values[i];
    this.length += values.length;
  }

  /** The values, exactly `length` of them (the spare capacity is dropped). */
  toArray(): T {
    return this.#data.slice(0, this.length) as T;
  }
}

/**
 * The baby-step count n1 minimizing rotations (hoisted baby rotations cost about half a giant one): diagonal k is
 * rotation k mod n1 (baby) then ⌊k / n1⌋·n1 (giant). Every n1 up to 4,096 is tried, not only powers of two: a
 * convolution's diagonals are (channel block offset) + (kernel offset), and n1 = the block's slot count (784 for
 * 28×28 images) splits them into kernel offsets (babies) and channel blocks (giants) — for a 8 → 16 channel 5×5
 * convolution 25 + 15 rotations instead of 31 + 35 with the best power of two.
 *
 * @internal
 * @example
 * ```ts
 * babyStepCount([0, 1, 2, 3, 4, 5, 6, 7], 8); // 4: three hoisted baby rotations, one giant rotation
 * ```
 */
export function babyStepCount(ks: readonly number[], d: number): number {
  let best = { n1: 1, cost: Number.POSITIVE_INFINITY };
  // Stamps instead of sets: entry v is "seen for candidate n1" when it holds n1.
  const babySeen = new Uint32Array(Math.min(d, 4096) + 1);
  const giantSeen = new Uint32Array(d + 1);
  const consider = (n1: number) => {
    let babies = 0;
    let giants = 0;
    for (const k of ks) {
      const b = k % n1;
      const g = (k - b) / n1;
      if (b !== 0 && babySeen[b] !== n1) {
        babySeen[b] = n1;
        babies++;
      }
      if (g !== 0 && giantSeen[g] !== n1) {
        giantSeen[g] = n1;
        giants++;
      }
    }
    const cost = 0.5 * babies + giants;
    if (cost < best.cost) best = { n1, cost };
  };
  for (let n1 = 1; n1 <= Math.min(d, 4096); n1++) consider(n1);
  for (let n1 = 8192; n1 <= d; n1 *= 2) consider(n1);
  return best.n1;
}

/**
 * Emits a program's instructions against a {@link Chain}: every method makes fresh values with exact levels and
 * scales and appends the instruction that produces them. Past its limits it throws a ResourceError instead of
 * growing the instruction list or the constants until V8 aborts.
 *
 * @internal
 * @example
 * ```ts
 * const emitter = new Emitter(chainOf(params), DEFAULT_COMPILE_LIMITS);
 * const x = emitter.fresh(params.depth, params.scaleAtLevel[params.depth], 1);
 * const y = emitter.linear([{ x, w: 0.5 }], 0.1); // on the canonical scale of level depth − 1
 * ```
 */
export class Emitter {
  readonly chain: Chain;
  readonly instructions: HeInstruction[] = [];
  readonly constants = new GrowableArray((n) => new Float64Array(n));
  /** The codes of plaintexts stored by palette (see {@link PlaintextDescriptor.palette}). */
  readonly paletteCodes = new GrowableArray((n) => new Uint8Array(n));
  readonly #constantIndex = new Map<number, number>();
  nextId = 0;
  layer = '';
  minLevel: number;
  usesRelin = false;
  /** The depth probe: plaintext and weight vectors are registered but their values are neither built nor stored. */
  readonly dryRun: boolean;
  readonly #limits: Pick<CompileLimits, 'instructions' | 'constantBytes'> &
    Partial<Pick<CompileLimits, 'stepBytes'>>;

  constructor(
    chain: Chain,
    limits: Pick<CompileLimits, 'instructions' | 'constantBytes'> & Partial<Pick<CompileLimits, 'stepBytes'>>,
    dryRun = false,
  ) {
    this.chain = chain;
    this.minLevel = chain.top;
    this.#limits = limits;
    this.dryRun = dryRun;
  }

  /**
   * Backstop of the up-front estimates: stops the emission before the instruction list or the constants outgrow
   * their limits (past them V8 aborts the process instead of throwing).
   */
  #room(instructions: number, constantBytes: number): void {
    if (this.instructions.length + instructions > this.#limits.instructions) {
      throw new ResourceError(
        `compileModel: layer '${this.layer}' takes the program past ${this.#limits.instructions.toLocaleString('en-US')} ` +
          'instructions (limits.instructions; each takes about 300 bytes of JavaScript heap): use latency packing, ' +
          'lower polynomial degrees or a smaller model',
      );
    }
    if (8 * this.constants.length + this.paletteCodes.length + constantBytes > this.#limits.constantBytes) {
      throw new ResourceError(
        `compileModel: layer '${this.layer}' takes the program's constants past ${this.#limits.constantBytes.toLocaleString('en-US')} ` +
          'bytes (limits.constantBytes): the plaintext weight vectors do not fit in one program',
      );
    }
  }

  fresh(level: number, scale: number, degree: number): Sym {
    if (level < this.minLevel) this.minLevel = level;
    return { id: this.nextId++, level, scale, degree };
  }

  constant(value: number): number {
    // −0 and 0 are the same weight.
    const key = value === 0 ? 0 : value;
    let index = this.#constantIndex.get(key);
    if (index === undefined) {
      this.#room(0, 8);
      index = this.constants.length;
      this.constants.append(key);
      this.#constantIndex.set(key, index);
    }
    return index;
  }

  /**
   * Appends one instruction of `op` on `args`: its results' level, scale and degree, its keys and byte sizes come
   * from the op table (`OPS[op]`), so what the compiler emits is what the validator, the simulator and the executors
   * expect. `extra` holds the op's own fields (constant, constantScale, plaintext, steps). Returns the results (for
   * an in-place op, the updated operand).
   */
  #emit(op: Exclude<HeOp, 'free'>, args: readonly Sym[], extra: Partial<HeInstruction> = {}): Sym[] {
    this.#room(1, 0);
    const definition = OPS[op];
    const plaintext = extra.plaintext === undefined ? undefined : this.plaintexts[extra.plaintext];
    const results = definition.result(args, extra, {
      plaintext,
      rescaleScale: (level, scale) => {
        for (const q of this.chain.rescalePrimes(level)) scale /= q;
        return scale;
      },
    });
    const outs = definition.inPlace
      ? [args[args.length - 1]]
      : results.map((r) => this.fresh(r.level, r.scale, r.degree));
    const shape = results[0];
    if (definition.keys === 'relin') this.usesRelin = true;
    this.instructions.push({
      op,
      args: args.map((a) => a.id),
      out: outs.map((o) => o.id),
      level: shape.level,
      scale: shape.scale,
      degree: shape.degree,
      bytes: {
        args: args.map((a) => this.chain.bytes(a.level, a.degree)),
        out: this.chain.bytes(shape.level, shape.degree),
      },
      keys: opKeys(op, extra.steps, (steps) => this.#rotation(steps)),
      layer: this.layer,
      ...extra,
    });
    return outs;
  }

  /** The Galois element of a rotation by `steps`, registered as one the program needs a key for. */
  #rotation(steps: number): number {
    const g = this.chain.galois(steps);
    this.rotations.set(steps, g);
    return g;
  }

  mulConst(x: Sym, c: number, constantScale: number): Sym {
    return this.#emit('mul_const', [x], { constant: this.constant(c), constantScale })[0];
  }

  /** acc += x · c in place; acc keeps its id, level and scale. */
  mulThenAdd(x: Sym, c: number, acc: Sym, constantScale: number): void {
    if (acc.level > x.level || acc.degree !== x.degree) {
      throw new Error(
        `compiler: mul_then_add operand at level ${x.level}/degree ${x.degree} into ${acc.level}/${acc.degree}`,
      );
    }
    this.#emit('mul_then_add', [x, acc], { constant: this.constant(c), constantScale });
  }

  /**
   * Rows of Σ_j w[r·k + j] · x_j (k = xs.length) as one `mul_matrix` per group of rows that fits in
   * `limits.stepBytes` with its operands, each weight encoded at `constantScale`; the weights are stored row by
   * row, back to back. Null when even one row does not fit (the caller emits the rows one by one).
   */
  mulMatrix(xs: readonly Sym[], weights: ArrayLike<number>, constantScale: number): Sym[] | null {
    const k = xs.length;
    const rows = weights.length / k;
    const x = xs[0];
    const bytes = this.chain.bytes(x.level, x.degree);
    const room = Math.floor((this.#limits.stepBytes ?? Number.POSITIVE_INFINITY) / bytes) - k;
    if (room < 1) return null;
    const group = Math.min(rows, room, MATRIX_ROWS);
    const out: Sym[] = [];
    for (let first = 0; first < rows; first += group) {
      const count = Math.min(group, rows - first);
      this.#room(1, 8 * count * k);
      const constant = this.constants.length;
      for (let i = first * k; i < (first + count) * k; i++)
        this.constants.append(weights[i] === 0 ? 0 : weights[i]);
      out.push(...this.#emit('mul_matrix', xs, { constant, constantScale, rows: count }));
    }
    return out;
  }

  /** x at a lower `level`, scale unchanged (its extra primes dropped). */
  dropLevel(x: Sym, level: number): Sym {
    return this.#emit('drop_level', [x], { level })[0];
  }

  addConst(x: Sym, c: number): Sym {
    return this.#emit('add_const', [x], { constant: this.constant(c) })[0];
  }

  /** x (times `multiplier`) brought to a lower `level` and exactly `scale` (one rescale from the level above it). */
  matchScale(x: Sym, level: number, scale: number, multiplier = 1): Sym {
    return this.#emit('match_scale', [x], {
      level,
      scale,
      ...(multiplier !== 1 ? { constant: this.constant(multiplier) } : {}),
    })[0];
  }

  readonly plaintexts: PlaintextDescriptor[] = [];
  readonly rotations = new Map<number, number>();
  /** Weights as model-owner ciphertexts instead of plaintexts (latency packing). */
  encryptWeights = false;
  /** How polynomial approximations are evaluated (see {@link PolynomialEvaluation}). */
  polynomials: PolynomialEvaluation = 'basis';
  readonly weightInputs: InputDescriptor[] = [];

  /** An encrypted weight vector (replicated with period values.length): a model-owner input. */
  weightInput(values: ArrayLike<number>, level: number, scale: number): Sym {
    const sym = this.fresh(level, scale, 1);
    const offset = this.#store(values);
    this.weightInputs.push({
      id: sym.id,
      level,
      scale,
      bytes: this.chain.bytes(level, 1),
      owner: 'model',
      offset,
      length: values.length,
      replicate: true,
    });
    return sym;
  }

  /** Appends a vector to the constants (not in a dry run); returns its offset. */
  #store(values: ArrayLike<number>): number {
    const offset = this.constants.length;
    if (this.dryRun) return offset;
    this.#room(0, 8 * values.length);
    this.constants.appendAll(values);
    return offset;
  }

  /**
   * Registers a plaintext vector (replicated over the slots with period values.length); returns its id. It is
   * stored in the smallest form ({@link plaintextStorage}): dense or as (slot, value) entries, float64 or by palette.
   */
  plaintext(values: ArrayLike<number>, level: number, scale: number): number {
    const id = this.plaintexts.length;
    const distinct = new DistinctCounter();
    let nonZero = 0;
    for (let i = 0; i < values.length; i++)
      if (values[i] !== 0) {
        nonZero++;
        distinct.add(values[i]);
      }
    const form = plaintextStorage(values.length, nonZero, distinct.count);
    let stored: Pick<PlaintextDescriptor, 'offset' | 'entries' | 'palette' | 'codeOffset'>;
    if (form.palette) {
      const { palette, codes } = paletteForm(values, form.sparse);
      const codeOffset = this.paletteCodes.length;
      stored = {
        offset: this.#store(palette),
        ...(form.sparse ? { entries: nonZero } : {}),
        palette: palette.length,
        codeOffset,
      };
      if (!this.dryRun) {
        this.#room(0, codes.length);
        this.paletteCodes.appendAll(codes);
      }
    } else if (form.sparse) {
      const pairs = new Float64Array(2 * nonZero);
      for (let i = 0, e = 0; i < values.length; i++)
        if (values[i] !== 0) {
          pairs[e++] = i;
          pairs[e++] = values[i];
        }
      stored = { offset: this.#store(pairs), entries: nonZero };
    } else stored = { offset: this.#store(values) };
    this.plaintexts.push({
      id,
      level,
      scale,
      bytes: this.chain.bytes(level, 0),
      ...stored,
      length: values.length,
      replicate: true,
    });
    return id;
  }

  mulPlain(x: Sym, plaintext: number): Sym {
    return this.#emit('mul_plain', [x], { plaintext })[0];
  }

  addPlain(x: Sym, plaintext: number): Sym {
    return this.#emit('add_plain', [x], { plaintext })[0];
  }

  rotate(x: Sym, steps: number): Sym {
    return this.#emit('rotate', [x], { steps: [steps] })[0];
  }

  /** Steps per `rotate_hoisted` of x in {@link rotateHoisted}: all `count`, unless that passes `limits.stepBytes`. */
  #hoistGroup(x: Sym, count: number): number {
    // A key is made for the highest level any instruction uses it at, which later layers may raise: size each
    // step's keys at the top level, the most they can take.
    const perStep = this.chain.keyBytes(this.chain.top) + this.chain.bytes(x.level, 1);
    const room =
      (this.#limits.stepBytes ?? Number.POSITIVE_INFINITY) -
      this.chain.bytes(x.level, x.degree) -
      this.chain.hoistScratchBytes(x.level);
    return perStep > 0 ? Math.min(count, Math.max(1, Math.floor(room / perStep))) : count;
  }

  /**
   * One result per step, sharing one key-switching decomposition of x — in groups when the keys and results of
   * all the steps would take more than `limits.stepBytes` (each group decomposes x again).
   */
  rotateHoisted(x: Sym, steps: readonly number[]): Sym[] {
    const group = this.#hoistGroup(x, steps.length);
    if (group >= steps.length) return this.#emit('rotate_hoisted', [x], { steps: [...steps] });
    const out: Sym[] = [];
    for (let i = 0; i < steps.length; i += group) {
      out.push(...this.#emit('rotate_hoisted', [x], { steps: steps.slice(i, i + group) }));
    }
    return out;
  }

  /**
   * y = M·x + bias, M given by its entries (`linear` visits every (row i, column j, weight w), i and j below
   * `period`, and returns the bias), applied to every `period`-slot block of x at once: block b's outputs read
   * only block b's inputs, so each block may hold another image. Rotations act on the whole `wrap`-slot vector,
   * so entry (i, j) is diagonal (j − i) mod `wrap` — a column left of its row rotates by a negative step instead
   * of wrapping inside its block (with `wrap = period` the blocks must all be equal: the one-image layout). The
   * diagonals themselves repeat every `period` slots. The diagonal method with baby-step giant-step — baby
   * rotations hoisted, diagonals pre-rotated by the giant step, one rotation per giant step — then one rescale
   * onto the canonical scale. Entries are grouped by diagonal and each pre-rotated diagonal is built only when it
   * is stored, so no layer-sized set of dense diagonals is ever held (and a dry run builds none).
   */
  matrix(
    x: Sym,
    linear: (visit: (i: number, j: number, w: number) => void) => { bias: ArrayLike<number> },
    period: number,
    wrap = period,
  ): Sym {
    const d = period;
    if (wrap % d !== 0)
      throw new Error(`compiler: rotation span ${wrap} is not a multiple of the period ${d}`);
    // Diagonal k = (j − i) mod wrap as flat (row, weight) pairs.
    const entries = new Map<number, number[]>();
    const { bias } = linear((i, j, w) => {
      if (w === 0) return;
      const k = (j - i + wrap) % wrap;
      let list = entries.get(k);
      if (!list) entries.set(k, (list = []));
      list.push(i, w);
    });
    if (entries.size === 0) entries.set(0, []);
    const ks = [...entries.keys()].sort((a, b) => a - b);
    const n1 = babyStepCount(ks, wrap);
    const level = x.level;
    const ptScale = (this.chain.scaleAt(level) * this.chain.scaleAt(level)) / x.scale;
    const babySteps = [...new Set(ks.map((k) => k % n1))].filter((b) => b !== 0).sort((a, b) => a - b);
    const giants = [...new Set(ks.map((k) => Math.floor(k / n1)))].sort((a, b) => a - b);
    const blank = this.dryRun ? new Float64Array(d) : undefined;
    /** Diagonal k pre-rotated by its giant step. */
    const diagonal = (k: number): Float64Array => {
      if (blank !== undefined) return blank;
      const shift = (Math.floor(k / n1) * n1) % d;
      const pre = new Float64Array(d);
      const list = entries.get(k) as number[];
      for (let e = 0; e < list.length; e += 2) pre[(list[e] + shift) % d] += list[e + 1];
      return pre;
    };
    const partials = new Map<number, Sym>();
    /** Diagonal k's term (its baby rotation times the diagonal), into its giant step's partial sum. */
    const accumulate = (k: number, source: Sym) => {
      const g = Math.floor(k / n1);
      const partial = partials.get(g);
      if (this.encryptWeights) {
        const t = this.mulCt(source, this.weightInput(diagonal(k), level, ptScale));
        partials.set(g, partial ? this.addSub('add', partial, t) : t);
      } else if (partial) {
        // Added in place: one pass over the partial sum, not a product written and read again.
        this.#emit('mul_plain_then_add', [source, partial], {
          plaintext: this.plaintext(diagonal(k), level, ptScale),
        });
      } else {
        partials.set(g, this.mulPlain(source, this.plaintext(diagonal(k), level, ptScale)));
      }
    };
    let out: Sym | undefined;
    /** Giant step g's partial sum rotated into place and added to the output. */
    const finish = (g: number) => {
      let partial = partials.get(g);
      if (!partial) return;
      if (g !== 0) partial = this.rotate(this.relinearize(partial), g * n1);
      out = out ? this.addSub('add', out, partial) : partial;
    };
    const group = babySteps.length > 0 ? this.#hoistGroup(x, babySteps.length) : 0;
    if (group < babySteps.length && giants.length + group < babySteps.length) {
      // The baby rotations come in several hoisted groups anyway: consume each group into every giant step's
      // partial sum, then let it go, so that a group and the partial sums are live instead of every rotation
      // (the zoo CNN's second convolution: 95 rotations, 1.54 GB, against 15 partial sums and one group). Each
      // partial sum still adds its terms in ascending diagonal order.
      const byBaby = new Map<number, number[]>();
      for (const k of ks) {
        const b = k % n1;
        const list = byBaby.get(b);
        if (list) list.push(k);
        else byBaby.set(b, [k]);
      }
      for (const k of byBaby.get(0) ?? []) accumulate(k, x);
      for (let i = 0; i < babySteps.length; i += group) {
        const steps = babySteps.slice(i, i + group);
        this.#emit('rotate_hoisted', [x], { steps }).forEach((r, j) => {
          for (const k of byBaby.get(steps[j]) as number[]) accumulate(k, r);
        });
      }
      for (const g of giants) finish(g);
    } else {
      const rotated = new Map<number, Sym>([[0, x]]);
      if (babySteps.length > 0) {
        this.rotateHoisted(x, babySteps).forEach((r, i) => {
          rotated.set(babySteps[i], r);
        });
      }
      for (const g of giants) {
        for (const k of ks) if (Math.floor(k / n1) === g) accumulate(k, rotated.get(k % n1) as Sym);
        finish(g);
      }
    }
    let result = out as Sym;
    let hasBias = false;
    const biasVector = new Float64Array(d);
    for (let i = 0; i < bias.length; i++) {
      biasVector[i] = bias[i];
      if (bias[i] !== 0) hasBias = true;
    }
    if (hasBias) {
      result = this.encryptWeights
        ? this.addSub('add', result, this.weightInput(biasVector, level, result.scale))
        : this.addPlain(result, this.plaintext(biasVector, level, result.scale));
    }
    return this.rescale(this.relinearize(result));
  }

  /** Bootstraps emitted so far. */
  bootstraps = 0;

  /**
   * x refreshed by a bootstrap to the chain's `levelsLeft` (relinearized first); its slots must stay within
   * ±`bound` (≥ 1), which the compiler takes from the calibration images.
   */
  bootstrap(x: Sym, bound: number): Sym {
    const b = this.chain.bootstrap;
    if (!b) throw new Error(`compiler: a bootstrap in layer ${this.layer} on a chain without bootstrapping`);
    const source = this.relinearize(x);
    this.bootstraps++;
    return this.#emit('bootstrap', [source], {
      constant: this.constant(bound),
      level: b.levelsLeft,
      scale: b.resultScale(source.scale, bound),
      scratchBytes: b.scratchBytes,
    })[0];
  }

  mulCt(x: Sym, y: Sym): Sym {
    return x.id === y.id ? this.#emit('square', [x])[0] : this.#emit('mul_ct', [x, y])[0];
  }

  addSub(op: 'add' | 'sub', x: Sym, y: Sym): Sym {
    return this.#emit(op, [x, y])[0];
  }

  relinearize(x: Sym): Sym {
    if (x.degree === 1) return x;
    return this.#emit('relinearize', [x])[0];
  }

  rescale(x: Sym): Sym {
    if (x.level === 0) {
      throw new Error(`compiler: rescale at level 0 in layer ${this.layer} (depth accounting is wrong)`);
    }
    return this.#emit('rescale', [x])[0];
  }

  /**
   * Σ ±x_i + bias when every weight is ±1 (one at least +1) and the operands share degree and, once those above
   * the lowest level are matched to it, level and scale: sums and differences, no constant multiply, so no level
   * spent (a polynomial on [−1, 1] starts from T₁ = x, a max from a − b). Null when the combination is not of that
   * form.
   */
  #unitCombination(terms: readonly Term[], bias: number, relinearizeSum: boolean): Sym | null {
    if (!terms.every((t) => t.w === 1 || t.w === -1) || !terms.some((t) => t.w === 1)) return null;
    const lowest = terms.reduce((low, t) => (t.x.level < low.x.level ? t : low)).x;
    const fits = terms.every(
      (t) => t.x.degree === lowest.degree && (t.x.level > lowest.level || t.x.scale === lowest.scale),
    );
    if (!fits) return null;
    // Operands above the lowest one (an odd value carried up a max tree, a residual branch) are matched to its
    // level and scale first: one rescale of theirs, from levels they have to spare, instead of a level of the sum.
    const live = terms.map((t) =>
      t.x.level > lowest.level ? { x: this.matchScale(t.x, lowest.level, lowest.scale), w: t.w } : t,
    );
    const ordered = [...live.filter((t) => t.w === 1), ...live.filter((t) => t.w === -1)];
    let out = ordered[0].x;
    for (const t of ordered.slice(1)) out = this.addSub(t.w === 1 ? 'add' : 'sub', out, t.x);
    if (bias !== 0) out = this.addConst(out, bias);
    return relinearizeSum ? this.relinearize(out) : out;
  }

  /**
   * Rows r = 0 … m−1 of Σ_j w[r·k + j]·x_j + bias[r] (k = xs.length), each as {@link linear} leaves it (on the
   * canonical scale of the level below, relinearized), for operands of one level, scale and degree: one
   * `mul_matrix` for the block, then each row's bias, relinearization and rescale. Null when the operands differ in
   * level, scale or degree, or a row does not fit in a step (emit the rows with linear).
   */
  linearBlock(xs: readonly Sym[], weights: ArrayLike<number>, bias: ArrayLike<number>): Sym[] | null {
    const x = xs[0];
    if (!xs.every((a) => a.level === x.level && a.scale === x.scale && a.degree === x.degree)) return null;
    if (x.level === 0) return null;
    const scale = this.chain.scaleAt(x.level) * this.chain.scaleAt(x.level);
    const ys = this.mulMatrix(xs, weights, scale / x.scale);
    if (!ys) return null;
    return ys.map((y, r) => {
      const out = bias[r] !== 0 ? this.addConst(y, bias[r]) : y;
      return this.rescale(this.relinearize(out));
    });
  }

  /**
   * Σ w_i·x_i + bias, rescaled onto the canonical scale of the level below the lowest operand: each constant is
   * encoded at S_ℓ²/s_i so every product has the accumulator's scale S_ℓ² whatever the operand's own scale.
   * Operands of degree 2 (unrelinearized products) and of degree 1 go to one accumulator per degree, added at
   * the end: one relinearization of the sum instead of one per product.
   */
  linear(terms: readonly Term[], bias: number, relinearizeSum = true): Sym {
    if (terms.length === 0) throw new Error(`compiler: empty linear combination in layer ${this.layer}`);
    let live = terms.filter((t) => t.w !== 0);
    if (live.length === 0) live = [{ x: terms[0].x, w: 0 }];
    const unit = this.#unitCombination(live, bias, relinearizeSum);
    if (unit) return unit;
    const level = Math.min(...live.map((t) => t.x.level));
    let scale = this.chain.scaleAt(level) * this.chain.scaleAt(level);
    let out: Sym | undefined;
    for (const degree of [2, 1]) {
      const group = live.filter((t) => t.x.degree === degree);
      if (group.length === 0) continue;
      // The accumulator starts from the group's lowest operand: mul_then_add adds only operands at its level or
      // above.
      let first = 0;
      group.forEach((t, i) => {
        if (t.x.level < group[first].x.level) first = i;
      });
      const acc = this.mulConst(group[first].x, group[first].w, scale / group[first].x.scale);
      scale = acc.scale;
      group.forEach((t, i) => {
        if (i !== first) this.mulThenAdd(t.x, t.w, acc, acc.scale / t.x.scale);
      });
      out = out ? this.addSub('add', out, acc) : acc;
    }
    if (!out) throw new Error(`compiler: operands of degree above 2 in layer ${this.layer}`);
    if (bias !== 0) out = this.addConst(out, bias);
    if (relinearizeSum) out = this.relinearize(out);
    return this.rescale(out);
  }
}
