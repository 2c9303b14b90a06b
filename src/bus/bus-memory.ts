/** In-process bus: one node. See bus.ts for the contract. */
import { LatchkeyError } from '../errors.js';
import type { Bus, BusHandler, BusMessage, BusTopic } from './bus.js';

export class MemoryBus implements Bus {
  private readonly handlers = new Map<BusTopic, Set<BusHandler>>();
  private closed = false;

  constructor(private readonly onError: (err: unknown) => void = () => undefined) {}

  async publish(topic: BusTopic, msg: BusMessage): Promise<void> {
    if (this.closed) throw new LatchkeyError('LK_INTERNAL', 'bus is closed');
    // Deliver on a later tick, as a network bus would: publishers must not rely on handlers having
    // run when publish() resolves.
    const targets = [...(this.handlers.get(topic) ?? [])];
    queueMicrotask(() => {
      for (const h of targets) {
        try {
          const r = h(structuredClone(msg));
          if (r instanceof Promise) r.catch(this.onError);
        } catch (err) {
          this.onError(err);
        }
      }
    });
  }

  async subscribe(topic: BusTopic, handler: BusHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new LatchkeyError('LK_INTERNAL', 'bus is closed');
    let set = this.handlers.get(topic);
    if (!set) this.handlers.set(topic, (set = new Set()));
    set.add(handler);
    return async () => {
      set.delete(handler);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
  }
}
