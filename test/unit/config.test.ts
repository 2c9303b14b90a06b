import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema, defaultConfig, loadConfig } from '../../src/config/config.js';
import { LatchkeyError } from '../../src/errors.js';
import { configSection, renderConfigTable } from '../helpers/config-doc.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as LatchkeyError).code;
  }
  return undefined;
}

describe('config', () => {
  it('defaults apply with no sources', () => {
    expect(loadConfig({ env: {} })).toEqual(defaultConfig());
  });
  it('file < env < flags', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-cfg-'));
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(file, JSON.stringify({ port: 1000, adminPort: 1001, dataDir: '/x' }));
    const cfg = loadConfig({ configFile: file, env: { LATCHKEY_PORT: '2000', LATCHKEY_CASSANDRA_CONTACT_POINTS: 'a, b' }, flags: { adminPort: '3001' } });
    expect(cfg.port).toBe(2000);
    expect(cfg.adminPort).toBe(3001);
    expect(cfg.dataDir).toBe('/x');
    expect(cfg.cassandraContactPoints).toEqual(['a', 'b']);
    fs.rmSync(dir, { recursive: true });
  });
  it('unknown keys and bad values stop start-up with coded errors', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-cfg-'));
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(file, JSON.stringify({ prot: 1 }));
    expect(code(() => loadConfig({ configFile: file, env: {} }))).toBe('LK_CONFIG_UNKNOWN_KEY');
    fs.writeFileSync(file, '{not json');
    expect(code(() => loadConfig({ configFile: file, env: {} }))).toBe('LK_CONFIG_FILE_UNREADABLE');
    expect(code(() => loadConfig({ configFile: path.join(dir, 'missing.json'), env: {} }))).toBe('LK_CONFIG_FILE_UNREADABLE');
    expect(code(() => loadConfig({ env: { LATCHKEY_PORT: 'eighty' } }))).toBe('LK_CONFIG_INVALID_VALUE');
    expect(code(() => loadConfig({ env: { LATCHKEY_PORT: '70000' } }))).toBe('LK_CONFIG_INVALID_VALUE');
    expect(code(() => loadConfig({ env: { LATCHKEY_LOG_LEVEL: 'loud' } }))).toBe('LK_CONFIG_INVALID_VALUE');
    expect(code(() => loadConfig({ env: { LATCHKEY_CREDENTIALS_PLUGINS: '[1]' } }))).toBe('LK_CONFIG_INVALID_VALUE');
    expect(code(() => loadConfig({ env: {}, flags: { nope: '1' } }))).toBe('LK_CONFIG_UNKNOWN_KEY');
    fs.rmSync(dir, { recursive: true });
  });
  it('every field has an env var LATCHKEY_<FIELD> and is documented in docs/operations.md', () => {
    const doc = fs.readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
    for (const [k, spec] of Object.entries(configSchema)) {
      const snake = k.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
      expect(spec.env).toBe(`LATCHKEY_${snake}`);
      expect(doc, `${spec.env} missing from docs/operations.md`).toContain(`\`${spec.env}\``);
    }
    expect(configSection(doc)).toBe(renderConfigTable());
  });
});

describe('config edge cases', () => {
  it('does not treat prototype keys as fields and checks keepalive consistency', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lk-cfg-'));
    const file = path.join(dir, 'c.json');
    fs.writeFileSync(file, JSON.stringify({ toString: 1 }));
    expect(code(() => loadConfig({ configFile: file, env: {} }))).toBe('LK_CONFIG_UNKNOWN_KEY');
    expect(code(() => loadConfig({ env: {}, flags: { constructor: '1' } }))).toBe('LK_CONFIG_UNKNOWN_KEY');
    expect(code(() => loadConfig({ env: { LATCHKEY_KEEP_ALIVE_DEFAULT_SEC: '300', LATCHKEY_KEEP_ALIVE_MAX_SEC: '60' } }))).toBe('LK_CONFIG_INVALID_VALUE');
    fs.rmSync(dir, { recursive: true });
  });
});
