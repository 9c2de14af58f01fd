import assert from 'node:assert/strict';
import { test } from 'node:test';
import { idHash64 } from './checksum.ts';

test('idHash64 is 64-bit FNV-1a', () => {
  assert.equal(idHash64(''), 'cbf29ce484222325');
  assert.equal(idHash64('a'), 'af63dc4c8601ec8c');
  assert.equal(idHash64('foobar'), '85944171f73967e8');
  assert.notEqual(idHash64('ct[1]'), idHash64('ct[2]'));
});
