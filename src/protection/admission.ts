/**
 * Admission: the cheapest refusals, in the order DESIGN 9 asks for (ban list, connection caps and
 * rates, then parsing, then public-key work, then private-key work), each counted.
 *
 * At the WebSocket upgrade (no session exists yet, one Map lookup or two):
 *   1. the address is banned                          -> HTTP 403 LK_BANNED
 *   2. this process holds maxConnections              -> HTTP 503 LK_CONN_LIMIT (kept below the
 *      open-file limit by connectionFdReserve, so admin, health and the store keep their fds)
 *   3. this process has as many sockets whose handshake -> LK_SERVER_BUSY with a return time
 *      has not ended yet (no CONNACK sent, socket open)       (pacing.ts: the WebSocket is opened
 *      as it may hold: its recent handshakes per second x     and closed at once with 4003 and
 *      handshakeQueueTargetMs, within maxPendingHandshakes;   the delay in its reason, which a
 *      or a new handshake would wait past the crypto          browser's WebSocket can read and
 *      queue's bound, or the node's primary is behind         an HTTP answer it cannot)
 *      (setHandshakeBacklog): a reconnect storm of resumed handshakes never reaches the crypto
 *      queue's bound, and without this one a process took more sockets than it could read a first
 *      frame from within the handshake timeout
 *   4. the address opens connections too fast         -> HTTP 429 LK_CONN_RATE_LIMITED + Retry-After
 * In the handshake, before any RSA work (handshake.ts calls these):
 *   5. the key hash or the application is banned       -> CONNACK LK_BANNED
 *   6. the key hash starts handshakes too fast        -> CONNACK LK_HS_RATE_LIMITED
 *   7. the very same CONNECT failed its signature before -> CONNACK LK_HS_BAD_SIGNATURE, no verify
 *      (badSignatureMemory: a replayed forged CONNECT is not worth a second RSA verify; its nonce
 *      is not consumed on failure, by design, so a forger cannot burn a real endpoint's nonce)
 *   8. the address had a handshake refused in the last probationMs (or, under attack, had none
 *      accepted lately) -> wait until it has gone that long without one (at most 5 x); banned
 *      meanwhile: CONNACK LK_BANNED, no RSA operation
 *   9. a trustful application creates credentials too fast -> CONNACK LK_CRED_RATE_LIMITED (after
 *      the signature verified, before the decrypt's result is used: a stranger must hold the key,
 *      so random key hashes cannot drain the application's budget for its real new devices)
 * After the handshake:
 *   - an address whose handshakes are refused more than ipMaxFailedHandshakes times in
 *     flappingWindowSec is banned for flappingBanSec (junk floods stop at step 1); while the
 *     process refuses more than attackRefusalsPerSec handshakes a second in all, the threshold is
 *     ipMaxFailedHandshakesUnderAttack;
 *   - a key hash that verified flappingMaxCount handshakes in flappingWindowSec is banned for
 *     flappingBanSec at its next handshake, before RSA work (EMQX's flapping detection); while
 *     its handshakes in the crypto pool would reach the count, more are refused (rate limited).
 * Automatic bans go to the store like an operator's, so every node enforces them.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';
import type { Stats } from '../metrics.js';
import type { BanRecord } from '../store/store.js';
import type { BanList } from './bans.js';
import { canonicalIp } from '../net/ip.js';
import { normalizeIpBan } from './bans.js';
import { Pacer } from './pacing.js';
import { LastSeen, TokenBuckets, WindowCounters } from './rate.js';

export interface AdmissionLimits {
  maxConnections: number;
  /** Most sockets of this process whose handshake has not ended (0: no bound). */
  maxPendingHandshakes?: number;
  /** Fewer while the process's recent handshake rate x this is smaller (pacing.ts; 0 or absent: off). */
  handshakeQueueTargetMs?: number;
  /** Longest return time a busy refusal hands out (pacing.ts; default 300 s). */
  busyRetryMaxMs?: number;
  /** Cores this process may use, for the pacer's CPU estimate (pacing.ts; 0 or absent: none). */
  cpuShare?: number;
  connectionFdReserve: number;
  ipConnectRatePerSec: number;
  ipConnectBurst: number;
  keyHandshakesPerMin: number;
  flappingMaxCount: number;
  flappingWindowSec: number;
  flappingBanSec: number;
  ipMaxFailedHandshakes: number;
  /**
   * Under attack: while this process refuses more than this many handshakes per second in all, an
   * address is banned after ipMaxFailedHandshakesUnderAttack refusals instead (0: off).
   */
  attackRefusalsPerSec: number;
  ipMaxFailedHandshakesUnderAttack: number;
  badSignatureMemory: number;
  /** How long a failed signature is remembered (2 x the handshake window: a replay is stale after). */
  badSignatureTtlMs: number;
  trustfulNewCredentialsPerSec: number;
  /** Probation before RSA work (beforeCrypto; 0: off). */
  probationMs: number;
}

export interface UpgradeRefusal {
  status: number;
  code: ErrorCode;
  retryAfterSec: number;
  /**
   * A paced refusal (LK_SERVER_BUSY): the gateway opens the WebSocket and closes it at once with
   * the code's close code and this delay in its reason (docs/protocol.md 1.1), instead of answering
   * HTTP, which a browser's WebSocket cannot read.
   */
  retryAfterMs?: number;
}

/**
 * Refusals never counted against an address: the server's own faults, and refusals of our limits
 * (a legitimate device that retries into a rate limit or a key ban must not get its whole address,
 * a NAT of other devices, banned for it).
 */
const NOT_COUNTED: ReadonlySet<string> = new Set(['LK_SERVER_BUSY', 'LK_SERVER_UNAVAILABLE', 'LK_INTERNAL', 'LK_HS_STALLED', 'LK_SERVER_SHUTDOWN', 'LK_CRED_RATE_LIMITED', 'LK_SESSION_REPLACED', 'LK_SESSION_KICKED', 'LK_SLOW_CONSUMER', 'LK_HS_RATE_LIMITED', 'LK_BANNED']);

/**
 * The unit an address is counted and banned by: the address itself for IPv4, its /64 for IPv6 (a
 * single host commonly holds a whole /64, so per-/128 counting would never catch one).
 */
export function addressUnit(remoteAddress: string): string | null {
  const canon = canonicalIp(remoteAddress);
  if (canon === null || !canon.includes(':')) return canon;
  return normalizeIpBan(`${canon}/64`);
}

/** The open-file limit of this process (soft), from /proc; null where it cannot be read. */
export function openFileLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export class Admission {
  readonly maxConnections: number;
  private open = 0;
  private readonly ipRate: TokenBuckets;
  private readonly keyRate: TokenBuckets;
  private readonly trustfulRate: TokenBuckets;
  private readonly ipFailures: WindowCounters;
  private readonly keySessions: WindowCounters;
  /** Handshakes per key hash admitted by checkKey whose crypto has not finished (keyHandshakeDone). */
  private readonly keyInflight = new Map<string, number>();
  /** When each address last had a handshake refused: on probation for probationMs after. */
  private readonly lastRefusal: LastSeen;
  /** When each address last had a handshake accepted (within flappingWindowSec): known good. */
  private readonly lastAccepted: LastSeen;
  /** Digest of (signed body, signature) -> time it failed; Map order is time order. */
  private readonly badSignatures = new Map<string, number>();
  /** Queue bound from the handshake rate, and return times of busy refusals. */
  readonly pacer: Pacer;

  constructor(
    private readonly limits: AdmissionLimits,
    readonly bans: BanList,
    private readonly stats: Stats,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    const fdLimit = openFileLimit();
    this.maxConnections = limits.maxConnections > 0 ? limits.maxConnections : fdLimit !== null ? Math.max(64, fdLimit - limits.connectionFdReserve) : 100_000;
    this.ipRate = new TokenBuckets(limits.ipConnectRatePerSec, limits.ipConnectBurst, undefined, now);
    this.keyRate = new TokenBuckets(limits.keyHandshakesPerMin / 60, Math.max(1, limits.keyHandshakesPerMin), undefined, now);
    this.trustfulRate = new TokenBuckets(limits.trustfulNewCredentialsPerSec, Math.max(1, limits.trustfulNewCredentialsPerSec * 10), 100_000, now);
    this.ipFailures = new WindowCounters(limits.flappingWindowSec * 1000, undefined, now);
    this.keySessions = new WindowCounters(limits.flappingWindowSec * 1000, undefined, now);
    this.lastRefusal = new LastSeen(Math.max(1, limits.probationMs), undefined, now);
    this.lastAccepted = new LastSeen(limits.flappingWindowSec * 1000, undefined, now);
    this.pacer = new Pacer({ queueTargetMs: limits.handshakeQueueTargetMs ?? 0, maxDelayMs: limits.busyRetryMaxMs ?? 300_000, cpuShare: limits.cpuShare ?? 0, now });
  }

  get connections(): number {
    return this.open;
  }

  /** Hook for the crypto backlog: true while a new handshake would wait past the pool's bound (CryptoPool.overloaded). */
  private handshakesBusy: (() => boolean) | null = null;

  setHandshakeBacklog(busy: () => boolean): void {
    this.handshakesBusy = busy;
  }

  // --- at the upgrade ---

  /** Steps 1-4. null: admitted (the caller must call connectionClosed() when it closes). */
  admitConnection(remoteAddress: string): UpgradeRefusal | null {
    const ban = this.bans.ip(remoteAddress);
    if (ban) return this.refuseUpgrade(403, 'LK_BANNED', ban.expiresAt === null ? 3600 : Math.max(1, Math.ceil((ban.expiresAt - this.now()) / 1000)));
    if (this.open >= this.maxConnections) return this.refuseUpgrade(503, 'LK_CONN_LIMIT', 5);
    // Sockets admitted and not established (AWAIT_CONNECT, HANDSHAKING): sessionsOpen counts this
    // process's established ones, and every socket of the gateway came through here.
    const maxPending = this.pacer.pendingLimit(this.limits.maxPendingHandshakes ?? 0);
    if (maxPending > 0 && this.open - this.stats.sessionsOpen >= maxPending) return this.refuseBusy();
    // A handshake now would only be refused at its CONNECT (LK_SERVER_BUSY); refusing the upgrade
    // costs a fraction of that (no CONNECT to read, no crypto), which is what keeps a reconnect
    // storm's retries from taking the event loop the accepted handshakes need.
    if (this.handshakesBusy?.()) return this.refuseBusy();
    if (this.ipRate.enabled) {
      const wait = this.ipRate.take(addressUnit(remoteAddress) ?? remoteAddress, this.now());
      if (wait > 0) return this.refuseUpgrade(429, 'LK_CONN_RATE_LIMITED', wait);
    }
    this.open++;
    return null;
  }

  connectionClosed(): void {
    this.open--;
  }

  /** LK_SERVER_BUSY with the next return time of the pacer. */
  private refuseBusy(): UpgradeRefusal {
    const retryAfterMs = this.pacer.appointment();
    return { ...this.refuseUpgrade(503, 'LK_SERVER_BUSY', Math.ceil(retryAfterMs / 1000)), retryAfterMs };
  }

  private refuseUpgrade(status: number, code: ErrorCode, retryAfterSec: number): UpgradeRefusal {
    this.stats.count(this.stats.connectionsRefused, code);
    // Our own load (LK_CONN_LIMIT, LK_SERVER_BUSY) is not an attack: a legit reconnect storm hits it.
    if (code === 'LK_BANNED' || code === 'LK_CONN_RATE_LIMITED') this.noteRefusal(this.now());
    return { status, code, retryAfterSec };
  }

  // --- in the handshake (before RSA) ---

  /**
   * Steps 5-6 for a decoded CONNECT (application not known yet, signature not checked). The
   * per-key bucket is per (key hash, address): anyone can claim any key hash before the signature
   * is checked, so a bucket of the key alone would let a stranger lock a real endpoint out.
   */
  checkKey(keyHash: string, remoteAddress: string): ErrorCode | null {
    if (this.bans.keyHash(keyHash)) return 'LK_BANNED';
    // Flapping, decided before RSA work: a key that already opened flappingMaxCount sessions in the
    // window is banned at its next try. Only verified sessions count, so a forger claiming the key
    // cannot trigger this; the endpoint itself did open that many sessions.
    const flapping = this.limits.flappingMaxCount;
    const verified = flapping > 0 ? this.keySessions.peek(keyHash, this.now()) : 0;
    if (flapping > 0 && verified >= flapping) {
      this.flappingBan(keyHash);
      return 'LK_BANNED';
    }
    if (this.keyRate.enabled && this.keyRate.take(`${keyHash} ${addressUnit(remoteAddress) ?? remoteAddress}`, this.now()) > 0) return 'LK_HS_RATE_LIMITED';
    if (flapping > 0) {
      // Handshakes of this key already in the crypto pool count too: were they all to verify, this
      // one would be past the limit, and its RSA decrypt wasted. Refused without a ban (a forger
      // claiming the key holds a slot only for the ~1 ms its bad signature takes to fail).
      const inflight = this.keyInflight.get(keyHash) ?? 0;
      if (verified + inflight >= flapping) return 'LK_HS_RATE_LIMITED';
      this.keyInflight.set(keyHash, inflight + 1);
    }
    return null;
  }

  /** The crypto of a handshake admitted by checkKey finished (any outcome): `verified` if its signature held. Returns true if the key is now banned. */
  keyHandshakeDone(keyHash: string, verified: boolean): boolean {
    if (this.limits.flappingMaxCount <= 0) return false;
    const n = (this.keyInflight.get(keyHash) ?? 1) - 1;
    if (n <= 0) this.keyInflight.delete(keyHash);
    else this.keyInflight.set(keyHash, n);
    return verified ? this.keyVerified(keyHash) : false;
  }

  checkApp(appId: string): ErrorCode | null {
    return this.bans.app(appId) ? 'LK_BANNED' : null;
  }

  /** Digest identifying one signed CONNECT (its signed bytes and signature). */
  signatureDigest(sigInput: Uint8Array, signature: Uint8Array): string | null {
    if (this.limits.badSignatureMemory <= 0) return null;
    return crypto.createHash('sha256').update(sigInput).update(signature).digest('base64');
  }

  /** Step 6: true if this exact CONNECT already failed its signature check recently. */
  knownBadSignature(digest: string | null): boolean {
    if (digest === null) return false;
    const t = this.badSignatures.get(digest);
    return t !== undefined && this.now() - t < this.limits.badSignatureTtlMs;
  }

  rememberBadSignature(digest: string | null): void {
    if (digest === null) return;
    const m = this.badSignatures;
    m.delete(digest);
    m.set(digest, this.now());
    while (m.size > this.limits.badSignatureMemory) m.delete(m.keys().next().value!);
  }

  /** Step 8: may this trustful application create one more credentials record now? */
  allowNewTrustfulCredentials(appId: string): boolean {
    return this.trustfulRate.take(appId, this.now()) === 0;
  }

  /**
   * Step 7, the last before the crypto pool: probation. A handshake from an address whose
   * handshakes were refused in the last probationMs waits until the address has gone probationMs
   * without a refusal (checked every probationMs / 2, at most 5 x probationMs in all), so that a
   * flood mixing valid handshakes with junk gets its address banned (handshakeRefused) before the
   * valid ones cost an RSA decrypt. Under attack, an address with no handshake accepted in
   * flappingWindowSec waits probationMs once even before its first refusal (a flood's first valid
   * handshake may come before its junk). Resolves LK_BANNED if the address was banned meanwhile,
   * 'gone' if `gone()` says the connection went (nothing to spend RSA on), else null.
   */
  /**
   * Whether a handshake from `remoteAddress` must go through beforeCrypto's wait: checked on every
   * full handshake without an await (the handshake path is hot; almost every address is quiet).
   */
  onProbation(remoteAddress: string): boolean {
    const ms = this.limits.probationMs;
    if (ms <= 0) return false;
    const ip = addressUnit(remoteAddress);
    if (ip === null) return false;
    const now = this.now();
    return this.lastRefusal.since(ip, now) < ms || (this.underAttack(now) && this.lastAccepted.since(ip, now) === Infinity) || this.bans.ip(remoteAddress) !== null;
  }

  async beforeCrypto(remoteAddress: string, gone: () => boolean): Promise<ErrorCode | 'gone' | null> {
    const ms = this.limits.probationMs;
    if (ms <= 0) return null;
    const ip = addressUnit(remoteAddress);
    if (ip === null) return null;
    const start = this.now();
    const until = start + ms * 5;
    const stranger = this.underAttack(start) && this.lastAccepted.since(ip, start) === Infinity;
    while ((stranger && this.now() - start < ms) || (this.lastRefusal.since(ip, this.now()) < ms && this.now() < until)) {
      await new Promise<void>((resolve) => setTimeout(resolve, ms / 2).unref());
      if (gone()) return 'gone';
      if (this.bans.ip(remoteAddress)) return 'LK_BANNED';
    }
    return this.bans.ip(remoteAddress) ? 'LK_BANNED' : null;
  }

  /** A handshake from `remoteAddress` was accepted: counted for the pacer; the address is known good for probation. */
  handshakeAccepted(remoteAddress: string): void {
    this.pacer.established();
    if (this.limits.probationMs <= 0) return;
    const ip = addressUnit(remoteAddress);
    if (ip !== null) this.lastAccepted.touch(ip, this.now());
  }

  // --- after the handshake ---

  /** A handshake from `remoteAddress` was refused with `code`: count it; ban the address past the limit. */
  handshakeRefused(remoteAddress: string, code: string): void {
    if (this.limits.ipMaxFailedHandshakes <= 0 || NOT_COUNTED.has(code)) return;
    const ip = addressUnit(remoteAddress);
    if (ip === null || this.bans.ip(remoteAddress)) return;
    const now = this.now();
    if (this.limits.probationMs > 0) this.lastRefusal.touch(ip, now);
    const n = this.ipFailures.hit(ip, now);
    // A flood's onset costs (addresses x threshold) refused handshakes before every address is
    // banned (bench/flood: 50 x 100 of them held legit p99 at ~130 ms for 1-3 s); while the whole
    // process refuses handshakes this fast, addresses get the lower threshold.
    this.noteRefusal(now);
    const attack = this.underAttack(now);
    const limit = attack ? Math.min(this.limits.ipMaxFailedHandshakes, this.limits.ipMaxFailedHandshakesUnderAttack) : this.limits.ipMaxFailedHandshakes;
    if (n > limit) {
      this.ipFailures.reset(ip);
      this.autoBan({ kind: 'ip', value: ip, reason: `more than ${limit} refused handshakes in ${this.limits.flappingWindowSec} s${attack ? ' while under attack' : ''} (last: ${code})`, createdBy: 'failed-handshakes' });
    }
  }

  private refusalSecond = 0;
  private refusalCount = 0;
  private refusalPrev = 0;
  /** Count one refusal of an attempt (handshake, or an upgrade of a banned or too fast address). */
  private noteRefusal(now: number): void {
    const sec = Math.floor(now / 1000);
    if (sec !== this.refusalSecond) {
      this.refusalPrev = sec === this.refusalSecond + 1 ? this.refusalCount : 0;
      this.refusalSecond = sec;
      this.refusalCount = 0;
    }
    this.refusalCount++;
  }

  /**
   * Under attack: this second or the one before saw more than attackRefusalsPerSec refusals (of
   * handshakes, and of upgrades from banned or too fast addresses, so the mode lasts while a banned
   * flood goes on, not only through its onset).
   */
  underAttack(now = this.now()): boolean {
    const limit = this.limits.attackRefusalsPerSec;
    if (limit <= 0) return false;
    const sec = Math.floor(now / 1000);
    const cur = sec === this.refusalSecond ? this.refusalCount : 0;
    const prev = sec === this.refusalSecond ? this.refusalPrev : sec === this.refusalSecond + 1 ? this.refusalCount : 0;
    return Math.max(cur, prev) > limit;
  }

  /**
   * A handshake of `keyHash` verified its signature: flapping detection counts these (a forger
   * cannot). Returns true if the key is now banned; checkKey's in-flight count keeps that from
   * happening to a handshake that already spent its decrypt, short of a ban list refresh racing it.
   */
  private keyVerified(keyHash: string): boolean {
    const n = this.keySessions.hit(keyHash, this.now());
    if (n <= this.limits.flappingMaxCount) return false;
    this.flappingBan(keyHash);
    return true;
  }

  private flappingBan(keyHash: string): void {
    this.keySessions.reset(keyHash);
    this.autoBan({ kind: 'keyHash', value: keyHash, reason: `flapping: more than ${this.limits.flappingMaxCount} sessions in ${this.limits.flappingWindowSec} s`, createdBy: 'flapping' });
  }

  private autoBan(b: Omit<BanRecord, 'createdAt' | 'expiresAt'>): void {
    const expiresAt = this.now() + this.limits.flappingBanSec * 1000;
    this.log.warn({ ban: { ...b, expiresAt } }, 'automatic ban');
    this.bans.add({ ...b, expiresAt }, { applyFirst: true }).catch((err: unknown) => this.log.warn({ err, kind: b.kind }, 'automatic ban not stored (store unavailable); retried on the next offence'));
  }
}
