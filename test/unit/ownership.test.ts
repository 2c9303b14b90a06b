/**
 * OwnershipService (src/ownership/ownership.ts) on the embedded store, a memory cache and one
 * in-memory bus shared by two services standing for two nodes: owner attach through the
 * application's verifier (default or named, built-in or custom module), moves between owners,
 * endpoint access tokens, detach rules, durable notifications and the "no pending" cache, and the
 * owner-change and notify messages each node acts on (its own owner messages skipped).
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/bus-memory.js';
import { MemoryCache } from '../../src/cache/cache-memory.js';
import { OwnershipService } from '../../src/ownership/ownership.js';
import { emptySyncResponse, types } from '../../src/protocol/schemas.js';
import type { Application } from '../../src/store/store.js';
import { ROOT } from '../helpers/root.js';
import { openUnitWorld, silentLog, type UnitWorld } from '../helpers/unit-world.js';

const SHARED_SECRET_MODULE = path.join(ROOT, 'test/fixtures/verifiers/shared-secret.mjs');
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

let world: UnitWorld;
beforeAll(async () => {
  world = await openUnitWorld();
});
afterAll(async () => {
  await world.close();
});

/** A node as ownership sees it: records what it was asked to do to its live sessions. */
class RecordingNode {
  readonly owners: Array<[string, string, string | null]> = [];
  readonly delivered: string[] = [];
  constructor(readonly id: string) {}
  ownerChanged(appId: string, keyHash: string, owner: string | null): void {
    this.owners.push([appId, keyHash, owner]);
  }
  deliverPending(_appId: string, keyHash: string): void {
    this.delivered.push(keyHash);
  }
}

const services: OwnershipService[] = [];
afterEach(async () => {
  for (const s of services.splice(0)) await s.close();
});

async function twoNodes(): Promise<{ a: OwnershipService; b: OwnershipService; na: RecordingNode; nb: RecordingNode; cache: MemoryCache }> {
  const bus = new MemoryBus();
  const cache = new MemoryCache();
  const na = new RecordingNode('node-a');
  const nb = new RecordingNode('node-b');
  const a = new OwnershipService(world.store, bus, silentLog, cache, na, { 'shared-secret': SHARED_SECRET_MODULE });
  const b = new OwnershipService(world.store, bus, silentLog, cache, nb);
  await a.start();
  await b.start();
  services.push(a, b);
  return { a, b, na, nb, cache };
}

async function verifier(app: Application, token: string, pluginTypeName: string, jsonConfiguration = '{}', isDefault = false): Promise<void> {
  await world.store.createVerifier({ appId: app.id, verifierToken: token, pluginTypeName, name: token, description: '', jsonConfiguration, createdAt: 0, updatedAt: 0 });
  if (isDefault) await world.store.setDefaultVerifier(app.id, token);
}

async function ownerOf(app: Application, keyHash: string): Promise<string | null> {
  return (await world.store.getEndpointOwner(app.id, keyHash))?.ownerExternalId ?? null;
}

describe('OwnershipService: owner attach', () => {
  it('the default verifier accepts: attached; this node re-files at once, the other node from the bus; a re-attach to the same owner changes nothing', async () => {
    const { a, na, nb } = await twoNodes();
    const app = await world.app();
    await verifier(app, 'dev', 'trustful', '{}', true);
    expect(await a.attachUser(app, 'ep1', 'alice', 'any token', null)).toEqual({ ok: true });
    expect(await ownerOf(app, 'ep1')).toBe('alice');
    expect(na.owners).toEqual([[app.id, 'ep1', 'alice']]);
    await settle();
    expect(nb.owners).toEqual([[app.id, 'ep1', 'alice']]);
    // Node a skips its own bus message: still one call.
    expect(na.owners).toHaveLength(1);
    expect(await a.attachUser(app, 'ep1', 'alice', 'any token', null)).toEqual({ ok: true });
    await settle();
    expect([na.owners.length, nb.owners.length]).toEqual([1, 1]);
    // Moving to another owner is one atomic change, told like the first.
    expect(await a.attachUser(app, 'ep1', 'bob', 'any token', null)).toEqual({ ok: true });
    await settle();
    expect(await ownerOf(app, 'ep1')).toBe('bob');
    expect([na.owners.at(-1), nb.owners.at(-1)]).toEqual([[app.id, 'ep1', 'bob'], [app.id, 'ep1', 'bob']]);
  });

  it('a named custom verifier decides; its refusal attaches nothing', async () => {
    const { a, na } = await twoNodes();
    const app = await world.app();
    await verifier(app, 'corp', 'shared-secret', JSON.stringify({ secret: 's3cret' }));
    expect(await a.attachUser(app, 'ep1', 'alice', 'wrong:alice', 'corp')).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    expect(await a.attachUser(app, 'ep1', 'alice', 's3cret:bob', 'corp')).toMatchObject({ ok: false, code: 'OTHER' });
    expect(await ownerOf(app, 'ep1')).toBeNull();
    expect(na.owners).toEqual([]);
    expect(await a.attachUser(app, 'ep1', 'alice', 's3cret:alice', 'corp')).toEqual({ ok: true });
    expect(await ownerOf(app, 'ep1')).toBe('alice');
  });

  it('refused before any verifier: an unusable owner id, no default verifier, an unknown verifier token, a configuration that cannot build one', async () => {
    const { a } = await twoNodes();
    const app = await world.app();
    expect(await a.attachUser(app, 'ep1', '', 'token', null)).toMatchObject({ ok: false, code: 'OTHER' });
    expect(await a.attachUser(app, 'ep1', 'alice', 'token', null)).toMatchObject({ ok: false, code: 'NO_VERIFIER_CONFIGURED' });
    expect(await a.attachUser(app, 'ep1', 'alice', 'token', 'no-such-verifier')).toMatchObject({ ok: false, code: 'NO_VERIFIER_CONFIGURED' });
    await verifier(app, 'broken', 'no-such-type');
    expect(await a.attachUser(app, 'ep1', 'alice', 'token', 'broken')).toMatchObject({ ok: false, code: 'INTERNAL_ERROR' });
    expect(await ownerOf(app, 'ep1')).toBeNull();
  });
});

describe('OwnershipService: endpoint access tokens and detach', () => {
  async function attached(a: OwnershipService, owner: string, ...keyHashes: string[]): Promise<Application> {
    const app = await world.app();
    await verifier(app, 'dev', 'trustful', '{}', true);
    for (const kh of keyHashes) expect(await a.attachUser(app, kh, owner, 't', null)).toEqual({ ok: true });
    return app;
  }

  it('an attached endpoint presenting a published token attaches its publisher to its owner, which is notified durably', async () => {
    const { a, na, nb } = await twoNodes();
    const app = await attached(a, 'alice', 'requester');
    expect(await a.setAccessToken(app, 'target', 'tok-1')).toBe(true);
    expect(await a.attachEndpoint(app, 'unowned', 'tok-1')).toBeNull();
    expect(await a.attachEndpoint(app, 'requester', 'no-such-token')).toBeNull();
    expect(await ownerOf(app, 'target')).toBeNull();
    expect(await a.attachEndpoint(app, 'requester', 'tok-1')).toBe('target');
    expect(await ownerOf(app, 'target')).toBe('alice');
    const queued = await a.outbox.pending(app.id, 'target', 10);
    expect(queued).toHaveLength(1);
    const notice = types.syncResponse.fromBuffer(queued[0]!.payload) as ReturnType<typeof emptySyncResponse>;
    expect(notice.userSyncResponse?.userAttachNotification).toEqual({ userExternalId: 'alice', endpointKeyHash: 'requester' });
    await settle();
    // The notify message reaches every node, this one's too: whichever holds the session delivers.
    expect([na.delivered, nb.delivered]).toEqual([['target'], ['target']]);
  });

  it('a token refers to one endpoint of the tenant; a publisher owned by someone else is not taken over; an endpoint cannot attach itself', async () => {
    const { a } = await twoNodes();
    const app = await attached(a, 'alice', 'requester');
    expect(await a.setAccessToken(app, 'target', 'tok-2')).toBe(true);
    expect(await a.setAccessToken(app, 'another', 'tok-2')).toBe(false);
    expect(await a.setAccessToken(app, 'requester', 'own-token')).toBe(true);
    expect(await a.attachEndpoint(app, 'requester', 'own-token')).toBeNull();
    expect(await a.attachUser(app, 'target', 'bob', 't', null)).toEqual({ ok: true });
    expect(await a.attachEndpoint(app, 'requester', 'tok-2')).toBeNull();
    expect(await ownerOf(app, 'target')).toBe('bob');
  });

  it('detach: by the endpoint itself, or by another endpoint of the same owner (which notifies the target); not by a stranger', async () => {
    const { a, na } = await twoNodes();
    const app = await attached(a, 'alice', 'e1', 'e2', 'e3');
    expect(await a.attachUser(app, 'mallory', 'mallory', 't', null)).toEqual({ ok: true });
    expect(await a.detachEndpoint(app, 'mallory', 'e1')).toBe(false);
    expect(await a.detachEndpoint(app, 'unowned', 'e1')).toBe(false);
    expect(await ownerOf(app, 'e1')).toBe('alice');
    expect(await a.detachEndpoint(app, 'e1', 'e1')).toBe(true);
    expect(await ownerOf(app, 'e1')).toBeNull();
    expect(na.owners.at(-1)).toEqual([app.id, 'e1', null]);
    expect(await a.outbox.pending(app.id, 'e1', 10)).toEqual([]);
    expect(await a.detachEndpoint(app, 'e1', 'e1')).toBe(false);
    expect(await a.detachEndpoint(app, 'e2', 'e3')).toBe(true);
    const [queued] = await a.outbox.pending(app.id, 'e3', 10);
    const notice = types.syncResponse.fromBuffer(queued!.payload) as ReturnType<typeof emptySyncResponse>;
    expect(notice.userSyncResponse?.userDetachNotification).toEqual({ endpointKeyHash: 'e2' });
  });
});

describe('OwnershipService: notifications', () => {
  it('"no pending" is remembered in the cache until a notify; ack removes what was delivered', async () => {
    const { a } = await twoNodes();
    const app = await world.app();
    expect(await a.outbox.mayHavePending(app.id, 'ep1')).toBe(true);
    await a.outbox.markNoPending(app.id, 'ep1');
    expect(await a.outbox.mayHavePending(app.id, 'ep1')).toBe(false);
    expect(await a.outbox.mayHavePending(app.id, 'ep2')).toBe(true);
    await a.notify(app.id, 'ep1', emptySyncResponse(-1));
    await a.notify(app.id, 'ep1', emptySyncResponse(-1));
    expect(await a.outbox.mayHavePending(app.id, 'ep1')).toBe(true);
    const queued = await a.outbox.pending(app.id, 'ep1', 10);
    expect(queued).toHaveLength(2);
    await a.outbox.ack(app.id, 'ep1', queued[0]!.seq);
    expect((await a.outbox.pending(app.id, 'ep1', 10)).map((n) => n.seq)).toEqual([queued[1]!.seq]);
  });

  it('after close() a node no longer acts on bus messages', async () => {
    const { a, b, nb } = await twoNodes();
    const app = await world.app();
    await b.close();
    await a.notify(app.id, 'ep1', emptySyncResponse(-1));
    await a.ownerChanged(app.id, 'ep1', 'alice');
    await settle();
    expect([nb.delivered, nb.owners]).toEqual([[], []]);
  });
});
