/**
 * `home-he`: the CKKS library — parameters, keys, encoding, encryption, evaluation (arithmetic, rotations,
 * polynomials, linear transforms), bootstrapping and serialization, on WebAssembly SIMD kernels. This entry runs in Node and in
 * browsers (it imports no Node module; the kernels are found by a loader chosen by export conditions). In a
 * browser, `await loadKernels()` once before the first use; Node loads them on demand.
 *
 * The neural-network compiler is `home-he/nn`; the tiered-memory runtime (Node only) is `home-he/runtime`.
 *
 * @example
 * ```ts
 * import { Decryptor, Encoder, Evaluator, KeyGenerator, Parameters, PRESETS, SymmetricEncryptor } from 'home-he';
 *
 * const params = Parameters.create(PRESETS.PN14QP438);
 * const keygen = new KeyGenerator(params);
 * const secretKey = keygen.generateSecretKey();
 * const evaluator = new Evaluator(params, keygen.generateEvaluationKeys(secretKey, { rotations: [1] }));
 * const encoder = new Encoder(params);
 * const ct = new SymmetricEncryptor(params, secretKey).encryptNew(encoder.encodeNew([0.5, 0.25]));
 * const squared = evaluator.mulRelinNew(ct, ct);
 * evaluator.rescale(squared, squared);
 * encoder.decode(new Decryptor(params, secretKey).decryptNew(squared)); // ≈ [0.25, 0.0625, …]
 * ```
 */

export {
  Bootstrapper,
  type BootstrappingKeys,
  BootstrappingParameters,
  type BootstrappingParametersLiteral,
  type BootstrappingTimings,
  bootstrapResultScale,
  DenseToSparseKey,
  EvalMod,
  type EvalModLiteral,
} from './ckks/bootstrapping/index.ts';
export { Encoder, type ComplexValues } from './ckks/encoder.ts';
export { Decryptor, Encryptor, SeededCiphertext, SymmetricEncryptor } from './ckks/encryptor.ts';
export { Evaluator, type Operand } from './ckks/evaluator.ts';
export { type GaloisKeySource, ResidentKeys, StashedKeys } from './ckks/key-source.ts';
export { HostStash, type Stash } from './ckks/stash.ts';
export {
  EvaluationKeyStream,
  EvaluationKeys,
  GaloisKey,
  KeyGenerator,
  PublicKey,
  SecretKey,
  SwitchingKey,
} from './ckks/keys.ts';
export {
  LinearTransform,
  type LinearTransformOptions,
  type MatrixLayout,
  type TransformShape,
} from './ckks/linear-transform.ts';
export { Ciphertext, Plaintext } from './ckks/objects.ts';
export { Parameters, type ParametersLiteral, PRESETS, type SecretDistribution } from './ckks/parameters.ts';
export { type Interval, Polynomial, type PolynomialBasis } from './ckks/polynomial.ts';
export {
  type PolynomialEvaluationOptions,
  PolynomialEvaluator,
  type PolynomialPlan,
} from './ckks/polynomial-evaluator.ts';
export { type PrecisionStats, precisionStats } from './ckks/precision.ts';
export { MAX_LOG_QP_128, maxLogQP128 } from './ckks/security.ts';
export {
  CHECKSUM_BYTES,
  deserializeCiphertext,
  deserializeEvaluationKeys,
  deserializeGaloisKey,
  deserializeParameters,
  deserializePlaintext,
  deserializePublicKey,
  deserializeSecretKey,
  deserializeSwitchingKey,
  FORMAT_VERSION,
  HEADER_BYTES,
  type ObjectHeader,
  ObjectType,
  readHeader,
  type SerializeOptions,
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
} from './ckks/serialization/index.ts';
export {
  defaultContext,
  defaultThreads,
  KernelContext,
  type KernelContextOptions,
  loadKernels,
  setDefaultThreads,
} from './ring/context.ts';
export type { KernelBatch, TaskKernels } from './ring/threads.ts';
export { galoisElementForConjugation, galoisElementForRotation } from './ring/galois.ts';
export { Prng } from './ring/prng.ts';
export {
  FormatError,
  HomeError,
  InvalidArgumentError,
  MismatchError,
  MissingKeyError,
  ResourceError,
  SecurityError,
} from './util/errors.ts';
