/**
 * The Administration UI's static files on the admin listener: GET/HEAD /ui/ and /ui/<asset> from
 * dist/ui (built by scripts/build-ui.mjs), and /ui -> /ui/.
 *
 * The table of files is read once, at the first /ui request (about 250 KiB with source maps, read
 * synchronously in ~1 ms; a gateway process without the admin listener never reads it), and kept:
 * later requests never touch the file system. Only names in that table are served, and a path is
 * looked up as a key, never joined to a directory, so `..`, `%2e%2e`, backslashes or NUL cannot
 * reach another file. A new build is served after a restart.
 * A name that is not in the table answers 404 LK_NOT_FOUND in JSON, as every other admin path does.
 *
 * Caching: index.html names its assets with `?v=<content hash>` (the build writes the hashes), so
 * an asset asked for with the hash it has now is immutable for a year; anything else (the pages,
 * an asset without or with a stale hash) is `no-cache` with an ETag, i.e. revalidated each time
 * (304 when unchanged). A new build therefore reaches browsers at the next page load.
 *
 * The UI speaks only the admin REST API of the same origin, plus /metrics for the live view; the
 * endpoint-token demo also opens the endpoint WebSocket (another port, hence `ws:`/`wss:`).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { ERRORS } from '../errors.js';
import type { HttpHandler, HttpReply, HttpRequest } from '../transport/http.js';

export const UI_PREFIX = '/ui/';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/** Pages may load scripts, styles and images of this origin only, and nothing may frame them. */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss: http: https:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const YEAR_SEC = 365 * 86_400;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  /** First 16 hex digits of the SHA-256 of the body: the `?v=` index.html uses. */
  version: string;
}

/** A file name the table may hold: path segments of safe characters, none starting with a dot. */
const SAFE_NAME = /^(?:[A-Za-z0-9_-][A-Za-z0-9._-]*\/)*[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** dist/ui of this checkout or installed package, whether running from src/ (vitest) or dist/src/. */
export function defaultUiDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) || path.basename(dir) === 'dist') {
    const up = path.dirname(dir);
    if (up === dir) return path.resolve('dist/ui');
    dir = up;
  }
  return path.join(dir, 'dist/ui');
}

/** Every servable file under `dir` by its name relative to it ('demo/token.html'); empty if no dir. */
export function loadUiAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  const walk = (sub: string, depth: number): void => {
    if (depth > 4) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(dir, sub), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const name = sub ? `${sub}/${e.name}` : e.name;
      if (!SAFE_NAME.test(name)) continue;
      if (e.isDirectory()) walk(name, depth + 1);
      else if (e.isFile()) {
        const type = TYPES[path.extname(e.name).toLowerCase()];
        if (!type) continue;
        const body = fs.readFileSync(path.join(dir, name));
        const hash = crypto.createHash('sha256').update(body).digest();
        out.set(name, { body, type, etag: `"${hash.toString('base64url').slice(0, 27)}"`, version: hash.toString('hex').slice(0, 16) });
      }
    }
  };
  walk('', 0);
  return out;
}

/** The asset a request path names, or null: '' and names ending in '/' mean index.html there. */
export function resolveUiPath(url: string, assets: ReadonlyMap<string, Asset>): { name: string; asset: Asset } | null {
  if (!url.startsWith(UI_PREFIX)) return null;
  let rest = url.slice(UI_PREFIX.length);
  if (rest.includes('%')) {
    try {
      rest = decodeURIComponent(rest);
    } catch {
      return null;
    }
  }
  if (rest === '' || rest.endsWith('/')) rest += 'index.html';
  if (!SAFE_NAME.test(rest)) return null;
  const asset = assets.get(rest);
  return asset ? { name: rest, asset } : null;
}

/** The headers of a found asset, given the request's `?v=`. */
export function uiHeaders(asset: Asset, version: string | null): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': asset.type,
    etag: asset.etag,
    'cache-control': version === asset.version && !asset.type.startsWith('text/html') ? `public, max-age=${YEAR_SEC}, immutable` : 'no-cache',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };
  if (asset.type.startsWith('text/html')) {
    h['content-security-policy'] = CSP;
    h['x-frame-options'] = 'DENY';
  }
  return h;
}

function jsonError(status: number, code: 'LK_NOT_FOUND' | 'LK_METHOD_NOT_ALLOWED', detail: string, extra: Record<string, string> = {}): HttpReply {
  return { status, headers: { ...extra, 'content-type': 'application/json' }, body: JSON.stringify({ code, message: `${ERRORS[code].message}: ${detail}` }) };
}

/**
 * /ui and /ui/* on the admin listener (mounted with transport/http-uws.ts mountHttp, which answers
 * a handler bug with 500). Everything is answered from memory; no request body is read.
 */
export class UiHandler implements HttpHandler {
  readonly paths = ['/ui', '/ui/*'];
  readonly maxBodyBytes = 0;
  private table: Map<string, Asset> | null = null;

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  wantsBody(): boolean {
    return false;
  }

  private files(): Map<string, Asset> {
    if (this.table) return this.table;
    this.table = loadUiAssets(this.dir);
    if (!this.table.has('index.html')) this.log.warn({ dir: this.dir }, 'Administration UI not built (no index.html): /ui/ answers 404; run npm run build');
    return this.table;
  }

  handle(req: HttpRequest): Promise<HttpReply> {
    return Promise.resolve(this.answer(req));
  }

  private answer(req: HttpRequest): HttpReply {
    const { method, path: url } = req;
    if (method !== 'GET' && method !== 'HEAD') return jsonError(405, 'LK_METHOD_NOT_ALLOWED', `${method} ${url}`, { allow: 'GET, HEAD' });
    if (url === '/ui') return { status: 308, headers: { location: UI_PREFIX }, body: null };
    const assets = this.files();
    const found = resolveUiPath(url, assets);
    if (!found) {
      const detail = assets.has('index.html') ? `GET ${url}` : `GET ${url} (the Administration UI is not built: npm run build)`;
      return jsonError(404, 'LK_NOT_FOUND', detail);
    }
    const headers = uiHeaders(found.asset, new URLSearchParams(req.query).get('v'));
    if (req.headers['if-none-match'] === found.asset.etag) return { status: 304, headers, body: null };
    return { status: 200, headers, body: found.asset.body };
  }
}
