import { check } from '../../util/assert.ts';
import { FormatError, InvalidArgumentError, ResourceError } from '../../util/errors.ts';
import type { ObjectId } from '../../program/access.ts';
import type { DeviceProfile } from './devices.ts';
import {
  gatherBytes,
  type ScatterBytes,
  scatterBytes,
  scatterBytesLength,
  type SlowTier,
} from './slow-tier.ts';

/**
 * A slow tier in this process: it keeps a byte copy of each object it is given, and its device profile tells the
 * planner how the modelled device would time each transfer (the virtual clock is one more device). The executor
 * runs against it exactly as against a {@link FileTier}, so tests and runs of a modelled device move real bytes
 * without files. Its transfers are memcpys, so only the plan's virtual clock shows what the device would cost.
 *
 * Its copies live in host memory outside every budget of the run: it stands for a device, not for DRAM.
 *
 * @example
 * ```ts
 * const tier = new VirtualTier('pmem', DEVICE_PROFILES['optane-appdirect']);
 * await tier.write('w', bytes);
 * await tier.read('w', into);
 * ```
 */
export class VirtualTier implements SlowTier {
  readonly name: string;
  readonly device: DeviceProfile;
  readonly capacityBytes: number;
  readonly objectOverheadBytes = 0;
  readonly #copies = new Map<ObjectId, Uint8Array>();
  #used = 0;
  #closed = false;

  constructor(name: string, device: DeviceProfile, capacityBytes = Infinity) {
    check(name.length > 0, () => 'VirtualTier name: expected a non-empty string');
    check(capacityBytes > 0, () => `VirtualTier ${name} capacity = ${capacityBytes}: expected > 0`);
    this.name = name;
    this.device = device;
    this.capacityBytes = capacityBytes;
  }

  get usedBytes(): number {
    return this.#used;
  }

  has(id: ObjectId): boolean {
    return this.#copies.has(id);
  }

  async read(id: ObjectId, into: ScatterBytes): Promise<void> {
    this.#assertOpen();
    const copy = this.#copies.get(id);
    if (!copy) {
      throw new ResourceError(
        `slow tier ${this.name}: object "${id}" has no copy here: expected it to have been written`,
      );
    }
    const wanted = scatterBytesLength(into);
    if (copy.byteLength !== wanted) {
      throw new FormatError(
        `object "${id}" in slow tier ${this.name}: ${copy.byteLength} bytes stored: expected ${wanted}`,
      );
    }
    scatterBytes(copy, into);
  }

  async write(id: ObjectId, bytes: ScatterBytes): Promise<void> {
    this.#assertOpen();
    const previous = this.#copies.get(id)?.byteLength ?? 0;
    const length = scatterBytesLength(bytes);
    const used = this.#used - previous + length;
    if (used > this.capacityBytes) {
      throw new ResourceError(
        `slow tier ${this.name}: writing "${id}" (${length} bytes) would use ${used} bytes: expected at ` +
          `most its capacity of ${this.capacityBytes}`,
      );
    }
    this.#copies.set(id, gatherBytes(bytes));
    this.#used = used;
  }

  async delete(id: ObjectId): Promise<void> {
    const copy = this.#copies.get(id);
    if (!copy) return;
    this.#copies.delete(id);
    this.#used -= copy.byteLength;
  }

  async check(): Promise<number> {
    this.#assertOpen();
    return this.capacityBytes - this.#used;
  }

  async ensureRoom(bytes: number, _objects = 0): Promise<void> {
    const left = this.capacityBytes - this.#used;
    if (bytes > left) {
      throw new ResourceError(
        `slow tier ${this.name}: the program may need ${bytes} bytes here, but only ${left} are left: expected a ` +
          'larger tier, another tier, or a larger DRAM budget',
      );
    }
  }

  /** Transfers complete when issued: nothing is queued. */
  flush(): void {}

  async close(options: { keepFiles?: boolean } = {}): Promise<void> {
    if (!options.keepFiles) {
      this.#copies.clear();
      this.#used = 0;
    }
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidArgumentError(`slow tier ${this.name}: used after close()`);
  }
}
