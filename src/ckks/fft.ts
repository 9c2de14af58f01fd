/**
 * The special FFT of CKKS: the canonical embedding restricted to the slots ζ^(5^j), ζ = exp(iπ/N).
 *
 * With w_k = m_k + i·m_{k+N/2} (k < N/2) a real polynomial m evaluates at ζ^g (g ≡ 1 mod 4) as
 * Σ_k w_k ζ^{gk}; since g = 1 + 4t, that is a length-N/2 DFT of w_k ζ^k at index t = (g − 1)/4.
 * So decoding is twist-then-DFT and encoding is inverse-DFT-then-untwist, each O(N log N).
 */
export class SpecialFft {
  readonly slots: number;
  /** slotIndex[j] = (5^j mod 2N − 1) / 4: the DFT bin holding slot j. */
  readonly slotIndex: Uint32Array;
  readonly #twistRe: Float64Array;
  readonly #twistIm: Float64Array;
  readonly #rootRe: Float64Array;
  readonly #rootIm: Float64Array;
  readonly #bitReversed: Uint32Array;

  constructor(logN: number) {
    const n = 2 ** logN;
    const s = n / 2;
    this.slots = s;
    this.slotIndex = new Uint32Array(s);
    let g = 1;
    for (let j = 0; j < s; j++) {
      this.slotIndex[j] = (g - 1) / 4;
      g = (g * 5) % (2 * n);
    }
    this.#twistRe = new Float64Array(s);
    this.#twistIm = new Float64Array(s);
    for (let k = 0; k < s; k++) {
      const angle = (Math.PI * k) / n;
      this.#twistRe[k] = Math.cos(angle);
      this.#twistIm[k] = Math.sin(angle);
    }
    this.#rootRe = new Float64Array(s / 2);
    this.#rootIm = new Float64Array(s / 2);
    for (let k = 0; k < s / 2; k++) {
      const angle = (2 * Math.PI * k) / s;
      this.#rootRe[k] = Math.cos(angle);
      this.#rootIm[k] = Math.sin(angle);
    }
    const bits = Math.log2(s);
    this.#bitReversed = new Uint32Array(s);
    for (let i = 0; i < s; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r = (r << 1) | ((i >>> b) & 1);
      this.#bitReversed[i] = r;
    }
  }

  /** In-place radix-2 DFT: X_t = Σ_k x_k exp(sign · 2πi·tk/s). */
  #dft(re: Float64Array, im: Float64Array, sign: 1 | -1): void {
    const s = this.slots;
    const rev = this.#bitReversed;
    for (let i = 0; i < s; i++) {
      const j = rev[i];
      if (j > i) {
        let t = re[i];
        re[i] = re[j];
        re[j] = t;
        t = im[i];
        im[i] = im[j];
        im[j] = t;
      }
    }
    const rootRe = this.#rootRe;
    const rootIm = this.#rootIm;
    for (let size = 2; size <= s; size *= 2) {
      const half = size / 2;
      const stride = s / size;
      for (let start = 0; start < s; start += size) {
        for (let k = 0; k < half; k++) {
          const wr = rootRe[k * stride];
          const wi = sign * rootIm[k * stride];
          const a = start + k;
          const b = a + half;
          const xr = re[b] * wr - im[b] * wi;
          const xi = re[b] * wi + im[b] * wr;
          re[b] = re[a] - xr;
          im[b] = im[a] - xi;
          re[a] += xr;
          im[a] += xi;
        }
      }
    }
  }

  /**
   * Slots → polynomial: given slot values (re, im), returns coefficients m_0 … m_{N-1} (unrounded, times `scale`).
   */
  slotsToCoefficients(re: ArrayLike<number>, im: ArrayLike<number> | undefined, scale: number): Float64Array {
    const s = this.slots;
    const ur = new Float64Array(s);
    const ui = new Float64Array(s);
    for (let j = 0; j < re.length; j++) {
      const t = this.slotIndex[j];
      ur[t] = re[j] * scale;
      if (im) ui[t] = im[j] * scale;
    }
    this.#dft(ur, ui, -1);
    const out = new Float64Array(2 * s);
    for (let k = 0; k < s; k++) {
      const xr = ur[k] / s;
      const xi = ui[k] / s;
      // Multiply by ζ^{-k}.
      const c = this.#twistRe[k];
      const d = -this.#twistIm[k];
      out[k] = xr * c - xi * d;
      out[k + s] = xr * d + xi * c;
    }
    return out;
  }

  /** Polynomial → slots: coefficients (already divided by the scale) to slot values (re, im). */
  coefficientsToSlots(coefficients: Float64Array): { re: Float64Array; im: Float64Array } {
    const s = this.slots;
    const ur = new Float64Array(s);
    const ui = new Float64Array(s);
    for (let k = 0; k < s; k++) {
      const a = coefficients[k];
      const b = coefficients[k + s];
      const c = this.#twistRe[k];
      const d = this.#twistIm[k];
      ur[k] = a * c - b * d;
      ui[k] = a * d + b * c;
    }
    this.#dft(ur, ui, 1);
    const re = new Float64Array(s);
    const im = new Float64Array(s);
    for (let j = 0; j < s; j++) {
      const t = this.slotIndex[j];
      re[j] = ur[t];
      im[j] = ui[t];
    }
    return { re, im };
  }
}
