/**
 * Bootstrap building blocks: the SDK's connection order and the strategies. The node registries
 * have their contract suite in test/contract/node-registry.contract.ts.
 */
import { describe, expect, it } from 'vitest';
import { accessPointId, type NodeInfo } from '../../src/bootstrap/nodes.js';
import { leastLoaded, loadStrategy, priorityWeighted } from '../../src/bootstrap/strategy.js';
import { orderAccessPoints } from '../../src/sdk/bootstrap.js';
import type { AccessPoint } from '../../src/protocol/schemas.js';
import path from 'node:path';
import { ROOT } from '../helpers/root.js';
import { pino } from 'pino';

const silent = pino({ level: 'silent' });

const ap = (id: number, priority: number, weight: number): AccessPoint => ({ id, url: `ws://127.0.0.1:${id}/ep/v1`, serverKeyId: 'k', serverPublicKey: Buffer.alloc(0), priority, weight, load: 0 });

function node(id: string, over: Partial<NodeInfo> = {}): NodeInfo {
  return { id, url: `ws://127.0.0.1/${id}`, serverKeyId: 'k', serverPublicKey: 'AA==', priority: 0, weight: 100, sessions: 0, capacity: 100, protocolVersions: [1], draining: false, heartbeatAt: Date.now(), ...over };
}

describe('orderAccessPoints', () => {
  it('puts lower priorities first and picks by weight within a priority', () => {
    const points = [ap(1, 1, 100), ap(2, 0, 1), ap(3, 0, 3), ap(4, 2, 0), ap(5, 1, 0)];
    let seq = 0;
    const rnd = (): number => [0.1, 0.9, 0.5, 0.5, 0.5][seq++ % 5]!;
    const order = orderAccessPoints(points, rnd).map((p) => p.id);
    // priority 0 first (1 + 3 = 4; r = 0.4 falls in point 2's share [0, 1)), then priority 1 with
    // weight 0 last, then priority 2.
    expect(order).toEqual([2, 3, 1, 5, 4]);
  });

  it('weights shape the first choice in proportion (10 000 draws)', () => {
    const counts = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      const first = orderAccessPoints([ap(1, 0, 1), ap(2, 0, 3)])[0]!.id;
      counts.set(first, (counts.get(first) ?? 0) + 1);
    }
    const share = (counts.get(2) ?? 0) / 10_000;
    expect(share).toBeGreaterThan(0.7);
    expect(share).toBeLessThan(0.8);
  });
});

describe('strategies', () => {
  it('priority-weighted uses the configured values; least-loaded ranks 10 % load steps', () => {
    const nodes = [node('a', { priority: 2, weight: 5, sessions: 50 }), node('b', { priority: 1, sessions: 12 }), node('c', { sessions: 8 })];
    expect(priorityWeighted(nodes, { appId: 'x' })).toEqual([
      { nodeId: 'a', priority: 2, weight: 5 },
      { nodeId: 'b', priority: 1, weight: 100 },
      { nodeId: 'c', priority: 0, weight: 100 },
    ]);
    // b (12 %) and c (8 %) round to the same 10 % step, a (50 %) comes after them.
    expect(leastLoaded(nodes, { appId: 'x' }).map((p) => [p.nodeId, p.priority])).toEqual([['a', 1], ['b', 0], ['c', 0]]);
  });

  it('refuses an unknown strategy name and a custom one without its module', async () => {
    await expect(loadStrategy('round-robin', {}, silent)).rejects.toMatchObject({ code: 'LK_CONFIG_INVALID_VALUE' });
    await expect(loadStrategy('custom', {}, silent)).rejects.toMatchObject({ code: 'LK_CONFIG_INVALID_VALUE' });
    expect((await loadStrategy('least-loaded', {}, silent)).loadSensitive).toBe(true);
  });

  it('loads a custom strategy module with its validated config, and refuses output naming unknown nodes', async () => {
    const module = path.join(ROOT, 'test/fixtures/bootstrap/reverse-strategy.mjs');
    const s = await loadStrategy('custom', { module, config: {} }, silent);
    expect(s.name).toBe('custom');
    expect(s.place([node('a'), node('b')], { appId: 'x' })).toEqual([
      { nodeId: 'a', priority: 1, weight: 7 },
      { nodeId: 'b', priority: 0, weight: 7 },
    ]);
    expect(() => s.place([node('a')], { appId: 'none' })).toThrow(/place\(\) must return/);
    await expect(loadStrategy('custom', { module, config: { weight: 'heavy' } }, silent)).rejects.toMatchObject({ code: 'LK_CONFIG_INVALID_VALUE' });
  });

  it('access point ids are stable 31-bit integers per node id', () => {
    expect(accessPointId('node-1')).toBe(accessPointId('node-1'));
    expect(accessPointId('node-1')).not.toBe(accessPointId('node-2'));
    expect(accessPointId('node-1')).toBeGreaterThanOrEqual(0);
    expect(accessPointId('node-1')).toBeLessThan(2 ** 31);
  });
});
