import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../util/errors.ts';
import { KernelContext } from './context.ts';
import {
  countNotBelow,
  XXH32X4_LANES,
  xxh32,
  xxh32Segments,
  Xxh32Stream,
  Xxh32x4Stream,
  xxh32x4,
  xxh32x4Lane,
  xxh32x4Segments,
} from './hash.ts';

const PRIME32 = 0x9e3779b1;
/** The hashes run in a context of their own. */
const context = KernelContext.create();

/** The test buffer of the xxHash sanity checks: byte i is the top byte of PRIME32 · PRIME64^i (mod 2^64). */
function sanityBuffer(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let generator = BigInt(PRIME32);
  const prime64 = 11400714785074694797n;
  for (let i = 0; i < length; i++) {
    out[i] = Number(generator >> 56n);
    generator = (generator * prime64) & 0xffffffffffffffffn;
  }
  return out;
}

function text(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

/** Deterministic bytes (xorshift32), no crypto needed here. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  let s = seed >>> 0 || 1;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Runs `body` with `bytes` copied to kernel memory at 16-byte-aligned offset + `shift`; frees it after. */
function inKernel<T>(bytes: Uint8Array, shift: number, body: (pointer: number) => T): T {
  const words = Math.max(1, Math.ceil((bytes.length + shift) / 4));
  const base = context.allocator.alloc(words);
  try {
    new Uint8Array(context.memory.buffer, base + shift, bytes.length).set(bytes);
    return body(base + shift);
  } finally {
    context.allocator.free(base, words);
  }
}

describe('xxh32 (TypeScript reference)', () => {
  it('matches the published XXH32 sanity values (xxHash test buffer, seeds 0 and PRIME32)', () => {
    assert.equal(xxh32(new Uint8Array(0)), 0x02cc5d05);
    assert.equal(xxh32(new Uint8Array(0), PRIME32), 0x36b78ae7);
    const buffer = sanityBuffer(222);
    const expected: [number, number, number][] = [
      [1, 0xcf65b03e, 0xb4545aa4],
      [14, 0x1208e7e2, 0x6af1d1fe],
      [222, 0x5bd11dbd, 0x58803c5f],
    ];
    for (const [length, seed0, seedPrime] of expected) {
      assert.equal(xxh32(buffer.subarray(0, length)), seed0, `length ${length}, seed 0`);
      assert.equal(xxh32(buffer.subarray(0, length), PRIME32), seedPrime, `length ${length}, seed PRIME32`);
    }
  });

  it('matches values of the xxHash library (libxxhash 0.8) for short texts around the 16-byte stripe', () => {
    const cases: [string, number, number][] = [
      ['a', 0x550d7456, 0x9e1633e4],
      ['abc', 0x32d153ff, 0xa1ae7709],
      ['123456789', 0x937bad67, 0x9355e7ec],
      ['0123456789abcdef', 0xc2c45b69, 0x72e8faf9],
      ['0123456789abcdef0', 0xaa9118bd, 0x95623168],
      ['Nobody inspects the spammish repetition', 0xe2293b2f, 0xc9e89e68],
    ];
    for (const [input, seed0, seedPrime] of cases) {
      assert.equal(xxh32(text(input)), seed0, `'${input}', seed 0`);
      assert.equal(xxh32(text(input), PRIME32), seedPrime, `'${input}', seed PRIME32`);
    }
  });

  it('reads any subarray offset (no alignment assumption)', () => {
    const data = pseudoRandomBytes(300, 7);
    for (let offset = 0; offset < 8; offset++) {
      const view = data.subarray(offset, offset + 100);
      assert.equal(xxh32(view, 3), xxh32(view.slice(), 3));
    }
  });
});

describe('XXH32 kernel', () => {
  it('equals the reference for every length 0 … 100, seeds 0, 1, PRIME32 and 2^32 − 1, in place and copied', () => {
    const data = pseudoRandomBytes(100, 11);
    for (const seed of [0, 1, PRIME32, 0xffffffff]) {
      for (let length = 0; length <= 100; length++) {
        const bytes = data.subarray(0, length);
        const expected = xxh32(bytes, seed);
        assert.equal(
          xxh32Segments([bytes], context, seed),
          expected,
          `copied, length ${length}, seed ${seed}`,
        );
        const shift = length % 4;
        const inPlace = inKernel(bytes, shift, (pointer) =>
          xxh32Segments([{ pointer, byteLength: length }], context, seed),
        );
        assert.equal(inPlace, expected, `in place at +${shift}, length ${length}, seed ${seed}`);
      }
    }
  });

  it('equals the reference on the sanity values and on 1 MiB', () => {
    assert.equal(xxh32Segments([], context), 0x02cc5d05);
    assert.equal(xxh32Segments([sanityBuffer(222)], context, PRIME32), 0x58803c5f);
    const big = pseudoRandomBytes(1 << 20, 5);
    const expected = xxh32(big, 17);
    assert.equal(xxh32Segments([big], context, 17), expected);
    assert.equal(
      inKernel(big, 0, (pointer) => xxh32Segments([{ pointer, byteLength: big.length }], context, 17)),
      expected,
    );
  });

  it('streams: any split into pieces, in place or copied, gives the one-shot value', () => {
    const data = pseudoRandomBytes(700, 23);
    fc.assert(
      fc.property(
        fc.array(fc.nat(700), { maxLength: 8 }),
        fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }),
        fc.nat(0xffffffff),
        (cuts, inPlace, seed) => {
          const bounds = [0, ...cuts.sort((a, b) => a - b), 700];
          const expected = xxh32(data, seed);
          const got = inKernel(data, 0, (base) => {
            const stream = new Xxh32Stream(context, seed);
            try {
              for (let i = 0; i + 1 < bounds.length; i++) {
                const [start, end] = [bounds[i], bounds[i + 1]];
                if (inPlace[i]) stream.updateKernel(base + start, end - start);
                else stream.update(data.subarray(start, end));
              }
              return stream.digest();
            } finally {
              stream.dispose();
            }
          });
          assert.equal(got, expected);
        },
      ),
      { seed: 99, numRuns: 300 },
    );
  });

  it('digest does not end the stream', () => {
    const data = pseudoRandomBytes(90, 3);
    const stream = new Xxh32Stream(context, 5);
    try {
      stream.update(data.subarray(0, 37));
      assert.equal(stream.digest(), xxh32(data.subarray(0, 37), 5));
      stream.update(data.subarray(37));
      assert.equal(stream.digest(), xxh32(data, 5));
    } finally {
      stream.dispose();
    }
  });

  it('hashes a segment larger than the copy scratch (several chunks)', () => {
    const data = pseudoRandomBytes(100_003, 8);
    assert.equal(xxh32Segments([data.subarray(1)], context), xxh32(data.subarray(1)));
  });
});

describe('range check kernels', () => {
  const p = 1073479681; // a 30-bit NTT prime

  function wordsWithOutliers(count: number, seed: number, outliers: readonly number[]): Uint32Array {
    const bytes = pseudoRandomBytes(count * 4, seed);
    const words = new Uint32Array(bytes.buffer);
    for (let i = 0; i < count; i++) words[i] %= p;
    const values = [p, p + 1, 0xffffffff, 2 ** 31];
    outliers.forEach((at, k) => {
      if (at >= 0 && at < count) words[at] = values[k % values.length];
    });
    return words;
  }

  function countInJs(words: Uint32Array): number {
    let count = 0;
    for (const w of words) if (w >= p) count++;
    return count;
  }

  it('countNotBelow counts the words ≥ p at every length 0 … 40 and at the edges', () => {
    for (let count = 0; count <= 40; count++) {
      const words = wordsWithOutliers(count, count + 1, [0, count - 1, 9, 31]);
      if (count > 2) words[Math.floor(count / 2)] = p - 1; // the largest residue is valid
      const bytes = new Uint8Array(words.buffer);
      const got = inKernel(bytes, 0, (pointer) => countNotBelow(context, pointer, count, p));
      assert.equal(got, countInJs(words), `${count} words`);
    }
  });

  it('hash + count in one pass equals the separate hash and count, at any stream offset', () => {
    for (const count of [0, 1, 3, 4, 5, 16, 17, 64, 1000, 4096]) {
      const words = wordsWithOutliers(count, count + 9, [0, 5, count - 1, count >> 1]);
      const bytes = new Uint8Array(words.buffer);
      for (const prefix of [0, 1, 4, 15, 16, 33]) {
        const head = pseudoRandomBytes(prefix, prefix + 2);
        const expectedHash = xxh32(new Uint8Array([...head, ...bytes]), 7);
        const [hash, counted] = inKernel(bytes, 0, (pointer) => {
          const stream = new Xxh32Stream(context, 7);
          try {
            stream.update(head);
            const c = stream.updateKernelCounting(pointer, count, p);
            return [stream.digest(), c];
          } finally {
            stream.dispose();
          }
        });
        assert.equal(hash, expectedHash, `${count} words after ${prefix} bytes: hash`);
        assert.equal(counted, countInJs(words), `${count} words after ${prefix} bytes: count`);
      }
    }
  });
});

describe('Xxh32Stream resources and arguments', () => {
  it('returns its kernel memory on dispose and refuses use afterwards', () => {
    const before = context.allocator.bytesInUse;
    const stream = new Xxh32Stream(context);
    assert.ok(context.allocator.bytesInUse > before);
    stream.dispose();
    stream.dispose();
    assert.equal(context.allocator.bytesInUse, before);
    assert.throws(() => stream.digest(), InvalidArgumentError);
    assert.throws(() => stream.update(new Uint8Array(1)), InvalidArgumentError);
  });

  it('rejects seeds outside u32 and segments outside kernel memory', () => {
    assert.throws(() => new Xxh32Stream(context, -1), /seed = -1/);
    assert.throws(() => new Xxh32Stream(context, 2 ** 32), InvalidArgumentError);
    const size = context.memory.buffer.byteLength;
    assert.throws(
      () => xxh32Segments([{ pointer: size - 4, byteLength: 8 }], context),
      /inside kernel memory/,
    );
    assert.throws(() => xxh32Segments([{ pointer: -1, byteLength: 1 }], context), InvalidArgumentError);
    assert.throws(() => countNotBelow(context, size, 1, 3), InvalidArgumentError);
  });
});

describe('XXH32×4 (four interleaved lanes)', () => {
  function concat(...parts: Uint8Array[]): Uint8Array {
    const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  it('reference: stripe i (16 bytes) goes to lane i mod 4, each lane is plain XXH32 of its stripes', () => {
    const empty = xxh32(new Uint8Array(0));
    assert.deepEqual(xxh32x4(new Uint8Array(0)), [empty, empty, empty, empty]);
    assert.equal(XXH32X4_LANES, 4);
    const data = pseudoRandomBytes(150, 31);
    const at = (start: number, end: number) => data.subarray(start, end);
    // 150 bytes: blocks 0 … 63 and 64 … 127, then 22 bytes: a whole stripe for lane 0, 6 bytes for lane 1.
    const lanes = [
      concat(at(0, 16), at(64, 80), at(128, 144)),
      concat(at(16, 32), at(80, 96), at(144, 150)),
      concat(at(32, 48), at(96, 112)),
      concat(at(48, 64), at(112, 128)),
    ];
    lanes.forEach((lane, j) => {
      assert.deepEqual(xxh32x4Lane(data, j), lane, `lane ${j} bytes`);
    });
    assert.deepEqual(
      xxh32x4(data, 9),
      lanes.map((lane) => xxh32(lane, 9)),
    );
    assert.throws(() => xxh32x4Lane(data, 4), InvalidArgumentError);
  });

  it('kernel equals the reference for every length 0 … 300, seeds 0, 1 and 2^32 − 1, in place and copied', () => {
    const data = pseudoRandomBytes(300, 12);
    for (const seed of [0, 1, 0xffffffff]) {
      for (let length = 0; length <= 300; length++) {
        const bytes = data.subarray(0, length);
        const expected = xxh32x4(bytes, seed);
        assert.deepEqual(
          xxh32x4Segments([bytes], context, seed),
          expected,
          `copied, length ${length}, seed ${seed}`,
        );
        const shift = length % 4;
        const inPlace = inKernel(bytes, shift, (pointer) =>
          xxh32x4Segments([{ pointer, byteLength: length }], context, seed),
        );
        assert.deepEqual(inPlace, expected, `in place at +${shift}, length ${length}, seed ${seed}`);
      }
    }
  });

  it('kernel equals the reference on 1 MiB + 37 bytes and across the copy scratch', () => {
    const big = pseudoRandomBytes((1 << 20) + 37, 6);
    const expected = xxh32x4(big, 17);
    assert.deepEqual(xxh32x4Segments([big], context, 17), expected);
    assert.deepEqual(
      inKernel(big, 0, (pointer) => xxh32x4Segments([{ pointer, byteLength: big.length }], context, 17)),
      expected,
    );
  });

  it('streams: any split into pieces (copied, in place, or words with their maximum) gives the one-shot value', () => {
    const data = pseudoRandomBytes(900, 24);
    const words = new Uint32Array(data.buffer, 0, data.length / 4);
    fc.assert(
      fc.property(
        fc.array(fc.nat(225), { maxLength: 8 }),
        fc.array(fc.nat(2), { minLength: 9, maxLength: 9 }),
        fc.nat(0xffffffff),
        (cuts, kinds, seed) => {
          // Cuts on word boundaries, so that any piece can also be fed as words.
          const bounds = [0, ...cuts.sort((a, b) => a - b), 225].map((w) => 4 * w);
          const expected = xxh32x4(data, seed);
          const got = inKernel(data, 0, (base) => {
            const stream = new Xxh32x4Stream(context, seed);
            try {
              for (let i = 0; i + 1 < bounds.length; i++) {
                const [start, end] = [bounds[i], bounds[i + 1]];
                if (kinds[i] === 0) stream.update(data.subarray(start, end));
                else if (kinds[i] === 1) stream.updateKernel(base + start, end - start);
                else {
                  const piece = words.subarray(start / 4, end / 4);
                  const largest = piece.reduce((m, w) => Math.max(m, w), 0);
                  assert.equal(stream.updateKernelMax(base + start, piece.length), largest);
                }
              }
              return stream.digests();
            } finally {
              stream.dispose();
            }
          });
          assert.deepEqual(got, expected);
        },
      ),
      { seed: 77, numRuns: 300 },
    );
  });

  it('updateKernelMax: the largest word at every position and length, at and off a block boundary', () => {
    for (const count of [0, 1, 3, 15, 16, 17, 31, 32, 33, 64, 1000, 4096]) {
      const bytes = pseudoRandomBytes(count * 4, count + 3);
      const words = new Uint32Array(bytes.buffer);
      for (let i = 0; i < count; i++) words[i] &= 0x3fffffff;
      const spots = count === 0 ? [-1] : [0, count >> 1, count - 1];
      for (const spot of spots) {
        const marked = words.slice();
        if (spot >= 0) marked[spot] = 0xfffffff0;
        const markedBytes = new Uint8Array(marked.buffer);
        const expectedMax = marked.reduce((m, w) => Math.max(m, w), 0);
        for (const prefix of [0, 4, 60, 64]) {
          const head = pseudoRandomBytes(prefix, prefix + 5);
          const [digests, largest] = inKernel(markedBytes, 0, (pointer) => {
            const stream = new Xxh32x4Stream(context, 3);
            try {
              stream.update(head);
              const m = stream.updateKernelMax(pointer, count);
              return [stream.digests(), m] as const;
            } finally {
              stream.dispose();
            }
          });
          const what = `${count} words, large word at ${spot}, after ${prefix} bytes`;
          assert.equal(largest, expectedMax, `${what}: maximum`);
          assert.deepEqual(digests, xxh32x4(new Uint8Array([...head, ...markedBytes]), 3), `${what}: hash`);
        }
      }
    }
  });

  it('digests do not end the stream; kernel memory returned on dispose; bad use refused', () => {
    const data = pseudoRandomBytes(200, 4);
    const before = context.allocator.bytesInUse;
    const stream = new Xxh32x4Stream(context, 8);
    assert.ok(context.allocator.bytesInUse > before);
    stream.update(data.subarray(0, 99));
    assert.deepEqual(stream.digests(), xxh32x4(data.subarray(0, 99), 8));
    stream.update(data.subarray(99));
    assert.deepEqual(stream.digests(), xxh32x4(data, 8));
    stream.dispose();
    stream.dispose();
    assert.equal(context.allocator.bytesInUse, before);
    assert.throws(() => stream.digests(), InvalidArgumentError);
    assert.throws(() => new Xxh32x4Stream(context, -1), /seed = -1/);
    const size = context.memory.buffer.byteLength;
    assert.throws(
      () => xxh32x4Segments([{ pointer: size - 4, byteLength: 8 }], context),
      /inside kernel memory/,
    );
    const fresh = new Xxh32x4Stream(context);
    try {
      assert.throws(() => fresh.updateKernelMax(size - 4, 2), InvalidArgumentError);
    } finally {
      fresh.dispose();
    }
  });
});
