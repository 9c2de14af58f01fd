import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MismatchError, ResourceError } from '../util/errors.ts';
import { KernelContext } from './context.ts';
import { Modulus } from './modulus.ts';
import { addPoly, nttInPlace } from './ops.ts';
import { Poly } from './poly.ts';
import { nttFriendlyPrimes } from './primes.ts';

const logN = 10;
const p = nttFriendlyPrimes(logN)[0];

describe('KernelContext', () => {
  it('two contexts have their own memory, allocator and NTT tables', () => {
    const a = KernelContext.create();
    const b = KernelContext.create();
    assert.notEqual(a.memory, b.memory);
    assert.notEqual(a.allocator, b.allocator);
    const ma = Modulus.get(p, logN, a);
    const mb = Modulus.get(p, logN, b);
    assert.notEqual(ma, mb);
    assert.equal(Modulus.get(p, logN, a), ma, 'one modulus per (p, logN) and context');
    assert.deepEqual(a.view(ma.twiddles, 16), b.view(mb.twiddles, 16), 'same tables, different memory');
  });

  it('a polynomial is allocated from and freed into the allocator of its context', () => {
    const a = KernelContext.create();
    const b = KernelContext.create();
    const ma = Modulus.get(p, logN, a);
    const mb = Modulus.get(p, logN, b);
    const aBefore = a.allocator.bytesInUse;
    const bBefore = b.allocator.bytesInUse;
    const x = Poly.alloc([ma], false);
    assert.equal(x.context, a);
    assert.equal(a.allocator.bytesInUse, aBefore + 4 * x.n);
    assert.equal(b.allocator.bytesInUse, bBefore, 'the other context is untouched');
    const y = Poly.alloc([mb], false);
    x.dispose();
    assert.equal(a.allocator.bytesInUse, aBefore);
    assert.equal(b.allocator.bytesInUse, bBefore + 4 * y.n);
    y.dispose();
    assert.equal(b.allocator.bytesInUse, bBefore);
  });

  it('the same computation in two contexts gives the same limbs, in two memories', () => {
    const results = [KernelContext.create(), KernelContext.create()].map((context) => {
      const m = Modulus.get(p, logN, context);
      const x = Poly.alloc([m], false);
      const y = Poly.alloc([m], false);
      const xs = x.limb(0);
      const ys = y.limb(0);
      for (let i = 0; i < x.n; i++) {
        xs[i] = (i * 7919) % p;
        ys[i] = (i * 104729 + 3) % p;
      }
      nttInPlace(x);
      nttInPlace(y);
      addPoly(x, y, x);
      return { words: Array.from(x.words()), pointer: x.pointer, memory: context.memory };
    });
    assert.deepEqual(results[0].words, results[1].words);
    assert.notEqual(results[0].memory, results[1].memory);
  });

  it('polynomials of two contexts never meet in a kernel', () => {
    const a = KernelContext.create();
    const b = KernelContext.create();
    const x = Poly.alloc([Modulus.get(p, logN, a)], true);
    const y = Poly.alloc([Modulus.get(p, logN, b)], true);
    assert.throws(() => addPoly(x, y, x), MismatchError);
    assert.throws(() => x.assign(y), /kernel contexts/);
    assert.throws(
      () => Poly.alloc([Modulus.get(p, logN, a), Modulus.get(nttFriendlyPrimes(logN)[1], logN, b)], true),
      /belongs to kernel context/,
    );
  });

  it('a freed polynomial goes back to the allocator it came from, even after the context installed another', () => {
    const context = KernelContext.create();
    const m = Modulus.get(p, logN, context);
    const original = context.allocator;
    const x = Poly.alloc([m], false);
    const inUse = original.bytesInUse;
    const frees: number[] = [];
    context.setAllocator({
      alloc: (words) => original.alloc(words),
      free: (pointer, words) => {
        frees.push(pointer);
        original.free(pointer, words);
      },
      get bytesInUse() {
        return original.bytesInUse;
      },
      get peakBytes() {
        return original.peakBytes;
      },
    });
    x.dispose();
    assert.deepEqual(frees, [], 'not freed into the wrapper');
    assert.equal(original.bytesInUse, inUse - 4 * x.n);
    context.setAllocator(original);
  });

  it('a memory limit is a typed error, not an abort', () => {
    const context = KernelContext.create({ maximumPages: 32 });
    assert.throws(() => context.allocator.alloc(2 ** 20), ResourceError);
  });
});
