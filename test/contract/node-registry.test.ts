/**
 * The node registries: in-process, and Redis on single Redis (never skipped: CI starts it), on the
 * local Redis Cluster (skipped with a message unless LATCHKEY_TEST_REDIS_CLUSTER is set; required
 * in CI) and on a Sentinel-managed master started here.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryNodeRegistry, RedisNodeRegistry } from '../../src/bootstrap/nodes.js';
import { REDIS_URL, RedisSentinel, redisClusterUrl } from '../helpers/redis-topologies.js';
import { nodeInfo, registryContract } from './node-registry.contract.js';

const prefix = `latchkey-test-${process.pid}:`;
const CLUSTER_URL = redisClusterUrl();

registryContract('memory', async (expireMs) => new MemoryNodeRegistry(expireMs));
registryContract('redis', (expireMs) => RedisNodeRegistry.connect(REDIS_URL, expireMs, { prefix }), { shared: true });
registryContract('redis cluster', (expireMs) => RedisNodeRegistry.connect(CLUSTER_URL!, expireMs, { prefix }), { shared: true, skip: CLUSTER_URL === null });

describe('node registry on Sentinel', () => {
  let sentinel: RedisSentinel | undefined;
  beforeAll(async () => {
    sentinel = await RedisSentinel.start();
  });
  afterAll(async () => {
    await sentinel?.stop();
  });
  registryContract('redis sentinel', (expireMs) => RedisNodeRegistry.connect(sentinel!.url, expireMs, { prefix }), { shared: true });
});

describe('RedisNodeRegistry', () => {
  it('skips entries that are not NodeInfo JSON, and removes them', async () => {
    const own = `latchkey-test-${process.pid}-bad:`;
    const r = await RedisNodeRegistry.connect(REDIS_URL, 1000, { prefix: own });
    const raw = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await raw.connect();
    await raw.hset(`${own}nodes`, 'garbage', 'not json', 'partial', JSON.stringify({ id: 'partial' }));
    await r.announce(nodeInfo('good'));
    expect((await r.list()).map((n) => n.id)).toEqual(['good']);
    expect((await raw.hkeys(`${own}nodes`)).sort()).toEqual(['good']);
    await raw.del(`${own}nodes`);
    await raw.quit();
    await r.close();
  });

  it('refuses a bad URL with LK_CONFIG_INVALID_VALUE and an unreachable Redis with LK_CACHE_UNAVAILABLE', async () => {
    await expect(RedisNodeRegistry.connect('redis-cluster://a:1/2', 1000)).rejects.toMatchObject({ code: 'LK_CONFIG_INVALID_VALUE' });
    await expect(RedisNodeRegistry.connect('redis://127.0.0.1:1', 1000)).rejects.toMatchObject({ code: 'LK_CACHE_UNAVAILABLE' });
  });
});
