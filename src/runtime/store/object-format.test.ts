import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { xxh32 } from '../../ring/hash.ts';
import { FormatError, InvalidArgumentError } from '../../util/errors.ts';
import { crc32c } from './checksum.ts';
import {
  encodeObjectHeader,
  HEADER_BYTES,
  OBJECT_FORMAT_VERSION,
  payloadChecksum,
  verifyObjectHeader,
  verifyPayloadChecksum,
} from './object-format.ts';

test('the payload checksum is XXH32 in format 2 (kernel = reference) and CRC32C in format 1', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 70_000 }), (bytes) => {
      assert.equal(payloadChecksum(bytes), xxh32(bytes));
      assert.equal(payloadChecksum(bytes, 1), crc32c(0, bytes));
    }),
    { seed: 5, numRuns: 60 },
  );
  assert.equal(OBJECT_FORMAT_VERSION, 2);
});

test('headers round-trip and every field is checked against what the reader expects', () => {
  const header = encodeObjectHeader('conv1/w[0][3]', 1 << 20, 0xdeadbeef);
  assert.equal(header.length, HEADER_BYTES);
  const parsed = verifyObjectHeader(header, 'conv1/w[0][3]', 1 << 20, HEADER_BYTES + (1 << 20), 't', '/p');
  assert.deepEqual(parsed, { version: 2, payloadBytes: 1 << 20, payloadChecksum: 0xdeadbeef });
  const bad = (
    what: RegExp,
    edit: (h: Uint8Array) => void,
    id = 'conv1/w[0][3]',
    size = HEADER_BYTES + (1 << 20),
  ) => {
    const h = Uint8Array.from(header);
    edit(h);
    assert.throws(
      () => verifyObjectHeader(h, id, 1 << 20, size, 't', '/p'),
      (e: unknown) => e instanceof FormatError && /object "/.test(e.message) && what.test(e.message),
    );
  };
  bad(/bad magic/, (h) => {
    h[0] = 0;
  });
  bad(/header checksum mismatch/, (h) => {
    h[200] ^= 1;
  });
  bad(/holds object "conv1\/w\[0\]\[3\]": expected "other"/, () => {}, 'other');
  bad(/truncated or torn/, () => {}, 'conv1/w[0][3]', HEADER_BYTES + 5);
  bad(/shorter than its 4096-byte header/, () => {}, 'conv1/w[0][3]', 100);
  assert.throws(
    () => verifyPayloadChecksum(parsed, 0x12345678, 'conv1/w[0][3]', 't', '/p'),
    /"conv1\/w\[0\]\[3\]".*stored XXH32 0xdeadbeef, computed 0x12345678/,
  );
  assert.throws(() => encodeObjectHeader('x'.repeat(5000), 1, 0), InvalidArgumentError);
});
