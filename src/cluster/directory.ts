/**
 * The cluster directory: which node (and process) holds each live endpoint session, and which
 * processes hold sessions of each owner. It is what lets the nodes of a cluster route instead of
 * broadcast: a takeover, a revocation, a kick, a notification goes to the holder's node only, and
 * an owner's events only to the nodes that hold sessions of that owner (control/routing.ts).
 *
 * Implementations: LocalDirectory (no Redis: one node; the primary's IPC directory covers the
 * processes of a multi-process node, node/primary.ts) and RedisDirectory (a cluster).
 * test/contract/directory.contract.ts is the contract; every implementation runs it.
 *
 * Redis layout (prefix `latchkey:`; every command is single-key, so a Redis Cluster needs no hash tag):
 *   dir:procs                      hash: "<node>#<process>" -> "<last heartbeat ms>/<expiry ms>". A
 *                                  process is live while its last heartbeat is within its expiry (3 of
 *                                  its heartbeats) plus one heartbeat of the reader (how stale the
 *                                  reader's copy of the hash may be).
 *   dir:ep:<appId>:<keyHash>       the endpoint's holder, JSON SessionHolder, PX entryTtlMs. Written by
 *                                  SET ... GET (the previous holder comes back atomically: a takeover
 *                                  race between two nodes has one winner, the later write), removed
 *                                  only by its own session (compare and delete).
 *   dir:owner:<tenantId>:<owner>   hash: "<node>#<process>" -> "1" for every process holding
 *                                  sessions of the owner, PEXPIRE entryTtlMs.
 * A holder or member whose process is not live does not count: a killed node's entries are dead
 * within its heartbeat expiry (plus one reader heartbeat) without anyone deleting them; their keys expire after entryTtlMs,
 * or are overwritten by the endpoint's next session. Live holders refresh their entries' expiry
 * every entryTtlMs / 4 (a few commands a second for hundreds of thousands of sessions).
 *
 * Redis down: claims and lookups reject (LK_CACHE_UNAVAILABLE); callers fall back to a broadcast
 * (control/routing.ts) and the store's control log stays the truth for revocations. A claim lost
 * that way is written again at the next refresh (this process remembers what it holds).
 */
import type { RedisClient } from '../redis/connect.js';
import { LatchkeyError } from '../errors.js';

/** Where a live session is. */
export interface SessionHolder {
  node: string;
  /** Gateway process index within the node (0 for a single-process node). */
  process: number;
  /** The session's id (Session.id): a takeover ends exactly this session. */
  session: string;
  /** When the session was established (ms, the holder's clock). */
  since: number;
}

export interface ClusterDirectory {
  /** True when other nodes share it (Redis); false: this node is the whole cluster. */
  readonly shared: boolean;
  /** This process now holds the endpoint's session; resolves with the previous live holder (another session), if any. */
  claim(appId: string, keyHash: string, holder: SessionHolder): Promise<SessionHolder | null>;
  /** The session ended: remove the entry if it is still this session's. */
  release(appId: string, keyHash: string, session: string): Promise<void>;
  /** The live holder of the endpoint's session, or null. */
  lookup(appId: string, keyHash: string): Promise<SessionHolder | null>;
  /** This process holds sessions of the owner now; resolves with the other live members ("<node>#<process>"). */
  joinOwner(tenantId: string, owner: string): Promise<string[]>;
  /** This process holds no session of the owner any more. */
  leaveOwner(tenantId: string, owner: string): Promise<void>;
  /** Live processes holding sessions of the owner, this one left out ("<node>#<process>"). */
  ownerMembers(tenantId: string, owner: string): Promise<string[]>;
  close(): Promise<void>;
}

/** "<node>#<process>": a member of an owner, a key of dir:procs. */
export function processId(node: string, process: number): string {
  return `${node}#${process}`;
}

/** The node of a processId. */
export function nodeOf(processIdText: string): string {
  const i = processIdText.lastIndexOf('#');
  return i < 0 ? processIdText : processIdText.slice(0, i);
}

/** One node and no Redis: nothing to route to. */
export class LocalDirectory implements ClusterDirectory {
  readonly shared = false;
  async claim(): Promise<SessionHolder | null> {
    return null;
  }
  async release(): Promise<void> {}
  async lookup(): Promise<SessionHolder | null> {
    return null;
  }
  async joinOwner(): Promise<string[]> {
    return [];
  }
  async leaveOwner(): Promise<void> {}
  async ownerMembers(): Promise<string[]> {
    return [];
  }
  async close(): Promise<void> {}
}

export interface RedisDirectoryOptions {
  node: string;
  process: number;
  /** Heartbeat period; a process is dead 3 heartbeats after its last one. */
  heartbeatMs: number;
  /** Expiry of endpoint and owner entries, refreshed by their live holders. Default 6 h. */
  entryTtlMs?: number;
  prefix?: string;
  onError?: (err: unknown) => void;
  now?: () => number;
}

const DEFAULT_ENTRY_TTL_MS = 6 * 3600_000;

// Remove KEYS[1] if it holds a holder of session ARGV[1] (the JSON's "session" field).
const RELEASE_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if v and cjson.decode(v)['session'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

function parseHolder(text: string | null): SessionHolder | null {
  if (text === null) return null;
  try {
    const h = JSON.parse(text) as SessionHolder;
    return typeof h.node === 'string' && Number.isInteger(h.process) && typeof h.session === 'string' && typeof h.since === 'number' ? h : null;
  } catch {
    return null;
  }
}

function parseProc(v: string): { at: number; expireMs: number } | null {
  const [at, expireMs] = v.split('/').map(Number);
  return Number.isFinite(at) && Number.isFinite(expireMs) ? { at: at!, expireMs: expireMs! } : null;
}

function unavailable(what: string, err: unknown): LatchkeyError {
  return new LatchkeyError('LK_CACHE_UNAVAILABLE', `directory ${what}: ${(err as Error).message}`, { cause: err });
}

export class RedisDirectory implements ClusterDirectory {
  readonly shared = true;
  private readonly me: string;
  private readonly prefix: string;
  private readonly entryTtlMs: number;
  private readonly expireMs: number;
  private readonly now: () => number;
  /** Last heartbeat seen of every process and its expiry (refreshed with ours). */
  private procs = new Map<string, { at: number; expireMs: number }>();
  /** What this process holds: endpoint key -> { holder JSON, last refresh }. */
  private readonly held = new Map<string, { appId: string; keyHash: string; json: string; refreshedAt: number }>();
  /** Owners this process is a member of -> last refresh. */
  private readonly owners = new Map<string, { tenantId: string; owner: string; refreshedAt: number }>();
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;

  private constructor(
    private readonly redis: RedisClient,
    private readonly o: RedisDirectoryOptions,
  ) {
    this.me = processId(o.node, o.process);
    this.prefix = o.prefix ?? 'latchkey:';
    this.entryTtlMs = o.entryTtlMs ?? DEFAULT_ENTRY_TTL_MS;
    this.expireMs = o.heartbeatMs * 3;
    this.now = o.now ?? Date.now;
  }

  /** Takes a connected client (redis/connect.ts) and owns it from then on. */
  static async open(redis: RedisClient, o: RedisDirectoryOptions): Promise<RedisDirectory> {
    const d = new RedisDirectory(redis, o);
    redis.defineCommand('lkDirRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
    await d.heartbeat();
    d.timer = setInterval(() => void d.tick(), o.heartbeatMs);
    d.timer.unref();
    return d;
  }

  private get procsKey(): string {
    return `${this.prefix}dir:procs`;
  }
  private endpointKey(appId: string, keyHash: string): string {
    return `${this.prefix}dir:ep:${appId}:${keyHash}`;
  }
  private ownerKey(tenantId: string, owner: string): string {
    return `${this.prefix}dir:owner:${tenantId}:${owner}`;
  }

  /**
   * Is `proc` live? From the copy of dir:procs of the last heartbeat; a process not in it (it
   * started since, or it closed) is read from Redis once.
   */
  private async live(proc: string): Promise<boolean> {
    if (proc === this.me) return true;
    let p = this.procs.get(proc);
    if (!p) {
      const v = await this.redis.hget(this.procsKey, proc);
      const parsed = v === null ? null : parseProc(v);
      if (!parsed) return false;
      this.procs.set(proc, (p = parsed));
    }
    return this.now() - p.at <= p.expireMs + this.o.heartbeatMs;
  }

  private async liveOnes(procs: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const p of procs) if (p !== this.me && (await this.live(p))) out.push(p);
    return out;
  }

  /** Announce this process and read everyone's heartbeats; forget processes dead for 10 expiries. */
  private async heartbeat(): Promise<void> {
    const now = this.now();
    await this.redis.hset(this.procsKey, this.me, `${now}/${this.expireMs}`);
    const all = await this.redis.hgetall(this.procsKey);
    const procs = new Map<string, { at: number; expireMs: number }>();
    const gone: string[] = [];
    for (const [p, v] of Object.entries(all)) {
      const parsed = parseProc(v);
      if (!parsed || now - parsed.at > parsed.expireMs * 10) gone.push(p);
      else procs.set(p, parsed);
    }
    this.procs = procs;
    if (gone.length > 0) await this.redis.hdel(this.procsKey, ...gone);
  }

  private async tick(): Promise<void> {
    if (this.beating) return;
    this.beating = (async () => {
      try {
        await this.heartbeat();
        await this.refresh();
      } catch (err) {
        this.o.onError?.(err);
      } finally {
        this.beating = null;
      }
    })();
    await this.beating;
  }

  /** Re-write what this process holds whose expiry is a quarter gone (and any claim a Redis outage lost). */
  private async refresh(): Promise<void> {
    const now = this.now();
    const due = now - this.entryTtlMs / 4;
    const pipe = this.redis.pipeline();
    let n = 0;
    for (const [key, h] of this.held) {
      if (h.refreshedAt > due) continue;
      pipe.set(key, h.json, 'PX', this.entryTtlMs);
      h.refreshedAt = now;
      if (++n >= 10_000) break;
    }
    for (const [key, m] of this.owners) {
      if (m.refreshedAt > due) continue;
      pipe.hset(key, this.me, '1');
      pipe.pexpire(key, this.entryTtlMs);
      m.refreshedAt = now;
      if (++n >= 20_000) break;
    }
    if (n > 0) await pipe.exec();
  }

  async claim(appId: string, keyHash: string, holder: SessionHolder): Promise<SessionHolder | null> {
    const key = this.endpointKey(appId, keyHash);
    const json = JSON.stringify(holder);
    // Remembered first: if the write fails, the next refresh makes it.
    this.held.set(key, { appId, keyHash, json, refreshedAt: 0 });
    let prev: string | null;
    try {
      prev = (await this.redis.set(key, json, 'PX', this.entryTtlMs, 'GET')) as string | null;
    } catch (err) {
      throw unavailable('claim', err);
    }
    const h = this.held.get(key);
    if (h && h.json === json) h.refreshedAt = this.now();
    const p = parseHolder(prev);
    try {
      return p && p.session !== holder.session && (await this.live(processId(p.node, p.process))) ? p : null;
    } catch (err) {
      throw unavailable('claim', err);
    }
  }

  async release(appId: string, keyHash: string, session: string): Promise<void> {
    const key = this.endpointKey(appId, keyHash);
    const h = this.held.get(key);
    if (h && parseHolder(h.json)?.session === session) this.held.delete(key);
    try {
      await (this.redis as unknown as { lkDirRelease(key: string, session: string): Promise<number> }).lkDirRelease(key, session);
    } catch (err) {
      throw unavailable('release', err);
    }
  }

  async lookup(appId: string, keyHash: string): Promise<SessionHolder | null> {
    let text: string | null;
    try {
      text = await this.redis.get(this.endpointKey(appId, keyHash));
    } catch (err) {
      throw unavailable('lookup', err);
    }
    const h = parseHolder(text);
    try {
      return h && (await this.live(processId(h.node, h.process))) ? h : null;
    } catch (err) {
      throw unavailable('lookup', err);
    }
  }

  async joinOwner(tenantId: string, owner: string): Promise<string[]> {
    const key = this.ownerKey(tenantId, owner);
    this.owners.set(key, { tenantId, owner, refreshedAt: 0 });
    let all: Record<string, string>;
    try {
      const res = await this.redis.multi().hset(key, this.me, '1').pexpire(key, this.entryTtlMs).hgetall(key).exec();
      const err = res?.find(([e]) => e)?.[0];
      if (!res || err) throw err ?? new Error('transaction discarded');
      all = res[2]![1] as Record<string, string>;
    } catch (err) {
      throw unavailable('join', err);
    }
    const m = this.owners.get(key);
    if (m) m.refreshedAt = this.now();
    try {
      return await this.liveOnes(Object.keys(all));
    } catch (err) {
      throw unavailable('join', err);
    }
  }

  async leaveOwner(tenantId: string, owner: string): Promise<void> {
    const key = this.ownerKey(tenantId, owner);
    this.owners.delete(key);
    try {
      await this.redis.hdel(key, this.me);
    } catch (err) {
      throw unavailable('leave', err);
    }
  }

  async ownerMembers(tenantId: string, owner: string): Promise<string[]> {
    let all: Record<string, string>;
    try {
      all = await this.redis.hgetall(this.ownerKey(tenantId, owner));
      return await this.liveOnes(Object.keys(all));
    } catch (err) {
      throw unavailable('owner lookup', err);
    }
  }

  /** Stop heartbeating and remove this process (its entries are dead at once for every reader). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.beating;
    try {
      await this.redis.hdel(this.procsKey, this.me);
    } catch {
      // Dead within the heartbeat expiry anyway.
    }
    this.redis.disconnect();
  }
}
