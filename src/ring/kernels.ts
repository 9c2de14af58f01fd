import { readFileSync } from 'node:fs';
import { ResourceError } from '../util/errors.ts';

/**
 * The WebAssembly kernels (assembly/kernels.ts, built by `npm ci` into build/kernels.wasm) and the one shared
 * memory they compute in. Pointers are byte offsets into that memory; lengths count 32-bit words.
 *
 * @example
 * ```ts
 * kernels().exports.add(out, a, b, n, p);
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
  overflowCount(u: number, t: number, n: number, K: number, inverses: number): void;
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
const PAGE_BYTES = 65536;
const MAX_PAGES = 65536;

/**
 * The instantiated kernels and their memory.
 *
 * @example
 * ```ts
 * const { exports, memory } = kernels();
 * ```
 */
export interface Kernels {
  readonly exports: KernelExports;
  readonly memory: WebAssembly.Memory;
}

let instance: Kernels | undefined;
let wasmBytes: Uint8Array | undefined;

/**
 * Supplies the kernel bytes explicitly (a browser front end fetches them); must be called before first use.
 *
 * @example
 * ```ts
 * setKernelBytes(new Uint8Array(await (await fetch('/kernels.wasm')).arrayBuffer()));
 * ```
 */
export function setKernelBytes(bytes: Uint8Array): void {
  if (instance) throw new ResourceError('setKernelBytes: the kernels are already instantiated');
  wasmBytes = bytes;
}

function readDefaultBytes(): Uint8Array {
  const url = new URL('../../build/kernels.wasm', import.meta.url);
  try {
    return readFileSync(url);
  } catch (cause) {
    throw new ResourceError(
      `WebAssembly kernels not found at ${url.pathname}: expected the file built by \`npm ci\` ` +
        '(or run `npm run build:wasm`)',
      { cause },
    );
  }
}

/**
 * The process-wide kernel instance, created on first use over a shared, growable memory (shared so that
 * growth never detaches existing views and worker threads can compute on the same limbs later).
 *
 * @example
 * ```ts
 * const { exports, memory } = kernels();
 * ```
 */
export function kernels(): Kernels {
  if (instance) return instance;
  const bytes = wasmBytes ?? readDefaultBytes();
  const memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  const wasm = new WebAssembly.Instance(module, { env: { memory } });
  instance = { exports: wasm.exports as unknown as KernelExports, memory };
  return instance;
}

export { PAGE_BYTES, MAX_PAGES };
