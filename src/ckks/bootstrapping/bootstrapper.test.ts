import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Prng } from '../../ring/prng.ts';
import { InvalidArgumentError, MismatchError } from '../../util/errors.ts';
import { Encoder } from '../encoder.ts';
import { Decryptor, Encryptor } from '../encryptor.ts';
import { Evaluator } from '../evaluator.ts';
import { EvaluationKeys, KeyGenerator } from '../keys.ts';
import { ResidentKeys } from '../key-source.ts';
import { maxLogQP128 } from '../security.ts';
import { Bootstrapper, bootstrapResultScale } from './bootstrapper.ts';
import { BootstrappingParameters } from './parameters.ts';

/**
 * Bootstrapping at logN 10 (insecure, for speed): full and sparse slots, the precision and level it promises,
 * and its errors. The logN 16 figures are `home bench bootstrap`'s.
 */
function setup(slots?: number) {
  const bp = BootstrappingParameters.create({ logN: 10, slots, insecure: true });
  const params = bp.params;
  const prng = Prng.fromSeed(new Uint8Array(32).fill(3));
  const keygen = new KeyGenerator(params, prng);
  const sk = keygen.generateSecretKey();
  const pk = keygen.generatePublicKey(sk);
  const keys = Bootstrapper.generateKeys(bp, keygen, sk, { prng });
  const encoder = new Encoder(params);
  const encryptor = new Encryptor(params, pk);
  const decryptor = new Decryptor(params, sk);
  const period = bp.slots;
  // Uniform in [−1, 1], repeated with the bootstrapped period (the layout of fewer slots).
  const first = Float64Array.from({ length: period }, () => 2 * prng.nextDouble() - 1);
  const values = Float64Array.from({ length: params.slots }, (_, i) => first[i % period]);
  const encryptAt = (level: number, v: Float64Array = values) =>
    encryptor.encryptNew(encoder.encodeNew(v, level, params.scaleAtLevel[level]), prng);
  const decrypt = (ct: Parameters<typeof decryptor.decryptNew>[0]) =>
    encoder.decodeComplex(decryptor.decryptNew(ct));
  return { bp, params, keys, values, encryptAt, decrypt, bootstrapper: new Bootstrapper(bp, keys) };
}

function log2MaxError(got: { re: Float64Array; im: Float64Array }, expected: Float64Array): number {
  let error = 0;
  for (let i = 0; i < expected.length; i++) {
    error = Math.max(error, Math.abs(got.re[i] - expected[i]), Math.abs(got.im[i]));
  }
  return Math.log2(error);
}

describe('Bootstrapper, full slots (logN 10)', () => {
  const ctx = setup();
  const { bp, params, bootstrapper } = ctx;

  it('returns the slots at level levelsLeft, canonical scale, with ≥ 24 bits of precision', () => {
    const out = bootstrapper.bootstrapNew(ctx.encryptAt(0));
    assert.equal(out.level, bp.levelsLeft);
    assert.equal(out.scale, params.scaleAtLevel[bp.levelsLeft]);
    const bits = -log2MaxError(ctx.decrypt(out), ctx.values);
    assert.ok(bits >= 24, `precision 2^-${bits.toFixed(2)}: expected at least 24 bits`);
  });

  it('takes a ciphertext at any level and its output computes like a fresh one', () => {
    const out = bootstrapper.bootstrapNew(ctx.encryptAt(5));
    const ev = new Evaluator(params, new EvaluationKeys(ctx.keys.relinearization));
    const square = ev.mulRelinNew(out, out);
    ev.rescale(square, square);
    const expected = ctx.values.map((v) => v * v);
    const bits = -log2MaxError(ctx.decrypt(square), expected);
    assert.ok(bits >= 22, `square after bootstrapping: 2^-${bits.toFixed(2)}: expected at least 22 bits`);
    assert.equal(square.level, bp.levelsLeft - 1);
  });

  it('bootstraps values within ±bound, at the scale bootstrapResultScale predicts', () => {
    const bound = 13;
    const big = ctx.values.map((v) => v * bound);
    const input = ctx.encryptAt(3, big);
    const out = bootstrapper.bootstrapNew(input, { bound });
    assert.equal(out.level, bp.levelsLeft);
    assert.equal(out.scale, bootstrapResultScale(bp, input.scale, bound).scale);
    // Canonical up to Δ/Δ₀ (the input is not at level 0's canonical scale), whatever the bound.
    const { factor } = bootstrapResultScale(bp, input.scale, bound);
    assert.ok(Math.abs(out.scale / params.scaleAtLevel[bp.levelsLeft] - 1) <= 1 / (2 * factor));
    // The error grows with the bound: 24 bits of the values / bound.
    const bits = -log2MaxError(ctx.decrypt(out), big) + Math.log2(bound);
    assert.ok(bits >= 24, `precision 2^-${bits.toFixed(2)} of the bound: expected at least 24 bits`);
    assert.throws(() => bootstrapper.bootstrapNew(input, { bound: 0.5 }), InvalidArgumentError);
    assert.throws(() => bootstrapper.bootstrapNew(input, { bound: 2.5 }), InvalidArgumentError);
  });

  it('states its working set and the keys each phase uses', () => {
    const phases = Bootstrapper.phaseKeyBytes(bp);
    const galoisBytes = Bootstrapper.rotationsNeeded(bp).length * params.switchingKeyBytes(params.depth);
    for (const [phase, { touched, peak }] of Object.entries(phases)) {
      assert.ok(peak > 0 && peak <= touched, `${phase}: peak ${peak}, touched ${touched}`);
    }
    // Each transform's keys are Galois keys (each at most a top-level key; the two share steps), conjugation aside.
    for (const phase of [phases.coeffsToSlots, phases.slotsToCoeffs])
      assert.ok(phase.touched <= galoisBytes + params.switchingKeyBytes());
    assert.equal(phases.evalMod.touched, params.switchingKeyBytes(params.depth));
    const working = Bootstrapper.workingSetBytes(bp);
    assert.ok(working > Math.max(phases.coeffsToSlots.peak, phases.slotsToCoeffs.peak));
  });

  it('declares its rotations and refuses keys without them', () => {
    const steps = Bootstrapper.rotationsNeeded(bp);
    assert.ok(steps.length > 0 && steps.every((s) => Number.isInteger(s) && s > 0 && s < params.slots));
    const galois = ctx.keys.galois;
    const elements = galois.galoisElements;
    const partial = {
      ...ctx.keys,
      galois: new ResidentKeys(params, new EvaluationKeys(undefined, galois.acquire(elements.slice(1)))),
    };
    assert.throws(() => new Bootstrapper(bp, partial), MismatchError);
  });

  it('rejects a degree-2 ciphertext and a scale it cannot bring to Δ', () => {
    const ct = ctx.encryptAt(3);
    const ev = new Evaluator(params, new EvaluationKeys(ctx.keys.relinearization));
    assert.throws(() => bootstrapper.bootstrapNew(ev.mulNew(ct, ct)), MismatchError);
    const huge = ct.copy();
    huge.scale = 2 ** 85;
    assert.throws(() => bootstrapper.bootstrapNew(huge), InvalidArgumentError);
  });
});

describe('Bootstrapper, sparse slots (logN 10, 64 slots)', () => {
  const ctx = setup(64);

  it('bootstraps a 64-slot vector repeated over the slots with ≥ 24 bits', () => {
    const out = ctx.bootstrapper.bootstrapNew(ctx.encryptAt(0));
    assert.equal(out.level, ctx.bp.levelsLeft);
    const bits = -log2MaxError(ctx.decrypt(out), ctx.values);
    assert.ok(bits >= 24, `precision 2^-${bits.toFixed(2)}: expected at least 24 bits`);
  });
});

describe('BootstrappingParameters', () => {
  it('keeps the logN 16 chain within the 128-bit bound, with 8 levels left', () => {
    const bp = BootstrappingParameters.create({ logN: 16 });
    assert.ok(bp.params.logQP <= (maxLogQP128(16) as number));
    assert.equal(bp.levelsLeft, 8);
    assert.equal(bp.params.secret.kind, 'ternary');
  });

  it('refuses a chain no split can make secure, naming the depth', () => {
    assert.throws(() => BootstrappingParameters.create({ logN: 14 }), /depth 23/);
  });
});
