/**
 * The compiler's driver: {@link compileModel} checks the model and the options, attaches polynomial
 * approximations where needed, bounds value magnitudes on the calibration images (they size the base modulus),
 * checks the up-front size estimates, measures the multiplicative depth with a dry run of the emission (the depth
 * probe), picks the smallest 128-bit-secure parameters that fit it, checks the server's memory, emits for real and
 * assembles the program, with a `free` after every value's last use.
 */
import { foldPolynomialMaps } from './fold.ts';
import { mergePointwiseConvs } from './merge-pointwise.ts';
import { BootstrappingParameters } from '../../ckks/bootstrapping/parameters.ts';
import type { Parameters } from '../../ckks/parameters.ts';
import { assertInteger, check } from '../../util/assert.ts';
import { InvalidArgumentError, ResourceError, SecurityError } from '../../util/errors.ts';
import {
  type AccuracyCost,
  type Substitution,
  approximateModel,
  awaitsApproximation,
  depthLowerBound,
} from '../approx.ts';
import { shapeSize } from '../onnx/graph.ts';
import type { Layer, LayerModel } from '../layers.ts';
import {
  type HeInstruction,
  type HeProgram,
  type InputDescriptor,
  type LayerSummary,
  type OutputDescriptor,
  PROGRAM_FORMAT,
  PROGRAM_VERSION,
} from '../../program/program.ts';
import { simulate } from '../simulate.ts';
import { emitBatch } from './batch.ts';
import { chainOf, PROBE_TOP, probeChain } from './chain.ts';
import { Emitter, type Sym } from './emitter.ts';
import { emitLatency } from './latency.ts';
import { planLatencyLayouts } from './latency-layout.ts';
import {
  type CompileLimits,
  type CompileOptions,
  type CompileResult,
  type ProgramResources,
  resolveLimits,
} from './options.ts';
import { chooseParameters } from './parameters.ts';
import {
  checkEstimates,
  checkMemory,
  describeLayer,
  estimateLayers,
  figure,
  probeMemory,
} from './resources.ts';

function checkModel(model: LayerModel): void {
  if (typeof model !== 'object' || model === null || !Array.isArray(model.layers)) {
    throw new InvalidArgumentError('model: expected a LayerModel from importOnnx');
  }
  check(model.layers.length > 0, () => 'model has no layers: expected at least one');
}

/**
 * Throws {@link SecurityError} when even a lower bound of the model's depth ({@link depthLowerBound}, from its
 * polynomial layers' degrees on the longest path) fits no 128-bit-secure parameter set: a model that deep is
 * refused before its approximations are calibrated, which takes minutes for a CIFAR network. `compileModel` calls
 * it; a caller that calibrates first (`home infer` does it once for both packings) calls it before.
 *
 * @example
 * ```ts
 * checkDepthBound(model, { mode: 'latency' });
 * ```
 */
export function checkDepthBound(model: LayerModel, options: CompileOptions = {}): void {
  const ppl: 1 | 2 = (options.precisionBits ?? 20) > 24 ? 2 : 1;
  const bound = depthLowerBound(model, options.approximation ?? {});
  try {
    chooseParameters(bound, {
      primesPerLevel: ppl,
      minLogN: options.minLogN,
      maxLogN: options.maxLogN,
      insecureLogN: options.insecureLogN,
    });
  } catch (error) {
    if (!(error instanceof SecurityError)) throw error;
    throw new SecurityError(
      `${error.message.replace(`needs multiplicative depth ${bound} `, `needs multiplicative depth at least ${bound} `)} ` +
        '(a bound from its polynomial layers on its longest path, before calibration)',
    );
  }
}

/**
 * Compiles a layer model to an HE program, batch or latency packed.
 *
 * @throws InvalidArgumentError when a layer needs an approximation and no calibration data (or interval) is
 *   given; SecurityError when the depth fits no 128-bit-secure parameter set.
 * @example
 * ```ts
 * const model = importOnnx(readFileSync('cryptonets-mnist.onnx'));
 * const { program, params } = compileModel(model, { mode: 'batch' });
 * console.log(params.toString(), program.instructions.length);
 * ```
 */
export function compileModel(input: LayerModel, options: CompileOptions = {}): CompileResult {
  checkModel(input);
  const mode = options.mode ?? 'batch';
  check(
    mode === 'batch' || mode === 'latency',
    () => `mode = ${String(mode)}: expected 'batch' or 'latency'`,
  );
  const precisionBits = options.precisionBits ?? 20;
  check(
    Number.isFinite(precisionBits) && precisionBits >= 1 && precisionBits <= 45,
    () => `precisionBits = ${precisionBits}: expected 1 … 45 (a 2^30 scale gives ≈ 20 bits, 2^60 ≈ 45)`,
  );
  check(
    options.encryptWeights !== true || mode === 'latency',
    () =>
      "encryptWeights: needs mode 'latency' (in batch packing every scalar weight would be its own ciphertext)",
  );
  const policy = options.relinearize ?? 'auto';
  check(
    policy === 'auto' || policy === 'lazy' || policy === 'eager',
    () => `relinearize = ${String(policy)}: expected 'auto', 'lazy' or 'eager'`,
  );

  check(
    options.polynomials === undefined || options.polynomials === 'basis' || options.polynomials === 'bsgs',
    () => `polynomials = ${String(options.polynomials)}: expected 'basis' or 'bsgs'`,
  );
  const bootstrapOption = options.bootstrapping ?? 'auto';
  check(
    bootstrapOption === true || bootstrapOption === false || bootstrapOption === 'auto',
    () => `bootstrapping = ${String(bootstrapOption)}: expected true, false or 'auto'`,
  );
  check(
    bootstrapOption !== true || mode === 'latency',
    () => "bootstrapping: needs mode 'latency' (a batch-packed program holds one ciphertext per value)",
  );
  // 0. A model deeper than any secure chain fails now, before minutes of calibration (unless bootstraps may
  // refresh it).
  if (mode === 'batch' || bootstrapOption === false) checkDepthBound(input, options);
  const ppl: 1 | 2 = precisionBits > 24 ? 2 : 1;

  // 1. Approximations for the non-polynomial layers.
  let model = input;
  let substitutions: readonly Substitution[] = [];
  let approximationCost: AccuracyCost | undefined;
  const pending = awaitsApproximation(model);
  if (pending) {
    const result = approximateModel(model, { ...options.approximation, calibration: options.calibration });
    model = result.model;
    substitutions = result.substitutions;
    approximationCost = result.overall;
  }
  // The polynomials' interval maps into the linear layers around them: a level less per polynomial.
  // Chains of 1×1 convolutions (an option-A shortcut's Slice, Slice, Pad) are one linear map: one level.
  model = foldPolynomialMaps(mergePointwiseConvs(model));

  // 2. Magnitudes: bound |values| on the calibration images to size the base modulus.
  let basePrimes = ppl === 1 ? 2 : 3;
  let inputRange: [number, number] = [-1, 1];
  /** max |value| on the calibration images, by value name (a layer's first operand; the model output). */
  const magnitudes = new Map<string, number>();
  if (options.calibration) {
    const { images, count } = options.calibration;
    const inSize = shapeSize(model.inputShape);
    check(
      images.length >= count * inSize,
      () =>
        `calibration: ${images.length} values for ${count} images of ${inSize}: expected ${count * inSize}`,
    );
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < count * inSize; i++) {
      lo = Math.min(lo, images[i]);
      hi = Math.max(hi, images[i]);
    }
    const pad = Math.max((hi - lo) * 0.1, 1e-6);
    inputRange = [lo - pad, hi + pad];
    let maxAbs = 0;
    const out = simulate(model, options.calibration.images, options.calibration.count, {
      mode: 'polynomial',
      onLayer: (l, values, count, size) => {
        let layerMax = magnitudes.get(l.inputs[0]) ?? 0;
        for (let i = 0; i < count * size; i++) layerMax = Math.max(layerMax, Math.abs(values[i]));
        magnitudes.set(l.inputs[0], layerMax);
        maxAbs = Math.max(maxAbs, layerMax);
      },
    });
    let outMax = 0;
    for (const v of out) outMax = Math.max(outMax, Math.abs(v));
    magnitudes.set(model.outputName, outMax);
    maxAbs = Math.max(maxAbs, outMax);
    // |v|·S_0 must stay below q_0/2 with room for the noise: 2^(30·base − 1) > 8·|v|·2^(30·ppl).
    while (Math.log2(8 * maxAbs + 1) + 30 * ppl >= 30 * basePrimes - 1 && basePrimes < 8) basePrimes++;
  }

  if (options.inputRange !== undefined) {
    const [lo, hi] = options.inputRange;
    check(
      Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi,
      () => `inputRange = [${lo}, ${hi}]: expected finite min ≤ max`,
    );
    inputRange = [lo, hi];
  }

  const limits = resolveLimits(options.limits);
  const lazyOption = options.lazyPlaintexts ?? 'auto';
  check(
    lazyOption === true || lazyOption === false || lazyOption === 'auto',
    () => `lazyPlaintexts = ${String(lazyOption)}: expected true, false or 'auto'`,
  );

  if (mode === 'latency') {
    return {
      ...compileLatency(model, options, ppl, basePrimes, inputRange, limits, lazyOption, {
        option: bootstrapOption,
        magnitudes,
      }),
      model,
      substitutions,
      approximationCost,
    };
  }

  // 3. Size estimates, then the depth by a dry run, then parameters and the server's memory.
  const estimatedInstructions = checkEstimates(estimateLayers(model, 'batch', 1), limits, 'batch');
  const probe = new Emitter(probeChain, limits, true);
  probe.polynomials = options.polynomials ?? 'basis';
  const probed = emitBatch(model, probe, policy);
  const depth = PROBE_TOP - probe.minLevel;
  const params = chooseParameters(depth, {
    primesPerLevel: ppl,
    basePrimes,
    minLogN: options.minLogN,
    maxLogN: options.maxLogN,
    insecureLogN: options.insecureLogN,
  });
  const memory = probeMemory(
    probe,
    params,
    probed.inputs.filter((i) => i.used).map((i) => i.sym),
    new Set(probed.outputs.map((o) => o.id)),
  );
  const { serverBytes } = checkMemory(memory, model, params, limits, false, 'batch');

  // 4. The real emission at the chosen parameters.
  const emitter = new Emitter(chainOf(params), limits);
  emitter.polynomials = options.polynomials ?? 'basis';
  const { inputs, outputs } = emitBatch(model, emitter, policy);
  const batchSize = options.batchSize ?? params.slots;
  assertInteger(batchSize, 'batchSize', 1, params.slots);
  const program = finishProgram({
    name: options.name ?? 'model',
    inputRange,
    params,
    depth,
    packing: 'batch',
    batchSize,
    model,
    emitter,
    inputs: inputs
      .filter((i) => i.used)
      .map((i) => ({
        id: i.sym.id,
        level: i.sym.level,
        scale: i.sym.scale,
        bytes: params.ciphertextBytes(i.sym.level, 1),
        element: i.element,
      })),
    outputs: outputs.map((o, element) => ({
      id: o.id,
      level: o.level,
      scale: o.scale,
      degree: o.degree,
      bytes: params.ciphertextBytes(o.level, o.degree),
      element,
    })),
  });
  const resources: ProgramResources = {
    estimatedInstructions,
    instructions: emitter.instructions.length,
    constantBytes: program.constants.byteLength + program.paletteCodes.byteLength,
    peakCiphertextBytes: memory.peakCiphertextBytes,
    plaintextBytes: memory.plaintextBytes,
    keyBytes: memory.keyBytes,
    serverBytes,
    lazyPlaintexts: false,
  };
  return { program, params, model, substitutions, approximationCost, resources };
}

/** Latency packing: the period, a dry run for the depth, parameters with enough slots, the real emission. */
/**
 * Bootstrapping parameters for a latency program deeper than any chain: the largest ring degree allowed, full
 * slots, and levels left for the deepest layer (at least 8, the default). Needs the calibration images, which
 * bound the values each bootstrap refreshes.
 */
function bootstrappingFor(
  options: CompileOptions,
  consumption: ReadonlyMap<Layer, number>,
  maxLogN: number,
  magnitudes: ReadonlyMap<string, number>,
): BootstrappingParameters {
  if (magnitudes.size === 0) {
    throw new InvalidArgumentError(
      'compileModel: the model needs bootstrapping, whose inputs must be bounded: pass calibration images',
    );
  }
  let deepest: Layer | undefined;
  for (const [layer, levels] of consumption)
    if (!deepest || levels > (consumption.get(deepest) ?? 0)) deepest = layer;
  const widest = deepest ? (consumption.get(deepest) ?? 0) : 0;
  if (options.bootstrapLevels !== undefined) assertInteger(options.bootstrapLevels, 'bootstrapLevels', 1, 60);
  const levelsLeft = options.bootstrapLevels ?? Math.max(8, widest);
  if (deepest && widest > levelsLeft) {
    throw new InvalidArgumentError(
      `compileModel: layer '${deepest.name}' consumes ${widest} levels, more than the ${levelsLeft} a bootstrap ` +
        'leaves (bootstrapLevels): lower its polynomial degree',
    );
  }
  return BootstrappingParameters.create({
    logN: maxLogN,
    levelsLeft,
    insecure: options.insecureLogN !== undefined,
  });
}

function compileLatency(
  model: LayerModel,
  options: CompileOptions,
  ppl: 1 | 2,
  basePrimes: number,
  inputRange: [number, number],
  limits: CompileLimits,
  lazyOption: boolean | 'auto',
  refresh: { option: boolean | 'auto'; magnitudes: ReadonlyMap<string, number> },
): { program: HeProgram; params: Parameters; resources: ProgramResources } {
  const maxLogN = options.insecureLogN ?? options.maxLogN ?? 16;
  const layout = planLatencyLayouts(model, 2 ** (maxLogN - 1));
  const period = layout.period;
  if (period > 2 ** (maxLogN - 1)) {
    let largest = shapeSize(model.inputShape);
    let widest: Layer | undefined;
    for (const l of model.layers) {
      if (shapeSize(l.shape) > largest) {
        largest = shapeSize(l.shape);
        widest = l;
      }
    }
    throw new ResourceError(
      `compileModel (latency packing): ${widest === undefined ? 'the model input' : describeLayer(widest)} has ` +
        `${figure(largest)} values, so one image needs a period of ${figure(period)} slots, more than the ` +
        `${figure(2 ** (maxLogN - 1))} slots of logN ≤ ${maxLogN} (maxLogN): use batch packing or a smaller layer`,
    );
  }
  const encryptWeights = options.encryptWeights === true;
  const estimatedInstructions = checkEstimates(
    estimateLayers(model, 'latency', period, layout),
    limits,
    'latency',
  );
  const probe = new Emitter(probeChain, limits, true);
  probe.polynomials = options.polynomials ?? 'basis';
  probe.encryptWeights = encryptWeights;
  // The probe's rotations span the most slots the parameters may have: the same diagonals as any span of two
  // periods or more (a span of one period can only merge diagonals, so the probe never under-counts keys).
  const consumption = new Map<Layer, number>();
  const probed = emitLatency(model, probe, layout, 2 ** (maxLogN - 1), {
    onLayer: (layer, operands, y) =>
      consumption.set(layer, Math.min(...operands.map((o) => o.level)) - y.level),
  });
  let depth = PROBE_TOP - probe.minLevel;
  // A chain that holds the whole depth, or (asked for, or when none does) bootstrapping parameters.
  let chainParams: Parameters | undefined;
  if (refresh.option !== true) {
    try {
      chainParams = chooseParameters(depth, {
        primesPerLevel: ppl,
        basePrimes,
        minLogN: Math.max(options.minLogN ?? 13, Math.log2(period) + 1),
        maxLogN: options.maxLogN,
        insecureLogN: options.insecureLogN,
      });
    } catch (error) {
      if (!(error instanceof SecurityError) || refresh.option === false) throw error;
    }
  }
  const bootstrapping = chainParams
    ? undefined
    : bootstrappingFor(options, consumption, maxLogN, refresh.magnitudes);
  const params: Parameters = chainParams ?? (bootstrapping as BootstrappingParameters).params;
  /** The server's memory for the program `e` emitted (the probe, sized at the real parameters, or the real one). */
  const memoryOf = (e: Emitter, emitted: { input: Sym; output: Sym }, offset: number) => {
    const weights = e.weightInputs.map((w) => ({ id: w.id, level: w.level, scale: w.scale, degree: 1 }));
    const memory = probeMemory(
      e,
      params,
      [emitted.input, ...weights],
      new Set([emitted.output.id, ...weights.map((w) => w.id)]),
      offset,
    );
    return { memory, ...checkMemory(memory, model, params, limits, lazyOption, 'latency') };
  };
  // With bootstraps the probe's levels are not the program's (it never refreshes): size the real emission.
  let sized = bootstrapping ? undefined : memoryOf(probe, probed, params.depth - PROBE_TOP);
  const emitter = new Emitter(chainOf(params, bootstrapping), limits);
  emitter.polynomials = options.polynomials ?? 'basis';
  emitter.encryptWeights = encryptWeights;
  const bounds = refresh.magnitudes;
  // Twice the largest calibrated magnitude, ≥ 1: EvalMod's sine stays accurate well past its nominal bound, so
  // an image a little beyond the calibration set still bootstraps.
  const fallback = Math.max(1, ...bounds.values());
  const { input, output } = emitLatency(model, emitter, layout, params.slots, {
    bootstrapping: bootstrapping && {
      consumption,
      // An integer (the bootstrap multiplies its result back by it).
      bound: (name) =>
        Math.ceil(
          name === model.inputName
            ? Math.max(1, 2 * Math.abs(inputRange[0]), 2 * Math.abs(inputRange[1]))
            : Math.max(1, 2 * (bounds.get(name) ?? fallback)),
        ),
    },
  });
  if (bootstrapping) depth = input.level - emitter.minLevel;
  sized ??= memoryOf(emitter, { input, output }, 0);
  const { memory, serverBytes, lazy } = sized;
  if (lazy) for (const pt of emitter.plaintexts) pt.encodeOnUse = true;
  const inSize = shapeSize(model.inputShape);
  const outSize = shapeSize(model.outputShape);
  const steps = [...emitter.rotations.keys()].sort((a, b) => a - b);
  const program = finishProgram({
    name: options.name ?? 'model',
    inputRange,
    params,
    depth,
    packing: 'latency',
    // One image per block of `period` slots.
    batchSize: params.slots / period,
    model,
    emitter,
    inputs: [
      {
        id: input.id,
        level: input.level,
        scale: input.scale,
        bytes: params.ciphertextBytes(input.level, 1),
        slotElements: Array.from({ length: period }, (_, i) => (i < inSize ? i : -1)),
        replicate: true,
      },
      ...emitter.weightInputs,
    ],
    outputs: [
      {
        id: output.id,
        level: output.level,
        scale: output.scale,
        degree: output.degree,
        bytes: params.ciphertextBytes(output.level, output.degree),
        slotOfElement: Array.from({ length: outSize }, (_, j) => j),
      },
    ],
    rotations: steps,
    galoisElements: steps.map((s) => emitter.rotations.get(s) as number),
    bootstrapping,
  });
  const resources: ProgramResources = {
    estimatedInstructions,
    instructions: emitter.instructions.length,
    constantBytes: program.constants.byteLength + program.paletteCodes.byteLength,
    peakCiphertextBytes: memory.peakCiphertextBytes,
    plaintextBytes: memory.plaintextBytes,
    keyBytes: memory.keyBytes,
    serverBytes,
    lazyPlaintexts: lazy,
  };
  return { program, params, resources };
}

/**
 * Assembles a program from emitted instructions: inserts `free` after each value's last use (outputs excepted),
 * lists keys and summarizes the layers.
 */
function finishProgram(parts: {
  name: string;
  params: Parameters;
  depth: number;
  packing: 'batch' | 'latency';
  batchSize: number;
  model: LayerModel;
  emitter: Emitter;
  inputs: InputDescriptor[];
  outputs: OutputDescriptor[];
  rotations?: number[];
  galoisElements?: number[];
  inputRange: [number, number];
  bootstrapping?: BootstrappingParameters;
}): HeProgram {
  const { emitter, params, model } = parts;
  const body = emitter.instructions;
  // Outputs survive the run; encrypted weights survive every run.
  const keep = new Set([
    ...parts.outputs.map((o) => o.id),
    ...parts.inputs.filter((i) => i.owner === 'model').map((i) => i.id),
  ]);
  const lastUse = new Map<number, number>();
  body.forEach((ins, i) => {
    for (const id of ins.args) lastUse.set(id, i);
    for (const id of ins.out) if (!lastUse.has(id)) lastUse.set(id, i);
  });
  const freesAfter = new Map<number, number[]>();
  for (const [id, i] of lastUse) {
    if (keep.has(id)) continue;
    let list = freesAfter.get(i);
    if (!list) freesAfter.set(i, (list = []));
    list.push(id);
  }
  const instructions: HeInstruction[] = [];
  body.forEach((ins, i) => {
    instructions.push(ins);
    const dead = freesAfter.get(i);
    if (dead) {
      instructions.push({
        op: 'free',
        args: dead,
        out: [],
        level: ins.level,
        scale: ins.scale,
        degree: ins.degree,
        bytes: { args: [], out: 0 },
        keys: [],
        layer: ins.layer,
      });
    }
  });
  const layers: LayerSummary[] = model.layers.map((l) => {
    let count = 0;
    let low = Number.POSITIVE_INFINITY;
    let high = Number.NEGATIVE_INFINITY;
    for (const ins of body) {
      if (ins.layer !== l.name) continue;
      count++;
      low = Math.min(low, ins.level);
      high = Math.max(high, ins.level);
    }
    return { name: l.name, kind: l.kind, levels: count === 0 ? 0 : high - low, instructions: count };
  });
  return {
    format: PROGRAM_FORMAT,
    version: PROGRAM_VERSION,
    name: parts.name,
    parameters: { ...params.literal },
    ...(parts.bootstrapping ? { bootstrapping: { ...parts.bootstrapping.literal } } : {}),
    logN: params.logN,
    slots: params.slots,
    depth: parts.depth,
    packing: parts.packing,
    batchSize: parts.batchSize,
    inputShape: [...model.inputShape],
    ...(model.inputPermutation ? { inputPermutation: Array.from(model.inputPermutation) } : {}),
    outputShape: [...model.outputShape],
    inputRange: parts.inputRange,
    inputs: parts.inputs,
    outputs: parts.outputs,
    plaintexts: emitter.plaintexts,
    constants: emitter.constants.toArray(),
    paletteCodes: emitter.paletteCodes.toArray(),
    rotations: parts.rotations ?? [],
    galoisElements: parts.galoisElements ?? [],
    relinearization: emitter.usesRelin,
    instructions,
    layers,
  };
}
