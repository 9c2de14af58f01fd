import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The layers of docs/architecture.md, lowest first. A module may import its own layer and any lower one, never a
 * higher one (serve, cli and report sit side by side at the top and may not import each other).
 */
const LAYERS: Record<string, number> = {
  util: 0,
  platform: 0,
  ring: 1,
  ckks: 2,
  program: 3,
  nn: 4,
  // The client SDK (home-he/client) sits beside runtime: it uses the HE layers below it, and only serve and cli use it.
  client: 4.5,
  runtime: 5,
  serve: 6,
  cli: 6,
  report: 6,
};
const TOP_SIBLINGS = new Set(['serve', 'cli', 'report']);
/** Layers that may import the client SDK besides itself. */
const CLIENT_USERS = new Set(['client', 'serve', 'cli']);

const src = fileURLToPath(new URL('../src', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? sources(full) : name.endsWith('.ts') ? [full] : [];
  });
}

describe('architecture', () => {
  it('every source file sits in a known layer (or is the package entry src/index.ts)', () => {
    for (const file of sources(src)) {
      const rel = relative(src, file);
      if (rel === 'index.ts') continue;
      const layer = rel.split('/')[0];
      assert.ok(layer in LAYERS, `${rel}: unknown layer "${layer}"`);
    }
  });

  it('no layer imports a higher one', () => {
    const violations: string[] = [];
    for (const file of sources(src)) {
      const from = relative(src, file).split('/')[0];
      if (!(from in LAYERS)) continue;
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(
        /(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g,
      )) {
        const specifier = match[1] ?? match[2];
        const target = relative(src, join(file, '..', specifier)).split('/')[0];
        if (!(target in LAYERS)) continue;
        const upward = LAYERS[target] > LAYERS[from];
        const sideways =
          from !== target && TOP_SIBLINGS.has(from) && TOP_SIBLINGS.has(target) && from !== 'cli';
        const intoClient = target === 'client' && !CLIENT_USERS.has(from);
        if (upward || sideways || intoClient)
          violations.push(`${relative(src, file)} imports ${specifier} (${from} → ${target})`);
      }
    }
    assert.deepEqual(violations, []);
  });

  it('the core layers, the client SDK and the package entry use no Node-only module', () => {
    // util, ring, ckks, the program layer and the client SDK must run in a browser too: the kernels are found through `#kernel-loader`, which
    // package.json maps to src/platform/kernel-loader.node.ts or …browser.ts by export conditions.
    const offenders: string[] = [];
    for (const file of sources(src)) {
      const rel = relative(src, file);
      const layer = rel.split('/')[0];
      if (
        !(['util', 'ring', 'ckks', 'program', 'client'].includes(layer) || rel === 'index.ts') ||
        rel.endsWith('.test.ts')
      )
        continue;
      if (/from\s+['"]node:|import\(\s*['"]node:/.test(readFileSync(file, 'utf8'))) offenders.push(rel);
    }
    assert.deepEqual(offenders, []);
  });

  it('the browser kernel loader and kernel threads use no Node module', () => {
    for (const file of ['platform/kernel-loader.browser.ts', 'platform/kernel-threads.browser.ts']) {
      const text = readFileSync(join(src, file), 'utf8');
      assert.doesNotMatch(text, /from\s+['"]node:|import\(\s*['"]node:/, file);
    }
  });
});
