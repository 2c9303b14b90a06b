/**
 * The SDK's session resumption (docs/protocol.md 4.6) against real servers: after a full session
 * the next connect (by hand or by the reconnect loop) is a RESUME, with no RSA operation on the
 * server, and the embedded first SyncRequest works on it as on CONNECT; a refused ticket
 * (another ticket master secret: LK_TICKET_INVALID; resumption off: LK_RESUME_DISABLED) falls back
 * to a full CONNECT at once on a new socket; a revoked endpoint's RESUME is refused LK_CRED_REVOKED
 * and no CONNECT follows; `resume: false` sends neither TICKETREQ nor RESUME.
 *
 * The same in headless Chromium on the browser bundle (WebCrypto's HKDF of 128 bytes and HMAC there).
 *
 * The Node clients get a WebSocket that records the type byte of every frame they send and connects to
 * whichever server `route.port` names, so one client can meet several servers that share a data
 * directory (same server key ring and store) but not the same ticket settings.
 */
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys, type ConnectResult, type EndpointKeys } from '../../src/sdk/index.js';
import { defaultWebSocket, type WebSocketCtor } from '../../src/sdk/websocket.js';
import { derToPem } from '../../src/sdk/crypto.js';
import { browserAvailable, openBrowser } from '../helpers/browser.js';
import { startHarness, tempDir, type Harness } from '../helpers/harness.js';
import { ROOT } from '../helpers/root.js';
import { withTimeout } from '../helpers/ws.js';
import type { Application } from '../../src/store/store.js';

const CONNECT = 0x01;
const RESUME = 0x10;
const TICKETREQ = 0x11;

interface Route {
  port: number;
  /** Type byte of every frame the client sent, in order. */
  sent: number[];
  sockets: number;
}

let a: Harness;
let app: Application;
let Base: WebSocketCtor;

beforeAll(async () => {
  a = await startHarness();
  app = await a.app();
  Base = await defaultWebSocket();
});
afterAll(async () => {
  await a?.close();
});

function routed(route: Route): WebSocketCtor {
  const B = Base as unknown as new (url: string, protocols?: string | string[]) => WebSocket;
  return class extends B {
    constructor(url: string, protocols?: string | string[]) {
      const u = new URL(url);
      u.port = String(route.port);
      super(u.toString(), protocols);
      route.sockets++;
    }
    override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      if (data instanceof Uint8Array) route.sent.push(data[0]!);
      super.send(data);
    }
  };
}

function client(k: EndpointKeys, route: Route, extra: Partial<ConstructorParameters<typeof EndpointClient>[0]> = {}): EndpointClient {
  return new EndpointClient({ url: a.url, appToken: app.appToken, serverKey: { id: a.serverKeyId, spki: a.serverSpki }, keys: k, WebSocket: routed(route), ...extra });
}

/** Frames other than PINGREQ/DISCONNECT: the handshakes and ticket requests. */
const handshakes = (r: Route): number[] => r.sent.filter((t) => t === CONNECT || t === RESUME || t === TICKETREQ);

/** connect(), and wait until the session's TICKET is in (the PINGRESP follows it on the socket). */
async function connected(c: EndpointClient, options: { profile?: Uint8Array } = {}): Promise<Extract<ConnectResult, { ok: true }>> {
  const r = await c.connect(options);
  if (!r.ok) throw new Error(`connect: ${JSON.stringify(r)}`);
  await c.ping();
  return r;
}

describe('SDK session resumption', () => {
  it('the second connect resumes: no RSA on the server, embedded profile sync and later syncs work; a resumed session gives the next ticket', async () => {
    const k = await generateEndpointKeys();
    const route: Route = { port: a.server.port, sent: [], sockets: 0 };
    const c = client(k, route);
    const profile = new TextEncoder().encode('{"model":"T-1000"}');
    await c.listenEvents(['org.example.Chat']);
    const first = await connected(c, { profile });
    expect(first.resumed).toBe(false);
    expect(first.sync?.profileSyncResponse?.responseStatus).toBe('DELTA');
    await c.close();

    const stats = a.server.stats;
    const before = { resumed: stats.handshakesResumed, decrypts: stats.rsaDecrypts, verifies: stats.rsaVerifies };
    const second = await connected(c, { profile });
    expect(second.resumed).toBe(true);
    expect(c.resumed).toBe(true);
    // The embedded SyncRequest (profile + listened classes) rode in RESUME and was answered in CONNACK.
    expect(second.sync?.status).toBe('SUCCESS');
    expect(second.sync?.profileSyncResponse?.responseStatus).toBe('NO_DELTA');
    // SYNC counters continue after the embedded request (counter 1 next).
    expect((await c.register(new TextEncoder().encode('{"model":"T-1001"}'))).profileSyncResponse?.responseStatus).toBe('DELTA');
    await c.close();
    // A ticket given by the resumed session resumes again.
    const third = await connected(c);
    expect(third.resumed).toBe(true);
    await c.close();

    expect(stats.handshakesResumed - before.resumed).toBe(2);
    expect(stats.rsaDecrypts - before.decrypts).toBe(0);
    expect(stats.rsaVerifies - before.verifies).toBe(0);
    expect(handshakes(route)).toEqual([CONNECT, TICKETREQ, RESUME, TICKETREQ, RESUME, TICKETREQ]);
    expect(route.sockets).toBe(3);
  });

  it('the reconnect loop resumes after the server ends the session', async () => {
    const k = await generateEndpointKeys();
    const route: Route = { port: a.server.port, sent: [], sockets: 0 };
    const c = client(k, route, { reconnect: { minDelayMs: 20, maxDelayMs: 100, maxAttempts: 5 } });
    await connected(c);
    const reconnected = new Promise<ConnectResult>((resolve) => c.onReconnect(resolve));
    const decrypts = a.server.stats.rsaDecrypts;
    a.server.registry.byEndpointKey(app.id, k.keyHash)!.end('LK_SERVER_BUSY');
    expect(await withTimeout(reconnected, 5000, 'reconnect')).toMatchObject({ ok: true, resumed: true });
    expect(a.server.stats.rsaDecrypts).toBe(decrypts);
    await c.close();
    expect(handshakes(route).slice(0, 3)).toEqual([CONNECT, TICKETREQ, RESUME]);
  });

  it('a ticket another ticket master sealed is refused LK_TICKET_INVALID: the client forgets it and CONNECTs at once on a new socket, then resumes there', async () => {
    // Same data directory (server keys, store), its own ticket master file.
    const b = await startHarness({ ticketKeyFile: path.join(tempDir('latchkey-tickets-'), 'other-master.key') }, a.dataDir);
    try {
      const k = await generateEndpointKeys();
      const route: Route = { port: a.server.port, sent: [], sockets: 0 };
      const c = client(k, route, { sendPublicKey: 'auto' });
      await connected(c);
      await c.close();
      route.port = b.server.port;
      const t0 = Date.now();
      const r = await connected(c);
      expect(r.resumed).toBe(false);
      expect(Date.now() - t0).toBeLessThan(3000); // no backoff between the refusal and the CONNECT
      expect(b.server.stats.handshakesRefused.get('LK_TICKET_INVALID')).toBe(1);
      expect(handshakes(route)).toEqual([CONNECT, TICKETREQ, RESUME, CONNECT, TICKETREQ]);
      expect(route.sockets).toBe(3);
      await c.close();
      // The new ticket is B's: it resumes on B.
      expect((await connected(c)).resumed).toBe(true);
      await c.close();
    } finally {
      await b.close({ keepData: true });
    }
  });

  it('a server with resumption off refuses RESUME (LK_RESUME_DISABLED): full CONNECT at once, and its empty TICKET leaves the client without a ticket', async () => {
    const off = await startHarness({ ticketLifetimeSec: 0 }, a.dataDir);
    try {
      const k = await generateEndpointKeys();
      const route: Route = { port: a.server.port, sent: [], sockets: 0 };
      const c = client(k, route);
      await connected(c);
      await c.close();
      route.port = off.server.port;
      expect((await connected(c)).resumed).toBe(false);
      expect(off.server.stats.handshakesRefused.get('LK_RESUME_DISABLED')).toBe(1);
      await c.close();
      // lifetimeSec 0: nothing to resume with, so the next connect is a CONNECT straight away.
      expect((await connected(c)).resumed).toBe(false);
      await c.close();
      expect(handshakes(route)).toEqual([CONNECT, TICKETREQ, RESUME, CONNECT, TICKETREQ, CONNECT, TICKETREQ]);
    } finally {
      await off.close({ keepData: true });
    }
  });

  it('a revoked endpoint\'s RESUME is refused LK_CRED_REVOKED, terminal, and the client does not fall back to CONNECT', async () => {
    const k = await generateEndpointKeys();
    const route: Route = { port: a.server.port, sent: [], sockets: 0 };
    const c = client(k, route, { reconnect: { minDelayMs: 10, maxDelayMs: 20 } });
    await connected(c);
    await c.close();
    await a.server.revocation.revoke(app, k.keyHash);
    const r = await c.connect();
    expect(r).toMatchObject({ ok: false, kind: 'refused', code: 'REFUSE_VERIFICATION_FAILED', errorCode: 'LK_CRED_REVOKED', retryable: false });
    // Nothing more follows: no CONNECT, no reconnect.
    await new Promise((res) => setTimeout(res, 200));
    expect(handshakes(route)).toEqual([CONNECT, TICKETREQ, RESUME]);
    expect(route.sockets).toBe(2);
    await c.close();
  });

  it('resume: false never sends TICKETREQ or RESUME', async () => {
    const k = await generateEndpointKeys();
    const route: Route = { port: a.server.port, sent: [], sockets: 0 };
    const c = client(k, route, { resume: false });
    const issued = a.server.stats.ticketsIssued;
    await connected(c);
    await c.close();
    expect((await connected(c)).resumed).toBe(false);
    await c.close();
    expect(handshakes(route)).toEqual([CONNECT, CONNECT]);
    expect(a.server.stats.ticketsIssued).toBe(issued);
  });
});

/** A page on the browser bundle: connect, ping (the TICKET is in once PINGRESP is), close, twice. */
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>resume</title></head><body>
<script type="module">
import { EndpointClient, generateEndpointKeys } from '/sdk.mjs';
window.twice = async ({ url, appToken, serverKey }) => {
  const client = new EndpointClient({ url, appToken, serverKey, keys: await generateEndpointKeys() });
  const out = [];
  for (let i = 0; i < 2; i++) {
    const r = await client.connect({ profile: new TextEncoder().encode('{"browser":true}') });
    if (!r.ok) return { error: r.code + ' ' + (r.errorCode ?? r.detail) };
    await client.ping();
    out.push({ resumed: r.resumed, sync: r.sync?.status });
    await client.close();
  }
  return { out };
};
window.ready = true;
</script></body></html>`;

describe.runIf(browserAvailable())('SDK session resumption in Chromium (browser bundle)', () => {
  it('connects, then resumes with no RSA on the server', async () => {
    const { buildSdkBundle } = (await import(pathToFileURL(path.join(ROOT, 'scripts/build-sdk.mjs')).href)) as { buildSdkBundle(o: { write: boolean }): Promise<{ text: string }> };
    const bundle = (await buildSdkBundle({ write: false })).text;
    const pages = http.createServer((req, res) => {
      if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      else if (req.url === '/sdk.mjs') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(bundle);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    const b = await openBrowser();
    try {
      await b.page.goto(`http://127.0.0.1:${(pages.address() as AddressInfo).port}/`);
      await b.page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, null, { timeout: 10_000 });
      const before = { resumed: a.server.stats.handshakesResumed, decrypts: a.server.stats.rsaDecrypts };
      type Twice = (o: unknown) => Promise<{ out?: Array<{ resumed: boolean; sync?: string }>; error?: string }>;
      const serverKey = { id: a.serverKeyId, spki: derToPem(a.serverSpki, 'PUBLIC KEY') };
      const r = await b.page.evaluate((o) => (window as unknown as { twice: Twice }).twice(o), { url: a.url, appToken: app.appToken, serverKey });
      expect(r, b.logs.join('\n')).toEqual({ out: [{ resumed: false, sync: 'SUCCESS' }, { resumed: true, sync: 'SUCCESS' }] });
      expect(a.server.stats.handshakesResumed - before.resumed).toBe(1);
      expect(a.server.stats.rsaDecrypts - before.decrypts).toBe(1); // the first, full handshake only
    } finally {
      await b.close();
      await new Promise((resolve) => pages.close(resolve));
    }
  }, 90_000);
});
