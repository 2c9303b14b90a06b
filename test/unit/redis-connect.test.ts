/**
 * redisUrl parsing and the clients built from it (src/redis/connect.ts). No server needed: the
 * clients are built lazily and inspected, never connected. The Sentinel form is also exercised
 * against a real Sentinel by the contract suites (test/contract/*-redis.test.ts).
 */
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedisClient, createRedisSubscriber, isCluster, parseRedisUrl, redactRedisUrl } from '../../src/redis/connect.js';

const opts = { connectionName: 'latchkey-test' };

function refused(url: string): { code?: string; message: string } {
  try {
    parseRedisUrl(url);
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error(`${url} was accepted`);
}

describe('parseRedisUrl', () => {
  it('single server: host, default port 6379 and db 0, user and password percent-decoded, TLS for rediss', () => {
    expect(parseRedisUrl('redis://127.0.0.1')).toEqual({ topology: 'single', tls: false, node: { host: '127.0.0.1', port: 6379 }, db: 0 });
    expect(parseRedisUrl('redis://cache.example.com:6380/3')).toEqual({ topology: 'single', tls: false, node: { host: 'cache.example.com', port: 6380 }, db: 3 });
    expect(parseRedisUrl('rediss://app:p%40ss%3Aword@[::1]:6390/')).toEqual({
      topology: 'single', tls: true, node: { host: '::1', port: 6390 }, db: 0, username: 'app', password: 'p@ss:word',
    });
    expect(parseRedisUrl('redis://:secret@h:1')).toEqual({ topology: 'single', tls: false, node: { host: 'h', port: 1 }, db: 0, password: 'secret' });
  });

  it('cluster: every seed node, default port 6379, credentials for every node', () => {
    expect(parseRedisUrl('redis-cluster://127.0.0.1:7101,127.0.0.1:7102,10.0.0.3')).toEqual({
      topology: 'cluster', nodes: [{ host: '127.0.0.1', port: 7101 }, { host: '127.0.0.1', port: 7102 }, { host: '10.0.0.3', port: 6379 }],
    });
    expect(parseRedisUrl('redis-cluster://u:p@a:1/')).toEqual({ topology: 'cluster', nodes: [{ host: 'a', port: 1 }], username: 'u', password: 'p' });
  });

  it('sentinel: the Sentinels (default port 26379), the master name and an optional db', () => {
    expect(parseRedisUrl('redis-sentinel://s1:26380,s2/mymaster')).toEqual({
      topology: 'sentinel', sentinels: [{ host: 's1', port: 26380 }, { host: 's2', port: 26379 }], masterName: 'mymaster', db: 0,
    });
    expect(parseRedisUrl('redis-sentinel://:pw@s1:1/my-master.a_1/2')).toEqual({
      topology: 'sentinel', sentinels: [{ host: 's1', port: 1 }], masterName: 'my-master.a_1', db: 2, password: 'pw',
    });
  });

  it.each([
    ['', 'must start with'],
    ['127.0.0.1:6379', 'must start with'],
    ['http://127.0.0.1:6379', 'must start with'],
    ['redis://', 'host is missing'],
    ['redis://h:0', 'port'],
    ['redis://h:65536', 'port'],
    ['redis://h:63x9', 'port'],
    ['redis://h:6379/x', 'database'],
    ['redis://h:6379/1/2', 'at most one database'],
    ['redis://a:1,b:2', 'names one server'],
    ['redis://h:6379?db=2', 'query'],
    ['redis://h:6379#x', 'query'],
    ['redis://password@h:6379', 'user:password'],
    ['redis://u:%zz@h', 'percent'],
    ['redis://::1:6379', 'IPv6'],
    ['redis://[::1:6379', 'unterminated'],
    ['redis://[zz]:1', 'IPv6'],
    ['redis://bad_host:1', 'host name'],
    ['redis://h :1', 'white space'],
    ['redis-cluster://a:1,,b:2', 'host is missing'],
    ['redis-cluster://a:1,b:2/0', 'only database 0'],
    ['redis-sentinel://s1:26379', 'names no master'],
    ['redis-sentinel://s1:26379/', 'names no master'],
    ['redis-sentinel://s1:26379/my master', 'white space'],
    ['redis-sentinel://s1:26379/m%20x', 'master name'],
    ['redis-sentinel://s1:26379/m/0/1', '/<masterName>[/db]'],
  ])('refuses %j with LK_CONFIG_INVALID_VALUE (%s)', (url, why) => {
    const err = refused(url);
    expect(err.code).toBe('LK_CONFIG_INVALID_VALUE');
    expect(err.message).toContain(why);
  });

  it('never puts the password in an error message', () => {
    const err = refused('redis://app:hunter2@h:1/zz');
    expect(err.code).toBe('LK_CONFIG_INVALID_VALUE');
    expect(err.message).not.toContain('hunter2');
    expect(err.message).toContain('app:***@');
  });
});

describe('redactRedisUrl', () => {
  it('masks the password of every form and keeps the rest', () => {
    expect(redactRedisUrl('redis://u:pw@h:1/2')).toBe('redis://u:***@h:1/2');
    expect(redactRedisUrl('redis-cluster://:pw@a:1,b:2')).toBe('redis-cluster://:***@a:1,b:2');
    expect(redactRedisUrl('redis-sentinel://pw@s:1/m')).toBe('redis-sentinel://***@s:1/m');
    expect(redactRedisUrl('redis://h:1')).toBe('redis://h:1');
  });
});

describe('createRedisClient / createRedisSubscriber', () => {
  it('single server: a lazy Redis with the call site options and the default backoff', () => {
    const c = createRedisClient('rediss://u:p@h:6380/4', { ...opts, keyPrefix: 'x:', commandTimeoutMs: 250, socketTimeoutMs: 1000, enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false });
    expect(c).toBeInstanceOf(Redis);
    expect(isCluster(c)).toBe(false);
    const o = (c as Redis).options;
    expect(o).toMatchObject({
      host: 'h', port: 6380, db: 4, username: 'u', password: 'p', tls: {}, lazyConnect: true, keyPrefix: 'x:', connectTimeout: 5000,
      commandTimeout: 250, socketTimeout: 1000, enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false, connectionName: 'latchkey-test',
    });
    expect([1, 5, 30].map((t) => o.retryStrategy!(t))).toEqual([100, 500, 2000]);
    expect(c.status).toBe('wait');
  });

  it('defaults: maxRetriesPerRequest 1, connectTimeout 5 s, no TLS', () => {
    const o = (createRedisClient('redis://h', opts) as Redis).options;
    expect(o).toMatchObject({ host: 'h', port: 6379, db: 0, maxRetriesPerRequest: 1, connectTimeout: 5000 });
    expect(o.tls).toBeUndefined();
  });

  it('sentinel: a Redis with sentinels and the master name', () => {
    const c = createRedisClient('redis-sentinel://:pw@s1:26380,s2/mymaster/1', opts) as Redis;
    expect(c).toBeInstanceOf(Redis);
    expect(c.options).toMatchObject({ sentinels: [{ host: 's1', port: 26380 }, { host: 's2', port: 26379 }], name: 'mymaster', db: 1, password: 'pw', lazyConnect: true });
  });

  it('cluster: a lazy Cluster of the seed nodes; per-node options in redisOptions; sharded subscribers only for a subscriber', () => {
    const c = createRedisClient('redis-cluster://u:p@127.0.0.1:7101,127.0.0.1:7102', { ...opts, keyPrefix: 'x:', commandTimeoutMs: 250, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    expect(c).toBeInstanceOf(Cluster);
    expect(isCluster(c)).toBe(true);
    const cl = c as Cluster;
    expect(cl.options).toMatchObject({ lazyConnect: true, keyPrefix: 'x:', enableOfflineQueue: false, shardedSubscribers: false });
    expect(cl.options.redisOptions).toMatchObject({ username: 'u', password: 'p', commandTimeout: 250, maxRetriesPerRequest: 0, connectionName: 'latchkey-test', connectTimeout: 5000 });
    expect(cl.options.clusterRetryStrategy!(3)).toBe(300);
    const sub = createRedisSubscriber('redis-cluster://127.0.0.1:7101', opts) as Cluster;
    expect(sub.options.shardedSubscribers).toBe(true);
    expect(sub.options.keyPrefix).toBeFalsy();
  });

  it('refuses a keyPrefix with a hash tag on a cluster (every key would share one slot)', () => {
    expect(() => createRedisClient('redis-cluster://a:1', { ...opts, keyPrefix: '{lk}:' })).toThrow(expect.objectContaining({ code: 'LK_BAD_ARGUMENT' }));
    expect(createRedisClient('redis://a:1', { ...opts, keyPrefix: '{lk}:' })).toBeInstanceOf(Redis);
  });

  it('a bad URL throws LK_CONFIG_INVALID_VALUE before any client exists', () => {
    expect(() => createRedisClient('redis://a:1,b:2', opts)).toThrow(expect.objectContaining({ code: 'LK_CONFIG_INVALID_VALUE' }));
    expect(() => createRedisSubscriber('nope', opts)).toThrow(expect.objectContaining({ code: 'LK_CONFIG_INVALID_VALUE' }));
  });
});
