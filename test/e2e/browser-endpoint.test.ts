/**
 * A browser endpoint in real headless Chromium (test/helpers/browser.ts), on the SDK's browser
 * bundle (scripts/build-sdk.mjs, built from the current source): the page, served by this test from
 * 127.0.0.1 (a secure context, so WebCrypto is there), generates its RSA key with WebCrypto,
 * connects to a latchkey server, registers, publishes an endpoint access token that a Node endpoint
 * of owner alice uses to attach it (the browser sees the notification), exchanges events with that
 * Node endpoint both ways, and is revoked live through the admin API: its session ends with
 * CREDENTIALS_REVOKED and it does not reconnect. A screenshot goes to test/artifacts/.
 */
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys, type ReceivedEvent } from '../../src/sdk/index.js';
import { derToPem } from '../../src/sdk/crypto.js';
import { browserAvailable, openBrowser, screenshot, type BrowserSession } from '../helpers/browser.js';
import { adminApi, startHarness, trustfulDefaultVerifier, type Harness } from '../helpers/harness.js';
import { ROOT } from '../helpers/root.js';
import { withTimeout } from '../helpers/ws.js';
import type { Application } from '../../src/store/store.js';

const CHAT = 'org.example.Chat';

/** The page: a tiny UI over the SDK; the test drives it through window.endpoint. */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>latchkey browser endpoint</title>
<style>body{font:14px system-ui,sans-serif;margin:24px} h1{font-size:18px} li{font-family:monospace;margin:2px 0} .err{color:#b00}</style></head>
<body><h1>latchkey browser endpoint</h1><p id="who">no key yet</p><ol id="log"></ol>
<script type="module">
import { EndpointClient, generateEndpointKeys } from '/sdk.mjs';
const log = (text, cls) => { const li = document.createElement('li'); li.textContent = text; if (cls) li.className = cls; document.getElementById('log').append(li); };
const state = { events: [], attached: null, disconnect: null };
let client;
window.endpoint = {
  state,
  async start({ url, appToken, serverKey }) {
    const keys = await generateEndpointKeys();
    document.getElementById('who').textContent = 'endpoint ' + keys.keyHash;
    log('key generated with WebCrypto (RSA-2048)');
    client = new EndpointClient({ url, appToken, serverKey, keys });
    client.onAttached((n) => { state.attached = n; log('attached to owner ' + n.ownerExternalId + ' by ' + n.byEndpointKeyHash); });
    client.onEvent((e) => { const text = new TextDecoder().decode(e.data); state.events.push({ ...e, text, data: null }); log('event ' + e.eventClassFQN + ' "' + text + '" from ' + e.source); });
    client.onDisconnect((d) => { state.disconnect = d; log('disconnected: ' + d.reason + ' ' + d.errorCode + ' (close ' + d.closeCode + ', reconnect ' + d.willReconnect + ')', 'err'); });
    const r = await client.connect({ profile: new TextEncoder().encode(JSON.stringify({ browser: navigator.userAgent })) });
    if (!r.ok) { log('connect failed: ' + r.code, 'err'); return { ok: false, code: r.code }; }
    log('connected, session ' + r.sessionId + '; profile ' + r.sync?.status);
    await client.listenEvents([${JSON.stringify(CHAT)}]);
    return { ok: true, keyHash: keys.keyHash, registered: r.sync?.status };
  },
  async publishToken(token) { await client.setEndpointAccessToken(token); log('endpoint access token published'); },
  async send(text) { await client.sendEvent(${JSON.stringify(CHAT)}, new TextEncoder().encode(text)); log('sent "' + text + '" to the owner'); },
  async listeners() { return client.findEventListeners([${JSON.stringify(CHAT)}]); },
};
window.ready = true;
</script></body></html>`;

let h: Harness;
let app: Application;
let pageServer: http.Server;
let pageUrl = '';
let b: BrowserSession | null = null;

beforeAll(async () => {
  if (!browserAvailable()) return;
  const { buildSdkBundle } = (await import(pathToFileURL(path.join(ROOT, 'scripts/build-sdk.mjs')).href)) as { buildSdkBundle(o: { write: boolean }): Promise<{ text: string }> };
  const bundle = (await buildSdkBundle({ write: false })).text;
  pageServer = http.createServer((req, res) => {
    if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    else if (req.url === '/sdk.mjs') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(bundle);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
  pageUrl = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}/`;
  h = await startHarness();
  app = await h.app();
  await trustfulDefaultVerifier(h, app.id);
}, 60_000);

afterAll(async () => {
  await b?.close();
  await h?.close();
  await new Promise((resolve) => pageServer?.close(resolve));
});

describe.runIf(browserAvailable())('a browser endpoint in Chromium', () => {
  it('generates its key, connects, registers, is attached by token, exchanges events with a Node endpoint, and is revoked live', async () => {
    b = await openBrowser();
    const page = b.page;
    const fail = (what: string): string => `${what}\n${b!.logs.join('\n')}`;
    await page.goto(pageUrl);
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, null, { timeout: 10_000 }).catch(() => {
      throw new Error(fail('the page did not load the SDK bundle'));
    });

    type Page = { endpoint: { start(o: unknown): Promise<{ ok: boolean; keyHash?: string; code?: string; registered?: string }>; publishToken(t: string): Promise<void>; send(t: string): Promise<void>; listeners(): Promise<string[]>; state: { events: Array<{ text: string; source: string; target: string | null }>; attached: { ownerExternalId: string } | null; disconnect: { reason: string | null; errorCode: string | null; willReconnect: boolean } | null } } };
    const serverKey = { id: h.serverKeyId, spki: derToPem(h.serverSpki, 'PUBLIC KEY') };
    const started = await page.evaluate((o) => (window as unknown as Page).endpoint.start(o), { url: h.url, appToken: app.appToken, serverKey });
    expect(started, fail('browser connect')).toMatchObject({ ok: true, registered: 'SUCCESS' });
    const browserKeyHash = started.keyHash!;

    // A Node endpoint of owner alice (trustful default verifier) attaches the browser by its token.
    const node = new EndpointClient({ url: h.url, appToken: app.appToken, serverKey: { id: h.serverKeyId, spki: h.serverSpki }, keys: await generateEndpointKeys() });
    expect((await node.connect({ profile: new TextEncoder().encode('{"kind":"node"}') })).ok).toBe(true);
    expect(await node.attachUser('alice', 'any-token')).toEqual({ ok: true });
    await node.listenEvents([CHAT]);
    const token = `browser-${Date.now()}`;
    await page.evaluate((t) => (window as unknown as Page).endpoint.publishToken(t), token);
    expect(await node.attachEndpoint(token)).toBe(browserKeyHash);
    await page.waitForFunction(() => (window as unknown as Page).endpoint.state.attached !== null, null, { timeout: 5000 });
    expect(await page.evaluate(() => (window as unknown as Page).endpoint.state.attached?.ownerExternalId)).toBe('alice');

    // Events both ways.
    expect(await page.evaluate(() => (window as unknown as Page).endpoint.listeners())).toEqual([node.keyHash]);
    const atNode = new Promise<ReceivedEvent>((resolve) => node.onEvent(resolve));
    await page.evaluate(() => (window as unknown as Page).endpoint.send('hello from Chromium'));
    const e1 = await withTimeout(atNode, 5000, 'event at the Node endpoint');
    expect({ text: new TextDecoder().decode(e1.data!), source: e1.source }).toEqual({ text: 'hello from Chromium', source: browserKeyHash });
    await node.sendEvent(CHAT, new TextEncoder().encode('hello from Node'), browserKeyHash);
    await page.waitForFunction(() => (window as unknown as Page).endpoint.state.events.length > 0, null, { timeout: 5000 });
    expect(await page.evaluate(() => (window as unknown as Page).endpoint.state.events[0])).toMatchObject({ text: 'hello from Node', source: node.keyHash, target: browserKeyHash });

    // Revoked live by the operator: the browser's session ends, terminally.
    const revoked = await adminApi(h, 'POST', `/admin/v1/applications/${app.id}/credentials/${browserKeyHash}/revoke`);
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    await page.waitForFunction(() => (window as unknown as Page).endpoint.state.disconnect !== null, null, { timeout: 5000 });
    expect(await page.evaluate(() => (window as unknown as Page).endpoint.state.disconnect)).toMatchObject({ reason: 'CREDENTIALS_REVOKED', willReconnect: false });
    await screenshot(page, 'browser-endpoint');
    await node.close();
  }, 90_000);
});
