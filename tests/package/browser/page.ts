/**
 * The browser test's page script (bundled with `home-he` for the browser): loads the kernels, runs the CKKS sequence
 * on 1 thread and asked for 2 (Web Workers over the shared kernel memory) and posts what it saw, beside the page.
 */
import * as home from 'home-he';
import { ckksDigests } from './ckks-threads.ts';

const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

async function main() {
  const bytes = new Uint8Array(await (await fetch('/kernels.wasm')).arrayBuffer());
  await home.loadKernels(bytes);
  const one = await ckksDigests(home, 1);
  const two = await ckksDigests(home, 2, settle);
  return {
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    sharedMemory: typeof SharedArrayBuffer === 'function',
    one: one.digests,
    two: two.digests,
    threads: two.threads,
    tasksOnThreads: two.tasksOnThreads,
  };
}

main().then(
  (result) => fetch(`${location.pathname}result`, { method: 'POST', body: JSON.stringify(result) }),
  (error: unknown) =>
    fetch(`${location.pathname}result`, {
      method: 'POST',
      body: JSON.stringify({
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      }),
    }),
);
