/**
 * The admin listener's other handlers in-process (transport/http.ts inject()): the Administration
 * UI's static files (admin/ui-static.ts) and /metrics (transport/metrics-route.ts). Over real HTTP
 * they are tested in test/e2e/ui-static.test.ts and test/e2e/metrics.test.ts.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import client from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { UiHandler } from '../../src/admin/ui-static.js';
import { inject } from '../../src/transport/http.js';
import { MetricsHandler } from '../../src/transport/metrics-route.js';

const log = pino({ level: 'silent' });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-ui-'));
fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>x</title>');
fs.writeFileSync(path.join(dir, 'app.js'), 'console.log(1)');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('UiHandler', () => {
  const ui = new UiHandler(dir, log);

  it('/ui redirects to /ui/; /ui/ is index.html with its security headers; HEAD has the length and no body', async () => {
    const r = await inject(ui, { method: 'GET', url: '/ui' });
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe('/ui/');
    const page = await inject(ui, { method: 'GET', url: '/ui/' });
    expect(page.status).toBe(200);
    expect(page.text).toContain('<title>x</title>');
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(page.headers['cache-control']).toBe('no-cache');
    const head = await inject(ui, { method: 'HEAD', url: '/ui/' });
    expect(head.text).toBe('');
    expect(head.headers['content-length']).toBe(String(page.text.length));
  });

  it('an asset asked for with its current ?v= is immutable; its ETag answers 304 without a body', async () => {
    const first = await inject(ui, { method: 'GET', url: '/ui/app.js' });
    expect(first.headers['cache-control']).toBe('no-cache');
    const etag = first.headers.etag!;
    const again = await inject(ui, { method: 'GET', url: '/ui/app.js', headers: { 'If-None-Match': etag } });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    const version = crypto.createHash('sha256').update('console.log(1)').digest('hex').slice(0, 16);
    const pinned = await inject(ui, { method: 'GET', url: `/ui/app.js?v=${version}` });
    expect(pinned.headers['cache-control']).toContain('immutable');
  });

  it('unknown names, escapes out of the folder and other methods get coded JSON errors', async () => {
    for (const url of ['/ui/nope.js', '/ui/..%2Fpackage.json', '/ui/%ZZ']) {
      const r = await inject(ui, { method: 'GET', url });
      expect(r.status, url).toBe(404);
      expect((r.json as { code: string }).code).toBe('LK_NOT_FOUND');
    }
    const post = await inject(ui, { method: 'POST', url: '/ui/', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((post.json as { code: string }).code).toBe('LK_METHOD_NOT_ALLOWED');
  });
});

describe('MetricsHandler', () => {
  it('GET collects the registry; HEAD answers the content type without collecting; other methods 405; a failing collect 500', async () => {
    const registry = new client.Registry();
    let collected = 0;
    new client.Gauge({ name: 'test_gauge', help: 'h', registers: [registry], collect() { collected++; this.set(7); } });
    const m = new MetricsHandler(registry, log);
    const get = await inject(m, { method: 'GET', url: '/metrics' });
    expect(get.status).toBe(200);
    expect(get.text).toContain('test_gauge 7');
    expect(get.headers['content-type']).toBe(registry.contentType);
    expect(collected).toBe(1);
    const head = await inject(m, { method: 'HEAD', url: '/metrics' });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(collected).toBe(1);
    expect((await inject(m, { method: 'DELETE', url: '/metrics' })).status).toBe(405);
    const failing = new MetricsHandler(registry, log, () => Promise.reject(new Error('primary gone')));
    expect((await inject(failing, { method: 'GET', url: '/metrics' })).status).toBe(500);
  });
});
