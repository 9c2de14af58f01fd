import { MismatchError } from '../util/errors.ts';
import type { KernelContext } from './context.ts';
import { shoupConstant } from './modarith.ts';
import type { Modulus } from './modulus.ts';
import type { Poly } from './poly.ts';
import type { KernelBatch } from './threads.ts';

/**
 * Limb-wise polynomial arithmetic over the WebAssembly kernels. Every function works on the first
 * `out.limbCount` limbs; inputs must share those moduli and the domain (coefficients or NTT) where it matters.
 * `out` may alias an input. Each limb is a task of a {@link KernelBatch}: the function's own, run before it
 * returns, or the caller's (`batch`), which the caller runs — several independent operations (the polynomials of
 * one ciphertext) then share one batch.
 */

function checkLimbs(out: Poly, ...inputs: Poly[]): void {
  for (const input of inputs) {
    if (input.n !== out.n || input.limbCount < out.limbCount) {
      throw new MismatchError(
        `polynomial with n = ${input.n} and ${input.limbCount} limbs cannot feed an output of n = ${out.n} ` +
          `with ${out.limbCount} limbs`,
      );
    }
    for (let i = 0; i < out.limbCount; i++) {
      if (input.moduli[i] !== out.moduli[i]) {
        throw new MismatchError(
          `limb ${i}: modulus ${input.moduli[i].value} differs from the output's ${out.moduli[i].value}`,
        );
      }
    }
  }
}

/**
 * Forward NTT of every limb, in place (no-op if already in the NTT domain).
 *
 * @example
 * ```ts
 * nttInPlace(poly);
 * ```
 */
export function nttInPlace(poly: Poly, fromLimb = 0, toLimb = poly.limbCount, batch?: KernelBatch): void {
  const tasks = batch ?? poly.context.batch(8 * poly.n * (toLimb - fromLimb));
  for (let i = fromLimb; i < toLimb; i++) {
    const m = poly.moduli[i];
    tasks.task().nttForward(poly.limbPointer(i), poly.n, m.value, m.twiddles, m.twiddlesShoup);
  }
  if (!batch) tasks.run();
  if (fromLimb === 0 && toLimb === poly.limbCount) poly.isNtt = true;
}

/**
 * Inverse NTT of every limb (or of limbs [fromLimb, toLimb)), in place.
 *
 * @example
 * ```ts
 * inttInPlace(poly);
 * ```
 */
export function inttInPlace(poly: Poly, fromLimb = 0, toLimb = poly.limbCount, batch?: KernelBatch): void {
  const tasks = batch ?? poly.context.batch(8 * poly.n * (toLimb - fromLimb));
  for (let i = fromLimb; i < toLimb; i++) {
    const m = poly.moduli[i];
    tasks
      .task()
      .nttInverse(
        poly.limbPointer(i),
        poly.n,
        m.value,
        m.inverseTwiddles,
        m.inverseTwiddlesShoup,
        m.nInverse,
        m.nInverseShoup,
      );
  }
  if (!batch) tasks.run();
  if (fromLimb === 0 && toLimb === poly.limbCount) poly.isNtt = false;
}

/**
 * out = a + b, limb-wise.
 *
 * @example
 * ```ts
 * addPoly(a, b, out);
 * ```
 */
export function addPoly(a: Poly, b: Poly, out: Poly, batch?: KernelBatch): void {
  checkLimbs(out, a, b);
  const tasks = batch ?? out.context.batch(out.n * out.limbCount);
  for (let i = 0; i < out.limbCount; i++) {
    tasks.task().add(out.limbPointer(i), a.limbPointer(i), b.limbPointer(i), out.n, out.moduli[i].value);
  }
  if (!batch) tasks.run();
}

/**
 * out = a − b, limb-wise.
 *
 * @example
 * ```ts
 * subPoly(a, b, out);
 * ```
 */
export function subPoly(a: Poly, b: Poly, out: Poly, batch?: KernelBatch): void {
  checkLimbs(out, a, b);
  const tasks = batch ?? out.context.batch(out.n * out.limbCount);
  for (let i = 0; i < out.limbCount; i++) {
    tasks.task().sub(out.limbPointer(i), a.limbPointer(i), b.limbPointer(i), out.n, out.moduli[i].value);
  }
  if (!batch) tasks.run();
}

/**
 * out = −a, limb-wise.
 *
 * @example
 * ```ts
 * negPoly(a, out);
 * ```
 */
export function negPoly(a: Poly, out: Poly, batch?: KernelBatch): void {
  checkLimbs(out, a);
  const tasks = batch ?? out.context.batch(out.n * out.limbCount);
  for (let i = 0; i < out.limbCount; i++) {
    tasks.task().neg(out.limbPointer(i), a.limbPointer(i), out.n, out.moduli[i].value);
  }
  if (!batch) tasks.run();
}

/**
 * out = a ⊙ b: the NTT-domain (negacyclic) product.
 *
 * @example
 * ```ts
 * mulPoly(a, b, out); // a, b in the NTT domain
 * ```
 */
export function mulPoly(a: Poly, b: Poly, out: Poly, batch?: KernelBatch): void {
  checkLimbs(out, a, b);
  const tasks = batch ?? out.context.batch(out.n * out.limbCount);
  for (let i = 0; i < out.limbCount; i++) {
    const m = out.moduli[i];
    tasks.task().mul(out.limbPointer(i), a.limbPointer(i), b.limbPointer(i), out.n, m.value, m.barrett);
  }
  if (!batch) tasks.run();
}

/**
 * out += a ⊙ b.
 *
 * @example
 * ```ts
 * mulAddPoly(a, b, acc);
 * ```
 */
export function mulAddPoly(a: Poly, b: Poly, out: Poly, batch?: KernelBatch): void {
  checkLimbs(out, a, b);
  const tasks = batch ?? out.context.batch(out.n * out.limbCount);
  for (let i = 0; i < out.limbCount; i++) {
    const m = out.moduli[i];
    tasks.task().mulAdd(out.limbPointer(i), a.limbPointer(i), b.limbPointer(i), out.n, m.value, m.barrett);
  }
  if (!batch) tasks.run();
}

/**
 * out −= a ⊙ b.
 *
 * @example
 * ```ts
 * mulSubPoly(a, secretKey.poly, b); // b = e − a·s
 * ```
 */
export function mulSubPoly(a: Poly, b: Poly, out: Poly, batch?: KernelBatch): void {
  checkLimbs(out, a, b);
  const tasks = batch ?? out.context.batch(out.n * out.limbCount);
  for (let i = 0; i < out.limbCount; i++) {
    const m = out.moduli[i];
    tasks.task().mulSub(out.limbPointer(i), a.limbPointer(i), b.limbPointer(i), out.n, m.value, m.barrett);
  }
  if (!batch) tasks.run();
}

/**
 * Per-limb residues of one constant, with Shoup companions, for the scalar kernels.
 *
 * @example
 * ```ts
 * mulScalarPoly(a, scalarResidues(a.moduli, (m) => 3 % m.value), out);
 * ```
 */
export interface ScalarResidues {
  readonly values: Float64Array;
  readonly shoup: Float64Array;
}

/**
 * Per-limb residues of one constant with their Shoup companions, from a function giving the constant mod each modulus (in [0, p)).
 *
 * @example
 * ```ts
 * const three = scalarResidues(poly.moduli, (m) => 3 % m.value);
 * ```
 */
export function scalarResidues(
  moduli: readonly Modulus[],
  residue: (m: Modulus, i: number) => number,
): ScalarResidues {
  const values = new Float64Array(moduli.length);
  const shoup = new Float64Array(moduli.length);
  for (let i = 0; i < moduli.length; i++) {
    values[i] = residue(moduli[i], i);
    shoup[i] = shoupConstant(values[i], moduli[i].value);
  }
  return { values, shoup };
}

/**
 * out = a · c for a constant given per limb.
 *
 * @example
 * ```ts
 * mulScalarPoly(a, scalarResidues(a.moduli, (m) => 5), out);
 * ```
 */
export function mulScalarPoly(a: Poly, c: ScalarResidues, out: Poly, batch?: KernelBatch): void {
  checkLimbs(out, a);
  const tasks = batch ?? out.context.batch(out.n * out.limbCount);
  for (let i = 0; i < out.limbCount; i++) {
    tasks
      .task()
      .mulScalar(out.limbPointer(i), a.limbPointer(i), out.n, out.moduli[i].value, c.values[i], c.shoup[i]);
  }
  if (!batch) tasks.run();
}

/**
 * out += a · c for a constant given per limb.
 *
 * @example
 * ```ts
 * mulScalarAddPoly(a, residues, acc);
 * ```
 */
export function mulScalarAddPoly(a: Poly, c: ScalarResidues, out: Poly, batch?: KernelBatch): void {
  checkLimbs(out, a);
  const tasks = batch ?? out.context.batch(out.n * out.limbCount);
  for (let i = 0; i < out.limbCount; i++) {
    tasks
      .task()
      .mulScalarAdd(
        out.limbPointer(i),
        a.limbPointer(i),
        out.n,
        out.moduli[i].value,
        c.values[i],
        c.shoup[i],
      );
  }
  if (!batch) tasks.run();
}

/** Tasks of a {@link mulScalarMatrixPolys} call at least, whatever the thread count: its scratch is known ahead. */
const MATRIX_TASKS = 64;

/** Coefficient ranges per (polynomial, limb) of {@link mulScalarMatrixPolys}: a power of two, 256 words at least. */
function matrixRanges(n: number, polys: number, limbs: number): number {
  return Math.min(n / 256, 2 ** Math.ceil(Math.log2(Math.ceil(MATRIX_TASKS / (polys * limbs)))));
}

/**
 * Kernel memory {@link mulScalarMatrixPolys} takes while it runs, in words: its pointer table, the weights' residues
 * and 64 bytes of staging per input for each of its tasks.
 *
 * @example
 * ```ts
 * const bytes = 4 * mulScalarMatrixScratchWords(2 ** 14, 100, 845, 2, 5);
 * ```
 */
export function mulScalarMatrixScratchWords(
  n: number,
  m: number,
  k: number,
  polys: number,
  limbs: number,
): number {
  return (m + k) * polys * limbs + m * k * limbs + 16 * k * matrixRanges(n, polys, limbs) * polys * limbs;
}

/**
 * outs[o][d] = Σ_j w[o·k + j] · terms[j][d] for o < m = outs.length, j < k = terms.length and every
 * polynomial d of a term: a block of a linear layer with constant weights, in one batch. `weights` holds their
 * residues limb by limb: weights[i·m·k + o·k + j] = w[o·k + j] mod q_i. Each task
 * computes every output on one limb over a range of coefficients, reading each input once for all the outputs (the
 * kernel keeps a slice of the inputs in cache while it runs over the rows), where one multiply-add per weight reads
 * every input once per output: the difference between a memory-bound and a compute-bound layer. Terms may have
 * more limbs than the outputs (they are read on the outputs' limbs).
 *
 * @example
 * ```ts
 * // y0 = 2·x + 3·z, y1 = x + 5·z on one limb q, on ciphertexts of two polynomials
 * mulScalarMatrixPolys([[x0, x1], [z0, z1]], Uint32Array.of(2, 3, 1, 5), [[y00, y01], [y10, y11]]);
 * ```
 */
export function mulScalarMatrixPolys(
  terms: readonly (readonly Poly[])[],
  weights: Uint32Array,
  outs: readonly (readonly Poly[])[],
): void {
  const m = outs.length;
  const k = terms.length;
  if (m === 0 || k === 0) return;
  const first = outs[0][0];
  const polys = outs[0].length;
  const limbs = first.limbCount;
  if (weights.length !== limbs * m * k) {
    throw new MismatchError(
      `${weights.length} weight residues for ${m} outputs of ${k} terms on ${limbs} limbs: expected ${limbs * m * k}`,
    );
  }
  for (const group of [...outs, ...terms]) {
    if (group.length !== polys) {
      throw new MismatchError(
        `a value of ${group.length} polynomials among values of ${polys}: expected as many`,
      );
    }
    for (const poly of group) checkLimbs(first, poly);
  }
  for (const out of outs) {
    for (const poly of out) {
      if (poly.limbCount !== limbs)
        throw new MismatchError(`outputs of ${poly.limbCount} and ${limbs} limbs: expected one limb count`);
    }
  }
  const context = first.context;
  const n = first.n;
  // Per (polynomial, limb): m output pointers and k input pointers; per limb: the m·k weights.
  const pointerWords = (m + k) * polys * limbs;
  const weightWords = m * k * limbs;
  const ranges = matrixRanges(n, polys, limbs);
  const stageWords = 16 * k;
  const words = mulScalarMatrixScratchWords(n, m, k, polys, limbs);
  const table = context.allocator.alloc(words);
  try {
    const view = context.view(table, pointerWords + weightWords);
    for (let i = 0; i < limbs; i++) {
      const q = first.moduli[i].value;
      for (let e = i * m * k; e < (i + 1) * m * k; e++) {
        if (!(weights[e] < q))
          throw new MismatchError(`weight residue ${weights[e]} on limb ${i}: expected < ${q}`);
      }
    }
    view.set(weights, pointerWords);
    const length = n / ranges;
    let stage = table + (pointerWords + weightWords) * 4;
    const batch = context.batch(n * polys * limbs * (m + k));
    let row = 0;
    for (let d = 0; d < polys; d++) {
      for (let i = 0; i < limbs; i++) {
        for (let o = 0; o < m; o++) view[row + o] = outs[o][d].limbPointer(i);
        for (let j = 0; j < k; j++) view[row + m + j] = terms[j][d].limbPointer(i);
        const ptrs = table + row * 4;
        const w = table + (pointerWords + i * m * k) * 4;
        const p = first.moduli[i].value;
        for (let r = 0; r < ranges; r++) {
          batch.task().mulScalarMatrix(ptrs, w, m, k, r * length, length, p, stage);
          stage += stageWords * 4;
        }
        row += m + k;
      }
    }
    batch.run();
  } finally {
    context.allocator.free(table, words);
  }
}

/**
 * out = a + c (in the NTT domain a constant polynomial adds to every evaluation).
 *
 * @example
 * ```ts
 * addScalarPoly(c0, residues, c0);
 * ```
 */
export function addScalarPoly(a: Poly, c: ScalarResidues, out: Poly, batch?: KernelBatch): void {
  checkLimbs(out, a);
  const tasks = batch ?? out.context.batch(out.n * out.limbCount);
  for (let i = 0; i < out.limbCount; i++) {
    tasks.task().addScalar(out.limbPointer(i), a.limbPointer(i), out.n, out.moduli[i].value, c.values[i]);
  }
  if (!batch) tasks.run();
}

/**
 * out = a(X^g) for a polynomial in the NTT domain, given the index table from `nttAutomorphismIndex`; out must not alias a.
 *
 * @example
 * ```ts
 * automorphismNtt(a, nttAutomorphismIndex(logN, 5), out); // rotate slots by 1
 * ```
 */
export function automorphismNtt(a: Poly, indexTable: number, out: Poly, batch?: KernelBatch): void {
  checkLimbs(out, a);
  if (a.pointer === out.pointer) throw new MismatchError('automorphismNtt: out must not alias the input');
  const tasks = batch ?? out.context.batch(out.n * out.limbCount);
  for (let i = 0; i < out.limbCount; i++) {
    tasks.task().permute(out.limbPointer(i), a.limbPointer(i), indexTable, out.n);
  }
  if (!batch) tasks.run();
  out.isNtt = true;
}

/** Per context, a kernel-memory buffer of signed words that {@link setSigned} reuses. */
const signedScratch = new WeakMap<KernelContext, { pointer: number; words: number }>();

/**
 * Writes small signed integers (|v| < 2^29, e.g. ternary or Gaussian samples) into every limb of `out`, in the
 * coefficient domain: one vectorized pass per limb.
 *
 * @example
 * ```ts
 * setSigned(poly, sampleGaussian(prng, n));
 * nttInPlace(poly);
 * ```
 */
export function setSigned(out: Poly, values: Int8Array | Int32Array): void {
  const n = out.n;
  if (values.length !== n)
    throw new MismatchError(`setSigned: ${values.length} values for a degree-${n} polynomial`);
  const context = out.context;
  let region = signedScratch.get(context);
  if (!region || region.words < n) {
    // Kept for the context's lifetime, like the NTT tables.
    const alloc = context.allocator;
    if (region) alloc.free(region.pointer, region.words);
    region = { pointer: alloc.alloc(n), words: n };
    signedScratch.set(context, region);
  }
  const pointer = region.pointer;
  const scratch = new Int32Array(context.memory.buffer, pointer, n);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v >= 536870912 || v <= -536870912) {
      throw new MismatchError(`setSigned: values[${i}] = ${v}: expected |v| < 2^29`);
    }
    scratch[i] = v;
  }
  const k = context.exports;
  for (let i = 0; i < out.limbCount; i++) k.fromSigned(out.limbPointer(i), pointer, n, out.moduli[i].value);
  out.isNtt = false;
}
