/**
 * What a session needs from around it (its host: handshaker, registry hooks, services, limits) and
 * from its connection (Transport). The gateway builds the Transport (transport/gateway.ts), server.ts
 * the host; tests build both by hand.
 */
import type { Logger } from 'pino';
import type { TicketSealer } from '../crypto/tickets.js';
import type { EventRelay } from '../events/relay.js';
import type { Stats } from '../metrics.js';
import type { OwnershipService } from '../ownership/ownership.js';
import type { Admission } from '../protection/admission.js';
import type { RegistrationService } from '../registration/registration.js';
import type { HandshakeGate } from './handshake-gate.js';
import type { Handshaker } from './handshake.js';

export interface Transport {
  /** Queue a binary frame. Returns false when the connection is gone. */
  send(frame: Buffer): boolean;
  /** Close with a WebSocket close code after queued frames. Idempotent. */
  close(code: number, reason: string): void;
  readonly remoteAddress: string;
  /**
   * Queue a frame to go out at the end of this event-loop turn, batched with the connection's
   * other deferred frames (relayed events). Later send()s queue behind it: wire order is call order.
   */
  sendDeferred(frame: Buffer): boolean;
  /** Bytes queued towards the peer and not yet written to the socket. */
  bufferedAmount(): number;
}

export interface SessionLimits {
  maxFrameBytes: number;
  keepAliveDefaultSec: number;
  keepAliveMaxSec: number;
  /** SyncRequests decoded but not yet answered; beyond this the session ends (LK_SERVER_BUSY). */
  maxPendingSyncs: number;
  /** Frames and frame bytes per second a session may send (buckets of 2 s); 0: no limit. */
  messagesPerSec: number;
  bytesPerSec: number;
}

export interface SessionHost {
  handshaker: Handshaker;
  /** Ownership (user sync, notifications); absent in minimal hosts (unit tests). */
  ownership?: OwnershipService;
  /** Events among endpoints of one owner; absent in minimal hosts (unit tests). */
  events?: EventRelay;
  registration: RegistrationService;
  registry: SessionRegistryHooks;
  /** Bans, rates and flapping detection (protection/admission.ts); absent in minimal hosts. */
  admission?: Admission;
  /** Seals the tickets TICKETREQ asks for (docs/protocol.md 4.6); absent or null: resumption off. */
  tickets?: TicketSealer | null;
  /** Queues CONNECTs into budgeted turns so established sessions are served between them (handshake-gate.ts); absent: at once. */
  handshakeGate?: HandshakeGate;
  limits: SessionLimits;
  stats: Stats;
  log: Logger;
}

/**
 * What a session tells the registry (registry.ts, which takes the Session itself: method
 * parameters are checked both ways, so the registry may name the class this file cannot import).
 */
export interface SessionRegistryHooks {
  established(session: object): void;
  closed(session: object): void;
  /** True if this node learnt of a revocation of the endpoint's credentials recently (registry.ts). */
  recentlyRevoked(appId: string, keyHash: string): boolean;
}

/** Shortest keepalive the server agrees to: below it, handshake queueing alone could time a session out. */
export const MIN_KEEPALIVE_SEC = 5;

export type SessionState = 'AWAIT_CONNECT' | 'HANDSHAKING' | 'ESTABLISHED' | 'CLOSED';

