/**
 * Crash-safe files for the server's data directory: every object is written to a temporary file in its folder,
 * flushed, then renamed over its name (a rename is atomic on POSIX file systems), and the folder is flushed so
 * the rename itself survives a power cut. A reader therefore sees the old object or the new one, never a part.
 */
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Prefix of temporary files and of folders being removed: never read as objects, cleared at start. */
export const TEMP_PREFIX = '.tmp-';

/**
 * Writes `bytes` to `path` atomically: temp file + fsync + rename + fsync of the folder.
 *
 * @example
 * ```ts
 * await writeFileAtomic(join(dir, 'tenant.json'), new TextEncoder().encode(JSON.stringify(tenant)));
 * ```
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `${TEMP_PREFIX}${basename(path)}-${randomSuffix()}`);
  await writeNewFileSynced(temp, bytes, mode);
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncFolder(dir);
}

/** Writes `bytes` to a file that must not exist yet, then flushes it to the device before closing. */
async function writeNewFileSynced(path: string, bytes: Uint8Array, mode: number): Promise<void> {
  const handle = await open(path, 'wx', mode);
  try {
    let offset = 0;
    while (offset < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset, offset);
      offset += bytesWritten;
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Publishes a folder of files atomically: the files are written and flushed in a temporary folder beside `path`,
 * which is then renamed to `path`. Readers see the whole folder or nothing.
 *
 * @throws the rename's error (`EEXIST` / `ENOTEMPTY`) when `path` exists; the temporary folder is removed.
 * @example
 * ```ts
 * await writeFolderAtomic(join(models, 'mnist'), { 'model.onnx': onnx, 'model.json': json });
 * ```
 */
export async function writeFolderAtomic(
  path: string,
  files: Readonly<Record<string, Uint8Array>>,
): Promise<void> {
  const parent = dirname(path);
  await mkdir(parent, { recursive: true });
  const temp = join(parent, `${TEMP_PREFIX}${basename(path)}-${randomSuffix()}`);
  await mkdir(temp, { mode: 0o700 });
  try {
    for (const [name, bytes] of Object.entries(files))
      await writeNewFileSynced(join(temp, name), bytes, 0o600);
    await syncFolder(temp);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
  await syncFolder(parent);
}

/**
 * Writes a JSON value atomically (see {@link writeFileAtomic}).
 *
 * @example
 * ```ts
 * await writeJsonAtomic(join(dir, 'model.json'), record);
 * ```
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`));
}

/**
 * Removes a folder so that it vanishes at once: renamed to a temporary name first (atomic), then deleted. A crash
 * in the middle leaves only a temporary folder, which {@link clearTemporaries} deletes at the next start.
 *
 * @example
 * ```ts
 * await removeFolderAtomic(join(dataDir, 'models', tenant, name));
 * ```
 */
export async function removeFolderAtomic(path: string): Promise<void> {
  const doomed = join(dirname(path), `${TEMP_PREFIX}${basename(path)}-${randomSuffix()}`);
  await rename(path, doomed);
  await syncFolder(dirname(path));
  await rm(doomed, { recursive: true, force: true });
}

/**
 * Deletes the leftovers of interrupted writes and removals (names starting with {@link TEMP_PREFIX}) under
 * `root`, recursively.
 *
 * @example
 * ```ts
 * await clearTemporaries(dataDir);
 * ```
 */
export async function clearTemporaries(root: string): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const full = join(root, entry.name);
    if (entry.name.startsWith(TEMP_PREFIX)) await rm(full, { recursive: true, force: true });
    else if (entry.isDirectory()) await clearTemporaries(full);
  }
}

async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function randomSuffix(): string {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
