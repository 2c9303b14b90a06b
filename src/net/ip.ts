/**
 * IP addresses as the protection layer compares them: one canonical text per address (IPv4 dotted;
 * IPv6 as 8 lower-case 4-digit groups, so `::1` and `0:0:0:0:0:0:0:1` are one address; IPv4-mapped
 * IPv6 as its IPv4 form), and numeric values for CIDR matching.
 */
import { isIPv4, isIPv6 } from 'node:net';

const V4_MAPPED = /^(?:0{1,4}:){5}ffff:(\d+\.\d+\.\d+\.\d+)$|^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

function v6Groups(text: string): number[] | null {
  if (!isIPv6(text)) return null;
  let s = text.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const v4 = v4Value(dotted[1]!)!;
    s = s.slice(0, -dotted[1]!.length) + `${((v4 >>> 16) & 0xffff).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') as [string, string] : [s, null];
  const h = head ? head.split(':') : [];
  const t = tail === null ? [] : tail ? tail.split(':') : [];
  const fill = tail === null ? 0 : 8 - h.length - t.length;
  const groups = [...h, ...Array<string>(fill).fill('0'), ...t].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : null;
}

function v4Value(text: string): number | null {
  if (!isIPv4(text)) return null;
  const p = text.split('.').map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

/** Canonical text of an address, or null if `text` is not one. */
export function canonicalIp(text: string): string | null {
  if (isIPv4(text)) return text;
  if (text.includes('%')) return null;
  const m = V4_MAPPED.exec(text);
  if (m) return m[1] ?? m[2]!;
  const g = v6Groups(text);
  if (!g) return null;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  return g.map((x) => x.toString(16).padStart(4, '0')).join(':');
}

/** Family and numeric value of a canonical address. */
export function ipValue(canonical: string): { family: 4 | 6; value: bigint } | null {
  const v4 = v4Value(canonical);
  if (v4 !== null) return { family: 4, value: BigInt(v4) };
  const g = v6Groups(canonical);
  if (!g) return null;
  return { family: 6, value: g.reduce((acc, x) => (acc << 16n) | BigInt(x), 0n) };
}

export interface Cidr {
  family: 4 | 6;
  base: bigint;
  prefix: number;
}

/**
 * Parse `addr` or `addr/prefix`; null if not valid. A zone id (`fe80::1%eth0`) is refused: it names
 * an interface of one host, not an address.
 */
export function parseCidr(text: string): Cidr | null {
  if (typeof text !== 'string' || text.includes('%')) return null;
  const slash = text.indexOf('/');
  const addr = canonicalIp(slash < 0 ? text : text.slice(0, slash));
  if (addr === null) return null;
  const v = ipValue(addr)!;
  const bits = v.family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits) return null;
    prefix = Number(p);
  }
  const shift = BigInt(bits - prefix);
  return { family: v.family, base: (v.value >> shift) << shift, prefix };
}

export function cidrContains(c: Cidr, ip: { family: 4 | 6; value: bigint }): boolean {
  if (c.family !== ip.family) return false;
  const shift = BigInt((c.family === 4 ? 32 : 128) - c.prefix);
  return (ip.value >> shift) << shift === c.base;
}
