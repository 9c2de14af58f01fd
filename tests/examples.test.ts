import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const examples = readdirSync(`${root}examples`)
  .filter((f) => /^\d\d-.*\.ts$/.test(f))
  .sort();

describe('numbered examples run to completion', () => {
  it('there are examples', () => assert.ok(examples.length >= 2));
  for (const file of examples) {
    it(file, () => {
      const run = spawnSync(
        process.execPath,
        ['--conditions=home-source', '--import', 'tsx', `examples/${file}`],
        {
          cwd: root,
          encoding: 'utf8',
        },
      );
      assert.equal(run.status, 0, `${file} failed:\n${run.stdout}\n${run.stderr}`);
    });
  }
});
