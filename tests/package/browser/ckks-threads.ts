/**
 * The CKKS sequence the browser test runs on 1 and on 2 kernel threads, and Node runs too: public-key encryption,
 * multiply + relinearize, rescale, rotation, hoisted rotations, from fixed seeds; the SHA-256 of each serialized
 * result. `home` is the library's module namespace, so the same function runs against the browser bundle and
 * against Node's.
 */
import type * as HomeHe from 'home-he';

function seed(label: number): Uint8Array {
  return Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? label : (0x5a + 11 * i) & 0xff));
}

async function hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new Uint8Array(bytes)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Digests of the sequence on a fresh context asked for `threads` threads, the threads it got, and how many tasks
 * its kernel threads ran.
 * `settle` lets the host's event loop turn (a browser starts its workers only between tasks of the page).
 */
export async function ckksDigests(
  home: typeof HomeHe,
  threads: number,
  settle: () => Promise<void> = async () => {},
): Promise<{ digests: string[]; threads: number; tasksOnThreads: number }> {
  const context = home.KernelContext.create({ threads });
  try {
    const params = home.Parameters.create({ logN: 14, depth: 6, specialPrimes: 2 }, { context });
    const keygen = new home.KeyGenerator(params, home.Prng.fromSeed(seed(2)));
    const secretKey = keygen.generateSecretKey(home.Prng.fromSeed(seed(3)));
    const publicKey = keygen.generatePublicKey(secretKey, seed(4));
    const keys = keygen.generateEvaluationKeys(secretKey, { rotations: [1, 2, 5] });
    const encoder = new home.Encoder(params);
    const values = Float64Array.from({ length: params.slots }, (_, i) => ((i * 29) % 64) / 32 - 1);
    const pt = encoder.encodeNew(values);
    const x = new home.Encryptor(params, publicKey).encryptNew(pt, home.Prng.fromSeed(seed(5)));
    const y = new home.SymmetricEncryptor(params, secretKey).encryptNew(
      pt,
      seed(6),
      home.Prng.fromSeed(seed(7)),
    );
    const evaluator = new home.Evaluator(params, keys);
    // Products until a kernel thread has taken tasks (threads start on the first shared batch), for at most 60 s.
    const started = Date.now();
    while (context.threads > 1 && context.threadActivity().tasks === 0 && Date.now() - started < 60_000) {
      evaluator.mulRelinNew(x, y);
      await settle();
    }
    const product = evaluator.mulRelinNew(x, y);
    const rescaled = evaluator.rescaleNew(product);
    const rotated = evaluator.rotateNew(rescaled, 1);
    const hoisted = evaluator.rotateHoistedNew(rescaled, [2, 5]);
    const digests: string[] = [];
    for (const c of [x, y, product, rescaled, rotated, ...hoisted.values()]) {
      digests.push(await hex(home.serializeCiphertext(c)));
    }
    return { digests, threads: context.threads, tasksOnThreads: context.threadActivity().tasks };
  } finally {
    context.close();
  }
}
