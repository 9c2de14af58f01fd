/*
 * Golden vectors of the wire format: the SHA-256 of the exact bytes of every kind of serialized object, made from
 * fixed seeds, pinned as hex literals.
 *
 * What a failure means. The bytes of an object changed. Either the format changed (header layout, field values,
 * body order, checksum) or the arithmetic that makes the object changed (prime choice, parameters id, sampling,
 * PRNG, key generation, encoding, encryption, multiplication, rescale). Objects written by an earlier build would
 * then no longer read back the same, or would read back as something else:
 *   - a deliberate format change must bump FORMAT_VERSION in src/ckks/serialization/format.ts (old bytes are
 *     then refused instead of misread), and the new digests are pinned here in the same commit;
 *   - a deliberate change of the arithmetic keeps the format version, and the commit message must say which
 *     computation changed and why the digests below moved;
 *   - anything else (a refactoring, a split of a module) must leave every digest as it is: a failure is a bug.
 * The round-trip test fails on its own when a reader and its writer disagree (deserialize → serialize must give
 * back the same bytes); the pinned digests fail when both changed together.
 *
 * Everything here is integer arithmetic on fixed seeds except a few floating-point inputs: the table of the
 * Gaussian sampler (Math.exp; an engine whose Math.exp differs in the last bit moves a sample with probability
 * ~2^-50, see src/ring/sampling.ts), the encoder's roots of unity (Math.cos, Math.sin) and the default scale
 * (2 ** 29.9, which picks the primes). V8 computes these with its own implementations, the same on every
 * platform; another JavaScript engine could in principle differ in a last bit.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { galoisElementForConjugation, galoisElementForRotation } from '../ring/galois.ts';
import { Prng } from '../ring/prng.ts';
import { Encoder } from './encoder.ts';
import { Encryptor, SymmetricEncryptor } from './encryptor.ts';
import { Evaluator } from './evaluator.ts';
import { KeyGenerator } from './keys.ts';
import { Parameters, type ParametersLiteral, PRESETS } from './parameters.ts';
import {
  deserializeCiphertext,
  deserializeEvaluationKeys,
  deserializeGaloisKey,
  deserializeParameters,
  deserializePlaintext,
  deserializePublicKey,
  deserializeSecretKey,
  deserializeSwitchingKey,
  FORMAT_VERSION,
  serializeCiphertext,
  serializeEvaluationKeys,
  serializeGaloisKey,
  serializeParameters,
  serializePlaintext,
  serializePublicKey,
  serializeSecretKey,
  serializeSwitchingKey,
} from './serialization/index.ts';

/** A 32-byte seed: `label` in byte 0 and a fixed pattern after it, so no two labels share a seed. */
function seed(label: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? label : (0x3c + 7 * i) & 0xff));
}

function digest(bytes: Uint8Array): string {
  return bytesToHex(sha256(bytes));
}

/**
 * One serialized object: its bytes and how to read it back and write it again. `rewrite` must give the same
 * bytes (the round trip), and `expanded` (seeded objects) the bytes of the full form of the same object.
 */
interface Golden {
  readonly bytes: Uint8Array;
  readonly rewrite: (bytes: Uint8Array) => Uint8Array;
  readonly expanded?: { readonly name: string; readonly rewrite: (bytes: Uint8Array) => Uint8Array };
}

/**
 * Every object kind of the format for one parameter set, made in a fixed order from fixed seeds (the key
 * generator draws its seeds from one stream, so the order of the calls is part of the vector).
 */
function goldenObjects(literal: ParametersLiteral): Map<string, Golden> {
  const params = Parameters.create(literal);
  const keygen = new KeyGenerator(params, Prng.fromSeed(seed(1)));
  const secretKey = keygen.generateSecretKey(Prng.fromSeed(seed(2)));
  const publicKey = keygen.generatePublicKey(secretKey, seed(3));
  const evaluationKeys = keygen.generateEvaluationKeys(secretKey, { rotations: [1], conjugation: true });
  const relinearizationKey = evaluationKeys.relinearization;
  assert.ok(relinearizationKey !== undefined);
  const rotationKey = evaluationKeys.galois.get(galoisElementForRotation(1, params.logN));
  assert.ok(rotationKey !== undefined);
  assert.equal(evaluationKeys.galois.size, 2);
  assert.ok(evaluationKeys.galois.has(galoisElementForConjugation(params.logN)));

  // Exact binary fractions in [-1, 1): the encoder's input carries no rounding of its own.
  const values = Float64Array.from({ length: params.slots }, (_, i) => ((i * 37) % 256) / 128 - 1);
  const encoder = new Encoder(params);
  const pt = encoder.encodeNew(values);
  const publicCt = new Encryptor(params, publicKey).encryptNew(pt, Prng.fromSeed(seed(4)));
  const symmetricCt = new SymmetricEncryptor(params, secretKey).encryptNew(
    pt,
    seed(5),
    Prng.fromSeed(seed(6)),
  );
  const evaluator = new Evaluator(params, evaluationKeys);
  const product = evaluator.mulNew(publicCt, symmetricCt);
  assert.equal(product.polys.length, 3);
  const rescaled = evaluator.rescaleNew(evaluator.relinearizeNew(product));
  assert.equal(rescaled.level, params.depth - 1);

  const seeded = { seeded: true };
  const golden = new Map<string, Golden>();
  golden.set('parameters', {
    bytes: serializeParameters(params),
    rewrite: (b) => serializeParameters(deserializeParameters(b)),
  });
  golden.set('secret key', {
    bytes: serializeSecretKey(secretKey),
    rewrite: (b) => serializeSecretKey(deserializeSecretKey(params, b)),
  });
  golden.set('public key', {
    bytes: serializePublicKey(publicKey),
    rewrite: (b) => serializePublicKey(deserializePublicKey(params, b)),
  });
  golden.set('public key, seeded', {
    bytes: serializePublicKey(publicKey, seeded),
    rewrite: (b) => serializePublicKey(deserializePublicKey(params, b), seeded),
    expanded: { name: 'public key', rewrite: (b) => serializePublicKey(deserializePublicKey(params, b)) },
  });
  golden.set('relinearization key', {
    bytes: serializeSwitchingKey(relinearizationKey),
    rewrite: (b) => serializeSwitchingKey(deserializeSwitchingKey(params, b)),
  });
  golden.set('relinearization key, seeded', {
    bytes: serializeSwitchingKey(relinearizationKey, seeded),
    rewrite: (b) => serializeSwitchingKey(deserializeSwitchingKey(params, b), seeded),
    expanded: {
      name: 'relinearization key',
      rewrite: (b) => serializeSwitchingKey(deserializeSwitchingKey(params, b)),
    },
  });
  golden.set('Galois key (rotation by 1)', {
    bytes: serializeGaloisKey(rotationKey),
    rewrite: (b) => serializeGaloisKey(deserializeGaloisKey(params, b)),
  });
  golden.set('Galois key (rotation by 1), seeded', {
    bytes: serializeGaloisKey(rotationKey, seeded),
    rewrite: (b) => serializeGaloisKey(deserializeGaloisKey(params, b), seeded),
    expanded: {
      name: 'Galois key (rotation by 1)',
      rewrite: (b) => serializeGaloisKey(deserializeGaloisKey(params, b)),
    },
  });
  golden.set('evaluation keys', {
    bytes: serializeEvaluationKeys(evaluationKeys),
    rewrite: (b) => serializeEvaluationKeys(deserializeEvaluationKeys(params, b)),
  });
  golden.set('evaluation keys, seeded', {
    bytes: serializeEvaluationKeys(evaluationKeys, seeded),
    rewrite: (b) => serializeEvaluationKeys(deserializeEvaluationKeys(params, b), seeded),
    expanded: {
      name: 'evaluation keys',
      rewrite: (b) => serializeEvaluationKeys(deserializeEvaluationKeys(params, b)),
    },
  });
  golden.set('plaintext', {
    bytes: serializePlaintext(pt),
    rewrite: (b) => serializePlaintext(deserializePlaintext(params, b)),
  });
  const ciphertext = (b: Uint8Array) => serializeCiphertext(deserializeCiphertext(params, b));
  golden.set('ciphertext, public-key encryption', {
    bytes: serializeCiphertext(publicCt),
    rewrite: ciphertext,
  });
  golden.set('ciphertext, symmetric encryption', {
    bytes: serializeCiphertext(symmetricCt),
    rewrite: ciphertext,
  });
  golden.set('ciphertext, symmetric encryption, seeded', {
    bytes: serializeCiphertext(symmetricCt, seeded),
    rewrite: (b) => serializeCiphertext(deserializeCiphertext(params, b), seeded),
    expanded: { name: 'ciphertext, symmetric encryption', rewrite: ciphertext },
  });
  golden.set('ciphertext, degree 2 (product)', { bytes: serializeCiphertext(product), rewrite: ciphertext });
  golden.set('ciphertext, relinearized and rescaled (one level down)', {
    bytes: serializeCiphertext(rescaled),
    rewrite: ciphertext,
  });
  return golden;
}

interface GoldenSet {
  readonly name: string;
  readonly literal: ParametersLiteral;
  /** Object name → SHA-256 of its bytes (hex). */
  readonly digests: Readonly<Record<string, string>>;
}

const GOLDEN_SETS: readonly GoldenSet[] = [
  {
    // 3 primes ≈ 90 bits ≤ 109 (the 128-bit bound at logN 12); two digits, so the keys use stream labels 0 and 1.
    name: 'logN 12, one prime per level',
    literal: { logN: 12, depth: 1, basePrimes: 1, specialPrimes: 1 },
    digests: {
      parameters: '824b43d5bcc8a83319b4221ae6eb0e299bc452eaa2b5179fded46ee2625ec8e8',
      'secret key': '3b639d5c2452b54194b3e05f807e690ca40305430a08b1923f7d64c1274863d5',
      'public key': 'a1446fdd6432991c08f31fbd5fe0cabad2076a952a8aef559a986ca32b63f167',
      'public key, seeded': '81676bbb49487cdccd1fee0bb7c375b4385cb39f83cfea8867a60244483d4247',
      'relinearization key': 'a95a3c92687105f3b47eba249d132bc44f3f2b11fe44a37e8489f17f58618975',
      'relinearization key, seeded': '70a4fa7ed4f9d9efce9f7b327feccacdbdc69cfc9fb0a13b0769e4b90425349f',
      'Galois key (rotation by 1)': 'cf06bfd410532b373fca3ec7569c36f2b6c6a4879294cbf393c388206fd3938a',
      'Galois key (rotation by 1), seeded':
        '54a7265c98e5e0b8397322cbad4a3e0f57b2ad80a29c82649152a5193db9a23a',
      'evaluation keys': '08322ee5c5c2112b6c2b477170ebf0a4844f794f4b3d5c58e741484dbac3b134',
      'evaluation keys, seeded': '48107e4bd8136af705c24e53234cb43e38e10d37af9bae499ba655cd855dfcb0',
      plaintext: 'c631e56c0938a5748f4c634307b03130d6e62050d71007c5430f355f40d54a52',
      'ciphertext, public-key encryption': '643592cfd21beec04203fcf4807e310fc08f0cf2d5042fd2c1ab18377512c985',
      'ciphertext, symmetric encryption': 'f726280caa2de5b2399fe3ccccece42b6f08b4d852559e430f3147c221db37bd',
      'ciphertext, symmetric encryption, seeded':
        'c1902bb6b8f503fb4f0feebfc8fe92089c562507ded1a1cf77b79be2de367326',
      'ciphertext, degree 2 (product)': '8535a1ba0191fc79ab1ff2f83f51bd2beed3d83090a0d66e4ec443d13200a4c2',
      'ciphertext, relinearized and rescaled (one level down)':
        'a6d1d501c36bf4e9fcdc129ef560f942f94bb0996d4f73e5fad8a6d1e5fff9c1',
    },
  },
  {
    // 5 Q primes (3 base, 2 per level) and 2 special primes ≈ 210 bits ≤ 218 (the bound at logN 13); 3 digits.
    name: 'logN 13, two primes per level',
    literal: { logN: 13, depth: 1, primesPerLevel: 2, specialPrimes: 2 },
    digests: {
      parameters: 'c85eeec8d9d9700b6bdeb75f7fcedc6ae317864f904e464f93570e50fdb0c75d',
      'secret key': '7295f63c0ec9ef6fecb334fff53646fdab25145fc0740f5241cfad124ec82785',
      'public key': '4c328e1e4089382fa18f8885477df3ed948443d8e2cdda182ca87f79caa3c696',
      'public key, seeded': 'b39d7e7656318b7dd2f924f485cbfe18430abe115d9ffbaaa7e5491ed4c71e66',
      'relinearization key': 'ad068d9963d80d68e854f363b0eb9c2183438c69bcf83757e655db523ed5fb81',
      'relinearization key, seeded': '938991fb376495625649f88635938e1bce424c2a648a8954a46ba958b0c91951',
      'Galois key (rotation by 1)': '0f8d06581a1397787cc4386de125d11f104da653a84ecd56110c1e2a5341260f',
      'Galois key (rotation by 1), seeded':
        'b3e7c3c667d9b2bb7a91d60f5a39faacb1335de1b9a756e1055cad2fecf3d70c',
      'evaluation keys': '24aa9d289e2804f6796a74ff340b572c8d701246f834267419210e816a2fb037',
      'evaluation keys, seeded': '57b38e6810c4dbc78c6011be86d55904aa9e490434ba3f9030142f84a0f3a9fa',
      plaintext: '7cc43a4f57198afdbad464a7a81933fae7a1e82eb037f918c9b35d465800f363',
      'ciphertext, public-key encryption': '026a84fab9c1f16e7e2cec75a4dac7971178a7026b50bd606f527ce190d2c8c4',
      'ciphertext, symmetric encryption': 'ad09f0f7780422172eb3734f37d27f506d5080acd4bede7ff8770c5c3f7da180',
      'ciphertext, symmetric encryption, seeded':
        '1c0a22f3be1d6bd8d6d01e0f4f4f819db54fc17921fc78755d5cdf045ac31477',
      'ciphertext, degree 2 (product)': '83d4b654101635133b68cc48f6510045d591e184bfe9b4c283488ab0cdb33bd7',
      'ciphertext, relinearized and rescaled (one level down)':
        '05154cee7bb12f76876ff73ba1693ae59e3577330a122ae2ad2ebd0d98b2ec37',
    },
  },
];

/**
 * Parameters only, for the body fields the sets above leave at their defaults: a sparse-ternary secret (kind and
 * Hamming weight) and a preset with two primes per level and several special primes.
 */
const GOLDEN_PARAMETERS: readonly { readonly literal: ParametersLiteral; readonly digest: string }[] = [
  {
    literal: {
      logN: 12,
      depth: 1,
      basePrimes: 1,
      specialPrimes: 1,
      secret: { kind: 'sparse-ternary', hammingWeight: 64 },
    },
    digest: '6de5f026a7853a1471ec91641d61b5c80122aa0ddca9d0ca026bfd535a398401',
  },
  {
    literal: PRESETS.PN14QP438S60,
    digest: '40551b214555cf8a8fd263f3a9ee2108b46977da860c68be39238aadc0fb0f7f',
  },
];

describe('serialization golden vectors (format version 1)', () => {
  it('the format version these vectors were made with', () => {
    // A new version needs new vectors: make them, pin them here and change this number with them.
    assert.equal(FORMAT_VERSION, 1);
  });

  it('parameters of a sparse-ternary set and of a two-primes-per-level preset', () => {
    // Failure: the parameters encoding or the parameters id changed (see the top of this file).
    for (const { literal, digest: pinned } of GOLDEN_PARAMETERS) {
      const bytes = serializeParameters(Parameters.create(literal));
      assert.equal(digest(bytes), pinned, JSON.stringify(literal));
      assert.equal(digest(serializeParameters(deserializeParameters(bytes))), pinned, 'round trip');
    }
  });

  for (const set of GOLDEN_SETS) {
    describe(set.name, () => {
      const golden = goldenObjects(set.literal);

      it('the SHA-256 of the bytes of every object is the pinned one', () => {
        // Failure: the format or the arithmetic changed (see the top of this file): bump FORMAT_VERSION for a
        // format change, or explain in the commit why the arithmetic changed; a refactoring must not get here.
        const actual = Object.fromEntries([...golden].map(([name, g]) => [name, digest(g.bytes)]));
        assert.deepEqual(actual, set.digests);
      });

      it('deserializing and serializing again gives the same bytes; seeded objects expand to the full ones', () => {
        // Failure: a reader and its writer disagree, or a seed no longer re-expands to the polynomial it made.
        for (const [name, g] of golden) {
          assert.equal(digest(g.rewrite(g.bytes)), digest(g.bytes), `${name}: round trip`);
          if (g.expanded !== undefined) {
            const full = golden.get(g.expanded.name);
            assert.ok(full !== undefined, g.expanded.name);
            assert.equal(
              digest(g.expanded.rewrite(g.bytes)),
              digest(full.bytes),
              `${name}: read, then written in full, gives the bytes of the ${g.expanded.name}`,
            );
          }
        }
      });
    });
  }
});
