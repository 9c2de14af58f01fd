/**
 * The server's side of encrypted inference (evaluation keys only) and the client and server in one process.
 */
import { Encoder } from '../../ckks/encoder.ts';
import { Evaluator } from '../../ckks/evaluator.ts';
import type { EvaluationKeys } from '../../ckks/keys.ts';
import type { Ciphertext, Plaintext } from '../../ckks/objects.ts';
import { Parameters } from '../../ckks/parameters.ts';
import type { KernelContext } from '../../ring/context.ts';
import { InferenceClient } from '../../nn/client.ts';
import { ModelOwner } from '../../nn/owner.ts';
import {
  encodePlaintextWeight,
  evaluateInstruction,
  type InstructionOperands,
} from '../../program/evaluate.ts';
import { plaintextLastUse } from '../../program/analysis.ts';
import { checkImages, outputSize, passes } from '../../program/packing.ts';
import { assertProgram, type HeProgram, type InputDescriptor } from '../../program/program.ts';
import { MismatchError } from '../../util/errors.ts';

/**
 * Called while a program runs with the instructions done so far and the total.
 *
 * @example
 * ```ts
 * const onProgress: ProgressCallback = (done, total) => bar.update(done / total);
 * ```
 */
export type ProgressCallback = (done: number, total: number) => void;

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
    options: { lazyPlaintexts?: boolean; context?: KernelContext } = {},
  ) {
    assertProgram(program);
    this.program = program;
    this.params = Parameters.create(program.parameters, { context: options.context });
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
