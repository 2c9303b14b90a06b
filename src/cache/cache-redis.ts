/**
 * Redis cache (ioredis): one cache shared by every node of a cluster, so a `delete` on one node
 * (credential revoked) is seen by all. See cache.ts for the contract every backend keeps; the TTL
 * rules (floor to whole ms, <= 0 deletes, non-finite rejects with LK_BAD_ARGUMENT) match
 * cache-memory.ts.
 *
 * Failure policy: the cache is an optimisation, a failure only sends the caller to the store. So
 * every command fails fast instead of waiting for Redis to come back:
 * - `commandTimeout` bounds every command: a hung Redis costs a handshake at most that long.
 * - The offline queue is off (`enableOfflineQueue: false`): while the connection is down, commands
 *   reject at once with LK_CACHE_UNAVAILABLE instead of queueing behind a reconnect, where they
 *   would wait out their timeout and pile up memory during an outage.
 * - `maxRetriesPerRequest: 0`: commands in flight when the connection drops reject as soon as the
 *   drop is seen, instead of waiting for reconnect attempts.
 * - `autoResendUnfulfilledCommands: false`: a SET that was in flight when the connection dropped
 *   must not be replayed after reconnect: by then another node may have deleted the key
 *   (revocation), and the replay would bring the stale value back until its TTL ends.
 * - `socketTimeout`: a connection that stops answering (peer gone without a FIN/RST) is destroyed
 *   and reconnected, so the node stops paying `commandTimeout` on every call after a few calls.
 * - The client reconnects in the background forever (backoff capped at 2 s), so the cache comes
 *   back by itself when Redis does.
 * Only the start is strict: connect() rejects unless Redis is ready within `connectTimeoutMs`, so a
 * misconfigured URL stops the server at start instead of turning into a silent, permanent miss.
 *
 * A failed or timed-out command may still have been executed by Redis; callers treat the
 * rejection as "unknown", never as "not written".
 *
 * Topologies (redis/connect.ts): single Redis, Sentinel and Redis Cluster. Every command here is
 * single-key (GET, SET PX [NX], DEL of one key), so nothing needs a hash tag on a cluster. On a
 * cluster the offline queue being off means commands reject at once while the cluster is not
 * ready; a command whose master just died is retried by ioredis on the new slot owner (100 ms
 * apart, at most 16 redirections), each attempt bounded by `commandTimeout`, so during a failover
 * a cache call can take longer than `commandTimeoutMs` before it rejects.
 */
import { LatchkeyError } from '../errors.js';
import { connectRedis, createRedisClient, type RedisClient } from '../redis/connect.js';
import type { Cache } from './cache.js';

export interface RedisCacheOptions {
  /** Prepended to every key, so several deployments can share one Redis. Default 'latchkey:'. */
  keyPrefix?: string;
  /** Bound on each command, from send to reply. Default 250 ms. */
  commandTimeoutMs?: number;
  /** Bound on the initial connect (TCP + ready check), and on the TCP connect of each reconnect. Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * Connection-level errors (refused, reset, reconnect failures). Commands report their own
   * failures by rejecting, so this is for logging only. Default: ignored (ioredis would otherwise
   * print every reconnect failure to the console).
   */
  onError?: (err: Error) => void;
}

export const DEFAULT_KEY_PREFIX = 'latchkey:';
// A cache read on a LAN answers in well under 1 ms; after 250 ms the store is the faster answer.
export const DEFAULT_COMMAND_TIMEOUT_MS = 250; // ms
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000; // ms
const MIN_SOCKET_TIMEOUT_MS = 1_000; // ms

export class RedisCache implements Cache {
  private closing: Promise<void> | undefined;

  private constructor(private readonly redis: RedisClient) {}

  /**
   * Connects and waits until Redis is ready. Rejects with LK_CONFIG_INVALID_VALUE if the URL is
   * invalid (redis/connect.ts lists the forms), with LK_CACHE_UNAVAILABLE (cause attached) if Redis
   * is unreachable or not ready within `connectTimeoutMs`; nothing keeps running after a rejection.
   */
  static async connect(url: string, opts: RedisCacheOptions = {}): Promise<RedisCache> {
    const commandTimeoutMs = positive('commandTimeoutMs', opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    const connectTimeoutMs = positive('connectTimeoutMs', opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    const onError = opts.onError;

    // A bad URL throws LK_CONFIG_INVALID_VALUE here (redis/connect.ts parses it strictly).
    const redis = createRedisClient(url, {
      keyPrefix: opts.keyPrefix ?? DEFAULT_KEY_PREFIX,
      connectTimeoutMs,
      commandTimeoutMs,
      // Detect a silent peer: no bytes for this long while commands are pending. Several command
      // timeouts, so one slow reply does not cost a reconnect.
      socketTimeoutMs: Math.max(4 * commandTimeoutMs, MIN_SOCKET_TIMEOUT_MS),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectionName: 'latchkey-cache', // shows in CLIENT LIST
    });
    if (onError) redis.on('error', onError);
    else redis.on('error', ignore); // without a listener, ioredis prints every reconnect failure
    await connectRedis(redis, { url, what: 'cache', timeoutMs: connectTimeoutMs });
    return new RedisCache(redis);
  }

  get(key: string): Promise<string | null> {
    if (this.closing !== undefined) return rejectClosed();
    return this.redis.get(key).catch(failGet);
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    if (this.closing !== undefined) return rejectClosed();
    if (!Number.isFinite(ttlMs)) {
      return Promise.reject(new LatchkeyError('LK_BAD_ARGUMENT', `cache ttlMs must be finite, got ${ttlMs}`));
    }
    const ttl = Math.floor(ttlMs);
    // SET PX rejects 0 and negatives; an already expired value must also remove the old one.
    if (ttl <= 0) return this.delete(key);
    return this.redis.set(key, value, 'PX', ttl).then(ignore, failSet);
  }

  delete(key: string): Promise<void> {
    if (this.closing !== undefined) return rejectClosed();
    // DEL, not UNLINK: values are small, so freeing them inline is as cheap as queueing them, and
    // DEL works on every Redis-compatible server. Either removes the key before replying.
    return this.redis.del(key).then(ignore, failDel);
  }

  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.closing !== undefined) return rejectClosed();
    const ttl = Math.floor(ttlMs);
    if (!Number.isFinite(ttlMs) || ttl <= 0) {
      return Promise.reject(new LatchkeyError('LK_BAD_ARGUMENT', `setIfAbsent ttlMs must be > 0, got ${ttlMs}`));
    }
    return this.redis.set(key, value, 'PX', ttl, 'NX').then((r) => r === 'OK', failSet);
  }

  /** QUIT when connected (pending replies arrive first), else drop the socket. Idempotent; never rejects. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const redis = this.redis;
    if (redis.status === 'ready') {
      try {
        await redis.quit(); // bounded by commandTimeout
        return;
      } catch {
        // fall through: a dead connection cannot QUIT
      }
    }
    if (redis.status !== 'end') redis.disconnect(); // also cancels a pending reconnect
  }
}

function ignore(): void {}

function unavailable(op: string, err: unknown): LatchkeyError {
  const msg = err instanceof Error ? err.message : String(err);
  return new LatchkeyError('LK_CACHE_UNAVAILABLE', `Redis ${op}: ${msg}`, { cause: err });
}

// One function per command, defined once: the hot path allocates no closure per call.
function failGet(err: unknown): never {
  throw unavailable('GET', err);
}
function failSet(err: unknown): never {
  throw unavailable('SET', err);
}
function failDel(err: unknown): never {
  throw unavailable('DEL', err);
}

function rejectClosed(): Promise<never> {
  return Promise.reject(new LatchkeyError('LK_CACHE_UNAVAILABLE', 'Redis cache is closed'));
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new LatchkeyError('LK_BAD_ARGUMENT', `${name} must be a positive number of ms, got ${value}`);
  }
  return value;
}
