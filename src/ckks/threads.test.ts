import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { KernelContext } from '../ring/context.ts';
import { Prng } from '../ring/prng.ts';
import { Encoder } from './encoder.ts';
import { Encryptor, SymmetricEncryptor } from './encryptor.ts';
import { Evaluator } from './evaluator.ts';
import { KeyGenerator } from './keys.ts';
import { Parameters, PRESETS, type ParametersLiteral } from './parameters.ts';
import { serializeCiphertext } from './serialization/index.ts';

function seed(label: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? label : (0x5a + 11 * i) & 0xff));
}

/**
 * CKKS on a fresh context with `threads` threads, from fixed seeds: public-key encryption (ModDown with an
 * error), multiply, relinearize (ModUp, inner product, ModDown), rescale, rotate, hoisted rotations, and the
 * serialized bytes of each result.
 */
function ckksRun(literal: ParametersLiteral, threads: number): string[] {
  const context = KernelContext.create({ threads });
  try {
    const params = Parameters.create(literal, { context });
    const keygen = new KeyGenerator(params, Prng.fromSeed(seed(2)));
    const secretKey = keygen.generateSecretKey(Prng.fromSeed(seed(3)));
    const publicKey = keygen.generatePublicKey(secretKey, seed(4));
    const keys = keygen.generateEvaluationKeys(secretKey, { rotations: [1, 2, 5] });
    const encoder = new Encoder(params);
    const values = Float64Array.from({ length: params.slots }, (_, i) => ((i * 29) % 64) / 32 - 1);
    const pt = encoder.encodeNew(values);
    const x = new Encryptor(params, publicKey).encryptNew(pt, Prng.fromSeed(seed(5)));
    const y = new SymmetricEncryptor(params, secretKey).encryptNew(pt, seed(6), Prng.fromSeed(seed(7)));
    const evaluator = new Evaluator(params, keys);
    const product = evaluator.mulRelinNew(x, y);
    const rescaled = evaluator.rescaleNew(product);
    const rotated = evaluator.rotateNew(rescaled, 1);
    const hoisted = evaluator.rotateHoistedNew(rescaled, [2, 5]);
    return [x, y, product, rescaled, rotated, ...hoisted.values()].map((c) =>
      bytesToHex(sha256(serializeCiphertext(c))),
    );
  } finally {
    context.close();
  }
}

describe('CKKS on kernel threads', () => {
  for (const [name, literal] of [
    ['PN14QP438 (one digit)', PRESETS.PN14QP438],
    ['logN 14, α 2, four digits', { logN: 14, depth: 6, specialPrimes: 2 }],
  ] as const) {
    it(`CKKS results are the same bits on 1 and 2 threads: ${name}`, () => {
      const one = ckksRun(literal, 1);
      const two = ckksRun(literal, 2);
      assert.deepEqual(two, one);
    });
  }
});
