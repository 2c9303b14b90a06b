/** Notification queue checks and copies (store.ts NotificationStore) shared by every Store backend. */
import { LatchkeyError } from '../../errors.js';
import type { PendingNotification } from '../store.js';
import { checkId, checkKeyHash } from './values.js';

/**
 * Largest notification payload a store accepts, in bytes. Notifications are small Avro messages;
 * the bound keeps one Cassandra enqueue (a batch) far below the default batch size limit (50 KiB).
 */
export const MAX_NOTIFICATION_BYTES = 32 * 1024;

/** Validate enqueueNotification arguments before anything is read or written. */
export function checkEnqueue(appId: unknown, keyHash: unknown, payload: unknown, max: unknown): void {
  checkId('application id', appId);
  checkKeyHash(keyHash);
  if (!(payload instanceof Uint8Array)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'notification payload must be a Buffer');
  if (payload.length > MAX_NOTIFICATION_BYTES) {
    throw new LatchkeyError('LK_BAD_ARGUMENT', `notification payload larger than ${MAX_NOTIFICATION_BYTES} bytes`);
  }
  if (!Number.isSafeInteger(max) || (max as number) < 1) throw new LatchkeyError('LK_BAD_ARGUMENT', 'notification queue max must be a positive integer');
}

/** Validate ackNotifications arguments before anything is read or written. */
export function checkAck(appId: unknown, keyHash: unknown, uptoSeq: unknown): void {
  checkId('application id', appId);
  checkKeyHash(keyHash);
  if (!Number.isSafeInteger(uptoSeq)) throw new LatchkeyError('LK_BAD_ARGUMENT', 'notification seq must be a safe integer');
}

export function copyNotification(n: PendingNotification): PendingNotification {
  return { seq: n.seq, payload: Buffer.from(n.payload), createdAt: n.createdAt };
}
