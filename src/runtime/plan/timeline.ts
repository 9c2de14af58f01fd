import { check } from '../../util/assert.ts';
import { InvalidArgumentError } from '../../util/errors.ts';
import { ChannelModel, type DeviceProfile, type TransferDirection } from '../store/devices.ts';
import type { ObjectId } from '../../program/access.ts';

/**
 * Kinds of recorded actions. `decision` marks the moment the runtime plans a step (after the previous step's
 * compute); `alloc` and `release` take no time of their own but order buffer reuse.
 *
 * @example
 * ```ts
 * const kind: ActionKind = 'writeback';
 * ```
 */
export type ActionKind =
  | 'decision'
  | 'load'
  | 'writeback'
  | 'copy'
  | 'alloc'
  | 'release'
  | 'delete'
  | 'compute';

/**
 * One recorded runtime action: a transfer on a device channel, a compute step, or a zero-time ordering point.
 * The log of actions with their dependencies is independent of timing, so it can be replayed under other device
 * profiles or compute speeds ({@link Timeline}).
 *
 * @example
 * ```ts
 * const load: Action = {
 *   seq: 7, step: 3, kind: 'load', id: 'w3', bytes: 1 << 20, channel: 'nvme0', direction: 'read',
 *   deps: [5], prefetch: true, computeNs: 0, startNs: 0, endNs: 0,
 * };
 * ```
 */
export interface Action {
  /** Position in the log; dependencies refer to earlier positions. */
  seq: number;
  /** Step whose decision phase issued the action (-1 for setup). */
  step: number;
  kind: ActionKind;
  id?: ObjectId;
  bytes: number;
  /** Device channel the transfer occupies: a slow tier name, `memcpy` for arena <-> DRAM copies, or `compute`. */
  channel?: string;
  direction?: TransferDirection;
  /** Tier the data leaves and enters, for per-tier accounting. */
  from?: string;
  to?: string;
  deps: number[];
  prefetch: boolean;
  /** Compute time at scale 1 (compute actions only). */
  computeNs: number;
  /** Times in the run's virtual clock, filled in by {@link Timeline.add}. */
  startNs: number;
  endNs: number;
}

/**
 * Devices and compute speed a {@link Timeline} assumes.
 *
 * @example
 * ```ts
 * const config: TimelineConfig = { devices: { nvme0: DEVICE_PROFILES['nvme-gen4'] }, computeScale: 0.1 };
 * ```
 */
export interface TimelineConfig {
  /** Profile per transfer channel name (slow tier names and `memcpy`). */
  devices: Record<string, DeviceProfile>;
  /** Compute time multiplier: 0.1 models compute 10× faster. */
  computeScale?: number;
}

/**
 * The virtual clock: assigns deterministic start and end times to actions in log order. A transfer starts when
 * its dependencies are done and its channel ({@link ChannelModel}) is free; a compute action runs on the single
 * compute thread; ordering actions end when their dependencies end. Prefetch overlaps compute because a transfer
 * only waits for its own dependencies, not for the compute thread.
 *
 * @example
 * ```ts
 * const timeline = new Timeline({ devices: { nvme0: DEVICE_PROFILES['nvme-gen4'], memcpy: DEVICE_PROFILES.dram } });
 * for (const action of log) timeline.add(action);
 * console.log(timeline.makespanNs);
 * ```
 */
export class Timeline {
  readonly #channels = new Map<string, ChannelModel>();
  readonly #ends: number[] = [];
  readonly #scale: number;
  #computeFree = 0;
  #makespan = 0;

  constructor(config: TimelineConfig) {
    this.#scale = config.computeScale ?? 1;
    check(
      this.#scale >= 0 && Number.isFinite(this.#scale),
      () => `computeScale = ${this.#scale}: expected a finite number >= 0`,
    );
    for (const [name, profile] of Object.entries(config.devices))
      this.#channels.set(name, new ChannelModel(profile));
  }

  /** Times `action` (which must be the next in log order), stores them on it and returns its end. */
  add(action: Action): number {
    check(
      action.seq === this.#ends.length,
      () => `action seq ${action.seq}: expected ${this.#ends.length} (log order)`,
    );
    let ready = 0;
    for (const d of action.deps) {
      const end = this.#ends[d];
      if (end > ready) ready = end;
    }
    let start = ready;
    let end = ready;
    if (action.kind === 'compute') {
      start = Math.max(ready, this.#computeFree);
      end = start + action.computeNs * this.#scale;
      this.#computeFree = end;
    } else if (
      (action.kind === 'load' || action.kind === 'writeback' || action.kind === 'copy') &&
      action.bytes > 0
    ) {
      const channel = this.#channels.get(action.channel ?? '');
      if (!channel) {
        throw new InvalidArgumentError(
          `timeline: no device profile for channel "${action.channel}" of action ${action.seq}`,
        );
      }
      const t = channel.schedule(action.direction ?? 'read', action.bytes, ready);
      start = t.startNs;
      end = t.endNs;
    }
    action.startNs = start;
    action.endNs = end;
    this.#ends.push(end);
    if (end > this.#makespan) this.#makespan = end;
    return end;
  }

  /** End time of action `seq`. */
  endOf(seq: number): number {
    return this.#ends[seq];
  }

  /** Latest end time so far. */
  get makespanNs(): number {
    return this.#makespan;
  }

  /** Busy time per channel. */
  channelBusyNs(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, model] of this.#channels) out[name] = model.busyNs;
    return out;
  }
}

/**
 * Re-times a recorded action log under other devices or compute speed, without touching the originals.
 * Returns the end time of every action.
 *
 * @example
 * ```ts
 * const ends = replayActions(result.actions, { devices, computeScale: 0.01 }); // compute 100× faster
 * ```
 */
export function replayActions(actions: readonly Action[], config: TimelineConfig): Float64Array {
  const timeline = new Timeline(config);
  const ends = new Float64Array(actions.length);
  for (const action of actions) ends[action.seq] = timeline.add({ ...action });
  return ends;
}
