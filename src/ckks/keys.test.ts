import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Prng } from '../ring/prng.ts';
import { KeyGenerator } from './keys.ts';
import { Parameters, PRESETS } from './parameters.ts';

describe('EvaluationKeys sizes', () => {
  it('seeded form: the b halves of every key plus one 32-byte seed each, half the full form', () => {
    const params = Parameters.create(PRESETS.PN13QP218);
    const keygen = new KeyGenerator(params, Prng.fromSeed(new Uint8Array(32).fill(5)));
    const keys = keygen.generateEvaluationKeys(keygen.generateSecretKey(), { rotations: [1, 2] });
    const all = [keys.relinearization!, ...[...keys.galois.values()].map((g) => g.key)];
    assert.equal(all.length, 3);
    assert.equal(
      keys.seededByteLength,
      all.reduce((s, k) => s + k.seededByteLength, 0),
    );
    assert.equal(keys.seededByteLength, keys.byteLength / 2 + 32 * all.length);
    for (const k of all) k.dispose();
  });
});
