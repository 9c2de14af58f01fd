#!/usr/bin/env node
// The `home` command: the compiled CLI in dist/ (built by `npm ci` through the `prepare` script, or `npm run
// build`). `home bench …` runs the benchmarks, which come with the source repository (bench/, run through tsx
// from a checkout) and are not part of the package. In a checkout, `npm run home:source -- <command>` runs the
// TypeScript sources instead of dist/.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

if (process.argv[2] === 'bench') {
  const entry = fileURLToPath(new URL('../bench/main.ts', import.meta.url));
  if (!existsSync(entry)) {
    console.error(
      'home bench: the benchmarks come with the source repository (bench/), not with the package',
    );
    process.exit(2);
  }
  const args = ['--conditions=home-source', '--import', 'tsx', entry, ...process.argv.slice(3)];
  const run = spawnSync(process.execPath, args, { stdio: 'inherit' });
  process.exit(run.status ?? 1);
}
let cli;
try {
  cli = await import('../dist/cli/main.js');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/cli/main.js'))
    throw error;
  console.error(
    'home: the compiled CLI (dist/cli/main.js) is missing: run `npm run build` in the checkout first',
  );
  process.exit(2);
}
await cli.main(process.argv);
