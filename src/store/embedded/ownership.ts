/**
 * Ownership area of the embedded store: owner attachments, the event classes endpoints listen to,
 * and endpoint access tokens.
 *
 * Ownership: `endpoint_owners` (appId, keyHash) -> OwnerAttachment is the record; `owner_endpoints`
 * (tenantId, ownerExternalId, endpoint digest) -> OwnerAttachment indexes it by owner. The endpoint
 * part of the index key is a SHA-256 digest of key(appId, keyHash), so the key stays short with
 * four ids of up to 500 bytes; listOwnerEndpoints sorts the (small) owner range in memory. Every
 * attach, move and detach changes both in one write transaction, so a moved endpoint is never
 * listed under its old owner.
 *
 * Event classes: `event_classes` (appId, keyHash) -> the declared names; last writer wins.
 *
 * Endpoint access tokens: `access_tokens` (tenantId, base64url token hash) -> the endpoint and
 * expiry, and `endpoint_access_tokens` (appId, keyHash) -> the endpoint's current token (with its
 * tenant), so a rotation removes the old index entry in the same transaction that adds the new one.
 */
import { createHash } from 'node:crypto';
import { LatchkeyError } from '../../errors.js';
import type { ConditionalAttachResult, OwnerAttachment } from '../store.js';
import {
  checkAccessToken,
  checkAttach,
  checkEventClasses,
  compareAttachments,
  copyAccessToken,
  copyOwnerAttachment,
  validTokenHash,
} from '../common/ownership.js';
import { validId, validKeyHash } from '../common/values.js';
import { key, prefixRange } from './keys.js';
import { nullable, type EmbeddedContext, type StoredAccessToken, type TokenIndexRow } from './lmdb.js';

// --- owner attachments ---

export async function attachEndpointToOwner(cx: EmbeddedContext, tenantId: string, ownerExternalId: string, appId: string, keyHash: string): Promise<{ previousOwner: string | null }> {
  const out = await attach(cx, tenantId, ownerExternalId, appId, keyHash, false);
  if (!out.ok) throw new LatchkeyError('LK_STORE_UNAVAILABLE', 'unconditional attach was refused'); // unreachable
  return { previousOwner: out.previousOwner };
}

export async function attachEndpointIfUnownedOrSameOwner(cx: EmbeddedContext, tenantId: string, ownerExternalId: string, appId: string, keyHash: string): Promise<ConditionalAttachResult> {
  return attach(cx, tenantId, ownerExternalId, appId, keyHash, true);
}

export async function getEndpointOwner(cx: EmbeddedContext, appId: string, keyHash: string): Promise<OwnerAttachment | null> {
  if (!validId(appId) || !validKeyHash(keyHash)) return null;
  return cx.read(() => nullable(cx.dbs.endpointOwners.get(key(appId, keyHash)), copyOwnerAttachment));
}

export async function detachEndpoint(cx: EmbeddedContext, appId: string, keyHash: string): Promise<string | null> {
  if (!validId(appId) || !validKeyHash(keyHash)) return null;
  const k = key(appId, keyHash);
  return cx.write(() => {
    const current = cx.dbs.endpointOwners.get(k);
    if (current === undefined) return null;
    cx.dbs.endpointOwners.remove(k);
    cx.dbs.ownerEndpoints.remove(ownerIndexKey(current));
    return current.ownerExternalId;
  });
}

export async function listOwnerEndpoints(cx: EmbeddedContext, tenantId: string, ownerExternalId: string): Promise<OwnerAttachment[]> {
  if (!validId(tenantId) || !validId(ownerExternalId)) return [];
  return cx.read(() =>
    [...cx.dbs.ownerEndpoints.getRange(prefixRange(tenantId, ownerExternalId))].map((e) => copyOwnerAttachment(e.value)).sort(compareAttachments),
  );
}

/**
 * Attach in one write transaction: the owner record and both index entries (old owner's removed,
 * new owner's added) change together. `conditional`: refuse an endpoint owned by someone else.
 */
async function attach(
  cx: EmbeddedContext,
  tenantId: string,
  ownerExternalId: string,
  appId: string,
  keyHash: string,
  conditional: boolean,
): Promise<ConditionalAttachResult> {
  checkAttach(tenantId, ownerExternalId, appId, keyHash);
  const k = key(appId, keyHash);
  return cx.write((): ConditionalAttachResult => {
    const app = cx.dbs.applications.get(key(appId));
    if (app === undefined || app.tenantId !== tenantId) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
    const current = cx.dbs.endpointOwners.get(k);
    if (current !== undefined) {
      if (current.tenantId === tenantId && current.ownerExternalId === ownerExternalId) return { ok: true, previousOwner: ownerExternalId };
      if (conditional) return { ok: false, currentOwner: current.ownerExternalId };
    }
    const row: OwnerAttachment = { tenantId, ownerExternalId, appId, keyHash, attachedAt: Date.now() };
    if (current !== undefined) cx.dbs.ownerEndpoints.remove(ownerIndexKey(current));
    cx.dbs.endpointOwners.put(k, row);
    cx.dbs.ownerEndpoints.put(ownerIndexKey(row), row);
    return { ok: true, previousOwner: current?.ownerExternalId ?? null };
  });
}

// --- event classes ---

export async function setEventClasses(cx: EmbeddedContext, appId: string, keyHash: string, classes: string[]): Promise<void> {
  checkEventClasses(appId, keyHash, classes);
  const list = [...classes];
  await cx.write(() => {
    cx.dbs.eventClasses.put(key(appId, keyHash), list);
  });
}

export async function getEventClasses(cx: EmbeddedContext, appId: string, keyHash: string): Promise<string[] | null> {
  if (!validId(appId) || !validKeyHash(keyHash)) return null;
  return cx.read(() => {
    const v = cx.dbs.eventClasses.get(key(appId, keyHash));
    return v === undefined ? null : [...v];
  });
}

// --- endpoint access tokens ---

export async function setEndpointAccessToken(cx: EmbeddedContext, appId: string, keyHash: string, tokenHash: Buffer, expiresAt: number): Promise<void> {
  checkAccessToken(appId, keyHash, tokenHash, expiresAt);
  const hash = Buffer.from(tokenHash);
  const k = key(appId, keyHash);
  await cx.write(() => {
    const { applications, accessTokens, endpointAccessTokens } = cx.dbs;
    const now = Date.now();
    const app = applications.get(key(appId));
    if (app === undefined) throw new LatchkeyError('LK_APP_NOT_FOUND', appId);
    const tk = tokenKey(app.tenantId, hash);
    const holder = accessTokens.get(tk);
    const mine = (h: TokenIndexRow) => h.appId === appId && h.keyHash === keyHash;
    if (holder !== undefined && !mine(holder) && now < holder.expiresAt) {
      throw new LatchkeyError('LK_CONFLICT', 'another endpoint of the tenant holds this access token');
    }
    const previous = endpointAccessTokens.get(k);
    if (previous !== undefined) {
      const pk = tokenKey(previous.tenantId, Buffer.from(previous.tokenHash));
      // The old entry goes unless it is the one being set, or another endpoint took it over
      // after it expired (then it is that endpoint's now).
      const old = pk.equals(tk) ? undefined : accessTokens.get(pk);
      if (old !== undefined && mine(old)) accessTokens.remove(pk);
    }
    accessTokens.put(tk, { appId, keyHash, expiresAt });
    const row: StoredAccessToken = { ...copyAccessToken({ appId, keyHash, tokenHash: hash, expiresAt, updatedAt: now }), tenantId: app.tenantId };
    endpointAccessTokens.put(k, row);
  });
}

export async function findEndpointByAccessToken(cx: EmbeddedContext, tenantId: string, tokenHash: Buffer, now: number): Promise<{ appId: string; keyHash: string } | null> {
  if (!Number.isFinite(now)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'now must be a finite number');
  if (!validId(tenantId) || !validTokenHash(tokenHash)) return null;
  const hash = Buffer.from(tokenHash);
  return cx.read(() => {
    const row = cx.dbs.accessTokens.get(tokenKey(tenantId, hash));
    if (row === undefined || now >= row.expiresAt) return null;
    // Defensive: the entry must still be its endpoint's current token.
    const current = cx.dbs.endpointAccessTokens.get(key(row.appId, row.keyHash));
    if (current === undefined || !Buffer.from(current.tokenHash).equals(hash)) return null;
    return { appId: row.appId, keyHash: row.keyHash };
  });
}

// --- keys ---

/**
 * Key of `owner_endpoints`: (tenantId, ownerExternalId, digest of key(appId, keyHash)). The digest
 * (43 base64url characters) keeps the key under LMDB's limit however long the four ids are.
 */
function ownerIndexKey(o: OwnerAttachment): Buffer {
  const digest = createHash('sha256').update(key(o.appId, o.keyHash)).digest('base64url');
  return key(o.tenantId, o.ownerExternalId, digest);
}

/** Key of `access_tokens`: (tenantId, base64url token hash). */
function tokenKey(tenantId: string, tokenHash: Buffer): Buffer {
  return key(tenantId, tokenHash.toString('base64url'));
}
