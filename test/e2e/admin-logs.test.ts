/**
 * What the server writes to its log, read from a captured pino stream (the harness logs nowhere):
 *
 * - the admin audit trail: one info line `admin change` (audit: true, method, route template,
 *   params, status, apiKeyId, code when refused) for every POST/PUT/DELETE, successful or refused,
 *   none for reads; never a body, a token or an API key secret;
 * - issue 9, point 5: an endpoint reusing another endpoint's access token gets a coded sync result
 *   (LK_CONFLICT) and a debug line, nothing at warn or error (it could otherwise fill the error log
 *   at will).
 */
import fs from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig, type Config } from '../../src/config/config.js';
import { ClientError, EndpointClient, generateEndpointKeys } from '../../src/sdk/index.js';
import { build, type Server } from '../../src/server.js';
import { createApplication, createTenant } from '../../src/tenancy/provision.js';
import { tempDir } from '../helpers/harness.js';
import { makeEndpointKey } from '../helpers/wire-client.js';

type Line = Record<string, unknown> & { level: number; msg: string };

const lines: Line[] = [];
const raw: string[] = [];
let server: Server;
let adminUrl: string;
let rootKey: string;
let tenantKey: string;
const dataDir = tempDir('latchkey-admin-logs-');

beforeAll(async () => {
  const config: Config = { ...defaultConfig(), host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0, dataDir, logLevel: 'debug', cryptoThreads: 1 };
  const log = pino({ level: 'debug' }, {
    write: (s: string) => {
      raw.push(s);
      lines.push(JSON.parse(s) as Line);
    },
  });
  server = await build(config, log);
  adminUrl = `http://127.0.0.1:${server.adminPort}`;
  rootKey = server.firstApiKey!;
});
afterAll(async () => {
  await server?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function call(method: string, path: string, opts: { key?: string | null; body?: unknown; raw?: string } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const key = opts.key === undefined ? rootKey : opts.key;
  const r = await fetch(`${adminUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    ...(opts.raw !== undefined ? { body: opts.raw } : opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text && r.headers.get('content-type') === 'application/json' ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const keyId = (token: string): string => token.slice(3, token.indexOf('.'));
const secretOf = (token: string): string => token.slice(token.indexOf('.') + 1);
const audit = (): Line[] => lines.filter((l) => l.audit === true);

describe('admin audit log', () => {
  it('one info line per change, successful or refused, naming the key, the route template and the status; none for reads', async () => {
    const mark = audit().length;
    expect((await call('POST', '/admin/v1/tenants', { body: { id: 'logs', name: 'Logs' } })).status).toBe(201);
    const made = await call('POST', '/admin/v1/api-keys', { body: { name: 'tenant ops', tenantId: 'logs' } });
    tenantKey = made.body.token as string;
    expect((await call('POST', '/admin/v1/tenants', { key: tenantKey, body: { name: 'nope' } })).status).toBe(403);
    expect((await call('DELETE', '/admin/v1/api-keys/AAAAAAAAAAAAAAAA', { key: null })).status).toBe(401);
    expect((await call('POST', '/admin/v1/tenants', { raw: '{nope' })).status).toBe(400);
    expect((await call('POST', '/admin/v1/bans', { body: { kind: 'ip', value: '10.0.0.0/8', reason: 'audit' } })).status).toBe(201);
    expect((await call('DELETE', '/admin/v1/bans/ip/10.0.0.0%2F8')).status).toBe(204);
    expect((await call('PUT', '/admin/v1/no-such-route', { body: {} })).status).toBe(404);
    // Reads are not audited.
    for (const [m, p] of [['GET', '/admin/v1/tenants'], ['HEAD', '/admin/v1/tenants'], ['GET', '/admin/v1/bans'], ['GET', '/readyz']] as const) await call(m, p);

    const got = audit().slice(mark);
    expect(got.every((l) => l.level === 30 && l.msg === 'admin change')).toBe(true);
    expect(got.map((l) => ({ method: l.method, route: l.route, params: l.params, status: l.status, apiKeyId: l.apiKeyId, code: l.code }))).toEqual([
      { method: 'POST', route: '/admin/v1/tenants', params: {}, status: 201, apiKeyId: keyId(rootKey), code: undefined },
      { method: 'POST', route: '/admin/v1/api-keys', params: {}, status: 201, apiKeyId: keyId(rootKey), code: undefined },
      { method: 'POST', route: '/admin/v1/tenants', params: {}, status: 403, apiKeyId: keyId(tenantKey), code: 'LK_FORBIDDEN' },
      { method: 'DELETE', route: '/admin/v1/api-keys/{keyId}', params: { keyId: 'AAAAAAAAAAAAAAAA' }, status: 401, apiKeyId: null, code: 'LK_AUTH_REQUIRED' },
      { method: 'POST', route: '/admin/v1/tenants', params: {}, status: 400, apiKeyId: keyId(rootKey), code: 'LK_BAD_JSON' },
      { method: 'POST', route: '/admin/v1/bans', params: {}, status: 201, apiKeyId: keyId(rootKey), code: undefined },
      { method: 'DELETE', route: '/admin/v1/bans/{kind}/{value}', params: { kind: 'ip', value: '10.0.0.0/8' }, status: 204, apiKeyId: keyId(rootKey), code: undefined },
      { method: 'PUT', route: 'unmatched', params: {}, status: 404, apiKeyId: null, code: 'LK_NOT_FOUND' },
    ]);
  });

  it('never logs a body, a token or an API key secret', async () => {
    const k = makeEndpointKey();
    const app = await call('POST', '/admin/v1/tenants/logs/applications', { body: { id: 'logs-app', name: 'L', appToken: 'secret-app-token-77', credentialsService: 'internal' } });
    expect(app.status).toBe(201);
    expect((await call('POST', '/admin/v1/applications/logs-app/credentials', { key: tenantKey, body: { publicKey: k.publicKeyPem, serverProfile: { pin: 'serverprofilesecret' } } })).status).toBe(201);
    const another = await call('POST', '/admin/v1/api-keys', { body: { name: 'another' } });
    expect(audit().some((l) => l.route === '/admin/v1/applications/{appId}/credentials' && l.apiKeyId === keyId(tenantKey) && l.status === 201)).toBe(true);
    const all = raw.join('');
    for (const secret of [secretOf(rootKey), secretOf(tenantKey), secretOf(another.body.token as string), 'secret-app-token-77', 'serverprofilesecret', k.publicKeyPem.split('\n')[1]!]) {
      expect(all.includes(secret), secret.slice(0, 12)).toBe(false);
    }
  });
});

describe('endpoint access token reused across endpoints (issue 9, point 5)', () => {
  it('answers the second publisher with LK_CONFLICT and logs it at debug, nothing at warn or error', async () => {
    await createTenant(server.store, { id: 'tok', name: 'tok' });
    const app = await createApplication(server.store, { id: 'tok-app', tenantId: 'tok', name: 'tok', credentialsService: 'trustful', profileSchema: null }, ['trustful', 'internal']);
    const clients: EndpointClient[] = [];
    const connect = async (): Promise<EndpointClient> => {
      const c = new EndpointClient({ url: `ws://127.0.0.1:${server.port}`, appToken: app.appToken, serverKey: { id: server.keyRing.active.id, spki: server.keyRing.active.spkiDer }, keys: await generateEndpointKeys(), reconnect: false });
      clients.push(c);
      expect((await c.connect({ profile: new TextEncoder().encode('{}') })).ok).toBe(true);
      return c;
    };
    try {
      const a = await connect();
      const b = await connect();
      const mark = lines.length;
      await a.setEndpointAccessToken('shared-token-1');
      for (let i = 0; i < 3; i++) {
        const err = await b.setEndpointAccessToken('shared-token-1').then(() => null, (e: unknown) => e);
        expect(err).toBeInstanceOf(ClientError);
        expect((err as ClientError).code).toBe('LK_CONFLICT');
      }
      // The session goes on: the same endpoint publishes a token of its own.
      await b.setEndpointAccessToken('token-of-b-only');
      const after = lines.slice(mark);
      expect(after.filter((l) => l.level >= 40).map((l) => l.msg)).toEqual([]);
      expect(after.filter((l) => l.level === 20 && l.msg.startsWith('endpoint access token refused')).length).toBe(3);
    } finally {
      for (const c of clients) await c.close().catch(() => undefined);
    }
  });
});
