/**
 * Owner verifiers: the check behind attachUser(userExternalId, accessToken). Kaa-shaped: a verifier
 * type declares an Avro schema for its configuration; an application names a type and a
 * `jsonConfiguration`; the configuration is validated (avsc) and its defaults filled before the
 * verifier is created, so a bad configuration is refused when it is set, not at the first attach.
 * Besides the built-in types, operators name custom verifier modules in the config field
 * `ownerVerifierPlugins` (type name -> `{ "module": path }`); loadCustomVerifierTypes checks them at
 * start-up. A custom type is a plugin of kind `ownerVerifier` (src/plugins/descriptor.ts) whose
 * configSchema, required and a record, is the schema of each verifier's jsonConfiguration.
 *
 * Contract of `verify`:
 * - never throws and never hangs: every outcome, including a provider outage, a bug or a custom
 *   module that throws, is a VerifyResult (the wrapper from `createVerifier` enforces this);
 * - `reason` is sent to the endpoint in UserAttachResponse.errorReason: it never contains the token,
 *   a secret or a stack; details for operators go to the log (warn for provider and internal faults);
 * - codes mean:
 *     TOKEN_INVALID     the provider or the signature says the token is not valid (also: malformed)
 *     TOKEN_EXPIRED     the token was valid but has expired
 *     OTHER             verification failure: a genuine token of another user, app, audience or issuer
 *     CONNECTION_ERROR  the provider was not reached or did not answer within request_timeout_ms
 *     REMOTE_ERROR      the provider answered unusably: 5xx, 429, unexpected status or body, or it
 *                       refused the verifier's own credentials (app secret, consumer key)
 *     INTERNAL_ERROR    a fault inside latchkey or a custom module (threw, malformed result, closed)
 *   NO_VERIFIER_CONFIGURED is never produced here: it belongs to the attach flow, which reports it
 *   when the application has no verifier.
 *
 * `close` releases the provider connection pool; calls in flight finish (each is bounded by its
 * timeout) and later calls answer INTERNAL_ERROR.
 */
import type { Logger } from 'pino';
import { LatchkeyError } from '../../errors.js';
import { PLUGIN_NAME } from '../../plugins/descriptor.js';
import { createPlugin, importPlugin, type ImportedPlugin } from '../../plugins/plugin.js';
import { validatePluginConfig } from '../../plugins/plugin-config.js';
import { parsePluginMap } from '../../plugins/spec.js';
import { VERIFIER_ERROR_CODES, type OwnerVerifier, type VerifierErrorCode, type VerifierType, type VerifyResult } from './types.js';
export * from './types.js';
import * as facebook from './facebook.js';
import * as google from './google.js';
import * as oidc from './oidc.js';
import * as trustful from './trustful.js';
import * as twitter from './twitter.js';

const BUILTIN = {
  trustful,
  facebook,
  google,
  twitter,
  oidc,
} as const satisfies Record<string, VerifierType>;

export type BuiltinVerifierName = keyof typeof BUILTIN;

/** Built-in types with their Avro config schemas, in a stable order, for the admin API to publish. */
export const BUILTIN_VERIFIER_TYPES: ReadonlyArray<{ name: BuiltinVerifierName; description: string; configSchema: Record<string, unknown> }> =
  (Object.keys(BUILTIN) as BuiltinVerifierName[]).map((name) => ({
    name,
    description: BUILTIN[name].description,
    configSchema: BUILTIN[name].configSchema,
  }));

export function isBuiltinVerifier(name: string): name is BuiltinVerifierName {
  return Object.prototype.hasOwnProperty.call(BUILTIN, name);
}

/** An owner verifier type as the admin API publishes it (GET /admin/v1/verifier-types). */
export interface VerifierTypeInfo {
  name: string;
  description: string;
  configSchema: Record<string, unknown>;
  /** false for a built-in, true for a configured custom module (ownerVerifierPlugins). */
  custom: boolean;
}

/** The configured custom verifier types, checked at start-up by loadCustomVerifierTypes. */
export interface CustomVerifierTypes {
  /** Type name -> absolute module path: CreateVerifierOptions.customModules. */
  readonly modules: Record<string, string>;
  /** The same types with their descriptions and config schemas, in configuration order. */
  readonly types: readonly VerifierTypeInfo[];
}

/**
 * Check the configured custom verifier types (config `ownerVerifierPlugins`: type name ->
 * `{ "module": path }`, or the deprecated bare path) when the server starts, so a broken module
 * stops start-up instead of failing the admin API or the first attach. Each name must be an
 * identifier (the admin API's, so pluginTypeName can name it) that is not a built-in type, and an
 * entry carries no `config`: each verifier's configuration is its jsonConfiguration
 * (LK_CONFIG_INVALID_VALUE). Each module must load as an ownerVerifier plugin (importVerifierType).
 * Paths are resolved against the working directory here, once.
 */
export async function loadCustomVerifierTypes(configured: Record<string, unknown>, log: Logger): Promise<CustomVerifierTypes> {
  const modules: Record<string, string> = {};
  const types: VerifierTypeInfo[] = [];
  for (const [name, spec] of parsePluginMap('ownerVerifierPlugins', configured, log, { pathShapeDeprecated: true })) {
    if (!PLUGIN_NAME.test(name)) {
      throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `ownerVerifierPlugins: type name ${JSON.stringify(name)} must be 1-64 letters, digits, . _ -`);
    }
    if (isBuiltinVerifier(name)) throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `ownerVerifierPlugins: custom verifier name ${name} is reserved for the built-in`);
    if (!isEmptyObject(spec.config)) {
      throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `ownerVerifierPlugins.${name}: config is not used: each verifier of this type is configured by its jsonConfiguration (admin API)`);
    }
    const plugin = await importVerifierType(name, spec.module, log);
    modules[name] = plugin.module;
    types.push({ name, description: plugin.descriptor.description || `custom owner verifier ${name}`, configSchema: plugin.descriptor.configSchema as Record<string, unknown>, custom: true });
    log.info({ verifierType: name, module: plugin.module, plugin: plugin.descriptor.name, apiVersion: plugin.descriptor.apiVersion }, 'owner verifier plugin loaded');
  }
  return { modules, types };
}

function isEmptyObject(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0;
}

/**
 * Import a custom verifier type through the plugin loader, and check what only a verifier needs:
 * a configSchema (the admin API publishes it and checks configs against it) that is an Avro record
 * (a jsonConfiguration is a JSON object); LK_PLUGIN_INVALID otherwise.
 */
async function importVerifierType(name: string, modulePath: string, log: Logger): Promise<ImportedPlugin> {
  const plugin = await importPlugin('ownerVerifier', modulePath, { configuredAs: name, log });
  if (plugin.configType === null) throw new LatchkeyError('LK_PLUGIN_INVALID', `${plugin.label}: declares no configSchema`);
  if (plugin.configType.typeName !== 'record' || typeof plugin.descriptor.configSchema !== 'object') {
    throw new LatchkeyError('LK_PLUGIN_INVALID', `${plugin.label}: configSchema must be an Avro record schema (jsonConfiguration is a JSON object)`);
  }
  return plugin;
}

export interface CreateVerifierOptions {
  log: Logger;
  /** Custom verifier type name -> module path (resolved against the working directory). */
  customModules?: Record<string, string>;
  /**
   * Deadline for one verify() of a custom module, whose HTTP latchkey does not control; past it the
   * call answers CONNECTION_ERROR. Built-ins bound each provider call by their request_timeout_ms.
   */
  customCallTimeoutMs?: number;
}

const DEFAULT_CUSTOM_CALL_TIMEOUT_MS = 10_000; // 10 s

/**
 * Create a verifier of `pluginTypeName` from its JSON configuration (a string as Kaa stores it, or
 * an already parsed object). Throws LK_UNKNOWN_VERIFIER_TYPE, LK_BAD_VERIFIER_CONFIG, or for custom
 * modules LK_PLUGIN_LOAD_FAILED / LK_PLUGIN_INVALID.
 */
export async function createVerifier(
  pluginTypeName: string,
  jsonConfiguration: string | object,
  opts: CreateVerifierOptions,
): Promise<OwnerVerifier> {
  const log = opts.log.child({ verifier: pluginTypeName });
  const custom = opts.customModules && Object.prototype.hasOwnProperty.call(opts.customModules, pluginTypeName)
    ? opts.customModules[pluginTypeName]
    : undefined;
  if (isBuiltinVerifier(pluginTypeName)) {
    if (custom !== undefined) {
      throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `custom verifier name ${pluginTypeName} is reserved for the built-in`);
    }
    const type: VerifierType = BUILTIN[pluginTypeName];
    let config: unknown;
    try {
      config = validatePluginConfig(`verifier ${pluginTypeName}`, type.configSchema, parseConfiguration(pluginTypeName, jsonConfiguration));
    } catch (err) {
      throw asVerifierConfigError(err);
    }
    return guard(type.create(config as never, { log }), log, undefined);
  }
  if (custom === undefined) throw new LatchkeyError('LK_UNKNOWN_VERIFIER_TYPE', pluginTypeName);
  const inner = await loadCustom(pluginTypeName, custom, parseConfiguration(pluginTypeName, jsonConfiguration), log);
  return guard(inner, log, opts.customCallTimeoutMs ?? DEFAULT_CUSTOM_CALL_TIMEOUT_MS);
}

function parseConfiguration(name: string, json: string | object): Record<string, unknown> {
  let value: unknown = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (err) {
      throw new LatchkeyError('LK_BAD_VERIFIER_CONFIG', `${name}: jsonConfiguration is not JSON`, { cause: err });
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new LatchkeyError('LK_BAD_VERIFIER_CONFIG', `${name}: jsonConfiguration must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** validatePluginConfig reports start-up codes (LK_CONFIG_*); a verifier config is an admin input. */
function asVerifierConfigError(err: unknown): unknown {
  if (err instanceof LatchkeyError && (err.code === 'LK_CONFIG_UNKNOWN_KEY' || err.code === 'LK_CONFIG_INVALID_VALUE')) {
    return new LatchkeyError('LK_BAD_VERIFIER_CONFIG', err.detail, { cause: err });
  }
  return err;
}

/**
 * A custom verifier type's create(config, { log }) returns an object with `verify` (and optionally
 * `close`); see importVerifierType for what its module must declare.
 */
async function loadCustom(name: string, modulePath: string, config: Record<string, unknown>, log: Logger): Promise<OwnerVerifier> {
  const plugin = await importVerifierType(name, modulePath, log);
  let inner: Partial<OwnerVerifier>;
  try {
    inner = await createPlugin<Partial<OwnerVerifier>>(plugin, config, { log }, ['verify']);
  } catch (err) {
    throw asVerifierConfigError(err);
  }
  return {
    verify: (u, t) => inner.verify!(u, t),
    close: async () => {
      if (typeof inner.close === 'function') await inner.close();
    },
  };
}

function isVerifyResult(r: unknown): r is VerifyResult {
  if (r === null || typeof r !== 'object') return false;
  const o = r as Record<string, unknown>;
  if (o.ok === true) return true;
  return o.ok === false && typeof o.reason === 'string' && VERIFIER_ERROR_CODES.includes(o.code as VerifierErrorCode);
}

/**
 * Enforce the verify() contract around any verifier: no throw, a well-formed result, a deadline for
 * custom modules, nothing after close; and log provider or internal faults for operators.
 */
function guard(inner: OwnerVerifier, log: Logger, deadlineMs: number | undefined): OwnerVerifier {
  let closed = false;
  let closing: Promise<void> | null = null;
  const call = async (userExternalId: string, accessToken: string): Promise<VerifyResult> => {
    if (closed) return { ok: false, code: 'INTERNAL_ERROR', reason: 'verifier is closed' };
    let result: unknown;
    try {
      const pending = inner.verify(userExternalId, accessToken);
      result = deadlineMs === undefined ? await pending : await withDeadline(pending, deadlineMs);
    } catch (err) {
      log.error({ err }, 'owner verifier threw');
      return { ok: false, code: 'INTERNAL_ERROR', reason: 'verifier failed' };
    }
    if (!isVerifyResult(result)) {
      log.error('owner verifier returned a malformed result');
      return { ok: false, code: 'INTERNAL_ERROR', reason: 'verifier returned a malformed result' };
    }
    if (!result.ok) {
      const fault = result.code === 'CONNECTION_ERROR' || result.code === 'REMOTE_ERROR' || result.code === 'INTERNAL_ERROR';
      log[fault ? 'warn' : 'debug']({ code: result.code, reason: result.reason }, 'owner verification failed');
      return { ok: false, code: result.code, reason: result.reason };
    }
    return { ok: true };
  };
  return {
    verify: call,
    close: () => {
      closed = true;
      closing ??= inner.close();
      return closing;
    },
  };
}

const DEADLINE = Symbol('deadline');

async function withDeadline(p: Promise<VerifyResult>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof DEADLINE>((resolve) => {
    timer = setTimeout(() => resolve(DEADLINE), ms);
  });
  try {
    const r = await Promise.race([p, late]);
    if (r === DEADLINE) return { ok: false, code: 'CONNECTION_ERROR', reason: `verifier did not answer within ${ms} ms` };
    return r;
  } finally {
    clearTimeout(timer);
  }
}
