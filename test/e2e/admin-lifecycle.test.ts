/**
 * The operator's flows through the admin API, end to end with SDK endpoints:
 * provision -> connect -> revoke (DISCONNECT CREDENTIALS_REVOKED within 1 s) -> reconnect refused ->
 * REVOKED after a restart; and server key rotation that does not drop live sessions.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { EndpointClient, exportEndpointKeys, generateEndpointKeys, type DisconnectInfo, type EndpointKeys } from '../../src/sdk/index.js';
import { startHarness, tempDir, type Harness } from '../helpers/harness.js';
import { withTimeout } from '../helpers/ws.js';

const dir = tempDir();
let h: Harness;
let rootKey = '';
afterAll(async () => {
  await h?.close();
});

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${h.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${rootKey}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

function client(appToken: string, k: EndpointKeys, serverKey: { id: string; spki: string }): EndpointClient {
  return new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken, serverKey, keys: k });
}

describe('admin lifecycle', () => {
  it('revocation through the API ends the session within 1 s, refuses the reconnect, and persists', async () => {
    h = await startHarness({}, dir);
    rootKey = h.rootKey;
    await api('POST', '/admin/v1/tenants', { id: 'acme', name: 'Acme' });
    const app = (await api('POST', '/admin/v1/tenants/acme/applications', { id: 'thermo', name: 'Thermo', credentialsService: 'internal' })).body;
    const k = await generateEndpointKeys();
    const { publicKeyPem } = await exportEndpointKeys(k);
    expect((await api('POST', '/admin/v1/applications/thermo/credentials', { publicKey: publicKeyPem })).status).toBe(201);
    const serverKey = { id: h.serverKeyId, spki: h.server.keyRing.active.publicKeyPem };
    const c = client(app.appToken as string, k, serverKey);
    expect((await c.connect()).ok).toBe(true);
    expect(((await api('GET', '/admin/v1/applications/thermo/sessions')).body.items as unknown[]).length).toBe(1);

    const disconnected = new Promise<DisconnectInfo>((resolve) => c.onDisconnect(resolve));
    const t0 = Date.now();
    expect(await api('POST', `/admin/v1/applications/thermo/credentials/${k.keyHash}/revoke`)).toMatchObject({ status: 200, body: { status: 'REVOKED' } });
    expect(await withTimeout(disconnected, 1000, 'DISCONNECT')).toMatchObject({ reason: 'CREDENTIALS_REVOKED' });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await client(app.appToken as string, k, serverKey).connect()).toMatchObject({ ok: false, code: 'REFUSE_VERIFICATION_FAILED', errorCode: 'LK_CRED_REVOKED' });

    await h.close({ keepData: true });
    h = await startHarness({}, dir);
    expect(h.rootKey).toBe(''); // the key ring and API keys survived: no new root key was created
    expect(await api('GET', `/admin/v1/applications/thermo/credentials/${k.keyHash}`)).toMatchObject({ status: 200, body: { status: 'REVOKED' } });
  });

  it('rotates server keys without dropping live sessions; a retired key is refused for new sessions', async () => {
    const app = (await api('POST', '/admin/v1/tenants/acme/applications', { id: 'rot', name: 'Rotation' })).body;
    const oldKey = { id: h.server.keyRing.active.id, spki: h.server.keyRing.active.publicKeyPem };
    const live = client(app.appToken as string, await generateEndpointKeys(), oldKey);
    expect((await live.connect()).ok).toBe(true);

    const added = (await api('POST', '/admin/v1/server-keys')).body;
    const newKey = { id: added.id as string, spki: added.publicKey as string };
    expect(await live.ping()).toBeGreaterThanOrEqual(0);
    const fresh = client(app.appToken as string, await generateEndpointKeys(), newKey);
    expect((await fresh.connect()).ok).toBe(true);
    const stillOld = client(app.appToken as string, await generateEndpointKeys(), oldKey);
    expect((await stillOld.connect()).ok).toBe(true);

    expect((await api('POST', `/admin/v1/server-keys/${oldKey.id}/retire`)).status).toBe(200);
    expect(await client(app.appToken as string, await generateEndpointKeys(), oldKey).connect()).toMatchObject({ ok: false, errorCode: 'LK_HS_UNKNOWN_SERVER_KEY' });
    // Sessions opened with the retired key live on.
    expect(await live.ping()).toBeGreaterThanOrEqual(0);
    expect(await stillOld.ping()).toBeGreaterThanOrEqual(0);
    for (const c of [live, fresh, stillOld]) await c.close();
  });
});
