/**
 * Protection area of the embedded store (store.ts ProtectionStore): bans and the session control
 * log. `bans` (kind, value) -> BanRecord, read whole by listBans; `control_log` (at as 8 big-endian
 * bytes, then the id) -> ControlEntry, so a range read from `since` is in `at` order with ties in id
 * order. Each append removes up to 64 entries older than CONTROL_LOG_RETENTION_MS; expired bans are
 * removed only when MAX_BANS is reached.
 */
import { LatchkeyError } from '../../errors.js';
import {
  banActive,
  banKey,
  checkBan,
  checkControl,
  compareBans,
  CONTROL_LOG_RETENTION_MS,
  controlSince,
  copyBan,
  copyControl,
  EXPIRED_BAN_GRACE_MS,
  MAX_BANS,
} from '../common/protection.js';
import type { BanKind, BanRecord, ControlEntry } from '../store.js';
import { key } from './keys.js';
import type { EmbeddedContext } from './lmdb.js';

// --- bans ---

export async function putBan(cx: EmbeddedContext, ban: BanRecord): Promise<BanRecord> {
  checkBan(ban);
  const row = copyBan(ban);
  const k = key(row.kind, row.value);
  await cx.write(() => {
    if (!cx.dbs.bans.doesExist(k) && cx.dbs.bans.getCount() >= MAX_BANS) {
      // At the cap, bans long expired make room: automatic bans (flapping, failed handshakes)
      // expire by the thousand and would otherwise fill the cap for good. The scan (every ban)
      // runs only at the cap. Nothing is removed unless the new ban then fits, so this callback
      // still throws only before its first write (see lmdb.ts).
      const cutoff = Date.now() - EXPIRED_BAN_GRACE_MS;
      const expired: Buffer[] = [];
      for (const { key: bk, value } of cx.dbs.bans.getRange({})) {
        if (value.expiresAt !== null && value.expiresAt <= cutoff) expired.push(Buffer.from(bk));
      }
      if (cx.dbs.bans.getCount() - expired.length >= MAX_BANS) throw new LatchkeyError('LK_BAD_ARGUMENT', `at most ${MAX_BANS} bans`);
      for (const bk of expired) cx.dbs.bans.remove(bk);
    }
    cx.dbs.bans.put(k, row);
  });
  return copyBan(row);
}

export async function deleteBan(cx: EmbeddedContext, kind: BanKind, value: string): Promise<boolean> {
  const v = banKey(kind, value);
  if (v === null) return false;
  const k = key(kind, v);
  return cx.write(() => {
    if (!cx.dbs.bans.doesExist(k)) return false;
    cx.dbs.bans.remove(k);
    return true;
  });
}

export async function listBans(cx: EmbeddedContext, now: number): Promise<BanRecord[]> {
  const rows = await cx.read(() => [...cx.dbs.bans.getRange({})].map((e) => copyBan(e.value)));
  // Keys are ordered by kind length first (the length prefix): sort into kind, then value.
  return rows.filter((b) => banActive(b, now)).sort(compareBans);
}

// --- session control log ---

export async function appendControl(cx: EmbeddedContext, entry: ControlEntry): Promise<void> {
  checkControl(entry);
  const row = copyControl(entry);
  const cutoff = controlKey(Math.max(0, Date.now() - CONTROL_LOG_RETENTION_MS), '');
  await cx.write(() => {
    // Retention: the oldest entries go in the same transaction (a few at a time, so no append
    // ever pays for a large backlog).
    const old: Buffer[] = [];
    for (const k of cx.dbs.controlLog.getKeys({ end: cutoff, limit: 64 })) old.push(Buffer.from(k));
    for (const k of old) cx.dbs.controlLog.remove(k);
    cx.dbs.controlLog.put(controlKey(row.at, row.id), row);
  });
}

export async function listControlSince(cx: EmbeddedContext, sinceMs: number, limit: number): Promise<ControlEntry[]> {
  const since = controlSince(sinceMs, limit);
  if (since === null) return [];
  const start = controlKey(since, '');
  return cx.read(() => [...cx.dbs.controlLog.getRange({ start, limit })].map((e) => copyControl(e.value)));
}

/** Key of a control log entry: time first (big-endian), so a range read returns time order. */
function controlKey(at: number, id: string): Buffer {
  const t = Buffer.alloc(8);
  t.writeBigUInt64BE(BigInt(at));
  return Buffer.concat([t, Buffer.from(id, 'utf8')]);
}
