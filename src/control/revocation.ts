/**
 * Revocation (Kaa revokeCredentials / notifyRevoked), done so it really ends sessions and is never
 * forgotten:
 *
 * 1. the status changes first (the credentials service: REVOKED, terminal); if that fails nothing
 *    happened and the caller gets the error;
 * 2. then SessionControl (control/session-control.ts) ends the endpoint's session on this node at
 *    once, writes the revocation to the store's control log and publishes it on the bus; every other
 *    node ends its session from the bus in milliseconds, or from the log within controlPollMs when
 *    the bus is down, and drops its cached status;
 * 3. a handshake that read the old status and finishes later is refused at its end (the registry
 *    remembers revocations, see SessionRegistry.recentlyRevokedKey), so no session of revoked
 *    credentials survives the race.
 * A reconnect then reads REVOKED (cache miss -> store) and is refused before any RSA work.
 */
import type { Propagation, SessionControl } from './session-control.js';
import type { Application, CredentialsRecord } from '../store/store.js';
import type { CredentialsGate } from '../credentials/credentials.js';

export class Revocation {
  constructor(
    private readonly gate: CredentialsGate,
    private readonly control: SessionControl,
  ) {}

  /**
   * Revoke through the application's credentials service; null when the credentials are unknown.
   * `propagation` says how far the session kick got (the REVOKED status itself is committed).
   */
  async revoke(app: Application, credentialsId: string): Promise<{ record: CredentialsRecord; propagation: Propagation } | null> {
    const record = await this.gate.revoke(app, credentialsId);
    if (!record) return null;
    return { record, propagation: await this.control.revoke(app.id, credentialsId) };
  }

  /** The status changed in an external credentials store: drop caches and end live sessions. */
  notifyRevoked(app: Application, credentialsId: string): Promise<Propagation> {
    return this.control.revoke(app.id, credentialsId);
  }
}
