/**
 * Size estimates before emission and the server's memory after the depth probe. Each layer's instructions and
 * constants are estimated before anything is emitted, and the probed program is replayed at the real parameters
 * for its live ciphertexts, plaintext weights and evaluation keys; past a {@link CompileLimits} figure they throw
 * a ResourceError naming the layer, the figure and the limit.
 */
import type { Parameters } from '../../ckks/parameters.ts';
import { ResourceError } from '../../util/errors.ts';
import { shapeSize } from '../onnx/graph.ts';
import type { Layer, LayerModel } from '../layers.ts';
import { PROBE_TOP } from './chain.ts';
import { babyStepCount, type Emitter, type Sym } from './emitter.ts';
import { chwInputShape, poolWindows, visitLinear } from './linear-layers.ts';
import type { CompileLimits } from './options.ts';
import {
  type LatencyLayoutPlan,
  type LatencyStep,
  replicateByDoubling,
  slotMatrix,
} from './latency-layout.ts';
import { DistinctCounter, plaintextStorage } from './plaintext-storage.ts';
import { chebyshevInstructions } from './polynomial.ts';

/** One layer's share of the program, estimated before emission. */
interface LayerEstimate {
  readonly layer: Layer;
  readonly instructions: number;
  /** Bytes of its constants, stored as {@link plaintextStorage} will store them. */
  readonly constantBytes: number;
  readonly plaintexts: number;
  /** What the figures are made of, for messages. */
  readonly detail: string;
}

/**
 * Per-layer estimates of instructions and constants (plaintext or encrypted-weight vectors) for a packing.
 *
 * @internal
 * @example
 * ```ts
 * const estimatedInstructions = checkEstimates(estimateLayers(model, 'latency', 1024), limits, 'latency');
 * ```
 */
export function estimateLayers(
  model: LayerModel,
  packing: 'batch' | 'latency',
  period: number,
  layout?: LatencyLayoutPlan,
): LayerEstimate[] {
  const inputShape = chwInputShape(model);
  const estimates: LayerEstimate[] = [];
  for (const layer of model.layers) {
    const size = shapeSize(layer.shape);
    let instructions = 0;
    let constantBytes = 0;
    let plaintexts = 0;
    let detail = '';
    const linear =
      layer.kind === 'conv' ||
      layer.kind === 'dense' ||
      layer.kind === 'avgPool' ||
      layer.kind === 'globalAvgPool' ||
      (layer.kind === 'maxPool' && layer.approx?.method !== 'polynomial') ||
      (layer.kind === 'affine' && packing === 'latency' && !layer.scale.every((v) => v === 1));
    const step = layout?.steps.get(layer);
    if (packing === 'latency' && step?.kind === 'maxPool') {
      // Along a window's rows, then across them: per direction a hoisted rotation and a pairwise max tree over
      // whole ciphertexts.
      const perMax =
        layer.kind === 'maxPool' && layer.approx?.method === 'polynomial'
          ? chebyshevInstructions(layer.approx.abs, 2, 2)
          : 0;
      instructions = 4 + (step.columns.length - 1 + step.rows.length - 1) * perMax;
      detail = `max trees over ${step.columns.length} and ${step.rows.length} rotations`;
    } else if (linear && packing === 'latency') {
      const own = latencyMatrixCost(layer, step?.kind === 'matrix' ? step : undefined, inputShape, period);
      const gather = layout?.gathers.get(layer);
      const moved = gather ? latencyMatrixCost(undefined, gather, inputShape, period) : undefined;
      const diagonals = own.diagonals + (moved?.diagonals ?? 0);
      plaintexts = diagonals + (own.hasBias ? 1 : 0);
      constantBytes = own.constantBytes + (moved?.constantBytes ?? 0);
      instructions = own.instructions + (moved?.instructions ?? 0);
      detail =
        `${own.diagonals.toLocaleString('en-US')} diagonals of ${period.toLocaleString('en-US')} slots` +
        (moved ? ` after gathering its input (${moved.diagonals.toLocaleString('en-US')} diagonals)` : '') +
        (step?.kind === 'matrix' && step.hybrid ? ` hybrid method, ${step.hybrid.rows} rows` : '');
    } else if (linear) {
      let terms = 0;
      const { outputs } = visitLinear(layer, inputShape, (_i, _j, w) => {
        if (w !== 0) terms++;
      });
      instructions = terms + 3 * outputs;
      detail = `${terms.toLocaleString('en-US')} multiply-adds into ${outputs.toLocaleString('en-US')} ciphertexts`;
    } else {
      const copies = packing === 'batch' ? size : 1;
      switch (layer.kind) {
        case 'reshape':
          break;
        case 'affine':
          instructions = 3 * copies;
          if (packing === 'latency') {
            plaintexts = 1;
            constantBytes = 8 * period;
          }
          break;
        case 'square':
        case 'binary':
          instructions = 4 * copies;
          break;
        case 'activation':
          if (layer.approx !== undefined) {
            instructions = copies * (1 + chebyshevInstructions(layer.approx, 1));
            detail = `a degree-${layer.approx.coeffs.length - 1} polynomial on ${copies.toLocaleString('en-US')} ciphertexts`;
          }
          break;
        case 'maxPool':
          if (layer.approx?.method === 'polynomial') {
            const perMax = chebyshevInstructions(layer.approx.abs, 2, 2);
            for (const window of poolWindows(layer, inputShape(layer)))
              instructions += window.length + Math.max(0, window.length - 1) * perMax;
            detail = `${size.toLocaleString('en-US')} polynomial max trees of degree ${layer.approx.abs.coeffs.length - 1}`;
          }
          break;
        default:
          break;
      }
    }
    estimates.push({ layer, instructions, constantBytes, plaintexts, detail });
  }
  return estimates;
}

/**
 * Diagonals, instructions and whether a bias is added, for one latency matrix step: `layer`'s matrix between the
 * step's slots (its compact matrix without a step), or a move of values when `layer` is undefined.
 */
function latencyMatrixCost(
  layer: Layer | undefined,
  step: (LatencyStep & { kind: 'matrix' }) | undefined,
  inputShape: (layer: Layer) => readonly number[],
  period: number,
): { diagonals: number; constantBytes: number; instructions: number; hasBias: boolean } {
  // Entries and distinct values per diagonal: they decide how Emitter.plaintext stores it (plaintextStorage).
  const used = new Int32Array(period);
  const distinct: DistinctCounter[] = [];
  const visitor = (i: number, j: number, w: number) => {
    if (w === 0) return;
    const k = (j - i + period) % period;
    used[k]++;
    (distinct[k] ??= new DistinctCounter()).add(w);
  };
  let bias: ArrayLike<number>;
  if (step) bias = slotMatrix(layer, step, inputShape, visitor, period).bias;
  else if (layer) bias = visitLinear(layer, inputShape, visitor).bias;
  else throw new Error('compiler: a move needs its slots');
  const ks: number[] = [];
  let constantBytes = 0;
  for (let k = 0; k < period; k++)
    if (used[k] > 0) {
      ks.push(k);
      constantBytes += plaintextStorage(period, used[k], distinct[k].count).bytes;
    }
  if (ks.length === 0) ks.push(0);
  const n1 = babyStepCount(ks, period);
  const giants = new Set(ks.map((k) => Math.floor(k / n1))).size;
  let biasEntries = 0;
  const biasValues = new DistinctCounter();
  for (let i = 0; i < bias.length; i++)
    if (bias[i] !== 0) {
      biasEntries++;
      biasValues.add(bias[i]);
    }
  return {
    diagonals: ks.length,
    constantBytes:
      constantBytes + (biasEntries > 0 ? plaintextStorage(period, biasEntries, biasValues.count).bytes : 0),
    // Replicating the input first: a rotation and an addition per doubling.
    // The hybrid method: a rotation and an addition per halving of its span.
    instructions:
      1 +
      (step?.hybrid ? 2 * Math.log2(step.hybrid.span / step.hybrid.rows) : 0) +
      3 * ks.length +
      3 * giants +
      3 +
      2 *
        replicateByDoubling(
          0,
          step?.replicate?.copies ?? 1,
          (v) => v,
          (a) => a,
        ).moves,
    hasBias: biasEntries > 0,
  };
}

/**
 * A layer as error messages name it: its name, kind and ONNX nodes.
 *
 * @internal
 * @example
 * ```ts
 * describeLayer(layer); // "layer 'n_Conv_3' (conv, ONNX node 'n_Conv_3')"
 * ```
 */
export function describeLayer(layer: Layer): string {
  return `layer '${layer.name}' (${layer.kind}, ONNX node ${layer.sources.map((s) => `'${s}'`).join('+') || '—'})`;
}

/**
 * A count as error messages print it: rounded, with thousands separators.
 *
 * @internal
 * @example
 * ```ts
 * figure(5e6); // '5,000,000'
 * ```
 */
export function figure(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/**
 * Throws a ResourceError at the first layer whose running total of estimated instructions or constants passes its
 * limit. Runs before any emission, so a model far beyond the limits fails in milliseconds, not after minutes of
 * emission or a V8 abort.
 *
 * @internal
 * @example
 * ```ts
 * const estimatedInstructions = checkEstimates(estimateLayers(model, 'batch', 1), limits, 'batch');
 * ```
 */
export function checkEstimates(
  estimates: readonly LayerEstimate[],
  limits: CompileLimits,
  packing: string,
): number {
  let instructions = 0;
  let constantBytes = 0;
  for (const e of estimates) {
    instructions += e.instructions;
    constantBytes += e.constantBytes;
    const what = e.detail === '' ? '' : ` (${e.detail})`;
    if (instructions > limits.instructions) {
      throw new ResourceError(
        `compileModel (${packing} packing): ${describeLayer(e.layer)} brings the program to about ` +
          `${figure(instructions)} instructions, ${figure(e.instructions)} of them its own${what}, over the limit of ` +
          `${figure(limits.instructions)} (limits.instructions; each takes about 300 bytes of JavaScript heap)` +
          (packing === 'batch'
            ? ': use latency packing, lower polynomial degrees or a smaller model'
            : ': use lower polynomial degrees or a smaller model'),
      );
    }
    if (constantBytes > limits.constantBytes) {
      throw new ResourceError(
        `compileModel (${packing} packing): ${describeLayer(e.layer)} brings the program's constants to ` +
          `${figure(constantBytes)} bytes (${gib(constantBytes)}), ${figure(e.constantBytes)} of them its own${what}, ` +
          `over the limit of ${figure(limits.constantBytes)} (limits.constantBytes): the layer's plaintext diagonals do not fit ` +
          'in one program; use a smaller layer (fewer channels, a stride) or batch packing',
      );
    }
  }
  return instructions;
}

/** The server's memory for a probed program, at the real parameters. */
interface MemoryFigures {
  readonly peakCiphertextBytes: number;
  /** Layer at the peak of live ciphertexts with every plaintext resident. */
  readonly peakLayer: string;
  readonly plaintextBytes: number;
  /** Layer holding the most plaintext bytes and how many. */
  readonly plaintextLayer: string;
  readonly plaintextLayerBytes: number;
  /** Largest live ciphertexts plus the plaintext in use, over the instructions (encode on use). */
  readonly lazyPeakBytes: number;
  readonly lazyPeakLayer: string;
  readonly keyBytes: number;
  /** Evaluation keys: relinearization and one per rotation. */
  readonly keys: number;
}

/**
 * Replays the depth probe's instructions with the byte sizes of `params`: probe levels map to real levels by the
 * same offset from the top, values live from definition to last use (outputs and `keep` to the end).
 *
 * @internal
 * @example
 * ```ts
 * const memory = probeMemory(probe, params, [probed.input], new Set([probed.output.id]));
 * ```
 */
export function probeMemory(
  probe: Emitter,
  params: Parameters,
  inputs: readonly Sym[],
  keep: ReadonlySet<number>,
  offset = params.depth - PROBE_TOP,
): MemoryFigures {
  const bytes = (level: number, degree: number) => params.ciphertextBytes(level + offset, degree);
  const body = probe.instructions;
  const lastUse = new Map<number, number>();
  body.forEach((ins, i) => {
    for (const id of ins.args) lastUse.set(id, i);
  });
  const size = new Map<number, number>();
  let live = 0;
  for (const input of inputs) {
    size.set(input.id, bytes(input.level, 1));
    live += bytes(input.level, 1);
  }
  const ptBytes = probe.plaintexts.map((pt) => bytes(pt.level, 0));
  const plaintextBytes = ptBytes.reduce((a, b) => a + b, 0);
  const perLayer = new Map<string, number>();
  let peak = { bytes: live, layer: '' };
  let lazy = { bytes: live, layer: '' };
  body.forEach((ins, i) => {
    for (const id of ins.out) {
      if (!size.has(id)) {
        size.set(id, bytes(ins.level, ins.degree));
        live += bytes(ins.level, ins.degree);
      }
    }
    const pt = ins.plaintext === undefined ? 0 : ptBytes[ins.plaintext];
    if (pt > 0) perLayer.set(ins.layer, (perLayer.get(ins.layer) ?? 0) + pt);
    if (live > peak.bytes) peak = { bytes: live, layer: ins.layer };
    if (live + pt > lazy.bytes) lazy = { bytes: live + pt, layer: ins.layer };
    for (const id of ins.args) {
      if (lastUse.get(id) === i && !keep.has(id) && size.has(id)) {
        live -= size.get(id) as number;
        size.delete(id);
      }
    }
  });
  let plaintextLayer = { layer: '', bytes: 0 };
  for (const [layer, b] of perLayer) if (b > plaintextLayer.bytes) plaintextLayer = { layer, bytes: b };
  const keys = (probe.usesRelin ? 1 : 0) + probe.rotations.size;
  // Each Galois key is made for the highest level it switches at (programKeyLevels); relinearization at the top.
  const keyLevel = new Map<string, number>();
  for (const ins of body) {
    for (const key of ins.keys) {
      if (key !== 'relin') keyLevel.set(key, Math.max(keyLevel.get(key) ?? 0, ins.level + offset));
    }
  }
  let keyBytes = probe.usesRelin ? params.switchingKeyBytes() : 0;
  for (const level of keyLevel.values()) keyBytes += params.switchingKeyBytes(level);
  return {
    peakCiphertextBytes: peak.bytes,
    peakLayer: peak.layer,
    plaintextBytes,
    plaintextLayer: plaintextLayer.layer,
    plaintextLayerBytes: plaintextLayer.bytes,
    lazyPeakBytes: lazy.bytes,
    lazyPeakLayer: lazy.layer,
    keyBytes,
    keys,
  };
}

/**
 * Decides whether plaintexts are encoded on use and throws a ResourceError when the server would still hold more
 * than `limits.memoryBytes` at once. Returns the bytes held at the peak and the decision.
 *
 * @internal
 * @example
 * ```ts
 * const { serverBytes, lazy } = checkMemory(memory, model, params, limits, 'auto', 'latency');
 * ```
 */
export function checkMemory(
  m: MemoryFigures,
  model: LayerModel,
  params: Parameters,
  limits: CompileLimits,
  lazyOption: boolean | 'auto',
  packing: string,
): { serverBytes: number; lazy: boolean } {
  const resident = m.peakCiphertextBytes + m.plaintextBytes + m.keyBytes;
  const onUse = m.lazyPeakBytes + m.keyBytes;
  const lazy =
    m.plaintextBytes > 0 && (lazyOption === true || (lazyOption === 'auto' && resident > limits.memoryBytes));
  const serverBytes = lazy ? onUse : resident;
  if (serverBytes <= limits.memoryBytes) return { serverBytes, lazy };
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  const plaintextsDominate = !lazy && m.plaintextBytes > m.peakCiphertextBytes;
  const name = plaintextsDominate ? m.plaintextLayer : lazy ? m.lazyPeakLayer : m.peakLayer;
  const layer = byName.get(name);
  const where = layer === undefined ? `layer '${name}'` : describeLayer(layer);
  const plaintexts =
    m.plaintextBytes === 0
      ? ''
      : lazy
        ? ', plaintext weights encoded on use'
        : `, plaintext weights ${gib(m.plaintextBytes)} (${gib(m.plaintextLayerBytes)} in layer '${m.plaintextLayer}')`;
  throw new ResourceError(
    `compileModel (${packing} packing, logN ${params.logN}, depth ${params.depth}): at ${where} the server would ` +
      `hold ${gib(serverBytes)} at once — live ciphertexts ${lazy ? `with the plaintext in use ${gib(m.lazyPeakBytes)}` : gib(m.peakCiphertextBytes)}` +
      `${plaintexts}, evaluation keys ${gib(m.keyBytes)} — over the limit of ${gib(limits.memoryBytes)} ` +
      `(limits.memoryBytes; by default 7/8 of the 4 GiB WebAssembly kernel arena)` +
      (m.keyBytes > serverBytes / 2 ? `; the ${m.keys} evaluation keys take most of it` : '') +
      (lazyOption === false && m.plaintextBytes > 0
        ? '; lazyPlaintexts would encode the weights on use'
        : '') +
      (packing === 'batch'
        ? ': every value is its own ciphertext in batch packing; try latency packing'
        : ''),
  );
}
