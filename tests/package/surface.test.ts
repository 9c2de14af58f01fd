import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

/**
 * The public surface of each entry point of the package, pinned: adding, renaming or removing an export is a
 * deliberate change of this list (and of the docs), never an accident of a refactor. Imported through the
 * package's own name, as a user imports it (the `home-source` condition of the test runner resolves it to src/).
 */
const SURFACE: Record<string, string[]> = {
  'home-he': [
    'CHECKSUM_BYTES',
    'Ciphertext',
    'Decryptor',
    'Encoder',
    'Encryptor',
    'EvaluationKeys',
    'Evaluator',
    'FORMAT_VERSION',
    'FormatError',
    'GaloisKey',
    'HEADER_BYTES',
    'HomeError',
    'InvalidArgumentError',
    'KernelContext',
    'KeyGenerator',
    'LinearTransform',
    'MAX_LOG_QP_128',
    'MismatchError',
    'MissingKeyError',
    'ObjectType',
    'PRESETS',
    'Parameters',
    'Plaintext',
    'Polynomial',
    'PolynomialEvaluator',
    'Prng',
    'PublicKey',
    'ResourceError',
    'SecretKey',
    'SecurityError',
    'SeededCiphertext',
    'SwitchingKey',
    'SymmetricEncryptor',
    'defaultContext',
    'deserializeCiphertext',
    'deserializeEvaluationKeys',
    'deserializeGaloisKey',
    'deserializeParameters',
    'deserializePlaintext',
    'deserializePublicKey',
    'deserializeSecretKey',
    'deserializeSwitchingKey',
    'galoisElementForConjugation',
    'galoisElementForRotation',
    'loadKernels',
    'maxLogQP128',
    'precisionStats',
    'readHeader',
    'serializeCiphertext',
    'serializeEvaluationKeys',
    'serializeGaloisKey',
    'serializeParameters',
    'serializePlaintext',
    'serializePublicKey',
    'serializeSecretKey',
    'serializeSwitchingKey',
    'serializedSize',
  ],
};

describe('package surface', () => {
  for (const [entry, expected] of Object.entries(SURFACE)) {
    it(`${entry} exports exactly its pinned names`, async () => {
      const module = (await import(entry)) as Record<string, unknown>;
      assert.deepEqual(Object.keys(module).sort(), [...expected].sort());
      for (const name of expected) assert.notEqual(module[name], undefined, `${entry}: ${name} is undefined`);
    });
  }
});
