import { assertInteger, check } from '../../util/assert.ts';
import type { Evaluator } from '../evaluator.ts';
import type { Ciphertext } from '../objects.ts';
import { Polynomial } from '../polynomial.ts';
import { PolynomialEvaluator } from '../polynomial-evaluator.ts';

/**
 * A plain description of the homomorphic modular reduction, checked by {@link EvalMod.create}.
 *
 * @example
 * ```ts
 * const literal: EvalModLiteral = { bound: 16, doubleAngle: 3 };
 * ```
 */
export interface EvalModLiteral {
  /** K: the largest |I| of the overflow t = Δ·m + e + q0·I after ModRaise that is reduced correctly. */
  bound: number;
  /** r: double-angle steps after the cosine (each halves the interval the polynomial covers). */
  doubleAngle: number;
  /** Largest error of the interpolant on its interval, before the double-angle steps amplify it. Default 2^-46. */
  maxInterpolationError?: number;
}

/** Degrees tried for the interpolant, up to this one. */
const MAX_DEGREE = 255;

/**
 * EvalMod: slot-wise x ↦ sin(2π·K'·x) for x = t/(q0·K') in [−1, 1], K' = K + 1, which is 2π·(t mod q0)/q0 up to
 * a cubic error when (t mod q0)/q0 is small. It is the scaled-cosine method of Han and Ki (CT-RSA 2020), as in
 * Lattigo: a Chebyshev interpolant of cos(2π(K'x − 1/4)/2^r) on [−1, 1], then r double-angle steps
 * cos 2θ = 2cos²θ − 1, giving cos(2π(K'x − 1/4)) = sin(2πK'x).
 *
 * Why this one: the interpolant's degree grows with the interval it must cover, 2πK'/2^r radians, so each
 * double-angle step halves it for one level; at K = 16, r = 3 a degree-~40 interpolant reaches 2^-46, and the
 * whole reduction costs ⌈log2(d + 1)⌉ + r levels (9 here). The interpolant's error is amplified about 4× by each
 * double-angle step, which {@link EvalModLiteral.maxInterpolationError} accounts for.
 *
 * @example
 * ```ts
 * const evalMod = EvalMod.create({ bound: 16, doubleAngle: 3 });
 * evalMod.levels; // 9
 * ```
 */
export class EvalMod {
  readonly bound: number;
  readonly doubleAngle: number;
  /** The Chebyshev interpolant of the scaled, shifted cosine on [−1, 1]. */
  readonly polynomial: Polynomial;
  /** Its largest error on [−1, 1], measured on a dense grid. */
  readonly interpolationError: number;
  /** Levels consumed: the interpolant's plus one per double-angle step. */
  readonly levels: number;

  private constructor(bound: number, doubleAngle: number, polynomial: Polynomial, error: number) {
    this.bound = bound;
    this.doubleAngle = doubleAngle;
    this.polynomial = polynomial;
    this.interpolationError = error;
    this.levels = PolynomialEvaluator.levelsConsumed(polynomial) + doubleAngle;
  }

  /**
   * Picks the lowest interpolant degree within the error asked for (the degree, not the level count, sets the
   * number of products).
   */
  static create(literal: EvalModLiteral): EvalMod {
    assertInteger(literal.bound, 'bound', 1, 256);
    assertInteger(literal.doubleAngle, 'doubleAngle', 0, 8);
    const maxError = literal.maxInterpolationError ?? 2 ** -46;
    check(
      Number.isFinite(maxError) && maxError > 0 && maxError < 1,
      () => `maxInterpolationError = ${maxError}: expected a number in (0, 1)`,
    );
    const k = literal.bound + 1;
    const r = literal.doubleAngle;
    const f = (x: number) => Math.cos((2 * Math.PI * (k * x - 0.25)) / 2 ** r);
    for (let degree = 7; degree <= MAX_DEGREE; degree++) {
      const p = Polynomial.chebyshevInterpolant(f, degree, [-1, 1]);
      const error = maxErrorOnGrid(p, f);
      if (error <= maxError) return new EvalMod(literal.bound, r, p, error);
    }
    throw new RangeError(
      `EvalMod: no interpolant of degree ≤ ${MAX_DEGREE} reaches ${maxError} for bound ${literal.bound} with ` +
        `${r} double-angle steps: add double-angle steps`,
    );
  }

  /** sin(2π·K'·x) evaluated the way the homomorphic version does (for tests and the noise-free simulation). */
  evaluatePlain(x: number): number {
    let y = this.polynomial.evaluate(x);
    for (let i = 0; i < this.doubleAngle; i++) y = 2 * y * y - 1;
    return y;
  }

  /**
   * The reduction on a ciphertext at its canonical scale whose slots lie in [−1, 1]: returns a new ciphertext
   * {@link levels} lower, at the canonical scale of that level.
   */
  evaluateNew(evaluator: Evaluator, ct: Ciphertext): Ciphertext {
    const out = new PolynomialEvaluator(evaluator).evaluateNew(ct, this.polynomial);
    for (let i = 0; i < this.doubleAngle; i++) {
      evaluator.mulRelin(out, out, out);
      evaluator.rescale(out, out);
      evaluator.mulInt(out, 2, out);
      evaluator.add(out, -1, out);
    }
    return out;
  }
}

function maxErrorOnGrid(p: Polynomial, f: (x: number) => number): number {
  let error = 0;
  const points = 8192;
  for (let i = 0; i <= points; i++) {
    const x = -1 + (2 * i) / points;
    error = Math.max(error, Math.abs(p.evaluate(x) - f(x)));
  }
  return error;
}
