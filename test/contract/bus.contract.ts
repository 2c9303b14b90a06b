/** The Bus contract (src/bus/bus.ts), run against every implementation. */
import { describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from '../../src/bus/bus.js';

async function eventually(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function busContract(name: string, make: () => Promise<Bus>, opts: { shared?: boolean; skip?: boolean } = {}): void {
  describe.skipIf(opts.skip === true)(`Bus contract: ${name}`, () => {
    const msg: BusMessage = { type: 'credentials.revoked', appId: 'a', credentialsId: 'c' };

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
  });
}
