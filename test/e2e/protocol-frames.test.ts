/**
 * docs/protocol.md as a third-party implementer reads it (issue 11, "docs/protocol.md, as a
 * third-party implementer meets it"), pinned on a real server over real sockets: frame size limits
 * at their exact boundaries (section 1: the whole message counts, type byte included; over the hard
 * limit the connection is cut without a close frame), and the handshake's embedded SyncRequest
 * (section 4.1 step 6, 4.2 checks 14-15, 4.5: bare AES-GCM ciphertext and tag, counter 0).
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveSessionKeys, signatureInput } from '../../src/crypto/session-crypto.js';
import { ConnackCode, DisconnectReason, ERRORS, LatchkeyError, type ErrorCode } from '../../src/errors.js';
import { decodeFrame, decodeSyncResponse, encodeConnect, encodeConnectBody, encodeSync, encodeSyncRequest } from '../../src/protocol/frames.js';
import { emptySyncRequest, type Connect, type SyncRequest } from '../../src/protocol/schemas.js';
import type { Application } from '../../src/store/store.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { makeEndpointKey, prepareConnect, type ConnectOptions } from '../helpers/wire-client.js';
import { openRaw, withTimeout, type RawSocket } from '../helpers/ws.js';

const MAX = 4096;
let h: Harness;
let app: Application;

beforeAll(async () => {
  h = await startHarness({ maxFrameBytes: MAX });
  app = await h.app();
});
afterAll(async () => {
  await h?.close();
});

function opts(over: Partial<ConnectOptions> = {}): ConnectOptions {
  return { appToken: app.appToken, serverKeyId: h.serverKeyId, serverPublicKey: h.serverSpki, key: makeEndpointKey(), ...over };
}

async function expectDisconnect(s: RawSocket, code: ErrorCode): Promise<void> {
  const f = await s.decoded(0);
  expect(f.type).toBe('DISCONNECT');
  if (f.type !== 'DISCONNECT') return;
  expect(f.disconnect.errorCode).toBe(code);
  expect(f.disconnect.reason).toBe(DisconnectReason.BAD_REQUEST);
  expect((await withTimeout(s.closed, 3000, 'close')).code).toBe(ERRORS[code].close);
}

/** A raw TCP WebSocket: upgrade by hand, then write masked frames and record every byte the server sends. */
async function rawUpgrade(): Promise<{ socket: net.Socket; received: () => Buffer; ended: Promise<void> }> {
  const socket = net.connect({ port: h.server.port, host: '127.0.0.1' });
  let head = Buffer.alloc(0);
  let after = Buffer.alloc(0);
  let upgraded = false;
  const ended = new Promise<void>((r) => socket.on('close', () => r()));
  socket.on('error', () => undefined); // a reset is one of the outcomes under test
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no upgrade answer')), 5000);
    socket.on('connect', () =>
      socket.write(`GET /ep/v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`),
    );
    socket.on('data', (d) => {
      if (upgraded) {
        after = Buffer.concat([after, d]);
        return;
      }
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(t);
      if (!head.subarray(0, 12).toString('latin1').includes(' 101')) return reject(new Error(head.toString('latin1')));
      upgraded = true;
      after = head.subarray(end + 4);
      resolve();
    });
  });
  return { socket, received: () => after, ended };
}

/** One masked binary WebSocket frame header announcing `length` payload bytes (RFC 6455 5.2). */
function binaryHeader(length: number, mask: Buffer): Buffer {
  if (length < 126) return Buffer.concat([Buffer.from([0x82, 0x80 | length]), mask]);
  if (length < 65536) {
    const b = Buffer.from([0x82, 0x80 | 126, 0, 0]);
    b.writeUInt16BE(length, 2);
    return Buffer.concat([b, mask]);
  }
  const b = Buffer.alloc(10);
  b[0] = 0x82;
  b[1] = 0x80 | 127;
  b.writeBigUInt64BE(BigInt(length), 2);
  return Buffer.concat([b, mask]);
}

describe('section 1: frame size limits count the whole message, type byte included', () => {
  it('a frame of exactly maxFrameBytes is read (here: junk, so LK_FRAME_MALFORMED, not LK_FRAME_TOO_LARGE)', async () => {
    const s = await openRaw(h.url);
    s.send(Buffer.alloc(MAX, 0x0f));
    await expectDisconnect(s, 'LK_FRAME_MALFORMED');
  });
  it('maxFrameBytes + 1 gets DISCONNECT BAD_REQUEST LK_FRAME_TOO_LARGE, close 4524', async () => {
    const s = await openRaw(h.url);
    s.send(Buffer.alloc(MAX + 1, 0x0f));
    await expectDisconnect(s, 'LK_FRAME_TOO_LARGE');
  });
  it('exactly 4 x maxFrameBytes (the hard limit) still gets LK_FRAME_TOO_LARGE, close 4524', async () => {
    const s = await openRaw(h.url);
    s.send(Buffer.alloc(4 * MAX, 0x0f));
    await expectDisconnect(s, 'LK_FRAME_TOO_LARGE');
  });
  it('the limit applies to the reassembled message: fragments adding up to maxFrameBytes + 1 get LK_FRAME_TOO_LARGE', async () => {
    const up = await rawUpgrade();
    const mask = crypto.randomBytes(4);
    const half = (MAX + 1) >> 1;
    const part = (bytes: Buffer, first: boolean, fin: boolean): Buffer => {
      const hdr = binaryHeader(bytes.length, mask);
      hdr[0] = (fin ? 0x80 : 0) | (first ? 0x02 : 0x00);
      return Buffer.concat([hdr, bytes.map((b, i) => b ^ mask[i % 4]!)]);
    };
    up.socket.write(Buffer.concat([part(Buffer.alloc(half, 0x0f), true, false), part(Buffer.alloc(MAX + 1 - half, 0x0f), false, true)]));
    await withTimeout(up.ended, 3000, 'close');
    // An unmasked server frame: 0x82, length, then the DISCONNECT frame; then a close frame (0x88) with 4524.
    const got = up.received();
    expect(got[0]).toBe(0x82);
    const closeAt = got.indexOf(0x88, 2 + got[1]!);
    expect(closeAt).toBeGreaterThan(0);
    expect(got.readUInt16BE(closeAt + 2)).toBe(ERRORS.LK_FRAME_TOO_LARGE.close);
  });
  it('over 4 x maxFrameBytes: the TCP connection is cut after the frame header, with no DISCONNECT and no close frame (the endpoint sees 1006)', async () => {
    const up = await rawUpgrade();
    // Only the header of a frame one byte over the hard limit, and a little payload: the server must not wait for the rest.
    const mask = crypto.randomBytes(4);
    up.socket.write(Buffer.concat([binaryHeader(4 * MAX + 1, mask), Buffer.alloc(16)]));
    await withTimeout(up.ended, 3000, 'the server cuts the connection');
    expect(up.received().length).toBe(0);
    // Through a WebSocket client: an abnormal closure, 1006 (never 1009).
    const s = await openRaw(h.url);
    s.send(Buffer.alloc(4 * MAX + 1, 0x0f));
    expect((await withTimeout(s.closed, 3000, 'close')).code).toBe(1006);
    expect(s.frames).toHaveLength(0);
  });
});

describe('sections 4.1, 4.2 and 4.5: the SyncRequest embedded in CONNECT', () => {
  /** A signed CONNECT (no sync) and its session keys, derived as section 4.3 says. */
  function signed(): { connect: Connect; c2s: Buffer; s2c: Buffer } {
    const secret = crypto.randomBytes(64);
    const p = prepareConnect(opts({ secret }));
    const decoded = decodeFrame(p.frame);
    if (!decoded.ok || decoded.value.type !== 'CONNECT') throw new Error('not a CONNECT');
    const keys = deriveSessionKeys(secret, signatureInput(encodeConnectBody(p.body)));
    return { connect: decoded.value.connect, c2s: Buffer.from(keys.c2s), s2c: Buffer.from(keys.s2c) };
  }
  /** AES-256-GCM with nonce 0^12 and aad 0F || 0^8 (counter 0), as the document spells it out; output ciphertext || tag. */
  const AAD0 = Buffer.from([0x0f, 0, 0, 0, 0, 0, 0, 0, 0]);
  function seal0(key: Buffer, plain: Buffer, aad = AAD0): Buffer {
    const c = crypto.createCipheriv('aes-256-gcm', key, Buffer.alloc(12));
    c.setAAD(aad);
    return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  }
  function open0(key: Buffer, sealed: Buffer): Buffer {
    const d = crypto.createDecipheriv('aes-256-gcm', key, Buffer.alloc(12));
    d.setAAD(AAD0);
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
  }
  const register = (requestId: number): SyncRequest => ({ ...emptySyncRequest(requestId), profileSyncRequest: { profileBody: Buffer.from('{}'), endpointAccessToken: null } });

  it('CONNECT.sync is bare AES-GCM ciphertext || tag under keyC2S, counter 0 (aad 0F || 0^8); CONNACK.sync the same under keyS2C', async () => {
    const c = signed();
    const s = await openRaw(h.url);
    s.send(encodeConnect({ ...c.connect, sync: seal0(c.c2s, encodeSyncRequest(register(7))) }));
    const f = await s.decoded(0);
    expect(f.type).toBe('CONNACK');
    if (f.type !== 'CONNACK') return;
    expect(f.connack.returnCode).toBe(ConnackCode.ACCEPTED);
    const res = decodeSyncResponse(open0(c.s2c, Buffer.from(f.connack.sync!)));
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    expect(res.value.requestId).toBe(7);
    expect(res.value.profileSyncResponse?.responseStatus).toBe('DELTA');
    s.close();
  });
  it('check 14: a validly signed CONNECT whose sync does not authenticate gets DISCONNECT BAD_REQUEST LK_FRAME_DECRYPT_FAILED (no CONNACK), close 4527', async () => {
    const c = signed();
    const sealed = seal0(c.c2s, encodeSyncRequest(register(1)));
    sealed[sealed.length - 1]! ^= 0x01; // the last byte of the tag
    const s = await openRaw(h.url);
    s.send(encodeConnect({ ...c.connect, sync: sealed }));
    await expectDisconnect(s, 'LK_FRAME_DECRYPT_FAILED');
  });
  it('check 14: a sync wrapped in a Sync record, or sealed without the 0F byte in its AAD, does not authenticate either', async () => {
    for (const sync of [
      (c: ReturnType<typeof signed>) => encodeSync({ counter: 0, ciphertext: seal0(c.c2s, encodeSyncRequest(register(1))) }).subarray(1),
      (c: ReturnType<typeof signed>) => seal0(c.c2s, encodeSyncRequest(register(1)), Buffer.alloc(8)),
    ]) {
      const c = signed();
      const s = await openRaw(h.url);
      s.send(encodeConnect({ ...c.connect, sync: sync(c) }));
      await expectDisconnect(s, 'LK_FRAME_DECRYPT_FAILED');
    }
  });
  it('check 14b: a sync that authenticates but is not exactly one Avro SyncRequest gets DISCONNECT BAD_REQUEST LK_SYNC_MALFORMED, close 4528', async () => {
    const c = signed();
    const s = await openRaw(h.url);
    s.send(encodeConnect({ ...c.connect, sync: seal0(c.c2s, Buffer.concat([encodeSyncRequest(register(1)), Buffer.from([0x00])])) }));
    await expectDisconnect(s, 'LK_SYNC_MALFORMED');
  });
  it('check 15: a backing service failing on the embedded SyncRequest refuses with CONNACK 4 LK_SERVER_UNAVAILABLE, close 4004', async () => {
    const store = h.server.store;
    const orig = store.saveEndpoint.bind(store);
    store.saveEndpoint = async () => {
      throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'injected');
    };
    try {
      const c = signed();
      const s = await openRaw(h.url);
      s.send(encodeConnect({ ...c.connect, sync: seal0(c.c2s, encodeSyncRequest(register(1))) }));
      const f = await s.decoded(0);
      expect(f.type).toBe('CONNACK');
      if (f.type !== 'CONNACK') return;
      expect({ returnCode: f.connack.returnCode, errorCode: f.connack.errorCode }).toEqual({ returnCode: ConnackCode.REFUSE_SERVER_UNAVAILABLE, errorCode: 'LK_SERVER_UNAVAILABLE' });
      expect((await withTimeout(s.closed, 3000, 'close')).code).toBe(ERRORS.LK_SERVER_UNAVAILABLE.close);
    } finally {
      store.saveEndpoint = orig;
    }
  });
});
