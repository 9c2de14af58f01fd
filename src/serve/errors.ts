/**
 * The server's typed errors and how every error becomes an HTTP answer: a status and a JSON body
 * `{ error, code }` whose code is stable (the project's typed error codes, plus the server's own below).
 */
import { HomeError } from '../util/errors.ts';

/**
 * A model, key, tenant or route the caller cannot see. Another tenant's objects answer this too, so a caller
 * cannot tell "not yours" from "does not exist".
 *
 * @example
 * ```ts
 * throw new NotFoundError('MODEL_NOT_FOUND', 'model "mnist": no such model');
 * ```
 */
export class NotFoundError extends HomeError {
  constructor(
    code:
      | 'MODEL_NOT_FOUND'
      | 'KEY_NOT_FOUND'
      | 'TENANT_NOT_FOUND'
      | 'UPLOAD_NOT_FOUND'
      | 'JOB_NOT_FOUND'
      | 'NOT_FOUND',
    message: string,
  ) {
    super(code, message);
  }
}

/**
 * No bearer token, or one the server does not know.
 *
 * @example
 * ```ts
 * throw new AuthenticationError('missing "Authorization: Bearer <token>" header');
 * ```
 */
export class AuthenticationError extends HomeError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message);
  }
}

/**
 * A known token without the scope the route needs.
 *
 * @example
 * ```ts
 * throw new ForbiddenError('this token lacks the scope "models:admin"');
 * ```
 */
export class ForbiddenError extends HomeError {
  constructor(message: string) {
    super('FORBIDDEN', message);
  }
}

/**
 * The request collides with what is stored (a model or tenant name already taken).
 *
 * @example
 * ```ts
 * throw new ConflictError('model "mnist" exists: delete it first');
 * ```
 */
export class ConflictError extends HomeError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

/**
 * The model exists but is unloaded: load it (`POST /v2/repository/models/{m}/load`) before inferring.
 *
 * @example
 * ```ts
 * throw new ModelNotReadyError('model "mnist" is unloaded');
 * ```
 */
export class ModelNotReadyError extends HomeError {
  constructor(message: string) {
    super('MODEL_NOT_READY', message);
  }
}

/**
 * A body over the route's size limit.
 *
 * @example
 * ```ts
 * throw new PayloadTooLargeError('body of 3 GiB: the limit for keys is 1 GiB');
 * ```
 */
export class PayloadTooLargeError extends HomeError {
  constructor(message: string) {
    super('PAYLOAD_TOO_LARGE', message);
  }
}

/**
 * A key set whose expiry has passed (410 Gone, unlike an unknown key's 404): the client makes no new keys, it
 * uploads the same ones again and gets a new key id.
 *
 * @example
 * ```ts
 * throw new KeyExpiredError('key id "k_…" expired at 2025-01-01T00:00:00.000Z (upload the keys again)');
 * ```
 */
export class KeyExpiredError extends HomeError {
  constructor(message: string) {
    super('KEY_EXPIRED', message);
  }
}

/**
 * A request that does not fit the state of what it acts on: a chunk at another offset than the one received so
 * far (`OFFSET_MISMATCH`), a commit before every byte arrived (`UPLOAD_INCOMPLETE`), a chunk sent to an upload
 * already committed (`UPLOAD_COMMITTED`), the result of a job still running (`JOB_NOT_DONE`).
 *
 * @example
 * ```ts
 * throw new StateError('OFFSET_MISMATCH', 'chunk at offset 0: 4096 bytes received so far');
 * ```
 */
export class StateError extends HomeError {
  constructor(
    code: 'OFFSET_MISMATCH' | 'UPLOAD_INCOMPLETE' | 'UPLOAD_COMMITTED' | 'JOB_NOT_DONE',
    message: string,
  ) {
    super(code, message);
  }
}

/**
 * Bytes whose SHA-256 is not the one announced (a chunked upload at commit).
 *
 * @example
 * ```ts
 * throw new ChecksumError('upload u_…: SHA-256 of the received bytes differs from the one announced');
 * ```
 */
export class ChecksumError extends HomeError {
  constructor(message: string) {
    super('CHECKSUM_MISMATCH', message);
  }
}

/**
 * A request refused for a while, with the seconds after which trying again may succeed (the `Retry-After`
 * header): a tenant over one of its quotas (429 `QUOTA_EXCEEDED`) or a server whose inference queue is full
 * (503 `OVERLOADED`).
 *
 * @example
 * ```ts
 * throw new RetryLaterError('QUOTA_EXCEEDED', 'tenant "acme": 10 requests per second', 1);
 * ```
 */
export class RetryLaterError extends HomeError {
  readonly retryAfterSeconds: number;
  constructor(code: 'QUOTA_EXCEEDED' | 'OVERLOADED', message: string, retryAfterSeconds: number) {
    super(code, message);
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds));
  }
}

/** HTTP status of each stable code; a code not listed is a server fault (500). */
const STATUS: Readonly<Record<string, number>> = {
  INVALID_ARGUMENT: 400,
  FORMAT: 400,
  MISMATCH: 400,
  MISSING_KEY: 400,
  MALFORMED_JSON: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  KEY_NOT_FOUND: 404,
  TENANT_NOT_FOUND: 404,
  UPLOAD_NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  KEY_EXPIRED: 410,
  OFFSET_MISMATCH: 409,
  UPLOAD_INCOMPLETE: 409,
  UPLOAD_COMMITTED: 409,
  JOB_NOT_DONE: 409,
  CHECKSUM_MISMATCH: 400,
  QUOTA_EXCEEDED: 429,
  OVERLOADED: 503,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  MODEL_NOT_READY: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNSUPPORTED_MODEL: 422,
  SECURITY: 422,
  RESOURCE: 507,
};

/**
 * The JSON body of an error answer.
 *
 * @example
 * ```ts
 * const body: ErrorBody = { error: 'model "x": no such model', code: 'MODEL_NOT_FOUND' };
 * ```
 */
export interface ErrorBody {
  readonly error: string;
  readonly code: string;
}

/** Fastify's own errors (body parsing, limits, routing) and the code each becomes. */
const FASTIFY_CODES: Readonly<Record<string, { code: string; status: number }>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'MALFORMED_JSON', status: 400 },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'MALFORMED_JSON', status: 400 },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'PAYLOAD_TOO_LARGE', status: 413 },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', status: 415 },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'INVALID_ARGUMENT', status: 400 },
  FST_ERR_CTP_EMPTY_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', status: 415 },
  FST_ERR_CTP_INVALID_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', status: 415 },
  FST_ERR_BAD_URL: { code: 'INVALID_ARGUMENT', status: 400 },
  FST_ERR_ASYNC_CONSTRAINT: { code: 'INVALID_ARGUMENT', status: 400 },
};

/**
 * The status and body an error answers with: the project's typed errors by their code, Fastify's parsing errors
 * by theirs (malformed JSON, oversize body, unknown media type), a {@link RetryLaterError} with its `Retry-After`
 * seconds, a client error Fastify raised with a 4xx status
 * as `INVALID_ARGUMENT`, anything else a 500 `INTERNAL` whose message does not leak internals.
 *
 * @example
 * ```ts
 * const { status, body } = errorAnswer(new NotFoundError('MODEL_NOT_FOUND', 'no such model'));
 * reply.code(status).send(body); // 404 { error: 'no such model', code: 'MODEL_NOT_FOUND' }
 * ```
 */
export function errorAnswer(error: unknown): { status: number; body: ErrorBody; retryAfterSeconds?: number } {
  if (error instanceof RetryLaterError) {
    return {
      status: STATUS[error.code] ?? 503,
      body: { error: error.message, code: error.code },
      retryAfterSeconds: error.retryAfterSeconds,
    };
  }
  if (error instanceof HomeError) {
    return { status: STATUS[error.code] ?? 500, body: { error: error.message, code: error.code } };
  }
  const fastifyCode = (error as { code?: unknown } | null)?.code;
  if (typeof fastifyCode === 'string' && fastifyCode in FASTIFY_CODES) {
    const known = FASTIFY_CODES[fastifyCode];
    return { status: known.status, body: { error: (error as Error).message, code: known.code } };
  }
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return {
      status,
      body: {
        error: (error as Error).message,
        code: status === 413 ? 'PAYLOAD_TOO_LARGE' : 'INVALID_ARGUMENT',
      },
    };
  }
  return { status: 500, body: { error: 'internal server error', code: 'INTERNAL' } };
}
