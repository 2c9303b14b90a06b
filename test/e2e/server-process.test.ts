/**
 * The operator's path, end to end, with real processes: `latchkey serve` on the embedded defaults,
 * provisioning through the CLI, an SDK endpoint that connects, registers, pings and disconnects,
 * then a restart that must keep every credential, registration and profile.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EndpointClient, loadEndpointKeys } from '../../src/sdk/index.js';
import { sha256 } from '../../src/crypto/keys.js';
import { tempDir } from '../helpers/harness.js';
import { cli, cliJson, startServerProcess, type ServerProcess } from '../helpers/process.js';

const dir = tempDir('latchkey-e2e-');
const env = { LATCHKEY_DATA_DIR: path.join(dir, 'data'), LATCHKEY_LOG_LEVEL: 'info' };
let server: ServerProcess | null = null;

afterAll(async () => {
  await server?.stop('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

async function health(port: number): Promise<Record<string, unknown>> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  return (await r.json()) as Record<string, unknown>;
}

describe('latchkey serve (real process)', () => {
  it('starts on the embedded defaults, serves a provisioned endpoint, and keeps everything across a restart', async () => {
    server = await startServerProcess(env);
    expect(server.logs.some((l) => l.includes('"gateway":"ws://127.0.0.1:'))).toBe(true);
    expect(server.logs.some((l) => l.includes('empty store: created tenant'))).toBe(true);
    expect((await health(server.adminPort)).status).toBe('ok');
    expect((await health(server.adminPort)).uws).toBe('native');

    // Provision with the CLI while the server runs (LMDB is multi-process).
    cliJson(['tenant', 'create', '--id', 'acme', '--name', 'Acme'], env);
    const app = cliJson<{ appToken: string; id: string }>(['app', 'create', '--tenant', 'acme', '--id', 'thermo', '--name', 'Thermostats', '--credentials', 'internal'], env);
    const prefix = path.join(dir, 'ep1');
    const kg = cliJson<{ keyHash: string }>(['keygen', 'endpoint', '--out', prefix], env);
    expect((fs.statSync(`${prefix}.key.pem`).mode & 0o777).toString(8)).toBe('600');
    const profilePath = path.join(dir, 'server-profile.json');
    fs.writeFileSync(profilePath, JSON.stringify({ room: 'hall' }));
    const prov = cliJson<{ credentials: { status: string; credentialsId: string } }>(['credentials', 'provision', '--app', 'thermo', '--key', `${prefix}.pub.pem`, '--server-profile', profilePath], env);
    expect(prov.credentials).toMatchObject({ status: 'AVAILABLE', credentialsId: kg.keyHash });
    const keyring = JSON.parse(fs.readFileSync(path.join(dir, 'data/keys/keyring.json'), 'utf8')) as { keys: Array<{ id: string; status: string }> };
    const active = keyring.keys.find((k) => k.status === 'active')!;
    expect((fs.statSync(path.join(dir, `data/keys/${active.id}.key.pem`)).mode & 0o777).toString(8)).toBe('600');
    const serverKey = { id: active.id, spki: fs.readFileSync(path.join(dir, `data/keys/${active.id}.pub.pem`), 'utf8') };

    const keys = await loadEndpointKeys(fs.readFileSync(`${prefix}.key.pem`, 'utf8'), fs.readFileSync(`${prefix}.pub.pem`, 'utf8'));
    const profile = new TextEncoder().encode('{"model":"T-1000"}');
    const connectTo = (port: number): EndpointClient => new EndpointClient({ url: `ws://127.0.0.1:${port}`, appToken: app.appToken, serverKey, keys, sendPublicKey: 'auto' });
    let client = connectTo(server.port);
    // The app was created by another process: the server's negative cache may need its TTL (5 s).
    let r = await client.connect({ profile });
    for (let i = 0; !r.ok && i < 40; i++) {
      await new Promise((res) => setTimeout(res, 250));
      r = await client.connect({ profile });
    }
    expect(r).toMatchObject({ ok: true });
    if (!r.ok) return;
    expect(r.sync?.profileSyncResponse?.responseStatus).toBe('DELTA');
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    await client.close();

    expect(cliJson<{ status: string; endpointId: string }>(['credentials', 'show', '--app', 'thermo', '--id', kg.keyHash], env)).toMatchObject({ status: 'IN_USE', endpointId: kg.keyHash });

    // Restart: SIGTERM must exit 0, and the data must all be there afterwards.
    expect(await server.stop('SIGTERM')).toBe(0);
    server = await startServerProcess(env);
    expect(server.logs.some((l) => l.includes('empty store'))).toBe(false);

    client = connectTo(server.port);
    const again = await client.connect();
    expect(again).toMatchObject({ ok: true });
    const res = await client.sync((req) => {
      req.syncRequestMetaData = { profileHash: sha256(profile), timeout: null };
    });
    expect(res.status).toBe('SUCCESS');
    expect(await client.register(profile)).toMatchObject({ profileSyncResponse: { responseStatus: 'NO_DELTA' } });
    await client.close();
    const shown = cliJson<{ status: string }>(['credentials', 'show', '--app', 'thermo', '--id', kg.keyHash], env);
    expect(shown.status).toBe('IN_USE');

    // The bootstrap path: the operator prints the bootstrap public key (the same after a restart)
    // and an endpoint built with it and the bootstrap URL finds this server by itself.
    const bk = cliJson<{ keyId: string; publicKeyPem: string; file: string }>(['bootstrap-key'], env);
    expect(bk.file).toBe(path.join(dir, 'data/bootstrap/bootstrap-key.pem'));
    expect((fs.statSync(bk.file).mode & 0o777).toString(8)).toBe('600');
    expect(bk.keyId).not.toBe(active.id);
    const viaBootstrap = new EndpointClient({ appToken: app.appToken, keys, bootstrap: { urls: [`http://127.0.0.1:${server.port}`], publicKey: bk.publicKeyPem } });
    expect(await viaBootstrap.connect()).toMatchObject({ ok: true });
    expect(viaBootstrap.accessPoint?.serverKeyId).toBe(active.id);
    await viaBootstrap.close();
    expect(await server.stop('SIGTERM')).toBe(0);
    server = null;
  }, 90_000);

  it('keeps secrets out of its logs', async () => {
    const d = tempDir('latchkey-e2e-');
    const p = await startServerProcess({ LATCHKEY_DATA_DIR: path.join(d, 'data'), LATCHKEY_LOG_LEVEL: 'debug', LATCHKEY_CASSANDRA_PASSWORD: 'sekret-pw-123' });
    try {
      const token = /(lk_[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43})/.exec(p.stderr.join(''))?.[1];
      expect(token).toBeDefined();
      const jsonLogs = p.logs.filter((l) => l.startsWith('{')).join('\n');
      expect(jsonLogs).toContain('"msg":"listening"');
      expect(jsonLogs).not.toContain(token!);
      expect(jsonLogs).not.toContain(token!.split('.')[1]!);
      expect(jsonLogs).not.toContain('sekret-pw-123');
      expect(jsonLogs).not.toContain('PRIVATE KEY');
    } finally {
      await p.stop('SIGTERM');
      fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it('stops with a coded error on bad configuration', () => {
    const r = cli(['serve'], { ...env, LATCHKEY_PORT: 'eighty' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('LK_CONFIG_INVALID_VALUE');
    const u = cli(['serve', '--no-such-flag', '1'], env);
    expect(u.status).toBe(2);
    expect(u.stderr).toContain('LK_CONFIG_UNKNOWN_KEY');
  });

  it('has --help on every command', () => {
    for (const cmd of [[], ['serve'], ['keygen'], ['tenant'], ['app'], ['credentials'], ['registration'], ['seed'], ['admin'], ['bootstrap-key']]) {
      const r = cli([...cmd, '--help']);
      expect(r.status, cmd.join(' ')).toBe(0);
      expect(r.stdout).toContain('Usage');
    }
    const bad = cli(['frobnicate']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('LK_CLI_USAGE');
  });
});
