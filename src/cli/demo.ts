import type { Command } from 'commander';
import { Decryptor, SymmetricEncryptor } from '../ckks/encryptor.ts';
import { Encoder } from '../ckks/encoder.ts';
import { Evaluator } from '../ckks/evaluator.ts';
import { KeyGenerator } from '../ckks/keys.ts';
import { Parameters, PRESETS } from '../ckks/parameters.ts';

function log2MaxError(got: Float64Array, expected: (i: number) => number, count: number): number {
  let max = 0;
  for (let i = 0; i < count; i++) max = Math.max(max, Math.abs(got[i] - expected(i)));
  return Math.log2(max);
}

function timed<T>(label: string, lines: string[], work: () => T): T {
  const start = performance.now();
  const result = work();
  lines.push(`${label.padEnd(34)} ${(performance.now() - start).toFixed(1).padStart(8)} ms`);
  return result;
}

/**
 * A short CKKS walkthrough: keygen, encrypt, multiply, rotate, decrypt, with the precision reached. Prints what
 * it did; every figure is measured in this run.
 *
 * @example
 * ```ts
 * const report = runCkksWalkthrough();
 * console.log(report.join('\n'));
 * ```
 */
export function runCkksWalkthrough(): string[] {
  const lines: string[] = [];
  const params = Parameters.create(PRESETS.PN14QP438);
  lines.push(`Parameters: ${params.toString()}`);
  lines.push(
    `Slots: ${params.slots} real or complex values per ciphertext; ≤ ${params.logQP.toFixed(0)} bits (128-bit secure)`,
  );
  const keygen = new KeyGenerator(params);
  const secretKey = timed('secret key', lines, () => keygen.generateSecretKey());
  const evaluationKeys = timed('relinearization + 2 rotation keys', lines, () =>
    keygen.generateEvaluationKeys(secretKey, { rotations: [1, 8] }),
  );
  const encoder = new Encoder(params);
  const encryptor = new SymmetricEncryptor(params, secretKey);
  const decryptor = new Decryptor(params, secretKey);
  const evaluator = new Evaluator(params, evaluationKeys);
  const slots = params.slots;
  const x = Float64Array.from({ length: slots }, (_, i) => Math.sin((2 * Math.PI * i) / slots));
  const y = Float64Array.from({ length: slots }, (_, i) => Math.cos((6 * Math.PI * i) / slots));
  const ctX = timed('encode + encrypt x', lines, () => encryptor.encryptNew(encoder.encodeNew(x)));
  const ctY = timed('encode + encrypt y', lines, () => encryptor.encryptNew(encoder.encodeNew(y)));
  const product = timed('x·y (multiply, relinearize, rescale)', lines, () => {
    const p = evaluator.mulRelinNew(ctX, ctY);
    evaluator.rescale(p, p);
    return p;
  });
  const rotated = timed('rotate x·y left by 1', lines, () => evaluator.rotateNew(product, 1));
  const square = timed('(x·y)² + 0.5', lines, () => {
    const s = evaluator.mulRelinNew(product, product);
    evaluator.rescale(s, s);
    evaluator.add(s, 0.5, s);
    return s;
  });
  const decoded = timed('decrypt + decode (3 ciphertexts)', lines, () => [
    encoder.decode(decryptor.decryptNew(product)),
    encoder.decode(decryptor.decryptNew(rotated)),
    encoder.decode(decryptor.decryptNew(square)),
  ]);
  const xy = (i: number) => x[i] * y[i];
  lines.push('Precision over all slots (log2 of the max absolute error):');
  lines.push(`  x·y           ${log2MaxError(decoded[0], xy, slots).toFixed(2)}  (level ${product.level})`);
  lines.push(`  rotate(x·y,1) ${log2MaxError(decoded[1], (i) => xy((i + 1) % slots), slots).toFixed(2)}`);
  lines.push(
    `  (x·y)²+0.5    ${log2MaxError(decoded[2], (i) => xy(i) ** 2 + 0.5, slots).toFixed(2)}  (level ${square.level})`,
  );
  lines.push(
    `First slots of (x·y)²+0.5: ${Array.from(decoded[2].slice(0, 4), (v) => v.toFixed(6)).join(', ')} ` +
      `(exact: ${[0, 1, 2, 3].map((i) => (xy(i) ** 2 + 0.5).toFixed(6)).join(', ')})`,
  );
  lines.push(
    `Sizes: ciphertext ${(product.byteLength / 2 ** 20).toFixed(2)} MiB at level ${product.level}, ` +
      `relinearization key ${(evaluationKeys.relinearization!.byteLength / 2 ** 20).toFixed(1)} MiB ` +
      `(${(evaluationKeys.relinearization!.seededByteLength / 2 ** 20).toFixed(1)} MiB seeded)`,
  );
  return lines;
}

/**
 * The inference demo: the bundled CryptoNets model on the bundled MNIST test images (all 10,000 by default: two
 * batch-packed passes of up to 8192 images): key generation, encryption, encrypted inference with a progress bar,
 * decryption, accuracy against the plaintext model, timings and memory.
 *
 * @example
 * ```ts
 * await runInferenceDemo({ count: 1000 });
 * ```
 */
export async function runInferenceDemo(options: { count?: number; json?: boolean } = {}): Promise<void> {
  const { findDataFile, findModelFile } = await import('../platform/bundled-files.ts');
  const { runInfer } = await import('./infer.ts');
  if (!options.json) {
    console.log('HomE demo: encrypted MNIST inference with CryptoNets (RNS-CKKS on WebAssembly SIMD)');
    console.log(
      'The client encrypts each pixel position of up to N/2 images into one ciphertext (one image per slot); the server ' +
        'evaluates conv → x² → dense → x² → dense on ciphertexts only; the client decrypts the 10 logits per image.',
    );
  }
  await runInfer({
    model: findModelFile('cryptonets-mnist.onnx'),
    data: findDataFile('mnist/t10k-images-idx3-ubyte.gz'),
    labels: findDataFile('mnist/t10k-labels-idx1-ubyte.gz'),
    inputScale: 1 / 256,
    count: options.count ?? 10_000,
    json: options.json,
  });
}

/**
 * Registers `home demo` (encrypted inference; `--ckks` for the CKKS walkthrough).
 *
 * @example
 * ```sh
 * home demo
 * home demo --ckks
 * ```
 */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'encrypted MNIST inference with the bundled CryptoNets model (--ckks: a CKKS walkthrough instead)',
    )
    .option('--ckks', 'run the CKKS walkthrough (keygen, encrypt, multiply, rotate, decrypt)')
    .option('--count <k>', 'test images to classify (default all 10000: two passes at logN 14)')
    .option('--json', 'JSON lines instead of text')
    .action(async (flags: { ckks?: boolean; count?: string; json?: boolean }) => {
      if (flags.ckks) {
        console.log('HomE demo: CKKS walkthrough on WebAssembly SIMD kernels');
        for (const line of runCkksWalkthrough()) console.log(line);
        return;
      }
      const count = flags.count === undefined ? undefined : Number(flags.count);
      await runInferenceDemo({ count, json: flags.json === true });
    });
}
