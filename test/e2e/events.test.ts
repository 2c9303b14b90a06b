/**
 * The "done when", end to end with SDK endpoints on a real server: A attaches with a
 * verifier token; B publishes its access token; A attaches B; both learn it; A and B exchange
 * events; C of another owner receives nothing and cannot detach B; A detaches B; B is notified;
 * B's events no longer reach A (nor A's B).
 *
 * "Receives nothing" is shown without sleeping: a sender's later SyncRequest is answered only after
 * its earlier event frames were relayed (one session is processed in order, and relaying is
 * synchronous), and a receiver's ping round trip comes back only after every frame sent to it
 * before (one TCP stream, processed in order by the SDK). So after `settle()` any event that was
 * going to arrive has arrived.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys, type EndpointKeys, type ReceivedEvent } from '../../src/sdk/index.js';
import { startHarness, trustfulDefaultVerifier, type Harness } from '../helpers/harness.js';
import { withTimeout } from '../helpers/ws.js';
import type { Application } from '../../src/store/store.js';
import { createApplication } from '../../src/tenancy/provision.js';

let h: Harness;
let app: Application;
let verifierToken = '';


beforeAll(async () => {
  h = await startHarness();
  app = await h.app();
  verifierToken = await trustfulDefaultVerifier(h, app.id);
});
afterAll(async () => {
  await h?.close();
});

interface Ep {
  c: EndpointClient;
  k: EndpointKeys;
  got: ReceivedEvent[];
}

const CHAT = 'org.example.Chat';

async function endpoint(listens: string[] | null = [CHAT], onto: Application = app): Promise<Ep> {
  const k = await generateEndpointKeys();
  const c = new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: onto.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys: k });
  const got: ReceivedEvent[] = [];
  c.onEvent((e) => got.push(e));
  // Declared before connecting: the SDK sends it with the CONNECT.
  if (listens) await c.listenEvents(listens);
  expect((await c.connect({ profile: new TextEncoder().encode('{}') })).ok).toBe(true);
  return { c, k, got };
}

/** Every event `senders` sent so far has been relayed, and every frame for `receivers` has been read. */
async function settle(senders: Ep[], receivers: Ep[]): Promise<void> {
  for (const s of senders) await s.c.findEventListeners([CHAT]).catch(() => undefined);
  for (const r of receivers) await r.c.ping();
}

const text = (e: ReceivedEvent): string => new TextDecoder().decode(e.data ?? new Uint8Array());
const waitFor = async (ep: Ep, n: number, what: string): Promise<void> => {
  const deadline = Date.now() + 5000;
  while (ep.got.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  expect(ep.got.length, what).toBe(n);
};

describe('events among the endpoints of one owner', () => {
  it('A and B exchange events; C of another owner gets nothing and cannot detach B; after the detach nothing crosses', async () => {
    const a = await endpoint();
    const b = await endpoint();
    const c = await endpoint();
    expect(await a.c.attachUser('alice', 'token', verifierToken)).toEqual({ ok: true });
    expect(await c.c.attachUser('carol', 'token', verifierToken)).toEqual({ ok: true });

    await b.c.setEndpointAccessToken('b-token');
    const bAttached = new Promise((resolve) => b.c.onAttached(resolve));
    // A's side of "both are notified": its EndpointAttachResponse names B.
    expect(await a.c.attachEndpoint('b-token')).toBe(b.k.keyHash);
    expect(await withTimeout(bAttached, 2000, 'attach notification')).toEqual({ ownerExternalId: 'alice', byEndpointKeyHash: a.k.keyHash });

    expect(await a.c.findEventListeners([CHAT])).toEqual([b.k.keyHash]);
    expect(await b.c.findEventListeners([CHAT])).toEqual([a.k.keyHash]);
    expect(await c.c.findEventListeners([CHAT])).toEqual([]);

    // A to every listener, B to A by target.
    await a.c.sendEvent(CHAT, new TextEncoder().encode('hello B'));
    await b.c.sendEvent(CHAT, new TextEncoder().encode('hello A'), a.k.keyHash);
    await waitFor(b, 1, 'B receives A\'s event');
    await waitFor(a, 1, 'A receives B\'s event');
    expect(b.got[0]).toMatchObject({ eventClassFQN: CHAT, source: a.k.keyHash, target: null, seqNum: 0, missedBefore: 0 });
    expect(text(b.got[0]!)).toBe('hello B');
    expect(a.got[0]).toMatchObject({ eventClassFQN: CHAT, source: b.k.keyHash, target: a.k.keyHash, seqNum: 0 });
    expect(text(a.got[0]!)).toBe('hello A');

    // C: nothing from A or B, and its own events reach neither; it cannot detach B.
    await c.c.sendEvent(CHAT, new TextEncoder().encode('from carol'));
    await c.c.sendEvent(CHAT, new TextEncoder().encode('from carol, targeted'), b.k.keyHash);
    await a.c.sendEvent(CHAT, new TextEncoder().encode('second'));
    await settle([a, b, c], [a, b, c]);
    expect(c.got).toEqual([]);
    expect(a.got.map(text)).toEqual(['hello A']);
    expect(b.got.map(text)).toEqual(['hello B', 'second']);
    expect(b.got.map((e) => e.seqNum)).toEqual([0, 1]);
    expect(await c.c.detachEndpoint(b.k.keyHash)).toBe(false);

    // A detaches B: B is notified, and from then on nothing crosses in either direction.
    const bDetached = new Promise((resolve) => b.c.onDetached(resolve));
    expect(await a.c.detachEndpoint(b.k.keyHash)).toBe(true);
    expect(await withTimeout(bDetached, 2000, 'detach notification')).toEqual({ byEndpointKeyHash: a.k.keyHash });
    await b.c.sendEvent(CHAT, new TextEncoder().encode('after detach'));
    await b.c.sendEvent(CHAT, new TextEncoder().encode('after detach, targeted'), a.k.keyHash);
    await a.c.sendEvent(CHAT, new TextEncoder().encode('after detach from A'));
    await settle([a, b], [a, b]);
    expect(a.got.map(text)).toEqual(['hello A']);
    expect(b.got.map(text)).toEqual(['hello B', 'second']);
    expect(await a.c.findEventListeners([CHAT])).toEqual([]);
    await expect(b.c.findEventListeners([CHAT])).rejects.toMatchObject({ code: 'LK_NO_OWNER' });

    const metrics = await (await fetch(`${h.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/latchkey_events_delivered_total \d+/);
    expect(metrics).toMatch(/latchkey_events_dropped_total\{reason="no_owner"\} [1-9]/);
    for (const e of [a, b, c]) await e.c.close();
  });

  it('endpoints of several applications of one tenant share an owner; classes filter what arrives', async () => {
    const second = await createApplication(h.server.store, { id: `${app.id}-2`, tenantId: app.tenantId, name: 'second app', credentialsService: 'trustful', profileSchema: null }, ['trustful']);
    await trustfulDefaultVerifier(h, second.id);
    const phone = await endpoint([CHAT, 'org.example.Alarm']);
    const sensor = await endpoint(['org.example.Reading'], second);
    expect(await phone.c.attachUser('dora', 't')).toEqual({ ok: true });
    expect(await sensor.c.attachUser('dora', 't')).toEqual({ ok: true });
    await sensor.c.sendEvent('org.example.Alarm', new TextEncoder().encode('smoke'));
    await sensor.c.sendEvent('org.example.Unheard', new TextEncoder().encode('nobody listens'));
    await phone.c.sendEvent('org.example.Reading', new TextEncoder().encode('report now'));
    await waitFor(phone, 1, 'phone gets the alarm');
    await waitFor(sensor, 1, 'sensor gets the request');
    await settle([phone, sensor], [phone, sensor]);
    expect(phone.got.map((e) => [e.eventClassFQN, text(e)])).toEqual([['org.example.Alarm', 'smoke']]);
    expect(sensor.got.map((e) => [e.eventClassFQN, text(e)])).toEqual([['org.example.Reading', 'report now']]);
    expect(await phone.c.findEventListeners(['org.example.Reading'])).toEqual([sensor.k.keyHash]);
    // A new declaration replaces the old at once.
    await phone.c.listenEvents(['org.example.Reading']);
    expect(await sensor.c.findEventListeners(['org.example.Reading'])).toEqual([phone.k.keyHash]);
    await expect(phone.c.listenEvents([''])).rejects.toMatchObject({ code: 'LK_EVENT_CLASSES_INVALID' });
    for (const e of [phone, sensor]) await e.c.close();
  });

  it('the declaration survives a reconnect: a new session listens from its CONNECT', async () => {
    const a = await endpoint();
    const b = await endpoint();
    expect(await a.c.attachUser('erin', 't')).toEqual({ ok: true });
    expect(await b.c.attachUser('erin', 't')).toEqual({ ok: true });
    await b.c.close();
    expect((await b.c.connect()).ok).toBe(true);
    await a.c.sendEvent(CHAT, new TextEncoder().encode('after reconnect'));
    await waitFor(b, 1, 'B receives in its new session');
    expect(b.got[0]).toMatchObject({ seqNum: 0, missedBefore: 0 });
    for (const e of [a, b]) await e.c.close();
  });
});
