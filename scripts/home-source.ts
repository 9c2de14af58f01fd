// The `home` command run from the TypeScript sources (tests and development): `npm run home:source -- <command>`
// or `node --conditions=home-source --import tsx scripts/home-source.ts <command>`. bin/home.mjs runs dist/.
import { main } from '../src/cli/main.ts';

await main(process.argv);
