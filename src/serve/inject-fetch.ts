/**
 * A `fetch` that calls a Fastify instance in process (`app.inject`, no socket): the Node client and the
 * tests talk to a server exactly as over HTTP, without a port.
 */
import type { FastifyInstance } from 'fastify';

/**
 * A fetch function answering from `app` by injection.
 *
 * @example
 * ```ts
 * const client = new ServeClient({ server: 'http://in-process', token, fetch: injectFetch(app) });
 * ```
 */
export function injectFetch(app: FastifyInstance): typeof fetch {
  return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const headers: Record<string, string> = {};
    request.headers.forEach((value, key) => {
      headers[key] = value;
    });
    const body = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
    const reply = await app.inject({
      method: request.method as 'GET',
      url: `${url.pathname}${url.search}`,
      headers,
      ...(body ? { payload: body } : {}),
    });
    const responseHeaders = new Headers();
    for (const [key, value] of Object.entries(reply.headers)) {
      if (value === undefined) continue;
      responseHeaders.set(key, Array.isArray(value) ? value.join(', ') : String(value));
    }
    const status = reply.statusCode;
    const answer = status === 204 || status === 304 ? null : new Uint8Array(reply.rawPayload);
    return new Response(answer, { status, headers: responseHeaders });
  };
}
