/**
 * The one loader of plugin modules, for every kind (credentials services, owner verifier types,
 * the custom bootstrap strategy). A plugin module is an ES module (or CommonJS) exporting a
 * descriptor (descriptor.ts); loading it
 *   1. imports the module                                  LK_PLUGIN_LOAD_FAILED
 *   2. checks the descriptor: kind, name, create()         LK_PLUGIN_INVALID
 *      and the API version                                 LK_PLUGIN_API_UNSUPPORTED
 *   3. compiles its configSchema, if any (avsc)            LK_PLUGIN_INVALID
 *   4. validates the config against it, defaults filled    LK_CONFIG_INVALID_VALUE / LK_CONFIG_UNKNOWN_KEY
 *   5. calls create(config, ctx)                           LK_PLUGIN_LOAD_FAILED if it throws
 *   6. checks the instance has the methods its kind needs  LK_PLUGIN_INVALID
 * so a broken plugin stops start-up instead of failing the first endpoint. Owner verifier types
 * are imported at start-up (1-3) and created per verifier (4-6): importPlugin and createPlugin are
 * the two halves, loadPlugin both.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type avro from 'avsc';
import type { Logger } from 'pino';
import { LatchkeyError } from '../errors.js';
import { warnDeprecatedOnce } from './deprecation.js';
import { checkDescriptor, PLUGIN_API_VERSIONS, type PluginContext, type PluginDescriptor, type PluginKind } from './descriptor.js';
import { compileConfigSchema, validatePluginConfig } from './plugin-config.js';
import type { PluginSpec } from './spec.js';

/** An imported, checked plugin module, ready to create instances. */
export interface ImportedPlugin {
  readonly descriptor: PluginDescriptor;
  /** Absolute module path. */
  readonly module: string;
  /** How errors and logs name it: its configuration entry and module. */
  readonly label: string;
  /** The compiled configSchema, or null if the plugin declares none. */
  readonly configType: avro.Type | null;
}

export interface ImportOptions {
  /** The configuration entry's name: a credentials service name, a verifier type name, 'custom'. */
  configuredAs: string;
  /** Where a deprecation warning goes (once per module and process). */
  log: Logger;
}

/** Steps 1-3: import a module and check its descriptor and config schema. */
export async function importPlugin(kind: PluginKind, modulePath: string, opts: ImportOptions): Promise<ImportedPlugin> {
  const module = path.resolve(modulePath);
  const label = `${kind} plugin ${opts.configuredAs} (${module})`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(module).href)) as Record<string, unknown>;
  } catch (err) {
    throw new LatchkeyError('LK_PLUGIN_LOAD_FAILED', `${label}: ${(err as Error).message}`, { cause: err });
  }
  const { descriptor, legacy } = checkDescriptor(kind, mod, label, opts.configuredAs);
  if (legacy) {
    const spelled = `export const plugin = { name: '${opts.configuredAs}', kind: '${kind}', apiVersion: ${PLUGIN_API_VERSIONS.max}, ${descriptor.configSchema !== undefined ? 'configSchema, ' : ''}create }`;
    warnDeprecatedOnce(opts.log, `exports:${kind}:${module}`, { module, kind },
      `${label}: a module without a \`plugin\` descriptor is deprecated and will be refused in the next release; add ${spelled}`);
  }
  const configType = descriptor.configSchema === undefined ? null : compileConfigSchema(label, descriptor.configSchema);
  return { descriptor, module, label, configType };
}

/** Steps 4-6: validate a config, create an instance and check it has `requiredMethods`. */
export async function createPlugin<T>(plugin: ImportedPlugin, config: unknown, ctx: PluginContext, requiredMethods: readonly string[]): Promise<T> {
  const { descriptor, label } = plugin;
  const value = plugin.configType ? validatePluginConfig(label, descriptor.configSchema, config ?? {}) : config ?? {};
  let instance: unknown;
  try {
    instance = await descriptor.create(value, ctx);
  } catch (err) {
    throw new LatchkeyError('LK_PLUGIN_LOAD_FAILED', `${label}: create() failed: ${(err as Error).message}`, { cause: err });
  }
  const missing = requiredMethods.filter((m) => typeof (instance as Record<string, unknown> | null)?.[m] !== 'function');
  if (missing.length) throw new LatchkeyError('LK_PLUGIN_INVALID', `${label}: the instance create() returned lacks ${missing.join(', ')}`);
  return instance as T;
}

export interface LoadOptions {
  configuredAs: string;
  ctx: PluginContext;
  requiredMethods: readonly string[];
}

/** Load a configured plugin: import it, check it, create its instance (steps 1-6). */
export async function loadPlugin<T>(kind: PluginKind, spec: PluginSpec, opts: LoadOptions): Promise<{ instance: T; plugin: ImportedPlugin }> {
  const plugin = await importPlugin(kind, spec.module, { configuredAs: opts.configuredAs, log: opts.ctx.log });
  const instance = await createPlugin<T>(plugin, spec.config, opts.ctx, opts.requiredMethods);
  return { instance, plugin };
}
