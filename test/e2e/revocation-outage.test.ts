/**
 * A revocation is never forgotten (issue 9): with the cluster's Redis killed, a revoke taken by node
 * A ends A's own session at once and B's within a bounded time (controlPollMs, read from the store's
 * control log), the admin answer says what is committed, and after Redis comes back the revoked key
 * gets no session on either node. Real parts: a private redis-server stopped and started again, two
 * nodes sharing one embedded store (as two processes of a host would).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys, type DisconnectInfo, type EndpointKeys } from '../../src/sdk/index.js';
import type { Application } from '../../src/store/store.js';
import { adminApi, startHarness, type Harness } from '../helpers/harness.js';
import { RedisProcess } from '../helpers/redis-process.js';
import { withTimeout } from '../helpers/ws.js';

const POLL_MS = 300;
let redis: RedisProcess;
let a: Harness;
let b: Harness;
let app: Application;

beforeAll(async () => {
  redis = await RedisProcess.start();
  a = await startHarness({ redisUrl: redis.url, controlPollMs: POLL_MS });
  b = await startHarness({ redisUrl: redis.url, controlPollMs: POLL_MS }, a.dataDir);
  app = await a.app({ credentialsService: 'internal' });
}, 30_000);
afterAll(async () => {
  await b?.close({ keepData: true });
  await a?.close();
  await redis?.stop();
});

async function connected(h: Harness, k: EndpointKeys): Promise<{ c: EndpointClient; ended: Promise<DisconnectInfo> }> {
  const c = new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: app.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys: k, reconnect: false });
  const ended = new Promise<DisconnectInfo>((resolve) => c.onDisconnect(resolve));
  const r = await c.connect();
  if (!r.ok) throw new Error(`connect failed: ${JSON.stringify(r)}`);
  return { c, ended };
}

describe('revocation while Redis is down', () => {
  it('ends the session on the taking node at once and on the other node from the control log; no new session after Redis returns', async () => {
    const onA = await generateEndpointKeys();
    const onB = await generateEndpointKeys();
    for (const k of [onA, onB]) await a.server.store.provisionCredentials(app.id, k.keyHash, Buffer.from(k.spki));
    const sa = await connected(a, onA);
    const sb = await connected(b, onB);

    await redis.stop();
    const revokeA = await adminApi(a, 'POST', `/admin/v1/applications/${app.id}/credentials/${onA.keyHash}/revoke`);
    expect(revokeA).toMatchObject({ status: 200, body: { status: 'REVOKED', propagation: { endedHere: 1, log: 'written', bus: 'failed' } } });
    // Ended before the answer came back.
    expect(await withTimeout(sa.ended, 100, 'taking node DISCONNECT')).toMatchObject({ reason: 'CREDENTIALS_REVOKED', errorCode: 'LK_CRED_REVOKED' });

    const revokeB = await adminApi(a, 'POST', `/admin/v1/applications/${app.id}/credentials/${onB.keyHash}/revoke`);
    expect(revokeB).toMatchObject({ status: 200, body: { propagation: { endedHere: 0, log: 'written', bus: 'failed' } } });
    // The bus lost it; node B reads it from the store's control log (bound: controlPollMs + a store read).
    expect(await withTimeout(sb.ended, POLL_MS * 10, 'other node DISCONNECT from the control log')).toMatchObject({ reason: 'CREDENTIALS_REVOKED' });

    await redis.resume();
    for (const [h, k] of [[a, onA], [b, onA], [a, onB], [b, onB]] as const) {
      const c = new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: app.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys: k, reconnect: false });
      expect(await c.connect()).toMatchObject({ ok: false, errorCode: 'LK_CRED_REVOKED' });
      c.close();
    }
    sa.c.close();
    sb.c.close();
  }, 60_000);

  it('a kick taken while Redis is down ends the session on the other node too, and not its next session', async () => {
    await redis.stop();
    const k = await generateEndpointKeys();
    await a.server.store.provisionCredentials(app.id, k.keyHash, Buffer.from(k.spki));
    const s = await connected(b, k);
    const kick = await adminApi(a, 'DELETE', `/admin/v1/applications/${app.id}/sessions/${k.keyHash}`);
    expect(kick).toMatchObject({ status: 200, body: { propagation: { endedHere: 0, log: 'written', bus: 'failed' } } });
    expect(await withTimeout(s.ended, POLL_MS * 10, 'kick from the control log')).toMatchObject({ errorCode: 'LK_SESSION_KICKED' });
    await redis.resume();
    // The kick stays in the log; re-reading it must not end the endpoint's next session.
    const again = await connected(b, k);
    await new Promise((r) => setTimeout(r, POLL_MS * 4));
    expect(b.server.registry.byEndpointKey(app.id, k.keyHash)).toBeDefined();
    again.c.close();
  }, 60_000);
});
