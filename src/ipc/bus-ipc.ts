/**
 * The bus of a multi-process node without Redis: messages go to the node's primary, which relays
 * each to every gateway process of the node, the sender included (ipc/messages.ts). See bus.ts for the
 * contract; test/contract/bus-ipc.test.ts runs it against a stand-in for the primary's relay.
 *
 * `shared` is true: the other processes of the node are "other nodes" as far as events are
 * concerned (an event for an owner must reach that owner's sessions on every process).
 *
 * Node-addressed messages: every process of the node has the node's id, and without Redis there is
 * no other node, so publishToNode(own id) is publish() (relayed to every process, the sender
 * included) and any other id resolves without sending anything.
 */
import { LatchkeyError } from '../errors.js';
import type { NodeLink } from './link.js';
import type { Bus, BusHandler, BusMessage, BusTopic } from '../bus/bus.js';
import { TopicHandlers } from '../bus/handlers.js';

export class IpcBus implements Bus {
  readonly shared = true;
  readonly nodeId: string;
  private readonly handlers: TopicHandlers;
  private closed = false;

  /** `nodeId`: the node's id (shared by its processes), not a per-process one. */
  constructor(
    private readonly link: NodeLink,
    opts: { nodeId: string; onError?: (err: unknown) => void },
  ) {
    this.nodeId = opts.nodeId;
    this.handlers = new TopicHandlers(opts.onError ?? (() => undefined));
    link.on({ bus: (topic, msg) => (this.closed ? undefined : this.handlers.deliver(this.handlers.snapshot(topic), msg)) });
  }

  async publish(topic: BusTopic, msg: BusMessage): Promise<void> {
    if (this.closed) throw new LatchkeyError('LK_INTERNAL', 'bus is closed');
    try {
      await this.link.post({ lk: 'bus', topic, msg });
    } catch (err) {
      // Same code as a Redis outage: callers already treat it as "not published".
      throw new LatchkeyError('LK_CACHE_UNAVAILABLE', `bus: ${(err as Error).message}`, { cause: err });
    }
  }

  async publishToNode(nodeId: string, topic: BusTopic, msg: BusMessage): Promise<void> {
    if (this.closed) throw new LatchkeyError('LK_INTERNAL', 'bus is closed');
    if (nodeId === this.nodeId) await this.publish(topic, msg);
  }

  async subscribe(topic: BusTopic, handler: BusHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new LatchkeyError('LK_INTERNAL', 'bus is closed');
    return this.handlers.add(topic, handler);
  }

  async ping(): Promise<void> {
    if (!this.link.connected) throw new LatchkeyError('LK_CACHE_UNAVAILABLE', 'bus: the node primary is gone');
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
  }
}
