import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import { OnnxBuilder } from '../../../tests/support/onnx-builder.ts';
import { FormatError, InvalidArgumentError } from '../../util/errors.ts';
import { UnsupportedModelError } from '../errors.ts';
import { findModelFile } from '../../platform/bundled-files.ts';
import { decodeOnnx } from './decode.ts';
import { inlineExternalData } from './external-data.ts';
import { importOnnx } from './import.ts';
import { decodeTensor } from './tensor.ts';

const { onnx } = onnxProto;
const cryptonets = readFileSync(findModelFile('cryptonets-mnist.onnx'));
const lola = readFileSync(findModelFile('lola-small-mnist.onnx'));

describe('decodeOnnx', () => {
  it('decodes the CryptoNets graph: header, input, nodes and initializers', () => {
    const g = decodeOnnx(cryptonets);
    assert.equal(g.opset, 13);
    assert.equal(g.irVersion, 7);
    assert.equal(g.producerName, 'weights-conversion');
    assert.deepEqual(g.inputs, [{ name: 'input', dtype: 'float32', shape: ['N', 1, 28, 28] }]);
    assert.deepEqual(g.outputs, [{ name: 'logits', dtype: 'float32', shape: ['N', 10] }]);
    assert.deepEqual(
      g.nodes.map((n) => n.opType),
      ['Conv', 'Mul', 'Flatten', 'Gemm', 'Mul', 'Gemm'],
    );
    const conv = g.nodes[0];
    assert.deepEqual(conv.attributes.get('pads'), { kind: 'ints', value: [0, 0, 1, 1] });
    assert.deepEqual(conv.attributes.get('strides'), { kind: 'ints', value: [2, 2] });
    const w = g.initializers.get('fc1.W');
    assert.ok(w);
    assert.deepEqual(w.dims, [845, 100]);
    assert.equal(w.data.length, 84500);
    // 85,740 parameters as documented in models/PROVENANCE.md.
    assert.equal(
      [...g.initializers.values()].reduce((s, t) => s + t.data.length, 0),
      85740,
    );
  });

  it('names unnamed nodes by index (LoLa-Small has empty node names)', () => {
    const g = decodeOnnx(lola);
    assert.deepEqual(
      g.nodes.map((n) => n.name),
      ['#0', '#1', '#2', '#3'],
    );
    assert.equal(
      [...g.initializers.values()].reduce((s, t) => s + t.data.length, 0),
      8590,
    );
  });

  it('decodes typed tensor fields and raw data of every accepted type identically', () => {
    const values = [1.5, -2.25, 3, 0];
    for (const dtype of ['float32', 'float64', 'int32', 'int64'] as const) {
      const v = dtype.startsWith('int') ? [7, -3, 123456789, 0] : values;
      for (const encoding of ['raw', 'typed'] as const) {
        const b = new OnnxBuilder();
        b.initializer('t', { dims: [2, 2], values: v, dtype, encoding });
        const x = b.input('x', ['N', 4]);
        b.output(b.node('Identity', [x], {}, { outputs: ['y'] })[0]);
        const t = decodeOnnx(b.toBytes()).initializers.get('t');
        assert.ok(t, `${dtype} ${encoding}`);
        assert.equal(t.dtype, dtype);
        assert.deepEqual([...t.data], v);
      }
    }
  });

  it('decodes int64 raw values beyond 32 bits and negative ones', () => {
    const raw = new Uint8Array(16);
    const view = new DataView(raw.buffer);
    view.setBigInt64(0, -5n, true);
    view.setBigInt64(8, 2n ** 40n + 3n, true);
    const t = decodeTensor({ name: 's', dims: [2], dataType: 7, rawData: raw }, 'test');
    assert.deepEqual([...t.data], [-5, 2 ** 40 + 3]);
  });

  it('rejects a raw_data length that disagrees with the dims, naming the tensor', () => {
    assert.throws(
      () => decodeTensor({ name: 'w', dims: [3], dataType: 1, rawData: new Uint8Array(8) }, 'initializer'),
      (e: unknown) => e instanceof FormatError && /'w'.*8 bytes.*12/.test(e.message),
    );
  });

  it('rejects unsupported element types with UnsupportedModelError', () => {
    assert.throws(
      () => decodeTensor({ name: 'q', dims: [1], dataType: 10, rawData: new Uint8Array(2) }, 'initializer'),
      (e: unknown) =>
        e instanceof UnsupportedModelError && /FLOAT16/.test(e.message) && e.code === 'UNSUPPORTED_MODEL',
    );
  });

  it('rejects bad bytes with FormatError naming what failed', () => {
    assert.throws(() => decodeOnnx(new Uint8Array(0)), FormatError);
    assert.throws(
      () => decodeOnnx(cryptonets.subarray(0, 1000)),
      (e: unknown) => e instanceof FormatError && /protobuf|ir_version|graph/.test(e.message),
    );
    assert.throws(() => decodeOnnx(new TextEncoder().encode('definitely not an onnx file')), FormatError);
    assert.throws(() => decodeOnnx('x' as unknown as Uint8Array), InvalidArgumentError);
  });

  it('accepts opsets 7–23 (PyTorch 2.9 writes 20), rejects others and models without a graph', () => {
    for (const opset of [7, 18, 20, 23]) {
      const ok = new OnnxBuilder({ opset, irVersion: opset > 18 ? 10 : 7 });
      ok.output(ok.relu(ok.input('x', ['N', 4])));
      assert.equal(importOnnx(ok.toBytes()).source.opset, opset);
    }
    for (const opset of [6, 24]) {
      const b = new OnnxBuilder({ opset });
      b.output(b.relu(b.input('x', ['N', 4])));
      assert.throws(
        () => decodeOnnx(b.toBytes()),
        (e: unknown) => e instanceof UnsupportedModelError && new RegExp(`opset ${opset}`).test(e.message),
      );
    }
    const noGraph = onnx.ModelProto.encode({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
    }).finish();
    assert.throws(
      () => decodeOnnx(noGraph),
      (e: unknown) => e instanceof FormatError && /no graph/.test(e.message),
    );
  });

  it('rejects a node input that no earlier node defines', () => {
    const b = new OnnxBuilder();
    b.input('x', ['N', 4]);
    b.node('Relu', ['nowhere'], {}, { outputs: ['y'], name: 'r' });
    b.output('y');
    assert.throws(
      () => decodeOnnx(b.toBytes()),
      (e: unknown) => e instanceof FormatError && /'nowhere'.*'r'/.test(e.message),
    );
  });
});

/** The model with its nodes in reverse order, as keras2onnx 1.5 wrote them. */
function reverseNodes(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  model.graph?.node?.reverse();
  return onnx.ModelProto.encode(model).finish();
}

/** Moves every float initializer into one external file, as PyTorch ≥ 2.9 writes `model.onnx.data`. */
function externalize(bytes: Uint8Array, location: string): { model: Uint8Array; data: Uint8Array } {
  const model = onnx.ModelProto.decode(bytes);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataType !== onnx.TensorProto.DataType.FLOAT) continue;
    const raw = Uint8Array.from(t.rawData ?? []);
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ].map((e) => onnx.StringStringEntryProto.create(e));
    t.rawData = new Uint8Array(0);
    chunks.push(raw);
    offset += raw.length;
  }
  const data = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return { model: onnx.ModelProto.encode(model).finish(), data };
}

describe('node order and external data', () => {
  it('sorts nodes written out of order (keras2onnx 1.5) into the same model, and rejects cycles', () => {
    const reversed = reverseNodes(cryptonets);
    const g = decodeOnnx(reversed);
    assert.deepEqual(
      g.nodes.map((n) => n.opType),
      ['Conv', 'Mul', 'Flatten', 'Gemm', 'Mul', 'Gemm'],
    );
    assert.deepEqual(importOnnx(reversed), importOnnx(cryptonets));
    const b = new OnnxBuilder();
    const x = b.input('x', ['N', 4]);
    b.node('Add', [x, 'b'], {}, { outputs: ['a'], name: 'first' });
    b.node('Relu', ['a'], {}, { outputs: ['b'], name: 'second' });
    b.output('b');
    assert.throws(
      () => decodeOnnx(b.toBytes()),
      (e: unknown) => e instanceof FormatError && /'first'.*'second'.*cycle/.test(e.message),
    );
  });

  it('reads external-data initializers through externalData, and inlines them for tools that take bytes', () => {
    const { model, data } = externalize(lola, 'lola.onnx.data');
    const asked: string[] = [];
    const read = (location: string) => {
      asked.push(location);
      return data;
    };
    assert.throws(
      () => importOnnx(model),
      (e: unknown) => e instanceof UnsupportedModelError && /lola\.onnx\.data.*externalData/.test(e.message),
    );
    assert.deepEqual(importOnnx(model, { externalData: read }), importOnnx(lola));
    assert.deepEqual(asked, ['lola.onnx.data'], 'the data file is read once');
    assert.deepEqual(importOnnx(inlineExternalData(model, read)), importOnnx(lola));
  });

  it('rejects external locations outside the model directory and byte ranges outside the file', () => {
    for (const location of ['../secret.bin', '/etc/passwd', 'C:\\weights.bin', 'a/../../b']) {
      const { model, data } = externalize(lola, location);
      assert.throws(
        () => importOnnx(model, { externalData: () => data }),
        (e: unknown) => e instanceof FormatError && /inside the model's directory/.test(e.message),
        location,
      );
    }
    const { model, data } = externalize(lola, 'w.bin');
    assert.throws(
      () => importOnnx(model, { externalData: () => data.subarray(0, 100) }),
      (e: unknown) => e instanceof FormatError && /outside 'w\.bin'/.test(e.message),
    );
  });
});
