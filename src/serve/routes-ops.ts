/**
 * Operations routes of `home serve`: health, server metadata, tenants (admin token), Prometheus metrics (admin
 * token: the labels name every tenant) and the OpenAPI document.
 */
import type { FastifyInstance } from 'fastify';
import { InvalidArgumentError } from '../util/errors.ts';
import type { Scope } from './auth.ts';
import type { ServeContext } from './context.ts';
import { openApiDocument } from './openapi.ts';

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
  'jobs',
]);

/**
 * Registers the health, metadata, tenant, metrics and OpenAPI routes.
 *
 * @example
 * ```ts
 * registerOpsRoutes(app, ctx, '0.1.0');
 * ```
 */
export function registerOpsRoutes(app: FastifyInstance, ctx: ServeContext, version: string): void {
  // Health, server metadata and the API description: no token (load balancers and clients probe them).
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async () => ({ ready: true }));
  app.get('/v2', async () => ({ name: 'home-he', version, extensions: SERVER_EXTENSIONS }));
  const openapi = openApiDocument(version);
  app.get('/v2/openapi.json', async () => openapi);

  app.get('/metrics', async (request, reply) => {
    ctx.requireAdmin(request);
    return reply.header('content-type', ctx.metrics.contentType).send(await ctx.metrics.render());
  });

  app.post('/v2/admin/tenants', async (request, reply) => {
    ctx.requireAdmin(request);
    const body = request.body as { name?: unknown; scopes?: unknown } | undefined;
    if (typeof body !== 'object' || body === null) {
      throw new InvalidArgumentError('body: expected a JSON object {"name": "...", "scopes"?: [...]}');
    }
    const scopes = body.scopes;
    if (scopes !== undefined && (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string'))) {
      throw new InvalidArgumentError('scopes: expected an array of scope names');
    }
    const created = await ctx.tenants.create(body.name as string, scopes as Scope[] | undefined);
    return reply.code(201).send(created);
  });
  app.get('/v2/admin/tenants', async (request) => {
    ctx.requireAdmin(request);
    return ctx.tenants.names().map((name) => ({ name }));
  });
}
