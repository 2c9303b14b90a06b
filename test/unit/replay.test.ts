import { describe, expect, it } from 'vitest';
import { ReplayCache } from '../../src/session/replay.js';

describe('ReplayCache', () => {
  it('refuses a pair seen within the TTL, forgets it after, and reports full instead of evicting', async () => {
    let now = 1000;
    const c = await ReplayCache.create({ ttlMs: 100, max: 2, now: () => now });
    const a = c.fingerprint(Buffer.alloc(32, 1), Buffer.alloc(16, 1));
    const b = c.fingerprint(Buffer.alloc(32, 1), Buffer.alloc(16, 2));
    const other = c.fingerprint(Buffer.alloc(32, 2), Buffer.alloc(16, 1));
    expect(new Set([a, b, other]).size).toBe(3);
    expect(await c.reserve(a)).toBe('ok');
    expect(await c.reserve(a)).toBe('replayed');
    expect(await c.reserve(b)).toBe('ok');
    expect(await c.reserve(other)).toBe('full');
    now += 101;
    expect(await c.reserve(a)).toBe('ok');
    expect(c.size).toBe(1);
    c.release(a);
    expect(await c.reserve(a)).toBe('ok');
  });
  it('the fingerprint is deterministic for the same pair', async () => {
    const c = await ReplayCache.create({ ttlMs: 1000, max: 10 });
    expect(c.fingerprint(Buffer.alloc(32, 7), Buffer.alloc(16, 9))).toBe(c.fingerprint(Buffer.alloc(32, 7), Buffer.alloc(16, 9)));
  });
});
