/**
 * The owner verifier form generated from an Avro schema (src/ui/avro-form.ts), in Chromium, for
 * every kind of field it maps: a custom verifier type (config ownerVerifierPlugins) whose schema has
 * an enum, a boolean, int and double, a map, an array of ints, an optional (["null", T]) field, a
 * nested record and a union the form takes as JSON. What the form sends is what the server stores;
 * a value the form cannot read is refused in place before anything is sent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserAvailable, openBrowser, screenshot, type BrowserSession } from '../helpers/browser.js';
import { adminApi, startHarness, tempDir, type Harness } from '../helpers/harness.js';
import { ROOT } from '../helpers/root.js';

const T = 60_000;
const RICH = `const description = 'A verifier type whose schema has every kind of field.';
const configSchema = {
  type: 'record', name: 'RichConfig', namespace: 'test.latchkey.ui',
  fields: [
    { name: 'mode', type: { type: 'enum', name: 'Mode', symbols: ['strict', 'lenient'] }, default: 'strict', doc: 'how strict' },
    { name: 'enabled', type: 'boolean', default: true },
    { name: 'retries', type: 'int', doc: 'required, no default' },
    { name: 'ratio', type: 'double', default: 0.5 },
    { name: 'labels', type: { type: 'map', values: 'string' }, default: {} },
    { name: 'ports', type: { type: 'array', items: 'int' } },
    { name: 'contact', type: ['null', 'string'], default: null },
    { name: 'upstream', type: { type: 'record', name: 'Upstream', fields: [{ name: 'host', type: 'string' }, { name: 'port', type: 'int', default: 443 }] } },
    { name: 'extra', type: ['string', 'int'], default: 'none' },
  ],
};
function create() { return { async verify() { return { ok: true }; }, async close() {} }; }
export const plugin = { name: 'rich', kind: 'ownerVerifier', apiVersion: 1, description, configSchema, create };
`;

let h: Harness;
let b: BrowserSession;
let dir: string;

describe.runIf(browserAvailable())('verifier form generated from an Avro schema', () => {
  beforeAll(async () => {
    const mod = (await import(pathToFileURL(path.join(ROOT, 'scripts/build-ui.mjs')).href)) as { buildUiIfStale: () => Promise<void> };
    await mod.buildUiIfStale();
    dir = tempDir('latchkey-ui-verifier-');
    fs.writeFileSync(path.join(dir, 'rich.mjs'), RICH);
    h = await startHarness({ ownerVerifierPlugins: { rich: { module: path.join(dir, 'rich.mjs') } } });
    await adminApi(h, 'POST', '/admin/v1/tenants', { id: 'acme', name: 'Acme' });
    await adminApi(h, 'POST', '/admin/v1/tenants/acme/applications', { id: 'app1', name: 'App one' });
    b = await openBrowser({ width: 1280, height: 800 });
    b.page.setDefaultTimeout(10_000);
  }, T);
  afterAll(async () => {
    await b?.close();
    await h?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('maps every field kind, sends what was typed in the schema\'s shape, and refuses what it cannot read', async () => {
    const page = b.page;
    await page.goto(`${h.adminUrl}/ui/#/verifiers`);
    await page.fill('#signin input[name=apiKey]', h.rootKey);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#verifier-type');
    await page.selectOption('#verifier-type', 'rich');
    expect(await page.textContent('#verifier-add .type-doc')).toContain('every kind of field');
    const cfg = (name: string): string => `#verifier-config [name="${name}"]`;
    expect(await page.evaluate((sel) => (document.querySelector(sel) as HTMLElement).tagName, cfg('mode'))).toBe('SELECT');
    expect(await page.isChecked(cfg('enabled'))).toBe(true);
    expect(await page.getAttribute(cfg('retries'), 'type')).toBe('number');
    expect(await page.inputValue(cfg('ratio'))).toBe('0.5');
    expect(await page.inputValue(cfg('upstream.port'))).toBe('443');

    await page.fill('#verifier-add input[name=name]', 'Rich');
    await page.selectOption(cfg('mode'), 'lenient');
    await page.uncheck(cfg('enabled'));
    await page.fill(cfg('retries'), '3');
    await page.fill(cfg('labels'), 'site=berlin\nrack=7');
    await page.fill(cfg('ports'), '80\nabc');
    await page.fill(cfg('upstream.host'), 'id.example.com');
    await page.click('#verifier-add button[type=submit]');
    await page.waitForSelector('#verifier-add .error');
    expect(await page.textContent('#verifier-add .error')).toContain('ports "abc" must be a whole number');
    expect(((await adminApi(h, 'GET', '/admin/v1/applications/app1/verifiers')).body.items as unknown[]).length).toBe(0);

    await page.fill(cfg('ports'), '80\n8080');
    await page.fill(cfg('contact'), 'ops@example.com');
    await page.fill(cfg('extra'), '42');
    await screenshot(page, 'ui-verifier-rich-form');
    await page.click('#verifier-add button[type=submit]');
    await page.waitForSelector('#flash .ok');
    const [v] = (await adminApi(h, 'GET', '/admin/v1/applications/app1/verifiers')).body.items as Array<{ pluginTypeName: string; jsonConfiguration: unknown }>;
    expect(v).toMatchObject({ pluginTypeName: 'rich' });
    expect(v!.jsonConfiguration).toEqual({
      mode: 'lenient', enabled: false, retries: 3, ratio: 0.5, labels: { site: 'berlin', rack: '7' }, ports: [80, 8080],
      contact: 'ops@example.com', upstream: { host: 'id.example.com', port: 443 }, extra: 42,
    });

    // A required field left empty is left out, and the server says which one.
    await page.fill('#verifier-add input[name=name]', 'Incomplete');
    await page.selectOption('#verifier-type', 'rich');
    await page.fill(cfg('ports'), '1');
    await page.fill(cfg('upstream.host'), 'h');
    await page.click('#verifier-add button[type=submit]');
    await page.waitForSelector('#verifier-add .error');
    expect(await page.textContent('#verifier-add .error .code')).toBe('LK_BAD_VERIFIER_CONFIG');
    expect(await page.textContent('#verifier-add .error')).toContain('retries');
  }, T);
});
