/**
 * Small ONNX models built in code for the compiler and runtime tests: a ReLU CNN the compiler must approximate,
 * a chain of squares of any depth, and a CNN with MaxPool.
 */
import { importOnnx } from '../../src/nn/onnx/import.ts';
import type { LayerModel } from '../../src/nn/layers.ts';
import { OnnxBuilder } from './onnx-builder.ts';
import { seededValues } from './test-helpers.ts';

/** Conv → Relu → Gemm on 6×6 images: a non-polynomial activation the compiler must approximate. */
export function reluModel(): LayerModel {
  const b = new OnnxBuilder();
  const x = b.input('x', ['N', 1, 6, 6]);
  const c = b.conv(x, {
    weight: seededValues(18, 21, -0.6, 0.6),
    weightDims: [2, 1, 3, 3],
    bias: [0.05, -0.1],
    strides: [2, 2],
    pads: [1, 1, 1, 1],
  });
  b.node('Relu', [c], {}, { name: 'relu1', outputs: ['r1'] });
  b.output(
    b.gemm(b.flatten('r1'), {
      weight: seededValues(18 * 4, 22, -1, 1),
      weightDims: [18, 4],
      bias: [0, 0.1, 0.2, 0.3],
    }),
  );
  return importOnnx(b.toBytes());
}

/** `squares` chained x² layers after a 2→2 Gemm. */
export function deepModel(squares: number): LayerModel {
  const b = new OnnxBuilder();
  let v = b.gemm(b.input('x', ['N', 2]), { weight: [0.5, 0.1, 0.2, 0.4], weightDims: [2, 2] });
  for (let i = 0; i < squares; i++) v = b.node('Mul', [v, v])[0];
  b.output(v);
  return importOnnx(b.toBytes());
}

/** Conv → x² → MaxPool 2×2 → Gemm: the polynomial max (or averaging) under encryption. */
export function maxPoolModel(): LayerModel {
  const b = new OnnxBuilder();
  const x = b.input('x', ['N', 1, 4, 4]);
  const c = b.conv(x, {
    weight: seededValues(9, 31, -0.6, 0.6),
    weightDims: [1, 1, 3, 3],
    pads: [1, 1, 1, 1],
  });
  const s = b.node('Mul', [c, c])[0];
  b.node('MaxPool', [s], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool1', outputs: ['p1'] });
  b.output(
    b.gemm(b.flatten('p1'), { weight: seededValues(8, 32, -1, 1), weightDims: [4, 2], bias: [0.1, -0.1] }),
  );
  return importOnnx(b.toBytes());
}

/**
 * Conv → Relu → MaxPool `kernel`×`kernel` (stride `stride`, padding `pad`) → Gemm on 6×6 images: a wide window,
 * reduced along its rows and then across them; with padding, windows at the edges are clipped. The ReLU's
 * polynomial takes the max's interval map (folding), so the max starts from a − b.
 */
export function wideMaxPoolModel(kernel: number, stride: number, pad = 0): LayerModel {
  const b = new OnnxBuilder();
  const x = b.input('x', ['N', 1, 6, 6]);
  const c = b.conv(x, {
    weight: seededValues(9, 36, -0.6, 0.6),
    weightDims: [1, 1, 3, 3],
    pads: [1, 1, 1, 1],
  });
  const r = b.node('Relu', [c])[0];
  b.node(
    'MaxPool',
    [r],
    { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad] },
    { name: 'pool1', outputs: ['p1'] },
  );
  const side = Math.floor((6 + 2 * pad - kernel) / stride) + 1;
  b.output(
    b.gemm(b.flatten('p1'), {
      weight: seededValues(side * side * 2, 37, -1, 1),
      weightDims: [side * side, 2],
      bias: [0.1, -0.1],
    }),
  );
  return importOnnx(b.toBytes());
}

/**
 * Conv → x² → MaxPool 2×2 → Conv (padded) → x² → MaxPool 2×2 → Gemm on 8×8 images: in latency packing the second
 * convolution and pooling read a strided grid of slots, the Gemm a doubly strided one.
 */
export function twoPoolModel(): LayerModel {
  const b = new OnnxBuilder();
  const x = b.input('x', ['N', 1, 8, 8]);
  const c1 = b.conv(x, {
    weight: seededValues(18, 41, -0.6, 0.6),
    weightDims: [2, 1, 3, 3],
    bias: [0.1, -0.05],
    pads: [1, 1, 1, 1],
  });
  const s1 = b.node('Mul', [c1, c1])[0];
  b.node('MaxPool', [s1], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool1', outputs: ['p1'] });
  const c2 = b.conv('p1', {
    weight: seededValues(54, 42, -0.5, 0.5),
    weightDims: [3, 2, 3, 3],
    bias: [0, 0.1, -0.1],
    pads: [1, 1, 1, 1],
  });
  const s2 = b.node('Mul', [c2, c2])[0];
  b.node('MaxPool', [s2], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool2', outputs: ['p2'] });
  b.output(
    b.gemm(b.flatten('p2'), {
      weight: seededValues(36, 43, -1, 1),
      weightDims: [12, 3],
      bias: [0.1, 0, -0.1],
    }),
  );
  return importOnnx(b.toBytes());
}

/**
 * The head the approximation tests' CNNs share: x [N, 1, 8, 8] → Conv 4×3×3 (pads 1) → Relu 'relu1' → MaxPool 2×2
 * 'pool1' → Flatten → Gemm 64 → `width`. Weights are seeded from `seed` on; `weights` goes on from where the head
 * stopped, for the layers the caller adds after `gemm`.
 */
export function convPoolGemmHead(
  seed: number,
  width: number,
): { b: OnnxBuilder; gemm: string; weights: (n: number, s?: number) => Float64Array } {
  let next = seed;
  const weights = (n: number, s = 0.5) => seededValues(n, next++, -s, s);
  const b = new OnnxBuilder();
  const x = b.input('x', ['N', 1, 8, 8]);
  const c = b.conv(x, {
    weight: weights(4 * 9),
    weightDims: [4, 1, 3, 3],
    bias: weights(4),
    pads: [1, 1, 1, 1],
  });
  b.node('Relu', [c], {}, { name: 'relu1', outputs: ['r1'] });
  b.node('MaxPool', ['r1'], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool1', outputs: ['p1'] });
  const gemm = b.gemm(b.flatten('p1'), {
    weight: weights(64 * width),
    weightDims: [64, width],
    bias: weights(width),
  });
  return { b, gemm, weights };
}

/**
 * A small ResNet on 2×4×4 images: a stem convolution and ReLU, then `blocks` residual blocks (conv → ReLU → conv,
 * plus the block's input, → ReLU), global average pooling and a 2 → 3 Gemm. Deep enough in ReLUs to need
 * bootstraps, small enough to run encrypted at logN 10.
 */
export function residualModel(blocks: number): LayerModel {
  const b = new OnnxBuilder();
  const conv = (x: string, salt: number) =>
    b.conv(x, {
      weight: waves(2 * 2 * 9, salt, 0.35),
      weightDims: [2, 2, 3, 3],
      bias: waves(2, salt + 1, 0.1),
      pads: [1, 1, 1, 1],
    });
  let v = b.relu(conv(b.input('x', ['N', 2, 4, 4]), 40));
  for (let i = 0; i < blocks; i++) {
    const inner = conv(b.relu(conv(v, 41 + 4 * i)), 43 + 4 * i);
    v = b.relu(b.node('Add', [inner, v])[0]);
  }
  b.output(
    b.gemm(b.flatten(b.globalAveragePool(v)), {
      weight: waves(6, 60, 1),
      weightDims: [2, 3],
      bias: [0.1, 0, -0.1],
    }),
  );
  return importOnnx(b.toBytes());
}

/** n smooth pseudo-random values within ±amplitude (no edge cases: every weight counts). */
function waves(n: number, salt: number, amplitude: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => amplitude * Math.sin(1.7 * salt + 2.3 * i + 0.5));
}
