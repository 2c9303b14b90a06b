/**
 * The endpoint SDK (WebCrypto + WHATWG WebSocket) against a real server: connect, register with a
 * profile, ping, disconnect; typed refusals; registration semantics; reconnect with backoff.
 */
import avro from 'avsc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys, type ConnectResult, type EndpointKeys } from '../../src/sdk/index.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { openRaw, withTimeout } from '../helpers/ws.js';
import type { Application } from '../../src/store/store.js';

const profileSchema = JSON.stringify({
  type: 'record',
  name: 'ThermostatProfile',
  fields: [
    { name: 'model', type: 'string' },
    { name: 'firmware', type: 'int' },
  ],
});
const profileType = avro.Type.forSchema(JSON.parse(profileSchema) as avro.Schema);

let h: Harness;
let app: Application;
let schemaApp: Application;
let internalApp: Application;
let keys: EndpointKeys;

beforeAll(async () => {
  h = await startHarness();
  app = await h.app();
  schemaApp = await h.app({ profileSchema });
  internalApp = await h.app({ credentialsService: 'internal' });
  keys = await generateEndpointKeys();
});
afterAll(async () => {
  await h?.close();
});

function client(a: Application, k: EndpointKeys, extra: Partial<ConstructorParameters<typeof EndpointClient>[0]> = {}): EndpointClient {
  return new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: a.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys: k, ...extra });
}

describe('SDK', () => {
  it('connects, registers with a profile, pings and disconnects', async () => {
    const c = client(schemaApp, keys);
    const profile = profileType.toBuffer({ model: 'T-1000', firmware: 7 });
    const r = await c.connect({ profile });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.sync?.status).toBe('SUCCESS');
    expect(r.sync?.profileSyncResponse?.responseStatus).toBe('DELTA');
    expect(await c.ping()).toBeGreaterThanOrEqual(0);
    const again = await c.register(profile);
    expect(again.profileSyncResponse?.responseStatus).toBe('NO_DELTA');
    const ep = await h.server.store.getEndpoint(schemaApp.id, keys.keyHash);
    expect(ep?.profileBody.equals(profile)).toBe(true);
    await c.close();
    expect(c.connected).toBe(false);
  });

  it('refuses a profile that does not match the application schema, keeping the session', async () => {
    const k = await generateEndpointKeys();
    const c = client(schemaApp, k);
    expect((await c.connect()).ok).toBe(true);
    const bad = await c.register(new Uint8Array([1, 2, 3]));
    expect(bad.status).toBe('FAILURE');
    expect(bad.errorCode).toBe('LK_PROFILE_SCHEMA_MISMATCH');
    expect(await h.server.store.getEndpoint(schemaApp.id, k.keyHash)).toBeNull();
    const good = await c.register(profileType.toBuffer({ model: 'x', firmware: 1 }));
    expect(good.status).toBe('SUCCESS');
    await c.close();
  });

  it('asks an unregistered endpoint for its profile (PROFILE_RESYNC)', async () => {
    const k = await generateEndpointKeys();
    const c = client(app, k);
    expect((await c.connect()).ok).toBe(true);
    const res = await c.sync(() => undefined);
    expect(res.status).toBe('PROFILE_RESYNC');
    expect(res.errorCode).toBe('LK_PROFILE_REQUIRED');
    await c.register(new TextEncoder().encode('{"hello":1}'));
    const stale = await c.sync((req) => {
      req.syncRequestMetaData = { profileHash: Buffer.alloc(32), timeout: null };
    });
    expect(stale.status).toBe('PROFILE_RESYNC');
    await c.close();
  });

  it('copies a server-side profile provisioned before the first connect', async () => {
    const k = await generateEndpointKeys();
    await h.server.store.provisionCredentials(internalApp.id, k.keyHash, Buffer.from(k.spki));
    await h.server.store.provisionRegistration(internalApp.id, k.keyHash, JSON.stringify({ room: 'kitchen' }));
    const c = client(internalApp, k, { sendPublicKey: 'auto' });
    const r = await c.connect({ profile: new Uint8Array([9]) });
    expect(r.ok).toBe(true);
    const ep = await h.server.store.getEndpoint(internalApp.id, k.keyHash);
    expect(JSON.parse(ep!.serverProfileBody!)).toEqual({ room: 'kitchen' });
    await c.close();
  });

  it('returns typed refusals', async () => {
    const k = await generateEndpointKeys();
    const unknownApp = client({ ...app, appToken: 'does-not-exist' }, k);
    const r1 = await unknownApp.connect();
    expect(r1).toMatchObject({ ok: false, kind: 'refused', code: 'REFUSE_ID_REJECT', errorCode: 'LK_HS_UNKNOWN_APPLICATION', retryable: false });
    const r2 = await client(internalApp, k).connect();
    expect(r2).toMatchObject({ ok: false, kind: 'refused', code: 'REFUSE_VERIFICATION_FAILED', errorCode: 'LK_CRED_UNKNOWN' });
    const skewed = await client(app, k, { now: () => Date.now() - 3_600_000 }).connect();
    expect(skewed).toMatchObject({ ok: false, kind: 'refused', code: 'REFUSE_BAD_PROTOCOL', errorCode: 'LK_HS_STALE_TIMESTAMP', retryable: false });
    const noServer = await new EndpointClient({ url: 'ws://127.0.0.1:1', appToken: app.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys: k }).connect();
    expect(noServer).toMatchObject({ ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', retryable: true });
  });

  it('omits the public key once accepted (sendPublicKey auto)', async () => {
    const k = await generateEndpointKeys();
    // resume: false, or the second connect would be a RESUME (which never carries the key).
    const c = client(app, k, { sendPublicKey: 'auto', resume: false });
    expect((await c.connect()).ok).toBe(true);
    await c.close();
    expect((await c.connect()).ok).toBe(true);
    await c.close();
  });

  it('reconnects with backoff after a session is replaced', async () => {
    const k = await generateEndpointKeys();
    const c = client(app, k, { reconnect: { minDelayMs: 20, maxDelayMs: 100, maxAttempts: 5 } });
    expect((await c.connect()).ok).toBe(true);
    const disconnected = new Promise((resolve) => c.onDisconnect(resolve));
    const reconnected = new Promise((resolve) => c.onReconnect(resolve));
    // Kick it from the server side: a shutdown-class DISCONNECT is in the reconnect range.
    h.server.registry.byEndpointKey(app.id, k.keyHash)!.end('LK_SERVER_BUSY');
    expect(await withTimeout(disconnected, 3000, 'disconnect')).toMatchObject({ errorCode: 'LK_SERVER_BUSY', willReconnect: true });
    expect(await withTimeout(reconnected, 5000, 'reconnect')).toMatchObject({ ok: true });
    expect(c.connected).toBe(true);
    await c.close();
  });

  it('does not reconnect after a terminal disconnect', async () => {
    const k = await generateEndpointKeys();
    const c = client(app, k, { reconnect: { minDelayMs: 10, maxDelayMs: 20 } });
    expect((await c.connect()).ok).toBe(true);
    const disconnected = new Promise((resolve) => c.onDisconnect(resolve));
    h.server.registry.byEndpointKey(app.id, k.keyHash)!.end('LK_CRED_REVOKED');
    expect(await withTimeout(disconnected, 3000, 'disconnect')).toMatchObject({ reason: 'CREDENTIALS_REVOKED', errorCode: 'LK_CRED_REVOKED', willReconnect: false });
    await c.close();
  });
});

describe('SDK concurrency and lifecycle', () => {
  it('sends concurrent SyncRequests in counter order', async () => {
    const k = await generateEndpointKeys();
    const c = client(app, k);
    expect((await c.connect()).ok).toBe(true);
    const big = new Uint8Array(20_000).fill(7);
    const results = await Promise.all([c.register(big), c.sync(() => undefined), c.register(new Uint8Array([1])), c.sync(() => undefined), c.register(big)]);
    expect(results.map((r) => r.status)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS']);
    expect(c.connected).toBe(true);
    await c.close();
  });

  it('close() during connect leaves no session behind', async () => {
    const k = await generateEndpointKeys();
    const c = client(app, k);
    const pending = c.connect();
    await c.close();
    const r = await pending;
    expect(r.ok).toBe(false);
    expect(c.connected).toBe(false);
    await new Promise((res) => setTimeout(res, 100));
    expect(h.server.registry.byEndpointKey(app.id, k.keyHash)).toBeUndefined();
  });
});

describe('SDK and a paced refusal (docs/protocol.md 1.1)', () => {
  it('waits the return time a busy server gives (close 4003 with retryAfterMs) instead of its backoff, then connects', async () => {
    // One handshake in progress at most: a silent socket holds the place while the client reconnects.
    const busy = await startHarness({ maxPendingHandshakes: 1 });
    try {
      const a = await busy.app();
      const k = await generateEndpointKeys();
      const c = new EndpointClient({ url: `ws://127.0.0.1:${busy.server.port}`, appToken: a.appToken, serverKey: { id: busy.serverKeyId, spki: busy.serverSpki }, keys: k, reconnect: { minDelayMs: 20, maxDelayMs: 50 } });
      expect((await c.connect()).ok).toBe(true);
      const results: Array<{ at: number; r: ConnectResult }> = [];
      const back = new Promise<void>((resolve) => c.onReconnect((r) => (results.push({ at: Date.now(), r }), r.ok && resolve())));
      const silent = await openRaw(busy.url);
      busy.server.registry.byEndpointKey(a.id, k.keyHash)!.end('LK_SERVER_BUSY');
      // The first attempt (after 20-50 ms of backoff) is refused with a return time of ~1 s.
      for (let i = 0; i < 100 && results.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      const first = results[0]!.r;
      expect(first).toMatchObject({ ok: false, code: 'LK_SDK_CONNECTION_FAILED', retryable: true });
      const wait = (first as { retryAfterMs?: number }).retryAfterMs!;
      expect(wait).toBeGreaterThanOrEqual(1000);
      expect(wait).toBeLessThan(1500);
      silent.close();
      await withTimeout(back, 5000, 'reconnect after the return time');
      // No attempt in between: the backoff (20-50 ms) would have made dozens.
      expect(results).toHaveLength(2);
      expect(results[1]!.at - results[0]!.at).toBeGreaterThanOrEqual(wait - 20);
      await c.close();
    } finally {
      await busy.close();
    }
  });
});
