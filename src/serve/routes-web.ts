/**
 * The web page of `home serve` (`GET /`) and what it loads. The page's script is the package's own compiled
 * browser code (`dist/serve/web/page.js`, which imports `dist/client/`), served as ES modules under `/web/lib/`
 * with the package's bare imports rewritten to URLs the browser can fetch: `#kernel-loader` and `#kernel-threads`
 * to their browser builds, `@noble/hashes` and `@noble/ciphers` to `/web/deps/`. The kernels are at
 * `/web/build/kernels.wasm`, where the browser kernel loader looks for them (`../../build/kernels.wasm` from
 * `/web/lib/platform/`). So the page needs no bundler and ships with the package as it is. Sample MNIST test digits
 * come from the package's data (`/web/samples/mnist`). Every route here is public: the page asks for a tenant token
 * and sends it only to the API.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { findDataFile } from '../platform/bundled-files.ts';
import { NotFoundError } from './errors.ts';
import { PAGE_HTML } from './web/page-html.ts';

/** The package's root: this module is `src/serve/routes-web.ts` or `dist/serve/routes-web.js`. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The folders of dist/ a page may load: the browser-safe layers and the page itself. */
const LIB_FOLDERS = ['client', 'util', 'ring', 'ckks', 'program', 'serve/web'];
const BROWSER_FILES = ['platform/kernel-loader.browser.js', 'platform/kernel-threads.browser.js'];
/** Bare imports of the browser code and where the page finds them. */
const DEPENDENCIES = ['@noble/hashes', '@noble/ciphers'];
/** MNIST test digits offered by the page (the first ones of the t10k set). */
const SAMPLE_COUNT = 12;

/**
 * Rewrites the bare imports of a served module to URLs under `/web/`: what a bundler would resolve, done with a
 * pattern because the compiled code has only `from '…'`, `import '…'` and `import('…')` forms.
 *
 * @example
 * ```ts
 * rewriteImports("import { sha256 } from '@noble/hashes/sha2.js';"); // "… from '/web/deps/@noble/hashes/sha2.js';"
 * ```
 */
export function rewriteImports(code: string): string {
  return code.replace(
    /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"./][^'"]*)\2/g,
    (whole, lead: string, quote: string, specifier: string) => {
      const to = resolveBare(specifier);
      return to === undefined ? whole : `${lead}${quote}${to}${quote}`;
    },
  );
}

function resolveBare(specifier: string): string | undefined {
  if (specifier === '#kernel-loader') return '/web/lib/platform/kernel-loader.browser.js';
  if (specifier === '#kernel-threads') return '/web/lib/platform/kernel-threads.browser.js';
  for (const dep of DEPENDENCIES) {
    if (specifier === dep) return `/web/deps/${dep}/index.js`;
    if (specifier.startsWith(`${dep}/`)) return `/web/deps/${specifier}`;
  }
  return undefined;
}

/** The folder of an installed dependency (hoisted or not), found as Node resolves it from here. */
function dependencyFolder(dep: string): string {
  return dirname(fileURLToPath(import.meta.resolve(`${dep}/utils.js`)));
}

/**
 * A file inside `folder`, or undefined for a path that climbs out of it or names a hidden or odd file.
 */
function inside(folder: string, relative: string): string | undefined {
  if (!/^[A-Za-z0-9_\-./]+$/.test(relative) || relative.split('/').some((p) => p === '..' || p === '')) {
    return undefined;
  }
  const file = join(folder, relative);
  return file.startsWith(folder.endsWith(sep) ? folder : `${folder}${sep}`) ? file : undefined;
}

/** The file a `/web/…` path names, or undefined when the page has no business loading it. */
function webFile(path: string): string | undefined {
  if (path === 'build/kernels.wasm') return join(ROOT, 'build', 'kernels.wasm');
  if (path.startsWith('lib/') && path.endsWith('.js')) {
    const relative = path.slice('lib/'.length);
    const allowed =
      BROWSER_FILES.includes(relative) || LIB_FOLDERS.some((folder) => relative.startsWith(`${folder}/`));
    return allowed ? inside(join(ROOT, 'dist'), relative) : undefined;
  }
  for (const dep of DEPENDENCIES) {
    const prefix = `deps/${dep}/`;
    if (path.startsWith(prefix) && path.endsWith('.js')) {
      return inside(dependencyFolder(dep), path.slice(prefix.length));
    }
  }
  return undefined;
}

async function sendFile(reply: FastifyReply, path: string): Promise<FastifyReply> {
  const file = webFile(path);
  if (file === undefined) throw new NotFoundError('NOT_FOUND', `/web/${path.slice(0, 200)}: no such file`);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch {
    const hint = path.startsWith('lib/') ? ' (dist/ is built by `npm run build`)' : '';
    throw new NotFoundError('NOT_FOUND', `/web/${path}: not found${hint}`);
  }
  void reply.header('cache-control', 'no-cache');
  if (file.endsWith('.wasm')) return reply.type('application/wasm').send(bytes);
  return reply.type('text/javascript; charset=utf-8').send(rewriteImports(bytes.toString('utf8')));
}

/**
 * The first MNIST test digits shipped with the package (`data/mnist/`, see its PROVENANCE.md): bytes as base64,
 * 28 × 28 each, with their labels.
 */
async function mnistSamples(): Promise<{
  source: string;
  width: number;
  height: number;
  labels: number[];
  images: string[];
}> {
  const images = gunzipSync(await readFile(findDataFile('mnist/t10k-images-idx3-ubyte.gz')));
  const labels = gunzipSync(await readFile(findDataFile('mnist/t10k-labels-idx1-ubyte.gz')));
  const size = 28 * 28;
  return {
    source: 'MNIST test set (LeCun, Cortes, Burges), first images of t10k; see data/mnist/PROVENANCE.md',
    width: 28,
    height: 28,
    labels: [...labels.subarray(8, 8 + SAMPLE_COUNT)],
    images: Array.from({ length: SAMPLE_COUNT }, (_, i) =>
      images.subarray(16 + i * size, 16 + (i + 1) * size).toString('base64'),
    ),
  };
}

/**
 * Registers `GET /` (the page), `GET /web/*` (its modules, dependencies and kernels) and
 * `GET /web/samples/:dataset` (sample images).
 *
 * @example
 * ```ts
 * registerWebRoutes(app);
 * ```
 */
export function registerWebRoutes(app: FastifyInstance): void {
  app.get('/', async (_request, reply) =>
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(PAGE_HTML),
  );
  let samples: ReturnType<typeof mnistSamples> | undefined;
  app.get('/web/samples/:dataset', async (request) => {
    const { dataset } = request.params as { dataset: string };
    if (dataset !== 'mnist') {
      throw new NotFoundError('NOT_FOUND', `samples ${dataset.slice(0, 100)}: only "mnist" is shipped`);
    }
    // Read once; a failed read is not kept, so the next request tries again.
    samples ??= mnistSamples().catch((error: unknown) => {
      samples = undefined;
      throw error;
    });
    return samples;
  });
  app.get('/web/*', async (request, reply) => sendFile(reply, (request.params as { '*': string })['*']));
}
