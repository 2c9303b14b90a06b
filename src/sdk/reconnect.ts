/**
 * Automatic reconnect (option `reconnect`): after an unexpected close, and after refusals and close
 * codes in the "reconnect" range, wait a random delay in [0, min(maxDelayMs, minDelayMs * 2^attempt)]
 * ("full jitter", so a fleet that lost its server does not come back in lock-step) and connect
 * again, until an attempt succeeds, fails for good, or maxAttempts is reached. A server that was busy
 * may name the delay itself (a paced refusal, docs/protocol.md 1.1): that delay replaces the backoff
 * step. Which closes and refusals qualify is the client's decision; this holds the backoff, its
 * timer and the listeners.
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
  /** Backoff steps taken (the exponent); paced retries do not step it. */
  private attempt = 0;
  /** Attempts scheduled since the last lasting session, paced ones included (maxAttempts). */
  private tries = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly opts: ClientOptions, private readonly hooks: ReconnectHooks) {}

  /** A session that started at `connectedAt` (Date.now()) ended. */
  sessionEnded(connectedAt: number): void {
    // Backoff starts over only after a session that lasted: a server that accepts and then drops
    // the session at once must not be hammered every few hundred milliseconds.
    if (Date.now() - connectedAt >= STABLE_SESSION_MS) this.attempt = this.tries = 0;
  }

  /**
   * Wait the next backoff delay, then connect; again after each retryable failure. `retryAfterMs`:
   * the server's return time (a paced refusal), waited instead of the backoff delay (with 5 %
   * jitter) and not counted as a backoff step: the server already spreads its endpoints.
   */
  schedule(retryAfterMs?: number): void {
    const r: ReconnectOptions = typeof this.opts.reconnect === 'object' ? this.opts.reconnect : {};
    const min = r.minDelayMs ?? 500;
    const max = r.maxDelayMs ?? 30_000;
    if (r.maxAttempts !== undefined && this.tries >= r.maxAttempts) return;
    this.tries++;
    let delay: number;
    if (retryAfterMs !== undefined) delay = retryAfterMs * (1 + 0.05 * Math.random());
    else {
      delay = Math.random() * Math.min(max, min * 2 ** Math.min(this.attempt, 30));
      this.attempt++;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.hooks.stopped()) return;
      this.hooks
        .connect()
        .catch((err: unknown): ConnectResult => ({ ok: false, kind: 'failed', code: 'LK_SDK_CONNECTION_FAILED', detail: String(err), retryable: true }))
        .then((res) => {
          this.listeners.emit(res);
          if (!res.ok && res.retryable && !this.hooks.stopped()) this.schedule(res.kind === 'failed' ? res.retryAfterMs : undefined);
        });
    }, delay);
  }

  /** close(): the attempt waiting for its delay does not start. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** The longest return time the SDK honours (a server's busyRetryMaxSec is at most 3,600 s). */
const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * A paced refusal's return time (docs/protocol.md 1.1): a close code of the reconnect range whose
 * reason is a catalogue code, a space and `retryAfterMs=<decimal>`; null for any other close.
 */
export function pacedRetryAfterMs(code: number, reason: string): number | null {
  if (code < 4000 || code > 4499) return null;
  const m = /^LK_[A-Z0-9_]+ retryAfterMs=(\d{1,10})$/.exec(reason);
  return m ? Math.min(MAX_RETRY_AFTER_MS, Number(m[1])) : null;
}
