/**
 * Inputs that once crashed, hung or confused a live server (found by `npm run fuzz`), replayed
 * against one (issue 9: every input that ever crashed becomes a regression test). Each must end at
 * most its own session with a coded answer, and the server must go on serving.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys } from '../../src/sdk/index.js';
import { ConnackCode } from '../../src/errors.js';
import { decodeFrame, encodeSync } from '../../src/protocol/frames.js';
import { emptySyncRequest, types } from '../../src/protocol/schemas.js';
import type { Application } from '../../src/store/store.js';
import { startHarness, trustfulDefaultVerifier, type Harness } from '../helpers/harness.js';
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

  it('fuzz seed 1 (http#7): a request with Content-Length: 0 whose header arrives in two segments is answered (it hung until the idle timeout)', async () => {
    for (const [port, head] of [
      [h.server.adminPort, 'POST /admin/v1/server-keys HTTP/1.1\r\nHost: 127.0.0.1\r\n'],
      [h.server.port, 'POST /bootstrap/v1/resolve HTTP/1.1\r\nHost: 127.0.0.1\r\n'],
    ] as const) {
      const status = await new Promise<number>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        let got = '';
        s.on('data', (d) => {
          got += d.toString('latin1');
          if (got.includes('\r\n')) {
            s.destroy();
            resolve(Number(got.slice(9, 12)));
          }
        });
        s.on('error', reject);
        s.on('connect', () => {
          s.write(head);
          setTimeout(() => s.write('Content-Length: 0\r\n\r\n'), 50);
        });
        setTimeout(() => reject(new Error(`no answer on port ${port}`)), 4000);
      });
      // Admin: no API key (401); bootstrap: an empty body is not a BootstrapRequest (400).
      expect(status).toBe(port === h.server.adminPort ? 401 : 400);
    }
  });

  it('fuzz seed 1: a user attach with an empty owner id is the endpoint\'s mistake (FAILURE OTHER), not LK_INTERNAL', async () => {
    const verifierToken = await trustfulDefaultVerifier(h, app.id);
    const c = new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: app.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys: await generateEndpointKeys(), reconnect: false });
    expect((await c.connect({ profile: new TextEncoder().encode('{}') })).ok).toBe(true);
    expect(await c.attachUser('', 'token', verifierToken)).toMatchObject({ ok: false, code: 'OTHER' });
    expect(await c.attachUser('alice', 'token', verifierToken)).toEqual({ ok: true });
    c.close();
  });
});
