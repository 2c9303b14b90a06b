/**
 * The NodeRegistry contract (src/bootstrap/nodes.ts) as one suite every backend runs:
 *
 *   registryContract('memory', async (expireMs) => new MemoryNodeRegistry(expireMs));
 *   registryContract('redis', (expireMs) => RedisNodeRegistry.connect(url, expireMs, { prefix }), { shared: true });
 *
 * `open(expireMs)` opens a new client; the suite closes every client it opened. With `shared`,
 * clients of separate open() calls share one backend (Redis: every node reads the same hash), so
 * what one announces the other lists. Node ids carry a per-run tag, so runs sharing a Redis (and
 * earlier entries in it) do not disturb each other.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { NodeInfo, NodeRegistry } from '../../src/bootstrap/nodes.js';

export interface RegistryContractOptions {
  shared?: boolean;
  skip?: boolean;
}

export function nodeInfo(id: string, over: Partial<NodeInfo> = {}): NodeInfo {
  return { id, url: `ws://127.0.0.1/${id}`, serverKeyId: 'k', serverPublicKey: 'AA==', priority: 0, weight: 100, sessions: 0, capacity: 100, protocolVersions: [1], draining: false, heartbeatAt: Date.now(), ...over };
}

export function registryContract(name: string, open: (expireMs: number) => Promise<NodeRegistry>, opts: RegistryContractOptions = {}): void {
  describe.skipIf(opts.skip === true)(`NodeRegistry contract: ${name}`, () => {
    const opened: NodeRegistry[] = [];
    afterAll(async () => {
      for (const r of opened) await r.close();
    });
    const fresh = async (expireMs = 1000): Promise<NodeRegistry> => {
      const r = await open(expireMs);
      opened.push(r);
      return r;
    };
    const tag = `${name.replace(/\W+/g, '-')}-${process.pid}-${Date.now()}`;
    const mine = async (r: NodeRegistry, t: string, now?: number): Promise<NodeInfo[]> => (await r.list(now)).filter((n) => n.id.startsWith(t));

    it('lists announced nodes by id, refreshes them, and forgets withdrawn ones', async () => {
      const r = await fresh();
      await r.announce(nodeInfo(`${tag}-b`));
      await r.announce(nodeInfo(`${tag}-a`, { sessions: 1 }));
      await r.announce(nodeInfo(`${tag}-a`, { sessions: 7, draining: true }));
      expect((await mine(r, tag)).map((n) => [n.id, n.sessions, n.draining])).toEqual([[`${tag}-a`, 7, true], [`${tag}-b`, 0, false]]);
      await r.withdraw(`${tag}-a`);
      expect((await mine(r, tag)).map((n) => n.id)).toEqual([`${tag}-b`]);
    });

    it('drops a node whose heartbeat is older than the expiry', async () => {
      const r = await fresh(1000);
      const now = Date.now();
      const t = `${tag}-expiry`;
      await r.announce(nodeInfo(`${t}-old`, { heartbeatAt: now - 5000 }));
      await r.announce(nodeInfo(`${t}-new`, { heartbeatAt: now }));
      expect((await mine(r, t, now)).map((n) => n.id)).toEqual([`${t}-new`]);
      expect(await mine(r, t, now + 2000)).toEqual([]);
    });

    it('returns every field as announced, and copies: changing a listed entry changes nothing stored', async () => {
      const r = await fresh();
      const t = `${tag}-fields`;
      const n = nodeInfo(`${t}-x`, { url: 'wss://x.example/ep/v1', serverKeyId: 'k2', priority: 3, weight: 7, sessions: 12, capacity: 500, protocolVersions: [1, 2] });
      await r.announce(n);
      const [listed] = await mine(r, t);
      expect(listed).toEqual(n);
      listed!.sessions = 99;
      listed!.protocolVersions.push(9);
      expect((await mine(r, t))[0]).toEqual(n);
    });

    it('withdrawing an unknown node is a no-op', async () => {
      const r = await fresh();
      await expect(r.withdraw(`${tag}-never-announced`)).resolves.toBeUndefined();
    });

    it.skipIf(!opts.shared)('what one client announces or withdraws, another client lists', async () => {
      const a = await fresh();
      const b = await fresh();
      const t = `${tag}-shared`;
      await a.announce(nodeInfo(`${t}-a`));
      await b.announce(nodeInfo(`${t}-b`));
      expect((await mine(a, t)).map((n) => n.id)).toEqual([`${t}-a`, `${t}-b`]);
      expect((await mine(b, t)).map((n) => n.id)).toEqual([`${t}-a`, `${t}-b`]);
      await b.withdraw(`${t}-a`);
      expect((await mine(a, t)).map((n) => n.id)).toEqual([`${t}-b`]);
    });
  });
}
