// Example 1: CKKS basics — parameters, keys, encode/encrypt, multiply, rescale, decrypt.
// Run: npm run example -- examples/01-ckks-basics.ts
import {
  Decryptor,
  Encoder,
  Evaluator,
  KeyGenerator,
  Parameters,
  precisionStats,
  PRESETS,
  SymmetricEncryptor,
} from 'home-he';

// 1. Parameters: logN 14 (8192 slots), 10 levels of ~30-bit scale, 128-bit secure.
const params = Parameters.create(PRESETS.PN14QP438);
console.log(params.toString());

// 2. Keys: the secret key stays with the client; the evaluator gets only the evaluation keys.
const keygen = new KeyGenerator(params);
const secretKey = keygen.generateSecretKey();
const evaluationKeys = keygen.generateEvaluationKeys(secretKey); // relinearization key only

// 3. Encode and encrypt (seeded symmetric encryption: the ciphertext's uniform half is a 32-byte seed).
const encoder = new Encoder(params);
const encryptor = new SymmetricEncryptor(params, secretKey);
const x = Float64Array.from({ length: params.slots }, (_, i) => (i / params.slots) * 2 - 1);
const ctX = encryptor.encryptNew(encoder.encodeNew(x));

// 4. Evaluate 0.5·x² + x − 0.25: multiply, relinearize, rescale; constants need no encoding by hand.
const evaluator = new Evaluator(params, evaluationKeys);
const square = evaluator.mulRelinNew(ctX, ctX);
evaluator.rescale(square, square);
const half = evaluator.mulNew(square, 0.5);
evaluator.rescale(half, half);
// x is two levels above: bring it to half's level and scale, then add.
const xAligned = evaluator.matchLevelAndScaleNew(ctX, half.level, half.scale);
const result = evaluator.addNew(half, xAligned);
evaluator.add(result, -0.25, result);

// 5. Decrypt and decode; report the precision over all slots.
const decoded = encoder.decode(new Decryptor(params, secretKey).decryptNew(result));
const expected = x.map((v) => 0.5 * v * v + v - 0.25);
const stats = precisionStats(expected, decoded);
console.log(
  `level ${result.level}, first slots ${Array.from(decoded.slice(0, 3), (v) => v.toFixed(6)).join(', ')}`,
);
console.log(`log2 max error ${stats.log2MaxError.toFixed(2)}, mean ${stats.log2MeanError.toFixed(2)}`);
if (stats.log2MaxError > -12) throw new Error('unexpected precision loss');
