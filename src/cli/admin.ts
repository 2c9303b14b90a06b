/**
 * `latchkey admin <group> <verb>`: one table of commands over the admin REST API of a running
 * server (admin-client.ts), each naming the options it takes; plus `admin create-key`, which
 * writes an API key straight into the store (no server needed).
 */
import { newApiKey } from '../admin/auth.js';
import { keyHashId, toSpkiDer } from '../crypto/keys.js';
import { LatchkeyError } from '../errors.js';
import { AdminClient, DEFAULT_ADMIN_URL, type ApplicationView, type CredentialsView, type EndpointView, type ServerKeyView, type VerifierView } from './admin-client.js';
import { need, readFile, type Parsed } from './args.js';
import { withStore } from './offline.js';
import { print } from './output.js';

const iso = (ms: number | null | undefined): string | null => (typeof ms === 'number' ? new Date(ms).toISOString() : null);

/** Parse a JSON file that must hold an object; other content fails with `code`. */
function readJsonObject(file: string, code: 'LK_BAD_PROFILE_SCHEMA' | 'LK_BAD_SERVER_PROFILE'): object {
  let v: unknown;
  try {
    v = JSON.parse(readFile(file));
  } catch (err) {
    if (err instanceof LatchkeyError) throw err;
    throw new LatchkeyError(code, `${file}: not valid JSON (${(err as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new LatchkeyError(code, `${file}: must hold a JSON object`);
  return v;
}

function keyHashOf(p: Parsed): string {
  const id = p.opts.id ?? (p.opts.key ? keyHashId(toSpkiDer(readFile(p.opts.key))) : '');
  if (!id) throw new LatchkeyError('LK_CLI_USAGE', '--id KEY_HASH or --key PUBLIC_KEY.pem is required');
  return id;
}

const appRow = (a: ApplicationView) => ({ id: a.id, tenant: a.tenantId, name: a.name, appToken: a.appToken, credentials: a.credentialsService });
const credRow = (c: CredentialsView) => ({ credentialsId: c.credentialsId, status: c.status, endpoint: c.endpointId, updatedAt: iso(c.updatedAt) });
const endpointRow = (e: EndpointView) => ({ keyHash: e.keyHash, credentialsId: e.credentialsId, connected: e.connected ? 'yes' : 'no', updatedAt: iso(e.updatedAt) });
const verifierRow = (v: VerifierView) => ({ verifierToken: v.verifierToken, type: v.pluginTypeName, name: v.name, default: v.isDefault ? 'yes' : '', createdAt: iso(v.createdAt) });

/** --config: a JSON object given inline or as a file name. */
function verifierConfig(p: Parsed): object {
  const raw = p.opts.config;
  if (raw === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw.trimStart().startsWith('{') ? raw : readFile(raw));
  } catch (err) {
    if (err instanceof LatchkeyError) throw err;
    throw new LatchkeyError('LK_CLI_USAGE', `--config: not a JSON object (${(err as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new LatchkeyError('LK_CLI_USAGE', '--config: must be a JSON object');
  return v;
}

/** The SPKI as one line of base64 (DER): what the SDK's serverKey needs besides the id, and what `serve` prints. */
const spkiBase64 = (k: ServerKeyView): string => Buffer.from(toSpkiDer(k.publicKey)).toString('base64');
const serverKeyRow = (k: ServerKeyView) => ({ id: k.id, status: k.status, createdAt: iso(k.createdAt), spki: spkiBase64(k) });
/** --json: the admin API's view (publicKey as PEM) plus `spki`, the same key as one line of base64. */
const serverKeyJson = (k: ServerKeyView) => ({ ...k, spki: spkiBase64(k) });

interface AdminCommand {
  /** Options this command takes besides --admin-url, --api-key and --json. */
  flags: string[];
  run(c: AdminClient, p: Parsed): Promise<void>;
}

const ADMIN_COMMANDS: Record<string, Record<string, AdminCommand>> = {
  tenant: {
    create: {
      flags: ['name', 'id'],
      async run(c, p) {
        const t = await c.createTenant({ name: need(p, 'name'), ...(p.opts.id ? { id: p.opts.id } : {}) });
        print(p, t, [{ id: t.id, name: t.name, createdAt: iso(t.createdAt) }]);
      },
    },
    list: {
      flags: [],
      async run(c, p) {
        const r = await c.listTenants();
        print(p, r, r.items.map((t) => ({ id: t.id, name: t.name, createdAt: iso(t.createdAt) })));
      },
    },
    get: {
      flags: ['id'],
      async run(c, p) {
        const t = await c.getTenant(need(p, 'id'));
        print(p, t, [{ id: t.id, name: t.name, createdAt: iso(t.createdAt) }]);
      },
    },
  },
  app: {
    create: {
      flags: ['tenant', 'name', 'id', 'token', 'credentials', 'profile-schema'],
      async run(c, p) {
        const a = await c.createApplication(need(p, 'tenant'), {
          name: need(p, 'name'),
          ...(p.opts.id ? { id: p.opts.id } : {}),
          ...(p.opts.token ? { appToken: p.opts.token } : {}),
          ...(p.opts.credentials ? { credentialsService: p.opts.credentials } : {}),
          ...(p.opts['profile-schema'] ? { profileSchema: readJsonObject(p.opts['profile-schema'], 'LK_BAD_PROFILE_SCHEMA') } : {}),
        });
        print(p, a, [appRow(a)]);
      },
    },
    list: {
      flags: ['tenant'],
      async run(c, p) {
        const r = await c.listApplications(need(p, 'tenant'));
        print(p, r, r.items.map(appRow));
      },
    },
    get: {
      flags: ['id'],
      async run(c, p) {
        const a = await c.getApplication(need(p, 'id'));
        print(p, a, [{ ...appRow(a), profileSchema: a.profileSchema === null ? 'none' : 'yes', createdAt: iso(a.createdAt) }]);
      },
    },
  },
  credentials: {
    list: {
      flags: ['app', 'limit', 'cursor', 'status'],
      async run(c, p) {
        const { limit, cursor, status } = p.opts;
        const r = await c.listCredentials(need(p, 'app'), { ...(limit ? { limit } : {}), ...(cursor ? { cursor } : {}), ...(status ? { status } : {}) });
        print(p, r, r.items.map(credRow));
        if (r.next && !p.bools.has('json')) process.stderr.write(`latchkey: more credentials: --cursor ${r.next}\n`);
      },
    },
    provision: {
      flags: ['app', 'key', 'server-profile'],
      async run(c, p) {
        const appId = need(p, 'app');
        const publicKey = readFile(need(p, 'key'));
        const serverProfile = p.opts['server-profile'] ? readJsonObject(p.opts['server-profile'], 'LK_BAD_SERVER_PROFILE') : undefined;
        const r = await c.provisionCredentials(appId, { publicKey, ...(serverProfile ? { serverProfile } : {}) });
        print(p, r, [{ credentialsId: r.credentials.credentialsId, status: r.credentials.status, serverProfile: r.registration ? 'yes' : 'no' }]);
      },
    },
    status: {
      flags: ['app', 'id'],
      async run(c, p) {
        const r = await c.credentialsStatus(need(p, 'app'), need(p, 'id'));
        print(p, r, [credRow(r)]);
      },
    },
    revoke: {
      flags: ['app', 'id'],
      async run(c, p) {
        const r = await c.revokeCredentials(need(p, 'app'), need(p, 'id'));
        print(p, r, [credRow(r)]);
      },
    },
    'notify-revoked': {
      flags: ['app', 'id'],
      async run(c, p) {
        const appId = need(p, 'app');
        const credentialsId = need(p, 'id');
        await c.notifyRevoked(appId, credentialsId);
        print(p, { appId, credentialsId, notified: true }, [{ appId, credentialsId, notified: 'yes' }]);
      },
    },
  },
  registration: {
    provision: {
      flags: ['app', 'id', 'key', 'server-profile'],
      async run(c, p) {
        const appId = need(p, 'app');
        const id = keyHashOf(p);
        const r = await c.provisionRegistration(appId, id, readJsonObject(need(p, 'server-profile'), 'LK_BAD_SERVER_PROFILE'));
        print(p, r, [{ credentialsId: r.credentialsId, serverProfile: JSON.stringify(r.serverProfile), updatedAt: iso(r.updatedAt) }]);
      },
    },
  },
  endpoints: {
    list: {
      flags: ['app', 'limit', 'cursor'],
      async run(c, p) {
        const r = await c.listEndpoints(need(p, 'app'), { ...(p.opts.limit ? { limit: p.opts.limit } : {}), ...(p.opts.cursor ? { cursor: p.opts.cursor } : {}) });
        print(p, r, r.items.map(endpointRow));
        if (r.next && !p.bools.has('json')) process.stderr.write(`latchkey: more endpoints: --cursor ${r.next}\n`);
      },
    },
    get: {
      flags: ['app', 'id'],
      async run(c, p) {
        const e = await c.getEndpoint(need(p, 'app'), need(p, 'id'));
        print(p, e, [{ ...endpointRow(e), profileHash: e.profileHash, serverProfile: e.serverProfile === null ? null : JSON.stringify(e.serverProfile) }]);
      },
    },
  },
  sessions: {
    list: {
      flags: ['app'],
      async run(c, p) {
        const r = await c.listSessions(need(p, 'app'));
        print(p, r, r.items.map((s) => ({ sessionId: s.sessionId, keyHash: s.keyHash, establishedAt: iso(s.establishedAt), lastSeen: iso(s.lastSeen), keepAliveSec: s.keepAliveSec })));
      },
    },
    kick: {
      flags: ['app', 'id'],
      async run(c, p) {
        const appId = need(p, 'app');
        const keyHash = need(p, 'id');
        await c.kickSession(appId, keyHash);
        print(p, { appId, keyHash, kicked: true }, [{ appId, keyHash, kicked: 'yes' }]);
      },
    },
  },
  verifiers: {
    list: {
      flags: ['app'],
      async run(c, p) {
        const r = await c.listVerifiers(need(p, 'app'));
        print(p, r, r.items.map(verifierRow));
      },
    },
    create: {
      flags: ['app', 'type', 'name', 'config', 'default'],
      async run(c, p) {
        const def = p.opts.default ?? 'no';
        if (def !== 'yes' && def !== 'no') throw new LatchkeyError('LK_CLI_USAGE', '--default yes|no');
        const v = await c.createVerifier(need(p, 'app'), { pluginTypeName: need(p, 'type'), name: p.opts.name ?? need(p, 'type'), jsonConfiguration: verifierConfig(p), isDefault: def === 'yes' });
        print(p, v, [verifierRow(v)]);
      },
    },
    delete: {
      flags: ['app', 'token'],
      async run(c, p) {
        const appId = need(p, 'app');
        const verifierToken = need(p, 'token');
        await c.deleteVerifier(appId, verifierToken);
        print(p, { appId, verifierToken, deleted: true }, [{ appId, verifierToken, deleted: 'yes' }]);
      },
    },
  },
  'server-keys': {
    list: {
      flags: [],
      async run(c, p) {
        const r = await c.listServerKeys();
        print(p, { ...r, items: r.items.map(serverKeyJson) }, r.items.map(serverKeyRow));
        // The table's SPKI column is long: say once what it is for (stderr, so stdout stays the table).
        if (!p.bools.has('json') && r.items.length > 0) process.stderr.write("latchkey: endpoints name the active key: SDK serverKey { id, spki } (spki: the SPKI column's bytes, or the PEM publicKey of --json)\n");
      },
    },
    add: {
      flags: [],
      async run(c, p) {
        const k = await c.addServerKey();
        print(p, serverKeyJson(k), [serverKeyRow(k)]);
      },
    },
    retire: {
      flags: ['id'],
      async run(c, p) {
        const k = await c.retireServerKey(need(p, 'id'));
        print(p, serverKeyJson(k), [serverKeyRow(k)]);
      },
    },
  },
  node: {
    show: {
      flags: [],
      async run(c, p) {
        const n = await c.nodeInfo();
        print(p, n, [{ id: n.id, accessPointId: n.accessPointId, url: n.url, priority: n.priority, weight: n.weight, sessions: n.sessions, draining: n.draining ? 'yes' : 'no' }]);
      },
    },
    drain: {
      flags: [],
      async run(c, p) {
        const r = await c.drainNode();
        print(p, r, [{ redirected: r.redirected }]);
      },
    },
  },
  bans: {
    list: {
      flags: [],
      async run(c, p) {
        const r = await c.listBans();
        print(p, r, r.items.map((b) => ({ kind: b.kind, value: b.value, reason: b.reason, expiresAt: iso(b.expiresAt) ?? 'never', createdBy: b.createdBy, createdAt: iso(b.createdAt) })));
      },
    },
    add: {
      flags: ['kind', 'value', 'reason', 'expires-in', 'expires-at'],
      async run(c, p) {
        const inText = p.opts['expires-in'];
        const atText = p.opts['expires-at'];
        if (inText && atText) throw new LatchkeyError('LK_CLI_USAGE', 'give --expires-in or --expires-at, not both');
        if (inText && !/^[1-9]\d*$/.test(inText)) throw new LatchkeyError('LK_CLI_USAGE', '--expires-in takes a whole number of seconds (at least 1)');
        // --expires-at: ISO 8601, or milliseconds since the epoch.
        const at = atText ? (/^\d+$/.test(atText) ? Number(atText) : Date.parse(atText)) : undefined;
        if (at !== undefined && !Number.isFinite(at)) throw new LatchkeyError('LK_CLI_USAGE', '--expires-at takes an ISO 8601 time (2030-01-31T12:00:00Z) or milliseconds since the epoch');
        const b = await c.addBan({
          kind: need(p, 'kind'),
          value: need(p, 'value'),
          reason: need(p, 'reason'),
          ...(inText ? { expiresInSec: Number(inText) } : {}),
          ...(at !== undefined ? { expiresAt: at } : {}),
        });
        print(p, b, [{ kind: b.kind, value: b.value, reason: b.reason, expiresAt: iso(b.expiresAt) ?? 'never', createdBy: b.createdBy }]);
      },
    },
    remove: {
      flags: ['kind', 'value'],
      async run(c, p) {
        const kind = need(p, 'kind');
        const value = need(p, 'value');
        await c.removeBan(kind, value);
        print(p, { kind, value, removed: true }, [{ kind, value, removed: 'yes' }]);
      },
    },
  },
  'api-keys': {
    list: {
      flags: [],
      async run(c, p) {
        const r = await c.listApiKeys();
        print(p, r, r.items.map((k) => ({ id: k.id, tenant: k.tenantId ?? '(root)', name: k.name, createdAt: iso(k.createdAt) })));
      },
    },
    create: {
      flags: ['name', 'tenant'],
      async run(c, p) {
        const k = await c.createApiKey({ name: need(p, 'name'), ...(p.opts.tenant ? { tenantId: p.opts.tenant } : {}) });
        print(p, k, [{ id: k.id, tenant: k.tenantId ?? '(root)', name: k.name, token: k.token }]);
        if (!p.bools.has('json')) process.stderr.write('latchkey: the token is shown once (only its hash is stored); keep it now\n');
      },
    },
    delete: {
      flags: ['id'],
      async run(c, p) {
        const id = need(p, 'id');
        await c.deleteApiKey(id);
        print(p, { id, deleted: true }, [{ id, deleted: 'yes' }]);
      },
    },
  },
};

/** `admin create-key`: an API key written straight into the store (no server needed). */
async function adminCreateKey(p: Parsed): Promise<void> {
  const name = p.opts.name ?? `created by latchkey admin create-key at ${new Date().toISOString()}`;
  if (name.length < 1 || name.length > 200) throw new LatchkeyError('LK_BAD_ARGUMENT', '--name must be 1-200 characters');
  await withStore(p, async (store) => {
    const k = newApiKey(p.opts.tenant ?? null, name);
    await store.createApiKey(k.record);
    const out = { id: k.record.id, tenantId: k.record.tenantId, name: k.record.name, token: k.token, createdAt: k.record.createdAt };
    print(p, out, [{ id: out.id, tenant: out.tenantId ?? '(root)', name: out.name, token: out.token }]);
    if (!p.bools.has('json')) process.stderr.write('latchkey: the token is shown once (only its hash is stored); keep it now\n');
  });
}

export async function admin(p: Parsed): Promise<void> {
  const group = p.words[1] ?? '';
  if (group === 'create-key') {
    if (p.words.length > 2) throw new LatchkeyError('LK_CLI_USAGE', `unexpected argument ${p.words[2]}`);
    return adminCreateKey(p);
  }
  const groups = Object.keys(ADMIN_COMMANDS);
  const verbs = Object.hasOwn(ADMIN_COMMANDS, group) ? ADMIN_COMMANDS[group]! : null;
  if (!verbs) throw new LatchkeyError('LK_CLI_USAGE', group ? `unknown admin group ${group}; one of create-key, ${groups.join(', ')}` : `admin create-key|${groups.join('|')}`);
  const verb = p.words[2] ?? '';
  const command = Object.hasOwn(verbs, verb) ? verbs[verb]! : null;
  if (!command) throw new LatchkeyError('LK_CLI_USAGE', `admin ${group} ${Object.keys(verbs).join('|')}`);
  if (p.words.length > 3) throw new LatchkeyError('LK_CLI_USAGE', `unexpected argument ${p.words[3]}`);
  for (const name of Object.keys(p.opts)) {
    if (name !== 'admin-url' && name !== 'api-key' && !command.flags.includes(name)) {
      throw new LatchkeyError('LK_CLI_USAGE', `--${name} is not an option of admin ${group} ${verb} (see latchkey admin ${group} --help)`);
    }
  }
  for (const name of p.bools) {
    if (name !== 'json') throw new LatchkeyError('LK_CLI_USAGE', `--${name} is not an option of admin ${group} ${verb}`);
  }
  const client = new AdminClient({
    url: p.opts['admin-url'] || process.env.LATCHKEY_ADMIN_URL || DEFAULT_ADMIN_URL,
    apiKey: p.opts['api-key'] || process.env.LATCHKEY_API_KEY || '',
  });
  await command.run(client, p);
}
