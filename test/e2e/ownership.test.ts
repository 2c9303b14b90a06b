/**
 * Ownership end to end with SDK endpoints (Kaa's owner access token and endpoint access token
 * flows): A attaches with a verifier; B publishes its access token; A attaches B; B is notified;
 * C of another owner cannot detach B; A detaches B; B is notified, also when offline (at its next
 * connect).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys, type EndpointKeys } from '../../src/sdk/index.js';
import { adminApi, startHarness, trustfulDefaultVerifier, type Harness } from '../helpers/harness.js';
import { withTimeout } from '../helpers/ws.js';
import type { Application } from '../../src/store/store.js';

let h: Harness;
let app: Application;
let verifierToken = '';

const api = (method: string, path: string, body?: unknown): ReturnType<typeof adminApi> => adminApi(h, method, path, body);

beforeAll(async () => {
  h = await startHarness();
  app = await h.app();
  verifierToken = await trustfulDefaultVerifier(h, app.id);
});
afterAll(async () => {
  await h?.close();
});

async function endpoint(): Promise<{ c: EndpointClient; k: EndpointKeys }> {
  const k = await generateEndpointKeys();
  const c = new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: app.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys: k });
  expect((await c.connect({ profile: new TextEncoder().encode('{}') })).ok).toBe(true);
  return { c, k };
}

describe('ownership', () => {
  it('attach with a verifier, endpoint access token attach, notifications, detach rules', async () => {
    const a = await endpoint();
    const b = await endpoint();
    const c = await endpoint();
    expect(await a.c.attachUser('alice', 'any-token', verifierToken)).toEqual({ ok: true });
    expect(await c.c.attachUser('carol', 'any-token')).toEqual({ ok: true }); // default verifier

    await b.c.setEndpointAccessToken('b-secret-token');
    const attached = new Promise((resolve) => b.c.onAttached(resolve));
    expect(await a.c.attachEndpoint('b-secret-token')).toBe(b.k.keyHash);
    expect(await withTimeout(attached, 2000, 'attach notification')).toEqual({ ownerExternalId: 'alice', byEndpointKeyHash: a.k.keyHash });
    const owned = await api('GET', `/admin/v1/tenants/${app.tenantId}/owners/alice/endpoints`);
    expect((owned.body.items as Array<{ keyHash: string }>).map((x) => x.keyHash).sort()).toEqual([a.k.keyHash, b.k.keyHash].sort());

    // C belongs to another owner: it can neither detach B nor attach it with B's token.
    expect(await c.c.detachEndpoint(b.k.keyHash)).toBe(false);
    expect(await c.c.attachEndpoint('b-secret-token')).toBeNull();

    const detached = new Promise((resolve) => b.c.onDetached(resolve));
    expect(await a.c.detachEndpoint(b.k.keyHash)).toBe(true);
    expect(await withTimeout(detached, 2000, 'detach notification')).toEqual({ byEndpointKeyHash: a.k.keyHash });
    const after = await api('GET', `/admin/v1/tenants/${app.tenantId}/owners/alice/endpoints`);
    expect((after.body.items as Array<{ keyHash: string }>).map((x) => x.keyHash)).toEqual([a.k.keyHash]);
    for (const e of [a, b, c]) await e.c.close();
  });

  it('an offline endpoint gets its notification at the next connect', async () => {
    const a = await endpoint();
    const b = await endpoint();
    expect(await a.c.attachUser('bob', 't')).toEqual({ ok: true });
    await b.c.setEndpointAccessToken('token-of-b-2');
    expect(await a.c.attachEndpoint('token-of-b-2')).toBe(b.k.keyHash);
    await b.c.close();
    expect(await a.c.detachEndpoint(b.k.keyHash)).toBe(true);
    const detached = new Promise((resolve) => b.c.onDetached(resolve));
    expect((await b.c.connect()).ok).toBe(true);
    // The attach notification (sent while B was online) was delivered then; only the detach waits.
    expect(await withTimeout(detached, 2000, 'queued detach notification')).toEqual({ byEndpointKeyHash: a.k.keyHash });
    await a.c.close();
    await b.c.close();
  });

  it('reports NO_VERIFIER_CONFIGURED and verifier failures', async () => {
    const other = await h.app();
    const k = await generateEndpointKeys();
    const c = new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: other.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys: k });
    // Not registered yet: nothing but PROFILE_RESYNC (register first, as in Kaa).
    expect((await c.connect()).ok).toBe(true);
    expect(await c.attachUser('x', 'y')).toMatchObject({ ok: false, code: 'LK_PROFILE_REQUIRED' });
    await c.register(new TextEncoder().encode('{}'));
    expect(await c.attachUser('x', 'y')).toMatchObject({ ok: false, code: 'NO_VERIFIER_CONFIGURED' });
    expect(await c.attachUser('x', 'y', 'no-such-verifier')).toMatchObject({ ok: false, code: 'NO_VERIFIER_CONFIGURED' });
    await c.close();
  });
});
