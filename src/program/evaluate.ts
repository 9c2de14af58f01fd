/**
 * Encrypted evaluation of one HE instruction over operands the caller resolves: the one place the runtime (all in
 * memory or tiered) turns an instruction into evaluator calls, by `OPS[op].evaluate`.
 */
import type { Bootstrapper } from '../ckks/bootstrapping/bootstrapper.ts';
import type { Encoder } from '../ckks/encoder.ts';
import type { Evaluator } from '../ckks/evaluator.ts';
import type { Ciphertext, Plaintext } from '../ckks/objects.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { OPS } from './ops.ts';
import { plaintextSlots } from './packing.ts';
import { type HeInstruction, type HeProgram, instructionWeights } from './program.ts';

/**
 * Where {@link evaluateInstruction} finds its operands and puts its results: the executor resolves them from the
 * objects its store holds in memory right now.
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
  /** The bootstrapper `bootstrap` instructions run on (programs with bootstrapping parameters). */
  readonly bootstrapper?: Bootstrapper;
}

/**
 * Evaluates one non-`free` instruction: reads its operands through `operands`, runs it on `evaluator` (which must
 * hold the evaluation keys the instruction lists) and hands each result to `operands.define`. `mul_then_add`
 * updates its accumulator in place and defines nothing.
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
  if (ins.op === 'free') {
    throw new InvalidArgumentError('evaluateInstruction: free is handled by the caller (it owns lifetimes)');
  }
  const results = OPS[ins.op].evaluate(
    evaluator,
    ins.args.map((id) => operands.value(id)),
    {
      constant: ins.constant === undefined ? 0 : program.constants[ins.constant],
      plaintext: ins.plaintext === undefined ? undefined : operands.plaintext(ins.plaintext),
      weights: instructionWeights(program, ins),
      fields: ins,
      bootstrapper: operands.bootstrapper,
    },
  );
  results.forEach((ct, k) => {
    operands.define(ins.out[k], ct);
  });
}

/**
 * Encodes plaintext weight `index` of `program` at its level and scale.
 *
 * @example
 * ```ts
 * const pt = encodePlaintextWeight(program, new Encoder(params), 0);
 * ```
 */
export function encodePlaintextWeight(program: HeProgram, encoder: Encoder, index: number): Plaintext {
  const p = program.plaintexts[index];
  if (!p) throw new InvalidArgumentError(`plaintext ${index}: the program has ${program.plaintexts.length}`);
  // One slot vector reused by every encoding (encoding is synchronous): a tiered run encoding thousands of
  // plaintexts on use left a fresh one per encoding as garbage, which V8 let pile up to ~0.5 GB of RSS.
  if (slotScratch.length !== program.slots) slotScratch = new Float64Array(program.slots);
  return encoder.encodeNew(plaintextSlots(program, p, slotScratch), p.level, p.scale);
}

let slotScratch = new Float64Array(0);
