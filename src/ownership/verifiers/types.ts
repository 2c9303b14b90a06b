/**
 * Owner verifier types (the contract every verifier, built-in or custom, implements). The
 * registry (registry.ts) creates verifiers; built-ins (facebook.ts, google.ts, ...) import only
 * this file, so there is no import cycle among them.
 *
 * Owner verifiers: the check behind attachUser(userExternalId, accessToken). Kaa-shaped: a verifier
 * type declares an Avro schema for its configuration; an application names a type and a
 * `jsonConfiguration`; the configuration is validated (avsc) and its defaults filled before the
 * verifier is created, so a bad configuration is refused when it is set, not at the first attach.
 * Besides the built-in types, operators name custom verifier modules in the config field
 * `ownerVerifierPlugins` (type name -> `{ "module": path }`, src/plugins/); loadCustomVerifierTypes checks them at start-up.
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
import type { UserAttachErrorCode } from '../../protocol/schemas.js';

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

