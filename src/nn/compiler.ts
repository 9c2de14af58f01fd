/**
 * The HE compiler: lowers a layer model (`layers.ts`) to an {@link HeProgram}. It attaches polynomial
 * approximations where needed, measures the multiplicative depth with a dry run, picks the smallest 128-bit-secure
 * parameters that fit it, then emits the instructions with exact levels and scales (EVA-style: a rescale after
 * every multiplicative layer, constants encoded at exactly the scale that makes a sum land on the canonical scale
 * of the next level, relinearization placed by a cost model) and inserts a `free` after every value's last use.
 *
 * Packings: `batch` (CryptoNets): slot s of every ciphertext belongs to image s; each input element is one
 * ciphertext and every layer is scalar arithmetic on ciphertexts (`mul_const` / `mul_then_add`). `latency` (LoLa
 * style): one image in one ciphertext, its values repeated with a power-of-two period; every linear layer is a
 * matrix applied by the diagonal method with baby-step giant-step and hoisted baby rotations, every element-wise
 * layer acts on all slots at once. With `encryptWeights` (latency only) the diagonals and biases are ciphertexts
 * of the model owner.
 */
import { Parameters, type ParametersLiteral } from '../ckks/parameters.ts';
import { maxLogQP128 } from '../ckks/security.ts';
import { galoisElementForRotation } from '../ring/galois.ts';
import { MAX_PAGES, PAGE_BYTES } from '../ring/kernels.ts';
import { nttFriendlyPrimes } from '../ring/primes.ts';
import { assertInteger, check } from '../util/assert.ts';
import { InvalidArgumentError, ResourceError, SecurityError } from '../util/errors.ts';
import {
  type AccuracyCost,
  type ApproximationOptions,
  type CalibrationData,
  type Substitution,
  approximateModel,
} from './approx.ts';
import type { ChebyshevSeries } from './chebyshev.ts';
import { UnsupportedModelError } from './errors.ts';
import type { AvgPoolLayer, Layer, LayerModel, MaxPoolLayer } from './layers.ts';
import { shapeSize } from './onnx/graph.ts';
import {
  type HeInstruction,
  type HeOp,
  type HeProgram,
  type InputDescriptor,
  type LayerSummary,
  type OutputDescriptor,
  type PlaintextDescriptor,
  PROGRAM_FORMAT,
  PROGRAM_VERSION,
} from './program.ts';
import { simulate } from './simulate.ts';

/**
 * Where relinearizations go after a squaring that feeds a linear layer: `lazy` relinearizes the linear layer's
 * sums (fewer key switches, but every multiply-add then touches three polynomials), `eager` the squares, `auto`
 * picks the cheaper by a cost model of the two.
 *
 * @example
 * ```ts
 * const policy: RelinearizationPolicy = 'auto';
 * ```
 */
export type RelinearizationPolicy = 'auto' | 'lazy' | 'eager';

/**
 * Options of {@link compileModel}.
 *
 * @example
 * ```ts
 * compileModel(model, { mode: 'batch', calibration: { images, count: 256 }, precisionBits: 20 });
 * ```
 */
export interface CompileOptions {
  /** `batch` (default): one image per slot; `latency`: one image per ciphertext(s). */
  readonly mode?: 'batch' | 'latency';
  /**
   * Latency packing only: the weights are ciphertexts too (encrypted by the model owner under the client's public
   * key), so products are ciphertext × ciphertext.
   */
  readonly encryptWeights?: boolean;
  /** Images per pass in batch mode (default: all slots). */
  readonly batchSize?: number;
  /** Bits of precision asked of every value (default 20: a 2^30 scale; above 24 two primes per level, 2^60). */
  readonly precisionBits?: number;
  readonly relinearize?: RelinearizationPolicy;
  /** Sample images: calibrate the approximations and bound value magnitudes. */
  readonly calibration?: CalibrationData;
  /** Passed to `approximateModel` for layers without an approximation (degree, intervals, margin, maxPool …). */
  readonly approximation?: Omit<ApproximationOptions, 'calibration'>;
  /** Smallest and largest log2 ring degree to consider (default 13 and 16). */
  readonly minLogN?: number;
  readonly maxLogN?: number;
  /**
   * Input values the program must accept (default: the calibration images' range widened by 10 %, else [−1, 1]).
   */
  readonly inputRange?: readonly [number, number];
  /** Program name for reports (default `model`). */
  readonly name?: string;
  /** Size limits checked before anything large is allocated (defaults: {@link DEFAULT_COMPILE_LIMITS}). */
  readonly limits?: Partial<CompileLimits>;
  /**
   * Latency packing: mark the plaintext weights `encodeOnUse`, so the server encodes each one from the program's
   * constants right before the instruction that reads it and frees it after (encoding time traded for memory).
   * `'auto'` (default): only when keeping them all encoded would exceed `limits.memoryBytes`.
   */
  readonly lazyPlaintexts?: boolean | 'auto';
}

/**
 * Limits {@link compileModel} checks before emitting: an up-front estimate per layer (instructions, constants,
 * slots) before any emission, the server's memory (live ciphertexts, plaintext weights, evaluation keys) after the
 * depth probe, and the instruction and constant counts again while emitting. Past a limit it throws a
 * `ResourceError` naming the layer, the figure and the limit, instead of letting V8 abort or the kernel arena fail
 * halfway through inference.
 *
 * @example
 * ```ts
 * compileModel(model, { mode: 'latency', limits: { memoryBytes: 2 ** 31 } });
 * ```
 */
export interface CompileLimits {
  /** Instructions of the program body (each takes about 300 bytes of JavaScript heap). */
  readonly instructions: number;
  /** Float64 constants of the program (scalar weights, plaintext and encrypted-weight vectors). */
  readonly constants: number;
  /**
   * Bytes the server may hold at once: live ciphertexts, the plaintext weights (all of them, or the one in use when
   * they are encoded on use) and the evaluation keys. Default: 7/8 of the 4 GiB WebAssembly kernel arena (the rest
   * is headroom for key-switching scratch and allocator fragmentation: CNTK mnist-8 in latency packing, estimated
   * at 3.86 GiB, failed in the arena at 3.91 GB in use). A caller that executes through the tiered runtime, which
   * spills to slower tiers, may raise it.
   */
  readonly memoryBytes: number;
}

/**
 * The default {@link CompileLimits}: 5 million instructions (≈ 1.5 GB of heap, frees included, within Node's
 * default 4 GiB heap), 2^27 constants (1 GiB of float64), 3.5 GiB of server memory (7/8 of the kernel arena).
 *
 * @example
 * ```ts
 * compileModel(model, { limits: { ...DEFAULT_COMPILE_LIMITS, memoryBytes: 16 * 2 ** 30 } });
 * ```
 */
export const DEFAULT_COMPILE_LIMITS: Readonly<CompileLimits> = Object.freeze({
  instructions: 5_000_000,
  constants: 2 ** 27,
  memoryBytes: (MAX_PAGES * PAGE_BYTES * 7) / 8,
});

/**
 * Sizes of a compiled program: the up-front estimate, what was emitted and what the server will hold.
 *
 * @example
 * ```ts
 * const { resources } = compileModel(model, { mode: 'latency' });
 * console.log(resources.serverBytes / 2 ** 30, 'GiB', resources.lazyPlaintexts);
 * ```
 */
export interface ProgramResources {
  /** Instructions the up-front estimate predicted (before frees). */
  readonly estimatedInstructions: number;
  /** Instructions emitted (before frees). */
  readonly instructions: number;
  /** Float64 constants of the program. */
  readonly constants: number;
  /** Largest sum of live ciphertext bytes (inputs and encrypted weights included). */
  readonly peakCiphertextBytes: number;
  /** Bytes of all plaintext weights once encoded. */
  readonly plaintextBytes: number;
  /** Bytes of the evaluation keys the program uses. */
  readonly keyBytes: number;
  /** Bytes the server holds at its peak: ciphertexts, plaintexts (all, or the one in use) and keys. */
  readonly serverBytes: number;
  /** The plaintext weights are marked `encodeOnUse`. */
  readonly lazyPlaintexts: boolean;
}

/**
 * What {@link compileModel} returns: the program, the parameters it chose, the model as compiled (with its
 * approximations) and the substitutions made.
 *
 * @example
 * ```ts
 * const { program, params, substitutions } = compileModel(model, { calibration });
 * ```
 */
export interface CompileResult {
  readonly program: HeProgram;
  readonly params: Parameters;
  readonly model: LayerModel;
  readonly substitutions: readonly Substitution[];
  readonly approximationCost: AccuracyCost | undefined;
  readonly resources: ProgramResources;
}

/** A ciphertext value during emission. */
interface Sym {
  readonly id: number;
  readonly level: number;
  readonly scale: number;
  readonly degree: number;
}

type Lazy = () => Sym;

/** Scales and rescale divisors of a modulus chain (real parameters, or the depth probe's stand-in). */
interface Chain {
  readonly top: number;
  scaleAt(level: number): number;
  /** Primes a rescale at `level` divides by, in division order. */
  rescalePrimes(level: number): readonly number[];
  bytes(level: number, degree: number): number;
  /** Galois element of a left rotation by `steps`. */
  galois(steps: number): number;
}

const PROBE_TOP = 1 << 20;

const probeChain: Chain = {
  top: PROBE_TOP,
  scaleAt: () => 2 ** 30,
  rescalePrimes: () => [2 ** 30],
  bytes: () => 1,
  galois: (steps) => steps,
};

function chainOf(params: Parameters): Chain {
  return {
    top: params.depth,
    scaleAt: (level) => params.scaleAtLevel[level],
    rescalePrimes: (level) => {
      const limbs = params.limbsAtLevel(level);
      const primes: number[] = [];
      for (let d = 0; d < params.primesPerLevel; d++) primes.push(params.qPrimes[limbs - d - 1]);
      return primes;
    },
    bytes: (level, degree) => params.ciphertextBytes(level, degree),
    galois: (steps) => galoisElementForRotation(steps, params.logN),
  };
}

/** Relative cost units (one multiply-add over one limb of one polynomial ≈ 1) for the relinearization policy. */
const COST = { mulAddPerPolyLimb: 1, rescalePerPolyLimb: 6, relinPerLimb: 70 } as const;

/** A linear term: coefficient × value. */
interface Term {
  readonly x: Sym;
  readonly w: number;
}

/**
 * The program's float64 constants while emitting: a growable Float64Array, because a JavaScript number array
 * cannot grow past about 2^27 elements (V8 aborts the process when it tries) and latency packing stores every
 * plaintext diagonal here.
 */
class ConstantStore {
  #data = new Float64Array(1024);
  length = 0;

  #reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.#data.length) return;
    const grown = new Float64Array(Math.max(need, Math.ceil(this.#data.length * 1.5)));
    grown.set(this.#data.subarray(0, this.length));
    this.#data = grown;
  }

  append(value: number): void {
    this.#reserve(1);
    this.#data[this.length++] = value;
  }

  appendAll(values: ArrayLike<number>): void {
    this.#reserve(values.length);
    if (values instanceof Float64Array) this.#data.set(values, this.length);
    else for (let i = 0; i < values.length; i++) this.#data[this.length + i] = values[i];
    this.length += values.length;
  }

  /** The constants, exactly `length` of them (the store's spare capacity is dropped). */
  toFloat64Array(): Float64Array {
    return this.#data.slice(0, this.length);
  }
}

/** The baby-step count n1 (a power of two ≤ d) minimizing rotations: hoisted baby rotations cost about half a giant one. */
function babyStepCount(ks: readonly number[], d: number): number {
  let best = { n1: 1, cost: Number.POSITIVE_INFINITY };
  for (let n1 = 1; n1 <= d; n1 *= 2) {
    const babies = new Set(ks.map((k) => k % n1));
    const giants = new Set(ks.map((k) => Math.floor(k / n1)));
    const cost = 0.5 * (babies.size - (babies.has(0) ? 1 : 0)) + (giants.size - (giants.has(0) ? 1 : 0));
    if (cost < best.cost) best = { n1, cost };
  }
  return best.n1;
}

class Emitter {
  readonly chain: Chain;
  readonly instructions: HeInstruction[] = [];
  readonly constants = new ConstantStore();
  readonly #constantIndex = new Map<number, number>();
  nextId = 0;
  layer = '';
  minLevel: number;
  usesRelin = false;
  /** The depth probe: plaintext and weight vectors are registered but their values are neither built nor stored. */
  readonly dryRun: boolean;
  readonly #limits: Pick<CompileLimits, 'instructions' | 'constants'>;

  constructor(chain: Chain, limits: Pick<CompileLimits, 'instructions' | 'constants'>, dryRun = false) {
    this.chain = chain;
    this.minLevel = chain.top;
    this.#limits = limits;
    this.dryRun = dryRun;
  }

  /**
   * Backstop of the up-front estimates: stops the emission before the instruction list or the constants outgrow
   * their limits (past them V8 aborts the process instead of throwing).
   */
  #room(instructions: number, constants: number): void {
    if (this.instructions.length + instructions > this.#limits.instructions) {
      throw new ResourceError(
        `compileModel: layer '${this.layer}' takes the program past ${this.#limits.instructions.toLocaleString('en-US')} ` +
          'instructions (limits.instructions; each takes about 300 bytes of JavaScript heap): use latency packing, ' +
          'lower polynomial degrees or a smaller model',
      );
    }
    if (this.constants.length + constants > this.#limits.constants) {
      throw new ResourceError(
        `compileModel: layer '${this.layer}' takes the program's constants past ${this.#limits.constants.toLocaleString('en-US')} ` +
          'float64 values (limits.constants): the plaintext weight vectors do not fit in one program',
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
      this.#room(0, 1);
      index = this.constants.length;
      this.constants.append(key);
      this.#constantIndex.set(key, index);
    }
    return index;
  }

  #push(op: HeOp, args: Sym[], out: Sym, extra: Partial<HeInstruction> = {}): Sym {
    this.#room(1, 0);
    this.instructions.push({
      op,
      args: args.map((a) => a.id),
      out: [out.id],
      level: out.level,
      scale: out.scale,
      degree: out.degree,
      bytes: {
        args: args.map((a) => this.chain.bytes(a.level, a.degree)),
        out: this.chain.bytes(out.level, out.degree),
      },
      keys: [],
      layer: this.layer,
      ...extra,
    });
    return out;
  }

  mulConst(x: Sym, c: number, constantScale: number): Sym {
    const out = this.fresh(x.level, x.scale * constantScale, x.degree);
    return this.#push('mul_const', [x], out, { constant: this.constant(c), constantScale });
  }

  /** acc += x · c in place; acc keeps its id, level and scale. */
  mulThenAdd(x: Sym, c: number, acc: Sym, constantScale: number): void {
    if (acc.level > x.level || acc.degree !== x.degree) {
      throw new Error(
        `compiler: mul_then_add operand at level ${x.level}/degree ${x.degree} into ${acc.level}/${acc.degree}`,
      );
    }
    this.#room(1, 0);
    this.instructions.push({
      op: 'mul_then_add',
      args: [x.id, acc.id],
      out: [acc.id],
      level: acc.level,
      scale: acc.scale,
      degree: acc.degree,
      bytes: {
        args: [this.chain.bytes(x.level, x.degree), this.chain.bytes(acc.level, acc.degree)],
        out: this.chain.bytes(acc.level, acc.degree),
      },
      keys: [],
      layer: this.layer,
      constant: this.constant(c),
      constantScale,
    });
  }

  addConst(x: Sym, c: number): Sym {
    const out = this.fresh(x.level, x.scale, x.degree);
    return this.#push('add_const', [x], out, { constant: this.constant(c) });
  }

  readonly plaintexts: PlaintextDescriptor[] = [];
  readonly rotations = new Map<number, number>();
  /** Weights as model-owner ciphertexts instead of plaintexts (latency packing). */
  encryptWeights = false;
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
    this.#room(0, values.length);
    this.constants.appendAll(values);
    return offset;
  }

  /** Registers a plaintext vector (replicated over the slots with period values.length); returns its id. */
  plaintext(values: ArrayLike<number>, level: number, scale: number): number {
    const id = this.plaintexts.length;
    const offset = this.#store(values);
    this.plaintexts.push({
      id,
      level,
      scale,
      bytes: this.chain.bytes(level, 0),
      offset,
      length: values.length,
      replicate: true,
    });
    return id;
  }

  mulPlain(x: Sym, plaintext: number): Sym {
    const pt = this.plaintexts[plaintext];
    const out = this.fresh(Math.min(x.level, pt.level), x.scale * pt.scale, x.degree);
    return this.#push('mul_plain', [x], out, { plaintext });
  }

  addPlain(x: Sym, plaintext: number): Sym {
    const out = this.fresh(x.level, x.scale, x.degree);
    return this.#push('add_plain', [x], out, { plaintext });
  }

  #key(steps: number): string {
    const g = this.chain.galois(steps);
    this.rotations.set(steps, g);
    return `galois:${g}`;
  }

  rotate(x: Sym, steps: number): Sym {
    const out = this.fresh(x.level, x.scale, 1);
    return this.#push('rotate', [x], out, { steps: [steps], keys: [this.#key(steps)] });
  }

  /** One result per step, sharing one key-switching decomposition of x. */
  rotateHoisted(x: Sym, steps: readonly number[]): Sym[] {
    const outs = steps.map(() => this.fresh(x.level, x.scale, 1));
    const keys = steps.map((s) => this.#key(s));
    this.#room(1, 0);
    this.instructions.push({
      op: 'rotate_hoisted',
      args: [x.id],
      out: outs.map((o) => o.id),
      level: x.level,
      scale: x.scale,
      degree: 1,
      bytes: { args: [this.chain.bytes(x.level, 1)], out: this.chain.bytes(x.level, 1) },
      keys,
      layer: this.layer,
      steps: [...steps],
    });
    return outs;
  }

  /**
   * y = M·x + bias for a vector packed with period `period` (replicated over the slots), M given by its entries
   * (`linear` visits every (row i, column j, weight w) and returns the bias): the diagonal method with baby-step
   * giant-step — baby rotations hoisted, diagonals pre-rotated by the giant step, one rotation per giant step —
   * then one rescale onto the canonical scale. Entries are grouped by diagonal and each pre-rotated diagonal is
   * built only when it is stored, so no layer-sized set of dense diagonals is ever held (and a dry run builds none).
   */
  matrix(
    x: Sym,
    linear: (visit: (i: number, j: number, w: number) => void) => { bias: ArrayLike<number> },
    period: number,
  ): Sym {
    const d = period;
    // Diagonal k = (j − i) mod d as flat (row, weight) pairs.
    const entries = new Map<number, number[]>();
    const { bias } = linear((i, j, w) => {
      if (w === 0) return;
      const k = (j - i + d) % d;
      let list = entries.get(k);
      if (!list) entries.set(k, (list = []));
      list.push(i, w);
    });
    if (entries.size === 0) entries.set(0, []);
    const ks = [...entries.keys()].sort((a, b) => a - b);
    const n1 = babyStepCount(ks, d);
    const level = x.level;
    const ptScale = (this.chain.scaleAt(level) * this.chain.scaleAt(level)) / x.scale;
    const babySteps = [...new Set(ks.map((k) => k % n1))].filter((b) => b !== 0).sort((a, b) => a - b);
    const rotated = new Map<number, Sym>([[0, x]]);
    if (babySteps.length > 0) {
      this.rotateHoisted(x, babySteps).forEach((r, i) => {
        rotated.set(babySteps[i], r);
      });
    }
    let out: Sym | undefined;
    const giants = [...new Set(ks.map((k) => Math.floor(k / n1)))].sort((a, b) => a - b);
    const blank = this.dryRun ? new Float64Array(d) : undefined;
    for (const g of giants) {
      let partial: Sym | undefined;
      for (const k of ks) {
        if (Math.floor(k / n1) !== g) continue;
        const shift = g * n1;
        let pre = blank;
        if (pre === undefined) {
          pre = new Float64Array(d);
          const list = entries.get(k) as number[];
          for (let e = 0; e < list.length; e += 2) pre[(list[e] + shift) % d] += list[e + 1];
        }
        const source = rotated.get(k % n1) as Sym;
        const term = this.encryptWeights
          ? this.mulCt(source, this.weightInput(pre, level, ptScale))
          : this.mulPlain(source, this.plaintext(pre, level, ptScale));
        partial = partial ? this.addSub('add', partial, term) : term;
      }
      if (!partial) continue;
      if (g !== 0) partial = this.rotate(this.relinearize(partial), g * n1);
      out = out ? this.addSub('add', out, partial) : partial;
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

  mulCt(x: Sym, y: Sym): Sym {
    const out = this.fresh(Math.min(x.level, y.level), x.scale * y.scale, 2);
    return x.id === y.id ? this.#push('square', [x], out) : this.#push('mul_ct', [x, y], out);
  }

  addSub(op: 'add' | 'sub', x: Sym, y: Sym): Sym {
    const out = this.fresh(Math.min(x.level, y.level), x.scale, Math.max(x.degree, y.degree));
    return this.#push(op, [x, y], out);
  }

  relinearize(x: Sym): Sym {
    if (x.degree === 1) return x;
    this.usesRelin = true;
    const out = this.fresh(x.level, x.scale, 1);
    return this.#push('relinearize', [x], out, { keys: ['relin'] });
  }

  rescale(x: Sym): Sym {
    if (x.level === 0) {
      throw new Error(`compiler: rescale at level 0 in layer ${this.layer} (depth accounting is wrong)`);
    }
    let scale = x.scale;
    for (const q of this.chain.rescalePrimes(x.level)) scale /= q;
    const out = this.fresh(x.level - 1, scale, x.degree);
    return this.#push('rescale', [x], out);
  }

  /**
   * Σ w_i·x_i + bias, rescaled onto the canonical scale of the level below the lowest operand: each constant is
   * encoded at S_ℓ²/s_i so every product has the accumulator's scale S_ℓ² whatever the operand's own scale.
   */
  linear(terms: readonly Term[], bias: number, relinearizeSum = true): Sym {
    if (terms.length === 0) throw new Error(`compiler: empty linear combination in layer ${this.layer}`);
    let live = terms.filter((t) => t.w !== 0);
    if (live.length === 0) live = [{ x: terms[0].x, w: 0 }];
    const degree = Math.max(...live.map((t) => t.x.degree));
    // Mixed degrees cannot share an accumulator: relinearize the stragglers (does not happen in layer chains).
    if (live.some((t) => t.x.degree !== degree)) {
      live = live.map((t) => ({ x: this.relinearize(t.x), w: t.w }));
    }
    let level = Number.POSITIVE_INFINITY;
    let first = 0;
    live.forEach((t, i) => {
      if (t.x.level < level) {
        level = t.x.level;
        first = i;
      }
    });
    const target = this.chain.scaleAt(level) * this.chain.scaleAt(level);
    const head = live[first];
    const acc = this.mulConst(head.x, head.w, target / head.x.scale);
    for (let i = 0; i < live.length; i++) {
      if (i === first) continue;
      const t = live[i];
      this.mulThenAdd(t.x, t.w, acc, acc.scale / t.x.scale);
    }
    let out = bias !== 0 ? this.addConst(acc, bias) : acc;
    if (relinearizeSum) out = this.relinearize(out);
    return this.rescale(out);
  }

  /** Evaluates a Chebyshev series at `x` (plus optional extra linear terms in the final sum). */
  chebyshev(
    series: ChebyshevSeries,
    inputTerms: readonly Term[],
    extra: readonly Term[] = [],
    factor = 1,
  ): Sym {
    const c = series.coeffs;
    const alpha = 2 / (series.b - series.a);
    const beta = -(series.a + series.b) / (series.b - series.a);
    const largest = c.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const needed: number[] = [];
    for (let k = 1; k < c.length; k++) if (Math.abs(c[k]) > largest * 1e-13) needed.push(k);
    const t1 = this.linear(
      inputTerms.map((t) => ({ x: t.x, w: t.w * alpha })),
      beta,
    );
    const basis = new Map<number, Sym>([[1, t1]]);
    const get = (k: number): Sym => {
      const known = basis.get(k);
      if (known) return known;
      const m = 2 ** Math.floor(Math.log2(k - 1e-9));
      const n = k - m;
      const tm = get(m);
      const tn = get(n);
      // T_{m+n} = 2·T_m·T_n − T_{m−n}
      let p = this.relinearize(this.mulCt(tm, tn));
      p = this.addSub('add', p, p);
      if (m === n) p = this.addConst(p, -1);
      else {
        const low = get(m - n);
        this.mulThenAdd(low, -1, p, p.scale / low.scale);
      }
      const result = this.rescale(p);
      basis.set(k, result);
      return result;
    };
    const terms: Term[] = needed.map((k) => ({ x: get(k), w: c[k] * factor }));
    terms.push(...extra);
    if (terms.length === 0) terms.push({ x: t1, w: 0 });
    return this.linear(terms, (c[0] ?? 0) * factor);
  }
}

/** Layers reading each value (through reshapes). */
function consumers(model: LayerModel): Map<string, Layer[]> {
  const byInput = new Map<string, Layer[]>();
  for (const l of model.layers) {
    for (const name of l.inputs) {
      let list = byInput.get(name);
      if (!list) byInput.set(name, (list = []));
      list.push(l);
    }
  }
  const resolve = (name: string): Layer[] =>
    (byInput.get(name) ?? []).flatMap((l) => (l.kind === 'reshape' ? resolve(l.output) : [l]));
  const out = new Map<string, Layer[]>();
  for (const l of model.layers) out.set(l.output, resolve(l.output));
  return out;
}

/** Multiply-adds and outputs of a linear consumer, for the relinearization cost model. */
function linearWork(layer: Layer): { terms: number; outputs: number } | undefined {
  switch (layer.kind) {
    case 'dense':
      return { terms: layer.inFeatures * layer.outFeatures, outputs: layer.outFeatures };
    case 'conv': {
      const outputs = shapeSize(layer.shape);
      return {
        terms: outputs * (layer.inChannels / layer.group) * layer.kernel[0] * layer.kernel[1],
        outputs,
      };
    }
    case 'avgPool':
      return {
        terms: shapeSize(layer.shape) * layer.kernel[0] * layer.kernel[1],
        outputs: shapeSize(layer.shape),
      };
    case 'globalAvgPool':
      return { terms: 0, outputs: layer.shape[0] };
    default:
      return undefined;
  }
}

function memo(f: () => Sym): Lazy {
  let value: Sym | undefined;
  return () => {
    value ??= f();
    return value;
  };
}

/** Input indices of each pooling window (C order outputs; padding excluded). */
function poolWindows(layer: AvgPoolLayer | MaxPoolLayer, inShape: readonly number[]): number[][] {
  const [c, oh, ow] = layer.shape;
  const [, ih, iw] = inShape;
  const [kh, kw] = layer.kernel;
  const [sh, sw] = layer.strides;
  const [pt, pl] = layer.pads;
  const windows: number[][] = [];
  for (let ch = 0; ch < c; ch++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const window: number[] = [];
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - pt + ky;
          if (iy < 0 || iy >= ih) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - pl + kx;
            if (ix >= 0 && ix < iw) window.push((ch * ih + iy) * iw + ix);
          }
        }
        windows.push(window);
      }
    }
  }
  return windows;
}

/**
 * Visits the entries of a linear layer: output i = Σ w·input[j] over the visited (i, j, w) (C order, rows in
 * increasing i) + `bias[i]`. Average pooling (and max pooling replaced by averaging) divide by the window size the
 * simulator uses. Returns the bias and the number of outputs without building the rows, so size estimates walk
 * the layer in O(entries) without allocating them.
 */
function visitLinear(
  layer: Layer,
  inputShape: (layer: Layer) => readonly number[],
  visit: (i: number, j: number, w: number) => void,
): { bias: Float64Array; outputs: number } {
  const size = shapeSize(layer.shape);
  switch (layer.kind) {
    case 'dense': {
      const k = layer.inFeatures;
      for (let i = 0; i < layer.outFeatures; i++)
        for (let j = 0; j < k; j++) visit(i, j, layer.weight[i * k + j]);
      return { bias: layer.bias, outputs: layer.outFeatures };
    }
    case 'conv': {
      const [c, ih, iw] = inputShape(layer);
      const [, oh, ow] = layer.shape;
      const [kh, kw] = layer.kernel;
      const [sh, sw] = layer.strides;
      const [pt, pl] = layer.pads;
      const cpg = c / layer.group;
      const mpg = layer.outChannels / layer.group;
      const bias = new Float64Array(size);
      let i = 0;
      for (let o = 0; o < layer.outChannels; o++) {
        const g = Math.floor(o / mpg);
        for (let oy = 0; oy < oh; oy++) {
          for (let ox = 0; ox < ow; ox++) {
            for (let ci = 0; ci < cpg; ci++) {
              for (let ky = 0; ky < kh; ky++) {
                const iy = oy * sh - pt + ky;
                if (iy < 0 || iy >= ih) continue;
                for (let kx = 0; kx < kw; kx++) {
                  const ix = ox * sw - pl + kx;
                  if (ix < 0 || ix >= iw) continue;
                  visit(
                    i,
                    ((g * cpg + ci) * ih + iy) * iw + ix,
                    layer.weight[((o * cpg + ci) * kh + ky) * kw + kx],
                  );
                }
              }
            }
            bias[i++] = layer.bias[o];
          }
        }
      }
      return { bias, outputs: i };
    }
    case 'avgPool':
    case 'maxPool': {
      const divisor =
        layer.kind === 'avgPool' && layer.countIncludePad ? layer.kernel[0] * layer.kernel[1] : 0;
      const windows = poolWindows(layer, inputShape(layer));
      windows.forEach((window, i) => {
        for (const j of window) visit(i, j, 1 / (divisor || window.length));
      });
      return { bias: new Float64Array(size), outputs: windows.length };
    }
    case 'globalAvgPool': {
      const [c, ih, iw] = inputShape(layer);
      const spatial = ih * iw;
      for (let ch = 0; ch < c; ch++)
        for (let k = 0; k < spatial; k++) visit(ch, ch * spatial + k, 1 / spatial);
      return { bias: new Float64Array(c), outputs: c };
    }
    case 'affine': {
      const spatial = size / layer.shape[0];
      const bias = new Float64Array(size);
      for (let i = 0; i < size; i++) {
        const k =
          layer.broadcast === 'scalar' ? 0 : layer.broadcast === 'channel' ? Math.floor(i / spatial) : i;
        visit(i, i, layer.scale[k]);
        bias[i] = layer.shift[k];
      }
      return { bias, outputs: size };
    }
    default:
      throw new Error(`compiler: layer ${layer.name} (${layer.kind}) is not linear`);
  }
}

/** A linear layer as sparse rows: output i = Σ w·input[j] over `rows[i]` ([j, w] pairs, C order) + `bias[i]`. */
function linearRows(
  layer: Layer,
  inputShape: (layer: Layer) => readonly number[],
): { rows: [number, number][][]; bias: Float64Array } {
  const rows: [number, number][][] = [];
  const { bias, outputs } = visitLinear(layer, inputShape, (i, j, w) => {
    while (rows.length <= i) rows.push([]);
    rows[i].push([j, w]);
  });
  while (rows.length < outputs) rows.push([]);
  return { rows, bias };
}

/** Emits the batch-packed program body; returns the input and output symbols. */
function emitBatch(
  model: LayerModel,
  emitter: Emitter,
  policy: RelinearizationPolicy,
): { inputs: { sym: Sym; element: number; used: boolean }[]; outputs: Sym[] } {
  const chain = emitter.chain;
  const inSize = shapeSize(model.inputShape);
  const inputs = Array.from({ length: inSize }, (_, element) => ({
    sym: emitter.fresh(chain.top, chain.scaleAt(chain.top), 1),
    element,
    used: false,
  }));
  const tensors = new Map<string, Lazy[]>();
  tensors.set(
    model.inputName,
    inputs.map((input) => () => {
      input.used = true;
      return input.sym;
    }),
  );
  const readers = consumers(model);
  const shapes = new Map<string, readonly number[]>([[model.inputName, model.inputShape]]);
  for (const l of model.layers) shapes.set(l.output, l.shape);
  const inputShape = (layer: Layer): readonly number[] => {
    const shape = shapes.get(layer.inputs[0]);
    if (shape?.length !== 3) {
      throw new UnsupportedModelError(
        `layer '${layer.name}' (${layer.kind}) reads '${layer.inputs[0]}' of shape [${shape?.join(', ')}]: expected [C, H, W]`,
        { node: layer.sources[0], opType: layer.kind },
      );
    }
    return shape;
  };
  const tensor = (layer: Layer, k = 0): Lazy[] => {
    const t = tensors.get(layer.inputs[k]);
    if (!t)
      throw new InvalidArgumentError(
        `layer '${layer.name}' reads '${layer.inputs[k]}', which no layer writes`,
      );
    return t;
  };
  const inLayer = (name: string, f: () => Sym): Lazy =>
    memo(() => {
      const saved = emitter.layer;
      emitter.layer = name;
      try {
        return f();
      } finally {
        emitter.layer = saved;
      }
    });
  // Squares that keep degree 2 because their only consumer relinearizes its sums instead.
  const lazySquare = (layer: Layer, level: number): boolean => {
    if (policy === 'eager') return false;
    const next = readers.get(layer.output) ?? [];
    if (next.length !== 1) return false;
    const work = linearWork(next[0]);
    if (!work || next[0].kind === 'globalAvgPool') return work !== undefined && policy === 'lazy';
    if (policy === 'lazy') return true;
    const limbs = Math.max(1, level + 2);
    const elements = shapeSize(layer.shape);
    const lazyCost =
      work.terms * limbs * COST.mulAddPerPolyLimb +
      elements * limbs * COST.rescalePerPolyLimb +
      work.outputs * limbs * COST.relinPerLimb;
    const eagerCost = elements * limbs * COST.relinPerLimb;
    return lazyCost < eagerCost;
  };

  for (const layer of model.layers) {
    const size = shapeSize(layer.shape);
    const name = layer.name;
    let out: Lazy[];
    switch (layer.kind) {
      case 'reshape':
        out = tensor(layer);
        break;
      case 'conv':
      case 'dense':
      case 'globalAvgPool': {
        const x = tensor(layer);
        const { rows, bias } = linearRows(layer, inputShape);
        out = rows.map((row, i) =>
          inLayer(name, () =>
            emitter.linear(
              row.map(([j, w]) => ({ x: x[j](), w })),
              bias[i],
            ),
          ),
        );
        break;
      }
      case 'affine': {
        const x = tensor(layer);
        const spatial = size / layer.shape[0];
        out = x.map((xi, i) =>
          inLayer(name, () => {
            const k =
              layer.broadcast === 'scalar' ? 0 : layer.broadcast === 'channel' ? Math.floor(i / spatial) : i;
            const s = layer.scale[k];
            const shift = layer.shift[k];
            if (s === 1) return shift === 0 ? xi() : emitter.addConst(xi(), shift);
            return emitter.linear([{ x: xi(), w: s }], shift);
          }),
        );
        break;
      }
      case 'square': {
        const x = tensor(layer);
        let lazy: boolean | undefined;
        out = x.map((xi) =>
          inLayer(name, () => {
            const v = emitter.relinearize(xi());
            const squared = emitter.rescale(emitter.mulCt(v, v));
            lazy ??= lazySquare(layer, squared.level);
            return lazy ? squared : emitter.relinearize(squared);
          }),
        );
        break;
      }
      case 'binary': {
        const x = tensor(layer, 0);
        const y = tensor(layer, 1);
        out = x.map((xi, i) =>
          inLayer(name, () => {
            const a = xi();
            const b = y[i]();
            if (layer.op === 'mul') {
              const p = emitter.mulCt(emitter.relinearize(a), emitter.relinearize(b));
              return emitter.relinearize(emitter.rescale(p));
            }
            const aligned =
              a.level === b.level && a.degree === b.degree && Math.abs(a.scale / b.scale - 1) < 2 ** -40;
            if (aligned) return emitter.addSub(layer.op, a, b);
            return emitter.linear(
              [
                { x: a, w: 1 },
                { x: b, w: layer.op === 'add' ? 1 : -1 },
              ],
              0,
            );
          }),
        );
        break;
      }
      case 'activation': {
        const approx = layer.approx;
        if (!approx) {
          throw new UnsupportedModelError(
            `layer '${name}' (${layer.fn}) has no polynomial approximation: pass calibration images`,
            { node: layer.sources[0], opType: layer.fn },
          );
        }
        const x = tensor(layer);
        out = x.map((xi) =>
          inLayer(name, () => emitter.chebyshev(approx, [{ x: emitter.relinearize(xi()), w: 1 }])),
        );
        break;
      }
      case 'avgPool':
      case 'maxPool': {
        const x = tensor(layer);
        const approx = layer.kind === 'maxPool' ? layer.approx : undefined;
        if (layer.kind === 'maxPool' && !approx) {
          throw new UnsupportedModelError(
            `layer '${name}' (MaxPool) has no approximation: pass calibration images or maxPool: 'average'`,
            { node: layer.sources[0], opType: 'MaxPool' },
          );
        }
        if (approx?.method !== 'polynomial') {
          const { rows } = linearRows(layer, inputShape);
          out = rows.map((row) =>
            inLayer(name, () =>
              emitter.linear(
                row.map(([j, w]) => ({ x: x[j](), w })),
                0,
              ),
            ),
          );
          break;
        }
        const abs = approx.abs;
        out = poolWindows(layer, inputShape(layer)).map((window) =>
          inLayer(name, () =>
            polynomialMax(
              emitter,
              window.map((j) => emitter.relinearize(x[j]())),
              abs,
            ),
          ),
        );
        break;
      }
    }
    if (out.length !== size && layer.kind !== 'reshape') {
      throw new Error(`compiler: layer ${name} produced ${out.length} values, expected ${size}`);
    }
    tensors.set(layer.output, out);
  }
  const final = tensors.get(model.outputName);
  if (!final) throw new InvalidArgumentError(`output '${model.outputName}' is written by no layer`);
  const outputs = final.map((v) => v());
  return { inputs, outputs };
}

/**
 * Emits the latency-packed program body: the image is one ciphertext (its C-order values in slots 0 … size−1,
 * zero-padded to `period` and repeated over all slots), every linear layer is one {@link Emitter.matrix}, every
 * element-wise layer acts on all slots at once.
 */
function emitLatency(model: LayerModel, emitter: Emitter, period: number): { input: Sym; output: Sym } {
  const chain = emitter.chain;
  const input = emitter.fresh(chain.top, chain.scaleAt(chain.top), 1);
  const values = new Map<string, Sym>([[model.inputName, input]]);
  const shapes = new Map<string, readonly number[]>([[model.inputName, model.inputShape]]);
  for (const l of model.layers) shapes.set(l.output, l.shape);
  const inputShape = (layer: Layer): readonly number[] => {
    const shape = shapes.get(layer.inputs[0]);
    if (shape?.length !== 3) {
      throw new UnsupportedModelError(
        `layer '${layer.name}' (${layer.kind}) reads '${layer.inputs[0]}' of shape [${shape?.join(', ')}]: expected [C, H, W]`,
        { node: layer.sources[0], opType: layer.kind },
      );
    }
    return shape;
  };
  for (const layer of model.layers) {
    const x = values.get(layer.inputs[0]);
    if (!x)
      throw new InvalidArgumentError(
        `layer '${layer.name}' reads '${layer.inputs[0]}', which no layer writes`,
      );
    emitter.layer = layer.name;
    let y: Sym;
    switch (layer.kind) {
      case 'reshape':
        y = x;
        break;
      case 'affine':
        if (layer.scale.every((v) => v === 1)) {
          const { bias } = visitLinear(layer, inputShape, () => {});
          y = emitter.addPlain(x, emitter.plaintext(padTo(bias, period), x.level, x.scale));
          break;
        }
        y = emitter.matrix(emitter.relinearize(x), (visit) => visitLinear(layer, inputShape, visit), period);
        break;
      case 'conv':
      case 'dense':
      case 'avgPool':
      case 'globalAvgPool': {
        y = emitter.matrix(emitter.relinearize(x), (visit) => visitLinear(layer, inputShape, visit), period);
        break;
      }
      case 'maxPool': {
        if (layer.approx?.method !== 'average') {
          throw new UnsupportedModelError(
            `layer '${layer.name}' (MaxPool): latency packing supports MaxPool only replaced by averaging ` +
              "(approximation maxPool: 'average'); use batch packing for the polynomial max",
            { node: layer.sources[0], opType: 'MaxPool' },
          );
        }
        y = emitter.matrix(emitter.relinearize(x), (visit) => visitLinear(layer, inputShape, visit), period);
        break;
      }
      case 'square': {
        const v = emitter.relinearize(x);
        y = emitter.relinearize(emitter.rescale(emitter.mulCt(v, v)));
        break;
      }
      case 'binary': {
        const z = values.get(layer.inputs[1]);
        if (!z)
          throw new InvalidArgumentError(
            `layer '${layer.name}' reads '${layer.inputs[1]}', which no layer writes`,
          );
        if (layer.op === 'mul') {
          y = emitter.relinearize(
            emitter.rescale(emitter.mulCt(emitter.relinearize(x), emitter.relinearize(z))),
          );
        } else if (
          x.level === z.level &&
          x.degree === z.degree &&
          Math.abs(x.scale / z.scale - 1) < 2 ** -40
        ) {
          y = emitter.addSub(layer.op, x, z);
        } else {
          y = emitter.linear(
            [
              { x, w: 1 },
              { x: z, w: layer.op === 'add' ? 1 : -1 },
            ],
            0,
          );
        }
        break;
      }
      case 'activation': {
        if (!layer.approx) {
          throw new UnsupportedModelError(
            `layer '${layer.name}' (${layer.fn}) has no polynomial approximation: pass calibration images`,
            { node: layer.sources[0], opType: layer.fn },
          );
        }
        y = emitter.chebyshev(layer.approx, [{ x: emitter.relinearize(x), w: 1 }]);
        break;
      }
    }
    values.set(layer.output, y);
  }
  const output = values.get(model.outputName);
  if (!output) throw new InvalidArgumentError(`output '${model.outputName}' is written by no layer`);
  emitter.layer = '';
  return { input, output: emitter.relinearize(output) };
}

function padTo(values: ArrayLike<number>, length: number): Float64Array {
  const out = new Float64Array(length);
  for (let i = 0; i < values.length; i++) out[i] = values[i];
  return out;
}

/** The pairwise max tree of the simulator: max(a, b) = (a+b)/2 + p(a−b)/2. */
function polynomialMax(emitter: Emitter, values: Sym[], abs: ChebyshevSeries): Sym {
  let v = values;
  while (v.length > 1) {
    const next: Sym[] = [];
    for (let i = 0; i + 1 < v.length; i += 2) {
      const a = v[i];
      const b = v[i + 1];
      next.push(
        emitter.chebyshev(
          abs,
          [
            { x: a, w: 1 },
            { x: b, w: -1 },
          ],
          [
            { x: a, w: 0.5 },
            { x: b, w: 0.5 },
          ],
          0.5,
        ),
      );
    }
    if (v.length % 2 === 1) next.push(v[v.length - 1]);
    v = next;
  }
  return v[0];
}

// -----------------------------------------------------------------------------------------------------------
// Size estimates (before emission) and the server's memory (after the depth probe)

/** Instructions {@link Emitter.chebyshev} emits for one evaluation of `series` (same basis recursion). */
function chebyshevInstructions(series: ChebyshevSeries, inputTerms: number, extraTerms = 0): number {
  const c = series.coeffs;
  const largest = c.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const basis = new Set<number>([1]);
  const get = (k: number): void => {
    if (basis.has(k)) return;
    const m = 2 ** Math.floor(Math.log2(k - 1e-9));
    get(m);
    get(k - m);
    if (m !== k - m) get(m - (k - m));
    basis.add(k);
  };
  let needed = 0;
  for (let k = 1; k < c.length; k++) {
    if (Math.abs(c[k]) > largest * 1e-13) {
      needed++;
      get(k);
    }
  }
  // t1: the input terms, the shift, the rescale; each further T_k: product, relinearize, doubling, the T_{m−n}
  // correction, rescale; then the final sum and its rescale.
  return inputTerms + 2 + 5 * (basis.size - 1) + Math.max(1, needed + extraTerms) + 2;
}

/** One layer's share of the program, estimated before emission. */
interface LayerEstimate {
  readonly layer: Layer;
  readonly instructions: number;
  readonly constants: number;
  readonly plaintexts: number;
  /** What the figures are made of, for messages. */
  readonly detail: string;
}

/** Per-layer estimates of instructions and constants (plaintext or encrypted-weight vectors) for a packing. */
function estimateLayers(model: LayerModel, packing: 'batch' | 'latency', period: number): LayerEstimate[] {
  const shapes = new Map<string, readonly number[]>([[model.inputName, model.inputShape]]);
  for (const l of model.layers) shapes.set(l.output, l.shape);
  const inputShape = (layer: Layer): readonly number[] => {
    const shape = shapes.get(layer.inputs[0]);
    if (shape?.length !== 3) {
      throw new UnsupportedModelError(
        `layer '${layer.name}' (${layer.kind}) reads '${layer.inputs[0]}' of shape [${shape?.join(', ')}]: expected [C, H, W]`,
        { node: layer.sources[0], opType: layer.kind },
      );
    }
    return shape;
  };
  const estimates: LayerEstimate[] = [];
  for (const layer of model.layers) {
    const size = shapeSize(layer.shape);
    let instructions = 0;
    let constants = 0;
    let plaintexts = 0;
    let detail = '';
    const linear =
      layer.kind === 'conv' ||
      layer.kind === 'dense' ||
      layer.kind === 'avgPool' ||
      layer.kind === 'globalAvgPool' ||
      (layer.kind === 'maxPool' && layer.approx?.method !== 'polynomial') ||
      (layer.kind === 'affine' && packing === 'latency' && !layer.scale.every((v) => v === 1));
    if (linear && packing === 'latency') {
      const used = new Uint8Array(period);
      const { bias } = visitLinear(layer, inputShape, (i, j, w) => {
        if (w !== 0) used[(j - i + period) % period] = 1;
      });
      const ks: number[] = [];
      for (let k = 0; k < period; k++) if (used[k] === 1) ks.push(k);
      if (ks.length === 0) ks.push(0);
      const n1 = babyStepCount(ks, period);
      const giants = new Set(ks.map((k) => Math.floor(k / n1))).size;
      const hasBias = Array.prototype.some.call(bias, (b: number) => b !== 0);
      plaintexts = ks.length + (hasBias ? 1 : 0);
      constants = plaintexts * period;
      instructions = 1 + 3 * ks.length + 3 * giants + 3;
      detail = `${ks.length.toLocaleString('en-US')} diagonals of ${period.toLocaleString('en-US')} slots`;
    } else if (linear) {
      let terms = 0;
      const { outputs } = visitLinear(layer, inputShape, (_i, _j, w) => {
        if (w !== 0) terms++;
      });
      instructions = terms + 3 * outputs;
      detail = `${terms.toLocaleString('en-US')} multiply-adds into ${outputs.toLocaleString('en-US')} ciphertexts`;
    } else {
      const copies = packing === 'batch' ? size : 1;
      switch (layer.kind) {
        case 'reshape':
          break;
        case 'affine':
          instructions = 3 * copies;
          if (packing === 'latency') {
            plaintexts = 1;
            constants = period;
          }
          break;
        case 'square':
        case 'binary':
          instructions = 4 * copies;
          break;
        case 'activation':
          if (layer.approx !== undefined) {
            instructions = copies * (1 + chebyshevInstructions(layer.approx, 1));
            detail = `a degree-${layer.approx.coeffs.length - 1} polynomial on ${copies.toLocaleString('en-US')} ciphertexts`;
          }
          break;
        case 'maxPool':
          if (layer.approx?.method === 'polynomial') {
            const perMax = chebyshevInstructions(layer.approx.abs, 2, 2);
            for (const window of poolWindows(layer, inputShape(layer)))
              instructions += window.length + Math.max(0, window.length - 1) * perMax;
            detail = `${size.toLocaleString('en-US')} polynomial max trees of degree ${layer.approx.abs.coeffs.length - 1}`;
          }
          break;
        default:
          break;
      }
    }
    estimates.push({ layer, instructions, constants, plaintexts, detail });
  }
  return estimates;
}

function describeLayer(layer: Layer): string {
  return `layer '${layer.name}' (${layer.kind}, ONNX node ${layer.sources.map((s) => `'${s}'`).join('+') || '—'})`;
}

function figure(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/**
 * Throws a ResourceError at the first layer whose running total of estimated instructions or constants passes its
 * limit. Runs before any emission, so a model far beyond the limits fails in milliseconds, not after minutes of
 * emission or a V8 abort.
 */
function checkEstimates(estimates: readonly LayerEstimate[], limits: CompileLimits, packing: string): number {
  let instructions = 0;
  let constants = 0;
  for (const e of estimates) {
    instructions += e.instructions;
    constants += e.constants;
    const what = e.detail === '' ? '' : ` (${e.detail})`;
    if (instructions > limits.instructions) {
      throw new ResourceError(
        `compileModel (${packing} packing): ${describeLayer(e.layer)} brings the program to about ` +
          `${figure(instructions)} instructions, ${figure(e.instructions)} of them its own${what}, over the limit of ` +
          `${figure(limits.instructions)} (limits.instructions; each takes about 300 bytes of JavaScript heap)` +
          (packing === 'batch'
            ? ': use latency packing, lower polynomial degrees or a smaller model'
            : ': use lower polynomial degrees or a smaller model'),
      );
    }
    if (constants > limits.constants) {
      throw new ResourceError(
        `compileModel (${packing} packing): ${describeLayer(e.layer)} brings the program's constants to ` +
          `${figure(constants)} float64 values (${gib(constants * 8)}), ${figure(e.constants)} of them its own${what}, ` +
          `over the limit of ${figure(limits.constants)} (limits.constants): the layer's plaintext diagonals do not fit ` +
          'in one program; use a smaller layer (fewer channels, a stride) or batch packing',
      );
    }
  }
  return instructions;
}

/** The server's memory for a probed program, at the real parameters. */
interface MemoryFigures {
  readonly peakCiphertextBytes: number;
  /** Layer at the peak of live ciphertexts with every plaintext resident. */
  readonly peakLayer: string;
  readonly plaintextBytes: number;
  /** Layer holding the most plaintext bytes and how many. */
  readonly plaintextLayer: string;
  readonly plaintextLayerBytes: number;
  /** Largest live ciphertexts plus the plaintext in use, over the instructions (encode on use). */
  readonly lazyPeakBytes: number;
  readonly lazyPeakLayer: string;
  readonly keyBytes: number;
  /** Evaluation keys: relinearization and one per rotation. */
  readonly keys: number;
}

/**
 * Replays the depth probe's instructions with the byte sizes of `params`: probe levels map to real levels by the
 * same offset from the top, values live from definition to last use (outputs and `keep` to the end).
 */
function probeMemory(
  probe: Emitter,
  params: Parameters,
  inputs: readonly Sym[],
  keep: ReadonlySet<number>,
): MemoryFigures {
  const offset = params.depth - PROBE_TOP;
  const bytes = (level: number, degree: number) => params.ciphertextBytes(level + offset, degree);
  const body = probe.instructions;
  const lastUse = new Map<number, number>();
  body.forEach((ins, i) => {
    for (const id of ins.args) lastUse.set(id, i);
  });
  const size = new Map<number, number>();
  let live = 0;
  for (const input of inputs) {
    size.set(input.id, bytes(input.level, 1));
    live += bytes(input.level, 1);
  }
  const ptBytes = probe.plaintexts.map((pt) => bytes(pt.level, 0));
  const plaintextBytes = ptBytes.reduce((a, b) => a + b, 0);
  const perLayer = new Map<string, number>();
  let peak = { bytes: live, layer: '' };
  let lazy = { bytes: live, layer: '' };
  body.forEach((ins, i) => {
    for (const id of ins.out) {
      if (!size.has(id)) {
        size.set(id, bytes(ins.level, ins.degree));
        live += bytes(ins.level, ins.degree);
      }
    }
    const pt = ins.plaintext === undefined ? 0 : ptBytes[ins.plaintext];
    if (pt > 0) perLayer.set(ins.layer, (perLayer.get(ins.layer) ?? 0) + pt);
    if (live > peak.bytes) peak = { bytes: live, layer: ins.layer };
    if (live + pt > lazy.bytes) lazy = { bytes: live + pt, layer: ins.layer };
    for (const id of ins.args) {
      if (lastUse.get(id) === i && !keep.has(id) && size.has(id)) {
        live -= size.get(id) as number;
        size.delete(id);
      }
    }
  });
  let plaintextLayer = { layer: '', bytes: 0 };
  for (const [layer, b] of perLayer) if (b > plaintextLayer.bytes) plaintextLayer = { layer, bytes: b };
  const keys = (probe.usesRelin ? 1 : 0) + probe.rotations.size;
  const keyBytes =
    keys * params.digits * 2 * (params.limbsAtLevel(params.depth) + params.pPrimes.length) * params.n * 4;
  return {
    peakCiphertextBytes: peak.bytes,
    peakLayer: peak.layer,
    plaintextBytes,
    plaintextLayer: plaintextLayer.layer,
    plaintextLayerBytes: plaintextLayer.bytes,
    lazyPeakBytes: lazy.bytes,
    lazyPeakLayer: lazy.layer,
    keyBytes,
    keys,
  };
}

/**
 * Decides whether plaintexts are encoded on use and throws a ResourceError when the server would still hold more
 * than `limits.memoryBytes` at once. Returns the bytes held at the peak and the decision.
 */
function checkMemory(
  m: MemoryFigures,
  model: LayerModel,
  params: Parameters,
  limits: CompileLimits,
  lazyOption: boolean | 'auto',
  packing: string,
): { serverBytes: number; lazy: boolean } {
  const resident = m.peakCiphertextBytes + m.plaintextBytes + m.keyBytes;
  const onUse = m.lazyPeakBytes + m.keyBytes;
  const lazy =
    m.plaintextBytes > 0 && (lazyOption === true || (lazyOption === 'auto' && resident > limits.memoryBytes));
  const serverBytes = lazy ? onUse : resident;
  if (serverBytes <= limits.memoryBytes) return { serverBytes, lazy };
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  const plaintextsDominate = !lazy && m.plaintextBytes > m.peakCiphertextBytes;
  const name = plaintextsDominate ? m.plaintextLayer : lazy ? m.lazyPeakLayer : m.peakLayer;
  const layer = byName.get(name);
  const where = layer === undefined ? `layer '${name}'` : describeLayer(layer);
  const plaintexts =
    m.plaintextBytes === 0
      ? ''
      : lazy
        ? ', plaintext weights encoded on use'
        : `, plaintext weights ${gib(m.plaintextBytes)} (${gib(m.plaintextLayerBytes)} in layer '${m.plaintextLayer}')`;
  throw new ResourceError(
    `compileModel (${packing} packing, logN ${params.logN}, depth ${params.depth}): at ${where} the server would ` +
      `hold ${gib(serverBytes)} at once — live ciphertexts ${lazy ? `with the plaintext in use ${gib(m.lazyPeakBytes)}` : gib(m.peakCiphertextBytes)}` +
      `${plaintexts}, evaluation keys ${gib(m.keyBytes)} — over the limit of ${gib(limits.memoryBytes)} ` +
      `(limits.memoryBytes; by default 7/8 of the 4 GiB WebAssembly kernel arena)` +
      (m.keyBytes > serverBytes / 2 ? `; the ${m.keys} evaluation keys take most of it` : '') +
      (lazyOption === false && m.plaintextBytes > 0
        ? '; lazyPlaintexts would encode the weights on use'
        : '') +
      (packing === 'batch'
        ? ': every value is its own ciphertext in batch packing; try latency packing'
        : ''),
  );
}

/**
 * The smallest 128-bit-secure parameters for `depth` levels: the smallest logN whose bound holds
 * base + depth·primesPerLevel Q primes and at least one special prime; special primes fill the rest of the budget
 * (fewer key-switching digits, faster relinearization).
 *
 * @throws SecurityError naming the depth and the largest depth any secure set in range offers.
 * @example
 * ```ts
 * chooseParameters(5, { primesPerLevel: 1, basePrimes: 2 }); // logN 14 for CryptoNets
 * ```
 */
export function chooseParameters(
  depth: number,
  options: { primesPerLevel?: 1 | 2; basePrimes?: number; minLogN?: number; maxLogN?: number } = {},
): Parameters {
  assertInteger(depth, 'depth', 0);
  const ppl = options.primesPerLevel ?? 1;
  const base = options.basePrimes ?? (ppl === 1 ? 2 : 3);
  const minLogN = options.minLogN ?? 13;
  const maxLogN = options.maxLogN ?? 16;
  assertInteger(minLogN, 'minLogN', 10, 17);
  assertInteger(maxLogN, 'maxLogN', minLogN, 17);
  const qCount = base + depth * ppl;
  let largestDepth = -1;
  let largestAt = minLogN;
  for (let logN = minLogN; logN <= maxLogN; logN++) {
    const bound = maxLogQP128(logN);
    if (bound === undefined) continue;
    // Every prime is below 2^30, so ⌊bound/30⌋ primes always fit; one more may, which Parameters checks.
    const budget = Math.min(Math.floor(bound / 30), nttFriendlyPrimes(logN).length);
    const fits = Math.floor((budget - base - 1) / ppl);
    if (fits > largestDepth) {
      largestDepth = fits;
      largestAt = logN;
    }
    if (qCount + 1 > budget) continue;
    const literal: ParametersLiteral = {
      logN,
      depth,
      primesPerLevel: ppl,
      basePrimes: base,
      specialPrimes: Math.min(qCount, budget - qCount),
    };
    try {
      return Parameters.create(literal);
    } catch (e) {
      if (!(e instanceof SecurityError)) throw e;
    }
  }
  throw new SecurityError(
    `the model needs multiplicative depth ${depth} (${qCount} moduli of ${30 * ppl} bits per level and base), ` +
      `but the largest depth a 128-bit-secure parameter set offers is ${Math.max(0, largestDepth)} ` +
      `(logN = ${largestAt}, logN ≤ ${maxLogN}): use a shallower model (fewer multiplicative layers, lower ` +
      'polynomial degrees)',
  );
}

function checkModel(model: LayerModel): void {
  if (typeof model !== 'object' || model === null || !Array.isArray(model.layers)) {
    throw new InvalidArgumentError('model: expected a LayerModel from importOnnx');
  }
  check(model.layers.length > 0, () => 'model has no layers: expected at least one');
}

/**
 * Compiles a layer model to an HE program, batch or latency packed.
 *
 * @throws InvalidArgumentError when a layer needs an approximation and no calibration data (or interval) is
 *   given; SecurityError when the depth fits no 128-bit-secure parameter set.
 * @example
 * ```ts
 * const model = importOnnx(readFileSync('cryptonets-mnist.onnx'));
 * const { program, params } = compileModel(model, { mode: 'batch' });
 * console.log(params.toString(), program.instructions.length);
 * ```
 */
export function compileModel(input: LayerModel, options: CompileOptions = {}): CompileResult {
  checkModel(input);
  const mode = options.mode ?? 'batch';
  check(
    mode === 'batch' || mode === 'latency',
    () => `mode = ${String(mode)}: expected 'batch' or 'latency'`,
  );
  const precisionBits = options.precisionBits ?? 20;
  check(
    Number.isFinite(precisionBits) && precisionBits >= 1 && precisionBits <= 45,
    () => `precisionBits = ${precisionBits}: expected 1 … 45 (a 2^30 scale gives ≈ 20 bits, 2^60 ≈ 45)`,
  );
  check(
    options.encryptWeights !== true || mode === 'latency',
    () =>
      "encryptWeights: needs mode 'latency' (in batch packing every scalar weight would be its own ciphertext)",
  );
  const policy = options.relinearize ?? 'auto';
  check(
    policy === 'auto' || policy === 'lazy' || policy === 'eager',
    () => `relinearize = ${String(policy)}: expected 'auto', 'lazy' or 'eager'`,
  );

  // 1. Approximations for the non-polynomial layers.
  let model = input;
  let substitutions: readonly Substitution[] = [];
  let approximationCost: AccuracyCost | undefined;
  const pending = model.layers.some(
    (l) => (l.kind === 'activation' || l.kind === 'maxPool') && l.approx === undefined,
  );
  if (pending) {
    const result = approximateModel(model, { ...options.approximation, calibration: options.calibration });
    model = result.model;
    substitutions = result.substitutions;
    approximationCost = result.overall;
  }

  // 2. Magnitudes: bound |values| on the calibration images to size the base modulus.
  const ppl: 1 | 2 = precisionBits > 24 ? 2 : 1;
  let basePrimes = ppl === 1 ? 2 : 3;
  let inputRange: [number, number] = [-1, 1];
  if (options.calibration) {
    const { images, count } = options.calibration;
    const inSize = shapeSize(model.inputShape);
    check(
      images.length >= count * inSize,
      () =>
        `calibration: ${images.length} values for ${count} images of ${inSize}: expected ${count * inSize}`,
    );
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < count * inSize; i++) {
      lo = Math.min(lo, images[i]);
      hi = Math.max(hi, images[i]);
    }
    const pad = Math.max((hi - lo) * 0.1, 1e-6);
    inputRange = [lo - pad, hi + pad];
    let maxAbs = 0;
    const out = simulate(model, options.calibration.images, options.calibration.count, {
      mode: 'polynomial',
      onLayer: (_l, values, count, size) => {
        for (let i = 0; i < count * size; i++) maxAbs = Math.max(maxAbs, Math.abs(values[i]));
      },
    });
    for (const v of out) maxAbs = Math.max(maxAbs, Math.abs(v));
    // |v|·S_0 must stay below q_0/2 with room for the noise: 2^(30·base − 1) > 8·|v|·2^(30·ppl).
    while (Math.log2(8 * maxAbs + 1) + 30 * ppl >= 30 * basePrimes - 1 && basePrimes < 8) basePrimes++;
  }

  if (options.inputRange !== undefined) {
    const [lo, hi] = options.inputRange;
    check(
      Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi,
      () => `inputRange = [${lo}, ${hi}]: expected finite min ≤ max`,
    );
    inputRange = [lo, hi];
  }

  const limits = resolveLimits(options.limits);
  const lazyOption = options.lazyPlaintexts ?? 'auto';
  check(
    lazyOption === true || lazyOption === false || lazyOption === 'auto',
    () => `lazyPlaintexts = ${String(lazyOption)}: expected true, false or 'auto'`,
  );

  if (mode === 'latency') {
    return {
      ...compileLatency(model, options, ppl, basePrimes, inputRange, limits, lazyOption),
      model,
      substitutions,
      approximationCost,
    };
  }

  // 3. Size estimates, then the depth by a dry run, then parameters and the server's memory.
  const estimatedInstructions = checkEstimates(estimateLayers(model, 'batch', 1), limits, 'batch');
  const probe = new Emitter(probeChain, limits, true);
  const probed = emitBatch(model, probe, policy);
  const depth = PROBE_TOP - probe.minLevel;
  const params = chooseParameters(depth, {
    primesPerLevel: ppl,
    basePrimes,
    minLogN: options.minLogN,
    maxLogN: options.maxLogN,
  });
  const memory = probeMemory(
    probe,
    params,
    probed.inputs.filter((i) => i.used).map((i) => i.sym),
    new Set(probed.outputs.map((o) => o.id)),
  );
  const { serverBytes } = checkMemory(memory, model, params, limits, false, 'batch');

  // 4. The real emission at the chosen parameters.
  const emitter = new Emitter(chainOf(params), limits);
  const { inputs, outputs } = emitBatch(model, emitter, policy);
  const batchSize = options.batchSize ?? params.slots;
  assertInteger(batchSize, 'batchSize', 1, params.slots);
  const program = finishProgram({
    name: options.name ?? 'model',
    inputRange,
    params,
    depth,
    packing: 'batch',
    batchSize,
    model,
    emitter,
    inputs: inputs
      .filter((i) => i.used)
      .map((i) => ({
        id: i.sym.id,
        level: i.sym.level,
        scale: i.sym.scale,
        bytes: params.ciphertextBytes(i.sym.level, 1),
        element: i.element,
      })),
    outputs: outputs.map((o, element) => ({
      id: o.id,
      level: o.level,
      scale: o.scale,
      degree: o.degree,
      bytes: params.ciphertextBytes(o.level, o.degree),
      element,
    })),
  });
  const resources: ProgramResources = {
    estimatedInstructions,
    instructions: emitter.instructions.length,
    constants: program.constants.length,
    peakCiphertextBytes: memory.peakCiphertextBytes,
    plaintextBytes: memory.plaintextBytes,
    keyBytes: memory.keyBytes,
    serverBytes,
    lazyPlaintexts: false,
  };
  return { program, params, model, substitutions, approximationCost, resources };
}

function resolveLimits(given: Partial<CompileLimits> | undefined): CompileLimits {
  const limits = { ...DEFAULT_COMPILE_LIMITS, ...given };
  for (const key of ['instructions', 'constants', 'memoryBytes'] as const) {
    const v = limits[key];
    check(
      typeof v === 'number' && v > 0 && (Number.isSafeInteger(v) || v === Number.POSITIVE_INFINITY),
      () => `limits.${key} = ${String(v)}: expected a positive integer (or Infinity)`,
    );
  }
  return limits;
}

/** Latency packing: the period, a dry run for the depth, parameters with enough slots, the real emission. */
function compileLatency(
  model: LayerModel,
  options: CompileOptions,
  ppl: 1 | 2,
  basePrimes: number,
  inputRange: [number, number],
  limits: CompileLimits,
  lazyOption: boolean | 'auto',
): { program: HeProgram; params: Parameters; resources: ProgramResources } {
  let largest = shapeSize(model.inputShape);
  let widest: Layer | undefined;
  for (const l of model.layers) {
    if (shapeSize(l.shape) > largest) {
      largest = shapeSize(l.shape);
      widest = l;
    }
  }
  const period = 2 ** Math.ceil(Math.log2(largest));
  const maxLogN = options.maxLogN ?? 16;
  if (period > 2 ** (maxLogN - 1)) {
    throw new ResourceError(
      `compileModel (latency packing): ${widest === undefined ? 'the model input' : describeLayer(widest)} has ` +
        `${figure(largest)} values, so one image needs a period of ${figure(period)} slots, more than the ` +
        `${figure(2 ** (maxLogN - 1))} slots of logN ≤ ${maxLogN} (maxLogN): use batch packing or a smaller layer`,
    );
  }
  const encryptWeights = options.encryptWeights === true;
  const estimatedInstructions = checkEstimates(estimateLayers(model, 'latency', period), limits, 'latency');
  const probe = new Emitter(probeChain, limits, true);
  probe.encryptWeights = encryptWeights;
  const probed = emitLatency(model, probe, period);
  const depth = PROBE_TOP - probe.minLevel;
  const params = chooseParameters(depth, {
    primesPerLevel: ppl,
    basePrimes,
    minLogN: Math.max(options.minLogN ?? 13, Math.log2(period) + 1),
    maxLogN: options.maxLogN,
  });
  const weights = probe.weightInputs.map((w) => ({ id: w.id, level: w.level, scale: w.scale, degree: 1 }));
  const memory = probeMemory(
    probe,
    params,
    [probed.input, ...weights],
    new Set([probed.output.id, ...weights.map((w) => w.id)]),
  );
  const { serverBytes, lazy } = checkMemory(memory, model, params, limits, lazyOption, 'latency');
  const emitter = new Emitter(chainOf(params), limits);
  emitter.encryptWeights = encryptWeights;
  const { input, output } = emitLatency(model, emitter, period);
  if (lazy) for (const pt of emitter.plaintexts) pt.encodeOnUse = true;
  const inSize = shapeSize(model.inputShape);
  const outSize = shapeSize(model.outputShape);
  const steps = [...emitter.rotations.keys()].sort((a, b) => a - b);
  const program = finishProgram({
    name: options.name ?? 'model',
    inputRange,
    params,
    depth,
    packing: 'latency',
    batchSize: 1,
    model,
    emitter,
    inputs: [
      {
        id: input.id,
        level: input.level,
        scale: input.scale,
        bytes: params.ciphertextBytes(input.level, 1),
        slotElements: Array.from({ length: period }, (_, i) => (i < inSize ? i : -1)),
        replicate: true,
      },
      ...emitter.weightInputs,
    ],
    outputs: [
      {
        id: output.id,
        level: output.level,
        scale: output.scale,
        degree: output.degree,
        bytes: params.ciphertextBytes(output.level, output.degree),
        slotOfElement: Array.from({ length: outSize }, (_, j) => j),
      },
    ],
    rotations: steps,
    galoisElements: steps.map((s) => emitter.rotations.get(s) as number),
  });
  const resources: ProgramResources = {
    estimatedInstructions,
    instructions: emitter.instructions.length,
    constants: program.constants.length,
    peakCiphertextBytes: memory.peakCiphertextBytes,
    plaintextBytes: memory.plaintextBytes,
    keyBytes: memory.keyBytes,
    serverBytes,
    lazyPlaintexts: lazy,
  };
  return { program, params, resources };
}

/**
 * Assembles a program from emitted instructions: inserts `free` after each value's last use (outputs excepted),
 * lists keys and summarizes the layers.
 */
function finishProgram(parts: {
  name: string;
  params: Parameters;
  depth: number;
  packing: 'batch' | 'latency';
  batchSize: number;
  model: LayerModel;
  emitter: Emitter;
  inputs: InputDescriptor[];
  outputs: OutputDescriptor[];
  rotations?: number[];
  galoisElements?: number[];
  inputRange: [number, number];
}): HeProgram {
  const { emitter, params, model } = parts;
  const body = emitter.instructions;
  // Outputs survive the run; encrypted weights survive every run.
  const keep = new Set([
    ...parts.outputs.map((o) => o.id),
    ...parts.inputs.filter((i) => i.owner === 'model').map((i) => i.id),
  ]);
  const lastUse = new Map<number, number>();
  body.forEach((ins, i) => {
    for (const id of ins.args) lastUse.set(id, i);
    for (const id of ins.out) if (!lastUse.has(id)) lastUse.set(id, i);
  });
  const freesAfter = new Map<number, number[]>();
  for (const [id, i] of lastUse) {
    if (keep.has(id)) continue;
    let list = freesAfter.get(i);
    if (!list) freesAfter.set(i, (list = []));
    list.push(id);
  }
  const instructions: HeInstruction[] = [];
  body.forEach((ins, i) => {
    instructions.push(ins);
    const dead = freesAfter.get(i);
    if (dead) {
      instructions.push({
        op: 'free',
        args: dead,
        out: [],
        level: ins.level,
        scale: ins.scale,
        degree: ins.degree,
        bytes: { args: [], out: 0 },
        keys: [],
        layer: ins.layer,
      });
    }
  });
  const layers: LayerSummary[] = model.layers.map((l) => {
    let count = 0;
    let low = Number.POSITIVE_INFINITY;
    let high = Number.NEGATIVE_INFINITY;
    for (const ins of body) {
      if (ins.layer !== l.name) continue;
      count++;
      low = Math.min(low, ins.level);
      high = Math.max(high, ins.level);
    }
    return { name: l.name, kind: l.kind, levels: count === 0 ? 0 : high - low, instructions: count };
  });
  return {
    format: PROGRAM_FORMAT,
    version: PROGRAM_VERSION,
    name: parts.name,
    parameters: { ...params.literal },
    logN: params.logN,
    slots: params.slots,
    depth: parts.depth,
    packing: parts.packing,
    batchSize: parts.batchSize,
    inputShape: [...model.inputShape],
    ...(model.inputPermutation ? { inputPermutation: Array.from(model.inputPermutation) } : {}),
    outputShape: [...model.outputShape],
    inputRange: parts.inputRange,
    inputs: parts.inputs,
    outputs: parts.outputs,
    plaintexts: emitter.plaintexts,
    constants: emitter.constants.toFloat64Array(),
    rotations: parts.rotations ?? [],
    galoisElements: parts.galoisElements ?? [],
    relinearization: emitter.usesRelin,
    instructions,
    layers,
  };
}
