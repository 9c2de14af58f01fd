import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findDataFile, findModelFile } from './src/platform/bundled-files.ts';
import { prepareHeWorkload, runTieredWorkload, disposeWorkload } from './src/cli/he-workload.ts';
import { defaultContext } from './src/ring/context.ts';
import { FileTier } from './src/runtime/store/file-tier.ts';
import { IoPool } from './src/runtime/io/io-pool.ts';
import { realRunHomePolicy } from './src/runtime/he/program.ts';
const used = () => (defaultContext().allocator.bytesInUse / 2 ** 20).toFixed(1) + ' MiB';
const data = findDataFile('mnist/t10k-images-idx3-ubyte.gz');
const w = prepareHeWorkload({ model: findModelFile('cryptonets-mnist.onnx'), data, count: 64, mode: 'batch' });
console.log('prepared', used());
const io = new IoPool();
const dir = mkdtempSync(join(tmpdir(), 'leak-'));
const tier = await FileTier.open({ name: 'disk', dir, io });
let plan;
for (const stream of [true, false]) for (let r = 0; r < 2; r++) {
  const { result } = await runTieredWorkload(w, { policy: realRunHomePolicy(), memoryBudgetBytes: 145711104, tiers: [tier], keepModelState: true, ...(r === 1 && plan ? { plan } : { streamPlan: stream }) });
  plan = result.plan;
  for (const ct of result.outputs.values()) ct.dispose();
  console.log('stream', stream, 'round', r, used());
}
disposeWorkload(w);
console.log('disposed', used());
await tier.close(); await io.terminate(); rmSync(dir, { recursive: true, force: true });
