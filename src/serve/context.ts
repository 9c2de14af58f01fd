/**
 * What the route modules of `home serve` share: the stores, the engine, admission and metrics, the body limits,
 * and the checks every route starts with (who is calling, with which scope, within its quota).
 */
import type { FastifyRequest } from 'fastify';
import { InvalidArgumentError } from '../util/errors.ts';
import type { Scope } from './auth.ts';
import type { InferenceEngine } from './engine.ts';
import type { JobRegistry } from './jobs.ts';
import type { KeyRegistry } from './keys.ts';
import type { ServerMetrics } from './metrics.ts';
import type { ModelRepository } from './models.ts';
import type { Admission } from './quotas.ts';
import type { TenantRegistry } from './tenants.ts';
import type { UploadStore } from './uploads.ts';

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
  /** A whole key set, in one request or announced for a chunked upload. */
  readonly keys: number;
  /** One chunk of a chunked key upload. */
  readonly chunk: number;
  readonly model: number;
}

/**
 * The default body limits: 1 MiB of JSON, 256 MiB per inference request and per ONNX model, 2 GiB per key set,
 * 64 MiB per key chunk.
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
  chunk: 64 * 2 ** 20,
  model: 256 * 2 ** 20,
});

/**
 * The shared state and checks the route modules are registered with.
 *
 * @example
 * ```ts
 * app.get('/v2/keys', async (request) => ctx.keys.list(ctx.tenantWith(request, 'keys')));
 * ```
 */
export interface ServeContext {
  readonly models: ModelRepository;
  readonly keys: KeyRegistry;
  readonly uploads: UploadStore;
  readonly tenants: TenantRegistry;
  readonly jobs: JobRegistry;
  readonly engine: InferenceEngine;
  readonly admission: Admission;
  readonly metrics: ServerMetrics;
  readonly limits: BodyLimits;
  readonly allowInsecure: boolean;
  /**
   * The calling tenant, checked to hold `scope` and (once per request) within its request-rate quota.
   *
   * @throws AuthenticationError, ForbiddenError, RetryLaterError (QUOTA_EXCEEDED).
   */
  tenantWith(request: FastifyRequest, scope: Scope): string;
  /**
   * Checks the caller holds the admin token.
   *
   * @throws AuthenticationError, ForbiddenError.
   */
  requireAdmin(request: FastifyRequest): void;
}

/**
 * The binary body of a request.
 *
 * @throws InvalidArgumentError when the body is not `application/octet-stream` bytes.
 * @example
 * ```ts
 * const onnx = octets(request, 'model upload (the ONNX file)');
 * ```
 */
export function octets(request: FastifyRequest, what: string): Uint8Array {
  const body = request.body;
  if (!(body instanceof Uint8Array)) {
    throw new InvalidArgumentError(
      `${what}: expected a binary body with Content-Type: application/octet-stream`,
    );
  }
  return body;
}
