import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Bootstrapper } from '../../ckks/bootstrapping/bootstrapper.ts';
import { BootstrappingParameters } from '../../ckks/bootstrapping/parameters.ts';
import { Encoder } from '../../ckks/encoder.ts';
import { Encryptor } from '../../ckks/encryptor.ts';
import { StashedKeys } from '../../ckks/key-source.ts';
import { HostStash, type Stash } from '../../ckks/stash.ts';
import { KeyGenerator } from '../../ckks/keys.ts';
import type { Ciphertext } from '../../ckks/objects.ts';
import { Prng } from '../../ring/prng.ts';
import { FileStash } from '../store/file-stash.ts';

/** Bootstrapping with its keys and diagonals in files gives the very bits it gives with everything in memory. */
describe('bootstrapping from a file stash (logN 10)', () => {
  it('is bit-identical to bootstrapping with resident keys, and leaves nothing behind', () => {
    const bp = BootstrappingParameters.create({ logN: 10, insecure: true });
    const params = bp.params;
    const run = (stash?: Stash) => {
      const prng = Prng.fromSeed(new Uint8Array(32).fill(5));
      const keygen = new KeyGenerator(params, prng);
      const sk = keygen.generateSecretKey();
      const pk = keygen.generatePublicKey(sk);
      const keys = Bootstrapper.generateKeys(bp, keygen, sk, { prng, stash });
      assert.equal(keys.galois instanceof StashedKeys, stash !== undefined);
      const encoder = new Encoder(params);
      const values = Float64Array.from({ length: params.slots }, (_, i) => Math.cos(i));
      const ct = new Encryptor(params, pk).encryptNew(
        encoder.encodeNew(values, 0, params.scaleAtLevel[0]),
        prng,
      );
      const bootstrapper = new Bootstrapper(bp, keys);
      const outs: Ciphertext[] = [bootstrapper.bootstrapNew(ct), bootstrapper.bootstrapNew(ct)];
      bootstrapper.dispose();
      return outs.map((o) => o.polys.map((p) => Uint32Array.from(p.words())));
    };
    const resident = run();
    const stash = FileStash.create(params.context);
    try {
      const stashed = run(stash);
      assert.deepEqual(stashed[0], resident[0]);
      // The second run reads the diagonals back from the stash instead of encoding them.
      assert.deepEqual(stashed[1], resident[1]);
      assert.ok(stash.byteLength > 0);
    } finally {
      stash.close();
    }
    // Another bootstrapper of the same parameters, with a stash of its own, after that one is gone.
    assert.deepEqual(run(new HostStash())[1], resident[1]);
  });
});
