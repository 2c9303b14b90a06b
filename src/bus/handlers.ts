/**
 * Subscriber bookkeeping shared by every Bus backend: handlers per topic, delivery that isolates a
 * throwing (or rejecting) handler from the others, unsubscribe. See bus.ts for the contract.
 */
import type { BusHandler, BusMessage, BusTopic } from './bus.js';

export class TopicHandlers {
  private readonly byTopic = new Map<BusTopic, Set<BusHandler>>();

  constructor(private readonly onError: (err: unknown) => void) {}

  add(topic: BusTopic, handler: BusHandler): () => Promise<void> {
    let set = this.byTopic.get(topic);
    if (!set) this.byTopic.set(topic, (set = new Set()));
    set.add(handler);
    return async () => {
      set.delete(handler);
    };
  }

  /** Handlers subscribed now (a snapshot: later subscriptions do not see this message). */
  snapshot(topic: BusTopic): BusHandler[] {
    return [...(this.byTopic.get(topic) ?? [])];
  }

  deliver(handlers: BusHandler[], msg: BusMessage): void {
    for (const h of handlers) {
      try {
        const r = h(msg);
        if (r instanceof Promise) r.catch(this.onError);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  clear(): void {
    this.byTopic.clear();
  }
}
