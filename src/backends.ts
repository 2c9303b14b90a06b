/**
 * The one place that chooses backends. Each choice logs one info line naming the backend
 * (`backend`) and where it is, with credentials masked:
 *
 *   store          no Cassandra contact points -> embedded LMDB store in <dataDir>/store
 *                  Cassandra contact points    -> Cassandra store (cluster node)
 *   cache          no Redis URL -> in-process LRU cache;  Redis URL -> Redis cache shared by the nodes
 *                  a gateway process of a multi-process node without Redis -> the primary's LRU over IPC
 *   bus            no Redis URL -> in-process bus;        Redis URL -> Redis pub/sub (busKind)
 *                  a gateway process of a multi-process node without Redis -> relayed by the primary
 *   node registry  no Redis URL -> in-process registry;   Redis URL -> one Redis hash shared by the nodes
 *   directory      no Redis URL -> none (one node: nothing to route to); Redis URL -> the cluster
 *                  directory of sessions and owner members in Redis (cluster/directory.ts)
 *
 * A Redis URL names one server, a Sentinel-managed master or a Redis Cluster (redis/connect.ts);
 * each Redis line logs which (`topology`).
 *
 * server.ts wires what these return; the CLI's offline commands open the store here too.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { MemoryNodeRegistry, RedisNodeRegistry, type NodeRegistry } from './bootstrap/nodes.js';
import type { Bus } from './bus/bus.js';
import { MemoryBus } from './bus/bus-memory.js';
import { RedisBus } from './bus/bus-redis.js';
import type { Cache } from './cache/cache.js';
import { MemoryCache } from './cache/cache-memory.js';
import { RedisCache } from './cache/cache-redis.js';
import { IpcCache } from './cache/cache-ipc.js';
import { IpcBus } from './ipc/bus-ipc.js';
import type { NodeLink } from './ipc/link.js';
import { redactConfig, type Config } from './config/config.js';
import { connectRedis, createRedisClient, parseRedisUrl, type RedisTopology } from './redis/connect.js';
import { LocalDirectory, RedisDirectory, type ClusterDirectory } from './cluster/directory.js';
import { EmbeddedStore } from './store/store-embedded.js';
import type { Store } from './store/store.js';

/** The Redis URL as logs may show it (user and password masked, like the `starting` line). */
function shownRedisUrl(config: Config): string {
  return redactConfig(config).redisUrl as string;
}

/** single | sentinel | cluster; throws LK_CONFIG_INVALID_VALUE for a bad URL before anything connects. */
function redisTopology(config: Config): RedisTopology {
  return parseRedisUrl(config.redisUrl).topology;
}

export async function openStore(config: Config, log: Logger): Promise<Store> {
  if (config.cassandraContactPoints.length > 0) {
    log.info({ backend: 'cassandra', contactPoints: config.cassandraContactPoints, keyspace: config.cassandraKeyspace }, 'store selected');
    // Loaded only when configured: the embedded default never pays for cassandra-driver.
    const { CassandraStore } = await import('./store/store-cassandra.js');
    return CassandraStore.open({
      contactPoints: config.cassandraContactPoints,
      localDataCenter: config.cassandraLocalDc,
      keyspace: config.cassandraKeyspace,
      ...(config.cassandraUsername ? { username: config.cassandraUsername, password: config.cassandraPassword } : {}),
    });
  }
  const dir = path.resolve(config.dataDir, 'store');
  log.info({ backend: 'lmdb', dir }, 'store selected');
  return EmbeddedStore.open(dir);
}

/** The store is this machine's embedded one (LMDB, shared by the node's processes): reads are local and cheap. */
export function isLocalStore(store: Store): boolean {
  return store instanceof EmbeddedStore;
}

/** `link`: this is a gateway process of a multi-process node (ipc/link.ts). */
export async function openCache(config: Config, log: Logger, link: NodeLink | null = null): Promise<Cache> {
  if (config.redisUrl) {
    log.info({ backend: 'redis', topology: redisTopology(config), url: shownRedisUrl(config) }, 'cache selected');
    return RedisCache.connect(config.redisUrl, { onError: (err) => log.warn({ err }, 'redis cache connection error') });
  }
  if (link) {
    log.info({ backend: 'ipc' }, 'cache selected (the node primary\'s LRU, shared by its processes)');
    return new IpcCache(link);
  }
  log.info({ backend: 'memory' }, 'cache selected');
  return new MemoryCache();
}

/**
 * The bus backends. A new one (say, IPC among the processes of one node) adds its kind here, its
 * rule in busKind and its case in openBus; the compiler then checks that the switch covers it.
 */
export type BusKind = 'memory' | 'redis' | 'ipc';

/** Which bus this configuration asks for (`multiProcess`: a gateway process of a multi-process node). */
export function busKind(config: Config, multiProcess = false): BusKind {
  return config.redisUrl ? 'redis' : multiProcess ? 'ipc' : 'memory';
}

/** `nodeId`: this node's id (shared by the processes of a multi-process node); see bus.ts. */
export async function openBus(config: Config, log: Logger, link: NodeLink | null, nodeId: string, processIndex = 0): Promise<Bus> {
  const onError = (err: unknown): void => log.error({ err }, 'bus error');
  const kind = busKind(config, link !== null);
  switch (kind) {
    case 'ipc':
      log.info({ backend: kind }, 'bus selected (relayed by the node primary)');
      return new IpcBus(link!, { nodeId, onError });
    case 'redis':
      log.info({ backend: kind, topology: redisTopology(config), url: shownRedisUrl(config) }, 'bus selected');
      return RedisBus.connect(config.redisUrl, { nodeId, process: processIndex, onError });
    case 'memory':
      log.info({ backend: kind }, 'bus selected');
      return new MemoryBus({ nodeId, onError });
  }
}

/** The bootstrap node registry; an entry expires after three missed heartbeats. */
export async function openNodeRegistry(config: Config, log: Logger): Promise<NodeRegistry> {
  const expireMs = config.nodeHeartbeatMs * 3;
  if (config.redisUrl) {
    log.info({ backend: 'redis', topology: redisTopology(config), url: shownRedisUrl(config) }, 'node registry selected');
    return RedisNodeRegistry.connect(config.redisUrl, expireMs, { onError: (err) => log.warn({ err }, 'node registry Redis error') });
  }
  log.info({ backend: 'memory' }, 'node registry selected');
  return new MemoryNodeRegistry(expireMs);
}

/**
 * The cluster directory (who holds each session, which processes hold each owner's sessions).
 * `node`: the node id its processes share; `process`: this gateway process's index (0 alone).
 */
export async function openDirectory(config: Config, log: Logger, node: string, process: number): Promise<ClusterDirectory> {
  if (!config.redisUrl) {
    log.info({ backend: 'local' }, 'directory selected (one node: sessions and owners are routed in this node)');
    return new LocalDirectory();
  }
  log.info({ backend: 'redis', topology: redisTopology(config), url: shownRedisUrl(config) }, 'directory selected');
  // A command bound: a heartbeat stuck on a command through a failover would make this process look dead to every other.
  const redis = createRedisClient(config.redisUrl, { connectionName: 'latchkey-directory', connectTimeoutMs: 5000, maxRetriesPerRequest: 1, commandTimeoutMs: 2000 });
  const onError = (err: unknown): void => log.warn({ err }, 'directory Redis error');
  redis.on('error', onError);
  await connectRedis(redis, { url: config.redisUrl, what: 'directory', timeoutMs: 5000 });
  return RedisDirectory.open(redis, { node, process, heartbeatMs: config.nodeHeartbeatMs, onError });
}
