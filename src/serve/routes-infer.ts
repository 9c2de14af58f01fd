/**
 * Inference routes of `home serve`: `POST /v2/models/{m}[/versions/{v}]/infer` with the binary tensor data
 * extension, answered at once or, with `Prefer: respond-async`, as a job (202 and its id), and the job routes
 * (`/v2/jobs…`: status with progress, result, delete). Every inference passes admission first: the tenant's
 * quotas (429) and the server's queue limit (503).
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidArgumentError } from '../util/errors.ts';
import { octets, type ServeContext } from './context.ts';
import type { InferenceHooks, InferenceResult } from './engine.ts';
import { StateError } from './errors.ts';
import type { ModelRecord } from './models.ts';
import { checkKeyId } from './names.ts';
import { decodeMessage, encodeMessageParts, HEADER_LENGTH } from './protocol.ts';
import { MODEL_PREFIXES, type ModelRoute, modelOf } from './routes-models.ts';

/**
 * Whether a `Prefer` header (RFC 7240) asks for an asynchronous answer.
 *
 * @example
 * ```ts
 * prefersAsync('respond-async, wait=0'); // true
 * ```
 */
export function prefersAsync(header: string | string[] | undefined): boolean {
  const values = Array.isArray(header) ? header : header === undefined ? [] : [header];
  return values.some((v) =>
    v.split(',').some((p) => p.split(';')[0].trim().toLowerCase() === 'respond-async'),
  );
}

/**
 * Registers the inference and job routes.
 *
 * @example
 * ```ts
 * registerInferRoutes(app, ctx);
 * ```
 */
export function registerInferRoutes(app: FastifyInstance, ctx: ServeContext): void {
  const send = (
    reply: FastifyReply,
    record: { name: string; version: string },
    requestId: string | undefined,
    keyId: string,
    result: InferenceResult,
  ) => {
    const { parts, headerLength, length } = encodeMessageParts(
      {
        model_name: record.name,
        model_version: record.version,
        ...(requestId !== undefined ? { id: requestId } : {}),
        parameters: { key_id: keyId, queue_seconds: result.queueSeconds, seconds: result.seconds },
      },
      'outputs',
      new Map([['output', result.outputs]]),
    );
    // The parts as a stream: each output ciphertext goes from its serialized bytes to the socket, uncopied.
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', String(length))
      .header(HEADER_LENGTH, String(headerLength))
      .send(Readable.from(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
  };

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
    const requestId = typeof header.id === 'string' ? header.id.slice(0, 128) : undefined;
    // An unknown or expired key fails now rather than as a job (the client re-uploads at once).
    ctx.keys.get(tenant, keyId);
    // Admission and queueing in one tick: no other request can slip in between the check and the count.
    ctx.admission.inference(tenant);
    const run = (hooks: InferenceHooks = {}) =>
      ctx.engine.infer(tenant, record.name, keyId, input, hooks).then((result) => {
        ctx.admission.finished(result.seconds);
        ctx.metrics.inference(tenant, record.name, result.seconds, result.queueSeconds);
        return result;
      });
    if (prefersAsync(request.headers.prefer)) {
      const job = ctx.jobs.submit(
        { tenant, model: record.name, version: record.version, keyId, requestId },
        run,
      );
      return reply
        .code(202)
        .header('location', `/v2/jobs/${job.id}`)
        .header('preference-applied', 'respond-async')
        .send(ctx.jobs.view(job));
    }
    return send(reply, record, requestId, keyId, await run());
  };
  for (const prefix of MODEL_PREFIXES) {
    app.post<ModelRoute>(`${prefix}/infer`, { bodyLimit: ctx.limits.infer }, async (request, reply) =>
      infer(request, reply, modelOf(ctx, request, 'infer')),
    );
  }

  app.get('/v2/jobs', async (request) => {
    const tenant = ctx.tenantWith(request, 'infer');
    return ctx.jobs.list(tenant).map((job) => ctx.jobs.view(job));
  });
  app.get<{ Params: { id: string } }>('/v2/jobs/:id', async (request) => {
    const tenant = ctx.tenantWith(request, 'infer');
    return ctx.jobs.view(ctx.jobs.get(tenant, request.params.id));
  });
  app.get<{ Params: { id: string } }>('/v2/jobs/:id/result', async (request, reply) => {
    const tenant = ctx.tenantWith(request, 'infer');
    const job = ctx.jobs.get(tenant, request.params.id);
    if (job.error) return reply.code(job.error.status).send(job.error.body);
    if (!job.result) {
      throw new StateError('JOB_NOT_DONE', `job ${job.id} is ${job.state}: poll GET /v2/jobs/${job.id}`);
    }
    return send(reply, { name: job.model, version: job.version }, job.requestId, job.keyId, job.result);
  });
  app.delete<{ Params: { id: string } }>('/v2/jobs/:id', async (request, reply) => {
    const tenant = ctx.tenantWith(request, 'infer');
    ctx.jobs.delete(tenant, request.params.id);
    return reply.code(204).send();
  });
}
