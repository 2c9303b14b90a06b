/**
 * Redis pub/sub bus: the cluster's bus. See bus.ts for the contract.
 *
 * Two connections: a subscriber (a connection in subscribe mode can do nothing else) and a
 * publisher. Channels:
 * - `<prefix>bus:<topic>`: broadcast, the message as JSON;
 * - `<prefix>bus:node:<nodeId>`: messages addressed to one node (publishToNode), JSON
 *   `{topic, msg}`. Each node subscribes to its own channel only, so such a message costs one
 *   delivery per process of that node, however many nodes there are.
 * - `<prefix>bus:node:<nodeId>#<process>`: the same, addressed to one gateway process of a node
 *   (publishToNode with "<nodeId>#<process>", when the bus knows its process index): one delivery.
 *   Routed events use it (the cluster directory lists the processes holding an owner's sessions).
 * - Node-addressed messages are batched: those published to one channel in one turn of the event
 *   loop (flushed at setImmediate, or sooner past MAX_BATCH_MESSAGES / MAX_BATCH_BYTES) go out as
 *   one PUBLISH whose payload is a JSON array of `{topic, msg}` envelopes; a lone message is sent
 *   as its envelope. A receiver takes both forms. Routed events are the bulk of bus traffic, and a
 *   PUBLISH per event cost each side a Redis round of its own (bench/cluster, docs/performance.md).
 *   Order is kept: per channel, and on this publisher's connection (a broadcast or a flush sends
 *   every batch waiting before it first).
 *
 * Topologies (redis/connect.ts). Single Redis and Sentinel: PUBLISH/SUBSCRIBE on the master.
 * Redis Cluster: sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7). A classic PUBLISH on a cluster is
 * forwarded over the cluster bus to every node of the cluster, whoever subscribes; a sharded one
 * goes only to the shard that owns the channel's slot, and the subscriber holds one connection per
 * master (ioredis `shardedSubscribers`), so bus traffic spreads over the shards with the channels.
 * Each channel is subscribed on its own: channels of one SSUBSCRIBE must share a slot.
 *
 * Redis pub/sub is at most once: a node that is disconnected while a message is published misses
 * it, and so does every subscriber of a master that fails over before its replica had it. That is
 * why every consumer also has a durable path (a revoked status is in the store, and the cache entry
 * was deleted; nodes poll the store's control log), so a missed message costs at most the
 * endpoint's current session, never a reconnect. The subscriber reconnects and re-subscribes by
 * itself (ioredis autoResubscribe; on a cluster the sharded subscriber group after a slot refresh).
 */
import { LatchkeyError } from '../errors.js';
import { connectRedis, createRedisClient, createRedisSubscriber, DEFAULT_CONNECT_TIMEOUT_MS, isCluster, redactRedisUrl, type RedisClient } from '../redis/connect.js';
import { BUS_TOPICS, isBusTopic, type Bus, type BusHandler, type BusMessage, type BusTopic } from './bus.js';
import { TopicHandlers } from './handlers.js';

export interface RedisBusOptions {
  /** This node's id (bus.ts): node-addressed messages for it arrive here. */
  nodeId: string;
  /** This gateway process's index in its node: messages addressed to "<nodeId>#<process>" arrive here too. */
  process?: number;
  /** Prepended to every channel, so several deployments can share one Redis. Default 'latchkey:'. */
  prefix?: string;
  /** Connection errors, undecodable messages and handler failures. Default: ignored. */
  onError?: (err: unknown) => void;
  /** Bound on connecting and subscribing at start. Default 5000 ms. */
  connectTimeoutMs?: number;
}

/** A batch is sent at once when it reaches this many messages or bytes (one PUBLISH stays small). */
export const MAX_BATCH_MESSAGES = 256;
export const MAX_BATCH_BYTES = 64 * 1024;

interface Batch {
  texts: string[];
  bytes: number;
  /** Settled when the batch's PUBLISH is answered; every message of the batch returns it. */
  done: Promise<void>;
  settle: (err?: unknown) => void;
}

export class RedisBus implements Bus {
  readonly shared = true;
  readonly nodeId: string;
  private readonly handlers: TopicHandlers;
  private readonly nodeChannel: string;
  private readonly processChannel: string | null;
  private closed = false;
  /** Node-addressed messages of this turn, per channel, in publication order (Map order: first use). */
  private readonly batches = new Map<string, Batch>();
  private flushScheduled = false;
  /** >0 while close() sends the last batches (send() refuses once closed otherwise). */
  private flushing = 0;

  private constructor(
    private readonly pub: RedisClient,
    private readonly sub: RedisClient,
    /** Cluster: SPUBLISH/SSUBSCRIBE; otherwise PUBLISH/SUBSCRIBE. */
    private readonly sharded: boolean,
    private readonly prefix: string,
    nodeId: string,
    processIndex: number | undefined,
    private readonly onError: (err: unknown) => void,
  ) {
    this.nodeId = nodeId;
    this.nodeChannel = nodeChannel(prefix, nodeId);
    this.processChannel = processIndex === undefined ? null : nodeChannel(prefix, `${nodeId}#${processIndex}`);
    this.handlers = new TopicHandlers(onError);
    const deliver = (channel: string, text: string): void => this.deliver(channel, text);
    sub.on(sharded ? 'smessage' : 'message', deliver);
  }

  /**
   * Connects both connections and subscribes to every topic and to this node's channel. Rejects
   * with LK_CONFIG_INVALID_VALUE for a bad URL, LK_CACHE_UNAVAILABLE when Redis is not ready and
   * subscribed within `connectTimeoutMs`; nothing keeps running after a rejection.
   */
  static async connect(url: string, opts: RedisBusOptions): Promise<RedisBus> {
    if (typeof opts.nodeId !== 'string' || opts.nodeId === '') throw new LatchkeyError('LK_BAD_ARGUMENT', 'bus: nodeId must be a non-empty string');
    const prefix = opts.prefix ?? 'latchkey:';
    const onError = opts.onError ?? (() => undefined);
    const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const common = { connectTimeoutMs: timeoutMs, maxRetriesPerRequest: 1 };
    const pub = createRedisClient(url, { ...common, connectionName: 'latchkey-bus-pub' });
    const sub = createRedisSubscriber(url, { ...common, connectionName: 'latchkey-bus-sub' });
    pub.on('error', onError);
    sub.on('error', onError);
    const sharded = isCluster(sub);
    const channels = [...BUS_TOPICS.map((t) => topicChannel(prefix, t)), nodeChannel(prefix, opts.nodeId)];
    if (opts.process !== undefined) channels.push(nodeChannel(prefix, `${opts.nodeId}#${opts.process}`));
    try {
      const connected = await Promise.allSettled([
        connectRedis(pub, { url, what: 'bus', timeoutMs }),
        connectRedis(sub, { url, what: 'bus', timeoutMs }),
      ]);
      for (const c of connected) if (c.status === 'rejected') throw c.reason;
      const subscribed = sharded ? Promise.all(channels.map((ch) => sub.ssubscribe(ch))) : sub.subscribe(...channels);
      await withDeadline(subscribed, timeoutMs, `not subscribed within ${timeoutMs} ms`);
    } catch (err) {
      pub.disconnect();
      sub.disconnect();
      if (err instanceof LatchkeyError) throw err;
      throw new LatchkeyError('LK_CACHE_UNAVAILABLE', `bus: cannot subscribe at ${redactRedisUrl(url)}: ${(err as Error).message}`, { cause: err });
    }
    return new RedisBus(pub, sub, sharded, prefix, opts.nodeId, opts.process, onError);
  }

  private deliver(channel: string, text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      this.onError(err);
      return;
    }
    if (channel === this.nodeChannel || channel === this.processChannel) {
      // A batch is an array of envelopes: each on its own, in order; a malformed one costs only itself.
      if (Array.isArray(parsed)) for (const env of parsed) this.deliverEnvelope(channel, env);
      else this.deliverEnvelope(channel, parsed);
      return;
    }
    const topic = channel.slice(`${this.prefix}bus:`.length);
    if (!isBusTopic(topic)) return; // not ours (a channel we did not subscribe to)
    this.handlers.deliver(this.handlers.snapshot(topic), parsed as BusMessage);
  }

  private deliverEnvelope(channel: string, env: unknown): void {
    const e = env as { topic?: unknown; msg?: unknown } | null;
    if (e === null || typeof e !== 'object' || !isBusTopic(e.topic) || e.msg === null || typeof e.msg !== 'object') {
      this.onError(new Error(`bus: malformed node-addressed message on ${channel}`));
      return;
    }
    this.handlers.deliver(this.handlers.snapshot(e.topic), e.msg as BusMessage);
  }

  publish(topic: BusTopic, msg: BusMessage): Promise<void> {
    // After every node-addressed message published before it, on the same connection.
    this.flush();
    return this.send(topicChannel(this.prefix, topic), JSON.stringify(msg));
  }

  publishToNode(nodeId: string, topic: BusTopic, msg: BusMessage): Promise<void> {
    if (this.closed) return Promise.reject(new LatchkeyError('LK_INTERNAL', 'bus is closed'));
    const channel = nodeChannel(this.prefix, nodeId);
    const text = JSON.stringify({ topic, msg });
    let b = this.batches.get(channel);
    if (b && (b.texts.length >= MAX_BATCH_MESSAGES || b.bytes + text.length > MAX_BATCH_BYTES)) {
      this.sendBatch(channel, b);
      b = undefined;
    }
    if (!b) {
      let settle!: (err?: unknown) => void;
      const done = new Promise<void>((resolve, reject) => {
        settle = (err) => (err === undefined ? resolve() : reject(err));
      });
      // Callers that do not wait for the answer must not turn a failed batch into an unhandled rejection.
      done.catch(() => undefined);
      b = { texts: [], bytes: 0, done, settle };
      this.batches.set(channel, b);
    }
    b.texts.push(text);
    b.bytes += text.length + 1;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return b.done;
  }

  /** Send every waiting batch now, in the order their channels were first used this turn. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.batches.size === 0) return;
    for (const [channel, b] of this.batches) this.sendBatch(channel, b);
  }

  private sendBatch(channel: string, b: Batch): void {
    this.batches.delete(channel);
    const text = b.texts.length === 1 ? b.texts[0]! : `[${b.texts.join(',')}]`;
    this.send(channel, text).then(() => b.settle(), (err: unknown) => b.settle(err));
  }

  private async send(channel: string, text: string): Promise<void> {
    if (this.closed && this.flushing === 0) throw new LatchkeyError('LK_INTERNAL', 'bus is closed');
    try {
      if (this.sharded) await this.pub.spublish(channel, text);
      else await this.pub.publish(channel, text);
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
    // What was published before close() still goes out, ahead of QUIT on the same connection.
    this.flushing++;
    try {
      this.flush();
    } finally {
      this.flushing--;
    }
    this.handlers.clear();
    await Promise.allSettled([this.sub.quit(), this.pub.quit()]);
  }
}

function topicChannel(prefix: string, topic: BusTopic): string {
  return `${prefix}bus:${topic}`;
}

function nodeChannel(prefix: string, nodeId: string): string {
  return `${prefix}bus:node:${nodeId}`;
}

function withDeadline<T>(p: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(why)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
