/**
 * The SDK's browser bundle (scripts/build-sdk.mjs), built in memory: it stays under its size
 * budget (docs/performance.md, "SDK browser bundle"), holds no Node module and no undici, and the
 * package exports point where the build writes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/root.js';

/** min+gzip budget, bytes. Measured 10.7 KB (avsc with polyfills was 74 KB): room for growth, not for avsc. */
const GZIP_BUDGET = 16 * 1024;

interface BundleInfo {
  rawBytes: number;
  minBytes: number;
  gzipBytes: number;
  text: string;
  inputs: string[];
}

describe('SDK browser bundle', () => {
  it(`is under ${GZIP_BUDGET / 1024} KB min+gzip, with no Node module, avsc or undici in it`, async () => {
    const mod = (await import(pathToFileURL(path.join(ROOT, 'scripts/build-sdk.mjs')).href)) as { buildSdkBundle(o: { write: boolean }): Promise<BundleInfo> };
    const b = await mod.buildSdkBundle({ write: false });
    expect(b.gzipBytes, `min+gzip ${b.gzipBytes} B`).toBeLessThan(GZIP_BUDGET);
    expect(b.inputs.filter((f) => !f.startsWith('src/sdk/') && f !== 'src/protocol/wire-schemas.ts' && f !== 'src/protocol/constants.ts')).toEqual([]);
    expect(b.inputs).toContain('src/sdk/websocket.browser.ts');
    expect(b.inputs).not.toContain('src/sdk/websocket.ts');
    expect(b.text.match(/undici|avsc|\brequire\(|["']node:|\bBuffer\b|\bprocess\./g)).toBeNull();
  }, 30_000);

  it('package.json exports latchkey/sdk with types, browser and node conditions', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string>> };
    const sdk = pkg.exports['./sdk']!;
    expect(Object.keys(sdk)).toEqual(['types', 'browser', 'node', 'default']);
    expect(sdk.browser).toBe('./dist/sdk/latchkey-sdk.browser.mjs');
    expect(sdk.node).toBe('./dist/src/sdk/index.js');
    expect(sdk.types).toBe('./dist/src/sdk/index.d.ts');
  });
});
