/**
 * The data owner's side of encrypted inference: keys, packing + encryption of inputs, decryption + unpacking of
 * outputs. The secret key never leaves this object. Browser-safe (no Node module).
 */
import { Bootstrapper } from '../ckks/bootstrapping/bootstrapper.ts';
import type { BootstrappingKeys } from '../ckks/bootstrapping/keys.ts';
import { BootstrappingParameters } from '../ckks/bootstrapping/parameters.ts';
import { Encoder } from '../ckks/encoder.ts';
import type { Stash } from '../ckks/stash.ts';
import { Decryptor, SymmetricEncryptor } from '../ckks/encryptor.ts';
import {
  type EvaluationKeyStream,
  EvaluationKeys,
  KeyGenerator,
  type PublicKey,
  type SecretKey,
} from '../ckks/keys.ts';
import type { Ciphertext, Plaintext } from '../ckks/objects.ts';
import { Parameters } from '../ckks/parameters.ts';
import type { KernelContext } from '../ring/context.ts';
import { Prng } from '../ring/prng.ts';
import { imageSize, outputSize, packBatch, packLatency, unpack } from '../program/packing.ts';
import { programKeyLevels } from '../program/analysis.ts';
import { assertProgram, type HeProgram } from '../program/program.ts';
import { assertInteger, check } from '../util/assert.ts';
import { MismatchError } from '../util/errors.ts';

/**
 * The data owner's side: generates the keys, packs and encrypts images, decrypts and unpacks the results. The
 * secret key never leaves it; the server gets {@link InferenceClient.evaluationKeys} only.
 *
 * @example
 * ```ts
 * const client = new InferenceClient(program);
 * const server = new InferenceServer(program, client.evaluationKeys);
 * const encrypted = client.encryptPass(images, 0, 100);
 * const logits = client.decryptPass(server.run(encrypted), 100);
 * ```
 */
export class InferenceClient {
  readonly program: HeProgram;
  readonly params: Parameters;
  /** The evaluation keys for the server (empty with `streamKeys`: see {@link keyStream}). */
  readonly evaluationKeys: EvaluationKeys;
  /**
   * With `streamKeys`: the same keys made one at a time when the server's store asks for them (it writes each to
   * its slow tier and frees it), so that they never have to fit in memory together.
   */
  readonly keyStream: EvaluationKeyStream | undefined;
  /** For a model owner who encrypts the weights (programs with encrypted weights only). */
  readonly publicKey: PublicKey | undefined;
  /**
   * The keys the server's bootstrapper needs (programs with `bootstrapping` only): relinearization, Galois keys at
   * the levels bootstrapping uses them, and the dense ↔ sparse encapsulation keys. Evaluation keys: no secret.
   */
  readonly bootstrappingKeys: BootstrappingKeys | undefined;
  /** The program's bootstrapping parameters, on {@link params}. */
  readonly bootstrappingParameters: BootstrappingParameters | undefined;
  /** Seconds spent generating keys (with `streamKeys`, the streamed keys' time is added as they are made). */
  get keygenSeconds(): number {
    return this.#keygenSeconds + (this.keyStream?.seconds ?? 0);
  }
  readonly #keygenSeconds: number;
  readonly #secretKey: SecretKey;
  readonly #encoder: Encoder;
  readonly #encryptor: SymmetricEncryptor;
  readonly #decryptor: Decryptor;
  readonly #prng: Prng;

  /**
   * @param options.seed - a 32-byte seed for reproducible keys and encryptions (tests only; default fresh
   *   randomness from `crypto.getRandomValues`).
   * @param options.context - the kernel context the keys and ciphertexts live in (default: the default one).
   * @param options.streamKeys - make the evaluation keys on request ({@link keyStream}) instead of all now.
   * @param options.bootstrapStash - where the bootstrapping Galois keys wait for the server's bootstrapper (default:
   *   host memory when they pass 1 GiB, else kernel memory); e.g. a `FileStash` in the server's slow tier.
   */
  constructor(
    program: HeProgram,
    options: {
      seed?: Uint8Array;
      context?: KernelContext;
      streamKeys?: boolean;
      bootstrapStash?: Stash;
    } = {},
  ) {
    assertProgram(program);
    this.program = program;
    this.params = Parameters.create(program.parameters, { context: options.context });
    this.#prng = options.seed ? Prng.fromSeed(options.seed) : Prng.fresh();
    const start = performance.now();
    const keygen = new KeyGenerator(this.params, this.#prng.fork(1));
    this.#secretKey = keygen.generateSecretKey();
    // Each Galois key is made for the highest level the program uses it at (a fraction of a top-level key).
    const wanted = {
      relinearization: program.relinearization,
      rotations: program.rotations,
      keyLevels: programKeyLevels(program),
    };
    if (options.streamKeys) {
      this.evaluationKeys = new EvaluationKeys();
      this.keyStream = keygen.streamEvaluationKeys(this.#secretKey, wanted);
    } else {
      this.evaluationKeys = keygen.generateEvaluationKeys(this.#secretKey, wanted);
      this.keyStream = undefined;
    }
    if (program.bootstrapping) {
      const bp = BootstrappingParameters.create(program.bootstrapping, { context: options.context });
      this.params.checkSame(bp.params, 'program bootstrapping');
      this.bootstrappingParameters = bp;
      this.bootstrappingKeys = Bootstrapper.generateKeys(bp, keygen, this.#secretKey, {
        prng: this.#prng.fork(2),
        ...(options.bootstrapStash ? { stash: options.bootstrapStash } : {}),
        relinearization: this.evaluationKeys.relinearization,
      });
    } else {
      this.bootstrappingParameters = undefined;
      this.bootstrappingKeys = undefined;
    }
    this.publicKey = program.inputs.some((i) => i.owner === 'model')
      ? keygen.generatePublicKey(this.#secretKey)
      : undefined;
    this.#keygenSeconds = (performance.now() - start) / 1000;
    this.#encoder = new Encoder(this.params);
    this.#encryptor = new SymmetricEncryptor(this.params, this.#secretKey);
    this.#decryptor = new Decryptor(this.params, this.#secretKey);
  }

  #counter = 0;

  /**
   * Packs and encrypts images `first … first+count−1` (count ≤ the program's batch size: slots in batch packing, blocks of slots in latency packing):
   * input id → ciphertext, each at the level and scale the program asks.
   */
  encryptPass(images: ArrayLike<number>, first: number, count: number): Map<number, Ciphertext> {
    const total = images.length / imageSize(this.program);
    assertInteger(first, 'first', 0, total - 1);
    assertInteger(count, 'count', 1, this.program.batchSize);
    check(first + count <= total, () => `first + count = ${first + count}: expected ≤ ${total} images`);
    const packed =
      this.program.packing === 'batch'
        ? packBatch(this.program, images, first, count)
        : packLatency(this.program, images, first, count);
    const out = new Map<number, Ciphertext>();
    for (const input of this.program.inputs) {
      if (input.owner === 'model') continue;
      const pt = this.#encoder.encodeNew(packed.get(input.id) ?? [], input.level, input.scale);
      // Each ciphertext's uniform half and noise come from their own child streams (seed 32 bytes).
      const n = this.#counter++;
      const seed = new Uint8Array(32);
      this.#prng.fork(1_000_000 + 2 * n).nextBytes(seed);
      out.set(input.id, this.#encryptor.encryptNew(pt, seed, this.#prng.fork(1_000_001 + 2 * n)));
      pt.dispose();
    }
    return out;
  }

  /** Decrypts and unpacks one pass's outputs (disposing them): `count × outputs` values. */
  decryptPass(outputs: Map<number, Ciphertext>, count: number): Float64Array {
    const logits = new Float64Array(count * outputSize(this.program));
    const decoded = new Map<number, Float64Array>();
    for (const o of this.program.outputs) {
      const ct = outputs.get(o.id);
      if (!ct) throw new MismatchError(`output ${o.id}: missing from the server's results`);
      const pt: Plaintext = this.#decryptor.decryptNew(ct);
      decoded.set(o.id, this.#encoder.decode(pt));
      pt.dispose();
      ct.dispose();
    }
    unpack(this.program, decoded, logits, 0, count);
    return logits;
  }
}
