/**
 * The plugin descriptor: what every plugin module exports, whatever its kind, and its check.
 *
 *   export const plugin = {
 *     name: 'corp-sso',            // 1-64 letters, digits, . _ -: the plugin's own name (logs, errors)
 *     kind: 'ownerVerifier',       // 'credentials' | 'ownerVerifier' | 'bootstrapStrategy'
 *     apiVersion: 1,               // the plugin API it was written against (PLUGIN_API_VERSIONS)
 *     description: '...',          // optional (owner verifier types publish it)
 *     configSchema: { ... },       // optional Avro schema of its config (required for ownerVerifier)
 *     create(config, ctx) { ... }, // the instance, or a promise of it; ctx.log is a pino logger
 *   };
 *
 * A module is refused when it declares another kind, a malformed name or an API version outside
 * PLUGIN_API_VERSIONS, so a plugin written for another server or another slot stops start-up with
 * a message naming the module and what it declared, instead of failing later in an odd way.
 *
 * The older export style (top-level, or a default object's, `create` and `configSchema`, no
 * `plugin`) is what every plugin used before the descriptor: it is still loaded for one release,
 * as API version 1 named after its configuration entry, with a deprecation warning. A module that
 * exports neither is refused as before (LK_PLUGIN_INVALID).
 */
import type { Logger } from 'pino';
import { LatchkeyError } from '../errors.js';

export const PLUGIN_KINDS = ['credentials', 'ownerVerifier', 'bootstrapStrategy'] as const;
export type PluginKind = (typeof PLUGIN_KINDS)[number];

/** Plugin API versions this server loads. Raise `max` for an additive change, `min` to drop one. */
export const PLUGIN_API_VERSIONS = { min: 1, max: 1 } as const;

/** Same shape as an admin API identifier. */
export const PLUGIN_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** What a plugin's create() receives besides its config; each kind adds its own (credentials: store). */
export interface PluginContext {
  log: Logger;
  [extra: string]: unknown;
}

export interface PluginDescriptor {
  readonly name: string;
  readonly kind: PluginKind;
  readonly apiVersion: number;
  readonly description?: string;
  readonly configSchema?: unknown;
  create(config: unknown, ctx: PluginContext): unknown;
}

/** A checked descriptor; `legacy` when it was made from the older export style. */
export interface CheckedDescriptor {
  descriptor: PluginDescriptor;
  legacy: boolean;
}

/**
 * Find and check the descriptor of an imported module. `label` names the configuration entry and
 * the module in errors; `configuredAs` names a legacy module's descriptor.
 */
export function checkDescriptor(kind: PluginKind, mod: Record<string, unknown>, label: string, configuredAs: string): CheckedDescriptor {
  const fromDefault = mod.default !== null && typeof mod.default === 'object' ? (mod.default as Record<string, unknown>) : undefined;
  const declared = mod.plugin ?? fromDefault?.plugin;
  if (declared === undefined) return { descriptor: legacyDescriptor(kind, mod, fromDefault, label, configuredAs), legacy: true };
  if (declared === null || typeof declared !== 'object') {
    throw new LatchkeyError('LK_PLUGIN_INVALID', `${label}: export \`plugin\` must be an object { name, kind, apiVersion, create }`);
  }
  const d = declared as Record<string, unknown>;
  if (d.kind !== kind) {
    throw new LatchkeyError('LK_PLUGIN_INVALID', `${label}: declares kind ${JSON.stringify(d.kind)}, configured as a ${kind} plugin (kinds: ${PLUGIN_KINDS.join(', ')})`);
  }
  if (typeof d.name !== 'string' || !PLUGIN_NAME.test(d.name)) {
    throw new LatchkeyError('LK_PLUGIN_INVALID', `${label}: declares name ${JSON.stringify(d.name)}; a name is 1-64 letters, digits, . _ -`);
  }
  if (typeof d.apiVersion !== 'number' || !Number.isInteger(d.apiVersion) || d.apiVersion < PLUGIN_API_VERSIONS.min || d.apiVersion > PLUGIN_API_VERSIONS.max) {
    throw new LatchkeyError('LK_PLUGIN_API_UNSUPPORTED', `${label}: plugin ${d.name} declares apiVersion ${JSON.stringify(d.apiVersion)}; this server loads ${apiRange()}`);
  }
  if (typeof d.create !== 'function') throw new LatchkeyError('LK_PLUGIN_INVALID', `${label}: plugin ${d.name} has no create(config, ctx) function`);
  if (d.description !== undefined && typeof d.description !== 'string') throw new LatchkeyError('LK_PLUGIN_INVALID', `${label}: plugin ${d.name}: description must be a string`);
  return { descriptor: d as unknown as PluginDescriptor, legacy: false };
}

function legacyDescriptor(
  kind: PluginKind,
  mod: Record<string, unknown>,
  fromDefault: Record<string, unknown> | undefined,
  label: string,
  configuredAs: string,
): PluginDescriptor {
  const pick = (k: string): unknown => fromDefault?.[k] ?? mod[k];
  const create = pick('create');
  if (typeof create !== 'function') {
    throw new LatchkeyError('LK_PLUGIN_INVALID', `${label}: module exports no \`plugin\` descriptor (export const plugin = { name, kind: '${kind}', apiVersion: ${PLUGIN_API_VERSIONS.max}, create(config, ctx) })`);
  }
  const description = pick('description');
  return {
    name: configuredAs,
    kind,
    apiVersion: 1,
    ...(typeof description === 'string' ? { description } : {}),
    ...(pick('configSchema') !== undefined ? { configSchema: pick('configSchema') } : {}),
    create: create as PluginDescriptor['create'],
  };
}

function apiRange(): string {
  const { min, max } = PLUGIN_API_VERSIONS;
  return min === max ? `apiVersion ${min}` : `apiVersion ${min} to ${max}`;
}
