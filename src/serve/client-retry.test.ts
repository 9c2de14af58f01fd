/**
 * The client SDK's retries (`home-he/client`): a 429 or 503 with `Retry-After` is sent again after the wait it
 * names, a dropped connection is sent again for calls safe to repeat and not for a key upload, and the retry count
 * bounds both. Waits are recorded through the client's `sleep` option, never slept.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type RetryEvent, ServeClient, ServerError } from '../client/index.ts';
import { createServer, type HomeServer } from './app.ts';
import { injectFetch } from './inject-fetch.ts';

const ADMIN = 'test-admin-token-retry-0123456789';

/** A fetch that answers the scripted failures first (in order), then passes calls to the server. */
function flaky(
  server: HomeServer,
  script: ('429' | '503' | 'drop')[],
): { fetch: typeof fetch; calls: string[] } {
  const inner = injectFetch(server.app);
  const calls: string[] = [];
  const fetchFn = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const what = `${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`;
    calls.push(what);
    const next = script.shift();
    if (next === 'drop') throw new TypeError('fetch failed');
    if (next === '429' || next === '503') {
      const code = next === '429' ? 'QUOTA_EXCEEDED' : 'OVERLOADED';
      return new Response(JSON.stringify({ error: 'later', code }), {
        status: Number(next),
        headers: { 'content-type': 'application/json', 'retry-after': next === '429' ? '2' : '7' },
      });
    }
    return inner(input, init);
  };
  return { fetch: fetchFn, calls };
}

describe('client SDK retries', () => {
  const dir = mkdtempSync(join(tmpdir(), 'home-retry-'));
  let server: HomeServer;
  let token: string;
  before(async () => {
    server = await createServer({ dataDir: dir, adminToken: ADMIN });
    const reply = await server.app.inject({
      method: 'POST',
      url: '/v2/admin/tenants',
      headers: { authorization: `Bearer ${ADMIN}` },
      payload: { name: 'acme' },
    });
    token = reply.json().token;
  });
  after(async () => {
    await server.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('waits Retry-After on 429 and 503, backs off on a dropped connection, then answers', async () => {
    const { fetch, calls } = flaky(server, ['429', '503', 'drop']);
    const waits: number[] = [];
    const events: RetryEvent[] = [];
    const client = new ServeClient({
      server: 'http://in-process',
      token,
      fetch,
      sleep: async (ms) => {
        waits.push(ms);
      },
      onRetry: (e) => events.push(e),
    });
    assert.deepEqual(await client.models(), []);
    assert.deepEqual(waits, [2000, 7000, 2000]);
    assert.deepEqual(
      events.map((e) => [e.attempt, e.reason]),
      [
        [1, 'QUOTA_EXCEEDED'],
        [2, 'OVERLOADED'],
        [3, 'NETWORK'],
      ],
    );
    assert.equal(calls.length, 4);
  });

  it('gives up after the retry count, with the last answer; caps a long Retry-After', async () => {
    const { fetch, calls } = flaky(server, ['503', '503', '503']);
    const waits: number[] = [];
    const client = new ServeClient({
      server: 'http://in-process',
      token,
      fetch,
      retries: 2,
      maxRetryWaitMs: 5000,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    await assert.rejects(client.models(), (e) => e instanceof ServerError && e.code === 'OVERLOADED');
    assert.deepEqual(waits, [5000, 5000]);
    assert.equal(calls.length, 3);
  });

  it('does not resend a key upload over a dropped connection (it could store a second copy)', async () => {
    const { fetch, calls } = flaky(server, ['drop']);
    const client = new ServeClient({ server: 'http://in-process', token, fetch, sleep: async () => {} });
    await assert.rejects(client.uploadKeys('mnist', new Uint8Array(16)), TypeError);
    assert.deepEqual(calls, ['POST /v2/keys']);
  });
});
