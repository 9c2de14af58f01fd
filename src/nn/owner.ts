/**
 * The model owner's side of encrypted-weight programs: the weights encrypted under the client's public key, so the
 * server computes with weights it cannot read. Browser-safe (no Node module).
 */
import { Encoder } from '../ckks/encoder.ts';
import { Encryptor } from '../ckks/encryptor.ts';
import type { PublicKey } from '../ckks/keys.ts';
import type { Ciphertext } from '../ckks/objects.ts';
import type { Parameters } from '../ckks/parameters.ts';
import { Prng } from '../ring/prng.ts';
import { weightSlots } from '../program/packing.ts';
import { assertProgram, type HeProgram } from '../program/program.ts';
import { InvalidArgumentError } from '../util/errors.ts';

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
    this.params = publicKey.params;
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
