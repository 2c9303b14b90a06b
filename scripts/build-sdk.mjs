/**
 * The SDK's browser bundle (run by scripts/build-web.mjs during `npm run build`): one ESM file,
 * dist/sdk/latchkey-sdk.browser.mjs (+ .map), that package.json's `browser` condition of
 * `latchkey/sdk` points at. esbuild, platform browser: a Node module anywhere in the SDK's imports
 * fails this build. websocket.ts (which may load undici in Node) is replaced by
 * websocket.browser.ts (the page's WebSocket only).
 *
 * Prints the size raw (bundled, not minified), minified and min+gzip; test/unit/sdk-bundle.test.ts
 * holds the min+gzip size under its budget (docs/performance.md, "SDK browser bundle").
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SDK_BUNDLE = path.join(ROOT, 'dist/sdk/latchkey-sdk.browser.mjs');

/** esbuild plugin: the SDK's ./websocket.js becomes ./websocket.browser.ts. */
const browserWebSocket = {
  name: 'latchkey-browser-websocket',
  setup(build) {
    build.onResolve({ filter: /^\.\/websocket\.js$/ }, (args) => {
      if (path.resolve(args.resolveDir) !== path.join(ROOT, 'src/sdk')) return undefined;
      return { path: path.join(ROOT, 'src/sdk/websocket.browser.ts') };
    });
  },
};

function options(minify) {
  return {
    entryPoints: [path.join(ROOT, 'src/sdk/index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify,
    legalComments: 'none',
    plugins: [browserWebSocket],
    logLevel: 'silent',
    metafile: true,
  };
}

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

/**
 * Build the bundle. `write: false` builds in memory only (the size test). Returns the sizes in
 * bytes, the bundle's text and the input files esbuild took.
 */
export async function buildSdkBundle({ write = true } = {}) {
  const raw = await esbuild.build({ ...options(false), write: false, outfile: SDK_BUNDLE });
  const min = await esbuild.build({ ...options(true), write, sourcemap: write ? 'linked' : false, outfile: SDK_BUNDLE });
  const rawText = raw.outputFiles[0].text;
  const minBytes = write ? fs.readFileSync(SDK_BUNDLE) : Buffer.from(min.outputFiles.find((f) => f.path === SDK_BUNDLE).contents);
  return {
    file: SDK_BUNDLE,
    rawBytes: Buffer.byteLength(rawText),
    minBytes: minBytes.length,
    gzipBytes: zlib.gzipSync(minBytes, { level: 9 }).length,
    text: minBytes.toString('utf8'),
    inputs: Object.keys(raw.metafile.inputs),
  };
}

export default async function build() {
  const r = await buildSdkBundle();
  process.stdout.write(`${path.relative(ROOT, r.file)}: ${kb(r.rawBytes)} raw, ${kb(r.minBytes)} minified, ${kb(r.gzipBytes)} min+gzip (${r.inputs.length} modules)\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await build();
