/**
 * The ban list through the admin API (GET/POST /admin/v1/bans, DELETE /admin/v1/bans/{kind}/{value}):
 * validation, root scope, createdBy, percent-encoded CIDRs; and what a ban does to a real server:
 * an IP ban turns the WebSocket upgrade away with 403 LK_BANNED (and ends that address's sessions)
 * until it is lifted; a key hash or application ban ends the live session (DISCONNECT LK_BANNED)
 * and refuses the reconnect with CONNACK LK_BANNED before any RSA work.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnackCode } from '../../src/errors.js';
import type { Application } from '../../src/store/store.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { makeEndpointKey, prepareConnect, type NodeEndpointKey } from '../helpers/wire-client.js';
import { openRaw, withTimeout, type RawSocket } from '../helpers/ws.js';

let h: Harness;
let tenantKey: string;

async function call(method: string, path: string, opts: { key?: string | null; body?: unknown } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const key = opts.key === undefined ? h.rootKey : opts.key;
  const r = await fetch(`${h.adminUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** The id part of an API key token lk_<id>.<secret>. */
const keyId = (token: string): string => token.slice(3, token.indexOf('.'));

/** A raw HTTP upgrade to /ep/v1: the status and body the server answered (the socket is closed). */
async function upgrade(): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port: h.server.port, host: '127.0.0.1' });
    let got = '';
    s.on('error', reject);
    s.on('connect', () => s.write(`GET /ep/v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: latchkey.v1\r\n\r\n`));
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = Number(got.slice(9, 12));
      const len = Number(/content-length: (\d+)/i.exec(got.slice(0, end))?.[1] ?? 0);
      if (status !== 101 && got.length - end - 4 < len) return;
      s.destroy();
      resolve({ status, body: got.slice(end + 4, end + 4 + len) });
    });
  });
}

/** An established session (raw wire client): CONNACK accepted. */
async function session(app: Application, key: NodeEndpointKey): Promise<RawSocket> {
  const ws = await openRaw(h.url);
  ws.send(prepareConnect({ appToken: app.appToken, serverKeyId: h.serverKeyId, serverPublicKey: h.serverSpki, key }).frame);
  const f = await ws.decoded(0);
  expect(f.type === 'CONNACK' && f.connack.returnCode).toBe(ConnackCode.ACCEPTED);
  return ws;
}

/** The DISCONNECT that ended a session, and the close. */
async function disconnected(ws: RawSocket, n = 1): Promise<string | null> {
  const f = await ws.decoded(n);
  if (f.type !== 'DISCONNECT') throw new Error(`expected DISCONNECT, got ${f.type}`);
  await withTimeout(ws.closed, 3000, 'close after DISCONNECT');
  return f.disconnect.errorCode;
}

/** One CONNECT: the CONNACK error code and how many RSA tasks the crypto pool ran for it. */
async function refusal(app: Application, key: NodeEndpointKey): Promise<{ errorCode: string | null; rsaTasks: number }> {
  const before = h.server.pool.tasksRun;
  const ws = await openRaw(h.url);
  ws.send(prepareConnect({ appToken: app.appToken, serverKeyId: h.serverKeyId, serverPublicKey: h.serverSpki, key }).frame);
  const f = await ws.decoded(0);
  ws.close();
  await withTimeout(ws.closed, 3000, 'close');
  if (f.type !== 'CONNACK') throw new Error(`expected CONNACK, got ${f.type}`);
  return { errorCode: f.connack.errorCode, rsaTasks: h.server.pool.tasksRun - before };
}

beforeAll(async () => {
  h = await startHarness();
  expect((await call('POST', '/admin/v1/tenants', { body: { id: 'bt', name: 'bans tenant' } })).status).toBe(201);
  tenantKey = (await call('POST', '/admin/v1/api-keys', { body: { name: 'bt', tenantId: 'bt' } })).body.token as string;
});
afterAll(async () => {
  await h?.close();
});

describe('ban list in the admin API', () => {
  it('adds, lists and lifts bans of every kind; createdBy is the API key id; values are stored canonical', async () => {
    const k = makeEndpointKey();
    const added = await call('POST', '/admin/v1/bans', { body: { kind: 'keyHash', value: k.keyHash, reason: 'abuse', expiresInSec: 3600 } });
    expect(added).toMatchObject({ status: 201, body: { kind: 'keyHash', value: k.keyHash, reason: 'abuse', createdBy: keyId(h.rootKey) } });
    expect((added.body.expiresAt as number) - (added.body.createdAt as number)).toBe(3600_000);
    const at = Date.now() + 86_400_000;
    expect(await call('POST', '/admin/v1/bans', { body: { kind: 'ip', value: '10.1.2.3/8', reason: 'net', expiresAt: at } })).toMatchObject({ status: 201, body: { kind: 'ip', value: '10.0.0.0/8', expiresAt: at } });
    expect(await call('POST', '/admin/v1/bans', { body: { kind: 'ip', value: '192.0.2.7/32', reason: '' } })).toMatchObject({ status: 201, body: { value: '192.0.2.7', expiresAt: null } });
    expect(await call('POST', '/admin/v1/bans', { body: { kind: 'app', value: 'some-app', reason: 'x' } })).toMatchObject({ status: 201, body: { kind: 'app', value: 'some-app' } });

    const list = await call('GET', '/admin/v1/bans');
    expect(list.status).toBe(200);
    expect((list.body.items as Array<{ kind: string; value: string }>).map((b) => `${b.kind} ${b.value}`)).toEqual(['app some-app', 'ip 10.0.0.0/8', 'ip 192.0.2.7', `keyHash ${k.keyHash}`]);

    // A CIDR's slash travels as %2F; any spelling of the same network lifts it.
    expect((await call('DELETE', '/admin/v1/bans/ip/10.9.9.9%2F8')).status).toBe(204);
    expect((await call('DELETE', '/admin/v1/bans/ip/10.0.0.0%2F8')).body.code).toBe('LK_NOT_FOUND');
    expect((await call('DELETE', '/admin/v1/bans/ip/192.0.2.7')).status).toBe(204);
    expect((await call('DELETE', `/admin/v1/bans/keyHash/${k.keyHash}`)).status).toBe(204);
    expect((await call('DELETE', '/admin/v1/bans/app/some-app')).status).toBe(204);
    expect((await call('GET', '/admin/v1/bans')).body.items).toEqual([]);
  });

  it('refuses bad values, kinds and expiries with 400 LK_BAD_ARGUMENT and stores nothing', async () => {
    const bad: unknown[] = [
      { kind: 'ip', value: '300.1.1.1', reason: '' },
      { kind: 'ip', value: '10.0.0.0/33', reason: '' },
      { kind: 'ip', value: 'fe80::1%eth0', reason: '' },
      { kind: 'keyHash', value: 'short', reason: '' },
      { kind: 'app', value: 'has space', reason: '' },
      { kind: 'user', value: 'x', reason: '' },
      { kind: 'ip', value: '10.0.0.1', reason: '', expiresInSec: 0 },
      { kind: 'ip', value: '10.0.0.1', reason: '', expiresAt: Date.now() - 1000 },
      { kind: 'ip', value: '10.0.0.1', reason: '', expiresInSec: 60, expiresAt: Date.now() + 60_000 },
      { kind: 'ip', value: '10.0.0.1' },
    ];
    for (const body of bad) {
      const r = await call('POST', '/admin/v1/bans', { body });
      expect([r.status, r.body.code], JSON.stringify(body)).toEqual([400, 'LK_BAD_ARGUMENT']);
    }
    expect((await call('DELETE', '/admin/v1/bans/user/x')).body.code).toBe('LK_BAD_ARGUMENT');
    expect((await call('DELETE', '/admin/v1/bans/ip/not-an-address')).body.code).toBe('LK_BAD_ARGUMENT');
    expect((await call('DELETE', '/admin/v1/bans/keyHash/short')).body.code).toBe('LK_BAD_ARGUMENT');
    expect((await call('DELETE', `/admin/v1/bans/keyHash/${makeEndpointKey().keyHash}`))).toMatchObject({ status: 404, body: { code: 'LK_NOT_FOUND' } });
    expect((await call('GET', '/admin/v1/bans')).body.items).toEqual([]);
  });

  it('is root only: a tenant key gets 403 LK_FORBIDDEN, no key 401', async () => {
    for (const [method, path, body] of [['GET', '/admin/v1/bans'], ['POST', '/admin/v1/bans', { kind: 'ip', value: '10.0.0.1', reason: '' }], ['DELETE', '/admin/v1/bans/ip/10.0.0.1']] as const) {
      expect((await call(method, path, { key: tenantKey, ...(body ? { body } : {}) })).body.code, `${method} ${path}`).toBe('LK_FORBIDDEN');
      expect((await call(method, path, { key: null, ...(body ? { body } : {}) })).body.code, `${method} ${path}`).toBe('LK_AUTH_REQUIRED');
    }
    expect((await call('GET', '/admin/v1/bans')).body.items).toEqual([]);
  });
});

describe('what a ban does', () => {
  it('an IP ban: the upgrade from 127.0.0.1 gets 403 LK_BANNED and its live session ends; lifted, connecting works again', async () => {
    const app = await h.app({ credentialsService: 'trustful' });
    const live = await session(app, makeEndpointKey());
    expect((await call('POST', '/admin/v1/bans', { body: { kind: 'ip', value: '127.0.0.1', reason: 'test' } })).status).toBe(201);
    expect(await disconnected(live)).toBe('LK_BANNED');
    const r = await upgrade();
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).code).toBe('LK_BANNED');
    // The WebSocket client sees the refused upgrade as a failure to open.
    await expect(openRaw(h.url)).rejects.toThrow();
    expect((await call('DELETE', '/admin/v1/bans/ip/127.0.0.1')).status).toBe(204);
    expect((await upgrade()).status).toBe(101);
    const again = await session(app, makeEndpointKey());
    again.close();
    await withTimeout(again.closed, 3000, 'close');
  });

  it('a key hash ban ends that endpoint\'s session and refuses its reconnect before any RSA work; lifted, it connects', async () => {
    const app = await h.app({ credentialsService: 'trustful' });
    const k = makeEndpointKey();
    const bystander = await session(app, makeEndpointKey());
    const live = await session(app, k);
    expect((await call('POST', '/admin/v1/bans', { body: { kind: 'keyHash', value: k.keyHash, reason: 'test' } })).status).toBe(201);
    expect(await disconnected(live)).toBe('LK_BANNED');
    expect(await refusal(app, k)).toEqual({ errorCode: 'LK_BANNED', rsaTasks: 0 });
    // Another endpoint of the same application is not touched.
    expect(bystander.ws.readyState).toBe(bystander.ws.OPEN);
    expect((await call('DELETE', `/admin/v1/bans/keyHash/${k.keyHash}`)).status).toBe(204);
    const back = await session(app, k);
    for (const s of [back, bystander]) {
      s.close();
      await withTimeout(s.closed, 3000, 'close');
    }
  });

  it('an application ban ends its sessions and refuses every key of it before any RSA work; other applications connect', async () => {
    const app = await h.app({ credentialsService: 'trustful' });
    const other = await h.app({ credentialsService: 'trustful' });
    const live = await session(app, makeEndpointKey());
    expect((await call('POST', '/admin/v1/bans', { body: { kind: 'app', value: app.id, reason: 'test', expiresInSec: 600 } })).status).toBe(201);
    expect(await disconnected(live)).toBe('LK_BANNED');
    expect(await refusal(app, makeEndpointKey())).toEqual({ errorCode: 'LK_BANNED', rsaTasks: 0 });
    const fine = await session(other, makeEndpointKey());
    fine.close();
    await withTimeout(fine.closed, 3000, 'close');
    expect((await call('DELETE', `/admin/v1/bans/app/${app.id}`)).status).toBe(204);
    const back = await session(app, makeEndpointKey());
    back.close();
    await withTimeout(back.closed, 3000, 'close');
  });
});
