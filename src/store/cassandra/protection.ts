/**
 * Protection area of the Cassandra store: bans (one partition) and the session control log (one
 * partition per hour).
 *
 * Bans and the session control log use no lightweight transactions: a ban put replaces the whole
 * row (create-or-replace, last writer wins) and a log entry is keyed by its own unique id, so every
 * write is a plain upsert the driver may retry (a retry writes the same row), like every read
 * (statementOptions, context.ts). deleteBan reads, then deletes only a row it saw (no
 * tombstone for a missing ban): two concurrent deletes of one ban may both answer true, which is
 * informational only.
 * - bans is one partition because every process loads the whole list (listBans) at every poll: one
 *   single-partition read, filtered for `now` and sorted here (CQL orders text by UTF-8 bytes).
 *   A ban with an expiry is written with a TTL of expiresAt + EXPIRED_BAN_GRACE_MS, so the
 *   partition holds only bans in force (or lapsed within the grace); MAX_BANS is NOT enforced here,
 *   because counting the partition on every put would read all of it. Expired cells are tombstones
 *   to every read until compacted after gc_grace_seconds, so the table keeps them one day instead of
 *   ten: a replica that missed a deleteBan and is not repaired within a day may bring that ban back
 *   (it fails closed: delete it again). A permanent ban binds expires_at to null (one cell
 *   tombstone) so a replace drops an earlier expiry.
 * - control_log rows carry a TTL of CONTROL_LOG_RETENTION_MS. listControlSince reads the hour
 *   buckets from `since` (but no further back than the retention) up to the hour after the current
 *   one (a writer whose clock is ahead), CONTROL_FANOUT at a time in order, and stops once `limit`
 *   entries are read; an entry more than an hour ahead of the reader's clock is listed only once
 *   that clock catches up.
 * - TTLs are capped so no cell expires after 2038-01-19 (a 32-bit expiry in Cassandra before 5.0:
 *   newer 3.x versions refuse such writes, older ones expire them at once); past the cap a row is
 *   written without a TTL (a ban then ends by the expiresAt filter alone).
 */
import type { BanKind, BanRecord, ControlEntry } from '../store.js';
import { CONTROL_LOG_RETENTION_MS, EXPIRED_BAN_GRACE_MS, banActive, banKey, checkBan, checkControl, compareBans, controlSince, copyBan } from '../common/protection.js';
import { MAX_CQL_LIMIT, type CassandraContext } from './context.js';
import { banFrom, controlFrom } from './rows.js';

/** The one partition of `bans` (see the file comment). */
const BAN_PARTITION = 0;
/** Width of one control_log partition. */
const CONTROL_BUCKET_MS = 3_600_000; // 1 h
/** control_log buckets listControlSince reads at once: a routine poll (the current hour, the one after) is one round trip. */
const CONTROL_FANOUT = 4;
/** Largest TTL Cassandra accepts (20 years), in seconds. */
const MAX_TTL_SEC = 630_720_000;
/**
 * Last cell expiry Cassandra before 5.0 can store (2038-01-19, a signed 32-bit second count), less
 * a day for the difference between our clock and the replicas'.
 */
const MAX_EXPIRY_SEC = 2 ** 31 - 2 - 86_400;

export async function putBan(cx: CassandraContext, ban: BanRecord): Promise<BanRecord> {
  checkBan(ban);
  const row = copyBan(ban);
  // Nulls are bound (not unset) on purpose: this replaces the whole ban, an earlier expiry too.
  const ttl = row.expiresAt === null ? 0 : ttlUntil(row.expiresAt + EXPIRED_BAN_GRACE_MS);
  return cx.guard(async () => {
    const expiresAt = row.expiresAt === null ? null : new Date(row.expiresAt);
    await cx.client.execute(
      cx.q.upsertBan,
      [BAN_PARTITION, row.kind, row.value, row.reason, new Date(row.createdAt), expiresAt, row.createdBy, ttl],
      cx.UPSERT,
    );
    return copyBan(row);
  });
}

export async function deleteBan(cx: CassandraContext, kind: BanKind, value: string): Promise<boolean> {
  const v = banKey(kind, value);
  if (v === null) return false;
  return cx.guard(async () => {
    const found = (await cx.client.execute(cx.q.selectBan, [BAN_PARTITION, kind, v], cx.READ)).first();
    if (!found) return false;
    await cx.client.execute(cx.q.deleteBan, [BAN_PARTITION, kind, v], cx.UPSERT);
    return true;
  });
}

export async function listBans(cx: CassandraContext, now: number): Promise<BanRecord[]> {
  return cx.guard(async () => {
    const out: BanRecord[] = [];
    for await (const row of await cx.client.execute(cx.q.selectBans, [BAN_PARTITION], { ...cx.READ, fetchSize: 1000 })) {
      const b = banFrom(row);
      if (banActive(b, now)) out.push(b);
    }
    return out.sort(compareBans);
  });
}

export async function appendControl(cx: CassandraContext, entry: ControlEntry): Promise<void> {
  checkControl(entry);
  const e = { ...entry };
  const ttl = ttlUntil(Date.now() + CONTROL_LOG_RETENTION_MS);
  await cx.guard(() =>
    cx.client.execute(cx.q.insertControl, [Math.floor(e.at / CONTROL_BUCKET_MS), e.at, e.id, e.type, e.appId, e.keyHash, ttl], cx.UPSERT),
  );
}

export async function listControlSince(cx: CassandraContext, sinceMs: number, limit: number): Promise<ControlEntry[]> {
  const since = controlSince(sinceMs, limit);
  if (since === null) return [];
  return cx.guard(async () => {
    const now = Date.now();
    // Older buckets hold only entries past the retention (expired or about to): not read.
    const first = Math.max(Math.floor(since / CONTROL_BUCKET_MS), Math.floor((now - CONTROL_LOG_RETENTION_MS) / CONTROL_BUCKET_MS));
    const last = Math.floor(now / CONTROL_BUCKET_MS) + 1;
    const out: ControlEntry[] = [];
    for (let b = first; b <= last && out.length < limit; b += CONTROL_FANOUT) {
      const need = limit - out.length;
      const buckets = Array.from({ length: Math.min(CONTROL_FANOUT, last - b + 1) }, (_, i) => b + i);
      const pages = await Promise.all(buckets.map((bucket) => controlRows(cx, bucket, since, need)));
      for (const page of pages) out.push(...page);
    }
    return out.slice(0, limit);
  });
}

/** Entries of one control_log bucket with at >= since, in (at, id) order, at most `limit`. */
async function controlRows(cx: CassandraContext, bucket: number, since: number, limit: number): Promise<ControlEntry[]> {
  const n = Math.min(limit, MAX_CQL_LIMIT);
  const rs = await cx.client.execute(cx.q.selectControl, [bucket, since, n], { ...cx.READ, fetchSize: Math.min(n, 1000) });
  const out: ControlEntry[] = [];
  for await (const row of rs) out.push(controlFrom(row));
  return out;
}

/**
 * TTL in seconds for a cell that should live until `untilMs` (at least 1 s), or 0 (no TTL) when
 * that is beyond what Cassandra can store (see the file comment).
 */
function ttlUntil(untilMs: number): number {
  const nowSec = Math.floor(Date.now() / 1000);
  const ttl = Math.max(1, Math.ceil(untilMs / 1000) - nowSec);
  return ttl > MAX_TTL_SEC || nowSec + ttl > MAX_EXPIRY_SEC ? 0 : ttl;
}
