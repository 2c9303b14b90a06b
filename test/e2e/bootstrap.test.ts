/**
 * Bootstrap end to end: the signed list a node serves, its refusals, the SDK's checks (a tampered,
 * foreign or expired list is never used), failover to a second node, and a drained node's REDIRECT
 * landing its endpoints on another node. Two-node cases share the real Redis node registry.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { types, type AccessPointList, type BootstrapResponse } from '../../src/protocol/schemas.js';
import { accessPointId } from '../../src/bootstrap/nodes.js';
import { EndpointClient, generateEndpointKeys, resolveAccessPoints, verifyAccessPointList, type ConnectResult, type ReceivedEvent } from '../../src/sdk/index.js';
import { startHarness, trustfulDefaultVerifier, type Harness } from '../helpers/harness.js';
import { withTimeout } from '../helpers/ws.js';
import type { Application } from '../../src/store/store.js';
import { LatchkeyError } from '../../src/errors.js';

const REDIS_URL = process.env.LATCHKEY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
let h: Harness;
let app: Application;

beforeAll(async () => {
  h = await startHarness();
  app = await h.app();
});
afterAll(async () => {
  await h?.close();
});

function resolveUrl(node: Harness): string {
  return `http://127.0.0.1:${node.server.port}/bootstrap/v1/resolve`;
}

async function post(url: string, body: Uint8Array | string): Promise<{ status: number; bytes: Buffer; json: () => Record<string, unknown> }> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: body as BodyInit });
  const bytes = Buffer.from(await r.arrayBuffer());
  return { status: r.status, bytes, json: () => JSON.parse(bytes.toString('utf8')) as Record<string, unknown> };
}

const request = (appToken: string, protocolVersions = [1]): Buffer => types.bootstrapRequest.toBuffer({ appToken, protocolVersions });

describe('POST /bootstrap/v1/resolve', () => {
  it('answers a list signed with the bootstrap key (not an operations key), naming this node', async () => {
    const r = await post(resolveUrl(h), request(app.appToken, [7, 1]));
    expect(r.status).toBe(200);
    const res = types.bootstrapResponse.fromBuffer(r.bytes) as BootstrapResponse;
    expect(res.bootstrapKeyId).toBe(h.server.bootstrapKey.id);
    expect(h.server.keyRing.list().map((k) => k.id)).not.toContain(res.bootstrapKeyId);
    const checked = await verifyAccessPointList(r.bytes, h.server.bootstrapKey.spkiDer, app.appToken, Date.now());
    expect(checked.accessPoints).toEqual([
      {
        id: accessPointId(h.server.nodeId),
        url: `ws://127.0.0.1:${h.server.port}/ep/v1`,
        serverKeyId: h.serverKeyId,
        serverPublicKey: Buffer.from(h.serverSpki),
        priority: 0,
        weight: 100,
        load: 0,
      },
    ]);
    const list = types.accessPointList.fromBuffer(res.list) as AccessPointList;
    expect(list.expiresAt - list.issuedAt).toBe(h.server.config.bootstrapListTtlSec * 1000);
  });

  it('serves repeated requests from the signed cache: no RSA per request', async () => {
    const other = await h.app();
    const before = h.server.bootstrap.counters.signed;
    const first = await post(resolveUrl(h), request(other.appToken));
    for (let i = 0; i < 20; i++) expect((await post(resolveUrl(h), request(other.appToken))).bytes.equals(first.bytes)).toBe(true);
    expect(h.server.bootstrap.counters.signed - before).toBe(1);
  });

  it('refuses with coded errors: unknown app token, malformed body, no common version, oversize body', async () => {
    const unknown = await post(resolveUrl(h), request('no-such-app-token'));
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toMatchObject({ code: 'LK_HS_UNKNOWN_APPLICATION' });
    const malformed = await post(resolveUrl(h), Buffer.from([0xff, 0xff, 0xff]));
    expect(malformed.status).toBe(400);
    expect(malformed.json()).toMatchObject({ code: 'LK_BOOTSTRAP_MALFORMED' });
    const version = await post(resolveUrl(h), request(app.appToken, [2, 3]));
    expect(version.status).toBe(400);
    expect(version.json()).toMatchObject({ code: 'LK_BOOTSTRAP_NO_COMMON_VERSION' });
    const big = await post(resolveUrl(h), Buffer.alloc(64 * 1024, 1));
    expect(big.status).toBe(413);
    expect(big.json()).toMatchObject({ code: 'LK_BODY_TOO_LARGE' });
    // The SDK reports an unknown application as terminal.
    await expect(resolveAccessPoints({ urls: [resolveUrl(h)], publicKey: h.server.bootstrapKey.spkiDer }, 'no-such-app-token')).rejects.toMatchObject({ code: 'LK_HS_UNKNOWN_APPLICATION', terminal: true });
  });
});

describe('when nothing can be listed', () => {
  it('a drained lone node answers 503 LK_BOOTSTRAP_NO_ACCESS_POINTS; unreachable bootstrap URLs give the SDK LK_SDK_BOOTSTRAP_FAILED', async () => {
    const lone = await startHarness();
    try {
      const a = await lone.app();
      expect((await post(resolveUrl(lone), request(a.appToken))).status).toBe(200);
      const drained = await fetch(`${lone.adminUrl}/admin/v1/node/drain`, { method: 'POST', headers: { authorization: `Bearer ${lone.rootKey}` } });
      expect(await drained.json()).toEqual({ redirected: 0 });
      const r = await post(resolveUrl(lone), request(a.appToken));
      expect(r.status).toBe(503);
      expect(r.json()).toMatchObject({ code: 'LK_BOOTSTRAP_NO_ACCESS_POINTS' });
    } finally {
      await lone.close();
    }
    // Nothing listens on that port any more.
    await expect(resolveAccessPoints({ urls: [`http://127.0.0.1:${lone.server.port}`], publicKey: h.server.bootstrapKey.spkiDer, timeoutMs: 2000 }, app.appToken)).rejects.toMatchObject({ code: 'LK_SDK_BOOTSTRAP_FAILED', terminal: false });
  });
});

describe('the SDK checks what it is given', () => {
  let genuine: Buffer;
  beforeAll(async () => {
    genuine = (await post(resolveUrl(h), request(app.appToken))).bytes;
  });

  it('refuses a tampered list, a list signed by another key, one for another application, and an expired one', async () => {
    const res = types.bootstrapResponse.fromBuffer(genuine) as BootstrapResponse;
    const list = types.accessPointList.fromBuffer(res.list) as AccessPointList;
    // Redirect the fleet to an attacker's URL, keeping the signature.
    const evil = types.accessPointList.toBuffer({ ...list, accessPoints: list.accessPoints.map((p) => ({ ...p, url: 'ws://127.0.0.66:1/ep/v1' })) });
    const tampered = types.bootstrapResponse.toBuffer({ ...res, list: evil });
    await expect(verifyAccessPointList(tampered, h.server.bootstrapKey.spkiDer, app.appToken, Date.now())).rejects.toMatchObject({ code: 'LK_SDK_BOOTSTRAP_BAD_SIGNATURE' });
    const flipped = Buffer.from(genuine);
    flipped[flipped.length - 1]! ^= 1;
    await expect(verifyAccessPointList(flipped, h.server.bootstrapKey.spkiDer, app.appToken, Date.now())).rejects.toMatchObject({ code: 'LK_SDK_BOOTSTRAP_BAD_SIGNATURE' });
    // An operations key is not the bootstrap key.
    await expect(verifyAccessPointList(genuine, h.serverSpki, app.appToken, Date.now())).rejects.toMatchObject({ code: 'LK_SDK_BOOTSTRAP_BAD_SIGNATURE' });
    await expect(verifyAccessPointList(genuine, h.server.bootstrapKey.spkiDer, 'another-apps-token', Date.now())).rejects.toMatchObject({ code: 'LK_SDK_BOOTSTRAP_BAD_SIGNATURE' });
    await expect(verifyAccessPointList(genuine, h.server.bootstrapKey.spkiDer, app.appToken, list.expiresAt)).rejects.toMatchObject({ code: 'LK_SDK_BOOTSTRAP_EXPIRED' });
    expect((await verifyAccessPointList(genuine, h.server.bootstrapKey.spkiDer, app.appToken, list.expiresAt - 1)).accessPoints).toHaveLength(1);
  });

  it('a client behind a tampering bootstrap proxy never connects; with an honest second URL it does', async () => {
    // The proxy forwards to the real bootstrap service and rewrites the access point URL.
    const proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void post(resolveUrl(h), Buffer.concat(chunks)).then((r) => {
          const out = types.bootstrapResponse.fromBuffer(r.bytes) as BootstrapResponse;
          const list = types.accessPointList.fromBuffer(out.list) as AccessPointList;
          list.accessPoints = list.accessPoints.map((p) => ({ ...p, url: 'ws://127.0.0.66:1/ep/v1' }));
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          res.end(types.bootstrapResponse.toBuffer({ ...out, list: types.accessPointList.toBuffer(list) }));
        });
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const keys = await generateEndpointKeys();
      const c = new EndpointClient({ appToken: app.appToken, keys, bootstrap: { urls: [proxyUrl], publicKey: h.server.bootstrapKey.spkiDer } });
      const r = await c.connect();
      expect(r).toMatchObject({ ok: false, kind: 'failed', bootstrapCode: 'LK_SDK_BOOTSTRAP_BAD_SIGNATURE' });
      const good = new EndpointClient({ appToken: app.appToken, keys, bootstrap: { urls: [proxyUrl, `http://127.0.0.1:${h.server.port}`], publicKey: h.server.bootstrapKey.spkiDer } });
      expect((await good.connect()).ok).toBe(true);
      expect(good.accessPoint?.url).toBe(`ws://127.0.0.1:${h.server.port}/ep/v1`);
      await good.close();
    } finally {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});

describe('two nodes (Redis node registry)', () => {
  let n1: Harness;
  let n2: Harness;
  let shared: Application;

  beforeAll(async () => {
    // n1 is preferred (priority 1) over n2 (2); both read the same bootstrap key from the shared data dir.
    n1 = await startHarness({ redisUrl: REDIS_URL, nodePriority: 1, nodeHeartbeatMs: 200, shutdownGraceMs: 4000 });
    n2 = await startHarness({ redisUrl: REDIS_URL, nodePriority: 2, nodeHeartbeatMs: 200 }, n1.dataDir);
    shared = await n1.app();
    await trustfulDefaultVerifier(n1, shared.id);
    // Both nodes see each other once a heartbeat went round.
    await seeing(n2, [n1, n2]);
  });

  /** Wait until `from` lists exactly `nodes` (heartbeats every 200 ms). */
  async function seeing(from: Harness, nodes: Harness[]): Promise<void> {
    const want = nodes.map((n) => accessPointId(n.server.nodeId)).sort();
    const deadline = Date.now() + 5000;
    for (;;) {
      const list = await verifyAccessPointList((await post(resolveUrl(from), request(shared.appToken))).bytes, from.server.bootstrapKey.spkiDer, shared.appToken, Date.now());
      const ids = list.accessPoints.map((p) => p.id).sort();
      if (JSON.stringify(ids) === JSON.stringify(want)) return;
      if (Date.now() > deadline) throw new Error(`lists ${JSON.stringify(ids)}, expected ${JSON.stringify(want)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  afterAll(async () => {
    await n2?.close({ keepData: true });
    await n1?.close();
  });

  const client = async (): Promise<EndpointClient> =>
    new EndpointClient({ appToken: shared.appToken, keys: await generateEndpointKeys(), bootstrap: { urls: [`http://127.0.0.1:${n1.server.port}`, `http://127.0.0.1:${n2.server.port}`], publicKey: n1.server.bootstrapKey.spkiDer } });

  it('lists the nodes by priority; a client fails over to the next when the preferred one does not answer', async () => {
    // n3 is the most preferred (priority 0), listed, and stops accepting connections.
    const n3 = await startHarness({ redisUrl: REDIS_URL, nodePriority: 0, nodeHeartbeatMs: 200 }, n1.dataDir);
    try {
      await seeing(n1, [n1, n2, n3]);
      const list = await verifyAccessPointList((await post(resolveUrl(n1), request(shared.appToken))).bytes, n1.server.bootstrapKey.spkiDer, shared.appToken, Date.now());
      expect(list.accessPoints.map((p) => [p.id, p.priority]).sort()).toEqual([[accessPointId(n1.server.nodeId), 1], [accessPointId(n2.server.nodeId), 2], [accessPointId(n3.server.nodeId), 0]].sort());
      // First: n3 answers but is overloaded (CONNACK REFUSE_SERVER_UNAVAILABLE, LK_SERVER_BUSY).
      const busy = n3.server.pool.handshake.bind(n3.server.pool);
      let refused = 0;
      n3.server.pool.handshake = () => {
        refused++;
        return Promise.reject(new LatchkeyError('LK_SERVER_BUSY', 'test: crypto queue full'));
      };
      const c0 = await client();
      expect((await c0.connect()).ok).toBe(true);
      expect(refused).toBe(1);
      expect(c0.accessPoint?.id).toBe(accessPointId(n1.server.nodeId));
      await c0.close();
      n3.server.pool.handshake = busy;
      // Then: n3 does not answer at all (connection refused).
      n3.server.gateway.stopListening();
      const c1 = await client();
      expect((await c1.connect()).ok).toBe(true);
      expect(c1.accessPoint?.id).toBe(accessPointId(n1.server.nodeId));
      await c1.close();
    } finally {
      await n3.close({ keepData: true });
    }
    await seeing(n1, [n1, n2]);
  });

  it('a drained node (SIGTERM path) sends REDIRECT; its endpoints land on the other node and keep receiving events', async () => {
    const a = await client();
    const b = await client();
    for (const c of [a, b]) {
      await c.listenEvents(['org.example.Chat']);
      expect((await c.connect({ profile: new TextEncoder().encode('{}') })).ok).toBe(true);
      expect(c.accessPoint?.id).toBe(accessPointId(n1.server.nodeId));
      expect(await c.attachUser('henry', 't')).toEqual({ ok: true });
    }
    const moved = (c: EndpointClient): Promise<{ accessPointId: number; result: ConnectResult }> => new Promise((resolve) => c.onRedirect(resolve));
    const [ma, mb] = [moved(a), moved(b)];
    const closing = n1.server.close();
    const [ra, rb] = await withTimeout(Promise.all([ma, mb]), 4000, 'REDIRECT and reconnect');
    for (const r of [ra, rb]) {
      expect(r.accessPointId).toBe(accessPointId(n2.server.nodeId));
      expect(r.result.ok).toBe(true);
    }
    expect(a.accessPoint?.id).toBe(accessPointId(n2.server.nodeId));
    expect(b.accessPoint?.id).toBe(accessPointId(n2.server.nodeId));
    await closing;
    expect(n1.server.stats.sessionsEnded.get('LK_SERVER_SHUTDOWN') ?? 0).toBe(0);
    const got: ReceivedEvent[] = [];
    b.onEvent((e) => got.push(e));
    await a.sendEvent('org.example.Chat', new TextEncoder().encode('on n2'));
    const deadline = Date.now() + 3000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(got.map((e) => new TextDecoder().decode(e.data!))).toEqual(['on n2']);
    // n1 is gone from the lists n2 serves (at n2's next refresh, within a heartbeat).
    await seeing(n2, [n2]);
    // And a new client, whose first bootstrap URL (n1) no longer answers, reaches n2.
    const c = await client();
    expect((await c.connect()).ok).toBe(true);
    expect(c.accessPoint?.id).toBe(accessPointId(n2.server.nodeId));
    for (const x of [a, b, c]) await x.close();
  });

  it('an operator drains a node through the admin API: its endpoints move, the node keeps running', async () => {
    const n4 = await startHarness({ redisUrl: REDIS_URL, nodePriority: 5, nodeHeartbeatMs: 200 }, n1.dataDir);
    try {
      await seeing(n2, [n2, n4]);
      const c = new EndpointClient({ appToken: shared.appToken, keys: await generateEndpointKeys(), bootstrap: { urls: [`http://127.0.0.1:${n2.server.port}`], publicKey: n2.server.bootstrapKey.spkiDer } });
      expect((await c.connect({ profile: new TextEncoder().encode('{}') })).ok).toBe(true);
      expect(c.accessPoint?.id).toBe(accessPointId(n2.server.nodeId));
      const moved = new Promise<{ accessPointId: number; result: ConnectResult }>((resolve) => c.onRedirect(resolve));
      const left = new Promise((resolve) => c.onDisconnect(resolve));
      const admin = async (method: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
        const r = await fetch(`${n2.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${n1.rootKey}` } });
        return { status: r.status, body: (await r.json()) as Record<string, unknown> };
      };
      expect(await admin('GET', '/admin/v1/node')).toMatchObject({ status: 200, body: { id: n2.server.nodeId, accessPointId: accessPointId(n2.server.nodeId), draining: false, priority: 2 } });
      expect(await admin('POST', '/admin/v1/node/drain')).toEqual({ status: 200, body: { redirected: 1 } });
      const r = await withTimeout(moved, 4000, 'REDIRECT after an admin drain');
      expect(r).toMatchObject({ accessPointId: accessPointId(n4.server.nodeId), result: { ok: true } });
      expect(await left).toMatchObject({ errorCode: 'LK_SDK_REDIRECTED', willReconnect: true });
      expect((await admin('GET', '/admin/v1/node')).body).toMatchObject({ draining: true });
      await seeing(n4, [n4]);
      await c.close();
    } finally {
      await n4.close({ keepData: true });
    }
  });
});
