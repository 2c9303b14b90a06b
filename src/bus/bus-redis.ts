/**
 * Redis pub/sub bus: the cluster's bus. See bus.ts for the contract.
 *
 * Two connections: a subscriber (a connection in subscribe mode can do nothing else) and a
 * publisher. Channels are `<prefix>bus:<topic>`; messages are JSON. Redis pub/sub is at most once:
 * a node that is disconnected while a message is published misses it. That is why every consumer
 * also has a durable path (a revoked status is in the store, and the cache entry was deleted), so a
 * missed message costs at most the endpoint's current session, never a reconnect.
 * The subscriber reconnects and re-subscribes by itself (ioredis autoResubscribe).
 */
import { Redis } from 'ioredis';
import { LatchkeyError } from '../errors.js';
import type { Bus, BusHandler, BusMessage, BusTopic } from './bus.js';
import { TopicHandlers } from './handlers.js';

const TOPICS: readonly BusTopic[] = ['credentials', 'sessions', 'events'];

export class RedisBus implements Bus {
  readonly shared = true;
  private readonly handlers: TopicHandlers;
  private closed = false;

  private constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly prefix: string,
    private readonly onError: (err: unknown) => void,
  ) {
    this.handlers = new TopicHandlers(onError);
    sub.on('message', (channel: string, text: string) => this.deliver(channel, text));
  }

  static async connect(url: string, opts: { prefix?: string; onError?: (err: unknown) => void; connectTimeoutMs?: number } = {}): Promise<RedisBus> {
    const prefix = opts.prefix ?? 'latchkey:';
    const onError = opts.onError ?? (() => undefined);
    const make = (name: string): Redis =>
      new Redis(url, {
        lazyConnect: true,
        connectTimeout: opts.connectTimeoutMs ?? 5000,
        maxRetriesPerRequest: 1,
        retryStrategy: (times) => Math.min(times * 100, 2000),
        connectionName: `latchkey-bus-${name}`,
      });
    const pub = make('pub');
    const sub = make('sub');
    pub.on('error', onError);
    sub.on('error', onError);
    try {
      await Promise.all([pub.connect(), sub.connect()]);
      await sub.subscribe(...TOPICS.map((t) => `${prefix}bus:${t}`));
    } catch (err) {
      pub.disconnect();
      sub.disconnect();
      throw new LatchkeyError('LK_CACHE_UNAVAILABLE', `bus: cannot connect to Redis: ${(err as Error).message}`, { cause: err });
    }
    return new RedisBus(pub, sub, prefix, onError);
  }

  private deliver(channel: string, text: string): void {
    const topic = channel.slice(`${this.prefix}bus:`.length) as BusTopic;
    let msg: BusMessage;
    try {
      msg = JSON.parse(text) as BusMessage;
    } catch (err) {
      this.onError(err);
      return;
    }
    this.handlers.deliver(this.handlers.snapshot(topic), msg);
  }

  async publish(topic: BusTopic, msg: BusMessage): Promise<void> {
    if (this.closed) throw new LatchkeyError('LK_INTERNAL', 'bus is closed');
    try {
      await this.pub.publish(`${this.prefix}bus:${topic}`, JSON.stringify(msg));
    } catch (err) {
      throw new LatchkeyError('LK_CACHE_UNAVAILABLE', `bus publish: ${(err as Error).message}`, { cause: err });
    }
  }

  async subscribe(topic: BusTopic, handler: BusHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new LatchkeyError('LK_INTERNAL', 'bus is closed');
    return this.handlers.add(topic, handler);
  }

  async ping(): Promise<void> {
    try {
      await Promise.all([this.pub.ping(), this.sub.status === 'ready' ? Promise.resolve() : Promise.reject(new Error(`subscriber ${this.sub.status}`))]);
    } catch (err) {
      throw new LatchkeyError('LK_CACHE_UNAVAILABLE', `bus: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers.clear();
    await Promise.allSettled([this.sub.quit(), this.pub.quit()]);
  }
}
