/**
 * SyncRequest / SyncResponse correlation: request ids, the requests waiting for their answer, each
 * with its timeout, and their rejection when the session ends. Requests outlive sessions (ids keep
 * counting), the answers do not: a session that ends rejects every request still waiting.
 */
import wire from './wire.js';
import type { SyncRequest, SyncResponse } from '../protocol/wire-schemas.js';
import { ClientError } from './errors.js';
import type { SessionLink } from './session-link.js';

/** Sends a SyncRequest filled by `fill` and resolves with its SyncResponse (EndpointClient.sync). */
export type SyncFn = (fill: (req: SyncRequest) => void) => Promise<SyncResponse>;

export function emptyRequest(requestId: number): SyncRequest {
  return { requestId, syncRequestMetaData: null, profileSyncRequest: null, userSyncRequest: null, eventSyncRequest: null };
}

interface Pending {
  resolve: (r: SyncResponse) => void;
  reject: (e: ClientError) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class Requests {
  private nextRequestId = 1;
  private readonly pending = new Map<number, Pending>();

  /** `timeoutMs`: how long a request waits for its SyncResponse. */
  constructor(private readonly timeoutMs: number) {}

  /** Next positive requestId (Avro int; wraps before 2^31). */
  next(): number {
    const id = this.nextRequestId;
    this.nextRequestId = id >= 0x7fffffff ? 1 : id + 1;
    return id;
  }

  /**
   * Send a SyncRequest (requestId is assigned) on `link` and wait for its SyncResponse. Concurrent
   * calls are sealed and sent strictly in counter order (SessionLink.send).
   */
  async sync(link: SessionLink, fill: (req: SyncRequest) => void): Promise<SyncResponse> {
    const req = emptyRequest(this.next());
    fill(req);
    const plaintext = wire.syncRequest.toBuffer(req);
    const response = new Promise<SyncResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(req.requestId);
        reject(new ClientError('LK_SDK_TIMEOUT', `no SyncResponse for request ${req.requestId}`));
      }, this.timeoutMs);
      this.pending.set(req.requestId, { resolve, reject, timer });
    });
    // Handled from the start: if the session ends before the send below settles, the rejection
    // must not surface as an unhandled one in the application (it is rethrown to the caller).
    response.catch(() => undefined);
    const sent = link.send(plaintext);
    try {
      await sent;
    } catch (err) {
      const p = this.pending.get(req.requestId);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(req.requestId);
      }
      void response.catch(() => undefined);
      throw err;
    }
    return response;
  }

  /** The answer to a waiting request: true when `res` was one (and is now delivered to its caller). */
  settle(res: SyncResponse): boolean {
    const p = this.pending.get(res.requestId);
    if (!p) return false;
    this.pending.delete(res.requestId);
    clearTimeout(p.timer);
    p.resolve(res);
    return true;
  }

  /** The session ended: every request still waiting fails with LK_SDK_CLOSED. */
  rejectAll(): void {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new ClientError('LK_SDK_CLOSED', 'session ended'));
    }
    this.pending.clear();
  }
}
