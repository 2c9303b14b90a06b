/**
 * Events across two nodes sharing a store and the real Redis bus: endpoints of one owner on
 * different nodes exchange events; an endpoint of another owner on either node gets none; a detach
 * made on one node stops events to and from the endpoint held by the other at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys, type ReceivedEvent } from '../../src/sdk/index.js';
import { startHarness, trustfulDefaultVerifier, type Harness } from '../helpers/harness.js';
import { withTimeout } from '../helpers/ws.js';
import type { Application } from '../../src/store/store.js';

const REDIS_URL = process.env.LATCHKEY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const CHAT = 'org.example.Chat';
let n1: Harness;
let n2: Harness;
let app: Application;

beforeAll(async () => {
  n1 = await startHarness({ redisUrl: REDIS_URL });
  n2 = await startHarness({ redisUrl: REDIS_URL }, n1.dataDir);
  app = await n1.app();
  await trustfulDefaultVerifier(n1, app.id);
});
afterAll(async () => {
  await n2?.close({ keepData: true });
  await n1?.close();
});

async function endpoint(node: Harness): Promise<{ c: EndpointClient; keyHash: string; got: ReceivedEvent[] }> {
  const k = await generateEndpointKeys();
  const c = new EndpointClient({ url: `ws://127.0.0.1:${node.server.port}`, appToken: app.appToken, serverKey: { id: node.serverKeyId, spki: node.serverSpki }, keys: k });
  const got: ReceivedEvent[] = [];
  c.onEvent((e) => got.push(e));
  await c.listenEvents([CHAT]);
  expect((await c.connect({ profile: new TextEncoder().encode('{}') })).ok).toBe(true);
  return { c, keyHash: k.keyHash, got };
}

const text = (e: ReceivedEvent): string => new TextDecoder().decode(e.data ?? new Uint8Array());
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  expect(cond(), what).toBe(true);
}

describe('events across nodes (Redis bus)', () => {
  it('reach the owner\'s endpoints on the other node, never another owner\'s; a detach stops them everywhere', async () => {
    const a = await endpoint(n1);
    const b = await endpoint(n2);
    const x1 = await endpoint(n1);
    const x2 = await endpoint(n2);
    expect(await a.c.attachUser('frank', 't')).toEqual({ ok: true });
    expect(await b.c.attachUser('frank', 't')).toEqual({ ok: true });
    expect(await x1.c.attachUser('xavier', 't')).toEqual({ ok: true });
    expect(await x2.c.attachUser('xavier', 't')).toEqual({ ok: true });

    await a.c.sendEvent(CHAT, new TextEncoder().encode('n1 -> n2'));
    await b.c.sendEvent(CHAT, new TextEncoder().encode('n2 -> n1'), a.keyHash);
    await until(() => a.got.length === 1 && b.got.length === 1, 'both receive across nodes');
    expect(text(b.got[0]!)).toBe('n1 -> n2');
    expect(b.got[0]!.source).toBe(a.keyHash);
    expect(text(a.got[0]!)).toBe('n2 -> n1');

    // The other owner's pair exchanges events too, and sees none of frank's.
    await x1.c.sendEvent(CHAT, new TextEncoder().encode('xavier only'));
    await until(() => x2.got.length === 1, 'xavier\'s event crosses nodes');
    expect(x1.got).toEqual([]);

    // B (on n2) is detached by A through n1: the owner change reaches n2 through the bus.
    const detached = new Promise((resolve) => b.c.onDetached(resolve));
    expect(await a.c.detachEndpoint(b.keyHash)).toBe(true);
    await withTimeout(detached, 2000, 'detach notification on the other node');
    await b.c.sendEvent(CHAT, new TextEncoder().encode('after detach from b'));
    await a.c.sendEvent(CHAT, new TextEncoder().encode('after detach from a'));
    // Markers between x1 and x2, sent after (and published by the same node as) the events above,
    // prove the bus carried those in both directions: per publisher, Redis keeps the order.
    await b.c.findEventListeners([CHAT]).catch(() => undefined);
    await a.c.findEventListeners([CHAT]);
    await x2.c.sendEvent(CHAT, new TextEncoder().encode('marker n2 -> n1'));
    await x1.c.sendEvent(CHAT, new TextEncoder().encode('marker n1 -> n2'));
    await until(() => x1.got.length === 1 && x2.got.length === 2, 'markers arrive');
    await a.c.ping();
    await b.c.ping();
    expect(a.got.map(text)).toEqual(['n2 -> n1']);
    expect(b.got.map(text)).toEqual(['n1 -> n2']);
    expect(x1.got.map(text)).toEqual(['marker n2 -> n1']);
    expect(x2.got.map(text)).toEqual(['xavier only', 'marker n1 -> n2']);
    for (const e of [a, b, x1, x2]) await e.c.close();
  });
});
