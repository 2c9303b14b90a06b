/**
 * The Administration UI in headless Chromium against a real server (in-process build(): uWS,
 * crypto workers, LMDB), driven as an operator would: sign in (and fail to), create a tenant and an
 * application, provision credentials and list them from the server (status filter, next and
 * previous page, revoke from the list), add an owner verifier through the form generated from its
 * Avro schema (a refused config shows the server's code and message), revoke the credentials of a
 * connected SDK endpoint and see its session end, kick a session, detach from an owner, rotate
 * and retire server keys, a tenant key's view, the live view, and a phone-sized viewport. Every
 * test saves a screenshot under test/artifacts/ui-*.png.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointClient, exportEndpointKeys, generateEndpointKeys, type DisconnectInfo, type EndpointKeys } from '../../src/sdk/index.js';
import { browserAvailable, openBrowser, screenshot, type BrowserSession } from '../helpers/browser.js';
import { adminApi, startHarness, type Harness } from '../helpers/harness.js';
import { ROOT } from '../helpers/root.js';
import { withTimeout } from '../helpers/ws.js';

const T = 60_000;
let h: Harness;
let b: BrowserSession;
let page: Page;

function sdkClient(appToken: string, keys: EndpointKeys): EndpointClient {
  return new EndpointClient({ url: `ws://127.0.0.1:${h.server.port}`, appToken, serverKey: { id: h.server.keyRing.active.id, spki: h.server.keyRing.active.publicKeyPem }, keys });
}

async function signIn(p: Page, key: string): Promise<void> {
  await p.goto(`${h.adminUrl}/ui/`);
  await p.fill('#signin input[name=apiKey]', key);
  await p.click('#signin button[type=submit]');
  await p.waitForSelector('header.top #signout');
}

/** Go to a page of the UI and wait until it has rendered (no "Loading…" left). */
async function go(p: Page, id: string): Promise<void> {
  await p.evaluate((hash) => (location.hash = hash), `#/${id}`);
  await p.waitForSelector(`nav.side a.active[href="#/${id}"]`);
  await p.waitForFunction(() => !document.querySelector('main .loading'));
}

async function chooseApp(p: Page, appId: string): Promise<void> {
  await p.selectOption('#ctx-app', appId);
  await p.waitForFunction(() => !document.querySelector('main .loading'));
}

describe.runIf(browserAvailable())('Administration UI in Chromium', () => {
  beforeAll(async () => {
    const mod = (await import(pathToFileURL(path.join(ROOT, 'scripts/build-ui.mjs')).href)) as { buildUiIfStale: () => Promise<void> };
    await mod.buildUiIfStale();
    h = await startHarness();
    b = await openBrowser({ width: 1280, height: 800 });
    page = b.page;
    page.setDefaultTimeout(10_000);
  }, T);
  afterAll(async () => {
    await b?.close();
    await h?.close();
  });

  it('a missing or wrong API key shows a sign-in error with its code, never a blank page', async () => {
    await page.goto(`${h.adminUrl}/ui`); // redirected to /ui/
    expect(new URL(page.url()).pathname).toBe('/ui/');
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#signin .error');
    expect(await page.textContent('#signin .error .code')).toBe('LK_AUTH_REQUIRED');
    await page.fill('#signin input[name=apiKey]', 'lk_AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    await page.click('#signin button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#signin .error .code')?.textContent === 'LK_AUTH_INVALID');
    expect(await page.textContent('#signin .error')).toContain('API key is unknown');
    await page.fill('#signin input[name=apiKey]', 'not a key');
    await page.click('#signin button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#signin .error .code')?.textContent === 'LK_AUTH_INVALID');
    await screenshot(page, 'ui-signin-error');
    // A stored key that stopped working lands on the sign-in form with the code, too.
    await page.evaluate(() => sessionStorage.setItem('latchkey.adminKey', 'lk_BBBBBBBBBBBBBBBB.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'));
    await page.reload();
    await page.waitForSelector('#signin .error .code');
    expect(await page.textContent('#signin .error .code')).toBe('LK_AUTH_INVALID');
    expect(b.logs.filter((l) => l.startsWith('pageerror'))).toEqual([]);
  }, T);

  it('signs in with the root key, creates a tenant and an application', async () => {
    await signIn(page, h.rootKey);
    expect(await page.textContent('header .who .key')).toContain('root key');
    expect(await page.evaluate(() => sessionStorage.getItem('latchkey.adminKey'))).toBe(h.rootKey);
    await go(page, 'tenants');
    await page.fill('#tenant-create input[name=id]', 'acme');
    await page.fill('#tenant-create input[name=name]', 'Acme Corp');
    await page.click('#tenant-create button[type=submit]');
    await page.waitForSelector('#flash .ok');
    expect(await page.textContent('#flash')).toContain('Tenant acme created');
    expect(await page.inputValue('#ctx-tenant')).toBe('acme');
    // A conflict shows the catalogue code in the form.
    await page.fill('#tenant-create input[name=id]', 'acme');
    await page.fill('#tenant-create input[name=name]', 'again');
    await page.click('#tenant-create button[type=submit]');
    await page.waitForSelector('#tenant-create .error');
    expect(await page.textContent('#tenant-create .error .code')).toBe('LK_CONFLICT');

    await go(page, 'applications');
    await page.fill('#app-create input[name=name]', 'Thermostats');
    await page.fill('#app-create input[name=credentialsService]', 'internal');
    await page.fill('#app-create input[name=id]', 'thermo');
    await page.fill('#app-create textarea[name=profileSchema]', '{"type":"record","name":"P","fields":[{"name":"model","type":"string"}]}');
    await page.click('#app-create button[type=submit]');
    // The tenant's "created" flash may still be up: wait for the new application to be chosen
    // (bounded), not for any ok flash (a full CI run once read the select before it was).
    await page.waitForFunction(() => (document.querySelector('#ctx-app') as HTMLSelectElement | null)?.value === 'thermo', undefined, { timeout: 10_000 });
    await page.waitForSelector('#flash .ok');
    expect(await page.inputValue('#ctx-app')).toBe('thermo');
    const app = (await adminApi(h, 'GET', '/admin/v1/applications/thermo')).body;
    expect(app).toMatchObject({ tenantId: 'acme', credentialsService: 'internal', profileSchema: { name: 'P' } });
    expect(await page.textContent('#app-token')).toContain(app.appToken as string);
    // Unknown credentials service: the server's code, in place.
    await page.fill('#app-create input[name=name]', 'Bad');
    await page.fill('#app-create input[name=credentialsService]', 'nope');
    await page.click('#app-create button[type=submit]');
    await page.waitForSelector('#app-create .error');
    expect(await page.textContent('#app-create .error .code')).toMatch(/^LK_/);
    await screenshot(page, 'ui-applications');
  }, T);

  it('provisions credentials from a pasted PEM with a server-side profile, and from an uploaded file', async () => {
    await go(page, 'credentials');
    const k1 = await exportEndpointKeys(await generateEndpointKeys());
    await page.fill('#credentials-provision textarea[name=publicKey]', k1.publicKeyPem);
    await page.fill('#credentials-provision textarea[name=serverProfile]', '{"room":"kitchen"}');
    await page.click('#credentials-provision button[type=submit]');
    await page.waitForSelector('#flash .ok');
    const keys2 = await generateEndpointKeys();
    const k2 = await exportEndpointKeys(keys2);
    await page.setInputFiles('#credentials-provision input[type=file]', { name: 'ep2.pub.pem', mimeType: 'application/x-pem-file', buffer: Buffer.from(k2.publicKeyPem) });
    await page.waitForFunction(() => (document.querySelector('#credentials-provision textarea[name=publicKey]') as HTMLTextAreaElement).value.includes('BEGIN PUBLIC KEY'));
    await page.click('#credentials-provision button[type=submit]');
    await page.waitForSelector(`tr[data-credentials-id="${keys2.keyHash}"]`);
    expect(await page.textContent(`tr[data-credentials-id="${keys2.keyHash}"] .badge`)).toBe('AVAILABLE');
    expect(await page.locator('tr[data-credentials-id]').count()).toBe(2);
    const reg = await adminApi(h, 'GET', `/admin/v1/applications/thermo/credentials/${keys2.keyHash}`);
    expect(reg.body.status).toBe('AVAILABLE');
    // Not a PEM: the server's refusal.
    await page.fill('#credentials-provision textarea[name=publicKey]', 'hello');
    await page.fill('#credentials-provision textarea[name=serverProfile]', '');
    await page.click('#credentials-provision button[type=submit]');
    await page.waitForSelector('#credentials-provision .error');
    expect(await page.textContent('#credentials-provision .error .code')).toMatch(/^LK_/);

    // Provisioned behind the page's back (the API, as the CLI would): listed with its status, from
    // the server's list; revoked from the list, it shows REVOKED, and the status filter finds it.
    const k3 = await generateEndpointKeys();
    expect((await adminApi(h, 'POST', '/admin/v1/applications/thermo/credentials', { publicKey: (await exportEndpointKeys(k3)).publicKeyPem })).status).toBe(201);
    await go(page, 'endpoints');
    await go(page, 'credentials');
    const row3 = `#credentials-list tr[data-credentials-id="${k3.keyHash}"]`;
    await page.waitForSelector(row3);
    expect(await page.textContent(`${row3} .badge`)).toBe('AVAILABLE');
    expect(await page.locator('#credentials-list tr[data-credentials-id]').count()).toBe(3);
    await page.click(`${row3} button.danger`);
    await page.click(`${row3} button.danger`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} .badge`)?.textContent === 'REVOKED', row3);
    expect((await adminApi(h, 'GET', `/admin/v1/applications/thermo/credentials/${k3.keyHash}`)).body.status).toBe('REVOKED');
    await page.selectOption('#credentials-status', 'REVOKED');
    await page.waitForFunction(() => document.querySelectorAll('#credentials-list tr[data-credentials-id]').length === 1);
    expect(await page.getAttribute('#credentials-list tr[data-credentials-id]', 'data-credentials-id')).toBe(k3.keyHash);
    await page.selectOption('#credentials-status', 'AVAILABLE');
    await page.waitForFunction(() => document.querySelectorAll('#credentials-list tr[data-credentials-id]').length === 2);
    await page.selectOption('#credentials-status', '');
    await page.waitForFunction(() => document.querySelectorAll('#credentials-list tr[data-credentials-id]').length === 3);
    await screenshot(page, 'ui-credentials');
  }, T);

  it('pages the credentials list: next and previous page, in id order', async () => {
    await adminApi(h, 'POST', '/admin/v1/tenants/acme/applications', { id: 'paged', name: 'Paged app', credentialsService: 'internal' });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const k = await generateEndpointKeys();
      expect((await adminApi(h, 'POST', '/admin/v1/applications/paged/credentials', { publicKey: (await exportEndpointKeys(k)).publicKeyPem })).status).toBe(201);
      ids.push(k.keyHash);
    }
    ids.sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    const listed = () => page.$$eval('#credentials-list tr[data-credentials-id]', (trs) => trs.map((tr) => tr.getAttribute('data-credentials-id')));
    await page.reload();
    await page.waitForSelector('header.top #signout');
    await chooseApp(page, 'paged');
    await go(page, 'credentials');
    await page.selectOption('#credentials-limit', '10');
    await page.waitForSelector('#credentials-next');
    expect(await listed()).toEqual(ids.slice(0, 10));
    await page.click('#credentials-next');
    await page.waitForSelector('#credentials-prev');
    expect(await listed()).toEqual(ids.slice(10));
    expect(await page.locator('#credentials-next').count()).toBe(0);
    await page.click('#credentials-prev');
    await page.waitForSelector('#credentials-next');
    expect(await listed()).toEqual(ids.slice(0, 10));
    await chooseApp(page, 'thermo');
  }, T);

  it('adds an owner verifier through the form generated from its Avro schema; a refused config shows the server message', async () => {
    await go(page, 'verifiers');
    await page.selectOption('#verifier-type', 'oidc');
    // The fields come from the oidc schema, defaults filled in.
    for (const f of ['issuer', 'audience', 'jwks_url', 'user_claim', 'clock_skew_sec', 'max_parallel_connections']) {
      expect(await page.locator(`#verifier-config [name="${f}"]`).count(), f).toBe(1);
    }
    expect(await page.inputValue('#verifier-config [name=clock_skew_sec]')).toBe('30');
    await page.fill('#verifier-add input[name=name]', 'Corporate SSO');
    await page.fill('#verifier-config [name=issuer]', 'https://id.example.com');
    await page.fill('#verifier-config [name=audience]', 'thermo-app\nthermo-web');
    await page.fill('#verifier-config [name=jwks_url]', 'https://id.example.com/jwks');
    await page.fill('#verifier-config [name=clock_skew_sec]', '9999');
    await page.click('#verifier-add button[type=submit]');
    await page.waitForSelector('#verifier-add .error');
    expect(await page.textContent('#verifier-add .error .code')).toBe('LK_BAD_VERIFIER_CONFIG');
    expect(await page.textContent('#verifier-add .error')).toContain('clock_skew_sec');
    await screenshot(page, 'ui-verifier-refused');
    await page.fill('#verifier-config [name=clock_skew_sec]', '60');
    await page.click('#verifier-add button[type=submit]');
    await page.waitForSelector('#flash .ok');
    const list = (await adminApi(h, 'GET', '/admin/v1/applications/thermo/verifiers')).body;
    const items = list.items as Array<{ name: string; pluginTypeName: string; jsonConfiguration: Record<string, unknown>; isDefault: boolean }>;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ name: 'Corporate SSO', pluginTypeName: 'oidc', isDefault: true, jsonConfiguration: { issuer: 'https://id.example.com', audience: ['thermo-app', 'thermo-web'], clock_skew_sec: 60, user_claim: 'sub' } });
    expect(await page.textContent('main table')).toContain('Corporate SSO');
    // A type without settings says so, and is added as well.
    await page.selectOption('#verifier-type', 'trustful');
    expect(await page.textContent('#verifier-config')).toContain('No settings');
    await page.fill('#verifier-add input[name=name]', 'Dev');
    await page.click('#verifier-add button[type=submit]');
    await page.waitForFunction(() => document.querySelector('main table')?.textContent?.includes('Dev'));
    await screenshot(page, 'ui-verifiers');
  }, T);

  it('revokes the credentials of a connected endpoint: its session ends (CREDENTIALS_REVOKED)', async () => {
    const keys = await generateEndpointKeys();
    const { publicKeyPem } = await exportEndpointKeys(keys);
    expect((await adminApi(h, 'POST', '/admin/v1/applications/thermo/credentials', { publicKey: publicKeyPem })).status).toBe(201);
    const appToken = (await adminApi(h, 'GET', '/admin/v1/applications/thermo')).body.appToken as string;
    const c = sdkClient(appToken, keys);
    expect((await c.connect()).ok).toBe(true);
    const ended = new Promise<DisconnectInfo>((resolve) => c.onDisconnect(resolve));
    try {
      await go(page, 'sessions');
      await page.waitForSelector(`tr[data-key-hash="${keys.keyHash}"]`);
      await go(page, 'credentials');
      const row = `tr[data-credentials-id="${keys.keyHash}"]`;
      await page.waitForSelector(row);
      expect(await page.textContent(`${row} .badge`)).toBe('IN_USE');
      await page.click(`${row} button.danger`);
      expect(await page.textContent(`${row} button.danger`)).toBe('Really revoke?');
      await page.click(`${row} button.danger`);
      expect(await withTimeout(ended, 5000, 'DISCONNECT')).toMatchObject({ reason: 'CREDENTIALS_REVOKED' });
      await page.waitForSelector('#flash .ok');
      expect(await page.textContent('#flash')).toContain('1 live session(s) ended here');
      await page.waitForFunction((sel) => document.querySelector(`${sel} .badge`)?.textContent === 'REVOKED', row);
      await screenshot(page, 'ui-revoked');
      await go(page, 'sessions');
      expect(await page.locator(`tr[data-key-hash="${keys.keyHash}"]`).count()).toBe(0);
    } finally {
      await c.close();
    }
  }, T);

  it('kicks a live session from the sessions page', async () => {
    await adminApi(h, 'POST', '/admin/v1/tenants/acme/applications', { id: 'open', name: 'Open app', credentialsService: 'trustful' });
    const appToken = (await adminApi(h, 'GET', '/admin/v1/applications/open')).body.appToken as string;
    const keys = await generateEndpointKeys();
    const c = sdkClient(appToken, keys);
    expect((await c.connect()).ok).toBe(true);
    const ended = new Promise<DisconnectInfo>((resolve) => c.onDisconnect(resolve));
    try {
      await page.reload();
      await page.waitForSelector('header.top #signout');
      await chooseApp(page, 'open');
      await go(page, 'sessions');
      const row = `tr[data-key-hash="${keys.keyHash}"]`;
      await page.waitForSelector(row);
      // Where is this endpoint: this node (no Redis here), then a key with no session.
      await page.fill('#where-form input[name="keyHash"]', keys.keyHash);
      await page.click('#where-form button[type="submit"]');
      await page.waitForSelector('#session-where table');
      expect(await page.locator('#session-where').textContent()).toContain(h.server.nodeId);
      await page.fill('#where-form input[name="keyHash"]', (await generateEndpointKeys()).keyHash);
      await page.click('#where-form button[type="submit"]');
      await page.waitForFunction(() => document.querySelector('#session-where')?.textContent?.includes('No live session'), undefined, { timeout: 10_000 });
      await screenshot(page, 'ui-sessions');
      await page.click(`${row} button.danger`);
      await page.click(`${row} button.danger`);
      expect((await withTimeout(ended, 5000, 'DISCONNECT')).errorCode).toBe('LK_SESSION_KICKED');
      await page.waitForSelector('#flash .ok');
      await page.waitForFunction((sel) => !document.querySelector(sel), row, { timeout: 10_000 });
    } finally {
      await c.close();
    }
  }, T);

  it('shows an owner\'s endpoints and detaches one', async () => {
    await adminApi(h, 'POST', '/admin/v1/applications/open/verifiers', { pluginTypeName: 'trustful', name: 'dev', jsonConfiguration: {}, isDefault: true });
    const appToken = (await adminApi(h, 'GET', '/admin/v1/applications/open')).body.appToken as string;
    const keys = await generateEndpointKeys();
    const c = sdkClient(appToken, keys);
    expect((await c.connect({ profile: new TextEncoder().encode('{"model":"T-1000"}') })).ok).toBe(true);
    try {
      expect(await c.attachUser('alice', 'any-token')).toEqual({ ok: true });
      await go(page, 'owners');
      await page.fill('#owner-find input[name=owner]', 'alice');
      await page.click('#owner-find button[type=submit]');
      await page.waitForFunction(() => document.querySelector('main table')?.textContent?.includes('Open app'));
      await screenshot(page, 'ui-owners');
      await page.click('main table button.danger');
      await page.click('main table button.danger');
      await page.waitForSelector('#flash .ok');
      expect((await adminApi(h, 'GET', '/admin/v1/tenants/acme/owners/alice/endpoints')).body.items).toEqual([]);
    } finally {
      await c.close();
    }
  }, T);

  it('lists registered endpoints with their profiles and edits a server-side profile', async () => {
    await go(page, 'endpoints');
    await page.waitForSelector('main table');
    await page.click('main table button.edit');
    await page.fill('#registration-provision textarea[name=serverProfile]', '{"room":"hall"}');
    await page.click('#registration-provision button[type=submit]');
    await page.waitForSelector('#flash .ok');
    expect(await page.textContent('#flash')).toContain('when it next registers');
    expect(await page.textContent('main table')).toContain('T-1000'); // the profile the endpoint registered with
    await screenshot(page, 'ui-endpoints');
  }, T);

  it('rotates and retires server keys; the live view shows the node\'s sessions', async () => {
    await go(page, 'server-keys');
    expect(await page.locator('main tbody tr').count()).toBe(1);
    await page.click('main p button.primary');
    await page.click('main p button.primary');
    await page.waitForFunction(() => document.querySelectorAll('main tbody tr').length === 2);
    await page.click('main tbody button.danger');
    await page.click('main tbody button.danger');
    await page.waitForFunction(() => Array.from(document.querySelectorAll('main tbody .badge')).some((e) => e.textContent === 'retired'));
    await screenshot(page, 'ui-server-keys');

    const keys = await generateEndpointKeys();
    const appToken = (await adminApi(h, 'GET', '/admin/v1/applications/open')).body.appToken as string;
    const c = sdkClient(appToken, keys);
    expect((await c.connect()).ok).toBe(true);
    try {
      await go(page, 'live');
      await page.waitForFunction(() => document.querySelector('#live-sessions')?.textContent === '1', undefined, { timeout: 10_000 });
      await page.waitForTimeout(1200); // a second poll draws the rates
      await screenshot(page, 'ui-live');
    } finally {
      await c.close();
    }
  }, T);

  it('shows this bootstrap node and drains it', async () => {
    await go(page, 'node');
    expect(await page.textContent('main dl.facts')).toContain(h.server.keyRing.active.id);
    await page.click('main button.danger');
    await page.click('main button.danger');
    await page.waitForSelector('#flash .ok');
    expect(await page.textContent('#flash')).toContain('0 endpoint(s) told to move');
    await page.waitForSelector('main .badge-draining');
    expect((await adminApi(h, 'GET', '/admin/v1/node')).body.draining).toBe(true);
    await screenshot(page, 'ui-node-drained');
  }, T);

  it('a tenant key sees its own tenant only, and root-only pages say so instead of failing', async () => {
    await adminApi(h, 'POST', '/admin/v1/tenants', { id: 'other', name: 'Other Inc' });
    const token = (await adminApi(h, 'POST', '/admin/v1/api-keys', { name: 'acme ops', tenantId: 'acme' })).body.token as string;
    await page.click('#signout');
    await page.waitForSelector('#signin');
    expect(await page.evaluate(() => sessionStorage.getItem('latchkey.adminKey'))).toBeNull();
    await signIn(page, token);
    expect(await page.textContent('header .who .key')).toContain('tenant acme');
    await go(page, 'tenants');
    expect(await page.locator('main tbody tr').count()).toBe(1);
    expect(await page.textContent('main table')).not.toContain('Other Inc');
    expect(await page.locator('nav.side a[href="#/server-keys"]').count()).toBe(0);
    await page.evaluate(() => (location.hash = '#/server-keys'));
    await page.waitForSelector('main .error');
    expect(await page.textContent('main .error .code')).toBe('LK_FORBIDDEN');
    await screenshot(page, 'ui-tenant-key');
    // A tenant key creates applications with a generated id and app token (it may not choose them).
    await go(page, 'applications');
    expect(await page.locator('#app-create input[name=id]').count()).toBe(0);
    await page.fill('#app-create input[name=name]', 'Made by ops');
    await page.click('#app-create button[type=submit]');
    await page.waitForSelector('#flash .ok');
    const apps = (await adminApi(h, 'GET', '/admin/v1/tenants/acme/applications')).body.items as Array<{ name: string; id: string }>;
    const made = apps.find((a) => a.name === 'Made by ops')!;
    expect(made.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await page.inputValue('#ctx-app')).toBe(made.id);
  }, T);

  it('renders on a phone-sized viewport without horizontal scrolling', async () => {
    const phone = await openBrowser({ width: 390, height: 844 });
    try {
      await phone.page.goto(`${h.adminUrl}/ui/`);
      await phone.page.waitForSelector('#signin');
      await screenshot(phone.page, 'ui-phone-signin');
      await signIn(phone.page, h.rootKey);
      for (const id of ['tenants', 'applications', 'credentials', 'endpoints', 'verifiers', 'owners', 'sessions', 'server-keys', 'node', 'live']) {
        await go(phone.page, id);
        const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow, id).toBeLessThanOrEqual(1);
      }
      await go(phone.page, 'credentials');
      await screenshot(phone.page, 'ui-phone-credentials');
      await go(phone.page, 'verifiers');
      await screenshot(phone.page, 'ui-phone-verifiers');
      expect(phone.logs.filter((l) => l.startsWith('pageerror'))).toEqual([]);
    } finally {
      await phone.close();
    }
  }, T);
});
