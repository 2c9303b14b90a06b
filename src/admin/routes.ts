/**
 * Admin REST API routes (Kaa's Administration API as the model: provisionCredentials,
 * credentialsStatus, provisionRegistration, revokeCredentials, notifyRevoked), plus tenants,
 * applications, endpoints, live sessions, server keys and API keys. Every route declares its
 * scope, body and query schema and its answers; openapi.ts publishes exactly this table.
 *
 * Tenant isolation: a tenant key sees its own tenant only; another tenant's objects answer exactly
 * as missing ones do (404 with the same code), so a tenant key cannot tell whether they exist.
 * Application ids and app tokens are global (one namespace for every tenant), so a tenant key may
 * not choose them: a 409 on a chosen one would tell it that another tenant uses it. The server
 * generates both (a UUID, 128 random bits); root keys may still choose.
 *
 * Bans are node-wide (an IP ban turns away every tenant's endpoints from that address, a key hash
 * ban covers every application): root keys only.
 */
import { StoreCredentialsService } from '../credentials/credentials.js';
import { keyHashId, toSpkiDer } from '../crypto/keys.js';
import { LatchkeyError } from '../errors.js';
import type { CredentialStatus, CredentialsRecord } from '../store/store.js';
import { CREDENTIAL_STATUSES, MAX_CREDENTIALS_PAGE } from '../store/common/credentials.js';
import { createApplication, createTenant, provisionRegistration } from '../tenancy/provision.js';
import { newApiKey } from './auth.js';
import type { AdminDeps } from './deps.js';
import type { Route } from './http.js';
import { operationRoutes } from './routes-operations.js';
import { anyObject, ID, intQuery, jsonOrNull, obj, scopes, str, views } from './route-kit.js';
export { localLiveSessions, type AdminDeps, type LiveSessions, type LiveSessionView } from './deps.js';
export function adminRoutes(d: AdminDeps): Route[] {
  const { tenantScoped, appScoped, credentialsId } = scopes(d);

  return [
    {
      method: 'GET', path: '/admin/openapi.json', scope: 'public', summary: 'This OpenAPI 3 document',
      responses: { 200: { description: 'OpenAPI document' } },
      handler: async () => ({ status: 200, body: d.openapi() }),
    },
    {
      method: 'GET', path: '/readyz', scope: 'public', summary: 'Readiness: the store, the cache and the bus each answer a cheap call (liveness is /healthz)',
      responses: {
        200: { description: '{ status: ready, store: ok, cache: ok, bus: ok }' },
        503: { description: '{ code: LK_NOT_READY, message, status: not ready, store, cache, bus }: each service ok, or why not' },
      },
      handler: async () => {
        const services = await d.readiness();
        if (Object.values(services).every((v) => v === 'ok')) return { status: 200, body: { status: 'ready', ...services } };
        const e = new LatchkeyError('LK_NOT_READY');
        return { status: 503, body: { code: e.code, message: e.message, status: 'not ready', ...services } };
      },
    },
    // --- API keys ---
    {
      method: 'GET', path: '/admin/v1/me', scope: 'tenant', summary: 'The API key of this request: its id, name and scope (tenantId null: root). The Administration UI signs in with it',
      responses: { 200: { description: '{ id, name, tenantId }' } },
      handler: async (ctx) => {
        const rec = await d.store.getApiKey(ctx.key.id);
        return { status: 200, body: { id: ctx.key.id, name: rec?.name ?? null, tenantId: ctx.key.tenantId } };
      },
    },
    {
      method: 'POST', path: '/admin/v1/api-keys', scope: 'root', summary: 'Create an API key (the token is shown once)',
      body: obj({ name: str('label', { minLength: 1, maxLength: 200 }), tenantId: { ...ID, description: 'tenant the key administers; omit for a root key' } }, ['name']),
      responses: { 201: { description: 'key created: { id, tenantId, name, token }' } },
      handler: async (ctx) => {
        const tenantId = (ctx.body.tenantId as string | undefined) ?? null;
        const k = newApiKey(tenantId, ctx.body.name as string);
        await d.store.createApiKey(k.record);
        return { status: 201, body: { id: k.record.id, tenantId, name: k.record.name, token: k.token, createdAt: k.record.createdAt } };
      },
    },
    {
      method: 'GET', path: '/admin/v1/api-keys', scope: 'root', summary: 'List API keys (no secrets)',
      responses: { 200: { description: '{ items: [{ id, tenantId, name, createdAt }] }' } },
      handler: async () => ({ status: 200, body: { items: (await d.store.listApiKeys()).map((k) => ({ id: k.id, tenantId: k.tenantId, name: k.name, createdAt: k.createdAt })) } }),
    },
    {
      method: 'DELETE', path: '/admin/v1/api-keys/{keyId}', scope: 'root', summary: 'Delete an API key (effective at once)',
      responses: { 204: { description: 'deleted' } },
      handler: async (ctx) => {
        if (!(await d.store.deleteApiKey(ctx.params.keyId!))) throw new LatchkeyError('LK_NOT_FOUND', `API key ${ctx.params.keyId}`);
        return { status: 204 };
      },
    },
    // --- tenants ---
    {
      method: 'POST', path: '/admin/v1/tenants', scope: 'root', summary: 'Create a tenant',
      body: obj({ id: ID, name: str('display name', { minLength: 1, maxLength: 200 }) }, ['name']),
      responses: { 201: { description: 'the tenant' } },
      handler: async (ctx) => {
        const t = await createTenant(d.store, { name: ctx.body.name as string, ...(ctx.body.id ? { id: ctx.body.id as string } : {}) });
        return { status: 201, body: views.tenant(t) };
      },
    },
    {
      method: 'GET', path: '/admin/v1/tenants', scope: 'tenant', summary: 'List tenants (a tenant key sees its own)',
      responses: { 200: { description: '{ items: [tenant] }' } },
      handler: async (ctx) => {
        const all = await d.store.listTenants();
        return { status: 200, body: { items: all.filter((t) => ctx.key.tenantId === null || t.id === ctx.key.tenantId).map(views.tenant) } };
      },
    },
    {
      method: 'GET', path: '/admin/v1/tenants/{tenantId}', scope: 'tenant', summary: 'Get a tenant',
      responses: { 200: { description: 'the tenant' } },
      handler: async (ctx) => ({ status: 200, body: views.tenant(await tenantScoped(ctx, ctx.params.tenantId!)) }),
    },
    // --- applications ---
    {
      method: 'POST', path: '/admin/v1/tenants/{tenantId}/applications', scope: 'tenant', summary: 'Create an application',
      body: obj({
        id: { ...ID, description: 'application id, global across tenants (generated if omitted; root keys only: a tenant key gets 403 LK_FORBIDDEN)' },
        name: str('display name', { minLength: 1, maxLength: 200 }),
        appToken: str('token endpoints present in CONNECT, global across tenants (generated if omitted; root keys only: a tenant key gets 403 LK_FORBIDDEN)', { minLength: 8, maxLength: 128 }),
        credentialsService: str('trustful | internal | a configured plugin name', { maxLength: 64 }),
        profileSchema: anyObject('Avro schema of endpoint profiles, or null for opaque profiles'),
      }, ['name']),
      responses: { 201: { description: 'the application' } },
      handler: async (ctx) => {
        const t = await tenantScoped(ctx, ctx.params.tenantId!);
        const b = ctx.body;
        if (ctx.key.tenantId !== null) {
          // Ids and tokens are global: a conflict on a chosen one would tell a tenant key that another tenant uses it.
          if (b.id !== undefined) throw new LatchkeyError('LK_FORBIDDEN', 'only a root key may choose the application id (ids are global); omit id to get a generated one');
          if (b.appToken !== undefined) throw new LatchkeyError('LK_FORBIDDEN', 'only a root key may choose the app token (tokens are global); omit appToken to get a generated one');
        }
        const app = await createApplication(d.store, {
          tenantId: t.id,
          name: b.name as string,
          ...(b.id ? { id: b.id as string } : {}),
          ...(b.appToken ? { appToken: b.appToken as string } : {}),
          ...(b.credentialsService ? { credentialsService: b.credentialsService as string } : {}),
          profileSchema: b.profileSchema ? JSON.stringify(b.profileSchema) : null,
        }, d.credentialsServices());
        d.apps.invalidate(app.appToken);
        return { status: 201, body: views.app(app) };
      },
    },
    {
      method: 'GET', path: '/admin/v1/tenants/{tenantId}/applications', scope: 'tenant', summary: 'List a tenant\'s applications',
      responses: { 200: { description: '{ items: [application] }' } },
      handler: async (ctx) => {
        const t = await tenantScoped(ctx, ctx.params.tenantId!);
        return { status: 200, body: { items: (await d.store.listApplications(t.id)).map(views.app) } };
      },
    },
    {
      method: 'GET', path: '/admin/v1/applications/{appId}', scope: 'tenant', summary: 'Get an application',
      responses: { 200: { description: 'the application' } },
      handler: async (ctx) => ({ status: 200, body: views.app(await appScoped(ctx, ctx.params.appId!)) }),
    },
    // --- credentials (Kaa provisionCredentials / credentialsStatus / revokeCredentials / notifyRevoked) ---
    {
      method: 'POST', path: '/admin/v1/applications/{appId}/credentials', scope: 'tenant', summary: 'Provision credentials from an RSA-2048 public key (PEM)',
      body: obj({ publicKey: str('PEM, SubjectPublicKeyInfo or PKCS#1', { minLength: 1, maxLength: 8192 }), serverProfile: anyObject('server-side profile copied into the endpoint profile at registration') }, ['publicKey']),
      responses: {
        201: { description: '{ credentials, registration }' },
        200: { description: '{ credentials, registration }: a retry with a serverProfile, answered while the credentials are AVAILABLE with this key and have no server profile or this one (the missing profile is provisioned now)' },
      },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        const spki = toSpkiDer(ctx.body.publicKey as string);
        const id = keyHashId(spki);
        const sp = ctx.body.serverProfile;
        const profile = sp === undefined || sp === null ? null : JSON.stringify(sp);
        const svc = d.credentials.service(app);
        const answer = (status: number, rec: CredentialsRecord) => ({
          status,
          body: { credentials: views.credentials(rec), registration: profile === null ? null : { credentialsId: id, serverProfile: jsonOrNull(profile) } },
        });
        try {
          if (profile !== null && svc instanceof StoreCredentialsService) {
            // One atomic store write (Store.provisionCredentials): a crash cannot leave the
            // credentials without their profile. The gate's cached view of the id (a refusal
            // cached before it existed) is dropped, as provide() would overwrite it.
            const rec = await d.store.provisionCredentials(app.id, id, spki, { serverProfileBody: profile });
            await d.credentials.invalidate(app.id, id);
            return answer(201, rec);
          }
          const rec = await d.credentials.provide(app, id, spki);
          // A plugin keeps credentials outside the store: two writes, and a crash between them is
          // completed by a retry (below).
          if (profile !== null) await provisionRegistration(d.store, app.id, id, profile);
          return answer(201, rec);
        } catch (err) {
          if (profile === null || !(err instanceof LatchkeyError) || err.code !== 'LK_CRED_EXISTS') throw err;
          // A retry of this call (its answer lost, or credentials left without their profile by a
          // crash of a build that wrote them apart, or by a plugin service): idempotent while the
          // credentials are unbound, with this key, and have no profile or this one. Otherwise
          // (bound or revoked: the endpoint registered already; another profile) still 409.
          const rec = await svc.lookupCredentials(app.id, id);
          if (!rec || rec.status !== 'AVAILABLE' || !rec.publicKey?.equals(spki)) throw err;
          const reg = await d.store.getRegistration(app.id, id);
          if (reg !== null && reg.serverProfileBody !== profile) throw err;
          if (reg === null) await provisionRegistration(d.store, app.id, id, profile);
          return answer(200, rec);
        }
      },
    },
    {
      method: 'GET', path: '/admin/v1/applications/{appId}/credentials', scope: 'tenant', summary: 'List credentials by id, with their status (trustful and internal services: the store holds them)',
      query: {
        limit: { type: 'integer', minimum: 1, maximum: MAX_CREDENTIALS_PAGE, description: 'page size (default 100)' },
        cursor: str('from the previous page\'s next'),
        status: str('only credentials in this status', { enum: [...CREDENTIAL_STATUSES] }),
      },
      responses: { 200: { description: '{ items: [credentials], next }: with status, a page may be short (even empty) while next is not null; page on until next is null' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        const limit = intQuery(ctx, 'limit', 100, MAX_CREDENTIALS_PAGE);
        const status = ctx.query.get('status');
        if (status !== null && !(CREDENTIAL_STATUSES as readonly string[]).includes(status)) {
          throw new LatchkeyError('LK_BAD_ARGUMENT', `status must be one of ${CREDENTIAL_STATUSES.join(', ')}`);
        }
        // A plugin keeps its credentials where it likes; the store's would be a partial list.
        if (!(d.credentials.service(app) instanceof StoreCredentialsService)) throw new LatchkeyError('LK_CRED_LIST_UNSUPPORTED', app.credentialsService);
        const page = await d.store.listCredentials(app.id, { limit, after: ctx.query.get('cursor'), status: status as CredentialStatus | null });
        return { status: 200, body: { items: page.items.map(views.credentials), next: page.next } };
      },
    },
    {
      method: 'GET', path: '/admin/v1/applications/{appId}/credentials/{credentialsId}', scope: 'tenant', summary: 'Credentials status',
      responses: { 200: { description: 'the credentials record' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        const rec = await d.credentials.service(app).lookupCredentials(app.id, credentialsId(ctx));
        if (!rec) throw new LatchkeyError('LK_NOT_FOUND', 'credentials');
        return { status: 200, body: views.credentials(rec) };
      },
    },
    {
      method: 'POST', path: '/admin/v1/applications/{appId}/credentials/{credentialsId}/revoke', scope: 'tenant', summary: 'Revoke credentials: ends the live session and refuses reconnects (terminal)',
      responses: { 200: { description: 'the credentials record, status REVOKED (committed), and propagation: { endedHere, log: written|pending, bus: published|none|failed|local }' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        const res = await d.revocation.revoke(app, credentialsId(ctx));
        if (!res) throw new LatchkeyError('LK_NOT_FOUND', 'credentials');
        return { status: 200, body: { ...views.credentials(res.record), propagation: res.propagation } };
      },
    },
    {
      method: 'POST', path: '/admin/v1/applications/{appId}/credentials/{credentialsId}/notify-revoked', scope: 'tenant', summary: 'An external credentials store revoked these credentials: drop caches, end sessions',
      responses: { 200: { description: '{ propagation: { endedHere, log: written|pending, bus: published|none|failed|local } }' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        return { status: 200, body: { propagation: await d.revocation.notifyRevoked(app, credentialsId(ctx)) } };
      },
    },
    // --- registrations (Kaa provisionRegistration) ---
    {
      method: 'PUT', path: '/admin/v1/applications/{appId}/registrations/{credentialsId}', scope: 'tenant', summary: 'Provision a server-side profile against credentials',
      body: obj({ serverProfile: anyObject('server-side profile (JSON object) or null') }, ['serverProfile']),
      responses: { 200: { description: '{ credentialsId, serverProfile }' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        const sp = ctx.body.serverProfile;
        const reg = await provisionRegistration(d.store, app.id, credentialsId(ctx), sp === null ? null : JSON.stringify(sp));
        return { status: 200, body: { credentialsId: reg.credentialsId, serverProfile: jsonOrNull(reg.serverProfileBody), updatedAt: reg.updatedAt } };
      },
    },
    // --- endpoints ---
    {
      method: 'GET', path: '/admin/v1/applications/{appId}/endpoints', scope: 'tenant', summary: 'List registered endpoints, by key hash',
      query: { limit: { type: 'integer', minimum: 1, maximum: 1000, description: 'page size (default 100)' }, cursor: str('from the previous page\'s next') },
      responses: { 200: { description: '{ items: [endpoint], next }' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        const limit = intQuery(ctx, 'limit', 100, 1000);
        const page = await d.store.listEndpoints(app.id, limit, ctx.query.get('cursor'));
        const online = await d.liveSessions.online(app.id, page.items.map((e) => e.keyHash));
        return { status: 200, body: { items: page.items.map((e, i) => views.endpoint(e, online[i] === true)), next: page.next } };
      },
    },
    {
      method: 'GET', path: '/admin/v1/applications/{appId}/endpoints/{keyHash}', scope: 'tenant', summary: 'Get an endpoint and its profile',
      responses: { 200: { description: 'the endpoint' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        const e = await d.store.getEndpoint(app.id, credentialsId(ctx));
        if (!e) throw new LatchkeyError('LK_NOT_FOUND', 'endpoint');
        const [online] = await d.liveSessions.online(app.id, [e.keyHash]);
        return { status: 200, body: views.endpoint(e, online === true) };
      },
    },
    // --- live sessions (this node: all its processes) ---
    {
      method: 'GET', path: '/admin/v1/applications/{appId}/sessions', scope: 'tenant', summary: 'Live sessions of an application on this node',
      responses: { 200: { description: '{ items: [{ sessionId, keyHash, establishedAt, lastSeen, keepAliveSec }] }' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        return { status: 200, body: { items: await d.liveSessions.list(app.id) } };
      },
    },
    {
      method: 'GET', path: '/admin/v1/applications/{appId}/sessions/{keyHash}', scope: 'tenant', summary: 'Where the endpoint\'s live session is: node, process and session id (any node of the cluster, through the cluster directory; this node alone without Redis)',
      responses: { 200: { description: '{ keyHash, node, process, sessionId, establishedAt }' }, 404: { description: 'LK_NOT_FOUND: no live session of this endpoint on a live node' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        const keyHash = credentialsId(ctx);
        const at = await d.locate(app.id, keyHash);
        if (!at) throw new LatchkeyError('LK_NOT_FOUND', 'no live session of this endpoint');
        return { status: 200, body: { keyHash, ...at } };
      },
    },
    {
      method: 'DELETE', path: '/admin/v1/applications/{appId}/sessions/{keyHash}', scope: 'tenant', summary: 'End an endpoint\'s live session (DISCONNECT, LK_SESSION_KICKED; it may reconnect)',
      responses: { 200: { description: '{ propagation: { endedHere, log: written|pending, bus: published|none|failed|local } }: the session here ended at once; other nodes end theirs from the bus, or from the control log within controlPollMs' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        return { status: 200, body: { propagation: await d.control.kick(app.id, credentialsId(ctx)) } };
      },
    },
    ...operationRoutes(d, scopes(d)),
  ];
}
