/**
 * Where each tensor's values sit in the slots of a latency-packed ciphertext. A tensor is not always compact: a
 * max pooling computed by rotations leaves its window maxima where the windows start (every `stride`-th slot of
 * its input), and the next layers read them there instead of paying a gather. A [C, H, W] tensor on a grid
 * (channel, row and column strides) keeps convolutions and poolings cheap on it — a convolution on a grid writes
 * its output on a grid of the same strides, so its matrix keeps one diagonal per (channel pair, kernel offset) —
 * which is the multiplexed packing of Lee et al. (ICML 2022): when a convolution's channels would need a longer
 * period than the layers before it, it puts channels in the gaps a strided grid leaves (more diagonals, but more
 * images per ciphertext).
 */
import { UnsupportedModelError } from '../errors.ts';
import type { Layer, LayerModel, MaxPoolLayer } from '../layers.ts';
import { shapeSize } from '../onnx/graph.ts';
import { chwInputShape, poolWindows, visitLinear } from './linear-layers.ts';

/**
 * A [C, H, W] tensor on a grid of slots: element (c, y, x) is in slot
 * `offset + ⌊c / m⌋·cs + sub[c mod m] + y·rs + x·xs` with m = `sub.length`. Channels share a block of `cs` slots
 * `m` at a time when a strided grid leaves room between its elements (after a pooling, `sub` = [0, 1, …] puts
 * the next channels in the gaps), which keeps the image's period — and so the images per ciphertext — down.
 *
 * @internal
 * @example
 * ```ts
 * const compact: SlotGrid = { offset: 0, c: 8, h: 28, w: 28, cs: 784, rs: 28, xs: 1, sub: [0] };
 * ```
 */
export interface SlotGrid {
  readonly offset: number;
  readonly c: number;
  readonly h: number;
  readonly w: number;
  readonly cs: number;
  readonly rs: number;
  readonly xs: number;
  readonly sub: readonly number[];
}

function gridSlot(g: SlotGrid, c: number, y: number, x: number): number {
  const m = g.sub.length;
  return g.offset + Math.floor(c / m) * g.cs + g.sub[c % m] + y * g.rs + x * g.xs;
}

/**
 * The slot of every element of a tensor (C order), and its grid when it has one.
 *
 * @internal
 * @example
 * ```ts
 * const layout = compactLayout(16);
 * layout.slots[3]; // 3
 * ```
 */
export interface SlotLayout {
  readonly slots: Int32Array;
  readonly grid?: SlotGrid;
  /** True when element i is in slot i for every i. */
  readonly compact: boolean;
}

/**
 * What latency packing does for one layer, in slots.
 *
 * @internal
 */
export type LatencyStep =
  /**
   * A matrix from `input`'s slots to `output`'s slots (linear layers; `relayout` moves values unchanged). With
   * `replicate`, the input is first copied `copies` times, `shift` slots apart, and each entry reads the copy
   * nearest its output (see {@link replicationFor}).
   */
  | {
      readonly kind: 'matrix';
      readonly input: SlotLayout;
      readonly output: SlotLayout;
      readonly replicate?: Replication;
      /** With `hybrid`, the rows go to partial sums that a rotate-and-sum adds (see {@link HybridRows}). */
      readonly hybrid?: HybridRows;
    }
  /**
   * The polynomial max of each window, along its rows then across them: the whole ciphertext's max with its
   * rotations by `columns` (a window row's elements after its first one), then that result's max with its rotations
   * by `rows` (each next window row's first element after the first row's).
   */
  | {
      readonly kind: 'maxPool';
      readonly input: SlotLayout;
      readonly output: SlotLayout;
      readonly columns: readonly number[];
      readonly rows: readonly number[];
    }
  /** Element-wise (activation, square, bias-only affine, reshape, binary): the output sits where the input does. */
  | { readonly kind: 'elementwise'; readonly output: SlotLayout };

/**
 * Copies of a matrix's input, `shift` slots apart (copy t moved t·shift slots up), made by doubling (see
 * {@link replicateByDoubling}): about log2(copies) rotations and additions, no level.
 *
 * @internal
 */
export interface Replication {
  readonly shift: number;
  readonly copies: number;
}

/**
 * A dense matrix applied by the hybrid diagonal method (Juvekar et al., Gazelle, 2018): entry (output slot i,
 * input slot j) goes to the partial sum in slot s, the first slot from j on with s ≡ i (mod `rows`), so it lies on
 * one of `rows` diagonals (s − j ∈ [0, rows)) wherever the input is; the sum of the partial sums in slots
 * i, i + rows, i + 2·rows … below `span` is then output i, added by log2(span / rows) rotations by span/2 … rows.
 * The outputs must sit in slots 0 … rows − 1 and every partial sum below `span` (≤ the period, so a block never
 * reads its neighbour). The other slots are left holding partial sums: the result is not zero outside its slots,
 * so it may only reach a matrix (which reads nothing else) through squares, bias additions and reshapes — not a
 * polynomial, whose interval the partial sums may leave.
 *
 * @internal
 */
export interface HybridRows {
  readonly rows: number;
  readonly span: number;
}

/**
 * The partial-sum slot of entry (output slot `i`, input slot `j`) under `hybrid`: the first slot s ≥ j with
 * s ≡ i (mod rows).
 *
 * @internal
 */
export function hybridRow(i: number, j: number, hybrid: HybridRows): number {
  return j + ((((i - j) % hybrid.rows) + hybrid.rows) % hybrid.rows);
}

/**
 * The slot plan of a whole model: each layer's step, the relayouts binary layers need first (the second operand
 * moved to the first one's slots), the output's final relayout (when it is not compact) and the period (the
 * power of two that holds every slot used).
 *
 * @internal
 */
export interface LatencyLayoutPlan {
  readonly steps: ReadonlyMap<Layer, LatencyStep>;
  /** For a binary layer whose operands sit in different slots: the matrix moving its second operand. */
  readonly relayouts: ReadonlyMap<Layer, LatencyStep & { kind: 'matrix' }>;
  /**
   * For a dense layer whose input is spread thin over the slots (after strided poolings): the matrix gathering
   * the input into a narrow range first (see {@link gatherLayout}); the layer's step then reads the gathered slots.
   */
  readonly gathers: ReadonlyMap<Layer, LatencyStep & { kind: 'matrix' }>;
  /** The matrix making the model's output compact, when it is not. */
  readonly final?: LatencyStep & { kind: 'matrix' };
  readonly period: number;
}

/**
 * Slots of a compact tensor of `size` elements.
 *
 * @internal
 * @example
 * ```ts
 * compactLayout(10).slots; // 0 … 9
 * ```
 */
export function compactLayout(size: number, shape?: readonly number[]): SlotLayout {
  const slots = new Int32Array(size);
  for (let i = 0; i < size; i++) slots[i] = i;
  const grid =
    shape?.length === 3
      ? {
          offset: 0,
          c: shape[0],
          h: shape[1],
          w: shape[2],
          cs: shape[1] * shape[2],
          rs: shape[2],
          xs: 1,
          sub: [0],
        }
      : undefined;
  return { slots, compact: true, ...(grid ? { grid } : {}) };
}

function gridLayout(grid: SlotGrid): SlotLayout {
  const slots = new Int32Array(grid.c * grid.h * grid.w);
  let i = 0;
  let compact = true;
  for (let c = 0; c < grid.c; c++)
    for (let y = 0; y < grid.h; y++)
      for (let x = 0; x < grid.w; x++) {
        const s = gridSlot(grid, c, y, x);
        if (s !== i) compact = false;
        slots[i++] = s;
      }
  return { slots, grid, compact };
}

/** True when the grid's slots are distinct and below `limit`. */
function gridFits(grid: SlotGrid, limit: number): boolean {
  const seen = new Uint8Array(limit);
  for (let c = 0; c < grid.c; c++)
    for (let y = 0; y < grid.h; y++)
      for (let x = 0; x < grid.w; x++) {
        const s = gridSlot(grid, c, y, x);
        if (s < 0 || s >= limit || seen[s] === 1) return false;
        seen[s] = 1;
      }
  return true;
}

function sameSlots(a: SlotLayout, b: SlotLayout): boolean {
  if (a === b) return true;
  if (a.slots.length !== b.slots.length) return false;
  for (let i = 0; i < a.slots.length; i++) if (a.slots[i] !== b.slots[i]) return false;
  return true;
}

/**
 * The grid a layer with a spatial kernel writes when it reads `input` on a grid: output (c, oy, ox) where its
 * window's unpadded anchor (oy·sh, ox·sw) sits in channel c's block; `undefined` when that grid would not fit.
 * A pooling keeps its input's channel blocks. A convolution whose channels would reach past `period` (the period
 * the layers before it need) shares blocks between channels, in the gaps a strided grid leaves, when that keeps
 * it inside (see {@link SlotGrid}).
 */
function spatialOutputGrid(
  layer: Layer,
  input: SlotLayout,
  limit: number,
  period: number,
): SlotGrid | undefined {
  if (!input.grid || (layer.kind !== 'conv' && layer.kind !== 'avgPool' && layer.kind !== 'maxPool')) {
    return undefined;
  }
  const g = input.grid;
  const [c, oh, ow] = layer.shape;
  const grid: SlotGrid = {
    offset: g.offset,
    c,
    h: oh,
    w: ow,
    cs: g.cs,
    rs: g.rs * layer.strides[0],
    xs: g.xs * layer.strides[1],
    sub: layer.kind === 'conv' ? [0] : g.sub,
  };
  if (layer.kind === 'conv' && !gridFits(grid, period)) {
    const shared = sharedBlocks(grid, period);
    if (shared) return shared;
  }
  return gridFits(grid, limit) ? grid : undefined;
}

/**
 * `grid` with channels sharing blocks — each next channel of a block at the first offset inside the block where
 * its elements meet no other channel's — for the fewest channels per block that fit below `period`; `undefined`
 * when no sharing does.
 */
function sharedBlocks(grid: SlotGrid, period: number): SlotGrid | undefined {
  const sub = [0];
  const used = new Uint8Array(grid.cs);
  const mark = (t: number, set: boolean): boolean => {
    for (let y = 0; y < grid.h; y++)
      for (let x = 0; x < grid.w; x++) {
        const s = t + y * grid.rs + x * grid.xs;
        if (s >= grid.cs || used[s] === 1) return false;
        if (set) used[s] = 1;
      }
    return true;
  };
  if (!mark(0, true)) return undefined;
  for (let t = 1; t < grid.cs && sub.length < grid.c; t++) {
    if (!mark(t, false)) continue;
    mark(t, true);
    sub.push(t);
    const shared = { ...grid, sub: [...sub] };
    if (gridFits(shared, period)) return shared;
  }
  return undefined;
}

/**
 * The rotation offsets of a max pooling on `input`: element (ky, kx) of every window sits `rows[ky] + columns[kx]`
 * slots after the window's first element; `undefined` when windows are clipped by padding or not alike in slots.
 */
function poolOffsets(
  layer: MaxPoolLayer,
  inShape: readonly number[],
  input: SlotLayout,
): { rows: number[]; columns: number[] } | undefined {
  const windows = poolWindows(layer, inShape);
  const [kh, kw] = layer.kernel;
  if (windows.length === 0 || windows.some((w) => w.length !== kh * kw)) return undefined;
  const first = windows[0];
  const offset = (t: number) => input.slots[first[t]] - input.slots[first[0]];
  const columns = Array.from({ length: kw }, (_, kx) => offset(kx));
  const rows = Array.from({ length: kh }, (_, ky) => offset(ky * kw));
  if ([...columns, ...rows].some((o) => o < 0)) return undefined;
  for (const window of windows) {
    const base = input.slots[window[0]];
    for (let ky = 0; ky < kh; ky++)
      for (let kx = 0; kx < kw; kx++)
        if (input.slots[window[ky * kw + kx]] - base !== rows[ky] + columns[kx]) return undefined;
  }
  return { rows, columns };
}

/**
 * Plans where every tensor of `model` sits in the slots (see the module comment), using at most `maxSlots` slots.
 *
 * @internal
 * @throws UnsupportedModelError for a polynomial MaxPool whose windows are clipped by padding.
 * @example
 * ```ts
 * const plan = planLatencyLayouts(model, 2 ** 15);
 * plan.period; // e.g. 16384
 * ```
 */
export function planLatencyLayouts(model: LayerModel, maxSlots: number): LatencyLayoutPlan {
  const inputShape = chwInputShape(model);
  const layouts = new Map<string, SlotLayout>([
    [model.inputName, compactLayout(shapeSize(model.inputShape), model.inputShape)],
  ]);
  const steps = new Map<Layer, LatencyStep>();
  // Tensors whose ciphertext is zero outside their slots: the model input (the client zero-pads each block) and
  // every matrix output; an activation maps the zeros to p(0).
  const clean = new Set<string>([model.inputName]);
  const relayouts = new Map<Layer, LatencyStep & { kind: 'matrix' }>();
  const gathers = new Map<Layer, LatencyStep & { kind: 'matrix' }>();
  let extent = shapeSize(model.inputShape);
  const readers = new Map<string, Layer[]>();
  for (const layer of model.layers)
    for (const name of layer.inputs) {
      const list = readers.get(name);
      if (list) list.push(layer);
      else readers.set(name, [layer]);
    }
  /** True when every path from tensor `name` reaches a matrix through squares, bias additions and reshapes only. */
  const onlyMatrixReads = (name: string): boolean => {
    if (name === model.outputName) return false;
    const list = readers.get(name) ?? [];
    return (
      list.length > 0 &&
      list.every((reader) => {
        if (reader.inputs[0] !== name) return false;
        switch (reader.kind) {
          case 'dense':
            return true;
          case 'affine':
            return reader.scale.some((v) => v !== 1) || onlyMatrixReads(reader.output);
          case 'square':
          case 'reshape':
            return onlyMatrixReads(reader.output);
          default:
            return false;
        }
      })
    );
  };
  const use = (layout: SlotLayout) => {
    for (const s of layout.slots) extent = Math.max(extent, s + 1);
  };
  for (const layer of model.layers) {
    const input = layouts.get(layer.inputs[0]);
    if (!input)
      throw new UnsupportedModelError(
        `layer '${layer.name}' reads '${layer.inputs[0]}', which no layer writes`,
      );
    const size = shapeSize(layer.shape);
    let step: LatencyStep;
    switch (layer.kind) {
      case 'reshape': {
        const grid =
          layer.shape.length === 3 &&
          input.grid &&
          input.grid.c === layer.shape[0] &&
          input.grid.h === layer.shape[1] &&
          input.grid.w === layer.shape[2]
            ? input.grid
            : undefined;
        step = {
          kind: 'elementwise',
          output: { slots: input.slots, compact: input.compact, ...(grid ? { grid } : {}) },
        };
        break;
      }
      case 'maxPool': {
        if (layer.approx?.method === 'polynomial') {
          const offsets = poolOffsets(layer, inputShape(layer), input);
          const grid = spatialOutputGrid(layer, input, maxSlots, periodOf(extent));
          if (!offsets || !grid) {
            throw new UnsupportedModelError(
              `layer '${layer.name}' (MaxPool, kernel ${layer.kernel.join('×')}, strides ${layer.strides.join('×')}, ` +
                `pads ${layer.pads.join(',')}): latency packing computes a polynomial max only over unpadded windows`,
              { node: layer.sources[0], opType: 'MaxPool' },
            );
          }
          step = { kind: 'maxPool', input, output: gridLayout(grid), ...offsets };
          break;
        }
        step = { kind: 'matrix', input, output: matrixOutput(layer, input, maxSlots, periodOf(extent)) };
        break;
      }
      case 'dense': {
        const output = matrixOutput(layer, input, maxSlots, periodOf(extent));
        const hybrid = onlyMatrixReads(layer.output)
          ? hybridRowsFor(input, output, periodOf(extent))
          : undefined;
        if (hybrid) {
          step = { kind: 'matrix', input, output, hybrid };
          break;
        }
        const gathered = input.compact ? undefined : gatherLayout(input, output, periodOf(extent));
        if (gathered) gathers.set(layer, { kind: 'matrix', input, output: gathered });
        step = { kind: 'matrix', input: gathered ?? input, output };
        break;
      }
      case 'conv': {
        const output = matrixOutput(layer, input, maxSlots, periodOf(extent));
        const replicate = clean.has(layer.inputs[0]) ? replicationFor(input, output) : undefined;
        step = { kind: 'matrix', input, output, ...(replicate ? { replicate } : {}) };
        break;
      }
      case 'avgPool':
      case 'globalAvgPool':
        step = { kind: 'matrix', input, output: matrixOutput(layer, input, maxSlots, periodOf(extent)) };
        break;
      case 'affine':
        // A per-element scale is a diagonal matrix: one diagonal when the output stays where the input is.
        step = layer.scale.every((v) => v === 1)
          ? { kind: 'elementwise', output: input }
          : { kind: 'matrix', input, output: input };
        break;
      case 'binary': {
        const other = layouts.get(layer.inputs[1]);
        if (!other)
          throw new UnsupportedModelError(
            `layer '${layer.name}' reads '${layer.inputs[1]}', which no layer writes`,
          );
        if (!sameSlots(input, other)) relayouts.set(layer, { kind: 'matrix', input: other, output: input });
        step = { kind: 'elementwise', output: input };
        break;
      }
      case 'square':
      case 'activation':
        step = { kind: 'elementwise', output: input };
        break;
    }
    if (step.output.slots.length !== size) {
      throw new Error(
        `compiler: layer ${layer.name} laid out ${step.output.slots.length} values, expected ${size}`,
      );
    }
    use(step.output);
    if (
      step.kind === 'matrix' &&
      step.replicate &&
      step.replicate.shift * step.replicate.copies > periodOf(extent)
    )
      throw new Error(`compiler: layer ${layer.name} replicates its input past its block`);
    if ((step.kind === 'matrix' && !step.hybrid) || (layer.kind === 'reshape' && clean.has(layer.inputs[0])))
      clean.add(layer.output);
    steps.set(layer, step);
    layouts.set(layer.output, step.output);
  }
  const out = layouts.get(model.outputName);
  const final =
    out && !out.compact
      ? { kind: 'matrix' as const, input: out, output: compactLayout(out.slots.length) }
      : undefined;
  return {
    steps,
    relayouts,
    gathers,
    ...(final ? { final } : {}),
    period: periodOf(extent),
  };
}

/**
 * Where to gather a dense layer's `input` first, or `undefined` when reading it where it is costs no more than
 * twice as many diagonals. A dense matrix from inputs spread over S slots to outputs in T slots has a diagonal
 * for every distinct difference — after two strided poolings 1,024 inputs spread over 25,000 slots make 15,264
 * diagonals for 128 outputs (500 M constants). Gathering costs one level and a matrix of one diagonal per group of
 * inputs moved together: the inputs are cut into groups of `g` consecutive slots and each group, its gaps kept,
 * is placed at the first offset where it meets no group placed before (first fit, so the groups interleave in
 * each other's gaps). The group size with the fewest diagonals in all (gather plus dense) wins: 128 + 1,151 for
 * the example above.
 */
function gatherLayout(input: SlotLayout, output: SlotLayout, period: number): SlotLayout | undefined {
  const direct = diagonalCount(input.slots, output.slots, period);
  let best: { slots: Int32Array; cost: number } | undefined;
  for (let g = 16; g < period; g *= 2) {
    const slots = firstFitGroups(input.slots, g, period);
    if (!slots) continue;
    const cost = diagonalCount(input.slots, slots, period, true) + diagonalCount(slots, output.slots, period);
    if (!best || cost < best.cost) best = { slots, cost };
  }
  if (!best || 2 * best.cost > direct) return undefined;
  let compact = true;
  for (let i = 0; i < best.slots.length; i++) if (best.slots[i] !== i) compact = false;
  return { slots: best.slots, compact };
}

/**
 * The hybrid method for a dense matrix (see {@link HybridRows}) when it has fewer diagonals than the plain method,
 * even after a gather: its outputs compact, `rows` the power of two that holds them, `span` the power of two past
 * the last partial sum, inside the period. `undefined` when it does not fit or does not pay.
 */
function hybridRowsFor(input: SlotLayout, output: SlotLayout, period: number): HybridRows | undefined {
  if (!output.compact) return undefined;
  const rows = periodOf(output.slots.length);
  let last = 0;
  for (const j of input.slots) last = Math.max(last, j);
  const span = periodOf(last + rows);
  if (span > period || span <= rows) return undefined;
  // The plain method needs at least one diagonal per output-input offset inside a compact output (at least
  // inputs + outputs − 1 of them after a gather); the hybrid method needs at most `rows`, plus log2(span / rows)
  // rotations.
  const plain = input.slots.length + output.slots.length - 1;
  return rows + Math.log2(span / rows) < plain ? { rows, span } : undefined;
}

/**
 * Distinct diagonals (j − i mod `period`) of a matrix from slots `from` to slots `to`: every pair, or with
 * `paired` only element i to element i (a move).
 */
function diagonalCount(from: Int32Array, to: Int32Array, period: number, paired = false): number {
  const used = new Uint8Array(period);
  let count = 0;
  const mark = (j: number, i: number) => {
    const k = (((j - i) % period) + period) % period;
    if (used[k] === 0) {
      used[k] = 1;
      count++;
    }
  };
  if (paired) for (let e = 0; e < from.length; e++) mark(from[e], to[e]);
  else for (const j of from) for (const i of to) mark(j, i);
  return count;
}

/** `slots` moved group by group (groups of `g` slots, see {@link gatherLayout}); `undefined` when they do not fit. */
function firstFitGroups(slots: Int32Array, g: number, period: number): Int32Array | undefined {
  const groups = new Map<number, number[]>();
  slots.forEach((s, e) => {
    const key = Math.floor(s / g);
    let list = groups.get(key);
    if (!list) groups.set(key, (list = []));
    list.push(e);
  });
  const used = new Uint8Array(period);
  const out = new Int32Array(slots.length);
  for (const key of [...groups.keys()].sort((a, b) => a - b)) {
    const members = groups.get(key) as number[];
    let low = period;
    for (const e of members) low = Math.min(low, slots[e]);
    let t = 0;
    const fits = (t: number) =>
      members.every((e) => slots[e] - low + t < period && used[slots[e] - low + t] === 0);
    while (t < period && !fits(t)) t++;
    if (t === period) return undefined;
    for (const e of members) {
      out[e] = slots[e] - low + t;
      used[out[e]] = 1;
    }
  }
  return out;
}

/**
 * Copies of a convolution's input when it sits in one channel block and its output spans several: with a copy of
 * the input in every output block, each output channel reads its input at the kernel offsets inside its own block,
 * so the matrix needs a diagonal per kernel offset (each one holding every channel's weights) instead of one per
 * (channel block, kernel offset) — for the first 5×5 convolution of an MNIST CNN with 8 channels, 3 doubling
 * rotations and 25 diagonals (24 hoisted rotations) instead of 200 diagonals and 45 rotations, at the top level
 * where rotations cost the most. `undefined` when the input spans several blocks or the output one. The caller
 * checks that the input is zero outside its slots (the doubling adds every slot of the input onto another).
 */
function replicationFor(input: SlotLayout, output: SlotLayout): Replication | undefined {
  const gi = input.grid;
  const go = output.grid;
  if (!gi || !go || gi.cs !== go.cs || gi.offset !== go.offset || gi.c > gi.sub.length) return undefined;
  const blocks = Math.ceil(go.c / go.sub.length);
  if (blocks < 2) return undefined;
  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (const s of input.slots) {
    low = Math.min(low, s);
    high = Math.max(high, s);
  }
  if (low < gi.offset || high >= gi.offset + gi.cs) return undefined;
  return { shift: gi.cs, copies: blocks };
}

/**
 * `copies` copies of `x` by doubling, copy t moved up t blocks: aggregate b (copies 0 … 2^b − 1) is aggregate b−1
 * plus itself moved up 2^(b−1) blocks; the result is the largest aggregate that fits plus smaller ones moved past
 * it, so that no copy lands beyond the last block (it would add onto the next image's slots). `move` and `add` act
 * on ciphertexts in the compiler and on anything else in a test. Returns the result and the number of moves.
 *
 * @internal
 * @example
 * ```ts
 * replicateByDoubling(x, 5, (v, k) => emitter.rotate(v, wrap - k * shift), (a, b) => emitter.addSub('add', a, b));
 * // aggregates of copies 0–1 and 0–3 (2 moves), then copy 0 moved up 4 blocks onto them (1 move)
 * ```
 */
export function replicateByDoubling<T>(
  x: T,
  copies: number,
  move: (value: T, blocks: number) => T,
  add: (a: T, b: T) => T,
): { result: T; moves: number } {
  const aggregates = [x];
  while (2 ** aggregates.length <= copies) {
    const top = aggregates[aggregates.length - 1];
    aggregates.push(add(top, move(top, 2 ** (aggregates.length - 1))));
  }
  let moves = aggregates.length - 1;
  let result = aggregates[aggregates.length - 1];
  let covered = 2 ** moves;
  for (let b = aggregates.length - 2; b >= 0; b--)
    if (copies - covered >= 2 ** b) {
      result = add(result, move(aggregates[b], covered));
      covered += 2 ** b;
      moves++;
    }
  return { result, moves };
}

/**
 * The input slot entry (output slot `i`, input slot `j`) reads when the input is replicated: the copy nearest the
 * output slot, so that the entry's diagonal is the kernel offset inside the block.
 *
 * @internal
 */
export function replicatedColumn(i: number, j: number, replicate: Replication): number {
  const t = Math.min(replicate.copies - 1, Math.max(0, Math.round((i - j) / replicate.shift)));
  return j + t * replicate.shift;
}

/** The power of two (≥ 2) that holds `extent` slots. */
function periodOf(extent: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(2, extent)));
}

function matrixOutput(layer: Layer, input: SlotLayout, maxSlots: number, period: number): SlotLayout {
  const grid = spatialOutputGrid(layer, input, maxSlots, period);
  return grid ? gridLayout(grid) : compactLayout(shapeSize(layer.shape), layer.shape);
}

/**
 * The entries of a matrix step in slots: visits (output slot — under the hybrid method, the partial sum's slot —,
 * input slot, weight) and returns the bias scattered to the output slots (`period` long). A relayout (`layer`
 * undefined) moves each element unchanged.
 *
 * @internal
 * @example
 * ```ts
 * const y = emitter.matrix(x, (visit) => slotMatrix(layer, step, inputShape, visit, period), period);
 * ```
 */
export function slotMatrix(
  layer: Layer | undefined,
  step: LatencyStep & { kind: 'matrix' },
  inputShape: (layer: Layer) => readonly number[],
  visit: (i: number, j: number, w: number) => void,
  period: number,
): { bias: Float64Array } {
  const inSlots = step.input.slots;
  const outSlots = step.output.slots;
  const bias = new Float64Array(period);
  if (layer === undefined) {
    for (let i = 0; i < outSlots.length; i++) visit(outSlots[i], inSlots[i], 1);
    return { bias };
  }
  const replicate = step.replicate;
  const hybrid = step.hybrid;
  const { bias: compactBias } = visitLinear(layer, inputShape, (i, j, w) => {
    if (hybrid) visit(hybridRow(outSlots[i], inSlots[j], hybrid), inSlots[j], w);
    else visit(outSlots[i], replicate ? replicatedColumn(outSlots[i], inSlots[j], replicate) : inSlots[j], w);
  });
  for (let i = 0; i < compactBias.length; i++) bias[outSlots[i]] = compactBias[i];
  return { bias };
}
