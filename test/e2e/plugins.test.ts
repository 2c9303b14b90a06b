/**
 * Custom credentials plugins named in configuration: loaded and checked at start-up, config
 * validated against the plugin's Avro schema (defaults filled), and consulted on every handshake.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConnackCode } from '../../src/errors.js';
import { connackCode, startHarness, tempDir, type Harness } from '../helpers/harness.js';
import { ROOT } from '../helpers/root.js';
import { makeEndpointKey } from '../helpers/wire-client.js';

const plugin = (name: string): string => path.join(ROOT, 'test/fixtures/plugins', name);
const harnesses: Harness[] = [];
afterAll(async () => {
  for (const h of harnesses) await h.close();
});

async function startCode(config: Record<string, unknown>): Promise<string | undefined> {
  const dir = tempDir();
  try {
    const h = await startHarness({ credentialsPlugins: config }, dir);
    harnesses.push(h);
    return undefined;
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    return (err as { code?: string }).code;
  }
}

describe('credentials plugins', () => {
  it('an allow-list plugin admits listed keys only', async () => {
    const allowed = makeEndpointKey();
    const other = makeEndpointKey();
    const h = await startHarness({ credentialsPlugins: { allowlist: { module: plugin('allow-list.mjs'), config: { allowed: [allowed.keyHash] } } } });
    harnesses.push(h);
    const app = await h.app({ credentialsService: 'allowlist' });
    const connect = (key: typeof allowed): Promise<number> => connackCode(h, app.appToken, key);
    expect(await connect(allowed)).toBe(ConnackCode.ACCEPTED);
    expect(await connect(other)).toBe(ConnackCode.REFUSE_VERIFICATION_FAILED);
  });

  it('refuses to start with a plugin that lacks interface methods', async () => {
    expect(await startCode({ broken: { module: plugin('broken.mjs') } })).toBe('LK_PLUGIN_INVALID');
  });
  it('refuses to start with a plugin module that cannot be imported', async () => {
    expect(await startCode({ missing: { module: plugin('does-not-exist.mjs') } })).toBe('LK_PLUGIN_LOAD_FAILED');
  });
  it('refuses a config that does not match the plugin schema', async () => {
    expect(await startCode({ allowlist: { module: plugin('allow-list.mjs'), config: { allowed: 'everyone' } } })).toBe('LK_CONFIG_INVALID_VALUE');
    expect(await startCode({ allowlist: { module: plugin('allow-list.mjs'), config: { allowed: [], extra: 1 } } })).toBe('LK_CONFIG_UNKNOWN_KEY');
  });
  it('refuses a plugin named like a built-in service and unknown plugin keys', async () => {
    expect(await startCode({ internal: { module: plugin('allow-list.mjs'), config: { allowed: [] } } })).toBe('LK_CONFIG_INVALID_VALUE');
    expect(await startCode({ x: { module: plugin('allow-list.mjs'), conf: {} } })).toBe('LK_CONFIG_UNKNOWN_KEY');
  });
});
