/**
 * Session resumption, the endpoint's side (docs/protocol.md 4.6): keep the newest ticket with the
 * resumption secret of the session that gave it, and say which refusals of a RESUME mean "forget
 * the ticket and do a full CONNECT now". hello.ts builds the RESUME frame.
 *
 * Everything here lives in memory only: a ticket plus its secret lets anyone holding both resume
 * as this endpoint until the ticket expires or the credentials are revoked, so the SDK never
 * writes them anywhere. A new client (a restarted process, a reloaded page) starts with a full
 * handshake.
 */
import wire from './wire.js';
import { FRAME } from './constants.js';

/**
 * Refusals of a RESUME after which the endpoint forgets its ticket and sends a full CONNECT on a
 * new socket at once, without backoff (4.6 "After a refusal": the server did no expensive work).
 * LK_TICKET_* covers INVALID, EXPIRED, KEY_RETIRED and WRONG_APP. A stale timestamp or a replayed
 * nonce would fail the CONNECT the same way only if the clock is wrong; the CONNECT's answer is
 * then what the caller sees. Every other code is handled as after a CONNECT (terminal stays
 * terminal: a revoked endpoint must not fall back).
 */
export function fallsBackToConnect(errorCode: string | null): boolean {
  if (!errorCode) return false;
  return errorCode.startsWith('LK_TICKET_') || errorCode === 'LK_RESUME_DISABLED' || errorCode === 'LK_RESUME_BAD_PROOF' || errorCode === 'LK_HS_STALE_TIMESTAMP' || errorCode === 'LK_HS_REPLAYED_NONCE';
}

export interface HeldTicket {
  ticket: Uint8Array;
  /** The resumption secret of the session that gave the ticket. */
  secret: Uint8Array;
  /** Local clock, ms: received + lifetimeSec. */
  expiresAt: number;
}

export const TICKETREQ_FRAME = new Uint8Array([FRAME.TICKETREQ]);

/** The newest ticket of this client and the secret it resumes with. */
export class TicketHolder {
  private held: HeldTicket | null = null;
  /** The current session's resumption secret, waiting for its TICKET. */
  private sessionSecret: Uint8Array | null = null;

  constructor(private readonly now: () => number) {}

  /** A session was accepted (full or resumed): its tickets carry `secret`. Send TICKETREQ_FRAME next. */
  sessionAccepted(secret: Uint8Array): void {
    this.sessionSecret = secret;
  }

  /**
   * A TICKET frame (type byte included) arrived in the current session. Keeps it as the newest
   * ticket, or none at all when lifetimeSec is 0 (the server does not resume). False when the frame
   * does not decode; a TICKET that was not asked for is ignored.
   */
  onTicket(frame: Uint8Array): boolean {
    let t: { ticket: Uint8Array; lifetimeSec: number };
    try {
      t = wire.ticket.fromBuffer(frame.subarray(1));
    } catch {
      return false;
    }
    const secret = this.sessionSecret;
    if (!secret) return true;
    this.sessionSecret = null;
    this.forget();
    if (t.lifetimeSec > 0 && t.ticket.byteLength > 0) this.held = { ticket: t.ticket.slice(), secret: secret.slice(), expiresAt: this.now() + t.lifetimeSec * 1000 };
    return true;
  }

  /** The ticket to resume with: null when there is none or it is past its lifetime (then forgotten). */
  usable(): HeldTicket | null {
    if (this.held && this.now() >= this.held.expiresAt) this.forget();
    return this.held;
  }

  forget(): void {
    this.held?.secret.fill(0);
    this.held = null;
  }

  /** The session ended: a TICKET can no longer arrive for it. */
  sessionEnded(): void {
    this.sessionSecret = null;
  }
}
