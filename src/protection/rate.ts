/**
 * Bounded per-key counters for the protection layer: token buckets (rates) and fixed windows
 * (flapping, failed handshakes). Keys come from strangers (addresses, claimed key hashes), so every
 * map is bounded: past `maxKeys` the idle half is dropped (a full bucket or an elapsed window holds
 * no information), and if an attacker keeps every key busy the oldest entries go first. An entry is
 * two numbers in a small array (~80 B with its Map slot, more with its key string).
 *
 * Idle entries are also dropped in the background (one unref'd timer per map, running while it
 * holds entries: a slice a second, a whole pass in ~SWEEP_PASS_SEC), so the maps hold the keys
 * active lately rather than one entry per key of every idle session: each handshake leaves a
 * bucket under (key hash, address) and a flapping window under the key hash, which a server of
 * long-lived sessions would otherwise keep until 200k of them forced a shed (docs/performance.md
 * "Per-session memory budget").
 */

const SWEEP_EVERY_MS = 1000;
const SWEEP_PASS_SEC = 30;
const SWEEP_SLICE_MIN = 1000;

/** A Map whose idle entries a background pass drops. */
abstract class SweptMap<V> {
  protected readonly m = new Map<string, V>();
  private at: IterableIterator<[string, V]> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly clock: () => number) {}

  /** True when `v` holds no information at `now` (dropping it changes no answer). */
  protected abstract idle(v: V, now: number): boolean;

  protected added(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sweepSlice(), SWEEP_EVERY_MS);
    this.timer.unref();
  }

  /** One slice of the background pass (the timer calls it; tests may too). */
  sweepSlice(now = this.clock()): void {
    const it = this.at ?? this.m.entries();
    this.at = it;
    for (let n = Math.max(SWEEP_SLICE_MIN, Math.ceil(this.m.size / SWEEP_PASS_SEC)); n > 0; n--) {
      const r = it.next();
      if (r.done) {
        this.at = null;
        if (this.m.size === 0 && this.timer) {
          clearInterval(this.timer);
          this.timer = null;
        }
        return;
      }
      if (this.idle(r.value[1], now)) this.m.delete(r.value[0]);
    }
  }

  get size(): number {
    return this.m.size;
  }
}

export class TokenBuckets extends SweptMap<[tokens: number, at: number]> {
  /**
   * @param ratePerSec tokens added per second (0: unlimited; take() always succeeds)
   * @param burst bucket size
   * @param clock the background pass's time (ms), the same clock as take()'s `now`
   */
  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly maxKeys = 200_000,
    clock: () => number = Date.now,
  ) {
    super(clock);
  }

  protected idle(b: [number, number], now: number): boolean {
    return b[0] + ((now - b[1]) / 1000) * this.ratePerSec >= this.burst;
  }

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
      this.added();
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
    for (const [k, b] of this.m) if (this.idle(b, now)) this.m.delete(k);
    if (this.m.size < this.maxKeys * 0.9) return;
    let drop = this.m.size / 2;
    for (const k of this.m.keys()) {
      if (drop-- <= 0) break;
      this.m.delete(k);
    }
  }
}

export class WindowCounters extends SweptMap<[count: number, start: number]> {
  constructor(
    private readonly windowMs: number,
    private readonly maxKeys = 200_000,
    clock: () => number = Date.now,
  ) {
    super(clock);
  }

  protected idle(w: [number, number], now: number): boolean {
    return now - w[1] >= this.windowMs;
  }

  /** Count one event for `key`; returns the count within the current window. */
  hit(key: string, now: number): number {
    let w = this.m.get(key);
    if (!w || now - w[1] >= this.windowMs) {
      if (!w && this.m.size >= this.maxKeys) this.shed(now);
      w = [0, now];
      this.m.set(key, w);
      this.added();
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
    for (const [k, w] of this.m) if (this.idle(w, now)) this.m.delete(k);
    if (this.m.size < this.maxKeys * 0.9) return;
    let drop = this.m.size / 2;
    for (const k of this.m.keys()) {
      if (drop-- <= 0) break;
      this.m.delete(k);
    }
  }
}

/** When each key was last seen, forgotten `ttlMs` after (bounded in keys like the others). */
export class LastSeen extends SweptMap<number> {
  constructor(
    private readonly ttlMs: number,
    private readonly maxKeys = 200_000,
    clock: () => number = Date.now,
  ) {
    super(clock);
  }

  protected idle(at: number, now: number): boolean {
    return now - at >= this.ttlMs;
  }

  touch(key: string, now: number): void {
    if (!this.m.has(key)) {
      if (this.m.size >= this.maxKeys) for (const [k, at] of this.m) if (this.idle(at, now)) this.m.delete(k);
      if (this.m.size >= this.maxKeys) this.m.delete(this.m.keys().next().value!);
      this.added();
    } else this.m.delete(key);
    this.m.set(key, now);
  }

  /** Milliseconds since `key` was last seen, or Infinity (never, or forgotten). */
  since(key: string, now: number): number {
    const at = this.m.get(key);
    return at === undefined || now - at >= this.ttlMs ? Infinity : now - at;
  }
}
