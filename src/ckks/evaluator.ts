import {
  galoisElementForConjugation,
  galoisElementForRotation,
  nttAutomorphismIndex,
} from '../ring/galois.ts';
import { invMod, reduceFloat, shoupConstant } from '../ring/modarith.ts';
import {
  addPoly,
  addScalarPoly,
  automorphismNtt,
  mulAddPoly,
  mulPoly,
  mulScalarAddPoly,
  mulScalarMatrixPolys,
  mulScalarPoly,
  negPoly,
  scalarResidues,
  subPoly,
  type ScalarResidues,
} from '../ring/ops.ts';
import { Poly } from '../ring/poly.ts';
import type { KernelBatch } from '../ring/threads.ts';
import { assertFinite, assertInteger, check } from '../util/assert.ts';
import { InvalidArgumentError, MismatchError, MissingKeyError } from '../util/errors.ts';
import type { EvaluationKeys, SwitchingKey } from './keys.ts';
import { KeySwitcher } from './keyswitch.ts';
import { Ciphertext, Plaintext } from './objects.ts';
import type { Parameters } from './parameters.ts';

/** Relative difference below which two scales count as equal (far below CKKS noise at either scale size). */
const SCALE_TOLERANCE = 2 ** -40;

/**
 * A second operand: a ciphertext, a plaintext, or a real constant (encoded on the fly).
 *
 * @example
 * ```ts
 * evaluator.addNew(ct, 0.5); evaluator.addNew(ct, pt); evaluator.addNew(ct, other);
 * ```
 */
export type Operand = Ciphertext | Plaintext | number;

/**
 * Homomorphic operations on CKKS ciphertexts. Lattigo-style: `op(a, b, out)` writes into `out` (which may be
 * `a`), `opNew(a, b)` allocates. Every entry checks parameters, levels, scales and degrees, and throws a typed
 * error naming both sides of a mismatch or the missing key.
 *
 * @example
 * ```ts
 * const evaluator = new Evaluator(params, evaluationKeys);
 * const product = evaluator.mulRelinNew(ctA, ctB);
 * evaluator.rescale(product, product);
 * const shifted = evaluator.rotateNew(product, 1);
 * ```
 */
export class Evaluator {
  readonly params: Parameters;
  readonly keys: EvaluationKeys | undefined;
  readonly #switcher: KeySwitcher;
  readonly #rescaleConstants = new Map<
    number,
    { inverse: Float64Array; inverseShoup: Float64Array; negFrom: Float64Array }
  >();

  constructor(params: Parameters, keys?: EvaluationKeys) {
    this.params = params;
    this.keys = keys;
    this.#switcher = KeySwitcher.for(params);
    if (keys?.relinearization) params.checkSame(keys.relinearization.params, 'relinearization key');
    for (const key of keys?.galois.values() ?? []) params.checkSame(key.key.params, 'Galois key');
  }

  /** The same evaluator with other keys (shares precomputations). */
  withKeys(keys: EvaluationKeys): Evaluator {
    return new Evaluator(this.params, keys);
  }

  // -------------------------------------------------------------------------------------------------------
  // Checks

  #checkParams(operation: string, ...operands: (Ciphertext | Plaintext)[]): void {
    for (const x of operands) {
      this.params.checkSame(x.params, `${operation}: operand`);
      if (x instanceof Ciphertext) {
        for (const p of x.polys) {
          if (!p.isNtt)
            throw new MismatchError(
              `${operation}: ciphertext polynomial in the coefficient domain, expected NTT`,
            );
        }
      } else if (!x.poly.isNtt) {
        throw new MismatchError(`${operation}: plaintext in the coefficient domain, expected NTT`);
      }
    }
  }

  #checkScales(operation: string, a: { scale: number }, b: { scale: number }): void {
    if (Math.abs(a.scale - b.scale) > SCALE_TOLERANCE * Math.max(a.scale, b.scale)) {
      throw new MismatchError(
        `${operation}: scales differ: left 2^${Math.log2(a.scale).toFixed(6)} (${a.scale}), right ` +
          `2^${Math.log2(b.scale).toFixed(6)} (${b.scale}); align them with matchLevelAndScale or encode at the same scale`,
      );
    }
  }

  #checkDegree(operation: string, ct: Ciphertext, max: number): void {
    if (ct.degree > max) {
      throw new MismatchError(
        `${operation}: ciphertext of degree ${ct.degree}: expected degree ≤ ${max} (relinearize first)`,
      );
    }
  }

  /** Replaces out's polynomials (disposing the old ones it no longer uses) and metadata. */
  #assign(out: Ciphertext, polys: Poly[], level: number, scale: number): Ciphertext {
    this.params.checkSame(out.params, 'output');
    const old = out.polys.splice(0, out.polys.length, ...polys);
    for (const p of old) if (!polys.includes(p)) p.dispose();
    out.level = level;
    out.scale = scale;
    return out;
  }

  /** out = a (a deep copy unless out is a). */
  #copyInto(a: Ciphertext, out: Ciphertext): Ciphertext {
    if (out === a) return out;
    return this.#assign(
      out,
      a.polys.map((p) => p.copy()),
      a.level,
      a.scale,
    );
  }

  #blank(): Ciphertext {
    return new Ciphertext(this.params, [], 0, 1);
  }

  #moduli(level: number) {
    return this.params.moduliAtLevel(level);
  }

  /** round(value · scale), the integer a constant is encoded as (reduced per limb by the caller). */
  #scaled(value: number, scale: number, what: string): number {
    assertFinite(value, what);
    const scaled = Math.round(value * scale);
    if (!Number.isFinite(scaled)) {
      throw new InvalidArgumentError(
        `constant ${value} × scale ${scale} overflows float64: expected a smaller value`,
      );
    }
    return scaled;
  }

  /** Residues of round(value · scale) per limb (exact even beyond 2^53). */
  #constant(value: number, scale: number, level: number): ScalarResidues {
    const scaled = this.#scaled(value, scale, 'constant');
    return scalarResidues(this.#moduli(level), (m) => reduceFloat(scaled, m.value));
  }

  // -------------------------------------------------------------------------------------------------------
  // Addition and subtraction

  /** out = a + b (ciphertext, plaintext or constant); the result is at the lower level. */
  add(a: Ciphertext, b: Operand, out: Ciphertext): Ciphertext {
    return this.#addSub('add', a, b, out, false);
  }

  addNew(a: Ciphertext, b: Operand): Ciphertext {
    return this.add(a, b, this.#blank());
  }

  /** out = a − b */
  sub(a: Ciphertext, b: Operand, out: Ciphertext): Ciphertext {
    return this.#addSub('sub', a, b, out, true);
  }

  subNew(a: Ciphertext, b: Operand): Ciphertext {
    return this.sub(a, b, this.#blank());
  }

  #addSub(operation: string, a: Ciphertext, b: Operand, out: Ciphertext, subtract: boolean): Ciphertext {
    this.#checkParams(operation, a);
    if (typeof b === 'number') {
      const c = this.#constant(subtract ? -b : b, a.scale, a.level);
      const moduli = this.#moduli(a.level);
      const polys = a.polys.map((p, i) => {
        const r = Poly.alloc(moduli, true, false);
        if (i === 0) addScalarPoly(p, c, r);
        else r.assign(p);
        return r;
      });
      return this.#assign(out, polys, a.level, a.scale);
    }
    this.#checkParams(operation, b);
    this.#checkScales(operation, a, b);
    const level = Math.min(a.level, b.level);
    const moduli = this.#moduli(level);
    const bPolys = b instanceof Ciphertext ? b.polys : [b.poly];
    const degree = Math.max(a.degree, bPolys.length - 1);
    const polys: Poly[] = [];
    const batch = this.#batch(moduli.length * (degree + 1));
    for (let i = 0; i <= degree; i++) {
      const r = Poly.alloc(moduli, true, false);
      const x = a.polys[i];
      const y = bPolys[i];
      if (x && y) (subtract ? subPoly : addPoly)(x, y, r, batch);
      else if (x) r.assign(x);
      else if (subtract) negPoly(y, r, batch);
      else r.assign(y);
      polys.push(r);
    }
    batch.run();
    return this.#assign(out, polys, level, a.scale);
  }

  /** out = −a */
  neg(a: Ciphertext, out: Ciphertext): Ciphertext {
    this.#checkParams('neg', a);
    const moduli = this.#moduli(a.level);
    const batch = this.#batch(moduli.length * a.polys.length);
    const polys = a.polys.map((p) => {
      const r = Poly.alloc(moduli, true, false);
      negPoly(p, r, batch);
      return r;
    });
    batch.run();
    return this.#assign(out, polys, a.level, a.scale);
  }

  negNew(a: Ciphertext): Ciphertext {
    return this.neg(a, this.#blank());
  }

  // -------------------------------------------------------------------------------------------------------
  // Multiplication

  /**
   * out = a · b. With a ciphertext b the result has degree 2 (relinearize next, or use mulRelin); with a plaintext
   * the scales multiply; with a constant it is encoded at `constantScale` (default: the canonical scale of a's
   * level, so that a rescale lands on the canonical scale of the next level).
   */
  mul(a: Ciphertext, b: Operand, out: Ciphertext, constantScale?: number): Ciphertext {
    this.#checkParams('mul', a);
    if (typeof b === 'number') {
      const scale = constantScale ?? this.params.scaleAtLevel[a.level];
      const c = this.#constant(b, scale, a.level);
      const moduli = this.#moduli(a.level);
      const batch = this.#batch(moduli.length * a.polys.length);
      const polys = a.polys.map((p) => {
        const r = Poly.alloc(moduli, true, false);
        mulScalarPoly(p, c, r, batch);
        return r;
      });
      batch.run();
      return this.#assign(out, polys, a.level, a.scale * scale);
    }
    this.#checkParams('mul', b);
    const level = Math.min(a.level, b.level);
    const moduli = this.#moduli(level);
    if (b instanceof Plaintext) {
      const batch = this.#batch(moduli.length * a.polys.length);
      const polys = a.polys.map((p) => {
        const r = Poly.alloc(moduli, true, false);
        mulPoly(p, b.poly, r, batch);
        return r;
      });
      batch.run();
      return this.#assign(out, polys, level, a.scale * b.scale);
    }
    this.#checkDegree('mul', a, 1);
    this.#checkDegree('mul', b, 1);
    const [a0, a1] = a.polys;
    const [b0, b1] = b.polys;
    const d0 = Poly.alloc(moduli, true, false);
    const d1 = Poly.alloc(moduli, true, false);
    const d2 = Poly.alloc(moduli, true, false);
    // d1 takes two products: the second in a batch of its own, after the first.
    const batch = this.#batch(3 * moduli.length);
    mulPoly(a0, b0, d0, batch);
    mulPoly(a0, b1, d1, batch);
    mulPoly(a1, b1, d2, batch);
    batch.run();
    mulAddPoly(a1, b0, d1);
    return this.#assign(out, [d0, d1, d2], level, a.scale * b.scale);
  }

  mulNew(a: Ciphertext, b: Operand, constantScale?: number): Ciphertext {
    return this.mul(a, b, this.#blank(), constantScale);
  }

  /**
   * acc += a · c for a real constant c encoded at `constantScale` (default: the canonical scale of a's level), or
   * for a plaintext c (slot by slot), with no temporary ciphertext: the building block of dense layers, linear
   * combinations and the diagonal method (Lattigo's MulThenAdd). acc must have a's degree, a level no higher than
   * a's (and the plaintext's) and scale a.scale · constantScale (a.scale · c.scale for a plaintext).
   *
   * @example
   * ```ts
   * const acc = evaluator.mulNew(inputs[0], weights[0]);
   * for (let i = 1; i < inputs.length; i++) evaluator.mulThenAdd(inputs[i], weights[i], acc);
   * ```
   */
  mulThenAdd(a: Ciphertext, c: number | Plaintext, acc: Ciphertext, constantScale?: number): Ciphertext {
    this.#checkParams('mulThenAdd', a, acc);
    if (c instanceof Plaintext) return this.#mulPlainThenAdd(a, c, acc);
    const scale = constantScale ?? this.params.scaleAtLevel[a.level];
    this.#checkScales('mulThenAdd', { scale: a.scale * scale }, acc);
    if (acc.level > a.level)
      throw new MismatchError(`mulThenAdd: accumulator at level ${acc.level} above operand level ${a.level}`);
    if (acc.degree !== a.degree) {
      throw new MismatchError(
        `mulThenAdd: accumulator of degree ${acc.degree}, operand of degree ${a.degree}`,
      );
    }
    const residues = this.#constant(c, scale, acc.level);
    const batch = this.#batch(acc.polys[0].limbCount * a.polys.length);
    for (let i = 0; i < a.polys.length; i++) mulScalarAddPoly(a.polys[i], residues, acc.polys[i], batch);
    batch.run();
    return acc;
  }

  /**
   * ys[o] = Σ_j weights[o·k + j] · xs[j] for o < weights.length / k, k = xs.length: a block of a linear layer with
   * constant weights, each encoded at `constantScale` (default: the canonical scale of the operands' level). The
   * operands share level, scale and degree; the results have their level and degree and scale · constantScale.
   * One pass reads each operand once for all the rows (see mulScalarMatrixPolys), where a mulThenAdd per weight
   * reads every operand once per row. The same bits as mulNew and mulThenAdd would give.
   *
   * @example
   * ```ts
   * const [y0, y1] = evaluator.mulMatrixNew([x, z], Float64Array.of(0.5, -1, 2, 0.25), 2 ** 30);
   * ```
   */
  mulMatrixNew(xs: readonly Ciphertext[], weights: Float64Array, constantScale?: number): Ciphertext[] {
    if (xs.length === 0) throw new InvalidArgumentError('mulMatrixNew: no operands: expected at least one');
    const k = xs.length;
    const rows = weights.length / k;
    if (!Number.isInteger(rows) || rows === 0) {
      throw new InvalidArgumentError(
        `mulMatrixNew: ${weights.length} weights for ${k} operands: expected a positive multiple of ${k}`,
      );
    }
    const x = xs[0];
    for (const a of xs) {
      this.#checkParams('mulMatrixNew', a);
      if (a.level !== x.level || a.degree !== x.degree) {
        throw new MismatchError(
          `mulMatrixNew: operands at level ${a.level}/degree ${a.degree} and ${x.level}/${x.degree}: ` +
            'expected one level and degree',
        );
      }
      this.#checkScales('mulMatrixNew', a, x);
    }
    const scale = constantScale ?? this.params.scaleAtLevel[x.level];
    const moduli = this.#moduli(x.level);
    const limbs = moduli.length;
    const residues = new Uint32Array(limbs * weights.length);
    for (let w = 0; w < weights.length; w++) {
      const scaled = this.#scaled(weights[w], scale, 'weight');
      for (let i = 0; i < limbs; i++) residues[i * weights.length + w] = reduceFloat(scaled, moduli[i].value);
    }
    const outs = Array.from({ length: rows }, () => x.polys.map(() => Poly.alloc(moduli, true, false)));
    try {
      mulScalarMatrixPolys(
        xs.map((a) => a.polys),
        residues,
        outs,
      );
    } catch (error) {
      for (const polys of outs) for (const p of polys) p.dispose();
      throw error;
    }
    return outs.map((polys) => this.#assign(this.#blank(), polys, x.level, x.scale * scale));
  }

  /**
   * acc += a ⊙ pt in one pass over acc (the kernel multiplies and adds): the same words as mulNew and addNew, without
   * the product's polynomials, their write and their second read.
   */
  #mulPlainThenAdd(a: Ciphertext, pt: Plaintext, acc: Ciphertext): Ciphertext {
    this.#checkParams('mulThenAdd', pt);
    this.#checkScales('mulThenAdd', { scale: a.scale * pt.scale }, acc);
    if (acc.level > Math.min(a.level, pt.level)) {
      throw new MismatchError(
        `mulThenAdd: accumulator at level ${acc.level} above operand level ${Math.min(a.level, pt.level)}`,
      );
    }
    if (acc.degree !== a.degree) {
      throw new MismatchError(
        `mulThenAdd: accumulator of degree ${acc.degree}, operand of degree ${a.degree}`,
      );
    }
    const batch = this.#batch(acc.polys[0].limbCount * a.polys.length);
    for (let i = 0; i < a.polys.length; i++) mulAddPoly(a.polys[i], pt.poly, acc.polys[i], batch);
    batch.run();
    return acc;
  }

  /** out = a · b followed by relinearization (ciphertext b), or plain mul otherwise. */
  mulRelin(a: Ciphertext, b: Operand, out: Ciphertext): Ciphertext {
    this.mul(a, b, out);
    if (out.degree === 2) this.relinearize(out, out);
    return out;
  }

  mulRelinNew(a: Ciphertext, b: Operand): Ciphertext {
    return this.mulRelin(a, b, this.#blank());
  }

  /** out = a · k for an integer k (no scale change). */
  mulInt(a: Ciphertext, k: number, out: Ciphertext): Ciphertext {
    this.#checkParams('mulInt', a);
    assertInteger(k, 'k', -(2 ** 53), 2 ** 53);
    const c = scalarResidues(this.#moduli(a.level), (m) => reduceFloat(k, m.value));
    const moduli = this.#moduli(a.level);
    const polys = a.polys.map((p) => {
      const r = Poly.alloc(moduli, true, false);
      mulScalarPoly(p, c, r);
      return r;
    });
    return this.#assign(out, polys, a.level, a.scale);
  }

  mulIntNew(a: Ciphertext, k: number): Ciphertext {
    return this.mulInt(a, k, this.#blank());
  }

  /** Degree 2 → degree 1 with the relinearization key. */
  relinearize(a: Ciphertext, out: Ciphertext): Ciphertext {
    this.#checkParams('relinearize', a);
    if (a.degree === 1) return this.#copyInto(a, out);
    if (a.degree !== 2) throw new MismatchError(`relinearize: ciphertext of degree ${a.degree}: expected 2`);
    const key = this.keys?.relinearization;
    if (!key)
      throw new MissingKeyError(
        'relinearize: no relinearization key: generate EvaluationKeys with relinearization',
      );
    const [d0, d1] = this.#switcher.switchKey(a.polys[2], key, a.level);
    const moduli = this.#moduli(a.level);
    const c0 = Poly.alloc(moduli, true, false);
    const c1 = Poly.alloc(moduli, true, false);
    const batch = this.#batch(2 * moduli.length);
    addPoly(a.polys[0], d0, c0, batch);
    addPoly(a.polys[1], d1, c1, batch);
    batch.run();
    d0.dispose();
    d1.dispose();
    return this.#assign(out, [c0, c1], a.level, a.scale);
  }

  relinearizeNew(a: Ciphertext): Ciphertext {
    return this.relinearize(a, this.#blank());
  }

  // -------------------------------------------------------------------------------------------------------
  // Levels and scales

  /** Divides by the primes of the current level (rounding): level − 1, scale / Q_level. */
  rescale(a: Ciphertext, out: Ciphertext): Ciphertext {
    this.#checkParams('rescale', a);
    if (a.level === 0) throw new MismatchError('rescale: ciphertext at level 0: no prime left to divide by');
    let polys = a.polys;
    let scale = a.scale;
    const limbs = this.params.limbsAtLevel(a.level);
    for (let drop = 0; drop < this.params.primesPerLevel; drop++) {
      const next = this.#divideByLastPrime(polys, limbs - drop);
      if (polys !== a.polys) for (const p of polys) p.dispose();
      polys = next;
      scale /= this.params.qPrimes[limbs - drop - 1];
    }
    return this.#assign(out, polys, a.level - 1, scale);
  }

  rescaleNew(a: Ciphertext): Ciphertext {
    return this.rescale(a, this.#blank());
  }

  /** A batch for independent limb operations on `limbs` limbs in all (the polynomials of one result). */
  #batch(limbs: number): KernelBatch {
    return this.params.context.batch(limbs * this.params.n);
  }

  /**
   * Divides the first `limbs` limbs of each polynomial by its last of them (NTT domain in and out). Each limb is
   * a task of its own: the lifted last limb is written into the output limb, then subtracted there.
   */
  #divideByLastPrime(polys: readonly Poly[], limbs: number): Poly[] {
    const n = this.params.n;
    const last = limbs - 1;
    const constants = this.#rescaleData(limbs);
    const moduli = this.params.moduliQ;
    const context = this.params.context;
    const scratch = context.allocator.alloc(polys.length * n);
    const ql = moduli[last];
    const outs: Poly[] = [];
    try {
      let batch = context.batch(8 * n * polys.length);
      polys.forEach((p, t) => {
        const k = batch.task();
        const lastCoefficients = scratch + t * n * 4;
        k.copy(lastCoefficients, p.limbPointer(last), n);
        k.nttInverse(
          lastCoefficients,
          n,
          ql.value,
          ql.inverseTwiddles,
          ql.inverseTwiddlesShoup,
          ql.nInverse,
          ql.nInverseShoup,
        );
      });
      batch.run();
      batch = context.batch(8 * n * last * polys.length);
      polys.forEach((p, t) => {
        const out = Poly.alloc(this.#qPrefix(last), true, false);
        outs.push(out);
        for (let i = 0; i < last; i++) {
          const k = batch.task();
          const qi = moduli[i];
          const lifted = out.limbPointer(i);
          k.liftCentered(lifted, scratch + t * n * 4, n, ql.value, qi.value, constants.negFrom[i]);
          k.nttForward(lifted, n, qi.value, qi.twiddles, qi.twiddlesShoup);
          k.subMulScalar(
            lifted,
            p.limbPointer(i),
            lifted,
            n,
            qi.value,
            constants.inverse[i],
            constants.inverseShoup[i],
          );
        }
      });
      batch.run();
    } catch (error) {
      for (const out of outs) out.dispose();
      throw error;
    } finally {
      context.allocator.free(scratch, polys.length * n);
    }
    return outs;
  }

  /** Q moduli of the first `limbs` limbs, shared with the level slices where limbs is a level's count. */
  #qPrefix(limbs: number) {
    const level = this.params.levelOfLimbs(limbs);
    return Number.isInteger(level) && level >= 0 && level <= this.params.depth
      ? this.params.moduliAtLevel(level)
      : this.params.moduliQ.slice(0, limbs);
  }

  #rescaleData(limbs: number) {
    let data = this.#rescaleConstants.get(limbs);
    if (!data) {
      const last = this.params.qPrimes[limbs - 1];
      const inverse = new Float64Array(limbs - 1);
      const inverseShoup = new Float64Array(limbs - 1);
      const negFrom = new Float64Array(limbs - 1);
      for (let i = 0; i < limbs - 1; i++) {
        const q = this.params.qPrimes[i];
        inverse[i] = invMod(last % q, q);
        inverseShoup[i] = shoupConstant(inverse[i], q);
        negFrom[i] = (q - (last % q)) % q;
      }
      data = { inverse, inverseShoup, negFrom };
      this.#rescaleConstants.set(limbs, data);
    }
    return data;
  }

  /** Drops limbs down to `level` without dividing (scale unchanged). */
  dropLevel(a: Ciphertext, level: number, out: Ciphertext): Ciphertext {
    this.#checkParams('dropLevel', a);
    assertInteger(level, 'level', 0, a.level);
    const limbs = this.params.limbsAtLevel(level);
    const moduli = this.#moduli(level);
    const polys = a.polys.map((p) => {
      const r = Poly.alloc(moduli, true, false);
      this.params.context.exports.copy(r.pointer, p.pointer, limbs * this.params.n);
      return r;
    });
    return this.#assign(out, polys, level, a.scale);
  }

  dropLevelNew(a: Ciphertext, level: number): Ciphertext {
    return this.dropLevel(a, level, this.#blank());
  }

  /**
   * Brings a to (`level`, `scale`): drops to level + 1, multiplies by the constant 1 encoded at
   * scale·Q_{level+1}/a.scale (an integer ≈ 2^30 or 2^60: its rounding changes the message by < 2^-29 relative,
   * below CKKS noise) and rescales. `level` must be below a's level, or equal with an equal scale. With
   * `multiplier`, the constant is that instead of 1: a·multiplier at (`level`, `scale`) for the same level.
   */
  matchLevelAndScale(
    a: Ciphertext,
    level: number,
    scale: number,
    out: Ciphertext,
    multiplier = 1,
  ): Ciphertext {
    this.#checkParams('matchLevelAndScale', a);
    assertFinite(scale, 'scale');
    assertFinite(multiplier, 'multiplier');
    assertInteger(level, 'level', 0, a.level);
    if (level === a.level) {
      check(
        multiplier === 1,
        () =>
          `matchLevelAndScale: multiplier ${multiplier} at the operand's own level ${level}: expected a lower level`,
      );
      this.#checkScales('matchLevelAndScale', a, { scale });
      return this.#copyInto(a, out);
    }
    const dropped = this.dropLevelNew(a, level + 1);
    const limbs = this.params.limbsAtLevel(level + 1);
    let levelModulus = 1;
    for (let i = this.params.limbsAtLevel(level); i < limbs; i++) levelModulus *= this.params.qPrimes[i];
    const factor = (scale * levelModulus) / a.scale;
    check(
      factor >= 1,
      () => `matchLevelAndScale: target scale ${scale} is too small for level ${level}: factor ${factor} < 1`,
    );
    this.mul(dropped, multiplier, dropped, factor);
    this.rescale(dropped, dropped);
    this.#assign(out, dropped.polys.splice(0), dropped.level, scale);
    return out;
  }

  matchLevelAndScaleNew(a: Ciphertext, level: number, scale: number, multiplier = 1): Ciphertext {
    return this.matchLevelAndScale(a, level, scale, this.#blank(), multiplier);
  }

  // -------------------------------------------------------------------------------------------------------
  // Rotations

  #galoisKey(operation: string, galoisElement: number, description: string): SwitchingKey {
    const key = this.keys?.galois.get(galoisElement)?.key;
    if (!key) {
      throw new MissingKeyError(
        `${operation}: no Galois key for ${description} (Galois element ${galoisElement}); ` +
          'generate it with KeyGenerator.generateEvaluationKeys',
      );
    }
    return key;
  }

  #applyGalois(a: Ciphertext, galoisElement: number, key: SwitchingKey, out: Ciphertext): Ciphertext {
    this.#checkDegree('rotate', a, 1);
    const index = nttAutomorphismIndex(this.params.logN, galoisElement, this.params.context);
    const rotated1 = Poly.alloc(this.#moduli(a.level), true, false);
    automorphismNtt(a.polys[1], index, rotated1);
    const [d0, d1] = this.#switcher.switchKey(rotated1, key, a.level);
    rotated1.dispose();
    return this.#assign(out, [this.#rotatedC0(a, index, d0), d1], a.level, a.scale);
  }

  /** σ(c_0) + d_0 for the Galois index table `index`; consumes d_0. One task per limb: permute, then add. */
  #rotatedC0(a: Ciphertext, index: number, d0: Poly): Poly {
    const moduli = this.#moduli(a.level);
    const n = this.params.n;
    const c0 = Poly.alloc(moduli, true, false);
    const batch = this.#batch(moduli.length);
    for (let i = 0; i < moduli.length; i++) {
      const k = batch.task();
      k.permute(c0.limbPointer(i), a.polys[0].limbPointer(i), index, n);
      k.add(c0.limbPointer(i), c0.limbPointer(i), d0.limbPointer(i), n, moduli[i].value);
    }
    batch.run();
    d0.dispose();
    return c0;
  }

  /** out = a with its slots rotated left by `steps` (negative: right). */
  rotate(a: Ciphertext, steps: number, out: Ciphertext): Ciphertext {
    this.#checkParams('rotate', a);
    assertInteger(steps, 'steps');
    const g = galoisElementForRotation(steps, this.params.logN);
    if (g === 1) return this.#copyInto(a, out);
    return this.#applyGalois(a, g, this.#galoisKey('rotate', g, `rotation by ${steps}`), out);
  }

  rotateNew(a: Ciphertext, steps: number): Ciphertext {
    return this.rotate(a, steps, this.#blank());
  }

  /** out = complex conjugate of every slot. */
  conjugate(a: Ciphertext, out: Ciphertext): Ciphertext {
    this.#checkParams('conjugate', a);
    const g = galoisElementForConjugation(this.params.logN);
    return this.#applyGalois(a, g, this.#galoisKey('conjugate', g, 'conjugation'), out);
  }

  conjugateNew(a: Ciphertext): Ciphertext {
    return this.conjugate(a, this.#blank());
  }

  /**
   * Hoisted rotations: one decomposition of a's c_1 (ModUp) serves every step; each step then costs one
   * permutation, one inner product and one ModDown. Returns a map step → rotated ciphertext.
   *
   * @example
   * ```ts
   * const rotations = evaluator.rotateHoistedNew(ct, [1, 2, 3, 4]);
   * ```
   */
  rotateHoistedNew(a: Ciphertext, steps: readonly number[]): Map<number, Ciphertext> {
    this.#checkParams('rotateHoisted', a);
    this.#checkDegree('rotateHoisted', a, 1);
    const results = new Map<number, Ciphertext>();
    const keys = steps.map((s) => {
      assertInteger(s, 'steps[]');
      const g = galoisElementForRotation(s, this.params.logN);
      return { s, g, key: g === 1 ? undefined : this.#galoisKey('rotateHoisted', g, `rotation by ${s}`) };
    });
    const decomposition = this.#switcher.decompose(a.polys[1], a.level);
    try {
      for (const { s, g, key } of keys) {
        if (results.has(s)) continue;
        if (!key) {
          results.set(s, a.copy());
          continue;
        }
        const index = nttAutomorphismIndex(this.params.logN, g, this.params.context);
        const [d0, d1] = this.#switcher.keySwitchDecomposed(decomposition, key, a.level, index);
        results.set(s, new Ciphertext(this.params, [this.#rotatedC0(a, index, d0), d1], a.level, a.scale));
      }
    } finally {
      for (const d of decomposition) d.dispose();
    }
    return results;
  }

  /**
   * Rotate-and-sum: out = Σ_{i<count} rotate(a, i·batch), with O(log count) rotations. The steps it needs are
   * {@link Evaluator.innerSumRotations}.
   */
  innerSum(a: Ciphertext, batch: number, count: number, out: Ciphertext): Ciphertext {
    this.#checkParams('innerSum', a);
    assertInteger(batch, 'batch', 1, this.params.slots);
    assertInteger(count, 'count', 1, this.params.slots);
    let acc = a.copy();
    let k = 1;
    const bits = count.toString(2);
    for (let b = 1; b < bits.length; b++) {
      const rotated = this.rotateNew(acc, k * batch);
      this.add(acc, rotated, acc);
      rotated.dispose();
      k *= 2;
      if (bits[b] === '1') {
        const shifted = this.rotateNew(acc, batch);
        this.add(shifted, a, shifted);
        acc.dispose();
        acc = shifted;
        k += 1;
      }
    }
    return this.#assign(out, acc.polys.splice(0), acc.level, acc.scale);
  }

  innerSumNew(a: Ciphertext, batch: number, count: number): Ciphertext {
    return this.innerSum(a, batch, count, this.#blank());
  }

  /** The rotation steps `innerSum(·, batch, count)` uses: generate their keys up front. */
  static innerSumRotations(batch: number, count: number): number[] {
    const steps = new Set<number>();
    let k = 1;
    const bits = count.toString(2);
    for (let b = 1; b < bits.length; b++) {
      steps.add(k * batch);
      k *= 2;
      if (bits[b] === '1') {
        steps.add(batch);
        k += 1;
      }
    }
    return [...steps];
  }
}
