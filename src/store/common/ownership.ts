/**
 * Ownership checks and copies (store.ts OwnershipStore: owner attachments, event classes, endpoint
 * access tokens) shared by every Store backend, so they refuse, order and return the same things.
 */
import { LatchkeyError } from '../../errors.js';
import type { EndpointAccessTokenRecord, OwnerAttachment } from '../store.js';
import { checkId, checkKeyHash, MAX_TIME_MS } from './values.js';

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

export function copyOwnerAttachment(o: OwnerAttachment): OwnerAttachment {
  return {
    tenantId: o.tenantId,
    ownerExternalId: o.ownerExternalId,
    appId: o.appId,
    keyHash: o.keyHash,
    attachedAt: o.attachedAt,
  };
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

export function copyAccessToken(t: EndpointAccessTokenRecord): EndpointAccessTokenRecord {
  return {
    appId: t.appId,
    keyHash: t.keyHash,
    tokenHash: Buffer.from(t.tokenHash),
    expiresAt: t.expiresAt,
    updatedAt: t.updatedAt,
  };
}
