#!/usr/bin/env node
// The `home` command: the compiled CLI in dist/ (built by `npm ci` through the `prepare` script, or `npm run
// build`). In a checkout, `npm run home:source -- <command>` runs the TypeScript sources instead.
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
