/**
 * `latchkey admin ...`: the real CLI binary (dist/src/main.js) against an in-process server's
 * admin API: tenants, applications, credentials from a key file, a live session, revocation,
 * server keys and API keys; table and --json output; a bad API key and an unreachable URL exit 1
 * with their codes; `admin create-key` works offline on the store and its token authenticates.
 *
 * The server runs in this process, so the CLI must run asynchronously (spawn, not spawnSync: a
 * blocked event loop could not answer the CLI's requests).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, loadEndpointKeys } from '../../src/sdk/index.js';
import { startHarness, tempDir, type Harness } from '../helpers/harness.js';
import { cli, ROOT, type CliResult } from '../helpers/process.js';
import { makeEndpointKey } from '../helpers/wire-client.js';

const MAIN = path.join(ROOT, 'dist/src/main.js');
// Every CLI run is a fresh Node process (~0.3 s); tests that run many get more than the default.

/** Run the CLI without blocking this process's event loop (the server under test lives here). */
function run(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`latchkey ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

let h: Harness;
let env: Record<string, string>;
const dir = tempDir('latchkey-cli-admin-');

async function ok(args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
  const r = await run(args, { ...env, ...extraEnv });
  expect(r.status, `latchkey ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function json<T>(args: string[], extraEnv: Record<string, string> = {}): Promise<T> {
  return JSON.parse(await ok([...args, '--json'], extraEnv)) as T;
}

/** Header row and data rows of a printed table. */
function table(out: string): { header: string[]; rows: string[][] } {
  const lines = out.trimEnd().split('\n');
  return { header: lines[0]!.split(/\s{2,}/), rows: lines.slice(1).map((l) => l.split(/\s{2,}/)) };
}

async function until(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  h = await startHarness();
  env = { LATCHKEY_ADMIN_URL: h.adminUrl, LATCHKEY_API_KEY: h.rootKey };
});
afterAll(async () => {
  await h?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('latchkey admin (against a running server)', { timeout: 60_000 }, () => {
  const key = makeEndpointKey();
  const keyFile = path.join(dir, 'ep.pub.pem');

  it('creates a tenant (table output with a header row) and reads it back', async () => {
    const t = table(await ok(['admin', 'tenant', 'create', '--id', 'acme', '--name', 'Acme Corp']));
    expect(t.header).toEqual(['ID', 'NAME', 'CREATEDAT']);
    expect(t.rows[0]!.slice(0, 2)).toEqual(['acme', 'Acme Corp']);
    const list = await json<{ items: Array<{ id: string }> }>(['admin', 'tenant', 'list']);
    expect(list.items.map((x) => x.id)).toContain('acme');
    expect(await json(['admin', 'tenant', 'get', '--id', 'acme'])).toMatchObject({ id: 'acme', name: 'Acme Corp' });
    const missing = await run(['admin', 'tenant', 'get', '--id', 'nope'], env);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^latchkey: LK_TENANT_NOT_FOUND: /);
    const dup = await run(['admin', 'tenant', 'create', '--id', 'acme', '--name', 'again'], env);
    expect([dup.status, dup.stderr.includes('LK_CONFLICT')]).toEqual([1, true]);
  });

  it('creates an application with a profile schema and lists it', async () => {
    const schemaFile = path.join(dir, 'p.avsc');
    fs.writeFileSync(schemaFile, JSON.stringify({ type: 'record', name: 'P', fields: [] }));
    const app = await json<{ id: string; tenantId: string; appToken: string; credentialsService: string; profileSchema: unknown }>(
      ['admin', 'app', 'create', '--tenant', 'acme', '--id', 'thermo', '--name', 'Thermostats', '--token', 'thermo-token-123', '--credentials', 'internal', '--profile-schema', schemaFile],
    );
    expect(app).toMatchObject({ id: 'thermo', tenantId: 'acme', appToken: 'thermo-token-123', credentialsService: 'internal', profileSchema: { type: 'record', name: 'P' } });
    const t = table(await ok(['admin', 'app', 'list', '--tenant', 'acme']));
    expect(t.header).toEqual(['ID', 'TENANT', 'NAME', 'APPTOKEN', 'CREDENTIALS']);
    expect(t.rows).toEqual([['thermo', 'acme', 'Thermostats', 'thermo-token-123', 'internal']]);
    expect(await json(['admin', 'app', 'get', '--id', 'thermo'])).toMatchObject({ id: 'thermo' });
    const bad = await run(['admin', 'app', 'create', '--tenant', 'acme', '--name', 'x', '--credentials', 'nope'], env);
    expect([bad.status, bad.stderr.includes('LK_BAD_CREDENTIALS_SERVICE')]).toEqual([1, true]);
  });

  it('provisions credentials from a key file, serves a session, and revokes it', async () => {
    fs.writeFileSync(keyFile, key.publicKeyPem);
    const profileFile = path.join(dir, 'server-profile.json');
    fs.writeFileSync(profileFile, JSON.stringify({ room: 'hall' }));
    const prov = await json<{ credentials: { credentialsId: string; status: string }; registration: { serverProfile: unknown } }>(
      ['admin', 'credentials', 'provision', '--app', 'thermo', '--key', keyFile, '--server-profile', profileFile],
    );
    expect(prov).toMatchObject({ credentials: { credentialsId: key.keyHash, status: 'AVAILABLE' }, registration: { serverProfile: { room: 'hall' } } });
    const again = await run(['admin', 'credentials', 'provision', '--app', 'thermo', '--key', keyFile], env);
    expect([again.status, again.stderr.includes('LK_CRED_EXISTS')]).toEqual([1, true]);

    const status = table(await ok(['admin', 'credentials', 'status', '--app', 'thermo', '--id', key.keyHash]));
    expect(status.header).toEqual(['CREDENTIALSID', 'STATUS', 'ENDPOINT', 'UPDATEDAT']);
    expect(status.rows[0]!.slice(0, 3)).toEqual([key.keyHash, 'AVAILABLE', '-']);

    // A live endpoint with these credentials.
    const keys = await loadEndpointKeys(key.privateKeyPem, key.publicKeyPem);
    const client = new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: 'thermo-token-123', serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys, sendPublicKey: 'auto', reconnect: false });
    try {
      const r = await client.connect({ profile: new Uint8Array(0) });
      expect(r).toMatchObject({ ok: true });
      const sessions = await json<{ items: Array<{ keyHash: string; keepAliveSec: number }> }>(['admin', 'sessions', 'list', '--app', 'thermo']);
      expect(sessions.items.map((s) => s.keyHash)).toEqual([key.keyHash]);
      const st = table(await ok(['admin', 'sessions', 'list', '--app', 'thermo']));
      expect(st.header).toEqual(['SESSIONID', 'KEYHASH', 'ESTABLISHEDAT', 'LASTSEEN', 'KEEPALIVESEC']);
      expect(st.rows.length).toBe(1);
      expect(await json(['admin', 'credentials', 'status', '--app', 'thermo', '--id', key.keyHash])).toMatchObject({ status: 'IN_USE', endpointId: key.keyHash });
      const eps = await json<{ items: Array<{ keyHash: string; connected: boolean; serverProfile: unknown }>; next: string | null }>(['admin', 'endpoints', 'list', '--app', 'thermo', '--limit', '10']);
      expect(eps).toMatchObject({ items: [{ keyHash: key.keyHash, connected: true, serverProfile: { room: 'hall' } }], next: null });

      const revoked = await json<{ status: string }>(['admin', 'credentials', 'revoke', '--app', 'thermo', '--id', key.keyHash]);
      expect(revoked.status).toBe('REVOKED');
      // Revocation ends the live session.
      await until(async () => (await json<{ items: unknown[] }>(['admin', 'sessions', 'list', '--app', 'thermo'])).items.length === 0);
      expect(await ok(['admin', 'sessions', 'list', '--app', 'thermo'])).toBe('(none)\n');
    } finally {
      await client.close().catch(() => undefined);
    }
    expect(await json(['admin', 'credentials', 'notify-revoked', '--app', 'thermo', '--id', key.keyHash])).toEqual({ appId: 'thermo', credentialsId: key.keyHash, notified: true });
    expect(await json(['admin', 'sessions', 'kick', '--app', 'thermo', '--id', key.keyHash])).toMatchObject({ kicked: true });
  });

  it('provisions a registration and reads an endpoint', async () => {
    const other = makeEndpointKey();
    const f = path.join(dir, 'sp2.json');
    fs.writeFileSync(f, JSON.stringify({ room: 'attic' }));
    expect(await json(['admin', 'registration', 'provision', '--app', 'thermo', '--id', other.keyHash, '--server-profile', f])).toMatchObject({ credentialsId: other.keyHash, serverProfile: { room: 'attic' } });
    expect(await json(['admin', 'endpoints', 'get', '--app', 'thermo', '--id', key.keyHash])).toMatchObject({ keyHash: key.keyHash, connected: false });
    const notJson = path.join(dir, 'bad.json');
    fs.writeFileSync(notJson, '{nope');
    const bad = await run(['admin', 'registration', 'provision', '--app', 'thermo', '--id', other.keyHash, '--server-profile', notJson], env);
    expect([bad.status, bad.stderr.includes('LK_BAD_SERVER_PROFILE')]).toEqual([1, true]);
  });

  it('lists server keys and manages API keys', async () => {
    const node = await json<{ id: string; draining: boolean; serverKeyId: string; frameCipher: string }>(['admin', 'node', 'show']);
    expect(node).toMatchObject({ id: h.server.nodeId, draining: false, serverKeyId: h.serverKeyId });
    expect(table(await ok(['admin', 'node', 'show'])).header).toEqual(['ID', 'ACCESSPOINTID', 'URL', 'PRIORITY', 'WEIGHT', 'SESSIONS', 'DRAINING']);
    const sk = table(await ok(['admin', 'server-keys', 'list']));
    expect(sk.header).toEqual(['ID', 'STATUS', 'CREATEDAT', 'SPKI']);
    // The SPKI column is what the SDK's serverKey.spki needs (base64 DER), the one `serve` prints.
    expect(sk.rows).toEqual([[h.serverKeyId, 'active', expect.any(String), Buffer.from(h.serverSpki).toString('base64')]]);
    const keysJson = await json<{ items: Array<{ id: string; status: string; publicKey: string }> }>(['admin', 'server-keys', 'list']);
    expect(keysJson.items[0]).toMatchObject({ id: h.serverKeyId, status: 'active', publicKey: expect.stringContaining('BEGIN PUBLIC KEY') });

    const created = await json<{ id: string; tenantId: string; token: string }>(['admin', 'api-keys', 'create', '--name', 'acme ops', '--tenant', 'acme']);
    expect(created).toMatchObject({ tenantId: 'acme', token: expect.stringMatching(/^lk_/) });
    // A tenant key sees its tenant, and may not use root-only routes.
    expect((await json<{ items: Array<{ id: string }> }>(['admin', 'tenant', 'list'], { LATCHKEY_API_KEY: created.token })).items.map((t) => t.id)).toEqual(['acme']);
    const forbidden = await run(['admin', 'server-keys', 'list'], { ...env, LATCHKEY_API_KEY: created.token });
    expect([forbidden.status, forbidden.stderr.includes('LK_FORBIDDEN')]).toEqual([1, true]);
    expect((await json<{ items: Array<{ id: string }> }>(['admin', 'api-keys', 'list'])).items.map((k) => k.id)).toContain(created.id);
    expect(await json(['admin', 'api-keys', 'delete', '--id', created.id])).toEqual({ id: created.id, deleted: true });
    const gone = await run(['admin', 'tenant', 'list'], { ...env, LATCHKEY_API_KEY: created.token });
    expect([gone.status, gone.stderr.includes('LK_AUTH_INVALID')]).toEqual([1, true]);
  });

  it('adds, lists and removes bans (a CIDR travels percent-encoded); bad values exit 1 with LK_BAD_ARGUMENT', async () => {
    const k = makeEndpointKey();
    const added = await json<{ kind: string; value: string; reason: string; expiresAt: number | null; createdAt: number; createdBy: string }>(['admin', 'bans', 'add', '--kind', 'ip', '--value', '10.1.2.3/8', '--reason', 'scanner', '--expires-in', '3600']);
    expect(added).toMatchObject({ kind: 'ip', value: '10.0.0.0/8', reason: 'scanner' });
    expect(added.expiresAt! - added.createdAt).toBe(3600_000);
    const t = table(await ok(['admin', 'bans', 'add', '--kind', 'keyHash', '--value', k.keyHash, '--reason', 'stolen key', '--expires-at', '2099-01-01T00:00:00Z']));
    expect(t.header).toEqual(['KIND', 'VALUE', 'REASON', 'EXPIRESAT', 'CREATEDBY']);
    expect(t.rows[0]!.slice(0, 4)).toEqual(['keyHash', k.keyHash, 'stolen key', '2099-01-01T00:00:00.000Z']);
    const list = table(await ok(['admin', 'bans', 'list']));
    expect(list.header).toEqual(['KIND', 'VALUE', 'REASON', 'EXPIRESAT', 'CREATEDBY', 'CREATEDAT']);
    expect(list.rows.map((r) => r.slice(0, 2))).toEqual([['ip', '10.0.0.0/8'], ['keyHash', k.keyHash]]);
    expect(await json(['admin', 'bans', 'remove', '--kind', 'ip', '--value', '10.0.0.0/8'])).toEqual({ kind: 'ip', value: '10.0.0.0/8', removed: true });
    expect(await json(['admin', 'bans', 'remove', '--kind', 'keyHash', '--value', k.keyHash])).toMatchObject({ removed: true });
    expect(await ok(['admin', 'bans', 'list'])).toBe('(none)\n');
    const missing = await run(['admin', 'bans', 'remove', '--kind', 'ip', '--value', '10.0.0.0/8'], env);
    expect([missing.status, missing.stderr.includes('LK_NOT_FOUND')]).toEqual([1, true]);
    const bad = await run(['admin', 'bans', 'add', '--kind', 'ip', '--value', '999.0.0.1', '--reason', 'x'], env);
    expect([bad.status, bad.stderr.includes('LK_BAD_ARGUMENT')]).toEqual([1, true]);
    const both = await run(['admin', 'bans', 'add', '--kind', 'ip', '--value', '10.0.0.1', '--reason', 'x', '--expires-in', '5', '--expires-at', '2099-01-01'], env);
    expect([both.status, both.stderr.includes('LK_CLI_USAGE')]).toEqual([2, true]);
  });

  it('a bad API key exits 1 with LK_AUTH_INVALID; a missing one with LK_AUTH_REQUIRED', async () => {
    const bad = await run(['admin', 'tenant', 'list'], { ...env, LATCHKEY_API_KEY: 'lk_AAAAAAAAAAAAAAAA.' + 'A'.repeat(43) });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^latchkey: LK_AUTH_INVALID: /);
    expect(bad.stdout).toBe('');
    // --api-key overrides the environment.
    const flag = await run(['admin', 'tenant', 'list', '--api-key', 'garbage'], env);
    expect([flag.status, flag.stderr.includes('LK_AUTH_INVALID')]).toEqual([1, true]);
    const none = await run(['admin', 'tenant', 'list'], { LATCHKEY_ADMIN_URL: h.adminUrl, LATCHKEY_API_KEY: '' });
    expect([none.status, none.stderr.includes('LK_AUTH_REQUIRED')]).toEqual([1, true]);
  });

  it('an unreachable admin URL exits 1 with LK_ADMIN_UNREACHABLE naming the URL', async () => {
    const blocked = await run(['admin', 'tenant', 'list'], { ...env, LATCHKEY_ADMIN_URL: 'http://127.0.0.1:1' });
    expect(blocked.status).toBe(1);
    expect(blocked.stderr).toMatch(/^latchkey: LK_ADMIN_UNREACHABLE: .*http:\/\/127\.0\.0\.1:1\b/);
    // A port nobody listens on (taken from the OS, then released).
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const refused = await run(['admin', 'tenant', 'list', '--admin-url', `http://127.0.0.1:${port}`], env);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('LK_ADMIN_UNREACHABLE');
    expect(refused.stderr).toContain(`http://127.0.0.1:${port}`);
    expect(refused.stderr).toContain('ECONNREFUSED');
  });

  it('usage errors exit 2: unknown groups, verbs and options', async () => {
    for (const args of [['admin'], ['admin', 'frob'], ['admin', 'tenant', 'frob'], ['admin', 'tenant', 'list', '--data-dir', 'x'], ['admin', 'tenant', 'create']]) {
      const r = await run(args, env);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('LK_CLI_USAGE');
    }
    const badUrl = await run(['admin', 'tenant', 'list', '--admin-url', 'not a url'], env);
    expect([badUrl.status, badUrl.stderr.includes('LK_CLI_USAGE')]).toEqual([2, true]);
  });
});

describe('latchkey admin --help', { timeout: 60_000 }, () => {
  it('has help for admin and every admin group', () => {
    for (const group of ['', 'create-key', 'tenant', 'app', 'credentials', 'registration', 'endpoints', 'sessions', 'server-keys', 'node', 'bans', 'api-keys']) {
      const r = cli(['admin', ...(group ? [group] : []), '--help']);
      expect(r.status, group).toBe(0);
      expect(r.stdout, group).toContain('Usage');
    }
    expect(cli(['admin', 'tenant', 'create', '--help']).stdout).toContain('latchkey admin tenant create');
    expect(cli(['help', 'admin', 'sessions']).stdout).toContain('latchkey admin sessions kick');
    expect(cli(['admin', 'bans', '--help']).stdout).toContain('latchkey admin bans remove --kind');
    expect(cli(['admin', 'frob', '--help']).status).toBe(2);
  });
});

describe('latchkey admin create-key (offline, on the store)', { timeout: 60_000 }, () => {
  it('creates root and tenant keys whose tokens authenticate against a server on the same data dir', async () => {
    const dataDir = tempDir('latchkey-cli-key-');
    const denv = { LATCHKEY_DATA_DIR: dataDir };
    const root = cli(['admin', 'create-key', '--name', 'ops root', '--json'], denv);
    expect(root.status, root.stderr).toBe(0);
    const rootKey = JSON.parse(root.stdout) as { id: string; tenantId: string | null; name: string; token: string };
    expect(rootKey).toMatchObject({ tenantId: null, name: 'ops root', token: expect.stringMatching(/^lk_[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/) });
    expect(rootKey.token.startsWith(`lk_${rootKey.id}.`)).toBe(true);

    expect(cli(['tenant', 'create', '--id', 'acme', '--name', 'Acme', '--data-dir', dataDir]).status).toBe(0);
    const t = cli(['admin', 'create-key', '--tenant', 'acme', '--data-dir', dataDir]);
    expect(t.status, t.stderr).toBe(0);
    const tt = table(t.stdout);
    expect(tt.header).toEqual(['ID', 'TENANT', 'NAME', 'TOKEN']);
    expect(tt.rows[0]![1]).toBe('acme');
    expect(t.stderr).toContain('shown once');
    const tenantToken = tt.rows[0]![3]!;
    const missing = cli(['admin', 'create-key', '--tenant', 'nope'], denv);
    expect([missing.status, missing.stderr.includes('LK_TENANT_NOT_FOUND')]).toEqual([1, true]);

    const h2 = await startHarness({}, dataDir);
    try {
      // Keys existed, so the server made no first key of its own.
      expect(h2.rootKey).toBe('');
      const asRoot = await run(['admin', 'api-keys', 'list', '--json'], { LATCHKEY_ADMIN_URL: h2.adminUrl, LATCHKEY_API_KEY: rootKey.token });
      expect(asRoot.status, asRoot.stderr).toBe(0);
      expect((JSON.parse(asRoot.stdout) as { items: Array<{ name: string }> }).items.map((k) => k.name).sort()).toEqual(['ops root', expect.stringContaining('create-key')].sort());
      const asTenant = await run(['admin', 'tenant', 'list', '--json'], { LATCHKEY_ADMIN_URL: h2.adminUrl, LATCHKEY_API_KEY: tenantToken });
      expect(asTenant.status, asTenant.stderr).toBe(0);
      expect((JSON.parse(asTenant.stdout) as { items: Array<{ id: string }> }).items.map((x) => x.id)).toEqual(['acme']);
    } finally {
      await h2.close();
    }
  });
});
