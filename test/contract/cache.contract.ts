/**
 * The Cache contract (src/cache/cache.ts) as one suite every backend runs:
 *
 *   cacheContract('memory', async () => new MemoryCache());
 *   cacheContract('redis', () => RedisCache.connect(url, { keyPrefix }), { shared: true });
 *
 * `make` opens a new client; the suite closes every client it opened. Two clients from `make` are
 * "the same backend" only when `shared` is set (Redis); in-process caches are each their own
 * backend, so the cross-client checks that need sharing run only for shared backends.
 *
 * Besides cache.ts, the suite pins behaviour both backends must agree on so callers need not care
 * which one they got: an overwrite replaces the TTL, a TTL that floors to <= 0 removes the key, a
 * non-finite TTL rejects with LK_BAD_ARGUMENT, the empty string is a value (not a miss), and calls
 * after close() reject with LK_CACHE_UNAVAILABLE.
 *
 * Timing: TTL checks use 100 ms TTLs and one ~250 ms wait per test, run concurrently across keys,
 * and never assert that a short-TTL value is still present (a stalled CI machine would flake);
 * "not truncated" is shown with a 60 s TTL instead.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Cache } from '../../src/cache/cache.js';
import type { ErrorCode } from '../../src/errors.js';

export interface CacheContractOptions {
  /** Skip the whole suite (a backend that is optional in this environment). */
  skip?: boolean;
  /** Clients returned by separate `make()` calls share one backend (e.g. Redis). */
  shared?: boolean;
}

const SHORT_TTL_MS = 100; // ms
const PAST_SHORT_TTL_MS = 250; // ms: wait after which a SHORT_TTL_MS entry must be gone
const LONG_TTL_MS = 60_000; // ms: outlives every test, short enough that Redis cleans up after us

/** A key no other test (or concurrent run against the same Redis) uses. */
export function uniqueKey(label: string): string {
  return `contract:${label}:${randomBytes(6).toString('hex')}`;
}

/** Awaits `p`, expects a rejection with a LatchkeyError of `code`, returns the error. */
export async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<Error & { code: string }> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected rejection with ${code}`).toBeInstanceOf(Error);
  expect((caught as { code?: unknown }).code).toBe(code);
  return caught as Error & { code: string };
}

export function cacheContract(name: string, make: () => Promise<Cache>, opts: CacheContractOptions = {}): void {
  describe.skipIf(opts.skip === true)(`Cache contract: ${name}`, () => {
    const opened: Cache[] = [];
    const open = async (): Promise<Cache> => {
      const cache = await make();
      opened.push(cache);
      return cache;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((c) => c.close()));
    });

    it('get of a missing key resolves null', async () => {
      const cache = await open();
      expect(await cache.get(uniqueKey('miss'))).toBeNull();
    });

    it('set then get returns the value', async () => {
      const cache = await open();
      const key = uniqueKey('set');
      await cache.set(key, 'v1', LONG_TTL_MS);
      expect(await cache.get(key)).toBe('v1');
    });

    it('the empty string is a value, not a miss', async () => {
      const cache = await open();
      const key = uniqueKey('empty');
      await cache.set(key, '', LONG_TTL_MS);
      expect(await cache.get(key)).toBe('');
    });

    it('set overwrites an earlier value', async () => {
      const cache = await open();
      const key = uniqueKey('overwrite');
      await cache.set(key, 'old', LONG_TTL_MS);
      await cache.set(key, 'new', LONG_TTL_MS);
      expect(await cache.get(key)).toBe('new');
    });

    it('delete removes the key; deleting a missing key resolves', async () => {
      const cache = await open();
      const key = uniqueKey('delete');
      await cache.set(key, 'v', LONG_TTL_MS);
      await cache.delete(key);
      expect(await cache.get(key)).toBeNull();
      await expect(cache.delete(key)).resolves.toBeUndefined();
      await expect(cache.delete(uniqueKey('never-set'))).resolves.toBeUndefined();
    });

    it('keys are independent', async () => {
      const cache = await open();
      const a = uniqueKey('a');
      const b = uniqueKey('b');
      await cache.set(a, 'A', LONG_TTL_MS);
      await cache.set(b, 'B', LONG_TTL_MS);
      await cache.delete(a);
      expect(await cache.get(a)).toBeNull();
      expect(await cache.get(b)).toBe('B');
    });

    it('an entry is gone once its TTL has passed; TTLs are milliseconds and an overwrite replaces the TTL', async () => {
      const cache = await open();
      const short = uniqueKey('ttl-short');
      const long = uniqueKey('ttl-long');
      const extended = uniqueKey('ttl-extended'); // short, then overwritten with long
      const shortened = uniqueKey('ttl-shortened'); // long, then overwritten with short
      await cache.set(short, 's', SHORT_TTL_MS);
      await cache.set(long, 'l', LONG_TTL_MS);
      await cache.set(extended, 'e1', SHORT_TTL_MS);
      await cache.set(extended, 'e2', LONG_TTL_MS);
      await cache.set(shortened, 'x1', LONG_TTL_MS);
      await cache.set(shortened, 'x2', SHORT_TTL_MS);
      await sleep(PAST_SHORT_TTL_MS);
      expect(await cache.get(short)).toBeNull(); // not read as seconds
      expect(await cache.get(long)).toBe('l'); // not truncated
      expect(await cache.get(extended)).toBe('e2');
      expect(await cache.get(shortened)).toBeNull();
      // Still gone on a second look (an expired entry must not come back).
      expect(await cache.get(short)).toBeNull();
    });

    it('a TTL that floors to <= 0 stores nothing and removes the previous value', async () => {
      const cache = await open();
      const zero = uniqueKey('ttl-zero');
      const negative = uniqueKey('ttl-negative');
      const fraction = uniqueKey('ttl-fraction');
      await cache.set(zero, 'old', LONG_TTL_MS);
      await cache.set(zero, 'new', 0);
      await cache.set(negative, 'v', -5);
      await cache.set(fraction, 'v', 0.5);
      expect(await cache.get(zero)).toBeNull();
      expect(await cache.get(negative)).toBeNull();
      expect(await cache.get(fraction)).toBeNull();
    });

    it('a non-finite TTL rejects with LK_BAD_ARGUMENT and leaves the key alone', async () => {
      const cache = await open();
      const key = uniqueKey('ttl-bad');
      await cache.set(key, 'kept', LONG_TTL_MS);
      await expectCode(cache.set(key, 'v', Number.NaN), 'LK_BAD_ARGUMENT');
      await expectCode(cache.set(key, 'v', Number.POSITIVE_INFINITY), 'LK_BAD_ARGUMENT');
      expect(await cache.get(key)).toBe('kept');
    });

    it('a delete is seen by a second client of the same backend', async () => {
      const writer = await open();
      const reader = await open();
      const key = uniqueKey('two-clients');
      await writer.set(key, 'v', LONG_TTL_MS);
      if (opts.shared) expect(await reader.get(key)).toBe('v');
      await writer.delete(key);
      expect(await reader.get(key)).toBeNull();
      expect(await writer.get(key)).toBeNull();
    });

    it.runIf(opts.shared === true)('shared backend: writes and deletes of one client are seen by another', async () => {
      const a = await open();
      const b = await open();
      const key = uniqueKey('shared');
      await a.set(key, 'from-a', LONG_TTL_MS);
      expect(await b.get(key)).toBe('from-a');
      await b.set(key, 'from-b', LONG_TTL_MS);
      expect(await a.get(key)).toBe('from-b');
      await b.delete(key);
      expect(await a.get(key)).toBeNull();
    });

    it('values round-trip exactly: unicode, control characters, protocol-looking text', async () => {
      const cache = await open();
      const values = [
        'héllo wörld',
        '日本語のテキスト',
        'emoji 🔑🗝️ and a ZWJ family 👩‍👩‍👧',
        'e\u0301 (combining) vs \u00e9',
        'nul \u0000 inside',
        'crlf \r\n$5\r\nhello\r\n*1\r\n', // looks like RESP framing
        ' leading and trailing spaces ',
        JSON.stringify({ status: 'IN_USE', endpointId: 'abc', n: 1 }),
      ];
      const keys = values.map((_, i) => uniqueKey(`value-${i}`));
      await Promise.all(values.map((v, i) => cache.set(keys[i]!, v, LONG_TTL_MS)));
      for (let i = 0; i < values.length; i++) {
        expect(await cache.get(keys[i]!)).toBe(values[i]);
      }
    });

    it('keys with unicode, spaces and separators are distinct and usable', async () => {
      const cache = await open();
      const suffix = randomBytes(6).toString('hex');
      const keys = [`k ${suffix}`, `k:${suffix}`, `k:${suffix}:`, `ключ-🔑-${suffix}`, `k\n${suffix}`];
      await Promise.all(keys.map((k, i) => cache.set(k, `v${i}`, LONG_TTL_MS)));
      for (let i = 0; i < keys.length; i++) expect(await cache.get(keys[i]!)).toBe(`v${i}`);
      await Promise.all(keys.map((k) => cache.delete(k)));
    });

    it('a 64 KiB value round-trips', async () => {
      const cache = await open();
      const key = uniqueKey('large');
      // Mixed 1-4 byte UTF-8 characters so a byte/char length mix-up would show.
      const unit = 'aé日🔑';
      const value = unit.repeat(Math.ceil((64 * 1024) / unit.length)).slice(0, 64 * 1024 - 1) + 'Z';
      expect(value.length).toBeGreaterThanOrEqual(64 * 1024 - 1);
      await cache.set(key, value, LONG_TTL_MS);
      const got = await cache.get(key);
      expect(got?.length).toBe(value.length);
      expect(got === value).toBe(true); // not toBe: a 64 KiB diff is unreadable
    });

    it('concurrent operations on many keys each see their own value', async () => {
      const cache = await open();
      const keys = Array.from({ length: 200 }, (_, i) => uniqueKey(`concurrent-${i}`));
      await Promise.all(keys.map((k, i) => cache.set(k, `value-${i}`, LONG_TTL_MS)));
      const got = await Promise.all(keys.map((k) => cache.get(k)));
      expect(got).toEqual(keys.map((_, i) => `value-${i}`));
      await Promise.all(keys.filter((_, i) => i % 2 === 0).map((k) => cache.delete(k)));
      const after = await Promise.all(keys.map((k) => cache.get(k)));
      expect(after).toEqual(keys.map((_, i) => (i % 2 === 0 ? null : `value-${i}`)));
    });

    it('setIfAbsent stores only when no live entry exists, and exactly one of concurrent callers wins', async () => {
      const cache = await open();
      const key = uniqueKey('nx');
      expect(await cache.setIfAbsent(key, 'first', LONG_TTL_MS)).toBe(true);
      expect(await cache.setIfAbsent(key, 'second', LONG_TTL_MS)).toBe(false);
      expect(await cache.get(key)).toBe('first');
      const racers = opts.shared ? [cache, await open()] : [cache];
      const contested = uniqueKey('nx-race');
      const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => racers[i % racers.length]!.setIfAbsent(contested, `v${i}`, LONG_TTL_MS)));
      expect(wins.filter(Boolean)).toHaveLength(1);
      await expectCode(cache.setIfAbsent(uniqueKey('nx-bad'), 'v', 0), 'LK_BAD_ARGUMENT');
    });

    it('setIfAbsent succeeds again once the entry expired or was deleted', async () => {
      const cache = await open();
      const key = uniqueKey('nx-ttl');
      expect(await cache.setIfAbsent(key, 'a', 60)).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      expect(await cache.setIfAbsent(key, 'b', LONG_TTL_MS)).toBe(true);
      await cache.delete(key);
      expect(await cache.setIfAbsent(key, 'c', LONG_TTL_MS)).toBe(true);
      expect(await cache.get(key)).toBe('c');
    });

    it('close is idempotent, concurrent closes resolve, and later calls reject with LK_CACHE_UNAVAILABLE', async () => {
      const cache = await open();
      const key = uniqueKey('close');
      await cache.set(key, 'v', LONG_TTL_MS);
      await Promise.all([cache.close(), cache.close()]);
      await expect(cache.close()).resolves.toBeUndefined();
      await expectCode(cache.get(key), 'LK_CACHE_UNAVAILABLE');
      await expectCode(cache.set(key, 'v', LONG_TTL_MS), 'LK_CACHE_UNAVAILABLE');
      await expectCode(cache.delete(key), 'LK_CACHE_UNAVAILABLE');
    });
  });
}
