import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BasisExtender } from './base-conversion.ts';
import { KernelContext } from './context.ts';
import { CrtComposer } from './crt.ts';
import { automorphismCoefficients, galoisElementForRotation, nttAutomorphismIndex } from './galois.ts';
import { barrettConstant, mulMod, powMod, reduceFloat, shoupConstant } from './modarith.ts';
import { Modulus } from './modulus.ts';
import { automorphismNtt, inttInPlace, nttInPlace } from './ops.ts';
import { Poly } from './poly.ts';
import { isPrime, nttFriendlyPrimes, primitiveRoot2N } from './primes.ts';
import {
  referenceAutomorphism,
  referenceBasisExtension,
  referenceCenteredCrt,
  referenceElementwise,
  referenceInnerProduct2,
  referenceNegacyclicProduct,
  referenceNttForward,
  referenceNttInverse,
} from '../../tests/support/ring-reference.ts';

/** The kernels under test run in a context of their own. */
const context = KernelContext.create();

/** Deterministic xorshift for test inputs (no crypto needed here). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function randomResidues(n: number, p: number, seed: number): Uint32Array {
  const next = rng(seed);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() % p;
  // Edge values at fixed spots.
  out[0] = 0;
  out[1] = p - 1;
  if (n > 3) out[n - 1] = p - 1;
  return out;
}

describe('primes', () => {
  it('finds NTT-friendly primes in (2^29, 2^30) for every supported N', () => {
    for (let logN = 10; logN <= 17; logN++) {
      const primes = nttFriendlyPrimes(logN);
      assert.ok(primes.length >= 100, `logN ${logN}: ${primes.length} primes`);
      for (const p of primes.slice(0, 5)) {
        assert.ok(isPrime(p));
        assert.equal((p - 1) % 2 ** (logN + 1), 0);
        const psi = primitiveRoot2N(p, logN);
        assert.equal(powMod(psi, 2 ** logN, p), p - 1);
      }
    }
  });
  it('agrees with trial division on small numbers', () => {
    for (let n = 0; n < 5000; n++) {
      let prime = n >= 2;
      for (let d = 2; d * d <= n; d++) if (n % d === 0) prime = false;
      assert.equal(isPrime(n), prime, `n = ${n}`);
    }
  });
});

describe('scalar modular arithmetic', () => {
  it('mulMod, shoupConstant, barrettConstant and reduceFloat are exact', () => {
    const p = nttFriendlyPrimes(14)[0];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: p - 1 }), fc.integer({ min: 0, max: p - 1 }), (a, b) => {
        assert.equal(mulMod(a, b, p), Number((BigInt(a) * BigInt(b)) % BigInt(p)));
        assert.equal(shoupConstant(a, p), Number((BigInt(a) << 32n) / BigInt(p)));
      }),
    );
    assert.equal(barrettConstant(p), Number((1n << 61n) / BigInt(p)));
    fc.assert(
      fc.property(fc.double({ min: -(2 ** 120), max: 2 ** 120, noNaN: true }), (x) => {
        const v = Math.round(x);
        const exact = ((BigInt(v) % BigInt(p)) + BigInt(p)) % BigInt(p);
        assert.equal(reduceFloat(v, p), Number(exact), `x = ${v}`);
      }),
    );
  });
});

describe('NTT kernels agree with the reference', () => {
  for (let logN = 10; logN <= 17; logN++) {
    it(`logN = ${logN}`, () => {
      const n = 2 ** logN;
      const p = nttFriendlyPrimes(logN)[logN % 3];
      const m = Modulus.get(p, logN, context);
      const poly = Poly.alloc([m], false);
      const input = randomResidues(n, p, logN);
      poly.limb(0).set(input);
      nttInPlace(poly);
      const expected = referenceNttForward(input, p, logN);
      assert.deepEqual(poly.limb(0), expected);
      inttInPlace(poly);
      assert.deepEqual(poly.limb(0), input);
      // The inverse reference applied to the forward reference is the identity too.
      assert.deepEqual(referenceNttInverse(expected, p, logN), input);
      poly.dispose();
    });
  }
  it('NTT products are negacyclic convolutions (n = 1024)', () => {
    const logN = 10;
    const p = nttFriendlyPrimes(logN)[0];
    const m = Modulus.get(p, logN, context);
    const a = Poly.alloc([m], false);
    const b = Poly.alloc([m], false);
    const av = randomResidues(1024, p, 1);
    const bv = randomResidues(1024, p, 2);
    a.limb(0).set(av);
    b.limb(0).set(bv);
    nttInPlace(a);
    nttInPlace(b);
    const k = context.exports;
    k.mul(a.limbPointer(0), a.limbPointer(0), b.limbPointer(0), 1024, p, m.barrett);
    inttInPlace(a);
    assert.deepEqual(a.limb(0), referenceNegacyclicProduct(av, bv, p));
  });
  it('accepts lazy inputs in [0, 4p) for the forward transform', () => {
    const logN = 11;
    const p = nttFriendlyPrimes(logN)[1];
    const m = Modulus.get(p, logN, context);
    const poly = Poly.alloc([m], false);
    const input = randomResidues(2048, p, 9);
    const lazy = input.map((x, i) => x + (i % 4) * p);
    poly.limb(0).set(lazy);
    nttInPlace(poly);
    assert.deepEqual(poly.limb(0), referenceNttForward(input, p, logN));
  });
});

describe('element-wise kernels agree with the reference', () => {
  const logN = 12;
  const n = 2 ** logN;
  for (const p of [nttFriendlyPrimes(logN)[0], nttFriendlyPrimes(logN).at(-1)!]) {
    it(`p = ${p}`, () => {
      const m = Modulus.get(p, logN, context);
      const k = context.exports;
      const a = Poly.alloc([m], false);
      const b = Poly.alloc([m], false);
      const out = Poly.alloc([m], false);
      const av = randomResidues(n, p, 3);
      const bv = randomResidues(n, p, 4);
      const accv = randomResidues(n, p, 5);
      a.limb(0).set(av);
      b.limb(0).set(bv);
      const check = (name: string, expected: (i: number) => number) => {
        const got = out.limb(0);
        for (let i = 0; i < n; i++) assert.equal(got[i], expected(i), `${name}[${i}]`);
      };
      const [A, B, O] = [a.limbPointer(0), b.limbPointer(0), out.limbPointer(0)];
      const e = referenceElementwise;
      k.add(O, A, B, n, p);
      check('add', (i) => e.add(av[i], bv[i], p));
      k.sub(O, A, B, n, p);
      check('sub', (i) => e.sub(av[i], bv[i], p));
      k.neg(O, A, n, p);
      check('neg', (i) => e.neg(av[i], p));
      k.mul(O, A, B, n, p, m.barrett);
      check('mul', (i) => e.mul(av[i], bv[i], p));
      out.limb(0).set(accv);
      k.mulAdd(O, A, B, n, p, m.barrett);
      check('mulAdd', (i) => e.mulAdd(accv[i], av[i], bv[i], p));
      out.limb(0).set(accv);
      k.mulSub(O, A, B, n, p, m.barrett);
      check('mulSub', (i) => e.mulSub(accv[i], av[i], bv[i], p));
      const w = p - 2;
      const ws = shoupConstant(w, p);
      // Shoup accepts any 32-bit input: feed full-range words.
      const wide = randomResidues(n, 2 ** 32 - 1, 6);
      b.limb(0).set(wide);
      k.mulScalar(O, B, n, p, w, ws);
      check('mulScalar', (i) => e.mulScalar(wide[i], w, p));
      out.limb(0).set(accv);
      k.mulScalarAdd(O, B, n, p, w, ws);
      check('mulScalarAdd', (i) => e.mulScalarAdd(accv[i], wide[i], w, p));
      b.limb(0).set(bv);
      k.subMulScalar(O, A, B, n, p, w, ws);
      check('subMulScalar', (i) => e.subMulScalar(av[i], bv[i], w, p));
      k.addScalar(O, A, n, p, 12345);
      check('addScalar', (i) => e.addScalar(av[i], 12345, p));
      const other = nttFriendlyPrimes(logN)[7];
      k.liftCentered(O, A, n, p, other, (other - (p % other)) % other);
      check('liftCentered', (i) => e.liftCentered(av[i], p, other));
      for (const x of [a, b, out]) x.dispose();
    });
  }
});

describe('Galois automorphisms in the NTT domain', () => {
  it('match the coefficient-domain definition for rotations and conjugation', () => {
    const logN = 10;
    const n = 2 ** logN;
    const p = nttFriendlyPrimes(logN)[2];
    const m = Modulus.get(p, logN, context);
    for (const g of [galoisElementForRotation(1, logN), galoisElementForRotation(-3, logN), 2 * n - 1]) {
      const input = randomResidues(n, p, g);
      const a = Poly.alloc([m], false);
      a.limb(0).set(input);
      nttInPlace(a);
      const out = Poly.alloc([m], true);
      automorphismNtt(a, nttAutomorphismIndex(logN, g, context), out);
      inttInPlace(out);
      assert.deepEqual(out.limb(0), referenceAutomorphism(input, g, p), `g = ${g}`);
      a.dispose();
      out.dispose();
    }
  });
  it('automorphismCoefficients on signed values agrees with the residue version', () => {
    const values = Int32Array.from({ length: 64 }, (_, i) => (i % 5) - 2);
    const p = nttFriendlyPrimes(10)[0];
    const residues = Array.from(values, (v) => (v + p) % p);
    const signed = automorphismCoefficients(values, 5);
    assert.deepEqual(
      Array.from(signed, (v) => (v + p) % p),
      Array.from(referenceAutomorphism(residues, 5, p)),
    );
  });
});

describe('fast basis extension', () => {
  it('equals exact CRT extension up to u·Q with 0 ≤ u < k', () => {
    const logN = 10;
    const n = 2 ** logN;
    const primes = nttFriendlyPrimes(logN);
    const from = primes.slice(0, 3).map((p) => Modulus.get(p, logN, context));
    const to = primes.slice(3, 6).map((p) => Modulus.get(p, logN, context));
    const input = Poly.alloc(from, false);
    for (let i = 0; i < 3; i++) input.limb(i).set(randomResidues(n, from[i].value, 20 + i));
    const output = Poly.alloc(to, false);
    const scratch = Poly.alloc(from, false);
    new BasisExtender(from, to).extend(
      (i) => input.limbPointer(i),
      (j) => output.limbPointer(j),
      n,
      scratch.pointer,
    );
    for (let c = 0; c < n; c += 37) {
      const residues = from.map((_, i) => input.limb(i)[c]);
      const ref = referenceBasisExtension(
        residues,
        from.map((m) => m.value),
        to.map((m) => m.value),
      );
      const got = to.map((_, j) => output.limb(j)[c]);
      const ok = [0, 1, 2].some((u) =>
        to.every((m, j) => {
          const expected = (ref.value + BigInt(u) * ref.modulusProduct) % BigInt(m.value);
          return Number(expected) === got[j];
        }),
      );
      assert.ok(ok, `coefficient ${c}`);
    }
    assert.ok(context.view(output.pointer, 4).length === 4);
  });
});

describe('decoder, key-switching and exact-extension kernels agree with the reference', () => {
  const logN = 10;
  const n = 2 ** logN;
  const primes = nttFriendlyPrimes(logN);

  it('innerProduct2 (lazy 64-bit accumulation) for 1 … 8 digits, including all-(p−1) inputs', () => {
    const p = primes[4];
    const m = Modulus.get(p, logN, context);
    for (const count of [1, 3, 8]) {
      const polys = Array.from({ length: 3 * count }, (_, i) => {
        const poly = Poly.alloc([m], true);
        poly.limb(0).set(i % 5 === 0 ? new Uint32Array(n).fill(p - 1) : randomResidues(n, p, 100 + i));
        return poly;
      });
      const table = Poly.alloc([m], true);
      const words = table.limb(0);
      for (let j = 0; j < count; j++) {
        words[3 * j] = polys[3 * j].pointer;
        words[3 * j + 1] = polys[3 * j + 1].pointer;
        words[3 * j + 2] = polys[3 * j + 2].pointer;
      }
      const out0 = Poly.alloc([m], true);
      const out1 = Poly.alloc([m], true);
      context.exports.innerProduct2(
        out0.pointer,
        out1.pointer,
        table.pointer,
        count,
        n,
        p,
        m.barrett,
        2 ** 32 % p,
      );
      const pick = (offset: number) => polys.filter((_, i) => i % 3 === offset).map((x) => x.limb(0));
      const [e0, e1] = referenceInnerProduct2(pick(0), pick(1), pick(2), p);
      assert.deepEqual(out0.limb(0), e0, `count ${count}`);
      assert.deepEqual(out1.limb(0), e1, `count ${count}`);
    }
  });

  it('exact basis extension (overflow count) equals CRT for values away from 0 mod Q', () => {
    const from = primes.slice(10, 13).map((p) => Modulus.get(p, logN, context));
    const to = primes.slice(13, 15).map((p) => Modulus.get(p, logN, context));
    const input = Poly.alloc(from, false);
    for (let i = 0; i < 3; i++) input.limb(i).set(randomResidues(n, from[i].value, 40 + i));
    const output = Poly.alloc(to, false);
    const scratch = Poly.alloc([...from, from[0]], false);
    new BasisExtender(from, to).extendExact(
      (i) => input.limbPointer(i),
      (j) => output.limbPointer(j),
      n,
      scratch.pointer,
    );
    for (let c = 2; c < n; c += 5) {
      const ref = referenceBasisExtension(
        from.map((_, i) => input.limb(i)[c]),
        from.map((m) => m.value),
        to.map((m) => m.value),
      );
      assert.deepEqual(
        to.map((_, j) => output.limb(j)[c]),
        ref.exact,
        `coefficient ${c}`,
      );
    }
  });

  it('CRT composition (candidate + verification + fallback) equals the centered BigInt value', () => {
    const moduli = primes.slice(20, 26).map((p) => Modulus.get(p, logN, context));
    const values = moduli.map((m) => m.value);
    const poly = Poly.alloc(moduli, false);
    const next = rng(77);
    const expected: bigint[] = [];
    const product = values.reduce((acc, q) => acc * BigInt(q), 1n);
    for (let c = 0; c < n; c++) {
      // Small signed values (fast path) and full-range values (fallback), mixed.
      let v: bigint;
      if (c % 3 === 0) v = BigInt((next() % 2000000) - 1000000);
      else if (c % 3 === 1) v = (BigInt(next()) << 20n) * (c % 2 === 0 ? 1n : -1n);
      else v = ((BigInt(next()) << 120n) + BigInt(next())) % (product / 2n);
      expected.push(v);
      for (let i = 0; i < moduli.length; i++) {
        const q = BigInt(values[i]);
        poly.limb(i)[c] = Number(((v % q) + q) % q);
      }
    }
    const out = new Float64Array(n);
    const composer = new CrtComposer(values, context, 2);
    composer.compose(poly, out);
    for (let c = 0; c < n; c++) {
      const exact = referenceCenteredCrt(
        moduli.map((_, i) => poly.limb(i)[c]),
        values,
      );
      assert.equal(exact, expected[c]);
      const relative = Math.abs(out[c] - Number(exact)) / Math.max(1, Math.abs(Number(exact)));
      assert.ok(relative < 2 ** -50, `coefficient ${c}: ${out[c]} vs ${exact}`);
    }
  });

  it('fromSigned maps |v| < p to [0, p)', () => {
    const p = primes[3];
    const m = Modulus.get(p, logN, context);
    const source = Poly.alloc([m], false);
    const signed = new Int32Array(source.limb(0).buffer, source.pointer, n);
    for (let i = 0; i < n; i++) signed[i] = i % 2 === 0 ? -(i * 1021) % p : (i * 7919) % p;
    signed[0] = -(p - 1);
    const out = Poly.alloc([m], false);
    context.exports.fromSigned(out.pointer, source.pointer, n, p);
    for (let i = 0; i < n; i++) assert.equal(out.limb(0)[i], ((signed[i] % p) + p) % p);
  });
});
