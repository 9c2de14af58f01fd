/**
 * The two executors of an {@link HeProgram}: a float64 simulator (same packing, same instructions and polynomial
 * approximations, no encryption) and the encrypted executor, split into the client that holds the secret key
 * (key generation, packing + encryption of inputs, decryption + unpacking of outputs) and the server that holds
 * only evaluation keys and runs the instructions.
 */
import { Decryptor, Encryptor, SymmetricEncryptor } from '../ckks/encryptor.ts';
import { Encoder } from '../ckks/encoder.ts';
import { Evaluator } from '../ckks/evaluator.ts';
import { type EvaluationKeys, KeyGenerator, type PublicKey, type SecretKey } from '../ckks/keys.ts';
import type { Ciphertext, Plaintext } from '../ckks/objects.ts';
import { Parameters } from '../ckks/parameters.ts';
import { Prng } from '../ring/prng.ts';
import { assertInteger, check, describe } from '../util/assert.ts';
import { InvalidArgumentError, MismatchError } from '../util/errors.ts';
import {
  assertProgram,
  type HeInstruction,
  type HeProgram,
  type InputDescriptor,
  type PlaintextDescriptor,
  plaintextLastUse,
} from './program.ts';

/**
 * Called while a program runs with the instructions done so far and the total.
 *
 * @example
 * ```ts
 * const onProgress: ProgressCallback = (done, total) => bar.update(done / total);
 * ```
 */
export type ProgressCallback = (done: number, total: number) => void;

function imageSize(program: HeProgram): number {
  return program.inputShape.reduce((a, b) => a * b, 1);
}

function outputSize(program: HeProgram): number {
  return program.outputShape.reduce((a, b) => a * b, 1);
}

/**
 * Checks a batch of images against the program: length, finiteness and the input range it was compiled for.
 *
 * @throws InvalidArgumentError naming the image, element and value at fault.
 * @example
 * ```ts
 * checkImages(program, images, 100);
 * ```
 */
export function checkImages(program: HeProgram, images: ArrayLike<number>, count: number): void {
  assertProgram(program);
  assertInteger(count, 'count', 1);
  const size = imageSize(program);
  if (images === null || typeof images !== 'object' || typeof images.length !== 'number') {
    throw new InvalidArgumentError(
      `images = ${describe(images)}: expected a Float64Array of ${count} × ${size}`,
    );
  }
  check(
    images.length === count * size,
    () =>
      `images.length = ${images.length}: expected ${count} images × ${size} values ` +
      `(per-image shape [${program.inputShape.join(', ')}])`,
  );
  const [lo, hi] = program.inputRange;
  for (let i = 0; i < images.length; i++) {
    const v = images[i];
    if (!Number.isFinite(v)) {
      throw new InvalidArgumentError(
        `image ${Math.floor(i / size)} element ${i % size} = ${describe(v)}: expected a finite number`,
      );
    }
    if (v < lo || v > hi) {
      throw new InvalidArgumentError(
        `image ${Math.floor(i / size)} element ${i % size} = ${v}: outside the input range [${lo}, ${hi}] the ` +
          'program was compiled for (raw pixels? apply the input scale, e.g. 1/255 or 1/256)',
      );
    }
  }
}

/** Slot vectors of the input ciphertexts of one pass (batch packing): input id → values. */
function packBatch(program: HeProgram, images: ArrayLike<number>, first: number, count: number) {
  const size = imageSize(program);
  const permutation = program.inputPermutation;
  const packed = new Map<number, Float64Array>();
  for (const input of program.inputs) {
    const element = input.element ?? 0;
    const source = permutation ? permutation[element] : element;
    const values = new Float64Array(count);
    for (let s = 0; s < count; s++) values[s] = images[(first + s) * size + source];
    packed.set(input.id, values);
  }
  return packed;
}

/** Slot vectors of the inputs of one image (latency packing). */
function packLatency(program: HeProgram, images: ArrayLike<number>, image: number) {
  const size = imageSize(program);
  const permutation = program.inputPermutation;
  const packed = new Map<number, Float64Array>();
  for (const input of program.inputs) {
    if (input.owner === 'model') continue;
    const layout = input.slotElements ?? [];
    const values = new Float64Array(input.replicate ? program.slots : layout.length);
    for (let i = 0; i < values.length; i++) {
      const element = layout[i % layout.length];
      if (element >= 0) values[i] = images[image * size + (permutation ? permutation[element] : element)];
    }
    packed.set(input.id, values);
  }
  return packed;
}

/** Writes one pass's decoded output slots into the logits (count × outputs). */
function unpack(
  program: HeProgram,
  decoded: Map<number, ArrayLike<number>>,
  logits: Float64Array,
  first: number,
  count: number,
): void {
  const classes = outputSize(program);
  for (const output of program.outputs) {
    const values = decoded.get(output.id);
    if (!values) throw new MismatchError(`output ${output.id} missing from the results`);
    if (program.packing === 'batch') {
      for (let s = 0; s < count; s++) logits[(first + s) * classes + (output.element ?? 0)] = values[s];
    } else {
      (output.slotOfElement ?? []).forEach((slot, j) => {
        logits[first * classes + j] = values[slot];
      });
    }
  }
}

function passes(program: HeProgram, count: number): { first: number; count: number }[] {
  const per = program.packing === 'batch' ? program.batchSize : 1;
  const list: { first: number; count: number }[] = [];
  for (let first = 0; first < count; first += per) list.push({ first, count: Math.min(per, count - first) });
  return list;
}

/** The slot values of an encrypted weight input (its constants repeated over all slots). */
function weightSlots(program: HeProgram, w: InputDescriptor): Float64Array {
  return plaintextSlots(program, {
    id: w.id,
    level: w.level,
    scale: w.scale,
    bytes: w.bytes,
    offset: w.offset ?? 0,
    length: w.length ?? 1,
    replicate: true,
  });
}

/** The slot values of a plaintext weight (tiled over all slots when it is replicated). */
function plaintextSlots(program: HeProgram, p: PlaintextDescriptor): Float64Array {
  const source = program.constants.subarray(p.offset, p.offset + p.length);
  const v = new Float64Array(program.slots);
  if (p.replicate) for (let i = 0; i < v.length; i++) v[i] = source[i % p.length];
  else v.set(source);
  return v;
}

// -----------------------------------------------------------------------------------------------------------
// Simulator

function rotateVector(x: Float64Array, steps: number): Float64Array {
  const n = x.length;
  const out = new Float64Array(n);
  const k = ((steps % n) + n) % n;
  for (let i = 0; i < n; i++) out[i] = x[(i + k) % n];
  return out;
}

/**
 * Runs a program on float64 slot vectors: exactly the instructions, packing and polynomials of the encrypted run,
 * without encryption or noise. Returns `count × outputs` values.
 *
 * @throws InvalidArgumentError for images of the wrong size or range.
 * @example
 * ```ts
 * const logits = simulateProgram(program, images, 256);
 * ```
 */
export function simulateProgram(program: HeProgram, images: ArrayLike<number>, count: number): Float64Array {
  checkImages(program, images, count);
  const logits = new Float64Array(count * outputSize(program));
  // Rotations mix slots: those programs need the full slot vector; batch programs only the images present.
  const full = program.packing === 'latency' || program.rotations.length > 0;
  const plaintexts = program.plaintexts.map((p) => plaintextSlots(program, p));
  for (const pass of passes(program, count)) {
    const packed =
      program.packing === 'batch'
        ? packBatch(program, images, pass.first, pass.count)
        : packLatency(program, images, pass.first);
    const length = full ? program.slots : pass.count;
    const values = new Map<number, Float64Array>();
    for (const w of program.inputs) if (w.owner === 'model') values.set(w.id, weightSlots(program, w));
    for (const [id, v] of packed) {
      const x = new Float64Array(length);
      x.set(v.subarray(0, length));
      values.set(id, x);
    }
    const get = (id: number) => {
      const v = values.get(id);
      if (!v) throw new MismatchError(`simulator: value ${id} is not alive`);
      return v;
    };
    for (const ins of program.instructions)
      simulateInstruction(program, ins, get, values, plaintexts, length);
    const decoded = new Map<number, Float64Array>();
    for (const o of program.outputs) decoded.set(o.id, get(o.id));
    unpack(program, decoded, logits, pass.first, pass.count);
  }
  return logits;
}

function simulateInstruction(
  program: HeProgram,
  ins: HeInstruction,
  get: (id: number) => Float64Array,
  values: Map<number, Float64Array>,
  plaintexts: Float64Array[],
  length: number,
): void {
  const c = ins.constant === undefined ? 0 : program.constants[ins.constant];
  const set = (v: Float64Array) => values.set(ins.out[0], v);
  switch (ins.op) {
    case 'free':
      for (const id of ins.args) values.delete(id);
      return;
    case 'mul_const': {
      const x = get(ins.args[0]);
      const y = new Float64Array(length);
      for (let i = 0; i < length; i++) y[i] = x[i] * c;
      set(y);
      return;
    }
    case 'mul_then_add': {
      const x = get(ins.args[0]);
      const acc = get(ins.args[1]);
      for (let i = 0; i < length; i++) acc[i] += x[i] * c;
      return;
    }
    case 'add_const': {
      const x = get(ins.args[0]);
      const y = new Float64Array(length);
      for (let i = 0; i < length; i++) y[i] = x[i] + c;
      set(y);
      return;
    }
    case 'mul_plain':
    case 'add_plain': {
      const x = get(ins.args[0]);
      const p = plaintexts[ins.plaintext ?? 0];
      const y = new Float64Array(length);
      if (ins.op === 'mul_plain') for (let i = 0; i < length; i++) y[i] = x[i] * p[i];
      else for (let i = 0; i < length; i++) y[i] = x[i] + p[i];
      set(y);
      return;
    }
    case 'mul_ct':
    case 'square':
    case 'add':
    case 'sub': {
      const x = get(ins.args[0]);
      const z = ins.op === 'square' ? x : get(ins.args[1]);
      const y = new Float64Array(length);
      if (ins.op === 'add') for (let i = 0; i < length; i++) y[i] = x[i] + z[i];
      else if (ins.op === 'sub') for (let i = 0; i < length; i++) y[i] = x[i] - z[i];
      else for (let i = 0; i < length; i++) y[i] = x[i] * z[i];
      set(y);
      return;
    }
    case 'relinearize':
    case 'rescale':
    case 'drop_level':
    case 'match_scale':
      set(Float64Array.from(get(ins.args[0])));
      return;
    case 'rotate':
    case 'rotate_hoisted': {
      const x = get(ins.args[0]);
      (ins.steps ?? []).forEach((s, k) => {
        values.set(ins.out[k], rotateVector(x, s));
      });
      return;
    }
  }
}

// -----------------------------------------------------------------------------------------------------------
// One instruction over resolved operands (shared by the server and the tiered runtime)

/**
 * Where {@link evaluateInstruction} finds its operands and puts its results. The server resolves values from its
 * own map; the tiered runtime (`src/runtime`) resolves them from the objects its store holds in memory right now.
 *
 * @example
 * ```ts
 * const operands: InstructionOperands = { value: (id) => live.get(id)!, plaintext: (i) => weights[i], define: (id, ct) => live.set(id, ct) };
 * ```
 */
export interface InstructionOperands {
  /** The ciphertext value `id` (an input, an encrypted weight or an earlier result). */
  value(id: number): Ciphertext;
  /** The encoded plaintext weight `index` of the program. */
  plaintext(index: number): Plaintext;
  /** Receives result `id` (the caller owns it from now on). */
  define(id: number, ct: Ciphertext): void;
}

/**
 * Evaluates one non-`free` instruction: reads its operands through `operands`, runs it on `evaluator` (which must
 * hold the evaluation keys the instruction lists) and hands each result to `operands.define`. `mul_then_add`
 * updates its accumulator in place and defines nothing. This is the one definition of every op's semantics: the
 * server and the tiered runtime both call it, so their results are bit-identical.
 *
 * @throws InvalidArgumentError for a `free` (the caller owns lifetimes); the evaluator's typed errors otherwise.
 * @example
 * ```ts
 * for (const ins of program.instructions) if (ins.op !== 'free') evaluateInstruction(program, ins, evaluator, operands);
 * ```
 */
export function evaluateInstruction(
  program: HeProgram,
  ins: HeInstruction,
  evaluator: Evaluator,
  operands: InstructionOperands,
): void {
  const ev = evaluator;
  const get = operands.value;
  const set = (ct: Ciphertext) => operands.define(ins.out[0], ct);
  const c = ins.constant === undefined ? 0 : program.constants[ins.constant];
  switch (ins.op) {
    case 'free':
      throw new InvalidArgumentError(
        'evaluateInstruction: free is handled by the caller (it owns lifetimes)',
      );
    case 'mul_const':
      set(ev.mulNew(get(ins.args[0]), c, ins.constantScale));
      return;
    case 'mul_then_add':
      ev.mulThenAdd(get(ins.args[0]), c, get(ins.args[1]), ins.constantScale);
      return;
    case 'add_const':
      set(ev.addNew(get(ins.args[0]), c));
      return;
    case 'mul_plain':
      set(ev.mulNew(get(ins.args[0]), operands.plaintext(ins.plaintext ?? 0)));
      return;
    case 'add_plain':
      set(ev.addNew(get(ins.args[0]), operands.plaintext(ins.plaintext ?? 0)));
      return;
    case 'mul_ct':
      set(ev.mulNew(get(ins.args[0]), get(ins.args[1])));
      return;
    case 'square': {
      const x = get(ins.args[0]);
      set(ev.mulNew(x, x));
      return;
    }
    case 'add':
      set(ev.addNew(get(ins.args[0]), get(ins.args[1])));
      return;
    case 'sub':
      set(ev.subNew(get(ins.args[0]), get(ins.args[1])));
      return;
    case 'relinearize':
      set(ev.relinearizeNew(get(ins.args[0])));
      return;
    case 'rescale':
      set(ev.rescaleNew(get(ins.args[0])));
      return;
    case 'drop_level':
      set(ev.dropLevelNew(get(ins.args[0]), ins.level));
      return;
    case 'match_scale':
      set(ev.matchLevelAndScaleNew(get(ins.args[0]), ins.level, ins.scale));
      return;
    case 'rotate':
      set(ev.rotateNew(get(ins.args[0]), (ins.steps ?? [0])[0]));
      return;
    case 'rotate_hoisted': {
      const steps = ins.steps ?? [];
      const rotated = ev.rotateHoistedNew(get(ins.args[0]), steps);
      steps.forEach((s, k) => {
        const r = rotated.get(s);
        if (r) operands.define(ins.out[k], k > 0 && steps.indexOf(s) < k ? r.copy() : r);
      });
      return;
    }
  }
}

/**
 * Encodes plaintext weight `index` of `program` at its level and scale (what the server does once at setup).
 *
 * @example
 * ```ts
 * const pt = encodePlaintextWeight(program, new Encoder(params), 0);
 * ```
 */
export function encodePlaintextWeight(program: HeProgram, encoder: Encoder, index: number): Plaintext {
  const p = program.plaintexts[index];
  if (!p) throw new InvalidArgumentError(`plaintext ${index}: the program has ${program.plaintexts.length}`);
  return encoder.encodeNew(plaintextSlots(program, p), p.level, p.scale);
}

// -----------------------------------------------------------------------------------------------------------
// Encrypted execution: client and server

/**
 * Wall-clock seconds per phase.
 *
 * @example
 * ```ts
 * console.log(`evaluate ${timings.evaluate.toFixed(1)} s`);
 * ```
 */
export interface PhaseTimings {
  keygen: number;
  /** The model owner encrypting the weights (encrypted-weight programs). */
  encryptWeights: number;
  /** Server setup: encoding the plaintext weights once. */
  setup: number;
  encrypt: number;
  evaluate: number;
  decrypt: number;
}

/**
 * The data owner's side: generates the keys, packs and encrypts images, decrypts and unpacks the results. The
 * secret key never leaves it; the server gets {@link InferenceClient.evaluationKeys} only.
 *
 * @example
 * ```ts
 * const client = new InferenceClient(program);
 * const server = new InferenceServer(program, client.evaluationKeys);
 * const encrypted = client.encryptPass(images, 0, 100);
 * const logits = client.decryptPass(server.run(encrypted), 100);
 * ```
 */
export class InferenceClient {
  readonly program: HeProgram;
  readonly params: Parameters;
  readonly evaluationKeys: EvaluationKeys;
  /** For a model owner who encrypts the weights (programs with encrypted weights only). */
  readonly publicKey: PublicKey | undefined;
  /** Seconds spent generating keys. */
  readonly keygenSeconds: number;
  readonly #secretKey: SecretKey;
  readonly #encoder: Encoder;
  readonly #encryptor: SymmetricEncryptor;
  readonly #decryptor: Decryptor;
  readonly #prng: Prng;

  /**
   * @param options.seed - a 32-byte seed for reproducible keys and encryptions (tests only; default fresh
   *   randomness from `crypto.getRandomValues`).
   */
  constructor(program: HeProgram, options: { seed?: Uint8Array } = {}) {
    assertProgram(program);
    this.program = program;
    this.params = Parameters.create(program.parameters);
    this.#prng = options.seed ? Prng.fromSeed(options.seed) : Prng.fresh();
    const start = performance.now();
    const keygen = new KeyGenerator(this.params, this.#prng.fork(1));
    this.#secretKey = keygen.generateSecretKey();
    this.evaluationKeys = keygen.generateEvaluationKeys(this.#secretKey, {
      relinearization: program.relinearization,
      rotations: program.rotations,
    });
    this.publicKey = program.inputs.some((i) => i.owner === 'model')
      ? keygen.generatePublicKey(this.#secretKey)
      : undefined;
    this.keygenSeconds = (performance.now() - start) / 1000;
    this.#encoder = new Encoder(this.params);
    this.#encryptor = new SymmetricEncryptor(this.params, this.#secretKey);
    this.#decryptor = new Decryptor(this.params, this.#secretKey);
  }

  #counter = 0;

  /**
   * Packs and encrypts images `first … first+count−1` (count ≤ the program's batch size; 1 in latency mode):
   * input id → ciphertext, each at the level and scale the program asks.
   */
  encryptPass(images: ArrayLike<number>, first: number, count: number): Map<number, Ciphertext> {
    const total = images.length / imageSize(this.program);
    assertInteger(first, 'first', 0, total - 1);
    assertInteger(count, 'count', 1, this.program.packing === 'batch' ? this.program.batchSize : 1);
    check(first + count <= total, () => `first + count = ${first + count}: expected ≤ ${total} images`);
    const packed =
      this.program.packing === 'batch'
        ? packBatch(this.program, images, first, count)
        : packLatency(this.program, images, first);
    const out = new Map<number, Ciphertext>();
    for (const input of this.program.inputs) {
      if (input.owner === 'model') continue;
      const pt = this.#encoder.encodeNew(packed.get(input.id) ?? [], input.level, input.scale);
      // Each ciphertext's uniform half and noise come from their own child streams (seed 32 bytes).
      const n = this.#counter++;
      const seed = new Uint8Array(32);
      this.#prng.fork(1_000_000 + 2 * n).nextBytes(seed);
      out.set(input.id, this.#encryptor.encryptNew(pt, seed, this.#prng.fork(1_000_001 + 2 * n)));
      pt.dispose();
    }
    return out;
  }

  /** Decrypts and unpacks one pass's outputs (disposing them): `count × outputs` values. */
  decryptPass(outputs: Map<number, Ciphertext>, count: number): Float64Array {
    const logits = new Float64Array(count * outputSize(this.program));
    const decoded = new Map<number, Float64Array>();
    for (const o of this.program.outputs) {
      const ct = outputs.get(o.id);
      if (!ct) throw new MismatchError(`output ${o.id}: missing from the server's results`);
      const pt: Plaintext = this.#decryptor.decryptNew(ct);
      decoded.set(o.id, this.#encoder.decode(pt));
      pt.dispose();
      ct.dispose();
    }
    unpack(this.program, decoded, logits, 0, count);
    return logits;
  }
}

/**
 * The model owner's side of encrypted-weight programs: encrypts every weight input under the client's public key,
 * so the server computes with weights it cannot read.
 *
 * @example
 * ```ts
 * const weights = new ModelOwner(program, client.publicKey!).encryptWeights();
 * server.loadWeights(weights);
 * ```
 */
export class ModelOwner {
  readonly program: HeProgram;
  readonly params: Parameters;
  readonly #encryptor: Encryptor;
  readonly #encoder: Encoder;
  readonly #prng: Prng;

  constructor(program: HeProgram, publicKey: PublicKey, options: { seed?: Uint8Array } = {}) {
    assertProgram(program);
    this.program = program;
    this.params = Parameters.create(program.parameters);
    this.#encryptor = new Encryptor(this.params, publicKey);
    this.#encoder = new Encoder(this.params);
    this.#prng = options.seed ? Prng.fromSeed(options.seed) : Prng.fresh();
  }

  /** The encrypted weights: input id → ciphertext, each at the level and scale the program asks. */
  encryptWeights(): Map<number, Ciphertext> {
    const out = new Map<number, Ciphertext>();
    for (const id of this.#weightIndex().keys()) out.set(id, this.encryptWeight(id));
    return out;
  }

  /**
   * Encrypts one weight input (by value id), the same ciphertext {@link ModelOwner.encryptWeights} makes for it: for
   * a caller that streams the weights (the tiered runtime writes each to a slow tier and frees it) instead of
   * holding all of them at once.
   *
   * @example
   * ```ts
   * const ct = owner.encryptWeight(program.inputs.find((i) => i.owner === 'model')!.id);
   * ```
   */
  encryptWeight(id: number): Ciphertext {
    const index = this.#weightIndex().get(id);
    if (index === undefined)
      throw new InvalidArgumentError(`input ${id}: not an encrypted weight of the program`);
    const w = this.program.inputs[index.input];
    const pt = this.#encoder.encodeNew(weightSlots(this.program, w), w.level, w.scale);
    const ct = this.#encryptor.encryptNew(pt, this.#prng.fork(index.stream));
    pt.dispose();
    return ct;
  }

  #weights: Map<number, { input: number; stream: number }> | undefined;

  /** Weight value id → its position among the program's inputs and its randomness stream (order of appearance). */
  #weightIndex(): Map<number, { input: number; stream: number }> {
    if (!this.#weights) {
      this.#weights = new Map();
      let stream = 0;
      this.program.inputs.forEach((w, input) => {
        if (w.owner === 'model') this.#weights!.set(w.id, { input, stream: stream++ });
      });
    }
    return this.#weights;
  }
}

/**
 * The server's side: evaluation keys only. Runs the program's instructions on the client's ciphertexts, disposing
 * each intermediate at its `free`, and returns the output ciphertexts.
 *
 * @example
 * ```ts
 * const server = new InferenceServer(program, evaluationKeys);
 * const outputs = server.run(inputs, (done, total) => bar.update(done / total));
 * ```
 */
export class InferenceServer {
  readonly program: HeProgram;
  readonly params: Parameters;
  readonly #evaluator: Evaluator;
  readonly #encoder: Encoder;
  /** Resident encoded plaintexts by index; `undefined` for those encoded on use. */
  #plaintexts: (Plaintext | undefined)[] | undefined;
  #weights: Map<number, Ciphertext> = new Map();
  readonly #lazyAll: boolean;
  readonly #lastUse: Int32Array;

  /**
   * With `lazyPlaintexts`, every plaintext weight is encoded right before the instruction that reads it and freed
   * after its last use in the pass, as the program already asks for those it marks `encodeOnUse`.
   */
  constructor(
    program: HeProgram,
    evaluationKeys: EvaluationKeys,
    options: { lazyPlaintexts?: boolean } = {},
  ) {
    assertProgram(program);
    this.program = program;
    this.params = Parameters.create(program.parameters);
    this.#evaluator = new Evaluator(this.params, evaluationKeys);
    this.#encoder = new Encoder(this.params);
    this.#lazyAll = options.lazyPlaintexts === true;
    this.#lastUse = plaintextLastUse(program);
  }

  /** Keeps the model owner's encrypted weights for every later run. */
  loadWeights(weights: Map<number, Ciphertext>): void {
    for (const w of this.program.inputs) {
      if (w.owner !== 'model') continue;
      const ct = weights.get(w.id);
      if (!ct) throw new MismatchError(`encrypted weight ${w.id}: missing`);
      this.#checkInput(w, ct);
      this.#weights.set(w.id, ct);
    }
  }

  #checkInput(input: InputDescriptor, ct: Ciphertext): void {
    if (ct.params !== this.params) {
      throw new MismatchError(`input ${input.id}: parameters ${ct.parametersId}, expected ${this.params.id}`);
    }
    if (ct.level !== input.level || Math.abs(ct.scale / input.scale - 1) > 2 ** -30) {
      throw new MismatchError(
        `input ${input.id}: level ${ct.level}, scale 2^${Math.log2(ct.scale).toFixed(3)}; expected level ` +
          `${input.level}, scale 2^${Math.log2(input.scale).toFixed(3)}`,
      );
    }
  }

  /** The resident plaintext weight vectors, encoded once at their level and scale (not those encoded on use). */
  #encodedWeights(): (Plaintext | undefined)[] {
    this.#plaintexts ??= this.program.plaintexts.map((p, i) =>
      this.#lazyAll || p.encodeOnUse === true
        ? undefined
        : encodePlaintextWeight(this.program, this.#encoder, i),
    );
    return this.#plaintexts;
  }

  /**
   * Executes the program. `inputs` (input id → ciphertext) are consumed: disposed at their last use.
   *
   * @throws MismatchError when an input is missing or at the wrong level/scale; MissingKeyError for a missing key.
   */
  run(inputs: Map<number, Ciphertext>, onProgress?: ProgressCallback): Map<number, Ciphertext> {
    const program = this.program;
    const values = new Map<number, Ciphertext>();
    const kept = new Set<number>();
    for (const input of program.inputs) {
      if (input.owner === 'model') {
        const w = this.#weights.get(input.id);
        if (!w) throw new MismatchError(`encrypted weight ${input.id}: missing (call loadWeights first)`);
        values.set(input.id, w);
        kept.add(input.id);
        continue;
      }
      const ct = inputs.get(input.id);
      if (!ct) throw new MismatchError(`input ${input.id} (element ${input.element}): missing ciphertext`);
      this.#checkInput(input, ct);
      values.set(input.id, ct);
    }
    const plaintexts = program.plaintexts.length > 0 ? this.#encodedWeights() : [];
    const get = (id: number): Ciphertext => {
      const v = values.get(id);
      if (!v) throw new MismatchError(`value ${id} is not alive`);
      return v;
    };
    // Plaintexts encoded on use live from their first reader to their last one in this pass.
    const transient = new Map<number, Plaintext>();
    const operands: InstructionOperands = {
      value: get,
      plaintext: (index) => {
        const resident = plaintexts[index];
        if (resident !== undefined) return resident;
        let pt = transient.get(index);
        if (pt === undefined) {
          pt = encodePlaintextWeight(program, this.#encoder, index);
          transient.set(index, pt);
        }
        return pt;
      },
      define: (id, ct) => {
        values.set(id, ct);
      },
    };
    const total = program.instructions.length;
    const every = Math.max(1, Math.floor(total / 200));
    try {
      for (let i = 0; i < total; i++) {
        const ins = program.instructions[i];
        if (ins.op === 'free') {
          for (const id of ins.args) {
            values.get(id)?.dispose();
            values.delete(id);
          }
        } else {
          evaluateInstruction(program, ins, this.#evaluator, operands);
          const index = ins.plaintext;
          if (index !== undefined && this.#lastUse[index] === i) {
            transient.get(index)?.dispose();
            transient.delete(index);
          }
        }
        if (onProgress && (i % every === 0 || i === total - 1)) onProgress(i + 1, total);
      }
    } catch (error) {
      for (const [id, v] of values) if (!kept.has(id)) v.dispose();
      throw error;
    } finally {
      for (const pt of transient.values()) pt.dispose();
    }
    const outputs = new Map<number, Ciphertext>();
    for (const o of program.outputs) {
      outputs.set(o.id, get(o.id));
      values.delete(o.id);
    }
    // Anything left (a program without frees) is released here; the encrypted weights stay for the next run.
    for (const [id, v] of values) if (!kept.has(id)) v.dispose();
    return outputs;
  }

  /**
   * Encodes the plaintext weights now (server setup; otherwise the first run does it). Returns the seconds spent.
   */
  prepare(): number {
    const start = performance.now();
    this.#encodedWeights();
    return (performance.now() - start) / 1000;
  }

  /** Releases the encoded plaintext weights and the encrypted weights. */
  dispose(): void {
    for (const p of this.#plaintexts ?? []) p?.dispose();
    this.#plaintexts = undefined;
    for (const w of this.#weights.values()) w.dispose();
    this.#weights.clear();
  }
}

/**
 * Result of {@link runEncrypted}.
 *
 * @example
 * ```ts
 * const { logits, timings, peakArenaBytes } = runEncrypted(program, images, 100);
 * ```
 */
export interface EncryptedRun {
  /** `count × outputs` decrypted values. */
  readonly logits: Float64Array;
  readonly timings: PhaseTimings;
  readonly passes: number;
  /** Largest arena use seen by the process so far (bytes). */
  readonly peakArenaBytes: number;
  /** Evaluation keys sent to the server: full and seeded size. */
  readonly keyBytes: number;
  readonly seededKeyBytes: number;
  /** Ciphertexts uploaded (seeded form: half of each input) and downloaded, all passes. */
  readonly uploadBytes: number;
  readonly downloadBytes: number;
}

/**
 * Client and server in one process: keygen, then per pass encrypt → evaluate → decrypt, timing each phase.
 *
 * @example
 * ```ts
 * const run = runEncrypted(program, images, 1000, { onProgress: (d, t) => {} });
 * argmaxRows(run.logits, 1000, 10);
 * ```
 */
export function runEncrypted(
  program: HeProgram,
  images: ArrayLike<number>,
  count: number,
  options: {
    seed?: Uint8Array;
    onProgress?: (imagesDone: number, fraction: number) => void;
    client?: InferenceClient;
    /** Encode every plaintext weight on use (see {@link InferenceServer}). */
    lazyPlaintexts?: boolean;
  } = {},
): EncryptedRun {
  checkImages(program, images, count);
  const client = options.client ?? new InferenceClient(program, { seed: options.seed });
  const server = new InferenceServer(program, client.evaluationKeys, {
    lazyPlaintexts: options.lazyPlaintexts,
  });
  const timings: PhaseTimings = {
    keygen: options.client ? 0 : client.keygenSeconds,
    encryptWeights: 0,
    setup: server.prepare(),
    encrypt: 0,
    evaluate: 0,
    decrypt: 0,
  };
  if (client.publicKey) {
    const start = performance.now();
    server.loadWeights(new ModelOwner(program, client.publicKey, { seed: options.seed }).encryptWeights());
    timings.encryptWeights = (performance.now() - start) / 1000;
  }
  const logits = new Float64Array(count * outputSize(program));
  const list = passes(program, count);
  let uploadBytes = 0;
  let downloadBytes = 0;
  try {
    for (const pass of list) {
      let t = performance.now();
      const inputs = client.encryptPass(images, pass.first, pass.count);
      for (const ct of inputs.values()) uploadBytes += ct.byteLength / 2;
      timings.encrypt += (performance.now() - t) / 1000;
      t = performance.now();
      const outputs = server.run(inputs, (done, total) =>
        options.onProgress?.(pass.first, (pass.first + (pass.count * done) / total) / count),
      );
      timings.evaluate += (performance.now() - t) / 1000;
      for (const ct of outputs.values()) downloadBytes += ct.byteLength;
      t = performance.now();
      logits.set(client.decryptPass(outputs, pass.count), pass.first * outputSize(program));
      timings.decrypt += (performance.now() - t) / 1000;
      options.onProgress?.(pass.first + pass.count, (pass.first + pass.count) / count);
    }
  } finally {
    server.dispose();
  }
  const relin = client.evaluationKeys.relinearization;
  let seededKeyBytes = relin?.seededByteLength ?? 0;
  for (const g of client.evaluationKeys.galois.values()) seededKeyBytes += g.key.seededByteLength;
  return {
    logits,
    timings,
    passes: list.length,
    peakArenaBytes: client.params.context.allocator.peakBytes,
    keyBytes: client.evaluationKeys.byteLength,
    seededKeyBytes,
    uploadBytes,
    downloadBytes,
  };
}
