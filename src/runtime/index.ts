/**
 * `home-he/runtime` (Node only): programs run under memory budgets. Every object of a run lives in the arena (live
 * objects in kernel memory), a DRAM pool under a hard budget, or slow tiers (`FileTier`: files, optionally slowed to
 * a device profile; `VirtualTier`: in-process copies); a planner decides every move ahead of the run from the
 * program's known access sequence (`planProgram`, policies `HomePolicy` and `LruPolicy`), and one executor carries
 * the plan out (`executePlan`), all in memory being the executor with an unlimited budget. The HE glue runs HE
 * programs this way (`runTieredHe`, many models at once with `runTieredRequests`, and the `InferenceServer`).
 *
 * @example
 * ```ts
 * import { compileModel, importOnnx, InferenceClient } from 'home-he/nn';
 * import { FileTier, heObjectSource, HomePolicy, runTieredHe } from 'home-he/runtime';
 *
 * const { program, params } = compileModel(importOnnx(onnxBytes));
 * const client = new InferenceClient(program);
 * const inputs = client.encryptPass(images, 0, 64);
 * const tier = await FileTier.open({ name: 'nvme', dir: '/data/he' });
 * const source = heObjectSource({ program, evaluationKeys: client.evaluationKeys, inputs });
 * const { outputs, stats } = await runTieredHe({ program, params: client.params, source, policy: new HomePolicy(), memoryBudgetBytes: 256 << 20, tiers: [tier] });
 * const logits = client.decryptPass(outputs, 64);
 * ```
 */

export { ByteArena } from './exec/byte-arena.ts';
export {
  type ByteRunOptions,
  type ByteRunResult,
  type ComputeFn,
  runByteProgram,
  type StepIo,
} from './exec/byte-run.ts';
export {
  type ExecArena,
  type ExecutedStep,
  type ExecuteOptions,
  type ExecutionResult,
  executePlan,
} from './exec/executor.ts';
export { HeArena, type HeLiveObject } from './exec/he-arena.ts';
export { type InitialObject, runTiered, type TieredRunOptions, type TieredRunResult } from './exec/run.ts';
export {
  multiModelProgram,
  requestOrder,
  runTieredRequests,
  type ServedModel,
  type TieredRequestsOptions,
} from './he/multi.ts';
export { type HeRuntimeProgramOptions, heRuntimeProgram, realRunHomePolicy } from './he/program.ts';
export {
  type EncryptedRun,
  InferenceServer,
  type PhaseTimings,
  type ProgressCallback,
  runEncrypted,
} from './he/server.ts';
export {
  type HeObjectSource,
  heObjectSource,
  runTieredHe,
  splitMemoryBudget,
  type TieredHeOptions,
  type TieredHeResult,
  type TieredHeStats,
} from './he/tiered.ts';
export { IoPool, type IoPoolOptions } from './io/io-pool.ts';
export type { InitialPlacement, MemoryLevel, PlannedTier, TierTraffic } from './plan/ledger.ts';
export { type LocalityOptions, scheduleForLocality } from './plan/locality.ts';
export { type OptimalResult, optimalBytesMoved } from './plan/optimal.ts';
export { type Plan, type PlanOptions, planProgram, type SimulationConfig, simulate } from './plan/planner.ts';
export {
  HomePolicy,
  type HomePolicyOptions,
  type KeyAwareOptions,
  LruPolicy,
  makePolicy,
  type Policy,
  type PolicyName,
  scheduleKeyAware,
} from './plan/policy.ts';
export { analyzeProgram, type NextUse, ProgramAnalysis } from './plan/program.ts';
export type { RunResult, RunSummary, StepTrace } from './plan/run-result.ts';
export { type Action, type ActionKind, replayActions, Timeline } from './plan/timeline.ts';
export { DEVICE_PROFILES, type DeviceName, type DeviceProfile, deviceProfile } from './store/devices.ts';
export { FileTier, type FileTierOptions, type FileTierStats } from './store/file-tier.ts';
export type { SlowTier } from './store/slow-tier.ts';
export { type ProbeOptions, probeTier } from './store/tier-probe.ts';
export { VirtualTier } from './store/virtual-tier.ts';
