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
import { createHash, randomBytes, randomInt, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it as vitestIt } from 'vitest';
import { LatchkeyError, type ErrorCode } from '../../src/errors.js';
import type {
  ApiKeyRecord,
  Application,
  BanKind,
  BanRecord,
  ControlEntry,
  ControlType,
  CredentialStatus,
  CredentialsRecord,
  EndpointRecord,
  OwnerAttachment,
  Page,
  Store,
  Tenant,
  VerifierRecord,
} from '../../src/store/store.js';

export interface StoreContractOptions {
  skip?: boolean;
  /** Tests this backend skips, by title, each with the reason (shown in the test's title). */
  skipTests?: Record<string, string>;
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
  const it = (title: string, ...rest: unknown[]): void => {
    const reason = opts.skipTests?.[title];
    if (reason === undefined) (vitestIt as (t: string, ...r: unknown[]) => void)(title, ...rest);
    else (vitestIt.skip as (t: string, ...r: unknown[]) => void)(`${title} (skipped: ${reason})`, ...rest);
  };
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

    const apiKey = (tenantId: string | null, over: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
      id: uid('k'),
      tenantId,
      secretHash: randomBytes(32),
      name: 'Key',
      createdAt: Date.now(),
      ...over,
    });
    const verifier = (appId: string, over: Partial<VerifierRecord> = {}): VerifierRecord => ({
      appId,
      verifierToken: randomBytes(12).toString('base64url'),
      pluginTypeName: 'trustful',
      name: 'Verifier',
      description: 'a verifier',
      jsonConfiguration: '{"a":1}',
      createdAt: Date.now(),
      updatedAt: Date.now(),
      ...over,
    });
    const byId = <T extends { id: string }>(xs: T[]): T[] => [...xs].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));

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

    describe('listCredentials', () => {
      const byId = (x: { credentialsId: string }, y: { credentialsId: string }) => Buffer.compare(Buffer.from(x.credentialsId), Buffer.from(y.credentialsId));
      async function listAll(appId: string, limit: number, status?: CredentialStatus): Promise<{ pages: CredentialsRecord[][]; all: CredentialsRecord[] }> {
        const pages: CredentialsRecord[][] = [];
        let after: string | null = null;
        do {
          const page: Page<CredentialsRecord> = await store.listCredentials(appId, { limit, after, ...(status ? { status } : {}) });
          expect(page.items.length).toBeLessThanOrEqual(limit);
          pages.push(page.items);
          after = page.next;
          expect(pages.length).toBeLessThan(100);
        } while (after !== null);
        return { pages, all: pages.flat() };
      }

      it('pages every credentials of one application by id, provisioned and trustful-created, with current status', async () => {
        const a = await newApp();
        const other = await newApp();
        for (let i = 0; i < 22; i++) await store.provisionCredentials(a.id, randomKeyHash(), i % 2 ? randomBytes(8) : null);
        for (let i = 0; i < 3; i++) expect((await store.bindCredentials(a.id, randomKeyHash(), 'ep-t', randomBytes(8))).ok).toBe(true);
        await store.provisionCredentials(other.id, randomKeyHash(), null);

        const { pages, all } = await listAll(a.id, 10);
        expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
        expect(new Set(all.map((c) => c.credentialsId)).size).toBe(25);
        expect(all).toEqual([...all].sort(byId));
        for (const c of all) expect(await store.getCredentials(a.id, c.credentialsId)).toEqual(c);
        expect(all.filter((c) => c.status === 'IN_USE').map((c) => c.endpointId)).toEqual(['ep-t', 'ep-t', 'ep-t']);
      });

      it('filters by status, with the status as it is now', async () => {
        const a = await newApp();
        const ids: string[] = [];
        for (let i = 0; i < 9; i++) ids.push((await store.provisionCredentials(a.id, randomKeyHash(), null)).credentialsId);
        for (const id of ids.slice(0, 3)) expect((await store.bindCredentials(a.id, id, `ep-${id}`)).ok).toBe(true);
        for (const id of ids.slice(3, 5)) await store.revokeCredentials(a.id, id);
        await store.revokeCredentials(a.id, ids[0]!); // IN_USE -> REVOKED

        const want: Record<CredentialStatus, number[]> = { REVOKED: [0, 3, 4], IN_USE: [1, 2], AVAILABLE: [5, 6, 7, 8] };
        const expected = (status: CredentialStatus) => want[status].map((i) => ids[i]!).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        for (const status of ['AVAILABLE', 'IN_USE', 'REVOKED'] as const) {
          const { all } = await listAll(a.id, 2, status);
          expect(all.map((c) => c.credentialsId), status).toEqual(expected(status));
          for (const c of all) expect(c.status).toBe(status);
        }
        const revoked = (await store.listCredentials(a.id, { limit: 10, status: 'REVOKED' })).items.find((c) => c.credentialsId === ids[0]);
        expect(revoked).toMatchObject({ status: 'REVOKED', endpointId: `ep-${ids[0]!}` });
      });

      it('ends with next = null on a full last page; lists ids of any shape in UTF-8 byte order', async () => {
        const a = await newApp();
        const ids = ['.dot', '-dash', '0zero', 'Zed', '_under', 'abc', 'zz', '~tilde', 'é-accent', '\u4e2d'];
        for (const id of ids) await store.provisionCredentials(a.id, id, null);
        const sorted = [...ids].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        const p1 = await store.listCredentials(a.id, { limit: 5 });
        expect(p1.next).not.toBeNull();
        const p2 = await store.listCredentials(a.id, { limit: 5, after: p1.next });
        expect(p2.next).toBeNull();
        expect([...p1.items, ...p2.items].map((c) => c.credentialsId)).toEqual(sorted);
        const { pages } = await listAll(a.id, 3);
        expect(pages.flat().map((c) => c.credentialsId)).toEqual(sorted);
        expect(pages.map((p) => p.length)).toEqual([3, 3, 3, 1]);
      });

      it('continues after the cursor: credentials created meanwhile are listed iff they sort after it', async () => {
        const a = await newApp();
        for (const id of ['b1', 'b2', 'b3']) await store.provisionCredentials(a.id, id, null);
        const p1 = await store.listCredentials(a.id, { limit: 2 });
        expect(p1.items.map((c) => c.credentialsId)).toEqual(['b1', 'b2']);
        await store.provisionCredentials(a.id, 'a0', null);
        await store.provisionCredentials(a.id, 'b25', null);
        const p2 = await store.listCredentials(a.id, { limit: 2, after: p1.next });
        expect(p2.items.map((c) => c.credentialsId)).toEqual(['b25', 'b3']);
        expect(p2.next).toBeNull();
      });

      it('lists nothing for an application without credentials, an unknown or a malformed application id', async () => {
        const empty = await newApp();
        expect(await store.listCredentials(empty.id, { limit: 10 })).toEqual({ items: [], next: null });
        expect(await store.listCredentials(empty.id, { limit: 10, status: 'REVOKED' })).toEqual({ items: [], next: null });
        expect(await store.listCredentials(uid('no-app'), { limit: 10 })).toEqual({ items: [], next: null });
        expect(await store.listCredentials('', { limit: 10 })).toEqual({ items: [], next: null });
      });

      it('refuses a limit out of 1-1000, a malformed cursor or an unknown status with LK_BAD_ARGUMENT', async () => {
        const a = await newApp();
        await store.provisionCredentials(a.id, randomKeyHash(), null);
        for (const limit of [0, -1, 1.5, 1001, Number.NaN]) await expectCode(store.listCredentials(a.id, { limit }), 'LK_BAD_ARGUMENT');
        expect((await store.listCredentials(a.id, { limit: 1000 })).items).toHaveLength(1);
        for (const after of ['not a cursor!', '', 'YQ=']) await expectCode(store.listCredentials(a.id, { limit: 10, after }), 'LK_BAD_ARGUMENT');
        await expectCode(store.listCredentials(a.id, { limit: 10, status: 'BOGUS' as CredentialStatus }), 'LK_BAD_ARGUMENT');
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

    describe('provisioning credentials with a server profile', () => {
      it('writes the credentials and their registration in one call; without the option, no registration', async () => {
        const a = await newApp();
        const pk = randomBytes(294);
        const id = uid('c');
        const c = await store.provisionCredentials(a.id, id, pk, { serverProfileBody: '{"tier":"gold"}' });
        expect(c).toMatchObject({ appId: a.id, credentialsId: id, status: 'AVAILABLE', endpointId: null });
        expect(c.publicKey!.equals(pk)).toBe(true);
        const reg = await store.getRegistration(a.id, id);
        expect(reg).toMatchObject({ appId: a.id, credentialsId: id, serverProfileBody: '{"tier":"gold"}' });
        expect(await store.getCredentials(a.id, id)).toEqual(c);

        // A later provisionRegistration replaces it, as it would any registration.
        const r2 = await store.provisionRegistration(a.id, id, '{"tier":"silver"}');
        expect(r2.createdAt).toBe(reg!.createdAt);
        expect(await store.getRegistration(a.id, id)).toEqual(r2);

        const withNull = uid('c');
        await store.provisionCredentials(a.id, withNull, null, { serverProfileBody: null });
        expect(await store.getRegistration(a.id, withNull)).toMatchObject({ credentialsId: withNull, serverProfileBody: null });
        const without = uid('c');
        await store.provisionCredentials(a.id, without, null, {});
        await store.provisionCredentials(a.id, uid('c'), null);
        expect(await store.getRegistration(a.id, without)).toBeNull();
      });

      it('replaces a registration provisioned before the credentials, keeping its createdAt', async () => {
        const a = await newApp();
        const id = uid('c');
        const r1 = await store.provisionRegistration(a.id, id, '{"v":1}');
        await store.provisionCredentials(a.id, id, null, { serverProfileBody: '{"v":2}' });
        const reg = await store.getRegistration(a.id, id);
        expect(reg).toMatchObject({ serverProfileBody: '{"v":2}', createdAt: r1.createdAt });
        expect(reg!.updatedAt).toBeGreaterThanOrEqual(r1.updatedAt);
      });

      it('writes no registration when the provision is refused (LK_CRED_EXISTS, LK_APP_NOT_FOUND)', async () => {
        const a = await newApp();
        const id = uid('c');
        await store.provisionCredentials(a.id, id, null, { serverProfileBody: '{"v":1}' });
        await expectCode(store.provisionCredentials(a.id, id, null, { serverProfileBody: '{"v":2}' }), 'LK_CRED_EXISTS');
        expect(await store.getRegistration(a.id, id)).toMatchObject({ serverProfileBody: '{"v":1}' });

        // Credentials provisioned without a profile (what a crash between two writes used to
        // leave): provisioning them again with one is refused and writes nothing.
        const bare = uid('c');
        await store.provisionCredentials(a.id, bare, null);
        await expectCode(store.provisionCredentials(a.id, bare, null, { serverProfileBody: '{"v":3}' }), 'LK_CRED_EXISTS');
        expect(await store.getRegistration(a.id, bare)).toBeNull();

        const noApp = uid('no-app');
        await expectCode(store.provisionCredentials(noApp, id, null, { serverProfileBody: '{}' }), 'LK_APP_NOT_FOUND');
        expect(await store.getRegistration(noApp, id)).toBeNull();
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

    describe('API keys', () => {
      it('creates and gets root and tenant keys with the secret hash intact', async () => {
        const t = await store.createTenant(tenant());
        const root = apiKey(null, { name: 'root key' });
        const scoped = apiKey(t.id, { name: 'tenant key' });
        expect(await store.createApiKey(root)).toEqual(root);
        expect(await store.createApiKey(scoped)).toEqual(scoped);
        for (const k of [root, scoped]) {
          const got = await store.getApiKey(k.id);
          expect(got).toEqual(k);
          expect(Buffer.isBuffer(got!.secretHash)).toBe(true);
          expect(got!.secretHash.equals(k.secretHash)).toBe(true);
        }
        expect((await store.getApiKey(root.id))!.tenantId).toBeNull();
      });

      it('returns null for a missing key', async () => {
        expect(await store.getApiKey(uid('missing'))).toBeNull();
      });

      it('lists keys ordered by id, all or filtered by tenant; root keys under null', async () => {
        const t = await store.createTenant(tenant());
        const other = await store.createTenant(tenant());
        const base = uid('k');
        const tenantKeys: ApiKeyRecord[] = [];
        for (const s of ['m', 'c', 'x', 'a']) tenantKeys.push(await store.createApiKey(apiKey(t.id, { id: `${base}-${s}` })));
        const otherKey = await store.createApiKey(apiKey(other.id, { id: `${base}-b` }));
        const rootKeys: ApiKeyRecord[] = [];
        for (const s of ['r2', 'r1']) rootKeys.push(await store.createApiKey(apiKey(null, { id: `${base}-${s}` })));

        expect(await store.listApiKeys(t.id)).toEqual(byId(tenantKeys));
        expect(await store.listApiKeys(other.id)).toEqual([otherKey]);
        const mine = new Set([...tenantKeys, otherKey, ...rootKeys].map((k) => k.id));
        const roots = await store.listApiKeys(null);
        for (const k of roots) expect(k.tenantId).toBeNull();
        expect(roots.filter((k) => mine.has(k.id))).toEqual(byId(rootKeys));
        expect(roots.map((k) => k.id)).toEqual([...roots.map((k) => k.id)].sort());

        const all = await store.listApiKeys();
        expect(all.map((k) => k.id)).toEqual([...all.map((k) => k.id)].sort());
        expect(all.filter((k) => mine.has(k.id))).toEqual(byId([...tenantKeys, otherKey, ...rootKeys]));
        expect(await store.listApiKeys(undefined)).toEqual(all);

        expect(await store.listApiKeys(uid('missing'))).toEqual([]);
        const empty = await store.createTenant(tenant());
        expect(await store.listApiKeys(empty.id)).toEqual([]);
      });

      it('refuses a duplicate id with LK_CONFLICT and keeps the first, in any scope', async () => {
        const t = await store.createTenant(tenant());
        const other = await store.createTenant(tenant());
        const k = await store.createApiKey(apiKey(t.id, { name: 'first' }));
        await expectCode(store.createApiKey({ ...k, name: 'second', secretHash: randomBytes(32) }), 'LK_CONFLICT');
        await expectCode(store.createApiKey({ ...k, tenantId: other.id, name: 'second' }), 'LK_CONFLICT');
        await expectCode(store.createApiKey({ ...k, tenantId: null, name: 'second' }), 'LK_CONFLICT');
        expect(await store.getApiKey(k.id)).toEqual(k);
        expect(await store.listApiKeys(t.id)).toEqual([k]);
        expect(await store.listApiKeys(other.id)).toEqual([]);
        expect((await store.listApiKeys(null)).filter((x) => x.id === k.id)).toEqual([]);
      });

      it('refuses an unknown tenant with LK_TENANT_NOT_FOUND and writes nothing', async () => {
        const tenantId = uid('no-tenant');
        const k = apiKey(tenantId);
        await expectCode(store.createApiKey(k), 'LK_TENANT_NOT_FOUND');
        expect(await store.getApiKey(k.id)).toBeNull();
        expect(await store.listApiKeys(tenantId)).toEqual([]);
        // The id stays free.
        expect(await store.createApiKey({ ...k, tenantId: null })).toEqual({ ...k, tenantId: null });
      });

      it('refuses a secret hash that is not 32 bytes with LK_BAD_ARGUMENT', async () => {
        const k = apiKey(null, { secretHash: randomBytes(31) });
        await expectCode(store.createApiKey(k), 'LK_BAD_ARGUMENT');
        expect(await store.getApiKey(k.id)).toBeNull();
      });

      it('deletes a key once: true, then false; the id can be used again', async () => {
        const t = await store.createTenant(tenant());
        const keep = await store.createApiKey(apiKey(t.id));
        const k = await store.createApiKey(apiKey(t.id));
        const root = await store.createApiKey(apiKey(null));
        expect(await store.deleteApiKey(k.id)).toBe(true);
        expect(await store.deleteApiKey(k.id)).toBe(false);
        expect(await store.getApiKey(k.id)).toBeNull();
        expect(await store.listApiKeys(t.id)).toEqual([keep]);
        expect(await store.deleteApiKey(root.id)).toBe(true);
        expect((await store.listApiKeys(null)).filter((x) => x.id === root.id)).toEqual([]);
        expect((await store.listApiKeys()).filter((x) => x.id === k.id || x.id === root.id)).toEqual([]);
        expect(await store.deleteApiKey(uid('missing'))).toBe(false);

        // Recreated in another scope: listed there only.
        const again = await store.createApiKey({ ...k, tenantId: null, secretHash: randomBytes(32) });
        expect(await store.getApiKey(k.id)).toEqual(again);
        expect(await store.listApiKeys(t.id)).toEqual([keep]);
        expect((await store.listApiKeys(null)).filter((x) => x.id === k.id)).toEqual([again]);
      });

      it('counts keys of every scope', async () => {
        const t = await store.createTenant(tenant());
        const before = await store.countApiKeys();
        expect(Number.isSafeInteger(before) && before >= 0).toBe(true);
        const root = await store.createApiKey(apiKey(null));
        await store.createApiKey(apiKey(t.id));
        expect(await store.countApiKeys()).toBe(before + 2);
        await expectCode(store.createApiKey(root), 'LK_CONFLICT');
        expect(await store.countApiKeys()).toBe(before + 2);
        await store.deleteApiKey(root.id);
        expect(await store.countApiKeys()).toBe(before + 1);
      });

      it('lets exactly one of concurrent creators of one id win, and one of concurrent deleters', async () => {
        const t = await store.createTenant(tenant());
        const id = uid('k');
        const keys = Array.from({ length: 10 }, (_, i) => apiKey(i % 2 ? t.id : null, { id, name: `k${i}` }));
        const results = await Promise.allSettled(keys.map((k) => store.createApiKey(k)));
        const won = results.filter((r) => r.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect((r.reason as LatchkeyError).code).toBe('LK_CONFLICT');
        const winner = (won[0] as PromiseFulfilledResult<ApiKeyRecord>).value;
        expect(await store.getApiKey(id)).toEqual(winner);
        expect(await store.listApiKeys(t.id)).toEqual(winner.tenantId === null ? [] : [winner]);

        const deleted = await Promise.all(Array.from({ length: 10 }, () => store.deleteApiKey(id)));
        expect(deleted.filter(Boolean)).toHaveLength(1);
        expect(await store.getApiKey(id)).toBeNull();
        expect(await store.listApiKeys(t.id)).toEqual([]);
      });
    });

    describe('endpoint ownership', () => {
      /** An application of a new tenant, plus a second application of the same tenant. */
      async function twoApps(): Promise<[Application, Application]> {
        const t = await store.createTenant(tenant());
        return [await store.createApplication(app(t.id)), await store.createApplication(app(t.id))];
      }
      const byEndpoint = (xs: OwnerAttachment[]): OwnerAttachment[] =>
        [...xs].sort((x, y) => (x.appId < y.appId ? -1 : x.appId > y.appId ? 1 : x.keyHash < y.keyHash ? -1 : x.keyHash > y.keyHash ? 1 : 0));

      it('attaches an endpoint, gets and lists it; re-attaching to the same owner changes nothing', async () => {
        const a = await newApp();
        const owner = uid('user');
        const ep = randomKeyHash();
        expect(await store.getEndpointOwner(a.id, ep)).toBeNull();
        const before = Date.now();
        expect(await store.attachEndpointToOwner(a.tenantId, owner, a.id, ep)).toEqual({ previousOwner: null });
        const got = await store.getEndpointOwner(a.id, ep);
        expect(got).toEqual({ tenantId: a.tenantId, ownerExternalId: owner, appId: a.id, keyHash: ep, attachedAt: got!.attachedAt });
        expect(got!.attachedAt).toBeGreaterThanOrEqual(before - 1000);
        expect(await store.listOwnerEndpoints(a.tenantId, owner)).toEqual([got]);

        expect(await store.attachEndpointToOwner(a.tenantId, owner, a.id, ep)).toEqual({ previousOwner: owner });
        expect(await store.getEndpointOwner(a.id, ep)).toEqual(got);
        expect(await store.listOwnerEndpoints(a.tenantId, owner)).toEqual([got]);
      });

      it('moves an endpoint between owners: the old owner no longer lists it (the Kaa bug)', async () => {
        const a = await newApp();
        const [alice, bob] = [uid('alice'), uid('bob')];
        const ep = randomKeyHash();
        const stays = randomKeyHash();
        await store.attachEndpointToOwner(a.tenantId, alice, a.id, ep);
        await store.attachEndpointToOwner(a.tenantId, alice, a.id, stays);
        expect(await store.attachEndpointToOwner(a.tenantId, bob, a.id, ep)).toEqual({ previousOwner: alice });
        expect(await store.getEndpointOwner(a.id, ep)).toMatchObject({ tenantId: a.tenantId, ownerExternalId: bob });
        expect((await store.listOwnerEndpoints(a.tenantId, alice)).map((o) => o.keyHash)).toEqual([stays]);
        expect(await store.listOwnerEndpoints(a.tenantId, bob)).toEqual([await store.getEndpointOwner(a.id, ep)]);
        // And back again.
        expect(await store.attachEndpointToOwner(a.tenantId, alice, a.id, ep)).toEqual({ previousOwner: bob });
        expect(await store.listOwnerEndpoints(a.tenantId, bob)).toEqual([]);
        expect((await store.listOwnerEndpoints(a.tenantId, alice)).map((o) => o.keyHash).sort()).toEqual([ep, stays].sort());
      });

      it('detaches an endpoint: returns its owner once, then null', async () => {
        const a = await newApp();
        const owner = uid('user');
        const ep = randomKeyHash();
        const other = randomKeyHash();
        await store.attachEndpointToOwner(a.tenantId, owner, a.id, ep);
        await store.attachEndpointToOwner(a.tenantId, owner, a.id, other);
        expect(await store.detachEndpoint(a.id, ep)).toBe(owner);
        expect(await store.detachEndpoint(a.id, ep)).toBeNull();
        expect(await store.getEndpointOwner(a.id, ep)).toBeNull();
        expect((await store.listOwnerEndpoints(a.tenantId, owner)).map((o) => o.keyHash)).toEqual([other]);
        expect(await store.detachEndpoint(a.id, randomKeyHash())).toBeNull();
        expect(await store.detachEndpoint(uid('missing'), randomKeyHash())).toBeNull();
        // Detached endpoints can be attached again, to anyone.
        const next = uid('user');
        expect(await store.attachEndpointToOwner(a.tenantId, next, a.id, ep)).toEqual({ previousOwner: null });
        expect((await store.listOwnerEndpoints(a.tenantId, next)).map((o) => o.keyHash)).toEqual([ep]);
      });

      it('lists an owner\'s endpoints across the applications of its tenant, ordered by app id then key hash', async () => {
        const t = await store.createTenant(tenant());
        const base = uid('a');
        const appB = await store.createApplication(app(t.id, { id: `${base}-b` }));
        const appA = await store.createApplication(app(t.id, { id: `${base}-a` }));
        const owner = uid('user');
        const expected: OwnerAttachment[] = [];
        for (const a of [appB, appA, appB, appA, appB]) {
          const ep = randomKeyHash();
          await store.attachEndpointToOwner(t.id, owner, a.id, ep);
          expected.push((await store.getEndpointOwner(a.id, ep))!);
        }
        // Another owner of the same tenant is listed apart.
        await store.attachEndpointToOwner(t.id, uid('user'), appA.id, randomKeyHash());
        const listed = await store.listOwnerEndpoints(t.id, owner);
        expect(listed).toEqual(byEndpoint(expected));
        expect(listed.map((o) => o.appId)).toEqual([appA.id, appA.id, appB.id, appB.id, appB.id]);
        expect(await store.listOwnerEndpoints(t.id, uid('nobody'))).toEqual([]);
        expect(await store.listOwnerEndpoints(uid('missing'), owner)).toEqual([]);
      });

      it('keeps owners per tenant: one external id in two tenants names two owners', async () => {
        const a1 = await newApp();
        const a2 = await newApp();
        const owner = uid('user');
        const ep1 = randomKeyHash();
        const ep2 = randomKeyHash();
        await store.attachEndpointToOwner(a1.tenantId, owner, a1.id, ep1);
        await store.attachEndpointToOwner(a2.tenantId, owner, a2.id, ep2);
        expect((await store.listOwnerEndpoints(a1.tenantId, owner)).map((o) => o.keyHash)).toEqual([ep1]);
        expect((await store.listOwnerEndpoints(a2.tenantId, owner)).map((o) => o.keyHash)).toEqual([ep2]);
        expect(await store.getEndpointOwner(a2.id, ep2)).toMatchObject({ tenantId: a2.tenantId, ownerExternalId: owner });
        // An owner of one tenant cannot take an endpoint of another tenant's application.
        await expectCode(store.attachEndpointIfUnownedOrSameOwner(a1.tenantId, owner, a2.id, ep2), 'LK_APP_NOT_FOUND');
      });

      it('refuses an application of another tenant or a missing one with LK_APP_NOT_FOUND and writes nothing', async () => {
        const mine = await newApp();
        const theirs = await newApp();
        const owner = uid('user');
        const ep = randomKeyHash();
        await expectCode(store.attachEndpointToOwner(mine.tenantId, owner, theirs.id, ep), 'LK_APP_NOT_FOUND');
        await expectCode(store.attachEndpointIfUnownedOrSameOwner(mine.tenantId, owner, theirs.id, ep), 'LK_APP_NOT_FOUND');
        await expectCode(store.attachEndpointToOwner(mine.tenantId, owner, uid('no-app'), ep), 'LK_APP_NOT_FOUND');
        await expectCode(store.attachEndpointToOwner(uid('no-tenant'), owner, mine.id, ep), 'LK_APP_NOT_FOUND');
        expect(await store.getEndpointOwner(theirs.id, ep)).toBeNull();
        expect(await store.getEndpointOwner(mine.id, ep)).toBeNull();
        expect(await store.listOwnerEndpoints(mine.tenantId, owner)).toEqual([]);
        expect(await store.listOwnerEndpoints(theirs.tenantId, owner)).toEqual([]);
      });

      it('refuses malformed ids and key hashes with LK_BAD_ARGUMENT', async () => {
        const a = await newApp();
        await expectCode(store.attachEndpointToOwner(a.tenantId, uid('user'), a.id, 'not a key hash'), 'LK_BAD_ARGUMENT');
        await expectCode(store.attachEndpointToOwner(a.tenantId, '', a.id, randomKeyHash()), 'LK_BAD_ARGUMENT');
        await expectCode(store.attachEndpointIfUnownedOrSameOwner(a.tenantId, 'x'.repeat(501), a.id, randomKeyHash()), 'LK_BAD_ARGUMENT');
        expect(await store.getEndpointOwner(a.id, 'not a key hash')).toBeNull();
        expect(await store.listOwnerEndpoints(a.tenantId, '')).toEqual([]);
      });

      it('ends concurrent attaches of one endpoint with exactly one owner listing it', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        const owners = Array.from({ length: 10 }, (_, i) => uid(`user${i}`));
        const results = await Promise.all(owners.map((o) => store.attachEndpointToOwner(a.tenantId, o, a.id, ep)));
        const final = await store.getEndpointOwner(a.id, ep);
        expect(final).not.toBeNull();
        expect(owners).toContain(final!.ownerExternalId);
        const listing = [];
        for (const o of owners) if ((await store.listOwnerEndpoints(a.tenantId, o)).some((x) => x.keyHash === ep)) listing.push(o);
        expect(listing).toEqual([final!.ownerExternalId]);
        // The attaches applied one after another: one found no owner, every displaced owner was
        // reported exactly once, and the final owner was displaced by nobody.
        const previous = results.map((r) => r.previousOwner);
        expect(previous.filter((p) => p === null)).toHaveLength(1);
        const displaced = previous.filter((p): p is string => p !== null);
        expect(new Set(displaced).size).toBe(owners.length - 1);
        expect(displaced).not.toContain(final!.ownerExternalId);
      });

      it('attaches conditionally only an unowned endpoint or one of the same owner', async () => {
        const [a, b] = await twoApps();
        const [alice, bob] = [uid('alice'), uid('bob')];
        const ep = randomKeyHash();
        expect(await store.attachEndpointIfUnownedOrSameOwner(a.tenantId, alice, a.id, ep)).toEqual({ ok: true, previousOwner: null });
        const attached = await store.getEndpointOwner(a.id, ep);
        expect(attached).toMatchObject({ ownerExternalId: alice });
        expect(await store.attachEndpointIfUnownedOrSameOwner(a.tenantId, alice, a.id, ep)).toEqual({ ok: true, previousOwner: alice });
        expect(await store.getEndpointOwner(a.id, ep)).toEqual(attached);
        expect(await store.attachEndpointIfUnownedOrSameOwner(a.tenantId, bob, a.id, ep)).toEqual({ ok: false, currentOwner: alice });
        expect(await store.getEndpointOwner(a.id, ep)).toEqual(attached);
        expect(await store.listOwnerEndpoints(a.tenantId, bob)).toEqual([]);
        expect(await store.listOwnerEndpoints(a.tenantId, alice)).toEqual([attached]);
        // Another application of the tenant, same owner.
        const epB = randomKeyHash();
        expect(await store.attachEndpointIfUnownedOrSameOwner(a.tenantId, alice, b.id, epB)).toEqual({ ok: true, previousOwner: null });
        expect((await store.listOwnerEndpoints(a.tenantId, alice)).map((o) => o.keyHash)).toEqual(
          byEndpoint([attached!, (await store.getEndpointOwner(b.id, epB))!]).map((o) => o.keyHash),
        );
      });

      it('lets exactly one of concurrent conditional attaches of an unowned endpoint win', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        const owners = Array.from({ length: 10 }, (_, i) => uid(`user${i}`));
        const results = await Promise.all(owners.map((o) => store.attachEndpointIfUnownedOrSameOwner(a.tenantId, o, a.id, ep)));
        const won = results.filter((r) => r.ok);
        expect(won).toEqual([{ ok: true, previousOwner: null }]);
        const winner = owners[results.findIndex((r) => r.ok)]!;
        for (const r of results) if (!r.ok) expect(r).toEqual({ ok: false, currentOwner: winner });
        expect(await store.getEndpointOwner(a.id, ep)).toMatchObject({ ownerExternalId: winner });
        for (const o of owners) {
          expect((await store.listOwnerEndpoints(a.tenantId, o)).map((x) => x.keyHash), o).toEqual(o === winner ? [ep] : []);
        }
      });
    });

    describe('endpoint access tokens', () => {
      const hashOf = (token: string): Buffer => createHash('sha256').update(token).digest();
      const HOUR = 3_600_000;

      it('finds the endpoint that published a token within its tenant, across applications', async () => {
        const t = await store.createTenant(tenant());
        const a = await store.createApplication(app(t.id));
        const b = await store.createApplication(app(t.id));
        const ep = randomKeyHash();
        const token = hashOf(uid('token'));
        const expiresAt = Date.now() + HOUR;
        expect(await store.setEndpointAccessToken(b.id, ep, token, expiresAt)).toBeUndefined();
        expect(await store.findEndpointByAccessToken(t.id, token, Date.now())).toEqual({ appId: b.id, keyHash: ep });
        expect(await store.findEndpointByAccessToken(t.id, hashOf(uid('other')), Date.now())).toBeNull();
        // The same key hash in the other application is another endpoint, with its own token.
        const other = hashOf(uid('token'));
        await store.setEndpointAccessToken(a.id, ep, other, expiresAt);
        expect(await store.findEndpointByAccessToken(t.id, other, Date.now())).toEqual({ appId: a.id, keyHash: ep });
        expect(await store.findEndpointByAccessToken(t.id, token, Date.now())).toEqual({ appId: b.id, keyHash: ep });
      });

      it('scopes token lookups to the application\'s tenant', async () => {
        const a = await newApp();
        const elsewhere = await newApp();
        const token = hashOf(uid('token'));
        const ep = randomKeyHash();
        await store.setEndpointAccessToken(a.id, ep, token, Date.now() + HOUR);
        expect(await store.findEndpointByAccessToken(elsewhere.tenantId, token, Date.now())).toBeNull();
        expect(await store.findEndpointByAccessToken(uid('missing'), token, Date.now())).toBeNull();
        expect(await store.findEndpointByAccessToken(a.tenantId, token, Date.now())).toEqual({ appId: a.id, keyHash: ep });
        // The same token hash in another tenant is another tenant's business: no conflict.
        const theirs = randomKeyHash();
        await store.setEndpointAccessToken(elsewhere.id, theirs, token, Date.now() + HOUR);
        expect(await store.findEndpointByAccessToken(elsewhere.tenantId, token, Date.now())).toEqual({ appId: elsewhere.id, keyHash: theirs });
        expect(await store.findEndpointByAccessToken(a.tenantId, token, Date.now())).toEqual({ appId: a.id, keyHash: ep });
      });

      it('rotates a token: the old one stops resolving at once', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        const first = hashOf(uid('token'));
        const second = hashOf(uid('token'));
        await store.setEndpointAccessToken(a.id, ep, first, Date.now() + HOUR);
        await store.setEndpointAccessToken(a.id, ep, second, Date.now() + HOUR);
        expect(await store.findEndpointByAccessToken(a.tenantId, first, Date.now())).toBeNull();
        expect(await store.findEndpointByAccessToken(a.tenantId, second, Date.now())).toEqual({ appId: a.id, keyHash: ep });
        // The released hash is free for another endpoint.
        const ep2 = randomKeyHash();
        await store.setEndpointAccessToken(a.id, ep2, first, Date.now() + HOUR);
        expect(await store.findEndpointByAccessToken(a.tenantId, first, Date.now())).toEqual({ appId: a.id, keyHash: ep2 });
        expect(await store.findEndpointByAccessToken(a.tenantId, second, Date.now())).toEqual({ appId: a.id, keyHash: ep });
      });

      it('expires tokens at expiresAt; setting the same token again moves the expiry', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        const token = hashOf(uid('token'));
        const expiresAt = Date.now() + HOUR;
        await store.setEndpointAccessToken(a.id, ep, token, expiresAt);
        expect(await store.findEndpointByAccessToken(a.tenantId, token, expiresAt - 1)).toEqual({ appId: a.id, keyHash: ep });
        expect(await store.findEndpointByAccessToken(a.tenantId, token, expiresAt)).toBeNull();
        expect(await store.findEndpointByAccessToken(a.tenantId, token, expiresAt + HOUR)).toBeNull();
        await store.setEndpointAccessToken(a.id, ep, token, expiresAt + 2 * HOUR);
        expect(await store.findEndpointByAccessToken(a.tenantId, token, expiresAt + HOUR)).toEqual({ appId: a.id, keyHash: ep });
        await expectCode(store.findEndpointByAccessToken(a.tenantId, token, Number.NaN), 'LK_BAD_ARGUMENT');
      });

      it('refuses a token another endpoint holds unexpired with LK_CONFLICT; an expired one is taken over', async () => {
        const a = await newApp();
        const [holder, intruder] = [randomKeyHash(), randomKeyHash()];
        const token = hashOf(uid('token'));
        await store.setEndpointAccessToken(a.id, holder, token, Date.now() + HOUR);
        await expectCode(store.setEndpointAccessToken(a.id, intruder, token, Date.now() + HOUR), 'LK_CONFLICT');
        expect(await store.findEndpointByAccessToken(a.tenantId, token, Date.now())).toEqual({ appId: a.id, keyHash: holder });

        const stale = hashOf(uid('token'));
        await store.setEndpointAccessToken(a.id, holder, stale, Date.now() - 1);
        expect(await store.findEndpointByAccessToken(a.tenantId, stale, Date.now())).toBeNull();
        await store.setEndpointAccessToken(a.id, intruder, stale, Date.now() + HOUR);
        expect(await store.findEndpointByAccessToken(a.tenantId, stale, Date.now())).toEqual({ appId: a.id, keyHash: intruder });
      });

      it('refuses bad arguments and unknown applications, writing nothing', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        await expectCode(store.setEndpointAccessToken(a.id, ep, randomBytes(31), Date.now() + HOUR), 'LK_BAD_ARGUMENT');
        await expectCode(store.setEndpointAccessToken(a.id, 'bad key hash', randomBytes(32), Date.now() + HOUR), 'LK_BAD_ARGUMENT');
        await expectCode(store.setEndpointAccessToken(a.id, ep, randomBytes(32), 1.5), 'LK_BAD_ARGUMENT');
        const token = randomBytes(32);
        await expectCode(store.setEndpointAccessToken(uid('no-app'), ep, token, Date.now() + HOUR), 'LK_APP_NOT_FOUND');
        expect(await store.findEndpointByAccessToken(a.tenantId, token, Date.now())).toBeNull();
        expect(await store.findEndpointByAccessToken(a.tenantId, randomBytes(31), Date.now())).toBeNull();
      });
    });

    describe('event classes', () => {
      it('starts unset, replaces the declaration whole, and clears it with []', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        expect(await store.getEventClasses(a.id, ep)).toBeNull();
        await store.setEventClasses(a.id, ep, ['org.example.Ping', 'org.example.Pong']);
        expect(await store.getEventClasses(a.id, ep)).toEqual(['org.example.Ping', 'org.example.Pong']);
        await store.setEventClasses(a.id, ep, ['org.example.Other']);
        expect(await store.getEventClasses(a.id, ep)).toEqual(['org.example.Other']);
        await store.setEventClasses(a.id, ep, []);
        expect(await store.getEventClasses(a.id, ep)).toEqual([]);
        // Per endpoint: the same key hash in another application is another endpoint.
        const b = await newApp();
        expect(await store.getEventClasses(b.id, ep)).toBeNull();
      });

      it('refuses malformed declarations with LK_BAD_ARGUMENT and keeps the previous one', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        await store.setEventClasses(a.id, ep, ['org.example.Keep']);
        await expectCode(store.setEventClasses(a.id, ep, ['']), 'LK_BAD_ARGUMENT');
        await expectCode(store.setEventClasses(a.id, ep, ['x'.repeat(256)]), 'LK_BAD_ARGUMENT');
        await expectCode(store.setEventClasses(a.id, ep, Array.from({ length: 257 }, (_, i) => `c${i}`)), 'LK_BAD_ARGUMENT');
        await expectCode(store.setEventClasses(a.id, ep, [42 as unknown as string]), 'LK_BAD_ARGUMENT');
        await expectCode(store.setEventClasses(a.id, 'not base64url!', ['a']), 'LK_BAD_ARGUMENT');
        await expectCode(store.setEventClasses('', ep, ['a']), 'LK_BAD_ARGUMENT');
        expect(await store.getEventClasses(a.id, ep)).toEqual(['org.example.Keep']);
        expect(await store.getEventClasses(a.id, 'not base64url!')).toBeNull();
      });

      it('returns copies: mutating a passed-in or returned list changes nothing stored', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        const list = ['one'];
        await store.setEventClasses(a.id, ep, list);
        list.push('two');
        const got = (await store.getEventClasses(a.id, ep))!;
        got.push('three');
        expect(await store.getEventClasses(a.id, ep)).toEqual(['one']);
      });
    });

    describe('owner verifiers', () => {
      it('creates, gets, lists (ordered by token), updates and deletes a verifier', async () => {
        const a = await newApp();
        const base = uid('v');
        const tokens = [`${base}-m`, `${base}-c`, `${base}-x`, `${base}-a`];
        const created: VerifierRecord[] = [];
        for (const verifierToken of tokens) {
          const v = verifier(a.id, { verifierToken, description: '' });
          expect(await store.createVerifier(v)).toEqual(v);
          created.push(v);
        }
        expect(await store.getVerifier(a.id, tokens[0]!)).toEqual(created[0]);
        expect((await store.listVerifiers(a.id)).map((v) => v.verifierToken)).toEqual([...tokens].sort());
        expect(await store.listVerifiers(a.id)).toEqual([...created].sort((x, y) => (x.verifierToken < y.verifierToken ? -1 : 1)));

        const first = created[0]!;
        const changed = {
          ...first,
          pluginTypeName: 'oidc',
          name: 'Renamed',
          description: 'changed',
          jsonConfiguration: '{"issuer":"https://id.example"}',
          createdAt: first.createdAt + 5_000, // ignored: createdAt is kept
          updatedAt: first.updatedAt + 10_000,
        };
        const updated = await store.updateVerifier(changed);
        expect(updated).toEqual({ ...changed, createdAt: first.createdAt });
        expect(await store.getVerifier(a.id, first.verifierToken)).toEqual(updated);

        expect(await store.deleteVerifier(a.id, first.verifierToken)).toBe(true);
        expect(await store.getVerifier(a.id, first.verifierToken)).toBeNull();
        expect(await store.deleteVerifier(a.id, first.verifierToken)).toBe(false);
        expect((await store.listVerifiers(a.id)).map((v) => v.verifierToken)).toEqual(tokens.slice(1).sort());
      });

      it('refuses a duplicate token with LK_CONFLICT and keeps the first; tokens are per application', async () => {
        const a = await newApp();
        const b = await newApp();
        const v = await store.createVerifier(verifier(a.id, { name: 'first' }));
        await expectCode(store.createVerifier({ ...v, name: 'second' }), 'LK_CONFLICT');
        expect(await store.getVerifier(a.id, v.verifierToken)).toEqual(v);
        expect(await store.listVerifiers(a.id)).toEqual([v]);
        const other = verifier(b.id, { verifierToken: v.verifierToken });
        expect(await store.createVerifier(other)).toEqual(other);
        expect(await store.getVerifier(b.id, v.verifierToken)).toEqual(other);
        expect(await store.getVerifier(a.id, v.verifierToken)).toEqual(v);
      });

      it('refuses an unknown application with LK_APP_NOT_FOUND and writes nothing; missing -> null / []', async () => {
        const appId = uid('no-app');
        const v = verifier(appId);
        await expectCode(store.createVerifier(v), 'LK_APP_NOT_FOUND');
        expect(await store.getVerifier(appId, v.verifierToken)).toBeNull();
        expect(await store.listVerifiers(appId)).toEqual([]);
        expect(await store.getDefaultVerifier(appId)).toBeNull();
        await expectCode(store.setDefaultVerifier(appId, v.verifierToken), 'LK_APP_NOT_FOUND');
        await expectCode(store.setDefaultVerifier(appId, null), 'LK_APP_NOT_FOUND');
        const a = await newApp();
        expect(await store.getVerifier(a.id, uid('v'))).toBeNull();
        expect(await store.listVerifiers(a.id)).toEqual([]);
        expect(await store.deleteVerifier(a.id, uid('v'))).toBe(false);
      });

      it('refuses to update a missing verifier with LK_NOT_FOUND and creates nothing', async () => {
        const a = await newApp();
        const v = verifier(a.id);
        await expectCode(store.updateVerifier(v), 'LK_NOT_FOUND');
        expect(await store.getVerifier(a.id, v.verifierToken)).toBeNull();
      });

      it('refuses malformed records with LK_BAD_ARGUMENT', async () => {
        const a = await newApp();
        await expectCode(store.createVerifier(verifier(a.id, { verifierToken: '' })), 'LK_BAD_ARGUMENT');
        await expectCode(store.createVerifier(verifier(a.id, { pluginTypeName: '' })), 'LK_BAD_ARGUMENT');
        await expectCode(store.createVerifier(verifier(a.id, { jsonConfiguration: null as unknown as string })), 'LK_BAD_ARGUMENT');
        await expectCode(store.createVerifier(verifier(a.id, { createdAt: 1.5 })), 'LK_BAD_ARGUMENT');
        expect(await store.listVerifiers(a.id)).toEqual([]);
      });

      it('sets, replaces and clears the default verifier', async () => {
        const a = await newApp();
        expect(await store.getDefaultVerifier(a.id)).toBeNull();
        await store.setDefaultVerifier(a.id, null); // clearing an unset default is fine
        const v1 = await store.createVerifier(verifier(a.id));
        const v2 = await store.createVerifier(verifier(a.id));
        await store.setDefaultVerifier(a.id, v1.verifierToken);
        expect(await store.getDefaultVerifier(a.id)).toBe(v1.verifierToken);
        await store.setDefaultVerifier(a.id, v1.verifierToken); // idempotent
        expect(await store.getDefaultVerifier(a.id)).toBe(v1.verifierToken);
        await store.setDefaultVerifier(a.id, v2.verifierToken);
        expect(await store.getDefaultVerifier(a.id)).toBe(v2.verifierToken);
        await store.setDefaultVerifier(a.id, null);
        expect(await store.getDefaultVerifier(a.id)).toBeNull();
        // Setting the default changes nothing else.
        expect(await store.listVerifiers(a.id)).toEqual([v1, v2].sort((x, y) => (x.verifierToken < y.verifierToken ? -1 : 1)));
      });

      it('deleting the default verifier clears the default; deleting another keeps it', async () => {
        const a = await newApp();
        const v1 = await store.createVerifier(verifier(a.id));
        const v2 = await store.createVerifier(verifier(a.id));
        await store.setDefaultVerifier(a.id, v1.verifierToken);
        expect(await store.deleteVerifier(a.id, v2.verifierToken)).toBe(true);
        expect(await store.getDefaultVerifier(a.id)).toBe(v1.verifierToken);
        expect(await store.deleteVerifier(a.id, v1.verifierToken)).toBe(true);
        expect(await store.getDefaultVerifier(a.id)).toBeNull();
        // A new verifier under the deleted token does not become the default again.
        await store.createVerifier(verifier(a.id, { verifierToken: v1.verifierToken }));
        expect(await store.getDefaultVerifier(a.id)).toBeNull();
        await store.setDefaultVerifier(a.id, v1.verifierToken);
        expect(await store.getDefaultVerifier(a.id)).toBe(v1.verifierToken);
      });

      it('refuses a default that is not a verifier of the application with LK_NOT_FOUND, changing nothing', async () => {
        const a = await newApp();
        const b = await newApp();
        const mine = await store.createVerifier(verifier(a.id));
        const theirs = await store.createVerifier(verifier(b.id));
        await store.setDefaultVerifier(a.id, mine.verifierToken);
        await expectCode(store.setDefaultVerifier(a.id, uid('v')), 'LK_NOT_FOUND');
        await expectCode(store.setDefaultVerifier(a.id, theirs.verifierToken), 'LK_NOT_FOUND');
        await expectCode(store.setDefaultVerifier(a.id, ''), 'LK_NOT_FOUND');
        const gone = await store.createVerifier(verifier(a.id));
        await store.deleteVerifier(a.id, gone.verifierToken);
        await expectCode(store.setDefaultVerifier(a.id, gone.verifierToken), 'LK_NOT_FOUND');
        expect(await store.getDefaultVerifier(a.id)).toBe(mine.verifierToken);
        expect(await store.getDefaultVerifier(b.id)).toBeNull();
      });

      it('never leaves a concurrently deleted verifier as the default', async () => {
        const a = await newApp();
        for (let round = 0; round < 5; round++) {
          const v = await store.createVerifier(verifier(a.id));
          const [set, del] = await Promise.allSettled([store.setDefaultVerifier(a.id, v.verifierToken), store.deleteVerifier(a.id, v.verifierToken)]);
          expect(del).toEqual({ status: 'fulfilled', value: true });
          if (set.status === 'rejected') expect((set.reason as LatchkeyError).code).toBe('LK_NOT_FOUND');
          expect(await store.getVerifier(a.id, v.verifierToken)).toBeNull();
          expect(await store.getDefaultVerifier(a.id)).toBeNull();
        }
      });
    });

    describe('notification queues', () => {
      const note = (text: string): Buffer => Buffer.from(text, 'utf8');

      it('appends with strictly increasing seqs and lists oldest first, Buffers intact', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        const payloads = [note('one'), Buffer.alloc(0), randomBytes(300), note('four')];
        const before = Date.now();
        const seqs: number[] = [];
        for (const p of payloads) {
          const out = await store.enqueueNotification(a.id, ep, p, 100);
          expect(out.dropped).toBe(0);
          seqs.push(out.seq);
        }
        for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!);
        const listed = await store.listNotifications(a.id, ep, 100);
        expect(listed.map((n) => n.seq)).toEqual(seqs);
        listed.forEach((n, i) => {
          expect(Buffer.isBuffer(n.payload)).toBe(true);
          expect(n.payload.equals(payloads[i]!)).toBe(true);
          expect(Number.isSafeInteger(n.createdAt) && n.createdAt >= before - 1000).toBe(true);
        });
      });

      it('keeps one queue per endpoint', async () => {
        const a = await newApp();
        const b = await newApp();
        const [ep1, ep2] = [randomKeyHash(), randomKeyHash()];
        await store.enqueueNotification(a.id, ep1, note('a1'), 10);
        await store.enqueueNotification(a.id, ep2, note('a2'), 10);
        await store.enqueueNotification(b.id, ep1, note('b1'), 10);
        const text = async (appId: string, ep: string) => (await store.listNotifications(appId, ep, 10)).map((n) => n.payload.toString());
        expect(await text(a.id, ep1)).toEqual(['a1']);
        expect(await text(a.id, ep2)).toEqual(['a2']);
        expect(await text(b.id, ep1)).toEqual(['b1']);
        expect(await store.listNotifications(a.id, randomKeyHash(), 10)).toEqual([]);
        expect(await store.listNotifications(uid('no-app'), ep1, 10)).toEqual([]);
      });

      it('gives 20 concurrent enqueues 20 distinct seqs, listed in seq order', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.enqueueNotification(a.id, ep, note(`n${i}`), 100)));
        const seqs = results.map((r) => r.seq);
        expect(new Set(seqs).size).toBe(20);
        for (const r of results) expect(r.dropped).toBe(0);
        const listed = await store.listNotifications(a.id, ep, 100);
        expect(listed.map((n) => n.seq)).toEqual([...seqs].sort((x, y) => x - y));
        // Each payload sits under the seq its enqueue returned.
        results.forEach((r, i) => expect(listed.find((n) => n.seq === r.seq)?.payload.toString()).toBe(`n${i}`));
      });

      it('lists at most `limit`, oldest first', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        for (let i = 0; i < 5; i++) await store.enqueueNotification(a.id, ep, note(`n${i}`), 100);
        expect((await store.listNotifications(a.id, ep, 3)).map((n) => n.payload.toString())).toEqual(['n0', 'n1', 'n2']);
        expect(await store.listNotifications(a.id, ep, 5)).toHaveLength(5);
        await expectCode(store.listNotifications(a.id, ep, 0), 'LK_BAD_ARGUMENT');
      });

      it('acknowledges up to a seq; seqs are never reused after an ack', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        const seqs: number[] = [];
        for (let i = 0; i < 4; i++) seqs.push((await store.enqueueNotification(a.id, ep, note(`n${i}`), 100)).seq);
        await store.ackNotifications(a.id, ep, seqs[1]!);
        expect((await store.listNotifications(a.id, ep, 10)).map((n) => n.seq)).toEqual(seqs.slice(2));
        await store.ackNotifications(a.id, ep, seqs[1]!); // again: nothing left to remove
        await store.ackNotifications(a.id, ep, 0);
        await store.ackNotifications(a.id, ep, -1);
        expect((await store.listNotifications(a.id, ep, 10)).map((n) => n.seq)).toEqual(seqs.slice(2));
        await store.ackNotifications(a.id, ep, seqs[3]!);
        expect(await store.listNotifications(a.id, ep, 10)).toEqual([]);
        const next = await store.enqueueNotification(a.id, ep, note('after'), 100);
        expect(next.seq).toBeGreaterThan(seqs[3]!);
        await store.ackNotifications(a.id, ep, Number.MAX_SAFE_INTEGER);
        expect(await store.listNotifications(a.id, ep, 10)).toEqual([]);
        await expectCode(store.ackNotifications(a.id, ep, 1.5), 'LK_BAD_ARGUMENT');
      });

      it('drops the oldest entries when the queue is full and says how many', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        const dropped: number[] = [];
        for (let i = 0; i < 5; i++) dropped.push((await store.enqueueNotification(a.id, ep, note(`n${i}`), 3)).dropped);
        expect(dropped).toEqual([0, 0, 0, 1, 1]);
        const text = async () => (await store.listNotifications(a.id, ep, 10)).map((n) => n.payload.toString());
        expect(await text()).toEqual(['n2', 'n3', 'n4']);
        // A smaller max drops as many as needed; the new entry is never dropped.
        expect((await store.enqueueNotification(a.id, ep, note('n5'), 1)).dropped).toBe(3);
        expect(await text()).toEqual(['n5']);
        // Acknowledged entries free room.
        const last = await store.listNotifications(a.id, ep, 1);
        await store.ackNotifications(a.id, ep, last[0]!.seq);
        expect((await store.enqueueNotification(a.id, ep, note('n6'), 1)).dropped).toBe(0);
        expect(await text()).toEqual(['n6']);
      });

      it('refuses bad arguments with LK_BAD_ARGUMENT and queues nothing', async () => {
        const a = await newApp();
        const ep = randomKeyHash();
        await expectCode(store.enqueueNotification(a.id, 'bad key hash', note('x'), 10), 'LK_BAD_ARGUMENT');
        await expectCode(store.enqueueNotification('', ep, note('x'), 10), 'LK_BAD_ARGUMENT');
        await expectCode(store.enqueueNotification(a.id, ep, 'text' as unknown as Buffer, 10), 'LK_BAD_ARGUMENT');
        await expectCode(store.enqueueNotification(a.id, ep, Buffer.alloc(64 * 1024), 10), 'LK_BAD_ARGUMENT');
        await expectCode(store.enqueueNotification(a.id, ep, note('x'), 0), 'LK_BAD_ARGUMENT');
        await expectCode(store.enqueueNotification(a.id, ep, note('x'), 2.5), 'LK_BAD_ARGUMENT');
        await expectCode(store.ackNotifications(a.id, 'bad key hash', 1), 'LK_BAD_ARGUMENT');
        expect(await store.listNotifications(a.id, ep, 10)).toEqual([]);
        expect(await store.listNotifications(a.id, 'bad key hash', 10)).toEqual([]);
      });
    });

    describe('protection: bans and control log', () => {
      // Bans and the control log are global to the store (no tenant), and other suites or earlier
      // runs may share the backend: every test uses random values and looks only at its own rows,
      // except for properties that hold for every row (ordering, prefixes of a longer read).
      const hex4 = () => randomInt(0x1000, 0x10000).toString(16); // 4 digits, no leading zero
      const octet = () => randomInt(1, 255);
      const ban = (kind: BanKind, value: string, over: Partial<BanRecord> = {}): BanRecord => ({
        kind,
        value,
        reason: 'test ban',
        createdAt: Date.now(),
        expiresAt: null,
        createdBy: 'cli',
        ...over,
      });
      /** One ban of each kind and IP shape. */
      const oneOfEach = (): BanRecord[] => [
        ban('keyHash', randomKeyHash()),
        ban('ip', `10.${octet()}.${octet()}.${octet()}`),
        ban('ip', `10.${octet()}.${octet()}.0/24`),
        ban('ip', `2001:db8:${hex4()}:${hex4()}::1`),
        ban('ip', `2001:db8:${hex4()}::/48`),
        ban('app', uid('a')),
      ];
      const banId = (b: { kind: string; value: string }) => `${b.kind} ${b.value}`;
      async function listedBans(values: Array<{ kind: string; value: string }>, now = Date.now()): Promise<BanRecord[]> {
        const ids = new Set(values.map(banId));
        return (await store.listBans(now)).filter((b) => ids.has(banId(b)));
      }
      const byKindValue = (xs: BanRecord[]): BanRecord[] =>
        [...xs].sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.value < b.value ? -1 : a.value > b.value ? 1 : 0));

      const control = (over: Partial<ControlEntry> = {}): ControlEntry => ({
        id: randomUUID(),
        type: 'revoke',
        appId: uid('a'),
        keyHash: randomKeyHash(),
        at: Date.now(),
        ...over,
      });
      /** Generous limit for "everything since": foreign entries must not push ours out. */
      const ALL = 100_000;
      async function listedControl(since: number, mine: ControlEntry[], limit = ALL): Promise<ControlEntry[]> {
        const ids = new Set(mine.map((e) => e.id));
        return (await store.listControlSince(since, limit)).filter((e) => ids.has(e.id));
      }
      const inOrder = (xs: ControlEntry[]): ControlEntry[] => [...xs].sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

      it('puts, lists and deletes bans of every kind (keyHash, IPv4/IPv6 address and CIDR, app)', async () => {
        const bans = oneOfEach();
        for (const b of bans) expect(await store.putBan(b)).toEqual(b);
        expect(await listedBans(bans)).toEqual(byKindValue(bans));
        for (const b of bans) {
          expect(await store.deleteBan(b.kind, b.value)).toBe(true);
          expect(await store.deleteBan(b.kind, b.value)).toBe(false);
        }
        expect(await listedBans(bans)).toEqual([]);
      });

      it('replaces the ban of the same kind and value, in either direction of expiry', async () => {
        const value = randomKeyHash();
        await store.putBan(ban('keyHash', value, { reason: 'first', createdBy: 'flapping' }));
        const expiring = ban('keyHash', value, { reason: 'second', createdBy: 'k-1', expiresAt: Date.now() + 600_000 });
        expect(await store.putBan(expiring)).toEqual(expiring);
        expect(await listedBans([expiring])).toEqual([expiring]);
        // Back to permanent: the earlier expiresAt must not survive the replace.
        const permanent = ban('keyHash', value, { reason: 'third', createdBy: 'k-2', expiresAt: null });
        expect(await store.putBan(permanent)).toEqual(permanent);
        expect(await listedBans([permanent])).toEqual([permanent]);
        expect(await listedBans([permanent], Date.now() + 3_600_000)).toEqual([permanent]);
        expect(await store.deleteBan('keyHash', value)).toBe(true);
        expect(await listedBans([permanent])).toEqual([]);
      });

      it('keeps one ban per kind: the same value under two kinds is two bans', async () => {
        const value = randomKeyHash(); // base64url: valid as a key hash and as an application id
        const asKey = ban('keyHash', value, { reason: 'key' });
        const asApp = ban('app', value, { reason: 'app' });
        await store.putBan(asKey);
        await store.putBan(asApp);
        expect(await listedBans([asKey, asApp])).toEqual([asApp, asKey]);
        expect(await store.deleteBan('app', value)).toBe(true);
        expect(await listedBans([asKey, asApp])).toEqual([asKey]);
        expect(await store.deleteBan('keyHash', value)).toBe(true);
      });

      it('keeps an IP value exactly as given (the protection layer\'s normalized spelling too)', async () => {
        // BanList (src/protection/bans.ts) writes IPv6 as eight 4-digit groups and compares the
        // values it gets back with the ones it wrote: the store must not respell them.
        const [a, b] = [randomBytes(2).toString('hex'), randomBytes(2).toString('hex')];
        const bans = [
          ban('ip', `2001:0db8:${a}:${b}:0000:0000:0000:0001`),
          ban('ip', `2001:0db8:${a}:0000:0000:0000:0000:0000/48`),
          ban('ip', `10.${octet()}.0.0/16`),
        ];
        for (const x of bans) expect(await store.putBan(x)).toEqual(x);
        expect(await listedBans(bans)).toEqual(byKindValue(bans));
        for (const x of bans) expect(await store.deleteBan('ip', x.value)).toBe(true);
        expect(await listedBans(bans)).toEqual([]);
      });

      it('lists only bans not expired at `now` (expired when now >= expiresAt)', async () => {
        const now = Date.now();
        const lapsed = ban('keyHash', randomKeyHash(), { expiresAt: now - 1000 });
        const soon = ban('keyHash', randomKeyHash(), { expiresAt: now + 60_000 });
        const forever = ban('keyHash', randomKeyHash(), { expiresAt: null });
        for (const b of [lapsed, soon, forever]) await store.putBan(b);
        const mine = [lapsed, soon, forever];
        expect(await listedBans(mine, now)).toEqual(byKindValue([soon, forever]));
        expect(await listedBans(mine, soon.expiresAt! - 1)).toEqual(byKindValue([soon, forever]));
        expect(await listedBans(mine, soon.expiresAt!)).toEqual([forever]);
        expect(await listedBans(mine, now + 3_600_000)).toEqual([forever]);
        // Expiry is decided by the `now` given, not by the store's clock.
        expect(await listedBans(mine, now - 10_000)).toEqual(byKindValue(mine));
        for (const b of mine) await store.deleteBan(b.kind, b.value);
      });

      it('lists bans ordered by kind, then value', async () => {
        const mine = [...oneOfEach(), ...oneOfEach(), ...oneOfEach()].sort(() => Math.random() - 0.5);
        for (const b of mine) await store.putBan(b);
        const all = await store.listBans(Date.now());
        expect(all).toEqual(byKindValue(all));
        expect(await listedBans(mine)).toEqual(byKindValue(mine));
        for (const b of mine) await store.deleteBan(b.kind, b.value);
      });

      it('refuses bad bans with LK_BAD_ARGUMENT and writes nothing', async () => {
        const key = randomKeyHash();
        const bad: BanRecord[] = [
          ban('user' as BanKind, key),
          ban('keyHash', 'not a key hash!'),
          ban('keyHash', ''),
          ban('keyHash', 'A'.repeat(513)),
          ban('app', 'a'.repeat(513)),
          ban('app', ''),
          ban('ip', '10.0.0.256'),
          ban('ip', '10.0.0.0/33'),
          ban('ip', '2001:db8::/129'),
          ban('ip', '2001:db8::1/x'),
          ban('ip', 'fe80::1%eth0'),
          ban('ip', 'example.com'),
          ban('keyHash', key, { reason: 'r'.repeat(513) }),
          ban('keyHash', key, { createdAt: Number.NaN }),
          ban('keyHash', key, { expiresAt: 1.5 }),
        ];
        for (const b of bad) await expectCode(store.putBan(b), 'LK_BAD_ARGUMENT');
        expect(await listedBans([{ kind: 'keyHash', value: key }])).toEqual([]);
        // The longest reason is fine.
        const longest = ban('keyHash', key, { reason: 'r'.repeat(512) });
        expect(await store.putBan(longest)).toEqual(longest);
        expect(await store.deleteBan('keyHash', key)).toBe(true);
      });

      it('deleteBan of a missing (or impossible) ban is false', async () => {
        expect(await store.deleteBan('keyHash', randomKeyHash())).toBe(false);
        expect(await store.deleteBan('app', uid('a'))).toBe(false);
        expect(await store.deleteBan('ip', `10.${octet()}.${octet()}.${octet()}`)).toBe(false);
        expect(await store.deleteBan('ip', 'not an address')).toBe(false);
        expect(await store.deleteBan('user' as BanKind, randomKeyHash())).toBe(false);
      });

      it('appends control entries and lists them in `at` order, ties in id order', async () => {
        const base = Date.now();
        const appId = uid('a');
        const ties = Array.from({ length: 4 }, () => control({ appId, at: base + 1, type: 'kick' }));
        const mine = [control({ appId, at: base + 2 }), ...ties, control({ appId, at: base })];
        for (const e of mine) await store.appendControl(e);
        expect(await listedControl(base, mine)).toEqual(inOrder(mine));
        const all = await store.listControlSince(base - 60_000, ALL);
        expect(all).toEqual(inOrder(all));
      });

      it('lists entries with at >= sinceMs only', async () => {
        const base = Date.now() - 30_000;
        const mine = [control({ at: base }), control({ at: base + 10 }), control({ at: base + 20 })];
        for (const e of mine) await store.appendControl(e);
        expect(await listedControl(base, mine)).toEqual(mine);
        expect(await listedControl(base + 10, mine)).toEqual(mine.slice(1));
        expect(await listedControl(base + 9.5, mine)).toEqual(mine.slice(1));
        expect(await listedControl(base + 10.5, mine)).toEqual(mine.slice(2));
        expect(await listedControl(base + 21, mine)).toEqual([]);
        for (const e of await store.listControlSince(base + 10, ALL)) expect(e.at).toBeGreaterThanOrEqual(base + 10);
      });

      it('lists at most `limit`: a prefix of the longer read, across hours', async () => {
        const now = Date.now();
        // One hour apart: whatever the backend buckets by, these are not all in one bucket.
        const mine = [control({ at: now - 2 * 3_600_000 }), control({ at: now - 3_600_000 }), control({ at: now - 3_600_000 }), control({ at: now })];
        for (const e of mine) await store.appendControl(e);
        const since = now - 2 * 3_600_000;
        const all = await store.listControlSince(since, ALL);
        expect(all.filter((e) => mine.some((m) => m.id === e.id))).toEqual(inOrder(mine));
        for (const limit of [1, 2, 3]) {
          const page = await store.listControlSince(since, limit);
          expect(page).toEqual(all.slice(0, limit));
        }
      });

      it('refuses a bad limit, sinceMs or entry with LK_BAD_ARGUMENT and appends nothing', async () => {
        for (const limit of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
          await expectCode(store.listControlSince(Date.now(), limit), 'LK_BAD_ARGUMENT');
        }
        await expectCode(store.listControlSince(Number.NaN, 10), 'LK_BAD_ARGUMENT');
        const at = Date.now();
        const appId = uid('a');
        const bad: ControlEntry[] = [
          control({ appId, at, type: 'ban' as ControlType }),
          control({ appId, at, id: 'not-a-uuid' }),
          control({ appId, at, id: 42 as unknown as string }),
          control({ appId: '', at }),
          control({ appId, at, keyHash: '' }),
          control({ appId, at: -1 }),
          control({ appId, at: at + 0.5 }),
          control({ appId, at: Number.NaN }),
        ];
        for (const e of bad) await expectCode(store.appendControl(e), 'LK_BAD_ARGUMENT');
        expect((await store.listControlSince(at - 1000, ALL)).filter((e) => e.appId === appId)).toEqual([]);
      });

      it('returns the same entry identically on every read; appending it again stores it once', async () => {
        const e = control({ type: 'kick' });
        await store.appendControl(e);
        const first = await listedControl(e.at, [e]);
        const second = await listedControl(e.at, [e]);
        expect(first).toEqual([e]);
        expect(second).toEqual(first);
        await store.appendControl({ ...e });
        expect(await listedControl(e.at, [e])).toEqual([e]);
      });

      it('returns copies: mutating a passed-in or returned ban or entry does not change the store', async () => {
        const b = ban('app', uid('a'), { expiresAt: Date.now() + 600_000 });
        const snapshot = { ...b };
        const put = await store.putBan(b);
        expect(put).not.toBe(b);
        b.reason = 'changed input';
        put.reason = 'changed output';
        put.expiresAt = null;
        const [listed] = await listedBans([snapshot]);
        listed!.reason = 'changed list';
        expect(await listedBans([snapshot])).toEqual([snapshot]);
        await store.deleteBan(snapshot.kind, snapshot.value);

        const e = control();
        const eSnapshot = { ...e };
        await store.appendControl(e);
        e.type = 'kick';
        e.appId = 'changed input';
        const [got] = await listedControl(eSnapshot.at, [eSnapshot]);
        got!.keyHash = 'changed output';
        got!.at = 0;
        expect(await listedControl(eSnapshot.at, [eSnapshot])).toEqual([eSnapshot]);
      });

      it('keeps bans and control entries across close and reopen', async () => {
        const b = ban('ip', `2001:db8:${hex4()}::/48`, { expiresAt: Date.now() + 600_000 });
        const gone = ban('keyHash', randomKeyHash());
        await store.putBan(b);
        await store.putBan(gone);
        await store.deleteBan(gone.kind, gone.value);
        const e = control();
        await store.appendControl(e);

        await store.close();
        store = await open();

        expect(await listedBans([b, gone])).toEqual([b]);
        expect(await listedControl(e.at, [e])).toEqual([e]);
        await store.deleteBan(b.kind, b.value);
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

        const k = apiKey(t.id);
        const hash = Buffer.from(k.secretHash);
        const createdK = await store.createApiKey(k);
        expect(createdK.secretHash).not.toBe(k.secretHash);
        k.secretHash.fill(0);
        k.name = 'changed input';
        createdK.secretHash.fill(1);
        createdK.tenantId = null;
        const gotK = await store.getApiKey(k.id);
        gotK!.secretHash.fill(2);
        gotK!.name = 'changed get';
        (await store.listApiKeys(t.id))[0]!.secretHash.fill(3);
        (await store.listApiKeys()).find((x) => x.id === k.id)!.secretHash.fill(4);
        const again = await store.getApiKey(k.id);
        expect(again).toMatchObject({ tenantId: t.id, name: 'Key' });
        expect(again!.secretHash.equals(hash)).toBe(true);
        expect((await store.listApiKeys(t.id))[0]!.secretHash.equals(hash)).toBe(true);

        const owner = uid('user');
        const ep = randomKeyHash();
        await store.attachEndpointToOwner(t.id, owner, a.id, ep);
        const attached = (await store.getEndpointOwner(a.id, ep))!;
        const snapshot = { ...attached };
        attached.ownerExternalId = 'changed get';
        (await store.listOwnerEndpoints(t.id, owner))[0]!.keyHash = 'changed list';
        expect(await store.getEndpointOwner(a.id, ep)).toEqual(snapshot);
        expect(await store.listOwnerEndpoints(t.id, owner)).toEqual([snapshot]);

        const tokenHash = randomBytes(32);
        const tokenCopy = Buffer.from(tokenHash);
        await store.setEndpointAccessToken(a.id, ep, tokenHash, Date.now() + 60_000);
        tokenHash.fill(0);
        expect(await store.findEndpointByAccessToken(t.id, tokenHash, Date.now())).toBeNull();
        const found = (await store.findEndpointByAccessToken(t.id, tokenCopy, Date.now()))!;
        found.keyHash = 'changed';
        expect(await store.findEndpointByAccessToken(t.id, tokenCopy, Date.now())).toEqual({ appId: a.id, keyHash: ep });

        const v = verifier(a.id);
        const vSnapshot = { ...v };
        const createdV = await store.createVerifier(v);
        v.name = 'changed input';
        createdV.jsonConfiguration = 'changed output';
        (await store.getVerifier(a.id, v.verifierToken))!.description = 'changed get';
        (await store.listVerifiers(a.id))[0]!.pluginTypeName = 'changed list';
        const updatedV = await store.updateVerifier({ ...vSnapshot, updatedAt: vSnapshot.updatedAt + 1 });
        updatedV.name = 'changed update';
        expect(await store.getVerifier(a.id, v.verifierToken)).toEqual({ ...vSnapshot, updatedAt: vSnapshot.updatedAt + 1 });

        const payload = randomBytes(64);
        const payloadCopy = Buffer.from(payload);
        await store.enqueueNotification(a.id, ep, payload, 10);
        payload.fill(0);
        const [queued] = await store.listNotifications(a.id, ep, 10);
        expect(queued!.payload).not.toBe(payload);
        queued!.payload.fill(1);
        queued!.seq = -1;
        const [again2] = await store.listNotifications(a.id, ep, 10);
        expect(again2!.payload.equals(payloadCopy)).toBe(true);
        expect(again2!.seq).toBeGreaterThan(0);
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
        const tenantKey = await store.createApiKey(apiKey(t.id));
        const rootKey = await store.createApiKey(apiKey(null));
        const goneKey = await store.createApiKey(apiKey(t.id));
        await store.deleteApiKey(goneKey.id);
        const keyCount = await store.countApiKeys();
        const owner = uid('user');
        const moved = randomKeyHash();
        await store.attachEndpointToOwner(t.id, uid('user'), a.id, moved);
        await store.attachEndpointToOwner(t.id, owner, a.id, moved);
        await store.attachEndpointToOwner(t.id, owner, a.id, e.keyHash);
        const attachments = await store.listOwnerEndpoints(t.id, owner);
        const oldToken = randomBytes(32);
        const token = randomBytes(32);
        const tokenExpiry = Date.now() + 3_600_000;
        await store.setEndpointAccessToken(a.id, e.keyHash, oldToken, tokenExpiry);
        await store.setEndpointAccessToken(a.id, e.keyHash, token, tokenExpiry);
        const v1 = await store.createVerifier(verifier(a.id));
        const v2 = await store.updateVerifier({ ...(await store.createVerifier(verifier(a.id))), name: 'updated', updatedAt: Date.now() + 1 });
        const vGone = await store.createVerifier(verifier(a.id));
        await store.deleteVerifier(a.id, vGone.verifierToken);
        await store.setDefaultVerifier(a.id, v2.verifierToken);
        const verifiers = await store.listVerifiers(a.id);
        const queueEp = randomKeyHash();
        const seqs: number[] = [];
        for (let i = 0; i < 4; i++) seqs.push((await store.enqueueNotification(a.id, queueEp, Buffer.from(`n${i}`), 3)).seq);
        await store.ackNotifications(a.id, queueEp, seqs[1]!);
        const queue = await store.listNotifications(a.id, queueEp, 10);

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
        expect(await store.getApiKey(tenantKey.id)).toEqual(tenantKey);
        expect((await store.getApiKey(rootKey.id))!.secretHash.equals(rootKey.secretHash)).toBe(true);
        expect(await store.getApiKey(rootKey.id)).toEqual(rootKey);
        expect(await store.getApiKey(goneKey.id)).toBeNull();
        expect(await store.listApiKeys(t.id)).toEqual([tenantKey]);
        expect((await store.listApiKeys(null)).filter((k) => k.id === rootKey.id)).toEqual([rootKey]);
        expect(await store.countApiKeys()).toBe(keyCount);
        // Constraints survive too.
        await expectCode(store.createApplication(app(t.id, { appToken: a.appToken })), 'LK_APP_TOKEN_TAKEN');
        expect(await store.bindCredentials(a.id, c.credentialsId, 'ep-2')).toMatchObject({ ok: false, reason: 'IN_USE' });
        await expectCode(store.createApiKey(apiKey(null, { id: tenantKey.id })), 'LK_CONFLICT');
        expect(attachments).toHaveLength(2);
        expect(await store.listOwnerEndpoints(t.id, owner)).toEqual(attachments);
        expect(await store.getEndpointOwner(a.id, moved)).toEqual(attachments.find((x) => x.keyHash === moved));
        expect(await store.attachEndpointIfUnownedOrSameOwner(t.id, uid('user'), a.id, moved)).toEqual({ ok: false, currentOwner: owner });
        expect(await store.findEndpointByAccessToken(t.id, token, Date.now())).toEqual({ appId: a.id, keyHash: e.keyHash });
        expect(await store.findEndpointByAccessToken(t.id, oldToken, Date.now())).toBeNull();
        await expectCode(store.setEndpointAccessToken(a.id, randomKeyHash(), token, tokenExpiry), 'LK_CONFLICT');
        expect(verifiers.map((v) => v.verifierToken)).toEqual([v1.verifierToken, v2.verifierToken].sort());
        expect(await store.listVerifiers(a.id)).toEqual(verifiers);
        expect(await store.getVerifier(a.id, v2.verifierToken)).toEqual(v2);
        expect(await store.getVerifier(a.id, vGone.verifierToken)).toBeNull();
        expect(await store.getDefaultVerifier(a.id)).toBe(v2.verifierToken);
        await expectCode(store.createVerifier(verifier(a.id, { verifierToken: v1.verifierToken })), 'LK_CONFLICT');
        expect(queue.map((n) => n.seq)).toEqual(seqs.slice(2));
        expect(queue.map((n) => n.payload.toString())).toEqual(['n2', 'n3']);
        expect(await store.listNotifications(a.id, queueEp, 10)).toEqual(queue);
        // The seq counter survives too: no seq is reused after a reopen.
        expect((await store.enqueueNotification(a.id, queueEp, Buffer.from('n4'), 3)).seq).toBeGreaterThan(seqs[3]!);
      });
    });
  });
}
