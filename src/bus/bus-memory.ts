/** In-process bus: one node. See bus.ts for the contract. */
import { LatchkeyError } from '../errors.js';
import type { Bus, BusHandler, BusMessage, BusTopic } from './bus.js';
import { TopicHandlers } from './handlers.js';

export interface MemoryBusOptions {
  /** This node's id (bus.ts). Default 'local'. */
  nodeId?: string;
  /** A handler threw or rejected. Default: ignored. */
  onError?: (err: unknown) => void;
}

export class MemoryBus implements Bus {
  readonly shared = false;
  readonly nodeId: string;
  private readonly handlers: TopicHandlers;
  private closed = false;

  constructor(opts: MemoryBusOptions = {}) {
    this.nodeId = opts.nodeId ?? 'local';
    this.handlers = new TopicHandlers(opts.onError ?? (() => undefined));
  }

  async publish(topic: BusTopic, msg: BusMessage): Promise<void> {
    if (this.closed) throw new LatchkeyError('LK_INTERNAL', 'bus is closed');
    // Deliver on a later tick, as a network bus would: publishers must not rely on handlers having
    // run when publish() resolves. Each message is a copy, as it would be after the network.
    const targets = this.handlers.snapshot(topic);
    queueMicrotask(() => this.handlers.deliver(targets, structuredClone(msg)));
  }

  /** This process is the only node: its own id delivers like publish(), any other id reaches nobody. */
  async publishToNode(nodeId: string, topic: BusTopic, msg: BusMessage): Promise<void> {
    if (this.closed) throw new LatchkeyError('LK_INTERNAL', 'bus is closed');
    if (nodeId === this.nodeId) await this.publish(topic, msg);
  }

  async subscribe(topic: BusTopic, handler: BusHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new LatchkeyError('LK_INTERNAL', 'bus is closed');
    return this.handlers.add(topic, handler);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
  }
}
