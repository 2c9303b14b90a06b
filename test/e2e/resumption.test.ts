/**
 * Session resumption (docs/protocol.md 4.6), with the reference client of test/helpers/wire-client.ts:
 * a full handshake, TICKETREQ / TICKET, then RESUME without any RSA operation on either side; a
 * ticket from node A resuming on node B (nodes sharing the store and the ticket master file); and
 * every bad input refused with its own code, costing no RSA operation.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TicketSealer } from '../../src/crypto/tickets.js';
import { ConnackCode } from '../../src/errors.js';
import { decodeFrame, encodePingReq, encodeTicketReq, type Frame } from '../../src/protocol/frames.js';
import type { Application } from '../../src/store/store.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { makeEndpointKey, prepareConnect, prepareResume, type NodeEndpointKey } from '../helpers/wire-client.js';
import { openRaw, withTimeout, type RawSocket } from '../helpers/ws.js';

const LIFETIME_SEC = 60;
const ROTATE_SEC = 30 * 86_400;

interface Held {
  s: RawSocket;
  ticket: Buffer;
  resumption: Buffer;
}

async function ticketOf(s: RawSocket, n: number): Promise<Buffer> {
  s.send(encodeTicketReq());
  const f = await s.decoded(n);
  if (f.type !== 'TICKET') throw new Error(`expected TICKET, got ${f.type}`);
  return f.ticket.ticket;
}

async function connack(s: RawSocket): Promise<Extract<Frame, { type: 'CONNACK' }>['connack']> {
  const f = await s.decoded(0);
  if (f.type !== 'CONNACK') throw new Error(`expected CONNACK, got ${f.type}`);
  return f.connack;
}

describe('session resumption', () => {
  let a: Harness;
  let b: Harness;
  let app: Application;
  let other: Application;
  const keys: NodeEndpointKey[] = [];

  beforeAll(async () => {
    const config = { ticketLifetimeSec: LIFETIME_SEC, ticketKeyRotateSec: ROTATE_SEC };
    a = await startHarness(config);
    b = await startHarness(config, a.dataDir);
    app = await a.app({ credentialsService: 'internal' });
    other = await a.app({ credentialsService: 'internal' });
    for (let i = 0; i < 4; i++) keys.push(makeEndpointKey());
    for (const k of keys) await a.server.store.provisionCredentials(app.id, k.keyHash, k.spki);
  });
  afterAll(async () => {
    await b?.close({ keepData: true });
    await a?.close();
  });

  const rsa = (): number => a.server.stats.rsaVerifies + a.server.stats.rsaDecrypts + b.server.stats.rsaVerifies + b.server.stats.rsaDecrypts;

  async function full(h: Harness, k: NodeEndpointKey): Promise<Held> {
    const s = await openRaw(h.url);
    const p = prepareConnect({ appToken: app.appToken, serverKeyId: h.serverKeyId, serverPublicKey: h.serverSpki, key: k });
    s.send(p.frame);
    const c = await connack(s);
    expect(c.returnCode).toBe(ConnackCode.ACCEPTED);
    expect(Buffer.from(c.confirmation!).equals(p.confirmation)).toBe(true);
    return { s, ticket: await ticketOf(s, 1), resumption: p.resumption };
  }

  async function resume(h: Harness, k: NodeEndpointKey, held: Pick<Held, 'ticket' | 'resumption'>, o: Partial<Parameters<typeof prepareResume>[0]> = {}): Promise<{ s: RawSocket; code: string | null; returnCode: number; held?: Held }> {
    const s = await openRaw(h.url);
    const p = prepareResume({ appToken: app.appToken, keyHashRaw: k.keyHashRaw, ticket: held.ticket, resumption: held.resumption, ...o });
    s.send(p.frame);
    const c = await connack(s);
    if (c.returnCode !== ConnackCode.ACCEPTED) {
      await withTimeout(s.closed, 3000, 'close after refusal');
      return { s, code: c.errorCode, returnCode: c.returnCode };
    }
    // Key confirmation: only a server that opened the ticket can compute it.
    expect(Buffer.from(c.confirmation!).equals(p.confirmation)).toBe(true);
    return { s, code: null, returnCode: c.returnCode, held: { s, ticket: await ticketOf(s, 1), resumption: p.resumption } };
  }

  it('a full session gives a ticket; RESUME opens the next session with no RSA operation, and that session gives the next ticket', async () => {
    const k = keys[0]!;
    const first = await full(a, k);
    expect(first.ticket.length).toBeGreaterThan(100);
    first.s.close();
    const before = rsa();
    const r1 = await resume(a, k, first);
    expect(r1.code).toBeNull();
    // The session works: PINGREQ answered.
    r1.s.send(encodePingReq());
    expect((await r1.s.decoded(2)).type).toBe('PINGRESP');
    r1.s.close();
    const r2 = await resume(a, k, r1.held!);
    expect(r2.code).toBeNull();
    r2.s.close();
    expect(rsa() - before).toBe(0);
    expect(a.server.stats.handshakesResumed).toBeGreaterThanOrEqual(2);
  });

  it('a ticket from node A resumes on node B (same ticket master file and store)', async () => {
    const k = keys[1]!;
    const onA = await full(a, k);
    onA.s.close();
    const onB = await resume(b, k, onA);
    expect(onB.code).toBeNull();
    onB.s.close();
  });

  it('a revocation kills the ticket at once: the resumption is refused LK_CRED_REVOKED', async () => {
    const k = keys[2]!;
    const held = await full(a, k);
    const ended = withTimeout(held.s.closed, 3000, 'revoked session closed');
    await a.server.revocation.revoke(app, k.keyHash);
    await ended;
    for (const h of [a, b]) expect((await resume(h, k, held)).code).toBe('LK_CRED_REVOKED');
  });

  it('bad tickets and proofs are refused with their own codes, costing no RSA operation', async () => {
    const k = keys[3]!;
    const held = await full(a, k);
    held.s.close();
    const before = rsa();
    const tampered = Buffer.from(held.ticket);
    tampered[tampered.length - 20]! ^= 1;
    expect((await resume(a, k, { ...held, ticket: tampered })).code).toBe('LK_TICKET_INVALID');
    expect((await resume(a, k, { ...held, ticket: Buffer.from('not a ticket') })).code).toBe('LK_TICKET_INVALID');
    // Sealed by the same master secret in the past: expired (older than its lifetime), or retired key.
    const master = Buffer.from(fs.readFileSync(path.join(a.dataDir, 'tickets', 'ticket-master.key'), 'utf8').trim(), 'base64');
    const sealedAt = (t: number): Buffer => new TicketSealer(master, { lifetimeMs: LIFETIME_SEC * 1000, rotateMs: ROTATE_SEC * 1000, now: () => t })
      .seal({ appId: app.id, keyHash: k.keyHashRaw, resumption: held.resumption });
    expect((await resume(a, k, { ...held, ticket: sealedAt(Date.now() - (LIFETIME_SEC + 5) * 1000) })).code).toBe('LK_TICKET_EXPIRED');
    expect((await resume(a, k, { ...held, ticket: sealedAt(Date.now() - 2 * ROTATE_SEC * 1000) })).code).toBe('LK_TICKET_KEY_RETIRED');
    // Another application's token, another key hash: the ticket is not theirs.
    expect((await resume(a, k, held, { appToken: other.appToken })).code).toBe('LK_TICKET_WRONG_APP');
    expect((await resume(a, keys[0]!, held)).code).toBe('LK_TICKET_WRONG_APP');
    expect((await resume(a, k, held, { proof: crypto.randomBytes(32) })).code).toBe('LK_RESUME_BAD_PROOF');
    expect((await resume(a, k, held, { resumption: crypto.randomBytes(32) })).code).toBe('LK_RESUME_BAD_PROOF');
    expect((await resume(a, k, held, { body: { timestamp: Date.now() - 3_600_000 } })).code).toBe('LK_HS_STALE_TIMESTAMP');
    // The same RESUME frame twice: the second is a replay.
    const nonce = crypto.randomBytes(16);
    const once = await resume(a, k, held, { body: { nonce } });
    expect(once.code).toBeNull();
    once.s.close();
    expect((await resume(a, k, held, { body: { nonce } })).code).toBe('LK_HS_REPLAYED_NONCE');
    expect(rsa() - before).toBe(0);
  });

  it('with resumption off (ticketLifetimeSec 0) TICKET is empty and RESUME is refused LK_RESUME_DISABLED', async () => {
    const off = await startHarness({ ticketLifetimeSec: 0 });
    try {
      const offApp = await off.app({ credentialsService: 'internal' });
      const k = makeEndpointKey();
      await off.server.store.provisionCredentials(offApp.id, k.keyHash, k.spki);
      const s = await openRaw(off.url);
      const p = prepareConnect({ appToken: offApp.appToken, serverKeyId: off.serverKeyId, serverPublicKey: off.serverSpki, key: k });
      s.send(p.frame);
      expect((await connack(s)).returnCode).toBe(ConnackCode.ACCEPTED);
      s.send(encodeTicketReq());
      const t = await s.decoded(1);
      expect(t).toMatchObject({ type: 'TICKET', ticket: { lifetimeSec: 0 } });
      s.close();
      const r = await openRaw(off.url);
      r.send(prepareResume({ appToken: offApp.appToken, keyHashRaw: k.keyHashRaw, ticket: Buffer.alloc(120), resumption: p.resumption }).frame);
      expect((await connack(r)).errorCode).toBe('LK_RESUME_DISABLED');
    } finally {
      await off.close();
    }
  });

  it('TICKETREQ before CONNACK and RESUME after it are unexpected frames', async () => {
    const s = await openRaw(a.url);
    s.send(encodeTicketReq());
    const f = await s.decoded(0);
    expect(f).toMatchObject({ type: 'DISCONNECT', disconnect: { errorCode: 'LK_FRAME_UNEXPECTED' } });
    expect(decodeFrame(Buffer.from([0x11, 0])).ok).toBe(false);
  });
});
