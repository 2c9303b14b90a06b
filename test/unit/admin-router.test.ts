/**
 * The admin API in-process: the real route table (admin/routes.ts) and router (admin/http.ts) on
 * the embedded store in a temp dir, a real key ring, credentials gate, application directory and
 * ban list, API keys checked by the real authenticator; requests injected as plain objects
 * (transport/http.ts inject(), what the uWS listener would have read), no socket. The services a
 * node wires around sessions (revocation, session control, bus, ownership) are not built: a route
 * that reached one would answer 500, and none tested here does. test/e2e/admin-router.test.ts and
 * the admin e2e suites cover the same router over real HTTP.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import client from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiKeyAuthenticator, newApiKey } from '../../src/admin/auth.js';
import { AdminRouter, MAX_BODY_BYTES } from '../../src/admin/http.js';
import { openapiDocument } from '../../src/admin/openapi.js';
import { adminRoutes, type AdminDeps } from '../../src/admin/routes.js';
import { MemoryCache } from '../../src/cache/cache-memory.js';
import { CredentialsGate, StoreCredentialsService } from '../../src/credentials/credentials.js';
import { KeyRing } from '../../src/crypto/keyring.js';
import { keyHashId, toSpkiDer } from '../../src/crypto/keys.js';
import { BanList } from '../../src/protection/bans.js';
import { EmbeddedStore } from '../../src/store/store-embedded.js';
import { ApplicationDirectory } from '../../src/tenancy/applications.js';
import type { InjectedReply, InjectOptions } from '../../src/transport/http.js';

let dir: string;
let store: EmbeddedStore;
let router: AdminRouter;
let registry: client.Registry;
/** Every log line the router wrote (audit lines among them). */
const logLines: Array<Record<string, unknown>> = [];
let root: string;
let tenantA: string;
let tenantB: string;

/** A dependency no route under test may reach: touching it throws (the route answers 500). */
function notWired(name: string): never {
  return new Proxy({}, { get: () => { throw new Error(`${name} is not wired in this test`); } }) as never;
}

async function apiKey(tenantId: string | null): Promise<string> {
  const k = newApiKey(tenantId, `key for ${tenantId ?? 'root'}`);
  await store.createApiKey(k.record);
  return `Bearer ${k.token}`;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-admin-router-'));
  store = await EmbeddedStore.open(path.join(dir, 'store'));
  const log = pino({ level: 'info' }, new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  }));
  const services = new Map([['trustful', new StoreCredentialsService(store, true)], ['internal', new StoreCredentialsService(store, false)]]);
  let routes: ReturnType<typeof adminRoutes> = [];
  const deps: AdminDeps = {
    store,
    apps: new ApplicationDirectory(store, 60_000, 5_000),
    credentials: new CredentialsGate(services, new MemoryCache(), { ttlMs: 60_000, negativeTtlMs: 5_000 }),
    revocation: notWired('revocation'),
    control: notWired('control'),
    bans: new BanList({ store, log, announce: async () => undefined, onBanned: () => undefined }),
    readiness: async () => ({ store: 'ok', cache: 'ok', bus: 'ok' }),
    liveSessions: { online: async (_appId, keyHashes) => keyHashes.map(() => false), list: async () => [] },
    locate: async () => null,
    keyRing: await KeyRing.loadOrCreate(path.join(dir, 'keys')),
    bus: notWired('bus'),
    ownership: notWired('ownership'),
    node: { info: () => ({ id: 'node-1' }), drain: async () => 0 },
    customVerifiers: { modules: {}, types: [] },
    credentialsServices: () => [...services.keys()],
    log,
    openapi: () => openapiDocument(routes, '0.0.0-test'),
  };
  routes = adminRoutes(deps);
  registry = new client.Registry();
  router = new AdminRouter(routes, new ApiKeyAuthenticator(store), log, { registry });
  root = await apiKey(null);
  tenantA = (await store.createTenant({ id: 'tenant-a', name: 'A', createdAt: Date.now() })).id;
  tenantB = (await store.createTenant({ id: 'tenant-b', name: 'B', createdAt: Date.now() })).id;
});

afterAll(async () => {
  await store?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  logLines.length = 0;
});

/** One request with `key` (null: no Authorization header). */
function call(key: string | null, method: string, url: string, body?: unknown, extra: Partial<InjectOptions> = {}): Promise<InjectedReply> {
  return router.inject({ method, url, headers: key ? { Authorization: key } : {}, ...(body !== undefined ? { body } : {}), ...extra });
}

function code(r: InjectedReply): unknown {
  return (r.json as { code?: unknown } | undefined)?.code;
}

describe('authentication comes before everything a request asks for', () => {
  it('refuses a missing, malformed or unknown key with 401 and its code', async () => {
    const none = await call(null, 'GET', '/admin/v1/tenants');
    expect([none.status, code(none)]).toEqual([401, 'LK_AUTH_REQUIRED']);
    const garbage = await call('Bearer not-a-key', 'GET', '/admin/v1/tenants');
    expect([garbage.status, code(garbage)]).toEqual([401, 'LK_AUTH_INVALID']);
    // Well formed, right id, wrong secret.
    const wrongSecret = root.replace(/\.[A-Za-z0-9_-]{43}$/, `.${'A'.repeat(43)}`);
    expect(wrongSecret).not.toBe(root);
    const wrong = await call(wrongSecret, 'GET', '/admin/v1/tenants');
    expect([wrong.status, code(wrong)]).toEqual([401, 'LK_AUTH_INVALID']);
    expect((await call(root, 'GET', '/admin/v1/tenants')).status).toBe(200);
  });

  it('answers 401 before validating the body or the query, or looking the object up', async () => {
    const badBody = await call(null, 'POST', '/admin/v1/tenants', { nope: 1 });
    expect([badBody.status, code(badBody)]).toEqual([401, 'LK_AUTH_REQUIRED']);
    const badJson = await call(null, 'POST', '/admin/v1/tenants', '{not json');
    expect([badJson.status, code(badJson)]).toEqual([401, 'LK_AUTH_REQUIRED']);
    const badQuery = await call(null, 'GET', '/admin/v1/tenants?x=1');
    expect([badQuery.status, code(badQuery)]).toEqual([401, 'LK_AUTH_REQUIRED']);
    const missing = await call(null, 'GET', '/admin/v1/tenants/no-such-tenant');
    expect([missing.status, code(missing)]).toEqual([401, 'LK_AUTH_REQUIRED']);
  });

  it('public routes answer without a key', async () => {
    const ready = await call(null, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toEqual({ status: 'ready', store: 'ok', cache: 'ok', bus: 'ok' });
    const doc = await call(null, 'GET', '/admin/openapi.json');
    expect(doc.status).toBe(200);
    expect(Object.keys((doc.json as { paths: object }).paths)).toContain('/admin/v1/tenants/{tenantId}');
  });
});

describe('a tenant key is kept to its tenant', () => {
  it('sees only its own tenant; another tenant answers exactly as a missing one', async () => {
    const keyA = await apiKey(tenantA);
    const list = await call(keyA, 'GET', '/admin/v1/tenants');
    expect((list.json as { items: Array<{ id: string }> }).items.map((t) => t.id)).toEqual([tenantA]);
    expect((await call(keyA, 'GET', `/admin/v1/tenants/${tenantA}`)).status).toBe(200);
    const other = await call(keyA, 'GET', `/admin/v1/tenants/${tenantB}`);
    const missing = await call(keyA, 'GET', '/admin/v1/tenants/no-such-tenant');
    expect([other.status, code(other)]).toEqual([404, 'LK_TENANT_NOT_FOUND']);
    expect([missing.status, code(missing)]).toEqual([404, 'LK_TENANT_NOT_FOUND']);
    // The root key sees both.
    expect((await call(root, 'GET', `/admin/v1/tenants/${tenantB}`)).status).toBe(200);
  });

  it('cannot read, list under, or create in another tenant\'s applications', async () => {
    const keyA = await apiKey(tenantA);
    const created = await call(root, 'POST', `/admin/v1/tenants/${tenantB}/applications`, { name: 'B app' });
    expect(created.status).toBe(201);
    const appB = (created.json as { id: string }).id;
    const get = await call(keyA, 'GET', `/admin/v1/applications/${appB}`);
    expect([get.status, code(get)]).toEqual([404, 'LK_APP_NOT_FOUND']);
    const creds = await call(keyA, 'GET', `/admin/v1/applications/${appB}/credentials`);
    expect([creds.status, code(creds)]).toEqual([404, 'LK_APP_NOT_FOUND']);
    const list = await call(keyA, 'GET', `/admin/v1/tenants/${tenantB}/applications`);
    expect([list.status, code(list)]).toEqual([404, 'LK_TENANT_NOT_FOUND']);
    const create = await call(keyA, 'POST', `/admin/v1/tenants/${tenantB}/applications`, { name: 'sneaky' });
    expect([create.status, code(create)]).toEqual([404, 'LK_TENANT_NOT_FOUND']);
    expect((await call(root, 'GET', `/admin/v1/applications/${appB}`)).status).toBe(200);
  });

  it('gets 403 LK_FORBIDDEN on root routes and on choosing a global id', async () => {
    const keyA = await apiKey(tenantA);
    for (const [method, url, body] of [['GET', '/admin/v1/api-keys'], ['POST', '/admin/v1/tenants', { name: 'x' }], ['GET', '/admin/v1/bans'], ['GET', '/admin/v1/server-keys']] as const) {
      const r = await call(keyA, method, url, body);
      expect([r.status, code(r)], `${method} ${url}`).toEqual([403, 'LK_FORBIDDEN']);
    }
    const chosen = await call(keyA, 'POST', `/admin/v1/tenants/${tenantA}/applications`, { name: 'mine', id: 'chosen-id' });
    expect([chosen.status, code(chosen)]).toEqual([403, 'LK_FORBIDDEN']);
    const generated = await call(keyA, 'POST', `/admin/v1/tenants/${tenantA}/applications`, { name: 'mine' });
    expect(generated.status).toBe(201);
    expect((generated.json as { tenantId: string }).tenantId).toBe(tenantA);
  });
});

describe('validation errors carry their codes', () => {
  it('body: unknown field, missing or mistyped field, bad JSON, a body where none is taken', async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ name: 'T', colour: 'red' }, 400, 'LK_UNKNOWN_FIELD'],
      [{}, 400, 'LK_BAD_ARGUMENT'],
      [{ name: 7 }, 400, 'LK_BAD_ARGUMENT'],
      [{ name: '' }, 400, 'LK_BAD_ARGUMENT'],
      ['{"name": ', 400, 'LK_BAD_JSON'],
      ['[1,2]', 400, 'LK_BAD_JSON'],
      ['null', 400, 'LK_BAD_JSON'],
    ];
    for (const [body, status, c] of cases) {
      const r = await call(root, 'POST', '/admin/v1/tenants', body);
      expect([r.status, code(r)], JSON.stringify(body)).toEqual([status, c]);
    }
    const noBodyRoute = await call(root, 'GET', '/admin/v1/tenants', { name: 'x' });
    expect([noBodyRoute.status, code(noBodyRoute)]).toEqual([400, 'LK_UNKNOWN_FIELD']);
  });

  it('query: an unknown parameter, and a value out of range', async () => {
    const unknown = await call(root, 'GET', '/admin/v1/tenants?sort=name');
    expect([unknown.status, code(unknown)]).toEqual([400, 'LK_UNKNOWN_FIELD']);
    const app = (await call(root, 'POST', `/admin/v1/tenants/${tenantA}/applications`, { name: 'q' })).json as { id: string };
    const range = await call(root, 'GET', `/admin/v1/applications/${app.id}/credentials?limit=0`);
    expect([range.status, code(range)]).toEqual([400, 'LK_BAD_ARGUMENT']);
    expect((await call(root, 'GET', `/admin/v1/applications/${app.id}/credentials?limit=5`)).status).toBe(200);
  });

  it('a body over the limit answers 413 on a route, but an unknown path still answers 404', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(MAX_BODY_BYTES) });
    const r = await call(root, 'POST', '/admin/v1/tenants', big);
    expect([r.status, code(r)]).toEqual([413, 'LK_BODY_TOO_LARGE']);
    // Refused before authentication too: the body is not read.
    expect((await call(null, 'POST', '/admin/v1/tenants', big)).status).toBe(413);
    const nowhere = await call(root, 'POST', '/admin/v1/nowhere', big);
    expect([nowhere.status, code(nowhere)]).toEqual([404, 'LK_NOT_FOUND']);
    // Just under the limit is read (and then refused by the schema: name too long).
    const under = await call(root, 'POST', '/admin/v1/tenants', JSON.stringify({ name: 'x'.repeat(MAX_BODY_BYTES - 20) }));
    expect([under.status, code(under)]).toEqual([400, 'LK_BAD_ARGUMENT']);
  });
});

describe('round trips', () => {
  it('tenants and applications: create, get, list', async () => {
    const t = await call(root, 'POST', '/admin/v1/tenants', { id: 'round-trip', name: 'Round trip' });
    expect(t.status).toBe(201);
    expect(t.headers['content-type']).toBe('application/json');
    expect(t.json).toMatchObject({ id: 'round-trip', name: 'Round trip' });
    expect((await call(root, 'GET', '/admin/v1/tenants/round-trip')).json).toEqual(t.json);
    const again = await call(root, 'POST', '/admin/v1/tenants', { id: 'round-trip', name: 'again' });
    expect([again.status, code(again)]).toEqual([409, 'LK_CONFLICT']);
    const app = await call(root, 'POST', '/admin/v1/tenants/round-trip/applications', { id: 'rt-app', name: 'App', credentialsService: 'internal' });
    expect(app.status).toBe(201);
    expect(app.json).toMatchObject({ id: 'rt-app', tenantId: 'round-trip', credentialsService: 'internal' });
    expect((await call(root, 'GET', '/admin/v1/applications/rt-app')).json).toEqual(app.json);
    const list = (await call(root, 'GET', '/admin/v1/tenants/round-trip/applications')).json as { items: Array<{ id: string }> };
    expect(list.items.map((a) => a.id)).toEqual(['rt-app']);
    const unknownService = await call(root, 'POST', '/admin/v1/tenants/round-trip/applications', { name: 'x', credentialsService: 'no-such' });
    expect(unknownService.status).toBe(400);
  });

  it('API keys: a created key works at once, is listed without its secret, and stops working when deleted', async () => {
    const made = await call(root, 'POST', '/admin/v1/api-keys', { name: 'ops', tenantId: tenantA });
    expect(made.status).toBe(201);
    const { id, token } = made.json as { id: string; token: string };
    const me = await call(`Bearer ${token}`, 'GET', '/admin/v1/me');
    expect(me.json).toEqual({ id, name: 'ops', tenantId: tenantA });
    const listed = (await call(root, 'GET', '/admin/v1/api-keys')).json as { items: Array<Record<string, unknown>> };
    const entry = listed.items.find((k) => k.id === id);
    expect(entry).toMatchObject({ id, tenantId: tenantA, name: 'ops' });
    expect(JSON.stringify(listed)).not.toContain(token.split('.')[1]);
    expect((await call(root, 'DELETE', `/admin/v1/api-keys/${id}`)).status).toBe(204);
    const after = await call(`Bearer ${token}`, 'GET', '/admin/v1/me');
    expect([after.status, code(after)]).toEqual([401, 'LK_AUTH_INVALID']);
    const twice = await call(root, 'DELETE', `/admin/v1/api-keys/${id}`);
    expect([twice.status, code(twice)]).toEqual([404, 'LK_NOT_FOUND']);
  });

  it('credentials: provision from a PEM key, get by its key hash, list, refuse a second provisioning', async () => {
    await call(root, 'POST', `/admin/v1/tenants/${tenantA}/applications`, { id: 'cred-app', name: 'Creds', credentialsService: 'internal' });
    const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pemKey = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const id = keyHashId(toSpkiDer(pemKey));
    const made = await call(root, 'POST', '/admin/v1/applications/cred-app/credentials', { publicKey: pemKey });
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ credentials: { appId: 'cred-app', credentialsId: id, status: 'AVAILABLE', publicKey: pemKey }, registration: null });
    const got = await call(root, 'GET', `/admin/v1/applications/cred-app/credentials/${id}`);
    expect(got.json).toMatchObject({ credentialsId: id, status: 'AVAILABLE' });
    const list = (await call(root, 'GET', '/admin/v1/applications/cred-app/credentials')).json as { items: Array<{ credentialsId: string }> };
    expect(list.items.map((c) => c.credentialsId)).toEqual([id]);
    const again = await call(root, 'POST', '/admin/v1/applications/cred-app/credentials', { publicKey: pemKey });
    expect([again.status, code(again)]).toEqual([409, 'LK_CRED_EXISTS']);
    const badId = await call(root, 'GET', '/admin/v1/applications/cred-app/credentials/short');
    expect([badId.status, code(badId)]).toEqual([400, 'LK_BAD_ARGUMENT']);
  });

  it('bans: add, list, lift (a CIDR\'s slash percent-encoded in the path), lift again 404', async () => {
    const add = await call(root, 'POST', '/admin/v1/bans', { kind: 'ip', value: '10.9.0.0/16', reason: 'test' });
    expect(add.status).toBe(201);
    expect(add.json).toMatchObject({ kind: 'ip', value: '10.9.0.0/16', reason: 'test', expiresAt: null });
    const list = (await call(root, 'GET', '/admin/v1/bans')).json as { items: Array<{ value: string }> };
    expect(list.items.map((b) => b.value)).toContain('10.9.0.0/16');
    expect((await call(root, 'DELETE', '/admin/v1/bans/ip/10.9.0.0%2F16')).status).toBe(204);
    const again = await call(root, 'DELETE', '/admin/v1/bans/ip/10.9.0.0%2F16');
    expect([again.status, code(again)]).toEqual([404, 'LK_NOT_FOUND']);
    const bad = await call(root, 'POST', '/admin/v1/bans', { kind: 'ip', value: 'not-an-address', reason: 'x' });
    expect([bad.status, code(bad)]).toEqual([400, 'LK_BAD_ARGUMENT']);
  });
});

describe('paths, methods and HEAD', () => {
  it('a malformed percent-escape or invalid UTF-8 in a path parameter is 400 LK_BAD_PATH, with or without a key', async () => {
    for (const p of ['%ZZ', '%', '%E0%A4%A', '%C3%28']) {
      for (const key of [root, null]) {
        const r = await call(key, 'GET', `/admin/v1/tenants/${p}`);
        expect([r.status, code(r)], `${p} ${key ? 'with' : 'without'} key`).toEqual([400, 'LK_BAD_PATH']);
      }
    }
    // A well-formed escape is decoded: tenant%2Da is tenant-a.
    expect((await call(root, 'GET', '/admin/v1/tenants/tenant%2Da')).json).toMatchObject({ id: tenantA });
  });

  it('an unknown path is 404 LK_NOT_FOUND, with or without a key', async () => {
    for (const key of [root, null]) {
      const r = await call(key, 'GET', '/admin/v1/no/such/path');
      expect([r.status, code(r)]).toEqual([404, 'LK_NOT_FOUND']);
    }
  });

  it('a method the path has no route for is 405 with Allow', async () => {
    const put = await call(root, 'PUT', '/admin/v1/tenants');
    expect([put.status, code(put)]).toEqual([405, 'LK_METHOD_NOT_ALLOWED']);
    expect(put.headers.allow).toBe('POST, GET, HEAD');
    const patch = await call(null, 'PATCH', '/admin/v1/api-keys/some-id');
    expect([patch.status, patch.headers.allow]).toEqual([405, 'DELETE']);
  });

  it('HEAD runs GET (authentication included) and answers its status, headers and length without a body', async () => {
    const get = await call(root, 'GET', `/admin/v1/tenants/${tenantA}`);
    const head = await call(root, 'HEAD', `/admin/v1/tenants/${tenantA}`);
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(head.headers['content-type']).toBe('application/json');
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(get.text)));
    const anonymous = await call(null, 'HEAD', `/admin/v1/tenants/${tenantA}`);
    expect([anonymous.status, anonymous.text]).toEqual([401, '']);
    // No GET on the path: 405 with Allow, still without a body.
    const noGet = await call(root, 'HEAD', '/admin/v1/api-keys/some-id');
    expect([noGet.status, noGet.text, noGet.headers.allow]).toEqual([405, '', 'DELETE']);
  });
});

describe('audit lines and metrics', () => {
  it('a change writes one audit line with the route template, parameters, status and key id, never the body', async () => {
    const keyId = /^Bearer lk_([A-Za-z0-9_-]{16})\./.exec(root)![1];
    await call(root, 'POST', '/admin/v1/tenants', { id: 'audited', name: 'secret-looking-name' });
    await call(null, 'DELETE', '/admin/v1/api-keys/k1');
    await call(root, 'GET', '/admin/v1/tenants');
    const audit = logLines.filter((l) => l.audit === true);
    expect(audit).toHaveLength(2);
    expect(audit[0]).toMatchObject({ msg: 'admin change', method: 'POST', route: '/admin/v1/tenants', params: {}, status: 201, apiKeyId: keyId });
    expect(audit[0]).not.toHaveProperty('code');
    expect(audit[1]).toMatchObject({ method: 'DELETE', route: '/admin/v1/api-keys/{keyId}', params: { keyId: 'k1' }, status: 401, apiKeyId: null, code: 'LK_AUTH_REQUIRED' });
    expect(JSON.stringify(logLines)).not.toContain('secret-looking-name');
  });

  it('counts answers by method, route template and status (unmatched for unknown paths)', async () => {
    await call(root, 'GET', '/admin/v1/tenants/metrics-missing');
    await call(root, 'GET', '/admin/v1/metrics-scan');
    const text = await registry.metrics();
    expect(text).toMatch(/^latchkey_admin_requests_total\{method="GET",route="\/admin\/v1\/tenants\/\{tenantId\}",status="404"\} [1-9]/m);
    expect(text).toMatch(/^latchkey_admin_requests_total\{method="GET",route="unmatched",status="404"\} [1-9]/m);
    expect(text).not.toContain('metrics-missing');
    expect(text).not.toContain('metrics-scan');
  });
});
