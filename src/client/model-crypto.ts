/**
 * The client's cryptography for a served model, made from its metadata alone (no program, no weights): the
 * secret key, exactly the evaluation keys the program uses (each Galois key at the level it is used at), packing
 * and encryption of inputs, decryption and unpacking of outputs. The secret key never leaves this object; only
 * the evaluation keys are serialized for upload. Browser-safe (no Node module).
 */
import { Decryptor, SymmetricEncryptor } from '../ckks/encryptor.ts';
import { Encoder } from '../ckks/encoder.ts';
import { type EvaluationKeys, KeyGenerator, type SecretKey } from '../ckks/keys.ts';
import { Parameters } from '../ckks/parameters.ts';
import {
  deserializeCiphertext,
  serializeCiphertext,
  serializeEvaluationKeys,
} from '../ckks/serialization/index.ts';
import { Prng } from '../ring/prng.ts';
import { checkImages, outputSize, packBatch, packLatency, unpack } from '../program/packing.ts';
import type { HeProgram } from '../program/program.ts';
import { assertInteger } from '../util/assert.ts';
import { InvalidArgumentError, MismatchError } from '../util/errors.ts';
import { type HeModelDescriptor, packingProgram } from './he-metadata.ts';

/**
 * A model's client-side cryptography.
 *
 * @example
 * ```ts
 * const crypto = new ModelCrypto(metadata.he);
 * const keyBytes = crypto.evaluationKeyBytes(); // upload these
 * const inputs = crypto.encrypt(images, 1);     // send these
 * const logits = crypto.decrypt(outputs, 1);    // from the reply
 * ```
 */
export class ModelCrypto {
  readonly he: HeModelDescriptor;
  readonly params: Parameters;
  /** Seconds spent making the secret and evaluation keys. */
  readonly keygenSeconds: number;
  readonly #program: HeProgram;
  readonly #secretKey: SecretKey;
  readonly #evaluationKeys: EvaluationKeys;
  readonly #encoder: Encoder;
  readonly #encryptor: SymmetricEncryptor;
  readonly #decryptor: Decryptor;
  readonly #prng: Prng;
  #counter = 0;

  /**
   * @param options.seed - a 32-byte seed for reproducible keys and encryptions (tests only; default: fresh
   *   randomness from `crypto.getRandomValues`).
   * @throws FormatError for a malformed descriptor; the parameters' errors for parameters it cannot make.
   */
  constructor(he: HeModelDescriptor, options: { seed?: Uint8Array } = {}) {
    this.#program = packingProgram(he);
    this.he = he;
    this.params = Parameters.create(he.parameters);
    if (this.params.id !== he.parameters_id) {
      throw new MismatchError(
        `model metadata: parameters make id ${this.params.id}, the server says ${he.parameters_id}`,
      );
    }
    this.#prng = options.seed ? Prng.fromSeed(options.seed) : Prng.fresh();
    const start = performance.now();
    const keygen = new KeyGenerator(this.params, this.#prng.fork(1));
    this.#secretKey = keygen.generateSecretKey();
    this.#evaluationKeys = keygen.generateEvaluationKeys(this.#secretKey, {
      relinearization: he.relinearization,
      rotations: [...he.rotations],
      keyLevels: new Map(he.key_levels.map(([g, level]) => [g, level])),
    });
    this.keygenSeconds = (performance.now() - start) / 1000;
    this.#encoder = new Encoder(this.params);
    this.#encryptor = new SymmetricEncryptor(this.params, this.#secretKey);
    this.#decryptor = new Decryptor(this.params, this.#secretKey);
  }

  /** Images per request at most. */
  get batchSize(): number {
    return this.he.batch_size;
  }

  /** Values per image and per result. */
  get imageSize(): number {
    return this.he.input_shape.reduce((a, b) => a * b, 1);
  }
  get outputSize(): number {
    return outputSize(this.#program);
  }

  /** The evaluation keys, serialized seeded (each key's `a` halves as seeds): what the server gets. */
  evaluationKeyBytes(): Uint8Array {
    return serializeEvaluationKeys(this.#evaluationKeys, { seeded: true });
  }

  /**
   * Packs and encrypts `count` images (model input values, normalized: see {@link normalizeImages}) starting at
   * image `first`: the serialized seeded ciphertexts in the order of `he.inputs`.
   *
   * @throws InvalidArgumentError for a count above the batch size or values outside the model's input range.
   */
  encrypt(images: ArrayLike<number>, count: number, first = 0): Uint8Array[] {
    assertInteger(count, 'count', 1, this.he.batch_size);
    const size = this.imageSize;
    const slice = Array.prototype.slice.call(images, first * size, (first + count) * size) as number[];
    checkImages(this.#program, slice, count);
    const packed =
      this.#program.packing === 'batch'
        ? packBatch(this.#program, slice, 0, count)
        : packLatency(this.#program, slice, 0, count);
    return this.he.inputs.map((input) => {
      const pt = this.#encoder.encodeNew(packed.get(input.id) ?? [], input.level, input.scale);
      const n = this.#counter++;
      const seed = new Uint8Array(32);
      this.#prng.fork(1_000_000 + 2 * n).nextBytes(seed);
      const ct = this.#encryptor.encryptNew(pt, seed, this.#prng.fork(1_000_001 + 2 * n));
      pt.dispose();
      try {
        return serializeCiphertext(ct, { seeded: true });
      } finally {
        ct.dispose();
      }
    });
  }

  /**
   * Decrypts and unpacks a reply's output ciphertexts (in the order of `he.outputs`): `count × outputs` values.
   *
   * @throws InvalidArgumentError for a wrong number of outputs; FormatError / MismatchError for bad bytes.
   */
  decrypt(outputs: readonly Uint8Array[], count: number): Float64Array {
    if (outputs.length !== this.he.outputs.length) {
      throw new InvalidArgumentError(
        `outputs: ${outputs.length} ciphertexts: expected ${this.he.outputs.length}`,
      );
    }
    const decoded = new Map<number, Float64Array>();
    this.he.outputs.forEach((o, i) => {
      const ct = deserializeCiphertext(this.params, outputs[i]);
      try {
        const pt = this.#decryptor.decryptNew(ct);
        decoded.set(o.id, this.#encoder.decode(pt));
        pt.dispose();
      } finally {
        ct.dispose();
      }
    });
    const logits = new Float64Array(count * this.outputSize);
    unpack(this.#program, decoded, logits, 0, count);
    return logits;
  }
}

/**
 * Raw values (e.g. pixel bytes) → the model's input values, per the model's normalization: `raw × scale`, then
 * `(x − mean[c]) / std[c]` per channel (channels first).
 *
 * @example
 * ```ts
 * const inputs = normalizeImages(metadata.he, Float64Array.from(pixels));
 * ```
 */
export function normalizeImages(he: HeModelDescriptor, raw: ArrayLike<number>): Float64Array {
  const size = he.input_shape.reduce((a, b) => a * b, 1);
  const dims = he.input_shape.length === 4 ? he.input_shape.slice(1) : he.input_shape;
  const channels = dims.length === 3 ? dims[0] : 1;
  const perChannel = size / channels;
  const { scale, mean, std } = he.normalization;
  const out = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const c = Math.floor((i % size) / perChannel);
    const m = mean ? mean[Math.min(c, mean.length - 1)] : 0;
    const s = std ? std[Math.min(c, std.length - 1)] : 1;
    out[i] = (raw[i] * scale - m) / s;
  }
  return out;
}
