/**
 * Live sessions of this node: by session id and by endpoint (application id + key hash).
 * - Takeover: a new session of an endpoint that already has one ends the older session with
 *   LK_SESSION_REPLACED (the same key cannot hold two sessions; a reconnect after a silent network
 *   loss must win over the half-dead old socket).
 * - A sweeper (every `sweepMs`) ends sessions that sent no CONNECT within the handshake timeout
 *   (LK_HS_TIMEOUT), handshakes stuck after their CONNECT past handshakeStallMs (LK_HS_STALLED),
 *   and sessions silent for 1.5 x their keepalive (LK_KEEPALIVE_TIMEOUT). One pass is
 *   O(open sessions) of integer compares (~1-3 ms per 100k sessions).
 */
import type { Stats } from '../metrics.js';
import type { Session, SessionRegistryHooks } from './session.js';

/**
 * How long a revocation is remembered for racing handshakes: far longer than any handshake can take
 * (the crypto queue is bounded and the handshake timeout applies before CONNECT).
 */
const REVOKED_MEMORY_MS = 120_000;

/**
 * Told of every established session and of its end: the primary's directory of a multi-process
 * node (which process holds each endpoint) and the cluster directory (which node; control/routing.ts).
 */
export interface SessionDirectory {
  claimed(session: Session): void;
  released(session: Session): void;
}

export class SessionRegistry implements SessionRegistryHooks {
  private readonly all = new Set<Session>();
  private readonly byEndpoint = new Map<string, Session>();
  /**
   * Open sessions by remote address as the transport reports it (uWS: dotted IPv4, full IPv6), so a
   * ban of one address ends its sessions without a look at every other session: under a flood from
   * many addresses, bans land by the dozen per second while thousands of sessions are open.
   */
  private readonly byAddress = new Map<string, Set<Session>>();
  /** Recent revocations by endpoint key -> time; see recentlyRevoked(). Entries live REVOKED_MEMORY_MS. */
  private readonly recentlyRevokedAt = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  /** Told of established and ended sessions (addDirectory). */
  private directories: SessionDirectory[] = [];

  constructor(
    private readonly stats: Stats,
    private readonly handshakeTimeoutMs: number,
    private readonly handshakeStallMs = 30_000,
    sweepMs = 1000,
  ) {
    this.timer = setInterval(() => this.sweep(Date.now()), sweepMs);
    this.timer.unref();
  }

  /** Every socket is added when it opens, before its CONNECT. */
  opened(session: Session): void {
    this.all.add(session);
    const at = this.byAddress.get(session.remoteAddress);
    if (at) at.add(session);
    else this.byAddress.set(session.remoteAddress, new Set([session]));
  }

  established(session: Session): void {
    // Callers check recentlyRevoked() first; see Session.handshake.
    const key = session.endpointKey!;
    const prev = this.byEndpoint.get(key);
    this.byEndpoint.set(key, session);
    if (prev && prev !== session) prev.end('LK_SESSION_REPLACED');
    for (const d of this.directories) d.claimed(session);
  }

  /** A newer session of the endpoint is held on another node: end ours if it is still `sessionId`. */
  replacedOnOtherNode(appId: string, keyHash: string, sessionId: string): boolean {
    const s = this.byEndpoint.get(`${appId}/${keyHash}`);
    if (!s || s.id !== sessionId) return false;
    s.end('LK_SESSION_REPLACED');
    return true;
  }

  /** Another process of this node holds a newer session of `key` (established at `at`): end ours if older. */
  replacedElsewhere(key: string, at: number): void {
    const s = this.byEndpoint.get(key);
    if (s && s.establishedAt !== null && s.establishedAt <= at) s.end('LK_SESSION_REPLACED');
  }

  addDirectory(d: SessionDirectory): void {
    this.directories.push(d);
  }

  closed(session: Session): void {
    if (!this.all.delete(session)) return;
    const at = this.byAddress.get(session.remoteAddress);
    if (at?.delete(session) && at.size === 0) this.byAddress.delete(session.remoteAddress);
    const key = session.endpointKey;
    if (key && this.byEndpoint.get(key) === session) {
      this.byEndpoint.delete(key);
      for (const d of this.directories) d.released(session);
    }
    if (session.establishedAt !== null) this.stats.sessionsOpen--;
  }

  get size(): number {
    return this.all.size;
  }

  get endpointCount(): number {
    return this.byEndpoint.size;
  }

  byEndpointKey(appId: string, keyHash: string): Session | undefined {
    return this.byEndpoint.get(`${appId}/${keyHash}`);
  }

  sessions(): IterableIterator<Session> {
    return this.all.values();
  }

  /**
   * Credentials were revoked: end the endpoint's live session here (CREDENTIALS_REVOKED) and
   * remember the time, so a handshake that started before and finishes after is refused too.
   * The credentials id is the endpoint's key hash. Returns true if a session was ended.
   */
  revoked(appId: string, keyHash: string): boolean {
    const key = `${appId}/${keyHash}`;
    this.recentlyRevokedAt.delete(key);
    this.recentlyRevokedAt.set(key, Date.now());
    const s = this.byEndpoint.get(key);
    if (!s) return false;
    s.end('LK_CRED_REVOKED');
    return true;
  }

  /**
   * True if this node learnt of a revocation of the endpoint's credentials in the last
   * REVOKED_MEMORY_MS. Revocation is terminal, so any remembered one refuses the handshake: one that
   * read the old status before the revocation (the race), or from a cache that still held the old
   * status while it was unreachable.
   */
  recentlyRevoked(appId: string, keyHash: string): boolean {
    return this.recentlyRevokedAt.has(`${appId}/${keyHash}`);
  }

  sweep(now: number): void {
    for (const [k, t] of this.recentlyRevokedAt) {
      if (now - t < REVOKED_MEMORY_MS) break;
      this.recentlyRevokedAt.delete(k);
    }
    // lastSeen is when the socket opened until CONNECT, when the CONNECT arrived while HANDSHAKING
    // (another frame in either state ends the session), then the last frame.
    for (const s of this.all) {
      if (s.state === 'AWAIT_CONNECT') {
        if (now - s.lastSeen > this.handshakeTimeoutMs) s.end('LK_HS_TIMEOUT');
      } else if (s.state === 'HANDSHAKING') {
        // Waiting for the crypto pool or a backing service is not the endpoint's fault, so this
        // bound is separate and longer: it only catches a handshake stuck on a hung backend.
        if (now - s.lastSeen > this.handshakeStallMs) s.end('LK_HS_STALLED');
      } else if (s.state === 'ESTABLISHED' && now - s.lastSeen > s.keepAliveMs * 1.5) {
        s.end('LK_KEEPALIVE_TIMEOUT');
      }
    }
  }

  /** End every session for which `match` is true with `code` (a ban came into force); returns how many. */
  endWhere(match: (s: Session) => boolean, code: 'LK_BANNED'): number {
    const hit: Session[] = [];
    for (const s of this.all) if (s.state !== 'CLOSED' && match(s)) hit.push(s);
    for (const s of hit) s.end(code);
    return hit.length;
  }

  /**
   * End every session whose remote address (as the transport reports it) `matchAddress` accepts;
   * `matchAddress` runs once per distinct address, not per session. Returns how many were ended.
   */
  endAtAddresses(matchAddress: (address: string) => boolean, code: 'LK_BANNED'): number {
    let n = 0;
    for (const [address, sessions] of [...this.byAddress]) {
      if (!matchAddress(address)) continue;
      for (const s of [...sessions]) {
        if (s.state === 'CLOSED') continue;
        s.end(code);
        n++;
      }
    }
    return n;
  }

  /** End every session with `code` (shutdown). */
  endAll(code: 'LK_SERVER_SHUTDOWN'): void {
    for (const s of [...this.all]) s.end(code);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
