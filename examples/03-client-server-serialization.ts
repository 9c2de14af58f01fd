// Example 3: a client/server round trip through bytes — parameters, seeded evaluation keys and a seeded
// ciphertext go to the server; the secret key never does; a corrupted byte is caught by the checksum.
// Run: npm run example -- examples/03-client-server-serialization.ts
import {
  Decryptor,
  deserializeCiphertext,
  deserializeEvaluationKeys,
  deserializeParameters,
  Encoder,
  Evaluator,
  FormatError,
  KeyGenerator,
  Parameters,
  PRESETS,
  serializeCiphertext,
  serializeEvaluationKeys,
  serializeParameters,
  SymmetricEncryptor,
} from 'home-he';

// --- client ---
const params = Parameters.create(PRESETS.PN14QP438);
const keygen = new KeyGenerator(params);
const secretKey = keygen.generateSecretKey();
const evaluationKeys = keygen.generateEvaluationKeys(secretKey, { rotations: [1] });
const encoder = new Encoder(params);
const ct = new SymmetricEncryptor(params, secretKey).encryptNew(encoder.encodeNew([1, 2, 3, 4]));
const toServer = {
  params: serializeParameters(params),
  keys: serializeEvaluationKeys(evaluationKeys, { seeded: true }),
  input: serializeCiphertext(ct, { seeded: true }),
};
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;
console.log(
  `to server: keys ${mib(toServer.keys.length)} (seeded), input ${mib(toServer.input.length)} (seeded)`,
);

// --- server: evaluation keys only ---
const serverParams = deserializeParameters(toServer.params);
const evaluator = new Evaluator(serverParams, deserializeEvaluationKeys(serverParams, toServer.keys));
const input = deserializeCiphertext(serverParams, toServer.input);
const output = evaluator.rotateNew(evaluator.addNew(input, input), 1); // (2x) rotated by one slot
const toClient = serializeCiphertext(output);
console.log(`to client: result ${mib(toClient.length)}`);

// --- client ---
const result = encoder.decode(
  new Decryptor(params, secretKey).decryptNew(deserializeCiphertext(params, toClient)),
);
console.log(`decrypted: ${Array.from(result.slice(0, 3), (v) => v.toFixed(4)).join(', ')} (exact 4, 6, 8)`);
if (Math.abs(result[0] - 4) > 1e-3 || Math.abs(result[2] - 8) > 1e-3) throw new Error('wrong result');

// A flipped bit anywhere is a typed error, never a silently wrong ciphertext.
const corrupted = toClient.slice();
corrupted[corrupted.length >> 1] ^= 1;
try {
  deserializeCiphertext(params, corrupted);
  throw new Error('corruption went unnoticed');
} catch (error) {
  if (!(error instanceof FormatError)) throw error;
  console.log(`corrupted copy rejected: ${error.message}`);
}
