/**
 * The memory of an encrypted inference run: its DRAM budget (arena + DRAM pool) and the slow tier it spills to — a
 * folder the user names, or a private one under the OS temp directory that is removed when the run ends.
 */
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BootstrappingKeys } from '../ckks/bootstrapping/keys.ts';
import type { HeProgram } from '../program/program.ts';
import { MAX_PAGES, PAGE_BYTES } from '../ring/kernels.ts';
import type { ServerMemory } from '../runtime/he/server.ts';
import { IoPool } from '../runtime/io/io-pool.ts';
import { type DeviceProfile, deviceProfile } from '../runtime/store/devices.ts';
import { FileTier } from '../runtime/store/file-tier.ts';
import { probeTier, slowerProfile } from '../runtime/store/tier-probe.ts';
import { defaultPlanCacheDir, PlanCache } from '../runtime/plan/plan-cache.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { parseByteSize, parseTierSpec } from './sizes.ts';

/**
 * The memory flags of `home infer`.
 *
 * @example
 * ```ts
 * const flags: MemoryFlags = { dramBudget: '2GiB', tier: 'nvme:/data/he', profile: 'file' };
 * ```
 */
export interface MemoryFlags {
  /** Arena + DRAM pool, e.g. `2GiB` (default: half of the memory free at start). */
  readonly dramBudget?: string;
  /** `name:path` of the slow tier (default: a private folder under the OS temp directory, removed at exit). */
  readonly tier?: string;
  /** Device profile emulated on the tier (`file`: none, the default). */
  readonly profile?: string;
  /** Folder of cached plans (default {@link defaultPlanCacheDir}); `none` disables the cache. */
  readonly planCache?: string;
}

/**
 * The memory a run got: its budget, the tier (open) and the profile its plan is timed with.
 *
 * @example
 * ```ts
 * const memory = await openRunMemory(flags);
 * try { … } finally { await memory.close(); }
 * ```
 */
export interface RunMemory {
  readonly budgetBytes: number;
  /** Where the budget came from, for the report: the flag, or half of the memory free at start. */
  readonly budgetSource: 'flag' | 'free-memory';
  readonly tierName: string;
  readonly tierDir: string;
  readonly profile: string;
  /** The server's memory for a run that does not fit the budget (probes the tier on first use). */
  serverMemory(): Promise<ServerMemory>;
  /** Closes the tier and removes the private folder (if the run made one). */
  close(): Promise<void>;
}

/** The largest arena the kernels' WebAssembly memory can hold (7/8 of its maximum: the rest is scratch). */
export const ARENA_LIMIT_BYTES = (MAX_PAGES * PAGE_BYTES * 7) / 8;

/**
 * Checks the memory flags and opens the slow tier. Nothing is written to the tier until a run needs it.
 *
 * @throws InvalidArgumentError naming the flag for a bad size, tier spec or profile.
 * @example
 * ```ts
 * const memory = await openRunMemory({ dramBudget: '2GiB' });
 * ```
 */
export async function openRunMemory(flags: MemoryFlags): Promise<RunMemory> {
  const budgetBytes =
    flags.dramBudget === undefined
      ? Math.floor(freemem() / 2)
      : parseByteSize(flags.dramBudget, '--dram-budget');
  if (!(budgetBytes > 0))
    throw new InvalidArgumentError(`--dram-budget ${flags.dramBudget}: expected a positive size`);
  const profile = flags.profile ?? 'file';
  const planCache =
    flags.planCache === 'none' ? undefined : new PlanCache(flags.planCache ?? defaultPlanCacheDir());
  const emulate: DeviceProfile | null = profile === 'file' ? null : deviceProfile(profile);
  let name = 'tmp';
  let dir: string;
  let owned = false;
  if (flags.tier !== undefined) {
    const spec = parseTierSpec(flags.tier);
    name = spec.name;
    dir = spec.dir;
    await mkdir(dir, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
      throw new InvalidArgumentError(`--tier ${flags.tier}: cannot create ${dir} (${error.code})`);
    });
  } else {
    dir = await mkdtemp(join(tmpdir(), 'home-infer-'));
    owned = true;
  }
  // A run stopped by a signal still removes its private folder — synchronously: process.exit does not wait for
  // a promise (an asynchronous removal left 59 GB of a killed run in the temp folder).
  // The I/O threads go on with the writes already posted to them (a file made during the removal fails it with
  // ENOTEMPTY), so the removal is tried again until their queue has drained (at most ~10 s), and a removal that
  // still fails does not change the exit code.
  const onSignal = (signal: NodeJS.Signals) => {
    if (owned) removeWhileWritten(dir);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  if (owned) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  let io: IoPool | undefined;
  let tier: FileTier | undefined;
  let server: ServerMemory | undefined;
  return {
    budgetBytes,
    budgetSource: flags.dramBudget === undefined ? 'free-memory' : 'flag',
    tierName: name,
    tierDir: dir,
    profile,
    async serverMemory() {
      if (server) return server;
      io = new IoPool();
      tier = await FileTier.open({ name, dir, io, ...(emulate ? { emulate } : {}) });
      const measured = await probeTier(tier);
      server = {
        budgetBytes,
        tiers: [tier],
        planningDevices: [emulate ? slowerProfile(measured, emulate) : measured],
        ...(planCache ? { planCache: { cache: planCache, devices: profile } } : {}),
      };
      return server;
    },
    async close() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await tier?.close();
      await io?.terminate();
      if (owned) await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Removes `dir` synchronously while other threads may still be creating files in it: tries again every 100 ms
 * (for up to 10 s) until a removal finds nothing new; reports a final failure on stderr.
 */
function removeWhileWritten(dir: string): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let failure: unknown;
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      rmSync(dir, { recursive: true, force: true });
      if (!existsSync(dir)) return;
    } catch (error) {
      failure = error;
    }
    Atomics.wait(pause, 0, 0, 100);
  }
  console.error(
    `home: could not remove ${dir}: ${failure instanceof Error ? failure.message : 'it came back'}`,
  );
}

/**
 * The part of a DRAM budget the server's plan may fill with its objects. An eighth is left for what no plan holds
 * (a streamed key being made in setup, the writes in flight beside it, the JavaScript heap and the threads: the
 * ruiyangju CNN's peak RSS was 2.55 GiB under 2 GiB with it). The program's constants (the weights every plaintext
 * is encoded from) stay in memory through the run and come out of it too, at most half of it (under a 2 GiB budget
 * LeNet's 379 MB of float64 constants took its peak RSS to 3.05 GiB when only those beyond 256 MiB were counted,
 * 2.88 GiB when all were), and so do the keys a bootstrapper keeps in kernel memory beside the plan's objects (its
 * relinearization and encapsulation keys; its Galois keys and diagonals come and go inside each bootstrap's
 * declared scratch).
 *
 * @example
 * ```ts
 * const budgetBytes = planBudgetBytes(runMemory.budgetBytes, program, client.bootstrappingKeys);
 * ```
 */
export function planBudgetBytes(
  budgetBytes: number,
  program: Pick<HeProgram, 'constants' | 'paletteCodes'>,
  bootstrappingKeys: BootstrappingKeys | undefined,
): number {
  const constantsBytes = Math.min(
    program.constants.byteLength + program.paletteCodes.byteLength,
    Math.floor(budgetBytes / 2),
  );
  const bootstrapResident = bootstrappingKeys
    ? bootstrappingKeys.relinearization.byteLength +
      bootstrappingKeys.denseToSparse.byteLength +
      bootstrappingKeys.sparseToDense.byteLength
    : 0;
  return Math.floor((budgetBytes * 7) / 8) - constantsBytes - bootstrapResident;
}
