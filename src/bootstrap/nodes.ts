/**
 * The node registry: which operations nodes serve, where, with which key, how loaded. Every serving
 * node announces itself with heartbeats; an entry whose heartbeat is older than `expireMs` is gone
 * (a crashed node drops out by itself). A draining node stays announced with `draining` set, so
 * bootstrap lists leave it out at once while its sessions move away.
 *
 * Implementations: MemoryNodeRegistry (the embedded default: the node itself, and any other node
 * announced in the same process), RedisNodeRegistry (a cluster: one Redis hash shared by all nodes).
 * The bootstrap service reads the registry on a timer (snapshot()), never on a request.
 */
import crypto from 'node:crypto';
import { connectRedis, createRedisClient, type RedisClient } from '../redis/connect.js';

export interface NodeInfo {
  /** Stable for the life of the process (config nodeId, or random per start). */
  id: string;
  /** WebSocket URL endpoints connect to, e.g. wss://node1.example.com/ep/v1. */
  url: string;
  serverKeyId: string;
  /** SPKI DER of the node's active operations key, base64. */
  serverPublicKey: string;
  priority: number;
  weight: number;
  /** Open sessions and configured capacity: load = sessions / capacity. */
  sessions: number;
  capacity: number;
  protocolVersions: number[];
  draining: boolean;
  /** ms since the epoch of the last heartbeat. */
  heartbeatAt: number;
}

export interface NodeRegistry {
  /** Announce (or refresh) this node. */
  announce(node: NodeInfo): Promise<void>;
  /** Remove this node at once (clean shutdown). */
  withdraw(id: string): Promise<void>;
  /** Live nodes (heartbeat within expireMs), ordered by id. */
  list(now?: number): Promise<NodeInfo[]>;
  close(): Promise<void>;
}

/** Accessible from bootstrap lists as a 31-bit integer id derived from the node id. */
export function accessPointId(nodeId: string): number {
  return crypto.createHash('sha256').update(nodeId, 'utf8').digest().readUInt32BE(0) & 0x7fffffff;
}

function isNodeInfo(v: unknown): v is NodeInfo {
  if (v === null || typeof v !== 'object') return false;
  const n = v as Record<string, unknown>;
  return typeof n.id === 'string' && typeof n.url === 'string' && typeof n.serverKeyId === 'string' && typeof n.serverPublicKey === 'string' &&
    Number.isInteger(n.priority) && Number.isInteger(n.weight) && typeof n.sessions === 'number' && typeof n.capacity === 'number' &&
    Array.isArray(n.protocolVersions) && typeof n.draining === 'boolean' && typeof n.heartbeatAt === 'number';
}

export class MemoryNodeRegistry implements NodeRegistry {
  private readonly nodes = new Map<string, NodeInfo>();
  constructor(private readonly expireMs: number) {}
  async announce(node: NodeInfo): Promise<void> {
    this.nodes.set(node.id, { ...node, protocolVersions: [...node.protocolVersions] });
  }
  async withdraw(id: string): Promise<void> {
    this.nodes.delete(id);
  }
  async list(now = Date.now()): Promise<NodeInfo[]> {
    return [...this.nodes.values()].filter((n) => now - n.heartbeatAt <= this.expireMs).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((n) => ({ ...n, protocolVersions: [...n.protocolVersions] }));
  }
  async close(): Promise<void> {
    this.nodes.clear();
  }
}

/**
 * One Redis hash `<prefix>nodes`: field = node id, value = NodeInfo JSON. Expired entries are
 * skipped on read and removed by whoever reads them (HDEL is idempotent).
 *
 * On a Redis Cluster the hash is one key, so every command here (HSET, HDEL of several fields,
 * HGETALL) is a single-key command and needs no hash tag; the whole registry lives on one shard,
 * which is fine for a registry of tens of nodes read on a timer.
 */
export class RedisNodeRegistry implements NodeRegistry {
  private constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly expireMs: number,
  ) {}

  static async connect(url: string, expireMs: number, opts: { prefix?: string; onError?: (err: unknown) => void } = {}): Promise<RedisNodeRegistry> {
    // A bad URL throws LK_CONFIG_INVALID_VALUE; no Redis within 5 s rejects with LK_CACHE_UNAVAILABLE.
    const redis = createRedisClient(url, { connectionName: 'latchkey-nodes', connectTimeoutMs: 5000, maxRetriesPerRequest: 1 });
    redis.on('error', opts.onError ?? (() => undefined));
    await connectRedis(redis, { url, what: 'node registry', timeoutMs: 5000 });
    return new RedisNodeRegistry(redis, `${opts.prefix ?? 'latchkey:'}nodes`, expireMs);
  }

  async announce(node: NodeInfo): Promise<void> {
    await this.redis.hset(this.key, node.id, JSON.stringify(node));
  }

  async withdraw(id: string): Promise<void> {
    await this.redis.hdel(this.key, id);
  }

  async list(now = Date.now()): Promise<NodeInfo[]> {
    const all = await this.redis.hgetall(this.key);
    const out: NodeInfo[] = [];
    const stale: string[] = [];
    for (const [id, text] of Object.entries(all)) {
      let n: unknown;
      try {
        n = JSON.parse(text);
      } catch {
        n = null;
      }
      if (!isNodeInfo(n) || now - n.heartbeatAt > this.expireMs) stale.push(id);
      else out.push(n);
    }
    // Long-dead entries (10 x expiry) are removed; recently expired ones may still be a node
    // whose clock is behind, so they are only skipped.
    const dead = stale.filter((id) => {
      try {
        const n = JSON.parse(all[id]!) as { heartbeatAt?: number };
        return typeof n.heartbeatAt !== 'number' || now - n.heartbeatAt > this.expireMs * 10;
      } catch {
        return true;
      }
    });
    if (dead.length > 0) await this.redis.hdel(this.key, ...dead).catch(() => undefined);
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
