import { Encoder } from '../src/ckks/encoder.ts';
import { Decryptor, Encryptor, SymmetricEncryptor } from '../src/ckks/encryptor.ts';
import { Evaluator } from '../src/ckks/evaluator.ts';
import { KeyGenerator } from '../src/ckks/keys.ts';
import type { Ciphertext, Plaintext } from '../src/ckks/objects.ts';
import { Parameters, PRESETS, type ParametersLiteral } from '../src/ckks/parameters.ts';
import {
  deserializeCiphertext,
  serializeCiphertext,
  serializeGaloisKey,
  serializeSwitchingKey,
  writeCiphertext,
} from '../src/ckks/serialization/index.ts';
import { maxLogQP128 } from '../src/ckks/security.ts';
import { galoisElementForRotation } from '../src/ring/galois.ts';
import { assertInteger, check } from '../src/util/assert.ts';
import { InvalidArgumentError } from '../src/util/errors.ts';
import { median } from './support/median.ts';
import { type SealCipherText, SealCkks, type SealPlainText } from './peers/node-seal.ts';

/** One timed operation, HomE beside node-seal. Times are medians in ms; errors are log2 of the max abs error. */
export interface CkksOpRecord {
  suite: 'ckks';
  op: string;
  logN: number;
  logQP: number;
  home_ms: number;
  peer: 'node-seal';
  peer_ms: number;
  ratio: number;
  home_log2_err: number | null;
  peer_log2_err: number | null;
  /** Serialization ops: the serialized bytes and each side's rate in GB/s on one core. */
  home_bytes?: number;
  peer_bytes?: number;
  home_gb_per_s?: number;
  peer_gb_per_s?: number;
}

/** Serialized sizes of one kind of object (null where a library has no such form). */
export interface CkksBytesRecord {
  suite: 'ckks';
  op: `bytes_${string}`;
  logN: number;
  home_bytes: number;
  home_seeded_bytes: number | null;
  peer_bytes: number;
  peer_seeded_bytes: number | null;
}

/** The closing line: the parameter sets compared and the smallest speed-up over all ops. */
export interface CkksSummaryRecord {
  suite: 'ckks';
  summary: true;
  logN: number;
  logQP: number;
  home_params: string;
  peer: 'node-seal';
  peer_version: string;
  peer_logQP: number;
  peer_coeff_modulus_bits: number[];
  peer_scale_log2: number;
  reps: number;
  min_ratio: number;
  min_ratio_op: string;
  seconds: number;
}

export type CkksBenchRecord = CkksOpRecord | CkksBytesRecord | CkksSummaryRecord;

/** Options of {@link runCkksBench}. */
export interface CkksBenchOptions {
  /** Ring degree log2: 13, 14 or 15. */
  logN: number;
  /** Timed repetitions per op (after a warm-up); the median is reported. */
  reps: number;
  /** Receives each JSON line (without newline); default: stdout. */
  write?: (line: string) => void;
}

/** HomE preset and the node-seal coefficient modulus it is compared with, per logN. */
interface Pairing {
  preset: ParametersLiteral;
  /** SEAL bit sizes; the last prime is SEAL's special prime (like HomE's P). */
  sealBits: number[];
}

// SEAL's usual CKKS layout is 60-bit outer primes around 40-bit level primes at scale 2^40. Where that cannot come
// within ±12 bits of HomE's log2(QP) under the 128-bit bound (logN 14: 400 or 440 bits vs 419 and a bound of 438),
// the outer primes shrink to 50 bits and keep 40-bit levels: the special prime still matches the largest data prime.
// logN 15 keeps SEAL's layout (880 bits vs HomE's 867.8, 12 bits apart once rounded) so that its times can be checked
// against the published node-seal figures at [60, 40×19, 60].
const PAIRINGS: Record<number, Pairing> = {
  13: { preset: PRESETS.PN13QP218, sealBits: [60, 40, 40, 60] },
  14: { preset: PRESETS.PN14QP438, sealBits: [50, 40, 40, 40, 40, 40, 40, 40, 40, 50] },
  15: { preset: PRESETS.PN15QP881, sealBits: [60, ...new Array<number>(19).fill(40), 60] },
};

const SEAL_SCALE = 2 ** 40;
const HOISTED_STEPS = Array.from({ length: 16 }, (_, i) => i + 1);
/** A timed batch repeats a fast op until it lasts about this long, so sub-millisecond ops are not timer noise. */
const MIN_BATCH_MS = 10;
const MAX_BATCH = 64;
/** node-seal's heap is a 4 GiB wasm32 memory: hold at most this many bytes of Galois keys at once. */
const SEAL_KEY_BUDGET_BYTES = 1.25 * 2 ** 30;

/** Uniform values in [-1, 1] from a seeded xorshift32: fixed benchmark inputs, not key material. */
function uniformInputs(count: number, seed: number): Float64Array {
  let state = seed >>> 0 || 1;
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = (state / 2 ** 32) * 2 - 1;
  }
  return out;
}

function log2MaxError(got: ArrayLike<number>, expected: ArrayLike<number>): number {
  check(
    got.length >= expected.length,
    () => `decoded ${got.length} slots: expected at least ${expected.length}`,
  );
  let max = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(got[i] - expected[i]);
    // NaN must not hide behind Math.max.
    if (!(e <= max)) max = e;
  }
  return Math.log2(max);
}

/** One side of a timed op: `run` is timed, `free` releases its result untimed. */
interface Side<T> {
  run: () => T;
  free: (result: T) => void;
}

function side<T>(run: () => T, free: (result: T) => void): Side<T> {
  return { run, free };
}

/** Mean ms per call over `count` back-to-back calls; results are freed after the clock stops. */
function timeBatch<T>(work: Side<T>, count: number): number {
  const results: T[] = new Array(count);
  const start = performance.now();
  for (let i = 0; i < count; i++) results[i] = work.run();
  const ms = (performance.now() - start) / count;
  for (const r of results) work.free(r);
  return ms;
}

function batchSize(ms: number): number {
  return Math.max(1, Math.min(MAX_BATCH, Math.ceil(MIN_BATCH_MS / Math.max(ms, 1e-6))));
}

/**
 * Warm-up (one call each), then `reps` rounds of HomE then node-seal; each round times a batch sized so that it
 * lasts ≈ MIN_BATCH_MS. Returns the median ms per call of each side.
 */
function timePair<H, S>(reps: number, home: Side<H>, peer: Side<S>): { homeMs: number; peerMs: number } {
  let homeEstimate = timeBatch(home, 1);
  let peerEstimate = timeBatch(peer, 1);
  // A first call pays for JIT and cached tables: estimate fast ops again before sizing their batches.
  if (homeEstimate < MIN_BATCH_MS) homeEstimate = Math.min(homeEstimate, timeBatch(home, 1));
  if (peerEstimate < MIN_BATCH_MS) peerEstimate = Math.min(peerEstimate, timeBatch(peer, 1));
  const homeBatch = batchSize(homeEstimate);
  const peerBatch = batchSize(peerEstimate);
  const homeTimes: number[] = [];
  const peerTimes: number[] = [];
  for (let r = 0; r < reps; r++) {
    homeTimes.push(timeBatch(home, homeBatch));
    peerTimes.push(timeBatch(peer, peerBatch));
  }
  return { homeMs: median(homeTimes), peerMs: median(peerTimes) };
}

function round(value: number, digits: number): number {
  return Number(value.toPrecision(digits));
}

function roundError(value: number | null): number | null {
  return value === null || !Number.isFinite(value) ? null : Math.round(value * 100) / 100;
}

function sealKeyBytes(logN: number, primes: number): number {
  // One key switching key: (primes − 1) components, each two polynomials over all primes, 8 bytes a coefficient.
  return (primes - 1) * 2 * primes * 2 ** logN * 8;
}

/**
 * `home bench ckks`: every CKKS operation at the top level, HomE (preset PN13QP218 / PN14QP438 / PN15QP881)
 * against node-seal 6.0.3 at the same ring degree and within ±12 bits of the same modulus (scale 2^40, SEAL's
 * usual), interleaved in one process. Prints one JSON line per op (median ms, ratio peer/HomE, log2 of the max abs
 * error over all slots for inputs uniform in [-1, 1]), one per serialized size, and a summary line; returns them.
 *
 * @example
 * ```ts
 * const records = await runCkksBench({ logN: 13, reps: 1, write: () => {} });
 * records.at(-1); // { suite: 'ckks', summary: true, min_ratio: …, … }
 * ```
 */
export async function runCkksBench(options: CkksBenchOptions): Promise<CkksBenchRecord[]> {
  const { logN, reps } = options;
  const pairing = PAIRINGS[logN];
  if (!Number.isInteger(logN) || !pairing) {
    throw new InvalidArgumentError(`logN = ${logN}: expected 13, 14 or 15`);
  }
  assertInteger(reps, 'reps', 1, 1000);
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const records: CkksBenchRecord[] = [];
  const emit = (record: CkksBenchRecord) => {
    records.push(record);
    write(JSON.stringify(record));
  };
  const started = performance.now();

  // ---- HomE setup (untimed)
  const params = Parameters.create(pairing.preset);
  const peerBits = pairing.sealBits.reduce((a, b) => a + b, 0);
  const bound = maxLogQP128(logN) ?? 0;
  check(
    Math.abs(peerBits - Math.round(params.logQP)) <= 12 && peerBits <= bound,
    () =>
      `node-seal modulus ${peerBits} bits: expected within ±12 of HomE's ${params.logQP.toFixed(1)} and ≤ ${bound}`,
  );
  const logQP = round(params.logQP, 5);
  const keygen = new KeyGenerator(params);
  const secretKey = keygen.generateSecretKey();
  const publicKey = keygen.generatePublicKey(secretKey);
  const evaluationKeys = keygen.generateEvaluationKeys(secretKey, { rotations: HOISTED_STEPS });
  const encoder = new Encoder(params);
  const encryptor = new Encryptor(params, publicKey);
  const decryptor = new Decryptor(params, secretKey);
  const evaluator = new Evaluator(params, evaluationKeys);

  // ---- node-seal setup (untimed)
  const peer = await SealCkks.create(logN, pairing.sealBits, SEAL_SCALE);
  check(peer.slots === params.slots, () => `node-seal slots ${peer.slots}: expected ${params.slots}`);
  const none = peer.noCompression;
  const peerRotationKey = peer.galoisKeys([1]);

  const slots = params.slots;
  const x = uniformInputs(slots, 0x9e3779b9);
  const y = uniformInputs(slots, 0x85ebca6b);
  const sum = x.map((v, i) => v + y[i]);
  const product = x.map((v, i) => v * y[i]);
  const rotatedBy = (steps: number) => x.map((_, i) => x[(i + steps) % slots]);

  // Fixed operands at the top level.
  const homePtX = encoder.encodeNew(x);
  const homePtY = encoder.encodeNew(y);
  const homeCtX = encryptor.encryptNew(homePtX);
  const homeCtY = encryptor.encryptNew(homePtY);
  const peerPtX = peer.encoder.encode(x, SEAL_SCALE) as SealPlainText;
  const peerPtY = peer.encoder.encode(y, SEAL_SCALE) as SealPlainText;
  const peerCtX = peer.encryptor.encrypt(peerPtX) as SealCipherText;
  const peerCtY = peer.encryptor.encrypt(peerPtY) as SealCipherText;

  const homeValues = (ct: Ciphertext) => {
    const pt = decryptor.decryptNew(ct);
    const values = encoder.decode(pt);
    pt.dispose();
    return values;
  };
  const peerValues = (ct: SealCipherText) => {
    const pt = peer.decryptor.decrypt(ct) as SealPlainText;
    const values = peer.encoder.decode(pt);
    pt.delete();
    return values;
  };
  const freeHomeCt = (ct: Ciphertext) => ct.dispose();
  const freeHomePt = (pt: Plaintext) => pt.dispose();
  const freePeer = (object: { delete(): void }) => object.delete();
  const ignore = () => {};

  const emitOp = <H, S>(
    op: string,
    home: Side<H>,
    peerSide: Side<S>,
    errors: { home: number | null; peer: number | null },
    bytes?: { home: number; peer: number },
  ) => {
    const { homeMs, peerMs } = timePair(reps, home, peerSide);
    emit({
      suite: 'ckks',
      op,
      logN,
      logQP,
      home_ms: round(homeMs, 4),
      peer: 'node-seal',
      peer_ms: round(peerMs, 4),
      ratio: round(peerMs / homeMs, 4),
      home_log2_err: roundError(errors.home),
      peer_log2_err: roundError(errors.peer),
      // Serialization: the bytes of the object and the rate (GB/s, one core) of each side.
      ...(bytes
        ? {
            home_bytes: bytes.home,
            peer_bytes: bytes.peer,
            home_gb_per_s: round(bytes.home / homeMs / 1e6, 3),
            peer_gb_per_s: round(bytes.peer / peerMs / 1e6, 3),
          }
        : {}),
    });
  };

  // ---- encode / decode
  {
    const home = encoder.encodeNew(x);
    const peerPt = peer.encoder.encode(x, SEAL_SCALE) as SealPlainText;
    const errors = {
      home: log2MaxError(encoder.decode(home), x),
      peer: log2MaxError(peer.encoder.decode(peerPt), x),
    };
    home.dispose();
    peerPt.delete();
    emitOp(
      'encode',
      side(() => encoder.encodeNew(x), freeHomePt),
      side(() => peer.encoder.encode(x, SEAL_SCALE) as SealPlainText, freePeer),
      errors,
    );
    emitOp(
      'decode',
      side(() => encoder.decode(homePtX), ignore),
      side(() => peer.encoder.decode(peerPtX), ignore),
      errors,
    );
  }

  // ---- encrypt / decrypt (public key)
  {
    const errors = { home: log2MaxError(homeValues(homeCtX), x), peer: log2MaxError(peerValues(peerCtX), x) };
    emitOp(
      'encrypt',
      side(() => encryptor.encryptNew(homePtX), freeHomeCt),
      side(() => peer.encryptor.encrypt(peerPtX) as SealCipherText, freePeer),
      errors,
    );
    emitOp(
      'decrypt',
      side(() => decryptor.decryptNew(homeCtX), freeHomePt),
      side(() => peer.decryptor.decrypt(peerCtX) as SealPlainText, freePeer),
      errors,
    );
  }

  // ---- add
  {
    const home = evaluator.addNew(homeCtX, homeCtY);
    const peerCt = peer.evaluator.add(peerCtX, peerCtY) as SealCipherText;
    const errors = { home: log2MaxError(homeValues(home), sum), peer: log2MaxError(peerValues(peerCt), sum) };
    home.dispose();
    peerCt.delete();
    emitOp(
      'add',
      side(() => evaluator.addNew(homeCtX, homeCtY), freeHomeCt),
      side(() => peer.evaluator.add(peerCtX, peerCtY) as SealCipherText, freePeer),
      errors,
    );
  }

  // ---- multiply by a plaintext (no rescale)
  {
    const home = evaluator.mulNew(homeCtX, homePtY);
    const peerCt = peer.evaluator.multiplyPlain(peerCtX, peerPtY) as SealCipherText;
    const errors = {
      home: log2MaxError(homeValues(home), product),
      peer: log2MaxError(peerValues(peerCt), product),
    };
    home.dispose();
    peerCt.delete();
    emitOp(
      'multiply_plain',
      side(() => evaluator.mulNew(homeCtX, homePtY), freeHomeCt),
      side(() => peer.evaluator.multiplyPlain(peerCtX, peerPtY) as SealCipherText, freePeer),
      errors,
    );
  }

  // ---- multiply + relinearize + rescale
  {
    const homeMul = () => {
      const ct = evaluator.mulRelinNew(homeCtX, homeCtY);
      evaluator.rescale(ct, ct);
      return ct;
    };
    const peerMul = () => {
      const ct = peer.evaluator.multiply(peerCtX, peerCtY) as SealCipherText;
      peer.evaluator.relinearize(ct, peer.relinKeys, ct);
      peer.evaluator.rescaleToNext(ct, ct);
      return ct;
    };
    const home = homeMul();
    const peerCt = peerMul();
    const errors = {
      home: log2MaxError(homeValues(home), product),
      peer: log2MaxError(peerValues(peerCt), product),
    };
    home.dispose();
    peerCt.delete();
    emitOp('multiply_relin_rescale', side(homeMul, freeHomeCt), side(peerMul, freePeer), errors);
  }

  // ---- rotate by 1
  {
    const expected = rotatedBy(1);
    const home = evaluator.rotateNew(homeCtX, 1);
    const peerCt = peer.evaluator.rotateVector(peerCtX, 1, peerRotationKey) as SealCipherText;
    const errors = {
      home: log2MaxError(homeValues(home), expected),
      peer: log2MaxError(peerValues(peerCt), expected),
    };
    home.dispose();
    peerCt.delete();
    emitOp(
      'rotate',
      side(() => evaluator.rotateNew(homeCtX, 1), freeHomeCt),
      side(() => peer.evaluator.rotateVector(peerCtX, 1, peerRotationKey) as SealCipherText, freePeer),
      errors,
    );
  }

  // ---- one Galois key (rotation by 1)
  {
    const element = galoisElementForRotation(1, logN);
    emitOp(
      'galois_keygen',
      side(
        () => keygen.generateGaloisKey(secretKey, element),
        (key) => key.key.dispose(),
      ),
      side(() => peer.galoisKeys([1]), freePeer),
      { home: null, peer: null },
    );
  }

  // ---- ciphertext serialization (SEAL: saveArray without compression; both give bytes)
  {
    const homeBytes = serializeCiphertext(homeCtX);
    const peerBytes = peerCtX.saveArray(none);
    const homeLoaded = deserializeCiphertext(params, homeBytes);
    const peerLoaded = peer.cipherText();
    peerLoaded.loadArray(peer.context, peerBytes);
    const errors = {
      home: log2MaxError(homeValues(homeLoaded), x),
      peer: log2MaxError(peerValues(peerLoaded), x),
    };
    homeLoaded.dispose();
    peerLoaded.delete();
    const bytes = { home: homeBytes.length, peer: peerBytes.length };
    // A fresh array per call (what a caller keeping each result gets), and into one reused array (what a server
    // writing its results into a response does: writeCiphertext); the peer's saveArray always allocates.
    emitOp(
      'serialize',
      side(() => serializeCiphertext(homeCtX), ignore),
      side(() => peerCtX.saveArray(none), ignore),
      { home: null, peer: null },
      bytes,
    );
    const reused = new Uint8Array(homeBytes.length);
    emitOp(
      'serialize_into',
      side(() => writeCiphertext(homeCtX, reused, 0), ignore),
      side(() => peerCtX.saveArray(none), ignore),
      { home: null, peer: null },
      bytes,
    );
    emitOp(
      'deserialize',
      side(() => deserializeCiphertext(params, homeBytes), freeHomeCt),
      side(() => {
        const ct = peer.cipherText();
        ct.loadArray(peer.context, peerBytes);
        return ct;
      }, freePeer),
      errors,
      bytes,
    );
  }

  // ---- 16 rotations (steps 1 … 16): HomE hoisted (one decomposition), node-seal one rotation at a time
  {
    const primes = pairing.sealBits.length;
    const perBatch = Math.max(1, Math.floor(SEAL_KEY_BUDGET_BYTES / sealKeyBytes(logN, primes)));
    const batches: number[][] = [];
    for (let i = 0; i < HOISTED_STEPS.length; i += perBatch)
      batches.push(HOISTED_STEPS.slice(i, i + perBatch));
    // With every key resident, the keys are made once; otherwise each batch's keys are made and freed around
    // its rotations, and only the rotations are timed.
    const resident = batches.length === 1 ? peer.galoisKeys(HOISTED_STEPS) : undefined;

    const homeErrors = evaluator.rotateHoistedNew(homeCtX, HOISTED_STEPS);
    let homeError = Number.NEGATIVE_INFINITY;
    for (const [steps, ct] of homeErrors) {
      homeError = Math.max(homeError, log2MaxError(homeValues(ct), rotatedBy(steps)));
      ct.dispose();
    }
    let peerError = Number.NEGATIVE_INFINITY;
    const peerTimes: number[] = [];
    const homeTimes: number[] = [];
    const homeRun = () => evaluator.rotateHoistedNew(homeCtX, HOISTED_STEPS);
    const homeFree = (results: Map<number, Ciphertext>) => {
      for (const ct of results.values()) ct.dispose();
    };
    const peerRound = (measureError: boolean): number => {
      let total = 0;
      for (const batch of batches) {
        const keys = resident ?? peer.galoisKeys(batch);
        for (const steps of batch) {
          const start = performance.now();
          const ct = peer.evaluator.rotateVector(peerCtX, steps, keys) as SealCipherText;
          total += performance.now() - start;
          if (measureError) peerError = Math.max(peerError, log2MaxError(peerValues(ct), rotatedBy(steps)));
          ct.delete();
        }
        if (!resident) keys.delete();
      }
      return total;
    };
    // One untimed round each first; node-seal's doubles as its precision check.
    homeFree(homeRun());
    peerRound(true);
    for (let r = 0; r < reps; r++) {
      homeTimes.push(timeBatch(side(homeRun, homeFree), 1));
      peerTimes.push(peerRound(false));
    }
    resident?.delete();
    const peerMs = median(peerTimes);
    const homeMs = median(homeTimes);
    emit({
      suite: 'ckks',
      op: 'rotate_hoisted_16',
      logN,
      logQP,
      home_ms: round(homeMs, 4),
      peer: 'node-seal',
      peer_ms: round(peerMs, 4),
      ratio: round(peerMs / homeMs, 4),
      home_log2_err: roundError(homeError),
      peer_log2_err: roundError(peerError),
    });
  }

  // ---- serialized sizes (no compression on either side)
  {
    const peerCtBytes = peerCtX.saveArray(none).byteLength;
    const seededCt = peer.encryptor.encryptSymmetricSerializable(peerPtX);
    const peerSeededCtBytes = seededCt.saveArray(none).byteLength;
    seededCt.delete();
    const homeSymmetric = new SymmetricEncryptor(params, secretKey).encryptNew(homePtX);
    emit({
      suite: 'ckks',
      op: 'bytes_ciphertext',
      logN,
      home_bytes: serializeCiphertext(homeCtX).byteLength,
      home_seeded_bytes: serializeCiphertext(homeSymmetric, { seeded: true }).byteLength,
      peer_bytes: peerCtBytes,
      peer_seeded_bytes: peerSeededCtBytes,
    });
    homeSymmetric.dispose();

    const relin = evaluationKeys.relinearization;
    check(relin !== undefined, () => 'HomE evaluation keys without a relinearization key');
    const seededRelin = peer.keygen.createRelinKeysSerializable();
    emit({
      suite: 'ckks',
      op: 'bytes_relin_key',
      logN,
      home_bytes: serializeSwitchingKey(relin).byteLength,
      home_seeded_bytes: serializeSwitchingKey(relin, { seeded: true }).byteLength,
      peer_bytes: peer.relinKeys.saveArray(none).byteLength,
      peer_seeded_bytes: seededRelin.saveArray(none).byteLength,
    });
    seededRelin.delete();

    const homeGalois = evaluationKeys.galois.get(galoisElementForRotation(1, logN));
    check(homeGalois !== undefined, () => 'HomE evaluation keys without the rotation-by-1 key');
    const seededGalois = peer.keygen.createGaloisKeysSerializable(Int32Array.of(1));
    emit({
      suite: 'ckks',
      op: 'bytes_galois_key',
      logN,
      home_bytes: serializeGaloisKey(homeGalois).byteLength,
      home_seeded_bytes: serializeGaloisKey(homeGalois, { seeded: true }).byteLength,
      peer_bytes: peerRotationKey.saveArray(none).byteLength,
      peer_seeded_bytes: seededGalois.saveArray(none).byteLength,
    });
    seededGalois.delete();
  }

  // ---- summary
  let minRatio = Number.POSITIVE_INFINITY;
  let minOp = '';
  for (const record of records) {
    if ('ratio' in record && record.ratio < minRatio) {
      minRatio = record.ratio;
      minOp = record.op;
    }
  }
  emit({
    suite: 'ckks',
    summary: true,
    logN,
    logQP,
    home_params: params.toString(),
    peer: 'node-seal',
    peer_version: peer.seal.Version,
    peer_logQP: round(peer.logQP, 5),
    peer_coeff_modulus_bits: [...pairing.sealBits],
    peer_scale_log2: Math.log2(SEAL_SCALE),
    reps,
    min_ratio: minRatio,
    min_ratio_op: minOp,
    seconds: round((performance.now() - started) / 1000, 4),
  });

  for (const object of [peerCtX, peerCtY, peerPtX, peerPtY, peerRotationKey]) object.delete();
  peer.dispose();
  for (const object of [homeCtX, homeCtY, homePtX, homePtY]) object.dispose();
  for (const key of evaluationKeys.galois.values()) key.key.dispose();
  evaluationKeys.relinearization?.dispose();
  return records;
}
