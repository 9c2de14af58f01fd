#!/usr/bin/env node
// The `home` command. The sources are TypeScript run through tsx's loader, so no build output is needed.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
