/**
 * The endpoint access token demo (/ui/demo/token.html) in Chromium: a browser endpoint (the SDK's
 * browser bundle) connects, registers and shows its endpoint access token as a QR code; a Node SDK
 * endpoint already attached to owner alice presents the token; the browser endpoint is told it
 * joined alice, and the Node endpoint sees the attach succeed with the browser endpoint's key hash.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import qrcode from 'qrcode-generator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, generateEndpointKeys } from '../../src/sdk/index.js';
import { browserAvailable, openBrowser, screenshot, type BrowserSession } from '../helpers/browser.js';
import { adminApi, startHarness, trustfulDefaultVerifier, type Harness } from '../helpers/harness.js';
import { ROOT } from '../helpers/root.js';

const T = 60_000;
let h: Harness;
let b: BrowserSession;

describe.runIf(browserAvailable())('endpoint access token demo in Chromium', () => {
  beforeAll(async () => {
    const mod = (await import(pathToFileURL(path.join(ROOT, 'scripts/build-ui.mjs')).href)) as { buildUiIfStale: () => Promise<void> };
    await mod.buildUiIfStale();
    h = await startHarness();
    b = await openBrowser({ width: 1280, height: 800 });
    b.page.setDefaultTimeout(15_000);
  }, T);
  afterAll(async () => {
    await b?.close();
    await h?.close();
  });

  it('a browser endpoint shows its access token as a QR code; a Node endpoint attaches it to its owner; both are told', async () => {
    expect((await adminApi(h, 'POST', '/admin/v1/tenants', { id: 'home', name: 'Home' })).status).toBe(201);
    const app = (await adminApi(h, 'POST', '/admin/v1/tenants/home/applications', { id: 'lamps', name: 'Lamps', credentialsService: 'trustful' })).body;
    await trustfulDefaultVerifier(h, 'lamps');
    const aKeys = await generateEndpointKeys();
    const a = new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken: app.appToken as string, serverKey: { id: h.server.keyRing.active.id, spki: h.server.keyRing.active.publicKeyPem }, keys: aKeys });
    expect((await a.connect({ profile: new TextEncoder().encode('{"kind":"phone"}') })).ok).toBe(true);
    try {
      expect(await a.attachUser('alice', 'her-token')).toEqual({ ok: true });

      // Signed in to the Administration UI with the root key, the demo fills in the settings itself.
      const page = b.page;
      await page.goto(`${h.adminUrl}/ui/`);
      await page.fill('#signin input[name=apiKey]', h.rootKey);
      await page.click('#signin button[type=submit]');
      await page.waitForSelector('header.top #signout');
      await page.goto(`${h.adminUrl}/ui/demo/token.html?app=lamps`);
      await page.waitForSelector('#settings');
      expect(await page.inputValue('#settings input[name=appToken]')).toBe(app.appToken);
      expect(await page.inputValue('#settings input[name=serverKeyId]')).toBe(h.server.keyRing.active.id);
      expect(await page.inputValue('#settings input[name=url]')).toContain(`:${h.server.port}/`);
      await page.click('#connect');
      await page.waitForSelector('#access-token');
      const token = (await page.textContent('#access-token'))!;
      const browserKeyHash = /connected as (\S+)/.exec((await page.textContent('#status'))!)![1]!;
      // The QR code encodes exactly the token (drawn the same way here, byte for byte).
      const qr = qrcode(0, 'M');
      qr.addData(token);
      qr.make();
      expect(await page.getAttribute('#qr', 'src')).toBe(qr.createDataURL(6, 2));
      await screenshot(page, 'ui-demo-token');

      // The other endpoint presents the token: it sees the browser endpoint's key hash...
      expect(await a.attachEndpoint(token)).toBe(browserKeyHash);
      // ...and the browser endpoint is told it joined alice, by that endpoint.
      await page.waitForFunction(() => document.querySelector('#owner')?.textContent?.startsWith('Attached to owner alice'));
      expect(await page.textContent('#owner')).toContain(aKeys.keyHash);
      const owned = (await adminApi(h, 'GET', '/admin/v1/tenants/home/owners/alice/endpoints')).body.items as Array<{ keyHash: string }>;
      expect(owned.map((e) => e.keyHash).sort()).toEqual([aKeys.keyHash, browserKeyHash].sort());
      await screenshot(page, 'ui-demo-attached');
      expect(b.logs.filter((l) => l.startsWith('pageerror'))).toEqual([]);
    } finally {
      await a.close();
    }
  }, T);
});
