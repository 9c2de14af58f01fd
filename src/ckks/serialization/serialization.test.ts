import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { galoisElementForConjugation, galoisElementForRotation } from '../../ring/galois.ts';
import { xxh32, xxh32x4 } from '../../ring/hash.ts';
import type { Poly } from '../../ring/poly.ts';
import { Prng } from '../../ring/prng.ts';
import { FormatError, InvalidArgumentError, MismatchError } from '../../util/errors.ts';
import { Encoder } from '../encoder.ts';
import { Decryptor, Encryptor, SeededCiphertext, SymmetricEncryptor } from '../encryptor.ts';
import { Evaluator } from '../evaluator.ts';
import { EvaluationKeys, GaloisKey, KeyGenerator, PublicKey, SecretKey, SwitchingKey } from '../keys.ts';
import { Ciphertext, Plaintext } from '../objects.ts';
import { Parameters, PRESETS } from '../parameters.ts';
import {
  CHECKSUM_BYTES,
  deserializeCiphertext,
  deserializeEvaluationKeys,
  deserializeGaloisKey,
  deserializeParameters,
  deserializePlaintext,
  deserializePublicKey,
  deserializeSecretKey,
  deserializeSwitchingKey,
  HEADER_BYTES,
  ObjectType,
  readHeader,
  serializeCiphertext,
  serializedSize,
  serializeEvaluationKeys,
  serializeGaloisKey,
  serializeParameters,
  serializePlaintext,
  serializePublicKey,
  serializeSecretKey,
  serializeSwitchingKey,
  writeCiphertext,
} from './index.ts';

// 6 primes ≈ 180 bits ≤ 218 (128-bit bound at logN 13): the set for round trips that compute.
const MAIN = Parameters.create({ logN: 13, depth: 3, specialPrimes: 1 });
// 3 primes ≈ 90 bits ≤ 109 (bound at logN 12): small objects, so the fuzz loop stays fast.
const SMALL = Parameters.create({ logN: 12, depth: 1, basePrimes: 1, specialPrimes: 1 });

function seedBytes(label: number): Uint8Array {
  const seed = new Uint8Array(32);
  seed[0] = 0x5e;
  seed[1] = label;
  return seed;
}

function fixture(params: Parameters, label: number) {
  const keygen = new KeyGenerator(params, Prng.fromSeed(seedBytes(label + 100)));
  const secretKey = keygen.generateSecretKey(Prng.fromSeed(seedBytes(label)));
  const publicKey = keygen.generatePublicKey(secretKey, seedBytes(label + 1));
  const rotation = galoisElementForRotation(1, params.logN);
  const conjugation = galoisElementForConjugation(params.logN);
  const evaluationKeys = keygen.generateEvaluationKeys(secretKey, { rotations: [1, -1], conjugation: true });
  const encoder = new Encoder(params);
  const values = Array.from({ length: params.slots }, (_, i) => Math.sin(i + label) * 0.9);
  const pt = encoder.encodeNew(values);
  const ct = new Encryptor(params, publicKey).encryptNew(pt, Prng.fromSeed(seedBytes(label + 2)));
  const seeded = new SymmetricEncryptor(params, secretKey).encryptNew(
    pt,
    seedBytes(label + 3),
    Prng.fromSeed(seedBytes(label + 4)),
  );
  const decryptor = new Decryptor(params, secretKey);
  return {
    params,
    keygen,
    secretKey,
    publicKey,
    evaluationKeys,
    relinearizationKey: evaluationKeys.relinearization!,
    rotationKey: evaluationKeys.galois.get(rotation)!,
    conjugationKey: evaluationKeys.galois.get(conjugation)!,
    encoder,
    values,
    pt,
    ct,
    seeded,
    evaluator: new Evaluator(params, evaluationKeys),
    decrypt: (c: Ciphertext) => encoder.decode(decryptor.decryptNew(c)),
  };
}

const main = fixture(MAIN, 10);

function sameWords(a: Poly, b: Poly, what: string): void {
  assert.equal(a.limbCount, b.limbCount, `${what}: limb count`);
  assert.equal(a.isNtt, b.isNtt, `${what}: domain`);
  const x = a.words();
  const y = b.words();
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) assert.fail(`${what}: word ${i} differs: ${x[i]} vs ${y[i]}`);
  }
}

function sameCiphertext(a: Ciphertext, b: Ciphertext, what: string): void {
  assert.equal(a.level, b.level, `${what}: level`);
  assert.equal(a.scale, b.scale, `${what}: scale`);
  assert.equal(a.polys.length, b.polys.length, `${what}: degree`);
  a.polys.forEach((p, i) => {
    sameWords(p, b.polys[i], `${what} c${i}`);
  });
}

function sameSwitchingKey(a: SwitchingKey, b: SwitchingKey, what: string): void {
  assert.equal(a.digits.length, b.digits.length);
  assert.deepEqual(b.seed, a.seed);
  a.digits.forEach((d, j) => {
    sameWords(d.b, b.digits[j].b, `${what} digit ${j} b`);
    sameWords(d.a, b.digits[j].a, `${what} digit ${j} a`);
  });
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): void {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  assert.ok(worst < tolerance, `max error ${worst}: expected below ${tolerance}`);
}

function rotateLeft(values: readonly number[], steps: number): number[] {
  const k = ((steps % values.length) + values.length) % values.length;
  return [...values.slice(k), ...values.slice(0, k)];
}

/**
 * The object checksum by the format's definition, from the TypeScript XXH32 alone: XXH32 of the 48 header bytes
 * followed by the four lane digests (u32 LE), lane j being the concatenation of the body's 16-byte stripes j,
 * j + 4, j + 8, … (the last stripe possibly partial).
 */
function referenceChecksum(header: Uint8Array, body: Uint8Array): number {
  const input = new Uint8Array(HEADER_BYTES + 16);
  input.set(header.subarray(0, HEADER_BYTES));
  const view = new DataView(input.buffer);
  for (let lane = 0; lane < 4; lane++) {
    const stripes = new Uint8Array(body.length);
    let length = 0;
    for (let at = 16 * lane; at < body.length; at += 64) {
      const stripe = body.subarray(at, at + 16);
      stripes.set(stripe, length);
      length += stripe.length;
    }
    view.setUint32(HEADER_BYTES + 4 * lane, xxh32(stripes.subarray(0, length)), true);
  }
  return xxh32(input);
}

/** Recomputes every header and object checksum (nested ones of an evaluation-key set too), as an attacker can. */
function refreshChecksums(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fix = (start: number, end: number) => {
    if (end - start < HEADER_BYTES) return;
    view.setUint32(start + 44, xxh32(bytes.subarray(start, start + 44)), true);
    const bodyEnd = start + HEADER_BYTES + view.getUint32(start + 32, true);
    if (view.getUint32(start + 36, true) !== 0 || bodyEnd + CHECKSUM_BYTES > end) return;
    if (bytes[start + 6] === ObjectType.EvaluationKeys) {
      let entry = start + HEADER_BYTES;
      while (entry + HEADER_BYTES + CHECKSUM_BYTES <= bodyEnd) {
        const entryEnd = entry + HEADER_BYTES + view.getUint32(entry + 32, true) + CHECKSUM_BYTES;
        if (entryEnd > bodyEnd) break;
        fix(entry, entryEnd);
        entry = entryEnd;
      }
    }
    view.setUint32(
      bodyEnd,
      referenceChecksum(
        bytes.subarray(start, start + HEADER_BYTES),
        bytes.subarray(start + HEADER_BYTES, bodyEnd),
      ),
      true,
    );
  };
  fix(0, bytes.length);
  return bytes;
}

function edit(
  bytes: Uint8Array,
  change: (view: DataView, copy: Uint8Array) => void,
  refresh = true,
): Uint8Array {
  const copy = bytes.slice();
  change(new DataView(copy.buffer), copy);
  return refresh ? refreshChecksums(copy) : copy;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function disposeObject(object: unknown): void {
  if (object instanceof Ciphertext || object instanceof Plaintext || object instanceof SwitchingKey) {
    object.dispose();
  } else if (object instanceof PublicKey) {
    object.a.dispose();
    object.b.dispose();
  } else if (object instanceof GaloisKey) {
    object.key.dispose();
  } else if (object instanceof SecretKey) {
    object.poly.dispose();
  } else if (object instanceof EvaluationKeys) {
    object.relinearization?.dispose();
    for (const key of object.galois.values()) key.key.dispose();
  }
}

describe('serialization round trips', () => {
  it('plaintext: same polynomial, level, scale and domain; sizes as serializedSize says', () => {
    const pt = main.encoder.encodeNew([0.25, -0.5, 1], 2, 2 ** 33.5);
    const bytes = serializePlaintext(pt);
    assert.equal(bytes.length, serializedSize(pt));
    assert.equal(bytes.length, HEADER_BYTES + MAIN.limbsAtLevel(2) * MAIN.n * 4 + CHECKSUM_BYTES);
    const back = deserializePlaintext(MAIN, bytes);
    assert.equal(back.level, 2);
    assert.equal(back.scale, 2 ** 33.5);
    sameWords(pt.poly, back.poly, 'plaintext');
    assert.deepEqual(serializePlaintext(back), bytes);
    assertClose(main.encoder.decode(back).subarray(0, 3), [0.25, -0.5, 1], 1e-6);

    const coefficients = new Plaintext(MAIN, pt.poly.copy(), 2, pt.scale);
    coefficients.poly.isNtt = false;
    const coefficientBack = deserializePlaintext(MAIN, serializePlaintext(coefficients));
    assert.equal(coefficientBack.poly.isNtt, false);
  });

  it('ciphertext: decrypts to the same values, at the top level and after a rescale', () => {
    const bytes = serializeCiphertext(main.ct);
    assert.equal(bytes.length, serializedSize(main.ct));
    assert.equal(bytes.length, HEADER_BYTES + MAIN.ciphertextBytes(MAIN.depth) + CHECKSUM_BYTES);
    const back = deserializeCiphertext(MAIN, bytes);
    assert.ok(!(back instanceof SeededCiphertext));
    sameCiphertext(main.ct, back, 'ciphertext');
    assert.deepEqual(main.decrypt(back), main.decrypt(main.ct));
    assertClose(main.decrypt(back), main.values, 1e-4);
    assert.deepEqual(serializeCiphertext(back), bytes);

    const lower = main.evaluator.rescaleNew(main.evaluator.mulNew(main.ct, 0.5));
    const lowerBack = deserializeCiphertext(MAIN, serializeCiphertext(lower));
    sameCiphertext(lower, lowerBack, 'rescaled ciphertext');
    assertClose(
      main.decrypt(lowerBack),
      main.values.map((v) => v * 0.5),
      1e-4,
    );
  });

  it('writeCiphertext: the bytes of serializeCiphertext, written in place one after another; no room is refused', () => {
    const square = main.evaluator.mulNew(main.ct, main.ct);
    const objects = [
      { ct: main.ct, options: {} },
      { ct: square, options: {} },
      { ct: main.seeded, options: { seeded: true } },
    ];
    const sizes = objects.map(({ ct, options }) => serializedSize(ct, options));
    // Garbage before, between and after: every byte of each object is written, none outside it.
    const out = new Uint8Array(3 + sizes.reduce((a, b) => a + b, 0) + 5).fill(0xa5);
    let offset = 3;
    objects.forEach(({ ct, options }, i) => {
      const end = writeCiphertext(ct, out, offset, options);
      assert.equal(end - offset, sizes[i]);
      assert.deepEqual(out.subarray(offset, end), serializeCiphertext(ct, options));
      sameCiphertext(ct, deserializeCiphertext(MAIN, out.subarray(offset, end)), `object ${i}`);
      offset = end;
    });
    assert.deepEqual([...out.subarray(0, 3), ...out.subarray(offset)], new Array(8).fill(0xa5));
    for (const [at, length] of [
      [1, sizes[0]],
      [0, sizes[0] - 1],
      [-1, sizes[0] + 1],
      [0.5, sizes[0] + 1],
    ])
      assert.throws(
        () => writeCiphertext(main.ct, new Uint8Array(length), at),
        (e: unknown) =>
          e instanceof InvalidArgumentError && /writeCiphertext: \d+ bytes at offset/.test(e.message),
      );
    assert.throws(() => writeCiphertext(main.ct, [] as unknown as Uint8Array), InvalidArgumentError);
    square.dispose();
  });

  it('degree-2 ciphertext: relinearizing the deserialized copy gives the same ciphertext', () => {
    const square = main.evaluator.mulNew(main.ct, main.ct);
    assert.equal(square.degree, 2);
    const back = deserializeCiphertext(MAIN, serializeCiphertext(square));
    sameCiphertext(square, back, 'degree-2 ciphertext');
    const relinearized = main.evaluator.relinearizeNew(square);
    sameCiphertext(relinearized, main.evaluator.relinearizeNew(back), 'relinearized');
    assertClose(
      main.decrypt(main.evaluator.rescaleNew(relinearized)),
      main.values.map((v) => v * v),
      1e-3,
    );
  });

  it('seeded ciphertext: about half the bytes, c1 re-expanded, identical decryption', () => {
    const full = serializeCiphertext(main.seeded);
    const seeded = serializeCiphertext(main.seeded, { seeded: true });
    assert.equal(seeded.length, serializedSize(main.seeded, { seeded: true }));
    assert.equal(seeded.length, HEADER_BYTES + MAIN.ciphertextBytes(MAIN.depth) / 2 + 32 + CHECKSUM_BYTES);
    const ratio = seeded.length / full.length;
    assert.ok(ratio > 0.5 && ratio < 0.501, `seeded / full = ${ratio}: expected about 1/2`);
    assert.equal(readHeader(seeded).type, ObjectType.SeededCiphertext);
    assert.equal(readHeader(seeded).seeded, true);

    const back = deserializeCiphertext(MAIN, seeded);
    assert.ok(back instanceof SeededCiphertext);
    assert.deepEqual(back.seed, main.seeded.seed);
    sameCiphertext(main.seeded, back, 'seeded ciphertext');
    assert.deepEqual(main.decrypt(back), main.decrypt(main.seeded));
    assertClose(main.decrypt(back), main.values, 1e-4);
    // A deserialized seeded ciphertext can be forwarded seeded again, bit for bit.
    assert.deepEqual(serializeCiphertext(back, { seeded: true }), seeded);
    assert.deepEqual(deserializeCiphertext(MAIN, full).polys.length, 2);
  });

  it('seeded: true is refused without a seed and after an in-place modification', () => {
    assert.throws(() => serializeCiphertext(main.ct, { seeded: true }), InvalidArgumentError);
    assert.throws(() => serializedSize(main.ct, { seeded: true }), InvalidArgumentError);
    const modified = new SymmetricEncryptor(MAIN, main.secretKey).encryptNew(main.pt, seedBytes(90));
    main.evaluator.add(modified, modified, modified);
    assert.throws(
      () => serializeCiphertext(modified, { seeded: true }),
      (e: unknown) =>
        e instanceof InvalidArgumentError && /no longer equals the expansion of its seed/.test(e.message),
    );
    assertClose(
      main.decrypt(deserializeCiphertext(MAIN, serializeCiphertext(modified))),
      main.values.map((v) => 2 * v),
      1e-4,
    );
  });

  it('public key, plain and seeded (about half): encryption with the copy is identical', () => {
    const full = serializePublicKey(main.publicKey);
    const seeded = serializePublicKey(main.publicKey, { seeded: true });
    assert.equal(full.length, serializedSize(main.publicKey));
    assert.equal(seeded.length, serializedSize(main.publicKey, { seeded: true }));
    const ratio = seeded.length / full.length;
    assert.ok(ratio > 0.5 && ratio < 0.501, `seeded / full = ${ratio}`);
    for (const bytes of [full, seeded]) {
      const back = deserializePublicKey(MAIN, bytes);
      sameWords(main.publicKey.b, back.b, 'b');
      sameWords(main.publicKey.a, back.a, 'a');
      const prngSeed = seedBytes(77);
      const original = new Encryptor(MAIN, main.publicKey).encryptNew(main.pt, Prng.fromSeed(prngSeed));
      const copy = new Encryptor(MAIN, back).encryptNew(main.pt, Prng.fromSeed(prngSeed));
      sameCiphertext(original, copy, 'encryption');
      assert.deepEqual(serializePublicKey(back, { seeded: readHeader(bytes).seeded }), bytes);
    }
  });

  it('relinearization key, plain and seeded (about half): relinearization with the copy is identical', () => {
    const key = main.relinearizationKey;
    const full = serializeSwitchingKey(key);
    const seeded = serializeSwitchingKey(key, { seeded: true });
    assert.equal(full.length, serializedSize(key));
    assert.equal(full.length, HEADER_BYTES + key.byteLength + 32 + CHECKSUM_BYTES);
    assert.equal(seeded.length, HEADER_BYTES + key.seededByteLength + CHECKSUM_BYTES);
    const ratio = seeded.length / full.length;
    assert.ok(ratio > 0.5 && ratio < 0.501, `seeded / full = ${ratio}`);
    const expected = main.evaluator.mulRelinNew(main.ct, main.ct);
    for (const bytes of [full, seeded]) {
      const back = deserializeSwitchingKey(MAIN, bytes);
      sameSwitchingKey(key, back, 'relinearization key');
      const result = new Evaluator(MAIN, new EvaluationKeys(back)).mulRelinNew(main.ct, main.ct);
      sameCiphertext(expected, result, 'mulRelin');
      assertClose(
        main.decrypt(main.evaluator.rescaleNew(result)),
        main.values.map((v) => v * v),
        1e-3,
      );
      assert.deepEqual(serializeSwitchingKey(back, { seeded: readHeader(bytes).seeded }), bytes);
    }
  });

  it('Galois key, plain and seeded: rotation with the copy is identical', () => {
    const key = main.rotationKey;
    const expected = main.evaluator.rotateNew(main.ct, 1);
    for (const seeded of [false, true]) {
      const bytes = serializeGaloisKey(key, { seeded });
      assert.equal(bytes.length, serializedSize(key, { seeded }));
      assert.equal(readHeader(bytes).galoisElement, key.galoisElement);
      const back = deserializeGaloisKey(MAIN, bytes);
      assert.equal(back.galoisElement, key.galoisElement);
      sameSwitchingKey(key.key, back.key, 'Galois key');
      const rotated = new Evaluator(MAIN, new EvaluationKeys(undefined, [back])).rotateNew(main.ct, 1);
      sameCiphertext(expected, rotated, 'rotation');
      assertClose(main.decrypt(rotated), rotateLeft(main.values, 1), 1e-4);
      assert.deepEqual(serializeGaloisKey(back, { seeded }), bytes);
    }
  });

  it('evaluation-key set, plain and seeded: every operation with the copy is identical', () => {
    const evk = main.evaluationKeys;
    const expected = {
      relin: main.evaluator.mulRelinNew(main.ct, main.ct),
      left: main.evaluator.rotateNew(main.ct, 1),
      right: main.evaluator.rotateNew(main.ct, -1),
      conjugate: main.evaluator.conjugateNew(main.ct),
    };
    const full = serializeEvaluationKeys(evk);
    const seeded = serializeEvaluationKeys(evk, { seeded: true });
    assert.equal(full.length, serializedSize(evk));
    assert.equal(seeded.length, serializedSize(evk, { seeded: true }));
    assert.equal(readHeader(full).count, 4);
    const ratio = seeded.length / full.length;
    assert.ok(ratio > 0.5 && ratio < 0.501, `seeded / full = ${ratio}`);
    for (const bytes of [full, seeded]) {
      const back = deserializeEvaluationKeys(MAIN, bytes);
      assert.deepEqual([...back.galois.keys()], [...evk.galois.keys()]);
      sameSwitchingKey(evk.relinearization!, back.relinearization!, 'relinearization key');
      const evaluator = new Evaluator(MAIN, back);
      sameCiphertext(expected.relin, evaluator.mulRelinNew(main.ct, main.ct), 'mulRelin');
      sameCiphertext(expected.left, evaluator.rotateNew(main.ct, 1), 'rotate 1');
      sameCiphertext(expected.right, evaluator.rotateNew(main.ct, -1), 'rotate -1');
      sameCiphertext(expected.conjugate, evaluator.conjugateNew(main.ct), 'conjugate');
      assert.deepEqual(serializeEvaluationKeys(back, { seeded: readHeader(bytes).seeded }), bytes);
    }
    const galoisOnly = new EvaluationKeys(undefined, [main.conjugationKey]);
    const galoisOnlyBack = deserializeEvaluationKeys(
      MAIN,
      serializeEvaluationKeys(galoisOnly, { seeded: true }),
    );
    assert.equal(galoisOnlyBack.relinearization, undefined);
    assert.deepEqual([...galoisOnlyBack.galois.keys()], [main.conjugationKey.galoisElement]);
    assert.throws(() => serializeEvaluationKeys(new EvaluationKeys()), InvalidArgumentError);
  });

  it('serializers return a fresh, exactly sized Uint8Array each call, with the same bytes every time', () => {
    const outputs = [
      () => serializeCiphertext(main.ct),
      () => serializeCiphertext(main.seeded, { seeded: true }),
      () => serializePlaintext(main.pt),
      () => serializePublicKey(main.publicKey),
      () => serializeSwitchingKey(main.relinearizationKey, { seeded: true }),
      () => serializeGaloisKey(main.rotationKey),
      () => serializeEvaluationKeys(main.evaluationKeys, { seeded: true }),
      () => serializeSecretKey(main.secretKey),
      () => serializeParameters(MAIN),
    ];
    for (const serialize of outputs) {
      const first = serialize();
      const second = serialize();
      for (const bytes of [first, second]) {
        assert.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype);
        assert.equal(bytes.byteOffset, 0);
        assert.equal(bytes.buffer.byteLength, bytes.length);
      }
      assert.notEqual(first.buffer, second.buffer);
      assert.deepEqual(second, first);
    }
  });

  it('secret key (local storage): decryption with the copy is identical', () => {
    const bytes = serializeSecretKey(main.secretKey);
    assert.equal(bytes.length, serializedSize(main.secretKey));
    const back = deserializeSecretKey(MAIN, bytes);
    sameWords(main.secretKey.poly, back.poly, 'secret key');
    const decryptor = new Decryptor(MAIN, back);
    assert.deepEqual(main.encoder.decode(decryptor.decryptNew(main.ct)), main.decrypt(main.ct));
    assert.equal(String(back), `SecretKey {<hidden> params=${MAIN.id}}`);
  });

  it('parameters: the literal comes back as the same (memoized) parameters with the same id', () => {
    const sets = [
      MAIN,
      SMALL,
      Parameters.create(PRESETS.PN13QP218),
      Parameters.create(PRESETS.PN14QP438),
      Parameters.create(PRESETS.PN14QP438S60),
      Parameters.create({ logN: 13, depth: 2, secret: { kind: 'sparse-ternary', hammingWeight: 64 } }),
      Parameters.create({ logN: 13, depth: 3, specialPrimes: 1, logDefaultScale: 25.5 }),
    ];
    for (const params of sets) {
      const bytes = serializeParameters(params);
      assert.equal(bytes.length, serializedSize(params));
      assert.equal(readHeader(bytes).parametersId, params.id);
      const back = deserializeParameters(bytes);
      assert.equal(back, params);
      assert.equal(back.id, params.id);
    }
  });
});

// Objects of the small set, each with its parser and serializer, for the rejection and fuzz tests.
const small = fixture(SMALL, 40);
const smallSquare = small.evaluator.mulNew(small.ct, small.ct);
// A Galois key made for level 0 (fewer limbs and digits than the top): alone, and in a set beside top-level keys.
const smallLowKey = small.keygen.generateGaloisKey(
  small.secretKey,
  galoisElementForRotation(2, SMALL.logN),
  0,
);

interface Case {
  name: string;
  bytes: Uint8Array;
  parse: (bytes: Uint8Array) => unknown;
  /** Serializes a parsed object again, with the seeded flag of `bytes`. */
  reserialize: (object: unknown, seeded: boolean) => Uint8Array;
}

const parseWith =
  <T>(deserialize: (params: Parameters, bytes: Uint8Array) => T) =>
  (bytes: Uint8Array) =>
    deserialize(SMALL, bytes);

const cases: Case[] = [
  {
    name: 'plaintext',
    bytes: serializePlaintext(small.pt),
    parse: parseWith(deserializePlaintext),
    reserialize: (o) => serializePlaintext(o as Plaintext),
  },
  ...[small.ct, smallSquare].map((ct) => ({
    name: `ciphertext (degree ${ct.degree})`,
    bytes: serializeCiphertext(ct),
    parse: parseWith(deserializeCiphertext),
    reserialize: (o: unknown, seeded: boolean) => serializeCiphertext(o as Ciphertext, { seeded }),
  })),
  {
    name: 'seeded ciphertext',
    bytes: serializeCiphertext(small.seeded, { seeded: true }),
    parse: parseWith(deserializeCiphertext),
    reserialize: (o, seeded) => serializeCiphertext(o as Ciphertext, { seeded }),
  },
  ...[false, true].flatMap((seeded) => [
    {
      name: `public key${seeded ? ' (seeded)' : ''}`,
      bytes: serializePublicKey(small.publicKey, { seeded }),
      parse: parseWith(deserializePublicKey),
      reserialize: (o: unknown, s: boolean) => serializePublicKey(o as PublicKey, { seeded: s }),
    },
    {
      name: `relinearization key${seeded ? ' (seeded)' : ''}`,
      bytes: serializeSwitchingKey(small.relinearizationKey, { seeded }),
      parse: parseWith(deserializeSwitchingKey),
      reserialize: (o: unknown, s: boolean) => serializeSwitchingKey(o as SwitchingKey, { seeded: s }),
    },
    {
      name: `Galois key${seeded ? ' (seeded)' : ''}`,
      bytes: serializeGaloisKey(small.rotationKey, { seeded }),
      parse: parseWith(deserializeGaloisKey),
      reserialize: (o: unknown, s: boolean) => serializeGaloisKey(o as GaloisKey, { seeded: s }),
    },
    {
      name: `evaluation keys${seeded ? ' (seeded)' : ''}`,
      bytes: serializeEvaluationKeys(
        new EvaluationKeys(small.relinearizationKey, [small.rotationKey, small.conjugationKey]),
        { seeded },
      ),
      parse: parseWith(deserializeEvaluationKeys),
      reserialize: (o: unknown, s: boolean) => serializeEvaluationKeys(o as EvaluationKeys, { seeded: s }),
    },
    {
      name: `Galois key at level 0${seeded ? ' (seeded)' : ''}`,
      bytes: serializeGaloisKey(smallLowKey, { seeded }),
      parse: parseWith(deserializeGaloisKey),
      reserialize: (o: unknown, s: boolean) => serializeGaloisKey(o as GaloisKey, { seeded: s }),
    },
    {
      name: `evaluation keys of mixed levels${seeded ? ' (seeded)' : ''}`,
      bytes: serializeEvaluationKeys(
        new EvaluationKeys(small.relinearizationKey, [small.rotationKey, smallLowKey, small.conjugationKey]),
        { seeded },
      ),
      parse: parseWith(deserializeEvaluationKeys),
      reserialize: (o: unknown, s: boolean) => serializeEvaluationKeys(o as EvaluationKeys, { seeded: s }),
    },
  ]),
  {
    name: 'secret key',
    bytes: serializeSecretKey(small.secretKey),
    parse: parseWith(deserializeSecretKey),
    reserialize: (o) => serializeSecretKey(o as SecretKey),
  },
  {
    name: 'parameters',
    bytes: serializeParameters(SMALL),
    parse: deserializeParameters,
    reserialize: (o) => serializeParameters(o as Parameters),
  },
];

function caseNamed(name: string): Case {
  return cases.find((c) => c.name === name)!;
}

/** Runs `parse` and returns the FormatError or MismatchError it threw; fails on acceptance or any other error. */
function rejection(parse: () => unknown, what: string): FormatError | MismatchError {
  let result: unknown;
  try {
    result = parse();
  } catch (error) {
    if (error instanceof FormatError || error instanceof MismatchError) return error;
    assert.fail(`${what}: threw ${String(error)}: expected a FormatError or MismatchError`);
  }
  disposeObject(result);
  assert.fail(`${what}: silently accepted: expected a FormatError or MismatchError`);
}

function assertRejects(
  parse: () => unknown,
  kind: typeof FormatError | typeof MismatchError,
  pattern: RegExp,
): void {
  const error = rejection(parse, pattern.source);
  assert.ok(error instanceof kind, `${error.name}: ${error.message}: expected a ${kind.name}`);
  assert.match(error.message, pattern);
}

describe('serialization rejects bad input', () => {
  it('each object parses back (the cases are valid to begin with)', () => {
    for (const c of cases) disposeObject(c.parse(c.bytes));
  });

  it('a key set of mixed levels: entries that do not end where the body does, an entry at another level', () => {
    const set = caseNamed('evaluation keys of mixed levels').bytes;
    // One key fewer or more than the body holds (checksums refreshed, as an attacker can).
    const fewer = edit(set, (v) => v.setUint16(18, v.getUint16(18, true) - 1, true));
    assertRejects(
      () => deserializeEvaluationKeys(SMALL, fewer),
      FormatError,
      /body length = \d+ bytes: expected/,
    );
    const more = edit(set, (v) => v.setUint16(18, v.getUint16(18, true) + 1, true));
    assertRejects(
      () => deserializeEvaluationKeys(SMALL, more),
      FormatError,
      /entry 4: .*0 bytes left in the set/,
    );
    // The level-0 entry (the third) claims the top level: its body is then too short for its digits.
    const view = new DataView(set.buffer, set.byteOffset, set.byteLength);
    let entry = HEADER_BYTES;
    for (let i = 0; i < 2; i++) entry += HEADER_BYTES + view.getUint32(entry + 32, true) + CHECKSUM_BYTES;
    assert.equal(view.getUint16(entry + 16, true), 0);
    const higher = edit(set, (v) => v.setUint16(entry + 16, 1, true));
    assertRejects(
      () => deserializeEvaluationKeys(SMALL, higher),
      FormatError,
      /entry 2: .*(count|body length)/,
    );
  });

  it('checksums: XXH32 of header bytes 0 … 43; XXH32 of header ‖ the body XXH32×4 lane digests, nested too', () => {
    for (const c of cases) {
      // refreshChecksums recomputes them with the TypeScript reference: the kernel-made bytes must not change.
      assert.deepEqual(refreshChecksums(c.bytes.slice()), c.bytes, c.name);
    }
    for (const name of ['ciphertext (degree 1)', 'seeded ciphertext', 'parameters']) {
      const bytes = caseNamed(name).bytes;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      assert.equal(view.getUint32(44, true), xxh32(bytes.subarray(0, 44)), name);
      const bodyEnd = bytes.length - CHECKSUM_BYTES;
      const input = new Uint8Array(HEADER_BYTES + 16);
      input.set(bytes.subarray(0, HEADER_BYTES));
      new Uint32Array(input.buffer, HEADER_BYTES, 4).set(xxh32x4(bytes.subarray(HEADER_BYTES, bodyEnd)));
      assert.equal(view.getUint32(bodyEnd, true), xxh32(input), name);
    }
  });

  it('a corrupted body is reported as a checksum error before residues or seeds are used (memory freed)', () => {
    const before = SMALL.context.allocator.bytesInUse;
    const ct = caseNamed('ciphertext (degree 1)').bytes;
    const outOfRange = edit(ct, (v) => v.setUint32(HEADER_BYTES + 8, 0xffffffff, true), false);
    assertRejects(() => deserializeCiphertext(SMALL, outOfRange), FormatError, /ciphertext: checksum = /);
    const seeded = caseNamed('seeded ciphertext').bytes;
    const otherSeed = edit(seeded, (_, b) => (b[b.length - CHECKSUM_BYTES - 1] ^= 1), false);
    assertRejects(
      () => deserializeCiphertext(SMALL, otherSeed),
      FormatError,
      /seeded ciphertext: checksum = /,
    );
    const key = caseNamed('relinearization key (seeded)').bytes;
    const lastByte = edit(key, (_, b) => (b[b.length - CHECKSUM_BYTES - 1] ^= 1), false);
    assertRejects(() => deserializeSwitchingKey(SMALL, lastByte), FormatError, /switching key: checksum = /);
    assert.equal(SMALL.context.allocator.bytesInUse, before);
  });

  it('objects of other parameters → MismatchError naming both ids', () => {
    for (const c of cases) {
      if (c.name === 'parameters') continue;
      const error = rejection(() => deserializeOther(c, c.bytes), c.name);
      assert.ok(error instanceof MismatchError, `${c.name}: ${error.message}`);
      assert.ok(error.message.includes(SMALL.id) && error.message.includes(MAIN.id), error.message);
    }
    const ct = serializeCiphertext(main.ct);
    assertRejects(
      () => deserializeCiphertext(SMALL, ct),
      MismatchError,
      new RegExp(`${MAIN.id}.*${SMALL.id}`),
    );
    const changedId = edit(serializeParameters(SMALL), (v) => v.setUint8(8, v.getUint8(8) ^ 1));
    assertRejects(() => deserializeParameters(changedId), MismatchError, new RegExp(SMALL.id));
  });

  it('header problems: magic, version, checksum, type, flags, level, count, scale, Galois element, reserved', () => {
    const ct = caseNamed('ciphertext (degree 1)').bytes;
    const parse = (bytes: Uint8Array) => () => deserializeCiphertext(SMALL, bytes);
    assertRejects(
      parse(edit(ct, (_, b) => b.set([0x48, 0x4f, 0x4d, 0x46]))),
      FormatError,
      /magic = 0x484f4d46/,
    );
    assertRejects(
      parse(edit(ct, (v) => v.setUint16(4, 2, true))),
      FormatError,
      /format version = 2: expected 1/,
    );
    assertRejects(parse(edit(ct, (v) => v.setUint16(16, 5, true), false)), FormatError, /header checksum/);
    assertRejects(
      parse(caseNamed('plaintext').bytes),
      FormatError,
      /object type = 1 \(plaintext\): expected 2 \(ciphertext\) or 3 \(seeded ciphertext\)/,
    );
    assertRejects(parse(edit(ct, (v) => v.setUint8(6, 42))), FormatError, /object type = 42/);
    assertRejects(parse(edit(ct, (v) => v.setUint8(7, 0x82))), FormatError, /flags = 0x82/);
    assertRejects(parse(edit(ct, (v) => v.setUint8(7, 3))), FormatError, /seeded flag = set: expected clear/);
    assertRejects(
      parse(edit(ct, (v) => v.setUint16(16, 2, true))),
      FormatError,
      /level = 2: expected an integer in \[0, 1\]/,
    );
    assertRejects(
      parse(edit(ct, (v) => v.setUint16(18, 4, true))),
      FormatError,
      /count = 4: expected an integer in \[2, 3\]/,
    );
    assertRejects(parse(edit(ct, (v) => v.setFloat64(24, Number.NaN, true))), FormatError, /scale = NaN/);
    assertRejects(parse(edit(ct, (v) => v.setFloat64(24, -1, true))), FormatError, /scale = -1/);
    assertRejects(
      parse(edit(ct, (v) => v.setUint32(20, 5, true))),
      FormatError,
      /Galois element = 5: expected 0/,
    );
    assertRejects(parse(edit(ct, (v) => v.setUint32(40, 1, true))), FormatError, /reserved header field = 1/);
    const galois = caseNamed('Galois key').bytes;
    assertRejects(
      () =>
        deserializeGaloisKey(
          SMALL,
          edit(galois, (v) => v.setUint32(20, 6, true)),
        ),
      FormatError,
      /Galois element = 6: expected an odd integer in \[3, 8191\]/,
    );
    const key = caseNamed('relinearization key').bytes;
    assertRejects(
      () =>
        deserializeSwitchingKey(
          SMALL,
          edit(key, (v) => v.setUint16(16, 0, true)),
        ),
      FormatError,
      // A key may be made for a lower level, with that level's digits: level 0 has one.
      /count = 2: expected 1/,
    );
    assertRejects(
      () =>
        deserializeSwitchingKey(
          SMALL,
          edit(key, (v) => v.setUint8(7, 1)),
        ),
      FormatError,
      /NTT flag/,
    );
  });

  it('lengths: huge declared body (no allocation), truncation, trailing bytes, missing header', () => {
    const ct = caseNamed('ciphertext (degree 1)').bytes;
    const before = SMALL.context.allocator.bytesInUse;
    const huge = edit(ct, (v) => {
      v.setUint32(32, 0, true);
      v.setUint32(36, 256, true); // 2^40 bytes
    });
    assertRejects(
      () => deserializeCiphertext(SMALL, huge),
      FormatError,
      /body length = 1099511627776 bytes: expected 65536/,
    );
    const beyondSafe = edit(ct, (v) => v.setUint32(36, 2 ** 22, true));
    assertRejects(() => deserializeCiphertext(SMALL, beyondSafe), FormatError, /body length = .*below 2\^53/);
    assert.equal(SMALL.context.allocator.bytesInUse, before);
    assertRejects(
      () => deserializeCiphertext(SMALL, ct.subarray(0, ct.length - 1)),
      FormatError,
      /truncated/,
    );
    assertRejects(() => deserializeCiphertext(SMALL, ct.subarray(0, 30)), FormatError, /length = 30 bytes/);
    const longer = new Uint8Array(ct.length + 3);
    longer.set(ct);
    assertRejects(() => deserializeCiphertext(SMALL, longer), FormatError, /3 trailing bytes/);
    assert.throws(
      () => deserializeCiphertext(SMALL, [1, 2, 3] as unknown as Uint8Array),
      InvalidArgumentError,
    );
  });

  it('body problems: checksum, residues not below their prime (memory freed), evaluation-key structure', () => {
    const ct = caseNamed('ciphertext (degree 1)').bytes;
    assertRejects(
      () =>
        deserializeCiphertext(
          SMALL,
          edit(ct, (_, b) => (b[HEADER_BYTES + 100] ^= 4), false),
        ),
      FormatError,
      /ciphertext: checksum = 0x[0-9a-f]{8}: expected 0x[0-9a-f]{8} \(the object is corrupted\)/,
    );
    const before = SMALL.context.allocator.bytesInUse;
    const limbBytes = SMALL.n * 4;
    const badResidue = edit(ct, (v) => v.setUint32(HEADER_BYTES + 3 * limbBytes + 8, 0xffffffff, true));
    assertRejects(
      () => deserializeCiphertext(SMALL, badResidue),
      FormatError,
      new RegExp(
        `c1 limb 1 coefficient 2 = 4294967295: expected a residue below the prime ${SMALL.qPrimes[1]}`,
      ),
    );
    const atPrime = edit(ct, (v) => v.setUint32(HEADER_BYTES, SMALL.qPrimes[0], true));
    assertRejects(() => deserializeCiphertext(SMALL, atPrime), FormatError, /c0 limb 0 coefficient 0/);
    const seededKey = caseNamed('relinearization key (seeded)').bytes;
    const lastDigit = edit(seededKey, (v) => v.setUint32(v.byteLength - 4 - 32 - 4, 0xfffffff0, true));
    assertRejects(() => deserializeSwitchingKey(SMALL, lastDigit), FormatError, /digit 1 b limb 2/);
    assert.equal(SMALL.context.allocator.bytesInUse, before);

    const evk = caseNamed('evaluation keys').bytes;
    const entry = readHeader(evk.subarray(HEADER_BYTES)).totalLength;
    const duplicate = edit(evk, (_, b) =>
      b.copyWithin(HEADER_BYTES + 2 * entry, HEADER_BYTES + entry, HEADER_BYTES + 2 * entry),
    );
    assertRejects(
      () => deserializeEvaluationKeys(SMALL, duplicate),
      FormatError,
      /entry 2: Galois key: Galois element = \d+: expected one not seen before/,
    );
    const swapped = edit(evk, (_, b) => {
      const first = b.slice(HEADER_BYTES, HEADER_BYTES + entry);
      b.copyWithin(HEADER_BYTES, HEADER_BYTES + entry, HEADER_BYTES + 2 * entry);
      b.set(first, HEADER_BYTES + entry);
    });
    assertRejects(
      () => deserializeEvaluationKeys(SMALL, swapped),
      FormatError,
      /entry 1: .*object type = 5 \(switching key\)/,
    );
    const mixed = edit(evk, (v) => v.setUint8(HEADER_BYTES + entry + 7, 3));
    assertRejects(() => deserializeEvaluationKeys(SMALL, mixed), FormatError, /entry 1: .*body length/);
    assert.equal(SMALL.context.allocator.bytesInUse, before);
  });

  it('parameters: invalid or non-canonical literals', () => {
    const bytes = caseNamed('parameters').bytes;
    assertRejects(
      () => deserializeParameters(edit(bytes, (v) => v.setUint8(HEADER_BYTES, 9))),
      FormatError,
      /literal = .*"logN":9/,
    );
    assertRejects(
      () => deserializeParameters(edit(bytes, (v) => v.setUint8(HEADER_BYTES + 16, 2))),
      FormatError,
      /secret distribution = 2/,
    );
    // logN 15 is a valid but other parameter set: its id differs from the header's.
    assertRejects(
      () => deserializeParameters(edit(bytes, (v) => v.setUint8(HEADER_BYTES, 15))),
      MismatchError,
      /expected the serialized id/,
    );
    // With 12 Q primes and 2 special primes, digits = 7 normalizes to 6 (same id): valid, but not canonical.
    const preset = serializeParameters(Parameters.create(PRESETS.PN14QP438));
    assertRejects(
      () => deserializeParameters(edit(preset, (v) => v.setUint16(HEADER_BYTES + 6, 7, true))),
      FormatError,
      /byte 54 = 7: expected 6 \(the canonical encoding/,
    );
  });

  it('arbitrary bytes, with or without a valid magic, never parse', () => {
    const magic = new Uint8Array([0x48, 0x4f, 0x4d, 0x45, 1, 0]);
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.boolean(),
        fc.nat(cases.length - 1),
        (tail, prefix, which) => {
          const bytes = prefix ? new Uint8Array([...magic, ...tail]) : tail;
          rejection(() => cases[which].parse(bytes), `arbitrary ${bytes.length} bytes`);
        },
      ),
      { seed: 4242, numRuns: 400 },
    );
  });

  it('fuzz: thousands of random mutations of every object type are all rejected; checksum-repaired ones are rejected or canonical', (t) => {
    const prng = Prng.fromSeed(seedBytes(200));
    const below = (bound: number) => prng.nextUint32() % bound;
    const randomBytes = (count: number) => {
      const out = new Uint8Array(count);
      prng.nextBytes(out);
      return out;
    };
    const started = performance.now();
    let raw = 0;
    let repaired = 0;
    let repairedAccepted = 0;
    const RAW_PER_CASE = 800;
    const REPAIRED_PER_CASE = 200;
    const perCase: string[] = [];
    for (const c of cases) {
      const caseStarted = performance.now();
      const original = c.bytes;
      const length = original.length;
      for (let m = 0; m < RAW_PER_CASE; m++) {
        const kind = m % 8;
        let mutated: Uint8Array;
        if (kind === 0) {
          // Flip 1 … 8 distinct bits.
          mutated = original.slice();
          const bits = new Set<number>();
          const count = 1 + below(8);
          while (bits.size < count) bits.add(below(length * 8));
          for (const bit of bits) mutated[bit >>> 3] ^= 1 << (bit & 7);
        } else if (kind === 1) {
          // Set one byte to another value; bias towards the header.
          mutated = original.slice();
          const at = below(2) === 0 ? below(HEADER_BYTES) : below(length);
          mutated[at] = (mutated[at] + 1 + below(255)) & 0xff;
        } else if (kind === 2) {
          mutated = original.subarray(0, below(length));
        } else if (kind === 3) {
          mutated = concat(original, randomBytes(1 + below(64)));
        } else if (kind === 4) {
          // Another object's (valid) header on this body.
          const other = cases[(cases.indexOf(c) + 1 + below(cases.length - 1)) % cases.length].bytes;
          mutated = original.slice();
          mutated.set(other.subarray(0, HEADER_BYTES));
        } else if (kind === 5) {
          // Two valid objects back to back.
          const other = cases[below(cases.length)].bytes;
          mutated = concat(original, other);
        } else if (kind === 6) {
          // Overwrite a burst of up to 16 bytes with random bytes (re-drawn until something changes).
          mutated = original.slice();
          const start = below(length);
          const burst = randomBytes(Math.min(1 + below(16), length - start));
          if (burst.every((b, i) => b === original[start + i])) burst[0] ^= 0x80;
          mutated.set(burst, start);
        } else {
          // Cut a range out of the middle.
          const start = below(length);
          const end = Math.min(length, start + 1 + below(64));
          mutated = concat(original.subarray(0, start), original.subarray(end));
        }
        rejection(() => c.parse(mutated), `${c.name}, mutation kind ${kind} #${m}`);
        raw++;
      }
      for (let m = 0; m < REPAIRED_PER_CASE; m++) {
        // The checksums are recomputed after the change, so the structural checks have to catch it alone.
        const mutated = original.slice();
        if (m % 2 === 0) {
          const at = 4 + below(40);
          mutated[at] = (mutated[at] + 1 + below(255)) & 0xff;
        } else {
          const at = HEADER_BYTES + 4 * below((length - HEADER_BYTES - CHECKSUM_BYTES) >>> 2);
          new DataView(mutated.buffer).setUint32(
            at,
            below(2) === 0 ? prng.nextUint32() : 0xffffffff - below(1 << 30),
            true,
          );
        }
        refreshChecksums(mutated);
        repaired++;
        let result: unknown;
        try {
          result = c.parse(mutated);
        } catch (error) {
          if (error instanceof FormatError || error instanceof MismatchError) continue;
          assert.fail(`${c.name}, repaired mutation #${m}: threw ${String(error)}`);
        }
        // Accepted only if the bytes are exactly the canonical encoding of what came back.
        repairedAccepted++;
        assert.deepEqual(c.reserialize(result, (mutated[7] & 1) === 1), mutated, `${c.name}, repaired #${m}`);
        disposeObject(result);
      }
      perCase.push(`${c.name} ${(performance.now() - caseStarted).toFixed(0)} ms`);
    }
    const seconds = (performance.now() - started) / 1000;
    assert.equal(raw, cases.length * RAW_PER_CASE);
    t.diagnostic(
      `${cases.length} object kinds: ${raw} raw mutations all rejected; ${repaired} checksum-repaired mutations ` +
        `(${repairedAccepted} accepted as canonical encodings); ${seconds.toFixed(2)} s (${perCase.join(', ')})`,
    );
  });
});

/** Deserializes a SMALL case with the MAIN parameters. */
function deserializeOther(c: Case, bytes: Uint8Array): unknown {
  const parsers: Record<string, (params: Parameters, bytes: Uint8Array) => unknown> = {
    plaintext: deserializePlaintext,
    ciphertext: deserializeCiphertext,
    'seeded ciphertext': deserializeCiphertext,
    'public key': deserializePublicKey,
    'relinearization key': deserializeSwitchingKey,
    'Galois key': deserializeGaloisKey,
    'evaluation keys': deserializeEvaluationKeys,
    'Galois key at level 0': deserializeGaloisKey,
    'evaluation keys of mixed levels': deserializeEvaluationKeys,
    'secret key': deserializeSecretKey,
  };
  const base = c.name.replace(/ \(.*\)$/, '');
  return parsers[base](MAIN, bytes);
}
