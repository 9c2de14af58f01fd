// Example 4: a degree-63 Chebyshev approximation of the sigmoid (depth-optimal, automatic scales) and a
// 16×16 matrix-vector product by diagonals with baby-step giant-step and hoisted rotations.
// Run: npm run example -- examples/04-polynomials-and-matrices.ts
import {
  Decryptor,
  Encoder,
  Evaluator,
  KeyGenerator,
  LinearTransform,
  Parameters,
  Polynomial,
  PolynomialEvaluator,
  precisionStats,
  PRESETS,
  SymmetricEncryptor,
} from 'home-he';

const params = Parameters.create(PRESETS.PN14QP438);
const keygen = new KeyGenerator(params);
const secretKey = keygen.generateSecretKey();

// The matrix declares the rotations it needs; only those keys are generated.
const size = 16;
const matrix = Array.from({ length: size }, (_, i) =>
  Array.from({ length: size }, (_, j) => Math.cos(i * 3 + j) / size),
);
const transform = LinearTransform.fromMatrix(params, matrix, { layout: 'replicated' });
const evaluator = new Evaluator(
  params,
  keygen.generateEvaluationKeys(secretKey, { rotations: transform.rotationsNeeded() }),
);
console.log(`rotation keys: ${transform.rotationsNeeded().join(', ')}`);

const encoder = new Encoder(params);
const encryptor = new SymmetricEncryptor(params, secretKey);
const decryptor = new Decryptor(params, secretKey);

// sigmoid(8t) on t ∈ [-1, 1]: degree 63 consumes ⌈log2 64⌉ = 6 levels.
const sigmoid = Polynomial.chebyshevInterpolant((t) => 1 / (1 + Math.exp(-8 * t)), 63, [-1, 1]);
const t = Float64Array.from({ length: params.slots }, (_, i) => Math.sin(i) * 0.999);
const ctT = encryptor.encryptNew(encoder.encodeNew(t));
let start = performance.now();
const result = new PolynomialEvaluator(evaluator).evaluateNew(ctT, sigmoid);
const polyMs = performance.now() - start;
const polyStats = precisionStats(
  t.map((v) => sigmoid.evaluate(v)),
  encoder.decode(decryptor.decryptNew(result)),
);
console.log(
  `degree-63 sigmoid: ${polyMs.toFixed(0)} ms, levels used ${ctT.level - result.level} ` +
    `(planned ${PolynomialEvaluator.levelsConsumed(sigmoid)}), log2 max error ${polyStats.log2MaxError.toFixed(2)}`,
);

// y = M·x for a replicated 16-vector.
const x = Float64Array.from({ length: size }, (_, i) => (i % 5) / 5 - 0.4);
const ctX = encryptor.encryptNew(encoder.encodeNew(LinearTransform.replicate(x, size, params.slots)));
start = performance.now();
const product = transform.evaluateNew(evaluator, ctX);
evaluator.rescale(product, product);
const matrixMs = performance.now() - start;
const expected = matrix.map((row) => row.reduce((sum, m, j) => sum + m * x[j], 0));
const matrixStats = precisionStats(expected, encoder.decode(decryptor.decryptNew(product)), size);
console.log(
  `16×16 matrix-vector: ${matrixMs.toFixed(0)} ms, log2 max error ${matrixStats.log2MaxError.toFixed(2)}`,
);
if (polyStats.log2MaxError > -10 || matrixStats.log2MaxError > -8)
  throw new Error('unexpected precision loss');
