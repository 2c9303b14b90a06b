/**
 * The plugin loader (src/plugins/): one descriptor and one `{ module, config }` shape for the three
 * plugin kinds; kind, name and API version checked at load with a code naming the module; the
 * older export style and ownerVerifierPlugins' older bare-path shape still loaded, each warned
 * about once. The kinds' own behaviour is tested where they are used (verifiers/registry.test.ts,
 * bootstrap.test.ts, e2e/plugins.test.ts, e2e/attach-errors.test.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCustomVerifierTypes, createVerifier } from '../../src/ownership/verifiers/registry.js';
import { PLUGIN_API_VERSIONS } from '../../src/plugins/descriptor.js';
import { importPlugin, loadPlugin } from '../../src/plugins/plugin.js';
import { parsePluginMap } from '../../src/plugins/spec.js';
import { ROOT } from '../helpers/root.js';
import { capturingLog, silentLog } from './verifiers/stand-in.js';

const fixture = (rel: string): string => path.join(ROOT, 'test/fixtures', rel);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-plugins-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let written = 0;
/** A module file with this descriptor source (`export const plugin = ...`), under a fresh name. */
function moduleWith(source: string): string {
  const file = path.join(dir, `m${++written}.mjs`);
  fs.writeFileSync(file, source);
  return file;
}
const descriptor = (fields: string): string =>
  moduleWith(`export const plugin = { ${fields}, create: () => ({ place: () => [] }) };\n`);

const deprecations = (lines: Array<Record<string, unknown>>): Array<Record<string, unknown>> => lines.filter((l) => l.deprecated === true && l.level === 40);

describe('the plugin descriptor', () => {
  it('loads each kind from its descriptor, config validated against its schema with defaults filled', async () => {
    const { instance, plugin } = await loadPlugin<{ label: string }>('credentials', { module: fixture('plugins/allow-list.mjs'), config: { allowed: [] } }, {
      configuredAs: 'allowlist', ctx: { log: silentLog, store: null }, requiredMethods: ['lookupCredentials'],
    });
    expect([plugin.descriptor.name, plugin.descriptor.kind, plugin.descriptor.apiVersion, instance.label]).toEqual(['allow-list', 'credentials', 1, 'allow-list']);
    const strategy = await loadPlugin('bootstrapStrategy', { module: fixture('bootstrap/reverse-strategy.mjs') }, { configuredAs: 'custom', ctx: { log: silentLog }, requiredMethods: ['place'] });
    expect(strategy.plugin.descriptor.name).toBe('reverse');
    const types = await loadCustomVerifierTypes({ 'shared-secret': { module: fixture('verifiers/shared-secret.mjs') } }, silentLog);
    expect(types.types.map((t) => [t.name, t.configSchema.name])).toEqual([['shared-secret', 'SharedSecretVerifierConfig']]);
    await expect(loadPlugin('credentials', { module: fixture('plugins/allow-list.mjs'), config: { allowed: 'all' } }, {
      configuredAs: 'allowlist', ctx: { log: silentLog }, requiredMethods: [],
    })).rejects.toMatchObject({ code: 'LK_CONFIG_INVALID_VALUE' });
  });

  it('refuses a module that declares another kind, naming the module', async () => {
    const module = fixture('plugins/allow-list.mjs');
    const err = await importPlugin('bootstrapStrategy', module, { configuredAs: 'custom', log: silentLog }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LK_PLUGIN_INVALID' });
    expect((err as { detail: string }).detail).toContain(module);
  });

  it('refuses an API version outside the supported range with LK_PLUGIN_API_UNSUPPORTED', async () => {
    for (const v of [PLUGIN_API_VERSIONS.min - 1, PLUGIN_API_VERSIONS.max + 1, 1.5, '"1"', 'undefined']) {
      const module = descriptor(`name: 'future', kind: 'bootstrapStrategy', apiVersion: ${v}`);
      const err = await importPlugin('bootstrapStrategy', module, { configuredAs: 'custom', log: silentLog }).catch((e: unknown) => e);
      expect(err, String(v)).toMatchObject({ code: 'LK_PLUGIN_API_UNSUPPORTED' });
      expect((err as { detail: string }).detail).toContain(module);
    }
  });

  it('refuses a malformed name, a descriptor that is not an object, no create, and a module with neither descriptor nor create', async () => {
    const refused = [
      descriptor(`name: 'two words', kind: 'bootstrapStrategy', apiVersion: 1`),
      descriptor(`kind: 'bootstrapStrategy', apiVersion: 1`),
      moduleWith(`export const plugin = 'reverse';\n`),
      moduleWith(`export const plugin = { name: 'x', kind: 'bootstrapStrategy', apiVersion: 1 };\n`),
      moduleWith(`export function place() { return []; }\n`),
    ];
    for (const module of refused) {
      await expect(importPlugin('bootstrapStrategy', module, { configuredAs: 'custom', log: silentLog }), module).rejects.toMatchObject({ code: 'LK_PLUGIN_INVALID' });
    }
  });

  it('LK_PLUGIN_LOAD_FAILED when create() throws; LK_PLUGIN_INVALID when its instance lacks a method of its kind', async () => {
    const throwing = moduleWith(`export const plugin = { name: 't', kind: 'credentials', apiVersion: 1, create() { throw new Error('no'); } };\n`);
    await expect(loadPlugin('credentials', { module: throwing }, { configuredAs: 't', ctx: { log: silentLog }, requiredMethods: [] })).rejects.toMatchObject({ code: 'LK_PLUGIN_LOAD_FAILED' });
    await expect(loadPlugin('credentials', { module: fixture('plugins/broken.mjs') }, { configuredAs: 'b', ctx: { log: silentLog }, requiredMethods: ['provideCredentials'] }))
      .rejects.toMatchObject({ code: 'LK_PLUGIN_INVALID' });
  });
});

describe('deprecated, still loaded for one release', () => {
  it('a module in the older export style loads (named after its entry), with one warning that spells out the descriptor', async () => {
    const { log, lines } = capturingLog();
    const module = fixture('verifiers/legacy-exports.mjs');
    const types = await loadCustomVerifierTypes({ legacy: { module } }, log);
    expect(types.types).toMatchObject([{ name: 'legacy', description: 'Legacy-style test verifier.', custom: true }]);
    const v = await createVerifier('legacy', { secret: 's' }, { log, customModules: types.modules });
    expect(await v.verify('bob', 's:bob')).toEqual({ ok: true });
    await v.close();
    await loadCustomVerifierTypes({ legacy: { module } }, log);
    const warned = deprecations(lines);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ module, kind: 'ownerVerifier' });
    expect(String(warned[0]!.msg)).toContain("export const plugin = { name: 'legacy', kind: 'ownerVerifier', apiVersion: 1, configSchema, create }");
  });

  it('ownerVerifierPlugins as type name -> bare module path: mapped to { module }, one warning with the new form of the field', async () => {
    const { log, lines } = capturingLog();
    const module = fixture('verifiers/shared-secret.mjs');
    const old = { 'shared-secret': module };
    const types = await loadCustomVerifierTypes(old, log);
    expect(types.modules).toEqual({ 'shared-secret': module });
    await loadCustomVerifierTypes(old, log);
    const warned = deprecations(lines);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ field: 'ownerVerifierPlugins', use: { 'shared-secret': { module } } });
    expect(String(warned[0]!.msg)).toContain(JSON.stringify({ 'shared-secret': { module } }));
  });

  it('the bare-path shape is ownerVerifierPlugins\' only: credentialsPlugins never took it', () => {
    expect(() => parsePluginMap('credentialsPlugins', { x: '/a.mjs' }, silentLog)).toThrow(expect.objectContaining({ code: 'LK_CONFIG_INVALID_VALUE' }));
    expect([...parsePluginMap('ownerVerifierPlugins', { x: '/a.mjs' }, silentLog, { pathShapeDeprecated: true })]).toEqual([['x', { module: '/a.mjs', config: {} }]]);
  });
});
