#!/usr/bin/env node
/**
 * latchkey CLI: `serve`, `keygen`, offline provisioning commands that work directly on the
 * configured store (the embedded LMDB store may be shared with a running server on the same host),
 * and `admin ...`: wrappers over the admin REST API of a running server (src/cli/admin-client.ts),
 * plus `admin create-key`, which works offline on the store.
 * Every command has --help; errors print their catalogue code and exit 2 (usage) or 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { flagNames, loadConfig, redactConfig, type Config } from './config/config.js';
import { KeyRing } from './crypto/keyring.js';
import { generateRsaKeyPair, isKeyHashId, keyHashId, toSpkiDer } from './crypto/keys.js';
import { newApiKey } from './admin/auth.js';
import { AdminClient, DEFAULT_ADMIN_URL, type ApplicationView, type CredentialsView, type EndpointView, type ServerKeyView } from './cli/admin-client.js';
import { LatchkeyError, isErrorCode } from './errors.js';
import { build, loadCredentialsServices, openStore } from './server.js';
import { installFatalHandler, type FatalHooks } from './fatal.js';
import type { Store } from './store/store.js';
import { BootstrapKey } from './bootstrap/key.js';
import { derToPem } from './sdk/crypto.js';
import { applySeed, createApplication, createTenant, provisionCredentials, provisionRegistration } from './tenancy/provision.js';

interface Parsed {
  words: string[];
  opts: Record<string, string>;
  bools: Set<string>;
}

const BOOLEAN_FLAGS = new Set(['help', 'json', 'force']);

export function parseArgs(argv: string[]): Parsed {
  const out: Parsed = { words: [], opts: {}, bools: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h') {
      out.bools.add('help');
    } else if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (BOOLEAN_FLAGS.has(name)) {
        const v = eq > 0 ? a.slice(eq + 1) : 'true';
        if (v !== 'true' && v !== 'false') throw new LatchkeyError('LK_CLI_USAGE', `--${name} takes no value (or =true/=false)`);
        if (v === 'true') out.bools.add(name);
        continue;
      }
      const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new LatchkeyError('LK_CLI_USAGE', `--${name} needs a value`);
      out.opts[name] = value;
    } else {
      out.words.push(a);
    }
  }
  return out;
}

const CONFIG_FLAGS_HELP = `Configuration flags (all commands that touch the store or serve):
  --config FILE           JSON configuration file (or LATCHKEY_CONFIG)
  --data-dir DIR          embedded store and key ring (LATCHKEY_DATA_DIR, default ./data)
  --<field-name> VALUE    any configuration field, e.g. --port 9443 --admin-port 9444
                          (docs/operations.md lists every field and its LATCHKEY_* variable)`;

const HELP: Record<string, string> = {
  '': `latchkey: endpoint connection server

Usage: latchkey <command> [options]

Commands:
  serve                       run the server (gateway + admin listener)
  keygen endpoint|server      generate RSA-2048 key pairs
  tenant create|list          manage tenants in the store
  app create|list             manage applications
  credentials provision|show  provision endpoint credentials (internal credentials service)
  registration provision      provision a server-side profile against credentials
  seed FILE                   apply a seed file (idempotent)
  bootstrap-key               print the bootstrap public key endpoints verify lists with
  admin ...                   manage a running server through its admin API (tenants,
                              applications, credentials, endpoints, sessions, keys);
                              admin create-key makes an API key offline

Run \`latchkey <command> --help\` for details. Add --json for machine-readable output.`,
  serve: `Usage: latchkey serve [--config FILE] [--<field-name> VALUE ...]

Runs the endpoint gateway (WebSocket ${'/ep/v1'}) and the admin listener (/healthz).
SIGTERM/SIGINT end sessions with DISCONNECT and exit.

${CONFIG_FLAGS_HELP}`,
  'bootstrap-key': `Usage: latchkey bootstrap-key [--data-dir DIR | --bootstrap-key-file FILE] [--json]
  Prints the public key (SPKI PEM, and base64 DER with --json) of the key that signs bootstrap
  lists, creating it like \`serve\` would if it does not exist yet. Build it into endpoints (SDK
  option bootstrap.publicKey). The private key never leaves the file (mode 0600).`,
  keygen: `Usage:
  latchkey keygen endpoint --out PREFIX [--force]
      writes PREFIX.key.pem (PKCS#8, mode 0600) and PREFIX.pub.pem (SPKI); prints the key hash
  latchkey keygen server [--data-dir DIR]
      adds a new server key to the key ring in DIR/keys and makes it active (rotation: the
      previous active key stays valid for endpoints that still use it)`,
  tenant: `Usage:
  latchkey tenant create --name NAME [--id ID] [--json]
  latchkey tenant list [--json]

${CONFIG_FLAGS_HELP}`,
  app: `Usage:
  latchkey app create --tenant TENANT_ID --name NAME [--id ID] [--token APP_TOKEN]
                      [--credentials trustful|internal|PLUGIN] [--profile-schema FILE.avsc] [--json]
  latchkey app list --tenant TENANT_ID [--json]

${CONFIG_FLAGS_HELP}`,
  credentials: `Usage:
  latchkey credentials provision --app APP_ID --key PUBLIC_KEY.pem [--server-profile FILE.json] [--json]
  latchkey credentials show --app APP_ID --id KEY_HASH [--json]

${CONFIG_FLAGS_HELP}`,
  registration: `Usage:
  latchkey registration provision --app APP_ID (--id KEY_HASH | --key PUBLIC_KEY.pem) --server-profile FILE.json [--json]

${CONFIG_FLAGS_HELP}`,
  seed: `Usage: latchkey seed FILE [--json]

Applies a seed file of tenants, applications and credentials; objects that exist are kept.

${CONFIG_FLAGS_HELP}`,
};

const ADMIN_ENV_HELP = `Admin API connection (all admin commands except create-key):
  LATCHKEY_ADMIN_URL   base URL of the admin listener (default ${DEFAULT_ADMIN_URL}); or --admin-url URL
  LATCHKEY_API_KEY     API key lk_<id>.<secret>; or --api-key KEY (the environment is preferred:
                       command-line flags are visible to other users in \`ps\`)
Output: a table, or with --json the admin API's JSON answer. Errors print their catalogue code
(e.g. LK_AUTH_INVALID, LK_APP_NOT_FOUND) and exit 1; usage errors exit 2.`;

const ADMIN_HELP: Record<string, string> = {
  admin: `Usage: latchkey admin <group> <verb> [options] [--json]

Groups:
  create-key [--tenant ID] [--name N]       create an API key offline, on the store (no server needed)
  tenant create|list|get                    tenants
  app create|list|get                       applications
  credentials provision|status|revoke|notify-revoked
  registration provision                    server-side profiles
  endpoints list|get                        registered endpoints
  sessions list|kick                        live sessions on the node answering
  server-keys list|add|retire               the server key ring of the node answering
  node show|drain                           the node answering, as bootstrap lists show it; drain it
  bans list|add|remove                      bans of key hashes, IP addresses/CIDRs, applications (root keys only)
  api-keys list|create|delete               admin API keys (root keys only)

Run \`latchkey admin <group> --help\` for details.

${ADMIN_ENV_HELP}`,
  'admin create-key': `Usage: latchkey admin create-key [--tenant TENANT_ID] [--name NAME] [--json]

Creates an admin API key directly in the store (works without a running server, e.g. when the
first key printed at start was lost). Without --tenant the key is a root key. The token
lk_<id>.<secret> is printed once; only its hash is stored.

${CONFIG_FLAGS_HELP}`,
  'admin tenant': `Usage:
  latchkey admin tenant create --name NAME [--id ID] [--json]      (root key)
  latchkey admin tenant list [--json]
  latchkey admin tenant get --id TENANT_ID [--json]

${ADMIN_ENV_HELP}`,
  'admin app': `Usage:
  latchkey admin app create --tenant TENANT_ID --name NAME [--id ID] [--token APP_TOKEN]
                            [--credentials trustful|internal|PLUGIN] [--profile-schema FILE.avsc] [--json]
  latchkey admin app list --tenant TENANT_ID [--json]
  latchkey admin app get --id APP_ID [--json]

${ADMIN_ENV_HELP}`,
  'admin credentials': `Usage:
  latchkey admin credentials provision --app APP_ID --key PUBLIC_KEY.pem [--server-profile FILE.json] [--json]
  latchkey admin credentials status --app APP_ID --id KEY_HASH [--json]
  latchkey admin credentials revoke --app APP_ID --id KEY_HASH [--json]
      ends the endpoint's live session and refuses reconnects (terminal)
  latchkey admin credentials notify-revoked --app APP_ID --id KEY_HASH [--json]
      an external credentials store revoked them: drop cached status, end sessions

${ADMIN_ENV_HELP}`,
  'admin registration': `Usage:
  latchkey admin registration provision --app APP_ID (--id KEY_HASH | --key PUBLIC_KEY.pem)
                                        --server-profile FILE.json [--json]

${ADMIN_ENV_HELP}`,
  'admin endpoints': `Usage:
  latchkey admin endpoints list --app APP_ID [--limit N] [--cursor CURSOR] [--json]
      one page (default 100, at most 1000); the next page's cursor is printed on stderr
  latchkey admin endpoints get --app APP_ID --id KEY_HASH [--json]

${ADMIN_ENV_HELP}`,
  'admin sessions': `Usage:
  latchkey admin sessions list --app APP_ID [--json]
  latchkey admin sessions kick --app APP_ID --id KEY_HASH [--json]
      ends the endpoint's live session (LK_SESSION_KICKED); it may reconnect

${ADMIN_ENV_HELP}`,
  'admin node': `Usage (root key; the node that answers):
  latchkey admin node show [--json]     id, access point id, URL, priority, weight, load, draining
  latchkey admin node drain [--json]    leave the bootstrap lists and REDIRECT every endpoint to
                                        another node; the process keeps running (stop it after)`,
  'admin server-keys': `Usage (root key; the key ring of the node that answers):
  latchkey admin server-keys list [--json]
  latchkey admin server-keys add [--json]              add a key and make it active
  latchkey admin server-keys retire --id KEY_ID [--json]

${ADMIN_ENV_HELP}`,
  'admin bans': `Usage (root key; bans apply on every node):
  latchkey admin bans list [--json]
  latchkey admin bans add --kind keyHash|ip|app --value VALUE --reason TEXT
                          [--expires-in SECONDS | --expires-at TIME] [--json]
      VALUE: a key hash, an IPv4/IPv6 address or CIDR (10.0.0.0/8), or an application id.
      TIME: ISO 8601 (2030-01-31T12:00:00Z) or milliseconds since the epoch. Without an expiry the
      ban lasts until removed. Matching live sessions end at once (LK_BANNED); an IP ban turns the
      WebSocket upgrade away (HTTP 403), a key hash or application ban refuses the handshake
      before any RSA work. Adding a ban of the same kind and value replaces it.
  latchkey admin bans remove --kind keyHash|ip|app --value VALUE [--json]

${ADMIN_ENV_HELP}`,
  'admin api-keys': `Usage (root key):
  latchkey admin api-keys list [--json]
  latchkey admin api-keys create --name NAME [--tenant TENANT_ID] [--json]   prints the token once
  latchkey admin api-keys delete --id KEY_ID [--json]

${ADMIN_ENV_HELP}`,
};

const CLI_ONLY = new Set(['config', 'name', 'id', 'tenant', 'token', 'credentials', 'profile-schema', 'app', 'key', 'server-profile', 'out', 'admin-url', 'api-key', 'limit', 'cursor']);

function configFrom(p: Parsed): Config {
  const flags: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.opts)) {
    if (CLI_ONLY.has(k)) continue;
    const field = Object.hasOwn(flagNames, k) ? flagNames[k] : undefined;
    if (!field) throw new LatchkeyError('LK_CONFIG_UNKNOWN_KEY', `--${k}`);
    flags[field] = v;
  }
  return loadConfig({ flags, ...(p.opts.config ? { configFile: p.opts.config } : {}) });
}

function need(p: Parsed, name: string): string {
  const v = p.opts[name];
  if (!v) throw new LatchkeyError('LK_CLI_USAGE', `--${name} is required`);
  return v;
}

function readFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new LatchkeyError('LK_BAD_ARGUMENT', `${file}: ${(err as Error).message}`);
  }
}

function print(p: Parsed, value: unknown, table: Array<Record<string, unknown>>): void {
  if (p.bools.has('json')) {
    process.stdout.write(JSON.stringify(value, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('base64') : v), 2) + '\n');
    return;
  }
  if (table.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cols = Object.keys(table[0]!);
  const cell = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...table.map((r) => cell(r[c]).length)));
  const line = (vals: string[]): string => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd() + '\n';
  process.stdout.write(line(cols.map((c) => c.toUpperCase())));
  for (const r of table) process.stdout.write(line(cols.map((c) => cell(r[c]))));
}

function quietLogger(): Logger {
  return pino({ level: 'warn' }, pino.destination(2));
}

async function withStore<T>(p: Parsed, fn: (store: Store, services: string[]) => Promise<T>): Promise<T> {
  const config = configFrom(p);
  const log = quietLogger();
  const store = await openStore(config, log);
  try {
    const services = [...(await loadCredentialsServices(config, store, log)).keys()];
    return await fn(store, services);
  } finally {
    await store.close();
  }
}

async function serve(p: Parsed): Promise<void> {
  const config = configFrom(p);
  const log = pino({ level: config.logLevel, base: { service: 'latchkey' } });
  log.info({ config: redactConfig(config) }, 'starting');
  let fatalHooks: FatalHooks | null = null;
  installFatalHandler(log, () => fatalHooks);
  const server = await build(config, log);
  fatalHooks = { stopListening: () => server.gateway.stopListening(), close: () => server.abort() };
  const shown = (h: string): string => (h === '0.0.0.0' || h === '::' ? 'localhost' : h);
  // The listening line is printed at every level but silent: operators and scripts wait for it.
  const announce = config.logLevel === 'silent' ? log : log.child({}, { level: 'info' });
  announce.info({ gateway: `ws://${shown(config.host)}:${server.port}/ep/v1`, admin: `http://${shown(config.adminHost)}:${server.adminPort}`, bind: config.host, port: server.port, adminPort: server.adminPort, uws: server.gateway.native ? 'native' : 'fallback' }, 'listening');
  if (server.firstApiKey) {
    process.stderr.write(`latchkey: first root admin API key (shown once, only its hash is stored):\n  ${server.firstApiKey}\n  try: curl -H 'Authorization: Bearer ${server.firstApiKey}' http://${shown(config.adminHost)}:${server.adminPort}/admin/v1/tenants\n`);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    server.close().then(
      () => {
        log.info('stopped');
        log.flush();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function keygen(p: Parsed): Promise<void> {
  const kind = p.words[1];
  if (kind === 'endpoint') {
    const prefix = need(p, 'out');
    const keyFile = `${prefix}.key.pem`;
    const pubFile = `${prefix}.pub.pem`;
    if (!p.bools.has('force') && (fs.existsSync(keyFile) || fs.existsSync(pubFile))) {
      throw new LatchkeyError('LK_CONFLICT', `${keyFile} or ${pubFile} exists; use --force to overwrite`);
    }
    const pair = await generateRsaKeyPair();
    fs.mkdirSync(path.dirname(path.resolve(keyFile)), { recursive: true });
    fs.writeFileSync(keyFile, pair.privateKeyPem, { mode: 0o600 });
    fs.chmodSync(keyFile, 0o600);
    fs.writeFileSync(pubFile, pair.publicKeyPem, { mode: 0o644 });
    print(p, { keyHash: pair.keyHash, privateKey: keyFile, publicKey: pubFile }, [{ keyHash: pair.keyHash, privateKey: keyFile, publicKey: pubFile }]);
    return;
  }
  if (kind === 'server') {
    const config = configFrom(p);
    const dir = path.resolve(config.dataDir, 'keys');
    const existed = fs.existsSync(path.join(dir, 'keyring.json'));
    const ring = await KeyRing.loadOrCreate(dir);
    const info = existed ? await ring.add() : ring.active;
    const rows = ring.list().map((k) => ({ id: k.id, status: k.status, createdAt: new Date(k.createdAt).toISOString(), new: k.id === info.id ? 'yes' : '' }));
    print(p, { active: info.id, keys: rows }, rows);
    return;
  }
  throw new LatchkeyError('LK_CLI_USAGE', 'keygen endpoint|server');
}

// --- admin: the admin REST API of a running server (and create-key, offline) ---

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
const serverKeyRow = (k: ServerKeyView) => ({ id: k.id, status: k.status, createdAt: iso(k.createdAt) });

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
  'server-keys': {
    list: {
      flags: [],
      async run(c, p) {
        const r = await c.listServerKeys();
        print(p, r, r.items.map(serverKeyRow));
      },
    },
    add: {
      flags: [],
      async run(c, p) {
        const k = await c.addServerKey();
        print(p, k, [serverKeyRow(k)]);
      },
    },
    retire: {
      flags: ['id'],
      async run(c, p) {
        const k = await c.retireServerKey(need(p, 'id'));
        print(p, k, [serverKeyRow(k)]);
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

async function admin(p: Parsed): Promise<void> {
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

async function run(argv: string[]): Promise<void> {
  const p = parseArgs(argv);
  const cmd = p.words[0] ?? '';
  const sub = p.words[1] ?? '';
  if (p.bools.has('help') || cmd === 'help' || cmd === '') {
    const words = cmd === 'help' ? p.words.slice(1) : p.words;
    const topic = words[0] === 'admin' && words[1] ? `admin ${words[1]}` : (words[0] ?? '');
    const texts = topic.startsWith('admin') ? ADMIN_HELP : HELP;
    const text = Object.hasOwn(texts, topic) ? texts[topic] : undefined;
    if (text === undefined) throw new LatchkeyError('LK_CLI_USAGE', `unknown command ${topic}`);
    process.stdout.write(text + '\n');
    return;
  }
  switch (cmd) {
    case 'serve':
      return serve(p);
    case 'keygen':
      return keygen(p);
    case 'tenant':
      return withStore(p, async (store) => {
        if (sub === 'create') {
          const t = await createTenant(store, { name: need(p, 'name'), ...(p.opts.id ? { id: p.opts.id } : {}) });
          print(p, t, [{ id: t.id, name: t.name }]);
        } else if (sub === 'list') {
          const ts = await store.listTenants();
          print(p, ts, ts.map((t) => ({ id: t.id, name: t.name })));
        } else throw new LatchkeyError('LK_CLI_USAGE', 'tenant create|list');
      });
    case 'app':
      return withStore(p, async (store, services) => {
        if (sub === 'create') {
          const a = await createApplication(
            store,
            {
              tenantId: need(p, 'tenant'),
              name: need(p, 'name'),
              ...(p.opts.id ? { id: p.opts.id } : {}),
              ...(p.opts.token ? { appToken: p.opts.token } : {}),
              ...(p.opts.credentials ? { credentialsService: p.opts.credentials } : {}),
              profileSchema: p.opts['profile-schema'] ? readFile(p.opts['profile-schema']) : null,
            },
            services,
          );
          print(p, a, [{ id: a.id, tenant: a.tenantId, name: a.name, appToken: a.appToken, credentials: a.credentialsService }]);
        } else if (sub === 'list') {
          const as = await store.listApplications(need(p, 'tenant'));
          print(p, as, as.map((a) => ({ id: a.id, name: a.name, appToken: a.appToken, credentials: a.credentialsService })));
        } else throw new LatchkeyError('LK_CLI_USAGE', 'app create|list');
      });
    case 'credentials':
      return withStore(p, async (store) => {
        const appId = need(p, 'app');
        if (sub === 'provision') {
          const c = await provisionCredentials(store, appId, readFile(need(p, 'key')));
          const reg = p.opts['server-profile'] ? await provisionRegistration(store, appId, c.credentialsId, readFile(p.opts['server-profile'])) : null;
          print(p, { credentials: c, registration: reg }, [{ credentialsId: c.credentialsId, status: c.status, serverProfile: reg ? 'yes' : 'no' }]);
        } else if (sub === 'show') {
          const id = need(p, 'id');
          const c = await store.getCredentials(appId, id);
          if (!c) throw new LatchkeyError('LK_NOT_FOUND', `credentials ${id}`);
          print(p, c, [{ credentialsId: c.credentialsId, status: c.status, endpoint: c.endpointId }]);
        } else throw new LatchkeyError('LK_CLI_USAGE', 'credentials provision|show');
      });
    case 'registration':
      return withStore(p, async (store) => {
        if (sub !== 'provision') throw new LatchkeyError('LK_CLI_USAGE', 'registration provision');
        const appId = need(p, 'app');
        const id = p.opts.id ?? (p.opts.key ? keyHashId(toSpkiDer(readFile(p.opts.key))) : '');
        if (!isKeyHashId(id)) throw new LatchkeyError('LK_CLI_USAGE', '--id KEY_HASH or --key PUBLIC_KEY.pem is required');
        const r = await provisionRegistration(store, appId, id, readFile(need(p, 'server-profile')));
        print(p, r, [{ credentialsId: r.credentialsId, serverProfile: r.serverProfileBody }]);
      });
    case 'admin':
      return admin(p);
    case 'bootstrap-key': {
      const config = configFrom(p);
      const file = config.bootstrapKeyFile || path.resolve(config.dataDir, 'bootstrap', 'bootstrap-key.pem');
      const { key } = await BootstrapKey.loadOrCreate(file);
      const pem = derToPem(key.spkiDer, 'PUBLIC KEY');
      if (p.bools.has('json')) process.stdout.write(JSON.stringify({ keyId: key.id, file, publicKeyPem: pem, publicKeyDer: key.spkiDer.toString('base64') }) + '\n');
      else process.stdout.write(`# bootstrap key ${key.id} (${file})\n${pem}`);
      return;
    }
    case 'seed':
      return withStore(p, async (store, services) => {
        const file = p.words[1];
        if (!file) throw new LatchkeyError('LK_CLI_USAGE', 'seed FILE');
        const res = await applySeed(store, file, services);
        print(p, res, [{ ...res }]);
      });
    default:
      throw new LatchkeyError('LK_CLI_USAGE', `unknown command ${cmd}`);
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  const code = err instanceof LatchkeyError ? err.code : (err as { code?: unknown })?.code;
  const shown = isErrorCode(code) ? code : 'LK_INTERNAL';
  process.stderr.write(`latchkey: ${shown}: ${(err as Error).message}\n`);
  if (shown === 'LK_INTERNAL' && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  process.exit(shown === 'LK_CLI_USAGE' || shown === 'LK_CONFIG_UNKNOWN_KEY' || shown === 'LK_CONFIG_INVALID_VALUE' ? 2 : 1);
});
