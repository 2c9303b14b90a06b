/**
 * The bus: messages between the nodes of a cluster (and within one node). Implementations:
 * bus-memory.ts (in-process; a single node) and bus-redis.ts (Redis pub/sub; a cluster).
 * test/contract/bus.contract.ts is the contract; every implementation runs it.
 *
 * Contract:
 * - publish() resolves once the message is handed to the backend; every subscriber of the topic on
 *   every node connected to the backend then receives it once, including the publishing node's own
 *   subscribers (a revocation must reach sessions on the node that revoked, too).
 * - Delivery is at most once and unordered across publishers; per publisher and topic, in order.
 *   Consumers must be idempotent (ending an already ended session is a no-op).
 * - A handler that throws does not stop delivery to other handlers; the error goes to onError.
 * - subscribe() returns an unsubscribe function; after it resolves no more calls reach the handler.
 */

export type BusMessage =
  /** Credentials were revoked (here, or in an external credentials store: notifyRevoked). */
  | { type: 'credentials.revoked'; appId: string; credentialsId: string; controlId?: string; at?: number }
  /** End a live session of an endpoint (operator kick); `at`: only sessions established before it. */
  | { type: 'session.kick'; appId: string; keyHash: string; controlId?: string; at?: number }
  /** The ban list changed (admin API or automatic ban): nodes reload it from the store. */
  | { type: 'bans.changed'; origin: string }
  /** The endpoint has queued notifications (store): the node holding its session delivers them. */
  | { type: 'endpoint.notify'; appId: string; keyHash: string }
  /** The endpoint's owner changed (null: detached): nodes re-file its live session for events. */
  | { type: 'endpoint.owner'; origin: string; appId: string; keyHash: string; owner: string | null }
  /**
   * An event for the endpoints of one owner, relayed from node `origin` (which delivered it to its
   * own sessions already). `data` is base64; `target` null means every listener of the class.
   */
  | { type: 'owner.event'; origin: string; tenantId: string; owner: string; source: string; eventClassFQN: string; data: string | null; target: string | null };

export type BusTopic = 'credentials' | 'sessions' | 'events';

export type BusHandler = (msg: BusMessage) => void | Promise<void>;

export interface Bus {
  /** True when other nodes share this bus (Redis): events then cross nodes through it. */
  readonly shared: boolean;
  publish(topic: BusTopic, msg: BusMessage): Promise<void>;
  subscribe(topic: BusTopic, handler: BusHandler): Promise<() => Promise<void>>;
  /** Resolves when the backend answers (readiness); rejects with LK_CACHE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
