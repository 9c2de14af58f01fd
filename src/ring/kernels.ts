import type { KernelContext } from './context.ts';

/**
 * The functions of the WebAssembly kernels (assembly/kernels.ts, built by `npm ci` into build/kernels.wasm). They
 * compute in the memory of the {@link KernelContext} that instantiated them: pointers are byte offsets into that
 * memory; lengths count 32-bit words.
 *
 * @example
 * ```ts
 * context.exports.add(out, a, b, n, p);
 * ```
 */
export interface KernelExports {
  nttForward(a: number, n: number, p: number, tw: number, twShoup: number): void;
  nttInverse(
    a: number,
    n: number,
    p: number,
    itw: number,
    itwShoup: number,
    nInv: number,
    nInvShoup: number,
  ): void;
  add(out: number, a: number, b: number, n: number, p: number): void;
  sub(out: number, a: number, b: number, n: number, p: number): void;
  neg(out: number, a: number, n: number, p: number): void;
  mul(out: number, a: number, b: number, n: number, p: number, mu: number): void;
  mulAdd(out: number, a: number, b: number, n: number, p: number, mu: number): void;
  mulSub(out: number, a: number, b: number, n: number, p: number, mu: number): void;
  mulScalar(out: number, a: number, n: number, p: number, w: number, ws: number): void;
  mulScalarAdd(out: number, a: number, n: number, p: number, w: number, ws: number): void;
  mulScalarMatrix(
    ptrs: number,
    w: number,
    m: number,
    k: number,
    offset: number,
    length: number,
    p: number,
    stage: number,
  ): void;
  subMulScalar(out: number, a: number, b: number, n: number, p: number, w: number, ws: number): void;
  addScalar(out: number, a: number, n: number, p: number, c: number): void;
  liftCentered(out: number, a: number, n: number, pFrom: number, pTo: number, negFrom: number): void;
  permute(out: number, a: number, index: number, n: number): void;
  copy(out: number, a: number, n: number): void;
  fill(out: number, n: number, v: number): void;
  fromSigned(out: number, a: number, n: number, p: number): void;
  crtCandidate(
    out: number,
    flags: number,
    limbs: number,
    n: number,
    L: number,
    c: number,
    moduli: number,
    mus: number,
    inv1: number,
    inv2: number,
    perLimb: number,
  ): number;
  overflowCount(u: number, t: number, n: number, K: number, inverses: number, stride: number): void;
  subMulScalarSmall(out: number, u: number, n: number, p: number, w: number, ws: number): void;
  innerProduct2(
    out0: number,
    out1: number,
    table: number,
    count: number,
    n: number,
    p: number,
    mu: number,
    c32: number,
  ): void;
}

/** 64 KiB WebAssembly pages; the wasm32 ceiling is 65,536 pages (4 GiB). */
export const PAGE_BYTES = 65536;
export const MAX_PAGES = 65536;
