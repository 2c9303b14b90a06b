/**
 * The cluster directory (src/cluster/directory.ts) on single Redis (never skipped: CI starts it)
 * and on the local Redis Cluster (skipped with a message unless LATCHKEY_TEST_REDIS_CLUSTER is set;
 * required in CI). Several directories stand for several processes and nodes.
 */
import crypto from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalDirectory, RedisDirectory, nodeOf, processId, type SessionHolder } from '../../src/cluster/directory.js';
import { connectRedis, createRedisClient } from '../../src/redis/connect.js';
import { REDIS_URL, redisClusterUrl } from '../helpers/redis-topologies.js';

const CLUSTER_URL = redisClusterUrl();

function directoryContract(name: string, url: string | null): void {
  describe.skipIf(url === null)(`cluster directory on ${name}`, () => {
    const open: RedisDirectory[] = [];
    const prefix = `latchkey-test-dir-${process.pid}-${crypto.randomUUID().slice(0, 8)}:`;
    afterEach(async () => {
      await Promise.all(open.splice(0).map((d) => d.close()));
    });
    async function directory(node: string, proc = 0, opts: { heartbeatMs?: number; now?: () => number } = {}): Promise<RedisDirectory> {
      const redis = createRedisClient(url!, { connectionName: 'latchkey-test-directory' });
      await connectRedis(redis, { url: url!, what: 'test' });
      const d = await RedisDirectory.open(redis, { node, process: proc, heartbeatMs: opts.heartbeatMs ?? 1000, prefix, ...(opts.now ? { now: opts.now } : {}) });
      open.push(d);
      return d;
    }
    const holder = (node: string, proc = 0): SessionHolder => ({ node, process: proc, session: crypto.randomUUID(), since: Date.now() });
    const app = (): string => `app-${crypto.randomUUID().slice(0, 8)}`;

    it('a claim returns the previous live holder (another session), and lookup the latest one', async () => {
      const a = await directory('node-a');
      const b = await directory('node-b', 1);
      const appId = app();
      const h1 = holder('node-a');
      expect(await a.claim(appId, 'k1', h1)).toBeNull();
      expect(await b.lookup(appId, 'k1')).toEqual(h1);
      const h2 = holder('node-b', 1);
      expect(await b.claim(appId, 'k1', h2)).toEqual(h1);
      expect(await a.lookup(appId, 'k1')).toEqual(h2);
      // Claiming again with the same session (a refresh) returns nothing to replace.
      expect(await b.claim(appId, 'k1', h2)).toBeNull();
      expect(await a.lookup(appId, 'k2')).toBeNull();
    });

    it('a release removes the entry only if it is still the releasing session\'s', async () => {
      const a = await directory('node-a');
      const b = await directory('node-b');
      const appId = app();
      const old = holder('node-a');
      const newer = holder('node-b');
      await a.claim(appId, 'k', old);
      await b.claim(appId, 'k', newer);
      await a.release(appId, 'k', old.session);
      expect(await a.lookup(appId, 'k')).toEqual(newer);
      await b.release(appId, 'k', newer.session);
      expect(await a.lookup(appId, 'k')).toBeNull();
    });

    it('owner members: join answers the other members, members leave, and this process is never listed', async () => {
      const a = await directory('node-a', 0);
      const a1 = await directory('node-a', 1);
      const b = await directory('node-b', 0);
      const tenant = app();
      expect(await a.joinOwner(tenant, 'o')).toEqual([]);
      expect(await b.joinOwner(tenant, 'o')).toEqual([processId('node-a', 0)]);
      expect((await a1.joinOwner(tenant, 'o')).sort()).toEqual([processId('node-a', 0), processId('node-b', 0)]);
      expect((await a.ownerMembers(tenant, 'o')).sort()).toEqual([processId('node-a', 1), processId('node-b', 0)]);
      expect([...new Set((await a.ownerMembers(tenant, 'o')).map(nodeOf))].sort()).toEqual(['node-a', 'node-b']);
      await b.leaveOwner(tenant, 'o');
      await a1.leaveOwner(tenant, 'o');
      expect(await a.ownerMembers(tenant, 'o')).toEqual([]);
      expect(await a.ownerMembers(tenant, 'nobody')).toEqual([]);
    });

    it('a process that stops heartbeating is dead for every reader after its expiry: its sessions and memberships no longer count', async () => {
      let clock = Date.now();
      const reader = await directory('reader', 0, { heartbeatMs: 100, now: () => clock });
      const gone = await directory('gone', 0, { heartbeatMs: 100 });
      const appId = app();
      const h = holder('gone');
      await gone.claim(appId, 'k', h);
      await gone.joinOwner(appId, 'o');
      await new Promise((r) => setTimeout(r, 250)); // the reader has seen gone's heartbeats
      expect(await reader.lookup(appId, 'k')).toEqual(h);
      expect(await reader.ownerMembers(appId, 'o')).toEqual([processId('gone', 0)]);
      // gone's expiry is 3 x 100 ms; the reader allows one heartbeat of its own on top.
      clock += 1000;
      expect(await reader.lookup(appId, 'k')).toBeNull();
      expect(await reader.ownerMembers(appId, 'o')).toEqual([]);
      expect(await reader.claim(appId, 'k', holder('reader'))).toBeNull();
    });

    it('a closed process is dead at once', async () => {
      const a = await directory('node-a', 0, { heartbeatMs: 100 });
      const b = await directory('node-b', 0, { heartbeatMs: 100 });
      const appId = app();
      await a.claim(appId, 'k', holder('node-a'));
      await new Promise((r) => setTimeout(r, 150));
      expect(await b.lookup(appId, 'k')).not.toBeNull();
      await a.close();
      open.splice(open.indexOf(a), 1);
      await new Promise((r) => setTimeout(r, 150)); // b's next heartbeat re-reads the processes
      expect(await b.lookup(appId, 'k')).toBeNull();
    });
  });
}

directoryContract('single Redis', REDIS_URL);
directoryContract('the local Redis Cluster', CLUSTER_URL);

describe('LocalDirectory (one node, no Redis)', () => {
  it('routes nothing: no previous holder, no lookup, no members', async () => {
    const d = new LocalDirectory();
    expect(d.shared).toBe(false);
    expect(await d.claim()).toBeNull();
    expect(await d.lookup()).toBeNull();
    expect(await d.joinOwner()).toEqual([]);
    expect(await d.ownerMembers()).toEqual([]);
  });
});
