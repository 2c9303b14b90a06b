/**
 * Notifications area of the Cassandra store: each endpoint's notification queue, one partition of
 * notification_queue with its head row.
 *
 * Notification queues: every removal (ack or trim) takes the OLDEST entries, so an endpoint's live
 * entries are always the seqs head_seq + 1 .. last_seq of its partition, and the head row (seq 0)
 * says where they start. Reads never look below head_seq: the head is a point read, listing reads
 * `seq > head_seq`, and an enqueue or ack decides from the head alone (count = last_seq - head_seq)
 * without reading any entry. Removed entries are row tombstones until gc_grace_seconds pass and a
 * compaction drops them, all below head_seq, outside every slice read (the earlier design read
 * the queue from its start: enqueue + ack went from 13.8 to 29.4 ms over 3,000 cycles on one
 * endpoint against a 2.2 server, and Cassandra 3.x/4.x fail a read past 100,000 tombstones).
 * - An enqueue is one conditional batch on the endpoint's partition: the head moves from
 *   (last, head) to (last + 1, head + dropped) IF it still is (last, head) (IF NOT EXISTS for the
 *   first), the new row at seq last + 1, and the deletes of the `dropped` oldest rows (at most
 *   DROP_IN_BATCH of them; a larger trim, which needs `max` to shrink by that much, removes the
 *   rest right after in conditional batches of its own, rows that are already invisible). Of
 *   concurrent enqueues and acks exactly one applies per head state; losers re-read the head and
 *   retry with jittered backoff, at most SEQ_ATTEMPTS times. `dropped` counts exactly the entries
 *   this call's head move removed. last_seq never decreases, so acknowledged seqs are not reused.
 * - An ack moves head_seq up to min(uptoSeq, last_seq) in steps of ACK_CHUNK, each a conditional
 *   batch (IF head_seq = the value read) with the deletes of the rows it passes. Deletes are
 *   never plain writes: the rows were written by Paxos with ballot timestamps (increasing per
 *   partition), and a delete inside a later conditional batch is ordered after them whatever the
 *   client clocks say. A delete that was lost anyway (a leftover of an interrupted trim) leaves a
 *   live row below head_seq: stored, never listed.
 * - An enqueue whose outcome is unknown is decided by a serial read of its row's write_id; if a
 *   concurrent trim or ack removed the row before that read, it is retried: delivery is at least
 *   once in that corner.
 * - The table keeps tombstones one day (gc_grace_seconds), not ten: a replica that missed a delete
 *   and brings the row back after that can only bring back a row below head_seq, which no read
 *   returns (the head row itself is only ever updated, never deleted).
 */
import { types } from 'cassandra-driver';
import { LatchkeyError } from '../../errors.js';
import type { PendingNotification } from '../store.js';
import { checkAck, checkEnqueue } from '../common/notifications.js';
import { checkLimit, validId, validKeyHash } from '../common/values.js';
import { MAX_CQL_LIMIT, type CassandraContext } from './context.js';
import { backoff, casBatch, sameId, serialRow } from './lwt.js';
import { bytes, long, ms } from './rows.js';

/**
 * Attempts at a notification enqueue or ack: every concurrent enqueue of one endpoint contends for
 * the same last_seq, and each round only one wins, so this is well above the concurrency expected
 * per endpoint (a few notifications at once).
 */
const SEQ_ATTEMPTS = 64;
/** Most rows one ack batch deletes (the head moves by at most this much per batch). */
const ACK_CHUNK = 64;
/** Most rows an enqueue's batch deletes; a larger trim removes the rest in batches after it. */
const DROP_IN_BATCH = 16;
/** seq of the head row of a notification queue (notifications are 1 and up). */
const HEAD_ROW = 0;

export async function enqueueNotification(
  cx: CassandraContext,
  appId: string,
  keyHash: string,
  payload: Buffer,
  max: number,
): Promise<{ seq: number; dropped: number }> {
  checkEnqueue(appId, keyHash, payload, max);
  const body = Buffer.from(payload);
  const createdAt = new Date();
  const writeId = types.Uuid.random();
  return cx.guard(async () => {
    for (let attempt = 0; attempt < SEQ_ATTEMPTS; attempt++) {
      if (attempt > 0) await backoff(attempt);
      // The serial read completes any enqueue or ack in flight, so the head is current.
      const head = await queueHead(cx, appId, keyHash, true);
      const last = head?.last ?? 0;
      const first = head?.head ?? 0;
      // Drop policy (store.ts): the oldest go so that the new entry fits within `max`. The live
      // entries are exactly first + 1 .. last (see the file comment).
      const dropped = Math.max(0, last - first + 1 - max);
      const seq = last + 1;
      const inBatch = Math.min(dropped, DROP_IN_BATCH);
      const out = await casBatch(cx, [
        head === null
          ? { query: cx.q.insertQueueHead, params: [appId, keyHash, HEAD_ROW, seq, first + dropped] }
          : { query: cx.q.advanceQueueHead, params: [seq, first + dropped, appId, keyHash, HEAD_ROW, last, first] },
        { query: cx.q.insertQueued, params: [appId, keyHash, seq, body, createdAt, writeId] },
        ...Array.from({ length: inBatch }, (_, i) => ({ query: cx.q.deleteQueued, params: [appId, keyHash, first + 1 + i] })),
      ]);
      let applied = out !== 'unknown' && out.applied;
      if (out === 'unknown') {
        const row = await serialRow(cx, cx.q.selectQueuedWriteId, [appId, keyHash, seq]);
        applied = row !== null && sameId(row, writeId);
      }
      if (applied) {
        // Rows the batch had no room to delete are below the head already: never listed.
        if (dropped > inBatch) await purgeQueued(cx, appId, keyHash, first + inBatch + 1, first + dropped);
        return { seq, dropped };
      }
    }
    throw new LatchkeyError('LK_STORE_UNAVAILABLE', `notification queue of endpoint ${keyHash} kept changing during enqueue`);
  });
}

export async function listNotifications(cx: CassandraContext, appId: string, keyHash: string, limit: number): Promise<PendingNotification[]> {
  checkLimit(limit);
  if (!validId(appId) || !validKeyHash(keyHash)) return [];
  return cx.guard(async () => {
    const head = await queueHead(cx, appId, keyHash, false);
    if (head === null) return [];
    const n = Math.min(limit, MAX_CQL_LIMIT);
    const out: PendingNotification[] = [];
    // From just past the head: the removed entries (tombstones) are all below it.
    const rs = await cx.client.execute(cx.q.selectQueued, [appId, keyHash, head.head, n], { ...cx.READ, fetchSize: Math.min(n, 1000) });
    for await (const row of rs) {
      out.push({ seq: long(row.get('seq')) ?? 0, payload: bytes(row.get('payload')) ?? Buffer.alloc(0), createdAt: ms(row.get('created_at')) });
    }
    return out;
  });
}

export async function ackNotifications(cx: CassandraContext, appId: string, keyHash: string, uptoSeq: number): Promise<void> {
  checkAck(appId, keyHash, uptoSeq);
  if (uptoSeq < 1) return; // seqs start at 1
  return cx.guard(async () => {
    let head = await queueHead(cx, appId, keyHash, true);
    for (let lost = 0; lost < SEQ_ATTEMPTS; ) {
      if (head === null) return; // nothing was ever queued
      const target = Math.min(uptoSeq, head.last);
      if (target <= head.head) return;
      const from = head.head;
      const step = Math.min(target, from + ACK_CHUNK);
      const out = await casBatch(cx, [
        { query: cx.q.moveQueueHead, params: [step, appId, keyHash, HEAD_ROW, from] },
        ...Array.from({ length: step - from }, (_, i) => ({ query: cx.q.deleteQueued, params: [appId, keyHash, from + 1 + i] })),
      ]);
      if (out !== 'unknown' && out.applied) {
        head = { last: head.last, head: step };
        continue;
      }
      // Not applied (a concurrent enqueue or ack moved the head) or unknown: the serial read
      // shows where the head is now.
      lost++;
      await backoff(lost);
      head = await queueHead(cx, appId, keyHash, true);
    }
    throw new LatchkeyError('LK_STORE_UNAVAILABLE', `notification queue of endpoint ${keyHash} kept changing during ack`);
  });
}

/** The head row of an endpoint's queue, or null if nothing was ever queued. A point read. */
async function queueHead(
  cx: CassandraContext,
  appId: string,
  keyHash: string,
  serial: boolean,
): Promise<{ last: number; head: number } | null> {
  const row = (await cx.client.execute(cx.q.selectQueueHead, [appId, keyHash, HEAD_ROW], serial ? cx.SERIAL_READ : cx.READ)).first();
  if (!row) return null;
  return { last: long(row.get('last_seq')) ?? 0, head: long(row.get('head_seq')) ?? 0 };
}

/**
 * Delete the rows from..to of a queue, all already below its head (the rest of a large trim).
 * Conditional batches (IF EXISTS) of the rows a bounded read finds, so each delete is ordered
 * after the Paxos write of its row. Best effort: a row left behind is never listed.
 */
async function purgeQueued(cx: CassandraContext, appId: string, keyHash: string, from: number, to: number): Promise<void> {
  try {
    for (let a = from; a <= to; a += ACK_CHUNK) {
      const b = Math.min(to, a + ACK_CHUNK - 1);
      const seqs: number[] = [];
      const rs = await cx.client.execute(cx.q.selectQueuedSeqsBetween, [appId, keyHash, a - 1, b], { ...cx.READ, fetchSize: ACK_CHUNK });
      for await (const row of rs) seqs.push(long(row.get('seq')) ?? 0);
      if (seqs.length > 0) await casBatch(cx, seqs.map((seq) => ({ query: cx.q.deleteQueuedIfExists, params: [appId, keyHash, seq] })));
    }
  } catch {
    // See above.
  }
}
