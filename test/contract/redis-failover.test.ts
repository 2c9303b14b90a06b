/**
 * Failovers under the Redis cache, bus, node registry and cluster directory, on private servers started here:
 * - Sentinel: a master with one replica watched by one Sentinel; the master is killed (SIGKILL),
 *   the Sentinel promotes the replica, and every client finds the new master by itself (ioredis
 *   asks the Sentinels again on reconnect; the bus subscriber re-subscribes).
 * - Redis Cluster: three masters with a replica each (the shared test cluster has no replicas);
 *   the master of the slot that holds a node's bus channel (and a cache key) is killed, its replica
 *   takes over, the clients follow the slot move and the sharded subscriber re-subscribes there.
 * What was published during the outage is lost (pub/sub is at most once), which is why the store
 * stays the truth.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisNodeRegistry } from '../../src/bootstrap/nodes.js';
import { RedisBus } from '../../src/bus/bus-redis.js';
import type { BusMessage } from '../../src/bus/bus.js';
import { RedisCache } from '../../src/cache/cache-redis.js';
import { RedisDirectory } from '../../src/cluster/directory.js';
import { connectRedis, createRedisClient } from '../../src/redis/connect.js';
import { PrivateRedisCluster, RedisSentinel, rawCommand } from '../helpers/redis-topologies.js';
import { nodeInfo } from './node-registry.contract.js';

const prefix = `latchkey-test-failover-${process.pid}:`;

async function openDirectory(url: string, node: string): Promise<RedisDirectory> {
  const redis = createRedisClient(url, { connectionName: 'latchkey-test-directory', commandTimeoutMs: 2000 });
  redis.on('error', () => undefined);
  await connectRedis(redis, { url, what: 'test directory' });
  return RedisDirectory.open(redis, { node, process: 0, heartbeatMs: 1000, prefix });
}

const holder = (node: string, session: string) => ({ node, process: 0, session, since: Date.now() });

async function eventually<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (ok(v)) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`not recovered within ${ms} ms (last: ${String(last)})`);
    await sleep(100);
  }
}

describe('Redis clients across a Sentinel failover', () => {
  let sentinel: RedisSentinel;
  beforeAll(async () => {
    sentinel = await RedisSentinel.start({ replica: true });
  }, 30_000);
  afterAll(async () => {
    await sentinel?.stop();
  });

  it('cache, bus, node registry and cluster directory reach the promoted replica without being reopened', async () => {
    const cache = await RedisCache.connect(sentinel.url, { keyPrefix: prefix });
    const dirA = await openDirectory(sentinel.url, 'dir-a');
    const dirB = await openDirectory(sentinel.url, 'dir-b');
    const registry = await RedisNodeRegistry.connect(sentinel.url, 60_000, { prefix });
    const sender = await RedisBus.connect(sentinel.url, { prefix, nodeId: 'sender' });
    const receiver = await RedisBus.connect(sentinel.url, { prefix, nodeId: 'receiver' });
    const got: string[] = [];
    await receiver.subscribe('sessions', (m: BusMessage) => void got.push(m.type === 'session.kick' ? m.keyHash : '?'));
    try {
      await cache.set('k', 'before', 60_000);
      await registry.announce(nodeInfo('n1'));
      await dirA.claim('app', 'k-before', holder('dir-a', 's1'));
      await sender.publishToNode('receiver', 'sessions', { type: 'session.kick', appId: 'a', keyHash: 'before' });
      await eventually(async () => got.length, (n) => n === 1, 2_000);

      const oldMaster = sentinel.masterPort;
      const newMaster = await sentinel.killMasterAndWaitForFailover();
      expect(newMaster).not.toBe(oldMaster);
      expect(newMaster).toBe(sentinel.replicaPort);

      // The replica had the data (replication), and every client reconnects to it by itself.
      expect(await eventually(() => cache.get('k'), (v) => v === 'before', 15_000)).toBe('before');
      await cache.set('k', 'after', 60_000);
      expect(await cache.get('k')).toBe('after');
      await eventually(() => registry.list(), (l) => l.some((n) => n.id === 'n1'), 15_000);
      await registry.announce(nodeInfo('n2'));
      // The directory: what was claimed before is still there, and a takeover claim now answers it.
      expect(await eventually(() => dirB.lookup('app', 'k-before'), (h) => h?.session === 's1', 15_000)).toMatchObject({ node: 'dir-a' });
      expect(await dirB.claim('app', 'k-before', holder('dir-b', 's2'))).toMatchObject({ node: 'dir-a', session: 's1' });
      // The subscriber re-subscribed on the new master: a message published now arrives.
      await eventually(
        async () => {
          await sender.publishToNode('receiver', 'sessions', { type: 'session.kick', appId: 'a', keyHash: 'after' });
          await sleep(100);
          return got.includes('after');
        },
        (v) => v,
        15_000,
      );
      await sender.ping();
      await receiver.ping();
    } finally {
      await cache.delete('k').catch(() => undefined);
      await Promise.all([cache.close(), registry.close(), sender.close(), receiver.close(), dirA.close(), dirB.close()]);
    }
  }, 60_000);
});

describe('Redis clients across a Redis Cluster failover', () => {
  let cluster: PrivateRedisCluster;
  beforeAll(async () => {
    cluster = await PrivateRedisCluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('cache, bus, node registry and cluster directory follow the promoted replica without being reopened', async () => {
    const cache = await RedisCache.connect(cluster.url, { keyPrefix: prefix });
    const dirA = await openDirectory(cluster.url, 'dir-a');
    const dirB = await openDirectory(cluster.url, 'dir-b');
    const registry = await RedisNodeRegistry.connect(cluster.url, 60_000, { prefix });
    const sender = await RedisBus.connect(cluster.url, { prefix, nodeId: 'sender' });
    const receiver = await RedisBus.connect(cluster.url, { prefix, nodeId: 'receiver' });
    const got: string[] = [];
    await receiver.subscribe('sessions', (m: BusMessage) => void got.push(m.type === 'session.kick' ? m.keyHash : '?'));
    // The receiver's channel and a cache key in one slot (the key's hash tag is the channel name).
    const channel = `${prefix}bus:node:receiver`;
    const key = `{${channel}}`;
    const slot = Number((await rawCommand(cluster.ports[0]!, 'CLUSTER', 'KEYSLOT', channel)).slice(1));
    expect(Number((await rawCommand(cluster.ports[0]!, 'CLUSTER', 'KEYSLOT', prefix + key)).slice(1))).toBe(slot);
    try {
      await cache.set(key, 'before', 60_000);
      await registry.announce(nodeInfo('n1'));
      for (let i = 0; i < 8; i++) await dirA.claim('app', `k${i}`, holder('dir-a', `s${i}`));
      await sender.publishToNode('receiver', 'sessions', { type: 'session.kick', appId: 'a', keyHash: 'before' });
      await eventually(async () => got.length, (n) => n === 1, 2_000);

      const { old, now } = await cluster.killMasterOf(slot);
      expect(now).not.toBe(old);

      expect(await eventually(() => cache.get(key), (v) => v === 'before', 20_000)).toBe('before');
      await cache.set(key, 'after', 60_000);
      expect(await cache.get(key)).toBe('after');
      await eventually(() => registry.list(), (l) => l.some((n) => n.id === 'n1'), 20_000);
      // Eight entries over the slots of all three shards: all still there, and claimable.
      for (let i = 0; i < 8; i++) {
        expect(await eventually(() => dirB.lookup('app', `k${i}`), (h) => h?.session === `s${i}`, 20_000)).toMatchObject({ node: 'dir-a' });
        expect(await dirB.claim('app', `k${i}`, holder('dir-b', `t${i}`))).toMatchObject({ session: `s${i}` });
      }
      await eventually(
        async () => {
          await sender.publishToNode('receiver', 'sessions', { type: 'session.kick', appId: 'a', keyHash: 'after' });
          await sleep(100);
          return got.includes('after');
        },
        (v) => v,
        20_000,
      );
      await sender.ping();
    } finally {
      await cache.delete(key).catch(() => undefined);
      await Promise.all([cache.close(), registry.close(), sender.close(), receiver.close(), dirA.close(), dirB.close()]);
    }
  }, 90_000);
});
