/**
 * A `home serve` process for the crash test (`crash.test.ts`): builds the server on the data directory named by
 * `argv[2]` exactly as `home serve` does (insecure parameters allowed, the admin token from `HOME_ADMIN_TOKEN`),
 * listens on a free port of 127.0.0.1 and prints `port <n>` once it accepts connections. It imports only the
 * server, not the whole CLI, because the test starts it over a hundred times and a start is the test's main cost.
 *
 * Run: `node --conditions=home-source --import tsx src/serve/crash-child.ts <data-dir>`.
 */
import { createServer } from './app.ts';

const dataDir = process.argv[2];
if (dataDir === undefined) {
  process.stderr.write('usage: crash-child.ts <data-dir>\n');
  process.exit(2);
}
const server = await createServer({
  dataDir,
  adminToken: process.env.HOME_ADMIN_TOKEN,
  allowInsecureParameters: true,
});
await server.app.listen({ port: 0, host: '127.0.0.1' });
const address = server.app.server.address();
if (address === null || typeof address === 'string') throw new Error('no TCP address');
process.stdout.write(`port ${address.port}\n`);
