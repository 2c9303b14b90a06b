/**
 * The Store contract (src/store/store.ts) as one vitest suite; every backend runs it:
 *
 *   storeContract('embedded', () => EmbeddedStore.open(dir));
 *
 * `open` is called once before the suite and again by the persistence test after closing the first
 * store, so it must return a new store over the SAME backing data every time (same directory, same
 * keyspace). Every test uses fresh random ids, so several suites and earlier runs may share one
 * backend. Errors are checked by `code`, never by message.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatchkeyError, type ErrorCode } from '../../src/errors.js';
import type { Application, EndpointRecord, Store, Tenant } from '../../src/store/store.js';

export interface StoreContractOptions {
  skip?: boolean;
}

/** Random id suffix: unique per call, so tests never see each other's rows. */
export function uid(prefix: string): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

/** A key hash shaped like the real ones: base64url of 32 bytes. */
export function randomKeyHash(): string {
  return randomBytes(32).toString('base64url');
}

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(LatchkeyError);
  expect((err as LatchkeyError).code).toBe(code);
}

export function storeContract(name: string, open: () => Promise<Store>, opts: StoreContractOptions = {}): void {
  describe.skipIf(Boolean(opts.skip))(`Store contract: ${name}`, () => {
    let store: Store;

    beforeAll(async () => {
      store = await open();
    });
    afterAll(async () => {
      await store?.close();
    });

    const tenant = (over: Partial<Tenant> = {}): Tenant => ({ id: uid('t'), name: 'Tenant', createdAt: Date.now(), ...over });
    const app = (tenantId: string, over: Partial<Application> = {}): Application => ({
      id: uid('a'),
      tenantId,
      name: 'App',
      appToken: uid('tok'),
      credentialsService: 'internal',
      profileSchema: null,
      createdAt: Date.now(),
      ...over,
    });
    async function newApp(over: Partial<Application> = {}): Promise<Application> {
      const t = await store.createTenant(tenant());
      return store.createApplication(app(t.id, over));
    }
    const endpoint = (appId: string, over: Partial<EndpointRecord> = {}): EndpointRecord => ({
      appId,
      keyHash: randomKeyHash(),
      credentialsId: uid('c'),
      publicKey: randomBytes(294),
      profileBody: randomBytes(40),
      profileHash: randomBytes(32),
      serverProfileBody: '{"tier":"gold"}',
      createdAt: Date.now(),
      updatedAt: Date.now(),
      ...over,
    });

    describe('tenants', () => {
      it('creates, gets and lists a tenant', async () => {
        const t = tenant({ name: 'Acme' });
        expect(await store.createTenant(t)).toEqual(t);
        expect(await store.getTenant(t.id)).toEqual(t);
        expect((await store.listTenants()).filter((x) => x.id === t.id)).toEqual([t]);
      });

      it('returns null for a missing tenant', async () => {
        expect(await store.getTenant(uid('missing'))).toBeNull();
      });

      it('refuses a duplicate id with LK_CONFLICT and keeps the first', async () => {
        const t = await store.createTenant(tenant({ name: 'first' }));
        await expectCode(store.createTenant({ ...t, name: 'second' }), 'LK_CONFLICT');
        expect((await store.getTenant(t.id))?.name).toBe('first');
      });
    });

    describe('applications', () => {
      it('creates an application and finds it by id, token and tenant', async () => {
        const t = await store.createTenant(tenant());
        const a = app(t.id, { profileSchema: '{"type":"record","name":"P","fields":[]}', credentialsService: 'trustful' });
        expect(await store.createApplication(a)).toEqual(a);
        expect(await store.getApplication(a.id)).toEqual(a);
        expect(await store.getApplicationByToken(a.appToken)).toEqual(a);
        expect(await store.listApplications(t.id)).toEqual([a]);
      });

      it('returns null / [] for missing ids and tokens', async () => {
        expect(await store.getApplication(uid('missing'))).toBeNull();
        expect(await store.getApplicationByToken(uid('missing'))).toBeNull();
        expect(await store.listApplications(uid('missing'))).toEqual([]);
      });

      it('refuses an unknown tenant with LK_TENANT_NOT_FOUND and writes nothing', async () => {
        const a = app(uid('no-tenant'));
        await expectCode(store.createApplication(a), 'LK_TENANT_NOT_FOUND');
        expect(await store.getApplication(a.id)).toBeNull();
        expect(await store.getApplicationByToken(a.appToken)).toBeNull();
      });

      it('refuses a duplicate id with LK_CONFLICT', async () => {
        const a = await newApp();
        await expectCode(store.createApplication({ ...a, appToken: uid('tok') }), 'LK_CONFLICT');
        expect(await store.getApplication(a.id)).toEqual(a);
      });

      it('refuses a taken token with LK_APP_TOKEN_TAKEN and writes nothing', async () => {
        const a = await newApp();
        const b = app(a.tenantId, { appToken: a.appToken });
        await expectCode(store.createApplication(b), 'LK_APP_TOKEN_TAKEN');
        expect(await store.getApplication(b.id)).toBeNull();
        expect(await store.getApplicationByToken(a.appToken)).toEqual(a);
        expect(await store.listApplications(a.tenantId)).toEqual([a]);
      });

      it('lets exactly one of concurrent creators claim a token', async () => {
        const t = await store.createTenant(tenant());
        const token = uid('tok');
        const apps = Array.from({ length: 10 }, () => app(t.id, { appToken: token }));
        const results = await Promise.allSettled(apps.map((a) => store.createApplication(a)));
        const won = results.filter((r) => r.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const r of results) {
          if (r.status === 'rejected') expect((r.reason as LatchkeyError).code).toBe('LK_APP_TOKEN_TAKEN');
        }
        const winner = (won[0] as PromiseFulfilledResult<Application>).value;
        expect(await store.getApplicationByToken(token)).toEqual(winner);
        expect(await store.listApplications(t.id)).toEqual([winner]);
      });

      it('lists the applications of one tenant ordered by id', async () => {
        const t = await store.createTenant(tenant());
        const other = await store.createTenant(tenant());
        const base = uid('a');
        const ids = [`${base}-m`, `${base}-c`, `${base}-x`, `${base}-a`];
        const created: Application[] = [];
        for (const id of ids) created.push(await store.createApplication(app(t.id, { id })));
        await store.createApplication(app(other.id));
        const listed = await store.listApplications(t.id);
        expect(listed.map((a) => a.id)).toEqual([...ids].sort());
        expect(listed).toEqual([...created].sort((x, y) => (x.id < y.id ? -1 : 1)));
      });
    });

    describe('credentials', () => {
      it('provisions AVAILABLE credentials with and without a public key', async () => {
        const a = await newApp();
        const pk = randomBytes(294);
        const withKey = await store.provisionCredentials(a.id, uid('c'), pk);
        expect(withKey).toMatchObject({ appId: a.id, status: 'AVAILABLE', endpointId: null });
        expect(Buffer.isBuffer(withKey.publicKey) && withKey.publicKey.equals(pk)).toBe(true);
        expect(withKey.updatedAt).toBe(withKey.createdAt);
        expect(await store.getCredentials(a.id, withKey.credentialsId)).toEqual(withKey);

        const noKey = await store.provisionCredentials(a.id, uid('c'), null);
        expect(noKey.publicKey).toBeNull();
        expect(await store.getCredentials(a.id, noKey.credentialsId)).toEqual(noKey);
      });

      it('refuses an unknown application with LK_APP_NOT_FOUND', async () => {
        const appId = uid('no-app');
        const credId = uid('c');
        await expectCode(store.provisionCredentials(appId, credId, null), 'LK_APP_NOT_FOUND');
        expect(await store.getCredentials(appId, credId)).toBeNull();
      });

      it('refuses existing credentials in any status with LK_CRED_EXISTS', async () => {
        const a = await newApp();
        const available = await store.provisionCredentials(a.id, uid('c'), null);
        await expectCode(store.provisionCredentials(a.id, available.credentialsId, null), 'LK_CRED_EXISTS');

        const inUse = await store.provisionCredentials(a.id, uid('c'), null);
        expect((await store.bindCredentials(a.id, inUse.credentialsId, 'ep-1')).ok).toBe(true);
        await expectCode(store.provisionCredentials(a.id, inUse.credentialsId, null), 'LK_CRED_EXISTS');

        const revoked = await store.provisionCredentials(a.id, uid('c'), null);
        await store.revokeCredentials(a.id, revoked.credentialsId);
        await expectCode(store.provisionCredentials(a.id, revoked.credentialsId, null), 'LK_CRED_EXISTS');
        expect((await store.getCredentials(a.id, revoked.credentialsId))?.status).toBe('REVOKED');
      });

      it('returns null for missing credentials and scopes them by application', async () => {
        const a = await newApp();
        const b = await newApp();
        const c = await store.provisionCredentials(a.id, uid('c'), null);
        expect(await store.getCredentials(a.id, uid('c'))).toBeNull();
        expect(await store.getCredentials(b.id, c.credentialsId)).toBeNull();
      });
    });

    describe('bindCredentials', () => {
      it('moves AVAILABLE to IN_USE and is idempotent for the same endpoint', async () => {
        const a = await newApp();
        const c = await store.provisionCredentials(a.id, uid('c'), randomBytes(294));
        const first = await store.bindCredentials(a.id, c.credentialsId, 'ep-1');
        expect(first).toMatchObject({ ok: true, created: false, record: { status: 'IN_USE', endpointId: 'ep-1' } });
        expect(first.record?.publicKey).toEqual(c.publicKey);
        expect(await store.getCredentials(a.id, c.credentialsId)).toMatchObject({ status: 'IN_USE', endpointId: 'ep-1' });

        const again = await store.bindCredentials(a.id, c.credentialsId, 'ep-1');
        expect(again).toMatchObject({ ok: true, created: false, record: { status: 'IN_USE', endpointId: 'ep-1' } });
      });

      it('refuses another endpoint with IN_USE and keeps the binding', async () => {
        const a = await newApp();
        const c = await store.provisionCredentials(a.id, uid('c'), null);
        await store.bindCredentials(a.id, c.credentialsId, 'ep-1');
        const other = await store.bindCredentials(a.id, c.credentialsId, 'ep-2');
        expect(other).toMatchObject({ ok: false, reason: 'IN_USE', record: { status: 'IN_USE', endpointId: 'ep-1' } });
        // A key offered by the intruder changes nothing either.
        const withKey = await store.bindCredentials(a.id, c.credentialsId, 'ep-2', randomBytes(294));
        expect(withKey).toMatchObject({ ok: false, reason: 'IN_USE' });
        expect(await store.getCredentials(a.id, c.credentialsId)).toMatchObject({ status: 'IN_USE', endpointId: 'ep-1', publicKey: null });
      });

      it('answers UNKNOWN for missing credentials and creates nothing', async () => {
        const a = await newApp();
        const credId = uid('c');
        expect(await store.bindCredentials(a.id, credId, 'ep-1')).toEqual({ ok: false, reason: 'UNKNOWN', record: null });
        expect(await store.getCredentials(a.id, credId)).toBeNull();
      });

      it('creates missing credentials IN_USE when given createWithKey', async () => {
        const a = await newApp();
        const credId = uid('c');
        const pk = randomBytes(294);
        const created = await store.bindCredentials(a.id, credId, 'ep-1', pk);
        expect(created).toMatchObject({ ok: true, created: true, record: { appId: a.id, credentialsId: credId, status: 'IN_USE', endpointId: 'ep-1' } });
        const stored = await store.getCredentials(a.id, credId);
        expect(stored).toEqual(created.record);
        expect(Buffer.isBuffer(stored?.publicKey) && stored!.publicKey!.equals(pk)).toBe(true);

        expect(await store.bindCredentials(a.id, credId, 'ep-1', pk)).toMatchObject({ ok: true, created: false });
        expect(await store.bindCredentials(a.id, credId, 'ep-1')).toMatchObject({ ok: true, created: false });
        expect(await store.bindCredentials(a.id, credId, 'ep-2', randomBytes(294))).toMatchObject({ ok: false, reason: 'IN_USE' });
      });

      it('refuses REVOKED credentials, with or without createWithKey', async () => {
        const a = await newApp();
        const c = await store.provisionCredentials(a.id, uid('c'), null);
        await store.bindCredentials(a.id, c.credentialsId, 'ep-1');
        await store.revokeCredentials(a.id, c.credentialsId);
        expect(await store.bindCredentials(a.id, c.credentialsId, 'ep-1')).toMatchObject({ ok: false, reason: 'REVOKED', record: { status: 'REVOKED' } });
        expect(await store.bindCredentials(a.id, c.credentialsId, 'ep-2')).toMatchObject({ ok: false, reason: 'REVOKED' });
        expect(await store.bindCredentials(a.id, c.credentialsId, 'ep-1', randomBytes(294))).toMatchObject({ ok: false, reason: 'REVOKED' });
        expect((await store.getCredentials(a.id, c.credentialsId))?.status).toBe('REVOKED');
      });

      it('lets exactly one of 20 concurrent binders win AVAILABLE credentials', async () => {
        const a = await newApp();
        const c = await store.provisionCredentials(a.id, uid('c'), null);
        const endpoints = Array.from({ length: 20 }, (_, i) => `ep-${i}`);
        const results = await Promise.all(endpoints.map((ep) => store.bindCredentials(a.id, c.credentialsId, ep)));
        const winners = results.filter((r) => r.ok);
        expect(winners).toHaveLength(1);
        const winner = winners[0]!.record!.endpointId;
        for (const r of results) {
          if (!r.ok) expect(r).toMatchObject({ reason: 'IN_USE', record: { endpointId: winner } });
        }
        expect(await store.getCredentials(a.id, c.credentialsId)).toMatchObject({ status: 'IN_USE', endpointId: winner });
      });

      it('lets exactly one of 20 concurrent createWithKey binders create the credentials', async () => {
        const a = await newApp();
        const credId = uid('c');
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.bindCredentials(a.id, credId, `ep-${i}`, randomBytes(294))),
        );
        const winners = results.filter((r) => r.ok);
        expect(winners).toHaveLength(1);
        expect(winners[0]).toMatchObject({ created: true });
        const winner = winners[0]!.record!.endpointId;
        for (const r of results) {
          if (!r.ok) expect(r).toMatchObject({ reason: 'IN_USE', record: { endpointId: winner } });
        }
        expect(await store.getCredentials(a.id, credId)).toEqual(winners[0]!.record);
      });
    });

    describe('revokeCredentials', () => {
      it('revokes AVAILABLE and IN_USE credentials; revoking twice is fine', async () => {
        const a = await newApp();
        const available = await store.provisionCredentials(a.id, uid('c'), null);
        const r1 = await store.revokeCredentials(a.id, available.credentialsId);
        expect(r1).toMatchObject({ appId: a.id, credentialsId: available.credentialsId, status: 'REVOKED' });
        expect(r1!.updatedAt).toBeGreaterThanOrEqual(available.updatedAt);
        expect(await store.getCredentials(a.id, available.credentialsId)).toEqual(r1);
        expect(await store.revokeCredentials(a.id, available.credentialsId)).toMatchObject({ status: 'REVOKED' });

        const inUse = await store.provisionCredentials(a.id, uid('c'), null);
        await store.bindCredentials(a.id, inUse.credentialsId, 'ep-1');
        expect(await store.revokeCredentials(a.id, inUse.credentialsId)).toMatchObject({ status: 'REVOKED' });
        expect((await store.getCredentials(a.id, inUse.credentialsId))?.status).toBe('REVOKED');
      });

      it('returns null for missing credentials and creates nothing', async () => {
        const a = await newApp();
        const credId = uid('c');
        expect(await store.revokeCredentials(a.id, credId)).toBeNull();
        expect(await store.getCredentials(a.id, credId)).toBeNull();
      });

      it('is terminal: bind after revoke is refused', async () => {
        const a = await newApp();
        const c = await store.provisionCredentials(a.id, uid('c'), null);
        await store.revokeCredentials(a.id, c.credentialsId);
        expect(await store.bindCredentials(a.id, c.credentialsId, 'ep-1')).toMatchObject({ ok: false, reason: 'REVOKED' });
        expect((await store.getCredentials(a.id, c.credentialsId))?.status).toBe('REVOKED');
      });
    });

    describe('registrations', () => {
      it('provisions, replaces and gets a registration without existing credentials', async () => {
        const a = await newApp();
        const credId = uid('c');
        const r1 = await store.provisionRegistration(a.id, credId, '{"tier":"gold"}');
        expect(r1).toMatchObject({ appId: a.id, credentialsId: credId, serverProfileBody: '{"tier":"gold"}' });
        expect(await store.getRegistration(a.id, credId)).toEqual(r1);

        const r2 = await store.provisionRegistration(a.id, credId, null);
        expect(r2.serverProfileBody).toBeNull();
        expect(r2.updatedAt).toBeGreaterThanOrEqual(r1.updatedAt);
        expect(await store.getRegistration(a.id, credId)).toEqual(r2);
        expect(await store.getCredentials(a.id, credId)).toBeNull();
      });

      it('refuses an unknown application with LK_APP_NOT_FOUND; missing -> null', async () => {
        const appId = uid('no-app');
        const credId = uid('c');
        await expectCode(store.provisionRegistration(appId, credId, null), 'LK_APP_NOT_FOUND');
        expect(await store.getRegistration(appId, credId)).toBeNull();
        const a = await newApp();
        expect(await store.getRegistration(a.id, uid('c'))).toBeNull();
      });
    });

    describe('endpoints', () => {
      it('saves, replaces and gets an endpoint with Buffers intact', async () => {
        const a = await newApp();
        const e = endpoint(a.id, { profileBody: Buffer.alloc(0), serverProfileBody: null });
        expect(await store.saveEndpoint(e)).toEqual(e);
        const got = await store.getEndpoint(a.id, e.keyHash);
        expect(got).toEqual(e);
        for (const field of ['publicKey', 'profileBody', 'profileHash'] as const) {
          expect(Buffer.isBuffer(got![field]), field).toBe(true);
          expect(got![field].equals(e[field]), field).toBe(true);
        }

        const replaced = { ...e, profileBody: randomBytes(10), profileHash: randomBytes(32), serverProfileBody: '{}', updatedAt: e.updatedAt + 1 };
        await store.saveEndpoint(replaced);
        expect(await store.getEndpoint(a.id, e.keyHash)).toEqual(replaced);
      });

      it('returns null for a missing endpoint and scopes endpoints by application', async () => {
        const a = await newApp();
        const b = await newApp();
        const e = await store.saveEndpoint(endpoint(a.id));
        expect(await store.getEndpoint(a.id, randomKeyHash())).toBeNull();
        expect(await store.getEndpoint(b.id, e.keyHash)).toBeNull();
      });

      it('pages endpoints of one application by key hash', async () => {
        const a = await newApp();
        const other = await newApp();
        const saved: EndpointRecord[] = [];
        for (let i = 0; i < 25; i++) saved.push(await store.saveEndpoint(endpoint(a.id)));
        await store.saveEndpoint(endpoint(other.id));

        const pages: EndpointRecord[][] = [];
        let cursor: string | null = null;
        do {
          const page: Awaited<ReturnType<Store['listEndpoints']>> = await store.listEndpoints(a.id, 10, cursor);
          pages.push(page.items);
          cursor = page.next;
          expect(pages.length).toBeLessThanOrEqual(3);
        } while (cursor !== null);

        expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
        const all = pages.flat();
        expect(new Set(all.map((e) => e.keyHash)).size).toBe(25);
        const byKeyHash = [...saved].sort((x, y) => (x.keyHash < y.keyHash ? -1 : 1));
        expect(all).toEqual(byKeyHash);
      });

      it('ends with next = null when the last page is full, and lists nothing for an empty app', async () => {
        const a = await newApp();
        for (let i = 0; i < 4; i++) await store.saveEndpoint(endpoint(a.id));
        const p1 = await store.listEndpoints(a.id, 2);
        expect(p1.items).toHaveLength(2);
        expect(p1.next).not.toBeNull();
        const p2 = await store.listEndpoints(a.id, 2, p1.next);
        expect(p2.items).toHaveLength(2);
        expect(p2.next).toBeNull();
        expect((await store.listEndpoints(a.id, 10)).items).toHaveLength(4);

        const empty = await newApp();
        expect(await store.listEndpoints(empty.id, 10)).toEqual({ items: [], next: null });
      });
    });

    describe('returned records are copies', () => {
      it('mutating a returned or passed-in record does not change the store', async () => {
        const t = tenant();
        const createdT = await store.createTenant(t);
        t.name = 'changed input';
        createdT.name = 'changed output';
        (await store.getTenant(t.id))!.name = 'changed get';
        expect((await store.getTenant(t.id))?.name).toBe('Tenant');

        const a = await store.createApplication(app(t.id));
        a.name = 'changed';
        (await store.listApplications(t.id))[0]!.name = 'changed';
        (await store.getApplicationByToken(a.appToken))!.name = 'changed';
        expect((await store.getApplication(a.id))?.name).toBe('App');

        const pk = randomBytes(294);
        const pkCopy = Buffer.from(pk);
        const c = await store.provisionCredentials(a.id, uid('c'), pk);
        pk.fill(0);
        c.publicKey!.fill(1);
        c.status = 'REVOKED';
        const bound = await store.bindCredentials(a.id, c.credentialsId, 'ep-1');
        bound.record!.publicKey!.fill(2);
        bound.record!.endpointId = 'ep-x';
        const got = await store.getCredentials(a.id, c.credentialsId);
        expect(got).toMatchObject({ status: 'IN_USE', endpointId: 'ep-1' });
        expect(got!.publicKey!.equals(pkCopy)).toBe(true);

        const e = endpoint(a.id);
        const body = Buffer.from(e.profileBody);
        const saved = await store.saveEndpoint(e);
        e.profileBody.fill(0);
        saved.profileBody.fill(1);
        const listed = await store.listEndpoints(a.id, 10);
        listed.items[0]!.profileBody.fill(2);
        (await store.getEndpoint(a.id, e.keyHash))!.profileBody.fill(3);
        expect((await store.getEndpoint(a.id, e.keyHash))!.profileBody.equals(body)).toBe(true);

        const r = await store.provisionRegistration(a.id, c.credentialsId, '{"a":1}');
        r.serverProfileBody = 'changed';
        expect((await store.getRegistration(a.id, c.credentialsId))?.serverProfileBody).toBe('{"a":1}');
      });
    });

    describe('persistence', () => {
      it('keeps everything across close and reopen; close is idempotent', async () => {
        const t = await store.createTenant(tenant());
        const a = await store.createApplication(app(t.id));
        const c = await store.provisionCredentials(a.id, uid('c'), randomBytes(294));
        const bound = await store.bindCredentials(a.id, c.credentialsId, 'ep-1');
        const revoked = await store.provisionCredentials(a.id, uid('c'), null);
        const revokedRec = await store.revokeCredentials(a.id, revoked.credentialsId);
        const r = await store.provisionRegistration(a.id, c.credentialsId, '{"x":1}');
        const e = await store.saveEndpoint(endpoint(a.id, { credentialsId: c.credentialsId }));

        await store.close();
        await store.close();
        store = await open();

        expect(await store.getTenant(t.id)).toEqual(t);
        expect(await store.getApplication(a.id)).toEqual(a);
        expect(await store.getApplicationByToken(a.appToken)).toEqual(a);
        expect(await store.listApplications(t.id)).toEqual([a]);
        expect(await store.getCredentials(a.id, c.credentialsId)).toEqual(bound.record);
        expect(await store.getCredentials(a.id, revoked.credentialsId)).toEqual(revokedRec);
        expect(await store.getRegistration(a.id, c.credentialsId)).toEqual(r);
        expect(await store.getEndpoint(a.id, e.keyHash)).toEqual(e);
        expect(await store.listEndpoints(a.id, 10)).toEqual({ items: [e], next: null });
        // Constraints survive too.
        await expectCode(store.createApplication(app(t.id, { appToken: a.appToken })), 'LK_APP_TOKEN_TAKEN');
        expect(await store.bindCredentials(a.id, c.credentialsId, 'ep-2')).toMatchObject({ ok: false, reason: 'IN_USE' });
      });
    });
  });
}
