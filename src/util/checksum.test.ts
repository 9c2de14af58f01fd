import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { crc32c } from './checksum.ts';

/** Bit-at-a-time CRC32C straight from the definition: the oracle for the table-driven version. */
function bitwiseCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

describe('crc32c', () => {
  it('matches the published check value and the RFC 3720 (iSCSI) test vectors', () => {
    assert.equal(crc32c(0, new TextEncoder().encode('123456789')), 0xe3069283);
    assert.equal(crc32c(0, new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(0, new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    assert.equal(
      crc32c(
        0,
        Uint8Array.from({ length: 32 }, (_, i) => i),
      ),
      0x46dd794e,
    );
    assert.equal(
      crc32c(
        0,
        Uint8Array.from({ length: 32 }, (_, i) => 31 - i),
      ),
      0x113fdb5c,
    );
    assert.equal(crc32c(0, new Uint8Array(0)), 0);
  });

  it('equals the bitwise definition at every length and buffer alignment', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 7 }), (data, shift) => {
        const backing = new Uint8Array(data.length + shift);
        backing.set(data, shift);
        assert.equal(crc32c(0, backing.subarray(shift)), bitwiseCrc32c(data));
      }),
      { seed: 20240611, numRuns: 500 },
    );
  });

  it('continues across chunks: crc(a ‖ b) = crc32c(crc32c(0, a), b)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (data, at) => {
        const cut = data.length === 0 ? 0 : at % (data.length + 1);
        assert.equal(crc32c(crc32c(0, data.subarray(0, cut)), data.subarray(cut)), crc32c(0, data));
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});
