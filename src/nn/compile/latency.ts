/**
 * Latency packing (LoLa style): one image per block of a power-of-two period of slots, several per ciphertext; every
 * linear layer is a matrix applied by the diagonal method with baby-step giant-step and hoisted baby rotations,
 * every element-wise layer acts on all slots at once. With `encryptWeights` the diagonals and biases are
 * ciphertexts of the model owner.
 */
import { InvalidArgumentError } from '../../util/errors.ts';
import { UnsupportedModelError } from '../errors.ts';
import type { Layer, LayerModel } from '../layers.ts';
import type { Emitter, Sym } from './emitter.ts';
import { chwInputShape, visitLinear } from './linear-layers.ts';
import {
  type LatencyLayoutPlan,
  type LatencyStep,
  replicateByDoubling,
  slotMatrix,
} from './latency-layout.ts';
import { emitChebyshev, pairwiseMax } from './polynomial.ts';

/**
 * Emits the latency-packed program body: one ciphertext holds `wrap / layout.period` images, image b in the
 * b-th block of `period` slots (its C-order values in the block's slots 0 … size−1, zero-padded); every linear
 * layer is one {@link Emitter.matrix} between the slots `layout` gives its input and output, block by block
 * (rotations span all `wrap` slots, so a block never reads its neighbour's values), every element-wise layer acts
 * on all slots at once, and a polynomial MaxPool is a max tree over rotations of the whole ciphertext along a
 * window's rows, then one across them (a window's elements follow its first one inside the block).
 *
 * @internal
 * @example
 * ```ts
 * const emitter = new Emitter(chainOf(params), limits);
 * emitter.encryptWeights = true; // diagonals and biases as model-owner ciphertexts
 * const { input, output } = emitLatency(model, emitter, planLatencyLayouts(model, 2 ** 15), 2 ** 15);
 * ```
 */
export function emitLatency(
  model: LayerModel,
  emitter: Emitter,
  layout: LatencyLayoutPlan,
  wrap: number,
  options: LatencyEmitOptions = {},
): { input: Sym; output: Sym } {
  const bootstrapping = options.bootstrapping;
  /** Value `name` with at least `levels` levels to spend: bootstrapped (once; later readers share it) if not. */
  const withLevels = (name: string, levels: number): Sym => {
    const v = values.get(name) as Sym;
    if (!bootstrapping || v.level >= levels) return v;
    const refreshed = emitter.bootstrap(v, bootstrapping.bound(name));
    values.set(name, refreshed);
    return refreshed;
  };
  const chain = emitter.chain;
  const period = layout.period;
  const input = emitter.fresh(chain.top, chain.scaleAt(chain.top), 1);
  const values = new Map<string, Sym>([[model.inputName, input]]);
  const inputShape = chwInputShape(model);
  const matrix = (x: Sym, layer: Layer | undefined, step: LatencyStep & { kind: 'matrix' }) => {
    let source = emitter.relinearize(x);
    const replicate = step.replicate;
    // A rotation by −k·shift moves a copy up k blocks.
    if (replicate)
      source = replicateByDoubling(
        source,
        replicate.copies,
        (v, blocks) => emitter.rotate(v, wrap - blocks * replicate.shift),
        (a, b) => emitter.addSub('add', a, b),
      ).result;
    let y = emitter.matrix(
      source,
      (visit) => slotMatrix(layer, step, inputShape, visit, period),
      period,
      wrap,
    );
    // The hybrid method's partial sums, added into slots 0 … rows − 1 after the rescale, where rotations cost less.
    const hybrid = step.hybrid;
    if (hybrid)
      for (let t = hybrid.span / 2; t >= hybrid.rows; t /= 2)
        y = emitter.addSub('add', y, emitter.rotate(y, t));
    return y;
  };
  for (const layer of model.layers) {
    for (const name of layer.inputs) {
      if (!values.has(name))
        throw new InvalidArgumentError(`layer '${layer.name}' reads '${name}', which no layer writes`);
    }
    const step = layout.steps.get(layer);
    if (!step) throw new Error(`compiler: layer ${layer.name} has no slot layout`);
    emitter.layer = layer.name;
    // Lazy placement: a bootstrap right before the first layer that would run out of levels, which for a chain
    // of layers is the fewest bootstraps; a refreshed value serves its later readers too (a residual branch).
    let x =
      layer.kind === 'binary'
        ? (values.get(layer.inputs[0]) as Sym)
        : withLevels(layer.inputs[0], bootstrapping?.consumption.get(layer) ?? 0);
    const operands = [x];
    let y: Sym;
    switch (layer.kind) {
      case 'reshape':
        y = x;
        break;
      case 'affine':
        if (step.kind === 'matrix') {
          y = matrix(x, layer, step);
          break;
        }
        {
          const { bias } = visitLinear(layer, inputShape, () => {});
          y = emitter.addPlain(
            x,
            emitter.plaintext(scatter(bias, step.output.slots, period), x.level, x.scale),
          );
        }
        break;
      case 'conv':
      case 'dense':
      case 'avgPool':
      case 'globalAvgPool': {
        if (step.kind !== 'matrix') throw new Error(`compiler: layer ${layer.name} is linear`);
        const gather = layout.gathers.get(layer);
        y = matrix(gather ? matrix(x, undefined, gather) : x, layer, step);
        break;
      }
      case 'maxPool': {
        if (step.kind === 'matrix') {
          y = matrix(x, layer, step);
          break;
        }
        if (step.kind !== 'maxPool' || layer.approx?.method !== 'polynomial') {
          throw new UnsupportedModelError(
            `layer '${layer.name}' (MaxPool) has no approximation: pass calibration images or maxPool: 'average'`,
            { node: layer.sources[0], opType: 'MaxPool' },
          );
        }
        // Along the rows, then across them: the max of the whole ciphertext and its hoisted rotations by a window
        // row's offsets puts each row's max where the row starts; the same with the rows' offsets puts each
        // window's max where the window starts (the next layer reads it there). A k×k window costs 2(k−1) maxima
        // over whole ciphertexts, in the simulator's order.
        const abs = layer.approx.abs;
        const maxAlong = (u: Sym, offsets: readonly number[]): Sym =>
          offsets.length > 1
            ? pairwiseMax(emitter, [u, ...emitter.rotateHoisted(u, offsets.slice(1))], abs)
            : u;
        const rowMax = maxAlong(emitter.relinearize(x), step.columns);
        y = maxAlong(emitter.relinearize(rowMax), step.rows);
        break;
      }
      case 'square': {
        const v = emitter.relinearize(x);
        y = emitter.relinearize(emitter.rescale(emitter.mulCt(v, v)));
        break;
      }
      case 'binary': {
        const relayout = layout.relayouts.get(layer);
        const mul = layer.op === 'mul';
        let z = withLevels(layer.inputs[1], (relayout ? 1 : 0) + (mul ? 1 : 0));
        if (mul) x = withLevels(layer.inputs[0], 1);
        operands.splice(0, 1, x, z);
        if (relayout) z = matrix(z, undefined, relayout);
        // A sum of two values of one level but two scales (or coefficients) takes a level: one constant product each.
        const [c0, c1] = layer.coefficients ?? [1, 1];
        if (
          !mul &&
          bootstrapping &&
          x.level === z.level &&
          x.level === 0 &&
          (Math.abs(x.scale / z.scale - 1) >= 2 ** -40 || c0 !== 1 || c1 !== 1)
        ) {
          x = withLevels(layer.inputs[0], 1);
          operands[0] = x;
        }
        if (mul) {
          y = emitter.relinearize(
            emitter.rescale(emitter.mulCt(emitter.relinearize(x), emitter.relinearize(z))),
          );
        } else {
          const w1 = layer.op === 'add' ? c1 : -c1;
          if (
            x.level === z.level &&
            x.degree === z.degree &&
            c0 === 1 &&
            c1 === 1 &&
            Math.abs(x.scale / z.scale - 1) < 2 ** -40
          ) {
            y = emitter.addSub(layer.op, x, z);
          } else if ((c0 === 1 && x.level < z.level) || (w1 === 1 && z.level < x.level)) {
            // The higher operand takes its coefficient with the product that matches it to the lower one's level
            // and scale: no level of the sum.
            const [lower, higher, w] = x.level < z.level ? [x, z, w1] : [z, x, c0];
            const low = emitter.relinearize(lower);
            y = emitter.addSub(
              'add',
              low,
              emitter.matchScale(emitter.relinearize(higher), low.level, low.scale, w),
            );
          } else {
            y = emitter.linear(
              [
                { x, w: c0 },
                { x: z, w: w1 },
              ],
              0,
            );
          }
        }
        break;
      }
      case 'activation': {
        if (!layer.approx) {
          throw new UnsupportedModelError(
            `layer '${layer.name}' (${layer.fn}) has no polynomial approximation: pass calibration images`,
            { node: layer.sources[0], opType: layer.fn },
          );
        }
        y = emitChebyshev(emitter, layer.approx, [{ x: emitter.relinearize(x), w: 1 }]);
        break;
      }
    }
    values.set(layer.output, y);
    options.onLayer?.(layer, operands, y);
  }
  if (!values.has(model.outputName))
    throw new InvalidArgumentError(`output '${model.outputName}' is written by no layer`);
  emitter.layer = '';
  let output = withLevels(model.outputName, layout.final ? 1 : 0);
  if (layout.final) output = matrix(output, undefined, layout.final);
  return { input, output: emitter.relinearize(output) };
}

/**
 * How {@link emitLatency} places bootstraps (a chain with bootstrapping): the levels each layer consumes below its
 * operand, measured by the depth probe, and the bound on each value's slots, from the calibration images.
 *
 * @internal
 * @example
 * ```ts
 * const bootstrapping: LatencyBootstrapping = { consumption, bound: (name) => bounds.get(name) ?? 1 };
 * ```
 */
export interface LatencyBootstrapping {
  readonly consumption: ReadonlyMap<Layer, number>;
  /** An integer bound ≥ 1 on |slots| of value `name` (a layer output or the model input). */
  bound(name: string): number;
}

/**
 * Options of {@link emitLatency}.
 *
 * @internal
 * @example
 * ```ts
 * const options: LatencyEmitOptions = { onLayer: (layer, operands, y) => record(layer, operands, y) };
 * ```
 */
export interface LatencyEmitOptions {
  readonly bootstrapping?: LatencyBootstrapping;
  /** Called after each layer with the operands it read and its result (the depth probe measures with it). */
  onLayer?(layer: Layer, operands: readonly Sym[], output: Sym): void;
}

/** `values[i]` in slot `slots[i]` of a `length`-slot vector, zeros elsewhere. */
function scatter(values: ArrayLike<number>, slots: Int32Array, length: number): Float64Array {
  const out = new Float64Array(length);
  for (let i = 0; i < values.length; i++) out[slots[i]] = values[i];
  return out;
}
