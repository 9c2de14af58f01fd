/**
 * What a runtime worker thread runs: the compiled package (dist/) starts the compiled module directly; from the
 * TypeScript sources the thread registers tsx's loader itself before importing the module (Node 20 does not apply
 * the main thread's loader hooks, nor `--import` in execArgv, to workers), and tsx is only there in a checkout.
 */

/**
 * The entry of worker module `name` (without extension) beside the module at `callerUrl` (its `import.meta.url`).
 *
 * @example
 * ```ts
 * const { entry, eval: isSource } = workerEntry(import.meta.url, 'io-worker');
 * const worker = new Worker(entry, { eval: isSource });
 * ```
 */
export function workerEntry(callerUrl: string, name: string): { entry: string | URL; eval: boolean } {
  if (!callerUrl.endsWith('.ts')) return { entry: new URL(`./${name}.js`, callerUrl), eval: false };
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const workerModule = new URL(`./${name}.ts`, callerUrl).href;
  return {
    entry:
      `import(${JSON.stringify(tsxApi)})` +
      `.then((api) => { api.register(); return import(${JSON.stringify(workerModule)}); })`,
    eval: true,
  };
}
