/**
 * Latency packing (LoLa style): one image in one ciphertext, its values repeated with a power-of-two period; every
 * linear layer is a matrix applied by the diagonal method with baby-step giant-step and hoisted baby rotations,
 * every element-wise layer acts on all slots at once. With `encryptWeights` the diagonals and biases are
 * ciphertexts of the model owner.
 */
import { InvalidArgumentError } from '../../util/errors.ts';
import { UnsupportedModelError } from '../errors.ts';
import type { LayerModel } from '../layers.ts';
import type { Emitter, Sym } from './emitter.ts';
import { chwInputShape, visitLinear } from './linear-layers.ts';
import { emitChebyshev } from './polynomial.ts';

/**
 * Emits the latency-packed program body: the image is one ciphertext (its C-order values in slots 0 … size−1,
 * zero-padded to `period` and repeated over all slots), every linear layer is one {@link Emitter.matrix}, every
 * element-wise layer acts on all slots at once.
 *
 * @internal
 * @example
 * ```ts
 * const emitter = new Emitter(chainOf(params), limits);
 * emitter.encryptWeights = true; // diagonals and biases as model-owner ciphertexts
 * const { input, output } = emitLatency(model, emitter, 1024);
 * ```
 */
export function emitLatency(
  model: LayerModel,
  emitter: Emitter,
  period: number,
): { input: Sym; output: Sym } {
  const chain = emitter.chain;
  const input = emitter.fresh(chain.top, chain.scaleAt(chain.top), 1);
  const values = new Map<string, Sym>([[model.inputName, input]]);
  const inputShape = chwInputShape(model);
  for (const layer of model.layers) {
    const x = values.get(layer.inputs[0]);
    if (!x)
      throw new InvalidArgumentError(
        `layer '${layer.name}' reads '${layer.inputs[0]}', which no layer writes`,
      );
    emitter.layer = layer.name;
    let y: Sym;
    switch (layer.kind) {
      case 'reshape':
        y = x;
        break;
      case 'affine':
        if (layer.scale.every((v) => v === 1)) {
          const { bias } = visitLinear(layer, inputShape, () => {});
          y = emitter.addPlain(x, emitter.plaintext(padTo(bias, period), x.level, x.scale));
          break;
        }
        y = emitter.matrix(emitter.relinearize(x), (visit) => visitLinear(layer, inputShape, visit), period);
        break;
      case 'conv':
      case 'dense':
      case 'avgPool':
      case 'globalAvgPool': {
        y = emitter.matrix(emitter.relinearize(x), (visit) => visitLinear(layer, inputShape, visit), period);
        break;
      }
      case 'maxPool': {
        if (layer.approx?.method !== 'average') {
          throw new UnsupportedModelError(
            `layer '${layer.name}' (MaxPool): latency packing supports MaxPool only replaced by averaging ` +
              "(approximation maxPool: 'average'); use batch packing for the polynomial max",
            { node: layer.sources[0], opType: 'MaxPool' },
          );
        }
        y = emitter.matrix(emitter.relinearize(x), (visit) => visitLinear(layer, inputShape, visit), period);
        break;
      }
      case 'square': {
        const v = emitter.relinearize(x);
        y = emitter.relinearize(emitter.rescale(emitter.mulCt(v, v)));
        break;
      }
      case 'binary': {
        const z = values.get(layer.inputs[1]);
        if (!z)
          throw new InvalidArgumentError(
            `layer '${layer.name}' reads '${layer.inputs[1]}', which no layer writes`,
          );
        if (layer.op === 'mul') {
          y = emitter.relinearize(
            emitter.rescale(emitter.mulCt(emitter.relinearize(x), emitter.relinearize(z))),
          );
        } else if (
          x.level === z.level &&
          x.degree === z.degree &&
          Math.abs(x.scale / z.scale - 1) < 2 ** -40
        ) {
          y = emitter.addSub(layer.op, x, z);
        } else {
          y = emitter.linear(
            [
              { x, w: 1 },
              { x: z, w: layer.op === 'add' ? 1 : -1 },
            ],
            0,
          );
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
  }
  const output = values.get(model.outputName);
  if (!output) throw new InvalidArgumentError(`output '${model.outputName}' is written by no layer`);
  emitter.layer = '';
  return { input, output: emitter.relinearize(output) };
}

function padTo(values: ArrayLike<number>, length: number): Float64Array {
  const out = new Float64Array(length);
  for (let i = 0; i < values.length; i++) out[i] = values[i];
  return out;
}
