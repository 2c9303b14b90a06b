/**
 * SessionControl against fakes with a controllable clock: the cases a live test cannot time
 * (review findings of issue 9): a kick retried from the outbox must not end the endpoint's next
 * session, and a cache drop that fails is retried past the log's read window until it succeeds.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SessionControl } from '../../src/control/session-control.js';
import { MemoryBus } from '../../src/bus/bus-memory.js';
import type { ControlEntry } from '../../src/store/store.js';

function fakes() {
  const log: ControlEntry[] = [];
  const store = {
    down: false,
    async appendControl(e: ControlEntry) {
      if (store.down) throw new Error('store down');
      log.push({ ...e });
    },
    async listControlSince(since: number, limit: number) {
      if (store.down) throw new Error('store down');
      return log.filter((e) => e.at >= since).sort((a, b) => a.at - b.at).slice(0, limit);
    },
    async putBan() { throw new Error('unused'); },
    async deleteBan() { return false; },
    async listBans() { return []; },
  };
  const ended: string[] = [];
  let session: { establishedAt: number | null; end: (code: string) => void } | undefined;
  const registry = {
    revoked: () => false,
    byEndpointKey: () => session,
  };
  return { store, log, ended, registry, setSession: (establishedAt: number) => (session = { establishedAt, end: (code) => ended.push(code) }) };
}

describe('SessionControl', () => {
  it('a kick retried from the outbox keeps its time: the endpoint\'s next session is not ended', async () => {
    const f = fakes();
    let now = 1_000_000;
    const c = new SessionControl({ store: f.store as never, bus: new MemoryBus(), registry: f.registry as never, invalidate: async () => undefined, pollMs: 1_000_000, log: pino({ level: 'silent' }), now: () => now });
    f.store.down = true;
    expect((await c.kick('app', 'key')).log).toBe('pending');
    now += 1000;
    f.setSession(now); // the endpoint reconnected after the kick
    now += 60_000;
    f.store.down = false;
    await c.poll();
    await c.poll();
    expect(f.log).toHaveLength(1);
    expect(f.log[0]!.at).toBe(1_000_000);
    expect(f.ended).toEqual([]);
  });

  it('retries dropping a revoked key\'s cached status at every poll until the cache confirms, however long it takes', async () => {
    const f = fakes();
    let now = 1_000_000;
    let cacheUp = false;
    let drops = 0;
    const c = new SessionControl({
      store: f.store as never, bus: new MemoryBus(), registry: f.registry as never, pollMs: 1_000_000, log: pino({ level: 'silent' }), now: () => now,
      invalidate: async () => {
        if (!cacheUp) throw new Error('cache down');
        drops++;
      },
    });
    await c.revoke('app', 'key');
    // Two minutes of polls with the cache down: far past the log's 10 s read window.
    for (let i = 0; i < 60; i++) {
      now += 2000;
      await c.poll();
    }
    expect(drops).toBe(0);
    cacheUp = true;
    now += 2000;
    await c.poll();
    expect(drops).toBe(1);
    now += 2000;
    await c.poll();
    expect(drops).toBe(1);
  });
});
