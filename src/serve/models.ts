/**
 * The model repository: each tenant's models under `<data-dir>/models/<tenant>/<name>/` (the ONNX file as
 * uploaded, the compiled program and `model.json`), published as a whole folder by one rename, and their
 * compiled programs decoded on first use.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { decodeProgram, encodeProgram } from '../program/codec.ts';
import type { HeProgram } from '../program/program.ts';
import { UnsupportedModelError } from '../nn/errors.ts';
import { removeFolderAtomic, TEMP_PREFIX, writeFolderAtomic, writeJsonAtomic } from './atomic.ts';
import { compileUpload, type ModelConfig } from './compile.ts';
import { ConflictError, NotFoundError } from './errors.ts';
import { describeProgram, type HeModelDescriptor } from './he-metadata.ts';
import { checkName } from './names.ts';

/**
 * A model as stored in `model.json`.
 *
 * @example
 * ```ts
 * if (record.state === 'ready') console.log(record.he.packing, record.he.batch_size);
 * ```
 */
export interface ModelRecord {
  readonly tenant: string;
  readonly name: string;
  /** One version per name for now: re-uploading needs a delete first. */
  readonly version: '1';
  readonly created: string;
  /** `ready`: served; `unloaded`: kept on disk, not served until loaded. */
  readonly state: 'ready' | 'unloaded';
  readonly config: ModelConfig;
  readonly onnx_sha256: string;
  readonly onnx_bytes: number;
  readonly program_bytes: number;
  readonly compile_seconds: number;
  readonly he: HeModelDescriptor;
}

const RECORD = 'model.json';
const ONNX = 'model.onnx';
const PROGRAM = 'program.hep';

/**
 * Every tenant's models, indexed in memory, persisted under `<dataDir>/models/`.
 *
 * @example
 * ```ts
 * const models = await ModelRepository.open(dataDir);
 * await models.upload('acme', 'mnist', onnxBytes, { inputScale: 1 / 256, mode: 'auto' });
 * const program = await models.program('acme', 'mnist');
 * ```
 */
export class ModelRepository {
  readonly #root: string;
  readonly #records = new Map<string, ModelRecord>();
  readonly #programs = new Map<string, HeProgram>();
  /** Names being uploaded (compiling or writing): a second upload of the same name is a conflict. */
  readonly #pending = new Set<string>();

  private constructor(root: string) {
    this.#root = root;
  }

  /** Reads every published model folder under `<dataDir>/models/` (temporary folders are not models). */
  static async open(dataDir: string): Promise<ModelRepository> {
    const repo = new ModelRepository(join(dataDir, 'models'));
    await mkdir(repo.#root, { recursive: true });
    for (const tenant of await readdir(repo.#root)) {
      if (tenant.startsWith('.')) continue;
      for (const name of await readdir(join(repo.#root, tenant))) {
        if (name.startsWith(TEMP_PREFIX) || name.startsWith('.')) continue;
        const record = JSON.parse(
          await readFile(join(repo.#root, tenant, name, RECORD), 'utf8'),
        ) as ModelRecord;
        repo.#records.set(keyOf(tenant, name), record);
      }
    }
    return repo;
  }

  /** The tenant's models, sorted by name. */
  list(tenant: string): ModelRecord[] {
    return [...this.#records.values()]
      .filter((r) => r.tenant === tenant)
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /**
   * The tenant's model `name`.
   *
   * @throws NotFoundError (MODEL_NOT_FOUND) when the tenant has no such model (whoever else may have one).
   */
  get(tenant: string, name: string): ModelRecord {
    const record = this.#records.get(keyOf(tenant, name));
    if (!record)
      throw new NotFoundError('MODEL_NOT_FOUND', `model "${String(name).slice(0, 64)}": no such model`);
    return record;
  }

  /**
   * Compiles an uploaded ONNX model and publishes it (ready) before returning its record.
   *
   * @throws InvalidArgumentError for a bad name; ConflictError when the name is taken; the compiler's errors.
   */
  async upload(tenant: string, name: string, onnx: Uint8Array, config: ModelConfig): Promise<ModelRecord> {
    checkName(name, 'model name');
    const key = keyOf(tenant, name);
    if (this.#records.has(key) || this.#pending.has(key)) {
      throw new ConflictError(
        `model "${name}" exists: delete it first (DELETE /v2/repository/models/${name})`,
      );
    }
    this.#pending.add(key);
    try {
      const compiled = compileUpload(onnx, config, name);
      if (compiled.program.bootstrapping) {
        throw new UnsupportedModelError(
          `model "${name}" needs bootstrapping, which this server does not serve yet`,
        );
      }
      if (compiled.program.inputs.some((i) => i.owner === 'model')) {
        throw new UnsupportedModelError(`model "${name}": encrypted weights are not served yet`);
      }
      const programBytes = encodeProgram(compiled.program);
      const record: ModelRecord = {
        tenant,
        name,
        version: '1',
        created: new Date().toISOString(),
        state: 'ready',
        config,
        onnx_sha256: bytesToHex(sha256(onnx)),
        onnx_bytes: onnx.length,
        program_bytes: programBytes.length,
        compile_seconds: Number(compiled.seconds.toFixed(3)),
        he: describeProgram(compiled.program, {
          scale: config.inputScale,
          ...(config.inputMean ? { mean: config.inputMean } : {}),
          ...(config.inputStd ? { std: config.inputStd } : {}),
        }),
      };
      await writeFolderAtomic(join(this.#root, tenant, name), {
        [ONNX]: onnx,
        [PROGRAM]: programBytes,
        [RECORD]: new TextEncoder().encode(`${JSON.stringify(record, null, 2)}\n`),
      });
      this.#records.set(key, record);
      this.#programs.set(key, compiled.program);
      return record;
    } finally {
      this.#pending.delete(key);
    }
  }

  /**
   * Marks a model ready or unloaded (persisted); unloading drops its decoded program from memory.
   *
   * @throws NotFoundError when the tenant has no such model.
   */
  async setState(tenant: string, name: string, state: 'ready' | 'unloaded'): Promise<ModelRecord> {
    const record = this.get(tenant, name);
    if (record.state === state) return record;
    const next: ModelRecord = { ...record, state };
    await writeJsonAtomic(join(this.#root, tenant, name, RECORD), next);
    this.#records.set(keyOf(tenant, name), next);
    if (state === 'unloaded') this.#programs.delete(keyOf(tenant, name));
    return next;
  }

  /**
   * Deletes a model: its folder vanishes at once (renamed away, then removed).
   *
   * @throws NotFoundError when the tenant has no such model.
   */
  async delete(tenant: string, name: string): Promise<void> {
    this.get(tenant, name);
    const key = keyOf(tenant, name);
    await removeFolderAtomic(join(this.#root, tenant, name));
    this.#records.delete(key);
    this.#programs.delete(key);
  }

  /**
   * The compiled program of a model (decoded from `program.hep` and validated on first use, then kept).
   *
   * @throws NotFoundError when the tenant has no such model; FormatError for a damaged program file.
   */
  async program(tenant: string, name: string): Promise<HeProgram> {
    this.get(tenant, name);
    const key = keyOf(tenant, name);
    let program = this.#programs.get(key);
    if (!program) {
      program = decodeProgram(new Uint8Array(await readFile(join(this.#root, tenant, name, PROGRAM))));
      this.#programs.set(key, program);
    }
    return program;
  }
}

function keyOf(tenant: string, name: string): string {
  return `${tenant}/${name}`;
}
