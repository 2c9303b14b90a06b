/**
 * The admin router (src/admin/http.ts) on a bare uWS app (mountHttp, src/transport/http-uws.ts),
 * without a server around it: a stub authenticator and a few routes, so the plumbing is tested on
 * its own. Admin request metrics (src/admin/metrics.ts) on a registry of the test's own: counted by
 * method, route template and status, timed by method and route; unknown paths, methods and raw URLs
 * never add label values. Then what only a socket shows: the body bound as uWS reads it
 * (Content-Length and streamed), HEAD on the wire, a handler bug answered 500.
 * test/unit/admin-router.test.ts runs the real route table in-process.
 */
import net from 'node:net';
import { pino } from 'pino';
import client from 'prom-client';
import uWS from 'uWebSockets.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatchkeyError } from '../../src/errors.js';
import { AdminRouter, MAX_BODY_BYTES, type Authenticator, type Route } from '../../src/admin/http.js';
import type { HttpHandler } from '../../src/transport/http.js';
import { mountHttp } from '../../src/transport/http-uws.js';

const KEY = 'Bearer good';
const auth: Authenticator = {
  async authenticate(header) {
    if (!header) throw new LatchkeyError('LK_AUTH_REQUIRED');
    if (header !== KEY) throw new LatchkeyError('LK_AUTH_INVALID');
    return { id: 'key-1', tenantId: null };
  },
};

const routes: Route[] = [
  { method: 'GET', path: '/admin/v1/things/{id}', scope: 'root', summary: 'a thing', responses: { 200: { description: 'it' } }, handler: async (ctx) => ({ status: 200, body: { id: ctx.params.id } }) },
  { method: 'DELETE', path: '/admin/v1/things/{id}', scope: 'root', summary: 'drop it', responses: { 204: { description: 'gone' } }, handler: async () => ({ status: 204 }) },
  {
    method: 'POST', path: '/admin/v1/things', scope: 'root', summary: 'make one', responses: { 201: { description: 'made' } },
    body: { type: 'object', properties: { text: { type: 'string' } }, additionalProperties: false },
    handler: async (ctx) => ({ status: 201, body: { length: (ctx.body.text as string).length } }),
  },
  { method: 'GET', path: '/readyz', scope: 'public', summary: 'ready', responses: { 200: { description: 'yes' } }, handler: async () => ({ status: 200, body: { status: 'ready' } }) },
];

/** A handler with a bug: every request rejects (mountHttp answers 500 and reports it). */
const buggy: HttpHandler = { paths: ['/buggy'], maxBodyBytes: 1024, handle: async () => { throw new Error('bug'); } };
let bugs = 0;

let registry: client.Registry;
let listen: uWS.us_listen_socket;
let base: string;

beforeAll(async () => {
  registry = new client.Registry();
  const app = uWS.App();
  const log = pino({ level: 'silent' });
  mountHttp(app, new AdminRouter(routes, auth, log, { registry }), { log });
  mountHttp(app, buggy, { log, onHandlerError: () => bugs++ });
  listen = await new Promise<uWS.us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('listen failed')))));
  base = `http://127.0.0.1:${uWS.us_socket_local_port(listen as unknown as uWS.us_socket)}`;
});
afterAll(() => {
  uWS.us_listen_socket_close(listen);
});

async function send(method: string, path: string, key: string | null = KEY): Promise<number> {
  const r = await fetch(`${base}${path}`, { method, headers: key ? { authorization: key } : {} });
  await r.arrayBuffer();
  return r.status;
}

describe('admin request metrics', () => {
  it('counts by method, route template and status, and times by method and route', async () => {
    expect(await send('GET', '/admin/v1/things/a')).toBe(200);
    expect(await send('GET', '/admin/v1/things/b')).toBe(200);
    expect(await send('GET', '/admin/v1/things/c', null)).toBe(401);
    expect(await send('HEAD', '/admin/v1/things/a')).toBe(200);
    expect(await send('DELETE', '/admin/v1/things/a')).toBe(204);
    expect(await send('PUT', '/admin/v1/things/a')).toBe(405);
    expect(await send('GET', '/admin/v1/things/%ZZ')).toBe(400);
    expect(await send('GET', '/readyz', null)).toBe(200);
    for (let i = 0; i < 5; i++) expect(await send('GET', `/admin/v1/scan-${i}`)).toBe(404);
    expect(await send('PATCH', '/admin/v1/things/a')).toBe(405);

    const text = await registry.metrics();
    const T = '/admin/v1/things/{id}';
    for (const [labels, n] of [
      [`method="GET",route="${T}",status="200"`, 2],
      [`method="GET",route="${T}",status="401"`, 1],
      [`method="HEAD",route="${T}",status="200"`, 1],
      [`method="DELETE",route="${T}",status="204"`, 1],
      [`method="PUT",route="${T}",status="405"`, 1],
      [`method="GET",route="${T}",status="400"`, 1],
      ['method="GET",route="/readyz",status="200"', 1],
      ['method="GET",route="unmatched",status="404"', 5],
      [`method="OTHER",route="${T}",status="405"`, 1],
    ] as const) {
      expect(text, labels).toContain(`latchkey_admin_requests_total{${labels}} ${n}\n`);
    }
    expect(text).toContain(`latchkey_admin_request_duration_seconds_count{method="GET",route="${T}"} 4\n`);
    expect(text).toContain('latchkey_admin_request_duration_seconds_count{method="GET",route="unmatched"} 5\n');
    // No raw URL became a label value.
    expect(text).not.toMatch(/things\/a"|scan-|%ZZ/);
  });
});

describe('the listener (transport/http-uws.ts)', () => {
  const post = (body: BodyInit, extra: RequestInit = {}) =>
    fetch(`${base}/admin/v1/things`, { method: 'POST', headers: { authorization: KEY }, body, ...extra });
  /** A body sent in `n` chunks without a Content-Length (chunked transfer encoding). */
  const streamed = (text: string, n: number): ReadableStream<Uint8Array> => {
    const bytes = Buffer.from(text);
    const step = Math.ceil(bytes.length / n);
    let at = 0;
    return new ReadableStream({
      pull(c) {
        if (at >= bytes.length) return c.close();
        c.enqueue(bytes.subarray(at, (at += step)));
      },
    });
  };

  it('reads a body up to the bound, whole or in chunks, and answers 413 past it', async () => {
    const under = JSON.stringify({ text: 'x'.repeat(MAX_BODY_BYTES - 20) });
    const over = JSON.stringify({ text: 'x'.repeat(MAX_BODY_BYTES) });
    const whole = await post(under);
    expect([whole.status, await whole.json()]).toEqual([201, { length: MAX_BODY_BYTES - 20 }]);
    const chunked = await post(streamed(under, 7), { duplex: 'half' } as RequestInit);
    expect([chunked.status, await chunked.json()]).toEqual([201, { length: MAX_BODY_BYTES - 20 }]);
    const announced = await post(over);
    expect([announced.status, ((await announced.json()) as { code: string }).code]).toEqual([413, 'LK_BODY_TOO_LARGE']);
    const streamedOver = await post(streamed(over, 7), { duplex: 'half' } as RequestInit);
    expect([streamedOver.status, ((await streamedOver.json()) as { code: string }).code]).toEqual([413, 'LK_BODY_TOO_LARGE']);
  });

  it('answers HEAD with the GET status, headers and length, and no body', async () => {
    const get = await fetch(`${base}/admin/v1/things/abc`, { headers: { authorization: KEY } });
    const text = await get.text();
    const head = await fetch(`${base}/admin/v1/things/abc`, { method: 'HEAD', headers: { authorization: KEY } });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('application/json');
    expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
    expect(await head.text()).toBe('');
    const noGet = await fetch(`${base}/admin/v1/things`, { method: 'HEAD', headers: { authorization: KEY } });
    expect([noGet.status, noGet.headers.get('allow'), await noGet.text()]).toEqual([405, 'POST', '']);
  });

  it('answers a refusal (404, 405, LK_BAD_PATH) without waiting for the body it announced', async () => {
    const port = uWS.us_socket_local_port(listen as unknown as uWS.us_socket);
    for (const [method, path, status] of [['POST', '/admin/v1/nowhere', 404], ['PUT', '/admin/v1/things', 405], ['DELETE', '/admin/v1/things/%ZZ', 400]] as const) {
      const head = await new Promise<string>((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1', () => sock.write(`${method} ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${KEY}\r\nContent-Length: 1000\r\n\r\n{"partial`));
        let got = '';
        const timer = setTimeout(() => reject(new Error(`${method} ${path}: no answer in 2 s`)), 2000);
        sock.on('data', (d: Buffer) => {
          got += d.toString('latin1');
          if (got.includes('\r\n\r\n')) {
            clearTimeout(timer);
            sock.destroy();
            resolve(got);
          }
        });
        sock.on('error', reject);
      });
      expect(head.split('\r\n')[0], `${method} ${path}`).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    }
  });

  it('a handler that rejects answers 500 LK_INTERNAL, is reported, and the listener keeps serving', async () => {
    const r = await fetch(`${base}/buggy`);
    expect([r.status, ((await r.json()) as { code: string }).code]).toEqual([500, 'LK_INTERNAL']);
    expect(bugs).toBe(1);
    expect(await send('GET', '/admin/v1/things/a')).toBe(200);
  });
});
