#!/usr/bin/env node
/**
 * The Administration UI (src/ui) -> dist/ui: index.html, app.js, app.css, and the endpoint-token
 * demo under demo/. Run by scripts/build-web.mjs (npm run build) or alone: node scripts/build-ui.mjs.
 *
 * 1. Type-check src/ui with tsconfig.ui.json (DOM types and no Node types: a `Buffer` or `process`
 *    in UI code fails the build instead of failing in the browser).
 * 2. Bundle with esbuild (ESM, browser, minified, linked source maps); no CDN, nothing fetched.
 *    The demo's endpoint SDK is not bundled again: its import of src/sdk/index.js becomes an
 *    import of the SDK's own browser bundle (scripts/build-sdk.mjs, run before this one by
 *    build-web.mjs), copied to dist/ui/sdk/, so the demo runs exactly what a web app would ship.
 * 3. Write the HTML pages with each asset named `name?v=<first 16 hex of its SHA-256>`: the admin
 *    listener (src/admin/ui-static.ts) serves a request carrying the current hash as immutable
 *    and everything else as no-cache, so a new build reaches browsers at the next page load.
 * The output is built in a temporary directory and swapped in, so a server reading dist/ui never
 * sees half a build.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.join(ROOT, 'src/ui');
const OUT = path.join(ROOT, 'dist/ui');

/** Bundles: output name (relative to dist/ui, without extension) -> entry. */
const ENTRIES = {
  app: 'src/ui/main.ts',
  'demo/token': 'src/ui/demo/token.ts',
};
const STYLES = { app: 'src/ui/app.css' };
/** HTML templates (relative to src/ui); `{{app.js}}` names an output relative to dist/ui. */
const PAGES = ['index.html', 'demo/token.html'];

export function typecheck() {
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.ui.json')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`src/ui does not type-check (tsconfig.ui.json):\n${r.stdout}${r.stderr}`);
}

const SDK_NAME = 'latchkey-sdk.browser.mjs';

/** The SDK's browser bundle, built first when missing; returns its text and version hash. */
async function sdkBundle() {
  const file = path.join(ROOT, 'dist/sdk', SDK_NAME);
  if (!fs.existsSync(file)) {
    const mod = await import(new URL('./build-sdk.mjs', import.meta.url).href);
    await mod.default();
  }
  const body = fs.readFileSync(file);
  const map = fs.existsSync(`${file}.map`) ? fs.readFileSync(`${file}.map`) : null;
  return { body, map, version: crypto.createHash('sha256').update(body).digest('hex').slice(0, 16) };
}

/** esbuild plugin: src/ui's imports of the SDK (../../sdk/index.js) load dist/ui/sdk/ at run time. */
function externalSdk(version) {
  return {
    name: 'latchkey-external-sdk',
    setup(build) {
      build.onResolve({ filter: /\/sdk\/index\.js$/ }, (args) => {
        if (path.resolve(args.resolveDir, args.path) !== path.join(ROOT, 'src/sdk/index.js')) return undefined;
        const fromOut = path.posix.relative(path.posix.dirname(path.relative(SRC, args.importer).split(path.sep).join('/')), `sdk/${SDK_NAME}`);
        return { path: `${fromOut.startsWith('.') ? fromOut : `./${fromOut}`}?v=${version}`, external: true };
      });
    },
  };
}

export default async function buildUi({ check = true } = {}) {
  const started = Date.now();
  if (check) typecheck();
  const tmp = `${OUT}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const sdk = await sdkBundle();
  const entryPoints = [
    ...Object.entries(ENTRIES).filter(([, src]) => fs.existsSync(path.join(ROOT, src))).map(([out, src]) => ({ out, in: path.join(ROOT, src) })),
    ...Object.entries(STYLES).map(([out, src]) => ({ out, in: path.join(ROOT, src) })),
  ];
  const result = await esbuild.build({
    entryPoints,
    outdir: tmp,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
    minify: true,
    sourcemap: 'linked',
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    plugins: [externalSdk(sdk.version)],
  });
  fs.mkdirSync(path.join(tmp, 'sdk'), { recursive: true });
  fs.writeFileSync(path.join(tmp, 'sdk', SDK_NAME), sdk.body);
  if (sdk.map) fs.writeFileSync(path.join(tmp, 'sdk', `${SDK_NAME}.map`), sdk.map);
  const versions = {};
  for (const file of Object.keys(result.metafile.outputs)) {
    const rel = path.relative(tmp, path.resolve(ROOT, file)).split(path.sep).join('/');
    versions[rel] = crypto.createHash('sha256').update(fs.readFileSync(path.resolve(ROOT, file))).digest('hex').slice(0, 16);
  }
  for (const page of PAGES) {
    const src = path.join(SRC, page);
    if (!fs.existsSync(src)) continue;
    const dir = path.posix.dirname(page);
    const html = fs.readFileSync(src, 'utf8').replace(/\{\{([\w./-]+)\}\}/g, (_m, name) => {
      if (!versions[name]) throw new Error(`${page} names ${name}, which the build did not write`);
      return `${path.posix.relative(dir, name)}?v=${versions[name]}`;
    });
    fs.mkdirSync(path.join(tmp, dir), { recursive: true });
    fs.writeFileSync(path.join(tmp, page), html);
  }
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.renameSync(tmp, OUT);
  const sizes = Object.keys(versions).filter((f) => !f.endsWith('.map')).map((f) => `${f} ${(fs.statSync(path.join(OUT, f)).size / 1024).toFixed(1)} KiB`);
  process.stdout.write(`build-ui: dist/ui (${sizes.join(', ')}) in ${Date.now() - started} ms\n`);
}

/** Build when dist/ui is missing or older than src/ui (the UI tests call this; npm test has built it). */
export async function buildUiIfStale() {
  const newest = (dir) => Math.max(0, ...fs.readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).mtimeMs)));
  const out = path.join(OUT, 'index.html');
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= newest(SRC)) return;
  await buildUi({ check: false });
}

if (import.meta.url === `file://${process.argv[1]}`) await buildUi();
