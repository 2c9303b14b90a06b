/**
 * Credentials area of the embedded store: `credentials` (appId, credentialsId) -> CredentialsRecord,
 * so an application's credentials are one range in id order (listCredentials pages it without an
 * index). provisionCredentials writes the registration of ProvisionOptions in the same transaction.
 */
import { LatchkeyError } from '../../errors.js';
import type { BindResult, CredentialsListOptions, CredentialsRecord, Page, ProvisionOptions } from '../store.js';
import { checkCredentialsList, copyCredentials, CredentialsPager, decideBound, newCredentials } from '../common/credentials.js';
import { checkId, validId } from '../common/values.js';
import { key, prefixRange } from './keys.js';
import { nullable, type EmbeddedContext } from './lmdb.js';

export async function provisionCredentials(cx: EmbeddedContext, appId: string, credentialsId: string, publicKey: Buffer | null, opts: ProvisionOptions = {}): Promise<CredentialsRecord> {
  const row = newCredentials(appId, credentialsId, publicKey);
  const now = row.createdAt;
  const k = key(appId, credentialsId);
  const profile = opts.serverProfileBody;
  await cx.write(() => {
    if (!cx.dbs.applications.doesExist(key(appId))) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
    if (cx.dbs.credentials.doesExist(k)) throw new LatchkeyError('LK_CRED_EXISTS', credentialsId);
    // With a profile, the registration is written in the same transaction (ProvisionOptions).
    const previous = profile === undefined ? undefined : cx.dbs.registrations.get(k);
    cx.dbs.credentials.put(k, row);
    if (profile !== undefined) {
      cx.dbs.registrations.put(k, { appId, credentialsId, serverProfileBody: profile, createdAt: previous?.createdAt ?? now, updatedAt: now });
    }
  });
  return copyCredentials(row);
}

export async function getCredentials(cx: EmbeddedContext, appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
  if (!validId(appId) || !validId(credentialsId)) return null;
  return cx.read(() => nullable(cx.dbs.credentials.get(key(appId, credentialsId)), copyCredentials));
}

export async function listCredentials(cx: EmbeddedContext, appId: string, opts: CredentialsListOptions): Promise<Page<CredentialsRecord>> {
  const { limit, after, status } = checkCredentialsList(opts);
  if (!validId(appId)) return { items: [], next: null };
  return cx.read(() => {
    // The application's credentials are one contiguous key range ordered by credentials id:
    // no index needed. The range is read lazily, so a page reads at most the scan budget.
    const range = prefixRange(appId);
    const pager = new CredentialsPager(limit, status);
    const rows = cx.dbs.credentials.getRange({
      start: after === null ? range.start : key(appId, after),
      exclusiveStart: after !== null,
      end: range.end,
    });
    for (const { value } of rows) {
      if (!pager.offer(value.credentialsId, value) || pager.done) break;
    }
    return pager.page();
  });
}

export async function bindCredentials(cx: EmbeddedContext, appId: string, credentialsId: string, endpointId: string, createWithKey?: Buffer): Promise<BindResult> {
  checkId('endpoint id', endpointId);
  if (!validId(appId) || !validId(credentialsId)) {
    if (createWithKey === undefined) return { ok: false, reason: 'UNKNOWN', record: null };
    checkId('application id', appId);
    checkId('credentials id', credentialsId);
  }
  const k = key(appId, credentialsId);
  // Fast path: a reconnecting endpoint finds its credentials already IN_USE by itself, and
  // IN_USE-by-another and REVOKED never change back, so those answers need no write lock.
  const seen = await cx.read(() => cx.dbs.credentials.get(k));
  if (seen !== undefined && seen.status !== 'AVAILABLE') return decideBound(seen, endpointId);
  if (seen === undefined && createWithKey === undefined) {
    return { ok: false, reason: 'UNKNOWN', record: null };
  }
  const key0 = createWithKey === undefined ? null : Buffer.from(createWithKey);
  return cx.write((): BindResult => {
    const current = cx.dbs.credentials.get(k);
    const now = Date.now();
    if (current === undefined) {
      if (key0 === null) return { ok: false, reason: 'UNKNOWN', record: null };
      if (!cx.dbs.applications.doesExist(key(appId))) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
      const row: CredentialsRecord = {
        appId,
        credentialsId,
        publicKey: key0,
        status: 'IN_USE',
        endpointId,
        createdAt: now,
        updatedAt: now,
      };
      cx.dbs.credentials.put(k, row);
      return { ok: true, record: copyCredentials(row), created: true };
    }
    if (current.status !== 'AVAILABLE') return decideBound(current, endpointId);
    const row: CredentialsRecord = { ...current, status: 'IN_USE', endpointId, updatedAt: now };
    cx.dbs.credentials.put(k, row);
    return { ok: true, record: copyCredentials(row), created: false };
  });
}

export async function revokeCredentials(cx: EmbeddedContext, appId: string, credentialsId: string): Promise<CredentialsRecord | null> {
  if (!validId(appId) || !validId(credentialsId)) return null;
  const k = key(appId, credentialsId);
  return cx.write(() => {
    const current = cx.dbs.credentials.get(k);
    if (current === undefined) return null;
    if (current.status === 'REVOKED') return copyCredentials(current);
    // endpointId is kept: it names the endpoint whose sessions must end.
    const row: CredentialsRecord = { ...current, status: 'REVOKED', updatedAt: Date.now() };
    cx.dbs.credentials.put(k, row);
    return copyCredentials(row);
  });
}
