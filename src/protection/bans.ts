/**
 * The ban list of a process: every ban in force, loaded from the store (ProtectionStore: the truth,
 * shared by every node and process) and held in memory so a check on the hot path is a Map lookup
 * (key hash, application, exact address) or, when CIDR bans exist, a scan of those few ranges.
 *
 * Changes: add/remove write the store, apply here at once, and tell other nodes on the bus
 * (`bans.changed`, they reload); every process also reloads every `refreshMs` (controlPollMs x 5),
 * so a lost bus message delays a ban on another node by at most that. Expiry is checked at lookup,
 * so an expired ban stops matching at its expiresAt everywhere, whenever the next reload runs.
 */
import type { Logger } from 'pino';
import type { BanKind, BanRecord, ProtectionStore } from '../store/store.js';
import { canonicalIp, cidrContains, ipValue, parseCidr, type Cidr } from '../net/ip.js';

export interface BanListDeps {
  store: ProtectionStore;
  log: Logger;
  /** Tell the other nodes (bus); failures are theirs to catch up on through the periodic reload. */
  announce: () => Promise<void>;
  /** A ban came into force here (added here, or loaded): end matching live sessions. */
  onBanned: (ban: BanRecord) => void;
  /** A ban was added through this list and is in force here (counted by reason: its createdBy, or `admin`). */
  onAdded?: (ban: BanRecord) => void;
  now?: () => number;
}

function slot(kind: BanKind, value: string): string {
  return `${kind}\0${value}`;
}

export class BanList {
  private readonly exact = new Map<string, BanRecord>();
  /** Automatic bans applied here whose store write has not succeeded (see add). */
  private readonly unsaved = new Map<string, BanRecord>();
  private cidrs: Array<{ ban: BanRecord; cidr: Cidr }> = [];
  private readonly now: () => number;

  constructor(private readonly d: BanListDeps) {
    this.now = d.now ?? Date.now;
  }

  private live(b: BanRecord | undefined): BanRecord | null {
    return b && (b.expiresAt === null || b.expiresAt > this.now()) ? b : null;
  }

  /** The ban in force for an address as uWS reports it (any textual form), or null. */
  ip(address: string): BanRecord | null {
    if (this.exact.size === 0 && this.cidrs.length === 0) return null;
    const canon = canonicalIp(address);
    if (canon === null) return null;
    const hit = this.live(this.exact.get(slot('ip', canon)));
    if (hit || this.cidrs.length === 0) return hit;
    const v = ipValue(canon)!;
    for (const c of this.cidrs) if (cidrContains(c.cidr, v) && this.live(c.ban)) return c.ban;
    return null;
  }

  keyHash(keyHash: string): BanRecord | null {
    return this.exact.size === 0 ? null : this.live(this.exact.get(slot('keyHash', keyHash)));
  }

  app(appId: string): BanRecord | null {
    return this.exact.size === 0 ? null : this.live(this.exact.get(slot('app', appId)));
  }

  /** Bans in force, ordered by kind then value. */
  list(): BanRecord[] {
    const all = [...this.exact.values(), ...this.cidrs.map((c) => c.ban)].filter((b) => this.live(b));
    return all.sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = { keyHash: 0, ip: 0, app: 0 };
    for (const b of this.list()) out[b.kind]!++;
    return out;
  }

  /**
   * Store it, apply it here, tell the other nodes. `applyFirst` (automatic bans) applies it here
   * before the store write: a flood must stop at once, and a ban the store refused to take stays in
   * force here (kept through reloads until it expires) though no other node learns of it.
   */
  async add(input: Omit<BanRecord, 'createdAt'> & { createdAt?: number }, opts: { applyFirst?: boolean } = {}): Promise<BanRecord> {
    const ban: BanRecord = { ...input, value: input.kind === 'ip' ? normalizeIpBan(input.value) : input.value, createdAt: input.createdAt ?? this.now() };
    this.generation++;
    if (opts.applyFirst) {
      this.apply(ban);
      this.unsaved.set(slot(ban.kind, ban.value), ban);
      this.d.onAdded?.(ban);
    }
    const stored = await this.d.store.putBan(ban);
    this.unsaved.delete(slot(ban.kind, ban.value));
    if (!opts.applyFirst) {
      this.apply(stored);
      this.d.onAdded?.(stored);
    }
    await this.announce();
    return stored;
  }

  async remove(kind: BanKind, value: string): Promise<boolean> {
    const v = kind === 'ip' ? normalizeIpBan(value) : value;
    this.generation++;
    const removed = await this.d.store.deleteBan(kind, v);
    this.generation++;
    this.unsaved.delete(slot(kind, v));
    this.exact.delete(slot(kind, v));
    this.cidrs = this.cidrs.filter((c) => !(c.ban.kind === kind && c.ban.value === v));
    await this.announce();
    return removed;
  }

  /** Reload from the store (periodically, and when another node announces a change). */
  async refresh(): Promise<void> {
    // A change made here while the store was read may be missing from (or undone by) what it read:
    // read again (changes are rare; under a flood of automatic bans this converges once they stop).
    let bans: BanRecord[];
    for (let tries = 0; ; tries++) {
      const gen = this.generation;
      bans = await this.d.store.listBans(this.now());
      if (gen === this.generation || tries >= 3) break;
    }
    const before = new Set([...this.exact.keys(), ...this.cidrs.map((c) => slot(c.ban.kind, c.ban.value))]);
    this.exact.clear();
    this.cidrs = [];
    for (const b of bans) {
      this.index(b);
      if (!before.has(slot(b.kind, b.value))) this.d.onBanned(b);
    }
    for (const [k, b] of this.unsaved) {
      if (this.live(b)) this.index(b);
      else this.unsaved.delete(k);
    }
  }

  /** Bumped by every add and remove here (see refresh). */
  private generation = 0;

  private apply(b: BanRecord): void {
    this.generation++;
    this.exact.delete(slot(b.kind, b.value));
    this.cidrs = this.cidrs.filter((c) => !(c.ban.kind === b.kind && c.ban.value === b.value));
    this.index(b);
    this.d.onBanned(b);
  }

  private index(b: BanRecord): void {
    if (b.kind === 'ip') {
      const c = parseCidr(b.value);
      if (!c) return;
      if (c.prefix === (c.family === 4 ? 32 : 128)) this.exact.set(slot('ip', canonicalIp(b.value.split('/')[0]!)!), b);
      else this.cidrs.push({ ban: b, cidr: c });
      return;
    }
    this.exact.set(slot(b.kind, b.value), b);
  }

  private async announce(): Promise<void> {
    try {
      await this.d.announce();
    } catch (err) {
      this.d.log.warn({ err }, 'ban change not announced on the bus; other nodes load it at their next refresh');
    }
  }
}

/** An IP ban's value as stored: the canonical address, or the canonical network address/prefix. */
export function normalizeIpBan(value: string): string {
  const c = parseCidr(value);
  if (!c) return value; // the store refuses it with LK_BAD_ARGUMENT
  const full = c.prefix === (c.family === 4 ? 32 : 128);
  const addr = c.family === 4
    ? [24, 16, 8, 0].map((s) => Number((c.base >> BigInt(s)) & 255n)).join('.')
    : [...Array(8).keys()].map((i) => ((c.base >> BigInt(112 - 16 * i)) & 0xffffn).toString(16).padStart(4, '0')).join(':');
  return full ? addr : `${addr}/${c.prefix}`;
}

/** How a ban ends the live sessions it covers (server.ts: the session registry). */
export interface BannedSessions {
  /** End the sessions from every address `match` accepts (called once per distinct address). */
  atAddresses(match: (address: string) => boolean): number;
  /** End the sessions `match` selects (key hash and application bans). */
  where(match: (s: { appId: string | null; keyHash: string | null }) => boolean): number;
}

/**
 * End the live sessions under `ban` with LK_BANNED; returns how many. An address ban is matched
 * once per distinct remote address (the CIDR parsed once; uWS reports IPv4 as dotted text, so an
 * exact IPv4 ban is a string compare), never once per session: under a flood from 50 addresses,
 * 50 bans land in the first second while a thousand legit sessions are open.
 */
export function endBanned(ban: BanRecord, sessions: BannedSessions): number {
  if (ban.kind === 'keyHash') return sessions.where((s) => s.keyHash === ban.value);
  if (ban.kind === 'app') return sessions.where((s) => s.appId === ban.value);
  const c = parseCidr(ban.value);
  if (!c) return 0;
  return sessions.atAddresses((address) => {
    if (address === ban.value) return true;
    const canon = canonicalIp(address);
    return canon !== null && cidrContains(c, ipValue(canon)!);
  });
}
