/**
 * Validation, cursors and defensive copies shared by every Store backend, so the backends agree on
 * what they accept (the contract suite checks the outcomes) and on the page cursor format.
 */
import { LatchkeyError } from '../errors.js';
import type {
  ApiKeyRecord,
  Application,
  CredentialStatus,
  CredentialsListOptions,
  CredentialsRecord,
  Page,
  EndpointAccessTokenRecord,
  EndpointRecord,
  OwnerAttachment,
  PendingNotification,
  RegistrationRecord,
  Tenant,
  VerifierRecord,
} from './store.js';

/** Longest id a store accepts, in UTF-8 bytes. */
export const MAX_ID_BYTES = 500;
export const BASE64URL = /^[A-Za-z0-9_-]+$/;

export function validId(id: unknown): id is string {
  return typeof id === 'string' && id.length > 0 && Buffer.byteLength(id, 'utf8') <= MAX_ID_BYTES;
}

export function checkId(what: string, id: unknown): asserts id is string {
  if (!validId(id)) throw new LatchkeyError('LK_BAD_ARGUMENT', `${what} must be a non-empty string of at most ${MAX_ID_BYTES} UTF-8 bytes`);
}

export function validKeyHash(keyHash: unknown): keyHash is string {
  return validId(keyHash) && BASE64URL.test(keyHash);
}

export function checkKeyHash(keyHash: unknown): asserts keyHash is string {
  if (!validKeyHash(keyHash)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'endpoint key hash must be unpadded base64url');
}

export function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new LatchkeyError('LK_BAD_ARGUMENT', 'page limit must be a positive integer');
}

export function encodeCursor(keyHash: string): string {
  return Buffer.from(keyHash, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const keyHash = typeof cursor === 'string' && BASE64URL.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!validKeyHash(keyHash) || encodeCursor(keyHash) !== cursor) throw new LatchkeyError('LK_BAD_ARGUMENT', 'malformed page cursor');
  return keyHash;
}

/** Page cursor over ids of any shape (credentials ids need not be key hashes). */
export function decodeIdCursor(cursor: string): string {
  const id = typeof cursor === 'string' && BASE64URL.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!validId(id) || encodeCursor(id) !== cursor) throw new LatchkeyError('LK_BAD_ARGUMENT', 'malformed page cursor');
  return id;
}

/** Largest page listCredentials returns. */
export const MAX_CREDENTIALS_PAGE = 1000;
/**
 * Most credentials one listCredentials call examines (with a status filter most may not match):
 * bounds the work of one call, at most this many record reads on Cassandra.
 */
export const CREDENTIALS_SCAN = 1000;
/** How many credentials one listCredentials call of page size `limit` may examine. */
export function credentialsScanBudget(limit: number): number {
  return Math.max(CREDENTIALS_SCAN, limit + 1);
}
export const CREDENTIAL_STATUSES: readonly CredentialStatus[] = ['AVAILABLE', 'IN_USE', 'REVOKED'];

export function checkCredentialsList(opts: CredentialsListOptions): { limit: number; after: string | null; status: CredentialStatus | null } {
  const { limit, after, status } = opts ?? ({} as CredentialsListOptions);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_CREDENTIALS_PAGE) {
    throw new LatchkeyError('LK_BAD_ARGUMENT', `page limit must be an integer 1-${MAX_CREDENTIALS_PAGE}`);
  }
  if (status != null && !CREDENTIAL_STATUSES.includes(status)) throw new LatchkeyError('LK_BAD_ARGUMENT', `status must be one of ${CREDENTIAL_STATUSES.join(', ')}`);
  return { limit, after: after == null ? null : decodeIdCursor(after), status: status ?? null };
}

/**
 * One page of listCredentials, fed the application's credentials in id order (both backends share
 * it, so they page and filter alike). `offer` returns false, without taking the row, once the scan
 * budget is spent (more rows exist); `done` is true once the page has one match beyond `limit`.
 */
export class CredentialsPager {
  private readonly matches: CredentialsRecord[] = [];
  private examined = 0;
  private lastExamined: string | null = null;
  private more = false;
  private readonly budget: number;

  constructor(
    private readonly limit: number,
    private readonly status: CredentialStatus | null,
  ) {
    this.budget = credentialsScanBudget(limit);
  }

  /** The next credentials id in order and its record (null: an index row without a record). */
  offer(credentialsId: string, record: CredentialsRecord | null): boolean {
    if (this.examined >= this.budget) {
      this.more = true;
      return false;
    }
    this.examined++;
    this.lastExamined = credentialsId;
    if (record !== null && (this.status === null || record.status === this.status)) this.matches.push(copyCredentials(record));
    return true;
  }

  get done(): boolean {
    return this.matches.length > this.limit;
  }

  page(): Page<CredentialsRecord> {
    if (this.done) {
      const items = this.matches.slice(0, this.limit);
      return { items, next: encodeCursor(items[items.length - 1]!.credentialsId) };
    }
    // Budget spent: continue after the last row examined, even if this page is short or empty.
    return { items: this.matches, next: this.more && this.lastExamined !== null ? encodeCursor(this.lastExamined) : null };
  }
}

/** Length of ApiKeyRecord.secretHash (SHA-256). */
export const API_KEY_HASH_BYTES = 32;

/** Validate an API key record before it is written. */
export function checkApiKey(k: ApiKeyRecord): void {
  checkId('API key id', k.id);
  if (k.tenantId != null) checkId('tenant id', k.tenantId);
  if (!(k.secretHash instanceof Uint8Array) || k.secretHash.length !== API_KEY_HASH_BYTES) {
    throw new LatchkeyError('LK_BAD_ARGUMENT', `API key secret hash must be ${API_KEY_HASH_BYTES} bytes`);
  }
  if (typeof k.name !== 'string') throw new LatchkeyError('LK_BAD_ARGUMENT', 'API key name must be a string');
  if (!Number.isSafeInteger(k.createdAt)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'API key createdAt must be an integer');
}

/** Largest |time| a Date (and so a Cassandra timestamp written from JS) can hold, in ms. */
const MAX_TIME_MS = 8.64e15;

/** Length of an endpoint access token hash (SHA-256). */
export const ACCESS_TOKEN_HASH_BYTES = 32;

export function validTokenHash(tokenHash: unknown): tokenHash is Buffer {
  return tokenHash instanceof Uint8Array && tokenHash.length === ACCESS_TOKEN_HASH_BYTES;
}

/** Validate setEndpointAccessToken arguments before anything is read or written. */
export function checkAccessToken(appId: unknown, keyHash: unknown, tokenHash: unknown, expiresAt: unknown): void {
  checkId('application id', appId);
  checkKeyHash(keyHash);
  if (!validTokenHash(tokenHash)) throw new LatchkeyError('LK_BAD_ARGUMENT', `endpoint access token hash must be ${ACCESS_TOKEN_HASH_BYTES} bytes`);
  if (!Number.isSafeInteger(expiresAt) || Math.abs(expiresAt as number) > MAX_TIME_MS) {
    throw new LatchkeyError('LK_BAD_ARGUMENT', 'endpoint access token expiresAt must be an integer time in milliseconds');
  }
}

function checkTime(what: string, t: unknown): void {
  if (!Number.isSafeInteger(t) || Math.abs(t as number) > MAX_TIME_MS) {
    throw new LatchkeyError('LK_BAD_ARGUMENT', `${what} must be an integer time in milliseconds`);
  }
}

/** Validate a verifier record before it is written (createVerifier, updateVerifier). */
export function checkVerifier(v: VerifierRecord): void {
  checkId('application id', v.appId);
  checkId('verifier token', v.verifierToken);
  checkId('verifier plugin type name', v.pluginTypeName);
  for (const field of ['name', 'description', 'jsonConfiguration'] as const) {
    if (typeof v[field] !== 'string') throw new LatchkeyError('LK_BAD_ARGUMENT', `verifier ${field} must be a string`);
  }
  checkTime('verifier createdAt', v.createdAt);
  checkTime('verifier updatedAt', v.updatedAt);
}

/**
 * Largest notification payload a store accepts, in bytes. Notifications are small Avro messages;
 * the bound keeps one Cassandra enqueue (a batch) far below the default batch size limit (50 KiB).
 */
export const MAX_NOTIFICATION_BYTES = 32 * 1024;

/** Validate enqueueNotification arguments before anything is read or written. */
export function checkEnqueue(appId: unknown, keyHash: unknown, payload: unknown, max: unknown): void {
  checkId('application id', appId);
  checkKeyHash(keyHash);
  if (!(payload instanceof Uint8Array)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'notification payload must be a Buffer');
  if (payload.length > MAX_NOTIFICATION_BYTES) {
    throw new LatchkeyError('LK_BAD_ARGUMENT', `notification payload larger than ${MAX_NOTIFICATION_BYTES} bytes`);
  }
  if (!Number.isSafeInteger(max) || (max as number) < 1) throw new LatchkeyError('LK_BAD_ARGUMENT', 'notification queue max must be a positive integer');
}

/** Validate ackNotifications arguments before anything is read or written. */
export function checkAck(appId: unknown, keyHash: unknown, uptoSeq: unknown): void {
  checkId('application id', appId);
  checkKeyHash(keyHash);
  if (!Number.isSafeInteger(uptoSeq)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'notification seq must be a safe integer');
}

/** Validate attach arguments before anything is read or written. */
export function checkAttach(tenantId: unknown, ownerExternalId: unknown, appId: unknown, keyHash: unknown): void {
  checkId('tenant id', tenantId);
  checkId('owner external id', ownerExternalId);
  checkId('application id', appId);
  checkKeyHash(keyHash);
}

/** Order of listOwnerEndpoints: application id, then key hash (code-unit order, as listApplications). */
export function compareAttachments(a: OwnerAttachment, b: OwnerAttachment): number {
  return compareStrings(a.appId, b.appId) || compareStrings(a.keyHash, b.keyHash);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function copyTenant(t: Tenant): Tenant {
  return { id: t.id, name: t.name, createdAt: t.createdAt };
}

export function copyApplication(a: Application): Application {
  return {
    id: a.id,
    tenantId: a.tenantId,
    name: a.name,
    appToken: a.appToken,
    credentialsService: a.credentialsService,
    profileSchema: a.profileSchema ?? null,
    createdAt: a.createdAt,
  };
}

export function copyCredentials(c: CredentialsRecord): CredentialsRecord {
  return {
    appId: c.appId,
    credentialsId: c.credentialsId,
    publicKey: c.publicKey == null ? null : Buffer.from(c.publicKey),
    status: c.status,
    endpointId: c.endpointId ?? null,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
  };
}

export function copyRegistration(r: RegistrationRecord): RegistrationRecord {
  return {
    appId: r.appId,
    credentialsId: r.credentialsId,
    serverProfileBody: r.serverProfileBody ?? null,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

export function copyEndpoint(e: EndpointRecord): EndpointRecord {
  return {
    appId: e.appId,
    keyHash: e.keyHash,
    credentialsId: e.credentialsId,
    publicKey: Buffer.from(e.publicKey),
    profileBody: Buffer.from(e.profileBody),
    profileHash: Buffer.from(e.profileHash),
    serverProfileBody: e.serverProfileBody ?? null,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
  };
}

export function copyApiKey(k: ApiKeyRecord): ApiKeyRecord {
  return {
    id: k.id,
    tenantId: k.tenantId ?? null,
    secretHash: Buffer.from(k.secretHash),
    name: k.name,
    createdAt: k.createdAt,
  };
}

export function copyOwnerAttachment(o: OwnerAttachment): OwnerAttachment {
  return {
    tenantId: o.tenantId,
    ownerExternalId: o.ownerExternalId,
    appId: o.appId,
    keyHash: o.keyHash,
    attachedAt: o.attachedAt,
  };
}

export function copyAccessToken(t: EndpointAccessTokenRecord): EndpointAccessTokenRecord {
  return {
    appId: t.appId,
    keyHash: t.keyHash,
    tokenHash: Buffer.from(t.tokenHash),
    expiresAt: t.expiresAt,
    updatedAt: t.updatedAt,
  };
}

export function copyVerifier(v: VerifierRecord): VerifierRecord {
  return {
    appId: v.appId,
    verifierToken: v.verifierToken,
    pluginTypeName: v.pluginTypeName,
    name: v.name,
    description: v.description,
    jsonConfiguration: v.jsonConfiguration,
    createdAt: v.createdAt,
    updatedAt: v.updatedAt,
  };
}

export function copyNotification(n: PendingNotification): PendingNotification {
  return { seq: n.seq, payload: Buffer.from(n.payload), createdAt: n.createdAt };
}

export function storeError(err: unknown, detail?: string): LatchkeyError {
  if (err instanceof LatchkeyError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new LatchkeyError('LK_STORE_UNAVAILABLE', detail ? `${detail}: ${msg}` : msg, { cause: err });
}

/** Most event classes one endpoint may declare (Store.setEventClasses). */
export const MAX_EVENT_CLASSES = 256;
/** Longest event class FQN accepted anywhere (declaration, listeners query, event). */
export const MAX_EVENT_CLASS_LENGTH = 255;

export function checkEventClasses(appId: string, keyHash: string, classes: unknown): asserts classes is string[] {
  checkId('application id', appId);
  checkKeyHash(keyHash);
  if (!Array.isArray(classes) || classes.length > MAX_EVENT_CLASSES) {
    throw new LatchkeyError('LK_BAD_ARGUMENT', `event classes must be an array of at most ${MAX_EVENT_CLASSES} names`);
  }
  for (const c of classes) {
    if (typeof c !== 'string' || c.length === 0 || c.length > MAX_EVENT_CLASS_LENGTH) {
      throw new LatchkeyError('LK_BAD_ARGUMENT', `an event class name must be 1..${MAX_EVENT_CLASS_LENGTH} characters`);
    }
  }
}
