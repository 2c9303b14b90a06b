/**
 * SessionRegistry (src/session/registry.ts) with fake sessions: the registry only reads a session's
 * id, address, endpoint key, state and times and calls end(code), so a fake that records its end and
 * reports its close back (as Session does) exercises every path without a transport or a handshake.
 * Takeover, lookups, revocation memory, the sweeper's timeouts, ban matching by address (IPv4, IPv6
 * /64, IPv4-mapped) and by what a session claims, and shutdown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Stats } from '../../src/metrics.js';
import { endBanned, normalizeIpBan } from '../../src/protection/bans.js';
import { SessionRegistry, type SessionDirectory } from '../../src/session/registry.js';
import type { BanRecord } from '../../src/store/store.js';
import { FakeSession } from '../helpers/fake-session.js';

const HANDSHAKE_TIMEOUT_MS = 10_000;
const STALL_MS = 30_000;

const registries: SessionRegistry[] = [];
afterEach(() => {
  for (const r of registries.splice(0)) r.close();
});

function world(sweepMs = 3_600_000): { registry: SessionRegistry; stats: Stats; open: (address?: string) => FakeSession } {
  const stats = new Stats();
  const registry = new SessionRegistry(stats, HANDSHAKE_TIMEOUT_MS, STALL_MS, sweepMs);
  registries.push(registry);
  return { registry, stats, open: (address) => new FakeSession(registry, stats, address) };
}

function ban(kind: BanRecord['kind'], value: string): BanRecord {
  return { kind, value: kind === 'ip' ? normalizeIpBan(value) : value, reason: 'test', createdAt: 0, expiresAt: null, createdBy: 'test' };
}

describe('SessionRegistry: sessions and endpoints', () => {
  it('counts sockets from open and endpoints from establishment; close removes both, once', () => {
    const { registry, stats, open } = world();
    const a = open();
    const b = open();
    expect([registry.size, registry.endpointCount]).toEqual([2, 0]);
    a.establish('app', 'k1');
    expect([registry.size, registry.endpointCount, stats.sessionsOpen]).toEqual([2, 1, 1]);
    expect(registry.byEndpointKey('app', 'k1')).toBe(a.asSession);
    expect(registry.byEndpointKey('app', 'k2')).toBeUndefined();
    expect(registry.byEndpointKey('other', 'k1')).toBeUndefined();
    expect([...registry.sessions()]).toEqual([a.asSession, b.asSession]);
    a.end('LK_SESSION_KICKED');
    // A second close of the same session changes nothing (sessionsOpen not counted down twice).
    registry.closed(a.asSession);
    expect([registry.size, registry.endpointCount, stats.sessionsOpen]).toEqual([1, 0, 0]);
    expect(registry.byEndpointKey('app', 'k1')).toBeUndefined();
    // A socket that never established is not counted in sessionsOpen.
    b.end('LK_HS_TIMEOUT');
    expect([registry.size, stats.sessionsOpen]).toEqual([0, 0]);
  });

  it('takeover: a newer session of the same endpoint ends the older with LK_SESSION_REPLACED; other endpoints are untouched', () => {
    const { registry, open } = world();
    const claimed: string[] = [];
    const released: string[] = [];
    const dir: SessionDirectory = { claimed: (s) => claimed.push(s.id), released: (s) => released.push(s.id) };
    registry.addDirectory(dir);
    const old = open().establish('app', 'k1');
    const sameKeyOtherApp = open().establish('app2', 'k1');
    const newer = open().establish('app', 'k1');
    expect(old.ended).toEqual(['LK_SESSION_REPLACED']);
    expect(newer.ended).toEqual([]);
    expect(sameKeyOtherApp.ended).toEqual([]);
    expect(registry.byEndpointKey('app', 'k1')).toBe(newer.asSession);
    expect(registry.endpointCount).toBe(2);
    // The replaced session's close does not release the endpoint its successor holds.
    expect(claimed).toEqual([old.id, sameKeyOtherApp.id, newer.id]);
    expect(released).toEqual([]);
    newer.end('LK_SESSION_KICKED');
    expect(released).toEqual([newer.id]);
    expect(registry.byEndpointKey('app', 'k1')).toBeUndefined();
  });

  it('replaced on another node: only the named session ends; replaced in another process: only if not newer', () => {
    const { registry, open } = world();
    const s = open().establish('app', 'k1', 1000);
    expect(registry.replacedOnOtherNode('app', 'k1', 'some-other-session')).toBe(false);
    expect(s.ended).toEqual([]);
    expect(registry.replacedOnOtherNode('app', 'k1', s.id)).toBe(true);
    expect(s.ended).toEqual(['LK_SESSION_REPLACED']);
    const t = open().establish('app', 'k2', 5000);
    registry.replacedElsewhere('app/k2', 4999);
    expect(t.ended).toEqual([]);
    registry.replacedElsewhere('app/k2', 5000);
    expect(t.ended).toEqual(['LK_SESSION_REPLACED']);
  });

  it('revoked: ends the endpoint\'s session with LK_CRED_REVOKED and remembers the revocation for racing handshakes, for 120 s', () => {
    const { registry, open } = world();
    const s = open().establish('app', 'k1');
    expect(registry.recentlyRevoked('app', 'k1')).toBe(false);
    expect(registry.revoked('app', 'k1')).toBe(true);
    expect(s.ended).toEqual(['LK_CRED_REVOKED']);
    expect(registry.revoked('app', 'k9')).toBe(false);
    expect([registry.recentlyRevoked('app', 'k1'), registry.recentlyRevoked('app', 'k9'), registry.recentlyRevoked('app', 'k2')]).toEqual([true, true, false]);
    registry.sweep(Date.now() + 119_000);
    expect(registry.recentlyRevoked('app', 'k1')).toBe(true);
    registry.sweep(Date.now() + 121_000);
    expect(registry.recentlyRevoked('app', 'k1')).toBe(false);
  });
});

describe('SessionRegistry: the sweeper', () => {
  it('ends a socket with no CONNECT past the handshake timeout, a stuck handshake past the stall bound, a silent session past 1.5 x its keepalive', () => {
    const { registry, open } = world();
    const t0 = 1_000_000;
    const waiting = open();
    const handshaking = open();
    const live = open().establish('app', 'k1', t0);
    for (const s of [waiting, handshaking]) s.lastSeen = t0;
    handshaking.state = 'HANDSHAKING';
    registry.sweep(t0 + HANDSHAKE_TIMEOUT_MS);
    expect([waiting.ended, handshaking.ended, live.ended]).toEqual([[], [], []]);
    registry.sweep(t0 + HANDSHAKE_TIMEOUT_MS + 1);
    expect(waiting.ended).toEqual(['LK_HS_TIMEOUT']);
    // The handshake waits for the pool or a backend: its own, longer bound.
    expect(handshaking.ended).toEqual([]);
    registry.sweep(t0 + STALL_MS + 1);
    expect(handshaking.ended).toEqual(['LK_HS_STALLED']);
    registry.sweep(t0 + live.keepAliveMs * 1.5);
    expect(live.ended).toEqual([]);
    registry.sweep(t0 + live.keepAliveMs * 1.5 + 1);
    expect(live.ended).toEqual(['LK_KEEPALIVE_TIMEOUT']);
    expect(registry.size).toBe(0);
  });

  it('runs every sweepMs until close()', async () => {
    const { registry, open } = world(10);
    const early = open();
    early.lastSeen = Date.now() - HANDSHAKE_TIMEOUT_MS - 1;
    await new Promise((r) => setTimeout(r, 60));
    expect(early.ended).toEqual(['LK_HS_TIMEOUT']);
    registry.close();
    const late = open();
    late.lastSeen = Date.now() - HANDSHAKE_TIMEOUT_MS - 1;
    await new Promise((r) => setTimeout(r, 60));
    expect(late.ended).toEqual([]);
  });
});

describe('SessionRegistry: bans and shutdown', () => {
  /** A ban applied the way server.ts wires it (protection's bannedSessions). */
  function apply(registry: SessionRegistry, b: BanRecord): { ended: number; addressChecks: number } {
    let addressChecks = 0;
    const ended = endBanned(b, {
      atAddresses: (match) => registry.endAtAddresses((a) => (addressChecks++, match(a)), 'LK_BANNED'),
      where: (match) => registry.endWhere((s) => match({ appId: s.app?.id ?? null, keyHash: s.claimedKeyHash }), 'LK_BANNED'),
    });
    return { ended, addressChecks };
  }

  it('an address ban ends the sessions of every matching address (IPv4, IPv4 CIDR, IPv6 /64, IPv4-mapped), checking each address once', () => {
    const { registry, open } = world();
    const v4 = [open('10.0.0.1'), open('10.0.0.1'), open('10.0.0.2')];
    const mapped = open('0000:0000:0000:0000:0000:ffff:0a00:0003');
    const inside64 = [open('2001:0db8:0001:0002:0000:0000:0000:0005'), open('2001:0db8:0001:0002:ffff:0000:0000:0001')];
    const outside64 = open('2001:0db8:0001:0003:0000:0000:0000:0005');
    const other = open('192.168.1.1');
    expect(apply(registry, ban('ip', '10.0.0.1'))).toEqual({ ended: 2, addressChecks: 7 });
    expect(v4.map((s) => s.ended)).toEqual([['LK_BANNED'], ['LK_BANNED'], []]);
    // Distinct addresses left: 10.0.0.2, the mapped one, three IPv6, 192.168.1.1.
    expect(apply(registry, ban('ip', '10.0.0.0/24'))).toEqual({ ended: 2, addressChecks: 6 });
    expect([v4[2]!.ended, mapped.ended, other.ended]).toEqual([['LK_BANNED'], ['LK_BANNED'], []]);
    expect(apply(registry, ban('ip', '2001:db8:1:2::/64')).ended).toBe(2);
    expect(inside64.map((s) => s.ended)).toEqual([['LK_BANNED'], ['LK_BANNED']]);
    expect(outside64.ended).toEqual([]);
    expect(registry.size).toBe(2);
  });

  it('a key hash or application ban ends the sessions that claim it, closed ones not counted', () => {
    const { registry, open } = world();
    const a = open().establish('app1', 'k1');
    const b = open().establish('app2', 'k1');
    const c = open().establish('app2', 'k2');
    const handshaking = open();
    handshaking.state = 'HANDSHAKING';
    handshaking.claimedKeyHash = 'k2';
    expect(apply(registry, ban('keyHash', 'k1')).ended).toBe(2);
    expect([a.ended, b.ended, c.ended]).toEqual([['LK_BANNED'], ['LK_BANNED'], []]);
    expect(apply(registry, ban('keyHash', 'k1')).ended).toBe(0);
    expect(apply(registry, ban('keyHash', 'k2')).ended).toBe(2);
    expect(handshaking.ended).toEqual(['LK_BANNED']);
    const d = open().establish('app3', 'k3');
    expect(apply(registry, ban('app', 'app9')).ended).toBe(0);
    expect(apply(registry, ban('app', 'app3')).ended).toBe(1);
    expect(d.ended).toEqual(['LK_BANNED']);
  });

  it('endAll ends every session, handshaking or not, with LK_SERVER_SHUTDOWN', () => {
    const { registry, open } = world();
    const all = [open(), open('10.1.1.1').establish('app', 'k1'), open('::1')];
    all[2]!.state = 'HANDSHAKING';
    registry.endAll('LK_SERVER_SHUTDOWN');
    expect(all.map((s) => s.ended)).toEqual([['LK_SERVER_SHUTDOWN'], ['LK_SERVER_SHUTDOWN'], ['LK_SERVER_SHUTDOWN']]);
    expect([registry.size, registry.endpointCount]).toEqual([0, 0]);
  });
});
