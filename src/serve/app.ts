/**
 * `home serve`'s HTTP server: the Open Inference Protocol (KServe V2) over Fastify, with the binary tensor data
 * extension for ciphertexts, a model repository extension (upload, load, unload, delete, index), an HE key
 * extension (evaluation keys uploaded once, in one request or in resumable chunks, named by a key id, with an
 * expiry), inferences as jobs with progress, tenants with scoped bearer tokens and quotas, Prometheus metrics and
 * an OpenAPI document. Every error answers `{ error, code }` with a 4xx status when the request is at fault. This
 * module builds the server and its shared checks; the routes are in `routes-*.ts`.
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { clearTemporaries } from './atomic.ts';
import { bearerToken, hashToken, loadAdminToken, type Principal, requireScope, type Scope } from './auth.ts';
import { type BodyLimits, DEFAULT_BODY_LIMITS, type ServeContext } from './context.ts';
import { type EngineOptions, InferenceEngine } from './engine.ts';
import { AuthenticationError, errorAnswer, ForbiddenError, RetryLaterError } from './errors.ts';
import { JobRegistry, type JobRegistryOptions } from './jobs.ts';
import { KeyRegistry } from './keys.ts';
import { ServerMetrics } from './metrics.ts';
import { ModelRepository } from './models.ts';
import { Admission, type QuotaOptions } from './quotas.ts';
import { registerInferRoutes } from './routes-infer.ts';
import { registerKeyRoutes } from './routes-keys.ts';
import { registerModelRoutes } from './routes-models.ts';
import { registerOpsRoutes } from './routes-ops.ts';
import { registerWebRoutes } from './routes-web.ts';
import { TenantRegistry } from './tenants.ts';
import { UploadStore } from './uploads.ts';

export { type BodyLimits, DEFAULT_BODY_LIMITS } from './context.ts';
export { SERVER_EXTENSIONS } from './routes-ops.ts';

/**
 * Where the logs go and from which level: pino JSON lines, one per request and per server event. Requests are
 * logged by method, route URL and status; never a header, so never a token, and never a body, so never a key or a
 * ciphertext.
 *
 * @example
 * ```ts
 * const logger: LoggerOptions = { level: 'info', stream: { write: (line) => lines.push(line) } };
 * ```
 */
export interface LoggerOptions {
  readonly level: string;
  /** Default: stdout. */
  readonly stream?: { write(line: string): void };
}

/**
 * Options of {@link createServer}.
 *
 * @example
 * ```ts
 * const { app } = await createServer({ dataDir: '/var/lib/home', adminToken: process.env.HOME_ADMIN_TOKEN });
 * await app.listen({ port: 8080 });
 * ```
 */
export interface ServerOptions {
  /** Where models, keys, uploads, tenants and the generated admin token live. */
  readonly dataDir: string;
  /** The admin token (e.g. `HOME_ADMIN_TOKEN`); default: read from or generated into `<dataDir>/admin-token`. */
  readonly adminToken?: string;
  /** Accept `insecure_log_n` on model uploads (tests only: parameters below 128-bit security). */
  readonly allowInsecureParameters?: boolean;
  /** Fastify's (pino) logger; default off. */
  readonly logger?: boolean | LoggerOptions;
  /** Body limits in bytes per kind of route. */
  readonly limits?: Partial<BodyLimits>;
  readonly engine?: EngineOptions;
  /** Lifetime of an uploaded key set (`--key-ttl`); default: no expiry. */
  readonly keyTtlSeconds?: number;
  /** A chunked upload idle this long is deleted (default one hour). */
  readonly uploadIdleSeconds?: number;
  /** Per-tenant quotas and the inference queue's limit; each off when absent. */
  readonly quotas?: Omit<QuotaOptions, 'now'>;
  readonly jobs?: Omit<JobRegistryOptions, 'now'>;
  /** TLS: the PEM certificate (chain) and private key; the server then speaks HTTPS only. */
  readonly tls?: { readonly cert: string | Uint8Array; readonly key: string | Uint8Array };
  /**
   * The clock for expiries, quotas and job times, in milliseconds since the epoch (default `Date.now`; tests move
   * a clock by hand instead of waiting).
   */
  readonly now?: () => number;
}

/**
 * A server built by {@link createServer}: the Fastify instance and what it stores.
 *
 * @example
 * ```ts
 * const server = await createServer({ dataDir });
 * const reply = await server.app.inject({ method: 'GET', url: '/v2/health/ready' });
 * ```
 */
export interface HomeServer {
  readonly app: FastifyInstance;
  readonly models: ModelRepository;
  readonly keys: KeyRegistry;
  readonly uploads: UploadStore;
  readonly tenants: TenantRegistry;
  readonly jobs: JobRegistry;
  readonly engine: InferenceEngine;
  /** Method and URL pattern of every route registered (`HEAD` twins of `GET` routes left out). */
  readonly routes: readonly { readonly method: string; readonly url: string }[];
  /** Where the admin token came from; with `generated` or `file`, it is in `adminTokenPath`. */
  readonly adminTokenSource: 'env' | 'file' | 'generated';
  readonly adminTokenPath: string;
}

const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** How often expired keys and idle uploads are deleted. */
const SWEEP_MS = 60_000;

/**
 * Opens (or creates) a data directory and builds the server on it: the stored tenants, models, keys and open
 * uploads are served at once, without re-upload. Leftovers of interrupted writes are removed first.
 *
 * @throws InvalidArgumentError for a bad `adminToken` or quota; the file system's errors for an unusable
 *   `dataDir`.
 * @example
 * ```ts
 * const { app, adminTokenPath } = await createServer({ dataDir: './data' });
 * await app.listen({ port: 8080, host: '127.0.0.1' });
 * ```
 */
export async function createServer(options: ServerOptions): Promise<HomeServer> {
  const dataDir = options.dataDir;
  const now = options.now ?? Date.now;
  const limits: BodyLimits = { ...DEFAULT_BODY_LIMITS, ...options.limits };
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await clearTemporaries(dataDir);
  const admin = await loadAdminToken(dataDir, options.adminToken);
  const tenants = await TenantRegistry.open(dataDir);
  const models = await ModelRepository.open(dataDir);
  const keys = await KeyRegistry.open(dataDir, {
    ...(options.keyTtlSeconds !== undefined ? { ttlSeconds: options.keyTtlSeconds } : {}),
    now,
  });
  const uploads = await UploadStore.open(dataDir, {
    maxSize: limits.keys,
    ...(options.uploadIdleSeconds !== undefined ? { idleSeconds: options.uploadIdleSeconds } : {}),
    now,
  });
  await keys.sweep();
  await uploads.sweep();
  const engine = new InferenceEngine(models, keys, options.engine);
  const admission = new Admission(
    { ...options.quotas, now },
    {
      depth: () => engine.depth,
      pending: (tenant) => engine.pending(tenant),
    },
  );
  const jobs = new JobRegistry({ ...options.jobs, now });
  const metrics = new ServerMetrics(() => engine.depth);

  const logger = options.logger;
  const app = Fastify({
    logger:
      logger === undefined || logger === false
        ? false
        : {
            level: typeof logger === 'object' ? logger.level : 'info',
            ...(typeof logger === 'object' && logger.stream ? { stream: logger.stream } : {}),
            // Belt and braces: the default request serializer logs no header, and these paths stay censored if a
            // custom serializer ever adds them.
            redact: ['req.headers.authorization', 'req.headers.cookie'],
          },
    bodyLimit: limits.json,
    return503OnClosing: true,
    ...(options.tls ? { https: { cert: toPem(options.tls.cert), key: toPem(options.tls.key) } } : {}),
    // An HTTPS server's instance is typed apart from an HTTP one's; the routes use nothing that differs.
  }) as unknown as FastifyInstance;

  const routes: { method: string; url: string }[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routes.push({ method, url: route.url });
    }
  });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => {
    done(null, body);
  });

  /** Who each request authenticated as (its metrics label), and whether its rate quota was taken. */
  const callers = new WeakMap<FastifyRequest, { label: string; counted: boolean }>();
  app.setErrorHandler((error, request, reply) => {
    const { status, body, retryAfterSeconds } = errorAnswer(error);
    if (status >= 500 && status !== 503) request.log.error({ err: error }, 'request failed');
    if (retryAfterSeconds !== undefined) {
      void reply.header('retry-after', String(retryAfterSeconds));
      if (error instanceof RetryLaterError) {
        metrics.refused(callers.get(request)?.label ?? '-', error.code as 'QUOTA_EXCEEDED' | 'OVERLOADED');
      }
    }
    void reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send({ error: `${request.method} ${request.url.slice(0, 200)}: no such route`, code: 'NOT_FOUND' });
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.request({
      route: request.routeOptions.url ?? 'unmatched',
      method: request.method,
      status: reply.statusCode,
      tenant: callers.get(request)?.label ?? '-',
      seconds: reply.elapsedTime / 1000,
      bytesIn: Number(request.headers['content-length'] ?? 0) || 0,
      bytesOut: Number(reply.getHeader('content-length') ?? 0) || 0,
    });
  });
  const sweeper = setInterval(() => {
    // Deleted key sets also leave the engine's cache of set-up servers (their memory is freed).
    void keys
      .sweep()
      .then(async (gone) => {
        for (const name of gone) {
          const [tenant, keyId] = name.split('/');
          await engine.forget(tenant, { keyId });
        }
      })
      .catch((error: unknown) => app.log.error({ err: error }, 'key sweep failed'));
    void uploads.sweep().catch((error: unknown) => app.log.error({ err: error }, 'upload sweep failed'));
  }, SWEEP_MS);
  sweeper.unref();
  app.addHook('onClose', async () => {
    clearInterval(sweeper);
    await engine.close();
  });

  const authenticate = (request: FastifyRequest): Principal => {
    const token = bearerToken(request.headers.authorization);
    if (hashToken(token) === admin.hash) {
      callers.set(request, { label: 'admin', counted: true });
      return { kind: 'admin' };
    }
    const principal = tenants.authenticate(token);
    if (!principal) throw new AuthenticationError('unknown token');
    if (principal.kind === 'tenant' && !callers.has(request)) {
      callers.set(request, { label: principal.tenant, counted: false });
    }
    return principal;
  };
  const ctx: ServeContext = {
    models,
    keys,
    uploads,
    tenants,
    jobs,
    engine,
    admission,
    metrics,
    limits,
    allowInsecure: options.allowInsecureParameters === true,
    tenantWith(request: FastifyRequest, scope: Scope): string {
      const tenant = requireScope(authenticate(request), scope);
      const caller = callers.get(request);
      if (caller && !caller.counted) {
        caller.counted = true;
        admission.request(tenant);
      }
      return tenant;
    },
    requireAdmin(request: FastifyRequest): void {
      if (authenticate(request).kind !== 'admin') {
        throw new ForbiddenError('this route needs the admin token');
      }
    },
  };
  registerOpsRoutes(app, ctx, VERSION);
  registerModelRoutes(app, ctx);
  registerInferRoutes(app, ctx);
  registerKeyRoutes(app, ctx);
  registerWebRoutes(app);
  await app.ready();

  return {
    app,
    models,
    keys,
    uploads,
    tenants,
    jobs,
    engine,
    routes,
    adminTokenSource: admin.source,
    adminTokenPath: admin.path,
  };
}

function toPem(value: string | Uint8Array): string | Buffer {
  return typeof value === 'string' ? value : Buffer.from(value);
}
