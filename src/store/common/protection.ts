/**
 * Checks and copies for the ProtectionStore area (store.ts: bans, session control log) shared by
 * every backend, so the embedded and Cassandra stores refuse and return exactly the same things.
 */

import { LatchkeyError } from '../../errors.js';
import { parseCidr } from '../../net/ip.js';
import type { BanKind, BanRecord, ControlEntry } from '../store.js';
import { MAX_TIME_MS, validId, validKeyHash } from './values.js';

/** Control log entries are kept this long: far longer than any bus outage a node catches up on. */
export const CONTROL_LOG_RETENTION_MS = 24 * 3600_000; // 24 h
/** Most bans a store holds: the whole list is loaded into every process (a few hundred bytes each). */
export const MAX_BANS = 100_000;
/**
 * A store removes an expired ban no sooner than this after its expiresAt, so a caller whose clock
 * is behind the store's (or who asks about an earlier `now`) still sees it as listBans promises.
 */
export const EXPIRED_BAN_GRACE_MS = 3600_000; // 1 h
export const BAN_KINDS: readonly BanKind[] = ['keyHash', 'ip', 'app'];
const MAX_REASON = 512;

// IP and CIDR values are parsed by protection/ip.ts (one parser for the store and the matcher).
// The store keys IP bans by the value AS GIVEN: callers pass one spelling per address or network
// (BanList normalizes with normalizeIpBan in src/protection/bans.ts).

/**
 * The key a ban of (kind, value) is stored under: the value itself (see parseCidr), or null if it
 * is not a valid value of that kind (or the kind is unknown).
 */
export function banKey(kind: BanKind, value: string): string | null {
  if (kind === 'keyHash') return validKeyHash(value) ? value : null;
  if (kind === 'app') return validId(value) ? value : null;
  if (kind === 'ip') return parseCidr(value) !== null ? value : null;
  return null;
}

export function checkBan(b: BanRecord): void {
  if (!BAN_KINDS.includes(b.kind)) throw new LatchkeyError('LK_BAD_ARGUMENT', `ban kind must be one of ${BAN_KINDS.join(', ')}`);
  if (banKey(b.kind, b.value) === null) throw new LatchkeyError('LK_BAD_ARGUMENT', `ban value is not a valid ${b.kind === 'ip' ? 'IP address or CIDR' : b.kind}`);
  if (typeof b.reason !== 'string' || b.reason.length > MAX_REASON) throw new LatchkeyError('LK_BAD_ARGUMENT', `ban reason: a string of at most ${MAX_REASON} characters`);
  if (typeof b.createdBy !== 'string' || b.createdBy.length > 200) throw new LatchkeyError('LK_BAD_ARGUMENT', 'ban createdBy');
  if (!validTime(b.createdAt)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'ban createdAt');
  if (b.expiresAt !== null && !validTime(b.expiresAt)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'ban expiresAt');
}

export function copyBan(b: BanRecord): BanRecord {
  return { kind: b.kind, value: b.value, reason: b.reason, createdAt: b.createdAt, expiresAt: b.expiresAt ?? null, createdBy: b.createdBy };
}

export function compareBans(a: BanRecord, b: BanRecord): number {
  return a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/** Whether a listed ban is in force at `now` (ProtectionStore.listBans). */
export function banActive(b: BanRecord, now: number): boolean {
  return b.expiresAt === null || b.expiresAt > now;
}

export function checkControl(e: ControlEntry): void {
  if (e.type !== 'revoke' && e.type !== 'kick') throw new LatchkeyError('LK_BAD_ARGUMENT', 'control type');
  if (typeof e.id !== 'string' || !/^[0-9a-f-]{36}$/.test(e.id)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'control id must be a UUID');
  if (!validId(e.appId) || !validId(e.keyHash)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'control appId/keyHash');
  if (!Number.isSafeInteger(e.at) || e.at < 0) throw new LatchkeyError('LK_BAD_ARGUMENT', 'control at');
}

/**
 * listControlSince arguments: the first `at` to return as an integer (entries have integer `at`,
 * so `at >= 1.5` is `at >= 2`), clamped to 0; LK_BAD_ARGUMENT for a bad limit or a non-finite
 * `sinceMs`. Past Number.MAX_SAFE_INTEGER nothing can match: null.
 */
export function controlSince(sinceMs: number, limit: number): number | null {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new LatchkeyError('LK_BAD_ARGUMENT', 'page limit must be a positive integer');
  if (typeof sinceMs !== 'number' || !Number.isFinite(sinceMs)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'sinceMs must be a finite number');
  const since = Math.max(0, Math.ceil(sinceMs));
  return since > Number.MAX_SAFE_INTEGER ? null : since;
}

export function copyControl(e: ControlEntry): ControlEntry {
  return { id: e.id, type: e.type, appId: e.appId, keyHash: e.keyHash, at: e.at };
}

export function compareControl(a: ControlEntry, b: ControlEntry): number {
  return a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function validTime(t: unknown): t is number {
  return Number.isSafeInteger(t) && Math.abs(t as number) <= MAX_TIME_MS;
}
