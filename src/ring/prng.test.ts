import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { chacha20 } from '@noble/ciphers/chacha.js';
import fc from 'fast-check';
import { InvalidArgumentError } from '../util/errors.ts';
import { defaultContext } from './context.ts';
import { Prng, SEED_BYTES } from './prng.ts';

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function seedOf(byte: number): Uint8Array {
  return new Uint8Array(SEED_BYTES).fill(byte);
}

function take(prng: Prng, count: number): Uint8Array {
  const out = new Uint8Array(count);
  prng.nextBytes(out);
  return out;
}

// RFC 8439 appendix A.1, test vectors #1 and #2: all-zero key and nonce, block counters 0 and 1.
const RFC8439_BLOCK0 =
  '76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7' +
  'da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586';
const RFC8439_BLOCK1 =
  '9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed' +
  '29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f';

describe('Prng known answers', () => {
  it('the zero seed yields the RFC 8439 ChaCha20 keystream (zero nonce, counter 0)', () => {
    const prng = Prng.fromSeed(new Uint8Array(32));
    assert.equal(hex(take(prng, 16)), '76b8e0ada0f13d90405d6ae55386bd28');
    assert.equal(hex(take(prng, 112)), (RFC8439_BLOCK0 + RFC8439_BLOCK1).slice(32));
  });

  it('reads words as little-endian 32-bit integers of the keystream', () => {
    const prng = Prng.fromSeed(new Uint8Array(32));
    assert.equal(prng.nextUint32(), 0xade0b876);
    assert.equal(prng.nextUint32(), 0x903df1a0);
  });

  it('matches the ChaCha20 keystream across many buffer refills', () => {
    const seed = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
    const expected = chacha20(seed, new Uint8Array(12), new Uint8Array(20_000));
    const prng = Prng.fromSeed(seed);
    const actual = new Uint8Array(20_000);
    // Odd chunk sizes straddle the 4 KiB buffer boundaries.
    for (let at = 0; at < actual.length; at += 997) {
      prng.nextBytes(actual.subarray(at, Math.min(actual.length, at + 997)));
    }
    assert.equal(hex(actual), hex(expected));
  });
});

describe('ChaCha20 kernel (assembly/chacha.ts, the stream of Prng where the kernels are loaded)', () => {
  it('gives the JavaScript cipher’s keystream for any key, nonce and block counter (property)', () => {
    const context = defaultContext();
    const { chacha20Blocks } = context.exports as unknown as {
      chacha20Blocks: (key: number, nonce: number, counter: number, blocks: number, out: number) => void;
    };
    const words = (48 + 16 * 64) / 4;
    const pointer = context.allocator.alloc(words);
    try {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          fc.uint8Array({ minLength: 12, maxLength: 12 }),
          // Up to the last block the stream uses (2^32 − 2), across the 2^31 sign boundary of an i32.
          fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 18 }), fc.constantFrom(0, 2 ** 31 - 2, 2 ** 32 - 18)),
          fc.constantFrom(4, 8, 16),
          (key, nonce, counter, blocks) => {
            const memory = new Uint8Array(context.memory.buffer);
            memory.set(key, pointer);
            memory.set(nonce, pointer + 32);
            chacha20Blocks(pointer, pointer + 32, counter, blocks, pointer + 48);
            const actual = new Uint8Array(context.memory.buffer, pointer + 48, blocks * 64);
            const expected = chacha20(key, nonce, new Uint8Array(blocks * 64), undefined, counter);
            assert.equal(hex(actual), hex(expected));
          },
        ),
        { seed: 11, numRuns: 60 },
      );
    } finally {
      context.allocator.free(pointer, words);
    }
  });
});

describe('Prng determinism', () => {
  it('gives the same stream for the same seed and different streams for different seeds', () => {
    assert.equal(hex(take(Prng.fromSeed(seedOf(5)), 10_000)), hex(take(Prng.fromSeed(seedOf(5)), 10_000)));
    assert.notEqual(hex(take(Prng.fromSeed(seedOf(5)), 32)), hex(take(Prng.fromSeed(seedOf(6)), 32)));
  });

  it('copies the seed, so later changes to the caller array do not alter the stream', () => {
    const seed = seedOf(9);
    const prng = Prng.fromSeed(seed);
    seed.fill(0);
    assert.equal(hex(take(prng, 32)), hex(take(Prng.fromSeed(seedOf(9)), 32)));
  });

  it('fillUint32 returns the same words as repeated nextUint32, across refills', () => {
    const a = Prng.fromSeed(seedOf(1));
    const b = Prng.fromSeed(seedOf(1));
    a.nextUint32();
    b.nextUint32();
    const filled = new Uint32Array(5000);
    a.fillUint32(filled);
    for (let i = 0; i < filled.length; i++) assert.equal(filled[i], b.nextUint32(), `word ${i}`);
    assert.equal(a.nextUint32(), b.nextUint32());
  });

  it('aligns a word read after an unaligned byte read to the next 4-byte boundary', () => {
    const mixed = Prng.fromSeed(seedOf(2));
    mixed.nextBytes(new Uint8Array(3));
    const word = mixed.nextUint32();
    const bytes = take(Prng.fromSeed(seedOf(2)), 8);
    assert.equal(word, new DataView(bytes.buffer).getUint32(4, true));
  });

  it('reading in chunks gives the same bytes as reading at once (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 6 }),
        (seed, chunks) => {
          const total = chunks.reduce((sum, c) => sum + c, 0);
          const whole = take(Prng.fromSeed(seed), total);
          const chunked = Prng.fromSeed(seed);
          const pieces = chunks.map((c) => hex(take(chunked, c)));
          assert.equal(pieces.join(''), hex(whole));
        },
      ),
      { seed: 20240611, numRuns: 60 },
    );
  });

  it('nextDouble lies in [0, 1), uses 53 bits and averages 1/2', () => {
    const prng = Prng.fromSeed(seedOf(3));
    let sum = 0;
    let sawLowBits = false;
    const count = 100_000;
    for (let i = 0; i < count; i++) {
      const u = prng.nextDouble();
      assert.ok(u >= 0 && u < 1, `u = ${u}`);
      sum += u;
      // A value that is not a multiple of 2^-32 proves the low word contributed.
      if ((u * 2 ** 32) % 1 !== 0) sawLowBits = true;
    }
    assert.ok(Math.abs(sum / count - 0.5) < 0.01, `mean ${sum / count}`);
    assert.ok(sawLowBits);
  });

  it('nextDouble is built from two words: 27 high bits then 26 low bits', () => {
    const words = Prng.fromSeed(seedOf(4));
    const high = words.nextUint32() >>> 5;
    const low = words.nextUint32() >>> 6;
    assert.equal(Prng.fromSeed(seedOf(4)).nextDouble(), (high * 2 ** 26 + low) / 2 ** 53);
  });
});

describe('Prng.fork', () => {
  it('is deterministic, differs by label and from the parent, and ignores how much the parent read', () => {
    const parent = Prng.fromSeed(seedOf(7));
    const child0 = hex(take(parent.fork(0), 64));
    const child1 = hex(take(parent.fork(1), 64));
    assert.equal(hex(take(Prng.fromSeed(seedOf(7)).fork(0), 64)), child0);
    assert.notEqual(child0, child1);
    assert.notEqual(child0, hex(take(Prng.fromSeed(seedOf(7)), 64)));
    take(parent, 10_000);
    assert.equal(hex(take(parent.fork(0), 64)), child0);
    assert.notEqual(hex(take(parent.fork(0).fork(0), 64)), child0);
  });

  it('separates large labels that agree in their low 32 bits', () => {
    const parent = Prng.fromSeed(seedOf(8));
    assert.notEqual(hex(take(parent.fork(5), 32)), hex(take(parent.fork(5 + 2 ** 32), 32)));
    assert.equal(hex(take(parent.fork(Number.MAX_SAFE_INTEGER), 32)).length, 64);
  });

  it('gives pairwise distinct streams for distinct labels (property)', () => {
    const parent = Prng.fromSeed(seedOf(10));
    fc.assert(
      fc.property(fc.nat(), fc.nat(), (a, b) => {
        fc.pre(a !== b);
        assert.notEqual(hex(take(parent.fork(a), 16)), hex(take(parent.fork(b), 16)));
      }),
      { seed: 7, numRuns: 100 },
    );
  });
});

describe('Prng seeds and secrecy', () => {
  it('fresh and freshSeed draw distinct 32-byte seeds', () => {
    const s1 = Prng.freshSeed();
    const s2 = Prng.freshSeed();
    assert.equal(s1.length, 32);
    assert.notEqual(hex(s1), hex(s2));
    assert.notEqual(hex(take(Prng.fresh(), 32)), hex(take(Prng.fresh(), 32)));
  });

  it('exportSeed returns a copy of the seed', () => {
    const prng = Prng.fromSeed(seedOf(11));
    const exported = prng.exportSeed();
    assert.equal(hex(exported), hex(seedOf(11)));
    exported.fill(0);
    assert.equal(hex(prng.exportSeed()), hex(seedOf(11)));
    assert.equal(hex(take(Prng.fromSeed(Prng.fromSeed(seedOf(11)).exportSeed()), 16)), hex(take(prng, 16)));
  });

  it('never shows the seed in toString, JSON or inspect', () => {
    const prng = Prng.fromSeed(seedOf(0xab));
    take(prng, 5);
    assert.equal(String(prng), 'Prng {<seeded>}');
    assert.equal(inspect(prng), 'Prng {<seeded>}');
    assert.equal(inspect({ prng }), '{ prng: Prng {<seeded>} }');
    assert.equal(JSON.stringify({ prng }), '{"prng":"Prng {<seeded>}"}');
    assert.deepEqual(Object.keys(prng), []);
  });
});

describe('Prng argument validation', () => {
  it('rejects seeds that are not exactly 32 bytes, naming the length', () => {
    for (const length of [0, 16, 31, 33, 64]) {
      assert.throws(
        () => Prng.fromSeed(new Uint8Array(length)),
        (e: unknown) =>
          e instanceof InvalidArgumentError &&
          e.message.includes(`seed.length = ${length}`) &&
          e.message.includes('exactly 32 bytes'),
      );
    }
  });

  it('rejects seeds that are not a Uint8Array', () => {
    for (const bad of [new Uint32Array(8), 'x'.repeat(32), null, Array(32).fill(0)]) {
      assert.throws(
        () => Prng.fromSeed(bad as unknown as Uint8Array),
        (e: unknown) =>
          e instanceof InvalidArgumentError && /seed = .*: expected a Uint8Array/.test(e.message),
      );
    }
  });

  it('rejects fork labels that are not non-negative safe integers', () => {
    const prng = Prng.fromSeed(seedOf(1));
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53, '1']) {
      assert.throws(
        () => prng.fork(bad as number),
        (e: unknown) => e instanceof InvalidArgumentError && e.message.startsWith('label = '),
      );
    }
  });

  it('rejects output buffers of the wrong type', () => {
    const prng = Prng.fromSeed(seedOf(1));
    assert.throws(
      () => prng.nextBytes(new Uint32Array(4) as unknown as Uint8Array),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.message === 'out = Uint32Array(4): expected a Uint8Array',
    );
    assert.throws(
      () => prng.fillUint32(new Int32Array(4) as unknown as Uint32Array),
      (e: unknown) =>
        e instanceof InvalidArgumentError && e.message === 'out = Int32Array(4): expected a Uint32Array',
    );
  });
});
