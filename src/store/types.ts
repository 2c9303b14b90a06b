/**
 * The records the store keeps and returns, and the results of its methods: the vocabulary of the
 * Store interface (store.ts re-exports every one; import them from there). Kept apart from the
 * interface so store.ts reads as the contract alone.
 */

export type CredentialStatus = 'AVAILABLE' | 'IN_USE' | 'REVOKED';

export interface Tenant {
  id: string;
  name: string;
  createdAt: number;
}

export interface Application {
  id: string;
  tenantId: string;
  name: string;
  /** Secret-ish token endpoints present in CONNECT; unique across the store. */
  appToken: string;
  /** 'trustful' | 'internal' | the name of a configured credentials plugin. */
  credentialsService: string;
  /** Avro schema (JSON text) profile bodies must match, or null for opaque profiles. */
  profileSchema: string | null;
  createdAt: number;
}

export interface CredentialsRecord {
  appId: string;
  /** Key hash (base64url SHA-256 of the SPKI DER) of the endpoint key. */
  credentialsId: string;
  /** SPKI DER of the endpoint public key, or null when provisioned without one (plugins). */
  publicKey: Buffer | null;
  status: CredentialStatus;
  /** Endpoint the credentials are bound to once IN_USE (the endpoint key hash), else null. */
  endpointId: string | null;
  createdAt: number;
  updatedAt: number;
}

/** Options of CredentialsStore.listCredentials (store.ts). */
export interface CredentialsListOptions {
  /** Page size, 1..MAX_CREDENTIALS_PAGE. */
  limit: number;
  /** The previous page's `next` (opaque); null or absent for the first page. */
  after?: string | null;
  /** Only credentials in this status. */
  status?: CredentialStatus | null;
}

/** Options of CredentialsStore.provisionCredentials (store.ts). */
export interface ProvisionOptions {
  /**
   * Also provision this server-side profile (JSON text, or null) against the credentials, as
   * RegistrationStore.provisionRegistration (store.ts) would, in the same atomic step: the credentials and the
   * registration are both written or neither is (a crash cannot leave credentials without the
   * profile they were provisioned with), and a refused provision (LK_CRED_EXISTS,
   * LK_APP_NOT_FOUND) changes no registration. Absent or undefined: no registration is written.
   */
  serverProfileBody?: string | null;
}

/** Kaa's EndpointRegistration: a server-side profile provisioned against credentials. */
export interface RegistrationRecord {
  appId: string;
  credentialsId: string;
  /** Server-side profile as JSON text; copied into the endpoint profile at registration. */
  serverProfileBody: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface EndpointRecord {
  appId: string;
  /** Endpoint id: base64url SHA-256 of the SPKI DER of its key. */
  keyHash: string;
  credentialsId: string;
  publicKey: Buffer;
  profileBody: Buffer;
  /** SHA-256 of profileBody. */
  profileHash: Buffer;
  serverProfileBody: string | null;
  createdAt: number;
  updatedAt: number;
}

/** Outcome of CredentialsStore.bindCredentials (store.ts). */
export type BindResult =
  | { ok: true; record: CredentialsRecord; created: boolean }
  | { ok: false; reason: 'UNKNOWN' | 'IN_USE' | 'REVOKED'; record: CredentialsRecord | null };

/**
 * An admin API key. Clients present `lk_<id>.<secret>`; the store keeps only the id and a hash of
 * the secret.
 */
export interface ApiKeyRecord {
  /** Public key id (the part before the dot in `lk_<id>.<secret>`). */
  id: string;
  /** null: root scope; else the tenant this key administers. */
  tenantId: string | null;
  /** SHA-256 of the secret (32 bytes); the secret itself is never stored. */
  secretHash: Buffer;
  name: string;
  createdAt: number;
}

/**
 * An endpoint's membership: which owner (per tenant) it is attached to. Owners (Kaa users) belong
 * to a TENANT and are keyed by their external id, so endpoints of several applications of one
 * tenant can share an owner, and the same external id in two tenants names two different owners.
 * An endpoint has at most one owner.
 */
export interface OwnerAttachment {
  tenantId: string;
  ownerExternalId: string;
  appId: string;
  /** Endpoint id: base64url SHA-256 of the SPKI DER of its key. */
  keyHash: string;
  /** When the endpoint was attached to this owner (a re-attach to the same owner keeps it). */
  attachedAt: number;
}

/**
 * An endpoint access token (Kaa endpointAccessToken) an endpoint published so an attached endpoint
 * can attach it. Only the token's hash is stored; an endpoint has at most one current token.
 */
export interface EndpointAccessTokenRecord {
  appId: string;
  keyHash: string;
  /** SHA-256 of the token (32 bytes); the token itself is never stored. */
  tokenHash: Buffer;
  /** The token stops resolving at this instant (expired when `now >= expiresAt`). */
  expiresAt: number;
  updatedAt: number;
}

/** Outcome of OwnershipStore.attachEndpointIfUnownedOrSameOwner (store.ts). */
export type ConditionalAttachResult = { ok: true; previousOwner: string | null } | { ok: false; currentOwner: string };

/**
 * An owner verifier configuration of an application (Kaa's user verifier: plugin type name, name,
 * description, JSON configuration). An owner attach names a verifier by its token, or uses the
 * application's default verifier.
 */
export interface VerifierRecord {
  appId: string;
  /** Id of the verifier within its application (Kaa verifierToken); the admin API generates it. */
  verifierToken: string;
  /** 'trustful', another built-in type, or the name of a configured custom verifier type. */
  pluginTypeName: string;
  name: string;
  description: string;
  /** The verifier's configuration as JSON text; the store keeps it as given. */
  jsonConfiguration: string;
  createdAt: number;
  updatedAt: number;
}

/** A notification queued durably for an endpoint: see NotificationStore.enqueueNotification (store.ts). */
export interface PendingNotification {
  /** Position in the endpoint's queue: strictly increasing per endpoint, never reused (may have gaps). */
  seq: number;
  /** The encoded notification; opaque to the store. */
  payload: Buffer;
  createdAt: number;
}

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page, or null when this is the last page. */
  next: string | null;
}

/** What a ban matches (docs/operations.md "Limits and bans"). */
export type BanKind = 'keyHash' | 'ip' | 'app';

/**
 * A ban: `value` is a key hash (base64url, as in credentials ids), an IPv4/IPv6 address or CIDR
 * (`10.0.0.0/8`, `2001:db8::/32`), or an application id. A keyHash ban covers every application.
 */
export interface BanRecord {
  kind: BanKind;
  value: string;
  reason: string;
  createdAt: number;
  /** When the ban lapses (ms); null: until deleted. */
  expiresAt: number | null;
  /** API key id that set it, or `flapping` / `failed-handshakes` / `cli` for automatic and offline bans. */
  createdBy: string;
}

/** An entry of the session control log: what every node must apply to its live sessions. */
export type ControlType = 'revoke' | 'kick';

export interface ControlEntry {
  /** Unique id (UUID); the same entry read twice is applied once. */
  id: string;
  type: ControlType;
  appId: string;
  keyHash: string;
  /** When it was written (ms, the writer's clock). A kick only ends sessions established before it. */
  at: number;
}
