#!/usr/bin/env node
// Runs the test suite on the Node that runs this script. Node 20's test runner does not expand globs, so this
// lists the test files and hands them over. Tests run the TypeScript sources through tsx, with the package's
// `home-source` export condition (so `home-he`, `home-he/nn`, … and `#kernel-loader` resolve to src/); the tests
// of the package itself (tests/package) use dist/, which is rebuilt first when any source is newer than it.
// Usage: node scripts/run-tests.mjs [path-substring ...]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const roots = ['src', 'tests', 'bench'].map((d) => join(root, d));

/** @param {string} dir @returns {string[]} */
function collect(dir) {
  let out = [];
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out = out.concat(collect(full));
    else if (name.endsWith('.test.ts')) out.push(relative(root, full));
  }
  return out;
}

/** Newest modification time (ms) of the files under `path` that end with one of `endings`. */
function newest(path, endings) {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return endings.some((e) => path.endsWith(e)) ? stat.mtimeMs : 0;
  return readdirSync(path).reduce((latest, name) => Math.max(latest, newest(join(path, name), endings)), 0);
}

function distIsStale() {
  let built;
  try {
    built = statSync(join(root, 'dist/.build-stamp')).mtimeMs;
  } catch {
    return true;
  }
  const inputs = Math.max(
    newest(join(root, 'src'), ['.ts']),
    newest(join(root, 'assembly'), ['.ts']),
    ...['package.json', 'tsconfig.json', 'tsconfig.build.json'].map((f) => newest(join(root, f), [f])),
  );
  return inputs > built;
}

const filters = process.argv.slice(2);
const files = roots
  .flatMap(collect)
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
if (files.some((f) => f.startsWith('tests/package/')) && distIsStale()) {
  console.error('run-tests: dist/ is older than the sources: rebuilding it (npm run build)');
  const build = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
const result = spawnSync(
  process.execPath,
  ['--conditions=home-source', '--import', 'tsx', '--test', '--test-concurrency=2', ...files],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
