import { Prng, SEED_BYTES } from '../../src/ring/prng.ts';
import { assertInteger, check } from '../../src/util/assert.ts';
import { ParametersShape } from '../../src/ckks/shape.ts';
import type {
  AccessProgram,
  AccessStep,
  ObjectId,
  ObjectInfo,
  ObjectKind,
} from '../../src/program/access.ts';
import { type HeOp, OPS } from '../../src/program/ops.ts';

/**
 * The CKKS shape a synthetic program models: ring degree, 30-bit limbs of the ciphertext modulus, special (key
 * switching) limbs (the key-switching digits follow: ⌈limbs / specialLimbs⌉), and the cost of one modular multiply.
 * Sizes come from `ParametersShape` and operation costs from the op table (`OPS[op].cost`), as for compiled
 * programs, so programs have realistic byte sizes and compute times without running any crypto.
 *
 * @example
 * ```ts
 * const shape: HeShape = { logN: 14, limbs: 16, specialLimbs: 4, nsPerModularMultiply: 0.4 };
 * ```
 */
export interface HeShape {
  logN: number;
  /** 30-bit primes in the ciphertext modulus (≈ 2 per 60-bit SEAL prime). */
  limbs: number;
  /** 30-bit special primes used by hybrid key switching (each digit has at most this many limbs). */
  specialLimbs: number;
  /**
   * Nanoseconds per modular multiply. Default 0.4: the WebAssembly SIMD128 kernel measures 0.25 ns (Shoup, fixed
   * operand) to 0.49 ns (mul-add) per element-wise mulmod and 0.36 ns per NTT butterfly (ANCHORS §2).
   */
  nsPerModularMultiply: number;
}

/**
 * N = 2^14 with 16 limbs of 30 bits (≈ SEAL's [60, 40×6, 60] chain): ciphertext 2 MiB, key-switching key 10 MiB
 * (SEAL: 1.84 MB ciphertext, 14.8 MB Galois key at N = 16384, ANCHORS §1). The modelled rotation costs ≈ 10 ms,
 * consistent with node-seal's 34.7 ms divided by the ≈ 3.6× SIMD-vs-node-seal NTT speed-up of ANCHORS §2.
 *
 * @example
 * ```ts
 * const sizes = heSizes(DEEP_HE_SHAPE); // sizes.ciphertext === 2 * 16384 * 16 * 4
 * ```
 */
export const DEEP_HE_SHAPE: HeShape = {
  logN: 14,
  limbs: 16,
  specialLimbs: 4,
  nsPerModularMultiply: 0.4,
};

/**
 * N = 2^13 with 8 limbs of 30 bits, the CryptoNets/LoLa scale (ANCHORS §1 uses N = 8192 for small models):
 * ciphertext 512 KiB.
 *
 * @example
 * ```ts
 * const program = cryptoNetsProgram({ shape: SMALL_HE_SHAPE });
 * ```
 */
export const SMALL_HE_SHAPE: HeShape = {
  logN: 13,
  limbs: 8,
  specialLimbs: 4,
  nsPerModularMultiply: 0.4,
};

/**
 * Byte sizes of the objects of one CKKS shape (coefficients stored as 32-bit words).
 *
 * @example
 * ```ts
 * const { ciphertext, keySwitchKey } = heSizes(DEEP_HE_SHAPE);
 * ```
 */
export interface HeSizes {
  ciphertext: number;
  plaintext: number;
  /** One relinearization or rotation key in hybrid key switching: dnum × 2 polys over the extended basis. */
  keySwitchKey: number;
}

/**
 * The parameter arithmetic of `shape`: a literal with two base primes, the rest one per level.
 *
 * @example
 * ```ts
 * parametersShapeOf(DEEP_HE_SHAPE).digits; // 4
 * ```
 */
export function parametersShapeOf(shape: HeShape): ParametersShape {
  return ParametersShape.of({
    logN: shape.logN,
    depth: shape.limbs - 2,
    basePrimes: 2,
    specialPrimes: shape.specialLimbs,
  });
}

/**
 * Object sizes for `shape`.
 *
 * @example
 * ```ts
 * heSizes(SMALL_HE_SHAPE).ciphertext; // 524288
 * ```
 */
export function heSizes(shape: HeShape): HeSizes {
  const p = parametersShapeOf(shape);
  return {
    ciphertext: p.ciphertextBytes(p.depth),
    plaintext: p.plaintextBytes(p.depth),
    keySwitchKey: p.switchingKeyBytes(),
  };
}

/**
 * Modular multiplies of one operation on top-level ciphertexts of `shape`, by the op table.
 *
 * @example
 * ```ts
 * const mm = opModularMultiplies(DEEP_HE_SHAPE, 'rotate'); // ≈ 2.6e7
 * ```
 */
export function opModularMultiplies(shape: HeShape, op: HeOp): number {
  const p = parametersShapeOf(shape);
  const degree = op === 'relinearize' ? 2 : 1;
  return OPS[op].cost(p, { level: p.depth, degree, bytes: { args: [p.ciphertextBytes(p.depth, 1)] } });
}

/**
 * What to free explicitly: nothing, a layer's temporaries at the end of the next layer, or each at its last use.
 *
 * @example
 * ```ts
 * const program = deepCnnProgram({ frees: 'last-use' });
 * ```
 */
export type FreeMode = 'none' | 'layer-end' | 'last-use';

/**
 * Accumulates objects and steps, with per-step costs from the HE shape, and inserts `frees` per {@link FreeMode}.
 */
class ProgramBuilder {
  readonly objects = new Map<ObjectId, ObjectInfo>();
  readonly steps: AccessStep[] = [];
  readonly #shape: HeShape;
  readonly #layerTemps = new Map<string, ObjectId[]>();
  readonly #layerOrder: string[] = [];

  constructor(shape: HeShape) {
    this.#shape = shape;
  }

  object(id: ObjectId, bytes: number, kind: ObjectKind, readOnly: boolean): ObjectId {
    if (!this.objects.has(id)) this.objects.set(id, { id, bytes, kind, readOnly });
    return id;
  }

  /**
   * A step labelled `op`, costing `repeat` times `op` plus each of `extra` (a synthetic step may stand for several
   * instructions, e.g. a product and its accumulation, or a square with its relinearization and rescale).
   */
  step(op: HeOp, layer: string, reads: ObjectId[], writes: ObjectId[], repeat = 1, extra?: HeOp[]): void {
    let mm = opModularMultiplies(this.#shape, op) * repeat;
    for (const e of extra ?? []) mm += opModularMultiplies(this.#shape, e);
    mm = Math.round(mm);
    this.steps.push({
      index: this.steps.length,
      op,
      layer,
      reads,
      writes,
      modularMultiplies: mm,
      computeCostNs: mm * this.#shape.nsPerModularMultiply,
    });
    for (const id of writes) {
      const info = this.objects.get(id)!;
      if (info.kind === 'intermediate') {
        let list = this.#layerTemps.get(layer);
        if (!list) {
          this.#layerTemps.set(layer, (list = []));
          this.#layerOrder.push(layer);
        }
        if (!list.includes(id)) list.push(id);
      }
    }
  }

  build(name: string, frees: FreeMode): AccessProgram {
    const steps = this.steps;
    if (frees === 'last-use') {
      const last = new Map<ObjectId, number>();
      steps.forEach((s, i) => {
        for (const id of [...s.reads, ...s.writes]) last.set(id, i);
      });
      for (const [id, i] of last) {
        if (this.objects.get(id)!.kind === 'intermediate') (steps[i].frees ??= []).push(id);
      }
    } else if (frees === 'layer-end') {
      // A layer's temporaries are freed by the last step of the following layer (a framework that frees per layer).
      const lastStepOfLayer = new Map<string, number>();
      steps.forEach((s, i) => {
        lastStepOfLayer.set(s.layer ?? '', i);
      });
      const last = new Map<ObjectId, number>();
      steps.forEach((s, i) => {
        for (const id of [...s.reads, ...s.writes]) last.set(id, i);
      });
      this.#layerOrder.forEach((layer, li) => {
        const next = this.#layerOrder[li + 1];
        const at = Math.max(
          lastStepOfLayer.get(next ?? layer) ?? steps.length - 1,
          lastStepOfLayer.get(layer)!,
        );
        for (const id of this.#layerTemps.get(layer) ?? []) {
          const freeAt = Math.max(at, last.get(id)!);
          (steps[freeAt].frees ??= []).push(id);
        }
      });
    }
    return { name, objects: [...this.objects.values()], steps };
  }
}

/**
 * Options of {@link cryptoNetsProgram}.
 *
 * @example
 * ```ts
 * const options: CryptoNetsOptions = { imageSide: 14, hidden: 20, frees: 'none' };
 * ```
 */
export interface CryptoNetsOptions {
  shape?: HeShape;
  imageSide?: number;
  kernel?: number;
  stride?: number;
  maps?: number;
  hidden?: number;
  classes?: number;
  /** Ciphertexts summed per dense-layer step. */
  chunk?: number;
  frees?: FreeMode;
  /** Prefix of every object id, to interleave several instances. */
  prefix?: string;
}

/**
 * A CryptoNets-like program (ICML 2016: 5×5 convolution with 5 maps and stride 2, square, dense 100, square,
 * dense 10) with batch packing: one ciphertext per pixel and scalar weights multiplied on the fly, so the managed
 * objects are ciphertexts and the relinearization key. Dense layers run input-chunk-major (each chunk of
 * activations is read once and added into every accumulator).
 *
 * @example
 * ```ts
 * const program = cryptoNetsProgram({ imageSide: 12, hidden: 10 }); // a smaller instance for tests
 * ```
 */
export function cryptoNetsProgram(options: CryptoNetsOptions = {}): AccessProgram {
  const shape = options.shape ?? SMALL_HE_SHAPE;
  const side = options.imageSide ?? 28;
  const kernel = options.kernel ?? 5;
  const stride = options.stride ?? 2;
  const maps = options.maps ?? 5;
  const hidden = options.hidden ?? 100;
  const classes = options.classes ?? 10;
  const chunk = options.chunk ?? 16;
  const p = options.prefix ?? '';
  assertInteger(side, 'imageSide', kernel, 4096);
  const sizes = heSizes(shape);
  const b = new ProgramBuilder(shape);
  const ct = sizes.ciphertext;
  const rlk = b.object(`${p}rlk`, sizes.keySwitchKey, 'relin-key', true);
  const pixel = (y: number, x: number) => b.object(`${p}x[${y * side + x}]`, ct, 'input', true);
  const outSide = Math.floor((side - kernel) / stride) + 1;
  const conv: ObjectId[] = [];
  for (let m = 0; m < maps; m++) {
    for (let oy = 0; oy < outSide; oy++) {
      for (let ox = 0; ox < outSide; ox++) {
        const reads: ObjectId[] = [];
        for (let ky = 0; ky < kernel; ky++) {
          for (let kx = 0; kx < kernel; kx++) reads.push(pixel(oy * stride + ky, ox * stride + kx));
        }
        const out = b.object(`${p}conv[${m}][${oy}][${ox}]`, ct, 'intermediate', false);
        b.step('mul_const', `${p}conv1`, reads, [out], kernel * kernel, ['add', 'rescale']);
        conv.push(out);
      }
    }
  }
  const act1 = conv.map((c, i) => {
    const out = b.object(`${p}act1[${i}]`, ct, 'intermediate', false);
    b.step('square', `${p}square1`, [c, rlk], [out], 1, ['relinearize', 'rescale']);
    return out;
  });
  const denseLayer = (inputs: ObjectId[], outputs: number, name: string, kind: ObjectKind): ObjectId[] => {
    const accs = Array.from({ length: outputs }, (_, j) => b.object(`${p}${name}[${j}]`, ct, kind, false));
    for (let c = 0; c < inputs.length; c += chunk) {
      const group = inputs.slice(c, c + chunk);
      for (let j = 0; j < outputs; j++) {
        const reads = c === 0 ? group : [...group, accs[j]];
        b.step('mul_const', `${p}${name}`, reads, [accs[j]], group.length, ['add']);
      }
    }
    return accs;
  };
  const dense1 = denseLayer(act1, hidden, 'dense1', 'intermediate');
  const act2 = dense1.map((h, i) => {
    const out = b.object(`${p}act2[${i}]`, ct, 'intermediate', false);
    b.step('square', `${p}square2`, [h, rlk], [out], 1, ['relinearize', 'rescale']);
    return out;
  });
  denseLayer(act2, classes, 'out', 'output');
  return b.build(`${p}cryptonets-${side}px`, options.frees ?? 'layer-end');
}

/**
 * Options of {@link deepCnnProgram}.
 *
 * @example
 * ```ts
 * const options: DeepCnnOptions = { layers: 8, channels: 2, taps: 5 };
 * ```
 */
export interface DeepCnnOptions {
  shape?: HeShape;
  layers?: number;
  /** Ciphertexts per layer (channel blocks). */
  channels?: number;
  /** Kernel taps; each tap but the first is a rotation. */
  taps?: number;
  /** Layers are split into this many stages; each stage (one level of the modulus chain) has its own keys. */
  stages?: number;
  frees?: FreeMode;
  prefix?: string;
}

/**
 * A deep CNN in the style of ResNet-20 implementations that stream keys and weights per layer (ANCHORS §4:
 * LowMemoryFHEResNet20, Orion): per layer, each input block is rotated by every tap (one rotation key per tap
 * and stage), every (output, input, tap) triple multiplies by its own plaintext weight into an accumulator, and an
 * activation (square + relinearize + rescale) produces the next layer's input. Weights dominate the bytes, key
 * switching dominates the time.
 *
 * @example
 * ```ts
 * const program = deepCnnProgram({ layers: 20, channels: 4 }); // ≈ 3 GB of objects, ≈ 8.5 s of compute
 * ```
 */
export function deepCnnProgram(options: DeepCnnOptions = {}): AccessProgram {
  const shape = options.shape ?? DEEP_HE_SHAPE;
  const layers = options.layers ?? 20;
  const channels = options.channels ?? 4;
  const taps = options.taps ?? 9;
  const stages = options.stages ?? 3;
  const p = options.prefix ?? '';
  assertInteger(layers, 'layers', 1, 10_000);
  assertInteger(channels, 'channels', 1, 1024);
  assertInteger(taps, 'taps', 1, 64);
  assertInteger(stages, 'stages', 1, layers);
  const sizes = heSizes(shape);
  const b = new ProgramBuilder(shape);
  let x: ObjectId[] = Array.from({ length: channels }, (_, c) =>
    b.object(`${p}in[${c}]`, sizes.ciphertext, 'input', true),
  );
  for (let l = 0; l < layers; l++) {
    const stage = Math.floor((l * stages) / layers);
    const layer = `${p}layer${l}`;
    const rlk = b.object(`${p}rlk[s${stage}]`, sizes.keySwitchKey, 'relin-key', true);
    const rotated: ObjectId[][] = x.map((xc, c) => {
      const row = [xc];
      for (let t = 1; t < taps; t++) {
        const key = b.object(`${p}rk[s${stage}][${t}]`, sizes.keySwitchKey, 'rotation-key', true);
        const out = b.object(`${p}L${l}/rot[${c}][${t}]`, sizes.ciphertext, 'intermediate', false);
        b.step('rotate', layer, [xc, key], [out]);
        row.push(out);
      }
      return row;
    });
    const next: ObjectId[] = [];
    for (let o = 0; o < channels; o++) {
      const acc = b.object(`${p}L${l}/acc[${o}]`, sizes.ciphertext, 'intermediate', false);
      let first = true;
      for (let c = 0; c < channels; c++) {
        for (let t = 0; t < taps; t++) {
          const w = b.object(`${p}L${l}/w[${o}][${c}][${t}]`, sizes.plaintext, 'plaintext', true);
          if (first) b.step('mul_plain', layer, [rotated[c][t], w], [acc]);
          else b.step('mul_plain', layer, [rotated[c][t], w, acc], [acc], 1, ['add']);
          first = false;
        }
      }
      const last = l === layers - 1;
      const out = b.object(
        `${p}L${l + 1}/x[${o}]`,
        sizes.ciphertext,
        last ? 'output' : 'intermediate',
        false,
      );
      b.step('square', layer, [acc, rlk], [out], 1, ['relinearize', 'rescale']);
      next.push(out);
    }
    x = next;
  }
  return b.build(`${p}deep-cnn-${layers}x${channels}`, options.frees ?? 'layer-end');
}

/**
 * Options of {@link interleavedModelsProgram}.
 *
 * @example
 * ```ts
 * const options: InterleavedModelsOptions = { models: 16, requestsPerModel: 4 };
 * ```
 */
export interface InterleavedModelsOptions {
  shape?: HeShape;
  models?: number;
  requestsPerModel?: number;
  /** Convolution taps (rotations with the model's own keys). */
  taps?: number;
  /** Rotate-and-sum steps of the dense layer (log2 of the summed slots). */
  sumSteps?: number;
  frees?: FreeMode;
}

/**
 * Many small LoLa-style models served together, each tenant with its own evaluation keys (keys belong to the
 * client's secret key, so tenants cannot share them). Requests are interleaved layer by layer round-robin across
 * models, the order a fair server would issue them; keys then dominate traffic once they exceed DRAM.
 *
 * @example
 * ```ts
 * const program = interleavedModelsProgram({ models: 8, requestsPerModel: 2 });
 * ```
 */
export function interleavedModelsProgram(options: InterleavedModelsOptions = {}): AccessProgram {
  const shape = options.shape ?? SMALL_HE_SHAPE;
  const models = options.models ?? 8;
  const requests = options.requestsPerModel ?? 2;
  const taps = options.taps ?? 9;
  const sumSteps = options.sumSteps ?? 6;
  assertInteger(models, 'models', 1, 10_000);
  assertInteger(requests, 'requestsPerModel', 1, 10_000);
  const sizes = heSizes(shape);
  const b = new ProgramBuilder(shape);
  type Phase = (m: number, r: number) => void;
  const key = (m: number, name: string) =>
    b.object(`m${m}/${name}`, sizes.keySwitchKey, 'rotation-key', true);
  const ctOf = (m: number, r: number, name: string, kind: ObjectKind = 'intermediate') =>
    b.object(`m${m}/r${r}/${name}`, sizes.ciphertext, kind, kind === 'input');
  const conv: Phase = (m, r) => {
    const x = ctOf(m, r, 'x', 'input');
    const acc = ctOf(m, r, 'conv');
    for (let t = 0; t < taps; t++) {
      const w = b.object(`m${m}/conv.w[${t}]`, sizes.plaintext, 'plaintext', true);
      if (t === 0) {
        b.step('mul_plain', `m${m}/conv`, [x, w], [acc]);
        continue;
      }
      const rot = ctOf(m, r, `rot[${t}]`);
      b.step('rotate', `m${m}/conv`, [x, key(m, `rk[${t}]`)], [rot]);
      b.step('mul_plain', `m${m}/conv`, [rot, w, acc], [acc], 1, ['add']);
    }
  };
  const square: Phase = (m, r) => {
    const rlk = b.object(`m${m}/rlk`, sizes.keySwitchKey, 'relin-key', true);
    b.step('square', `m${m}/square`, [ctOf(m, r, 'conv'), rlk], [ctOf(m, r, 'act')], 1, [
      'relinearize',
      'rescale',
    ]);
  };
  const dense: Phase = (m, r) => {
    const w = b.object(`m${m}/dense.w`, sizes.plaintext, 'plaintext', true);
    const acc = ctOf(m, r, 'dense');
    b.step('mul_plain', `m${m}/dense`, [ctOf(m, r, 'act'), w], [acc]);
    for (let s = 0; s < sumSteps; s++) {
      const rot = ctOf(m, r, `sum[${s}]`);
      b.step('rotate', `m${m}/dense`, [acc, key(m, `rk[2^${s}]`)], [rot]);
      const out = s === sumSteps - 1 ? ctOf(m, r, 'out', 'output') : acc;
      b.step('add', `m${m}/dense`, [acc, rot], [out]);
    }
  };
  for (const phase of [conv, square, dense]) {
    for (let r = 0; r < requests; r++) {
      for (let m = 0; m < models; m++) phase(m, r);
    }
  }
  return b.build(`interleaved-${models}x${requests}`, options.frees ?? 'layer-end');
}

/**
 * Options of {@link randomProgram}.
 *
 * @example
 * ```ts
 * const options: RandomProgramOptions = { steps: 12, minBytes: 512, maxBytes: 512 };
 * ```
 */
export interface RandomProgramOptions {
  steps?: number;
  initialObjects?: number;
  /** Object sizes are drawn from [minBytes, maxBytes]. */
  minBytes?: number;
  maxBytes?: number;
  /** Probability that a step frees one existing intermediate. */
  freeProbability?: number;
}

/**
 * Returns a seeded stream for synthetic workloads: the project PRNG (ChaCha20, `src/ring/prng.ts`) keyed by the
 * 32-bit `seed`, so the same seed gives the same program everywhere.
 *
 * @example
 * ```ts
 * const prng = syntheticPrng(7);
 * const coin = prng.nextDouble() < 0.5;
 * ```
 */
export function syntheticPrng(seed: number): Prng {
  assertInteger(seed, 'seed', 0, 2 ** 32 - 1);
  const bytes = new Uint8Array(SEED_BYTES);
  new DataView(bytes.buffer).setUint32(0, seed, true);
  bytes.set(new TextEncoder().encode('HomE synthetic'), 4);
  return Prng.fromSeed(bytes);
}

/**
 * A random valid program for property tests: read-only inputs, keys and weights; steps that create intermediates,
 * accumulate in place, overwrite without reading, rotate with keys and free; one or two outputs at the end.
 *
 * @example
 * ```ts
 * const program = randomProgram(42, { steps: 20, maxBytes: 4096 });
 * ```
 */
export function randomProgram(seed: number, options: RandomProgramOptions = {}): AccessProgram {
  const prng = syntheticPrng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(prng.nextDouble() * (hi - lo + 1));
  const pick = <T>(list: readonly T[]): T => list[int(0, list.length - 1)];
  const stepCount = options.steps ?? int(5, 30);
  const initialCount = options.initialObjects ?? int(2, 6);
  const minBytes = options.minBytes ?? 64;
  const maxBytes = options.maxBytes ?? 8192;
  const freeProbability = options.freeProbability ?? 0.15;
  check(
    minBytes >= 1 && maxBytes >= minBytes,
    () => `byte range [${minBytes}, ${maxBytes}]: expected 1 <= min <= max`,
  );
  const objects = new Map<ObjectId, ObjectInfo>();
  const live: ObjectId[] = [];
  const keys: ObjectId[] = [];
  const initialKinds: ObjectKind[] = ['input', 'plaintext', 'rotation-key', 'ciphertext'];
  for (let i = 0; i < initialCount; i++) {
    const kind = i === 0 ? 'input' : pick(initialKinds);
    const id = `${kind}${i}`;
    objects.set(id, { id, bytes: int(minBytes, maxBytes), kind, readOnly: kind !== 'ciphertext' });
    if (kind === 'rotation-key') keys.push(id);
    else live.push(id);
  }
  const steps: AccessStep[] = [];
  let fresh = 0;
  for (let i = 0; i < stepCount; i++) {
    const reads = new Set<ObjectId>();
    const nReads = int(1, Math.min(3, live.length));
    while (reads.size < nReads) reads.add(pick(live));
    let op: HeOp = 'mul_plain';
    if (keys.length > 0 && prng.nextDouble() < 0.3) {
      reads.add(pick(keys));
      op = 'rotate';
    }
    const writes: ObjectId[] = [];
    const mutable = [...reads].filter((id) => !objects.get(id)!.readOnly);
    const roll = prng.nextDouble();
    if (roll < 0.25 && mutable.length > 0) {
      writes.push(pick(mutable));
      // Accumulating into an operand: the in-place op of the table.
      op = 'mul_then_add';
    } else if (roll < 0.35) {
      const overwritable = live.filter((id) => !objects.get(id)!.readOnly && !reads.has(id));
      if (overwritable.length > 0) writes.push(pick(overwritable));
    }
    if (writes.length === 0) {
      const id = `t${fresh++}`;
      objects.set(id, { id, bytes: int(minBytes, maxBytes), kind: 'intermediate', readOnly: false });
      writes.push(id);
      live.push(id);
    }
    const frees: ObjectId[] = [];
    if (prng.nextDouble() < freeProbability) {
      const freeable = live.filter((id) => objects.get(id)!.kind === 'intermediate' && !writes.includes(id));
      if (freeable.length > 1) {
        const id = pick(freeable);
        frees.push(id);
        live.splice(live.indexOf(id), 1);
      }
    }
    const mm = int(1_000, 1_000_000);
    steps.push({
      index: i,
      op,
      layer: `L${Math.floor(i / 5)}`,
      reads: [...reads],
      writes,
      ...(frees.length > 0 ? { frees } : {}),
      modularMultiplies: mm,
      computeCostNs: mm * 0.4,
    });
  }
  const produced = live.filter((id) => objects.get(id)!.kind === 'intermediate');
  const outputCount = Math.min(produced.length, int(1, 2));
  for (let i = 0; i < outputCount; i++) {
    const id = produced[produced.length - 1 - i];
    objects.set(id, { ...objects.get(id)!, kind: 'output' });
  }
  return { name: `random-${seed}`, objects: [...objects.values()], steps };
}
