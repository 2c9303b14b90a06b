/**
 * Loading of custom plugin modules named in configuration. A plugin module is an ES module (or
 * CommonJS) exporting:
 *   configSchema?  Avro schema (JSON) of its configuration; the configured `config` must match it
 *                  (avsc), and top-level record fields missing from it get their schema defaults
 *   create(config, context)  returning (or resolving to) the plugin instance
 * The instance is checked for the methods its kind requires when loaded, so a broken plugin stops
 * start-up (LK_PLUGIN_INVALID / LK_PLUGIN_LOAD_FAILED) instead of failing the first endpoint.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import avro from 'avsc';
import { LatchkeyError } from '../errors.js';

export interface PluginSpec {
  module: string;
  config?: unknown;
}

export function parsePluginSpec(name: string, raw: unknown): PluginSpec {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `plugin ${name}: expected {"module": "...", "config": {...}}`);
  }
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (k !== 'module' && k !== 'config') throw new LatchkeyError('LK_CONFIG_UNKNOWN_KEY', `plugin ${name}: ${k}`);
  }
  if (typeof r.module !== 'string' || !r.module) throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `plugin ${name}: module must be a path`);
  return { module: r.module, config: r.config ?? {} };
}

/** Validate `config` against an Avro record schema and fill top-level defaults. */
export function validatePluginConfig(name: string, schema: unknown, config: unknown): unknown {
  let type: avro.Type;
  try {
    type = avro.Type.forSchema(schema as avro.Schema, { wrapUnions: false });
  } catch (err) {
    throw new LatchkeyError('LK_PLUGIN_INVALID', `${name}: configSchema is not a valid Avro schema: ${(err as Error).message}`);
  }
  let value = config;
  const fields = (schema as { fields?: Array<{ name: string; default?: unknown }> }).fields;
  if (fields && value && typeof value === 'object' && !Array.isArray(value)) {
    const filled: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const f of fields) if (!(f.name in filled) && 'default' in f) filled[f.name] = f.default;
    for (const k of Object.keys(filled)) {
      if (!fields.some((f) => f.name === k)) throw new LatchkeyError('LK_CONFIG_UNKNOWN_KEY', `plugin ${name} config: ${k}`);
    }
    value = filled;
  }
  const problems: string[] = [];
  const ok = type.isValid(value, { errorHook: (p) => problems.push(p.join('.') || '(root)') });
  if (!ok) throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `plugin ${name} config does not match its schema at ${problems.join(', ')}`);
  return value;
}

export async function loadPlugin<T>(
  name: string,
  spec: PluginSpec,
  requiredMethods: readonly string[],
  context: Record<string, unknown>,
): Promise<T> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path.resolve(spec.module)).href)) as Record<string, unknown>;
  } catch (err) {
    throw new LatchkeyError('LK_PLUGIN_LOAD_FAILED', `${name} (${spec.module}): ${(err as Error).message}`, { cause: err });
  }
  const exported = (mod.default && typeof mod.default === 'object' ? mod.default : mod) as Record<string, unknown>;
  const create = exported.create ?? mod.create;
  if (typeof create !== 'function') throw new LatchkeyError('LK_PLUGIN_INVALID', `${name}: module exports no create(config, context) function`);
  const schema = exported.configSchema ?? mod.configSchema;
  const config = schema ? validatePluginConfig(name, schema, spec.config ?? {}) : spec.config ?? {};
  let instance: unknown;
  try {
    instance = await (create as (c: unknown, ctx: unknown) => unknown)(config, context);
  } catch (err) {
    throw new LatchkeyError('LK_PLUGIN_LOAD_FAILED', `${name}: create() failed: ${(err as Error).message}`, { cause: err });
  }
  const missing = requiredMethods.filter((m) => typeof (instance as Record<string, unknown> | null)?.[m] !== 'function');
  if (missing.length) throw new LatchkeyError('LK_PLUGIN_INVALID', `${name}: missing methods ${missing.join(', ')}`);
  return instance as T;
}
