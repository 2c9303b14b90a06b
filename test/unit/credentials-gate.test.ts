/**
 * CredentialsGate (src/credentials/credentials.ts): which service decides (trustful, internal, a
 * custom plugin), the cache in front of it (hits, negative entries, TTLs, writes on bind/provide,
 * invalidation on revoke, failures counted as misses) and the mapping of views and bind results to
 * refusal codes. The built-in services run on the embedded store; the custom plugin is an in-memory
 * CredentialsService that counts how often the gate asks it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCache } from '../../src/cache/cache-memory.js';
import type { Cache } from '../../src/cache/cache.js';
import { bindRefusal, CredentialsGate, refusalFor, StoreCredentialsService, type CredentialsService } from '../../src/credentials/credentials.js';
import { LatchkeyError } from '../../src/errors.js';
import type { BindResult, CredentialsRecord } from '../../src/store/store.js';
import { openUnitWorld, type UnitWorld } from '../helpers/unit-world.js';

const TTL_MS = 60_000;
const NEGATIVE_TTL_MS = 1_000;
const KEY = Buffer.from('spki of the endpoint key');

/** A custom credentials plugin kept in memory, counting each call the gate makes. */
class CountingService implements CredentialsService {
  readonly records = new Map<string, CredentialsRecord>();
  lookups = 0;
  failLookups = false;
  async provideCredentials(appId: string, credentialsId: string, publicKey: Buffer | null): Promise<CredentialsRecord> {
    const rec: CredentialsRecord = { appId, credentialsId, publicKey, status: 'AVAILABLE', endpointId: null, createdAt: 0, updatedAt: 0 };
    this.records.set(credentialsId, rec);
    return rec;
  }
  async lookupCredentials(_appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
    this.lookups++;
    if (this.failLookups) throw new Error('plugin backend down');
    return this.records.get(credentialsId) ?? null;
  }
  async markCredentialsInUse(_appId: string, credentialsId: string, endpointId: string): Promise<BindResult> {
    const rec = this.records.get(credentialsId);
    if (!rec) return { ok: false, reason: 'UNKNOWN', record: null };
    if (rec.status === 'REVOKED') return { ok: false, reason: 'REVOKED', record: null };
    if (rec.status === 'IN_USE' && rec.endpointId !== endpointId) return { ok: false, reason: 'IN_USE', record: null };
    rec.status = 'IN_USE';
    rec.endpointId = endpointId;
    return { ok: true, record: { ...rec }, created: false };
  }
  async markCredentialsRevoked(_appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
    const rec = this.records.get(credentialsId);
    if (!rec) return null;
    rec.status = 'REVOKED';
    return { ...rec };
  }
}

/** A cache that is down: every call rejects. */
const downCache: Cache = {
  get: () => Promise.reject(new Error('cache down')),
  set: () => Promise.reject(new Error('cache down')),
  delete: () => Promise.reject(new Error('cache down')),
  setIfAbsent: () => Promise.reject(new Error('cache down')),
  close: async () => undefined,
};

let world: UnitWorld;
beforeAll(async () => {
  world = await openUnitWorld();
});
afterAll(async () => {
  await world.close();
});

function gate(o: { cache?: Cache; ttlMs?: number; negativeTtlMs?: number; plugin?: CountingService; cacheErrors?: unknown[]; storeDirect?: boolean } = {}): CredentialsGate {
  const services = new Map<string, CredentialsService>([
    ['trustful', new StoreCredentialsService(world.store, true)],
    ['internal', new StoreCredentialsService(world.store, false)],
    ['custom', o.plugin ?? new CountingService()],
  ]);
  return new CredentialsGate(services, o.cache ?? new MemoryCache(), {
    ttlMs: o.ttlMs ?? TTL_MS,
    negativeTtlMs: o.negativeTtlMs ?? NEGATIVE_TTL_MS,
    onCacheError: (err) => o.cacheErrors?.push(err),
    ...(o.storeDirect ? { storeDirect: true } : {}),
  });
}

describe('refusal mapping', () => {
  it('refusalFor: unknown refused unless the service accepts unknown keys; revoked; in use by another endpoint', () => {
    const view = (status: CredentialsRecord['status'], endpointId: string | null) => ({ status, endpointId, publicKey: null });
    expect(refusalFor(null, 'k', false)).toBe('LK_CRED_UNKNOWN');
    expect(refusalFor(null, 'k', true)).toBeNull();
    expect(refusalFor(view('AVAILABLE', null), 'k', false)).toBeNull();
    expect(refusalFor(view('IN_USE', 'k'), 'k', false)).toBeNull();
    expect(refusalFor(view('IN_USE', 'other'), 'k', true)).toBe('LK_CRED_IN_USE');
    expect(refusalFor(view('REVOKED', 'k'), 'k', true)).toBe('LK_CRED_REVOKED');
  });
  it('bindRefusal: each failed bind reason has its code', () => {
    expect(bindRefusal({ ok: true, record: {} as CredentialsRecord, created: false })).toBeNull();
    expect(bindRefusal({ ok: false, reason: 'REVOKED', record: null })).toBe('LK_CRED_REVOKED');
    expect(bindRefusal({ ok: false, reason: 'IN_USE', record: null })).toBe('LK_CRED_IN_USE');
    expect(bindRefusal({ ok: false, reason: 'UNKNOWN', record: null })).toBe('LK_CRED_UNKNOWN');
  });
});

describe('CredentialsGate: who decides', () => {
  it('trustful accepts unknown keys and records them IN_USE at bind; internal and custom plugins do not accept unknown keys', async () => {
    const g = gate();
    const trustful = await world.app('trustful');
    const internal = await world.app('internal');
    const custom = await world.app('custom', ['custom']);
    expect([g.acceptsUnknown(trustful), g.acceptsUnknown(internal), g.acceptsUnknown(custom)]).toEqual([true, false, false]);
    const created = await g.bind(trustful, 'k1', 'k1', KEY);
    expect(created.ok && created.created).toBe(true);
    expect((await world.store.getCredentials(trustful.id, 'k1'))?.status).toBe('IN_USE');
    expect(await g.bind(internal, 'k1', 'k1', KEY)).toMatchObject({ ok: false, reason: 'UNKNOWN' });
    expect(await world.store.getCredentials(internal.id, 'k1')).toBeNull();
  });

  it('an internal application binds only what was provisioned, to one endpoint', async () => {
    const g = gate();
    const internal = await world.app('internal');
    const rec = await g.provide(internal, 'k1', KEY);
    expect([rec.status, rec.endpointId]).toEqual(['AVAILABLE', null]);
    expect(await g.bind(internal, 'k1', 'k1', KEY)).toMatchObject({ ok: true, record: { status: 'IN_USE', endpointId: 'k1' } });
    expect(bindRefusal(await g.bind(internal, 'k1', 'someone-else', KEY))).toBe('LK_CRED_IN_USE');
    await g.revoke(internal, 'k1');
    expect(bindRefusal(await g.bind(internal, 'k1', 'k1', KEY))).toBe('LK_CRED_REVOKED');
  });

  it('a custom plugin is the one asked; an application naming a service that is not configured: LK_SERVER_UNAVAILABLE', async () => {
    const plugin = new CountingService();
    const g = gate({ plugin });
    const custom = await world.app('custom', ['custom']);
    await plugin.provideCredentials(custom.id, 'k1', KEY);
    expect(await g.lookup(custom, 'k1')).toMatchObject({ status: 'AVAILABLE', endpointId: null });
    expect(plugin.lookups).toBe(1);
    expect(await world.store.getCredentials(custom.id, 'k1')).toBeNull();
    const missing = { ...custom, credentialsService: 'not-configured' };
    expect(() => g.service(missing)).toThrow(expect.objectContaining({ code: 'LK_SERVER_UNAVAILABLE' }) as Error);
    await expect(g.lookup(missing, 'not-cached')).rejects.toMatchObject({ code: 'LK_SERVER_UNAVAILABLE' });
    plugin.failLookups = true;
    await expect(g.lookup(custom, 'k2')).rejects.toMatchObject({ code: 'LK_SERVER_UNAVAILABLE' });
  });
});

describe('CredentialsGate: storeDirect (a local store, a cache outside the process)', () => {
  /** A cache that counts its calls (and works: a MemoryCache behind). */
  function countingCache(): Cache & { calls: number } {
    const m = new MemoryCache();
    const c = {
      calls: 0,
      get: (k: string) => (c.calls++, m.get(k)),
      set: (k: string, v: string, t: number) => (c.calls++, m.set(k, v, t)),
      delete: (k: string) => (c.calls++, m.delete(k)),
      setIfAbsent: (k: string, v: string, t: number) => (c.calls++, m.setIfAbsent(k, v, t)),
      close: () => m.close(),
    };
    return c;
  }

  it('store-backed credentials are read from the store on every lookup and never touch the cache; a change is seen at once', async () => {
    const cache = countingCache();
    const g = gate({ cache, storeDirect: true });
    const app = await world.app('internal');
    await world.store.provisionCredentials(app.id, 'd1', KEY);
    expect(await g.lookup(app, 'd1')).toMatchObject({ status: 'AVAILABLE' });
    expect(await g.lookup(app, 'nope')).toBeNull();
    expect((await g.bind(app, 'd1', 'd1', KEY)).ok).toBe(true);
    expect(await g.lookup(app, 'd1')).toMatchObject({ status: 'IN_USE', endpointId: 'd1' });
    // Revoked behind the gate's back (another process, the admin API on another node): no TTL to wait out.
    await world.store.revokeCredentials(app.id, 'd1');
    expect(await g.lookup(app, 'd1')).toMatchObject({ status: 'REVOKED' });
    expect(cache.calls).toBe(0);
  });

  it('a plugin-backed service keeps the cache', async () => {
    const cache = countingCache();
    const plugin = new CountingService();
    const g = gate({ cache, plugin, storeDirect: true });
    const app = await world.app('custom', ['custom']);
    await plugin.provideCredentials(app.id, 'p1', KEY);
    for (let i = 0; i < 3; i++) expect(await g.lookup(app, 'p1')).toMatchObject({ status: 'AVAILABLE' });
    expect(plugin.lookups).toBe(1);
    expect(cache.calls).toBeGreaterThan(0);
  });
});

describe('CredentialsGate: the cache', () => {
  it('a known status is read from the service once per ttlMs, an unknown one once per negativeTtlMs', async () => {
    let now = 0;
    const plugin = new CountingService();
    const g = gate({ plugin, cache: new MemoryCache({ now: () => now }) });
    const app = await world.app('custom', ['custom']);
    await plugin.provideCredentials(app.id, 'known', KEY);
    for (let i = 0; i < 3; i++) expect(await g.lookup(app, 'known')).toMatchObject({ status: 'AVAILABLE' });
    expect(plugin.lookups).toBe(1);
    for (let i = 0; i < 3; i++) expect(await g.lookup(app, 'unknown')).toBeNull();
    expect(plugin.lookups).toBe(2);
    now += NEGATIVE_TTL_MS + 1;
    expect(await g.lookup(app, 'unknown')).toBeNull();
    expect(await g.lookup(app, 'known')).toMatchObject({ status: 'AVAILABLE' });
    expect(plugin.lookups).toBe(3);
    // A change behind the gate's back (the plugin's own store) shows once the entry expires.
    plugin.records.get('known')!.status = 'REVOKED';
    expect(await g.lookup(app, 'known')).toMatchObject({ status: 'AVAILABLE' });
    now += TTL_MS + 1;
    expect(await g.lookup(app, 'known')).toMatchObject({ status: 'REVOKED' });
    expect(plugin.lookups).toBe(4);
  });

  it('bind and provide write the cache; revoke drops the entry, so the next lookup reads REVOKED from the service', async () => {
    const plugin = new CountingService();
    const g = gate({ plugin });
    const app = await world.app('custom', ['custom']);
    await g.provide(app, 'k1', KEY);
    expect(await g.lookup(app, 'k1')).toMatchObject({ status: 'AVAILABLE' });
    expect(plugin.lookups).toBe(0);
    await g.bind(app, 'k1', 'k1', KEY);
    const view = await g.lookup(app, 'k1');
    expect([view?.status, view?.endpointId, view?.publicKey?.equals(KEY)]).toEqual(['IN_USE', 'k1', true]);
    expect(plugin.lookups).toBe(0);
    await g.revoke(app, 'k1');
    expect(await g.lookup(app, 'k1')).toMatchObject({ status: 'REVOKED' });
    expect(plugin.lookups).toBe(1);
  });

  it('ttl 0: no caching; a corrupt entry is a miss', async () => {
    const plugin = new CountingService();
    const cache = new MemoryCache();
    const uncached = gate({ plugin, cache, ttlMs: 0, negativeTtlMs: 0 });
    const app = await world.app('custom', ['custom']);
    await plugin.provideCredentials(app.id, 'k1', KEY);
    await uncached.lookup(app, 'k1');
    await uncached.lookup(app, 'k2');
    await uncached.lookup(app, 'k1');
    expect(plugin.lookups).toBe(3);
    await cache.set(`cred:${app.id}:k1`, '{not json', TTL_MS);
    expect(await gate({ plugin, cache }).lookup(app, 'k1')).toMatchObject({ status: 'AVAILABLE' });
    expect(plugin.lookups).toBe(4);
  });

  it('a cache that is down: the service answers, nothing is refused, each failure is reported; invalidateOrThrow throws', async () => {
    const errors: unknown[] = [];
    const g = gate({ cache: downCache, cacheErrors: errors });
    const app = await world.app('internal');
    await world.store.provisionCredentials(app.id, 'k1', KEY);
    expect(await g.lookup(app, 'k1')).toMatchObject({ status: 'AVAILABLE' });
    expect(errors).toHaveLength(2); // the get, then the set of what the store answered
    expect(await g.bind(app, 'k1', 'k1', KEY)).toMatchObject({ ok: true });
    expect(await g.revoke(app, 'k1')).toMatchObject({ status: 'REVOKED' });
    expect(errors).toHaveLength(4);
    await expect(g.invalidateOrThrow(app.id, 'k1')).rejects.toThrow('cache down');
    await g.invalidate(app.id, 'k1');
    expect(errors).toHaveLength(5);
    expect(errors.every((e) => e instanceof Error && !(e instanceof LatchkeyError))).toBe(true);
  });
});
