/**
 * Limits and bans (issue 9, protection/admission.ts), each shown against a real server: the
 * refusal, its code, and that it cost no RSA work where the design says so. Every harness sets only
 * the limit it tests (others at their defaults); loopback only.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnackCode } from '../../src/errors.js';
import { decodeFrame, encodePingReq } from '../../src/protocol/frames.js';
import type { Application } from '../../src/store/store.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { ROOT } from '../helpers/root.js';
import { makeEndpointKey, prepareConnect, type NodeEndpointKey } from '../helpers/wire-client.js';
import { openRaw, withTimeout, type RawSocket } from '../helpers/ws.js';

let open: Harness[] = [];
afterEach(async () => {
  for (const h of open) await h.close();
  open = [];
});

async function harness(overrides: Parameters<typeof startHarness>[0]): Promise<{ h: Harness; app: Application }> {
  const h = await startHarness(overrides);
  open.push(h);
  return { h, app: await h.app({ credentialsService: 'trustful' }) };
}

/**
 * A raw HTTP upgrade to /ep/v1: the status line and body the server answered; after a 101,
 * `closeFrame()` waits (bounded) for the server's WebSocket close frame (a paced refusal's).
 */
async function upgrade(h: Harness, localAddress = '127.0.0.1'): Promise<{ status: number; headers: string; body: string; socket: net.Socket; closeFrame: () => Promise<{ code: number; reason: string }> }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port: h.server.port, host: '127.0.0.1', localAddress });
    let got = Buffer.alloc(0);
    let after = -1;
    const closeFrame = async (): Promise<{ code: number; reason: string }> => {
      for (let i = 0; i < 100; i++) {
        const f = got.subarray(after);
        // Unmasked server frame: FIN + opcode 8, a 7-bit length, the code, the reason.
        if (f.length >= 2 && f[0] === 0x88 && f.length >= 2 + (f[1]! & 0x7f)) return { code: f.readUInt16BE(2), reason: f.subarray(4, 2 + (f[1]! & 0x7f)).toString('utf8') };
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no close frame after the upgrade (got ${got.subarray(after).toString('hex')})`);
    };
    s.on('error', reject);
    s.on('connect', () => s.write(`GET /ep/v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: latchkey.v1\r\n\r\n`));
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (after >= 0) return;
      const text = got.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = Number(text.slice(9, 12));
      if (status === 101) {
        after = end + 4;
        return resolve({ status, headers: text.slice(0, end), body: '', socket: s, closeFrame });
      }
      const len = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? 0);
      if (text.length - end - 4 >= len) resolve({ status, headers: text.slice(0, end), body: text.slice(end + 4, end + 4 + len), socket: s, closeFrame });
    });
    setTimeout(() => reject(new Error('no upgrade answer')), 5000);
  });
}

/** A paced refusal (docs/protocol.md 1.1): 101, then close 4003 `LK_SERVER_BUSY retryAfterMs=<ms>`; returns the delay. */
async function pacedBusy(r: Awaited<ReturnType<typeof upgrade>>): Promise<number> {
  expect(r.status).toBe(101);
  const c = await r.closeFrame();
  expect(c.code).toBe(4003);
  const m = /^LK_SERVER_BUSY retryAfterMs=(\d+)$/.exec(c.reason);
  expect(m, c.reason).not.toBeNull();
  return Number(m![1]);
}

/** Bans are applied at once and written to the store after: wait (bounded) for the store to have them. */
async function storedBans(h: Harness, n: number): Promise<Array<{ kind: string; value: string; createdBy: string }>> {
  for (let i = 0; i < 50; i++) {
    const bans = await h.server.store.listBans(Date.now());
    if (bans.length >= n) return bans.map((b) => ({ kind: b.kind, value: b.value, createdBy: b.createdBy }));
    await new Promise((r) => setTimeout(r, 50));
  }
  return [];
}

function connectFrame(h: Harness, app: Application, key: NodeEndpointKey, extra: Partial<Parameters<typeof prepareConnect>[0]> = {}): Buffer {
  return prepareConnect({ appToken: app.appToken, serverKeyId: h.serverKeyId, serverPublicKey: h.serverSpki, key, ...extra }).frame;
}

async function connack(h: Harness, frame: Buffer): Promise<{ code: number; errorCode: string | null; ws: RawSocket }> {
  const ws = await openRaw(h.url);
  ws.send(frame);
  const f = await ws.decoded(0);
  if (f.type !== 'CONNACK') throw new Error(`expected CONNACK, got ${f.type}`);
  return { code: f.connack.returnCode, errorCode: f.connack.errorCode, ws };
}

/** Open and close `n` accepted sessions of `key` (each must be accepted). */
async function acceptedSessions(h: Harness, app: Application, key: NodeEndpointKey, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await connack(h, connectFrame(h, app, key));
    expect(r.code).toBe(ConnackCode.ACCEPTED);
    r.ws.close();
  }
}

describe('connection admission at the upgrade', () => {
  it('caps connections per process (503 LK_CONN_LIMIT) and admits again once one closes', async () => {
    const { h } = await harness({ maxConnections: 2 });
    const a = await upgrade(h);
    const b = await upgrade(h);
    expect([a.status, b.status]).toEqual([101, 101]);
    const c = await upgrade(h);
    expect(c.status).toBe(503);
    expect(JSON.parse(c.body).code).toBe('LK_CONN_LIMIT');
    expect(c.headers).toMatch(/retry-after: \d+/i);
    a.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect((await upgrade(h)).status).toBe(101);
    expect(h.server.stats.connectionsRefused.get('LK_CONN_LIMIT')).toBe(1);
    for (const s of [b, c]) s.socket.destroy();
  });

  it('bounds sockets whose handshake has not ended (paced LK_SERVER_BUSY: close 4003 with a return time); an established session frees its place', async () => {
    const { h, app } = await harness({ maxPendingHandshakes: 2 });
    const a = await upgrade(h);
    const b = await upgrade(h);
    expect([a.status, b.status]).toEqual([101, 101]);
    const c = await upgrade(h);
    // The first return time of a process with no handshakes yet: 1 s, within its first slot.
    const wait = await pacedBusy(c);
    expect(wait).toBeGreaterThanOrEqual(1000);
    expect(wait).toBeLessThan(1100);
    // One silent socket goes away and a real session takes its place: an established session is
    // not pending, so the bound admits another silent socket beside it.
    a.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const s = await connack(h, connectFrame(h, app, makeEndpointKey()));
    expect(s.code).toBe(ConnackCode.ACCEPTED);
    // (c, refused, never counted as one of the process's connections: d is admitted.)
    const d = await upgrade(h);
    expect(d.status).toBe(101);
    expect(await pacedBusy(await upgrade(h))).toBeGreaterThanOrEqual(1000);
    expect(h.server.stats.connectionsRefused.get('LK_SERVER_BUSY')).toBe(2);
    s.ws.close();
    for (const x of [b, c, d]) x.socket.destroy();
  });

  it('limits new connections per address (429 LK_CONN_RATE_LIMITED with Retry-After); other addresses are not affected', async () => {
    const { h } = await harness({ ipConnectRatePerSec: 1, ipConnectBurst: 3 });
    const got: number[] = [];
    const socks: net.Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await upgrade(h, '127.0.0.2');
      got.push(r.status);
      socks.push(r.socket);
      if (r.status === 429) expect(JSON.parse(r.body)).toMatchObject({ code: 'LK_CONN_RATE_LIMITED' });
    }
    expect(got).toEqual([101, 101, 101, 429]);
    expect((await upgrade(h, '127.0.0.3')).status).toBe(101);
    for (const s of socks) s.destroy();
  });
});

describe('handshake limits before RSA work', () => {
  it('limits handshakes per key hash (LK_HS_RATE_LIMITED) without RSA work', async () => {
    const { h, app } = await harness({ keyHandshakesPerMin: 2 });
    const k = makeEndpointKey();
    await acceptedSessions(h, app, k, 2);
    const before = h.server.pool.tasksRun;
    const r = await connack(h, connectFrame(h, app, k));
    expect(r).toMatchObject({ code: ConnackCode.REFUSE_SERVER_UNAVAILABLE, errorCode: 'LK_HS_RATE_LIMITED' });
    expect(h.server.pool.tasksRun).toBe(before);
  });

  it('a stranger claiming a victim\'s key hash from another address cannot lock the victim out', async () => {
    const { h, app } = await harness({ keyHandshakesPerMin: 2 });
    const victim = makeEndpointKey();
    // Forged CONNECTs (random signatures) claiming the victim's key, from 127.0.0.2.
    const before = h.server.stats.handshakesRefused.get('LK_HS_RATE_LIMITED') ?? 0;
    for (let i = 0; i < 5; i++) {
      const up = await upgrade(h, '127.0.0.2');
      const frame = connectFrame(h, app, victim, { signature: crypto.randomBytes(256) });
      const mask = crypto.randomBytes(4);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(frame.length);
      up.socket.write(Buffer.concat([Buffer.from([0x82, 0x80 | 126]), len, mask, frame.map((b, j) => b ^ mask[j % 4]!)]));
      await new Promise<void>((r) => up.socket.once('close', () => r()));
    }
    // The stranger hit the per-key limit at its own address...
    expect((h.server.stats.handshakesRefused.get('LK_HS_RATE_LIMITED') ?? 0) - before).toBe(3);
    // ...and the victim, from its own, is not affected.
    const r = await connack(h, connectFrame(h, app, victim));
    expect(r.code).toBe(ConnackCode.ACCEPTED);
  });

  it('a replayed forged CONNECT costs one RSA verify, not one per copy', async () => {
    const { h, app } = await harness({});
    const k = makeEndpointKey();
    const forged = connectFrame(h, app, k, { signature: crypto.randomBytes(256) });
    const v0 = h.server.stats.rsaVerifies;
    for (let i = 0; i < 5; i++) {
      const r = await connack(h, forged);
      expect(r.errorCode).toBe('LK_HS_BAD_SIGNATURE');
    }
    expect(h.server.stats.rsaVerifies - v0).toBe(1);
    expect(h.server.stats.rsaDecrypts).toBe(0);
  });

  it('bounds how fast a trustful application creates credentials (LK_CRED_RATE_LIMITED after the signature check, no record stored)', async () => {
    const { h, app } = await harness({ trustfulNewCredentialsPerSec: 1 });
    // Bucket: 10 s of the rate = 10 new keys at once (keys made first: the bucket refills meanwhile).
    const keys = Array.from({ length: 11 }, () => makeEndpointKey());
    for (let i = 0; i < 10; i++) {
      const r = await connack(h, connectFrame(h, app, keys[i]!));
      expect(r.code).toBe(ConnackCode.ACCEPTED);
      r.ws.close();
    }
    const r = await connack(h, connectFrame(h, app, keys[10]!));
    expect(r.errorCode).toBe('LK_CRED_RATE_LIMITED');
    expect(await h.server.store.getCredentials(app.id, keys[10]!.keyHash)).toBeNull();
    // Random key hashes with bad signatures do not spend the budget (a stranger must hold the key).
    expect((await connack(h, connectFrame(h, app, makeEndpointKey(), { signature: crypto.randomBytes(256) }))).errorCode).toBe('LK_HS_BAD_SIGNATURE');
  });
});

describe('automatic bans', () => {
  it('bans an address after too many refused handshakes: then 403 LK_BANNED at the upgrade, stored for every node', async () => {
    const { h, app } = await harness({ ipMaxFailedHandshakes: 3 });
    const k = makeEndpointKey();
    for (let i = 0; i < 4; i++) {
      const r = await connack(h, connectFrame(h, { ...app, appToken: 'no-such-app-token-000000' }, k));
      expect(r.errorCode).toBe('LK_HS_UNKNOWN_APPLICATION');
    }
    const r = await upgrade(h);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).code).toBe('LK_BANNED');
    r.socket.destroy();
    expect(await storedBans(h, 1)).toEqual([{ kind: 'ip', value: '127.0.0.1', createdBy: 'failed-handshakes' }]);
    expect(h.server.stats.bansAdded.get('failed-handshakes')).toBe(1);
  });

  it('probation: a valid CONNECT from an address refusing junk waits, and is refused LK_BANNED with no RSA work once the address is banned', async () => {
    const { h, app } = await harness({ ipMaxFailedHandshakes: 3, handshakeProbationMs: 300 });
    // Keys and frames made first: a key takes ~50-100 ms to generate, longer than a gap between refusals should be.
    const junkFrames = Array.from({ length: 4 }, () => connectFrame(h, { ...app, appToken: 'no-such-app-token-000000' }, makeEndpointKey()));
    const valid = connectFrame(h, app, makeEndpointKey());
    const junk = (): Promise<{ errorCode: string | null }> => connack(h, junkFrames.pop()!);
    expect((await junk()).errorCode).toBe('LK_HS_UNKNOWN_APPLICATION');
    // A valid handshake (a fresh key of the trustful application) right after: held on probation.
    const held = connack(h, valid);
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 3; i++) expect((await junk()).errorCode).toBe('LK_HS_UNKNOWN_APPLICATION');
    const r = await held;
    expect(r.errorCode).toBe('LK_BANNED');
    expect(h.server.stats.rsaVerifies).toBe(0);
    expect(h.server.stats.rsaDecrypts).toBe(0);
    expect(h.server.stats.rsaDecryptsUnused.size).toBe(0);
  });

  it('probation: once the address has gone handshakeProbationMs without a refusal, the held CONNECT is accepted', async () => {
    const { h, app } = await harness({ handshakeProbationMs: 300 });
    const [bad, first, second] = [connectFrame(h, { ...app, appToken: 'no-such-app-token-000000' }, makeEndpointKey()), connectFrame(h, app, makeEndpointKey()), connectFrame(h, app, makeEndpointKey())];
    expect((await connack(h, bad)).errorCode).toBe('LK_HS_UNKNOWN_APPLICATION');
    const t0 = performance.now();
    const r = await connack(h, first);
    expect(r.code).toBe(ConnackCode.ACCEPTED);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(200);
    r.ws.close();
    // The address is now known good and quiet: the next handshake is not held.
    const t1 = performance.now();
    const again = await connack(h, second);
    expect(again.code).toBe(ConnackCode.ACCEPTED);
    expect(performance.now() - t1).toBeLessThan(200);
    again.ws.close();
  });

  it('flapping detection bans a key hash that opens too many sessions (CONNACK LK_BANNED, then refused before RSA)', async () => {
    const { h, app } = await harness({ flappingMaxCount: 2 });
    const k = makeEndpointKey();
    await acceptedSessions(h, app, k, 2);
    // The third is decided before RSA work: the key already opened its 2 sessions in the window.
    const before = h.server.pool.tasksRun;
    expect((await connack(h, connectFrame(h, app, k))).errorCode).toBe('LK_BANNED');
    expect((await connack(h, connectFrame(h, app, k))).errorCode).toBe('LK_BANNED');
    expect(h.server.pool.tasksRun).toBe(before);
    expect(await storedBans(h, 1)).toEqual([{ kind: 'keyHash', value: k.keyHash, createdBy: 'flapping' }]);
  });
});

describe('per-session rates and timeouts', () => {
  it('ends a session that sends more frames per second than allowed (LK_SESSION_RATE_LIMITED)', async () => {
    const { h, app } = await harness({ sessionMessagesPerSec: 5 });
    const r = await connack(h, connectFrame(h, app, makeEndpointKey()));
    expect(r.code).toBe(ConnackCode.ACCEPTED);
    // Bucket: 2 s of the rate = 10 frames (the CONNECT was one).
    for (let i = 0; i < 12; i++) r.ws.send(encodePingReq());
    const closed = await withTimeout(r.ws.closed, 3000, 'close');
    const last = decodeFrame(r.ws.frames[r.ws.frames.length - 1]!);
    expect(last.ok && last.value.type === 'DISCONNECT' && last.value.disconnect.errorCode).toBe('LK_SESSION_RATE_LIMITED');
    expect(closed.code).toBe(4015);
  });

  it('ends a handshake stuck on a hung backend (LK_HS_STALLED) instead of holding it for ever', async () => {
    const h = await startHarness({ handshakeStallTimeoutMs: 1000, credentialsPlugins: { faulty: { module: path.join(ROOT, 'test/fixtures/plugins/faulty.mjs'), config: { mode: 'hang' } } } });
    open.push(h);
    const app = await h.app({ credentialsService: 'faulty' });
    const ws = await openRaw(h.url);
    ws.send(connectFrame(h, app, makeEndpointKey()));
    const closed = await withTimeout(ws.closed, 5000, 'stalled handshake closed');
    expect(closed.code).toBe(4017);
    expect(h.server.stats.sessionsEnded.get('LK_HS_STALLED')).toBe(1);
  });
});

describe('what the transport cuts itself (uWS; docs/errors.md)', () => {
  it('a frame over 4 x maxFrameBytes and an invalid UTF-8 text frame are cut and counted with their codes', async () => {
    const { h } = await harness({ maxFrameBytes: 1024 });
    const big = await openRaw(h.url);
    big.send(Buffer.alloc(5000));
    await withTimeout(big.closed, 3000, 'oversize close');
    // Raw bytes: a masked text frame whose payload is not UTF-8 (C3 28).
    const up = await upgrade(h);
    const mask = Buffer.from([1, 2, 3, 4]);
    const payload = Buffer.from([0xc3, 0x28]).map((b, i) => b ^ mask[i % 4]!);
    up.socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload]));
    await new Promise<void>((r) => up.socket.on('close', () => r()));
    await new Promise((r) => setTimeout(r, 50));
    expect(h.server.stats.sessionsEnded.get('LK_FRAME_OVER_HARD_LIMIT')).toBe(1);
    expect(h.server.stats.sessionsEnded.get('LK_FRAME_BAD_UTF8')).toBe(1);
  });

  it('an unmasked client frame is never read as a frame: the socket ends at the handshake timeout (LK_HS_TIMEOUT)', async () => {
    const { h } = await harness({ handshakeTimeoutMs: 300 });
    const up = await upgrade(h);
    // An unmasked binary frame (RFC 6455 requires clients to mask): uWS waits for mask bytes.
    up.socket.write(Buffer.from([0x82, 0x03, 0x0c, 0x00, 0x00]));
    await withTimeout(new Promise<void>((r) => up.socket.on('close', () => r())), 5000, 'unmasked socket closed');
    expect(h.server.stats.sessionsEnded.get('LK_HS_TIMEOUT')).toBe(1);
  });
});
