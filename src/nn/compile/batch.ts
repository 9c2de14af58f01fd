/**
 * Batch packing (CryptoNets): slot s of every ciphertext belongs to image s; each input element is one ciphertext
 * and every layer is scalar arithmetic on ciphertexts (`mul_const` / `mul_then_add`). Values are emitted on first
 * read, so elements no later layer reads cost nothing; where relinearizations go after a squaring is decided by a
 * cost model ({@link RelinearizationPolicy}).
 */
import { InvalidArgumentError } from '../../util/errors.ts';
import { UnsupportedModelError } from '../errors.ts';
import { shapeSize } from '../onnx/graph.ts';
import type { Layer, LayerModel } from '../layers.ts';
import type { Emitter, Sym } from './emitter.ts';
import { chwInputShape, linearRows, poolWindows } from './linear-layers.ts';
import type { RelinearizationPolicy } from './options.ts';
import { emitChebyshev, polynomialMax } from './polynomial.ts';

type Lazy = () => Sym;

/**
 * Relative cost units (one Shoup multiply-add over one limb of one polynomial = 1) for the relinearization policy.
 * A weight of a linear layer is a multiply-add of `mul_matrix`, whose kernel accumulates lazily in 64 bits: about
 * half of one (a 100 × 845 block of 2-polynomial, 5-limb operands: 3.19 s, against 6.61 s as multiply-adds).
 */
const COST = { mulAddPerPolyLimb: 0.5, rescalePerPolyLimb: 6, relinPerLimb: 70 } as const;

/** Layers reading each value (through reshapes). */
function consumers(model: LayerModel): Map<string, Layer[]> {
  const byInput = new Map<string, Layer[]>();
  for (const l of model.layers) {
    for (const name of l.inputs) {
      let list = byInput.get(name);
      if (!list) byInput.set(name, (list = []));
      list.push(l);
    }
  }
  const resolve = (name: string): Layer[] =>
    (byInput.get(name) ?? []).flatMap((l) => (l.kind === 'reshape' ? resolve(l.output) : [l]));
  const out = new Map<string, Layer[]>();
  for (const l of model.layers) out.set(l.output, resolve(l.output));
  return out;
}

/** Multiply-adds and outputs of a linear consumer, for the relinearization cost model. */
function linearWork(layer: Layer): { terms: number; outputs: number } | undefined {
  switch (layer.kind) {
    case 'dense':
      return { terms: layer.inFeatures * layer.outFeatures, outputs: layer.outFeatures };
    case 'conv': {
      const outputs = shapeSize(layer.shape);
      return {
        terms: outputs * (layer.inChannels / layer.group) * layer.kernel[0] * layer.kernel[1],
        outputs,
      };
    }
    case 'avgPool':
      return {
        terms: shapeSize(layer.shape) * layer.kernel[0] * layer.kernel[1],
        outputs: shapeSize(layer.shape),
      };
    case 'globalAvgPool':
      return { terms: 0, outputs: layer.shape[0] };
    default:
      return undefined;
  }
}

function memo(f: () => Sym): Lazy {
  let value: Sym | undefined;
  return () => {
    value ??= f();
    return value;
  };
}

/**
 * Emits the batch-packed program body; returns the input and output symbols.
 *
 * @internal
 * @example
 * ```ts
 * const { inputs, outputs } = emitBatch(model, new Emitter(chainOf(params), limits), 'auto');
 * const used = inputs.filter((i) => i.used); // elements no layer reads are not uploaded
 * ```
 */
export function emitBatch(
  model: LayerModel,
  emitter: Emitter,
  policy: RelinearizationPolicy,
): { inputs: { sym: Sym; element: number; used: boolean }[]; outputs: Sym[] } {
  const chain = emitter.chain;
  const inSize = shapeSize(model.inputShape);
  const inputs = Array.from({ length: inSize }, (_, element) => ({
    sym: emitter.fresh(chain.top, chain.scaleAt(chain.top), 1),
    element,
    used: false,
  }));
  const tensors = new Map<string, Lazy[]>();
  tensors.set(
    model.inputName,
    inputs.map((input) => () => {
      input.used = true;
      return input.sym;
    }),
  );
  const readers = consumers(model);
  const inputShape = chwInputShape(model);
  const tensor = (layer: Layer, k = 0): Lazy[] => {
    const t = tensors.get(layer.inputs[k]);
    if (!t)
      throw new InvalidArgumentError(
        `layer '${layer.name}' reads '${layer.inputs[k]}', which no layer writes`,
      );
    return t;
  };
  const inLayer = (name: string, f: () => Sym): Lazy =>
    memo(() => {
      const saved = emitter.layer;
      emitter.layer = name;
      try {
        return f();
      } finally {
        emitter.layer = saved;
      }
    });
  // Squares that keep degree 2 because their only consumer relinearizes its sums instead.
  const lazySquare = (layer: Layer, level: number): boolean => {
    if (policy === 'eager') return false;
    const next = readers.get(layer.output) ?? [];
    if (next.length !== 1) return false;
    const work = linearWork(next[0]);
    if (!work || next[0].kind === 'globalAvgPool') return work !== undefined && policy === 'lazy';
    if (policy === 'lazy') return true;
    const limbs = Math.max(1, level + 2);
    const elements = shapeSize(layer.shape);
    const lazyCost =
      work.terms * limbs * COST.mulAddPerPolyLimb +
      elements * limbs * COST.rescalePerPolyLimb +
      work.outputs * limbs * COST.relinPerLimb;
    const eagerCost = elements * limbs * COST.relinPerLimb;
    return lazyCost < eagerCost;
  };

  for (const layer of model.layers) {
    const size = shapeSize(layer.shape);
    const name = layer.name;
    let out: Lazy[];
    switch (layer.kind) {
      case 'reshape':
        out = tensor(layer);
        break;
      case 'conv':
      case 'dense':
      case 'globalAvgPool': {
        const x = tensor(layer);
        const { rows, bias } = linearRows(layer, inputShape);
        const row = (i: number) =>
          emitter.linear(
            rows[i].map(([j, w]) => ({ x: x[j](), w })),
            bias[i],
          );
        // Rows reading the same operands (a dense layer's; a convolution's output channels at one position) are
        // one block: a mul_matrix reads each operand once for all of them.
        const blockOf = (i: number) => (layer.kind === 'conv' ? i % (size / layer.shape[0]) : 0);
        const blocks = new Map<number, number[]>();
        rows.forEach((_, i) => {
          const key = blockOf(i);
          const list = blocks.get(key);
          if (list) list.push(i);
          else blocks.set(key, [i]);
        });
        const results = new Map<number, Sym>();
        const emitBlock = (members: readonly number[]) => {
          const operands = [...new Set(members.flatMap((i) => rows[i].map(([j]) => j)))].sort(
            (a, b) => a - b,
          );
          const column = new Map(operands.map((j, c) => [j, c]));
          const weights = new Float64Array(members.length * operands.length);
          members.forEach((i, r) => {
            for (const [j, w] of rows[i]) weights[r * operands.length + (column.get(j) as number)] += w;
          });
          // Rows of ±1 weights are sums and differences (linear spends no level on them): one by one.
          const unit = members.every((i) => rows[i].every(([, w]) => w === 1 || w === -1));
          const block =
            operands.length > 0 && !unit
              ? emitter.linearBlock(
                  operands.map((j) => x[j]()),
                  weights,
                  members.map((i) => bias[i]),
                )
              : null;
          members.forEach((i, r) => {
            results.set(i, block ? block[r] : row(i));
          });
        };
        out = rows.map((_, i) =>
          inLayer(name, () => {
            if (!results.has(i)) emitBlock(blocks.get(blockOf(i)) as number[]);
            return results.get(i) as Sym;
          }),
        );
        break;
      }
      case 'affine': {
        const x = tensor(layer);
        const spatial = size / layer.shape[0];
        out = x.map((xi, i) =>
          inLayer(name, () => {
            const k =
              layer.broadcast === 'scalar' ? 0 : layer.broadcast === 'channel' ? Math.floor(i / spatial) : i;
            const s = layer.scale[k];
            const shift = layer.shift[k];
            if (s === 1) return shift === 0 ? xi() : emitter.addConst(xi(), shift);
            return emitter.linear([{ x: xi(), w: s }], shift);
          }),
        );
        break;
      }
      case 'square': {
        const x = tensor(layer);
        let lazy: boolean | undefined;
        out = x.map((xi) =>
          inLayer(name, () => {
            const v = emitter.relinearize(xi());
            const squared = emitter.rescale(emitter.mulCt(v, v));
            lazy ??= lazySquare(layer, squared.level);
            return lazy ? squared : emitter.relinearize(squared);
          }),
        );
        break;
      }
      case 'binary': {
        const x = tensor(layer, 0);
        const y = tensor(layer, 1);
        out = x.map((xi, i) =>
          inLayer(name, () => {
            const a = xi();
            const b = y[i]();
            if (layer.op === 'mul') {
              const p = emitter.mulCt(emitter.relinearize(a), emitter.relinearize(b));
              return emitter.relinearize(emitter.rescale(p));
            }
            const [c0, c1] = layer.coefficients ?? [1, 1];
            const aligned =
              a.level === b.level && a.degree === b.degree && Math.abs(a.scale / b.scale - 1) < 2 ** -40;
            if (aligned && c0 === 1 && c1 === 1) return emitter.addSub(layer.op, a, b);
            return emitter.linear(
              [
                { x: a, w: c0 },
                { x: b, w: layer.op === 'add' ? c1 : -c1 },
              ],
              0,
            );
          }),
        );
        break;
      }
      case 'activation': {
        const approx = layer.approx;
        if (!approx) {
          throw new UnsupportedModelError(
            `layer '${name}' (${layer.fn}) has no polynomial approximation: pass calibration images`,
            { node: layer.sources[0], opType: layer.fn },
          );
        }
        const x = tensor(layer);
        out = x.map((xi) =>
          inLayer(name, () => emitChebyshev(emitter, approx, [{ x: emitter.relinearize(xi()), w: 1 }])),
        );
        break;
      }
      case 'avgPool':
      case 'maxPool': {
        const x = tensor(layer);
        const approx = layer.kind === 'maxPool' ? layer.approx : undefined;
        if (layer.kind === 'maxPool' && !approx) {
          throw new UnsupportedModelError(
            `layer '${name}' (MaxPool) has no approximation: pass calibration images or maxPool: 'average'`,
            { node: layer.sources[0], opType: 'MaxPool' },
          );
        }
        if (approx?.method !== 'polynomial') {
          const { rows } = linearRows(layer, inputShape);
          out = rows.map((row) =>
            inLayer(name, () =>
              emitter.linear(
                row.map(([j, w]) => ({ x: x[j](), w })),
                0,
              ),
            ),
          );
          break;
        }
        const abs = approx.abs;
        const inShape = inputShape(layer);
        const rowOf = (j: number) => Math.floor(j / inShape[2]);
        out = poolWindows(layer, inShape).map((window) =>
          inLayer(name, () =>
            polynomialMax(
              emitter,
              window.map((j) => emitter.relinearize(x[j]())),
              abs,
              // The window's width: its values in the first row it reads (row-major, padding left out).
              window.filter((j) => rowOf(j) === rowOf(window[0])).length,
            ),
          ),
        );
        break;
      }
    }
    if (out.length !== size && layer.kind !== 'reshape') {
      throw new Error(`compiler: layer ${name} produced ${out.length} values, expected ${size}`);
    }
    tensors.set(layer.output, out);
  }
  const final = tensors.get(model.outputName);
  if (!final) throw new InvalidArgumentError(`output '${model.outputName}' is written by no layer`);
  const outputs = final.map((v) => v());
  return { inputs, outputs };
}
