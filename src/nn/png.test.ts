import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { FormatError } from '../util/errors.ts';
import { decodePng, encodePng } from './png.ts';

describe('PNG codec', () => {
  it('round-trips every supported color type through every filter', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 9 }),
        fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const),
        fc.option(fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const, 4 as const), {
          nil: undefined,
        }),
        fc.integer(),
        (width, height, channels, filter, salt) => {
          const pixels = Uint8Array.from(
            { length: width * height * channels },
            (_, i) => (i * 37 + salt) & 0xff,
          );
          const decoded = decodePng(encodePng({ width, height, channels, pixels }, filter));
          assert.equal(decoded.width, width);
          assert.equal(decoded.height, height);
          assert.equal(decoded.channels, channels);
          assert.deepEqual(decoded.pixels, pixels);
        },
      ),
      { seed: 3, numRuns: 300 },
    );
  });

  it('rejects palette, 16-bit and interlaced images with a message naming the feature', () => {
    const base = encodePng({ width: 2, height: 2, channels: 1, pixels: new Uint8Array(4) });
    const withHeader = (depth: number, colorType: number, interlace: number): Uint8Array => {
      const bytes = Uint8Array.from(base);
      bytes[24] = depth;
      bytes[25] = colorType;
      bytes[28] = interlace;
      // Recompute the IHDR CRC so only the header field is at fault.
      const table = new Uint32Array(256).map((_, n) => {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        return c >>> 0;
      });
      let c = 0xffffffff;
      for (let i = 12; i < 29; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
      new DataView(bytes.buffer).setUint32(29, (c ^ 0xffffffff) >>> 0, false);
      return bytes;
    };
    assert.throws(
      () => decodePng(withHeader(8, 3, 0)),
      (e: unknown) => e instanceof FormatError && /palette/.test(e.message),
    );
    assert.throws(
      () => decodePng(withHeader(16, 0, 0)),
      (e: unknown) => e instanceof FormatError && /bit depth 16/.test(e.message),
    );
    assert.throws(
      () => decodePng(withHeader(8, 0, 1)),
      (e: unknown) => e instanceof FormatError && /interlaced/.test(e.message),
    );
  });

  it('rejects a CRC mismatch, a missing IEND and a wrong amount of image data', () => {
    const png = encodePng({ width: 3, height: 2, channels: 3, pixels: new Uint8Array(18) });
    const badCrc = Uint8Array.from(png);
    badCrc[20] ^= 1;
    assert.throws(
      () => decodePng(badCrc),
      (e: unknown) => e instanceof FormatError && /CRC/.test(e.message),
    );
    assert.throws(
      () => decodePng(png.subarray(0, png.length - 12)),
      (e: unknown) => e instanceof FormatError && /IEND/.test(e.message),
    );
    assert.ok(deflateSync(new Uint8Array(3)).length > 0);
  });

  it('fuzz: mutated or truncated PNGs throw FormatError or decode', () => {
    const pixels = Uint8Array.from({ length: 6 * 5 * 3 }, (_, i) => (i * 11) & 0xff);
    const base = encodePng({ width: 6, height: 5, channels: 3, pixels });
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat({ max: base.length - 1 }), value: fc.nat({ max: 255 }) }), {
          maxLength: 6,
        }),
        fc.option(fc.nat({ max: base.length }), { nil: undefined }),
        (edits, cut) => {
          const bytes = Uint8Array.from(base.subarray(0, cut ?? base.length));
          for (const { at, value } of edits) if (at < bytes.length) bytes[at] = value;
          try {
            decodePng(bytes);
          } catch (e) {
            if (!(e instanceof FormatError)) throw e;
          }
        },
      ),
      { seed: 4, numRuns: 1500 },
    );
  });
});
