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
import crypto from 'node:crypto';
import type { Bus } from '../bus/bus.js';
import { StoreCredentialsService, type CredentialsGate } from '../credentials/credentials.js';
import type { Revocation } from '../control/revocation.js';
import type { SessionControl } from '../control/session-control.js';
import type { BanList } from '../protection/bans.js';
import type { KeyRing, ServerKeyInfo } from '../crypto/keyring.js';
import { isKeyHashId, keyHashId, toSpkiDer } from '../crypto/keys.js';
import { LatchkeyError } from '../errors.js';
import type { SessionRegistry } from '../session/registry.js';
import type { Application, BanKind, BanRecord, CredentialStatus, CredentialsRecord, EndpointRecord, Store, Tenant } from '../store/store.js';
import { CREDENTIAL_STATUSES, MAX_CREDENTIALS_PAGE } from '../store/store-common.js';
import { BAN_KINDS, banKey } from '../store/protection-common.js';
import type { ApplicationDirectory } from '../tenancy/applications.js';
import { createApplication, createTenant, provisionRegistration } from '../tenancy/provision.js';
import { newApiKey } from './auth.js';
import type { OwnershipService } from '../ownership/ownership.js';
import { BUILTIN_VERIFIER_TYPES, createVerifier, type CustomVerifierTypes } from '../ownership/verifiers/registry.js';
import type { VerifierRecord } from '../store/store.js';
import type { Logger } from 'pino';
import type { JsonSchema, RequestContext, Route } from './http.js';

/** A live session as the admin API lists it. */
export interface LiveSessionView {
  sessionId: string;
  keyHash: string | null;
  establishedAt: number | null;
  lastSeen: number;
  keepAliveSec: number;
  /** The gateway process holding it (a multi-process node only). */
  process?: number;
}

export interface LiveSessions {
  /** For each key hash of `appId`: does it hold a live session on this node? */
  online(appId: string, keyHashes: string[]): Promise<boolean[]>;
  list(appId: string): Promise<LiveSessionView[]>;
}

/** The live sessions of one process's registry. */
export function localLiveSessions(registry: SessionRegistry): LiveSessions {
  return {
    online: async (appId, keyHashes) => keyHashes.map((k) => !!registry.byEndpointKey(appId, k)),
    list: async (appId) => {
      const items: LiveSessionView[] = [];
      for (const s of registry.sessions()) {
        if (s.state !== 'ESTABLISHED' || s.app?.id !== appId) continue;
        items.push({ sessionId: s.id, keyHash: s.keyHash, establishedAt: s.establishedAt, lastSeen: s.lastSeen, keepAliveSec: s.keepAliveMs / 1000 });
      }
      return items;
    },
  };
}

export interface AdminDeps {
  store: Store;
  apps: ApplicationDirectory;
  credentials: CredentialsGate;
  revocation: Revocation;
  control: SessionControl;
  /** The ban list of this process (store-backed; protection/bans.ts). */
  bans: BanList;
  /** Readiness of the backing services: 'ok' or why not, per service (server.ts). */
  readiness: () => Promise<Record<'store' | 'cache' | 'bus', string>>;
  /** Live sessions of the whole node (every process of a multi-process node; server.ts). */
  liveSessions: LiveSessions;
  /** Where the endpoint's live session is in the cluster (cluster directory; this node alone without Redis). */
  locate: (appId: string, keyHash: string) => Promise<{ node: string; process: number | null; sessionId: string; establishedAt: number } | null>;
  keyRing: KeyRing;
  bus: Bus;
  ownership: OwnershipService;
  /** This node in the bootstrap node registry, and its drain (server.ts). */
  node: { info: () => Record<string, unknown>; drain: () => Promise<number> };
  /** Custom owner verifier types configured in ownerVerifierPlugins (checked at start-up). */
  customVerifiers: CustomVerifierTypes;
  credentialsServices: () => string[];
  log: Logger;
  openapi: () => unknown;
}

const str = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'string', description, ...extra });
const obj = (properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({ type: 'object', properties, required, additionalProperties: false });
const anyObject = (description: string): JsonSchema => ({ type: 'object', description, nullable: true });

const ID = str('identifier: letters, digits, . _ - (up to 64)', { minLength: 1, maxLength: 64 });

/** Longest ban a caller may ask for by duration: 10 years (longer: no expiry at all). */
const MAX_BAN_SEC = 10 * 365 * 86_400;
/** Largest time a Date holds (ms): the store refuses later expiries. */
const MAX_TIME_MS = 8.64e15;

/**
 * Application ids as tenancy/provision.ts creates them (its checkId). Stricter than the store, which
 * takes any id: a ban on a value no application can have would be accepted and do nothing.
 */
const APP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function banValue(kind: string, value: string): { kind: BanKind; value: string } {
  if (!(BAN_KINDS as readonly string[]).includes(kind)) throw new LatchkeyError('LK_BAD_ARGUMENT', `ban kind must be one of ${BAN_KINDS.join(', ')}`);
  const ok = kind === 'keyHash' ? isKeyHashId(value) : kind === 'app' ? APP_ID.test(value) : banKey('ip', value) !== null;
  if (!ok) throw new LatchkeyError('LK_BAD_ARGUMENT', `ban value must be ${kind === 'ip' ? 'an IPv4/IPv6 address or CIDR' : kind === 'keyHash' ? 'a key hash (43 base64url characters)' : 'an application id'}`);
  return { kind: kind as BanKind, value };
}

function pem(der: Buffer | null): string | null {
  return der ? crypto.createPublicKey({ key: der, format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' }).toString() : null;
}

function jsonOrNull(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const views = {
  tenant: (t: Tenant) => ({ id: t.id, name: t.name, createdAt: t.createdAt }),
  app: (a: Application) => ({ id: a.id, tenantId: a.tenantId, name: a.name, appToken: a.appToken, credentialsService: a.credentialsService, profileSchema: jsonOrNull(a.profileSchema), createdAt: a.createdAt }),
  credentials: (c: CredentialsRecord) => ({ appId: c.appId, credentialsId: c.credentialsId, status: c.status, endpointId: c.endpointId, publicKey: pem(c.publicKey), createdAt: c.createdAt, updatedAt: c.updatedAt }),
  endpoint: (e: EndpointRecord, connected: boolean) => ({
    appId: e.appId,
    keyHash: e.keyHash,
    credentialsId: e.credentialsId,
    profile: e.profileBody.toString('base64'),
    profileHash: e.profileHash.toString('hex'),
    serverProfile: jsonOrNull(e.serverProfileBody),
    connected,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
  }),
  serverKey: (k: ServerKeyInfo) => ({ id: k.id, status: k.status, createdAt: k.createdAt, publicKey: k.publicKeyPem }),
  ban: (b: BanRecord) => ({ kind: b.kind, value: b.value, reason: b.reason, createdAt: b.createdAt, expiresAt: b.expiresAt, createdBy: b.createdBy }),
  verifier: (v: VerifierRecord, isDefault: boolean) => ({
    verifierToken: v.verifierToken, appId: v.appId, pluginTypeName: v.pluginTypeName, name: v.name, description: v.description,
    jsonConfiguration: jsonOrNull(v.jsonConfiguration), isDefault, createdAt: v.createdAt, updatedAt: v.updatedAt,
  }),
};

/** An integer query parameter in 1..max (absent: `dflt`); LK_BAD_ARGUMENT otherwise. */
function intQuery(ctx: RequestContext, name: string, dflt: number, max: number): number {
  const text = ctx.query.get(name);
  const n = text === null ? dflt : /^[0-9]{1,7}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new LatchkeyError('LK_BAD_ARGUMENT', `${name} must be 1-${max}`);
  return n;
}

export function adminRoutes(d: AdminDeps): Route[] {
  const tenantScoped = async (ctx: RequestContext, tenantId: string): Promise<Tenant> => {
    if (ctx.key.tenantId !== null && ctx.key.tenantId !== tenantId) throw new LatchkeyError('LK_TENANT_NOT_FOUND', tenantId);
    const t = await d.store.getTenant(tenantId);
    if (!t) throw new LatchkeyError('LK_TENANT_NOT_FOUND', tenantId);
    return t;
  };
  const appScoped = async (ctx: RequestContext, appId: string): Promise<Application> => {
    const app = await d.store.getApplication(appId);
    if (!app || (ctx.key.tenantId !== null && app.tenantId !== ctx.key.tenantId)) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
    return app;
  };
  const credentialsId = (ctx: RequestContext): string => {
    const id = ctx.params.credentialsId ?? ctx.params.keyHash ?? '';
    if (!isKeyHashId(id)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'credentials id / key hash must be 43 base64url characters');
    return id;
  };

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
    // --- owner verifiers (Kaa's verifier shape; the server generates the verifier token) ---
    {
      method: 'GET', path: '/admin/v1/verifier-types', scope: 'tenant', summary: 'Owner verifier types (built-in, then configured custom modules) and their Avro configuration schemas',
      responses: { 200: { description: '{ items: [{ name, description, configSchema, custom }] }' } },
      handler: async () => ({
        status: 200,
        body: { items: [...BUILTIN_VERIFIER_TYPES.map((t) => ({ ...t, custom: false })), ...d.customVerifiers.types] },
      }),
    },
    {
      method: 'POST', path: '/admin/v1/applications/{appId}/verifiers', scope: 'tenant', summary: 'Create an owner verifier (config validated against the type\'s Avro schema)',
      body: obj({
        pluginTypeName: str('trustful | facebook | google | twitter | oidc | a configured custom type', { minLength: 1, maxLength: 64 }),
        name: str('display name', { minLength: 1, maxLength: 200 }),
        description: str('free text', { maxLength: 2000 }),
        jsonConfiguration: anyObject('configuration; missing fields get the schema defaults'),
        isDefault: { type: 'boolean', description: 'make it the application\'s default verifier' },
      }, ['pluginTypeName', 'name']),
      responses: { 201: { description: 'the verifier, with its generated verifierToken' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        const b = ctx.body;
        const config = JSON.stringify(b.jsonConfiguration ?? {});
        (await createVerifier(b.pluginTypeName as string, config, { log: d.log, customModules: d.customVerifiers.modules })).close().catch(() => undefined);
        const now = Date.now();
        const rec = await d.store.createVerifier({
          appId: app.id, verifierToken: crypto.randomBytes(12).toString('base64url'), pluginTypeName: b.pluginTypeName as string,
          name: b.name as string, description: (b.description as string | undefined) ?? '', jsonConfiguration: config, createdAt: now, updatedAt: now,
        });
        if (b.isDefault === true) await d.store.setDefaultVerifier(app.id, rec.verifierToken);
        return { status: 201, body: views.verifier(rec, b.isDefault === true) };
      },
    },
    {
      method: 'GET', path: '/admin/v1/applications/{appId}/verifiers', scope: 'tenant', summary: 'List an application\'s owner verifiers',
      responses: { 200: { description: '{ items: [verifier], defaultVerifierToken }' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        const def = await d.store.getDefaultVerifier(app.id);
        return { status: 200, body: { items: (await d.store.listVerifiers(app.id)).map((v) => views.verifier(v, v.verifierToken === def)), defaultVerifierToken: def } };
      },
    },
    {
      method: 'DELETE', path: '/admin/v1/applications/{appId}/verifiers/{verifierToken}', scope: 'tenant', summary: 'Delete an owner verifier (clears the default if it was)',
      responses: { 204: { description: 'deleted' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        if (!(await d.store.deleteVerifier(app.id, ctx.params.verifierToken!))) throw new LatchkeyError('LK_NOT_FOUND', 'verifier');
        return { status: 204 };
      },
    },
    {
      method: 'PUT', path: '/admin/v1/applications/{appId}/default-verifier', scope: 'tenant', summary: 'Set or clear the application\'s default owner verifier',
      body: { type: 'object', properties: { verifierToken: { type: 'string', nullable: true, description: 'a verifier of this application, or null' } }, required: ['verifierToken'], additionalProperties: false },
      responses: { 204: { description: 'done' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        await d.store.setDefaultVerifier(app.id, (ctx.body.verifierToken as string | null) ?? null);
        return { status: 204 };
      },
    },
    // --- owners ---
    {
      method: 'GET', path: '/admin/v1/tenants/{tenantId}/owners/{ownerExternalId}/endpoints', scope: 'tenant', summary: 'Endpoints attached to an owner (all applications of the tenant)',
      responses: { 200: { description: '{ items: [{ appId, keyHash, attachedAt }] }' } },
      handler: async (ctx) => {
        const t = await tenantScoped(ctx, ctx.params.tenantId!);
        const items = await d.store.listOwnerEndpoints(t.id, ctx.params.ownerExternalId!);
        return { status: 200, body: { items: items.map((a) => ({ appId: a.appId, keyHash: a.keyHash, attachedAt: a.attachedAt })) } };
      },
    },
    {
      method: 'DELETE', path: '/admin/v1/applications/{appId}/endpoints/{keyHash}/owner', scope: 'tenant', summary: 'Detach an endpoint from its owner',
      responses: { 204: { description: 'detached' } },
      handler: async (ctx) => {
        const app = await appScoped(ctx, ctx.params.appId!);
        const keyHash = credentialsId(ctx);
        if ((await d.store.detachEndpoint(app.id, keyHash)) === null) throw new LatchkeyError('LK_NOT_FOUND', 'the endpoint has no owner');
        await d.ownership.ownerChanged(app.id, keyHash, null);
        return { status: 204 };
      },
    },
    // --- this node (bootstrap) ---
    {
      method: 'GET', path: '/admin/v1/node', scope: 'root', summary: 'This node as bootstrap lists show it (id, access point id, URL, key, priority, weight, load, draining)',
      responses: { 200: { description: '{ id, accessPointId, url, serverKeyId, priority, weight, sessions, capacity, draining, bootstrapKeyId, frameCipher }' } },
      handler: async () => ({ status: 200, body: d.node.info() }),
    },
    {
      method: 'POST', path: '/admin/v1/node/drain', scope: 'root', summary: 'Drain this node without stopping it: leave the bootstrap lists and send every endpoint a REDIRECT to another node',
      responses: { 200: { description: '{ redirected: number of endpoints told to move (0 when no other node is live) }' } },
      handler: async () => ({ status: 200, body: { redirected: await d.node.drain() } }),
    },
    // --- bans (node-wide: root keys only; protection/bans.ts) ---
    {
      method: 'GET', path: '/admin/v1/bans', scope: 'root', summary: 'Bans in force on every node, as stored (operator and automatic bans)',
      responses: { 200: { description: '{ items: [{ kind, value, reason, createdAt, expiresAt, createdBy }] }, ordered by kind then value' } },
      handler: async () => ({ status: 200, body: { items: (await d.store.listBans(Date.now())).map(views.ban) } }),
    },
    {
      method: 'POST', path: '/admin/v1/bans', scope: 'root', summary: 'Ban a key hash, an IP address or CIDR, or an application on every node: matching live sessions end (LK_BANNED) and handshakes are refused before any RSA work. Replaces a ban of the same kind and value',
      body: obj({
        kind: str('keyHash | ip | app', { enum: [...BAN_KINDS] }),
        value: str('a key hash, an IPv4/IPv6 address or CIDR (10.0.0.0/8), or an application id', { minLength: 1, maxLength: 100 }),
        reason: str('why, for operators (shown in lists)', { maxLength: 512 }),
        expiresInSec: { type: 'integer', minimum: 1, maximum: MAX_BAN_SEC, description: 'lift the ban after this many seconds' },
        expiresAt: { type: 'integer', minimum: 0, maximum: MAX_TIME_MS, description: 'lift the ban at this time (ms since the epoch, in the future)' },
      }, ['kind', 'value', 'reason']),
      responses: { 201: { description: 'the ban as stored: { kind, value (canonical: network address, no /32 or /128), reason, createdAt, expiresAt (null: until lifted), createdBy (the API key id) }' } },
      handler: async (ctx) => {
        const b = ctx.body;
        const { kind, value } = banValue(b.kind as string, b.value as string);
        if (b.expiresInSec !== undefined && b.expiresAt !== undefined) throw new LatchkeyError('LK_BAD_ARGUMENT', 'give expiresInSec or expiresAt, not both');
        const now = Date.now();
        const expiresAt = b.expiresInSec !== undefined ? now + (b.expiresInSec as number) * 1000 : b.expiresAt !== undefined ? (b.expiresAt as number) : null;
        if (expiresAt !== null && expiresAt <= now) throw new LatchkeyError('LK_BAD_ARGUMENT', 'expiresAt is not in the future');
        const ban = await d.bans.add({ kind, value, reason: b.reason as string, expiresAt, createdBy: ctx.key.id, createdAt: now });
        return { status: 201, body: views.ban(ban) };
      },
    },
    {
      method: 'DELETE', path: '/admin/v1/bans/{kind}/{value}', scope: 'root', summary: 'Lift a ban on every node. The value is percent-encoded: a CIDR\'s slash is %2F (ip/10.0.0.0%2F8)',
      responses: { 204: { description: 'lifted' } },
      handler: async (ctx) => {
        const { kind, value } = banValue(ctx.params.kind!, ctx.params.value!);
        if (!(await d.bans.remove(kind, value))) throw new LatchkeyError('LK_NOT_FOUND', `no ${kind} ban ${value}`);
        return { status: 204 };
      },
    },
    // --- server keys ---
    {
      method: 'GET', path: '/admin/v1/server-keys', scope: 'root', summary: 'Server key ring of this node',
      responses: { 200: { description: '{ items: [{ id, status, createdAt, publicKey }] }' } },
      handler: async () => ({ status: 200, body: { items: d.keyRing.list().map(views.serverKey) } }),
    },
    {
      method: 'POST', path: '/admin/v1/server-keys', scope: 'root', summary: 'Add a server key and make it active (the previous one stays valid: live and returning endpoints keep working)',
      responses: { 201: { description: 'the new key' } },
      handler: async () => ({ status: 201, body: views.serverKey(await d.keyRing.add()) }),
    },
    {
      method: 'POST', path: '/admin/v1/server-keys/{keyId}/retire', scope: 'root', summary: 'Retire a (non-active) server key: CONNECTs naming it are refused from now on',
      responses: { 200: { description: 'the key, status retired' } },
      handler: async (ctx) => ({ status: 200, body: views.serverKey(d.keyRing.retire(ctx.params.keyId!)) }),
    },
  ];
}
