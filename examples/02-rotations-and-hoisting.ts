// Example 2: rotations — Galois keys for exactly the steps needed, hoisted rotations, rotate-and-sum.
// Run: npm run example -- examples/02-rotations-and-hoisting.ts
import {
  Decryptor,
  Encoder,
  Evaluator,
  KeyGenerator,
  Parameters,
  PRESETS,
  SymmetricEncryptor,
} from 'home-he';

const params = Parameters.create(PRESETS.PN14QP438);
const keygen = new KeyGenerator(params);
const secretKey = keygen.generateSecretKey();

// Declare the rotations up front: steps 1..4 for hoisting, and what innerSum(·, 1, 8) needs.
const sumSteps = Evaluator.innerSumRotations(1, 8);
const steps = [...new Set([1, 2, 3, 4, ...sumSteps])];
const evaluator = new Evaluator(params, keygen.generateEvaluationKeys(secretKey, { rotations: steps }));
console.log(`Galois keys generated for steps ${steps.join(', ')}`);

const encoder = new Encoder(params);
const decryptor = new Decryptor(params, secretKey);
const values = Float64Array.from({ length: params.slots }, (_, i) => i % 16);
const ct = new SymmetricEncryptor(params, secretKey).encryptNew(encoder.encodeNew(values));

let start = performance.now();
const separate = [1, 2, 3, 4].map((s) => evaluator.rotateNew(ct, s));
const separateMs = performance.now() - start;
start = performance.now();
const hoisted = evaluator.rotateHoistedNew(ct, [1, 2, 3, 4]);
const hoistedMs = performance.now() - start;
console.log(
  `4 rotations: ${separateMs.toFixed(1)} ms separately, ${hoistedMs.toFixed(1)} ms hoisted (one ModUp)`,
);
for (const [i, s] of [1, 2, 3, 4].entries()) {
  const a = encoder.decode(decryptor.decryptNew(separate[i]));
  const b = encoder.decode(decryptor.decryptNew(hoisted.get(s)!));
  if (Math.abs(a[0] - s) > 1e-3 || Math.abs(b[0] - s) > 1e-3) throw new Error(`rotation by ${s} is wrong`);
}

// Rotate-and-sum: slot i gets values[i] + … + values[i+7].
const sum = encoder.decode(decryptor.decryptNew(evaluator.innerSumNew(ct, 1, 8)));
console.log(
  `innerSum over 8 slots: slot 0 = ${sum[0].toFixed(4)} (exact 28), slot 9 = ${sum[9].toFixed(4)} (exact 84)`,
);
if (Math.abs(sum[0] - 28) > 1e-2 || Math.abs(sum[9] - 84) > 1e-2) throw new Error('innerSum is wrong');
