/**
 * The one definition of every HE operation: how many operands it reads and which instruction fields it needs, the
 * level, scale and degree of its result, the evaluation keys it uses, its cost, and its meaning on float64 slot
 * vectors (the simulator) and on ciphertexts (the encrypted executor). The compiler's emitter, the program
 * validator, the float simulator, the encrypted executor and the runtime's cost model all read this table, and
 * `OPS` is typed as a complete record over {@link HeOp}: an op added to the union without a definition here does
 * not compile, and neither does a definition that leaves out one of its facets.
 */
import type { Bootstrapper } from '../ckks/bootstrapping/bootstrapper.ts';
import type { Evaluator } from '../ckks/evaluator.ts';
import type { Ciphertext, Plaintext } from '../ckks/objects.ts';
import type { ParametersShape } from '../ckks/shape.ts';
import { mulScalarMatrixScratchWords } from '../ring/ops.ts';
import { InvalidArgumentError, MismatchError } from '../util/errors.ts';

/**
 * Instruction operations. Semantics on values x, y (ids in `args`), constant c = `constants[constant]`:
 * - `mul_const`: x · c, c encoded at `constantScale` (scale multiplies); `mul_then_add`: args [x, acc]: acc += x · c
 *   in place (result id = acc); `mul_matrix`: args x_0 … x_{k−1} (one level, scale and degree), `rows` = m results
 *   y_o = Σ_j c[o·k + j] · x_j with c = `constants[constant …]` row by row, encoded at `constantScale` (a block of a
 *   linear layer in one instruction, computed reading each operand once); `mul_plain`: x · plaintext `plaintext`;
 *   `mul_plain_then_add`: args [x, acc]: acc += x · plaintext `plaintext` in place; `mul_ct`: x · y (degree 2);
 *   `square`: x²;
 * - `add`, `sub`: x ± y (equal scales); `add_const`: x + c (encoded at x's scale); `add_plain`: x + plaintext
 *   `plaintext` (encoded at x's scale and level);
 * - `relinearize` (degree 2 → 1), `rescale` (level − 1, scale / q_level), `drop_level` (to `level`),
 *   `match_scale` (to `level` and `scale` exactly, through one rescale; times c when it has a `constant`);
 * - `rotate`: slots rotated left by `steps[0]`; `rotate_hoisted`: one result per entry of `steps`;
 * - `bootstrap`: x (degree 1, |slots| ≤ bound = c) refreshed to `level` (the bootstrapping parameters'
 *   `levelsLeft`) at scale `scale` (`bootstrapResultScale` of x's scale and the bound), by the executor's
 *   {@link Bootstrapper}; its keys live with the bootstrapper, and `scratchBytes` is its working set;
 * - `free`: the values in `args` are dead.
 *
 * @example
 * ```ts
 * const op: HeOp = 'mul_then_add';
 * ```
 */
export type HeOp =
  | 'mul_const'
  | 'mul_then_add'
  | 'mul_plain_then_add'
  | 'mul_matrix'
  | 'mul_plain'
  | 'mul_ct'
  | 'square'
  | 'add'
  | 'sub'
  | 'add_const'
  | 'add_plain'
  | 'relinearize'
  | 'rescale'
  | 'drop_level'
  | 'match_scale'
  | 'rotate'
  | 'rotate_hoisted'
  | 'bootstrap'
  | 'free';

/**
 * Level, scale and degree of a ciphertext value (degree 1: two polynomials; 2: after an unrelinearized product).
 *
 * @example
 * ```ts
 * const v: ValueShape = { level: 5, scale: 2 ** 29.9, degree: 1 };
 * ```
 */
export interface ValueShape {
  level: number;
  scale: number;
  degree: number;
}

/**
 * The instruction fields an operation reads besides its operands (a subset of `HeInstruction`).
 *
 * @example
 * ```ts
 * const fields: OpFields = { constantScale: 2 ** 30 };
 * ```
 */
export interface OpFields {
  /** Target level (drop_level, match_scale) or declared result level. */
  level?: number;
  /** Target scale (match_scale). */
  scale?: number;
  /** Scale the constant is encoded at (mul_const, mul_then_add, mul_matrix). */
  constantScale?: number;
  steps?: readonly number[];
  /** Results of a mul_matrix (rows of its weight matrix). */
  rows?: number;
  /** Kernel memory a bootstrap holds at its peak (its keys and diagonals come and go inside it). */
  scratchBytes?: number;
  /** The constant's index, when the op reads one (optional for match_scale: a multiplier). */
  constant?: number;
}

/**
 * What a result rule needs to know beyond the operands.
 *
 * @example
 * ```ts
 * const context: ResultContext = { plaintext: { level: 4, scale: 2 ** 30 }, rescaleScale: (l, s) => s / q[l] };
 * ```
 */
export interface ResultContext {
  /** The plaintext the instruction reads (mul_plain, add_plain). */
  plaintext?: { level: number; scale: number };
  /**
   * The scale after a rescale at `level` (divided by the primes it drops, in division order, as the evaluator
   * does); absent: the scale is not derived (it depends on the primes, which a literal does not name).
   */
  rescaleScale?: (level: number, scale: number) => number;
}

/**
 * One operation's definition. `simulate` and `evaluate` return the results in the order of the instruction's `out`
 * ids, except for in-place operations (`inPlace`), which update their last operand and return nothing.
 *
 * @example
 * ```ts
 * const { arity, keys } = OPS.rotate;
 * ```
 */
export interface OpDefinition {
  /** Value operands read; `free` and `mul_matrix` read any number ≥ 1 (−1). */
  readonly arity: number;
  /** The op writes its last operand in place (the result id is that operand's). */
  readonly inPlace: boolean;
  /** Instruction fields it requires. */
  readonly needs: {
    readonly constant: boolean;
    readonly constantScale: boolean;
    readonly plaintext: boolean;
    /** `rows`: the number of results (mul_matrix). */
    readonly rows: boolean;
    /** `one`: exactly one rotation step; `many`: one or more (one result each). */
    readonly steps: 'none' | 'one' | 'many';
  };
  /** The evaluation keys it uses: none, the relinearization key, or one Galois key per rotation step. */
  readonly keys: 'none' | 'relin' | 'galois';
  /* A bootstrap's keys are the bootstrapper's (its own stash streams them), so the planner sees none. */
  /** Level, scale and degree of each result. */
  result(args: readonly ValueShape[], fields: OpFields, context: ResultContext): ValueShape[];
  /**
   * Modular multiplies it performs (element-wise products and NTT butterflies; additions count a quarter), from
   * the standard RNS-CKKS algorithms — the runtime times steps with it; it is a model, not a measurement.
   */
  cost(shape: ParametersShape, instruction: CostedInstruction): number;
  /**
   * Bytes of kernel memory it allocates while it runs beyond its operands and results, freed before it returns (key
   * switching's digits, ModDown's workspace): the runtime keeps this much of the arena free during the step, so
   * the kernels' memory stays inside the budget. An upper bound, checked against measured peaks by a test.
   */
  scratch(shape: ParametersShape, instruction: CostedInstruction): number;
  /** Its meaning on float64 slot vectors (no encryption, no noise). */
  simulate(args: readonly Float64Array[], operands: SimulationOperands): Float64Array[];
  /** Its meaning on ciphertexts, on an evaluator holding the keys it uses. */
  evaluate(evaluator: Evaluator, args: readonly Ciphertext[], operands: EvaluationOperands): Ciphertext[];
}

/**
 * What {@link OpDefinition.cost} reads of an instruction.
 *
 * @example
 * ```ts
 * const ins: CostedInstruction = { op: 'rotate', level: 3, degree: 1, bytes: { args: [786432] } };
 * ```
 */
export interface CostedInstruction {
  level: number;
  degree: number;
  bytes: { args: readonly number[] };
  steps?: readonly number[];
  rows?: number;
  scratchBytes?: number;
}

/**
 * The non-ciphertext inputs of a simulated instruction.
 *
 * @example
 * ```ts
 * const operands: SimulationOperands = { constant: 0.5, fields: { steps: [1] } };
 * ```
 */
export interface SimulationOperands {
  constant: number;
  /** mul_matrix: its rows·k constants, row by row. */
  weights?: Float64Array;
  plaintext?: Float64Array;
  fields: OpFields;
  /**
   * The bootstrap noise model: adds to `values` (slots within ±`bound`) the error one bootstrapping leaves.
   * Absent: a bootstrap is the identity.
   */
  bootstrapNoise?: (values: Float64Array, bound: number) => void;
  /**
   * A vector of `length` slots for a result, which the operation overwrites entirely (a simulator recycles the
   * vectors of freed values: allocating and collecting a fresh one per instruction was a fifth of its time).
   * Fresh vectors without it.
   */
  vector?: (length: number) => Float64Array;
}

/**
 * The non-ciphertext inputs of an evaluated instruction.
 *
 * @example
 * ```ts
 * const operands: EvaluationOperands = { constant: 0.5, fields: { constantScale: 2 ** 30 } };
 * ```
 */
export interface EvaluationOperands {
  constant: number;
  /** mul_matrix: its rows·k constants, row by row. */
  weights?: Float64Array;
  plaintext?: Plaintext;
  fields: OpFields;
  /** The bootstrapper a `bootstrap` runs on (the executor's, holding or streaming its keys). */
  bootstrapper?: Bootstrapper;
}

// -----------------------------------------------------------------------------------------------------------
// Cost model pieces (one place; see OpDefinition.cost)

/** Q limbs of the first operand as read (its bytes over n · 4 · 2, clamped to the chain), as the planner measures it. */
function operandLimbs(shape: ParametersShape, ins: CostedInstruction): number {
  const byBytes =
    ins.bytes.args.length > 0
      ? Math.round(ins.bytes.args[0] / (shape.n * 4) / 2)
      : shape.limbsAtLevel(ins.level);
  return Math.max(1, Math.min(byBytes, shape.qCount));
}

function ntt(shape: ParametersShape, limbs: number): number {
  return limbs * (shape.n / 2) * shape.logN;
}

/** Hybrid key switching split in its parts: INTT + ModUp + NTT of the digits, inner product, ModDown. */
function keySwitchParts(
  shape: ParametersShape,
  l: number,
): { decompose: number; inner: number; modDown: number } {
  const n = shape.n;
  const k = shape.specialPrimes;
  const dnum = shape.digits;
  return {
    decompose: ntt(shape, l) + l * (l + k) * n + ntt(shape, dnum * (l + k)),
    inner: 2 * dnum * (l + k) * n,
    modDown: 2 * ntt(shape, k) + 2 * k * l * n + ntt(shape, 2 * l) + 2 * l * n,
  };
}

/**
 * Kernel memory a key switch holds at its peak, in limbs (see `KeySwitcher`): the decomposition, one digit per
 * key digit over Q_ℓ ∪ P (and as many again permuted, when a hoisted rotation applies a Galois map to it), the two
 * accumulators, ModDown's corrections and workspace, and the partial sums of more than eight digits.
 */
function keySwitchScratch(
  shape: ParametersShape,
  ins: CostedInstruction,
  kind: 'switch' | 'rotate' | 'hoisted',
) {
  const l = shape.limbsAtLevel(ins.level);
  const k = shape.specialPrimes;
  const extended = l + k;
  const digits = Math.ceil(l / k);
  const decompositions = kind === 'hoisted' ? 2 : 1;
  const workspace = kind === 'rotate' ? 5 : 4;
  const partials = digits > 8 ? 2 : 0;
  const limbs = (decompositions * digits + workspace + partials) * extended + k + 1;
  // Plus the inner product's pointer tables (three 32-bit words per digit and limb) and one limb of rounding.
  return (limbs + 1) * shape.n * 4 + 12 * digits * extended;
}

/** A rescale's workspace: the dropped limb of each polynomial, in the coefficient domain. */
const rescaleScratch = (shape: ParametersShape, ins: CostedInstruction) => (ins.degree + 1) * shape.n * 4;

/** Matching a scale: the operand multiplied at one level above the result, then rescaled from there. */
const matchScaleScratch = (shape: ParametersShape, ins: CostedInstruction) =>
  (ins.degree + 1) * (Math.min(shape.limbsAtLevel(ins.level) + 1, shape.qCount) + 1) * shape.n * 4;

/** No kernel memory beyond operands and results. */
const noScratch = () => 0;

const elementwise = (factor: number) => (shape: ParametersShape, ins: CostedInstruction) =>
  factor * operandLimbs(shape, ins) * shape.n;
const additive = (shape: ParametersShape, ins: CostedInstruction) =>
  ((ins.degree + 1) * operandLimbs(shape, ins) * shape.n) / 4;
const rescaling = (shape: ParametersShape, ins: CostedInstruction) => {
  const l = operandLimbs(shape, ins);
  return (ins.degree + 1) * (ntt(shape, 1) + ntt(shape, l) + l * shape.n);
};
const keySwitched = (shape: ParametersShape, ins: CostedInstruction) => {
  const { decompose, inner, modDown } = keySwitchParts(shape, operandLimbs(shape, ins));
  return decompose + inner + modDown;
};

// -----------------------------------------------------------------------------------------------------------
// Result rules and vector helpers

const same = (x: ValueShape): ValueShape => ({ level: x.level, scale: x.scale, degree: x.degree });

/** A sum or difference: at the lower level, the (equal) scale, the higher degree. */
const sumOf = ([x, y]: readonly ValueShape[]): ValueShape[] => [
  { level: Math.min(x.level, y.level), scale: x.scale, degree: Math.max(x.degree, y.degree) },
];

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new InvalidArgumentError(`instruction: ${what} is missing`);
  return value;
}

// One loop per kind of element-wise operation, not one loop calling a closure: a shared loop calling many closures
// is megamorphic (a call per slot), which made it ~40 ns per slot and most of a simulation's time.
function scaled(y: Float64Array, x: Float64Array, c: number): Float64Array {
  for (let i = 0; i < x.length; i++) y[i] = x[i] * c;
  return y;
}

function shifted(y: Float64Array, x: Float64Array, c: number): Float64Array {
  for (let i = 0; i < x.length; i++) y[i] = x[i] + c;
  return y;
}

function product(y: Float64Array, x: Float64Array, z: Float64Array): Float64Array {
  for (let i = 0; i < x.length; i++) y[i] = x[i] * z[i];
  return y;
}

function sum(y: Float64Array, x: Float64Array, z: Float64Array): Float64Array {
  for (let i = 0; i < x.length; i++) y[i] = x[i] + z[i];
  return y;
}

function difference(y: Float64Array, x: Float64Array, z: Float64Array): Float64Array {
  for (let i = 0; i < x.length; i++) y[i] = x[i] - z[i];
  return y;
}

function rotateVector(out: Float64Array, x: Float64Array, steps: number): Float64Array {
  const n = x.length;
  const k = ((steps % n) + n) % n;
  // out[i] = x[(i + k) mod n], as two block copies (a modulo per slot made rotations most of a simulation's time).
  out.set(x.subarray(k));
  out.set(x.subarray(0, k), n - k);
  return out;
}

function resultVector(operands: SimulationOperands, like: Float64Array): Float64Array {
  return operands.vector ? operands.vector(like.length) : new Float64Array(like.length);
}

function copied(operands: SimulationOperands, x: Float64Array): Float64Array {
  const y = resultVector(operands, x);
  y.set(x);
  return y;
}

const NO_FIELDS = {
  constant: false,
  constantScale: false,
  plaintext: false,
  rows: false,
  steps: 'none',
} as const;

/** The operands of a mul_matrix: one level, scale and degree (the kernel reads them as one block). */
function uniformOperands(args: readonly ValueShape[]): ValueShape {
  const x = args[0];
  for (const a of args) {
    if (a.level !== x.level || a.scale !== x.scale || a.degree !== x.degree) {
      throw new MismatchError(
        `mul_matrix: operands at level ${a.level}, scale ${a.scale}, degree ${a.degree} and level ${x.level}, ` +
          `scale ${x.scale}, degree ${x.degree}: expected one level, scale and degree`,
      );
    }
  }
  return x;
}

/** The m·k weights of a mul_matrix, row by row. */
function matrixRows(fields: OpFields, weights: Float64Array | undefined, k: number): number {
  const rows = need(fields.rows, 'rows');
  const w = need(weights, 'weights');
  if (w.length !== rows * k)
    throw new MismatchError(`mul_matrix: ${w.length} weights for ${rows} rows of ${k}: expected ${rows * k}`);
  return rows;
}

/**
 * The operation table.
 *
 * @example
 * ```ts
 * const [y] = OPS.mul_const.result([{ level: 3, scale: 2 ** 30, degree: 1 }], { constantScale: 2 ** 30 }, {});
 * ```
 */
export const OPS: Readonly<Record<HeOp, OpDefinition>> = {
  mul_const: {
    arity: 1,
    inPlace: false,
    needs: { ...NO_FIELDS, constant: true, constantScale: true },
    keys: 'none',
    result: ([x], f) => [{ ...same(x), scale: x.scale * need(f.constantScale, 'constantScale') }],
    cost: elementwise(2),
    scratch: noScratch,
    simulate: ([x], o) => [scaled(resultVector(o, x), x, o.constant)],
    evaluate: (ev, [x], { constant, fields }) => [ev.mulNew(x, constant, fields.constantScale)],
  },
  mul_then_add: {
    arity: 2,
    inPlace: true,
    needs: { ...NO_FIELDS, constant: true, constantScale: true },
    keys: 'none',
    result: ([, acc]) => [same(acc)],
    cost: elementwise(2),
    scratch: noScratch,
    simulate: ([x, acc], { constant }) => {
      for (let i = 0; i < acc.length; i++) acc[i] += x[i] * constant;
      return [];
    },
    evaluate: (ev, [x, acc], { constant, fields }) => {
      ev.mulThenAdd(x, constant, acc, fields.constantScale);
      return [];
    },
  },
  mul_plain_then_add: {
    arity: 2,
    inPlace: true,
    needs: { ...NO_FIELDS, plaintext: true },
    keys: 'none',
    result: ([x, acc], _f, { plaintext }) => {
      const pt = need(plaintext, 'plaintext');
      if (acc.level > Math.min(x.level, pt.level) || acc.degree !== x.degree) {
        throw new MismatchError(
          `mul_plain_then_add: accumulator at level ${acc.level}/degree ${acc.degree} for an operand at level ` +
            `${x.level}/degree ${x.degree} and a plaintext at level ${pt.level}`,
        );
      }
      return [same(acc)];
    },
    cost: elementwise(2),
    scratch: noScratch,
    simulate: ([x, acc], o) => {
      const p = need(o.plaintext, 'plaintext');
      for (let i = 0; i < acc.length; i++) acc[i] += x[i] * p[i];
      return [];
    },
    evaluate: (ev, [x, acc], { plaintext }) => {
      ev.mulThenAdd(x, need(plaintext, 'plaintext'), acc);
      return [];
    },
  },
  mul_matrix: {
    arity: -1,
    inPlace: false,
    needs: { ...NO_FIELDS, constant: true, constantScale: true, rows: true },
    keys: 'none',
    result: (args, f) => {
      const x = uniformOperands(args);
      const y = { ...same(x), scale: x.scale * need(f.constantScale, 'constantScale') };
      return Array.from({ length: need(f.rows, 'rows') }, () => ({ ...y }));
    },
    // Every weight is a multiply-add per coefficient of each polynomial; the lazily reduced kernel does one for
    // about half a Shoup multiply-add.
    cost: (shape, ins) =>
      (need(ins.rows, 'rows') *
        ins.bytes.args.length *
        (ins.degree + 1) *
        operandLimbs(shape, ins) *
        shape.n) /
      2,
    // Its pointer and weight tables and the staging of its tasks.
    scratch: (shape, ins) =>
      4 *
      mulScalarMatrixScratchWords(
        shape.n,
        need(ins.rows, 'rows'),
        ins.bytes.args.length,
        ins.degree + 1,
        shape.limbsAtLevel(ins.level),
      ),
    simulate: (args, o) => {
      const k = args.length;
      const rows = matrixRows(o.fields, o.weights, k);
      const w = o.weights as Float64Array;
      const out: Float64Array[] = [];
      for (let r = 0; r < rows; r++) {
        const y = scaled(resultVector(o, args[0]), args[0], w[r * k]);
        for (let j = 1; j < k; j++) {
          const c = w[r * k + j];
          const x = args[j];
          for (let i = 0; i < y.length; i++) y[i] += x[i] * c;
        }
        out.push(y);
      }
      return out;
    },
    evaluate: (ev, args, { weights, fields }) => {
      matrixRows(fields, weights, args.length);
      return ev.mulMatrixNew(args, weights as Float64Array, fields.constantScale);
    },
  },
  mul_plain: {
    arity: 1,
    inPlace: false,
    needs: { ...NO_FIELDS, plaintext: true },
    keys: 'none',
    result: ([x], _f, { plaintext }) => {
      const pt = need(plaintext, 'plaintext');
      return [{ level: Math.min(x.level, pt.level), scale: x.scale * pt.scale, degree: x.degree }];
    },
    cost: elementwise(2),
    scratch: noScratch,
    simulate: ([x], o) => [product(resultVector(o, x), x, need(o.plaintext, 'plaintext'))],
    evaluate: (ev, [x], { plaintext }) => [ev.mulNew(x, need(plaintext, 'plaintext'))],
  },
  mul_ct: {
    arity: 2,
    inPlace: false,
    needs: NO_FIELDS,
    keys: 'none',
    result: ([x, y]) => [{ level: Math.min(x.level, y.level), scale: x.scale * y.scale, degree: 2 }],
    cost: elementwise(4),
    scratch: noScratch,
    simulate: ([x, y], o) => [product(resultVector(o, x), x, y)],
    evaluate: (ev, [x, y]) => [ev.mulNew(x, y)],
  },
  square: {
    arity: 1,
    inPlace: false,
    needs: NO_FIELDS,
    keys: 'none',
    result: ([x]) => [{ level: x.level, scale: x.scale * x.scale, degree: 2 }],
    cost: elementwise(4),
    scratch: noScratch,
    simulate: ([x], o) => [product(resultVector(o, x), x, x)],
    evaluate: (ev, [x]) => [ev.mulNew(x, x)],
  },
  add: {
    arity: 2,
    inPlace: false,
    needs: NO_FIELDS,
    keys: 'none',
    result: sumOf,
    cost: additive,
    scratch: noScratch,
    simulate: ([x, y], o) => [sum(resultVector(o, x), x, y)],
    evaluate: (ev, [x, y]) => [ev.addNew(x, y)],
  },
  sub: {
    arity: 2,
    inPlace: false,
    needs: NO_FIELDS,
    keys: 'none',
    result: sumOf,
    cost: additive,
    scratch: noScratch,
    simulate: ([x, y], o) => [difference(resultVector(o, x), x, y)],
    evaluate: (ev, [x, y]) => [ev.subNew(x, y)],
  },
  add_const: {
    arity: 1,
    inPlace: false,
    needs: { ...NO_FIELDS, constant: true },
    keys: 'none',
    result: ([x]) => [same(x)],
    cost: additive,
    scratch: noScratch,
    simulate: ([x], o) => [shifted(resultVector(o, x), x, o.constant)],
    evaluate: (ev, [x], { constant }) => [ev.addNew(x, constant)],
  },
  add_plain: {
    arity: 1,
    inPlace: false,
    needs: { ...NO_FIELDS, plaintext: true },
    keys: 'none',
    result: ([x]) => [same(x)],
    cost: additive,
    scratch: noScratch,
    simulate: ([x], o) => [sum(resultVector(o, x), x, need(o.plaintext, 'plaintext'))],
    evaluate: (ev, [x], { plaintext }) => [ev.addNew(x, need(plaintext, 'plaintext'))],
  },
  relinearize: {
    arity: 1,
    inPlace: false,
    needs: NO_FIELDS,
    keys: 'relin',
    result: ([x]) => [{ ...same(x), degree: 1 }],
    cost: keySwitched,
    scratch: (shape, ins) => keySwitchScratch(shape, ins, 'switch'),
    simulate: ([x], o) => [copied(o, x)],
    evaluate: (ev, [x]) => [ev.relinearizeNew(x)],
  },
  rescale: {
    arity: 1,
    inPlace: false,
    needs: NO_FIELDS,
    keys: 'none',
    result: ([x], _f, { rescaleScale }) => [
      {
        level: x.level - 1,
        scale: rescaleScale ? rescaleScale(x.level, x.scale) : Number.NaN,
        degree: x.degree,
      },
    ],
    cost: rescaling,
    scratch: rescaleScratch,
    simulate: ([x], o) => [copied(o, x)],
    evaluate: (ev, [x]) => [ev.rescaleNew(x)],
  },
  drop_level: {
    arity: 1,
    inPlace: false,
    needs: NO_FIELDS,
    keys: 'none',
    result: ([x], f) => [{ ...same(x), level: need(f.level, 'level') }],
    cost: additive,
    scratch: noScratch,
    simulate: ([x], o) => [copied(o, x)],
    evaluate: (ev, [x], { fields }) => [ev.dropLevelNew(x, need(fields.level, 'level'))],
  },
  match_scale: {
    arity: 1,
    inPlace: false,
    needs: NO_FIELDS,
    keys: 'none',
    result: ([x], f) => [{ level: need(f.level, 'level'), scale: need(f.scale, 'scale'), degree: x.degree }],
    cost: rescaling,
    scratch: matchScaleScratch,
    simulate: ([x], o) => {
      const y = copied(o, x);
      if (o.fields.constant !== undefined) for (let i = 0; i < y.length; i++) y[i] *= o.constant;
      return [y];
    },
    evaluate: (ev, [x], { constant, fields }) => [
      ev.matchLevelAndScaleNew(
        x,
        need(fields.level, 'level'),
        need(fields.scale, 'scale'),
        fields.constant === undefined ? 1 : constant,
      ),
    ],
  },
  rotate: {
    arity: 1,
    inPlace: false,
    needs: { ...NO_FIELDS, steps: 'one' },
    keys: 'galois',
    result: ([x]) => [{ ...same(x), degree: 1 }],
    cost: keySwitched,
    scratch: (shape, ins) => keySwitchScratch(shape, ins, 'rotate'),
    simulate: ([x], o) => [rotateVector(resultVector(o, x), x, need(o.fields.steps, 'steps')[0])],
    evaluate: (ev, [x], { fields }) => [ev.rotateNew(x, need(fields.steps, 'steps')[0])],
  },
  rotate_hoisted: {
    arity: 1,
    inPlace: false,
    needs: { ...NO_FIELDS, steps: 'many' },
    keys: 'galois',
    result: ([x], f) => need(f.steps, 'steps').map(() => ({ ...same(x), degree: 1 })),
    cost: (shape, ins) => {
      const { decompose, inner, modDown } = keySwitchParts(shape, operandLimbs(shape, ins));
      return decompose + (ins.steps?.length ?? 1) * (inner + modDown);
    },
    scratch: (shape, ins) => keySwitchScratch(shape, ins, 'hoisted'),
    simulate: ([x], o) => need(o.fields.steps, 'steps').map((s) => rotateVector(resultVector(o, x), x, s)),
    evaluate: (ev, [x], { fields }) => {
      const steps = need(fields.steps, 'steps');
      const rotated = ev.rotateHoistedNew(x, steps);
      // A step listed twice gets its own copy, so each result id owns its ciphertext.
      return steps.map((s, k) => {
        const r = rotated.get(s);
        if (!r) throw new MismatchError(`rotate_hoisted: no result for step ${s}`);
        return steps.indexOf(s) < k ? r.copy() : r;
      });
    },
  },
  bootstrap: {
    arity: 1,
    inPlace: false,
    needs: { ...NO_FIELDS, constant: true },
    keys: 'none',
    result: (_args, f) => [{ level: need(f.level, 'level'), scale: need(f.scale, 'scale'), degree: 1 }],
    // A model, not a measurement: about 160 key switches and as many plaintext products over the whole chain
    // (CoeffsToSlots and SlotsToCoeffs rotations, EvalMod's products), the count at logN 16 with 3+3 levels.
    cost: (shape) => {
      const { decompose, inner, modDown } = keySwitchParts(shape, shape.qCount);
      return 160 * (decompose + inner + modDown + shape.qCount * shape.n);
    },
    scratch: (_shape, ins) => ins.scratchBytes ?? 0,
    simulate: ([x], o) => {
      const y = copied(o, x);
      o.bootstrapNoise?.(y, o.constant);
      return [y];
    },
    evaluate: (_ev, [x], { bootstrapper, constant, fields }) => {
      if (!bootstrapper) {
        throw new InvalidArgumentError(
          'bootstrap: the executor has no bootstrapper (make bootstrapping keys)',
        );
      }
      const y = bootstrapper.bootstrapNew(x, { bound: constant });
      const scale = need(fields.scale, 'scale');
      if (Math.abs(y.scale / scale - 1) > 2 ** -40) {
        throw new MismatchError(`bootstrap: result scale ${y.scale}, the program expects ${scale}`);
      }
      y.scale = scale;
      return [y];
    },
  },
  free: {
    arity: -1,
    inPlace: false,
    needs: NO_FIELDS,
    keys: 'none',
    result: () => [],
    cost: () => 0,
    scratch: noScratch,
    simulate: () => [],
    evaluate: () => [],
  },
};

/**
 * Every {@link HeOp}, in a fixed order (its index is the op's compact code).
 *
 * @example
 * ```ts
 * HE_OPS.indexOf('rotate'); // 13
 * ```
 */
export const HE_OPS: readonly HeOp[] = Object.freeze([
  'mul_const',
  'mul_then_add',
  'mul_plain',
  'mul_ct',
  'square',
  'add',
  'sub',
  'add_const',
  'add_plain',
  'relinearize',
  'rescale',
  'drop_level',
  'match_scale',
  'rotate',
  'rotate_hoisted',
  'free',
  'mul_matrix',
  'mul_plain_then_add',
  'bootstrap',
]) satisfies readonly HeOp[];

/**
 * The evaluation keys an instruction of `op` with `steps` uses: `relin`, or `galois:<element>` per step.
 *
 * @example
 * ```ts
 * opKeys('rotate', [1], (s) => galoisElementForRotation(s, 14)); // ['galois:5']
 * ```
 */
export function opKeys(
  op: HeOp,
  steps: readonly number[] | undefined,
  galois: (steps: number) => number,
): string[] {
  const kind = OPS[op].keys;
  if (kind === 'relin') return ['relin'];
  if (kind === 'galois') return (steps ?? []).map((s) => `galois:${galois(s)}`);
  return [];
}
