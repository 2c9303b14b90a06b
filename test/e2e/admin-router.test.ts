/**
 * The admin router (src/admin/http.ts) on a bare uWS app, without a server around it: a stub
 * authenticator and a few routes, so the plumbing is tested on its own. Admin request metrics
 * (src/admin/metrics.ts) on a registry of the test's own: counted by method, route template and
 * status, timed by method and route; unknown paths, methods and raw URLs never add label values.
 */
import { pino } from 'pino';
import client from 'prom-client';
import uWS from 'uWebSockets.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatchkeyError } from '../../src/errors.js';
import { AdminRouter, type Authenticator, type Route } from '../../src/admin/http.js';

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
  { method: 'GET', path: '/readyz', scope: 'public', summary: 'ready', responses: { 200: { description: 'yes' } }, handler: async () => ({ status: 200, body: { status: 'ready' } }) },
];

let registry: client.Registry;
let listen: uWS.us_listen_socket;
let base: string;

beforeAll(async () => {
  registry = new client.Registry();
  const app = uWS.App();
  new AdminRouter(routes, auth, pino({ level: 'silent' }), { registry }).mount(app);
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
