import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Prng } from '../../ring/prng.ts';
import { Encoder } from '../encoder.ts';
import { Plaintext } from '../objects.ts';
import { Parameters } from '../parameters.ts';
import { Poly } from '../../ring/poly.ts';
import { nttInPlace } from '../../ring/ops.ts';
import { applyMap, coeffsToSlotsMaps, slotsToCoeffsMaps } from './dft.ts';
import { EvalMod } from './eval-mod.ts';

function bitReverse(i: number, bits: number): number {
  let r = 0;
  for (let b = 0; b < bits; b++) r = (r << 1) | ((i >> b) & 1);
  return r;
}

function randomComplex(prng: Prng, length: number) {
  return {
    re: Float64Array.from({ length }, () => 2 * prng.nextDouble() - 1),
    im: Float64Array.from({ length }, () => 2 * prng.nextDouble() - 1),
  };
}

describe('homomorphic DFT factorization', () => {
  const prng = Prng.fromSeed(new Uint8Array(32).fill(9));

  for (const [slots, period, levels] of [
    [64, 64, 3],
    [64, 8, 2],
    [256, 256, 4],
    [256, 32, 1],
  ]) {
    it(`SlotsToCoeffs (${slots} slots, period ${period}, ${levels} levels) is the special DFT; CoeffsToSlots inverts it`, () => {
      const w = randomComplex(prng, period);
      const bits = Math.log2(period);
      const input = { re: new Float64Array(slots), im: new Float64Array(slots) };
      for (let i = 0; i < slots; i++) {
        input.re[i] = w.re[bitReverse(i % period, bits)];
        input.im[i] = w.im[bitReverse(i % period, bits)];
      }
      const maps = slotsToCoeffsMaps(slots, period, levels, 3);
      assert.equal(maps.length, Math.min(levels, bits));
      let z: { re: Float64Array; im: Float64Array } = input;
      for (const m of maps) z = applyMap(m, z, slots);
      let error = 0;
      for (let j = 0; j < slots; j++) {
        // z_j = 3 · Σ_k w_k ξ^{(5^j mod 4·period)·k}, ξ = exp(2πi/(4·period)).
        let g = 1;
        for (let t = 0; t < j; t++) g = (g * 5) % (4 * period);
        let re = 0;
        let im = 0;
        for (let k = 0; k < period; k++) {
          const angle = (2 * Math.PI * ((g * k) % (4 * period))) / (4 * period);
          re += w.re[k] * Math.cos(angle) - w.im[k] * Math.sin(angle);
          im += w.re[k] * Math.sin(angle) + w.im[k] * Math.cos(angle);
        }
        error = Math.max(error, Math.abs(3 * re - z.re[j]), Math.abs(3 * im - z.im[j]));
      }
      assert.ok(error < 1e-12 * period, `DFT error ${error}`);
      let back: { re: Float64Array; im: Float64Array } = z;
      for (const m of coeffsToSlotsMaps(slots, period, levels, 1 / 3)) back = applyMap(m, back, slots);
      for (let i = 0; i < slots; i++) {
        assert.ok(Math.abs(back.re[i] - input.re[i]) < 1e-12 && Math.abs(back.im[i] - input.im[i]) < 1e-12);
      }
    });
  }

  it("matches the encoder's slot order: decoding coefficients c equals SlotsToCoeffs of c (bit-reversed)", () => {
    const params = Parameters.create({ logN: 10, depth: 1, insecure: true });
    const n = params.n;
    const slots = params.slots;
    const coefficients = Int32Array.from({ length: n }, () => Math.floor(prng.nextDouble() * 2001) - 1000);
    const poly = Poly.alloc(params.moduliAtLevel(0), false);
    poly.moduli.forEach((m, i) => {
      const limb = poly.limb(i);
      for (let k = 0; k < n; k++) limb[k] = coefficients[k] < 0 ? coefficients[k] + m.value : coefficients[k];
    });
    nttInPlace(poly);
    const decoded = new Encoder(params).decodeComplex(new Plaintext(params, poly, 0, 1));
    const bits = Math.log2(slots);
    const input = { re: new Float64Array(slots), im: new Float64Array(slots) };
    for (let i = 0; i < slots; i++) {
      input.re[i] = coefficients[bitReverse(i, bits)];
      input.im[i] = coefficients[bitReverse(i, bits) + slots];
    }
    let z: { re: Float64Array; im: Float64Array } = input;
    for (const m of slotsToCoeffsMaps(slots, slots, 2, 1)) z = applyMap(m, z, slots);
    for (let j = 0; j < slots; j++) {
      assert.ok(
        Math.abs(z.re[j] - decoded.re[j]) < 1e-6 && Math.abs(z.im[j] - decoded.im[j]) < 1e-6,
        `slot ${j}`,
      );
    }
  });
});

describe('EvalMod', () => {
  it('computes sin(2π·K′x) on [−1, 1] through its interpolant and double angles within 2^-38', () => {
    const evalMod = EvalMod.create({ bound: 16, doubleAngle: 3 });
    assert.ok(evalMod.interpolationError <= 2 ** -46);
    assert.equal(evalMod.levels, Math.ceil(Math.log2(evalMod.polynomial.degree + 1)) + 3);
    for (let i = 0; i <= 2000; i++) {
      const x = -1 + i / 1000;
      const error = Math.abs(evalMod.evaluatePlain(x) - Math.sin(2 * Math.PI * 17 * x));
      assert.ok(error < 2 ** -38, `x = ${x}: error ${error}`);
    }
  });

  it('refuses a bound no degree reaches and names the way out', () => {
    assert.throws(() => EvalMod.create({ bound: 200, doubleAngle: 0 }), /double-angle/);
  });
});
