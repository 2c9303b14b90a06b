/**
 * The handshake path with Redis (the cluster configuration's cache, bus and nonce claims) against
 * the real Redis server, on the embedded store: credential status comes from the local store, nonces
 * are claimed in Redis across nodes, revocations travel on the bus.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnackCode } from '../../src/errors.js';
import { connackCode, startHarness, type Harness } from '../helpers/harness.js';
import { makeEndpointKey, prepareConnect } from '../helpers/wire-client.js';
import { openRaw, withTimeout } from '../helpers/ws.js';
import type { Application } from '../../src/store/store.js';

const REDIS_URL = process.env.LATCHKEY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
let h: Harness;
let app: Application;

beforeAll(async () => {
  h = await startHarness({ redisUrl: REDIS_URL });
  app = await h.app({ credentialsService: 'internal' });
});
afterAll(async () => {
  await h?.close();
});

function connect(key: ReturnType<typeof makeEndpointKey>): Promise<number> {
  return connackCode(h, app.appToken, key);
}

describe('handshake with the Redis cache', () => {
  // The embedded store is local and shared by every node of this machine: credential status is read
  // from it (microseconds) rather than through Redis (a round trip), and never cached there
  // (CredentialsGate storeDirect). Nodes on Cassandra cache it in Redis (test/unit/credentials-gate.test.ts).
  it('with the embedded store, credential status is read from the store, not cached in Redis; a reconnect is accepted', async () => {
    const k = makeEndpointKey();
    await h.server.store.provisionCredentials(app.id, k.keyHash, k.spki);
    expect(await connect(k)).toBe(ConnackCode.ACCEPTED);
    expect(await h.server.cache.get(`cred:${app.id}:${k.keyHash}`)).toBeNull();
    expect(await connect(k)).toBe(ConnackCode.ACCEPTED);
  });

  it('refuses unknown credentials without RSA work, and a revocation made in the store is refused at once', async () => {
    const k = makeEndpointKey();
    const before = h.server.pool.tasksRun;
    expect(await connect(k)).toBe(ConnackCode.REFUSE_VERIFICATION_FAILED);
    expect(h.server.pool.tasksRun).toBe(before);
    const r = makeEndpointKey();
    await h.server.store.provisionCredentials(app.id, r.keyHash, r.spki);
    expect(await connect(r)).toBe(ConnackCode.ACCEPTED);
    await h.server.store.revokeCredentials(app.id, r.keyHash);
    const tasks = h.server.pool.tasksRun;
    expect(await connect(r)).toBe(ConnackCode.REFUSE_VERIFICATION_FAILED);
    expect(h.server.pool.tasksRun).toBe(tasks);
  });
});

describe('cluster-wide replay check', () => {
  it('a CONNECT accepted by one node is refused as a replay by another node sharing Redis', async () => {
    // A second node on the same data directory (same key ring and store), same Redis.
    const other = await startHarness({ redisUrl: REDIS_URL }, h.dataDir);
    try {
      const k = makeEndpointKey();
      await h.server.store.provisionCredentials(app.id, k.keyHash, k.spki);
      const frame = prepareConnect({ appToken: app.appToken, serverKeyId: h.serverKeyId, serverPublicKey: h.serverSpki, key: k }).frame;
      const first = await openRaw(h.url);
      first.send(frame);
      const f1 = await first.decoded(0);
      expect(f1.type === 'CONNACK' && f1.connack.returnCode).toBe(ConnackCode.ACCEPTED);
      const before = other.server.pool.tasksRun;
      const second = await openRaw(other.url);
      second.send(frame);
      const f2 = await second.decoded(0);
      expect(f2.type === 'CONNACK' && f2.connack.errorCode).toBe('LK_HS_REPLAYED_NONCE');
      expect(other.server.pool.tasksRun).toBe(before);
      first.close();
      await withTimeout(first.closed, 3000, 'close');
      await withTimeout(second.closed, 3000, 'close');
    } finally {
      await other.close({ keepData: true });
    }
  });
});

describe('cluster-wide revocation over the Redis bus', () => {
  it('a revocation handled by one node ends the session held by another within 1 s', async () => {
    const { EndpointClient, generateEndpointKeys } = await import('../../src/sdk/index.js');
    const other = await startHarness({ redisUrl: REDIS_URL }, h.dataDir);
    try {
      const k = await generateEndpointKeys();
      await h.server.store.provisionCredentials(app.id, k.keyHash, Buffer.from(k.spki));
      const c = new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: app.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys: k });
      expect((await c.connect()).ok).toBe(true);
      const disconnected = new Promise((resolve) => c.onDisconnect(resolve));
      await other.server.revocation.revoke(app, k.keyHash);
      expect(await withTimeout(disconnected, 1000, 'cross-node DISCONNECT')).toMatchObject({ reason: 'CREDENTIALS_REVOKED' });
    } finally {
      await other.close({ keepData: true });
    }
  });
});
