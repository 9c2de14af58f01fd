import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultThreads, setDefaultThreads } from '../ring/context.ts';
import { InvalidArgumentError } from '../util/errors.ts';
import { main, parseThreads } from './main.ts';

describe('home --threads', () => {
  it('takes a whole number of threads from 1 to 1024', () => {
    assert.equal(parseThreads('1'), 1);
    assert.equal(parseThreads('64'), 64);
    for (const bad of ['0', '-2', '1.5', '2e3', 'two', '', ' 3', '1025']) {
      assert.throws(() => parseThreads(bad), InvalidArgumentError, bad);
    }
  });

  it('a bad count is refused with a typed error and exit code 2 before anything runs', async () => {
    const errors: string[] = [];
    const write = console.error;
    console.error = (line: string) => errors.push(line);
    const exitCode = process.exitCode;
    try {
      await main(['node', 'home', '--threads', 'many', 'demo', '--ckks']);
      assert.equal(process.exitCode, 2);
      assert.match(errors.join('\n'), /InvalidArgumentError.*--threads many: expected a whole number/);
    } finally {
      console.error = write;
      process.exitCode = exitCode;
    }
  });

  it('sets the thread count of the contexts made afterwards', () => {
    const before = defaultThreads();
    try {
      setDefaultThreads(3);
      assert.equal(defaultThreads(), 3);
      assert.throws(() => setDefaultThreads(0), InvalidArgumentError);
    } finally {
      setDefaultThreads(undefined);
    }
    assert.equal(defaultThreads(), before);
  });
});
