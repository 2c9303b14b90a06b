/**
 * Notification queue area of the embedded store: `notifications` (appId, keyHash, seq as 16
 * zero-padded decimal digits) -> PendingNotification, so an endpoint's queue is one range in seq
 * order; `notification_seqs` (appId, keyHash) -> the last seq handed out. An enqueue reads and bumps
 * the counter, appends and drops the oldest entries beyond `max` in one write transaction, so
 * concurrent enqueues (from any process) never share a seq. The counter is never removed, so
 * acknowledged seqs are not reused.
 */
import type { PendingNotification } from '../store.js';
import { checkAck, checkEnqueue, copyNotification } from '../common/notifications.js';
import { checkLimit, validId, validKeyHash } from '../common/values.js';
import { key, prefixRange } from './keys.js';
import type { EmbeddedContext } from './lmdb.js';

export async function enqueueNotification(cx: EmbeddedContext, appId: string, keyHash: string, payload: Buffer, max: number): Promise<{ seq: number; dropped: number }> {
  checkEnqueue(appId, keyHash, payload, max);
  const body = Buffer.from(payload);
  const createdAt = Date.now();
  const counter = key(appId, keyHash);
  return cx.write(() => {
    const { notifications, notificationSeqs } = cx.dbs;
    const seq = (notificationSeqs.get(counter) ?? 0) + 1;
    // One pass over the (at most `max`-long) queue: lmdb-js 3 breaks a getKeys iterator that
    // follows getKeysCount on the same database.
    const queued: number[] = [];
    for (const k of notifications.getKeys(prefixRange(appId, keyHash))) queued.push(seqOfKey(k));
    // Drop policy (store.ts): the oldest go so that the new entry fits within `max`.
    const oldest = queued.slice(0, Math.max(0, queued.length + 1 - max));
    notificationSeqs.put(counter, seq);
    notifications.put(notificationKey(appId, keyHash, seq), { seq, payload: body, createdAt });
    for (const old of oldest) notifications.remove(notificationKey(appId, keyHash, old));
    return { seq, dropped: oldest.length };
  });
}

export async function listNotifications(cx: EmbeddedContext, appId: string, keyHash: string, limit: number): Promise<PendingNotification[]> {
  checkLimit(limit);
  if (!validId(appId) || !validKeyHash(keyHash)) return [];
  return cx.read(() => [...cx.dbs.notifications.getRange({ ...prefixRange(appId, keyHash), limit })].map((e) => copyNotification(e.value)));
}

export async function ackNotifications(cx: EmbeddedContext, appId: string, keyHash: string, uptoSeq: number): Promise<void> {
  checkAck(appId, keyHash, uptoSeq);
  if (uptoSeq < 1) return; // seqs start at 1
  const range = prefixRange(appId, keyHash);
  // Exclusive end: the key of seq uptoSeq + 1 (at most 2^53, still 16 digits).
  const end = notificationKey(appId, keyHash, uptoSeq + 1);
  await cx.write(() => {
    const acked: number[] = [];
    for (const k of cx.dbs.notifications.getKeys({ start: range.start, end })) acked.push(seqOfKey(k));
    for (const seq of acked) cx.dbs.notifications.remove(notificationKey(appId, keyHash, seq));
  });
}

// --- keys ---

/** Digits of a seq in a notification key: Number.MAX_SAFE_INTEGER + 1 has 16. */
const SEQ_DIGITS = 16;

/**
 * Key of `notifications`: (appId, keyHash, seq as SEQ_DIGITS zero-padded decimal digits), so the
 * keys of one endpoint are contiguous and ordered by seq.
 */
function notificationKey(appId: string, keyHash: string, seq: number): Buffer {
  return key(appId, keyHash, String(seq).padStart(SEQ_DIGITS, '0'));
}

/** The seq at the end of a `notifications` key (parsed at once: lmdb-js may reuse key buffers). */
function seqOfKey(k: Uint8Array): number {
  return Number(Buffer.from(k.subarray(k.length - SEQ_DIGITS)).toString('latin1'));
}
