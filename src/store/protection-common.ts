/**
 * Checks and copies for the ProtectionStore area (bans, session control log) shared by every
 * backend, so the embedded and Cassandra stores refuse and return exactly the same things.
 */
import { isIP } from 'node:net';
import { LatchkeyError } from '../errors.js';
import type { BanKind, BanRecord, ControlEntry } from './store.js';
import { validId, validKeyHash } from './store-common.js';

/** Control log entries are kept this long: far longer than any bus outage a node catches up on. */
export const CONTROL_LOG_RETENTION_MS = 24 * 3600_000; // 24 h
/** Most bans a store holds: the whole list is loaded into every process (a few hundred bytes each). */
export const MAX_BANS = 100_000;
export const BAN_KINDS: readonly BanKind[] = ['keyHash', 'ip', 'app'];
const MAX_REASON = 512;

/** Parse an address or CIDR; null if it is neither. The canonical form is what bans are keyed by. */
export function parseCidr(value: string): { family: 4 | 6; address: string; prefix: number } | null {
  const slash = value.indexOf('/');
  const address = slash < 0 ? value : value.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return null;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = value.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return null;
    prefix = Number(p);
    if (prefix > max) return null;
  }
  return { family: family as 4 | 6, address, prefix };
}

export function checkBan(b: BanRecord): void {
  if (!BAN_KINDS.includes(b.kind)) throw new LatchkeyError('LK_BAD_ARGUMENT', `ban kind must be one of ${BAN_KINDS.join(', ')}`);
  const ok = b.kind === 'keyHash' ? validKeyHash(b.value) : b.kind === 'app' ? validId(b.value) : parseCidr(b.value) !== null;
  if (!ok) throw new LatchkeyError('LK_BAD_ARGUMENT', `ban value is not a valid ${b.kind === 'ip' ? 'IP address or CIDR' : b.kind}`);
  if (typeof b.reason !== 'string' || b.reason.length > MAX_REASON) throw new LatchkeyError('LK_BAD_ARGUMENT', `ban reason: a string of at most ${MAX_REASON} characters`);
  if (typeof b.createdBy !== 'string' || b.createdBy.length > 200) throw new LatchkeyError('LK_BAD_ARGUMENT', 'ban createdBy');
  if (!Number.isSafeInteger(b.createdAt)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'ban createdAt');
  if (b.expiresAt !== null && !Number.isSafeInteger(b.expiresAt)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'ban expiresAt');
}

export function copyBan(b: BanRecord): BanRecord {
  return { kind: b.kind, value: b.value, reason: b.reason, createdAt: b.createdAt, expiresAt: b.expiresAt ?? null, createdBy: b.createdBy };
}

export function compareBans(a: BanRecord, b: BanRecord): number {
  return a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function checkControl(e: ControlEntry): void {
  if (e.type !== 'revoke' && e.type !== 'kick') throw new LatchkeyError('LK_BAD_ARGUMENT', 'control type');
  if (typeof e.id !== 'string' || !/^[0-9a-f-]{36}$/.test(e.id)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'control id must be a UUID');
  if (!validId(e.appId) || !validId(e.keyHash)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'control appId/keyHash');
  if (!Number.isSafeInteger(e.at) || e.at < 0) throw new LatchkeyError('LK_BAD_ARGUMENT', 'control at');
}

export function copyControl(e: ControlEntry): ControlEntry {
  return { id: e.id, type: e.type, appId: e.appId, keyHash: e.keyHash, at: e.at };
}

export function compareControl(a: ControlEntry, b: ControlEntry): number {
  return a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
