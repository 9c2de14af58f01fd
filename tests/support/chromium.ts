/**
 * The Chromium the browser tests drive, shared by tests/package/browser.test.ts and src/serve/web-page.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** The Chromium to drive: `CHROMIUM`, else the first of Debian's and other common names on PATH. */
export function findChromium(): string | undefined {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']) {
    const found = spawnSync('which', [name], { encoding: 'utf8' });
    if (found.status === 0 && found.stdout.trim() !== '') return found.stdout.trim();
  }
  return undefined;
}

/**
 * The Chromium to drive, or undefined after marking the test skipped; under CI a missing Chromium fails instead
 * (.ci/run installs Debian's chromium).
 */
export function chromiumOrSkip(t: TestContext): string | undefined {
  const found = findChromium();
  if (found === undefined) {
    assert.ok(!process.env.CI, 'CI: no Chromium (.ci/run installs Debian’s chromium)');
    t.skip('no Chromium on PATH (set CHROMIUM to run this test)');
  }
  return found;
}
