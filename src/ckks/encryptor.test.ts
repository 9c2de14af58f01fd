import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { Prng } from '../ring/prng.ts';
import { MismatchError } from '../util/errors.ts';
import { Decryptor, SymmetricEncryptor } from './encryptor.ts';
import { KeyGenerator } from './keys.ts';
import { Parameters, PRESETS } from './parameters.ts';
import { precisionStats } from './precision.ts';
import { testContext } from '../../tests/support/ckks-context.ts';

describe('encryption and decryption', () => {
  const ctx = testContext(PRESETS.PN14QP438);
  const values = ctx.uniform();

  it('public-key encryption decrypts within 2^-14 (fresh noise divided by P)', () => {
    for (const level of [ctx.params.depth, 0]) {
      const stats = precisionStats(values, ctx.decrypt(ctx.encryptPublic(values, level)));
      assert.ok(stats.log2MaxError < -14, `level ${level}: 2^${stats.log2MaxError}`);
    }
  });

  it('seeded symmetric encryption decrypts within 2^-18', () => {
    const stats = precisionStats(values, ctx.decrypt(ctx.encrypt(values)));
    assert.ok(stats.log2MaxError < -18, `2^${stats.log2MaxError}`);
  });

  it('expands the uniform half from the seed: same seed, same c1', () => {
    const encryptor = new SymmetricEncryptor(ctx.params, ctx.secretKey);
    const seed = new Uint8Array(32).fill(7);
    const pt = ctx.encoder.encodeNew(values);
    const a = encryptor.encryptNew(pt, seed, Prng.fromSeed(new Uint8Array(32).fill(1)));
    const b = encryptor.encryptNew(pt, seed, Prng.fromSeed(new Uint8Array(32).fill(2)));
    assert.deepEqual(a.polys[1].words(), b.polys[1].words());
    assert.notDeepEqual(a.polys[0].words(), b.polys[0].words());
  });

  it('key generation is reproducible from a seeded generator and differs otherwise', () => {
    const params = Parameters.create(PRESETS.PN13QP218);
    const seed = new Uint8Array(32).fill(9);
    const a = new KeyGenerator(params, Prng.fromSeed(seed)).generateSecretKey();
    const b = new KeyGenerator(params, Prng.fromSeed(seed)).generateSecretKey();
    const c = new KeyGenerator(params).generateSecretKey();
    assert.deepEqual(a.poly.words(), b.poly.words());
    assert.notDeepEqual(a.poly.words(), c.poly.words());
  });

  it('never prints the secret key', () => {
    const text = `${ctx.secretKey} ${JSON.stringify({ k: ctx.secretKey })} ${inspect(ctx.secretKey)}`;
    assert.ok(!/\d{6,}/.test(text.replace(ctx.params.id, '')), text);
    assert.match(text, /<hidden>/);
  });

  it('rejects objects of other parameters, naming both ids', () => {
    const other = testContext(PRESETS.PN13QP218);
    assert.throws(
      () => new Decryptor(ctx.params, other.secretKey),
      (e: unknown) =>
        e instanceof MismatchError &&
        e.message.includes(other.params.id) &&
        e.message.includes(ctx.params.id),
    );
    assert.throws(() => ctx.decryptor.decryptNew(other.encrypt([1])), MismatchError);
  });
});
