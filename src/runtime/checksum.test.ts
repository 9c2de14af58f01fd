import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { crc32c, idHash64 } from './checksum.ts';

test('crc32c matches the standard check value and the RFC 3720 test vectors', () => {
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

test('crc32c over chunks equals crc32c of the whole, at any alignment', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 300 }),
      fc.nat(300),
      fc.nat(3),
      (data, cut, shift) => {
        const backing = new Uint8Array(data.length + shift);
        backing.set(data, shift);
        const view = backing.subarray(shift);
        const at = Math.min(cut, data.length);
        const whole = crc32c(0, data);
        assert.equal(crc32c(0, view), whole);
        assert.equal(crc32c(crc32c(0, view.subarray(0, at)), view.subarray(at)), whole);
      },
    ),
    { seed: 20261124, numRuns: 300 },
  );
});

test('crc32c detects every single-bit flip', () => {
  const data = Uint8Array.from({ length: 257 }, (_, i) => (i * 37) & 0xff);
  const reference = crc32c(0, data);
  for (let i = 0; i < data.length; i++) {
    for (let b = 0; b < 8; b++) {
      data[i] ^= 1 << b;
      assert.notEqual(crc32c(0, data), reference);
      data[i] ^= 1 << b;
    }
  }
});

test('idHash64 is 64-bit FNV-1a', () => {
  assert.equal(idHash64(''), 'cbf29ce484222325');
  assert.equal(idHash64('a'), 'af63dc4c8601ec8c');
  assert.equal(idHash64('foobar'), '85944171f73967e8');
  assert.notEqual(idHash64('ct[1]'), idHash64('ct[2]'));
});
