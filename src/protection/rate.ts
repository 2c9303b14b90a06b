/**
 * Bounded per-key counters for the protection layer: token buckets (rates) and fixed windows
 * (flapping, failed handshakes). Keys come from strangers (addresses, claimed key hashes), so every
 * map is bounded: past `maxKeys` the idle half is dropped (a full bucket or an elapsed window holds
 * no information), and if an attacker keeps every key busy the oldest entries go first. An entry is
 * two numbers in a small array (~80 B with its Map slot).
 */

export class TokenBuckets {
  private readonly m = new Map<string, [tokens: number, at: number]>();
  /**
   * @param ratePerSec tokens added per second (0: unlimited; take() always succeeds)
   * @param burst bucket size
   */
  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly maxKeys = 200_000,
  ) {}

  get enabled(): boolean {
    return this.ratePerSec > 0;
  }

  /** Take `n` tokens for `key` at `now` (ms). Returns 0 when allowed, else seconds until it would be. */
  take(key: string, now: number, n = 1): number {
    if (this.ratePerSec <= 0) return 0;
    let b = this.m.get(key);
    if (!b) {
      if (this.m.size >= this.maxKeys) this.shed(now);
      b = [this.burst, now];
      this.m.set(key, b);
    } else {
      b[0] = Math.min(this.burst, b[0] + ((now - b[1]) / 1000) * this.ratePerSec);
      b[1] = now;
    }
    if (b[0] >= n) {
      b[0] -= n;
      return 0;
    }
    return Math.ceil((n - b[0]) / this.ratePerSec);
  }

  private shed(now: number): void {
    for (const [k, b] of this.m) if (b[0] + ((now - b[1]) / 1000) * this.ratePerSec >= this.burst) this.m.delete(k);
    if (this.m.size < this.maxKeys * 0.9) return;
    let drop = this.m.size / 2;
    for (const k of this.m.keys()) {
      if (drop-- <= 0) break;
      this.m.delete(k);
    }
  }

  get size(): number {
    return this.m.size;
  }
}

export class WindowCounters {
  private readonly m = new Map<string, [count: number, start: number]>();
  constructor(
    private readonly windowMs: number,
    private readonly maxKeys = 200_000,
  ) {}

  /** Count one event for `key`; returns the count within the current window. */
  hit(key: string, now: number): number {
    let w = this.m.get(key);
    if (!w || now - w[1] >= this.windowMs) {
      if (!w && this.m.size >= this.maxKeys) this.shed(now);
      w = [0, now];
      this.m.set(key, w);
    }
    return ++w[0];
  }

  /** The count within the current window, without counting. */
  peek(key: string, now: number): number {
    const w = this.m.get(key);
    return !w || now - w[1] >= this.windowMs ? 0 : w[0];
  }

  reset(key: string): void {
    this.m.delete(key);
  }

  private shed(now: number): void {
    for (const [k, w] of this.m) if (now - w[1] >= this.windowMs) this.m.delete(k);
    if (this.m.size < this.maxKeys * 0.9) return;
    let drop = this.m.size / 2;
    for (const k of this.m.keys()) {
      if (drop-- <= 0) break;
      this.m.delete(k);
    }
  }
}
