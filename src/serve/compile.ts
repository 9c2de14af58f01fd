/**
 * What the model repository does with an uploaded ONNX file: checks the upload's configuration (input
 * normalization, packing), imports the model and compiles it to an HE program with the project's compiler.
 */
import { compileModel } from '../nn/compile/index.ts';
import { awaitsApproximation } from '../nn/approx.ts';
import { UnsupportedModelError } from '../nn/errors.ts';
import type { LayerModel } from '../nn/layers.ts';
import { importOnnx } from '../nn/onnx/import.ts';
import type { HeProgram } from '../program/program.ts';
import { InvalidArgumentError } from '../util/errors.ts';

/**
 * How a model's client prepares its inputs and how the server compiles it. A client multiplies raw values by
 * `inputScale`, then computes `(x − inputMean[c]) / inputStd[c]` per channel before encrypting.
 *
 * @example
 * ```ts
 * const config: ModelConfig = { inputScale: 1 / 256, mode: 'latency' };
 * ```
 */
export interface ModelConfig {
  readonly inputScale: number;
  readonly inputMean?: readonly number[];
  readonly inputStd?: readonly number[];
  /** `auto`: latency packing (one image per request is a server's common case), batch when latency fails. */
  readonly mode: 'auto' | 'batch' | 'latency';
  /** Input values the program accepts (default: raw bytes 0…255 through the normalization, and at least [−1, 1]). */
  readonly inputRange?: readonly [number, number];
  /** Tests only, on a server started with insecure parameters allowed: this ring degree below 128-bit security. */
  readonly insecureLogN?: number;
}

/**
 * A compiled upload: the imported model (for its shapes), the program and the packing chosen.
 *
 * @example
 * ```ts
 * const { program, mode } = compileUpload(onnxBytes, config);
 * ```
 */
export interface CompiledUpload {
  readonly model: LayerModel;
  readonly program: HeProgram;
  readonly mode: 'batch' | 'latency';
  readonly seconds: number;
}

/**
 * Reads an upload's configuration from its query parameters: `input_scale` (a number or `a/b`, default 1/255),
 * `input_mean` and `input_std` (one value or one per channel, comma-separated), `mode` (`auto`, `batch`,
 * `latency`), `input_range` (`lo,hi`) and `insecure_log_n` (only when `allowInsecure`).
 *
 * @throws InvalidArgumentError naming the parameter at fault.
 * @example
 * ```ts
 * parseModelConfig({ input_scale: '1/256', mode: 'latency' }, false);
 * ```
 */
export function parseModelConfig(
  query: Readonly<Record<string, unknown>>,
  allowInsecure: boolean,
): ModelConfig {
  const known = new Set(['input_scale', 'input_mean', 'input_std', 'mode', 'input_range', 'insecure_log_n']);
  for (const key of Object.keys(query)) {
    if (!known.has(key)) {
      throw new InvalidArgumentError(
        `query parameter "${key.slice(0, 40)}": expected one of ${[...known].join(', ')}`,
      );
    }
  }
  const text = (key: string): string | undefined => {
    const v = query[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new InvalidArgumentError(`${key}: expected one value`);
    return v;
  };
  const scaleText = text('input_scale');
  const inputScale = scaleText === undefined ? 1 / 255 : parseFraction(scaleText, 'input_scale');
  if (!(inputScale > 0) || !Number.isFinite(inputScale)) {
    throw new InvalidArgumentError(`input_scale ${scaleText}: expected a positive number (e.g. 1/256)`);
  }
  const list = (key: string): number[] | undefined => {
    const v = text(key);
    return v === undefined ? undefined : v.split(',').map((part) => parseFraction(part, key));
  };
  const inputMean = list('input_mean');
  const inputStd = list('input_std');
  if (inputStd?.some((s) => s === 0)) throw new InvalidArgumentError('input_std: expected non-zero values');
  const mode = text('mode') ?? 'auto';
  if (mode !== 'auto' && mode !== 'batch' && mode !== 'latency') {
    throw new InvalidArgumentError(
      `mode ${JSON.stringify(mode.slice(0, 40))}: expected auto, batch or latency`,
    );
  }
  const range = list('input_range');
  if (range !== undefined && (range.length !== 2 || !(range[0] < range[1]))) {
    throw new InvalidArgumentError(`input_range ${text('input_range')}: expected "lo,hi" with lo < hi`);
  }
  const insecureText = text('insecure_log_n');
  let insecureLogN: number | undefined;
  if (insecureText !== undefined) {
    if (!allowInsecure) {
      throw new InvalidArgumentError('insecure_log_n: this server does not accept insecure parameters');
    }
    insecureLogN = Number(insecureText);
    if (!Number.isInteger(insecureLogN) || insecureLogN < 10 || insecureLogN > 16) {
      throw new InvalidArgumentError(
        `insecure_log_n ${insecureText.slice(0, 20)}: expected an integer in [10, 16]`,
      );
    }
  }
  return {
    inputScale,
    ...(inputMean ? { inputMean } : {}),
    ...(inputStd ? { inputStd } : {}),
    mode,
    ...(range ? { inputRange: [range[0], range[1]] as const } : {}),
    ...(insecureLogN !== undefined ? { insecureLogN } : {}),
  };
}

/**
 * Imports and compiles an uploaded ONNX model. Models with layers that need polynomial approximations (ReLU,
 * MaxPool, …) need calibration images, which uploads cannot carry yet: they are refused.
 *
 * @throws FormatError / UnsupportedModelError for a file that is not a supported ONNX model; UnsupportedModelError
 *   for a model that needs calibration; InvalidArgumentError for normalization that does not fit the model;
 *   SecurityError for a model deeper than any secure parameters allow.
 * @example
 * ```ts
 * const { program } = compileUpload(readFileSync('cryptonets-mnist.onnx'), { inputScale: 1 / 256, mode: 'auto' }, 'cn');
 * ```
 */
export function compileUpload(onnx: Uint8Array, config: ModelConfig, name: string): CompiledUpload {
  const start = performance.now();
  const model = importOnnx(onnx);
  if (awaitsApproximation(model)) {
    throw new UnsupportedModelError(
      `model "${name}": its ${model.layers
        .map((l) => l.kind)
        .filter((k, i, all) => all.indexOf(k) === i)
        .join(
          ', ',
        )} layers need polynomial approximations calibrated on sample images, which this server does ` +
        'not take yet: upload a model with square activations (e.g. CryptoNets) or compile it with `home infer`',
    );
  }
  const channels = channelsOf(model.onnxInputShape);
  for (const [key, values] of [
    ['input_mean', config.inputMean],
    ['input_std', config.inputStd],
  ] as const) {
    if (values !== undefined && values.length !== 1 && values.length !== channels) {
      throw new InvalidArgumentError(
        `${key}: ${values.length} values for a model input with ${channels} channel${channels > 1 ? 's' : ''}: expected 1 or ${channels}`,
      );
    }
  }
  const inputRange = config.inputRange ?? defaultInputRange(config);
  const compile = (mode: 'batch' | 'latency') =>
    compileModel(model, {
      mode,
      name,
      inputRange: [inputRange[0], inputRange[1]],
      ...(config.insecureLogN !== undefined ? { insecureLogN: config.insecureLogN } : {}),
    });
  let mode: 'batch' | 'latency' = config.mode === 'batch' ? 'batch' : 'latency';
  let compiled: ReturnType<typeof compileModel>;
  try {
    compiled = compile(mode);
  } catch (error) {
    if (config.mode !== 'auto') throw error;
    mode = 'batch';
    compiled = compile(mode);
  }
  return { model, program: compiled.program, mode, seconds: (performance.now() - start) / 1000 };
}

/** Raw bytes 0…255 times the scale, normalized per channel; widened to hold [−1, 1]. */
function defaultInputRange(config: ModelConfig): [number, number] {
  const means = config.inputMean ?? [0];
  const stds = config.inputStd ?? [1];
  let lo = -1;
  let hi = 1;
  const channels = Math.max(means.length, stds.length);
  for (let c = 0; c < channels; c++) {
    const m = means[Math.min(c, means.length - 1)];
    const s = stds[Math.min(c, stds.length - 1)];
    for (const raw of [0, 255]) {
      const v = (raw * config.inputScale - m) / s;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  return [lo, hi];
}

function channelsOf(shape: readonly number[]): number {
  const dims = shape.length === 4 ? shape.slice(1) : shape;
  return dims.length === 3 ? dims[0] : 1;
}

function parseFraction(text: string, key: string): number {
  const parts = text.trim().split('/');
  const value = parts.length === 2 ? Number(parts[0]) / Number(parts[1]) : Number(text);
  if (parts.length > 2 || text.trim() === '' || !Number.isFinite(value)) {
    throw new InvalidArgumentError(
      `${key} ${JSON.stringify(text.slice(0, 40))}: expected a finite number or a/b`,
    );
  }
  return value;
}
