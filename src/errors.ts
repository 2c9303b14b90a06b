/**
 * The error catalogue: every error latchkey reports, to an operator, an admin client or an endpoint,
 * has exactly one entry here. docs/errors.md lists the same entries; test/unit/errors.test.ts fails
 * when the two disagree. Tests assert on `code`, never on message text.
 *
 * Fields:
 * - `message`  one line for humans; the stable contract is the code.
 * - `http`     status an admin/bootstrap HTTP answer carries for this error.
 * - `close`    WebSocket close code the gateway uses when this error ends a session. Ranges follow
 *              centrifuge: 4000-4499 the endpoint should reconnect (with backoff), 4500-4999 terminal:
 *              reconnecting with the same credentials and settings will fail the same way.
 * - `connack`  the Kaa CONNACK return code a handshake refusal with this error carries.
 * - `disconnect` the Kaa DISCONNECT reason a session ended by this error carries.
 */

export const ConnackCode = {
  ACCEPTED: 1,
  REFUSE_BAD_PROTOCOL: 2,
  REFUSE_ID_REJECT: 3,
  REFUSE_SERVER_UNAVAILABLE: 4,
  REFUSE_BAD_CREDENTIALS: 5,
  REFUSE_NO_AUTH: 6,
  REFUSE_VERIFICATION_FAILED: 7,
} as const;
export type ConnackCodeName = keyof typeof ConnackCode;

export const DisconnectReason = {
  NONE: 0,
  BAD_REQUEST: 1,
  INTERNAL_ERROR: 2,
  CREDENTIALS_REVOKED: 3,
} as const;
export type DisconnectReasonName = keyof typeof DisconnectReason;

export interface ErrorSpec {
  readonly message: string;
  readonly http: number;
  readonly close?: number;
  readonly connack?: ConnackCodeName;
  readonly disconnect?: DisconnectReasonName;
}

const CATALOGUE = {
  // --- configuration and start-up (the process stops with this code) ---
  LK_CONFIG_UNKNOWN_KEY: { message: 'unknown configuration key', http: 400 },
  LK_CONFIG_INVALID_VALUE: { message: 'configuration value has the wrong type or is out of range', http: 400 },
  LK_CONFIG_FILE_UNREADABLE: { message: 'configuration file cannot be read or is not valid JSON', http: 400 },
  LK_CLI_USAGE: { message: 'bad command line; see --help', http: 400 },
  LK_KEYRING_INVALID: { message: 'server key ring cannot be loaded (unreadable, corrupt or not RSA-2048)', http: 500 },
  LK_PLUGIN_LOAD_FAILED: { message: 'plugin module cannot be imported', http: 500 },
  LK_PLUGIN_INVALID: { message: 'plugin module does not implement the required interface', http: 500 },
  LK_PLUGIN_API_UNSUPPORTED: { message: 'plugin module declares a plugin API version this server does not load', http: 500 },
  LK_SEED_INVALID: { message: 'seed file is not valid', http: 400 },
  LK_LISTEN_FAILED: { message: 'cannot listen on the configured address and port (in use, or not an address of this host)', http: 500 },
  LK_NODE_PROCESS_FAILED: { message: 'a gateway process of this node exited while starting, or kept dying right after its start; the node stopped instead of restarting it for ever', http: 500 },
  LK_FATAL: { message: 'an error escaped every handler: the process logs it, frees its ports and exits (code 70) for its supervisor to restart it', http: 500 },

  // --- handshake refusals (CONNACK, then close) ---
  LK_HS_BAD_PROTOCOL_VERSION: { message: 'unsupported protocol version', http: 400, close: 4501, connack: 'REFUSE_BAD_PROTOCOL' },
  LK_HS_UNKNOWN_APPLICATION: { message: 'unknown application token', http: 404, close: 4502, connack: 'REFUSE_ID_REJECT' },
  LK_HS_UNKNOWN_SERVER_KEY: { message: 'server key id is unknown or retired; bootstrap again', http: 400, close: 4503, connack: 'REFUSE_BAD_PROTOCOL' },
  LK_HS_STALE_TIMESTAMP: { message: 'CONNECT timestamp outside the accepted window; check the endpoint clock', http: 400, close: 4504, connack: 'REFUSE_BAD_PROTOCOL' },
  LK_HS_REPLAYED_NONCE: { message: 'CONNECT nonce already seen inside the timestamp window', http: 400, close: 4001, connack: 'REFUSE_BAD_PROTOCOL' },
  LK_HS_KEY_HASH_MISMATCH: { message: 'public key does not hash to the claimed key hash', http: 400, close: 4505, connack: 'REFUSE_BAD_CREDENTIALS' },
  LK_HS_BAD_PUBLIC_KEY: { message: 'public key is not an RSA-2048 SubjectPublicKeyInfo', http: 400, close: 4506, connack: 'REFUSE_BAD_CREDENTIALS' },
  LK_HS_PUBLIC_KEY_REQUIRED: { message: 'server does not know this key; send the public key in CONNECT', http: 400, close: 4002, connack: 'REFUSE_NO_AUTH' },
  LK_HS_BAD_SIGNATURE: { message: 'CONNECT signature does not verify', http: 400, close: 4507, connack: 'REFUSE_BAD_CREDENTIALS' },
  LK_HS_BAD_SECRET: { message: 'session secret cannot be decrypted with the named server key', http: 400, close: 4508, connack: 'REFUSE_BAD_CREDENTIALS' },
  LK_CRED_UNKNOWN: { message: 'credentials are not provisioned for this application', http: 404, close: 4509, connack: 'REFUSE_VERIFICATION_FAILED' },
  LK_CRED_IN_USE: { message: 'credentials are bound to another endpoint', http: 409, close: 4510, connack: 'REFUSE_VERIFICATION_FAILED' },
  LK_CRED_REVOKED: { message: 'credentials are revoked', http: 409, close: 4511, connack: 'REFUSE_VERIFICATION_FAILED', disconnect: 'CREDENTIALS_REVOKED' },
  LK_SERVER_BUSY: { message: 'server is at capacity; retry with backoff, or (a paced refusal: close 4003, reason "LK_SERVER_BUSY retryAfterMs=N") after the return time it gives', http: 503, close: 4003, connack: 'REFUSE_SERVER_UNAVAILABLE' },
  LK_SERVER_UNAVAILABLE: { message: 'a backing service (store, cache, plugin) failed; retry with backoff', http: 503, close: 4004, connack: 'REFUSE_SERVER_UNAVAILABLE' },
  LK_BANNED: { message: 'this endpoint, address or application is banned (the ban may expire); retry with long backoff', http: 403, close: 4012, connack: 'REFUSE_ID_REJECT' },
  LK_HS_RATE_LIMITED: { message: 'too many handshakes for this key hash; retry with backoff', http: 429, close: 4014, connack: 'REFUSE_SERVER_UNAVAILABLE' },
  LK_CRED_RATE_LIMITED: { message: 'this trustful application creates new credentials faster than allowed; retry with backoff', http: 429, close: 4016, connack: 'REFUSE_SERVER_UNAVAILABLE' },

  // --- malformed traffic (DISCONNECT BAD_REQUEST, then close) ---
  LK_FRAME_EMPTY: { message: 'empty frame', http: 400, close: 4520, disconnect: 'BAD_REQUEST' },
  LK_FRAME_TEXT: { message: 'text WebSocket messages are not part of the protocol', http: 400, close: 4521, disconnect: 'BAD_REQUEST' },
  LK_FRAME_UNKNOWN_TYPE: { message: 'unknown frame type', http: 400, close: 4522, disconnect: 'BAD_REQUEST' },
  LK_FRAME_MALFORMED: { message: 'frame body is truncated or not valid Avro for its type', http: 400, close: 4523, disconnect: 'BAD_REQUEST' },
  LK_FRAME_TOO_LARGE: { message: 'frame larger than the configured maximum', http: 413, close: 4524, disconnect: 'BAD_REQUEST' },
  LK_FRAME_UNEXPECTED: { message: 'frame not allowed in the current session state', http: 400, close: 4525, disconnect: 'BAD_REQUEST' },
  LK_FRAME_BAD_COUNTER: { message: 'frame counter out of order or replayed', http: 400, close: 4526, disconnect: 'BAD_REQUEST' },
  LK_FRAME_DECRYPT_FAILED: { message: 'frame does not authenticate under the session key', http: 400, close: 4527, disconnect: 'BAD_REQUEST' },
  // Cut off by the transport (uWS) itself: the TCP connection is closed without a close frame, so
  // the endpoint sees 1006; the server counts the session as ended with this code.
  LK_FRAME_BAD_UTF8: { message: 'text frame is not valid UTF-8; the transport closed the connection (no close frame: the endpoint sees 1006)', http: 400 },
  LK_FRAME_OVER_HARD_LIMIT: { message: 'frame larger than 4 x maxFrameBytes; the transport closed the connection without reading it (no close frame: the endpoint sees 1006)', http: 413 },
  LK_SYNC_MALFORMED: { message: 'decrypted SyncRequest is not valid Avro', http: 400, close: 4528, disconnect: 'BAD_REQUEST' },

  // --- session lifecycle (DISCONNECT, then close) ---
  LK_HS_TIMEOUT: { message: 'no complete CONNECT within the handshake timeout', http: 408, close: 4005, disconnect: 'BAD_REQUEST' },
  LK_KEEPALIVE_TIMEOUT: { message: 'no frame within the keepalive interval', http: 408, close: 4006, disconnect: 'NONE' },
  LK_SESSION_KICKED: { message: 'an operator ended this session', http: 200, close: 4009, disconnect: 'NONE' },
  LK_SESSION_REPLACED: { message: 'a newer session of the same endpoint replaced this one', http: 409, close: 4530, disconnect: 'NONE' },
  LK_SERVER_SHUTDOWN: { message: 'server is shutting down; reconnect', http: 503, close: 4007, disconnect: 'NONE' },
  LK_SESSION_RATE_LIMITED: { message: 'endpoint sent more messages or bytes per second than allowed', http: 429, close: 4015, disconnect: 'BAD_REQUEST' },
  LK_HS_STALLED: { message: 'handshake did not finish within handshakeStallTimeoutMs (a backing service is slow); retry with backoff', http: 503, close: 4017, disconnect: 'INTERNAL_ERROR' },
  LK_HS_ABANDONED: { message: 'the connection closed or was banned while its handshake waited for the crypto workers; the RSA decrypt was skipped (never sent: the socket is gone)', http: 503, close: 4018, disconnect: 'NONE' },
  LK_TICKET_INVALID: { message: 'resumption ticket was not issued by this cluster (tampered, malformed, or sealed under another ticket master secret); do a full handshake', http: 400, close: 4019, connack: 'REFUSE_BAD_CREDENTIALS' },
  LK_TICKET_EXPIRED: { message: 'resumption ticket is older than ticketLifetimeSec; do a full handshake', http: 400, close: 4020, connack: 'REFUSE_BAD_CREDENTIALS' },
  LK_TICKET_KEY_RETIRED: { message: 'the ticket key that sealed this resumption ticket is retired; do a full handshake', http: 400, close: 4021, connack: 'REFUSE_BAD_CREDENTIALS' },
  LK_TICKET_WRONG_APP: { message: 'resumption ticket belongs to another application or endpoint key; do a full handshake', http: 400, close: 4022, connack: 'REFUSE_BAD_CREDENTIALS' },
  LK_RESUME_BAD_PROOF: { message: 'RESUME proof does not verify with the ticket\'s resumption secret; do a full handshake', http: 400, close: 4024, connack: 'REFUSE_BAD_CREDENTIALS' },
  LK_RESUME_DISABLED: { message: 'this server does not resume sessions (resumption off); do a full handshake', http: 400, close: 4025, connack: 'REFUSE_BAD_PROTOCOL' },
  LK_SLOW_CONSUMER: { message: 'endpoint reads too slowly; send buffer limit reached', http: 503, close: 4008, disconnect: 'NONE' },
  LK_INTERNAL: { message: 'internal error', http: 500, close: 4011, disconnect: 'INTERNAL_ERROR' },

  // --- sync results (SyncResponse status FAILURE with this code; the session goes on) ---
  LK_PROFILE_SCHEMA_MISMATCH: { message: 'profile body does not match the application profile schema', http: 400 },
  LK_PROFILE_REQUIRED: { message: 'endpoint is not registered; send a profile', http: 400 },
  LK_NO_OWNER: { message: 'endpoint is not attached to an owner (listeners query FAILURE; events it sends reach nobody)', http: 409 },
  LK_EVENT_CLASSES_INVALID: { message: 'listened event classes: at most 256 names of 1..255 characters', http: 400 },

  // --- connection admission (HTTP answer to the WebSocket upgrade, before any session exists) ---
  LK_CONN_RATE_LIMITED: { message: 'too many new connections from this address; retry after the Retry-After seconds', http: 429 },
  LK_CONN_LIMIT: { message: 'this process holds its maximum number of connections; retry with backoff or another node', http: 503 },

  // --- admin API (HTTP) ---
  LK_BAD_PATH: { message: 'request path has a malformed percent-escape or is not valid UTF-8', http: 400 },
  LK_NOT_READY: { message: 'a backing service (store, cache, bus) is not reachable', http: 503 },
  LK_AUTH_REQUIRED: { message: 'missing API key: send Authorization: Bearer lk_<id>.<secret>', http: 401 },
  LK_AUTH_INVALID: { message: 'API key is unknown, revoked or malformed', http: 401 },
  LK_FORBIDDEN: { message: 'this API key may not do that (root scope required)', http: 403 },
  LK_BAD_JSON: { message: 'request body is not a JSON object', http: 400 },
  LK_BODY_TOO_LARGE: { message: 'request body larger than the admin API limit', http: 413 },
  LK_UNKNOWN_FIELD: { message: 'request has a field this route does not accept', http: 400 },
  LK_ADMIN_UNREACHABLE: { message: 'the admin API did not answer (wrong URL, server down, or not a latchkey admin listener)', http: 503 },
  LK_METHOD_NOT_ALLOWED: { message: 'method not allowed on this path', http: 405 },

  // --- provisioning (CLI, seed file, store) ---
  LK_NOT_FOUND: { message: 'no such object', http: 404 },
  LK_TENANT_NOT_FOUND: { message: 'no such tenant', http: 404 },
  LK_APP_NOT_FOUND: { message: 'no such application', http: 404 },
  LK_CONFLICT: { message: 'object already exists or is in a conflicting state', http: 409 },
  LK_APP_TOKEN_TAKEN: { message: 'application token already used by another application', http: 409 },
  LK_CRED_EXISTS: { message: 'credentials already provisioned', http: 409 },
  LK_CRED_LIST_UNSUPPORTED: { message: 'this application\'s credentials service is a plugin that keeps its credentials outside the store: they cannot be listed, look them up by id', http: 409 },
  LK_BAD_PUBLIC_KEY: { message: 'public key is not an RSA-2048 key in PEM or DER', http: 400 },
  LK_BAD_PROFILE_SCHEMA: { message: 'profile schema is not a valid Avro schema', http: 400 },
  LK_BAD_SERVER_PROFILE: { message: 'server-side profile is not valid', http: 400 },
  LK_BAD_CREDENTIALS_SERVICE: { message: 'unknown credentials service name', http: 400 },
  LK_BAD_ARGUMENT: { message: 'argument has the wrong type or is out of range', http: 400 },
  LK_STORE_UNAVAILABLE: { message: 'store backend unavailable', http: 503 },
  LK_UNKNOWN_VERIFIER_TYPE: { message: 'no built-in or configured owner verifier has this type name', http: 400 },
  LK_BAD_VERIFIER_CONFIG: { message: 'owner verifier configuration is not JSON, does not match the type\'s Avro schema, or is out of range', http: 400 },

  // --- bootstrap (HTTP POST /bootstrap/v1/resolve; JSON error body) ---
  LK_BOOTSTRAP_MALFORMED: { message: 'bootstrap request body is not an Avro BootstrapRequest', http: 400 },
  LK_BOOTSTRAP_NO_COMMON_VERSION: { message: 'none of the protocol versions the endpoint speaks is served here', http: 400 },
  LK_BOOTSTRAP_NO_ACCESS_POINTS: { message: 'no operations node is serving now; retry with backoff', http: 503 },

  // --- endpoint SDK (reported by the client library, never sent by the server) ---
  LK_SDK_REDIRECTED: { message: 'a node told this endpoint to move to another access point (REDIRECT); the SDK reconnects there', http: 200 },
  LK_SDK_BOOTSTRAP_FAILED: { message: 'no bootstrap server gave a usable access point list', http: 503 },
  LK_SDK_BOOTSTRAP_BAD_SIGNATURE: { message: 'access point list signature does not verify under the bootstrap public key, or the list is for another application', http: 502 },
  LK_SDK_BOOTSTRAP_EXPIRED: { message: 'access point list has expired', http: 502 },
  LK_SDK_CONNECTION_FAILED: { message: 'WebSocket could not be opened or closed unexpectedly', http: 503 },
  LK_SDK_TIMEOUT: { message: 'no answer from the server in time', http: 504 },
  LK_SDK_CONFIRMATION_FAILED: { message: 'CONNACK key confirmation does not verify: the peer does not hold the server key', http: 502 },
  LK_SDK_PROTOCOL_ERROR: { message: 'server sent a frame the SDK cannot accept', http: 502 },
  LK_SDK_CLOSED: { message: 'client is closed or not connected', http: 400 },
  LK_SDK_BAD_KEY: { message: 'a key given to the SDK is not a PEM public key (SPKI, -----BEGIN PUBLIC KEY-----) or PKCS#8 private key it can import', http: 400 },
  LK_CACHE_UNAVAILABLE: { message: 'cache backend unavailable', http: 503 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof CATALOGUE;
export const ERRORS: Readonly<Record<ErrorCode, ErrorSpec>> = CATALOGUE;

export class LatchkeyError extends Error {
  readonly code: ErrorCode;
  readonly detail: string | undefined;
  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${ERRORS[code].message}: ${detail}` : ERRORS[code].message, options);
    this.name = 'LatchkeyError';
    this.code = code;
    this.detail = detail;
  }
  get spec(): ErrorSpec {
    return ERRORS[this.code];
  }
}

/**
 * A LatchkeyError without a stack trace, for refusals that are expected outcomes on hot paths (a
 * junk handshake flood): capturing the stack was 13% of the event loop's time in bench/flood's
 * onset profile, and nobody reads the stack of a refused handshake.
 */
export function refusal(code: ErrorCode, detail?: string): LatchkeyError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new LatchkeyError(code, detail);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, code);
}

export function errorSpec(code: ErrorCode): ErrorSpec {
  return ERRORS[code];
}

/**
 * The code a session reports for an error: codes that have no wire meaning (store, cache, argument
 * errors from a backend) become LK_SERVER_UNAVAILABLE for backend outages (reconnect range, so
 * endpoints retry with backoff) and LK_INTERNAL otherwise.
 */
export function sessionErrorCode(err: unknown): ErrorCode {
  const e = toLatchkeyError(err, 'LK_INTERNAL');
  const spec = ERRORS[e.code];
  if (spec.close !== undefined) return e.code;
  return e.code === 'LK_STORE_UNAVAILABLE' || e.code === 'LK_CACHE_UNAVAILABLE' ? 'LK_SERVER_UNAVAILABLE' : 'LK_INTERNAL';
}

/** Codes a SyncResponse carries with status FAILURE while the session goes on (the endpoint's request was wrong). */
const SYNC_RESULT_CODES: ReadonlySet<ErrorCode> = new Set(['LK_PROFILE_SCHEMA_MISMATCH', 'LK_PROFILE_REQUIRED', 'LK_NO_OWNER', 'LK_EVENT_CLASSES_INVALID']);

/** The code for a SyncRequest that failed: its own sync-result code, else as sessionErrorCode. */
export function syncErrorCode(err: unknown): { code: ErrorCode; endpointFault: boolean } {
  if (err instanceof LatchkeyError && SYNC_RESULT_CODES.has(err.code)) return { code: err.code, endpointFault: true };
  return { code: sessionErrorCode(err), endpointFault: false };
}

/** Wrap anything thrown into a LatchkeyError; unknown errors become `fallback` with the cause kept. */
export function toLatchkeyError(err: unknown, fallback: ErrorCode = 'LK_INTERNAL'): LatchkeyError {
  if (err instanceof LatchkeyError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new LatchkeyError(fallback, msg, { cause: err });
}
