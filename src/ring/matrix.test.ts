import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KernelContext } from './context.ts';
import { Modulus } from './modulus.ts';
import { mulScalarAddPoly, mulScalarMatrixPolys, mulScalarPoly, scalarResidues } from './ops.ts';
import { Poly } from './poly.ts';
import { nttFriendlyPrimes } from './primes.ts';
import { Prng } from './prng.ts';
import { MismatchError } from '../util/errors.ts';

/**
 * mulScalarMatrixPolys (a block of a linear layer in one pass, accumulated lazily in 64 bits) against the chain of
 * Shoup multiply-adds it replaces: the same words, for term counts around its fold every twelve terms, for the
 * largest residues (where the 64-bit bound is tight), on one thread and on several.
 */
const logN = 10;

function setup(context: KernelContext, limbs: number) {
  const moduli = nttFriendlyPrimes(logN)
    .slice(0, limbs)
    .map((p) => Modulus.get(p, logN, context));
  return moduli;
}

function fill(poly: Poly, value: (limb: number, j: number) => number): Poly {
  for (let i = 0; i < poly.limbCount; i++) {
    const limb = poly.limb(i);
    for (let j = 0; j < limb.length; j++) limb[j] = value(i, j);
  }
  return poly;
}

/** Outputs of both ways for k terms and m rows of `polys` polynomials; `extreme`: every residue is q − 1. */
function both(threads: number, k: number, m: number, polys: number, extreme: boolean) {
  const context = KernelContext.create({ threads });
  try {
    const moduli = setup(context, 3);
    const prng = Prng.fromSeed(new Uint8Array(32).fill(k * 31 + m));
    const residue = (i: number) => (extreme ? moduli[i].value - 1 : prng.nextUint32() % moduli[i].value);
    // Terms with one limb more than the outputs: they are read on the outputs' limbs.
    const termModuli = [...moduli, ...setup(context, 4).slice(3)];
    const terms = Array.from({ length: k }, () =>
      Array.from({ length: polys }, () => fill(Poly.alloc(termModuli, true), (i) => residue(Math.min(i, 2)))),
    );
    const weights = new Uint32Array(moduli.length * m * k);
    const perWeight = Array.from({ length: m * k }, (_, w) =>
      scalarResidues(moduli, (_m, i) => {
        const r = residue(i);
        weights[i * m * k + w] = r;
        return r;
      }),
    );
    const chain = Array.from({ length: m }, (_, o) =>
      Array.from({ length: polys }, (_, d) => {
        const out = Poly.alloc(moduli, true);
        mulScalarPoly(terms[0][d], perWeight[o * k], out);
        for (let j = 1; j < k; j++) mulScalarAddPoly(terms[j][d], perWeight[o * k + j], out);
        return Array.from({ length: moduli.length }, (_, i) => Array.from(out.limb(i)));
      }),
    );
    const outs = Array.from({ length: m }, () =>
      Array.from({ length: polys }, () => Poly.alloc(moduli, true)),
    );
    mulScalarMatrixPolys(terms, weights, outs);
    const matrix = outs.map((row) =>
      row.map((out) => Array.from({ length: moduli.length }, (_, i) => Array.from(out.limb(i)))),
    );
    return { chain, matrix };
  } finally {
    context.close();
  }
}

describe('mulScalarMatrixPolys', () => {
  for (const [k, m] of [
    [1, 1],
    [12, 2],
    [13, 3],
    [30, 4],
  ]) {
    it(`equals the chain of multiply-adds word for word: ${k} terms, ${m} rows, random residues`, () => {
      const { chain, matrix } = both(1, k, m, 2, false);
      assert.deepEqual(matrix, chain);
    });
  }

  it('equals it with every residue q − 1 (the 64-bit accumulator at its bound), 37 terms', () => {
    const { chain, matrix } = both(1, 37, 2, 1, true);
    assert.deepEqual(matrix, chain);
  });

  it('gives the same words on 1, 2 and 3 threads', () => {
    const one = both(1, 25, 5, 3, false).matrix;
    assert.deepEqual(both(2, 25, 5, 3, false).matrix, one);
    assert.deepEqual(both(3, 25, 5, 3, false).matrix, one);
  });

  it('refuses weights of the wrong count or not reduced, and operands of other shapes', () => {
    const context = KernelContext.create({ threads: 1 });
    try {
      const moduli = setup(context, 2);
      const x = [Poly.alloc(moduli, true), Poly.alloc(moduli, true)];
      const out = [[Poly.alloc(moduli, true), Poly.alloc(moduli, true)]];
      assert.throws(
        () => mulScalarMatrixPolys([x], new Uint32Array(3), out),
        (e: unknown) => e instanceof MismatchError && /3 weight residues .* expected 2/.test(e.message),
      );
      assert.throws(
        () => mulScalarMatrixPolys([x], Uint32Array.of(1, moduli[1].value), out),
        (e: unknown) => e instanceof MismatchError && /on limb 1: expected </.test(e.message),
      );
      assert.throws(
        () => mulScalarMatrixPolys([[x[0]]], Uint32Array.of(1, 1), out),
        (e: unknown) => e instanceof MismatchError && /a value of 1 polynomials/.test(e.message),
      );
      const short = [Poly.alloc(moduli.slice(0, 1), true), Poly.alloc(moduli.slice(0, 1), true)];
      assert.throws(() => mulScalarMatrixPolys([short], Uint32Array.of(1, 1), out), MismatchError);
    } finally {
      context.close();
    }
  });
});
