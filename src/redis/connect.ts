/**
 * One place that turns `redisUrl` into an ioredis client; the cache (cache/cache-redis.ts), the bus
 * (bus/bus-redis.ts) and the node registry (bootstrap/nodes.ts) all connect through it.
 *
 * URL forms (parsed strictly: anything else is LK_CONFIG_INVALID_VALUE, which stops start-up):
 *
 *   redis://[user:pass@]host[:port][/db]        one server (port 6379, db 0 by default)
 *   rediss://[user:pass@]host[:port][/db]       the same over TLS (server name = host)
 *   redis-cluster://[user:pass@]h1:p1,h2:p2,...  Redis Cluster; the hosts are seed nodes, the
 *                                                client learns the others (CLUSTER SLOTS); db 0 only
 *   redis-sentinel://[user:pass@]s1:p1,s2:p2/<masterName>[/db]
 *                                                the master that these Sentinels name (port 26379 by
 *                                                default); user:pass authenticates to the master,
 *                                                the Sentinels themselves are asked without auth
 *
 * Hosts are names, IPv4 addresses or [IPv6] addresses; user and password are percent-decoded
 * (`redis://:p%40ss@host` for the password "p@ss"; a password alone is `:pass@`). Query strings
 * and fragments are refused rather than ignored, so a setting written there is never silently lost.
 *
 * What differs on a cluster, and why callers must care (see docs/operations.md "Redis topologies"):
 * - Keys of one multi-key command (MULTI, a Lua script, MGET, DEL k1 k2) must hash to one slot:
 *   give them one hash tag, `<prefix>{tag}...`, or send one command per key. `keyPrefix` must not
 *   contain `{` for that reason: it would put every key in one slot.
 * - Pub/sub uses the sharded commands (SPUBLISH/SSUBSCRIBE, Redis 7): a message travels only to the
 *   shard that owns its channel, instead of over the cluster bus to every node. ioredis applies
 *   `keyPrefix` to sharded channels too (they are keys for routing), so pub/sub clients get none.
 *   A subscriber (createRedisSubscriber) keeps one connection per master and re-subscribes after
 *   a failover or slot move.
 * Sentinel and single Redis behave alike for callers: one connection to the current master;
 * after a Sentinel failover ioredis asks the Sentinels again and reconnects to the new master.
 */
import { createRequire } from 'node:module';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { LatchkeyError } from '../errors.js';

export type RedisClient = Redis | Cluster;

/** ioredis, loaded with the first client: a node without Redis (the embedded default) never loads it. */
let ioredis: typeof import('ioredis') | null = null;
function lib(): typeof import('ioredis') {
  return (ioredis ??= createRequire(import.meta.url)('ioredis') as typeof import('ioredis'));
}

export interface HostPort {
  host: string;
  port: number;
}

/** What a redisUrl names, after strict parsing. */
export type RedisTarget =
  | { topology: 'single'; tls: boolean; node: HostPort; db: number; username?: string; password?: string }
  | { topology: 'cluster'; nodes: HostPort[]; username?: string; password?: string }
  | { topology: 'sentinel'; sentinels: HostPort[]; masterName: string; db: number; username?: string; password?: string };

export type RedisTopology = RedisTarget['topology'];

export interface RedisClientOptions {
  /** Shown in CLIENT LIST (per node on a cluster). */
  connectionName: string;
  /** TCP connect + ready check of each (re)connect. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Retries of a command whose connection dropped. Default 1: one retry after the reconnect. */
  maxRetriesPerRequest?: number | null;
  /**
   * Delay before reconnect attempt `times`; null stops reconnecting. Default 100 ms x times,
   * capped at 2 s. On a cluster this is the whole cluster's reconnect (clusterRetryStrategy): a
   * single node's lost connection is replaced through a slot refresh, as ioredis does.
   */
  retryStrategy?: (times: number) => number | null;
  keyPrefix?: string;
  /** Bound on each command, from send to reply. Default: none. */
  commandTimeoutMs?: number;
  /** Destroy a connection that sends nothing for this long while replies are pending. Default: none. */
  socketTimeoutMs?: number;
  /** Queue commands while disconnected (ioredis default true). */
  enableOfflineQueue?: boolean;
  /** Resend commands that were in flight when the connection dropped (ioredis default true). */
  autoResendUnfulfilledCommands?: boolean;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000; // ms
const DEFAULT_SINGLE_PORT = 6379;
const DEFAULT_SENTINEL_PORT = 26379;
const MAX_RECONNECT_DELAY_MS = 2_000; // ms

/** Backoff of reconnect attempts: 100 ms, 200 ms, ... capped at 2 s; never gives up. */
export function defaultRetryStrategy(times: number): number {
  return Math.min(times * 100, MAX_RECONNECT_DELAY_MS);
}

const SCHEME = /^(redis|rediss|redis-cluster|redis-sentinel):\/\/(.*)$/s;
const NAME_HOST = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const IPV6_HOST = /^\[([0-9A-Fa-f:.]+)\]$/;
const MASTER_NAME = /^[A-Za-z0-9._-]+$/;

function invalid(url: string, why: string): LatchkeyError {
  return new LatchkeyError('LK_CONFIG_INVALID_VALUE', `redisUrl ${redactRedisUrl(url)}: ${why}`);
}

/** Parses a redisUrl (forms above). Throws LatchkeyError LK_CONFIG_INVALID_VALUE naming what is wrong. */
export function parseRedisUrl(url: string): RedisTarget {
  const m = SCHEME.exec(url);
  if (!m) throw invalid(url, 'must start with redis://, rediss://, redis-cluster:// or redis-sentinel://');
  const scheme = m[1]!;
  let rest = m[2]!;
  if (/[?#]/.test(rest)) throw invalid(url, 'query strings and fragments are not accepted');
  if (/\s/.test(rest)) throw invalid(url, 'contains white space');

  let auth: { username?: string; password?: string } = {};
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    auth = parseUserInfo(url, rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  const slash = rest.indexOf('/');
  const hostPart = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash + 1) : '';
  const defaultPort = scheme === 'redis-sentinel' ? DEFAULT_SENTINEL_PORT : DEFAULT_SINGLE_PORT;
  const hosts = hostPart.split(',').map((h) => parseHostPort(url, h, defaultPort));
  const segments = path === '' ? [] : path.split('/');

  switch (scheme) {
    case 'redis':
    case 'rediss': {
      if (hosts.length !== 1) throw invalid(url, `${scheme}:// names one server; use redis-cluster:// or redis-sentinel:// for several`);
      if (segments.length > 1) throw invalid(url, 'the path is at most one database number');
      return { topology: 'single', tls: scheme === 'rediss', node: hosts[0]!, db: parseDb(url, segments[0]), ...auth };
    }
    case 'redis-cluster': {
      if (segments.some((s) => s !== '')) throw invalid(url, 'a cluster has only database 0: no path after the seed nodes');
      return { topology: 'cluster', nodes: hosts, ...auth };
    }
    case 'redis-sentinel': {
      const [name, db, ...more] = segments;
      if (name === undefined || name === '') throw invalid(url, 'names no master: redis-sentinel://host:port[,host:port...]/<masterName>[/db]');
      if (!MASTER_NAME.test(name)) throw invalid(url, `master name "${name}" may only use letters, digits, '.', '_' and '-'`);
      if (more.length > 0) throw invalid(url, 'the path is /<masterName>[/db]');
      return { topology: 'sentinel', sentinels: hosts, masterName: name, db: parseDb(url, db), ...auth };
    }
  }
  throw invalid(url, `unknown scheme ${scheme}`);
}

function parseUserInfo(url: string, info: string): { username?: string; password?: string } {
  const colon = info.indexOf(':');
  if (colon < 0) throw invalid(url, 'credentials are written user:password@ (or :password@ without a user name)');
  let username: string;
  let password: string;
  try {
    username = decodeURIComponent(info.slice(0, colon));
    password = decodeURIComponent(info.slice(colon + 1));
  } catch {
    throw invalid(url, 'user or password is not valid percent-encoding');
  }
  return { ...(username !== '' ? { username } : {}), ...(password !== '' ? { password } : {}) };
}

function parseHostPort(url: string, text: string, defaultPort: number): HostPort {
  if (text === '') throw invalid(url, 'a host is missing');
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) throw invalid(url, `unterminated IPv6 address in "${text}"`);
    const v6 = IPV6_HOST.exec(text.slice(0, end + 1));
    if (!v6) throw invalid(url, `"${text}" is not an IPv6 address in brackets`);
    host = v6[1]!;
    const after = text.slice(end + 1);
    if (after !== '' && !after.startsWith(':')) throw invalid(url, `unexpected "${after}" after ${text.slice(0, end + 1)}`);
    portText = after === '' ? undefined : after.slice(1);
  } else {
    const parts = text.split(':');
    if (parts.length > 2) throw invalid(url, `"${text}": write IPv6 addresses in brackets, [::1]:6379`);
    host = parts[0]!;
    portText = parts[1];
    if (!NAME_HOST.test(host)) throw invalid(url, `"${host}" is not a host name or IPv4 address`);
  }
  if (portText === undefined) return { host, port: defaultPort };
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw invalid(url, `port "${portText}" is not 1-65535`);
  }
  return { host, port: Number(portText) };
}

function parseDb(url: string, text: string | undefined): number {
  if (text === undefined || text === '') return 0;
  if (!/^[0-9]{1,9}$/.test(text)) throw invalid(url, `database "${text}" is not a number`);
  return Number(text);
}

/** The URL without its password (user names are kept), for logs and error messages. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^@/]*)@/, (_, scheme: string, info: string) => {
    const colon = info.indexOf(':');
    return colon < 0 ? `${scheme}***@` : `${scheme}${info.slice(0, colon)}:***@`;
  });
}

export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

/**
 * A client for `url`, not connected yet (lazyConnect: connect it with connectRedis, so start-up
 * failures reject instead of retrying in the background). Throws LK_CONFIG_INVALID_VALUE for a bad
 * URL and LK_BAD_ARGUMENT for a keyPrefix with a hash tag on a cluster.
 */
export function createRedisClient(url: string, opts: RedisClientOptions): RedisClient {
  return build(parseRedisUrl(url), url, opts, false);
}

/**
 * A connection for pub/sub only (a connection in subscribe mode can do nothing else). On a cluster
 * it is a Cluster with one sharded subscriber per master (ioredis `shardedSubscribers`): subscribe
 * with SSUBSCRIBE one channel per call (several channels in one call must share a slot) and listen
 * to 'smessage'. Elsewhere SUBSCRIBE and 'message', as usual. No keyPrefix (see the top of file).
 */
export function createRedisSubscriber(url: string, opts: Omit<RedisClientOptions, 'keyPrefix'>): RedisClient {
  return build(parseRedisUrl(url), url, opts, true);
}

function build(target: RedisTarget, url: string, opts: RedisClientOptions, subscriber: boolean): RedisClient {
  const auth = { ...(target.username !== undefined ? { username: target.username } : {}), ...(target.password !== undefined ? { password: target.password } : {}) };
  const perConnection: RedisOptions = {
    connectTimeout: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: opts.maxRetriesPerRequest === undefined ? 1 : opts.maxRetriesPerRequest,
    connectionName: opts.connectionName,
    ...(opts.commandTimeoutMs !== undefined ? { commandTimeout: opts.commandTimeoutMs } : {}),
    ...(opts.socketTimeoutMs !== undefined ? { socketTimeout: opts.socketTimeoutMs } : {}),
    ...(opts.autoResendUnfulfilledCommands !== undefined ? { autoResendUnfulfilledCommands: opts.autoResendUnfulfilledCommands } : {}),
    ...auth,
  };
  const retryStrategy = opts.retryStrategy ?? defaultRetryStrategy;
  const keyPrefix = subscriber ? undefined : opts.keyPrefix;

  switch (target.topology) {
    case 'single':
    case 'sentinel': {
      const where: RedisOptions =
        target.topology === 'single'
          ? { host: target.node.host, port: target.node.port, ...(target.tls ? { tls: {} } : {}) }
          : { sentinels: target.sentinels, name: target.masterName };
      const { Redis: RedisCtor } = lib();
      return new RedisCtor({
        ...where,
        ...perConnection,
        db: target.db,
        lazyConnect: true,
        retryStrategy,
        ...(keyPrefix !== undefined ? { keyPrefix } : {}),
        ...(opts.enableOfflineQueue !== undefined ? { enableOfflineQueue: opts.enableOfflineQueue } : {}),
      });
    }
    case 'cluster': {
      if (keyPrefix?.includes('{')) {
        throw new LatchkeyError('LK_BAD_ARGUMENT', `keyPrefix "${keyPrefix}" holds a hash tag: on ${redactRedisUrl(url)} every key would land in one slot`);
      }
      const options: ClusterOptions = {
        lazyConnect: true,
        clusterRetryStrategy: retryStrategy,
        redisOptions: perConnection,
        shardedSubscribers: subscriber,
        ...(keyPrefix !== undefined ? { keyPrefix } : {}),
        ...(opts.enableOfflineQueue !== undefined ? { enableOfflineQueue: opts.enableOfflineQueue } : {}),
      };
      const { Cluster: ClusterCtor } = lib();
      return new ClusterCtor(target.nodes, options);
    }
  }
}

/**
 * Connects `client` and waits until it is ready (a cluster: CLUSTER INFO says ok), at most
 * `timeoutMs`: ioredis alone would wait for ever on unreachable Sentinels, and a server that
 * accepts TCP and never answers must not hang start-up. Rejects with LK_CACHE_UNAVAILABLE (the
 * last connection error as cause) and leaves nothing running; resolves once ready.
 */
export async function connectRedis(client: RedisClient, opts: { url: string; what: string; timeoutMs?: number }): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  // Keep the last connection error: connect() itself often rejects with "Connection is closed".
  let lastError: Error | undefined;
  const onError = (err: Error): void => {
    lastError = err;
  };
  client.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis not ready within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([client.connect(), deadline]);
  } catch (err) {
    client.disconnect(); // stops the reconnect loop a failed first connect would start
    throw new LatchkeyError('LK_CACHE_UNAVAILABLE', `${opts.what}: cannot connect to Redis at ${redactRedisUrl(opts.url)}: ${(lastError ?? (err as Error)).message}`, {
      cause: lastError ?? err,
    });
  } finally {
    clearTimeout(timer);
    client.off('error', onError);
  }
}
