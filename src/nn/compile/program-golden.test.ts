/*
 * Golden vectors of the HE program: the SHA-256 of `encodeProgram` of a tiny fixed model compiled in both
 * packings, pinned as hex literals.
 *
 * What a failure means. The program bytes changed: either the program format (the HEP1 container, the JSON
 * fields, their order, the constants blob) or what the compiler emits (instructions, operand ids, levels, scales,
 * byte sizes, keys, rotation steps, parameter choice, the approximation of the activation). A server that loads
 * a program file written by an earlier build would read something else:
 *   - a deliberate change of the program format must bump PROGRAM_VERSION in src/program/program.ts, and the new
 *     digests are pinned here in the same commit;
 *   - a deliberate change of what the compiler emits keeps the version, and the commit message must say what
 *     changed in the programs and why these digests moved;
 *   - anything else (a refactoring, a split of the compiler or of the program module) must leave both digests as
 *     they are: a failure is a bug.
 * The round-trip test fails on its own when decodeProgram and encodeProgram disagree.
 *
 * The model is a LayerModel literal (not an ONNX file), so the ONNX importer is not part of these vectors, and its
 * weights are binary fractions written out here (no pseudo-random generator whose version could move them).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { type CompileOptions, compileModel } from './index.ts';
import type { LayerModel } from '../layers.ts';
import { decodeProgram, encodeProgram } from '../../program/codec.ts';
import { PROGRAM_VERSION } from '../../program/program.ts';

/** `count` binary fractions in [-0.5, 0.5) from a fixed affine sequence modulo 64. */
function fixedWeights(count: number, step: number, offset: number): Float64Array {
  return Float64Array.from({ length: count }, (_, i) => ((i * step + offset) % 64) / 64 - 0.5);
}

/** Conv 3×3 (2 channels) → x² → average pool 2×2 → flatten → dense 8→4 → ReLU → dense 4→3 on 4×4 images. */
const MODEL: LayerModel = {
  inputName: 'x',
  inputShape: [1, 4, 4],
  onnxInputShape: [1, 4, 4],
  outputName: 'logits',
  outputShape: [3],
  droppedSoftmax: false,
  source: { producerName: 'golden', producerVersion: '1', opset: 13, irVersion: 8 },
  layers: [
    {
      kind: 'conv',
      name: 'conv1',
      sources: ['conv1'],
      inputs: ['x'],
      output: 'c1',
      shape: [2, 4, 4],
      inChannels: 1,
      outChannels: 2,
      kernel: [3, 3],
      strides: [1, 1],
      pads: [1, 1, 1, 1],
      group: 1,
      weight: fixedWeights(18, 5, 3),
      bias: Float64Array.of(0.125, -0.25),
    },
    { kind: 'square', name: 'square1', sources: ['square1'], inputs: ['c1'], output: 's1', shape: [2, 4, 4] },
    {
      kind: 'avgPool',
      name: 'pool1',
      sources: ['pool1'],
      inputs: ['s1'],
      output: 'p1',
      shape: [2, 2, 2],
      kernel: [2, 2],
      strides: [2, 2],
      pads: [0, 0, 0, 0],
      countIncludePad: true,
    },
    { kind: 'reshape', name: 'flatten1', sources: ['flatten1'], inputs: ['p1'], output: 'f1', shape: [8] },
    {
      kind: 'dense',
      name: 'dense1',
      sources: ['dense1'],
      inputs: ['f1'],
      output: 'd1',
      shape: [4],
      inFeatures: 8,
      outFeatures: 4,
      weight: fixedWeights(32, 13, 7),
      bias: Float64Array.of(0, 0.0625, -0.0625, 0.25),
    },
    {
      kind: 'activation',
      name: 'relu1',
      sources: ['relu1'],
      inputs: ['d1'],
      output: 'r1',
      shape: [4],
      fn: 'relu',
    },
    {
      kind: 'dense',
      name: 'dense2',
      sources: ['dense2'],
      inputs: ['r1'],
      output: 'logits',
      shape: [3],
      inFeatures: 4,
      outFeatures: 3,
      weight: fixedWeights(12, 11, 1),
      bias: Float64Array.of(0.5, 0, -0.5),
    },
  ],
};

/** A fixed interval and degree for the ReLU, so no calibration data takes part. */
const APPROXIMATION: CompileOptions['approximation'] = { intervals: { relu1: [-4, 4] }, degree: 7 };

const GOLDEN: readonly {
  readonly name: string;
  readonly options: CompileOptions;
  readonly digest: string;
}[] = [
  {
    name: 'batch packing, 16 images',
    options: { mode: 'batch', batchSize: 16, approximation: APPROXIMATION },
    digest: 'ade3c9d4bb007a57ac511ba47e1dd00038d94268464fa833774c7eebafabbe0a',
  },
  {
    name: 'latency packing',
    options: { mode: 'latency', approximation: APPROXIMATION },
    digest: '1a199806f90a2624b073031498f478ce7892cffbd8e9b62001c72db9d13d85f8',
  },
];

describe('HE program golden vectors (program version 5)', () => {
  it('the program version these vectors were made with', () => {
    // A new version needs new vectors: make them, pin them here and change this number with them.
    assert.equal(PROGRAM_VERSION, 5);
  });

  for (const golden of GOLDEN) {
    describe(golden.name, () => {
      const bytes = encodeProgram(compileModel(MODEL, golden.options).program);

      it('the SHA-256 of encodeProgram is the pinned one', () => {
        // Failure: the program format or the compiler's output changed (see the top of this file): bump
        // PROGRAM_VERSION for a format change, or explain in the commit what the compiler now emits differently.
        assert.equal(bytesToHex(sha256(bytes)), golden.digest);
      });

      it('decoding and encoding again gives the same bytes', () => {
        // Failure: decodeProgram and encodeProgram disagree (a field dropped, reordered or converted on the way).
        assert.equal(bytesToHex(sha256(encodeProgram(decodeProgram(bytes)))), golden.digest);
      });
    });
  }
});
