/**
 * The Bus contract (src/bus/bus.ts), run against every implementation.
 *
 * `make(nodeId)` opens a new client for node `nodeId`. Options say what separate clients are:
 * - `shared`: clients of separate make() calls share one backend (Redis, the processes of one
 *   IPC node); without it each client is its own world (memory).
 * - `nodes`: clients made with different node ids are different nodes (Redis). Without it the
 *   backend has one node only (memory, IPC), whatever id a client is given.
 */
import { describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from '../../src/bus/bus.js';

async function eventually(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface BusContractOptions {
  shared?: boolean;
  nodes?: boolean;
  skip?: boolean;
}

/** Waits long enough for a message that should not come to have come. */
const QUIET_MS = 100;

export function busContract(name: string, makeFor: (nodeId: string) => Promise<Bus>, opts: BusContractOptions = {}): void {
  describe.skipIf(opts.skip === true)(`Bus contract: ${name}`, () => {
    const msg: BusMessage = { type: 'credentials.revoked', appId: 'a', credentialsId: 'c' };
    const make = (nodeId = 'node-a'): Promise<Bus> => makeFor(nodeId);

    it('delivers to every subscriber of the topic, including the publisher\'s own, once', async () => {
      const bus = await make();
      const got: BusMessage[][] = [[], []];
      await bus.subscribe('credentials', (m) => void got[0]!.push(m));
      await bus.subscribe('credentials', (m) => void got[1]!.push(m));
      const other: BusMessage[] = [];
      await bus.subscribe('sessions', (m) => void other.push(m));
      await bus.publish('credentials', msg);
      await eventually(() => got[0]!.length === 1 && got[1]!.length === 1);
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toEqual([[msg], [msg]]);
      expect(other).toEqual([]);
      await bus.close();
    });

    it('keeps per-publisher order and isolates throwing handlers', async () => {
      const bus = await make();
      const seen: string[] = [];
      await bus.subscribe('sessions', () => {
        throw new Error('boom');
      });
      await bus.subscribe('sessions', (m) => void seen.push(m.type === 'session.kick' ? m.keyHash : '?'));
      for (let i = 0; i < 20; i++) await bus.publish('sessions', { type: 'session.kick', appId: 'a', keyHash: `k${i}` });
      await eventually(() => seen.length === 20);
      expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`));
      await bus.close();
    });

    it('stops delivering after unsubscribe', async () => {
      const bus = await make();
      const got: BusMessage[] = [];
      const off = await bus.subscribe('credentials', (m) => void got.push(m));
      await off();
      await bus.publish('credentials', msg);
      await new Promise((r) => setTimeout(r, 50));
      expect(got).toEqual([]);
      await bus.close();
    });

    // Only backends whose clients share one bus (Redis) have a second client to reach; each
    // in-process bus is its own world, so this case does not apply to it.
    it.skipIf(!opts.shared)('reaches subscribers on another client of the same backend', async () => {
      const a = await make();
      const b = await make();
      const got: BusMessage[] = [];
      await b.subscribe('credentials', (m) => void got.push(m));
      await a.publish('credentials', msg);
      await eventually(() => got.length === 1);
      await a.close();
      await b.close();
    });

    it('knows its node id; publishToNode to it delivers to the subscribers of that topic, once', async () => {
      const bus = await make('node-a');
      expect(bus.nodeId).toBe('node-a');
      const got: BusMessage[] = [];
      const other: BusMessage[] = [];
      await bus.subscribe('sessions', (m) => void got.push(m));
      await bus.subscribe('credentials', (m) => void other.push(m));
      const kick: BusMessage = { type: 'session.kick', appId: 'a', keyHash: 'k1' };
      await bus.publishToNode('node-a', 'sessions', kick);
      await eventually(() => got.length === 1);
      await new Promise((r) => setTimeout(r, QUIET_MS));
      expect(got).toEqual([kick]);
      expect(other).toEqual([]);
      await bus.close();
    });

    it('publishToNode to another node id resolves and does not reach this node', async () => {
      const bus = await make('node-a');
      const got: BusMessage[] = [];
      await bus.subscribe('sessions', (m) => void got.push(m));
      await bus.publishToNode('node-elsewhere', 'sessions', { type: 'session.kick', appId: 'a', keyHash: 'k1' });
      await new Promise((r) => setTimeout(r, QUIET_MS));
      expect(got).toEqual([]);
      await bus.close();
    });

    it('stops delivering node-addressed messages after unsubscribe', async () => {
      const bus = await make('node-a');
      const got: BusMessage[] = [];
      const off = await bus.subscribe('credentials', (m) => void got.push(m));
      await off();
      await bus.publishToNode('node-a', 'credentials', msg);
      await new Promise((r) => setTimeout(r, QUIET_MS));
      expect(got).toEqual([]);
      await bus.close();
    });

    it('publishToNode after close rejects', async () => {
      const bus = await make('node-a');
      await bus.close();
      await expect(bus.publishToNode('node-a', 'credentials', msg)).rejects.toMatchObject({ code: 'LK_INTERNAL' });
    });

    // Several clients of one node: every process of a node receives what is addressed to the node.
    it.skipIf(!opts.shared)('a node-addressed message reaches every client of that node', async () => {
      const a = await make('node-a');
      const a2 = await make('node-a');
      const got: BusMessage[][] = [[], []];
      await a.subscribe('credentials', (m) => void got[0]!.push(m));
      await a2.subscribe('credentials', (m) => void got[1]!.push(m));
      await a2.publishToNode('node-a', 'credentials', msg);
      await eventually(() => got[0]!.length === 1 && got[1]!.length === 1);
      await new Promise((r) => setTimeout(r, QUIET_MS));
      expect(got).toEqual([[msg], [msg]]);
      await a.close();
      await a2.close();
    });

    it.skipIf(!opts.nodes)('a node-addressed message reaches only the node addressed; a broadcast reaches all', async () => {
      const ids = ['node-a', 'node-b', 'node-c'];
      const buses = await Promise.all(ids.map((id) => make(id)));
      const got = new Map<string, BusMessage[]>(ids.map((id) => [id, []]));
      for (const [i, b] of buses.entries()) await b.subscribe('sessions', (m) => void got.get(ids[i]!)!.push(m));
      const toB: BusMessage = { type: 'session.kick', appId: 'a', keyHash: 'only-b' };
      await buses[0]!.publishToNode('node-b', 'sessions', toB);
      await eventually(() => got.get('node-b')!.length === 1);
      await new Promise((r) => setTimeout(r, QUIET_MS));
      expect(Object.fromEntries(got)).toEqual({ 'node-a': [], 'node-b': [toB], 'node-c': [] });
      const all: BusMessage = { type: 'session.kick', appId: 'a', keyHash: 'all' };
      await buses[2]!.publish('sessions', all);
      await eventually(() => ids.every((id) => got.get(id)!.length === (id === 'node-b' ? 2 : 1)));
      expect(got.get('node-a')).toEqual([all]);
      for (const b of buses) await b.close();
    });
  });
}
