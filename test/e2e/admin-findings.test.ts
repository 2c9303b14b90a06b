/**
 * Issue 9, point 5, in the admin API: each finding with the request that showed it.
 *
 * - HEAD answers like GET without a body (status and headers), or 405 with `Allow` and no body on a
 *   path without GET; never a body (it would corrupt the next answer on a kept-alive connection).
 * - A tenant key cannot learn whether another tenant uses an application id or an app token: it may
 *   not choose either (403 LK_FORBIDDEN, whoever holds the value); the server generates them.
 * - Malformed percent-escapes in a path parameter answer 400 LK_BAD_PATH, with or without a key,
 *   and the server keeps serving (they used to throw URIError out of the uWS callback and end the
 *   process). Sent over a raw socket so no client re-encodes them.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';

let h: Harness;
let tenantA: string;
let tenantB: string;

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  /** Every byte between this answer's header block and the next answer: the body. */
  rest: Buffer;
  /** Status of the GET /healthz sent after it on the same connection. */
  healthz: number;
}

/**
 * One request on a fresh TCP connection, the path sent byte for byte. Once its answer's header has
 * arrived, `GET /healthz` follows on the same connection (`Connection: close`): every byte between
 * the two answers is the first one's body, so "no body" needs no waiting, and the second answer
 * shows the server still serving. (uWS keeps a connection open after a HEAD answer even when asked
 * to close it, so the end of the connection cannot mark the end of that answer.)
 */
async function raw(method: string, path: string, opts: { key?: string } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port: h.server.adminPort, host: '127.0.0.1' });
    let all = Buffer.alloc(0);
    let followed = false;
    s.on('error', reject);
    s.on('connect', () => {
      s.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${opts.key ? `Authorization: Bearer ${opts.key}\r\n` : ''}\r\n`, 'latin1');
    });
    s.on('data', (d: Buffer) => {
      all = Buffer.concat([all, d]);
      if (!followed && all.includes('\r\n\r\n')) {
        followed = true;
        s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      }
    });
    s.on('end', () => {
      s.destroy();
      const end = all.indexOf('\r\n\r\n');
      const next = all.indexOf('HTTP/1.1 ', end + 4);
      if (end < 0 || next < 0) return reject(new Error(`not two answers to ${method} ${path} then GET /healthz: ${JSON.stringify(all.toString('latin1'))}`));
      const lines = all.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(lines[0]!.split(' ')[1]), headers, rest: all.subarray(end + 4, next), healthz: Number(all.subarray(next + 9, next + 12).toString('latin1')) });
    });
  });
}

/** The JSON body of a raw answer (Content-Length bytes). */
function json(a: RawAnswer): Record<string, unknown> {
  return JSON.parse(a.rest.subarray(0, Number(a.headers['content-length'])).toString('utf8')) as Record<string, unknown>;
}

async function call(method: string, path: string, key: string | null, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${h.adminUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

beforeAll(async () => {
  h = await startHarness();
  for (const id of ['fa', 'fb']) expect((await call('POST', '/admin/v1/tenants', h.rootKey, { id, name: id })).status).toBe(201);
  tenantA = (await call('POST', '/admin/v1/api-keys', h.rootKey, { name: 'a', tenantId: 'fa' })).body.token as string;
  tenantB = (await call('POST', '/admin/v1/api-keys', h.rootKey, { name: 'b', tenantId: 'fb' })).body.token as string;
});
afterAll(async () => {
  await h?.close();
});

describe('HEAD on admin routes', () => {
  it('answers like GET (status, content type and length) without a body', async () => {
    const get = await raw('GET', '/admin/v1/tenants', { key: h.rootKey });
    const head = await raw('HEAD', '/admin/v1/tenants', { key: h.rootKey });
    expect(get.status).toBe(200);
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toBe('application/json');
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
    expect(head.rest.length).toBe(0);
  });

  it('answers errors without a body too: 401 without a key, 404 for unknown paths and objects', async () => {
    for (const [path, key, status] of [
      ['/admin/v1/tenants', undefined, 401],
      ['/admin/v1/nothing-here', h.rootKey, 404],
      ['/admin/v1/tenants/no-such-tenant', h.rootKey, 404],
      ['/admin/openapi.json', undefined, 200],
      ['/healthz', undefined, 200],
      ['/metrics', undefined, 200],
      ['/no-such-path', undefined, 404],
    ] as const) {
      const r = await raw('HEAD', path, key ? { key } : {});
      expect([r.status, r.rest.length], path).toEqual([status, 0]);
    }
  });

  it('on a path without GET answers 405 with Allow and no body; every 405 names the allowed methods', async () => {
    const r = await raw('HEAD', '/admin/v1/node/drain', { key: h.rootKey });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('POST');
    expect(r.rest.length).toBe(0);
    const put = await raw('PUT', '/admin/v1/tenants', { key: h.rootKey });
    expect(put.status).toBe(405);
    expect(put.headers.allow?.split(', ').sort()).toEqual(['GET', 'HEAD', 'POST']);
    expect(json(put).code).toBe('LK_METHOD_NOT_ALLOWED');
  });
});

describe('a tenant key cannot tell whether another tenant uses an application id or app token', () => {
  it('may not choose an id or a token at all: the same 403 whether the value is free, its own or another tenant\'s', async () => {
    const own = await call('POST', '/admin/v1/tenants/fa/applications', h.rootKey, { id: 'fa-app', name: 'A', appToken: 'token-of-fa-app-1' });
    const other = await call('POST', '/admin/v1/tenants/fb/applications', h.rootKey, { id: 'fb-app', name: 'B', appToken: 'token-of-fb-app-1' });
    expect([own.status, other.status]).toEqual([201, 201]);
    for (const [key, tenant] of [[tenantA, 'fa'], [tenantB, 'fb']] as const) {
      const answers = [];
      for (const id of ['fa-app', 'fb-app', 'free-app-id']) answers.push(await call('POST', `/admin/v1/tenants/${tenant}/applications`, key, { id, name: 'x' }));
      for (const appToken of ['token-of-fa-app-1', 'token-of-fb-app-1', 'free-token-000001']) answers.push(await call('POST', `/admin/v1/tenants/${tenant}/applications`, key, { appToken, name: 'x' }));
      expect(answers.map((a) => [a.status, a.body.code]), tenant).toEqual(Array(6).fill([403, 'LK_FORBIDDEN']));
    }
    // Nothing was created by the refused calls.
    expect(((await call('GET', '/admin/v1/tenants/fa/applications', tenantA)).body.items as unknown[]).length).toBe(1);
  });

  it('creates with a generated id and token; a root key still chooses them (and gets the conflicts)', async () => {
    const a = await call('POST', '/admin/v1/tenants/fa/applications', tenantA, { name: 'generated' });
    expect(a.status).toBe(201);
    expect(a.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.body.appToken).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect((await call('POST', '/admin/v1/tenants/fb/applications', h.rootKey, { id: 'fa-app', name: 'x' })).body.code).toBe('LK_CONFLICT');
    expect((await call('POST', '/admin/v1/tenants/fb/applications', h.rootKey, { appToken: 'token-of-fa-app-1', name: 'x' })).body.code).toBe('LK_APP_TOKEN_TAKEN');
  });

  it('another tenant\'s tenant id answers as a missing one, with or without a chosen id', async () => {
    const other = await call('POST', '/admin/v1/tenants/fb/applications', tenantA, { id: 'x1', name: 'x' });
    const missing = await call('POST', '/admin/v1/tenants/nope/applications', tenantA, { id: 'x1', name: 'x' });
    expect([other.status, other.body.code]).toEqual([missing.status, missing.body.code]);
    expect(other.body.code).toBe('LK_TENANT_NOT_FOUND');
  });
});

describe('malformed percent-escapes in a path', () => {
  const BAD = ['%ZZ', '%', '%E0%A4%A', '%C3%28', 'a%2', '%%'];

  it('answer 400 LK_BAD_PATH with and without a key, and the server keeps serving', async () => {
    for (const bad of BAD) {
      for (const key of [undefined, h.rootKey, tenantA]) {
        for (const path of [`/admin/v1/tenants/${bad}`, `/admin/v1/applications/${bad}/credentials/${bad}`, `/admin/v1/bans/ip/${bad}`]) {
          const method = path.startsWith('/admin/v1/bans') ? 'DELETE' : 'GET';
          const r = await raw(method, path, key ? { key } : {});
          expect([r.status, json(r).code, r.healthz], `${method} ${path} ${key ? 'with' : 'without'} a key`).toEqual([400, 'LK_BAD_PATH', 200]);
        }
      }
      const head = await raw('HEAD', `/admin/v1/tenants/${bad}`);
      expect([head.status, head.rest.length]).toEqual([400, 0]);
    }
    const health = await fetch(`${h.adminUrl}/healthz`);
    expect(health.status).toBe(200);
    expect((await call('GET', '/admin/v1/tenants/fa', h.rootKey)).status).toBe(200);
    // A well-formed escape still decodes.
    expect((await call('GET', '/admin/v1/tenants/f%61', h.rootKey)).body).toMatchObject({ id: 'fa' });
  });
});
