#!/usr/bin/env node
// Builds the WebAssembly kernels from assembly/kernels.ts with the assemblyscript package (run by `npm ci` through
// the `prepare` script). Output: build/kernels.wasm (not committed). Same sources and compiler version give the
// same bytes; the SHA-256 is printed so two builds can be compared.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
let asc;
try {
  asc = await import('assemblyscript/asc');
} catch (error) {
  console.error('build-wasm: the assemblyscript package is missing; run `npm ci` first.', error);
  process.exit(1);
}
mkdirSync(`${root}build`, { recursive: true });
const outFile = `${root}build/kernels.wasm`;
const { error, stderr } = await asc.main(
  [
    `${root}assembly/kernels.ts`,
    '--outFile',
    outFile,
    '-O3',
    '--noAssert',
    '--runtime',
    'stub',
    '--enable',
    'simd',
    '--enable',
    'threads',
    '--importMemory',
    '--sharedMemory',
    '--initialMemory',
    '1',
    '--maximumMemory',
    '65536',
  ],
  { stdout: process.stdout, stderr: process.stderr },
);
if (error) {
  console.error(`build-wasm: ${error.message}\n${stderr.toString()}`);
  process.exit(1);
}
const digest = createHash('sha256').update(readFileSync(outFile)).digest('hex');
console.log(`build-wasm: build/kernels.wasm sha256 ${digest}`);
