/**
 * Revocation (src/control/revocation.ts) with real parts: the credentials gate over the embedded
 * store with a memory cache, SessionControl on the in-memory bus, and a SessionRegistry holding a
 * fake session per node. What its doc comment promises: the status changes first (and nothing else
 * happens if that fails), this node's session ends at once, the revocation is written to the control
 * log where another node (same store, its own registry and cache, no bus between them) applies it at
 * its next poll, the cached status is dropped, and a handshake racing it is refused afterwards.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/bus-memory.js';
import { MemoryCache } from '../../src/cache/cache-memory.js';
import { Revocation } from '../../src/control/revocation.js';
import { SessionControl } from '../../src/control/session-control.js';
import { CredentialsGate, StoreCredentialsService, type CredentialsService } from '../../src/credentials/credentials.js';
import { Stats } from '../../src/metrics.js';
import { SessionRegistry } from '../../src/session/registry.js';
import type { Application, ControlEntry, ProtectionStore } from '../../src/store/store.js';
import { FakeSession } from '../helpers/fake-session.js';
import { openUnitWorld, silentLog, type UnitWorld } from '../helpers/unit-world.js';

const KEY = Buffer.from('spki of the endpoint key');

let world: UnitWorld;
beforeAll(async () => {
  world = await openUnitWorld();
});
afterAll(async () => {
  await world.close();
});

/** The control log part of the store, which can be taken down. */
function controlStore(): ProtectionStore & { down: boolean } {
  const s = world.store;
  const wrapped = {
    down: false,
    putBan: s.putBan.bind(s),
    deleteBan: s.deleteBan.bind(s),
    listBans: s.listBans.bind(s),
    async appendControl(e: ControlEntry) {
      if (wrapped.down) throw new Error('store down');
      return s.appendControl(e);
    },
    listControlSince: s.listControlSince.bind(s),
  };
  return wrapped;
}

interface Node {
  gate: CredentialsGate;
  registry: SessionRegistry;
  stats: Stats;
  control: SessionControl;
  revocation: Revocation;
  store: ProtectionStore & { down: boolean };
}

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) {
    await n.control.close();
    n.registry.close();
  }
});

/** One node: its own cache, bus, registry and control, on the shared store. */
async function node(extra: Array<[string, CredentialsService]> = []): Promise<Node> {
  const gate = new CredentialsGate(new Map([['trustful', new StoreCredentialsService(world.store, true)], ['internal', new StoreCredentialsService(world.store, false)], ...extra]), new MemoryCache(), { ttlMs: 60_000, negativeTtlMs: 1000 });
  const stats = new Stats();
  const registry = new SessionRegistry(stats, 10_000, 30_000, 3_600_000);
  const store = controlStore();
  const control = new SessionControl({ store, bus: new MemoryBus(), registry, invalidate: (appId, keyHash) => gate.invalidateOrThrow(appId, keyHash), pollMs: 3_600_000, log: silentLog });
  await control.start();
  const n = { gate, registry, stats, control, revocation: new Revocation(gate, control), store };
  nodes.push(n);
  return n;
}

/** An internal application with credentials for key hash `kh` bound (IN_USE) through `n`'s gate, so its cache holds IN_USE. */
async function boundCredentials(n: Node, kh = 'kh1'): Promise<Application> {
  const app = await world.app('internal');
  await n.gate.provide(app, kh, KEY);
  expect(await n.gate.bind(app, kh, kh, KEY)).toMatchObject({ ok: true });
  expect(await n.gate.lookup(app, kh)).toMatchObject({ status: 'IN_USE' });
  return app;
}

async function logged(appId: string): Promise<ControlEntry[]> {
  return (await world.store.listControlSince(0, 10_000)).filter((e) => e.appId === appId);
}

describe('Revocation', () => {
  it('changes the status, ends this node\'s session at once, writes the control log and drops the cached status', async () => {
    const a = await node();
    const app = await boundCredentials(a);
    const other = new FakeSession(a.registry, a.stats).establish(app.id, 'kh2');
    const s = new FakeSession(a.registry, a.stats).establish(app.id, 'kh1');
    const out = await a.revocation.revoke(app, 'kh1');
    expect(out?.record).toMatchObject({ status: 'REVOKED', credentialsId: 'kh1' });
    expect(out?.propagation).toEqual({ endedHere: 1, log: 'written', bus: 'local' });
    expect(s.ended).toEqual(['LK_CRED_REVOKED']);
    expect(other.ended).toEqual([]);
    expect((await world.store.getCredentials(app.id, 'kh1'))?.status).toBe('REVOKED');
    expect((await logged(app.id)).map((e) => [e.type, e.keyHash])).toEqual([['revoke', 'kh1']]);
    // The gate's cache held IN_USE: a reconnect now reads REVOKED, and a racing handshake is refused at its end.
    expect(await a.gate.lookup(app, 'kh1')).toMatchObject({ status: 'REVOKED' });
    expect(a.registry.recentlyRevoked(app.id, 'kh1')).toBe(true);
  });

  it('unknown credentials: null, nothing ended and nothing logged', async () => {
    const a = await node();
    const app = await world.app('internal');
    const s = new FakeSession(a.registry, a.stats).establish(app.id, 'kh1');
    expect(await a.revocation.revoke(app, 'kh1')).toBeNull();
    expect(s.ended).toEqual([]);
    expect(await logged(app.id)).toEqual([]);
    expect(a.registry.recentlyRevoked(app.id, 'kh1')).toBe(false);
  });

  it('a status change that fails: the caller gets the error, no session is ended, nothing is logged', async () => {
    const failing: CredentialsService = {
      provideCredentials: () => Promise.reject(new Error('unused')),
      lookupCredentials: async () => null,
      markCredentialsInUse: () => Promise.reject(new Error('unused')),
      markCredentialsRevoked: () => Promise.reject(new Error('credentials backend down')),
    };
    const a = await node([['failing', failing]]);
    const app = await world.app('failing', ['failing']);
    const s = new FakeSession(a.registry, a.stats).establish(app.id, 'kh1');
    await expect(a.revocation.revoke(app, 'kh1')).rejects.toThrow('credentials backend down');
    expect(s.ended).toEqual([]);
    expect(await logged(app.id)).toEqual([]);
  });

  it('another node with no bus in between ends its session and drops its cached status at its next poll of the log', async () => {
    const a = await node();
    const b = await node();
    const app = await boundCredentials(a);
    // Node b holds the endpoint's session and has IN_USE cached.
    expect(await b.gate.lookup(app, 'kh1')).toMatchObject({ status: 'IN_USE' });
    const there = new FakeSession(b.registry, b.stats).establish(app.id, 'kh1');
    // The shared store's log holds the earlier tests' entries (within the read overlap): apply those first.
    await b.control.poll();
    const before = b.control.appliedFromLog;
    expect((await a.revocation.revoke(app, 'kh1'))?.propagation.endedHere).toBe(0);
    expect(there.ended).toEqual([]);
    expect(await b.gate.lookup(app, 'kh1')).toMatchObject({ status: 'IN_USE' });
    await b.control.poll();
    expect(there.ended).toEqual(['LK_CRED_REVOKED']);
    expect(b.control.appliedFromLog).toBe(before + 1);
    expect(await b.gate.lookup(app, 'kh1')).toMatchObject({ status: 'REVOKED' });
    // Applied once: a second poll reads the same entry and does nothing more.
    await b.control.poll();
    expect(b.control.appliedFromLog).toBe(before + 1);
  });

  it('with the control log down the session still ends here; the entry waits in the outbox and is written at the next poll', async () => {
    const a = await node();
    const app = await boundCredentials(a);
    const s = new FakeSession(a.registry, a.stats).establish(app.id, 'kh1');
    a.store.down = true;
    expect((await a.revocation.revoke(app, 'kh1'))?.propagation).toEqual({ endedHere: 1, log: 'pending', bus: 'local' });
    expect(s.ended).toEqual(['LK_CRED_REVOKED']);
    expect(await logged(app.id)).toEqual([]);
    expect(a.control.outboxSize).toBe(1);
    a.store.down = false;
    await a.control.poll();
    expect(a.control.outboxSize).toBe(0);
    expect((await logged(app.id)).map((e) => e.type)).toEqual(['revoke']);
  });

  it('notifyRevoked (status changed in an external store): drops the stale cached status and ends the session', async () => {
    const a = await node();
    const app = await boundCredentials(a);
    const s = new FakeSession(a.registry, a.stats).establish(app.id, 'kh1');
    await world.store.revokeCredentials(app.id, 'kh1');
    expect(await a.gate.lookup(app, 'kh1')).toMatchObject({ status: 'IN_USE' });
    expect(await a.revocation.notifyRevoked(app, 'kh1')).toMatchObject({ endedHere: 1, log: 'written' });
    expect(s.ended).toEqual(['LK_CRED_REVOKED']);
    expect(await a.gate.lookup(app, 'kh1')).toMatchObject({ status: 'REVOKED' });
  });
});
