/**
 * Value checks every area of the store shares, whatever the backend: ids, endpoint key hashes,
 * times, page limits and page cursors, and storeError (a backend failure as LK_STORE_UNAVAILABLE).
 * The area rules in this folder build on them.
 */
import { LatchkeyError } from '../../errors.js';

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

/** Largest |time| a Date (and so a Cassandra timestamp written from JS) can hold, in ms. */
export const MAX_TIME_MS = 8.64e15;

export function checkTime(what: string, t: unknown): void {
  if (!Number.isSafeInteger(t) || Math.abs(t as number) > MAX_TIME_MS) {
    throw new LatchkeyError('LK_BAD_ARGUMENT', `${what} must be an integer time in milliseconds`);
  }
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

/** A backend failure as LK_STORE_UNAVAILABLE with the cause attached (a LatchkeyError passes through as it is). */
export function storeError(err: unknown, detail?: string): LatchkeyError {
  if (err instanceof LatchkeyError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new LatchkeyError('LK_STORE_UNAVAILABLE', detail ? `${detail}: ${msg}` : msg, { cause: err });
}
