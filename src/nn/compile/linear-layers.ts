/**
 * Linear layers (dense, convolution, average pooling and max pooling replaced by averaging, global average
 * pooling, affine) read as their entries: output i = Σ w·input[j] + bias[i]. Both packings and the size estimates
 * walk a layer through these, so all three see the same matrix.
 */
import { UnsupportedModelError } from '../errors.ts';
import type { AvgPoolLayer, Layer, LayerModel, MaxPoolLayer } from '../layers.ts';
import { shapeSize } from '../onnx/graph.ts';

/**
 * The [C, H, W] shape a layer of `model` reads (its first input), for layers that need one (convolutions, pooling).
 *
 * @internal
 * @throws UnsupportedModelError naming the layer when its input is not a [C, H, W] tensor.
 * @example
 * ```ts
 * const inputShape = chwInputShape(model);
 * const [c, h, w] = inputShape(convLayer);
 * ```
 */
export function chwInputShape(model: LayerModel): (layer: Layer) => readonly number[] {
  const shapes = new Map<string, readonly number[]>([[model.inputName, model.inputShape]]);
  for (const l of model.layers) shapes.set(l.output, l.shape);
  return (layer) => {
    const shape = shapes.get(layer.inputs[0]);
    if (shape?.length !== 3) {
      throw new UnsupportedModelError(
        `layer '${layer.name}' (${layer.kind}) reads '${layer.inputs[0]}' of shape [${shape?.join(', ')}]: expected [C, H, W]`,
        { node: layer.sources[0], opType: layer.kind },
      );
    }
    return shape;
  };
}

/**
 * Input indices of each pooling window (C order outputs; padding excluded).
 *
 * @internal
 * @example
 * ```ts
 * for (const window of poolWindows(layer, [1, 4, 4])) console.log(window); // [0, 1, 4, 5], [2, 3, 6, 7] …
 * ```
 */
export function poolWindows(layer: AvgPoolLayer | MaxPoolLayer, inShape: readonly number[]): number[][] {
  const [c, oh, ow] = layer.shape;
  const [, ih, iw] = inShape;
  const [kh, kw] = layer.kernel;
  const [sh, sw] = layer.strides;
  const [pt, pl] = layer.pads;
  const windows: number[][] = [];
  for (let ch = 0; ch < c; ch++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const window: number[] = [];
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - pt + ky;
          if (iy < 0 || iy >= ih) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - pl + kx;
            if (ix >= 0 && ix < iw) window.push((ch * ih + iy) * iw + ix);
          }
        }
        windows.push(window);
      }
    }
  }
  return windows;
}

/**
 * Visits the entries of a linear layer: output i = Σ w·input[j] over the visited (i, j, w) (C order, rows in
 * increasing i) + `bias[i]`. Average pooling (and max pooling replaced by averaging) divide by the window size the
 * simulator uses. Returns the bias and the number of outputs without building the rows, so size estimates walk
 * the layer in O(entries) without allocating them.
 *
 * @internal
 * @example
 * ```ts
 * let terms = 0;
 * const { bias, outputs } = visitLinear(layer, inputShape, (_i, _j, w) => {
 *   if (w !== 0) terms++;
 * });
 * ```
 */
export function visitLinear(
  layer: Layer,
  inputShape: (layer: Layer) => readonly number[],
  visit: (i: number, j: number, w: number) => void,
): { bias: Float64Array; outputs: number } {
  const size = shapeSize(layer.shape);
  switch (layer.kind) {
    case 'dense': {
      const k = layer.inFeatures;
      for (let i = 0; i < layer.outFeatures; i++)
        for (let j = 0; j < k; j++) visit(i, j, layer.weight[i * k + j]);
      return { bias: layer.bias, outputs: layer.outFeatures };
    }
    case 'conv': {
      const [c, ih, iw] = inputShape(layer);
      const [, oh, ow] = layer.shape;
      const [kh, kw] = layer.kernel;
      const [sh, sw] = layer.strides;
      const [pt, pl] = layer.pads;
      const cpg = c / layer.group;
      const mpg = layer.outChannels / layer.group;
      const bias = new Float64Array(size);
      let i = 0;
      for (let o = 0; o < layer.outChannels; o++) {
        const g = Math.floor(o / mpg);
        for (let oy = 0; oy < oh; oy++) {
          for (let ox = 0; ox < ow; ox++) {
            for (let ci = 0; ci < cpg; ci++) {
              for (let ky = 0; ky < kh; ky++) {
                const iy = oy * sh - pt + ky;
                if (iy < 0 || iy >= ih) continue;
                for (let kx = 0; kx < kw; kx++) {
                  const ix = ox * sw - pl + kx;
                  if (ix < 0 || ix >= iw) continue;
                  visit(
                    i,
                    ((g * cpg + ci) * ih + iy) * iw + ix,
                    layer.weight[((o * cpg + ci) * kh + ky) * kw + kx],
                  );
                }
              }
            }
            bias[i++] = layer.bias[o];
          }
        }
      }
      return { bias, outputs: i };
    }
    case 'avgPool':
    case 'maxPool': {
      const divisor =
        layer.kind === 'avgPool' && layer.countIncludePad ? layer.kernel[0] * layer.kernel[1] : 0;
      const windows = poolWindows(layer, inputShape(layer));
      windows.forEach((window, i) => {
        for (const j of window) visit(i, j, 1 / (divisor || window.length));
      });
      return { bias: new Float64Array(size), outputs: windows.length };
    }
    case 'globalAvgPool': {
      const [c, ih, iw] = inputShape(layer);
      const spatial = ih * iw;
      for (let ch = 0; ch < c; ch++)
        for (let k = 0; k < spatial; k++) visit(ch, ch * spatial + k, 1 / spatial);
      return { bias: new Float64Array(c), outputs: c };
    }
    case 'affine': {
      const spatial = size / layer.shape[0];
      const bias = new Float64Array(size);
      for (let i = 0; i < size; i++) {
        const k =
          layer.broadcast === 'scalar' ? 0 : layer.broadcast === 'channel' ? Math.floor(i / spatial) : i;
        visit(i, i, layer.scale[k]);
        bias[i] = layer.shift[k];
      }
      return { bias, outputs: size };
    }
    default:
      throw new Error(`compiler: layer ${layer.name} (${layer.kind}) is not linear`);
  }
}

/**
 * A linear layer as sparse rows: output i = Σ w·input[j] over `rows[i]` ([j, w] pairs, C order) + `bias[i]`.
 *
 * @internal
 * @example
 * ```ts
 * const { rows, bias } = linearRows(layer, inputShape);
 * const y0 = emitter.linear(rows[0].map(([j, w]) => ({ x: x[j], w })), bias[0]);
 * ```
 */
export function linearRows(
  layer: Layer,
  inputShape: (layer: Layer) => readonly number[],
): { rows: [number, number][][]; bias: Float64Array } {
  const rows: [number, number][][] = [];
  const { bias, outputs } = visitLinear(layer, inputShape, (i, j, w) => {
    while (rows.length <= i) rows.push([]);
    rows[i].push([j, w]);
  });
  while (rows.length < outputs) rows.push([]);
  return { rows, bias };
}
