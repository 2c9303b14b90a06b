/**
 * Owner verifiers: the check behind attachUser(userExternalId, accessToken). Kaa-shaped: a verifier
 * type declares an Avro schema for its configuration; an application names a type and a
 * `jsonConfiguration`; the configuration is validated (avsc) and its defaults filled before the
 * verifier is created, so a bad configuration is refused when it is set, not at the first attach.
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
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { LatchkeyError } from '../errors.js';
import { loadPlugin, validatePluginConfig } from '../plugins/plugin.js';
import type { UserAttachErrorCode } from '../protocol/schemas.js';
import * as facebook from './verifier-facebook.js';
import * as google from './verifier-google.js';
import * as oidc from './verifier-oidc.js';
import * as trustful from './verifier-trustful.js';
import * as twitter from './verifier-twitter.js';

/** The UserAttachErrorCodes a verifier may return (see the contract above). */
export type VerifierErrorCode = Exclude<UserAttachErrorCode, 'NO_VERIFIER_CONFIGURED'>;
export const VERIFIER_ERROR_CODES: readonly VerifierErrorCode[] = [
  'TOKEN_INVALID', 'TOKEN_EXPIRED', 'OTHER', 'CONNECTION_ERROR', 'REMOTE_ERROR', 'INTERNAL_ERROR',
];

export type VerifyFailure = { ok: false; code: VerifierErrorCode; reason: string };
export type VerifyResult = { ok: true } | VerifyFailure;

export interface OwnerVerifier {
  verify(userExternalId: string, accessToken: string): Promise<VerifyResult>;
  close(): Promise<void>;
}

export interface VerifierContext {
  log: Logger;
}

/**
 * What a built-in verifier module exports. `create` receives a config that has passed configSchema
 * with defaults filled, and throws LK_BAD_VERIFIER_CONFIG for what Avro cannot express (ranges,
 * URLs). `config: never` lets each module type its own config; createVerifier passes the validated one.
 */
export interface VerifierType {
  readonly description: string;
  readonly configSchema: Record<string, unknown>;
  create(config: never, ctx: VerifierContext): OwnerVerifier;
}

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
 * A custom verifier module must export `configSchema` (every verifier type declares one, so the
 * admin API can publish it and configs are checked) and `create(config, { log })` returning an object
 * with `verify` (and optionally `close`).
 */
async function loadCustom(name: string, modulePath: string, config: Record<string, unknown>, log: Logger): Promise<OwnerVerifier> {
  let mod: Record<string, unknown>;
  try {
    // Same resolution as loadPlugin, which imports it again from the module cache.
    mod = (await import(pathToFileURL(path.resolve(modulePath)).href)) as Record<string, unknown>;
  } catch (err) {
    throw new LatchkeyError('LK_PLUGIN_LOAD_FAILED', `verifier ${name} (${modulePath}): ${(err as Error).message}`, { cause: err });
  }
  const exported = (mod.default && typeof mod.default === 'object' ? mod.default : mod) as Record<string, unknown>;
  if (!(exported.configSchema ?? mod.configSchema)) {
    throw new LatchkeyError('LK_PLUGIN_INVALID', `verifier ${name}: module exports no configSchema`);
  }
  let inner: Partial<OwnerVerifier>;
  try {
    inner = await loadPlugin<Partial<OwnerVerifier>>(`verifier ${name}`, { module: modulePath, config }, ['verify'], { log });
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
