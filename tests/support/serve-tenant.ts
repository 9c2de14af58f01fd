/**
 * Test setup shared by the serve tests: a tenant created with the admin token and the CryptoNets-shaped MNIST model
 * uploaded for it (latency packing, insecure logN 11 for speed). Only tests import it.
 */
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';

/**
 * Creates tenant `name` and uploads `onnx` as its model `mnist`; returns the tenant's token.
 *
 * @example
 * ```ts
 * const token = await tenantWithMnist(server.app, ADMIN, 'acme', onnx);
 * ```
 */
export async function tenantWithMnist(
  app: FastifyInstance,
  adminToken: string,
  name: string,
  onnx: Uint8Array,
): Promise<string> {
  const tenant = await app.inject({
    method: 'POST',
    url: '/v2/admin/tenants',
    headers: { authorization: `Bearer ${adminToken}` },
    payload: { name },
  });
  assert.equal(tenant.statusCode, 201, tenant.body);
  const token = (tenant.json() as { token: string }).token;
  const upload = await app.inject({
    method: 'PUT',
    url: '/v2/repository/models/mnist?input_scale=1/256&mode=latency&insecure_log_n=11',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    payload: Buffer.from(onnx),
  });
  assert.equal(upload.statusCode, 201, upload.body);
  return token;
}
