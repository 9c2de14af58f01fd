import { check } from '../../util/assert.ts';
import { InvalidArgumentError } from '../../util/errors.ts';

/**
 * Names of the built-in device profiles.
 *
 * @example
 * ```ts
 * const name: DeviceName = 'nvme-gen4';
 * ```
 */
export type DeviceName = 'dram' | 'optane-appdirect' | 'cxl' | 'nvme-gen4' | 'nvme-gen5';

/**
 * Timing model of one memory or storage device: latency per request and sustained bandwidth, for reads and writes,
 * shared by `channels` independent queues. Bandwidths are in bytes per nanosecond (numerically equal to GB/s).
 *
 * @example
 * ```ts
 * const slowNvme: DeviceProfile = { ...DEVICE_PROFILES['nvme-gen4'], readBytesPerNs: 3.5 };
 * ```
 */
export interface DeviceProfile {
  name: string;
  readLatencyNs: number;
  writeLatencyNs: number;
  readBytesPerNs: number;
  writeBytesPerNs: number;
  /** Independent queues; each gets 1/channels of the bandwidth. 1 = one FIFO at full bandwidth. */
  channels: number;
  /** Where the figures come from. */
  source: string;
}

/**
 * Built-in profiles. Every figure is from /work/shared/anchors/ANCHORS.md §6 unless marked *est.* (then it is
 * arithmetic or an assumption stated in `source`). The slow end of each measured range is used (lowest bandwidth,
 * random-access latency), so emulation errs slow.
 *
 * @example
 * ```ts
 * const optane = DEVICE_PROFILES['optane-appdirect']; // 37.6 GB/s read, 12.5 GB/s write
 * ```
 */
export const DEVICE_PROFILES: Readonly<Record<DeviceName, DeviceProfile>> = {
  // ANCHORS §6: DRAM one socket ~81 ns sequential / 101 ns random, ~105 GB/s read (Izraelevitz et al.; Yang et al.
  // FAST'20). Write bandwidth is not in the anchors: *est.* equal to read. Used for arena <-> DRAM copies.
  dram: {
    name: 'dram',
    readLatencyNs: 101,
    writeLatencyNs: 101,
    readBytesPerNs: 105,
    writeBytesPerNs: 105,
    channels: 1,
    source: "ANCHORS §6 (FAST'20): 81/101 ns, ~105 GB/s read; write bandwidth est. = read",
  },
  // ANCHORS §6: Optane PMem 100 App Direct, 6 DIMMs interleaved: 169 ns seq / 305 ns random read latency,
  // 37.6–39.4 GB/s read, 12.5–13.9 GB/s write, peaking at ~4 threads (FAST'20). Write latency not given: *est.* =
  // random read latency.
  'optane-appdirect': {
    name: 'optane-appdirect',
    readLatencyNs: 305,
    writeLatencyNs: 305,
    readBytesPerNs: 37.6,
    writeBytesPerNs: 12.5,
    channels: 1,
    source: "ANCHORS §6 (FAST'20): 169/305 ns, 37.6–39.4 GB/s read, 12.5–13.9 GB/s write (6 DIMMs)",
  },
  // ANCHORS §6: CXL Type-3 expander adds 70–90 ns over local DRAM (Pond, ASPLOS'23; 2–5× local latency on real
  // cards, MICRO'23); bandwidth ~ one DDR5 channel per device. *est.*: latency 101 + 90 = 191 ns (the Pond upper
  // end; real cards can be slower), bandwidth 30 GB/s = a DDR5-4800 channel's 38.4 GB/s peak at ~80 % efficiency.
  cxl: {
    name: 'cxl',
    readLatencyNs: 191,
    writeLatencyNs: 191,
    readBytesPerNs: 30,
    writeBytesPerNs: 30,
    channels: 1,
    source:
      "ANCHORS §6 (Pond ASPLOS'23, MICRO'23): +70–90 ns over DRAM, ~1 DDR5 channel; bandwidth est. 30 GB/s",
  },
  // ANCHORS §6: NVMe PCIe 4.0, ~80 µs, ~7 GB/s sequential read (vendor sheets). Write bandwidth not in the anchors:
  // *est.* 6 GB/s (typical Gen4 sheet value); write latency *est.* = read latency.
  'nvme-gen4': {
    name: 'nvme-gen4',
    readLatencyNs: 80_000,
    writeLatencyNs: 80_000,
    readBytesPerNs: 7,
    writeBytesPerNs: 6,
    channels: 1,
    source: 'ANCHORS §6 (vendor sheets): ~80 µs, ~7 GB/s read; write est. 6 GB/s',
  },
  // ANCHORS §6: NVMe PCIe 5.0, ~80 µs, ~13 GB/s sequential read. Write *est.* 11 GB/s.
  'nvme-gen5': {
    name: 'nvme-gen5',
    readLatencyNs: 80_000,
    writeLatencyNs: 80_000,
    readBytesPerNs: 13,
    writeBytesPerNs: 11,
    channels: 1,
    source: 'ANCHORS §6 (vendor sheets): ~80 µs, ~13 GB/s read; write est. 11 GB/s',
  },
};

/**
 * Looks up a built-in profile; throws {@link InvalidArgumentError} listing the known names.
 *
 * @example
 * ```ts
 * const profile = deviceProfile('cxl');
 * ```
 */
export function deviceProfile(name: string): DeviceProfile {
  const profile = (DEVICE_PROFILES as Record<string, DeviceProfile>)[name];
  if (!profile) {
    throw new InvalidArgumentError(
      `device profile "${name}": expected one of ${Object.keys(DEVICE_PROFILES).join(', ')}`,
    );
  }
  return profile;
}

/**
 * A copy of `profile` with read and write bandwidth scaled by `factor` (for what-if studies).
 *
 * @example
 * ```ts
 * const doubled = scaleBandwidth(DEVICE_PROFILES['nvme-gen4'], 2);
 * ```
 */
export function scaleBandwidth(profile: DeviceProfile, factor: number): DeviceProfile {
  check(Number.isFinite(factor) && factor > 0, () => `factor = ${factor}: expected a finite number > 0`);
  return {
    ...profile,
    name: `${profile.name}×${+factor.toPrecision(4)}bw`,
    readBytesPerNs: profile.readBytesPerNs * factor,
    writeBytesPerNs: profile.writeBytesPerNs * factor,
  };
}

/**
 * Direction of a transfer relative to the device: `read` moves data out of it, `write` into it.
 *
 * @example
 * ```ts
 * const direction: TransferDirection = 'write';
 * ```
 */
export type TransferDirection = 'read' | 'write';

/**
 * When a modelled transfer occupies its channel and when its data is available.
 *
 * @example
 * ```ts
 * const { endNs } = model.schedule('read', 1 << 20, 0);
 * ```
 */
export interface ScheduledTransfer {
  /** The channel starts streaming (after earlier transfers on that channel). */
  startNs: number;
  /** The channel is free again. */
  channelFreeNs: number;
  /** The data has arrived: channel time plus the device latency. */
  endNs: number;
}

/**
 * The queueing model shared by the virtual clock and real-I/O emulation. Each channel is a FIFO server streaming
 * at bandwidth / channels; a transfer starts when its channel is free and it has been issued, streams for
 * bytes / bandwidth, and its data arrives one latency later (latency is pipelined: a device with a deep queue
 * overlaps one request's latency with another's streaming). Transfers are placed in the order they are issued.
 *
 * @example
 * ```ts
 * const model = new ChannelModel(DEVICE_PROFILES['nvme-gen4']);
 * const t = model.schedule('read', 8 << 20, 0); // t.endNs ≈ 80_000 + 1_198_372
 * ```
 */
export class ChannelModel {
  readonly profile: DeviceProfile;
  readonly #free: Float64Array;
  #busyNs = 0;
  #bytes = { read: 0, write: 0 };

  constructor(profile: DeviceProfile) {
    check(
      Number.isInteger(profile.channels) && profile.channels >= 1,
      () => `${profile.name}.channels = ${profile.channels}: expected an integer >= 1`,
    );
    for (const key of ['readBytesPerNs', 'writeBytesPerNs'] as const) {
      check(profile[key] > 0, () => `${profile.name}.${key} = ${profile[key]}: expected > 0`);
    }
    this.profile = profile;
    this.#free = new Float64Array(profile.channels);
  }

  /**
   * Places a transfer of `bytes` that may not start before `earliestNs` on the channel that frees first.
   */
  schedule(direction: TransferDirection, bytes: number, earliestNs: number): ScheduledTransfer {
    let channel = 0;
    for (let c = 1; c < this.#free.length; c++) if (this.#free[c] < this.#free[channel]) channel = c;
    const bandwidth =
      (direction === 'read' ? this.profile.readBytesPerNs : this.profile.writeBytesPerNs) / this.#free.length;
    const latency = direction === 'read' ? this.profile.readLatencyNs : this.profile.writeLatencyNs;
    const startNs = Math.max(earliestNs, this.#free[channel]);
    const duration = bytes / bandwidth;
    const channelFreeNs = startNs + duration;
    this.#free[channel] = channelFreeNs;
    this.#busyNs += duration;
    this.#bytes[direction] += bytes;
    return { startNs, channelFreeNs, endNs: channelFreeNs + latency };
  }

  /** Total channel-busy time so far (sum over channels). */
  get busyNs(): number {
    return this.#busyNs;
  }

  /** Bytes scheduled so far per direction. */
  get bytes(): { read: number; write: number } {
    return { ...this.#bytes };
  }
}

/**
 * Current wall-clock time in nanoseconds (from `performance.now`, microsecond resolution; no BigInt).
 *
 * @example
 * ```ts
 * const t0 = nowNs();
 * ```
 */
export function nowNs(): number {
  return performance.now() * 1e6;
}

/**
 * Resolves once the wall clock reaches `targetNs` (a {@link nowNs} value): a timer for the bulk of the wait, then
 * `setImmediate` polling for the last millisecond, since timers fire with ~1 ms granularity.
 *
 * @example
 * ```ts
 * await sleepUntilNs(nowNs() + 250_000); // ≈ 250 µs
 * ```
 */
export async function sleepUntilNs(targetNs: number): Promise<void> {
  let remaining = targetNs - nowNs();
  if (remaining > 2e6) {
    await new Promise<void>((resolve) => setTimeout(resolve, Math.floor((remaining - 1e6) / 1e6)));
  }
  while ((remaining = targetNs - nowNs()) > 0) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Makes real I/O behave like a slower device: each transfer is admitted into the {@link ChannelModel} at its
 * wall-clock issue time, and after the real operation finishes the caller waits until the modelled completion.
 * The result is max(real, modelled), so emulation can slow a fast disk down but never speed it up.
 *
 * @example
 * ```ts
 * const emulator = new DeviceEmulator(DEVICE_PROFILES['nvme-gen4']);
 * const target = emulator.admit('read', bytes);
 * await realRead();
 * await emulator.settle(target);
 * ```
 */
export class DeviceEmulator {
  readonly #model: ChannelModel;
  #delayedNs = 0;

  constructor(profile: DeviceProfile) {
    this.#model = new ChannelModel(profile);
  }

  get profile(): DeviceProfile {
    return this.#model.profile;
  }

  /** Registers a transfer issued now; returns the wall-clock time its modelled completion falls on. */
  admit(direction: TransferDirection, bytes: number): number {
    return this.#model.schedule(direction, bytes, nowNs()).endNs;
  }

  /** Waits until `targetNs` if the real operation finished earlier. */
  async settle(targetNs: number): Promise<void> {
    const wait = targetNs - nowNs();
    if (wait > 0) {
      this.#delayedNs += wait;
      await sleepUntilNs(targetNs);
    }
  }

  /** Total time added on top of real I/O. */
  get delayedNs(): number {
    return this.#delayedNs;
  }
}
