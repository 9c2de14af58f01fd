/**
 * HE key extension routes of `home serve`: evaluation keys uploaded in one request (`POST /v2/keys`) or in
 * chunks (`/v2/keys/uploads…`: open with the size and SHA-256, send chunks at the received offset, ask the offset
 * after an interruption, commit), listed, read and deleted. Every key set has a status and an expiry.
 */
import type { FastifyInstance } from 'fastify';
import { InvalidArgumentError } from '../util/errors.ts';
import { octets, type ServeContext } from './context.ts';
import type { KeyRecord, KeyRegistry } from './keys.ts';
import { checkName } from './names.ts';
import type { UploadRecord } from './uploads.ts';

/**
 * A key set as the key routes answer it (never its bytes).
 *
 * @example
 * ```ts
 * reply.send(keyView(ctx.keys, record)); // { key_id, model, status: 'active', expires_at, … }
 * ```
 */
export function keyView(keys: KeyRegistry, k: KeyRecord): Record<string, unknown> {
  return {
    key_id: k.id,
    model: k.model,
    parameters_id: k.parameters_id,
    created: k.created,
    expires_at: k.expires_at ?? null,
    status: keys.status(k),
    bytes: k.bytes,
    seeded: k.seeded,
    relinearization: k.relinearization,
    galois_elements: k.galois.map(([g]) => g),
  };
}

function uploadView(u: UploadRecord): Record<string, unknown> {
  return {
    upload_id: u.id,
    model: u.model,
    size: u.size,
    offset: u.offset,
    sha256: u.sha256,
    ...(u.committed_as !== undefined ? { committed_as: u.committed_as } : {}),
    created: u.created,
    expires_at: u.expires_at,
  };
}

/** A `ttl_seconds` query parameter: absent, or a positive whole number. */
function ttlOf(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const ttl = typeof value === 'string' && /^\d{1,12}$/.test(value) ? Number(value) : Number.NaN;
  if (!(ttl > 0)) throw new InvalidArgumentError('ttl_seconds: expected a positive whole number of seconds');
  return ttl;
}

/**
 * Registers the key routes.
 *
 * @example
 * ```ts
 * registerKeyRoutes(app, ctx);
 * ```
 */
export function registerKeyRoutes(app: FastifyInstance, ctx: ServeContext): void {
  const { keys, uploads } = ctx;
  app.post<{ Querystring: { model?: unknown; ttl_seconds?: unknown } }>(
    '/v2/keys',
    { bodyLimit: ctx.limits.keys },
    async (request, reply) => {
      const tenant = ctx.tenantWith(request, 'keys');
      const model = request.query.model;
      if (typeof model !== 'string') {
        throw new InvalidArgumentError('query parameter "model": expected the model the keys are made for');
      }
      const ttl = ttlOf(request.query.ttl_seconds);
      const record = ctx.models.get(tenant, model);
      const bytes = octets(request, 'key upload (a serialized evaluation-key set)');
      const stored = await keys.upload(tenant, record.name, record.he, bytes, ttl);
      return reply.code(201).send(keyView(keys, stored));
    },
  );
  app.get('/v2/keys', async (request) => {
    const tenant = ctx.tenantWith(request, 'keys');
    return keys.list(tenant).map((k) => keyView(keys, k));
  });
  app.get<{ Params: { id: string } }>('/v2/keys/:id', async (request) => {
    const tenant = ctx.tenantWith(request, 'keys');
    return keyView(keys, keys.find(tenant, request.params.id));
  });
  app.delete<{ Params: { id: string } }>('/v2/keys/:id', async (request, reply) => {
    const tenant = ctx.tenantWith(request, 'keys');
    keys.find(tenant, request.params.id);
    await ctx.engine.forget(tenant, { keyId: request.params.id });
    await keys.delete(tenant, request.params.id);
    return reply.code(204).send();
  });

  // Chunked uploads.
  app.post('/v2/keys/uploads', async (request, reply) => {
    const tenant = ctx.tenantWith(request, 'keys');
    const body = request.body as Record<string, unknown> | null | undefined;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new InvalidArgumentError(
        'body: expected a JSON object {"model": "...", "size": <bytes>, "sha256": "<hex>", "ttl_seconds"?: <s>}',
      );
    }
    // The model must exist now, so a client learns of a typo before sending gigabytes.
    checkName(body.model, 'model');
    ctx.models.get(tenant, body.model);
    const upload = await uploads.create(tenant, {
      model: body.model,
      size: body.size,
      sha256: body.sha256,
      key_ttl_seconds: body.ttl_seconds,
    });
    return reply.code(201).header('location', `/v2/keys/uploads/${upload.id}`).send(uploadView(upload));
  });
  app.get<{ Params: { id: string } }>('/v2/keys/uploads/:id', async (request) => {
    const tenant = ctx.tenantWith(request, 'keys');
    return uploadView(uploads.get(tenant, request.params.id));
  });
  app.put<{ Params: { id: string }; Querystring: { offset?: unknown } }>(
    '/v2/keys/uploads/:id',
    { bodyLimit: ctx.limits.chunk },
    async (request) => {
      const tenant = ctx.tenantWith(request, 'keys');
      const raw = request.query.offset;
      const offset = typeof raw === 'string' && /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
      if (!Number.isSafeInteger(offset)) {
        throw new InvalidArgumentError('query parameter "offset": expected the byte offset of this chunk');
      }
      uploads.get(tenant, request.params.id);
      const chunk = octets(request, 'key upload chunk');
      return uploadView(await uploads.append(tenant, request.params.id, offset, chunk));
    },
  );
  app.post<{ Params: { id: string } }>('/v2/keys/uploads/:id/commit', async (request, reply) => {
    const tenant = ctx.tenantWith(request, 'keys');
    let created = true;
    const stored = await uploads.commit(
      tenant,
      request.params.id,
      async (bytes, upload, keyId) => {
        const model = ctx.models.get(tenant, upload.model);
        return keys.upload(tenant, model.name, model.he, bytes, upload.key_ttl_seconds, keyId);
      },
      (keyId) => {
        // Committed before (its answer lost): the same key set, unless it was deleted since.
        created = false;
        return keys.find(tenant, keyId);
      },
    );
    return reply.code(created ? 201 : 200).send(keyView(keys, stored));
  });
  app.delete<{ Params: { id: string } }>('/v2/keys/uploads/:id', async (request, reply) => {
    const tenant = ctx.tenantWith(request, 'keys');
    await uploads.delete(tenant, request.params.id);
    return reply.code(204).send();
  });
}
