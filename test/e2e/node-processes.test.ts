/**
 * A multi-process node (`latchkey serve --processes 2`), run as the operator runs it: the real CLI,
 * a primary and two gateway processes sharing the endpoint port. Every flow puts its endpoints on
 * different processes (the kernel picks the process per connection; a test reconnects until it
 * lands where it needs, read from the node-wide session list), with and without Redis:
 * takeover across processes, a live revocation of a session held by the process without the
 * admin listener, attach and events between processes, node-wide /metrics and /healthz, a gateway
 * process killed with SIGKILL (restarted; a revocation made while it was down holds), and the
 * start-up failures that stop a node with a coded error: a taken port (LK_LISTEN_FAILED, before
 * the data directory is touched) and a process that cannot start (no restart loop).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys, type DisconnectInfo, type EndpointKeys, type ReceivedEvent } from '../../src/sdk/index.js';
import { tempDir } from '../helpers/harness.js';
import { cli, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { RedisProcess } from '../helpers/redis-process.js';
import { withTimeout } from '../helpers/ws.js';
import { JEMALLOC_PATHS } from '../../src/node/allocator.js';

const CHAT = 'org.example.Chat';

interface Node {
  server: ServerProcess;
  dataDir: string;
  rootKey: string;
  serverKey: { id: string; spki: Uint8Array };
  trustfulToken: string;
  internal: { id: string; appToken: string };
}

async function api(n: Node, method: string, p: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${n.server.adminPort}${p}`, { method, headers: { authorization: `Bearer ${n.rootKey}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function startNode(env: Record<string, string>): Promise<Node> {
  const dataDir = tempDir('latchkey-nodeproc-');
  const server = await startServerProcess({ LATCHKEY_DATA_DIR: dataDir, LATCHKEY_PROCESSES: '2', LATCHKEY_LOG_LEVEL: 'warn', LATCHKEY_CONTROL_POLL_MS: '300', ...env }, 30_000);
  try {
    return await setUp(server, dataDir);
  } catch (err) {
    // Never leave a node running behind a failed set-up.
    await server.stop('SIGTERM');
    throw err;
  }
}

async function setUp(server: ServerProcess, dataDir: string): Promise<Node> {
  // The key is printed on stderr right after the listening line (stdout): wait for it.
  const deadline = Date.now() + 5000;
  const keyIn = (): string | undefined => /latchkey: first root admin API key[^\n]*\n\s+(\S+)/.exec(server.stderr.join(''))?.[1];
  while (!keyIn() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const rootKey = keyIn();
  if (!rootKey) throw new Error(`no root key printed:\n${server.logs.join('\n')}`);
  const ring = JSON.parse(fs.readFileSync(path.join(dataDir, 'keys', 'keyring.json'), 'utf8')) as { keys: Array<{ id: string; status: string }> };
  const id = ring.keys.find((k) => k.status === 'active')!.id;
  const spki = crypto.createPublicKey(fs.readFileSync(path.join(dataDir, 'keys', `${id}.pub.pem`), 'utf8')).export({ format: 'der', type: 'spki' });
  const n: Node = { server, dataDir, rootKey, serverKey: { id, spki: new Uint8Array(spki) }, trustfulToken: '', internal: { id: '', appToken: '' } };
  const def = await api(n, 'GET', '/admin/v1/applications/default');
  n.trustfulToken = def.body.appToken as string;
  const v = await api(n, 'POST', '/admin/v1/applications/default/verifiers', { pluginTypeName: 'trustful', name: 'dev', jsonConfiguration: {}, isDefault: true });
  expect(v.status).toBe(201);
  const internal = await api(n, 'POST', '/admin/v1/tenants/default/applications', { name: 'allow-list', credentialsService: 'internal' });
  expect(internal.status).toBe(201);
  n.internal = { id: internal.body.id as string, appToken: internal.body.appToken as string };
  return n;
}

interface Live {
  c: EndpointClient;
  keys: EndpointKeys;
  ended: Promise<DisconnectInfo>;
  got: ReceivedEvent[];
}

async function connectOnce(n: Node, appToken: string, keys: EndpointKeys, listen = false): Promise<Live> {
  const c = new EndpointClient({ url: `ws://127.0.0.1:${n.server.port}`, appToken, serverKey: n.serverKey, keys, reconnect: false });
  const ended = new Promise<DisconnectInfo>((resolve) => c.onDisconnect(resolve));
  const got: ReceivedEvent[] = [];
  c.onEvent((e) => got.push(e));
  if (listen) await c.listenEvents([CHAT]);
  const r = await c.connect({ profile: new TextEncoder().encode('{}') });
  if (!r.ok) throw new Error(`connect failed: ${JSON.stringify(r)}`);
  return { c, keys, ended, got };
}

/** Which gateway process holds the live session of `keyHash` (node-wide session list). */
async function processOf(n: Node, appId: string, keyHash: string): Promise<number | undefined> {
  const r = await api(n, 'GET', `/admin/v1/applications/${appId}/sessions`);
  const items = r.body.items as Array<{ keyHash: string; process?: number }>;
  return items.find((i) => i.keyHash === keyHash)?.process;
}

/** Connect `keys` until its session lands on process `want` (the kernel spreads connections by their ports). */
async function connectOn(n: Node, want: number, appId: string, appToken: string, keys: EndpointKeys, listen = false, onOther?: (l: Live) => void): Promise<Live> {
  for (let i = 0; i < 12; i++) {
    const l = await connectOnce(n, appToken, keys, listen);
    const at = await processOf(n, appId, keys.keyHash);
    if (at === want) return l;
    if (onOther) onOther(l);
    else l.c.close();
  }
  throw new Error(`no session landed on process ${want} in 12 tries`);
}

async function provision(n: Node, keys: EndpointKeys): Promise<void> {
  const pem = crypto.createPublicKey({ key: Buffer.from(keys.spki), format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' }).toString();
  const r = await api(n, 'POST', `/admin/v1/applications/${n.internal.id}/credentials`, { publicKey: pem });
  expect(r.status).toBe(201);
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(await cond(), what).toBe(true);
}

const text = (e: ReceivedEvent): string => new TextDecoder().decode(e.data ?? new Uint8Array());

describe.each([['without Redis'], ['with Redis']])('a node of 2 processes %s', (label) => {
  let n: Node;
  // A private redis-server: this node's registry entries and bus traffic stay out of other suites.
  let redis: RedisProcess | null = null;
  beforeAll(async () => {
    if (label === 'with Redis') redis = await RedisProcess.start();
    n = await startNode(redis ? { LATCHKEY_REDIS_URL: redis.url } : {});
  }, 60_000);
  afterAll(async () => {
    expect(await n?.server.stop('SIGTERM')).toBe(0);
    if (n) fs.rmSync(n.dataDir, { recursive: true, force: true });
    await redis?.stop();
  });

  it('lists both processes in /healthz and counts every session in /metrics', async () => {
    const h = (await (await fetch(`http://127.0.0.1:${n.server.adminPort}/healthz`)).json()) as { processes: Array<{ role?: string; index?: number; status?: string }> };
    expect(h.processes.map((p) => p.role ?? p.index)).toEqual(['primary', 0, 1]);
    expect(h.processes.slice(1).every((p) => p.status === 'ok')).toBe(true);
    const a = await connectOn(n, 0, 'default', n.trustfulToken, await generateEndpointKeys());
    const b = await connectOn(n, 1, 'default', n.trustfulToken, await generateEndpointKeys());
    const metrics = await (await fetch(`http://127.0.0.1:${n.server.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/^latchkey_sessions_open 2$/m);
    expect(metrics).toMatch(/^latchkey_node_processes 2$/m);
    // The node announces (bootstrap registry, admin node info) the sessions of both processes.
    await until(async () => (await api(n, 'GET', '/admin/v1/node')).body.sessions === 2, 'node session count 2', 8000);
    a.c.close();
    b.c.close();
  }, 60_000);

  it.runIf(JEMALLOC_PATHS.some((f) => fs.existsSync(f)))('gateway processes run on jemalloc when it is installed (allocator=auto); the primary keeps its malloc', async () => {
    const h = (await (await fetch(`http://127.0.0.1:${n.server.adminPort}/healthz`)).json()) as { processes: Array<{ role?: string; pid?: number }> };
    const maps = (pid: number): string => fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
    const gateways = h.processes.filter((p) => p.role !== 'primary');
    expect(gateways).toHaveLength(2);
    for (const g of gateways) expect(maps(g.pid!)).toMatch(/libjemalloc\.so/);
    expect(maps(n.server.child.pid!)).not.toMatch(/libjemalloc\.so/);
  });

  it('a newer session of a key on the other process replaces the older one (LK_SESSION_REPLACED)', async () => {
    const keys = await generateEndpointKeys();
    let first = await connectOn(n, 0, 'default', n.trustfulToken, keys);
    // A second session that lands on process 0 again replaces the first there; keep the newest.
    const second = await connectOn(n, 1, 'default', n.trustfulToken, keys, false, (l) => {
      first = l;
    });
    expect(await withTimeout(first.ended, 3000, 'older session ended across processes')).toMatchObject({ errorCode: 'LK_SESSION_REPLACED' });
    await second.c.ping();
    expect(await processOf(n, 'default', keys.keyHash)).toBe(1);
    second.c.close();
  }, 60_000);

  it('a revocation taken by the admin process ends a session held by the other process at once', async () => {
    const keys = await generateEndpointKeys();
    await provision(n, keys);
    const s = await connectOn(n, 1, n.internal.id, n.internal.appToken, keys);
    const r = await api(n, 'POST', `/admin/v1/applications/${n.internal.id}/credentials/${keys.keyHash}/revoke`);
    expect(r.status).toBe(200);
    expect(await withTimeout(s.ended, 3000, 'revoked on the other process')).toMatchObject({ reason: 'CREDENTIALS_REVOKED', errorCode: 'LK_CRED_REVOKED' });
    const again = new EndpointClient({ url: `ws://127.0.0.1:${n.server.port}`, appToken: n.internal.appToken, serverKey: n.serverKey, keys, reconnect: false });
    expect(await again.connect()).toMatchObject({ ok: false, errorCode: 'LK_CRED_REVOKED' });
    again.close();
  }, 60_000);

  it('endpoints of one owner on different processes attach and exchange events; another owner sees none', async () => {
    const a = await connectOn(n, 0, 'default', n.trustfulToken, await generateEndpointKeys(), true);
    const b = await connectOn(n, 1, 'default', n.trustfulToken, await generateEndpointKeys(), true);
    const x = await connectOn(n, 1, 'default', n.trustfulToken, await generateEndpointKeys(), true);
    expect(await a.c.attachUser('frank', 't')).toEqual({ ok: true });
    // B joins frank through A's attach with B's endpoint access token (the owner change crosses processes).
    const token = `tok-${crypto.randomUUID()}`;
    await b.c.setEndpointAccessToken(token);
    expect(await a.c.attachEndpoint(token)).toBe(b.keys.keyHash);
    expect(await x.c.attachUser('xavier', 't')).toEqual({ ok: true });
    await a.c.sendEvent(CHAT, new TextEncoder().encode('p0 -> p1'));
    await b.c.sendEvent(CHAT, new TextEncoder().encode('p1 -> p0'), a.keys.keyHash);
    await until(() => a.got.length === 1 && b.got.length === 1, 'events cross processes both ways').catch((e) => { throw new Error(`a got ${a.got.map(text)} b got ${b.got.map(text)}: ${e}`); });
    expect(text(b.got[0]!)).toBe('p0 -> p1');
    expect(b.got[0]!.source).toBe(a.keys.keyHash);
    expect(text(a.got[0]!)).toBe('p1 -> p0');
    await x.c.ping();
    expect(x.got).toEqual([]);
    for (const e of [a, b, x]) e.c.close();
  }, 60_000);

  it('a gateway process killed with SIGKILL is restarted; a revocation made while it was down holds', async () => {
    const keys = await generateEndpointKeys();
    await provision(n, keys);
    const s = await connectOn(n, 1, n.internal.id, n.internal.appToken, keys);
    const health = async (): Promise<Array<{ role?: string; index?: number; pid?: number; status?: string; restarts?: number }>> =>
      ((await (await fetch(`http://127.0.0.1:${n.server.adminPort}/healthz`)).json()) as { processes: Array<{ role?: string; index?: number; pid?: number; status?: string; restarts?: number }> }).processes;
    const before = (await health()).find((p) => p.index === 1)!.pid!;
    process.kill(before, 'SIGKILL');
    const lost = await withTimeout(s.ended, 3000, 'session of the killed process');
    expect(lost.errorCode ?? lost.reason).toBeDefined();
    // Revoked while process 1 is down (or restarting): the admin process takes it.
    const r = await api(n, 'POST', `/admin/v1/applications/${n.internal.id}/credentials/${keys.keyHash}/revoke`);
    expect(r.status).toBe(200);
    await until(async () => {
      const p = await health();
      return p.find((x) => x.index === 1)?.status === 'ok' && p.find((x) => x.index === 1)?.pid !== before;
    }, 'process 1 restarted', 15_000);
    expect((await health())[0]!.restarts).toBeGreaterThanOrEqual(1);
    const metrics = await (await fetch(`http://127.0.0.1:${n.server.adminPort}/metrics`)).text();
    expect(metrics).toMatch(/^latchkey_node_process_restarts_total [1-9]/m);
    // Whichever process it reaches now, the revoked key gets no session.
    for (let i = 0; i < 4; i++) {
      const c = new EndpointClient({ url: `ws://127.0.0.1:${n.server.port}`, appToken: n.internal.appToken, serverKey: n.serverKey, keys, reconnect: false });
      expect(await c.connect()).toMatchObject({ ok: false, errorCode: 'LK_CRED_REVOKED' });
      c.close();
    }
  }, 60_000);

  // Last: a drained node stays drained.
  it('an operator drain (POST /admin/v1/node/drain) drains every process, not only the admin one', async () => {
    const processes = async (): Promise<Array<{ role?: string; draining?: boolean }>> =>
      ((await (await fetch(`http://127.0.0.1:${n.server.adminPort}/healthz`)).json()) as { processes: Array<{ role?: string; draining?: boolean }> }).processes.filter((p) => p.role !== 'primary');
    expect((await processes()).map((p) => p.draining)).toEqual([false, false]);
    const r = await api(n, 'POST', '/admin/v1/node/drain');
    expect(r.status).toBe(200);
    expect((await processes()).map((p) => p.draining)).toEqual([true, true]);
  }, 60_000);
});

describe('start-up failures stop the node with a coded error', () => {
  let first: ServerProcess;
  let firstDir: string;
  beforeAll(async () => {
    firstDir = tempDir('latchkey-nodeproc-');
    first = await startServerProcess({ LATCHKEY_DATA_DIR: firstDir, LATCHKEY_PROCESSES: '2', LATCHKEY_LOG_LEVEL: 'warn' }, 30_000);
  }, 60_000);
  afterAll(async () => {
    await first?.stop('SIGTERM');
    fs.rmSync(firstDir, { recursive: true, force: true });
  });

  for (const processes of ['1', '2']) {
    it(`a second server (processes=${processes}) on the taken endpoint or admin port exits non-zero with LK_LISTEN_FAILED and touches nothing`, () => {
      for (const [port, adminPort, what] of [[String(first.port), '0', 'gateway'], ['0', String(first.adminPort), 'admin']] as const) {
        const dir = path.join(tempDir('latchkey-nodeproc-'), 'never');
        const r = cli(['serve'], { LATCHKEY_DATA_DIR: dir, LATCHKEY_HOST: '127.0.0.1', LATCHKEY_PORT: port, LATCHKEY_ADMIN_PORT: adminPort, LATCHKEY_PROCESSES: processes, LATCHKEY_LOG_LEVEL: 'warn' });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toMatch(new RegExp(`LK_LISTEN_FAILED.*${what} port 127\\.0\\.0\\.1:${what === 'gateway' ? port : adminPort}`));
        expect(fs.existsSync(dir)).toBe(false);
      }
    }, 60_000);
  }

  it('allocator=jemalloc without the library stops the node with LK_CONFIG_INVALID_VALUE before touching anything', () => {
    if (JEMALLOC_PATHS.some((f) => fs.existsSync(f))) return; // installed here: chooseAllocator's unit test covers the refusal
    const dir = path.join(tempDir('latchkey-nodeproc-'), 'never');
    const r = cli(['serve'], { LATCHKEY_DATA_DIR: dir, LATCHKEY_HOST: '127.0.0.1', LATCHKEY_PORT: '0', LATCHKEY_ADMIN_PORT: '0', LATCHKEY_PROCESSES: '2', LATCHKEY_ALLOCATOR: 'jemalloc', LATCHKEY_LOG_LEVEL: 'warn' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/LK_CONFIG_INVALID_VALUE.*libjemalloc/);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('a gateway process that cannot start stops the node (no restart loop)', () => {
    const dir = tempDir('latchkey-nodeproc-');
    const t0 = Date.now();
    const r = cli(['serve'], {
      LATCHKEY_DATA_DIR: dir, LATCHKEY_HOST: '127.0.0.1', LATCHKEY_PORT: '0', LATCHKEY_ADMIN_PORT: '0', LATCHKEY_PROCESSES: '2', LATCHKEY_LOG_LEVEL: 'warn',
      LATCHKEY_CREDENTIALS_PLUGINS: JSON.stringify({ broken: { module: path.join(dir, 'no-such-plugin.mjs') } }),
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/LK_PLUGIN_\w+/);
    expect(Date.now() - t0).toBeLessThan(25_000);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
