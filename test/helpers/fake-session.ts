/**
 * A stand-in for Session as the SessionRegistry sees it (id, address, endpoint key, state, times,
 * end(code)), for unit tests of the registry and of what ends sessions through it (revocation,
 * kicks, bans). Like Session, it tells the registry when it opens, establishes and closes, and
 * records every end code it was given.
 */
import crypto from 'node:crypto';
import type { Stats } from '../../src/metrics.js';
import type { SessionRegistry } from '../../src/session/registry.js';
import type { Session, SessionState } from '../../src/session/session.js';

/** What the registry reads of a Session, and an end() that closes back into the registry as Session's does. */
export class FakeSession {
  readonly id = crypto.randomUUID();
  state: SessionState = 'AWAIT_CONNECT';
  establishedAt: number | null = null;
  lastSeen = Date.now();
  keepAliveMs = 30_000;
  app: { id: string } | null = null;
  keyHash: string | null = null;
  claimedKeyHash: string | null = null;
  readonly ended: string[] = [];
  constructor(
    private readonly registry: SessionRegistry,
    private readonly stats: Stats,
    readonly remoteAddress = '127.0.0.1',
  ) {
    registry.opened(this.asSession);
  }
  get asSession(): Session {
    return this as unknown as Session;
  }
  get endpointKey(): string | null {
    return this.app && this.keyHash ? `${this.app.id}/${this.keyHash}` : null;
  }
  establish(appId: string, keyHash: string, at = Date.now()): this {
    this.app = { id: appId };
    this.keyHash = this.claimedKeyHash = keyHash;
    this.state = 'ESTABLISHED';
    this.establishedAt = this.lastSeen = at;
    this.stats.sessionsOpen++;
    this.registry.established(this.asSession);
    return this;
  }
  end(code: string): void {
    if (this.state === 'CLOSED') return;
    this.ended.push(code);
    this.state = 'CLOSED';
    this.registry.closed(this.asSession);
  }
}
