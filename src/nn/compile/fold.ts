/**
 * Folding the polynomials' interval maps into the linear layers around them, so that they cost no level.
 *
 * A Chebyshev series on [a, b] starts from T₁ = α·x + β (α = 2/(b − a), β = −(a + b)/(b − a)): under CKKS a
 * multiply by a constant, one level per polynomial. When the polynomial's input comes from a linear layer read by
 * nothing else, that layer can produce α·x + β itself (its weights times α, its bias times α plus β) and the series
 * moves to [−1, 1], where T₁ = x. A MaxPool's |·| on [−B, B] is folded the other way round: the layer before it
 * produces x / B (an activation's coefficients or a linear layer's weights divided by B), the max tree works on
 * x / B, its differences are already T₁, and the linear layer after it (through reshapes) takes the factor B back
 * in its weights. Every fold is exact in real arithmetic: the folded model computes what the unfolded one does.
 */
import type { ChebyshevSeries } from '../chebyshev.ts';
import type { ActivationLayer, Layer, LayerModel, MaxPoolLayer } from '../layers.ts';

type LinearLayer = Extract<Layer, { kind: 'conv' | 'dense' | 'affine' }>;

function isLinear(layer: Layer | undefined): layer is LinearLayer {
  return layer !== undefined && (layer.kind === 'conv' || layer.kind === 'dense' || layer.kind === 'affine');
}

/** `layer` computing `factor · y + offset` for its old output y. */
function scaleLinear(layer: LinearLayer, factor: number, offset: number): LinearLayer {
  const times = (v: Float64Array, f: number, add: number) => v.map((x) => x * f + add);
  if (layer.kind === 'affine') {
    return { ...layer, scale: times(layer.scale, factor, 0), shift: times(layer.shift, factor, offset) };
  }
  return { ...layer, weight: times(layer.weight, factor, 0), bias: times(layer.bias, factor, offset) };
}

/** `layer` reading `x / factor` where it read x, with the same output (its weights times `factor`). */
function scaleLinearInput(layer: LinearLayer, factor: number): LinearLayer {
  if (layer.kind === 'affine') return { ...layer, scale: layer.scale.map((x) => x * factor) };
  return { ...layer, weight: layer.weight.map((x) => x * factor) };
}

function scaled(series: ChebyshevSeries, factor: number): ChebyshevSeries {
  return { ...series, coeffs: series.coeffs.map((c) => c * factor) };
}

const isUnitInterval = (s: ChebyshevSeries) => s.a === -1 && s.b === 1;

/**
 * The model with every foldable interval map folded (see the file comment); layers that cannot be folded (their
 * producer is read by another layer too, or is not linear) are left as they are.
 *
 * @example
 * ```ts
 * const folded = foldPolynomialMaps(approximateModel(model, { calibration }).model);
 * ```
 */
export function foldPolynomialMaps(model: LayerModel): LayerModel {
  const layers = [...model.layers];
  const indexOfOutput = new Map<string, number>();
  const readers = new Map<string, number[]>();
  layers.forEach((l, i) => {
    indexOfOutput.set(l.output, i);
    for (const input of l.inputs) readers.set(input, [...(readers.get(input) ?? []), i]);
  });
  /** The layer writing `name` when exactly one layer reads it and it is not the model's output. */
  const soleProducer = (name: string): number | undefined => {
    if (name === model.outputName || (readers.get(name)?.length ?? 0) !== 1) return undefined;
    return indexOfOutput.get(name);
  };

  // Activations: the producing linear layer computes T₁ itself; through a sum (a residual block's last ReLU),
  // the operands' linear producers do, and an operand without one (the shortcut) takes α as a coefficient of the
  // sum, which the compiler applies with the product that matches its level to the other operand's.
  layers.forEach((layer, i) => {
    if (layer.kind !== 'activation' || layer.approx === undefined || isUnitInterval(layer.approx)) return;
    const p = soleProducer(layer.inputs[0]);
    if (p === undefined) return;
    const producer = layers[p];
    const { a, b } = layer.approx;
    const alpha = 2 / (b - a);
    const beta = -(a + b) / (b - a);
    if (isLinear(producer)) {
      layers[p] = scaleLinear(producer, alpha, beta);
    } else if (
      producer.kind === 'binary' &&
      producer.op !== 'mul' &&
      producer.coefficients === undefined &&
      producer.inputs[0] !== producer.inputs[1]
    ) {
      const operands = producer.inputs.map((name) => soleProducer(name));
      const first = operands.findIndex((o) => o !== undefined && isLinear(layers[o]));
      if (first < 0) return;
      const coefficients: [number, number] = [1, 1];
      operands.forEach((o, k) => {
        if (o !== undefined && isLinear(layers[o])) {
          // The sign of a subtrahend's β is the sum's: the first foldable operand takes β with its own sign.
          const offset = k === first ? (k === 1 && producer.op === 'sub' ? -beta : beta) : 0;
          layers[o] = scaleLinear(layers[o] as LinearLayer, alpha, offset);
        } else coefficients[k] = alpha;
      });
      layers[p] = coefficients[0] === 1 && coefficients[1] === 1 ? producer : { ...producer, coefficients };
    } else return;
    layers[i] = { ...layer, approx: { ...layer.approx, a: -1, b: 1 } } satisfies ActivationLayer;
  });

  // MaxPools: the producer divides by B, the next linear layer multiplies by it.
  layers.forEach((layer, i) => {
    if (layer.kind !== 'maxPool' || layer.approx?.method !== 'polynomial') return;
    const abs = layer.approx.abs;
    if (isUnitInterval(abs) || abs.a !== -abs.b) return;
    const bound = abs.b;
    const p = soleProducer(layer.inputs[0]);
    if (p === undefined) return;
    const producer = layers[p];
    const producerFolds =
      isLinear(producer) || (producer.kind === 'activation' && producer.approx !== undefined);
    if (!producerFolds) return;
    // The consumer: through reshapes (each read by one layer) to a linear layer.
    let name = layer.output;
    let c: number | undefined;
    for (;;) {
      if (name === model.outputName) return;
      const r = readers.get(name);
      if (r?.length !== 1) return;
      c = r[0];
      if (layers[c].kind !== 'reshape') break;
      name = layers[c].output;
    }
    const consumer = layers[c];
    if (!isLinear(consumer)) return;
    layers[p] =
      producer.kind === 'activation' && producer.approx !== undefined
        ? { ...producer, approx: scaled(producer.approx, 1 / bound) }
        : scaleLinear(producer as LinearLayer, 1 / bound, 0);
    // max over x/B: (a + b)/2 + p(B·(a − b))/(2B), so |·| becomes t ↦ p(B·t)/B on [−1, 1].
    layers[i] = {
      ...layer,
      approx: { method: 'polynomial', abs: { a: -1, b: 1, coeffs: abs.coeffs.map((x) => x / bound) } },
    } satisfies MaxPoolLayer;
    layers[c] = scaleLinearInput(consumer, bound);
  });
  return { ...model, layers };
}
