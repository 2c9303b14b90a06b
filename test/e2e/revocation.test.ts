/**
 * Revocation ends live sessions at once, invalidates the cached status, refuses the reconnect
 * before any RSA work, closes the race with a handshake in flight, and survives a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys, type DisconnectInfo, type EndpointKeys } from '../../src/sdk/index.js';
import { startHarness, tempDir, type Harness } from '../helpers/harness.js';
import { withTimeout } from '../helpers/ws.js';
import type { Application } from '../../src/store/store.js';

let h: Harness;
let app: Application;
const dir = tempDir();

beforeAll(async () => {
  h = await startHarness({}, dir);
  app = await h.app({ credentialsService: 'internal' });
});
afterAll(async () => {
  await h?.close();
});

function client(k: EndpointKeys): EndpointClient {
  return new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: app.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys: k, reconnect: { minDelayMs: 20, maxDelayMs: 50, maxAttempts: 3 } });
}

describe('revocation', () => {
  it('ends the live session within 1 s with CREDENTIALS_REVOKED and refuses the reconnect without RSA work; REVOKED survives a restart', async () => {
    const k = await generateEndpointKeys();
    await h.server.store.provisionCredentials(app.id, k.keyHash, Buffer.from(k.spki));
    const c = client(k);
    expect((await c.connect()).ok).toBe(true);
    const disconnected = new Promise<DisconnectInfo>((resolve) => c.onDisconnect(resolve));
    const t0 = Date.now();
    const rec = await h.server.revocation.revoke(app, k.keyHash);
    expect(rec?.record.status).toBe('REVOKED');
    expect(rec?.propagation).toEqual({ endedHere: 1, log: 'written', bus: 'local' });
    const info = await withTimeout(disconnected, 1000, 'DISCONNECT CREDENTIALS_REVOKED');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(info).toMatchObject({ reason: 'CREDENTIALS_REVOKED', errorCode: 'LK_CRED_REVOKED', willReconnect: false });

    const before = h.server.pool.tasksRun;
    const again = await client(k).connect();
    expect(again).toMatchObject({ ok: false, kind: 'refused', code: 'REFUSE_VERIFICATION_FAILED', errorCode: 'LK_CRED_REVOKED' });
    expect(h.server.pool.tasksRun).toBe(before);

    await h.close({ keepData: true });
    h = await startHarness({}, dir);
    expect((await h.server.store.getCredentials(app.id, k.keyHash))?.status).toBe('REVOKED');
    const afterRestart = await client(k).connect();
    expect(afterRestart).toMatchObject({ ok: false, code: 'REFUSE_VERIFICATION_FAILED', errorCode: 'LK_CRED_REVOKED' });
  });

  it('refuses a handshake that read the old status before the revocation', async () => {
    const k = await generateEndpointKeys();
    await h.server.store.provisionCredentials(app.id, k.keyHash, Buffer.from(k.spki));
    const c = client(k);
    expect((await c.connect()).ok).toBe(true);
    await c.close();
    // Hold the next handshake in the crypto pool until the revocation has run.
    const pool = h.server.pool;
    const orig = pool.handshake.bind(pool);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    pool.handshake = async (task) => {
      await gate;
      return orig(task);
    };
    try {
      const pending = client(k).connect();
      await new Promise((r) => setTimeout(r, 200));
      await h.server.revocation.revoke(app, k.keyHash);
      release();
      expect(await pending).toMatchObject({ ok: false, code: 'REFUSE_VERIFICATION_FAILED', errorCode: 'LK_CRED_REVOKED' });
    } finally {
      pool.handshake = orig;
    }
  });

  it('notifyRevoked (external credentials store) ends the session too', async () => {
    const k = await generateEndpointKeys();
    await h.server.store.provisionCredentials(app.id, k.keyHash, Buffer.from(k.spki));
    const c = client(k);
    expect((await c.connect()).ok).toBe(true);
    const disconnected = new Promise<DisconnectInfo>((resolve) => c.onDisconnect(resolve));
    await h.server.revocation.notifyRevoked(app, k.keyHash);
    expect(await withTimeout(disconnected, 1000, 'disconnect')).toMatchObject({ reason: 'CREDENTIALS_REVOKED' });
  });
});
