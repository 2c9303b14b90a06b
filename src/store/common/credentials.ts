/**
 * Credentials rules shared by every Store backend (store.ts CredentialsStore): the listCredentials
 * page bounds, options check and pager, so the backends page and filter alike; the record copy; and
 * decideBound, the answer of a bind that found the credentials already taken.
 */
import { LatchkeyError } from '../../errors.js';
import type { BindResult, CredentialStatus, CredentialsListOptions, CredentialsRecord, Page } from '../store.js';
import { checkId, decodeIdCursor, encodeCursor } from './values.js';

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

/**
 * The answer of bindCredentials when the record is not AVAILABLE (or after our own conditional
 * write, `created`): revoked is refused; bound to this very endpoint is success (idempotent, so a
 * retried bind after an unknown outcome succeeds); anything else is in use by another endpoint.
 */
export function decideBound(current: CredentialsRecord, endpointId: string, created = false): BindResult {
  const record = copyCredentials(current);
  if (current.status === 'REVOKED') return { ok: false, reason: 'REVOKED', record };
  if (current.status === 'IN_USE' && current.endpointId === endpointId) return { ok: true, record, created };
  return { ok: false, reason: 'IN_USE', record };
}

/** A new AVAILABLE credentials record (ids checked, the key copied), as provisionCredentials stores it. */
export function newCredentials(appId: string, credentialsId: string, publicKey: Buffer | null, now = Date.now()): CredentialsRecord {
  checkId('application id', appId);
  checkId('credentials id', credentialsId);
  return { appId, credentialsId, publicKey: publicKey === null ? null : Buffer.from(publicKey), status: 'AVAILABLE', endpointId: null, createdAt: now, updatedAt: now };
}
