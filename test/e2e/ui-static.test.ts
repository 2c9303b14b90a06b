/**
 * The Administration UI's files on the admin listener (src/admin/ui-static.ts): /ui -> /ui/, the
 * page and its assets with their content types and caching headers, 304 on a matching ETag, HEAD,
 * 404 coded JSON for unknown names and for every traversal spelling, 405 for other methods; and
 * GET /admin/v1/me, which the UI signs in with.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, startHarness, tempDir, type Harness } from '../helpers/harness.js';
import { loadUiAssets, resolveUiPath } from '../../src/admin/ui-static.js';
import { ROOT } from '../helpers/root.js';

/** Build dist/ui when it is missing or older than src/ui (npm test has built it already). */
async function ensureUiBuilt(): Promise<void> {
  const mod = (await import(pathToFileURL(path.join(ROOT, 'scripts/build-ui.mjs')).href)) as { buildUiIfStale: () => Promise<void> };
  await mod.buildUiIfStale();
}

/** One raw request, the path sent exactly as given (fetch would normalise `..`). */
function raw(port: number, requestLine: string): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
    s.on('data', (d) => {
      data += d.toString('utf8');
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = /content-length: (\d+)/i.exec(data.slice(0, end));
      if (len && !requestLine.startsWith('HEAD ') && data.length - end - 4 < Number(len[1])) return;
      s.end();
      resolve({ status: Number(data.slice(9, 12)), headers: data.slice(0, end), body: data.slice(end + 4) });
    });
    s.on('error', reject);
    s.write(`${requestLine} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
  });
}

let h: Harness;
beforeAll(async () => {
  await ensureUiBuilt();
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('Administration UI files', () => {
  it('/ui redirects to /ui/, which is the page, revalidated every time', async () => {
    const r = await fetch(`${h.adminUrl}/ui`, { redirect: 'manual' });
    expect(r.status).toBe(308);
    expect(r.headers.get('location')).toBe('/ui/');
    const page = await fetch(`${h.adminUrl}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await page.text();
    expect(html).toContain('<div id="app">');
    expect((await fetch(`${h.adminUrl}/ui/index.html`)).status).toBe(200);
    // Same ETag: 304 without a body.
    const again = await fetch(`${h.adminUrl}/ui/`, { headers: { 'if-none-match': page.headers.get('etag')! } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
  });

  it('assets named with their current hash are immutable; without it they are revalidated', async () => {
    const html = await (await fetch(`${h.adminUrl}/ui/`)).text();
    const js = /src="(app\.js\?v=[0-9a-f]{16})"/.exec(html)![1]!;
    const css = /href="(app\.css\?v=[0-9a-f]{16})"/.exec(html)![1]!;
    const a = await fetch(`${h.adminUrl}/ui/${js}`);
    expect([a.status, a.headers.get('content-type'), a.headers.get('cache-control')]).toEqual([200, 'text/javascript; charset=utf-8', 'public, max-age=31536000, immutable']);
    const c = await fetch(`${h.adminUrl}/ui/${css}`);
    expect([c.status, c.headers.get('content-type')]).toEqual([200, 'text/css; charset=utf-8']);
    expect((await fetch(`${h.adminUrl}/ui/app.js`)).headers.get('cache-control')).toBe('no-cache');
    expect((await fetch(`${h.adminUrl}/ui/app.js?v=0000000000000000`)).headers.get('cache-control')).toBe('no-cache');
    const head = await raw(h.server.adminPort, 'HEAD /ui/app.js');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers).toMatch(/content-length: [1-9]\d+/i);
  });

  it('unknown names and every traversal spelling answer 404 LK_NOT_FOUND in JSON', async () => {
    const missing = await fetch(`${h.adminUrl}/ui/nope.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toBe('application/json');
    expect(((await missing.json()) as { code: string }).code).toBe('LK_NOT_FOUND');
    for (const p of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/..%2fpackage.json', '/ui/%2e%2e%2f%2e%2e%2fpackage.json', '/ui/..\\package.json', '/ui/.%2e/src/ui/app.ts', '/ui/%00index.html', '/ui/app.js.map/../index.html', '/ui/%ZZ', '/ui//etc/passwd']) {
      const r = await raw(h.server.adminPort, `GET ${p}`);
      expect(r.status, p).toBe(404);
      expect(JSON.parse(r.body).code, p).toBe('LK_NOT_FOUND');
      expect(r.body, p).not.toContain('"name": "latchkey"');
    }
  });

  it('other methods answer 405 with Allow', async () => {
    const r = await fetch(`${h.adminUrl}/ui/`, { method: 'POST', body: 'x' });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET, HEAD');
    expect(((await r.json()) as { code: string }).code).toBe('LK_METHOD_NOT_ALLOWED');
  });
});

describe('GET /admin/v1/me', () => {
  it('names the key and its scope', async () => {
    const root = await adminApi(h, 'GET', '/admin/v1/me');
    expect(root.status).toBe(200);
    expect(root.body.tenantId).toBeNull();
    expect(typeof root.body.id).toBe('string');
    await adminApi(h, 'POST', '/admin/v1/tenants', { id: 'me-t', name: 'me' });
    const k = await adminApi(h, 'POST', '/admin/v1/api-keys', { name: 'ops', tenantId: 'me-t' });
    const r = await fetch(`${h.adminUrl}/admin/v1/me`, { headers: { authorization: `Bearer ${k.body.token as string}` } });
    expect(await r.json()).toEqual({ id: k.body.id, name: 'ops', tenantId: 'me-t' });
    expect((await fetch(`${h.adminUrl}/admin/v1/me`)).status).toBe(401);
  });
});

describe('the file table', () => {
  it('holds only files of known types with safe names, and resolves only names it holds', () => {
    const dir = tempDir('latchkey-ui-');
    try {
      fs.mkdirSync(path.join(dir, 'demo'));
      fs.mkdirSync(path.join(dir, '.git'));
      for (const f of ['index.html', 'app.js', 'demo/token.html', '.env.js', '.git/config.json', 'tool.exe', 'notes']) fs.writeFileSync(path.join(dir, f), 'x');
      const t = loadUiAssets(dir);
      expect([...t.keys()].sort()).toEqual(['app.js', 'demo/token.html', 'index.html']);
      expect(resolveUiPath('/ui/', t)?.name).toBe('index.html');
      expect(resolveUiPath('/ui/demo/', t)).toBeNull(); // no demo/index.html
      expect(resolveUiPath('/ui/demo/token.html', t)?.name).toBe('demo/token.html');
      expect(resolveUiPath('/ui/demo%2Ftoken.html', t)?.name).toBe('demo/token.html');
      for (const bad of ['/ui/.env.js', '/ui/demo/../app.js', '/ui/%2e%2e/app.js', '/ui/./app.js', '/ui/app.js/', '/ui/tool.exe', '/ui/%E0%A4%A', '/uiapp.js', '/ui//app.js']) {
        expect(resolveUiPath(bad, t), bad).toBeNull();
      }
      expect(loadUiAssets(path.join(dir, 'missing')).size).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
