import { check } from '../../util/assert.ts';
import { type DeviceProfile, nowNs } from './devices.ts';
import type { SlowTier } from './slow-tier.ts';

/**
 * Options of {@link probeTier}.
 *
 * @example
 * ```ts
 * const options: ProbeOptions = { objectBytes: 1 << 20, objects: 16 };
 * ```
 */
export interface ProbeOptions {
  /** Size of each probe object (default 1 MiB: the size of a ciphertext). */
  objectBytes?: number;
  /** Probe objects (default 16). */
  objects?: number;
  /** Transfers in flight at once (default 2). */
  inFlight?: number;
}

/**
 * Measures what a file tier delivers on this machine, through the same path the runtime uses (I/O workers,
 * checksums, rename commit, device emulation if the tier has one), and returns it as a device profile: read and
 * write bandwidth with `inFlight` objects in flight, and the latency of a one-page read. The planner times
 * transfers with it, so prefetches are issued early enough for the real device rather than for a data sheet.
 * The probe objects are deleted.
 *
 * @example
 * ```ts
 * const measured = await probeTier(tier);
 * const plan = planProgram(program, { ..., tiers: [{ name: tier.name, device: measured, capacityBytes }] });
 * ```
 */
export async function probeTier(tier: SlowTier, options: ProbeOptions = {}): Promise<DeviceProfile> {
  const objectBytes = options.objectBytes ?? 2 ** 20;
  const objects = options.objects ?? 16;
  const inFlight = options.inFlight ?? 2;
  check(
    objectBytes >= 4096 && objects >= 1 && inFlight >= 1,
    () => 'probeTier: expected sizes and counts ≥ 1',
  );
  const ids = Array.from({ length: objects }, (_, i) => `.probe/${process.pid}/${i}`);
  const data = new Uint8Array(new SharedArrayBuffer(objectBytes));
  const words = new Uint32Array(data.buffer);
  for (let k = 0; k < words.length; k++) words[k] = Math.imul(k + 1, 0x9e3779b1);
  const pipelined = async (job: (i: number, lane: number) => Promise<void>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async (_, lane) => {
        while (next < objects) await job(next++, lane);
      }),
    );
  };
  try {
    let t0 = nowNs();
    await pipelined((i) => tier.write(ids[i], data));
    const writeNs = nowNs() - t0;
    const backs = Array.from({ length: inFlight }, () => new Uint8Array(new SharedArrayBuffer(objectBytes)));
    t0 = nowNs();
    await pipelined((i, lane) => tier.read(ids[i], backs[lane]));
    const readNs = nowNs() - t0;
    const small = new Uint8Array(new SharedArrayBuffer(4096));
    await tier.write(`${ids[0]}.small`, small);
    t0 = nowNs();
    const rounds = 8;
    for (let r = 0; r < rounds; r++) await tier.read(`${ids[0]}.small`, small);
    const latencyNs = (nowNs() - t0) / rounds;
    await tier.delete(`${ids[0]}.small`);
    const total = objectBytes * objects;
    return {
      name: `${tier.name}-measured`,
      readLatencyNs: latencyNs,
      writeLatencyNs: latencyNs,
      readBytesPerNs: total / readNs,
      writeBytesPerNs: total / writeNs,
      channels: 1,
      source: `measured on this machine: ${objects} × ${objectBytes} B, ${inFlight} in flight, through the I/O workers`,
    };
  } finally {
    await Promise.all(ids.map((id) => tier.delete(id)));
  }
}

/**
 * The slower of two profiles in every figure (emulation can only slow a real device down, so a run emulating
 * `emulated` on `measured` hardware sees the worse of the two).
 *
 * @example
 * ```ts
 * const planning = slowerProfile(measured, DEVICE_PROFILES['optane-appdirect']);
 * ```
 */
export function slowerProfile(a: DeviceProfile, b: DeviceProfile): DeviceProfile {
  return {
    name: `${b.name}@${a.name}`,
    readLatencyNs: Math.max(a.readLatencyNs, b.readLatencyNs),
    writeLatencyNs: Math.max(a.writeLatencyNs, b.writeLatencyNs),
    readBytesPerNs: Math.min(a.readBytesPerNs, b.readBytesPerNs),
    writeBytesPerNs: Math.min(a.writeBytesPerNs, b.writeBytesPerNs),
    channels: 1,
    source: `slower of: ${a.source}; ${b.source}`,
  };
}
