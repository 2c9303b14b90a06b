/**
 * RedisCache against a real Redis. Never skipped: CI starts Redis, and a missing Redis must fail
 * the run, not pass it quietly. Point it elsewhere with LATCHKEY_TEST_REDIS_URL. The contract also
 * runs on the local Redis Cluster (skipped with a message unless LATCHKEY_TEST_REDIS_CLUSTER is
 * set; required in CI) and on a Sentinel-managed master started here.
 *
 * Outages are simulated with a TCP proxy between the client and the real Redis: "stopped" closes
 * the proxy (connections reset, new ones refused), "hung" keeps connections open but stops moving
 * bytes (a frozen server, or a partition without RST).
 */
import { randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisCache } from '../../src/cache/cache-redis.js';
import { LatchkeyError } from '../../src/errors.js';
import { REDIS_URL, RedisSentinel, redisClusterUrl } from '../helpers/redis-topologies.js';
import { cacheContract, expectCode, uniqueKey } from './cache.contract.js';

const CLUSTER_URL = redisClusterUrl();
// One prefix per run: concurrent runs against one Redis do not see each other's keys.
const PREFIX = `latchkey-test:${randomBytes(4).toString('hex')}:`;
const LONG_TTL_MS = 60_000; // ms
const COMMAND_TIMEOUT_MS = 100; // ms, for the outage tests
const CONNECT_TIMEOUT_MS = 500; // ms, for the outage tests
/** Slack for timers and a loaded CI machine on top of a configured timeout. */
const SLACK_MS = 1_000; // ms

cacheContract('redis', () => RedisCache.connect(REDIS_URL, { keyPrefix: PREFIX }), { shared: true });
cacheContract('redis cluster', () => RedisCache.connect(CLUSTER_URL!, { keyPrefix: PREFIX }), { shared: true, skip: CLUSTER_URL === null });

describe('RedisCache on Sentinel', () => {
  let sentinel: RedisSentinel | undefined;
  beforeAll(async () => {
    sentinel = await RedisSentinel.start();
  });
  afterAll(async () => {
    await sentinel?.stop();
  });
  cacheContract('redis sentinel', () => RedisCache.connect(sentinel!.url, { keyPrefix: PREFIX }), { shared: true });
});

describe.skipIf(CLUSTER_URL === null)('RedisCache on a cluster', () => {
  it('spreads keys over every master (one command per key: no cross-slot command to refuse)', async () => {
    const cache = await RedisCache.connect(CLUSTER_URL!, { keyPrefix: PREFIX });
    const keys = Array.from({ length: 30 }, (_, i) => uniqueKey(`spread-${i}`));
    await Promise.all(keys.map((k) => cache.set(k, k, LONG_TTL_MS)));
    expect(await Promise.all(keys.map((k) => cache.get(k)))).toEqual(keys);
    // Which master holds each key: CLUSTER KEYSLOT on any node, then the slot ranges of CLUSTER SLOTS.
    const first = CLUSTER_URL!.replace('redis-cluster://', 'redis://').split(',')[0]!;
    const raw = new Redis(first, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await raw.connect();
    const ranges = (await raw.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
    const owners = new Set<number>();
    for (const k of keys) {
      const slot = Number(await raw.call('CLUSTER', 'KEYSLOT', PREFIX + k));
      owners.add(ranges.find(([lo, hi]) => slot >= lo && slot <= hi)![2][1]);
    }
    expect(owners.size).toBe(3);
    await raw.quit();
    await Promise.all(keys.map((k) => cache.delete(k)));
    await cache.close();
  });

  it('refuses a key prefix holding a hash tag with LK_BAD_ARGUMENT', async () => {
    await expectCode(RedisCache.connect(CLUSTER_URL!, { keyPrefix: '{latchkey}:' }), 'LK_BAD_ARGUMENT');
  });
});

/**
 * TCP proxy to the real Redis that can be stopped, restarted on the same port, or made to hang.
 * "Hung" stops reading in both directions (bytes wait in kernel buffers), like a frozen server
 * process: TCP stays up, nothing is answered, and on resume everything is delivered in order.
 */
class FlakyProxy {
  port = 0;
  /** Connections accepted since construction. */
  accepted = 0;
  private isHung = false;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly target: { host: string; port: number }) {}

  get hung(): boolean {
    return this.isHung;
  }
  set hung(value: boolean) {
    this.isHung = value;
    for (const s of this.sockets) {
      if (value) s.pause();
      else s.resume();
    }
  }

  async start(port = 0): Promise<void> {
    const server = net.createServer((client) => {
      this.accepted++;
      const upstream = net.connect(this.target.port, this.target.host);
      this.sockets.add(client).add(upstream);
      if (this.isHung) {
        client.pause();
        upstream.pause();
      }
      client.on('data', (d) => upstream.write(d));
      upstream.on('data', (d) => client.write(d));
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      for (const s of [client, upstream]) {
        s.on('close', drop);
        s.on('error', drop);
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Resets every connection and stops listening: the port refuses connections. */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** REDIS_URL (credentials, db) with host and port replaced by the proxy's. */
  url(): string {
    const u = new URL(REDIS_URL);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }
}

function redisTarget(): { host: string; port: number } {
  const u = new URL(REDIS_URL);
  return { host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : 6379 };
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Settled {
  ms: number;
  value?: unknown;
  error?: unknown;
}

/** Awaits `p` without throwing; `ms` is measured from `start` (default: now). */
async function timed(p: Promise<unknown>, start = performance.now()): Promise<Settled> {
  try {
    const value = await p;
    return { ms: performance.now() - start, value };
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
}

function expectUnavailable(s: Settled): void {
  expect(s.error, 'expected a rejection').toBeInstanceOf(LatchkeyError);
  expect((s.error as LatchkeyError).code).toBe('LK_CACHE_UNAVAILABLE');
  expect((s.error as LatchkeyError).cause, 'the backend error is attached as cause').toBeDefined();
}

/** Retries `fn` until it resolves or `withinMs` passes; returns its value or throws its last error. */
async function eventually<T>(fn: () => Promise<T>, withinMs: number): Promise<T> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (performance.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

describe('RedisCache', () => {
  let raw: Redis;
  const caches: RedisCache[] = [];
  const proxies: FlakyProxy[] = [];

  beforeAll(async () => {
    // Fails the file with a clear cause when the test Redis is not running.
    raw = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    raw.on('error', () => {});
    await raw.connect().catch((err: unknown) => {
      throw new Error(`test Redis not reachable at ${REDIS_URL} (start one or set LATCHKEY_TEST_REDIS_URL)`, {
        cause: err,
      });
    });
  });
  afterAll(async () => {
    await raw?.quit().catch(() => {});
  });
  afterEach(async () => {
    await Promise.all(caches.splice(0).map((c) => c.close()));
    await Promise.all(proxies.splice(0).map((p) => p.stop()));
  });

  const connect = async (url: string, opts: Parameters<typeof RedisCache.connect>[1] = {}): Promise<RedisCache> => {
    const cache = await RedisCache.connect(url, { keyPrefix: PREFIX, ...opts });
    caches.push(cache);
    return cache;
  };
  const proxy = async (): Promise<FlakyProxy> => {
    const p = new FlakyProxy(redisTarget());
    proxies.push(p);
    await p.start();
    return p;
  };

  it('stores keys under the prefix with a millisecond TTL (SET PX)', async () => {
    const cache = await connect(REDIS_URL);
    const key = uniqueKey('prefix');
    await cache.set(key, 'v', 5_000);
    expect(await raw.get(PREFIX + key)).toBe('v');
    const pttl = await raw.pttl(PREFIX + key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(5_000);
    await cache.delete(key);
    expect(await raw.exists(PREFIX + key)).toBe(0);
  });

  it("clients with different prefixes do not see each other's keys", async () => {
    const a = await connect(REDIS_URL, { keyPrefix: `${PREFIX}a:` });
    const b = await connect(REDIS_URL, { keyPrefix: `${PREFIX}b:` });
    const key = uniqueKey('isolated');
    await a.set(key, 'from-a', LONG_TTL_MS);
    expect(await b.get(key)).toBeNull();
    await b.delete(key);
    expect(await a.get(key)).toBe('from-a');
    await a.delete(key);
  });

  it('connect to a closed loopback port fails fast with LK_CACHE_UNAVAILABLE and the cause', async () => {
    const port = await closedPort();
    const s = await timed(RedisCache.connect(`redis://127.0.0.1:${port}`, { connectTimeoutMs: CONNECT_TIMEOUT_MS }));
    expectUnavailable(s);
    expect((s.error as LatchkeyError).cause).toMatchObject({ code: 'ECONNREFUSED' });
    expect(s.ms).toBeLessThan(CONNECT_TIMEOUT_MS + SLACK_MS);
  });

  it('connect to a server that accepts TCP but never answers fails with LK_CACHE_UNAVAILABLE after connectTimeoutMs', async () => {
    const p = await proxy();
    p.hung = true;
    const s = await timed(RedisCache.connect(p.url(), { connectTimeoutMs: CONNECT_TIMEOUT_MS, commandTimeoutMs: 10_000 }));
    expectUnavailable(s);
    expect(s.ms).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 50);
    expect(s.ms).toBeLessThan(CONNECT_TIMEOUT_MS + SLACK_MS);
  });

  it('commands against a stopped server reject with LK_CACHE_UNAVAILABLE at once, and work again after it returns', async () => {
    const p = await proxy();
    const errors: Error[] = [];
    const cache = await connect(p.url(), {
      commandTimeoutMs: 2_000, // long, so "rejected at once" cannot be the timeout firing
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      onError: (e) => errors.push(e),
    });
    const key = uniqueKey('stopped');
    await cache.set(key, 'before', LONG_TTL_MS);
    const port = p.port;

    await p.stop();
    await sleep(20); // let the client see the reset
    const start = performance.now();
    const settled = await Promise.all(
      [cache.get(key), cache.set(key, 'during', LONG_TTL_MS), cache.delete(key)].map((op) => timed(op, start)),
    );
    for (const s of settled) {
      expectUnavailable(s);
      // Offline queue off: no waiting for a reconnect or for the command timeout.
      expect(s.ms).toBeLessThan(SLACK_MS);
    }
    await sleep(300); // a reconnect attempt or two
    expect(errors.length).toBeGreaterThan(0); // reconnect failures reach onError

    await p.start(port); // same port: the client's reconnect loop finds it
    expect(await eventually(() => cache.get(key), 5_000)).toBe('before');
    await cache.delete(key);
  });

  it('a command in flight when the connection drops rejects with LK_CACHE_UNAVAILABLE before its timeout', async () => {
    const p = await proxy();
    const cache = await connect(p.url(), { commandTimeoutMs: 5_000, connectTimeoutMs: CONNECT_TIMEOUT_MS });
    p.hung = true; // the GET reaches nobody...
    const pending = timed(cache.get(uniqueKey('in-flight')));
    await sleep(50);
    await p.stop(); // ...then the connection resets
    const s = await pending;
    expectUnavailable(s);
    expect(s.ms).toBeLessThan(1_000); // the reset, not the 5 s command timeout, ended it
  });

  it('commands against a hung server reject with LK_CACHE_UNAVAILABLE after commandTimeoutMs, and recover', async () => {
    const p = await proxy();
    const cache = await connect(p.url(), { commandTimeoutMs: COMMAND_TIMEOUT_MS, connectTimeoutMs: CONNECT_TIMEOUT_MS });
    const key = uniqueKey('hung');
    await cache.set(key, 'before', LONG_TTL_MS);

    p.hung = true;
    const start = performance.now();
    const settled = await Promise.all(
      [cache.get(key), cache.set(key, 'during', LONG_TTL_MS), cache.delete(key)].map((op) => timed(op, start)),
    );
    for (const s of settled) {
      expectUnavailable(s);
      expect(s.ms).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 5);
      expect(s.ms).toBeLessThan(COMMAND_TIMEOUT_MS + SLACK_MS);
    }

    // Recovery: either the frozen connection thaws, or it was torn down (socketTimeout) and a new
    // one made. The timed-out SET/DEL above may have run on thaw (a rejection means "unknown", not
    // "not written"), so check with a fresh write rather than the old value.
    p.hung = false;
    const fresh = uniqueKey('hung-after');
    const roundTrip = async (): Promise<string | null> => {
      await cache.set(fresh, 'after', LONG_TTL_MS);
      return cache.get(fresh);
    };
    expect(await eventually(roundTrip, 8_000)).toBe('after');
    await cache.delete(fresh);
  });

  it('a connection that stays silent is replaced, so the client recovers without a reset from the server', async () => {
    const p = await proxy();
    const cache = await connect(p.url(), { commandTimeoutMs: COMMAND_TIMEOUT_MS, connectTimeoutMs: CONNECT_TIMEOUT_MS });
    expect(p.accepted).toBe(1);
    p.hung = true;
    expectUnavailable(await timed(cache.get(uniqueKey('silent'))));
    // socketTimeout is max(4 x commandTimeoutMs, 1 s) = 1 s here; reconnects through a hung proxy
    // fail their ready check; stay hung past that so the old connection is gone for sure.
    await sleep(1_500);
    p.hung = false;
    const key = uniqueKey('silent-after');
    const roundTrip = async (): Promise<string | null> => {
      await cache.set(key, 'after', LONG_TTL_MS);
      return cache.get(key);
    };
    expect(await eventually(roundTrip, 8_000)).toBe('after');
    expect(p.accepted).toBeGreaterThan(1); // recovered on a new connection
    await cache.delete(key);
  });

  it('close during an outage resolves promptly and stops reconnecting', async () => {
    const p = await proxy();
    const cache = await connect(p.url(), { commandTimeoutMs: COMMAND_TIMEOUT_MS, connectTimeoutMs: CONNECT_TIMEOUT_MS });
    const port = p.port;
    await p.stop();
    await sleep(20);
    const s = await timed(cache.close());
    expect(s.error).toBeUndefined();
    expect(s.ms).toBeLessThan(SLACK_MS);
    // Nothing reconnects through a restarted proxy after close.
    await p.start(port);
    await sleep(300);
    await expectCode(cache.get(uniqueKey('after-close')), 'LK_CACHE_UNAVAILABLE');
  });

  it('rejects a non-positive commandTimeoutMs with LK_BAD_ARGUMENT', async () => {
    await expectCode(RedisCache.connect(REDIS_URL, { commandTimeoutMs: 0 }), 'LK_BAD_ARGUMENT');
  });

  it('rejects a malformed URL with LK_CONFIG_INVALID_VALUE, unreachable Sentinels with LK_CACHE_UNAVAILABLE in time', async () => {
    await expectCode(RedisCache.connect('redis://127.0.0.1:6379?db=1'), 'LK_CONFIG_INVALID_VALUE');
    const port = await closedPort();
    const s = await timed(RedisCache.connect(`redis-sentinel://127.0.0.1:${port}/mymaster`, { connectTimeoutMs: CONNECT_TIMEOUT_MS }));
    expectUnavailable(s);
    expect(s.ms).toBeLessThan(CONNECT_TIMEOUT_MS + SLACK_MS);
  });
});
