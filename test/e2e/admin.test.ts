/**
 * Admin REST API: every route with its happy path, missing/bad credentials (401), another tenant's
 * key (404, indistinguishable from missing), malformed and oversize bodies (400/413), unknown ids
 * (404) and conflicts (409); the OpenAPI document lists exactly the routes that answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';
import { makeEndpointKey } from '../helpers/wire-client.js';

let h: Harness;
let tenantA: string; // key of tenant A
let tenantB: string; // key of tenant B

interface Res {
  status: number;
  body: Record<string, unknown>;
}

async function call(method: string, path: string, opts: { key?: string | null; body?: unknown; raw?: string } = {}): Promise<Res> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const key = opts.key === undefined ? h.rootKey : opts.key;
  if (key) headers.authorization = `Bearer ${key}`;
  const r = await fetch(`${h.adminUrl}${path}`, { method, headers, ...(opts.raw !== undefined ? { body: opts.raw } : opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

beforeAll(async () => {
  h = await startHarness();
  expect(h.rootKey).toMatch(/^lk_/);
  expect((await call('POST', '/admin/v1/tenants', { body: { id: 'ta', name: 'Tenant A' } })).status).toBe(201);
  expect((await call('POST', '/admin/v1/tenants', { body: { id: 'tb', name: 'Tenant B' } })).status).toBe(201);
  tenantA = (await call('POST', '/admin/v1/api-keys', { body: { name: 'a', tenantId: 'ta' } })).body.token as string;
  tenantB = (await call('POST', '/admin/v1/api-keys', { body: { name: 'b', tenantId: 'tb' } })).body.token as string;
});
afterAll(async () => {
  await h?.close();
});

describe('admin API: authentication and generic errors', () => {
  it('401 without a key, with a malformed key and with a wrong secret', async () => {
    expect(await call('GET', '/admin/v1/tenants', { key: null })).toMatchObject({ status: 401, body: { code: 'LK_AUTH_REQUIRED' } });
    expect(await call('GET', '/admin/v1/tenants', { key: 'nope' })).toMatchObject({ status: 401, body: { code: 'LK_AUTH_INVALID' } });
    const wrong = h.rootKey.replace(/\.(.)/, (_m, c: string) => `.${c === 'A' ? 'B' : 'A'}`);
    expect(await call('GET', '/admin/v1/tenants', { key: wrong })).toMatchObject({ status: 401, body: { code: 'LK_AUTH_INVALID' } });
  });
  it('404 for unknown paths, 405 for wrong methods, 400 for bad JSON and unknown fields, 413 for big bodies', async () => {
    expect(await call('GET', '/admin/v1/nothing')).toMatchObject({ status: 404, body: { code: 'LK_NOT_FOUND' } });
    expect(await call('PUT', '/admin/v1/tenants')).toMatchObject({ status: 405, body: { code: 'LK_METHOD_NOT_ALLOWED' } });
    expect(await call('POST', '/admin/v1/tenants', { raw: '{not json' })).toMatchObject({ status: 400, body: { code: 'LK_BAD_JSON' } });
    expect(await call('POST', '/admin/v1/tenants', { raw: '[1,2]' })).toMatchObject({ status: 400, body: { code: 'LK_BAD_JSON' } });
    expect(await call('POST', '/admin/v1/tenants', { body: { name: 'x', colour: 'red' } })).toMatchObject({ status: 400, body: { code: 'LK_UNKNOWN_FIELD' } });
    expect(await call('POST', '/admin/v1/tenants', { body: { name: 7 } })).toMatchObject({ status: 400, body: { code: 'LK_BAD_ARGUMENT' } });
    expect(await call('POST', '/admin/v1/tenants', { body: {} })).toMatchObject({ status: 400, body: { code: 'LK_BAD_ARGUMENT' } });
    expect(await call('POST', '/admin/v1/tenants', { raw: JSON.stringify({ name: 'x'.repeat(70_000) }) })).toMatchObject({ status: 413, body: { code: 'LK_BODY_TOO_LARGE' } });
    expect(await call('GET', '/admin/v1/tenants?colour=red')).toMatchObject({ status: 400, body: { code: 'LK_UNKNOWN_FIELD' } });
  });
  it('403 for a tenant key on root-only routes', async () => {
    for (const [m, p] of [['POST', '/admin/v1/tenants'], ['GET', '/admin/v1/api-keys'], ['GET', '/admin/v1/server-keys'], ['POST', '/admin/v1/server-keys']] as const) {
      expect((await call(m, p, { key: tenantA, ...(m === 'POST' ? { body: { name: 'x' } } : {}) })).status, `${m} ${p}`).toBe(403);
    }
  });
});

describe('admin API: tenants, applications, credentials, registrations, endpoints, sessions', () => {
  let appId = '';
  const key = makeEndpointKey();

  it('tenants: create, conflict, list scoped to the key, get, and no leak across tenants', async () => {
    expect(await call('POST', '/admin/v1/tenants', { body: { id: 'ta', name: 'again' } })).toMatchObject({ status: 409, body: { code: 'LK_CONFLICT' } });
    const asA = await call('GET', '/admin/v1/tenants', { key: tenantA });
    expect((asA.body.items as Array<{ id: string }>).map((t) => t.id)).toEqual(['ta']);
    expect(await call('GET', '/admin/v1/tenants/ta', { key: tenantA })).toMatchObject({ status: 200, body: { id: 'ta' } });
    const other = await call('GET', '/admin/v1/tenants/tb', { key: tenantA });
    const missing = await call('GET', '/admin/v1/tenants/zz', { key: tenantA });
    // Another tenant's tenant answers exactly as a missing one does.
    expect([other.status, other.body.code]).toEqual([missing.status, missing.body.code]);
    expect([other.status, other.body.code]).toEqual([404, 'LK_TENANT_NOT_FOUND']);
  });

  it('applications: create (root key with a chosen id and token, tenant key with generated ones), conflicts, list, get, isolation', async () => {
    const r = await call('POST', '/admin/v1/tenants/ta/applications', { body: { id: 'app-a', name: 'A app', credentialsService: 'internal', appToken: 'token-app-a-123' } });
    expect(r).toMatchObject({ status: 201, body: { id: 'app-a', tenantId: 'ta', credentialsService: 'internal' } });
    appId = 'app-a';
    expect((await call('POST', '/admin/v1/tenants/ta/applications', { body: { name: 'dup', appToken: 'token-app-a-123' } })).body.code).toBe('LK_APP_TOKEN_TAKEN');
    // A tenant key may not choose ids or tokens (test/e2e/admin-findings.test.ts shows why).
    expect((await call('POST', '/admin/v1/tenants/ta/applications', { key: tenantA, body: { name: 'dup', appToken: 'token-app-a-123' } })).body.code).toBe('LK_FORBIDDEN');
    expect((await call('POST', '/admin/v1/tenants/ta/applications', { key: tenantA, body: { name: 'x', credentialsService: 'nope' } })).body.code).toBe('LK_BAD_CREDENTIALS_SERVICE');
    expect((await call('POST', '/admin/v1/tenants/ta/applications', { key: tenantA, body: { name: 'x', profileSchema: { type: 'nonsense' } } })).body.code).toBe('LK_BAD_PROFILE_SCHEMA');
    expect((await call('POST', '/admin/v1/tenants/tb/applications', { key: tenantA, body: { name: 'x' } })).status).toBe(404);
    const generated = await call('POST', '/admin/v1/tenants/ta/applications', { key: tenantA, body: { name: 'generated' } });
    expect(generated.status).toBe(201);
    expect(((await call('GET', '/admin/v1/tenants/ta/applications', { key: tenantA })).body.items as Array<{ id: string }>).map((a) => a.id).sort()).toEqual(['app-a', generated.body.id as string].sort());
    expect(await call('GET', `/admin/v1/applications/${appId}`, { key: tenantA })).toMatchObject({ status: 200, body: { id: appId } });
    expect(await call('GET', `/admin/v1/applications/${appId}`, { key: tenantB })).toMatchObject({ status: 404, body: { code: 'LK_APP_NOT_FOUND' } });
    expect(await call('GET', '/admin/v1/applications/none', { key: tenantB })).toMatchObject({ status: 404, body: { code: 'LK_APP_NOT_FOUND' } });
  });

  it('credentials: provision, status, conflict, bad key, revoke, notify-revoked, isolation', async () => {
    const p = await call('POST', `/admin/v1/applications/${appId}/credentials`, { key: tenantA, body: { publicKey: key.publicKeyPem, serverProfile: { room: 'attic' } } });
    expect(p).toMatchObject({ status: 201, body: { credentials: { credentialsId: key.keyHash, status: 'AVAILABLE' }, registration: { serverProfile: { room: 'attic' } } } });
    expect((await call('POST', `/admin/v1/applications/${appId}/credentials`, { key: tenantA, body: { publicKey: key.publicKeyPem } })).body.code).toBe('LK_CRED_EXISTS');
    expect((await call('POST', `/admin/v1/applications/${appId}/credentials`, { key: tenantA, body: { publicKey: 'garbage' } })).body.code).toBe('LK_BAD_PUBLIC_KEY');
    expect(await call('GET', `/admin/v1/applications/${appId}/credentials/${key.keyHash}`, { key: tenantA })).toMatchObject({ status: 200, body: { status: 'AVAILABLE' } });
    expect((await call('GET', `/admin/v1/applications/${appId}/credentials/${key.keyHash}`, { key: tenantB })).status).toBe(404);
    expect((await call('GET', `/admin/v1/applications/${appId}/credentials/${makeEndpointKey().keyHash}`, { key: tenantA })).status).toBe(404);
    expect((await call('GET', `/admin/v1/applications/${appId}/credentials/short`, { key: tenantA })).body.code).toBe('LK_BAD_ARGUMENT');
    const other = makeEndpointKey();
    await call('POST', `/admin/v1/applications/${appId}/credentials`, { key: tenantA, body: { publicKey: other.publicKeyPem } });
    expect(await call('POST', `/admin/v1/applications/${appId}/credentials/${other.keyHash}/revoke`, { key: tenantA })).toMatchObject({ status: 200, body: { status: 'REVOKED' } });
    expect((await call('POST', `/admin/v1/applications/${appId}/credentials/${other.keyHash}/revoke`, { key: tenantA })).status).toBe(200);
    expect((await call('POST', `/admin/v1/applications/${appId}/credentials/${makeEndpointKey().keyHash}/revoke`, { key: tenantA })).status).toBe(404);
    expect((await call('POST', `/admin/v1/applications/${appId}/credentials/${other.keyHash}/revoke`, { key: tenantB })).status).toBe(404);
    expect(await call('POST', `/admin/v1/applications/${appId}/credentials/${other.keyHash}/notify-revoked`, { key: tenantA })).toMatchObject({ status: 200, body: { propagation: { endedHere: 0, log: 'written', bus: 'local' } } });
  });

  it('credentials list: pages by id with status, filters by status, coded 400s, isolation', async () => {
    expect((await call('POST', '/admin/v1/tenants/ta/applications', { body: { id: 'list-a', name: 'List', credentialsService: 'internal' } })).status).toBe(201);
    const base = '/admin/v1/applications/list-a/credentials';
    expect(await call('GET', base, { key: tenantA })).toMatchObject({ status: 200, body: { items: [], next: null } });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const k = makeEndpointKey();
      expect((await call('POST', base, { key: tenantA, body: { publicKey: k.publicKeyPem } })).status).toBe(201);
      ids.push(k.keyHash);
    }
    ids.sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect((await call('POST', `${base}/${ids[1]!}/revoke`, { key: tenantA })).status).toBe(200);

    const p1 = await call('GET', `${base}?limit=3`, { key: tenantA });
    expect(p1.status).toBe(200);
    const items1 = p1.body.items as Array<{ credentialsId: string; status: string; publicKey: string | null }>;
    expect(items1.map((c) => c.credentialsId)).toEqual(ids.slice(0, 3));
    expect(items1.map((c) => c.status)).toEqual(['AVAILABLE', 'REVOKED', 'AVAILABLE']);
    expect(items1[0]!.publicKey).toContain('BEGIN PUBLIC KEY');
    expect(typeof p1.body.next).toBe('string');
    const p2 = await call('GET', `${base}?limit=3&cursor=${encodeURIComponent(p1.body.next as string)}`, { key: tenantA });
    expect((p2.body.items as Array<{ credentialsId: string }>).map((c) => c.credentialsId)).toEqual(ids.slice(3));
    expect(p2.body.next).toBeNull();
    const revoked = await call('GET', `${base}?status=REVOKED`, { key: tenantA });
    expect((revoked.body.items as Array<{ credentialsId: string }>).map((c) => c.credentialsId)).toEqual([ids[1]]);
    expect(((await call('GET', `${base}?status=AVAILABLE&limit=1000`, { key: tenantA })).body.items as unknown[]).length).toBe(4);

    for (const q of ['limit=0', 'limit=1001', 'limit=abc', 'limit=1.5', 'limit=', 'status=GONE', 'status=revoked', 'cursor=%25%25', 'cursor=not-a-cursor!']) {
      expect([(await call('GET', `${base}?${q}`, { key: tenantA })).status, (await call('GET', `${base}?${q}`, { key: tenantA })).body.code], q).toEqual([400, 'LK_BAD_ARGUMENT']);
    }
    expect((await call('GET', `${base}?after=x`, { key: tenantA })).body.code).toBe('LK_UNKNOWN_FIELD');
    expect((await call('GET', base, { key: tenantB })).body.code).toBe('LK_APP_NOT_FOUND');
    expect((await call('GET', '/admin/v1/applications/no-such-app/credentials', { key: tenantA })).body.code).toBe('LK_APP_NOT_FOUND');
  });

  it('registrations: provision and replace a server-side profile', async () => {
    const id = makeEndpointKey().keyHash;
    expect(await call('PUT', `/admin/v1/applications/${appId}/registrations/${id}`, { key: tenantA, body: { serverProfile: { a: 1 } } })).toMatchObject({ status: 200, body: { serverProfile: { a: 1 } } });
    expect(await call('PUT', `/admin/v1/applications/${appId}/registrations/${id}`, { key: tenantA, body: { serverProfile: null } })).toMatchObject({ status: 200, body: { serverProfile: null } });
    expect((await call('PUT', `/admin/v1/applications/${appId}/registrations/${id}`, { key: tenantA, body: {} })).status).toBe(400);
    expect((await call('PUT', `/admin/v1/applications/${appId}/registrations/${id}`, { key: tenantB, body: { serverProfile: null } })).status).toBe(404);
  });

  it('endpoints and sessions: list, get, paging errors, kick', async () => {
    const e = await h.server.store.saveEndpoint({ appId, keyHash: key.keyHash, credentialsId: key.keyHash, publicKey: key.spki, profileBody: Buffer.from('hi'), profileHash: Buffer.alloc(32), serverProfileBody: null, createdAt: 1, updatedAt: 1 });
    const list = await call('GET', `/admin/v1/applications/${appId}/endpoints?limit=10`, { key: tenantA });
    expect(list).toMatchObject({ status: 200, body: { next: null } });
    expect((list.body.items as Array<{ keyHash: string }>).map((x) => x.keyHash)).toEqual([e.keyHash]);
    expect((await call('GET', `/admin/v1/applications/${appId}/endpoints?limit=0`, { key: tenantA })).body.code).toBe('LK_BAD_ARGUMENT');
    expect((await call('GET', `/admin/v1/applications/${appId}/endpoints?cursor=%%%`, { key: tenantA })).status).toBe(400);
    expect(await call('GET', `/admin/v1/applications/${appId}/endpoints/${key.keyHash}`, { key: tenantA })).toMatchObject({ status: 200, body: { profile: Buffer.from('hi').toString('base64'), connected: false } });
    expect((await call('GET', `/admin/v1/applications/${appId}/endpoints/${makeEndpointKey().keyHash}`, { key: tenantA })).status).toBe(404);
    expect((await call('GET', `/admin/v1/applications/${appId}/endpoints`, { key: tenantB })).status).toBe(404);
    expect(await call('GET', `/admin/v1/applications/${appId}/sessions`, { key: tenantA })).toMatchObject({ status: 200, body: { items: [] } });
    expect(await call('DELETE', `/admin/v1/applications/${appId}/sessions/${key.keyHash}`, { key: tenantA })).toMatchObject({ status: 200, body: { propagation: { endedHere: 0, log: 'written', bus: 'local' } } });
    expect((await call('DELETE', `/admin/v1/applications/${appId}/sessions/${key.keyHash}`, { key: tenantB })).status).toBe(404);
  });
});

describe('admin API: server keys and API keys', () => {
  it('lists, adds and retires server keys; refuses retiring the active key and unknown ids', async () => {
    const before = await call('GET', '/admin/v1/server-keys');
    expect((before.body.items as unknown[]).length).toBe(1);
    const old = (before.body.items as Array<{ id: string }>)[0]!.id;
    const added = await call('POST', '/admin/v1/server-keys');
    expect(added).toMatchObject({ status: 201, body: { status: 'active' } });
    expect((await call('POST', `/admin/v1/server-keys/${added.body.id as string}/retire`)).body.code).toBe('LK_CONFLICT');
    expect(await call('POST', `/admin/v1/server-keys/${old}/retire`)).toMatchObject({ status: 200, body: { status: 'retired' } });
    expect((await call('POST', '/admin/v1/server-keys/AAAAAAAAAAAAAAAA/retire')).status).toBe(404);
  });

  it('creates, lists and deletes API keys; a deleted key stops working at once', async () => {
    const created = await call('POST', '/admin/v1/api-keys', { body: { name: 'temp' } });
    expect(created.status).toBe(201);
    const token = created.body.token as string;
    expect((await call('GET', '/admin/v1/tenants', { key: token })).status).toBe(200);
    const list = await call('GET', '/admin/v1/api-keys');
    expect(JSON.stringify(list.body)).not.toContain(token.split('.')[1]!);
    expect((await call('DELETE', `/admin/v1/api-keys/${created.body.id as string}`)).status).toBe(204);
    expect((await call('GET', '/admin/v1/tenants', { key: token })).status).toBe(401);
    expect((await call('DELETE', `/admin/v1/api-keys/${created.body.id as string}`)).status).toBe(404);
    expect((await call('POST', '/admin/v1/api-keys', { body: { name: 'x', tenantId: 'no-such-tenant' } })).body.code).toBe('LK_TENANT_NOT_FOUND');
  });
});

describe('OpenAPI document', () => {
  it('is served without authentication and lists exactly the routes', async () => {
    const doc = await call('GET', '/admin/openapi.json', { key: null });
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.0.3');
    const ops = Object.entries(doc.body.paths as Record<string, Record<string, unknown>>).flatMap(([p, m]) => Object.keys(m).map((k) => `${k.toUpperCase()} ${p}`)).sort();
    const { adminRoutes } = await import('../../src/admin/routes.js');
    const routes = adminRoutes({} as never).map((r) => `${r.method} ${r.path}`).sort();
    expect(ops).toEqual(routes);
    // Every documented operation is routed, and every one but the public ones (the document
    // itself, /readyz) wants a key.
    const publicOps = adminRoutes({} as never).filter((r) => r.scope === 'public').map((r) => `${r.method} ${r.path}`).sort();
    expect(publicOps).toEqual(['GET /admin/openapi.json', 'GET /readyz']);
    for (const op of ops) {
      const [method, path] = op.split(' ') as [string, string];
      const concrete = path.replace(/\{(\w+)\}/g, 'x');
      const r = await call(method, concrete, { key: null });
      if (publicOps.includes(op)) expect(r.status, op).toBe(200);
      else expect([r.status, r.body.code], op).toEqual([401, 'LK_AUTH_REQUIRED']);
    }
  });
});

describe('admin API: bad input on every route', () => {
  const fill = (path: string, appId: string, tenantId: string, id: string): string =>
    path.replace('{tenantId}', tenantId).replace('{appId}', appId).replace(/\{(credentialsId|keyHash)\}/, id).replace(/\{\w+\}/g, 'x');

  it('another tenant\'s key gets the same 404 as for a missing object on every tenant-scoped route', async () => {
    const { adminRoutes } = await import('../../src/admin/routes.js');
    const id = makeEndpointKey().keyHash;
    for (const r of adminRoutes({} as never)) {
      if (r.scope !== 'tenant' || !/\{(tenantId|appId)\}/.test(r.path)) continue; // only routes that address a tenant's objects
      const body = r.body ? { name: 'x', pluginTypeName: 'trustful', verifierToken: null, publicKey: makeEndpointKey().publicKeyPem, serverProfile: null } : undefined;
      const filtered = body && r.body?.properties ? Object.fromEntries(Object.entries(body).filter(([k]) => Object.hasOwn(r.body!.properties!, k))) : undefined;
      const asOther = await call(r.method, fill(r.path, 'app-a', 'ta', id), { key: tenantB, ...(filtered ? { body: filtered } : {}) });
      const missing = await call(r.method, fill(r.path, 'no-such-app', 'no-such-tenant', id), { key: tenantB, ...(filtered ? { body: filtered } : {}) });
      expect([asOther.status, asOther.body.code], `${r.method} ${r.path}`).toEqual([404, missing.body.code]);
      expect(missing.status).toBe(404);
    }
  });

  it('every route with a body answers 400 for non-objects and unknown fields, and 413 when oversize', async () => {
    const { adminRoutes } = await import('../../src/admin/routes.js');
    const id = makeEndpointKey().keyHash;
    for (const r of adminRoutes({} as never)) {
      if (!r.body) continue;
      const path = fill(r.path, 'app-a', 'ta', id);
      const label = `${r.method} ${r.path}`;
      expect((await call(r.method, path, { raw: '[1]' })).body.code, label).toBe('LK_BAD_JSON');
      expect((await call(r.method, path, { raw: 'nope' })).body.code, label).toBe('LK_BAD_JSON');
      expect((await call(r.method, path, { body: { bogusField: 1 } })).body.code, label).toBe('LK_UNKNOWN_FIELD');
      const big = await call(r.method, path, { raw: JSON.stringify({ pad: 'x'.repeat(70_000) }) });
      expect([big.status, big.body.code], label).toEqual([413, 'LK_BODY_TOO_LARGE']);
    }
  });
});
