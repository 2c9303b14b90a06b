/**
 * The session state machine (src/session/session.ts) driven through a fake transport, with a fake
 * handshaker that counts its calls and answers what each test chooses: the frames each state
 * accepts, the refusals and their codes and close codes, the counters of sealed frames, what a
 * close in the middle of a handshake leaves behind, and the per-session rate limits. The real
 * handshake (RSA, credentials, replay) is tested in handshaker.test.ts and end to end in test/e2e.
 */
import crypto from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { NodeGcmCipher } from '../../src/crypto/aead.js';
import { ConnackCode, ERRORS, LatchkeyError } from '../../src/errors.js';
import { Stats } from '../../src/metrics.js';
import { decodeFrame, decodeSyncResponse, encodeConnect, encodeDisconnect, encodePingReq, encodeSync, encodeSyncRequest, encodeTicketReq, type Frame } from '../../src/protocol/frames.js';
import { emptySyncRequest, emptySyncResponse } from '../../src/protocol/schemas.js';
import type { HandshakeAccepted, Handshaker } from '../../src/session/handshake.js';
import { Session, type SessionHost, type SessionLimits, type Transport } from '../../src/session/session.js';
import type { Application, EndpointRecord } from '../../src/store/store.js';

class FakeTransport implements Transport {
  readonly sent: Buffer[] = [];
  closed: { code: number; reason: string } | null = null;
  constructor(readonly remoteAddress = '192.0.2.7') {}
  send(frame: Buffer): boolean {
    if (this.closed) return false;
    this.sent.push(frame);
    return true;
  }
  sendDeferred(frame: Buffer): boolean {
    return this.send(frame);
  }
  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }
  bufferedAmount(): number {
    return 0;
  }
  frames(): Frame[] {
    return this.sent.map((b) => {
      const d = decodeFrame(b);
      if (!d.ok) throw new Error(`server sent an undecodable frame: ${d.code}`);
      return d.value;
    });
  }
  last(): Frame {
    const f = this.frames();
    if (f.length === 0) throw new Error('nothing sent');
    return f[f.length - 1]!;
  }
}

const APP: Application = { id: 'app-1', tenantId: 't-1', name: 'app', appToken: 'token-000000000000000000', credentialsService: 'trustful' } as Application;

interface Keys {
  c2s: Buffer;
  s2c: Buffer;
}

/** A handshaker whose answer each test chooses; `calls` counts run() and resume(). */
function fakeHandshaker(answer: () => Promise<HandshakeAccepted>): { handshaker: Handshaker; calls: { run: number; resume: number; addresses: string[] } } {
  const calls = { run: 0, resume: 0, addresses: [] as string[] };
  const handshaker = {
    run: (_c: unknown, remoteAddress: string) => {
      calls.run++;
      calls.addresses.push(remoteAddress);
      return answer();
    },
    resume: () => {
      calls.resume++;
      return answer();
    },
  } as unknown as Handshaker;
  return { handshaker, calls };
}

function accepted(keys: Keys, keepAliveSec = 0): HandshakeAccepted {
  return {
    app: APP, keepAliveSec, keyHash: 'kh-1', publicKey: Buffer.from('spki'), endpoint: null, resumed: false,
    c2s: Buffer.from(keys.c2s), s2c: Buffer.from(keys.s2c), confirmation: Buffer.alloc(32, 7), resumption: Buffer.alloc(32, 9),
  };
}

const LIMITS: SessionLimits = { maxFrameBytes: 4096, keepAliveDefaultSec: 60, keepAliveMaxSec: 600, maxPendingSyncs: 4, messagesPerSec: 0, bytesPerSec: 0 };

function host(handshaker: Handshaker, over: Partial<SessionHost> & { revoked?: boolean; endpoint?: EndpointRecord | null } = {}) {
  const registry = { established: [] as object[], closed: [] as object[] };
  const stats = new Stats();
  const syncs: unknown[] = [];
  const h: SessionHost = {
    handshaker,
    registration: {
      syncProfile: async (_id: unknown, req: { requestId: number }) => {
        syncs.push(req);
        return { response: emptySyncResponse(req.requestId), endpoint: over.endpoint ?? null };
      },
      getEndpoint: async () => over.endpoint ?? null,
    } as unknown as SessionHost['registration'],
    registry: {
      established: (s) => registry.established.push(s),
      closed: (s) => registry.closed.push(s),
      recentlyRevoked: () => over.revoked === true,
    },
    limits: { ...LIMITS, ...over.limits },
    stats,
    log: pino({ level: 'silent' }),
    ...over,
  };
  return { host: h, registry, stats, syncs };
}

const CONNECT = encodeConnect({ body: Buffer.from('body'), signature: Buffer.alloc(256), sync: null });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function newKeys(): Keys {
  return { c2s: crypto.randomBytes(32), s2c: crypto.randomBytes(32) };
}

/** A session taken to ESTABLISHED through a CONNECT the fake handshaker accepts. */
async function established(over: Parameters<typeof host>[1] = {}) {
  const keys = newKeys();
  const fake = fakeHandshaker(async () => accepted(keys, 30));
  const h = host(fake.handshaker, over);
  const t = new FakeTransport();
  const s = new Session(h.host, t);
  s.onMessage(CONNECT, true);
  await tick();
  await tick();
  return { s, t, keys, ...h, calls: fake.calls, tx: new NodeGcmCipher(keys.c2s), rx: new NodeGcmCipher(keys.s2c) };
}

function expectDisconnect(t: FakeTransport, code: keyof typeof ERRORS): void {
  const f = t.last();
  expect(f.type).toBe('DISCONNECT');
  if (f.type === 'DISCONNECT') expect(f.disconnect.errorCode).toBe(code);
  expect(t.closed?.code).toBe(ERRORS[code].close);
}

describe('before CONNECT', () => {
  it('any frame but CONNECT or RESUME ends the session with LK_FRAME_UNEXPECTED, and the handshaker is never asked', async () => {
    const fake = fakeHandshaker(async () => accepted(newKeys()));
    const { host: h, registry } = host(fake.handshaker);
    const t = new FakeTransport();
    const s = new Session(h, t);
    s.onMessage(encodePingReq(), true);
    expectDisconnect(t, 'LK_FRAME_UNEXPECTED');
    expect(s.state).toBe('CLOSED');
    expect(fake.calls.run + fake.calls.resume).toBe(0);
    expect(registry.closed).toEqual([s]);
    // A closed session ignores what still arrives.
    s.onMessage(CONNECT, true);
    await tick();
    expect(fake.calls.run).toBe(0);
  });

  it('a text frame, an oversized frame, an unknown frame type and a truncated CONNECT each end it with their own code', () => {
    const fake = fakeHandshaker(async () => accepted(newKeys()));
    const cases: Array<[Buffer, boolean, keyof typeof ERRORS]> = [
      [CONNECT, false, 'LK_FRAME_TEXT'],
      [Buffer.alloc(LIMITS.maxFrameBytes + 1, 1), true, 'LK_FRAME_TOO_LARGE'],
      [Buffer.from([0xee, 0x01, 0x02]), true, 'LK_FRAME_UNKNOWN_TYPE'],
      [Buffer.concat([CONNECT.subarray(0, 1), Buffer.from([0x05])]), true, 'LK_FRAME_MALFORMED'],
    ];
    for (const [data, binary, code] of cases) {
      const t = new FakeTransport();
      new Session(host(fake.handshaker).host, t).onMessage(data, binary);
      expectDisconnect(t, code);
    }
    expect(fake.calls.run).toBe(0);
  });
});

describe('the handshake', () => {
  it('CONNECT -> HANDSHAKING -> CONNACK ACCEPTED -> ESTABLISHED, with the keepalive clamped and the registry told once', async () => {
    const { s, t, registry, calls, stats } = await established();
    expect(calls.run).toBe(1);
    expect(calls.addresses).toEqual(['192.0.2.7']);
    expect(s.state).toBe('ESTABLISHED');
    const f = t.last();
    expect(f.type).toBe('CONNACK');
    if (f.type !== 'CONNACK') return;
    expect(f.connack.returnCode).toBe(ConnackCode.ACCEPTED);
    expect(Buffer.from(f.connack.confirmation!)).toEqual(Buffer.alloc(32, 7));
    expect(f.connack.sessionId).toBe(s.id);
    expect(f.connack.keepAliveSec).toBe(30);
    expect(s.keepAliveMs).toBe(30_000);
    expect(registry.established).toEqual([s]);
    expect(stats.handshakesAccepted).toBe(1);
    expect(s.endpointKey).toBe('app-1/kh-1');
  });

  it('a keepalive under the minimum is raised to it, over the maximum cut to it, 0 gets the default', async () => {
    for (const [asked, agreed] of [[1, 5], [100_000, 600], [0, 60]] as const) {
      const keys = newKeys();
      const t = new FakeTransport();
      new Session(host(fakeHandshaker(async () => accepted(keys, asked)).handshaker).host, t).onMessage(CONNECT, true);
      await tick();
      const f = t.last();
      expect(f.type === 'CONNACK' && f.connack.keepAliveSec).toBe(agreed);
    }
  });

  it('a refusal from the handshaker is a CONNACK with its return code and error code, then a close with its close code', async () => {
    const fake = fakeHandshaker(async () => {
      throw new LatchkeyError('LK_CRED_REVOKED');
    });
    const { host: h, registry, stats } = host(fake.handshaker);
    const t = new FakeTransport();
    const s = new Session(h, t);
    s.onMessage(CONNECT, true);
    await tick();
    const f = t.last();
    expect(f.type).toBe('CONNACK');
    if (f.type !== 'CONNACK') return;
    expect(f.connack.returnCode).toBe(ConnackCode[ERRORS.LK_CRED_REVOKED.connack!]);
    expect(f.connack.errorCode).toBe('LK_CRED_REVOKED');
    expect(f.connack.sessionId).toBeNull();
    expect(t.closed?.code).toBe(ERRORS.LK_CRED_REVOKED.close);
    expect(s.state).toBe('CLOSED');
    expect(registry.established).toEqual([]);
    expect(stats.handshakesAccepted).toBe(0);
  });

  it('a revocation learnt while the handshake ran refuses it with LK_CRED_REVOKED', async () => {
    const keys = newKeys();
    const { host: h } = host(fakeHandshaker(async () => accepted(keys)).handshaker, { revoked: true });
    const t = new FakeTransport();
    new Session(h, t).onMessage(CONNECT, true);
    await tick();
    const f = t.last();
    expect(f.type === 'CONNACK' && f.connack.errorCode).toBe('LK_CRED_REVOKED');
  });

  it('frames sent before CONNACK end the session with LK_FRAME_UNEXPECTED, a second CONNECT included', async () => {
    let release!: (a: HandshakeAccepted) => void;
    const fake = fakeHandshaker(() => new Promise<HandshakeAccepted>((r) => (release = r)));
    const t = new FakeTransport();
    const s = new Session(host(fake.handshaker).host, t);
    s.onMessage(CONNECT, true);
    await tick();
    expect(s.state).toBe('HANDSHAKING');
    s.onMessage(CONNECT, true);
    expectDisconnect(t, 'LK_FRAME_UNEXPECTED');
    // The handshake finishing afterwards sends nothing more.
    const n = t.sent.length;
    release(accepted(newKeys()));
    await tick();
    expect(t.sent.length).toBe(n);
    expect(fake.calls.run).toBe(1);
  });

  it('a connection that goes while its handshake runs: nothing sent after, registry told once, its RSA decrypt counted as unused', async () => {
    let release!: (a: HandshakeAccepted) => void;
    let ticket: { decrypted: boolean; cancelled: boolean } | null = null;
    const handshaker = {
      run: (_c: unknown, _a: string, tk: { decrypted: boolean; cancelled: boolean }) => {
        ticket = tk;
        return new Promise<HandshakeAccepted>((r) => (release = r));
      },
    } as unknown as Handshaker;
    const { host: h, registry, stats } = host(handshaker);
    const t = new FakeTransport();
    const s = new Session(h, t);
    s.onMessage(CONNECT, true);
    await tick();
    expect(ticket).not.toBeNull();
    s.onTransportClosed();
    expect(ticket!.cancelled).toBe(true);
    // The decrypt had already run in a worker when the close came.
    ticket!.decrypted = true;
    release(accepted(newKeys()));
    await tick();
    expect(t.sent).toEqual([]);
    expect(s.state).toBe('CLOSED');
    expect(registry.closed).toEqual([s]);
    expect(registry.established).toEqual([]);
    expect(stats.rsaDecryptsUnused.get('closed')).toBe(1);
  });
});

describe('an established session', () => {
  it('PINGREQ gets PINGRESP; TICKETREQ with resumption off gets an empty ticket of lifetime 0', async () => {
    const { s, t } = await established();
    s.onMessage(encodePingReq(), true);
    expect(t.last().type).toBe('PINGRESP');
    s.onMessage(encodeTicketReq(), true);
    const f = t.last();
    expect(f.type).toBe('TICKET');
    if (f.type === 'TICKET') {
      expect(f.ticket.lifetimeSec).toBe(0);
      expect(f.ticket.ticket.length).toBe(0);
    }
  });

  it('a SYNC with counter 0 gets its SyncResponse sealed with the server counter 0, the next with 1', async () => {
    const { s, t, tx, rx, syncs } = await established();
    for (const counter of [0, 1]) {
      s.onMessage(encodeSync({ counter, ciphertext: tx.seal(counter, encodeSyncRequest(emptySyncRequest(40 + counter))) }), true);
      await tick();
      await tick();
      const f = t.last();
      expect(f.type).toBe('SYNC');
      if (f.type !== 'SYNC') return;
      expect(f.sync.counter).toBe(counter);
      const plain = rx.open(counter, f.sync.ciphertext);
      expect(plain).not.toBeNull();
      const res = decodeSyncResponse(plain!);
      expect(res.ok && res.value.requestId).toBe(40 + counter);
    }
    expect(syncs).toHaveLength(2);
  });

  it('a SYNC out of order ends the session with LK_FRAME_BAD_COUNTER; one that does not authenticate with LK_FRAME_DECRYPT_FAILED', async () => {
    const a = await established();
    a.s.onMessage(encodeSync({ counter: 1, ciphertext: a.tx.seal(1, encodeSyncRequest(emptySyncRequest(1))) }), true);
    expectDisconnect(a.t, 'LK_FRAME_BAD_COUNTER');
    expect(a.syncs).toHaveLength(0);

    const b = await established();
    const sealed = b.tx.seal(0, encodeSyncRequest(emptySyncRequest(1)));
    sealed[sealed.length - 1]! ^= 1;
    b.s.onMessage(encodeSync({ counter: 0, ciphertext: sealed }), true);
    expectDisconnect(b.t, 'LK_FRAME_DECRYPT_FAILED');
    expect(b.syncs).toHaveLength(0);
  });

  it('a DISCONNECT from the endpoint closes with 1000 and tells the registry', async () => {
    const { s, t, registry } = await established();
    s.onMessage(encodeDisconnect({ reason: 0, errorCode: null }), true);
    expect(t.closed?.code).toBe(1000);
    expect(s.state).toBe('CLOSED');
    expect(registry.closed).toEqual([s]);
  });

  it('end() from the registry (takeover) sends DISCONNECT with the code and closes with its close code', async () => {
    const { s, t } = await established();
    s.end('LK_SESSION_REPLACED');
    expectDisconnect(t, 'LK_SESSION_REPLACED');
    expect(s.isOpen).toBe(false);
  });

  it('past messagesPerSec (a 2 s bucket) the session ends with LK_SESSION_RATE_LIMITED', async () => {
    const { s, t } = await established({ limits: { ...LIMITS, messagesPerSec: 2 } });
    // The bucket holds 2 s of the rate: 4 frames, counted from the CONNECT (1), so 3 pings pass.
    for (let i = 0; i < 3; i++) s.onMessage(encodePingReq(), true);
    expect(t.last().type).toBe('PINGRESP');
    s.onMessage(encodePingReq(), true);
    expectDisconnect(t, 'LK_SESSION_RATE_LIMITED');
  });
});
