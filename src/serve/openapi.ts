/**
 * The OpenAPI 3.1 document of `home serve` (`GET /v2/openapi.json`), maintained by hand next to the routes: the
 * routes check their input in code (binary bodies, ciphertext formats) rather than through JSON schemas, so a
 * generator would describe less than this does. A test checks that every registered route is described and that
 * nothing else is.
 */

type Json = Record<string, unknown>;

const ERROR = { $ref: '#/components/responses/Error' };
const json = (schema: Json, description = 'OK'): Json => ({
  description,
  content: { 'application/json': { schema } },
});
const binary = (description: string): Json => ({
  description,
  content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
});
const pathParam = (name: string, description: string): Json => ({
  name,
  in: 'path',
  required: true,
  schema: { type: 'string' },
  description,
});
const MODEL = pathParam('model', 'model name');
const VERSION = pathParam('version', 'model version (always "1" for now)');
const KEY_ID = pathParam('id', 'key id, "k_" and 32 hex digits');
const UPLOAD_ID = pathParam('id', 'upload id, "u_" and 32 hex digits');
const JOB_ID = pathParam('id', 'job id, "j_" and 32 hex digits');
const OBJECT = { type: 'object' };

/** One operation: its summary, security scope, parameters, request body and success answers. */
function op(
  summary: string,
  scope: 'none' | 'admin' | 'infer' | 'keys' | 'models:admin',
  responses: Record<string, Json>,
  extra: Json = {},
): Json {
  return {
    summary,
    ...(scope === 'none' ? { security: [] } : { security: [{ bearer: [] }], 'x-scope': scope }),
    ...extra,
    responses: { ...responses, '4XX': ERROR, '5XX': ERROR },
  };
}

function modelPaths(prefix: string, parameters: Json[]): Record<string, Json> {
  return {
    [prefix]: {
      get: op(
        'Model metadata with the HE descriptor a client makes its keys from',
        'infer',
        { 200: json(OBJECT) },
        { parameters },
      ),
    },
    [`${prefix}/ready`]: {
      get: op('Model readiness', 'infer', { 200: json(OBJECT) }, { parameters }),
    },
    [`${prefix}/infer`]: {
      post: op(
        'Encrypted inference (binary tensor data extension); with "Prefer: respond-async" a job',
        'infer',
        {
          200: binary('JSON header of Inference-Header-Content-Length bytes, then the output ciphertexts'),
          202: json({ $ref: '#/components/schemas/Job' }, 'Accepted as a job (Location: /v2/jobs/{id})'),
        },
        {
          parameters: [
            ...parameters,
            {
              name: 'Inference-Header-Content-Length',
              in: 'header',
              required: true,
              schema: { type: 'integer' },
            },
            {
              name: 'Prefer',
              in: 'header',
              required: false,
              schema: { type: 'string', example: 'respond-async' },
            },
          ],
          requestBody: { required: true, ...binary('JSON header, then the input ciphertexts') },
        },
      ),
    },
  };
}

/**
 * The OpenAPI document for a server of version `version`.
 *
 * @example
 * ```ts
 * const doc = openApiDocument('0.1.0');
 * Object.keys(doc.paths as object).includes('/v2/keys/uploads'); // true
 * ```
 */
export function openApiDocument(version: string): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'home serve: encrypted inference (KServe V2 / Open Inference Protocol with CKKS)',
      version,
      description:
        'Clients keep their secret keys: they upload evaluation keys once, then send ciphertexts. Every error is ' +
        '{"error", "code"}; 429 QUOTA_EXCEEDED and 503 OVERLOADED carry Retry-After.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error', 'code'],
          properties: { error: { type: 'string' }, code: { type: 'string' } },
        },
        Key: {
          type: 'object',
          properties: {
            key_id: { type: 'string' },
            model: { type: 'string' },
            status: { enum: ['active', 'expired'] },
            expires_at: { type: ['string', 'null'], format: 'date-time' },
            bytes: { type: 'integer' },
          },
        },
        Upload: {
          type: 'object',
          properties: {
            upload_id: { type: 'string' },
            model: { type: 'string' },
            size: { type: 'integer' },
            offset: { type: 'integer' },
            sha256: { type: 'string' },
            expires_at: { type: 'string', format: 'date-time' },
          },
        },
        Job: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            status: { enum: ['queued', 'running', 'succeeded', 'failed'] },
            progress: {
              type: 'object',
              properties: {
                done: { type: 'integer' },
                total: { type: 'integer' },
                fraction: { type: 'number' },
              },
            },
            elapsed_seconds: { type: 'number' },
            result: { type: ['string', 'null'] },
            error: { $ref: '#/components/schemas/Error' },
          },
        },
      },
      responses: { Error: json({ $ref: '#/components/schemas/Error' }, 'Error') },
    },
    paths: {
      '/v2/health/live': { get: op('Liveness', 'none', { 200: json(OBJECT) }) },
      '/v2/health/ready': { get: op('Readiness', 'none', { 200: json(OBJECT) }) },
      '/v2': { get: op('Server metadata and extensions', 'none', { 200: json(OBJECT) }) },
      '/v2/openapi.json': { get: op('This document', 'none', { 200: json(OBJECT) }) },
      '/': {
        get: op('The web page: draw or pick an image, encrypted in the browser, classified here', 'none', {
          200: { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } },
        }),
      },
      '/web/*': {
        get: op("The page's ES modules (dist/ with bare imports rewritten) and kernels.wasm", 'none', {
          200: { description: 'JavaScript or WebAssembly' },
        }),
      },
      '/web/samples/{dataset}': {
        get: op(
          'Sample images shipped with the package (`mnist`: the first MNIST test digits, base64 bytes)',
          'none',
          { 200: json(OBJECT) },
          { parameters: [{ name: 'dataset', in: 'path', required: true, schema: { type: 'string' } }] },
        ),
      },
      '/metrics': {
        get: op('Prometheus metrics (admin token)', 'admin', {
          200: {
            description: 'Prometheus text exposition',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        }),
      },
      ...modelPaths('/v2/models/{model}', [MODEL]),
      ...modelPaths('/v2/models/{model}/versions/{version}', [MODEL, VERSION]),
      '/v2/repository/index': {
        post: op('The tenant\'s models ({"ready": true} for the ready ones only)', 'infer', {
          200: json({ type: 'array', items: OBJECT }),
        }),
      },
      '/v2/repository/models/{model}': {
        put: op(
          'Upload an ONNX model; compiled, persisted, ready on 201',
          'models:admin',
          { 201: json(OBJECT) },
          {
            parameters: [
              MODEL,
              ...['input_scale', 'input_mean', 'input_std', 'mode'].map((name) => ({
                name,
                in: 'query',
                required: false,
                schema: { type: 'string' },
              })),
            ],
            requestBody: { required: true, ...binary('the ONNX file') },
          },
        ),
        delete: op(
          'Delete a model',
          'models:admin',
          { 204: { description: 'Deleted' } },
          { parameters: [MODEL] },
        ),
      },
      '/v2/repository/models/{model}/load': {
        post: op('Serve a model', 'models:admin', { 200: json(OBJECT) }, { parameters: [MODEL] }),
      },
      '/v2/repository/models/{model}/unload': {
        post: op(
          'Stop serving a model (kept on disk)',
          'models:admin',
          { 200: json(OBJECT) },
          { parameters: [MODEL] },
        ),
      },
      '/v2/keys': {
        post: op(
          'Upload an evaluation-key set in one request',
          'keys',
          { 201: json({ $ref: '#/components/schemas/Key' }) },
          {
            parameters: [
              { name: 'model', in: 'query', required: true, schema: { type: 'string' } },
              { name: 'ttl_seconds', in: 'query', required: false, schema: { type: 'integer' } },
            ],
            requestBody: { required: true, ...binary('a serialized evaluation-key set') },
          },
        ),
        get: op("The tenant's key sets", 'keys', {
          200: json({ type: 'array', items: { $ref: '#/components/schemas/Key' } }),
        }),
      },
      '/v2/keys/{id}': {
        get: op(
          'Key set status and expiry',
          'keys',
          { 200: json({ $ref: '#/components/schemas/Key' }) },
          { parameters: [KEY_ID] },
        ),
        delete: op('Delete a key set', 'keys', { 204: { description: 'Deleted' } }, { parameters: [KEY_ID] }),
      },
      '/v2/keys/uploads': {
        post: op(
          'Open a chunked key upload',
          'keys',
          { 201: json({ $ref: '#/components/schemas/Upload' }) },
          {
            requestBody: {
              required: true,
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['model', 'size', 'sha256'],
                    properties: {
                      model: { type: 'string' },
                      size: { type: 'integer' },
                      sha256: { type: 'string' },
                      ttl_seconds: { type: 'integer' },
                    },
                  },
                },
              },
            },
          },
        ),
      },
      '/v2/keys/uploads/{id}': {
        get: op(
          'Bytes received so far (resume from offset)',
          'keys',
          { 200: json({ $ref: '#/components/schemas/Upload' }) },
          { parameters: [UPLOAD_ID] },
        ),
        put: op(
          'Send a chunk at the received offset',
          'keys',
          { 200: json({ $ref: '#/components/schemas/Upload' }) },
          {
            parameters: [
              UPLOAD_ID,
              { name: 'offset', in: 'query', required: true, schema: { type: 'integer' } },
            ],
            requestBody: { required: true, ...binary('the chunk') },
          },
        ),
        delete: op(
          'Abandon an upload',
          'keys',
          { 204: { description: 'Deleted' } },
          { parameters: [UPLOAD_ID] },
        ),
      },
      '/v2/keys/uploads/{id}/commit': {
        post: op(
          'Verify the SHA-256, check and publish the key set (again: the same set, 200)',
          'keys',
          {
            200: json({ $ref: '#/components/schemas/Key' }),
            201: json({ $ref: '#/components/schemas/Key' }),
          },
          { parameters: [UPLOAD_ID] },
        ),
      },
      '/v2/jobs': {
        get: op("The tenant's jobs", 'infer', {
          200: json({ type: 'array', items: { $ref: '#/components/schemas/Job' } }),
        }),
      },
      '/v2/jobs/{id}': {
        get: op(
          'Job status and progress',
          'infer',
          { 200: json({ $ref: '#/components/schemas/Job' }) },
          { parameters: [JOB_ID] },
        ),
        delete: op(
          'Forget a finished job',
          'infer',
          { 204: { description: 'Deleted' } },
          { parameters: [JOB_ID] },
        ),
      },
      '/v2/jobs/{id}/result': {
        get: op(
          'The result of a finished job (as a synchronous inference answers)',
          'infer',
          { 200: binary('the inference response') },
          { parameters: [JOB_ID] },
        ),
      },
      '/v2/admin/tenants': {
        post: op(
          'Create a tenant; its token is shown once',
          'admin',
          { 201: json(OBJECT) },
          {
            requestBody: {
              required: true,
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['name'],
                    properties: {
                      name: { type: 'string' },
                      scopes: { type: 'array', items: { type: 'string' } },
                    },
                  },
                },
              },
            },
          },
        ),
        get: op('Tenant names', 'admin', { 200: json({ type: 'array', items: OBJECT }) }),
      },
    },
  };
}
