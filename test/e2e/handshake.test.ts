/**
 * Every CONNACK refusal path and every malformed-frame class, over a real WebSocket against a real
 * in-process server: each ends in CONNACK(refusal) or DISCONNECT BAD_REQUEST, a closed socket with
 * the catalogue's close code, and no session left in the registry.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnackCode, DisconnectReason, ERRORS, type ErrorCode } from '../../src/errors.js';
import { emptySyncRequest } from '../../src/protocol/schemas.js';
import { decodeSyncResponse } from '../../src/protocol/frames.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { makeEndpointKey, prepareConnect, syncFrame, openSync, type ConnectOptions, type NodeEndpointKey } from '../helpers/wire-client.js';
import { openRaw, withTimeout, type RawSocket } from '../helpers/ws.js';
import type { Application } from '../../src/store/store.js';

let h: Harness;
let trustful: Application;
let internal: Application;
const keys: NodeEndpointKey[] = [];

beforeAll(async () => {
  h = await startHarness({ maxFrameBytes: 4096, handshakeTimeoutMs: 300 });
  trustful = await h.app();
  internal = await h.app({ credentialsService: 'internal' });
  for (let i = 0; i < 4; i++) keys.push(makeEndpointKey());
});
afterAll(async () => {
  await h?.close();
});

function opts(over: Partial<ConnectOptions> = {}): ConnectOptions {
  return { appToken: trustful.appToken, serverKeyId: h.serverKeyId, serverPublicKey: h.serverSpki, key: keys[0]!, ...over };
}

async function noLeak(): Promise<void> {
  const deadline = Date.now() + 3000;
  while (h.server.registry.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(h.server.registry.size).toBe(0);
}

async function expectRefusal(frame: Buffer, code: ErrorCode): Promise<void> {
  const s = await openRaw(h.url);
  s.send(frame);
  const f = await s.decoded(0);
  expect(f.type).toBe('CONNACK');
  if (f.type !== 'CONNACK') return;
  expect(f.connack.errorCode).toBe(code);
  expect(f.connack.returnCode).toBe(ConnackCode[ERRORS[code].connack!]);
  expect(f.connack.confirmation).toBeNull();
  const closed = await withTimeout(s.closed, 3000, 'close');
  expect(closed.code).toBe(ERRORS[code].close);
  await noLeak();
}

async function expectDisconnect(s: RawSocket, index: number, code: ErrorCode): Promise<void> {
  const f = await s.decoded(index);
  expect(f.type).toBe('DISCONNECT');
  if (f.type !== 'DISCONNECT') return;
  expect(f.disconnect.errorCode).toBe(code);
  expect(f.disconnect.reason).toBe(DisconnectReason[ERRORS[code].disconnect ?? 'BAD_REQUEST']);
  const closed = await withTimeout(s.closed, 3000, 'close');
  expect(closed.code).toBe(ERRORS[code].close);
  await noLeak();
}

async function established(o: ConnectOptions = opts()): Promise<{ s: RawSocket; p: ReturnType<typeof prepareConnect> }> {
  const p = prepareConnect(o);
  const s = await openRaw(h.url);
  s.send(p.frame);
  const f = await s.decoded(0);
  if (f.type !== 'CONNACK') throw new Error(`expected CONNACK, got ${f.type}`);
  expect(f.connack.returnCode).toBe(ConnackCode.ACCEPTED);
  expect(Buffer.from(f.connack.confirmation!).equals(p.confirmation)).toBe(true);
  return { s, p };
}

describe('handshake', () => {
  it('accepts a valid CONNECT with key confirmation and answers PINGREQ', async () => {
    const { s } = await established();
    s.send(Buffer.from([0x0c]));
    const f = await s.decoded(1);
    expect(f.type).toBe('PINGRESP');
    s.send(Buffer.from([0x0e, 0x00, 0x00]));
    await withTimeout(s.closed, 3000, 'close');
    await noLeak();
  });

  it('a malformed event declaration in the CONNECT\'s SyncRequest is a FAILURE answer in CONNACK, not the end of the session', async () => {
    const sync = emptySyncRequest(1);
    sync.profileSyncRequest = { profileBody: Buffer.from('{}'), endpointAccessToken: null };
    sync.eventSyncRequest = { eventListenersRequests: null, events: null, listenedEventClassFQNs: ['x'.repeat(300)] };
    const p = prepareConnect(opts({ key: makeEndpointKey(), sync }));
    const s = await openRaw(h.url);
    s.send(p.frame);
    const f = await s.decoded(0);
    expect(f.type).toBe('CONNACK');
    if (f.type !== 'CONNACK') return;
    expect(f.connack.returnCode).toBe(ConnackCode.ACCEPTED);
    const res = decodeSyncResponse(p.rx.open(0, f.connack.sync!)!);
    expect(res.ok && res.value).toMatchObject({ requestId: 1, status: 'FAILURE', errorCode: 'LK_EVENT_CLASSES_INVALID' });
    s.send(Buffer.from([0x0c]));
    expect((await s.decoded(1)).type).toBe('PINGRESP');
    s.close();
  });

  describe('refusals that cost no RSA work', () => {
    it.each([
      ['unknown app token', () => prepareConnect(opts({ appToken: 'no-such-token-123' })).frame, 'LK_HS_UNKNOWN_APPLICATION'],
      ['bad protocol version', () => prepareConnect(opts({ body: { protocolVersion: 99 } })).frame, 'LK_HS_BAD_PROTOCOL_VERSION'],
      ['unknown server key id', () => prepareConnect(opts({ serverKeyId: 'AAAAAAAAAAAAAAAA' })).frame, 'LK_HS_UNKNOWN_SERVER_KEY'],
      ['stale timestamp', () => prepareConnect(opts({ body: { timestamp: Date.now() - 10 * 60_000 } })).frame, 'LK_HS_STALE_TIMESTAMP'],
      ['future timestamp', () => prepareConnect(opts({ body: { timestamp: Date.now() + 10 * 60_000 } })).frame, 'LK_HS_STALE_TIMESTAMP'],
      ['key/hash mismatch', () => prepareConnect(opts({ body: { keyHash: keys[1]!.keyHashRaw } })).frame, 'LK_HS_KEY_HASH_MISMATCH'],
      ['unknown credentials under internal', () => prepareConnect(opts({ appToken: internal.appToken, key: keys[2]! })).frame, 'LK_CRED_UNKNOWN'],
      ['public key required', () => prepareConnect(opts({ key: keys[3]!, body: { publicKey: null } })).frame, 'LK_HS_PUBLIC_KEY_REQUIRED'],
    ] as const)('%s', async (_name, make, code) => {
      const before = h.server.pool.tasksRun;
      await expectRefusal(make(), code);
      expect(h.server.pool.tasksRun).toBe(before);
    });

    it('replayed nonce', async () => {
      const p = prepareConnect(opts());
      const first = await openRaw(h.url);
      first.send(p.frame);
      expect((await first.decoded(0)).type).toBe('CONNACK');
      first.close();
      await withTimeout(first.closed, 3000, 'close');
      const before = h.server.pool.tasksRun;
      await expectRefusal(p.frame, 'LK_HS_REPLAYED_NONCE');
      expect(h.server.pool.tasksRun).toBe(before);
    });

    it('revoked credentials', async () => {
      const k = makeEndpointKey();
      await h.server.store.provisionCredentials(internal.id, k.keyHash, k.spki);
      await h.server.store.revokeCredentials(internal.id, k.keyHash);
      const before = h.server.pool.tasksRun;
      await expectRefusal(prepareConnect(opts({ appToken: internal.appToken, key: k })).frame, 'LK_CRED_REVOKED');
      expect(h.server.pool.tasksRun).toBe(before);
    });

    it('credentials in use by another endpoint', async () => {
      const k = makeEndpointKey();
      await h.server.store.provisionCredentials(internal.id, k.keyHash, k.spki);
      const bound = await h.server.store.bindCredentials(internal.id, k.keyHash, 'another-endpoint');
      expect(bound.ok).toBe(true);
      const before = h.server.pool.tasksRun;
      await expectRefusal(prepareConnect(opts({ appToken: internal.appToken, key: k })).frame, 'LK_CRED_IN_USE');
      expect(h.server.pool.tasksRun).toBe(before);
    });
  });

  describe('refusals after the crypto pool', () => {
    it('bad signature', async () => {
      await expectRefusal(prepareConnect(opts({ signWith: keys[1]!.privateKey })).frame, 'LK_HS_BAD_SIGNATURE');
    });
    it('garbage signature bytes', async () => {
      await expectRefusal(prepareConnect(opts({ signature: crypto.randomBytes(256) })).frame, 'LK_HS_BAD_SIGNATURE');
    });
    it('secret wrapped to another key', async () => {
      const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
      await expectRefusal(prepareConnect(opts({ serverPublicKey: other })).frame, 'LK_HS_BAD_SECRET');
    });
    it('a bad signature does not burn the nonce', async () => {
      const nonce = crypto.randomBytes(16);
      const timestamp = Date.now();
      await expectRefusal(prepareConnect(opts({ signWith: keys[1]!.privateKey, body: { nonce, timestamp } })).frame, 'LK_HS_BAD_SIGNATURE');
      const { s } = await established(opts({ body: { nonce, timestamp } }));
      s.close();
      await withTimeout(s.closed, 3000, 'close');
    });
  });

  it('provisioned credentials under internal connect and bind to the endpoint', async () => {
    const k = makeEndpointKey();
    await h.server.store.provisionCredentials(internal.id, k.keyHash, k.spki);
    const { s } = await established(opts({ appToken: internal.appToken, key: k, body: { publicKey: null } }));
    const rec = await h.server.store.getCredentials(internal.id, k.keyHash);
    expect(rec?.status).toBe('IN_USE');
    expect(rec?.endpointId).toBe(k.keyHash);
    s.close();
    await withTimeout(s.closed, 3000, 'close');
  });

  it('a second session of the same endpoint replaces the first', async () => {
    const k = makeEndpointKey();
    const a = await established(opts({ key: k }));
    const b = await established(opts({ key: k }));
    await expectDisconnectOnly(a.s, 1, 'LK_SESSION_REPLACED');
    b.s.close();
    await withTimeout(b.s.closed, 3000, 'close');
    await noLeak();
  });
});

async function expectDisconnectOnly(s: RawSocket, index: number, code: ErrorCode): Promise<void> {
  const f = await s.decoded(index);
  expect(f.type === 'DISCONNECT' && f.disconnect.errorCode).toBe(code);
  expect((await withTimeout(s.closed, 3000, 'close')).code).toBe(ERRORS[code].close);
}

describe('malformed frames', () => {
  it('empty frame', async () => {
    const s = await openRaw(h.url);
    s.send(new Uint8Array(0));
    await expectDisconnect(s, 0, 'LK_FRAME_EMPTY');
  });
  it('text frame', async () => {
    const s = await openRaw(h.url);
    s.send('hello');
    await expectDisconnect(s, 0, 'LK_FRAME_TEXT');
  });
  it('unknown frame type', async () => {
    const s = await openRaw(h.url);
    s.send(Buffer.from([0x7f, 1, 2, 3]));
    await expectDisconnect(s, 0, 'LK_FRAME_UNKNOWN_TYPE');
  });
  it('truncated CONNECT', async () => {
    const s = await openRaw(h.url);
    const f = prepareConnect(opts()).frame;
    s.send(f.subarray(0, f.length >> 1));
    await expectDisconnect(s, 0, 'LK_FRAME_MALFORMED');
  });
  it('bad Avro', async () => {
    const s = await openRaw(h.url);
    s.send(Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await expectDisconnect(s, 0, 'LK_FRAME_MALFORMED');
  });
  it('trailing bytes after a PINGREQ', async () => {
    const { s } = await established();
    s.send(Buffer.from([0x0c, 0x00]));
    await expectDisconnect(s, 1, 'LK_FRAME_MALFORMED');
  });
  it('ConnectBody that is not valid Avro inside a valid Connect', async () => {
    const s = await openRaw(h.url);
    const { encodeConnect } = await import('../../src/protocol/frames.js');
    s.send(encodeConnect({ body: Buffer.from([0x02, 0xff]), signature: Buffer.alloc(256), sync: null }));
    await expectDisconnect(s, 0, 'LK_FRAME_MALFORMED');
  });
  it('oversize frame (above maxFrameBytes)', async () => {
    const s = await openRaw(h.url);
    s.send(Buffer.alloc(4097, 0x0f));
    await expectDisconnect(s, 0, 'LK_FRAME_TOO_LARGE');
  });
  it('frame above the hard limit is cut off by the transport: no close frame, the endpoint sees 1006 (docs/protocol.md 1)', async () => {
    const s = await openRaw(h.url);
    s.send(Buffer.alloc(4096 * 4 + 1, 0x0f));
    const closed = await withTimeout(s.closed, 3000, 'close');
    expect(closed.code).toBe(1006);
    await noLeak();
  });
  it('SYNC before CONNECT', async () => {
    const s = await openRaw(h.url);
    const p = prepareConnect(opts());
    s.send(syncFrame(p.tx, 0, emptySyncRequest(1)));
    await expectDisconnect(s, 0, 'LK_FRAME_UNEXPECTED');
  });
  it('second CONNECT in a session', async () => {
    const { s } = await established();
    s.send(prepareConnect(opts()).frame);
    await expectDisconnect(s, 1, 'LK_FRAME_UNEXPECTED');
  });
  it('out-of-order counter', async () => {
    const { s, p } = await established();
    s.send(syncFrame(p.tx, 3, emptySyncRequest(1)));
    await expectDisconnect(s, 1, 'LK_FRAME_BAD_COUNTER');
  });
  it('replayed counter', async () => {
    const { s, p } = await established();
    const req = emptySyncRequest(1);
    req.profileSyncRequest = { profileBody: Buffer.from('p'), endpointAccessToken: null };
    const frame = syncFrame(p.tx, 0, req);
    s.send(frame);
    const res = openSync(p.rx, await s.frame(1));
    expect(res.counter).toBe(0);
    s.send(frame);
    await expectDisconnect(s, 2, 'LK_FRAME_BAD_COUNTER');
  });
  it('tampered ciphertext', async () => {
    const { s, p } = await established();
    const frame = Buffer.from(syncFrame(p.tx, 0, emptySyncRequest(1)));
    frame[frame.length - 3]! ^= 0x01;
    s.send(frame);
    await expectDisconnect(s, 1, 'LK_FRAME_DECRYPT_FAILED');
  });
  it('tampered ciphertext embedded in CONNECT', async () => {
    const p = prepareConnect(opts({ sync: emptySyncRequest(1) }));
    const frame = Buffer.from(p.frame);
    frame[frame.length - 2]! ^= 0x01;
    const s = await openRaw(h.url);
    s.send(frame);
    await expectDisconnect(s, 0, 'LK_FRAME_DECRYPT_FAILED');
  });
  it('a socket that never sends CONNECT is closed', async () => {
    const s = await openRaw(h.url);
    await expectDisconnect(s, 0, 'LK_HS_TIMEOUT');
  });
  it('the server keeps serving after all of the above', async () => {
    const { s } = await established();
    s.close();
    await withTimeout(s.closed, 3000, 'close');
  });
});

describe('hardening', () => {
  it('refuses wrongly sized signature and secret before any RSA work', async () => {
    const before = h.server.pool.tasksRun;
    await expectRefusal(prepareConnect(opts({ signature: crypto.randomBytes(3000) })).frame, 'LK_HS_BAD_SIGNATURE');
    await expectRefusal(prepareConnect(opts({ body: { wrappedSecret: crypto.randomBytes(300) } })).frame, 'LK_HS_BAD_SECRET');
    expect(h.server.pool.tasksRun).toBe(before);
  });

  it('a backend failure during the embedded registration refuses with REFUSE_SERVER_UNAVAILABLE', async () => {
    const store = h.server.store;
    const orig = store.saveEndpoint.bind(store);
    const { LatchkeyError } = await import('../../src/errors.js');
    store.saveEndpoint = async () => {
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'injected');
    };
    try {
      const req = emptySyncRequest(1);
      req.profileSyncRequest = { profileBody: Buffer.from('p'), endpointAccessToken: null };
      await expectRefusal(prepareConnect(opts({ key: makeEndpointKey(), sync: req })).frame, 'LK_SERVER_UNAVAILABLE');
    } finally {
      store.saveEndpoint = orig;
    }
  });

  it('a backend failure during a SYNC answers FAILURE and keeps the session', async () => {
    const store = h.server.store;
    const orig = store.saveEndpoint.bind(store);
    const { LatchkeyError } = await import('../../src/errors.js');
    const { s, p } = await established(opts({ key: makeEndpointKey() }));
    store.saveEndpoint = async () => {
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'injected');
    };
    const req = emptySyncRequest(7);
    req.profileSyncRequest = { profileBody: Buffer.from('p'), endpointAccessToken: null };
    try {
      s.send(syncFrame(p.tx, 0, req));
      const res = openSync(p.rx, await s.frame(1));
      expect(res.response).toMatchObject({ requestId: 7, status: 'FAILURE', errorCode: 'LK_SERVER_UNAVAILABLE' });
    } finally {
      store.saveEndpoint = orig;
    }
    req.requestId = 8;
    s.send(syncFrame(p.tx, 1, req));
    expect(openSync(p.rx, await s.frame(2)).response).toMatchObject({ requestId: 8, status: 'SUCCESS' });
    s.close();
    await withTimeout(s.closed, 3000, 'close');
  });
});
