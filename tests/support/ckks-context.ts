import type { KernelContext } from '../../src/ring/context.ts';
import { Prng } from '../../src/ring/prng.ts';
import { Decryptor, SymmetricEncryptor, Encryptor } from '../../src/ckks/encryptor.ts';
import { Encoder } from '../../src/ckks/encoder.ts';
import { Evaluator } from '../../src/ckks/evaluator.ts';
import { KeyGenerator } from '../../src/ckks/keys.ts';
import type { Ciphertext } from '../../src/ckks/objects.ts';
import { Parameters, type ParametersLiteral } from '../../src/ckks/parameters.ts';

/**
 * A deterministic CKKS context for tests and benchmarks: keys from fixed seeds, helpers to encrypt and decrypt.
 * Not for production use (fixed seeds are not secret).
 *
 * @example
 * ```ts
 * const ctx = testContext({ logN: 13, depth: 4, specialPrimes: 1 }, { rotations: [1] });
 * const ct = ctx.encrypt([1, 2, 3]);
 * ctx.decrypt(ct).slice(0, 3);
 * ```
 */
export function testContext(
  literal: ParametersLiteral,
  keys: { rotations?: number[]; conjugation?: boolean } = {},
  seed = 1,
  context?: KernelContext,
) {
  const params = Parameters.create(literal, { context });
  const seedBytes = (label: number) => {
    const bytes = new Uint8Array(32);
    bytes[0] = seed;
    bytes[1] = label;
    return bytes;
  };
  const keygen = new KeyGenerator(params, Prng.fromSeed(seedBytes(1)));
  const secretKey = keygen.generateSecretKey();
  const publicKey = keygen.generatePublicKey(secretKey);
  const evaluationKeys = keygen.generateEvaluationKeys(secretKey, keys);
  const encoder = new Encoder(params);
  const evaluator = new Evaluator(params, evaluationKeys);
  const decryptor = new Decryptor(params, secretKey);
  const symmetric = new SymmetricEncryptor(params, secretKey);
  const asymmetric = new Encryptor(params, publicKey);
  let counter = 0;
  const noise = Prng.fromSeed(seedBytes(3));
  return {
    params,
    keygen,
    secretKey,
    publicKey,
    evaluationKeys,
    encoder,
    evaluator,
    decryptor,
    /** Seeded symmetric encryption (the client path) at `level` (default top). */
    encrypt(values: ArrayLike<number>, level = params.depth) {
      return symmetric.encryptNew(
        encoder.encodeNew(values, level),
        seedBytes(100 + (counter++ % 100)),
        noise.fork(counter),
      );
    },
    /** Public-key encryption. */
    encryptPublic(values: ArrayLike<number>, level = params.depth) {
      return asymmetric.encryptNew(encoder.encodeNew(values, level), noise.fork(1000 + counter++));
    },
    decrypt(ct: Ciphertext) {
      return encoder.decode(decryptor.decryptNew(ct));
    },
    /** Uniform values in [-1, 1] from a fixed xorshift seed. */
    uniform(count = params.slots, salt = 1): Float64Array {
      let s = (0x9e3779b9 ^ salt) >>> 0 || 1;
      return Float64Array.from({ length: count }, () => {
        s ^= s << 13;
        s >>>= 0;
        s ^= s >>> 17;
        s ^= s << 5;
        s >>>= 0;
        return (s / 2 ** 32) * 2 - 1;
      });
    },
  };
}
