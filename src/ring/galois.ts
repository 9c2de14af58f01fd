import { assertInteger } from '../util/assert.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import type { KernelContext } from './context.ts';
import { bitReverse } from './modulus.ts';

/**
 * The generator of the rotation group: slot rotation by k is the automorphism X → X^(5^k mod 2N).
 *
 * @example
 * ```ts
 * galoisElementForRotation(1, logN) === ROTATION_GENERATOR;
 * ```
 */
export const ROTATION_GENERATOR = 5;

/**
 * The Galois element for a left rotation of the slots by `steps` (negative rotates right).
 *
 * @example
 * ```ts
 * galoisElementForRotation(1, 14); // 5
 * ```
 */
export function galoisElementForRotation(steps: number, logN: number): number {
  assertInteger(steps, 'steps');
  const twoN = 2 ** (logN + 1);
  const slots = 2 ** (logN - 1);
  let k = ((steps % slots) + slots) % slots;
  let g = 1;
  let base = ROTATION_GENERATOR;
  while (k > 0) {
    if (k & 1) g = (g * base) % twoN;
    base = (base * base) % twoN;
    k >>= 1;
  }
  return g;
}

/**
 * The Galois element of complex conjugation of the slots: X → X^(2N-1).
 *
 * @example
 * ```ts
 * galoisElementForConjugation(14); // 32767
 * ```
 */
export function galoisElementForConjugation(logN: number): number {
  return 2 ** (logN + 1) - 1;
}

/** Per context, the index tables built so far by (logN, g). */
const permutations = new WeakMap<KernelContext, Map<string, number>>();

/**
 * Pointer (in `context`'s memory) to the index table that applies X → X^g to a polynomial in bit-reversed NTT
 * order: out[i] = in[index[i]]. Built once per context and (logN, g).
 *
 * @example
 * ```ts
 * context.exports.permute(outPtr, inPtr, nttAutomorphismIndex(14, 5, context), 1 << 14);
 * ```
 */
export function nttAutomorphismIndex(logN: number, galoisElement: number, context: KernelContext): number {
  let tables = permutations.get(context);
  if (!tables) {
    tables = new Map();
    permutations.set(context, tables);
  }
  const key = `${logN}:${galoisElement}`;
  const cached = tables.get(key);
  if (cached !== undefined) return cached;
  const n = 2 ** logN;
  const twoN = 2 * n;
  if (
    !Number.isInteger(galoisElement) ||
    galoisElement % 2 === 0 ||
    galoisElement <= 0 ||
    galoisElement >= twoN
  ) {
    throw new InvalidArgumentError(
      `Galois element ${galoisElement}: expected an odd integer in (0, ${twoN})`,
    );
  }
  const pointer = context.allocator.alloc(n);
  const index = context.view(pointer, n);
  // NTT slot bitrev(j) holds the evaluation at psi^(2j+1); X → X^g maps it to the evaluation at psi^((2j+1)g).
  for (let j = 0; j < n; j++) {
    const exponent = ((2 * j + 1) * galoisElement) % twoN;
    index[bitReverse(j, logN)] = bitReverse((exponent - 1) / 2, logN);
  }
  tables.set(key, pointer);
  return pointer;
}

/**
 * Applies X → X^g to coefficient-domain signed values (used by key generation on the secret and by the reference).
 *
 * @example
 * ```ts
 * const rotatedSecret = automorphismCoefficients(secret, 5);
 * ```
 */
export function automorphismCoefficients(values: Int32Array | Int8Array, galoisElement: number): Int32Array {
  const n = values.length;
  const twoN = 2 * n;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const target = (i * galoisElement) % twoN;
    if (target < n) out[target] += values[i];
    else out[target - n] -= values[i];
  }
  return out;
}
