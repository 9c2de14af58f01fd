import { createRequire } from 'node:module';
import { InvalidArgumentError, ResourceError, SecurityError } from '../../src/util/errors.ts';

// node-seal ships a CommonJS (UMD) build for Node whose typings describe an ES default export; loading it with
// `require` gives the factory itself on every resolution mode, so the types are taken from the factory.
type SealFactory = () => Promise<SealLibrary>;

/** The node-seal library object (SEAL compiled to WebAssembly). */
export type SealLibrary = Awaited<ReturnType<typeof import('node-seal')['default']>>;
/** node-seal object types, named as the library names them. */
export type SealCipherText = ReturnType<SealLibrary['CipherText']>;
export type SealPlainText = ReturnType<SealLibrary['PlainText']>;
export type SealContext = ReturnType<SealLibrary['Context']>;
export type SealCkksEncoder = ReturnType<SealLibrary['CKKSEncoder']>;
export type SealEncryptor = ReturnType<SealLibrary['Encryptor']>;
export type SealDecryptor = ReturnType<SealLibrary['Decryptor']>;
export type SealEvaluator = ReturnType<SealLibrary['Evaluator']>;
export type SealKeyGenerator = ReturnType<SealLibrary['KeyGenerator']>;
export type SealPublicKey = ReturnType<SealLibrary['PublicKey']>;
export type SealSecretKey = ReturnType<SealLibrary['SecretKey']>;
export type SealRelinKeys = ReturnType<SealLibrary['RelinKeys']>;
export type SealGaloisKeys = ReturnType<SealLibrary['GaloisKeys']>;

let library: Promise<SealLibrary> | undefined;

/**
 * Loads node-seal once per process. Only 6.x works on Node 20 (7.x needs wasm GC types and `try_table`).
 *
 * @example
 * ```ts
 * const seal = await loadNodeSeal();
 * seal.Version; // '6.0.3'
 * ```
 */
export function loadNodeSeal(): Promise<SealLibrary> {
  if (!library) {
    const require = createRequire(import.meta.url);
    let factory: SealFactory;
    try {
      factory = require('node-seal') as SealFactory;
    } catch (cause) {
      throw new ResourceError('node-seal is not installed: expected the devDependency node-seal@6.0.3', {
        cause,
      });
    }
    library = factory();
  }
  return library;
}

/**
 * A CKKS context of node-seal with every object a benchmark needs: keys (public, secret, relinearization),
 * encoder, encryptors (public key; and one holding the secret key for seeded symmetric encryption), decryptor and
 * evaluator. `dispose()` frees them all; objects made from it are freed by their owner with `.delete()`.
 *
 * @example
 * ```ts
 * const peer = await SealCkks.create(14, [50, 40, 40, 40, 40, 40, 40, 40, 40, 50], 2 ** 40);
 * const pt = peer.encoder.encode(Float64Array.of(0.5), peer.scale) as SealPlainText;
 * peer.dispose();
 * ```
 */
export class SealCkks {
  readonly seal: SealLibrary;
  readonly logN: number;
  readonly bitSizes: readonly number[];
  readonly scale: number;
  /** log2 of the product of the actual primes, special prime included. */
  readonly logQP: number;
  readonly context: SealContext;
  readonly keygen: SealKeyGenerator;
  readonly secretKey: SealSecretKey;
  readonly publicKey: SealPublicKey;
  readonly relinKeys: SealRelinKeys;
  readonly encoder: SealCkksEncoder;
  readonly encryptor: SealEncryptor;
  readonly decryptor: SealDecryptor;
  readonly evaluator: SealEvaluator;
  readonly #owned: { delete(): void }[];

  private constructor(seal: SealLibrary, logN: number, bitSizes: readonly number[], scale: number) {
    this.seal = seal;
    this.logN = logN;
    this.bitSizes = Object.freeze([...bitSizes]);
    this.scale = scale;
    const n = 2 ** logN;
    const parms = seal.EncryptionParameters(seal.SchemeType.ckks);
    parms.setPolyModulusDegree(n);
    const chain = seal.CoeffModulus.Create(n, Int32Array.from(bitSizes));
    parms.setCoeffModulus(chain);
    chain.delete();
    this.context = seal.Context(parms, true, seal.SecurityLevel.tc128);
    if (!this.context.parametersSet()) {
      parms.delete();
      this.context.delete();
      throw new SecurityError(
        `node-seal rejected CKKS logN = ${logN}, coefficient modulus bits [${bitSizes.join(', ')}]: ` +
          'expected NTT-friendly primes within the 128-bit bound',
      );
    }
    let logQP = 0;
    for (const p of parms.coeffModulus) logQP += Math.log2(Number(p));
    this.logQP = logQP;
    parms.delete();
    this.keygen = seal.KeyGenerator(this.context);
    this.secretKey = this.keygen.secretKey();
    this.publicKey = this.keygen.createPublicKey();
    this.relinKeys = this.keygen.createRelinKeys();
    this.encoder = seal.CKKSEncoder(this.context);
    this.encryptor = seal.Encryptor(this.context, this.publicKey, this.secretKey);
    this.decryptor = seal.Decryptor(this.context, this.secretKey);
    this.evaluator = seal.Evaluator(this.context);
    this.#owned = [
      this.evaluator,
      this.decryptor,
      this.encryptor,
      this.encoder,
      this.relinKeys,
      this.publicKey,
      this.secretKey,
      this.keygen,
      this.context,
    ];
  }

  /**
   * Loads node-seal and builds a 128-bit-secure CKKS context with the given coefficient modulus bit sizes (the
   * last is SEAL's special prime) and default scale.
   */
  static async create(logN: number, bitSizes: readonly number[], scale: number): Promise<SealCkks> {
    if (!Number.isInteger(logN) || logN < 10 || logN > 15) {
      throw new InvalidArgumentError(`logN = ${logN}: expected an integer 10 … 15 for node-seal`);
    }
    const seal = await loadNodeSeal();
    return new SealCkks(seal, logN, bitSizes, scale);
  }

  get slots(): number {
    return this.encoder.slotCount;
  }

  /** SEAL's "no compression" mode for `save`/`saveArray` (their default is zstd). */
  get noCompression(): SealLibrary['ComprModeType']['none'] {
    return this.seal.ComprModeType.none;
  }

  /** Galois keys for exactly these left-rotation steps. */
  galoisKeys(steps: readonly number[]): SealGaloisKeys {
    return this.keygen.createGaloisKeys(Int32Array.from(steps));
  }

  /** An empty ciphertext to load into. */
  cipherText(): SealCipherText {
    return this.seal.CipherText();
  }

  /** Frees every object this context made. */
  dispose(): void {
    for (const object of this.#owned) object.delete();
    this.#owned.length = 0;
  }
}
