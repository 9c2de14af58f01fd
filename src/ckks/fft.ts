/**
 * @example
 * ```ts
 * const coefficients = new SpecialFft(14).slotsToCoefficients([1, 2, 3], undefined, 2 ** 30);
 * ```
 *
 * The special FFT of CKKS: the canonical embedding restricted to the slots ζ^(5^j), ζ = exp(iπ/N).
 *
 * With w_k = m_k + i·m_{k+N/2} (k < N/2) a real polynomial m evaluates at ζ^g (g ≡ 1 mod 4) as
 * Σ_k w_k ζ^{gk}; since g = 1 + 4t, that is a length-N/2 DFT of w_k ζ^k at index t = (g − 1)/4.
 * So decoding is twist-then-DFT and encoding is inverse-DFT-then-untwist, each O(N log N).
 *
 * The radix-2 decimation-in-time DFT reads its input in bit-reversed order; the scatter of the slots (encode)
 * and of the twisted coefficients (decode) writes straight to those positions, and every stage reads its
 * twiddles from one contiguous run.
 */
export class SpecialFft {
  readonly slots: number;
  /** slotIndex[j] = (5^j mod 2N − 1) / 4: the DFT bin holding slot j. */
  readonly slotIndex: Uint32Array;
  /** bitrev(slotIndex[j]): where slot j goes in the DFT's bit-reversed input. */
  readonly #slotIndexReversed: Uint32Array;
  readonly #bitReversed: Uint32Array;
  readonly #twistRe: Float64Array;
  readonly #twistIm: Float64Array;
  /** Stage twiddles, contiguous: stage with half-size h uses entries [h − 1, 2h − 1). */
  readonly #stageRe: Float64Array;
  readonly #stageIm: Float64Array;
  /** Scratch for the DFT (reused: the transforms are not re-entrant). */
  readonly #workRe: Float64Array;
  readonly #workIm: Float64Array;

  constructor(logN: number) {
    const n = 2 ** logN;
    const s = n / 2;
    this.slots = s;
    const bits = Math.log2(s);
    this.#bitReversed = new Uint32Array(s);
    for (let i = 0; i < s; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r = (r << 1) | ((i >>> b) & 1);
      this.#bitReversed[i] = r;
    }
    this.slotIndex = new Uint32Array(s);
    this.#slotIndexReversed = new Uint32Array(s);
    let g = 1;
    for (let j = 0; j < s; j++) {
      this.slotIndex[j] = (g - 1) / 4;
      this.#slotIndexReversed[j] = this.#bitReversed[(g - 1) / 4];
      g = (g * 5) % (2 * n);
    }
    this.#twistRe = new Float64Array(s);
    this.#twistIm = new Float64Array(s);
    for (let k = 0; k < s; k++) {
      const angle = (Math.PI * k) / n;
      this.#twistRe[k] = Math.cos(angle);
      this.#twistIm[k] = Math.sin(angle);
    }
    this.#workRe = new Float64Array(s);
    this.#workIm = new Float64Array(s);
    this.#stageRe = new Float64Array(Math.max(1, s - 1));
    this.#stageIm = new Float64Array(Math.max(1, s - 1));
    for (let half = 1; half < s; half *= 2) {
      for (let k = 0; k < half; k++) {
        const angle = (Math.PI * k) / half; // 2π k / size
        this.#stageRe[half - 1 + k] = Math.cos(angle);
        this.#stageIm[half - 1 + k] = Math.sin(angle);
      }
    }
  }

  /** In-place radix-2 DIT DFT of bit-reversed input: X_t = Σ_k x_k exp(sign · 2πi·tk/s), natural-order output. */
  #dft(re: Float64Array, im: Float64Array, sign: 1 | -1): void {
    const s = this.slots;
    const stageRe = this.#stageRe;
    const stageIm = this.#stageIm;
    for (let half = 1; half < s; half *= 2) {
      const size = 2 * half;
      const base = half - 1;
      for (let start = 0; start < s; start += size) {
        for (let k = 0; k < half; k++) {
          const wr = stageRe[base + k];
          const wi = sign * stageIm[base + k];
          const a = start + k;
          const b = a + half;
          const br = re[b];
          const bi = im[b];
          const xr = br * wr - bi * wi;
          const xi = br * wi + bi * wr;
          const ar = re[a];
          const ai = im[a];
          re[b] = ar - xr;
          im[b] = ai - xi;
          re[a] = ar + xr;
          im[a] = ai + xi;
        }
      }
    }
  }

  /**
   * Slots → polynomial: given slot values (re, im), returns coefficients m_0 … m_{N-1} (unrounded, times `scale`).
   */
  slotsToCoefficients(
    re: ArrayLike<number>,
    im: ArrayLike<number> | undefined,
    scale: number,
    out: Float64Array = new Float64Array(2 * this.slots),
  ): Float64Array {
    const s = this.slots;
    const ur = this.#workRe.fill(0);
    const ui = this.#workIm.fill(0);
    const target = this.#slotIndexReversed;
    for (let j = 0; j < re.length; j++) ur[target[j]] = re[j] * scale;
    if (im) for (let j = 0; j < im.length; j++) ui[target[j]] = im[j] * scale;
    this.#dft(ur, ui, -1);
    const inverse = 1 / s;
    const twistRe = this.#twistRe;
    const twistIm = this.#twistIm;
    for (let k = 0; k < s; k++) {
      const xr = ur[k] * inverse;
      const xi = ui[k] * inverse;
      // Multiply by ζ^{-k}.
      const c = twistRe[k];
      const d = twistIm[k];
      out[k] = xr * c + xi * d;
      out[k + s] = xi * c - xr * d;
    }
    return out;
  }

  /** Polynomial → slots: coefficients (already divided by the scale) to slot values (re, im). */
  coefficientsToSlots(coefficients: Float64Array): { re: Float64Array; im: Float64Array } {
    const s = this.slots;
    const ur = this.#workRe;
    const ui = this.#workIm;
    const reversed = this.#bitReversed;
    const twistRe = this.#twistRe;
    const twistIm = this.#twistIm;
    for (let k = 0; k < s; k++) {
      const a = coefficients[k];
      const b = coefficients[k + s];
      const c = twistRe[k];
      const d = twistIm[k];
      const r = reversed[k];
      ur[r] = a * c - b * d;
      ui[r] = a * d + b * c;
    }
    this.#dft(ur, ui, 1);
    const re = new Float64Array(s);
    const im = new Float64Array(s);
    const index = this.slotIndex;
    for (let j = 0; j < s; j++) {
      const t = index[j];
      re[j] = ur[t];
      im[j] = ui[t];
    }
    return { re, im };
  }
}
