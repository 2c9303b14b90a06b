/**
 * The store: durable state behind one interface. Implementations: store-embedded.ts (LMDB, the
 * default: crash-safe, several processes on one host may open the same data directory) and
 * store-cassandra.ts (production cluster). test/contract/store.contract.ts is the contract; every
 * implementation runs it. `Store` is composed of one interface per area (tenancy, credentials,
 * registrations, API keys, ownership, verifiers, notifications, protection), so a service that needs
 * one area can ask for only that one, and a backend can implement each area in its own module. The
 * records they exchange are in types.ts, re-exported here.
 *
 * Contract for every method:
 * - All methods are async and never return records that share mutable state with the store.
 * - Errors are LatchkeyError with a catalogue code (LK_TENANT_NOT_FOUND, LK_APP_NOT_FOUND,
 *   LK_CONFLICT, LK_APP_TOKEN_TAKEN, LK_CRED_EXISTS, LK_NOT_FOUND, LK_BAD_ARGUMENT); a backend
 *   failure is LK_STORE_UNAVAILABLE with the cause attached.
 * - "Atomic" means linearizable for that key across every process and node using the same backing
 *   store (LMDB write transaction; Cassandra lightweight transaction).
 * - Byte fields are Buffers; timestamps are milliseconds since the epoch.
 */

import type {
  Tenant, Application, CredentialsRecord, CredentialsListOptions, ProvisionOptions,
  RegistrationRecord, EndpointRecord, BindResult, ApiKeyRecord, OwnerAttachment,
  ConditionalAttachResult, VerifierRecord, PendingNotification, Page, BanKind, BanRecord,
  ControlEntry,
} from './types.js';

/** The records and results the interfaces below name: import them from here. */
export type * from './types.js';

/** Tenants and their applications (an application holds the app token endpoints present). */
export interface TenancyStore {
  /** Create a tenant. LK_CONFLICT if the id exists. */
  createTenant(tenant: Tenant): Promise<Tenant>;
  getTenant(id: string): Promise<Tenant | null>;
  listTenants(): Promise<Tenant[]>;

  /**
   * Create an application, atomically claiming its app token.
   * LK_TENANT_NOT_FOUND if the tenant does not exist, LK_CONFLICT if the id exists,
   * LK_APP_TOKEN_TAKEN if another application holds the token (nothing is written then).
   */
  createApplication(app: Application): Promise<Application>;
  getApplication(id: string): Promise<Application | null>;
  getApplicationByToken(appToken: string): Promise<Application | null>;
  /** Applications of one tenant, ordered by id. */
  listApplications(tenantId: string): Promise<Application[]>;
}

/** Endpoint credentials: provisioning, listing, the atomic bind and revocation. */
export interface CredentialsStore {
  /**
   * Provision credentials in status AVAILABLE (Kaa provisionCredentials), with
   * `opts.serverProfileBody` also their registration, atomically (see ProvisionOptions).
   * LK_APP_NOT_FOUND if the application does not exist; LK_CRED_EXISTS if credentials with that id
   * exist in any status (nothing is written then).
   */
  provisionCredentials(appId: string, credentialsId: string, publicKey: Buffer | null, opts?: ProvisionOptions): Promise<CredentialsRecord>;
  getCredentials(appId: string, credentialsId: string): Promise<CredentialsRecord | null>;
  /**
   * Credentials of one application in credentials id order (UTF-8 byte order), provisioned and
   * trustful-created alike, each with its current status. Keyset paging: `after` is the previous
   * page's `next`, and the next page starts after the last id that page examined, so no id is
   * listed twice and credentials created meanwhile are listed iff their id sorts after the cursor.
   * `limit` is 1..MAX_CREDENTIALS_PAGE (common/credentials.ts, 1000). With `status`, only credentials in
   * that status are listed; a call examines at most CREDENTIALS_SCAN credentials, so a filtered
   * page may be short, even empty, while `next` is not null: page on until `next` is null.
   * An unknown application lists nothing. LK_BAD_ARGUMENT for a limit out of range, a malformed
   * cursor or an unknown status.
   */
  listCredentials(appId: string, opts: CredentialsListOptions): Promise<Page<CredentialsRecord>>;

  /**
   * Atomically bind credentials to an endpoint (Kaa markCredentialsInUse):
   * - AVAILABLE -> IN_USE(endpointId): ok, created=false;
   * - IN_USE by the same endpointId: ok (idempotent);
   * - IN_USE by another endpoint: { ok: false, reason: 'IN_USE' };
   * - REVOKED: { ok: false, reason: 'REVOKED' } (terminal, never changes again);
   * - missing: if `createWithKey` is given (trustful service) the record is created IN_USE with
   *   that key (ok, created=true), else { ok: false, reason: 'UNKNOWN' }.
   * Of any number of concurrent calls for one credentials id with different endpoint ids, across
   * processes and nodes, exactly one succeeds.
   */
  bindCredentials(appId: string, credentialsId: string, endpointId: string, createWithKey?: Buffer): Promise<BindResult>;

  /**
   * Move credentials to REVOKED (terminal; Kaa markCredentialsRevoked). Returns the record after
   * the change, or null if there are no such credentials. Revoking twice is not an error.
   */
  revokeCredentials(appId: string, credentialsId: string): Promise<CredentialsRecord | null>;
}

/** Server-side profiles provisioned against credentials, and the endpoint records. */
export interface RegistrationStore {
  /**
   * Provision (create or replace) a server-side profile against credentials (Kaa
   * provisionRegistration). LK_APP_NOT_FOUND if the application does not exist. Credentials need
   * not exist yet.
   */
  provisionRegistration(appId: string, credentialsId: string, serverProfileBody: string | null): Promise<RegistrationRecord>;
  getRegistration(appId: string, credentialsId: string): Promise<RegistrationRecord | null>;

  getEndpoint(appId: string, keyHash: string): Promise<EndpointRecord | null>;
  /** Create or replace the endpoint record (registration and profile updates). */
  saveEndpoint(endpoint: EndpointRecord): Promise<EndpointRecord>;
  /** Endpoints of one application ordered by key hash, `limit` at most per page. */
  listEndpoints(appId: string, limit: number, cursor?: string | null): Promise<Page<EndpointRecord>>;
}

/** Admin API keys (only a hash of each secret). */
export interface ApiKeyStore {
  /**
   * Create an admin API key. LK_CONFLICT if the id exists; LK_TENANT_NOT_FOUND if tenantId is set
   * and the tenant does not exist (nothing is written then). LK_BAD_ARGUMENT if secretHash is not
   * 32 bytes. Atomic.
   */
  createApiKey(key: ApiKeyRecord): Promise<ApiKeyRecord>;
  getApiKey(id: string): Promise<ApiKeyRecord | null>;
  /**
   * All keys ordered by id; with tenantId, only that tenant's keys (root keys have tenantId null,
   * so `listApiKeys(null)` lists only root keys). An unknown tenant lists nothing.
   */
  listApiKeys(tenantId?: string | null): Promise<ApiKeyRecord[]>;
  /** Delete a key. Returns true if a key was deleted, false if there was none. */
  deleteApiKey(id: string): Promise<boolean>;
  /** Number of keys of every scope (first start creates the first root key when this is 0). */
  countApiKeys(): Promise<number>;
}

/** Owner attachments, the event classes endpoints listen to, and endpoint access tokens. */
export interface OwnershipStore {
  /**
   * Atomically attach (appId, keyHash) to owner `ownerExternalId` of `tenantId`, moving it from any
   * previous owner in the same transaction: the previous owner no longer lists it once this
   * resolves (Kaa once left a moved endpoint listed under the old owner: never here). Returns the
   * previous owner's external id, or null if the endpoint had no owner; attaching to the owner it
   * already has changes nothing and returns that owner. The endpoint record need not exist.
   * LK_APP_NOT_FOUND if the application does not exist or belongs to another tenant (nothing is
   * written then); LK_BAD_ARGUMENT for a malformed id or key hash.
   * Of any number of concurrent attaches of one endpoint, across processes and nodes, the endpoint
   * ends with exactly one owner, getEndpointOwner names it and only that owner lists it.
   */
  attachEndpointToOwner(tenantId: string, ownerExternalId: string, appId: string, keyHash: string): Promise<{ previousOwner: string | null }>;
  /**
   * Attach like {@link attachEndpointToOwner}, but only if the endpoint has no owner or already has
   * this one (the endpoint-access-token flow: "the target must be unowned or already the same
   * owner"), decided atomically: { ok: true, previousOwner } (null, or `ownerExternalId` itself
   * when it was already attached: nothing changes then), else { ok: false, currentOwner } and
   * nothing is written. Same errors as attachEndpointToOwner. Of concurrent conditional attaches of
   * one unowned endpoint to different owners exactly one succeeds.
   */
  attachEndpointIfUnownedOrSameOwner(tenantId: string, ownerExternalId: string, appId: string, keyHash: string): Promise<ConditionalAttachResult>;
  /** Owner of an endpoint, or null if it is not attached (or the ids are malformed). */
  getEndpointOwner(appId: string, keyHash: string): Promise<OwnerAttachment | null>;
  /**
   * Detach an endpoint from its owner, atomically. Returns the owner's external id it was attached
   * to, or null if it was not attached (detaching twice is not an error). The owner no longer
   * lists it once this resolves.
   */
  detachEndpoint(appId: string, keyHash: string): Promise<string | null>;
  /**
   * Endpoints attached to one owner (all applications of the tenant), ordered by appId then
   * keyHash. An unknown tenant or owner lists nothing.
   */
  listOwnerEndpoints(tenantId: string, ownerExternalId: string): Promise<OwnerAttachment[]>;

  /**
   * The event classes (FQNs) an endpoint declared it listens to; replaces the previous declaration
   * ([] clears it). The listeners query (events/relay.ts) reads these, for connected and offline
   * endpoints alike, as Kaa's listeners came from the endpoint's SDK profile. At most
   * MAX_EVENT_CLASSES names of 1..MAX_EVENT_CLASS_LENGTH characters; LK_BAD_ARGUMENT otherwise, or
   * for a malformed id or key hash. Last writer wins (only the endpoint's own session writes it).
   */
  setEventClasses(appId: string, keyHash: string, classes: string[]): Promise<void>;
  /** The declared event classes, or null if the endpoint never declared any. */
  getEventClasses(appId: string, keyHash: string): Promise<string[] | null>;

  /**
   * Set or rotate an endpoint's access token: its SHA-256 `tokenHash` (32 bytes) and expiry. The
   * previous token is replaced atomically and stops resolving at once; setting the current token
   * again only moves its expiry. The token is indexed under the application's tenant.
   * LK_APP_NOT_FOUND if the application does not exist; LK_BAD_ARGUMENT for a malformed id, key
   * hash, token hash or expiry; LK_CONFLICT if another endpoint of the tenant holds the same token
   * hash and it has not expired (an expired one is taken over). Nothing is written on an error.
   */
  setEndpointAccessToken(appId: string, keyHash: string, tokenHash: Buffer, expiresAt: number): Promise<void>;
  /**
   * Find the endpoint that published this token within a tenant (any of its applications): null if
   * the hash is unknown in that tenant, is no longer that endpoint's current token, or has expired
   * (`now >= expiresAt`). A hash that is not 32 bytes finds nothing; LK_BAD_ARGUMENT if `now` is
   * not a finite number.
   */
  findEndpointByAccessToken(tenantId: string, tokenHash: Buffer, now: number): Promise<{ appId: string; keyHash: string } | null>;
}

/** Owner verifier configurations of an application and its default verifier. */
export interface VerifierStore {
  /**
   * Create an owner verifier configuration. LK_APP_NOT_FOUND if the application does not exist;
   * LK_CONFLICT if the application has a verifier with this token (nothing is written then);
   * LK_BAD_ARGUMENT for a malformed id, token, type name, text field or timestamp. Atomic.
   */
  createVerifier(rec: VerifierRecord): Promise<VerifierRecord>;
  /** A verifier of an application, or null (also for malformed ids). */
  getVerifier(appId: string, verifierToken: string): Promise<VerifierRecord | null>;
  /** Verifiers of one application, ordered by verifierToken. An unknown application lists nothing. */
  listVerifiers(appId: string): Promise<VerifierRecord[]>;
  /**
   * Replace a verifier's pluginTypeName, name, description and jsonConfiguration and take updatedAt
   * from `rec`; createdAt is kept (rec.createdAt is ignored). Returns the stored record. LK_NOT_FOUND
   * if the application has no verifier with this token; LK_BAD_ARGUMENT as createVerifier. Atomic.
   */
  updateVerifier(rec: VerifierRecord): Promise<VerifierRecord>;
  /**
   * Delete a verifier. Returns true if one was deleted, false if there was none (or the ids are
   * malformed). Deleting the application's default verifier clears the default in the same atomic
   * step: the default never names a missing verifier.
   */
  deleteVerifier(appId: string, verifierToken: string): Promise<boolean>;
  /**
   * Set the application's default verifier (the one an owner attach without a verifier token uses),
   * or clear it with null (clearing an unset default is not an error). LK_APP_NOT_FOUND if the
   * application does not exist; LK_NOT_FOUND if the token is not a verifier of the application.
   * Atomic with deleteVerifier: a verifier deleted concurrently is never left as the default.
   */
  setDefaultVerifier(appId: string, verifierToken: string | null): Promise<void>;
  /** Token of the application's default verifier, or null if none is set or the application is unknown. */
  getDefaultVerifier(appId: string): Promise<string | null>;
}

/** Durable per-endpoint notification queues (delivered when the endpoint next connects). */
export interface NotificationStore {
  /**
   * Append a notification to the durable queue of endpoint (appId, keyHash), for delivery when it
   * next connects, and return its seq: greater than every seq the endpoint's queue handed out
   * before (acknowledged ones included, across restarts, processes and nodes), so concurrent
   * enqueues never share one; seqs may have gaps.
   * Drop policy: the queue holds at most `max` entries. When it is full, the OLDEST entries are
   * removed in the same atomic step as the append so the new one fits, and `dropped` says how many
   * (0 while there is room; more than 1 only if `max` shrank). The new entry is never dropped.
   * The application and endpoint need not exist. LK_BAD_ARGUMENT for a malformed id or key hash, a
   * payload that is not bytes or is larger than MAX_NOTIFICATION_BYTES (common/notifications.ts), or a `max`
   * that is not a positive integer.
   */
  enqueueNotification(appId: string, keyHash: string, payload: Buffer, max: number): Promise<{ seq: number; dropped: number }>;
  /**
   * Queued notifications of an endpoint, oldest (lowest seq) first, at most `limit` (LK_BAD_ARGUMENT
   * if not a positive integer). Listing removes nothing; malformed ids list nothing.
   */
  listNotifications(appId: string, keyHash: string, limit: number): Promise<PendingNotification[]>;
  /**
   * Remove every queued entry of the endpoint with seq <= uptoSeq (what was delivered). Entries
   * already removed are not an error. LK_BAD_ARGUMENT if uptoSeq is not a safe integer.
   */
  ackNotifications(appId: string, keyHash: string, uptoSeq: number): Promise<void>;
}

/**
 * Bans and the session control log: state that protection and revocation need on every node even
 * when the bus (Redis) is down. The store is the truth; the bus only makes it faster.
 */
export interface ProtectionStore {
  /** Create or replace the ban of (kind, value). LK_BAD_ARGUMENT for a value longer than 512 bytes. */
  putBan(ban: BanRecord): Promise<BanRecord>;
  /** Remove the ban of (kind, value); true if there was one (expired or not). */
  deleteBan(kind: BanKind, value: string): Promise<boolean>;
  /** Bans not expired at `now`, ordered by kind then value. Expired bans may be removed by the store. */
  listBans(now: number): Promise<BanRecord[]>;
  /**
   * Append an entry (id and `at` as given) to the control log. Entries older than
   * CONTROL_LOG_RETENTION_MS (common/protection.ts) may be removed by the store.
   */
  appendControl(entry: ControlEntry): Promise<void>;
  /**
   * Entries with `at` >= sinceMs, in `at` order (ties in id order), at most `limit` (LK_BAD_ARGUMENT
   * if not a positive integer). Readers poll with an overlap and skip ids they have applied.
   */
  listControlSince(sinceMs: number, limit: number): Promise<ControlEntry[]>;
}

/** Every area of the store, and the backend's lifetime. */
export interface Store
  extends TenancyStore,
    CredentialsStore,
    RegistrationStore,
    ApiKeyStore,
    OwnershipStore,
    VerifierStore,
    NotificationStore,
    ProtectionStore {
  /** Flush pending writes and release the backend. Idempotent. */
  close(): Promise<void>;
}
