/**
 * The configuration shape of a plugin, one for the three plugin fields: `{ "module": path,
 * "config": {...} }` (config optional). bootstrapStrategyPlugin is one such entry;
 * credentialsPlugins and ownerVerifierPlugins map a name to one.
 *
 * ownerVerifierPlugins used to map a type name to a bare module path. That shape is still accepted
 * for one release: mapped to `{ "module": path }` and logged once, as deprecated, with the new form
 * of the whole field spelled out. The other two fields always had the object shape.
 */
import type { Logger } from 'pino';
import { LatchkeyError } from '../errors.js';
import { warnDeprecatedOnce } from './deprecation.js';

export interface PluginSpec {
  /** Module path, resolved against the working directory. */
  module: string;
  /** The plugin's configuration, checked against its configSchema; {} when absent. */
  config?: unknown;
}

/** One `{ module, config }` entry; `label` names it in errors (a field, or field.name). */
export function parsePluginSpec(label: string, raw: unknown): PluginSpec {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `${label}: expected {"module": "/abs/path.mjs", "config": {...}}`);
  }
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (k !== 'module' && k !== 'config') throw new LatchkeyError('LK_CONFIG_UNKNOWN_KEY', `${label}: ${k}`);
  }
  if (typeof r.module !== 'string' || !r.module) throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `${label}: module must be a path`);
  return { module: r.module, config: r.config ?? {} };
}

export interface PluginMapOptions {
  /** Accept (deprecated) a bare module path as an entry: ownerVerifierPlugins' older shape. */
  pathShapeDeprecated?: boolean;
}

/** A name -> `{ module, config }` field (credentialsPlugins, ownerVerifierPlugins), in its order. */
export function parsePluginMap(field: string, raw: Record<string, unknown>, log: Logger, opts: PluginMapOptions = {}): Map<string, PluginSpec> {
  const out = new Map<string, PluginSpec>();
  let pathShape = false;
  for (const [name, entry] of Object.entries(raw)) {
    if (opts.pathShapeDeprecated && typeof entry === 'string') {
      if (entry === '') throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `${field}.${name}: module must be a path`);
      out.set(name, { module: entry, config: {} });
      pathShape = true;
    } else {
      out.set(name, parsePluginSpec(`${field}.${name}`, entry));
    }
  }
  if (pathShape) {
    const now = Object.fromEntries([...out].map(([name, s]) => [name, typeof raw[name] === 'string' ? { module: s.module } : raw[name]]));
    warnDeprecatedOnce(log, `shape:${field}:${JSON.stringify(raw)}`, { field, use: now },
      `${field}: a bare module path per name is deprecated and will be refused in the next release; write ${JSON.stringify(now)}`);
  }
  return out;
}
