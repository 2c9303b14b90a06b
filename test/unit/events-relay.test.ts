/**
 * EventRelay against the real embedded store, with in-memory peers standing in for sessions: who
 * receives what (owner groups, classes, targets), sequence numbers on both sides, the slow-receiver
 * drop, owner changes, listeners queries, and the cross-node path through a shared bus.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { MemoryBus } from '../../src/bus/bus-memory.js';
import type { Bus, BusHandler, BusMessage, BusTopic } from '../../src/bus/bus.js';
import { EventRelay, isEventOnly, type EventMember, type EventPeer } from '../../src/events/relay.js';
import { Stats } from '../../src/metrics.js';
import { emptySyncRequest, type WireEvent } from '../../src/protocol/schemas.js';
import { EmbeddedStore } from '../../src/store/store-embedded.js';
import type { Application } from '../../src/store/store.js';
import { LatchkeyError } from '../../src/errors.js';
import { tempDir } from '../helpers/harness.js';
import { randomKeyHash, uid } from '../contract/store.contract.js';

const log = pino({ level: 'silent' });

class Peer implements EventPeer {
  events: EventMember | null = null;
  readonly got: WireEvent[] = [];
  /** Simulated socket backlog (bytes). */
  buffered = 0;
  isOpen = true;
  constructor(
    readonly app: Application,
    readonly keyHash = randomKeyHash(),
  ) {}
  deliverEvent(ev: WireEvent, maxBufferedBytes: number): 'sent' | 'slow' | 'gone' {
    if (!this.isOpen) return 'gone';
    if (this.buffered > maxBufferedBytes) return 'slow';
    this.got.push(ev);
    return 'sent';
  }
}

const ev = (seqNum: number, eventClassFQN = 'org.example.Ping', target: string | null = null, data = 'x'): WireEvent => ({
  seqNum, eventClassFQN, eventData: Buffer.from(data), source: null, target,
});

let store: EmbeddedStore;
let app: Application;
let other: Application;

beforeAll(async () => {
  store = await EmbeddedStore.open(tempDir());
  const t = await store.createTenant({ id: uid('t'), name: 'T', createdAt: Date.now() });
  const t2 = await store.createTenant({ id: uid('t'), name: 'T2', createdAt: Date.now() });
  const mk = (tenantId: string): Application => ({ id: uid('a'), tenantId, name: 'A', appToken: uid('tok'), credentialsService: 'trustful', profileSchema: null, createdAt: Date.now() }) as Application;
  app = await store.createApplication(mk(t.id));
  other = await store.createApplication(mk(t2.id));
});
afterAll(async () => {
  await store?.close();
});

function relay(bus: Bus = new MemoryBus(), stats = new Stats(), nodeId = 'node-1', maxBufferedBytes = 1000): { r: EventRelay; stats: Stats } {
  return { r: new EventRelay({ store, bus, stats, log, nodeId, maxBufferedBytes }), stats };
}

async function member(r: EventRelay, p: Peer, owner: string | null, listens: string[] | null = ['org.example.Ping']): Promise<Peer> {
  if (owner) await store.attachEndpointToOwner(p.app.tenantId, owner, p.app.id, p.keyHash);
  await r.handle(p, { eventListenersRequests: null, events: null, listenedEventClassFQNs: listens }, null);
  return p;
}

describe('EventRelay', () => {
  it('delivers to the listeners of the class among the owner\'s endpoints only, never back to the sender', async () => {
    const { r, stats } = relay();
    const owner = uid('alice');
    const a = await member(r, new Peer(app), owner);
    const b = await member(r, new Peer(app), owner);
    const deaf = await member(r, new Peer(app), owner, ['org.example.Other']);
    const stranger = await member(r, new Peer(other), uid('alice')); // another tenant
    const sameNameOtherOwner = await member(r, new Peer(app), uid('bob'));
    expect(r.tryFast(a, [ev(0)])).toBe(true);
    expect(b.got).toEqual([{ seqNum: 0, eventClassFQN: 'org.example.Ping', eventData: Buffer.from('x'), source: a.keyHash, target: null }]);
    for (const p of [a, deaf, stranger, sameNameOtherOwner]) expect(p.got).toEqual([]);
    expect(stats.eventsReceived).toBe(1);
    expect(stats.eventsDelivered).toBe(1);
  });

  it('a targeted event reaches only its target, if it listens to the class', async () => {
    const { r } = relay();
    const owner = uid('o');
    const a = await member(r, new Peer(app), owner);
    const b = await member(r, new Peer(app), owner);
    const c = await member(r, new Peer(app), owner);
    r.tryFast(a, [ev(0, 'org.example.Ping', c.keyHash)]);
    expect(b.got).toEqual([]);
    expect(c.got.map((e) => [e.target, e.source])).toEqual([[c.keyHash, a.keyHash]]);
    r.tryFast(a, [ev(1, 'org.example.Unlistened', c.keyHash)]);
    expect(c.got).toHaveLength(1);
  });

  it('drops a sender\'s duplicate or out-of-order seqNum and invalid events, counting each', async () => {
    const { r, stats } = relay();
    const owner = uid('o');
    const a = await member(r, new Peer(app), owner);
    const b = await member(r, new Peer(app), owner);
    r.tryFast(a, [ev(5), ev(5), ev(3), ev(6)]);
    r.tryFast(a, [ev(-1), ev(7, ''), ev(8, 'x'.repeat(256)), ev(9, 'org.example.Ping', 'not a key hash!')]);
    expect(b.got.map((e) => e.eventData!.toString())).toEqual(['x', 'x']);
    expect(b.got.map((e) => e.seqNum)).toEqual([0, 1]); // the receiver's own counter
    expect(Object.fromEntries(stats.eventsDropped)).toEqual({ duplicate: 2, invalid: 4 });
  });

  it('slow receiver: deliveries beyond its buffer bound are dropped and counted; it sees the gap in seqNum', async () => {
    const { r, stats } = relay();
    const owner = uid('o');
    const a = await member(r, new Peer(app), owner);
    const b = await member(r, new Peer(app), owner);
    r.tryFast(a, [ev(0)]);
    b.buffered = 5000;
    r.tryFast(a, [ev(1), ev(2)]);
    b.buffered = 0;
    r.tryFast(a, [ev(3)]);
    expect(b.got.map((e) => e.seqNum)).toEqual([0, 3]);
    expect(stats.eventsDropped.get('slow_receiver')).toBe(2);
  });

  it('the receiver counter wraps from 2^31 - 1 to 0 (Avro int) instead of failing', async () => {
    const { r } = relay();
    const owner = uid('o');
    const a = await member(r, new Peer(app), owner);
    const b = await member(r, new Peer(app), owner);
    b.events!.outSeq = 0x7fffffff;
    r.tryFast(a, [ev(0), ev(1)]);
    expect(b.got.map((e) => e.seqNum)).toEqual([0x7fffffff, 0]);
  });

  it('a closed session is never filed again, even by a request that finishes after the close', async () => {
    const { r, stats } = relay();
    const owner = uid('o');
    const a = await member(r, new Peer(app), owner);
    const late = new Peer(app);
    await store.attachEndpointToOwner(app.tenantId, owner, app.id, late.keyHash);
    const pending = r.handle(late, { eventListenersRequests: null, events: null, listenedEventClassFQNs: ['org.example.Ping'] }, null);
    late.isOpen = false;
    r.leave(late);
    await pending;
    r.tryFast(a, [ev(0)]);
    expect(late.got).toEqual([]);
    expect(r.members).toBe(1);
    expect(stats.eventsDropped.get('slow_receiver') ?? 0).toBe(0);
    // And a request that reaches the relay after the close (queued behind a slow one) does nothing.
    const closed = new Peer(app);
    await store.attachEndpointToOwner(app.tenantId, owner, app.id, closed.keyHash);
    closed.isOpen = false;
    r.leave(closed);
    await r.handle(closed, { eventListenersRequests: null, events: null, listenedEventClassFQNs: ['org.example.Ping'] }, null);
    expect(closed.events).toBeNull();
    expect(r.members).toBe(1);
  });

  it('caps listeners queries and events per request', async () => {
    const { r, stats } = relay();
    const owner = uid('o');
    const a = await member(r, new Peer(app), owner);
    const b = await member(r, new Peer(app), owner);
    r.tryFast(a, Array.from({ length: 300 }, (_, i) => ev(i)));
    expect(b.got).toHaveLength(256);
    expect(stats.eventsDropped.get('invalid')).toBe(44);
    const out = { eventSyncResponse: null } as { eventSyncResponse: { eventListenersResponses: Array<{ result: string }> } | null };
    await r.handle(a, { eventListenersRequests: Array.from({ length: 20 }, (_, i) => ({ requestId: i, eventClassFQNs: ['org.example.Ping'] })), events: null, listenedEventClassFQNs: null }, out as never);
    expect(out.eventSyncResponse!.eventListenersResponses.map((x) => x.result)).toEqual([...Array(16).fill('SUCCESS'), ...Array(4).fill('FAILURE')]);
  });

  it('an endpoint without an owner sends to nobody (counted) and receives nothing', async () => {
    const { r, stats } = relay();
    const lone = await member(r, new Peer(app), null);
    expect(r.tryFast(lone, [ev(0), ev(1)])).toBe(true);
    expect(stats.eventsDropped.get('no_owner')).toBe(2);
    expect(r.members).toBeGreaterThanOrEqual(0);
  });

  it('a session that has not taken part goes the slow way once, then the fast way', async () => {
    const { r } = relay();
    const owner = uid('o');
    const b = await member(r, new Peer(app), owner);
    const a = new Peer(app);
    await store.attachEndpointToOwner(app.tenantId, owner, app.id, a.keyHash);
    expect(r.tryFast(a, [ev(0)])).toBe(false);
    await r.handle(a, { eventListenersRequests: null, events: [ev(0)], listenedEventClassFQNs: null }, null);
    expect(r.tryFast(a, [ev(1)])).toBe(true);
    expect(b.got).toHaveLength(2);
  });

  it('owner changes re-file a session at once: after a detach neither side reaches the other', async () => {
    const { r } = relay();
    const owner = uid('o');
    const a = await member(r, new Peer(app), owner);
    const b = await member(r, new Peer(app), owner);
    r.setOwner(b, null);
    r.tryFast(a, [ev(0)]);
    r.tryFast(b, [ev(0)]);
    expect(a.got).toEqual([]);
    expect(b.got).toEqual([]);
    r.setOwner(b, owner);
    r.tryFast(a, [ev(1)]);
    expect(b.got).toHaveLength(1);
    r.leave(b);
    r.tryFast(a, [ev(2)]);
    expect(b.got).toHaveLength(1);
  });

  it('declarations are stored (written only when they change) and answer listeners queries', async () => {
    const { r } = relay();
    const owner = uid('o');
    const a = await member(r, new Peer(app), owner, ['org.example.Ping']);
    const b = await member(r, new Peer(app), owner, ['org.example.Ping', 'org.example.Pong']);
    const offline = new Peer(app);
    await store.attachEndpointToOwner(app.tenantId, owner, app.id, offline.keyHash);
    await store.setEventClasses(app.id, offline.keyHash, ['org.example.Pong']);
    await member(r, new Peer(app), uid('stranger'), ['org.example.Ping', 'org.example.Pong']);
    expect(await store.getEventClasses(app.id, b.keyHash)).toEqual(['org.example.Ping', 'org.example.Pong']);

    const out = { eventSyncResponse: null } as { eventSyncResponse: { eventListenersResponses: Array<{ requestId: number; listeners: string[] | null; result: string }> | null } | null };
    await r.handle(a, {
      eventListenersRequests: [
        { requestId: 1, eventClassFQNs: ['org.example.Pong'] },
        { requestId: 2, eventClassFQNs: ['org.example.Ping', 'org.example.Pong'] },
        { requestId: 3, eventClassFQNs: ['org.example.Nobody'] },
      ],
      events: null,
      listenedEventClassFQNs: null,
    }, out as never);
    expect(out.eventSyncResponse!.eventListenersResponses).toEqual([
      { requestId: 1, listeners: [b.keyHash, offline.keyHash].sort(), result: 'SUCCESS' },
      { requestId: 2, listeners: [b.keyHash], result: 'SUCCESS' },
      { requestId: 3, listeners: [], result: 'SUCCESS' },
    ]);

    const lone = await member(r, new Peer(app), null);
    const out2 = { eventSyncResponse: null } as typeof out;
    await r.handle(lone, { eventListenersRequests: [{ requestId: 9, eventClassFQNs: ['org.example.Ping'] }], events: null, listenedEventClassFQNs: null }, out2 as never);
    expect(out2.eventSyncResponse!.eventListenersResponses).toEqual([{ requestId: 9, listeners: null, result: 'FAILURE' }]);
  });

  it('refuses a malformed declaration with LK_EVENT_CLASSES_INVALID and keeps the previous one', async () => {
    const { r } = relay();
    const a = await member(r, new Peer(app), uid('o'), ['org.example.Keep']);
    for (const bad of [[''], ['x'.repeat(256)], Array.from({ length: 257 }, (_, i) => `c${i}`)]) {
      const err = await r.handle(a, { eventListenersRequests: null, events: null, listenedEventClassFQNs: bad }, null).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LatchkeyError);
      expect((err as LatchkeyError).code).toBe('LK_EVENT_CLASSES_INVALID');
    }
    expect(await store.getEventClasses(app.id, a.keyHash)).toEqual(['org.example.Keep']);
    expect([...a.events!.listens]).toEqual(['org.example.Keep']);
  });

  it('with a shared bus, delivers events from other nodes to local sessions and skips its own', async () => {
    // Two relays ("nodes") on one bus that calls itself shared.
    const inner = new MemoryBus();
    const shared: Bus = {
      shared: true,
      nodeId: inner.nodeId,
      publish: (t: BusTopic, m: BusMessage) => inner.publish(t, m),
      publishToNode: (n: string, t: BusTopic, m: BusMessage) => inner.publishToNode(n, t, m),
      subscribe: (t: BusTopic, h: BusHandler) => inner.subscribe(t, h),
      ping: () => inner.ping(),
      close: () => inner.close(),
    };
    const n1 = relay(shared, new Stats(), 'n1');
    const n2 = relay(shared, new Stats(), 'n2');
    await n1.r.start();
    await n2.r.start();
    const owner = uid('o');
    const a = await member(n1.r, new Peer(app), owner);
    const b = await member(n2.r, new Peer(app), owner);
    const local = await member(n1.r, new Peer(app), owner);
    const stranger = await member(n2.r, new Peer(app), uid('x'));
    n1.r.tryFast(a, [ev(0, 'org.example.Ping', null, 'hello')]);
    await new Promise((r) => setImmediate(r));
    expect(b.got.map((e) => [e.source, e.eventData!.toString()])).toEqual([[a.keyHash, 'hello']]);
    expect(local.got).toHaveLength(1); // delivered once, locally, not again from the bus
    expect(a.got).toEqual([]);
    expect(stranger.got).toEqual([]);
    await n1.r.close();
    await n2.r.close();
  });

  it('isEventOnly: only requests carrying events and nothing else go unanswered', () => {
    const req = emptySyncRequest(1);
    expect(isEventOnly(req)).toBe(false);
    req.eventSyncRequest = { eventListenersRequests: null, events: [ev(0)], listenedEventClassFQNs: null };
    expect(isEventOnly(req)).toBe(true);
    req.eventSyncRequest.listenedEventClassFQNs = [];
    expect(isEventOnly(req)).toBe(false);
    req.eventSyncRequest = { eventListenersRequests: [], events: [], listenedEventClassFQNs: null };
    expect(isEventOnly(req)).toBe(false);
    req.eventSyncRequest = { eventListenersRequests: null, events: [ev(0)], listenedEventClassFQNs: null };
    req.profileSyncRequest = { profileBody: Buffer.from('{}'), endpointAccessToken: null };
    expect(isEventOnly(req)).toBe(false);
  });
});
