/**
 * Two nodes sharing a store and a Redis Cluster (redisUrl redis-cluster://..., the local cluster
 * of scripts/redis-cluster.sh): both are ready, a revocation on one node ends the session held by
 * the other through the sharded bus (the other node's control-log poll is set to 60 s, so only the
 * bus can be that fast), and events of one owner cross the nodes. Skipped with a message unless
 * LATCHKEY_TEST_REDIS_CLUSTER is set; required in CI (LATCHKEY_REQUIRE_REDIS_CLUSTER=1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys, type DisconnectInfo, type ReceivedEvent } from '../../src/sdk/index.js';
import type { Application } from '../../src/store/store.js';
import { startHarness, trustfulDefaultVerifier, type Harness } from '../helpers/harness.js';
import { redisClusterUrl } from '../helpers/redis-topologies.js';
import { withTimeout } from '../helpers/ws.js';

const CLUSTER_URL = redisClusterUrl();
const CHAT = 'org.example.Chat';

describe.skipIf(CLUSTER_URL === null)('two nodes on a Redis Cluster', () => {
  let n1: Harness;
  let n2: Harness;
  let internal: Application;
  let trustful: Application;

  beforeAll(async () => {
    n1 = await startHarness({ redisUrl: CLUSTER_URL!, nodeId: 'cluster-e2e-1' });
    n2 = await startHarness({ redisUrl: CLUSTER_URL!, nodeId: 'cluster-e2e-2', controlPollMs: 60_000 }, n1.dataDir);
    internal = await n1.app({ credentialsService: 'internal' });
    trustful = await n1.app();
    await trustfulDefaultVerifier(n1, trustful.id);
  });
  afterAll(async () => {
    await n2?.close({ keepData: true });
    await n1?.close();
  });

  const client = (node: Harness, app: Application, keys: Awaited<ReturnType<typeof generateEndpointKeys>>): EndpointClient =>
    new EndpointClient({ url: `ws://127.0.0.1:${node.server.port}`, appToken: app.appToken, serverKey: { id: node.serverKeyId, spki: node.serverSpki }, keys, reconnect: { minDelayMs: 20, maxDelayMs: 50, maxAttempts: 1 } });

  it('both nodes are ready (store, cache and bus answer)', async () => {
    for (const n of [n1, n2]) {
      const r = await fetch(`${n.adminUrl}/readyz`);
      expect(await r.json()).toEqual({ status: 'ready', store: 'ok', cache: 'ok', bus: 'ok' });
    }
  });

  it('a revocation on node 1 ends the session on node 2 within 1 s, through the bus', async () => {
    const k = await generateEndpointKeys();
    await n1.server.store.provisionCredentials(internal.id, k.keyHash, Buffer.from(k.spki));
    const c = client(n2, internal, k);
    expect((await c.connect()).ok).toBe(true);
    const disconnected = new Promise<DisconnectInfo>((resolve) => c.onDisconnect(resolve));
    const rec = await n1.server.revocation.revoke(internal, k.keyHash);
    expect(rec?.propagation).toMatchObject({ endedHere: 0, log: 'written', bus: 'published' });
    expect(await withTimeout(disconnected, 1000, 'DISCONNECT on node 2')).toMatchObject({ reason: 'CREDENTIALS_REVOKED', errorCode: 'LK_CRED_REVOKED' });
    await c.close();
  });

  it('events of one owner cross the nodes', async () => {
    const endpoint = async (node: Harness): Promise<{ c: EndpointClient; got: ReceivedEvent[] }> => {
      const c = client(node, trustful, await generateEndpointKeys());
      const got: ReceivedEvent[] = [];
      c.onEvent((e) => got.push(e));
      await c.listenEvents([CHAT]);
      expect((await c.connect({ profile: new TextEncoder().encode('{}') })).ok).toBe(true);
      expect(await c.attachUser('cluster-owner', 't')).toEqual({ ok: true });
      return { c, got };
    };
    const a = await endpoint(n1);
    const b = await endpoint(n2);
    await a.c.sendEvent(CHAT, new TextEncoder().encode('n1 -> n2'));
    const deadline = Date.now() + 5000;
    while (b.got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(b.got.map((e) => new TextDecoder().decode(e.data ?? new Uint8Array()))).toEqual(['n1 -> n2']);
    await a.c.close();
    await b.c.close();
  });
});
