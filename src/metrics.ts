/**
 * Process-wide counters of the gateway. Plain numbers on the hot path (an increment is a property
 * write); exported as JSON on the admin listener's /healthz for now. The Prometheus exposition of
 * issue #3 reads the same object.
 */
export class Stats {
  sessionsOpen = 0;
  handshakesAccepted = 0;
  readonly handshakesRefused = new Map<string, number>();
  readonly sessionsEnded = new Map<string, number>();
  syncRequests = 0;

  refused(code: string): void {
    this.handshakesRefused.set(code, (this.handshakesRefused.get(code) ?? 0) + 1);
  }
  ended(code: string): void {
    this.sessionsEnded.set(code, (this.sessionsEnded.get(code) ?? 0) + 1);
  }
  snapshot(): Record<string, unknown> {
    return {
      sessionsOpen: this.sessionsOpen,
      handshakesAccepted: this.handshakesAccepted,
      handshakesRefused: Object.fromEntries(this.handshakesRefused),
      sessionsEnded: Object.fromEntries(this.sessionsEnded),
      syncRequests: this.syncRequests,
    };
  }
}
