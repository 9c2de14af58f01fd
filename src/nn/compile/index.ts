/**
 * The HE compiler: lowers a layer model (`layers.ts`) to an {@link HeProgram}. It attaches polynomial
 * approximations where needed, measures the multiplicative depth with a dry run, picks the smallest 128-bit-secure
 * parameters that fit it, then emits the instructions with exact levels and scales (EVA-style: a rescale after
 * every multiplicative layer, constants encoded at exactly the scale that makes a sum land on the canonical scale
 * of the next level, relinearization placed by a cost model) and inserts a `free` after every value's last use.
 *
 * Packings: `batch` (CryptoNets): slot s of every ciphertext belongs to image s; each input element is one
 * ciphertext and every layer is scalar arithmetic on ciphertexts (`mul_const` / `mul_then_add`). `latency` (LoLa
 * style): one image per block of a power-of-two `period` slots, `slots / period` images per ciphertext; every linear layer is a
 * matrix applied by the diagonal method with baby-step giant-step and hoisted baby rotations, every element-wise
 * layer acts on all slots at once. With `encryptWeights` (latency only) the diagonals and biases are ciphertexts
 * of the model owner.
 *
 * Files: `compile.ts` the driver and the program's assembly; `options.ts` options, limits and result; `emitter.ts`
 * symbolic values and instructions over a `chain.ts` modulus chain (real, or the depth probe's); `batch.ts` and
 * `latency.ts` the two packings; `linear-layers.ts` linear layers as entries; `polynomial.ts` Chebyshev series
 * and the polynomial max; `resources.ts` size estimates and memory checks; `parameters.ts` parameter choice.
 */
export { checkDepthBound, compileModel } from './compile.ts';
export type {
  CompileLimits,
  CompileOptions,
  CompileResult,
  ProgramResources,
  RelinearizationPolicy,
} from './options.ts';
export { DEFAULT_COMPILE_LIMITS } from './options.ts';
export { chooseParameters } from './parameters.ts';
