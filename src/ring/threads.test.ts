import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { KernelContext } from './context.ts';
import { Modulus } from './modulus.ts';
import { addPoly, inttInPlace, mulPoly, mulScalarAddPoly, nttInPlace, scalarResidues } from './ops.ts';
import { Poly } from './poly.ts';
import { nttFriendlyPrimes } from './primes.ts';
import { Prng } from './prng.ts';

function seed(label: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? label : (0x5a + 11 * i) & 0xff));
}

function wordsOf(context: KernelContext, polys: readonly Poly[]): string {
  const hash = sha256.create();
  for (const p of polys) hash.update(context.bytes(p.pointer, p.n * p.limbCount * 4));
  return bytesToHex(hash.digest());
}

/** Ring arithmetic on a fresh context with `threads` threads: the digest of every intermediate result. */
function ringRun(threads: number): string[] {
  const context = KernelContext.create({ threads });
  try {
    const logN = 13;
    const moduli = nttFriendlyPrimes(logN)
      .slice(0, 12)
      .map((p) => Modulus.get(p, logN, context));
    const a = Poly.alloc(moduli, false);
    const b = Poly.alloc(moduli, false);
    const prng = Prng.fromSeed(seed(1));
    for (const p of [a, b]) {
      for (let i = 0; i < p.limbCount; i++) {
        const limb = p.limb(i);
        for (let j = 0; j < limb.length; j++) limb[j] = prng.nextUint32() % moduli[i].value;
      }
    }
    const out: string[] = [];
    nttInPlace(a);
    nttInPlace(b);
    out.push(wordsOf(context, [a, b]));
    mulPoly(a, b, a);
    addPoly(a, b, b);
    mulScalarAddPoly(
      a,
      scalarResidues(moduli, (m) => 123456789 % m.value),
      b,
    );
    out.push(wordsOf(context, [a, b]));
    inttInPlace(a);
    inttInPlace(b);
    out.push(wordsOf(context, [a, b]));
    return out;
  } finally {
    context.close();
  }
}

describe('kernel threads', () => {
  it('ring arithmetic gives the same bits on 1, 2 and 3 threads', () => {
    const one = ringRun(1);
    assert.deepEqual(ringRun(2), one);
    assert.deepEqual(ringRun(3), one);
  });

  it('the kernel threads start and run tasks (the calling thread does not do all the work)', () => {
    const context = KernelContext.create({ threads: 2 });
    try {
      const words = 1 << 14;
      const region = context.allocator.alloc(words * 64);
      // Batches until a kernel thread has run a task, for at most 60 s (a thread starts in well under a second).
      const start = Date.now();
      while (context.threadActivity().tasks === 0 && Date.now() - start < 60_000) {
        const batch = context.batch(words * 64);
        for (let t = 0; t < 64; t++) batch.task().fill(region + t * words * 4, words, t);
        batch.run();
      }
      assert.equal(context.threadActivity().running, 1);
      assert.ok(context.threadActivity().tasks > 0, 'a kernel thread ran tasks');
      const view = context.view(region, words * 64);
      for (let t = 0; t < 64; t++) assert.equal(view[t * words + 7], t);
      context.allocator.free(region, words * 64);
    } finally {
      context.close();
    }
    assert.deepEqual(context.threadActivity(), { running: 0, tasks: 0 });
  });

  it('a batch past the command and task tables runs in parts, in order within each task', () => {
    const context = KernelContext.create({ threads: 2 });
    try {
      const words = 8;
      const tasks = 40_000; // more than the 32,768-task table
      const region = context.allocator.alloc(words * tasks);
      const view = context.view(region, words * tasks);
      const batch = context.batch(1 << 20);
      for (let t = 0; t < tasks; t++) {
        const k = batch.task();
        // Two commands per task, the second depending on the first: 80,000 commands in all (the table holds 65,536).
        k.fill(region + t * words * 4, words, t);
        k.addScalar(region + t * words * 4, region + t * words * 4, words, 0x7fffffff, 1);
      }
      batch.run();
      for (let t = 0; t < tasks; t++) assert.equal(view[t * words + words - 1], t + 1, `task ${t}`);
      context.allocator.free(region, words * tasks);
    } finally {
      context.close();
    }
  });

  it('a task that faults fails its batch with an error, and the next batch runs', () => {
    const context = KernelContext.create({ threads: 2 });
    try {
      const words = 4096;
      const region = context.allocator.alloc(words * 16);
      const bad = context.batch(1 << 20);
      for (let t = 0; t < 16; t++) bad.task().fill(region + t * words * 4, words, 7);
      bad.task().fill(2 ** 32 - 64, words, 1); // past the end of kernel memory
      assert.throws(() => bad.run(), /out of bounds|failed in a kernel/);
      const good = context.batch(1 << 20);
      for (let t = 0; t < 16; t++) good.task().fill(region + t * words * 4, words, t + 1);
      good.run();
      const view = context.view(region, words * 16);
      for (let t = 0; t < 16; t++) assert.equal(view[t * words + 5], t + 1);
      context.allocator.free(region, words * 16);
    } finally {
      context.close();
    }
  });

  it('the thread count of a context can change, and a closed context computes on the calling thread', () => {
    const context = KernelContext.create({ threads: 2 });
    assert.equal(context.threads, 2);
    context.setThreads(1);
    assert.equal(context.threads, 1);
    context.setThreads(3);
    assert.equal(context.threads, 3);
    assert.throws(() => context.setThreads(0), /threads/);
    context.close();
    assert.equal(context.threads, 1);
    const words = 1 << 16;
    const region = context.allocator.alloc(words);
    const batch = context.batch(words);
    batch.task().fill(region, words, 9);
    batch.run();
    assert.equal(context.view(region, words)[words - 1], 9);
  });
});
