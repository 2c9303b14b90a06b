/**
 * The bus: messages between the nodes of a cluster (and within one node). Implementations:
 * bus-memory.ts (in-process; a single node), ipc/bus-ipc.ts (the processes of one node without Redis,
 * relayed by the node's primary) and bus-redis.ts (Redis pub/sub; a cluster: PUBLISH/SUBSCRIBE on
 * single Redis and Sentinel, sharded SPUBLISH/SSUBSCRIBE on Redis Cluster).
 * test/contract/bus.contract.ts is the contract; every implementation runs it.
 *
 * A node is one latchkey node (config nodeId): all gateway processes of a multi-process node share
 * its id, and each of them holds a Bus that knows it (`nodeId`).
 *
 * Contract:
 * - publish() resolves once the message is handed to the backend; every subscriber of the topic on
 *   every node connected to the backend then receives it once, including the publishing node's own
 *   subscribers (a revocation must reach sessions on the node that revoked, too).
 * - publishToNode(nodeId, topic, msg) is publish() addressed to one node: only subscribers of the
 *   topic on node `nodeId` (every process of it) receive it, once; the others never see it, so bus
 *   traffic does not grow with the number of nodes. Subscribers cannot tell the two apart: a
 *   handler of subscribe(topic) receives broadcast and node-addressed messages of its topic alike.
 *   Addressing a node that is gone (or a wrong id) resolves and delivers to nobody: the sender
 *   cannot know, which is why the store stays the truth. Redis: channel `<prefix>bus:node:<id>`
 *   carrying `{topic, msg}`. A bus without other nodes (memory, IPC) delivers a message addressed
 *   to its own node id like publish() and resolves without delivering for any other id (there is
 *   no other node to reach).
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
  /** A newer session of the endpoint was established on another node: the holder ends session `session` (LK_SESSION_REPLACED). */
  | { type: 'session.replaced'; appId: string; keyHash: string; session: string }
  /** Process `origin` started holding sessions of the owner: nodes sending the owner's events re-read its members. */
  | { type: 'owner.joined'; origin: string; tenantId: string; owner: string }
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

/** Every topic, for backends that subscribe to all of them up front. */
export const BUS_TOPICS: readonly BusTopic[] = ['credentials', 'sessions', 'events'];

export function isBusTopic(v: unknown): v is BusTopic {
  return typeof v === 'string' && (BUS_TOPICS as readonly string[]).includes(v);
}

export type BusHandler = (msg: BusMessage) => void | Promise<void>;

export interface Bus {
  /** True when other nodes share this bus (Redis): events then cross nodes through it. */
  readonly shared: boolean;
  /** This node's id: node-addressed messages for it reach this bus's subscribers. */
  readonly nodeId: string;
  publish(topic: BusTopic, msg: BusMessage): Promise<void>;
  /** Deliver only to the subscribers of `topic` on node `nodeId` (contract above). */
  publishToNode(nodeId: string, topic: BusTopic, msg: BusMessage): Promise<void>;
  subscribe(topic: BusTopic, handler: BusHandler): Promise<() => Promise<void>>;
  /** Resolves when the backend answers (readiness); rejects with LK_CACHE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
