/**
 * Model routes of `home serve`: KServe V2 model metadata and readiness, and the model repository extension
 * (index, upload of an ONNX file, load, unload, delete).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseModelConfig } from './compile.ts';
import { octets, type ServeContext } from './context.ts';
import { NotFoundError } from './errors.ts';
import type { ModelRecord } from './models.ts';
import type { Scope } from './auth.ts';

/**
 * The route parameters of `/v2/models/{m}[/versions/{v}]…`.
 *
 * @example
 * ```ts
 * app.get<ModelRoute>('/v2/models/:model', async (request) => request.params.model);
 * ```
 */
export type ModelRoute = { Params: { model: string; version?: string } };

/**
 * The two prefixes every per-model route is served under.
 *
 * @example
 * ```ts
 * for (const prefix of MODEL_PREFIXES) app.get(`${prefix}/ready`, handler);
 * ```
 */
export const MODEL_PREFIXES: readonly string[] = Object.freeze([
  '/v2/models/:model',
  '/v2/models/:model/versions/:version',
]);

/**
 * The caller's model named in the URL (and its version, when the URL names one).
 *
 * @throws AuthenticationError, ForbiddenError; NotFoundError (MODEL_NOT_FOUND) for another tenant's, unknown or
 *   other-version model.
 * @example
 * ```ts
 * const record = modelOf(ctx, request, 'infer');
 * ```
 */
export function modelOf(ctx: ServeContext, request: FastifyRequest<ModelRoute>, scope: Scope): ModelRecord {
  const tenant = ctx.tenantWith(request, scope);
  const record = ctx.models.get(tenant, request.params.model);
  const version = request.params.version;
  if (version !== undefined && version !== record.version) {
    throw new NotFoundError(
      'MODEL_NOT_FOUND',
      `model "${record.name}" has no version ${JSON.stringify(version.slice(0, 20))}`,
    );
  }
  return record;
}

/**
 * Registers the model metadata and repository routes.
 *
 * @example
 * ```ts
 * registerModelRoutes(app, ctx);
 * ```
 */
export function registerModelRoutes(app: FastifyInstance, ctx: ServeContext): void {
  const metadata = (record: ModelRecord) => ({
    name: record.name,
    versions: [record.version],
    platform: 'home-he-ckks',
    inputs: [{ name: 'input', datatype: 'BYTES', shape: [record.he.inputs.length] }],
    outputs: [{ name: 'output', datatype: 'BYTES', shape: [record.he.outputs.length] }],
    he: record.he,
  });
  for (const prefix of MODEL_PREFIXES) {
    app.get<ModelRoute>(prefix, async (request) => metadata(modelOf(ctx, request, 'infer')));
    app.get<ModelRoute>(`${prefix}/ready`, async (request) => {
      const record = modelOf(ctx, request, 'infer');
      return { name: record.name, version: record.version, ready: record.state === 'ready' };
    });
  }

  app.post('/v2/repository/index', async (request) => {
    const tenant = ctx.tenantWith(request, 'infer');
    const body = request.body as { ready?: unknown } | undefined;
    const onlyReady = body !== undefined && body !== null && typeof body === 'object' && body.ready === true;
    return ctx.models
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
    { bodyLimit: ctx.limits.model },
    async (request, reply) => {
      const tenant = ctx.tenantWith(request, 'models:admin');
      const onnx = octets(request, 'model upload (the ONNX file)');
      const config = parseModelConfig(request.query, ctx.allowInsecure);
      const record = await ctx.models.upload(tenant, request.params.model, onnx, config);
      return reply.code(201).send(metadata(record));
    },
  );
  for (const action of ['load', 'unload'] as const) {
    app.post<{ Params: { model: string } }>(`/v2/repository/models/:model/${action}`, async (request) => {
      const tenant = ctx.tenantWith(request, 'models:admin');
      const record = await ctx.models.setState(
        tenant,
        request.params.model,
        action === 'load' ? 'ready' : 'unloaded',
      );
      if (action === 'unload') await ctx.engine.forget(tenant, { model: record.name });
      return { name: record.name, state: record.state === 'ready' ? 'READY' : 'UNAVAILABLE' };
    });
  }
  app.delete<{ Params: { model: string } }>('/v2/repository/models/:model', async (request, reply) => {
    const tenant = ctx.tenantWith(request, 'models:admin');
    ctx.models.get(tenant, request.params.model);
    await ctx.engine.forget(tenant, { model: request.params.model });
    await ctx.models.delete(tenant, request.params.model);
    return reply.code(204).send();
  });
}
