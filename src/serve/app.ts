/**
 * `home serve`'s HTTP server: the Open Inference Protocol (KServe V2) over Fastify, with the binary tensor data
 * extension for ciphertexts, a model repository extension (upload, load, unload, delete, index), an HE key
 * extension (evaluation keys uploaded once, named by a key id) and tenants with scoped bearer tokens. Every
 * error answers `{ error, code }` with a 4xx status when the request is at fault.
 */
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { InvalidArgumentError } from '../util/errors.ts';
import { clearTemporaries } from './atomic.ts';
import { bearerToken, hashToken, loadAdminToken, type Principal, requireScope, type Scope } from './auth.ts';
import { parseModelConfig } from './compile.ts';
import { type EngineOptions, InferenceEngine } from './engine.ts';
import { AuthenticationError, ForbiddenError, NotFoundError, errorAnswer } from './errors.ts';
import { KeyRegistry } from './keys.ts';
import { type ModelRecord, ModelRepository } from './models.ts';
import { checkKeyId } from './names.ts';
import { decodeMessage, encodeMessage, HEADER_LENGTH } from './protocol.ts';
import { TenantRegistry } from './tenants.ts';

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
  /** Where models, keys, tenants and the generated admin token live. */
  readonly dataDir: string;
  /** The admin token (e.g. `HOME_ADMIN_TOKEN`); default: read from or generated into `<dataDir>/admin-token`. */
  readonly adminToken?: string;
  /** Accept `insecure_log_n` on model uploads (tests only: parameters below 128-bit security). */
  readonly allowInsecureParameters?: boolean;
  /** Fastify's (pino) logger options; default off. Requests are logged without their bodies. */
  readonly logger?: boolean | { readonly level: string };
  /** Body limits in bytes per kind of route. */
  readonly limits?: Partial<BodyLimits>;
  readonly engine?: EngineOptions;
}

/**
 * Body limits per kind of route.
 *
 * @example
 * ```ts
 * const limits: BodyLimits = { ...DEFAULT_BODY_LIMITS, keys: 4 * 2 ** 30 };
 * ```
 */
export interface BodyLimits {
  readonly json: number;
  readonly infer: number;
  readonly keys: number;
  readonly model: number;
}

/**
 * The default body limits: 1 MiB of JSON, 256 MiB per inference request and per ONNX model, 2 GiB per key set.
 *
 * @example
 * ```ts
 * createServer({ dataDir, limits: { infer: DEFAULT_BODY_LIMITS.infer * 4 } });
 * ```
 */
export const DEFAULT_BODY_LIMITS: Readonly<BodyLimits> = Object.freeze({
  json: 2 ** 20,
  infer: 256 * 2 ** 20,
  keys: 2 * 2 ** 30 - 1,
  model: 256 * 2 ** 20,
});

/**
 * The extensions `GET /v2` lists.
 *
 * @example
 * ```ts
 * SERVER_EXTENSIONS.includes('he_keys'); // true
 * ```
 */
export const SERVER_EXTENSIONS: readonly string[] = Object.freeze([
  'binary_tensor_data',
  'model_repository',
  'he_keys',
  'tenants',
]);

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
  readonly tenants: TenantRegistry;
  /** Where the admin token came from; with `generated` or `file`, it is in `adminTokenPath`. */
  readonly adminTokenSource: 'env' | 'file' | 'generated';
  readonly adminTokenPath: string;
}

const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * Opens (or creates) a data directory and builds the server on it: the stored tenants, models and keys are served
 * at once, without re-upload. Leftovers of interrupted writes are removed first.
 *
 * @throws InvalidArgumentError for a bad `adminToken`; the file system's errors for an unusable `dataDir`.
 * @example
 * ```ts
 * const { app, adminTokenPath } = await createServer({ dataDir: './data' });
 * await app.listen({ port: 8080, host: '127.0.0.1' });
 * ```
 */
export async function createServer(options: ServerOptions): Promise<HomeServer> {
  const dataDir = options.dataDir;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await clearTemporaries(dataDir);
  const admin = await loadAdminToken(dataDir, options.adminToken);
  const tenants = await TenantRegistry.open(dataDir);
  const models = await ModelRepository.open(dataDir);
  const keys = await KeyRegistry.open(dataDir);
  const engine = new InferenceEngine(models, keys, options.engine);
  const limits = { ...DEFAULT_BODY_LIMITS, ...options.limits };
  const allowInsecure = options.allowInsecureParameters === true;

  const app = Fastify({
    logger:
      options.logger === undefined || options.logger === false
        ? false
        : { level: 'info', ...(typeof options.logger === 'object' ? options.logger : {}) },
    bodyLimit: limits.json,
    // The error handler names problems; Fastify's own 404 and parse errors go through it too.
    return503OnClosing: true,
  });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => {
    done(null, body);
  });
  app.setErrorHandler((error, request, reply) => {
    const { status, body } = errorAnswer(error);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    void reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send({ error: `${request.method} ${request.url.slice(0, 200)}: no such route`, code: 'NOT_FOUND' });
  });
  app.addHook('onClose', async () => {
    await engine.close();
  });

  const authenticate = (request: FastifyRequest): Principal => {
    const token = bearerToken(request.headers.authorization);
    if (hashToken(token) === admin.hash) return { kind: 'admin' };
    const principal = tenants.authenticate(token);
    if (!principal) throw new AuthenticationError('unknown token');
    return principal;
  };
  const tenantWith = (request: FastifyRequest, scope: Scope): string =>
    requireScope(authenticate(request), scope);
  const octets = (request: FastifyRequest, what: string): Uint8Array => {
    const body = request.body;
    if (!(body instanceof Uint8Array)) {
      throw new InvalidArgumentError(
        `${what}: expected a binary body with Content-Type: application/octet-stream`,
      );
    }
    return body;
  };

  // Health and server metadata: no token needed (load balancers and clients probe them).
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async () => ({ ready: true }));
  app.get('/v2', async () => ({ name: 'home-he', version: VERSION, extensions: SERVER_EXTENSIONS }));

  // Model metadata and readiness (scope `infer`).
  const metadata = (record: ModelRecord) => ({
    name: record.name,
    versions: [record.version],
    platform: 'home-he-ckks',
    inputs: [{ name: 'input', datatype: 'BYTES', shape: [record.he.inputs.length] }],
    outputs: [{ name: 'output', datatype: 'BYTES', shape: [record.he.outputs.length] }],
    he: record.he,
  });
  const modelOf = (
    request: FastifyRequest<{ Params: { model: string; version?: string } }>,
    scope: Scope,
  ) => {
    const tenant = tenantWith(request, scope);
    const record = models.get(tenant, request.params.model);
    const version = request.params.version;
    if (version !== undefined && version !== record.version) {
      throw new NotFoundError(
        'MODEL_NOT_FOUND',
        `model "${record.name}" has no version ${JSON.stringify(version.slice(0, 20))}`,
      );
    }
    return record;
  };
  type ModelRoute = { Params: { model: string; version?: string } };
  for (const prefix of ['/v2/models/:model', '/v2/models/:model/versions/:version']) {
    app.get<ModelRoute>(prefix, async (request) => metadata(modelOf(request, 'infer')));
    app.get<ModelRoute>(`${prefix}/ready`, async (request) => {
      const record = modelOf(request, 'infer');
      return { name: record.name, version: record.version, ready: record.state === 'ready' };
    });
    app.post<ModelRoute>(`${prefix}/infer`, { bodyLimit: limits.infer }, async (request, reply) =>
      infer(request, reply, modelOf(request, 'infer')),
    );
  }

  const infer = async (request: FastifyRequest, reply: FastifyReply, record: ModelRecord) => {
    const body = octets(request, 'inference request');
    const { header, tensors } = decodeMessage(body, request.headers[HEADER_LENGTH], 'inputs');
    const parameters = header.parameters as Record<string, unknown> | undefined;
    const keyId = parameters?.key_id;
    if (keyId === undefined) {
      throw new InvalidArgumentError(
        'parameters.key_id: missing (upload evaluation keys with POST /v2/keys first)',
      );
    }
    checkKeyId(keyId);
    const input = tensors.get('input');
    if (!input || tensors.size !== 1) {
      throw new InvalidArgumentError(
        `inputs: expected exactly one BYTES tensor named "input" (got ${[...tensors.keys()].join(', ').slice(0, 100)})`,
      );
    }
    const tenant = record.tenant;
    const result = await engine.infer(tenant, record.name, keyId, input);
    const id = typeof header.id === 'string' ? { id: header.id.slice(0, 128) } : {};
    const { bytes, headerLength } = encodeMessage(
      {
        model_name: record.name,
        model_version: record.version,
        ...id,
        parameters: { key_id: keyId, queue_seconds: result.queueSeconds, seconds: result.seconds },
      },
      'outputs',
      new Map([['output', result.outputs]]),
    );
    return reply
      .header('content-type', 'application/octet-stream')
      .header(HEADER_LENGTH, String(headerLength))
      .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  };

  // Model repository extension.
  app.post('/v2/repository/index', async (request) => {
    const tenant = tenantWith(request, 'infer');
    const body = request.body as { ready?: unknown } | undefined;
    const onlyReady = body !== undefined && body !== null && typeof body === 'object' && body.ready === true;
    return models
      .list(tenant)
      .filter((r) => !onlyReady || r.state === 'ready')
      .map((r) => ({
        name: r.name,
        version: r.version,
        state: r.state === 'ready' ? 'READY' : 'UNAVAILABLE',
        reason: r.state === 'ready' ? '' : 'unloaded',
      }));
  });
  app.put<{ Params: { model: string }; Querystring: Record<string, unknown> }>(
    '/v2/repository/models/:model',
    { bodyLimit: limits.model },
    async (request, reply) => {
      const tenant = tenantWith(request, 'models:admin');
      const onnx = octets(request, 'model upload (the ONNX file)');
      const config = parseModelConfig(request.query, allowInsecure);
      const record = await models.upload(tenant, request.params.model, onnx, config);
      return reply.code(201).send(metadata(record));
    },
  );
  for (const action of ['load', 'unload'] as const) {
    app.post<{ Params: { model: string } }>(`/v2/repository/models/:model/${action}`, async (request) => {
      const tenant = tenantWith(request, 'models:admin');
      const record = await models.setState(
        tenant,
        request.params.model,
        action === 'load' ? 'ready' : 'unloaded',
      );
      if (action === 'unload') await engine.forget(tenant, { model: record.name });
      return { name: record.name, state: record.state === 'ready' ? 'READY' : 'UNAVAILABLE' };
    });
  }
  app.delete<{ Params: { model: string } }>('/v2/repository/models/:model', async (request, reply) => {
    const tenant = tenantWith(request, 'models:admin');
    models.get(tenant, request.params.model);
    await engine.forget(tenant, { model: request.params.model });
    await models.delete(tenant, request.params.model);
    return reply.code(204).send();
  });

  // HE key extension.
  app.post<{ Querystring: { model?: unknown } }>(
    '/v2/keys',
    { bodyLimit: limits.keys },
    async (request, reply) => {
      const tenant = tenantWith(request, 'keys');
      const model = request.query.model;
      if (typeof model !== 'string') {
        throw new InvalidArgumentError('query parameter "model": expected the model the keys are made for');
      }
      const record = models.get(tenant, model);
      const bytes = octets(request, 'key upload (a serialized evaluation-key set)');
      const stored = await keys.upload(tenant, record.name, record.he, bytes);
      return reply.code(201).send({ key_id: stored.id, ...keyView(stored) });
    },
  );
  app.get('/v2/keys', async (request) => {
    const tenant = tenantWith(request, 'keys');
    return keys.list(tenant).map((k) => ({ key_id: k.id, ...keyView(k) }));
  });
  app.get<{ Params: { id: string } }>('/v2/keys/:id', async (request) => {
    const tenant = tenantWith(request, 'keys');
    const k = keys.get(tenant, request.params.id);
    return { key_id: k.id, ...keyView(k) };
  });
  app.delete<{ Params: { id: string } }>('/v2/keys/:id', async (request, reply) => {
    const tenant = tenantWith(request, 'keys');
    keys.get(tenant, request.params.id);
    await engine.forget(tenant, { keyId: request.params.id });
    await keys.delete(tenant, request.params.id);
    return reply.code(204).send();
  });

  // Tenants (the admin token only).
  const requireAdmin = (request: FastifyRequest) => {
    if (authenticate(request).kind !== 'admin')
      throw new ForbiddenError('tenants are managed with the admin token');
  };
  app.post('/v2/admin/tenants', async (request, reply) => {
    requireAdmin(request);
    const body = request.body as { name?: unknown; scopes?: unknown } | undefined;
    if (typeof body !== 'object' || body === null) {
      throw new InvalidArgumentError('body: expected a JSON object {"name": "...", "scopes"?: [...]}');
    }
    const scopes = body.scopes;
    if (scopes !== undefined && (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string'))) {
      throw new InvalidArgumentError('scopes: expected an array of scope names');
    }
    const created = await tenants.create(body.name as string, scopes as Scope[] | undefined);
    return reply.code(201).send(created);
  });
  app.get('/v2/admin/tenants', async (request) => {
    requireAdmin(request);
    return tenants.names().map((name) => ({ name }));
  });

  return { app, models, keys, tenants, adminTokenSource: admin.source, adminTokenPath: admin.path };
}

function keyView(k: import('./keys.ts').KeyRecord) {
  return {
    model: k.model,
    parameters_id: k.parameters_id,
    created: k.created,
    bytes: k.bytes,
    seeded: k.seeded,
    relinearization: k.relinearization,
    galois_elements: k.galois.map(([g]) => g),
  };
}
