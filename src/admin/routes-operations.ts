/**
 * Admin routes for operating ownership and the node: owner verifiers, owners, this node
 * (bootstrap), bans and server keys. routes.ts lists them after its own.
 */
import crypto from 'node:crypto';
import { LatchkeyError } from '../errors.js';
import { BUILTIN_VERIFIER_TYPES, createVerifier } from '../ownership/verifiers/registry.js';
import { BAN_KINDS } from '../store/common/protection.js';
import type { AdminDeps } from './deps.js';
import type { Route } from './http.js';
import { anyObject, banValue, MAX_BAN_SEC, MAX_TIME_MS, obj, str, views, type Scopes } from './route-kit.js';

export function operationRoutes(d: AdminDeps, s: Scopes): Route[] {
  const { tenantScoped, appScoped, credentialsId } = s;
  return [
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
