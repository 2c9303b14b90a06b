#!/usr/bin/env node
/**
 * The project's browser builds, run by `npm run build` after tsc: every scripts/build-*.mjs next
 * to this file (the SDK's browser bundle, the Administration UI) exports a default async function
 * that builds its part with esbuild into dist/. Each one prints what it wrote and its size.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const parts = fs
  .readdirSync(here)
  .filter((f) => /^build-.+\.mjs$/.test(f) && f !== 'build-web.mjs')
  .sort();
for (const f of parts) {
  const mod = await import(pathToFileURL(path.join(here, f)).href);
  if (typeof mod.default !== 'function') throw new Error(`scripts/${f} has no default export`);
  await mod.default();
}
