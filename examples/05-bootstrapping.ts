// Example 5: CKKS bootstrapping. A ciphertext used down to level 0 comes back at level `levelsLeft` with the same
// slots, so a circuit can go on multiplying. logN 16 is the secure size (about half a minute and 7 GB of keys,
// kept out of kernel memory in a stash); this example runs at logN 12 unless HOME_EXAMPLE_LOGN=16.
// Run: npm run example -- examples/05-bootstrapping.ts
import {
  Bootstrapper,
  BootstrappingParameters,
  Decryptor,
  Encoder,
  Encryptor,
  EvaluationKeys,
  Evaluator,
  KeyGenerator,
  precisionStats,
} from 'home-he';

const logN = Number(process.env.HOME_EXAMPLE_LOGN ?? 12);
// Below logN 16 the chain is beyond the 128-bit bound: the library says so (a warning) and goes on.
const bp = BootstrappingParameters.create({ logN, insecure: logN < 16 });
const params = bp.params;
console.log(
  `logN ${logN}: depth ${params.depth}, ${bp.levelsLeft} levels left after bootstrapping, ` +
    `log2(QP) ${params.logQP.toFixed(1)}, ${Bootstrapper.rotationsNeeded(bp).length} rotation keys`,
);

const keygen = new KeyGenerator(params);
const secretKey = keygen.generateSecretKey();
const keys = Bootstrapper.generateKeys(bp, keygen, secretKey);
const bootstrapper = new Bootstrapper(bp, keys);
const evaluator = new Evaluator(params, new EvaluationKeys(keys.relinearization));
const encoder = new Encoder(params);
const decryptor = new Decryptor(params, secretKey);

// x at level 0: no multiplication left.
const x = Float64Array.from({ length: params.slots }, (_, i) => Math.sin(i));
const ct = new Encryptor(params, keygen.generatePublicKey(secretKey)).encryptNew(
  encoder.encodeNew(x, 0, params.scaleAtLevel[0]),
);
const start = performance.now();
const fresh = bootstrapper.bootstrapNew(ct);
const seconds = (performance.now() - start) / 1000;
const stats = precisionStats(x, encoder.decode(decryptor.decryptNew(fresh)));
console.log(
  `bootstrapped in ${seconds.toFixed(2)} s: level ${ct.level} → ${fresh.level}, ` +
    `log2 max error ${stats.log2MaxError.toFixed(2)}`,
);

// And it multiplies again: x² at level levelsLeft − 1.
const square = evaluator.mulRelinNew(fresh, fresh);
evaluator.rescale(square, square);
const squared = precisionStats(
  x.map((v) => v * v),
  encoder.decode(decryptor.decryptNew(square)),
);
console.log(
  `x² after bootstrapping: level ${square.level}, log2 max error ${squared.log2MaxError.toFixed(2)}`,
);
if (stats.log2MaxError > -20 || squared.log2MaxError > -19) throw new Error('bootstrapping lost precision');
