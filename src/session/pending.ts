/**
 * Delivery of an endpoint's queued notifications (attach, detach and the other pushes the store
 * holds while it is offline or another node holds it): read a batch from the store through
 * ownership, push each as a SYNC frame in order, acknowledge the last one sent, until the queue is
 * empty. One run at a time per session; a call while one runs makes it look again when done, so a
 * notification enqueued during a run is not left behind.
 */
import type { Logger } from 'pino';
import type { OwnershipService } from '../ownership/ownership.js';
import { decodeSyncResponse } from '../protocol/frames.js';
import type { SyncResponse } from '../protocol/schemas.js';
import type { Application } from '../store/store.js';

/** What delivery needs of its session. */
export interface PendingTarget {
  readonly id: string;
  readonly state: string;
  readonly app: Application | null;
  readonly keyHash: string | null;
  push(res: SyncResponse): boolean;
}

export class PendingDelivery {
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly s: PendingTarget,
    private readonly ownership: OwnershipService,
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
    this.running = (async () => {
      if (atConnect && !(await this.ownership.mayHavePending(appId, keyHash))) return;
      do {
        this.again = false;
        for (;;) {
          const batch = await this.ownership.pending(appId, keyHash, 64);
          if (batch.length === 0) {
            if (!this.again) await this.ownership.markNoPending(appId, keyHash);
            break;
          }
          if (s.state !== 'ESTABLISHED') break;
          for (const n of batch) {
            const decoded = decodeSyncResponse(n.payload);
            if (decoded.ok) s.push(decoded.value);
          }
          if (s.state !== 'ESTABLISHED') break;
          await this.ownership.ack(appId, keyHash, batch[batch.length - 1]!.seq);
        }
      } while (this.again && s.state === 'ESTABLISHED');
    })()
      .catch((err: unknown) => this.log.warn({ err, session: s.id }, 'notification delivery failed; retried at the next notification or connect'))
      .finally(() => {
        this.running = null;
      });
  }
}
