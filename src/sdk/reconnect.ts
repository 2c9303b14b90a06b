/**
 * Automatic reconnect (option `reconnect`): after an unexpected close, and after refusals and close
 * codes in the "reconnect" range, wait a random delay in [0, min(maxDelayMs, minDelayMs * 2^attempt)]
 * ("full jitter", so a fleet that lost its server does not come back in lock-step) and connect
 * again, until an attempt succeeds, fails for good, or maxAttempts is reached. Which closes and
 * refusals qualify is the client's decision; this holds the backoff, its timer and the listeners.
 */
import { Listeners } from './listeners.js';
import type { ClientOptions, ConnectResult, ReconnectOptions } from './types.js';

/** A session that lasted this long resets the reconnect backoff. */
const STABLE_SESSION_MS = 30_000;

export interface ReconnectHooks {
  /** close() was called: no attempt starts. */
  stopped(): boolean;
  /** One attempt (EndpointClient.connect with the last profile). */
  connect(): Promise<ConnectResult>;
}

export class Reconnector {
  /** The result of every automatic attempt. */
  readonly listeners = new Listeners<ConnectResult>();
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly opts: ClientOptions, private readonly hooks: ReconnectHooks) {}

  /** A session that started at `connectedAt` (Date.now()) ended. */
  sessionEnded(connectedAt: number): void {
    // Backoff starts over only after a session that lasted: a server that accepts and then drops
    // the session at once must not be hammered every few hundred milliseconds.
    if (Date.now() - connectedAt >= STABLE_SESSION_MS) this.attempt = 0;
  }

  /** Wait the next backoff delay, then connect; again after each retryable failure. */
  schedule(): void {
    const r: ReconnectOptions = typeof this.opts.reconnect === 'object' ? this.opts.reconnect : {};
    const min = r.minDelayMs ?? 500;
    const max = r.maxDelayMs ?? 30_000;
    if (r.maxAttempts !== undefined && this.attempt >= r.maxAttempts) return;
    const ceiling = Math.min(max, min * 2 ** Math.min(this.attempt, 30));
    const delay = Math.random() * ceiling;
    this.attempt++;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.hooks.stopped()) return;
      this.hooks
        .connect()
        .catch((err: unknown): ConnectResult => ({ ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: String(err), retryable: true }))
        .then((res) => {
          this.listeners.emit(res);
          if (!res.ok && res.retryable && !this.hooks.stopped()) this.schedule();
        });
    }, delay);
  }

  /** close(): the attempt waiting for its delay does not start. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
