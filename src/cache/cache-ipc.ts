/**
 * The cache of a multi-process node without Redis: one MemoryCache in the node's primary, reached
 * over IPC (ipc/messages.ts), so that a delete is seen by every process of the node and setIfAbsent is
 * atomic across them (CONNECT nonce claims). See cache.ts for the contract;
 * test/contract/cache-ipc.test.ts runs it against a real primary.
 *
 * A failed or timed-out round trip rejects with LK_CACHE_UNAVAILABLE, as a Redis outage does:
 * callers then go to the store.
 */
import { LatchkeyError } from '../errors.js';
import type { NodeLink } from '../ipc/link.js';
import type { PrimaryOp } from '../ipc/messages.js';
import type { Cache } from './cache.js';

export class IpcCache implements Cache {
  private closed = false;

  constructor(private readonly link: NodeLink) {}

  private async call<T>(op: PrimaryOp, ...args: unknown[]): Promise<T> {
    if (this.closed) throw new LatchkeyError('LK_CACHE_UNAVAILABLE', 'cache is closed');
    try {
      return await this.link.request<T>(op, ...args);
    } catch (err) {
      if (err instanceof LatchkeyError && err.code === 'LK_BAD_ARGUMENT') throw err;
      throw new LatchkeyError('LK_CACHE_UNAVAILABLE', `cache: ${(err as Error).message}`, { cause: err });
    }
  }

  get(key: string): Promise<string | null> {
    return this.call<string | null>('cache.get', key);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    if (!Number.isFinite(ttlMs)) throw new LatchkeyError('LK_BAD_ARGUMENT', `cache ttlMs must be finite, got ${ttlMs}`);
    await this.call('cache.set', key, value, ttlMs);
  }

  async delete(key: string): Promise<void> {
    await this.call('cache.delete', key);
  }

  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    // Checked here because JSON cannot carry NaN or Infinity; the primary's MemoryCache checks the rest.
    if (!Number.isFinite(ttlMs)) return Promise.reject(new LatchkeyError('LK_BAD_ARGUMENT', `cache ttlMs must be finite, got ${ttlMs}`));
    return this.call<boolean>('cache.setIfAbsent', key, value, ttlMs);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
