import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../util/errors.ts';
import { defaultContext } from './context.ts';
import { Prng } from './prng.ts';
import {
  randomBoundedInt,
  sampleGaussian,
  sampleSparseTernary,
  sampleTernary,
  sampleUniformMod,
  sampleUniformRns,
  skipUniformMod,
  signedToRns,
} from './sampling.ts';

function prngOf(byte: number): Prng {
  return Prng.fromSeed(new Uint8Array(32).fill(byte));
}

/** Two streams of one seed (from `salt`), both `before` words in: part-way through a buffer. */
function twinStreams(salt: number, before: number): [Prng, Prng] {
  const seed = new Uint8Array(32).fill(salt & 0xff);
  seed[0] = salt >>> 8;
  const twins: [Prng, Prng] = [Prng.fromSeed(seed), Prng.fromSeed(seed)];
  for (const prng of twins) prng.fillUint32(new Uint32Array(before));
  return twins;
}

function chiSquare(counts: ArrayLike<number>, total: number): number {
  const expected = total / counts.length;
  let statistic = 0;
  for (let i = 0; i < counts.length; i++) statistic += (counts[i] - expected) ** 2 / expected;
  return statistic;
}

function throwsInvalid(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    for (const fragment of fragments)
      assert.ok(e.message.includes(fragment), `"${e.message}" lacks "${fragment}"`);
    return true;
  });
}

// Two 30-bit primes congruent to 1 mod 2^17 (NTT-friendly up to n = 2^16) and a small prime.
const MODULI = [1073479681, 1071513601, 97];

describe('randomBoundedInt', () => {
  it('stays in [0, bound) for any bound up to 2^32 (property)', () => {
    const prng = prngOf(1);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 32 }), (bound) => {
        const x = randomBoundedInt(prng, bound);
        assert.ok(Number.isInteger(x) && x >= 0 && x < bound, `${x} for bound ${bound}`);
      }),
      { seed: 1, numRuns: 2000 },
    );
    assert.equal(randomBoundedInt(prng, 1), 0);
  });

  it('is uniform on a bound that is not a power of two', () => {
    const prng = prngOf(2);
    const counts = new Float64Array(6);
    const total = 60_000;
    for (let i = 0; i < total; i++) counts[randomBoundedInt(prng, 6)]++;
    // 5 degrees of freedom: P(chi^2 > 30) is about 1.5e-5.
    assert.ok(chiSquare(counts, total) < 30, `chi^2 = ${chiSquare(counts, total)}`);
  });

  it('rejects bounds outside [1, 2^32]', () => {
    for (const bad of [0, -3, 2 ** 32 + 1, 2.5]) {
      throwsInvalid(
        () => randomBoundedInt(prngOf(1), bad),
        `bound = ${bad}`,
        'expected an integer in [1, 4294967296]',
      );
    }
  });
});

describe('sampleUniformMod', () => {
  it('passes a chi-square test for q = 97 over 100k samples', () => {
    const out = new Uint32Array(100_000);
    sampleUniformMod(prngOf(3), 97, out);
    const counts = new Float64Array(97);
    for (const x of out) counts[x]++;
    const statistic = chiSquare(counts, out.length);
    // 96 degrees of freedom: mean 96, sd 13.9; both bounds sit beyond 4.5 sd.
    assert.ok(statistic > 40 && statistic < 160, `chi^2 = ${statistic}`);
  });

  it('consumes exactly the words a one-word-at-a-time rejection sampler consumes', () => {
    for (const modulus of [2, 97, 1000, 2 ** 30, 1073479681]) {
      const fast = prngOf(4);
      const reference = prngOf(4);
      const out = new Uint32Array(3000);
      sampleUniformMod(fast, modulus, out);
      const mask = 2 ** Math.ceil(Math.log2(modulus)) - 1;
      for (let i = 0; i < out.length; ) {
        const candidate = reference.nextUint32() & mask;
        if (candidate < modulus) assert.equal(out[i++], candidate, `modulus ${modulus}, index ${i}`);
      }
      assert.equal(fast.nextUint32(), reference.nextUint32(), `stream position after modulus ${modulus}`);
    }
  });

  it('writes only out[offset, offset + length)', () => {
    const out = new Uint32Array(100).fill(0xffffffff);
    sampleUniformMod(prngOf(5), 97, out, 10, 30);
    for (let i = 0; i < 100; i++) {
      if (i >= 10 && i < 40) assert.ok(out[i] < 97);
      else assert.equal(out[i], 0xffffffff);
    }
    const tail = new Uint32Array(10).fill(0xffffffff);
    sampleUniformMod(prngOf(5), 97, tail, 4);
    assert.ok(tail.subarray(4).every((x) => x < 97));
    assert.ok(tail.subarray(0, 4).every((x) => x === 0xffffffff));
  });

  it('reaches the top bit range for q = 2^30', () => {
    const out = new Uint32Array(1000);
    sampleUniformMod(prngOf(6), 2 ** 30, out);
    assert.ok(out.every((x) => x < 2 ** 30));
    assert.ok(out.some((x) => x >= 2 ** 29));
  });

  it('always stays below the modulus, for any modulus in [2, 2^30] (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 2 ** 30 }),
        fc.integer({ min: 1, max: 3000 }),
        fc.integer({ min: 0, max: 255 }),
        (modulus, length, seedByte) => {
          const out = new Uint32Array(length);
          sampleUniformMod(prngOf(seedByte), modulus, out);
          for (const x of out) assert.ok(x < modulus, `${x} >= ${modulus}`);
        },
      ),
      { seed: 42, numRuns: 200 },
    );
  });

  it('rejects bad moduli, buffers and ranges, naming the value', () => {
    const out = new Uint32Array(8);
    throwsInvalid(() => sampleUniformMod(prngOf(1), 0, out), 'modulus = 0', 'in [2, 1073741824]');
    throwsInvalid(() => sampleUniformMod(prngOf(1), 2 ** 30 + 1, out), 'modulus = 1073741825');
    throwsInvalid(() => sampleUniformMod(prngOf(1), 96.5, out), 'modulus = 96.5');
    throwsInvalid(
      () => sampleUniformMod(prngOf(1), 97, new Int32Array(8) as unknown as Uint32Array),
      'out = Int32Array(8)',
      'expected a Uint32Array',
    );
    throwsInvalid(() => sampleUniformMod(prngOf(1), 97, out, 9), 'offset = 9', 'in [0, 8]');
    throwsInvalid(() => sampleUniformMod(prngOf(1), 97, out, 4, 5), 'length = 5', 'in [0, 4]');
    throwsInvalid(() => sampleUniformMod({} as Prng, 97, out), 'prng = Object', 'expected a Prng');
  });
});

describe('sampleUniformMod into kernel memory (the rejection kernel)', () => {
  it('writes the values and leaves the stream as the JavaScript loop does (property)', () => {
    const context = defaultContext();
    const words = 6000;
    const pointer = context.allocator.alloc(words);
    try {
      fc.assert(
        fc.property(
          fc.integer({ min: 2, max: 2 ** 30 }),
          fc.integer({ min: 256, max: 5000 }),
          fc.integer({ min: 0, max: 900 }),
          fc.integer({ min: 0, max: 3000 }),
          fc.nat(1000),
          (modulus, length, offset, before, salt) => {
            const [inKernel, inJs] = twinStreams(salt, before);
            const kernelOut = new Uint32Array(context.memory.buffer, pointer, words);
            kernelOut.fill(7);
            const jsOut = new Uint32Array(words).fill(7);
            const n = Math.min(length, words - offset);
            sampleUniformMod(inKernel, modulus, kernelOut, offset, n);
            sampleUniformMod(inJs, modulus, jsOut, offset, n);
            assert.deepEqual(new Uint32Array(context.memory.buffer, pointer, words), jsOut);
            assert.equal(inKernel.nextUint32(), inJs.nextUint32());
          },
        ),
        { seed: 29, numRuns: 60 },
      );
    } finally {
      context.allocator.free(pointer, words);
    }
  });
});

describe('skipUniformMod', () => {
  it('leaves the stream where sampling as many values would (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 2 ** 30 }),
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.nat(1000),
        (modulus, length, before, salt) => {
          const [sampled, skipped] = twinStreams(salt, before);
          sampleUniformMod(sampled, modulus, new Uint32Array(length));
          skipUniformMod(skipped, modulus, length);
          assert.equal(skipped.nextUint32(), sampled.nextUint32());
        },
      ),
      { seed: 23, numRuns: 80 },
    );
  });

  it('refuses a bad modulus or length with a typed error', () => {
    const prng = Prng.fromSeed(new Uint8Array(32));
    assert.throws(() => skipUniformMod(prng, 1, 4), InvalidArgumentError);
    assert.throws(() => skipUniformMod(prng, 2 ** 31, 4), InvalidArgumentError);
    assert.throws(() => skipUniformMod(prng, 17, -1), InvalidArgumentError);
  });
});

describe('sampleUniformRns', () => {
  it('fills limb i with samples mod q_i, limb 0 first, like sampleUniformMod per limb', () => {
    const n = 1024;
    const out = new Uint32Array(MODULI.length * n);
    sampleUniformRns(prngOf(7), MODULI, n, out);
    const reference = prngOf(7);
    for (let i = 0; i < MODULI.length; i++) {
      const limb = new Uint32Array(n);
      sampleUniformMod(reference, MODULI[i], limb);
      assert.deepEqual(out.subarray(i * n, (i + 1) * n), limb, `limb ${i}`);
      assert.ok(limb.every((x) => x < MODULI[i]));
    }
    assert.notDeepEqual(out.subarray(0, n), out.subarray(n, 2 * n));
  });

  it('is reproducible from the exported seed', () => {
    const n = 256;
    const sender = Prng.fromSeed(Prng.freshSeed());
    const a = new Uint32Array(MODULI.length * n);
    sampleUniformRns(sender, MODULI, n, a);
    const b = new Uint32Array(MODULI.length * n);
    sampleUniformRns(Prng.fromSeed(sender.exportSeed()), MODULI, n, b);
    assert.deepEqual(a, b);
  });

  it('rejects bad moduli, n and output length', () => {
    throwsInvalid(
      () => sampleUniformRns(prngOf(1), [], 4, new Uint32Array(0)),
      'moduli = array(0)',
      'non-empty',
    );
    throwsInvalid(
      () => sampleUniformRns(prngOf(1), [97, 2 ** 31], 4, new Uint32Array(8)),
      'moduli[1] = 2147483648',
      'in [2, 1073741824]',
    );
    throwsInvalid(() => sampleUniformRns(prngOf(1), [97], 4.5, new Uint32Array(4)), 'n = 4.5');
    throwsInvalid(
      () => sampleUniformRns(prngOf(1), [97, 89], 4, new Uint32Array(7)),
      'out.length = 7',
      'moduli.length * n = 2 * 4 = 8',
    );
  });
});

describe('sampleTernary', () => {
  it('draws -1, 0 and 1 each about a third of the time', () => {
    const n = 300_000;
    const values = sampleTernary(prngOf(8), n);
    const counts = new Map<number, number>();
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    assert.deepEqual([...counts.keys()].sort(), [-1, 0, 1]);
    for (const [value, count] of counts) {
      // Standard deviation of each frequency is about 0.00086.
      assert.ok(Math.abs(count / n - 1 / 3) < 0.005, `frequency of ${value}: ${count / n}`);
    }
  });

  it('maps 2-bit chunks 0, 1, 2 to 0, 1, -1 and rejects 3', () => {
    const fast = prngOf(9);
    const values = sampleTernary(fast, 40);
    const reference = prngOf(9);
    const expected: number[] = [];
    while (expected.length < 40) {
      let word = reference.nextUint32();
      for (let chunk = 0; chunk < 16 && expected.length < 40; chunk++, word >>>= 2) {
        const bits = word & 3;
        if (bits !== 3) expected.push([0, 1, -1][bits]);
      }
    }
    assert.deepEqual([...values], expected);
    // The rest of the last word is discarded, so both streams continue at the same word.
    assert.equal(fast.nextUint32(), reference.nextUint32());
  });

  it('is deterministic for a seed', () => {
    assert.deepEqual(sampleTernary(prngOf(10), 5000), sampleTernary(prngOf(10), 5000));
  });

  it('rejects a non-integer n', () => {
    throwsInvalid(() => sampleTernary(prngOf(1), 10.5), 'n = 10.5', 'expected an integer');
    throwsInvalid(() => sampleTernary(prngOf(1), 0), 'n = 0');
  });
});

describe('sampleSparseTernary', () => {
  it('has exactly h nonzero entries, all ±1, for typical shapes', () => {
    const prng = prngOf(11);
    for (const [n, h] of [
      [1, 1],
      [16, 16],
      [4096, 64],
      [65536, 192],
      [1000, 999],
    ]) {
      const s = sampleSparseTernary(prng, n, h);
      assert.equal(s.length, n);
      assert.equal(
        s.reduce((count, v) => count + (v !== 0 ? 1 : 0), 0),
        h,
        `n = ${n}, h = ${h}`,
      );
      assert.ok(s.every((v) => v === -1 || v === 0 || v === 1));
    }
  });

  it('has exactly h nonzero entries for random n, h (property)', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 4096 })
          .chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 1, max: n }))),
        fc.integer({ min: 0, max: 255 }),
        ([n, h], seedByte) => {
          const s = sampleSparseTernary(prngOf(seedByte), n, h);
          let nonzero = 0;
          for (const v of s) {
            assert.ok(v === -1 || v === 0 || v === 1);
            if (v !== 0) nonzero++;
          }
          assert.equal(nonzero, h);
        },
      ),
      { seed: 5, numRuns: 200 },
    );
  });

  it('spreads positions and signs uniformly', () => {
    const prng = prngOf(12);
    const n = 16;
    const h = 4;
    const trials = 40_000;
    const hits = new Float64Array(n);
    let positive = 0;
    for (let t = 0; t < trials; t++) {
      const s = sampleSparseTernary(prng, n, h);
      for (let i = 0; i < n; i++) {
        if (s[i] !== 0) hits[i]++;
        if (s[i] === 1) positive++;
      }
    }
    // 15 degrees of freedom: P(chi^2 > 50) is about 1e-5.
    assert.ok(chiSquare(hits, trials * h) < 50, `chi^2 = ${chiSquare(hits, trials * h)}`);
    assert.ok(Math.abs(positive / (trials * h) - 0.5) < 0.01, `positive share ${positive / (trials * h)}`);
  });

  it('rejects h outside [1, n] and a non-integer n', () => {
    throwsInvalid(() => sampleSparseTernary(prngOf(1), 8, 9), 'hammingWeight = 9', 'in [1, 8]');
    throwsInvalid(() => sampleSparseTernary(prngOf(1), 8, 0), 'hammingWeight = 0');
    throwsInvalid(() => sampleSparseTernary(prngOf(1), 8.5, 2), 'n = 8.5');
  });
});

describe('sampleGaussian', () => {
  it('has mean 0, variance sigma^2 + 1/12 and |x| <= 19 for sigma = 3.2', () => {
    const n = 200_000;
    const e = sampleGaussian(prngOf(13), n);
    let sum = 0;
    let sumSquares = 0;
    let maxAbs = 0;
    for (const x of e) {
      sum += x;
      sumSquares += x * x;
      maxAbs = Math.max(maxAbs, Math.abs(x));
    }
    const mean = sum / n;
    const variance = sumSquares / n - mean * mean;
    // Rounding adds about 1/12 to the continuous variance; tolerances are several standard errors wide.
    assert.ok(Math.abs(mean) < 0.05, `mean ${mean}`);
    assert.ok(Math.abs(variance - (3.2 ** 2 + 1 / 12)) < 0.3, `variance ${variance}`);
    assert.ok(maxAbs <= 19, `max |x| = ${maxAbs}`);
    assert.ok(maxAbs >= 12, `max |x| = ${maxAbs}: tails are missing`);
  });

  it('redraws samples beyond a custom bound', () => {
    const e = sampleGaussian(prngOf(14), 50_000, 3.2, 4);
    assert.ok(e.every((x) => Math.abs(x) <= 4));
    assert.ok(e.some((x) => x === 4) && e.some((x) => x === -4));
  });

  it('is symmetric about zero', () => {
    const e = sampleGaussian(prngOf(15), 200_000, 1);
    let plusOne = 0;
    let minusOne = 0;
    for (const x of e) {
      if (x === 1) plusOne++;
      else if (x === -1) minusOne++;
    }
    // Each count is about 48k with standard deviation about 200.
    assert.ok(Math.abs(plusOne - minusOne) < 1500, `+1: ${plusOne}, -1: ${minusOne}`);
  });

  it('is deterministic for a seed', () => {
    assert.deepEqual(sampleGaussian(prngOf(16), 4096), sampleGaussian(prngOf(16), 4096));
  });

  it('rejects bad sigma, bound and n', () => {
    throwsInvalid(() => sampleGaussian(prngOf(1), 8, 0), 'sigma = 0', 'expected a standard deviation > 0');
    throwsInvalid(() => sampleGaussian(prngOf(1), 8, Number.NaN), 'sigma = NaN', 'finite');
    throwsInvalid(() => sampleGaussian(prngOf(1), 8, 3.2, 3), 'bound = 3', 'in [4, 2147483647]');
    throwsInvalid(() => sampleGaussian(prngOf(1), 8, 3.2, 7.5), 'bound = 7.5');
    throwsInvalid(() => sampleGaussian(prngOf(1), -1), 'n = -1');
  });
});

describe('signedToRns', () => {
  it('stores x mod q_i in limb i, adding q_i to negatives', () => {
    const values = Int8Array.from([-1, 0, 1, -19]);
    const out = new Uint32Array(MODULI.length * values.length);
    signedToRns(values, MODULI, out);
    assert.deepEqual(
      [...out],
      [
        [1073479680, 0, 1, 1073479662],
        [1071513600, 0, 1, 1071513582],
        [96, 0, 1, 78],
      ].flat(),
    );
  });

  it('round-trips through the centered lift (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 3, max: 2 ** 30 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: 1, maxLength: 64 }),
        (moduli, raw) => {
          const smallest = Math.min(...moduli);
          const half = Math.floor((smallest - 1) / 2);
          const values = Int32Array.from(raw, (x) => x % (half + 1));
          const out = new Uint32Array(moduli.length * values.length);
          signedToRns(values, moduli, out);
          for (let i = 0; i < moduli.length; i++) {
            for (let j = 0; j < values.length; j++) {
              const residue = out[i * values.length + j];
              assert.ok(residue < moduli[i]);
              const lifted = residue > moduli[i] / 2 ? residue - moduli[i] : residue;
              assert.equal(lifted, values[j]);
            }
          }
        },
      ),
      { seed: 11, numRuns: 300 },
    );
  });

  it('reduces Int32 values larger than the modulus', () => {
    const out = new Uint32Array(2);
    signedToRns(Int32Array.from([2 ** 31 - 1, -(2 ** 31)]), [97], out);
    assert.deepEqual([...out], [(2 ** 31 - 1) % 97, 97 - (2 ** 31 % 97)]);
  });

  it('rejects bad values, moduli and output length', () => {
    throwsInvalid(
      () => signedToRns(new Uint8Array(4) as unknown as Int8Array, [97], new Uint32Array(4)),
      'values = Uint8Array(4)',
      'Int8Array or Int32Array',
    );
    throwsInvalid(() => signedToRns(new Int8Array(4), [1], new Uint32Array(4)), 'moduli[0] = 1');
    throwsInvalid(
      () => signedToRns(new Int8Array(4), [97, 89], new Uint32Array(4)),
      'out.length = 4',
      'moduli.length * values.length = 2 * 4 = 8',
    );
  });
});
