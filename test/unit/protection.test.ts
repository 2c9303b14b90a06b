import { describe, expect, it } from 'vitest';
import { canonicalIp, cidrContains, ipValue, parseCidr } from '../../src/net/ip.js';
import { endBanned, normalizeIpBan } from '../../src/protection/bans.js';
import type { BanRecord } from '../../src/store/store.js';
import { TokenBuckets, WindowCounters } from '../../src/protection/rate.js';

describe('addresses', () => {
  it('one canonical text per address, IPv4-mapped IPv6 as IPv4, junk as null', () => {
    expect(canonicalIp('127.0.0.1')).toBe('127.0.0.1');
    expect(canonicalIp('::1')).toBe(canonicalIp('0:0:0:0:0:0:0:1'));
    expect(canonicalIp('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(canonicalIp('0000:0000:0000:0000:0000:ffff:7f00:0001')).toBe('127.0.0.1');
    expect(canonicalIp('2001:DB8::1')).toBe('2001:0db8:0000:0000:0000:0000:0000:0001');
    for (const bad of ['', 'x', '1.2.3', '1.2.3.4.5', 'fe80::1%eth0', '::g']) expect(canonicalIp(bad)).toBeNull();
  });
  it('CIDR matching for both families; prefixes out of range and zone ids refused', () => {
    const v4 = parseCidr('10.0.0.0/8')!;
    expect(cidrContains(v4, ipValue('10.200.3.4')!)).toBe(true);
    expect(cidrContains(v4, ipValue('11.0.0.1')!)).toBe(false);
    const v6 = parseCidr('2001:db8::/32')!;
    expect(cidrContains(v6, ipValue(canonicalIp('2001:db8:ffff::1')!)!)).toBe(true);
    expect(cidrContains(v6, ipValue('10.0.0.1')!)).toBe(false);
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/x', 'fe80::1%eth0/64', '/8']) expect(parseCidr(bad)).toBeNull();
    expect(normalizeIpBan('10.1.2.3/8')).toBe('10.0.0.0/8');
    expect(normalizeIpBan('::1/128')).toBe('0000:0000:0000:0000:0000:0000:0000:0001');
  });
});

describe('a ban ends the sessions it covers', () => {
  const addresses = ['127.0.0.1', '127.0.0.2', '10.9.8.7', '0000:0000:0000:0000:0000:ffff:7f00:0003', '2001:0db8:0000:0000:0000:0000:0000:0001'];
  const sessions = [
    { address: '127.0.0.1', appId: 'a', keyHash: 'k1' },
    { address: '127.0.0.1', appId: 'b', keyHash: 'k2' },
    { address: '127.0.0.2', appId: 'a', keyHash: null },
    { address: '10.9.8.7', appId: null, keyHash: 'k1' },
    { address: addresses[3]!, appId: 'b', keyHash: 'k3' },
    { address: addresses[4]!, appId: 'a', keyHash: 'k4' },
  ];
  function run(kind: BanRecord['kind'], value: string): { ended: number; addressChecks: number } {
    let addressChecks = 0;
    const ended = endBanned({ kind, value, createdAt: 0, expiresAt: null, createdBy: 'test', reason: '' }, {
      atAddresses: (match) => addresses.filter((a) => (addressChecks++, match(a))).reduce((n, a) => n + sessions.filter((s) => s.address === a).length, 0),
      where: (match) => sessions.filter((s) => match(s)).length,
    });
    return { ended, addressChecks };
  }
  it('an address or CIDR ban is matched once per distinct address, in either text form', () => {
    expect(run('ip', '127.0.0.1')).toEqual({ ended: 2, addressChecks: addresses.length });
    expect(run('ip', '127.0.0.0/8')).toEqual({ ended: 4, addressChecks: addresses.length });
    expect(run('ip', '127.0.0.3').ended).toBe(1);
    expect(run('ip', '2001:0db8:0000:0000:0000:0000:0000:0000/32').ended).toBe(1);
    expect(run('ip', '192.168.0.0/16').ended).toBe(0);
    expect(run('ip', 'not an address').ended).toBe(0);
  });
  it('key hash and application bans select by what the session claims', () => {
    expect(run('keyHash', 'k1').ended).toBe(2);
    expect(run('app', 'b').ended).toBe(2);
  });
});

describe('bounded counters', () => {
  it('a token bucket refills at its rate, answers the wait, and stays bounded in keys', () => {
    const b = new TokenBuckets(2, 3, 100);
    expect([0, 0, 0].map(() => b.take('a', 0))).toEqual([0, 0, 0]);
    expect(b.take('a', 0)).toBe(1);
    expect(b.take('a', 500)).toBe(0);
    for (let i = 0; i < 1000; i++) b.take(`k${i}`, 1000);
    expect(b.size).toBeLessThanOrEqual(100);
    expect(new TokenBuckets(0, 1).take('x', 0)).toBe(0);
  });
  it('a window counter restarts after its window', () => {
    const w = new WindowCounters(1000, 10);
    expect([w.hit('a', 0), w.hit('a', 10), w.hit('a', 999)]).toEqual([1, 2, 3]);
    expect(w.hit('a', 1000)).toBe(1);
  });
});

describe('under-attack mode', () => {
  it('lowers the per-address refused-handshake threshold while the process refuses many handshakes a second', async () => {
    const { Admission } = await import('../../src/protection/admission.js');
    const { BanList } = await import('../../src/protection/bans.js');
    const { Stats } = await import('../../src/metrics.js');
    const { pino } = await import('pino');
    const stored: unknown[] = [];
    const store = { putBan: async (b: unknown) => (stored.push(b), b), deleteBan: async () => false, listBans: async () => [], appendControl: async () => undefined, listControlSince: async () => [] };
    let now = 1_000_000;
    const log = pino({ level: 'silent' });
    const bans = new BanList({ store: store as never, log, announce: async () => undefined, onBanned: () => undefined, now: () => now });
    const limits = { maxConnections: 10, connectionFdReserve: 64, ipConnectRatePerSec: 0, ipConnectBurst: 1, keyHandshakesPerMin: 0, flappingMaxCount: 0, flappingWindowSec: 60, flappingBanSec: 300, ipMaxFailedHandshakes: 100, attackRefusalsPerSec: 5, ipMaxFailedHandshakesUnderAttack: 2, badSignatureMemory: 0, badSignatureTtlMs: 1, trustfulNewCredentialsPerSec: 0, probationMs: 0 };
    const a = new Admission(limits, bans, new Stats(), log, () => now);
    // Quiet: 3 refusals from one address are far below 100.
    for (let i = 0; i < 3; i++) a.handshakeRefused('10.0.0.1', 'LK_HS_BAD_SIGNATURE');
    expect(bans.ip('10.0.0.1')).toBeNull();
    // A new second with refusals from many addresses: past 5 a second, 2 per address suffice.
    now += 1000;
    for (let i = 2; i < 10; i++) a.handshakeRefused(`10.0.0.${i}`, 'LK_HS_BAD_SIGNATURE');
    for (let i = 0; i < 2; i++) a.handshakeRefused('10.0.0.99', 'LK_HS_BAD_SIGNATURE');
    expect(bans.ip('10.0.0.99')).toBeNull();
    a.handshakeRefused('10.0.0.99', 'LK_HS_BAD_SIGNATURE');
    expect(bans.ip('10.0.0.99')).not.toBeNull();
    // Server-side refusals never count.
    for (let i = 0; i < 10; i++) a.handshakeRefused('10.0.0.98', 'LK_SERVER_UNAVAILABLE');
    expect(bans.ip('10.0.0.98')).toBeNull();
  });
});

describe('flapping detection', () => {
  it('counts handshakes of a key still in the crypto pool, so none past the limit spends a decrypt', async () => {
    const { Admission } = await import('../../src/protection/admission.js');
    const { BanList } = await import('../../src/protection/bans.js');
    const { Stats } = await import('../../src/metrics.js');
    const { pino } = await import('pino');
    const store = { putBan: async (b: unknown) => b, deleteBan: async () => false, listBans: async () => [], appendControl: async () => undefined, listControlSince: async () => [] };
    const now = 1_000_000;
    const log = pino({ level: 'silent' });
    const bans = new BanList({ store: store as never, log, announce: async () => undefined, onBanned: () => undefined, now: () => now });
    const limits = { maxConnections: 10, connectionFdReserve: 64, ipConnectRatePerSec: 0, ipConnectBurst: 1, keyHandshakesPerMin: 0, flappingMaxCount: 3, flappingWindowSec: 60, flappingBanSec: 300, ipMaxFailedHandshakes: 100, attackRefusalsPerSec: 0, ipMaxFailedHandshakesUnderAttack: 2, badSignatureMemory: 0, badSignatureTtlMs: 1, trustfulNewCredentialsPerSec: 0, probationMs: 0 };
    const a = new Admission(limits, bans, new Stats(), log, () => now);
    // Three admitted at once fill the limit; a fourth is refused before RSA, without a ban.
    for (let i = 0; i < 3; i++) expect(a.checkKey('K', '10.0.0.1')).toBeNull();
    expect(a.checkKey('K', '10.0.0.1')).toBe('LK_HS_RATE_LIMITED');
    expect(bans.keyHash('K')).toBeNull();
    // A forged one (signature failed) frees its slot and counts nothing.
    expect(a.keyHandshakeDone('K', false)).toBe(false);
    expect(a.checkKey('K', '10.0.0.1')).toBeNull();
    // Three verify: the limit is reached, none of them is banned after its decrypt.
    for (let i = 0; i < 3; i++) expect(a.keyHandshakeDone('K', true)).toBe(false);
    // The next handshake of the key is banned before RSA work.
    expect(a.checkKey('K', '10.0.0.1')).toBe('LK_BANNED');
    expect(bans.keyHash('K')).not.toBeNull();
    // Other keys are not affected.
    expect(a.checkKey('L', '10.0.0.1')).toBeNull();
  });
});

/** An Admission for the upgrade checks: no rates, no bans stored, a fixed clock; `over` sets the limits under test. */
async function upgradeAdmission(over: Record<string, number>) {
  const { Admission } = await import('../../src/protection/admission.js');
  const { BanList } = await import('../../src/protection/bans.js');
  const { Stats } = await import('../../src/metrics.js');
  const { pino } = await import('pino');
  const store = { putBan: async (b: unknown) => b, deleteBan: async () => false, listBans: async () => [], appendControl: async () => undefined, listControlSince: async () => [] };
  const log = pino({ level: 'silent' });
  const bans = new BanList({ store: store as never, log, announce: async () => undefined, onBanned: () => undefined, now: () => 1 });
  const limits = { maxConnections: 10, connectionFdReserve: 64, ipConnectRatePerSec: 0, ipConnectBurst: 1, keyHandshakesPerMin: 0, flappingMaxCount: 0, flappingWindowSec: 60, flappingBanSec: 300, ipMaxFailedHandshakes: 100, attackRefusalsPerSec: 0, ipMaxFailedHandshakesUnderAttack: 2, badSignatureMemory: 0, badSignatureTtlMs: 1, trustfulNewCredentialsPerSec: 0, probationMs: 0, ...over };
  const stats = new Stats();
  const make = (more: Record<string, number>) => new Admission({ ...limits, ...more }, bans, new Stats(), log, () => 1);
  return { a: new Admission(limits, bans, stats, log, () => 1), stats, make };
}

describe('upgrade refusal while the crypto queue is past its wait bound', () => {
  it('refuses LK_SERVER_BUSY at the upgrade with a return time (no connection counted) while the backlog hook says busy', async () => {
    const { a } = await upgradeAdmission({ maxConnections: 10 });
    let busy = true;
    a.setHandshakeBacklog(() => busy);
    const r = a.admitConnection('10.0.0.1');
    expect(r).toMatchObject({ status: 503, code: 'LK_SERVER_BUSY' });
    // The first appointment of a process with no history: 1 s from now, within its first slot.
    expect(r!.retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(r!.retryAfterMs).toBeLessThan(1020);
    expect(r!.retryAfterSec).toBe(Math.ceil(r!.retryAfterMs! / 1000));
    expect(a.connections).toBe(0);
    busy = false;
    expect(a.admitConnection('10.0.0.1')).toBeNull();
    expect(a.connections).toBe(1);
  });
});

describe('upgrade refusal past maxPendingHandshakes', () => {
  it('refuses 503 LK_SERVER_BUSY while the sockets not yet established reach the bound, and admits again as handshakes end', async () => {
    const { a, stats, make } = await upgradeAdmission({ maxConnections: 100, maxPendingHandshakes: 3 });
    for (let i = 0; i < 3; i++) expect(a.admitConnection('10.0.0.1')).toBeNull();
    const busy = expect.objectContaining({ status: 503, code: 'LK_SERVER_BUSY', retryAfterMs: expect.any(Number) });
    expect(a.admitConnection('10.0.0.2')).toEqual(busy);
    expect(a.connections).toBe(3);
    expect(stats.connectionsRefused.get('LK_SERVER_BUSY')).toBe(1);
    // Two handshakes end in sessions (Session counts them in sessionsOpen): room for two more.
    stats.sessionsOpen = 2;
    expect(a.admitConnection('10.0.0.2')).toBeNull();
    expect(a.admitConnection('10.0.0.2')).toBeNull();
    expect(a.admitConnection('10.0.0.2')).toEqual(busy);
    // A pending socket closes (a refused or timed-out handshake): room for one.
    a.connectionClosed();
    expect(a.admitConnection('10.0.0.3')).toBeNull();
    expect(a.connections).toBe(5);
    // 0 turns the bound off.
    const off = make({ maxPendingHandshakes: 0 });
    for (let i = 0; i < 20; i++) expect(off.admitConnection('10.0.0.4')).toBeNull();
  });
});

describe('probation before RSA work', () => {
  async function admission(probationMs: number, ipMaxFailedHandshakes = 3, attackRefusalsPerSec = 0) {
    const { Admission } = await import('../../src/protection/admission.js');
    const { BanList } = await import('../../src/protection/bans.js');
    const { Stats } = await import('../../src/metrics.js');
    const { pino } = await import('pino');
    const store = { putBan: async (b: unknown) => b, deleteBan: async () => false, listBans: async () => [], appendControl: async () => undefined, listControlSince: async () => [] };
    const log = pino({ level: 'silent' });
    const bans = new BanList({ store: store as never, log, announce: async () => undefined, onBanned: () => undefined });
    const limits = { maxConnections: 10, connectionFdReserve: 64, ipConnectRatePerSec: 0, ipConnectBurst: 1, keyHandshakesPerMin: 0, flappingMaxCount: 0, flappingWindowSec: 60, flappingBanSec: 300, ipMaxFailedHandshakes, attackRefusalsPerSec, ipMaxFailedHandshakesUnderAttack: ipMaxFailedHandshakes, badSignatureMemory: 0, badSignatureTtlMs: 1, trustfulNewCredentialsPerSec: 0, probationMs };
    return new Admission(limits, bans, new Stats(), log);
  }

  it('lets a handshake from an address with no recent refusal through at once', async () => {
    const a = await admission(40);
    a.handshakeRefused('10.0.0.9', 'LK_HS_BAD_SIGNATURE');
    const t0 = performance.now();
    expect(await a.beforeCrypto('10.0.0.1', () => false)).toBeNull();
    expect(performance.now() - t0).toBeLessThan(20);
  });

  it('holds a handshake of a refusing address until the address is banned, then refuses it with LK_BANNED', async () => {
    const a = await admission(40);
    a.handshakeRefused('10.0.0.1', 'LK_CRED_UNKNOWN');
    const held = a.beforeCrypto('10.0.0.1', () => false);
    let settled = false;
    void held.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(settled).toBe(false);
    // More junk from the same address: past ipMaxFailedHandshakes (3) it is banned.
    for (let i = 0; i < 4; i++) a.handshakeRefused('10.0.0.1', 'LK_CRED_UNKNOWN');
    expect(a.bans.ip('10.0.0.1')).not.toBeNull();
    expect(await held).toBe('LK_BANNED');
  });

  it('lets it through once the address has gone probationMs without a refusal, and never holds past 5 x', async () => {
    const a = await admission(40);
    a.handshakeRefused('10.0.0.2', 'LK_HS_STALE_TIMESTAMP');
    const t0 = performance.now();
    expect(await a.beforeCrypto('10.0.0.2', () => false)).toBeNull();
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(15);
    expect(waited).toBeLessThan(40 * 5 + 100);
    // An address refusing all along (below its ban threshold) holds a handshake 5 x probationMs at most.
    const b = await admission(20, 1_000_000);
    const keepRefusing = setInterval(() => b.handshakeRefused('10.0.0.3', 'LK_HS_REPLAYED_NONCE'), 5);
    try {
      b.handshakeRefused('10.0.0.3', 'LK_HS_REPLAYED_NONCE');
      const t1 = performance.now();
      expect(await b.beforeCrypto('10.0.0.3', () => false)).toBeNull();
      const held = performance.now() - t1;
      expect(held).toBeGreaterThanOrEqual(20 * 5 - 5);
      expect(held).toBeLessThan(20 * 5 + 100);
    } finally {
      clearInterval(keepRefusing);
    }
  });

  it("answers 'gone' when the connection went while it waited (nothing to spend RSA on)", async () => {
    const a = await admission(40);
    a.handshakeRefused('10.0.0.4', 'LK_CRED_REVOKED');
    let gone = false;
    setTimeout(() => (gone = true), 5);
    expect(await a.beforeCrypto('10.0.0.4', () => gone)).toBe('gone');
  });

  it('under attack holds a stranger once (no handshake accepted lately), not an address known good', async () => {
    const a = await admission(40, 1_000_000, 5);
    expect(a.underAttack()).toBe(false);
    // Upgrades of a banned address count towards under-attack mode, as refused handshakes do.
    await a.bans.add({ kind: 'ip', value: '10.9.0.1', reason: 'test', createdBy: 'admin', expiresAt: null });
    for (let i = 0; i < 6; i++) expect(a.admitConnection('10.9.0.1')?.code).toBe('LK_BANNED');
    expect(a.underAttack()).toBe(true);
    a.handshakeAccepted('10.0.0.7');
    let t0 = performance.now();
    expect(await a.beforeCrypto('10.0.0.7', () => false)).toBeNull();
    expect(performance.now() - t0).toBeLessThan(20);
    t0 = performance.now();
    expect(await a.beforeCrypto('10.0.0.8', () => false)).toBeNull();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(35);
  });

  it('is off at probationMs 0', async () => {
    const a = await admission(0);
    a.handshakeRefused('10.0.0.5', 'LK_CRED_UNKNOWN');
    expect(await a.beforeCrypto('10.0.0.5', () => false)).toBeNull();
  });
});
