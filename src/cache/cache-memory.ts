/**
 * In-process cache: an LRU bounded by entry count, with a TTL per entry. The default backend; see
 * cache.ts for the contract every backend keeps.
 *
 * Design:
 * - One Map is both the index and the LRU list: a Map iterates in insertion order, so re-inserting
 *   an entry on every hit moves it to the tail and the head is always the least recently used.
 *   get/set/delete are O(1) (amortised: V8 rehashes the Map now and then).
 * - Expiry: an expired entry is a miss and is dropped when a `get` meets it; `set` also drops a
 *   few expired entries from the LRU head. There are no per-entry timers (100k timers would cost
 *   more than the entries). A background pass (one unref'd timer per cache, running while it holds
 *   entries) walks the map, a slice a second, and drops expired entries wherever they sit, so an
 *   entry nobody reads again leaves within ~SWEEP_PASS_SEC of its expiry instead of staying until
 *   LRU pressure. This matters for memory per session: every handshake writes a credentials
 *   status (~0.6 KiB with its key) and a pending-notifications marker, and on a server of idle
 *   sessions nothing reads them again (docs/performance.md "Per-session memory budget"). Memory
 *   is bounded by `maxEntries` and follows what is live.
 * - Time comes from a monotonic clock (performance.now), so a wall clock step cannot make entries
 *   live longer than their TTL.
 * - `get` is on the handshake hot path (credential status lookup): it is a plain function, not
 *   `async`; a miss returns one shared resolved promise and a hit allocates only the promise.
 *
 * TTL rules, shared with cache-redis.ts so both backends agree: ttlMs is floored to whole
 * milliseconds (flooring can only make an entry leave earlier, which the contract allows); a TTL
 * that floors to <= 0 stores nothing and removes any previous value (it is already expired); a
 * non-finite TTL is a programming error and rejects with LK_BAD_ARGUMENT.
 */
import { LatchkeyError } from '../errors.js';
import type { Cache } from './cache.js';

export interface MemoryCacheOptions {
  /** Entries kept before the least recently used is evicted. Default 100_000 entries. */
  maxEntries?: number;
  /** Monotonic clock in milliseconds. Tests inject a fake one; default performance.now. */
  now?: () => number;
}

interface Entry {
  value: string;
  /** Clock reading (ms) at and after which the entry is a miss. */
  expiresAt: number;
}

export const DEFAULT_MAX_ENTRIES = 100_000; // entries
/** Expired entries `set` may drop from the LRU head per call: bounds the work of one `set`. */
const SWEEP_PER_SET = 2;
/** Background pass: one slice per SWEEP_EVERY_MS, sized so a whole pass takes about SWEEP_PASS_SEC. */
const SWEEP_EVERY_MS = 1000;
const SWEEP_PASS_SEC = 30;
const SWEEP_SLICE_MIN = 1000; // entries per slice, at least (~20-50 µs)

// Shared settled promises: a resolved promise is immutable, so handing the same one to every
// caller is safe and saves an allocation per miss/set/delete.
const RESOLVED_NULL: Promise<string | null> = Promise.resolve(null);
const RESOLVED_VOID: Promise<void> = Promise.resolve();

const defaultNow = (): number => performance.now();

export class MemoryCache implements Cache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly now: () => number;
  private closed = false;
  /** Where the background pass goes on (a Map iterator stays valid while entries come and go). */
  private sweepAt: IterableIterator<[string, Entry]> | null = null;
  private sweeper: NodeJS.Timeout | null = null;

  constructor(opts: MemoryCacheOptions = {}) {
    const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new LatchkeyError('LK_BAD_ARGUMENT', `maxEntries must be an integer >= 1, got ${maxEntries}`);
    }
    this.maxEntries = maxEntries;
    this.now = opts.now ?? defaultNow;
  }

  /** Entries held, including expired ones not dropped yet. For metrics and tests. */
  get size(): number {
    return this.entries.size;
  }

  get(key: string): Promise<string | null> {
    if (this.closed) return rejectClosed();
    const entry = this.entries.get(key);
    if (entry === undefined) return RESOLVED_NULL;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return RESOLVED_NULL;
    }
    // Move to the tail: most recently used. Reuses the entry object, no allocation.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return Promise.resolve(entry.value);
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    if (this.closed) return rejectClosed();
    if (!Number.isFinite(ttlMs)) return rejectBadTtl(ttlMs);
    const ttl = Math.floor(ttlMs);
    if (ttl <= 0) {
      this.entries.delete(key);
      return RESOLVED_VOID;
    }
    const now = this.now();
    const existing = this.entries.get(key);
    if (existing !== undefined) {
      // Overwrite replaces value and TTL (as Redis SET without KEEPTTL does) and counts as a use.
      this.entries.delete(key);
      existing.value = value;
      existing.expiresAt = now + ttl;
      this.entries.set(key, existing);
      return RESOLVED_VOID;
    }
    this.entries.set(key, { value, expiresAt: now + ttl });
    this.sweepAndEvict(now);
    this.startSweeper();
    return RESOLVED_VOID;
  }

  delete(key: string): Promise<void> {
    if (this.closed) return rejectClosed();
    this.entries.delete(key);
    return RESOLVED_VOID;
  }

  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.closed) return rejectClosed();
    if (!Number.isFinite(ttlMs) || Math.floor(ttlMs) <= 0) return rejectBadTtl(ttlMs);
    const now = this.now();
    const existing = this.entries.get(key);
    if (existing !== undefined && existing.expiresAt > now) return Promise.resolve(false);
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: now + Math.floor(ttlMs) });
    this.sweepAndEvict(now);
    this.startSweeper();
    return Promise.resolve(true);
  }

  /** Drops every entry; later calls reject with LK_CACHE_UNAVAILABLE (callers treat it as a miss). */
  close(): Promise<void> {
    this.closed = true;
    this.entries.clear();
    this.stopSweeper();
    return RESOLVED_VOID;
  }

  /**
   * One slice of the background pass: look at the next entries (at least SWEEP_SLICE_MIN, or a
   * SWEEP_PASS_SEC-th of the map) and drop the expired ones. The timer calls it; tests may too.
   */
  sweepSlice(): void {
    const now = this.now();
    const it = this.sweepAt ?? this.entries.entries();
    this.sweepAt = it;
    for (let n = Math.max(SWEEP_SLICE_MIN, Math.ceil(this.entries.size / SWEEP_PASS_SEC)); n > 0; n--) {
      const r = it.next();
      if (r.done) {
        this.sweepAt = null;
        if (this.entries.size === 0) this.stopSweeper();
        return;
      }
      if (r.value[1].expiresAt <= now) this.entries.delete(r.value[0]);
    }
  }

  private startSweeper(): void {
    if (this.sweeper || this.closed) return;
    this.sweeper = setInterval(() => this.sweepSlice(), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  private stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.sweepAt = null;
  }

  /**
   * After an insert: drop up to SWEEP_PER_SET expired entries from the LRU head (cold entries are
   * the likeliest to have expired), then evict least recently used entries beyond capacity.
   */
  private sweepAndEvict(now: number): void {
    let swept = 0;
    for (const [key, entry] of this.entries) {
      if (swept >= SWEEP_PER_SET || entry.expiresAt > now) break;
      this.entries.delete(key); // deleting the current key during Map iteration is safe
      swept++;
    }
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }
}

function rejectClosed(): Promise<never> {
  return Promise.reject(new LatchkeyError('LK_CACHE_UNAVAILABLE', 'memory cache is closed'));
}

function rejectBadTtl(ttlMs: number): Promise<never> {
  return Promise.reject(new LatchkeyError('LK_BAD_ARGUMENT', `cache ttlMs must be finite, got ${ttlMs}`));
}
