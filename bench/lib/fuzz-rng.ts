/**
 * The fuzzer's seeded PRNG (sfc32, seeded through splitmix32). Every generated input draws from a
 * stream derived from (run seed, stream name, input index), so input #i of a stream is the same
 * bytes in every run with the same --seed, whatever order the concurrent workers reach it in.
 * What a seed cannot fix: the server's and node:crypto's randomness (OAEP, PSS, session ids),
 * the clock (CONNECT timestamps) and the interleaving of connections.
 */

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function hashString(s: string): number {
  // FNV-1a, 32 bits: only to fold a stream name into a seed.
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** A stream of the run `seed`, named by `parts` (e.g. 'ws-pre', 1234). */
  constructor(seed: number, ...parts: Array<string | number>) {
    const st = { s: seed >>> 0 };
    for (const p of parts) {
      st.s = (st.s ^ (typeof p === 'number' ? p >>> 0 : hashString(p))) >>> 0;
      splitmix32(st);
    }
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** Uniform 32-bit unsigned integer (sfc32). */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** One of `choices` with probability proportional to its weight. */
  weighted<T>(choices: ReadonlyArray<readonly [number, T]>): T {
    let total = 0;
    for (const [w] of choices) total += w;
    let x = this.float() * total;
    for (const [w, v] of choices) {
      if ((x -= w) < 0) return v;
    }
    return choices[choices.length - 1]![1];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) out.writeUInt32LE(this.u32(), i);
    for (; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /**
   * A length for random payloads: mostly short (the parsers' edge cases live at 0-40 bytes), some
   * medium, rarely up to `max`.
   */
  size(max = 4096): number {
    const r = this.float();
    if (r < 0.15) return this.int(4);
    if (r < 0.6) return this.int(48);
    if (r < 0.9) return this.int(Math.min(max, 600) + 1);
    return this.int(max + 1);
  }

  /** A fresh stream derived from this one (for a sub-generator that must not shift the parent). */
  fork(name: string): Rng {
    return new Rng(this.u32(), name);
  }
}
