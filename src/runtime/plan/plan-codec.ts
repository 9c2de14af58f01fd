/**
 * The byte form of an {@link ExecutablePlan}, so a plan made once for a program, budget and device is loaded by
 * later runs instead of made again. Actions are stored as columns (typed arrays: a plan of 10^5 actions loads in
 * milliseconds); objects are named by their index in the program, device channels through a string table. The
 * form ends with the SHA-256 of everything before it; decoding checks it and every index against the program the
 * plan is loaded for, so a truncated, corrupted or foreign file is a FormatError, never a wrong plan.
 *
 * Layout: "HOMEPLAN", u32 version, u32 header length, header JSON (UTF-8), zero padding to 8 bytes, the columns
 * (each padded to 8 bytes), then the 32-byte SHA-256.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { AccessProgram, ObjectId } from '../../program/access.ts';
import { FormatError } from '../../util/errors.ts';
import type { InitialPlacement, MemoryLevel } from './ledger.ts';
import type { ExecutablePlan } from './planner.ts';
import type { RunSummary } from './run-result.ts';
import type { Action, ActionKind } from './timeline.ts';

/** Version of the plan byte form; a change of layout bumps it (older files are then re-planned). */
export const PLAN_FORMAT_VERSION = 1;

const MAGIC = new TextEncoder().encode('HOMEPLAN');
const KINDS: readonly ActionKind[] = [
  'decision',
  'load',
  'writeback',
  'copy',
  'alloc',
  'release',
  'delete',
  'compute',
];
const DIRECTIONS = [undefined, 'read', 'write'] as const;

interface PlanHeader {
  program: string;
  steps: number;
  objects: number;
  computeLevel: MemoryLevel;
  slowPeakBytes: number[];
  planningNs: number;
  summary: RunSummary;
  strings: string[];
  /** [object index, slow tier, level (null: none)] per initial object. */
  initial: [number, number, MemoryLevel | null][];
  actions: number;
  deps: number;
}

/** Columns in order: name, element size, count field of the header. */
const COLUMNS = [
  ['step', 4, 'actions'],
  ['kind', 1, 'actions'],
  ['id', 4, 'actions'],
  ['bytes', 8, 'actions'],
  ['channel', 2, 'actions'],
  ['direction', 1, 'actions'],
  ['from', 2, 'actions'],
  ['to', 2, 'actions'],
  ['prefetch', 1, 'actions'],
  ['computeNs', 8, 'actions'],
  ['startNs', 8, 'actions'],
  ['endNs', 8, 'actions'],
  ['depCount', 4, 'actions'],
  ['deps', 4, 'deps'],
] as const;

const pad8 = (n: number) => (n + 7) & ~7;

/** JSON with ±Infinity kept (budgets may be unlimited). */
function stringify(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v === Number.POSITIVE_INFINITY ? '+Infinity' : v === Number.NEGATIVE_INFINITY ? '-Infinity' : v,
  );
}

function parse(text: string): unknown {
  return JSON.parse(text, (_k, v: unknown) =>
    v === '+Infinity' ? Number.POSITIVE_INFINITY : v === '-Infinity' ? Number.NEGATIVE_INFINITY : v,
  );
}

/**
 * Encodes a plan of `plan.program` (its objects are named by their index in that program).
 *
 * @example
 * ```ts
 * const bytes = encodePlan(plan);
 * ```
 */
export function encodePlan(plan: ExecutablePlan): Uint8Array {
  const program = plan.program;
  const objectIndex = new Map<ObjectId, number>();
  for (let i = 0; i < program.objects.length; i++) objectIndex.set(program.objects[i].id, i);
  const strings: string[] = [];
  const stringIndex = new Map<string, number>();
  const str = (s: string | undefined) => {
    if (s === undefined) return -1;
    let i = stringIndex.get(s);
    if (i === undefined) {
      i = strings.length;
      strings.push(s);
      stringIndex.set(s, i);
    }
    return i;
  };
  const actions = plan.actions;
  const n = actions.length;
  let depTotal = 0;
  for (const a of actions) depTotal += a.deps.length;
  const cols = {
    step: new Int32Array(n),
    kind: new Uint8Array(n),
    id: new Int32Array(n),
    bytes: new Float64Array(n),
    channel: new Int16Array(n),
    direction: new Uint8Array(n),
    from: new Int16Array(n),
    to: new Int16Array(n),
    prefetch: new Uint8Array(n),
    computeNs: new Float64Array(n),
    startNs: new Float64Array(n),
    endNs: new Float64Array(n),
    depCount: new Int32Array(n),
    deps: new Int32Array(depTotal),
  };
  let d = 0;
  actions.forEach((a, i) => {
    if (a.seq !== i) throw new FormatError(`plan action ${i}: seq ${a.seq}, expected its position`);
    cols.step[i] = a.step;
    cols.kind[i] = KINDS.indexOf(a.kind);
    cols.id[i] = a.id === undefined ? -1 : (objectIndex.get(a.id) ?? -2);
    if (cols.id[i] === -2) throw new FormatError(`plan action ${i}: object "${a.id}" is not in the program`);
    cols.bytes[i] = a.bytes;
    cols.channel[i] = str(a.channel);
    cols.direction[i] = DIRECTIONS.indexOf(a.direction);
    cols.from[i] = str(a.from);
    cols.to[i] = str(a.to);
    cols.prefetch[i] = a.prefetch ? 1 : 0;
    cols.computeNs[i] = a.computeNs;
    cols.startNs[i] = a.startNs;
    cols.endNs[i] = a.endNs;
    cols.depCount[i] = a.deps.length;
    for (const dep of a.deps) cols.deps[d++] = dep;
  });
  const header: PlanHeader = {
    program: program.name,
    steps: program.steps.length,
    objects: program.objects.length,
    computeLevel: plan.computeLevel,
    slowPeakBytes: plan.slowPeakBytes,
    planningNs: plan.planningNs,
    summary: plan.run.summary,
    strings,
    initial: [...plan.initial].map(([id, p]) => [objectIndex.get(id) ?? -1, p.slowTier, p.level]),
    actions: n,
    deps: depTotal,
  };
  const headerBytes = new TextEncoder().encode(stringify(header));
  let size = pad8(16 + headerBytes.length);
  const columnBytes = COLUMNS.map(([name]) => {
    const c = cols[name];
    return new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
  });
  for (const c of columnBytes) size += pad8(c.length);
  const out = new Uint8Array(size + 32);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, PLAN_FORMAT_VERSION, true);
  view.setUint32(12, headerBytes.length, true);
  out.set(headerBytes, 16);
  let offset = pad8(16 + headerBytes.length);
  for (const c of columnBytes) {
    out.set(c, offset);
    offset += pad8(c.length);
  }
  out.set(sha256(out.subarray(0, size)), size);
  return out;
}

/**
 * Decodes a plan for `program` (the same program it was encoded from: its steps and objects are checked).
 *
 * @throws FormatError naming what is wrong: magic, version, checksum, a count or an index out of range.
 * @example
 * ```ts
 * const plan = decodePlan(readFileSync(path), runtimeProgram);
 * ```
 */
export function decodePlan(input: Uint8Array, program: AccessProgram): ExecutablePlan {
  // A plain view: a Node Buffer's slice() would share memory instead of copying.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const fail = (what: string): never => {
    throw new FormatError(`plan file: ${what}`);
  };
  if (bytes.length < 16 + 32) fail(`${bytes.length} bytes, shorter than any plan`);
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) fail('not a plan (bad magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== PLAN_FORMAT_VERSION) fail(`version ${version}, expected ${PLAN_FORMAT_VERSION}`);
  const body = bytes.length - 32;
  const digest = sha256(bytes.subarray(0, body));
  for (let i = 0; i < 32; i++)
    if (digest[i] !== bytes[body + i]) fail('checksum mismatch (truncated or corrupted)');
  const headerLength = view.getUint32(12, true);
  if (16 + headerLength > body) fail(`header of ${headerLength} bytes past the end`);
  let header: PlanHeader;
  try {
    header = parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(16, 16 + headerLength)),
    ) as PlanHeader;
  } catch (error) {
    return fail(`header is not JSON (${(error as Error).message})`);
  }
  const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
  if (typeof header !== 'object' || header === null) fail('header is not an object');
  if (
    header.program !== program.name ||
    header.steps !== program.steps.length ||
    header.objects !== program.objects.length
  ) {
    fail(
      `made for program "${String(header.program)}" (${header.steps} steps, ${header.objects} objects), ` +
        `expected "${program.name}" (${program.steps.length} steps, ${program.objects.length} objects)`,
    );
  }
  if (!isCount(header.actions) || !isCount(header.deps)) fail('action or dependency count is not a count');
  if (header.computeLevel !== 'arena' && header.computeLevel !== 'dram')
    fail(`compute level ${String(header.computeLevel)}`);
  if (!Array.isArray(header.strings) || header.strings.some((s) => typeof s !== 'string'))
    fail('string table');
  if (!Array.isArray(header.slowPeakBytes) || !Array.isArray(header.initial))
    fail('peaks or initial placements');
  const counts = { actions: header.actions, deps: header.deps };
  let offset = pad8(16 + headerLength);
  const raw: Record<string, ArrayBuffer> = {};
  for (const [name, size, count] of COLUMNS) {
    const length = counts[count] * size;
    if (offset + length > body) fail(`column ${name} past the end`);
    // A copy: columns must be aligned for their typed arrays, and the caller's buffer may be reused.
    raw[name] = bytes.slice(offset, offset + length).buffer;
    offset += pad8(length);
  }
  if (offset !== body) fail(`${body - offset} unexpected bytes after the columns`);
  const step = new Int32Array(raw.step);
  const kind = new Uint8Array(raw.kind);
  const id = new Int32Array(raw.id);
  const sizes = new Float64Array(raw.bytes);
  const channel = new Int16Array(raw.channel);
  const direction = new Uint8Array(raw.direction);
  const from = new Int16Array(raw.from);
  const to = new Int16Array(raw.to);
  const prefetch = new Uint8Array(raw.prefetch);
  const computeNs = new Float64Array(raw.computeNs);
  const startNs = new Float64Array(raw.startNs);
  const endNs = new Float64Array(raw.endNs);
  const depCount = new Int32Array(raw.depCount);
  const deps = new Int32Array(raw.deps);
  const objects = program.objects;
  const strings = header.strings;
  const string = (i: number, what: string, at: number): string | undefined => {
    if (i === -1) return undefined;
    if (i < 0 || i >= strings.length) fail(`action ${at}: ${what} string ${i} out of range`);
    return strings[i];
  };
  const actions: Action[] = new Array(header.actions);
  let d = 0;
  for (let i = 0; i < header.actions; i++) {
    if (kind[i] >= KINDS.length) fail(`action ${i}: kind ${kind[i]}`);
    if (id[i] < -1 || id[i] >= objects.length) fail(`action ${i}: object ${id[i]} out of range`);
    if (step[i] < -1 || step[i] >= program.steps.length) fail(`action ${i}: step ${step[i]} out of range`);
    if (direction[i] >= DIRECTIONS.length) fail(`action ${i}: direction ${direction[i]}`);
    const count = depCount[i];
    if (count < 0 || d + count > deps.length) fail(`action ${i}: ${count} dependencies past the end`);
    const list = new Array<number>(count);
    for (let k = 0; k < count; k++) {
      const dep = deps[d++];
      if (dep < 0 || dep >= i) fail(`action ${i}: dependency ${dep}, expected an earlier action`);
      list[k] = dep;
    }
    // Every field present, in the planner's order (one object shape for all actions, as the planner makes them).
    const action: Action = {
      seq: i,
      step: step[i],
      kind: KINDS[kind[i]],
      id: id[i] >= 0 ? objects[id[i]].id : undefined,
      bytes: sizes[i],
      channel: string(channel[i], 'channel', i),
      direction: DIRECTIONS[direction[i]],
      from: string(from[i], 'source tier', i),
      to: string(to[i], 'target tier', i),
      deps: list,
      prefetch: prefetch[i] === 1,
      computeNs: computeNs[i],
      startNs: startNs[i],
      endNs: endNs[i],
    };
    actions[i] = action;
  }
  if (d !== deps.length) fail(`${deps.length - d} dependencies no action lists`);
  const initial = new Map<ObjectId, InitialPlacement>();
  for (const entry of header.initial) {
    if (!Array.isArray(entry) || entry.length !== 3) fail('initial placement is not [object, tier, level]');
    const [index, slowTier, level] = entry;
    if (!Number.isInteger(index) || index < 0 || index >= objects.length)
      fail(`initial object ${index} out of range`);
    if (!Number.isInteger(slowTier) || slowTier < -1) fail(`initial object ${index}: slow tier ${slowTier}`);
    if (level !== null && level !== 'arena' && level !== 'dram')
      fail(`initial object ${index}: level ${String(level)}`);
    initial.set(objects[index].id, { slowTier, level });
  }
  return {
    program,
    computeLevel: header.computeLevel,
    actions,
    initial,
    run: { summary: header.summary },
    slowPeakBytes: header.slowPeakBytes,
    planningNs: header.planningNs,
  };
}
