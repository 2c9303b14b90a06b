/** /metrics (Prometheus text) and /healthz on the admin listener. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, startHarness, type Harness } from '../helpers/harness.js';
import { makeEndpointKey, prepareConnect } from '../helpers/wire-client.js';
import { openRaw, withTimeout } from '../helpers/ws.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('observability', () => {
  it('exposes sessions, handshakes by outcome, handshake latency, crypto queue, store and cache latency', async () => {
    const app = await h.app();
    const s = await openRaw(h.url);
    s.send(prepareConnect({ appToken: app.appToken, serverKeyId: h.serverKeyId, serverPublicKey: h.serverSpki, key: makeEndpointKey() }).frame);
    await s.decoded(0);
    const bad = await openRaw(h.url);
    bad.send(prepareConnect({ appToken: 'unknown-token-1', serverKeyId: h.serverKeyId, serverPublicKey: h.serverSpki, key: makeEndpointKey() }).frame);
    await bad.decoded(0);
    const r = await fetch(`${h.adminUrl}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    const text = await r.text();
    expect(text).toMatch(/^latchkey_sessions_open 1$/m);
    expect(text).toMatch(/^latchkey_handshakes_total\{result="accepted"\} 1$/m);
    expect(text).toMatch(/^latchkey_handshakes_total\{result="LK_HS_UNKNOWN_APPLICATION"\} 1$/m);
    expect(text).toMatch(/^latchkey_handshake_duration_seconds_count\{result="accepted"\} 1$/m);
    expect(text).toMatch(/^latchkey_crypto_queue_depth 0$/m);
    expect(text).toMatch(/^latchkey_crypto_handshakes_total 1$/m);
    expect(text).toMatch(/^latchkey_store_operation_duration_seconds_count\{op="getApplicationByToken"\} \d+$/m);
    expect(text).toMatch(/^latchkey_cache_operation_duration_seconds_count\{op="get"\} \d+$/m);
    expect(text).toContain('latchkey_process_');
    s.close();
    await withTimeout(s.closed, 3000, 'close');
    await withTimeout(bad.closed, 3000, 'close');
    const health = (await (await fetch(`${h.adminUrl}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', uws: 'native' });
  });

  it('counts and times admin requests by method and route template (unknown paths: route="unmatched")', async () => {
    expect((await adminApi(h, 'GET', '/admin/v1/tenants')).status).toBe(200);
    expect((await adminApi(h, 'GET', '/admin/v1/tenants/no-such-tenant')).status).toBe(404);
    expect((await adminApi(h, 'GET', '/admin/v1/no/such/path')).status).toBe(404);
    const text = await (await fetch(`${h.adminUrl}/metrics`)).text();
    const wired = 'src/server.ts passes the Stats registry to the admin router: new AdminRouter(routes, auth, log, { registry: stats.registry })';
    expect(text, wired).toMatch(/^latchkey_admin_requests_total\{method="GET",route="\/admin\/v1\/tenants",status="200"\} 1$/m);
    expect(text).toMatch(/^latchkey_admin_requests_total\{method="GET",route="\/admin\/v1\/tenants\/\{tenantId\}",status="404"\} 1$/m);
    expect(text).toMatch(/^latchkey_admin_requests_total\{method="GET",route="unmatched",status="404"\} 1$/m);
    expect(text).toMatch(/^latchkey_admin_request_duration_seconds_count\{method="GET",route="\/admin\/v1\/tenants"\} 1$/m);
    expect(text).not.toContain('no-such-tenant');
  });
});
