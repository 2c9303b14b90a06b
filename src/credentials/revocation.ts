/**
 * Revocation (Kaa revokeCredentials / notifyRevoked), done so it really ends sessions:
 *
 * 1. the status changes first (store: REVOKED, terminal) and the cached status is deleted;
 * 2. then a `credentials.revoked` message goes on the bus; every node (this one included) ends the
 *    endpoint's live session with DISCONNECT CREDENTIALS_REVOKED and drops its cached status;
 * 3. a handshake that read the old status before step 1 and finishes after step 2 is refused at its
 *    end (the registry remembers recent revocations, see SessionRegistry.revokedSince), so no
 *    session of revoked credentials survives the race.
 * A reconnect then reads REVOKED (cache miss -> store) and is refused before any RSA work.
 */
import type { Logger } from 'pino';
import type { Bus, BusMessage } from '../bus/bus.js';
import type { SessionRegistry } from '../session/registry.js';
import type { Application, CredentialsRecord } from '../store/store.js';
import type { CredentialsGate } from './credentials.js';

export class Revocation {
  private unsubscribe: (() => Promise<void>) | null = null;

  constructor(
    private readonly gate: CredentialsGate,
    private readonly bus: Bus,
    private readonly registry: SessionRegistry,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.bus.subscribe('credentials', (msg) => this.onMessage(msg));
  }

  private async onMessage(msg: BusMessage): Promise<void> {
    if (msg.type !== 'credentials.revoked') return;
    // Another node's change: this node's cache entry (in-process cache) must go too.
    await this.gate.invalidate(msg.appId, msg.credentialsId);
    const ended = this.registry.revoked(msg.appId, msg.credentialsId);
    if (ended) this.log.info({ appId: msg.appId, credentialsId: msg.credentialsId }, 'revoked credentials: session ended');
  }

  /** Revoke through the application's credentials service; null when the credentials are unknown. */
  async revoke(app: Application, credentialsId: string): Promise<CredentialsRecord | null> {
    const rec = await this.gate.revoke(app, credentialsId);
    if (rec) await this.bus.publish('credentials', { type: 'credentials.revoked', appId: app.id, credentialsId });
    return rec;
  }

  /** The status changed in an external credentials store: drop caches and end live sessions. */
  async notifyRevoked(app: Application, credentialsId: string): Promise<void> {
    await this.gate.invalidate(app.id, credentialsId);
    await this.bus.publish('credentials', { type: 'credentials.revoked', appId: app.id, credentialsId });
  }

  async close(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = null;
  }
}
