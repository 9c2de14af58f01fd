/**
 * Plans kept on disk between runs. A plan depends only on the runtime program, the memory split, the policy and the
 * devices it was timed for, so a later run (another `home infer`, a restarted server) with the same four loads it
 * ({@link decodePlan}) instead of planning again. Files are written atomically (a temporary file renamed); a file
 * that does not decode — truncated, corrupted, from another version — is a miss that says why, and is replaced by
 * the next store.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { AccessProgram } from '../../program/access.ts';
import { InvalidArgumentError } from '../../util/errors.ts';
import { decodePlan, encodePlan, PLAN_FORMAT_VERSION } from './plan-codec.ts';
import type { ExecutablePlan } from './planner.ts';

/**
 * What a plan was made for, besides the program.
 *
 * @example
 * ```ts
 * const parts: PlanKeyParts = { arenaBytes, dramPoolBytes, policy: 'home/256/160', devices: 'file' };
 * ```
 */
export interface PlanKeyParts {
  readonly arenaBytes: number;
  readonly dramPoolBytes: number;
  /** The policy and its options, as a string. */
  readonly policy: string;
  /** The devices the plan was timed for: a profile name (`file` for a measured file tier) per tier. */
  readonly devices: string;
  /** Anything else the plan depends on (e.g. seeded keys change stored sizes). */
  readonly extra?: string;
}

const digests = new WeakMap<AccessProgram, string>();

/**
 * SHA-256 (hex) of what a plan of `program` depends on: its objects (id, size, kind, read-only) and its steps in
 * order (op, reads, writes, frees, compute cost, scratch). Memoized per program object.
 *
 * @example
 * ```ts
 * const digest = accessProgramDigest(runtimeProgram);
 * ```
 */
export function accessProgramDigest(program: AccessProgram): string {
  const known = digests.get(program);
  if (known !== undefined) return known;
  const hash = sha256.create();
  const encoder = new TextEncoder();
  let chunk: string[] = [];
  const flush = () => {
    hash.update(encoder.encode(chunk.join('\n')));
    chunk = [];
  };
  chunk.push(program.name);
  for (const o of program.objects) chunk.push(`o ${o.id} ${o.bytes} ${o.kind} ${o.readOnly ? 1 : 0}`);
  flush();
  for (const s of program.steps) {
    chunk.push(
      `s ${s.op} ${s.reads.join(',')} ${s.writes.join(',')} ${(s.frees ?? []).join(',')} ${s.computeCostNs ?? ''} ${s.scratchBytes ?? ''}`,
    );
    if (chunk.length >= 4096) flush();
  }
  flush();
  const digest = bytesToHex(hash.digest());
  digests.set(program, digest);
  return digest;
}

/**
 * The default folder of cached plans: `$XDG_CACHE_HOME/home-he/plans`, else `~/.cache/home-he/plans`.
 *
 * @example
 * ```ts
 * const cache = new PlanCache(defaultPlanCacheDir());
 * ```
 */
export function defaultPlanCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'home-he', 'plans');
}

/**
 * A folder of plans keyed by program digest, memory split, policy and devices.
 *
 * @example
 * ```ts
 * const cache = new PlanCache(defaultPlanCacheDir());
 * const key = cache.keyOf(runtimeProgram, parts);
 * const plan = cache.load(key, runtimeProgram) ?? plan it, then cache.store(key, plan);
 * ```
 */
export class PlanCache {
  readonly dir: string;
  /** Why the last {@link PlanCache.load} missed (`absent`, or the decoding error). */
  lastMiss: string | undefined;

  constructor(dir: string) {
    if (typeof dir !== 'string' || dir.length === 0) {
      throw new InvalidArgumentError(`plan cache folder ${String(dir)}: expected a path`);
    }
    this.dir = dir;
  }

  /** The file name (without folder) of the plan for `program` and `parts`. */
  keyOf(program: AccessProgram, parts: PlanKeyParts): string {
    const text = [
      `v${PLAN_FORMAT_VERSION}`,
      accessProgramDigest(program),
      parts.arenaBytes,
      parts.dramPoolBytes,
      parts.policy,
      parts.devices,
      parts.extra ?? '',
    ].join('|');
    return `${bytesToHex(sha256(new TextEncoder().encode(text))).slice(0, 32)}.plan`;
  }

  /** The plan stored under `key` for `program`, or undefined (see {@link PlanCache.lastMiss}). */
  load(key: string, program: AccessProgram): ExecutablePlan | undefined {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(join(this.dir, key));
    } catch {
      this.lastMiss = 'absent';
      return undefined;
    }
    try {
      const plan = decodePlan(bytes, program);
      this.lastMiss = undefined;
      return plan;
    } catch (error) {
      this.lastMiss = (error as Error).message;
      return undefined;
    }
  }

  /** Stores `plan` under `key` atomically; a failure to write (read-only folder, full disk) is reported, not thrown. */
  store(key: string, plan: ExecutablePlan): { ok: true } | { ok: false; reason: string } {
    const path = join(this.dir, key);
    const temporary = `${path}.tmp-${process.pid}`;
    try {
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(temporary, encodePlan(plan));
      renameSync(temporary, path);
      return { ok: true };
    } catch (error) {
      try {
        rmSync(temporary, { force: true });
      } catch {
        // Nothing was written there (e.g. the folder is a file).
      }
      return { ok: false, reason: (error as Error).message };
    }
  }
}
