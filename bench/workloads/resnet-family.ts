/**
 * Deeper members of the CIFAR-10 ResNet family (He et al., 2016: 6n + 2 layers, n basic blocks per stage), grown
 * from a trained ResNet-20 by graph surgery on its ONNX file: each stage gets n − 3 more identity blocks, copies of
 * the stage's own identity blocks (ReLU, 3×3 convolutions, residual addition) whose residual branch is damped so
 * that the deeper network stays close to the trained one. They are not trained: they exist so that a benchmark can
 * run ResNet-32, -44 and -56 through the same compiler and runtime as ResNet-20 and measure what depth costs.
 */
import onnxProto from 'onnx-proto';
import { check } from '../../src/util/assert.ts';

const { onnx } = onnxProto;

/**
 * Options of {@link deepenResNet}.
 *
 * @example
 * ```ts
 * const options: DeepenOptions = { depth: 56, residualScale: 0.1 };
 * ```
 */
export interface DeepenOptions {
  /** Layers of the result: 6n + 2 with n ≥ 3 (20, 32, 44, 56, 110). */
  readonly depth: number;
  /**
   * Factor on the last convolution (weights and bias) of every added block, so each added block perturbs the
   * residual stream by a fraction of what a trained block does (default 0.1).
   */
  readonly residualScale?: number;
}

/** The nodes of one basic block (`/layerS/layerS.B/…`) and the value it reads from the residual stream. */
interface Block {
  readonly nodes: onnxProto.onnx.INodeProto[];
  readonly input: string;
  readonly output: string;
}

function blockOf(graph: onnxProto.onnx.IGraphProto, prefix: string): Block {
  const nodes = (graph.node ?? []).filter((n) => (n.name ?? '').startsWith(prefix));
  check(nodes.length > 0, () => `ResNet surgery: no nodes named ${prefix}…`);
  const produced = new Set(nodes.flatMap((n) => n.output ?? []));
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const external = [
    ...new Set(
      nodes.flatMap((n) =>
        (n.input ?? []).filter((i) => i !== '' && !produced.has(i) && !initializers.has(i)),
      ),
    ),
  ];
  check(
    external.length === 1,
    () =>
      `ResNet surgery: block ${prefix} reads ${external.length} outside values (${external.join(', ')}): expected 1`,
  );
  const ops = nodes.map((n) => n.opType).join(',');
  check(
    ops === 'Conv,Relu,Conv,Add,Relu',
    () => `ResNet surgery: block ${prefix} is ${ops}: expected an identity block Conv,Relu,Conv,Add,Relu`,
  );
  const last = nodes[nodes.length - 1].output?.[0];
  check(last !== undefined, () => `ResNet surgery: block ${prefix} has no output`);
  return { nodes, input: external[0], output: last };
}

/**
 * A ResNet-`depth` ONNX model grown from the bytes of a ResNet-20 of the akamaster export's layout (node names
 * `/layer{1,2,3}/layer{s}.{0,1,2}/…`, identity blocks 1 and 2 in every stage). Added block k of a stage copies the
 * stage's identity block 1 + (k mod 2), with its second convolution scaled by `residualScale`.
 *
 * @throws Error (from `check`) when `depth` is not 6n + 2 with n ≥ 3 or the graph does not have that layout.
 * @example
 * ```ts
 * writeFileSync('resnet56.onnx', deepenResNet(readFileSync('resnet20-akamaster.onnx'), { depth: 56 }));
 * ```
 */
export function deepenResNet(resnet20: Uint8Array, options: DeepenOptions): Uint8Array {
  const { depth } = options;
  check(
    Number.isInteger(depth) && depth >= 20 && (depth - 2) % 6 === 0,
    () => `depth = ${depth}: expected 6n + 2 with n ≥ 3 (20, 32, 44, 56, …)`,
  );
  const residualScale = options.residualScale ?? 0.1;
  check(
    Number.isFinite(residualScale) && residualScale > 0,
    () => `residualScale = ${residualScale}: expected > 0`,
  );
  const model = onnx.ModelProto.decode(resnet20);
  const graph = model.graph;
  check(graph !== null && graph !== undefined, () => 'ResNet surgery: the model has no graph');
  const blocksPerStage = (depth - 2) / 6;
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  for (const stage of [1, 2, 3]) {
    const templates = [1, 2].map((b) => blockOf(graph, `/layer${stage}/layer${stage}.${b}/`));
    let tail = templates[1].output;
    const consumers = (graph.node ?? []).filter(
      (n) => !(n.name ?? '').startsWith(`/layer${stage}/layer${stage}.2/`) && (n.input ?? []).includes(tail),
    );
    const added: onnxProto.onnx.INodeProto[] = [];
    for (let k = 3; k < blocksPerStage; k++) {
      const template = templates[k % 2];
      const from = `/layer${stage}/layer${stage}.${1 + (k % 2)}/`;
      const to = `/layer${stage}/layer${stage}.${k}/`;
      const rename = new Map<string, string>([[template.input, tail]]);
      let conv = 0;
      for (const node of template.nodes) {
        const inputs = (node.input ?? []).map((name, i) => {
          const known = rename.get(name);
          if (known !== undefined) return known;
          const tensor = initializers.get(name);
          if (tensor === undefined) return name;
          // Weights and bias of a copied convolution: new initializers, the second convolution's damped.
          const copy = onnx.TensorProto.decode(onnx.TensorProto.encode(tensor).finish());
          copy.name = `${to}conv${conv + 1}.${i === 1 ? 'weight' : 'bias'}`;
          if (conv === 1) scaleFloatTensor(copy, residualScale);
          initializers.set(copy.name, copy);
          graph.initializer?.push(copy);
          return copy.name;
        });
        if (node.opType === 'Conv') conv++;
        const outputs = (node.output ?? []).map((name) => {
          const renamed = name.replace(from, to);
          rename.set(name, renamed);
          return renamed;
        });
        added.push(
          onnx.NodeProto.create({
            ...node,
            name: (node.name ?? '').replace(from, to),
            input: inputs,
            output: outputs,
          }),
        );
      }
      tail = rename.get(template.output) ?? tail;
    }
    if (added.length === 0) continue;
    for (const consumer of consumers) {
      consumer.input = (consumer.input ?? []).map((name) => (name === templates[1].output ? tail : name));
    }
    // Topological order: the added blocks right after the stage's last trained block.
    const nodes = graph.node ?? [];
    const at = nodes.indexOf(templates[1].nodes[templates[1].nodes.length - 1]);
    nodes.splice(at + 1, 0, ...added);
  }
  model.producerName = `${model.producerName ?? ''} + home deepenResNet(${depth})`;
  return onnx.ModelProto.encode(model).finish();
}

function scaleFloatTensor(tensor: onnxProto.onnx.TensorProto, factor: number): void {
  check(tensor.dataType === 1, () => `ResNet surgery: tensor ${tensor.name} is not float32`);
  if (tensor.rawData && tensor.rawData.length > 0) {
    const bytes = new Uint8Array(tensor.rawData);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < bytes.byteLength; i += 4) view.setFloat32(i, view.getFloat32(i, true) * factor, true);
    tensor.rawData = bytes;
  } else {
    tensor.floatData = (tensor.floatData ?? []).map((v) => v * factor);
  }
}
