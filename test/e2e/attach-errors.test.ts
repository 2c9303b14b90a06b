/**
 * Owner attach through the real flow: a running server, verifiers created through the admin API, SDK
 * endpoints calling attachUser. Every UserAttachErrorCode is reached (built-in verifiers against a
 * local HTTP stand-in of Google's tokeninfo, a custom verifier module, missing verifiers), and a
 * failed attach leaves the endpoint's owner as it was.
 *
 * Also custom owner verifier modules named in configuration (ownerVerifierPlugins): checked when the
 * server starts, published by GET /admin/v1/verifier-types, configs validated against the module's
 * Avro schema by the admin API, and used by attach.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { wireSchemas, type UserAttachErrorCode } from '../../src/protocol/schemas.js';
import { EndpointClient, generateEndpointKeys, type EndpointKeys } from '../../src/sdk/index.js';
import type { Application } from '../../src/store/store.js';
import { startHarness, tempDir, type Harness } from '../helpers/harness.js';
import { ROOT } from '../helpers/root.js';
import { nowSec, refusedOrigin, startStandIn, type Answer, type SeenRequest, type StandIn } from '../unit/verifiers/stand-in.js';

const verifierModule = (name: string): string => path.join(ROOT, 'test/fixtures/verifiers', name);
const PLUGINS = { 'shared-secret': { module: verifierModule('shared-secret.mjs') } };
const CLIENT = 'latchkey-test.apps.googleusercontent.com';
const SECRET = 's3cret-shared';
/** Fast enough for a test, far above a loopback answer. */
const PROVIDER_TIMEOUT_MS = 300;

type Api = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: Record<string, unknown> }>;

function adminApi(h: Harness, key = h.rootKey): Api {
  return async (method, p, body) => {
    const r = await fetch(`${h.adminUrl}${p}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
}

async function createVerifier(api: Api, appId: string, pluginTypeName: string, jsonConfiguration: unknown, isDefault = false): Promise<string> {
  const r = await api('POST', `/admin/v1/applications/${appId}/verifiers`, { pluginTypeName, name: `${pluginTypeName} verifier`, jsonConfiguration, isDefault });
  expect([r.status, r.body.code], `${pluginTypeName} ${JSON.stringify(jsonConfiguration)}`).toEqual([201, undefined]);
  return r.body.verifierToken as string;
}

interface Endpoint {
  c: EndpointClient;
  k: EndpointKeys;
}

async function connectEndpoint(h: Harness, app: Application, k?: EndpointKeys): Promise<Endpoint> {
  const keys = k ?? (await generateEndpointKeys());
  const c = new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: app.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys });
  expect((await c.connect({ profile: new TextEncoder().encode('{}') })).ok).toBe(true);
  return { c, k: keys };
}

async function ownedBy(api: Api, tenantId: string, owner: string): Promise<string[]> {
  const r = await api('GET', `/admin/v1/tenants/${tenantId}/owners/${encodeURIComponent(owner)}/endpoints`);
  expect(r.status).toBe(200);
  return (r.body.items as Array<{ keyHash: string }>).map((x) => x.keyHash);
}

/** The symbols of the UserAttachErrorCode enum, found in the wire schema itself. */
function userAttachErrorSymbols(): string[] {
  const found: string[][] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
    } else if (node !== null && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (o.type === 'enum' && o.name === 'UserAttachErrorCode') found.push([...(o.symbols as string[])]);
      Object.values(o).forEach(walk);
    }
  };
  walk(wireSchemas.SyncResponse);
  expect(found.length).toBeGreaterThan(0);
  return found[0]!;
}

/** Google tokeninfo stand-in: `valid:<user>`, `expired:<user>`, `invalid`, `boom` (503), `slow`. */
function tokeninfo(req: SeenRequest): Answer {
  if (req.url.pathname !== '/tokeninfo') return { status: 404, text: 'not found' };
  const token = req.url.searchParams.get('access_token') ?? '';
  const [kind, user] = token.split(':') as [string, string | undefined];
  const answer = (over: Record<string, unknown>, delayMs = 0): Answer => ({
    json: { azp: CLIENT, aud: CLIENT, sub: user, scope: 'openid', exp: String(nowSec() + 3000), expires_in: '3000', ...over },
    delayMs,
  });
  switch (kind) {
    case 'valid': return answer({});
    case 'expired': return answer({ exp: String(nowSec() - 5), expires_in: undefined });
    case 'invalid': return { status: 400, json: { error: 'invalid_token', error_description: 'Invalid Value' } };
    case 'boom': return { status: 503, text: 'unavailable' };
    case 'slow': return answer({}, PROVIDER_TIMEOUT_MS * 10);
    default: return { status: 400, json: { error: 'invalid_token' } };
  }
}

describe('custom owner verifier modules (ownerVerifierPlugins)', () => {
  let h: Harness;
  let api: Api;
  let app: Application;

  beforeAll(async () => {
    h = await startHarness({ ownerVerifierPlugins: PLUGINS });
    api = adminApi(h);
    app = await h.app();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('GET /admin/v1/verifier-types publishes the custom type and its schema after the built-ins', async () => {
    const r = await api('GET', '/admin/v1/verifier-types');
    expect(r.status).toBe(200);
    const items = r.body.items as Array<{ name: string; description: string; configSchema: { name: string }; custom: boolean }>;
    expect(items.map((t) => [t.name, t.custom])).toEqual([
      ['trustful', false], ['facebook', false], ['google', false], ['twitter', false], ['oidc', false], ['shared-secret', true],
    ]);
    const custom = items.find((t) => t.name === 'shared-secret')!;
    expect(custom.configSchema.name).toBe('SharedSecretVerifierConfig');
    expect(custom.description).toContain('<secret>');
  });

  it('the admin API validates a custom type\'s config against its Avro schema like a built-in\'s', async () => {
    const token = await createVerifier(api, app.id, 'shared-secret', { secret: SECRET });
    const list = await api('GET', `/admin/v1/applications/${app.id}/verifiers`);
    expect((list.body.items as Array<{ verifierToken: string; pluginTypeName: string }>).find((v) => v.verifierToken === token)?.pluginTypeName).toBe('shared-secret');
    for (const bad of [{}, { secret: 5 }, { secret: SECRET, extra: 1 }, { secret: SECRET, separator: null }]) {
      const r = await api('POST', `/admin/v1/applications/${app.id}/verifiers`, { pluginTypeName: 'shared-secret', name: 'bad', jsonConfiguration: bad });
      expect([r.status, r.body.code], JSON.stringify(bad)).toEqual([400, 'LK_BAD_VERIFIER_CONFIG']);
    }
    const unknown = await api('POST', `/admin/v1/applications/${app.id}/verifiers`, { pluginTypeName: 'not-configured', name: 'x', jsonConfiguration: {} });
    expect([unknown.status, unknown.body.code]).toEqual([400, 'LK_UNKNOWN_VERIFIER_TYPE']);
  });

  it('an endpoint attaches through a custom verifier (named, then as the default)', async () => {
    const named = await createVerifier(api, app.id, 'shared-secret', { secret: SECRET });
    await createVerifier(api, app.id, 'shared-secret', { secret: 'other-secret', separator: '/' }, true);
    const a = await connectEndpoint(h, app);
    const b = await connectEndpoint(h, app);
    expect(await a.c.attachUser('bob', `${SECRET}:bob`, named)).toEqual({ ok: true });
    expect(await b.c.attachUser('bob', 'other-secret/bob')).toEqual({ ok: true });
    expect((await ownedBy(api, app.tenantId, 'bob')).sort()).toEqual([a.k.keyHash, b.k.keyHash].sort());
    const refused = await a.c.attachUser('bob', `${SECRET}:bob`); // the default verifier has another secret
    expect(refused).toMatchObject({ ok: false, code: 'TOKEN_INVALID' });
    expect((refused as { reason: string }).reason).not.toContain(SECRET);
    await a.c.close();
    await b.c.close();
  });
});

describe('the server checks custom verifier modules when it starts', () => {
  const harnesses: Harness[] = [];
  afterAll(async () => {
    for (const x of harnesses) await x.close();
  });

  async function startCode(plugins: Record<string, unknown>): Promise<string | undefined> {
    const dir = tempDir();
    try {
      harnesses.push(await startHarness({ ownerVerifierPlugins: plugins }, dir));
      return undefined;
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      return (err as { code?: string }).code;
    }
  }

  const entry = (file: string): { module: string } => ({ module: verifierModule(file) });

  it('refuses a module that cannot be imported (LK_PLUGIN_LOAD_FAILED)', async () => {
    expect(await startCode({ missing: entry('does-not-exist.mjs') })).toBe('LK_PLUGIN_LOAD_FAILED');
  });
  it('refuses a module without configSchema, with an invalid or non-record schema, or without create (LK_PLUGIN_INVALID)', async () => {
    expect(await startCode({ schemaless: entry('no-schema.mjs') })).toBe('LK_PLUGIN_INVALID');
    expect(await startCode({ badschema: entry('bad-schema.mjs') })).toBe('LK_PLUGIN_INVALID');
    expect(await startCode({ notrecord: entry('not-record.mjs') })).toBe('LK_PLUGIN_INVALID');
    expect(await startCode({ createless: entry('no-create.mjs') })).toBe('LK_PLUGIN_INVALID');
  });
  it('refuses a built-in type name and a type name the admin API cannot address', async () => {
    expect(await startCode({ google: PLUGINS['shared-secret'] })).toBe('LK_CONFIG_INVALID_VALUE');
    expect(await startCode({ 'two words': PLUGINS['shared-secret'] })).toBe('LK_CONFIG_INVALID_VALUE');
  });
  it('refuses an entry without a module path', async () => {
    expect(await startCode({ ok: { module: 5 } })).toBe('LK_CONFIG_INVALID_VALUE');
    expect(await startCode({ ok: { module: '' } })).toBe('LK_CONFIG_INVALID_VALUE');
    expect(await startCode({ ok: '' })).toBe('LK_CONFIG_INVALID_VALUE');
  });
  it('refuses a config in an entry (each verifier is configured by its jsonConfiguration) and unknown keys', async () => {
    expect(await startCode({ ok: { ...PLUGINS['shared-secret'], config: { secret: 'x' } } })).toBe('LK_CONFIG_INVALID_VALUE');
    expect(await startCode({ ok: { ...PLUGINS['shared-secret'], conf: {} } })).toBe('LK_CONFIG_UNKNOWN_KEY');
  });
  it('starts with a good module; the field comes from LATCHKEY_OWNER_VERIFIER_PLUGINS too', async () => {
    expect(await startCode(PLUGINS)).toBeUndefined();
    expect(loadConfig({ env: { LATCHKEY_OWNER_VERIFIER_PLUGINS: JSON.stringify(PLUGINS) } }).ownerVerifierPlugins).toEqual(PLUGINS);
    expect(() => loadConfig({ env: { LATCHKEY_OWNER_VERIFIER_PLUGINS: '["x"]' } })).toThrow(expect.objectContaining({ code: 'LK_CONFIG_INVALID_VALUE' }));
  });
});

describe('every UserAttachErrorCode through the attach flow', () => {
  let h: Harness;
  let api: Api;
  let provider: StandIn;
  /** Default verifier: google against the stand-in. */
  let app: Application;
  /** Verifiers but no default. */
  let bareApp: Application;
  const tokens: Record<string, string> = {};
  let main: Endpoint;
  let bare: Endpoint;

  beforeAll(async () => {
    provider = await startStandIn(tokeninfo);
    h = await startHarness({ ownerVerifierPlugins: PLUGINS });
    api = adminApi(h);
    app = await h.app();
    bareApp = await h.app();
    const google = { audience: [CLIENT], tokeninfo_url: `${provider.origin}/tokeninfo`, request_timeout_ms: PROVIDER_TIMEOUT_MS };
    tokens.google = await createVerifier(api, app.id, 'google', google, true);
    tokens.googleRefused = await createVerifier(api, app.id, 'google', { ...google, tokeninfo_url: `${await refusedOrigin()}/tokeninfo` });
    tokens.custom = await createVerifier(api, app.id, 'shared-secret', { secret: SECRET });
    tokens.bareTrustful = await createVerifier(api, bareApp.id, 'trustful', {});
    main = await connectEndpoint(h, app);
    bare = await connectEndpoint(h, bareApp);
  });
  afterAll(async () => {
    await main?.c.close();
    await bare?.c.close();
    await h?.close();
    await provider?.close();
  });

  interface Attempt {
    label: string;
    ep: () => Endpoint;
    tenantId: () => string;
    token: string;
    /** A key of `tokens`, or a literal verifier token; absent: the application's default. */
    verifier?: string;
    /** The reason sent to the endpoint, where the code alone does not tell which route was taken. */
    reason?: RegExp;
  }
  const onMain = (label: string, token: string, verifier?: string, reason?: RegExp): Attempt =>
    ({ label, ep: () => main, tenantId: () => app.tenantId, token, ...(verifier ? { verifier } : {}), ...(reason ? { reason } : {}) });
  const onBare = (label: string, token: string, verifier?: string): Attempt =>
    ({ label, ep: () => bare, tenantId: () => bareApp.tenantId, token, ...(verifier ? { verifier } : {}) });

  /** Typed by the code union: a code added to the type without an entry here does not compile. */
  const CASES: Record<UserAttachErrorCode, Attempt[]> = {
    NO_VERIFIER_CONFIGURED: [
      onBare('the application has no default verifier', 'anything'),
      onMain('unknown verifier token', 'valid:mallory', 'no-such-verifier-token', /unknown verifier token/),
      onMain('a verifier token of another application', 'anything', 'bareTrustful', /unknown verifier token/),
    ],
    TOKEN_INVALID: [
      onMain('google: tokeninfo answers 400', 'invalid'),
      onMain('google: empty token', ''),
      onMain('custom: wrong shared secret', 'wrong:mallory', 'custom'),
    ],
    TOKEN_EXPIRED: [onMain('google: token past its exp', 'expired:mallory')],
    INTERNAL_ERROR: [
      onMain('custom: the module throws', 'throw', 'custom', /^verifier failed$/),
      onMain('custom: the module returns a malformed result', 'garbage', 'custom', /malformed result/),
    ],
    CONNECTION_ERROR: [
      onMain('google: tokeninfo port refuses connections', 'valid:mallory', 'googleRefused', /unreachable/),
      onMain(`google: tokeninfo slower than request_timeout_ms (${PROVIDER_TIMEOUT_MS} ms)`, 'slow:mallory', undefined, new RegExp(`within ${PROVIDER_TIMEOUT_MS} ms`)),
    ],
    REMOTE_ERROR: [onMain('google: tokeninfo answers 503', 'boom')],
    OTHER: [
      onMain('google: genuine token of another user', 'valid:alice'),
      onMain('custom: genuine token of another user', `${SECRET}:alice`, 'custom'),
    ],
  };

  it('the cases cover exactly the symbols of the UserAttachErrorCode enum', () => {
    expect(Object.keys(CASES).sort()).toEqual(userAttachErrorSymbols().sort());
    for (const [code, attempts] of Object.entries(CASES)) expect(attempts.length, code).toBeGreaterThan(0);
  });

  it('a successful attach lists the endpoint under its owner', async () => {
    expect(await main.c.attachUser('alice', 'valid:alice')).toEqual({ ok: true });
    expect(await bare.c.attachUser('alice', 'x', tokens.bareTrustful)).toEqual({ ok: true });
    expect(await ownedBy(api, app.tenantId, 'alice')).toEqual([main.k.keyHash]);
    expect(await ownedBy(api, bareApp.tenantId, 'alice')).toEqual([bare.k.keyHash]);
  });

  for (const [code, attempts] of Object.entries(CASES) as Array<[UserAttachErrorCode, Attempt[]]>) {
    for (const a of attempts) {
      it(`${code}: ${a.label}; the previous owner stays`, async () => {
        const ep = a.ep();
        const verifier = a.verifier === undefined ? undefined : (tokens[a.verifier] ?? a.verifier);
        const r = await ep.c.attachUser('mallory', a.token, verifier);
        expect(r).toMatchObject({ ok: false, code });
        // The server's answer, not the SDK's fallback (which has no reason); no token in it.
        const reason = (r as { reason: string | null }).reason;
        expect(typeof reason).toBe('string');
        expect(reason!.length).toBeGreaterThan(0);
        if (a.reason) expect(reason).toMatch(a.reason);
        if (a.token.length > 8) expect(reason).not.toContain(a.token);
        expect(await ownedBy(api, a.tenantId(), 'alice')).toContain(ep.k.keyHash);
        expect(await ownedBy(api, a.tenantId(), 'mallory')).toEqual([]);
      });
    }
  }

  it('the endpoint can still attach after the failures (to a new owner, moved atomically)', async () => {
    expect(await main.c.attachUser('mallory', `${SECRET}:mallory`, tokens.custom)).toEqual({ ok: true });
    expect(await ownedBy(api, app.tenantId, 'mallory')).toEqual([main.k.keyHash]);
    expect(await ownedBy(api, app.tenantId, 'alice')).toEqual([]);
  });
});

describe('INTERNAL_ERROR when a stored verifier\'s custom type is no longer configured', () => {
  it('restarted without the module: attach through its verifier fails, the owner stays', async () => {
    const dataDir = tempDir();
    let h = await startHarness({ ownerVerifierPlugins: PLUGINS }, dataDir);
    const rootKey = h.rootKey;
    try {
      const app = await h.app();
      let api = adminApi(h, rootKey);
      const custom = await createVerifier(api, app.id, 'shared-secret', { secret: SECRET });
      const trustful = await createVerifier(api, app.id, 'trustful', {});
      let ep = await connectEndpoint(h, app);
      expect(await ep.c.attachUser('alice', 'x', trustful)).toEqual({ ok: true });
      await ep.c.close();
      await h.close({ keepData: true });

      h = await startHarness({}, dataDir);
      api = adminApi(h, rootKey);
      ep = await connectEndpoint(h, app, ep.k);
      const r = await ep.c.attachUser('mallory', `${SECRET}:mallory`, custom);
      expect(r).toMatchObject({ ok: false, code: 'INTERNAL_ERROR' });
      expect((r as { reason: string | null }).reason).toBe('verifier configuration is not usable');
      expect(await ownedBy(api, app.tenantId, 'alice')).toEqual([ep.k.keyHash]);
      expect(await ownedBy(api, app.tenantId, 'mallory')).toEqual([]);
      await ep.c.close();
    } finally {
      await h.close();
    }
  });
});
