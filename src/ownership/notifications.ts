/**
 * The notification outbox: every server push to one endpoint (attach and detach notices, the pushes
 * ownership makes) goes through here, from the durable queue to the SYNC frames that carry it.
 *
 *   send(): queue it in the store (so nothing is lost if the endpoint is offline or its node misses
 *     the bus message), clear the "nothing pending" mark, then announce it (`announce`: to the node
 *     holding the endpoint's session, control/routing.ts).
 *   delivery(target): the endpoint's session (on whichever node got the announcement, or at its next
 *     CONNECT) reads the queue in batches, pushes each notification in order, and acknowledges the
 *     last one sent, until the queue is empty.
 *
 * The "nothing pending" mark in the cache spares every CONNECT a store read (measured: ~50 µs of
 * event loop per handshake in bench/handshake). A miss (evicted, restarted, cache down) means
 * "maybe", so the store is asked: never a lost notification.
 */
import type { Logger } from 'pino';
import type { Cache } from '../cache/cache.js';
import { decodeSyncResponse } from '../protocol/frames.js';
import { types, type SyncResponse } from '../protocol/schemas.js';
import type { Application, NotificationStore } from '../store/store.js';

/** Most queued notifications per offline endpoint; older ones are dropped beyond it. */
export const MAX_PENDING_NOTIFICATIONS = 256;
/** How long "no queued notifications" is remembered per endpoint. */
const NO_PENDING_TTL_MS = 10 * 60_000; // 10 min
/** Notifications read from the store per batch of a delivery. */
const BATCH = 64;

/** What a delivery needs of the endpoint's session. */
export interface OutboxTarget {
  readonly id: string;
  readonly state: string;
  readonly app: Application | null;
  readonly keyHash: string | null;
  push(res: SyncResponse): boolean;
}

export class NotificationOutbox {
  constructor(
    private readonly store: NotificationStore,
    private readonly cache: Cache,
    private readonly log: Logger,
    /** Tell the node holding the endpoint's session (or every node) that its queue has something. */
    private readonly announce: (appId: string, keyHash: string) => Promise<void>,
  ) {}

  /** Queue a push for the endpoint durably, then announce it. */
  async send(appId: string, keyHash: string, res: SyncResponse): Promise<void> {
    const payload = types.syncResponse.toBuffer(res);
    const { dropped } = await this.store.enqueueNotification(appId, keyHash, payload, MAX_PENDING_NOTIFICATIONS);
    if (dropped > 0) this.log.warn({ appId, keyHash, dropped }, 'notification queue full: oldest notifications dropped');
    // Before the announcement: a connect from now on must look at the queue. If this delete fails
    // (cache down), a connected endpoint still gets the announcement, and an offline one finds the
    // queue once the mark expires (NO_PENDING_TTL_MS).
    try {
      await this.cache.delete(pendingKey(appId, keyHash));
    } catch (err) {
      this.log.warn({ err, appId, keyHash }, 'cache unavailable: queued notification may wait for the next announcement');
    }
    await this.announce(appId, keyHash);
  }

  /** Whether the endpoint may have queued notifications (false only when the cache says it has none). */
  async mayHavePending(appId: string, keyHash: string): Promise<boolean> {
    try {
      return (await this.cache.get(pendingKey(appId, keyHash))) !== '0';
    } catch {
      return true;
    }
  }

  /** The queue was found empty: remember it for a while (see mayHavePending). */
  async markNoPending(appId: string, keyHash: string): Promise<void> {
    try {
      await this.cache.set(pendingKey(appId, keyHash), '0', NO_PENDING_TTL_MS);
    } catch {
      // A miss only costs a store read at the next connect.
    }
  }

  pending(appId: string, keyHash: string, limit: number) {
    return this.store.listNotifications(appId, keyHash, limit);
  }

  ack(appId: string, keyHash: string, uptoSeq: number): Promise<void> {
    return this.store.ackNotifications(appId, keyHash, uptoSeq);
  }

  /** The delivery of one session's queue (one per session: see OutboxDelivery). */
  delivery(target: OutboxTarget): OutboxDelivery {
    return new OutboxDelivery(target, this, this.log);
  }
}

function pendingKey(appId: string, keyHash: string): string {
  return `pending:${appId}:${keyHash}`;
}

/**
 * One session's delivery: one run at a time; a call while one runs makes it look again when done,
 * so a notification queued during a run is not left behind.
 */
export class OutboxDelivery {
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly s: OutboxTarget,
    private readonly outbox: NotificationOutbox,
    private readonly log: Logger,
  ) {}

  /** `atConnect`: the first run of a session, which may skip the store when the cache says the queue is empty. */
  run(atConnect = false): void {
    if (this.running) {
      this.again = true;
      return;
    }
    const s = this.s;
    const appId = s.app!.id;
    const keyHash = s.keyHash!;
    const outbox = this.outbox;
    this.running = (async () => {
      if (atConnect && !(await outbox.mayHavePending(appId, keyHash))) return;
      do {
        this.again = false;
        for (;;) {
          const batch = await outbox.pending(appId, keyHash, BATCH);
          if (batch.length === 0) {
            if (!this.again) await outbox.markNoPending(appId, keyHash);
            break;
          }
          if (s.state !== 'ESTABLISHED') break;
          for (const n of batch) {
            const decoded = decodeSyncResponse(n.payload);
            if (decoded.ok) s.push(decoded.value);
          }
          if (s.state !== 'ESTABLISHED') break;
          await outbox.ack(appId, keyHash, batch[batch.length - 1]!.seq);
        }
      } while (this.again && s.state === 'ESTABLISHED');
    })()
      .catch((err: unknown) => this.log.warn({ err, session: s.id }, 'notification delivery failed; retried at the next notification or connect'))
      .finally(() => {
        this.running = null;
      });
  }
}
