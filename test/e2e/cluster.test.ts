/**
 * A cluster that routes (issue 12): three nodes sharing a store and Redis, on single Redis and on
 * the local Redis Cluster (skipped with a message unless LATCHKEY_TEST_REDIS_CLUSTER is set;
 * required in CI). Control-log polls are set to 60 s, so only the bus, routed through the cluster
 * directory, can be as fast as these tests ask:
 * - takeover across nodes (a newer session on node 2 ends the one on node 1 with LK_SESSION_REPLACED),
 *   and the admin API says where the session is;
 * - a revocation on node 1 ends the session on node 3, sent to node 3 only; one with no live
 *   session anywhere sends nothing;
 * - attach by endpoint access token across nodes (the attach notification reaches the other node);
 * - events of an owner whose endpoints sit on nodes 1 and 2: one bus message per event, none for node 3;
 * - a killed node's directory entries are dead within its heartbeat expiry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusMessage } from '../../src/bus/bus.js';
import { EndpointClient, generateEndpointKeys, type DisconnectInfo, type ReceivedEvent } from '../../src/sdk/index.js';
import type { Application } from '../../src/store/store.js';
import { adminApi, startHarness, trustfulDefaultVerifier, type Harness } from '../helpers/harness.js';
import { startServerProcess } from '../helpers/process.js';
import { REDIS_URL, redisClusterUrl } from '../helpers/redis-topologies.js';
import { withTimeout } from '../helpers/ws.js';

const CLUSTER_URL = redisClusterUrl();
const CHAT = 'org.example.Chat';
const HEARTBEAT_MS = 200;

type Keys = Awaited<ReturnType<typeof generateEndpointKeys>>;

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<number> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - start;
}

function clusterSuite(name: string, url: string | null): void {
  describe.skipIf(url === null)(`three nodes routing through the cluster directory on ${name}`, () => {
    const nodes: Harness[] = [];
    let internal: Application;
    let trustful: Application;
    const run = `${process.pid}-${Date.now()}`;

    beforeAll(async () => {
      const common = { redisUrl: url!, controlPollMs: 60_000, nodeHeartbeatMs: HEARTBEAT_MS };
      nodes.push(await startHarness({ ...common, nodeId: `e2e-${run}-1` }));
      for (const i of [2, 3]) nodes.push(await startHarness({ ...common, nodeId: `e2e-${run}-${i}` }, nodes[0]!.dataDir));
      internal = await nodes[0]!.app({ credentialsService: 'internal' });
      trustful = await nodes[0]!.app();
      await trustfulDefaultVerifier(nodes[0]!, trustful.id);
      // Every node has seen the others' heartbeats.
      await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 2));
    });
    afterAll(async () => {
      for (const n of nodes.slice(1).reverse()) await n.close({ keepData: true });
      await nodes[0]?.close();
    });

    const client = (node: Harness, app: Application, keys: Keys): EndpointClient =>
      new EndpointClient({ url: `ws://127.0.0.1:${node.server.port}`, appToken: app.appToken, serverKey: { id: node.serverKeyId, spki: node.serverSpki }, keys, reconnect: false });
    // Any node's admin API, with the root key node 1 created (the store is shared).
    const where = async (h: Harness, appId: string, keyHash: string): Promise<{ status: number; body: Record<string, unknown> }> =>
      adminApi({ ...h, rootKey: nodes[0]!.rootKey }, 'GET', `/admin/v1/applications/${appId}/sessions/${keyHash}`);
    const routed = (h: Harness): number => h.server.stats.clusterMessages.get('node') ?? 0;

    it('a newer session on node 2 ends the one on node 1 (LK_SESSION_REPLACED); the admin API of node 3 says where it is', async () => {
      const [n1, n2, n3] = nodes as [Harness, Harness, Harness];
      const k = await generateEndpointKeys();
      await n1.server.store.provisionCredentials(internal.id, k.keyHash, Buffer.from(k.spki));
      const first = client(n1, internal, k);
      expect((await first.connect()).ok).toBe(true);
      await until(async () => (await where(n3, internal.id, k.keyHash)).body.node === n1.server.nodeId, 2000, 'node 1 in the directory');
      const ended = new Promise<DisconnectInfo>((resolve) => first.onDisconnect(resolve));
      const second = client(n2, internal, k);
      expect((await second.connect()).ok).toBe(true);
      expect(await withTimeout(ended, 2000, 'node 1 session replaced')).toMatchObject({ errorCode: 'LK_SESSION_REPLACED' });
      const at = await where(n3, internal.id, k.keyHash);
      expect(at).toMatchObject({ status: 200, body: { keyHash: k.keyHash, node: n2.server.nodeId, process: 0 } });
      await second.close();
      await until(async () => (await where(n3, internal.id, k.keyHash)).status === 404, 2000, 'released');
      expect((await where(n3, internal.id, k.keyHash)).body.code).toBe('LK_NOT_FOUND');
    });

    it('a revocation through node 1 ends the session on node 3 at once, sent to node 3 only; with no session anywhere nothing is sent', async () => {
      const [n1, , n3] = nodes as [Harness, Harness, Harness];
      const k = await generateEndpointKeys();
      await n1.server.store.provisionCredentials(internal.id, k.keyHash, Buffer.from(k.spki));
      const c = client(n3, internal, k);
      expect((await c.connect()).ok).toBe(true);
      await until(async () => (await where(n1, internal.id, k.keyHash)).status === 200, 2000, 'session in the directory');
      const ended = new Promise<DisconnectInfo>((resolve) => c.onDisconnect(resolve));
      const before = routed(n1);
      const rec = await n1.server.revocation.revoke(internal, k.keyHash);
      expect(rec?.propagation).toMatchObject({ endedHere: 0, log: 'written', bus: 'published' });
      expect(routed(n1) - before).toBe(1);
      expect(await withTimeout(ended, 1000, 'DISCONNECT on node 3')).toMatchObject({ reason: 'CREDENTIALS_REVOKED', errorCode: 'LK_CRED_REVOKED' });

      const idle = await generateEndpointKeys();
      await n1.server.store.provisionCredentials(internal.id, idle.keyHash, Buffer.from(idle.spki));
      const none = await n1.server.revocation.revoke(internal, idle.keyHash);
      expect(none?.propagation).toMatchObject({ endedHere: 0, log: 'written', bus: 'none' });
    });

    it('attach by endpoint access token across nodes, then events both ways: one routed message per event, nothing for node 3', async () => {
      const [n1, n2, n3] = nodes as [Harness, Harness, Harness];
      const owner = `owner-${run}-${name.length}`;
      const seenOnN3: BusMessage[] = [];
      const unsubscribe = await n3.server.bus.subscribe('events', (m) => {
        if (m.type === 'owner.event' && m.owner === owner) seenOnN3.push(m);
      });
      const endpoint = async (node: Harness): Promise<{ c: EndpointClient; got: ReceivedEvent[]; keyHash: string }> => {
        const keys = await generateEndpointKeys();
        const c = client(node, trustful, keys);
        const got: ReceivedEvent[] = [];
        c.onEvent((e) => got.push(e));
        await c.listenEvents([CHAT]);
        expect((await c.connect({ profile: new TextEncoder().encode('{}') })).ok).toBe(true);
        return { c, got, keyHash: keys.keyHash };
      };
      const a = await endpoint(n1);
      expect(await a.c.attachUser(owner, 't')).toEqual({ ok: true });
      const b = await endpoint(n2);
      const attached = new Promise<{ ownerExternalId: string }>((resolve) => b.c.onAttached(resolve));
      await b.c.setEndpointAccessToken(`token-${run}-${name.length}`);
      expect(await a.c.attachEndpoint(`token-${run}-${name.length}`)).toBe(b.keyHash);
      expect(await withTimeout(attached, 2000, 'attach notification on node 2')).toMatchObject({ ownerExternalId: owner });
      // Both are members of the owner in the directory once each has read its owner (events/relay.ts).
      await b.c.sendEvent(CHAT, new TextEncoder().encode('warm-up'));
      await until(() => a.got.length === 1, 3000, 'node 2 -> node 1 event');

      const before = routed(n1);
      for (let i = 0; i < 5; i++) await a.c.sendEvent(CHAT, new TextEncoder().encode(`n1 -> n2 ${i}`));
      await until(() => b.got.length === 5, 3000, 'five node 1 -> node 2 events');
      expect(b.got.map((e) => new TextDecoder().decode(e.data ?? new Uint8Array()))).toEqual([0, 1, 2, 3, 4].map((i) => `n1 -> n2 ${i}`));
      expect(routed(n1) - before).toBe(5);
      expect(seenOnN3).toEqual([]);
      await unsubscribe();
      await a.c.close();
      await b.c.close();
    });
  });

  describe.skipIf(url === null)(`a killed node on ${name}`, () => {
    it('its directory entries are dead within its heartbeat expiry (3 heartbeats + one of the reader)', async () => {
      const n1 = await startHarness({ redisUrl: url!, controlPollMs: 60_000, nodeHeartbeatMs: HEARTBEAT_MS, nodeId: `e2e-kill-reader-${process.pid}` });
      const victim = await startServerProcess({
        LATCHKEY_DATA_DIR: n1.dataDir, LATCHKEY_REDIS_URL: url!, LATCHKEY_NODE_ID: `e2e-killed-${process.pid}`, LATCHKEY_NODE_HEARTBEAT_MS: String(HEARTBEAT_MS), LATCHKEY_LOG_LEVEL: 'warn',
      });
      try {
        const app = await n1.app({ credentialsService: 'internal' });
        const k = await generateEndpointKeys();
        await n1.server.store.provisionCredentials(app.id, k.keyHash, Buffer.from(k.spki));
        const c = new EndpointClient({ url: `ws://127.0.0.1:${victim.port}`, appToken: app.appToken, serverKey: { id: n1.serverKeyId, spki: n1.serverSpki }, keys: k, reconnect: false });
        expect((await c.connect()).ok).toBe(true);
        await until(async () => (await adminApi(n1, 'GET', `/admin/v1/applications/${app.id}/sessions/${k.keyHash}`)).body.node === `e2e-killed-${process.pid}`, 3000, 'victim holds the session');
        victim.child.kill('SIGKILL');
        const took = await until(async () => (await adminApi(n1, 'GET', `/admin/v1/applications/${app.id}/sessions/${k.keyHash}`)).status === 404, 5000, 'entry dead');
        expect(took).toBeLessThanOrEqual(HEARTBEAT_MS * 4 + 500);
        await c.close();
      } finally {
        await victim.stop('SIGKILL');
        await n1.close();
      }
    });
  });
}

clusterSuite('single Redis', REDIS_URL);
clusterSuite('the local Redis Cluster', CLUSTER_URL);
