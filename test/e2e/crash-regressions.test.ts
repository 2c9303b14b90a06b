/**
 * Inputs that once crashed a live server, replayed against one (issue 9: every input that ever
 * crashed becomes a regression test). Each must end at most its own session with a coded answer,
 * and the server must go on serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnackCode } from '../../src/errors.js';
import { decodeFrame, encodeSync } from '../../src/protocol/frames.js';
import { emptySyncRequest, types } from '../../src/protocol/schemas.js';
import type { Application } from '../../src/store/store.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { makeEndpointKey, prepareConnect } from '../helpers/wire-client.js';
import { openRaw, withTimeout } from '../helpers/ws.js';

let h: Harness;
let app: Application;
beforeAll(async () => {
  h = await startHarness();
  app = await h.app();
});
afterAll(async () => {
  await h?.close();
});

describe('crash regressions', () => {
  it('fuzz seed 3 (ws-sess4#0): a SyncRequest whose int requestId needs more than 32 bits gets DISCONNECT LK_SYNC_MALFORMED; the server lives', async () => {
    const c = prepareConnect({ appToken: app.appToken, serverKeyId: h.serverKeyId, serverPublicKey: h.serverSpki, key: makeEndpointKey() });
    const ws = await openRaw(h.url);
    ws.send(c.frame);
    const ack = await ws.decoded(0);
    expect(ack.type === 'CONNACK' && ack.connack.returnCode).toBe(ConnackCode.ACCEPTED);
    // requestId: zig-zag varint of 1030792151612 (the fuzzer's value), then an empty SyncRequest.
    let v = 1030792151612n * 2n;
    const varint: number[] = [];
    while (v >= 0x80n) {
      varint.push(Number((v & 0x7fn) | 0x80n));
      v >>= 7n;
    }
    varint.push(Number(v));
    const plain = Buffer.concat([Buffer.from(varint), types.syncRequest.toBuffer(emptySyncRequest(1)).subarray(1)]);
    ws.send(encodeSync({ counter: 0, ciphertext: c.tx.seal(0, plain) }));
    const closed = await withTimeout(ws.closed, 3000, 'close');
    const last = decodeFrame(ws.frames[ws.frames.length - 1]!);
    expect(last.ok && last.value.type === 'DISCONNECT' && last.value.disconnect.errorCode).toBe('LK_SYNC_MALFORMED');
    expect(closed.code).toBe(4528);
    expect((await fetch(`${h.adminUrl}/healthz`)).status).toBe(200);
  });
});
