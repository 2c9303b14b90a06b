/**
 * The Redis bus on every topology: single Redis (never skipped: CI starts it), Redis Cluster
 * (sharded pub/sub; skipped with a message unless LATCHKEY_TEST_REDIS_CLUSTER is set, required in
 * CI) and Sentinel (a private master + Sentinel started here).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BATCH_MESSAGES, RedisBus } from '../../src/bus/bus-redis.js';
import type { BusMessage } from '../../src/bus/bus.js';
import { REDIS_URL, RedisSentinel, redisClusterUrl } from '../helpers/redis-topologies.js';
import { busContract } from './bus.contract.js';

// A prefix per run, so parallel runs on one Redis do not see each other's messages.
const prefix = `latchkey-test-${process.pid}-${Date.now()}:`;
const CLUSTER_URL = redisClusterUrl();

busContract('redis', (nodeId) => RedisBus.connect(REDIS_URL, { prefix, nodeId }), { shared: true, nodes: true });
busContract('redis cluster (sharded pub/sub)', (nodeId) => RedisBus.connect(CLUSTER_URL!, { prefix, nodeId }), { shared: true, nodes: true, skip: CLUSTER_URL === null });

describe('Redis bus on Sentinel', () => {
  let sentinel: RedisSentinel | undefined;
  beforeAll(async () => {
    sentinel = await RedisSentinel.start();
  });
  afterAll(async () => {
    await sentinel?.stop();
  });
  busContract('redis sentinel', (nodeId) => RedisBus.connect(sentinel!.url, { prefix, nodeId }), { shared: true, nodes: true });
});

describe('RedisBus', () => {
  for (const [name, url] of [['single Redis', REDIS_URL], ['the local Redis Cluster', CLUSTER_URL]] as const) {
    it.skipIf(url === null)(`on ${name}, a message addressed to "<node>#<process>" reaches that process only; one to the node reaches both`, async () => {
      const p0 = await RedisBus.connect(url!, { prefix, nodeId: 'n-procs', process: 0 });
      const p1 = await RedisBus.connect(url!, { prefix, nodeId: 'n-procs', process: 1 });
      const sender = await RedisBus.connect(url!, { prefix, nodeId: 'n-sender', process: 0 });
      const got: string[] = [];
      await p0.subscribe('events', (m) => void got.push(`p0:${m.type === 'session.kick' ? m.keyHash : m.type}`));
      await p1.subscribe('events', (m) => void got.push(`p1:${m.type === 'session.kick' ? m.keyHash : m.type}`));
      try {
        await sender.publishToNode('n-procs#1', 'events', { type: 'session.kick', appId: 'a', keyHash: 'to-p1' });
        await sender.publishToNode('n-procs', 'events', { type: 'session.kick', appId: 'a', keyHash: 'to-node' });
        const deadline = Date.now() + 3000;
        while (got.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        await new Promise((r) => setTimeout(r, 100));
        expect(got.sort()).toEqual(['p0:to-node', 'p1:to-node', 'p1:to-p1']);
      } finally {
        await Promise.all([p0.close(), p1.close(), sender.close()]);
      }
    });
  }

  it('uses PUBLISH on single Redis and SPUBLISH on a cluster, on channels <prefix>bus:<topic> and <prefix>bus:node:<id>', async () => {
    const raw = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await raw.connect();
    const seen: Array<[string, string]> = [];
    raw.on('message', (ch: string, text: string) => void seen.push([ch, text]));
    await raw.subscribe(`${prefix}bus:sessions`, `${prefix}bus:node:n-raw`);
    const bus = await RedisBus.connect(REDIS_URL, { prefix, nodeId: 'n-pub' });
    const kick: BusMessage = { type: 'session.kick', appId: 'a', keyHash: 'k' };
    await bus.publish('sessions', kick);
    await bus.publishToNode('n-raw', 'sessions', kick);
    const deadline = Date.now() + 2000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(seen).toEqual([
      [`${prefix}bus:sessions`, JSON.stringify(kick)],
      [`${prefix}bus:node:n-raw`, JSON.stringify({ topic: 'sessions', msg: kick })],
    ]);
    await bus.close();
    await raw.quit();
  });

  it('reports a malformed node-addressed message to onError and delivers nothing', async () => {
    const errors: unknown[] = [];
    const bus = await RedisBus.connect(REDIS_URL, { prefix, nodeId: 'n-bad', onError: (e) => errors.push(e) });
    const got: BusMessage[] = [];
    await bus.subscribe('sessions', (m) => void got.push(m));
    const raw = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await raw.connect();
    await raw.publish(`${prefix}bus:node:n-bad`, JSON.stringify({ topic: 'nope', msg: {} }));
    await raw.publish(`${prefix}bus:node:n-bad`, 'not json');
    const deadline = Date.now() + 2000;
    while (errors.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(errors).toHaveLength(2);
    expect(got).toEqual([]);
    await raw.quit();
    await bus.close();
  });

  it('batches the node-addressed messages of one turn into one PUBLISH per channel, in order; a broadcast after them follows them', async () => {
    const raw = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await raw.connect();
    const seen: Array<[string, string]> = [];
    raw.on('message', (ch: string, text: string) => void seen.push([ch, text]));
    await raw.subscribe(`${prefix}bus:node:n-batch`, `${prefix}bus:sessions`);
    const target = await RedisBus.connect(REDIS_URL, { prefix, nodeId: 'n-batch' });
    const got: string[] = [];
    await target.subscribe('events', (m) => void got.push(m.type === 'session.kick' ? m.keyHash : m.type));
    await target.subscribe('sessions', (m) => void got.push(`sessions:${m.type === 'session.kick' ? m.keyHash : m.type}`));
    const bus = await RedisBus.connect(REDIS_URL, { prefix, nodeId: 'n-batcher' });
    const kick = (k: string): BusMessage => ({ type: 'session.kick', appId: 'a', keyHash: k });
    const sent = [bus.publishToNode('n-batch', 'events', kick('e1')), bus.publishToNode('n-batch', 'events', kick('e2')), bus.publishToNode('n-batch', 'events', kick('e3'))];
    // Same turn: the broadcast goes out after the three, on the same connection.
    sent.push(bus.publish('sessions', kick('after')));
    await Promise.all(sent);
    const deadline = Date.now() + 2000;
    while ((seen.length < 2 || got.length < 4) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(seen).toEqual([
      [`${prefix}bus:node:n-batch`, JSON.stringify(['e1', 'e2', 'e3'].map((k) => ({ topic: 'events', msg: kick(k) })))],
      [`${prefix}bus:sessions`, JSON.stringify(kick('after'))],
    ]);
    expect(got).toEqual(['e1', 'e2', 'e3', 'sessions:after']);
    await Promise.all([bus.close(), target.close(), raw.quit()]);
  });

  it(`splits a batch at ${MAX_BATCH_MESSAGES} messages, delivers every one in order, and sends what was published before close()`, async () => {
    const raw = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await raw.connect();
    let publishes = 0;
    raw.on('message', () => void publishes++);
    await raw.subscribe(`${prefix}bus:node:n-split`);
    const target = await RedisBus.connect(REDIS_URL, { prefix, nodeId: 'n-split' });
    const got: string[] = [];
    await target.subscribe('events', (m) => void got.push(m.type === 'session.kick' ? m.keyHash : m.type));
    const bus = await RedisBus.connect(REDIS_URL, { prefix, nodeId: 'n-splitter' });
    const n = MAX_BATCH_MESSAGES * 2 + 5;
    const want: string[] = [];
    for (let i = 0; i < n; i++) {
      want.push(`k${i}`);
      void bus.publishToNode('n-split', 'events', { type: 'session.kick', appId: 'a', keyHash: `k${i}` });
    }
    // Not awaited: close() sends the waiting batch ahead of QUIT.
    await bus.close();
    const deadline = Date.now() + 3000;
    while (got.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(got).toEqual(want);
    expect(publishes).toBe(3);
    await expect(bus.publishToNode('n-split', 'events', { type: 'session.kick', appId: 'a', keyHash: 'late' })).rejects.toMatchObject({ code: 'LK_INTERNAL' });
    await Promise.all([target.close(), raw.quit()]);
  });

  it('delivers the good envelopes of a batch that holds a malformed one, and reports that one', async () => {
    const errors: unknown[] = [];
    const bus = await RedisBus.connect(REDIS_URL, { prefix, nodeId: 'n-badbatch', onError: (e) => errors.push(e) });
    const got: string[] = [];
    await bus.subscribe('sessions', (m) => void got.push(m.type === 'session.kick' ? m.keyHash : m.type));
    const raw = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await raw.connect();
    const env = (k: string): unknown => ({ topic: 'sessions', msg: { type: 'session.kick', appId: 'a', keyHash: k } });
    await raw.publish(`${prefix}bus:node:n-badbatch`, JSON.stringify([env('a'), { topic: 'nope', msg: {} }, 7, env('b')]));
    const deadline = Date.now() + 2000;
    while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(got).toEqual(['a', 'b']);
    expect(errors).toHaveLength(2);
    await raw.quit();
    await bus.close();
  });

  it.skipIf(CLUSTER_URL === null)('on a cluster the channels are sharded: a classic SUBSCRIBE does not see them', async () => {
    // SPUBLISH reaches SSUBSCRIBE only; a plain PUBLISH would be seen by a plain SUBSCRIBE on any node.
    const first = CLUSTER_URL!.replace('redis-cluster://', 'redis://').split(',')[0]!;
    const raw = new Redis(first, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await raw.connect();
    const classic: string[] = [];
    raw.on('message', (ch: string) => void classic.push(ch));
    await raw.subscribe(`${prefix}bus:credentials`);
    const a = await RedisBus.connect(CLUSTER_URL!, { prefix, nodeId: 'n-sharded' });
    const got: BusMessage[] = [];
    await a.subscribe('credentials', (m) => void got.push(m));
    await a.publish('credentials', { type: 'credentials.revoked', appId: 'a', credentialsId: 'c' });
    const deadline = Date.now() + 2000;
    while (got.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toHaveLength(1);
    expect(classic).toEqual([]);
    await a.close();
    await raw.quit();
  });

  it('refuses a bad URL with LK_CONFIG_INVALID_VALUE and an unreachable one with LK_CACHE_UNAVAILABLE', async () => {
    await expect(RedisBus.connect('redis://a:1,b:2', { nodeId: 'n' })).rejects.toMatchObject({ code: 'LK_CONFIG_INVALID_VALUE' });
    await expect(RedisBus.connect('redis://127.0.0.1:1', { nodeId: 'n', connectTimeoutMs: 500 })).rejects.toMatchObject({ code: 'LK_CACHE_UNAVAILABLE' });
    await expect(RedisBus.connect('redis-sentinel://127.0.0.1:1/m', { nodeId: 'n', connectTimeoutMs: 500 })).rejects.toMatchObject({ code: 'LK_CACHE_UNAVAILABLE' });
    await expect(RedisBus.connect(REDIS_URL, { nodeId: '' })).rejects.toMatchObject({ code: 'LK_BAD_ARGUMENT' });
  });
});
