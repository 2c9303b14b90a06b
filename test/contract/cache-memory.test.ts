import { describe, expect, it } from 'vitest';
import { MemoryCache } from '../../src/cache/cache-memory.js';
import { cacheContract, expectCode } from './cache.contract.js';

cacheContract('memory', async () => new MemoryCache());

/** A clock the test moves by hand, so expiry checks need no sleeping. */
function fakeClock(start = 1_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const HOUR_MS = 3_600_000;

describe('MemoryCache: LRU and expiry', () => {
  it('evicts the least recently used entry beyond capacity; a get counts as a use', async () => {
    const cache = new MemoryCache({ maxEntries: 3 });
    await cache.set('a', 'A', HOUR_MS);
    await cache.set('b', 'B', HOUR_MS);
    await cache.set('c', 'C', HOUR_MS);
    expect(await cache.get('a')).toBe('A'); // order now b, c, a
    await cache.set('d', 'D', HOUR_MS); // evicts b
    expect(cache.size).toBe(3);
    expect(await cache.get('b')).toBeNull();
    expect(await cache.get('a')).toBe('A');
    expect(await cache.get('c')).toBe('C');
    expect(await cache.get('d')).toBe('D');
  });

  it('an overwrite counts as a use and does not grow the cache', async () => {
    const cache = new MemoryCache({ maxEntries: 2 });
    await cache.set('a', 'A1', HOUR_MS);
    await cache.set('b', 'B', HOUR_MS);
    await cache.set('a', 'A2', HOUR_MS); // order now b, a
    expect(cache.size).toBe(2);
    await cache.set('c', 'C', HOUR_MS); // evicts b
    expect(await cache.get('b')).toBeNull();
    expect(await cache.get('a')).toBe('A2');
    expect(await cache.get('c')).toBe('C');
  });

  it('never holds more than maxEntries under a stream of inserts', async () => {
    const cache = new MemoryCache({ maxEntries: 100 });
    for (let i = 0; i < 1_000; i++) await cache.set(`k${i}`, `v${i}`, HOUR_MS);
    expect(cache.size).toBe(100);
    expect(await cache.get('k899')).toBeNull();
    expect(await cache.get('k900')).toBe('v900');
    expect(await cache.get('k999')).toBe('v999');
  });

  it('an expired entry is a miss and is dropped when read', async () => {
    const clock = fakeClock();
    const cache = new MemoryCache({ now: clock.now });
    await cache.set('k', 'v', 100);
    clock.advance(99);
    expect(await cache.get('k')).toBe('v');
    expect(cache.size).toBe(1);
    clock.advance(1); // exactly ttl after the set: gone ("no later than ttlMs")
    expect(await cache.get('k')).toBeNull();
    expect(cache.size).toBe(0);
  });

  it('set drops expired entries from the LRU head, so unread expired entries do not pile up', async () => {
    const clock = fakeClock();
    const cache = new MemoryCache({ now: clock.now });
    for (let i = 0; i < 10; i++) await cache.set(`old${i}`, 'v', 50);
    clock.advance(50);
    // Each insert may drop a bounded number of expired head entries; 10 inserts clear all 10.
    for (let i = 0; i < 10; i++) await cache.set(`new${i}`, 'v', HOUR_MS);
    expect(cache.size).toBe(10);
    for (let i = 0; i < 10; i++) expect(await cache.get(`new${i}`)).toBe('v');
  });

  it('a set does not drop live entries at the head', async () => {
    const clock = fakeClock();
    const cache = new MemoryCache({ now: clock.now });
    await cache.set('live', 'v', HOUR_MS);
    await cache.set('expiring', 'v', 10);
    clock.advance(10);
    await cache.set('other', 'v', HOUR_MS);
    expect(cache.size).toBe(3); // the head is live, so the sweep stops there
    expect(await cache.get('expiring')).toBeNull();
    expect(await cache.get('live')).toBe('v');
    expect(cache.size).toBe(2);
  });

  it('a miss and a hit on the hot path do not allocate beyond the promise (miss shares one)', async () => {
    const cache = new MemoryCache();
    expect(cache.get('a')).toBe(cache.get('b')); // shared resolved promise for misses
  });

  it('rejects a maxEntries below 1 with LK_BAD_ARGUMENT', async () => {
    await expectCode(Promise.resolve().then(() => new MemoryCache({ maxEntries: 0 })), 'LK_BAD_ARGUMENT');
    await expectCode(Promise.resolve().then(() => new MemoryCache({ maxEntries: 1.5 })), 'LK_BAD_ARGUMENT');
  });
});
