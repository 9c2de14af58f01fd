/**
 * A full garbage collection on demand, in Node (V8's `gc`, enabled at run time).
 *
 * V8 collects its old generation when allocation pressure asks for it. A run that builds a large program (or
 * compiles a packing it then discards) and goes on in WebAssembly and file I/O allocates too little JavaScript to
 * trigger that, so gigabytes of garbage stay resident for minutes — counted in the process's peak RSS against its
 * memory budget. Callers run this at the few points where such garbage is known to be left.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null | undefined;

/**
 * Runs a full garbage collection; returns false (and does nothing) where V8's `gc` cannot be had.
 *
 * @example
 * ```ts
 * collectGarbage(); // after dropping a large compiled program
 * ```
 */
export function collectGarbage(): boolean {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    } catch {
      gc = null;
    }
  }
  gc?.();
  return gc !== null;
}
