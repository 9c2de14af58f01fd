/**
 * Where a tiered server gets each plaintext weight from: encoded once and stored (then kept in memory or read back
 * from the slow tier, as the plan decides), or encoded again from the program's constants by every instruction that
 * reads it. The choice is per plaintext, from the encoder's measured speed on this machine and the slow tier's
 * measured (or emulated) speed: a plaintext is encoded on use when that costs less over the expected runs than
 * encoding it once, writing it and reading it back on each run.
 */
import type { Encoder } from '../../ckks/encoder.ts';
import { encodePlaintextWeight } from '../../program/evaluate.ts';
import type { HeProgram } from '../../program/program.ts';
import { check } from '../../util/assert.ts';
import { type DeviceProfile, nowNs } from '../store/devices.ts';

/**
 * How a plaintext weight reaches the instructions that read it: `stored` (encoded once, an object of the plan),
 * `encode-on-use` (encoded right before each reader, freed after the last one of the run).
 */
export type PlaintextForm = 'stored' | 'encode-on-use';

/**
 * What {@link choosePlaintextForms} weighs.
 *
 * @example
 * ```ts
 * const costs: PlaintextFormCosts = { device: measured, runs: 20, encodeNsPerLimb: 310_000 };
 * ```
 */
export interface PlaintextFormCosts {
  /** The slow tier a stored plaintext is written to and read back from. */
  readonly device: DeviceProfile;
  /** Runs the server expects to make with the program (≥ 1; `Infinity` for a long-lived server). */
  readonly runs: number;
  /** Time to encode one limb of a plaintext (FFT share included), measured by {@link measureEncodeNsPerLimb}. */
  readonly encodeNsPerLimb: number;
}

/**
 * Per-plaintext forms and the figures behind them (times modelled from the costs, in nanoseconds).
 *
 * @example
 * ```ts
 * const { forms, encodeOnUse } = choosePlaintextForms(program, costs);
 * ```
 */
export interface PlaintextFormChoice {
  /** Form of plaintext `i` (`forms[i]`). */
  readonly forms: readonly PlaintextForm[];
  readonly stored: number;
  readonly encodeOnUse: number;
  /** Bytes of the plaintexts stored (they go through the plan and the slow tier). */
  readonly storedBytes: number;
  /** With the chosen forms: time paid once (encoding and writing the stored ones), and per run. */
  readonly chosen: { readonly onceNs: number; readonly perRunNs: number };
  /** With every plaintext stored. */
  readonly allStored: { readonly onceNs: number; readonly perRunNs: number };
}

/**
 * Chooses each plaintext's form. A plaintext the program marks `encodeOnUse` (its compiler found that the
 * plaintexts would not fit in memory together) stays encoded on use. For the others, over R expected runs:
 * storing costs one encoding and one write, then a read per reader and run (latency + bytes / bandwidth, the
 * planner's worst case: no copy kept in memory); encoding on use costs an encoding per reader and run. The cheaper
 * one is taken (with R = ∞, the cheaper per run).
 *
 * @example
 * ```ts
 * const choice = choosePlaintextForms(program, { device: DEVICE_PROFILES['nvme-gen4'], runs: 20, encodeNsPerLimb: 3e5 });
 * ```
 */
export function choosePlaintextForms(program: HeProgram, costs: PlaintextFormCosts): PlaintextFormChoice {
  const { device, runs, encodeNsPerLimb } = costs;
  check(runs >= 1, () => `runs = ${runs}: expected a number >= 1 (or Infinity)`);
  check(
    Number.isFinite(encodeNsPerLimb) && encodeNsPerLimb > 0,
    () => `encodeNsPerLimb = ${encodeNsPerLimb}: expected a positive number of nanoseconds`,
  );
  const readers = new Array<number>(program.plaintexts.length).fill(0);
  for (const ins of program.instructions) if (ins.plaintext !== undefined) readers[ins.plaintext]++;
  const limbBytes = 4 * 2 ** program.parameters.logN;
  const forms: PlaintextForm[] = [];
  let stored = 0;
  let storedBytes = 0;
  const chosen = { onceNs: 0, perRunNs: 0 };
  const allStored = { onceNs: 0, perRunNs: 0 };
  program.plaintexts.forEach((pt, i) => {
    const encodeNs = encodeNsPerLimb * (pt.bytes / limbBytes);
    const storeOnceNs = encodeNs + device.writeLatencyNs + pt.bytes / device.writeBytesPerNs;
    const storePerRunNs = readers[i] * (device.readLatencyNs + pt.bytes / device.readBytesPerNs);
    const onUsePerRunNs = readers[i] * encodeNs;
    const onUseCheaper = Number.isFinite(runs)
      ? runs * onUsePerRunNs < storeOnceNs + runs * storePerRunNs
      : onUsePerRunNs < storePerRunNs;
    const form: PlaintextForm = pt.encodeOnUse === true || onUseCheaper ? 'encode-on-use' : 'stored';
    forms.push(form);
    allStored.onceNs += storeOnceNs;
    allStored.perRunNs += storePerRunNs;
    if (form === 'stored') {
      stored++;
      storedBytes += pt.bytes;
      chosen.onceNs += storeOnceNs;
      chosen.perRunNs += storePerRunNs;
    } else {
      chosen.perRunNs += onUsePerRunNs;
    }
  });
  return { forms, stored, encodeOnUse: forms.length - stored, storedBytes, chosen, allStored };
}

/**
 * Encoding time per limb on this machine: the program's plaintext with the most limbs encoded three times (the
 * first warms the encoder up), the fastest of the other two divided by its limbs. About 0.1 s at logN 16.
 *
 * @example
 * ```ts
 * const nsPerLimb = measureEncodeNsPerLimb(program, new Encoder(params));
 * ```
 */
export function measureEncodeNsPerLimb(program: HeProgram, encoder: Encoder): number {
  check(program.plaintexts.length > 0, () => 'measureEncodeNsPerLimb: the program has no plaintexts');
  let index = 0;
  program.plaintexts.forEach((pt, i) => {
    if (pt.bytes > program.plaintexts[index].bytes) index = i;
  });
  const limbs = program.plaintexts[index].bytes / (4 * encoder.params.n);
  let best = Number.POSITIVE_INFINITY;
  for (let attempt = 0; attempt < 3; attempt++) {
    const start = nowNs();
    encodePlaintextWeight(program, encoder, index).dispose();
    if (attempt > 0) best = Math.min(best, nowNs() - start);
  }
  return Math.max(1, best / limbs);
}
