#!/usr/bin/env node
// Builds everything the package ships and the CLI runs (run by `npm ci` through the `prepare` script, and by
// `npm run build`): the WebAssembly kernels (build/kernels.wasm), then the TypeScript sources compiled to ESM
// JavaScript with declarations in dist/ (tsconfig.build.json). dist/ is rebuilt from scratch, so a moved or deleted
// source never leaves a stale module behind. Nothing here is committed.
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

function run(what, args) {
  const started = performance.now();
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`build: ${what} failed (exit ${result.status ?? result.signal})`);
    process.exit(1);
  }
  console.log(`build: ${what} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

run('kernels', ['scripts/build-wasm.mjs']);
rmSync(`${root}dist`, { recursive: true, force: true });
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  console.error('build: the typescript package is missing; run `npm ci` first');
  process.exit(1);
}
run('dist/ (tsc -p tsconfig.build.json)', [tsc, '-p', 'tsconfig.build.json']);
// The test runner compares source times with this stamp and rebuilds a stale dist/ before the tests use it.
writeFileSync(`${root}dist/.build-stamp`, `${new Date().toISOString()}\n`);
