/**
 * The cache: short-lived, losable copies of store state (credential status, application lookups,
 * negative results). Implementations: cache-memory.ts (in-process LRU, the default) and
 * cache-redis.ts (ioredis; shared by every node of a cluster). test/contract/cache.contract.ts is
 * the contract; every implementation runs it.
 *
 * Contract:
 * - Values are strings (callers serialise); keys are strings of at most 512 bytes.
 * - `set` with ttlMs > 0 makes the entry disappear no later than ttlMs after the call (it may
 *   disappear earlier: the in-process cache evicts least recently used entries beyond its capacity).
 * - After `delete(key)` resolves, no `get(key)` started later on any client of the same backend
 *   returns the old value (unless a later `set` wrote it again).
 * - A backend failure rejects with LatchkeyError LK_CACHE_UNAVAILABLE; callers treat that as a miss
 *   and go to the store, so a cache outage costs latency, never correctness.
 */
export interface Cache {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Atomically store `value` under `key` for ttlMs only if no live entry exists; resolves true if
   * this call stored it. Of concurrent calls for one key on any clients of the same backend,
   * exactly one resolves true (Redis: SET NX PX). ttlMs must be > 0.
   */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Release connections/timers. Idempotent. */
  close(): Promise<void>;
}
