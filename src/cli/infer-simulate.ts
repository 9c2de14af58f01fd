/**
 * `home infer --simulate`: the float simulation of the HE program a run would execute — its packing, its
 * polynomial approximations and a noise model of its bootstraps — on every image asked, against the plaintext
 * model. Minutes where the encrypted run takes hours: how the program's accuracy is measured on a whole test set.
 */
import { basename } from 'node:path';
import { shapeSize } from '../nn/onnx/graph.ts';
import { argmaxRows, simulate } from '../nn/simulate.ts';
import { simulateProgram } from '../program/simulate.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { countAgreement, type InferOptions, loadInferInputs, logitErrors } from './infer.ts';
import { choosePacking } from './infer-packing.ts';

/**
 * The summary `home infer --simulate --json` ends with.
 *
 * @example
 * ```ts
 * const s: SimulatedInferSummary = await runInferSimulated(options);
 * console.log(s.accuracy, s.plain_accuracy);
 * ```
 */
export interface SimulatedInferSummary {
  suite: 'infer-simulated';
  model: string;
  mode: 'batch' | 'latency';
  count: number;
  /** The program's argmax against the labels, and the plaintext model's. */
  accuracy: number | null;
  plain_accuracy: number | null;
  /** Fraction of images whose argmax equals the plaintext model's. */
  agreement: number;
  /** Over the images whose logits are all finite. */
  max_abs_logit_error: number;
  /** Over the images whose logits are all finite: max |logit error| / that image's plaintext logit range. */
  max_logit_error_of_range: number;
  /**
   * Images with a non-finite logit: a value left a polynomial's interval (calibrated on other images) and the
   * polynomial blew up. Under encryption such an image's result is as wrong.
   */
  non_finite_images: number;
  /** Bits of the bootstrap noise model (each bootstrap adds an error uniform in ±bound·2^-bits). */
  bootstrap_noise_bits: number;
  bootstraps: number;
  depth: number;
  log_n: number;
  calibration_images: number;
  compile_s: number;
  simulate_s: number;
  plain_s: number;
}

/**
 * Compiles the model as `home infer` would and simulates its program on `count` images.
 *
 * @throws InvalidArgumentError / FormatError / SecurityError for bad flags, files or models.
 * @example
 * ```ts
 * const s = await runInferSimulated({ model: 'resnet20.onnx', data: 'test.npy', labels: 'labels', count: 500 });
 * ```
 */
export async function runInferSimulated(
  options: InferOptions & { readonly noiseBits?: number },
): Promise<SimulatedInferSummary> {
  const print = options.print ?? ((line: string) => console.log(line));
  const requested = options.mode ?? 'auto';
  if (requested !== 'auto' && requested !== 'batch' && requested !== 'latency') {
    throw new InvalidArgumentError(`--mode ${String(requested)}: expected auto, batch or latency`);
  }
  const scale = options.inputScale ?? 1 / 255;
  if (!Number.isFinite(scale) || scale <= 0) {
    throw new InvalidArgumentError(`--input-scale ${scale}: expected a positive number`);
  }
  const noiseBits = options.noiseBits ?? 20;
  if (!Number.isFinite(noiseBits) || noiseBits <= 0) {
    throw new InvalidArgumentError(`--noise-bits ${noiseBits}: expected a positive number`);
  }
  const { model, images, count, calibration, labels } = loadInferInputs(options, scale);
  const start = performance.now();
  const { compiled, mode } = choosePacking(
    model,
    options,
    requested,
    calibration,
    count,
    Number.POSITIVE_INFINITY,
  );
  const compileSeconds = (performance.now() - start) / 1000;
  const program = compiled.program;
  const classes = shapeSize(model.outputShape);
  let t = performance.now();
  const plain = simulate(model, images, count);
  const plainSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  // One simulation (its plaintext vectors made once), saying how far it got every 10 s.
  let lastProgress = t;
  const logits = simulateProgram(program, images, count, {
    bootstrapNoise: { bits: noiseBits },
    onPass: (done) => {
      if (performance.now() - lastProgress < 10_000) return;
      lastProgress = performance.now();
      process.stderr.write(
        `home infer --simulate: ${done}/${count} images, ${((lastProgress - t) / 1000).toFixed(0)} s\n`,
      );
    },
  });
  const simulateSeconds = (performance.now() - t) / 1000;
  const predicted = argmaxRows(logits, count, classes);
  const reference = argmaxRows(plain, count, classes);
  const { agree, correct, plainCorrect } = countAgreement(predicted, reference, labels, count);
  const { maxError, maxOfRange, nonFinite } = logitErrors(logits, plain, count, classes);
  const round = (x: number, digits = 4) => Number(x.toFixed(digits));
  const summary: SimulatedInferSummary = {
    suite: 'infer-simulated',
    model: basename(options.model),
    mode,
    count,
    accuracy: labels ? round(correct / count) : null,
    plain_accuracy: labels ? round(plainCorrect / count) : null,
    agreement: round(agree / count),
    max_abs_logit_error: round(maxError, 6),
    max_logit_error_of_range: round(maxOfRange, 6),
    non_finite_images: nonFinite,
    bootstrap_noise_bits: noiseBits,
    bootstraps: program.instructions.filter((ins) => ins.op === 'bootstrap').length,
    depth: program.depth,
    log_n: program.logN,
    calibration_images:
      compiled.substitutions.length > 0 ? calibration.length / shapeSize(model.onnxInputShape) : 0,
    compile_s: round(compileSeconds, 3),
    simulate_s: round(simulateSeconds, 3),
    plain_s: round(plainSeconds, 3),
  };
  if (options.json) print(JSON.stringify(summary));
  else {
    const pct = (x: number | null) => (x === null ? 'n/a (no labels)' : `${(100 * x).toFixed(2)} %`);
    print(
      `Simulated HE program (${mode}, logN ${program.logN}, ${summary.bootstraps} bootstraps, noise 2^-${noiseBits}): ` +
        `accuracy ${pct(summary.accuracy)}, plaintext ${pct(summary.plain_accuracy)}, same argmax ${pct(summary.agreement)} ` +
        `of ${count} images (max |logit error| ${maxError.toExponential(2)}, ${(100 * maxOfRange).toFixed(2)} % of the logit range); compile ${summary.compile_s} s, simulation ${summary.simulate_s} s`,
    );
  }
  return summary;
}
