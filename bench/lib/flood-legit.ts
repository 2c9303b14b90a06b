/**
 * The legit endpoints of bench/flood: persistent raw-socket WebSocket sessions (one `net` socket
 * each, bound to a loopback source address with `localAddress`, fixed upgrade request, zero mask
 * key) that ping at a steady rate and record every round trip. Same cheap-client rules as
 * bench/lib/ws-conn.ts, plus the source address and the ping clock, which that client does not have.
 *
 * LegitConn.open() upgrades and, given a first frame (a CONNECT), sends it and returns the first
 * binary reply for the caller to check (CONNACK ACCEPTED and its confirmation). LegitFleet then
 * pings: each connection sends one PINGREQ (frame 0x0C) every `intervalMs`, the connections spread
 * evenly over the interval (connection i at offset i/N of it), driven by one 5 ms timer against the
 * clock. A connection whose previous ping is still unanswered skips its slot (counted); the late
 * answer is recorded with its full round trip, so a stall shows as long round trips, not as missing
 * samples. Any one-byte binary answer counts as the pong: PINGRESP (0x0D) from latchkey, the echoed
 * 0x0C from the uWS echo floor.
 */
import net from 'node:net';

const UPGRADE = Buffer.from(
  'GET /ep/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: latchkey.v1\r\n\r\n',
  'latin1',
);
/** PINGREQ (0x0C) as a masked binary frame with a zero mask key. */
const PING = Buffer.from([0x82, 0x81, 0, 0, 0, 0, 0x0c]);
const EMPTY = Buffer.alloc(0);

function maskedBinary(payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : 4;
  if (len >= 65536) throw new Error('frame too large');
  const out = Buffer.alloc(head + 4 + len);
  out[0] = 0x82;
  if (len < 126) out[1] = 0x80 | len;
  else {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  }
  payload.copy(out, head + 4);
  return out;
}

export class LegitConn {
  private buf: Buffer = EMPTY;
  /** performance.now() of the unanswered ping, or 0. */
  pingSentAt = 0;
  endReason: string | null = null;
  /** Set by the fleet: a pong arrived (round trip from pingSentAt). */
  onPong: ((sentAt: number, at: number) => void) | null = null;
  /** Binary messages that were not a pong (DISCONNECT, pushes), by first byte. */
  readonly other = new Map<number, number>();
  private firstWaiter: ((m: Buffer | null) => void) | null = null;
  private readonly closedP: Promise<void>;

  private constructor(private readonly sock: net.Socket) {
    this.closedP = new Promise<void>((resolve) =>
      sock.once('close', () => {
        this.endReason ??= 'closed';
        this.firstWaiter?.(null);
        resolve();
      }),
    );
    sock.on('error', (err) => {
      this.endReason ??= `socket error: ${err.message}`;
    });
  }

  get closed(): boolean {
    return this.sock.destroyed;
  }

  /**
   * Connect from `localAddress` to 127.0.0.1:`port`, upgrade on /ep/v1, then send `first` (if given)
   * and wait for the first binary message. Rejects on timeout, another status or a close.
   */
  static open(port: number, localAddress: string, first: Buffer | null, timeoutMs: number): Promise<{ conn: LegitConn; reply: Buffer | null }> {
    if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(localAddress)) throw new Error(`not a loopback address: ${localAddress}`);
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port, host: '127.0.0.1', localAddress });
      sock.setNoDelay(true);
      const conn = new LegitConn(sock);
      let head: Buffer = EMPTY;
      let settled = false;
      const fail = (why: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        reject(new Error(`legit connection from ${localAddress}: ${why}`));
      };
      const timer = setTimeout(() => fail('timeout'), timeoutMs);
      sock.once('close', () => fail(`closed (${conn.endReason})`));
      sock.on('connect', () => sock.write(UPGRADE));
      const onHead = (d: Buffer): void => {
        head = head.length ? Buffer.concat([head, d]) : d;
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (head.toString('latin1', 9, 12) !== '101') return fail(`upgrade answered ${head.subarray(0, head.indexOf('\r\n')).toString('latin1')}`);
        sock.off('data', onHead);
        sock.on('data', (chunk: Buffer) => conn.onData(chunk));
        const rest = head.subarray(end + 4);
        if (!first) {
          settled = true;
          clearTimeout(timer);
          resolve({ conn, reply: null });
          if (rest.length) conn.onData(rest);
          return;
        }
        conn.firstWaiter = (m) => {
          conn.firstWaiter = null;
          if (!m) return fail(`closed before the first reply (${conn.endReason})`);
          settled = true;
          clearTimeout(timer);
          resolve({ conn, reply: m });
        };
        sock.write(maskedBinary(first));
        if (rest.length) conn.onData(rest);
      };
      sock.on('data', onHead);
    });
  }

  private onData(chunk: Buffer): void {
    const at = performance.now();
    const buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 2) {
      const opcode = buf[off]! & 0x0f;
      let len = buf[off + 1]! & 0x7f;
      let p = off + 2;
      if (len === 126) {
        if (buf.length - off < 4) break;
        len = buf.readUInt16BE(off + 2);
        p = off + 4;
      } else if (len === 127) {
        this.endReason = 'server frame over 64 KiB';
        this.sock.destroy();
        return;
      }
      if (buf.length < p + len) break;
      off = p + len;
      if (opcode === 0x8) {
        this.endReason = `close frame ${len >= 2 ? buf.readUInt16BE(p) : ''} ${buf.toString('utf8', p + 2, p + len)}`.trim();
        continue;
      }
      if (opcode !== 0x2) continue;
      if (this.firstWaiter) {
        this.firstWaiter(Buffer.from(buf.subarray(p, p + len)));
        continue;
      }
      if (len === 1 && (buf[p] === 0x0d || buf[p] === 0x0c) && this.pingSentAt > 0) {
        const sentAt = this.pingSentAt;
        this.pingSentAt = 0;
        this.onPong?.(sentAt, at);
      } else {
        const t = len > 0 ? buf[p]! : -1;
        this.other.set(t, (this.other.get(t) ?? 0) + 1);
      }
    }
    this.buf = off >= buf.length ? EMPTY : Buffer.from(buf.subarray(off));
  }

  /** Send a PINGREQ unless one is unanswered; false if skipped or the socket is gone. */
  ping(now: number): boolean {
    if (this.pingSentAt > 0 || this.sock.destroyed) return false;
    this.pingSentAt = now;
    this.sock.write(PING);
    return true;
  }

  async close(timeoutMs = 3000): Promise<void> {
    if (!this.sock.destroyed) this.sock.end(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]));
    const t = setTimeout(() => this.sock.destroy(), timeoutMs);
    await this.closedP;
    clearTimeout(t);
  }
}

/** Round trips of answered pings: when each was sent (ms since the fleet started) and how long it took. */
export interface PingSamples {
  sentAt: number[];
  rttMs: number[];
}

export class LegitFleet {
  readonly t0 = performance.now();
  readonly samples: PingSamples = { sentAt: [], rttMs: [] };
  /** When every ping was sent (ms since the fleet started), answered or not. */
  readonly sentTimes: number[] = [];
  sent = 0;
  /** Slots skipped because the connection's previous ping was still unanswered. */
  skipped = 0;
  /** Slots of connections already closed. */
  dead = 0;
  private timer: NodeJS.Timeout | null = null;
  private slot = 0;

  constructor(
    readonly conns: LegitConn[],
    private readonly intervalMs: number,
    /** Stop sending after this many pings in all (a bound on the loop). */
    private readonly maxPings: number,
  ) {
    for (const c of conns) this.watch(c);
  }

  private watch(c: LegitConn): void {
    c.onPong = (sentAt, at) => {
      this.samples.sentAt.push(sentAt - this.t0);
      this.samples.rttMs.push(at - sentAt);
    };
  }

  /** Connection i reconnected: ping the new one in its slot from now on. */
  replace(i: number, c: LegitConn): void {
    this.conns[i] = c;
    this.watch(c);
  }

  start(): void {
    const n = this.conns.length;
    const start = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      // Slots due by now: slot k belongs to connection k % n, at start + k * interval / n.
      const due = Math.floor(((now - start) * n) / this.intervalMs);
      // A late timer catches up by at most one interval (no burst of stale pings after a stall).
      if (due - this.slot > n) this.slot = due - n;
      for (; this.slot < due && this.sent < this.maxPings; this.slot++) {
        const c = this.conns[this.slot % n]!;
        if (c.closed) this.dead++;
        else if (c.ping(now)) {
          this.sent++;
          this.sentTimes.push(now - this.t0);
        }
        else this.skipped++;
      }
    }, 5);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** ms since the fleet started. */
  now(): number {
    return performance.now() - this.t0;
  }

  /** Pings sent and still unanswered (connections alive). */
  get outstanding(): number {
    let n = 0;
    for (const c of this.conns) if (c.pingSentAt > 0 && !c.closed) n++;
    return n;
  }

  get open(): number {
    let n = 0;
    for (const c of this.conns) if (!c.closed) n++;
    return n;
  }

  /** Pings sent in [fromMs, toMs) (fleet time), answered or not. */
  sentIn(fromMs: number, toMs: number): number {
    let n = 0;
    for (const t of this.sentTimes) if (t >= fromMs && t < toMs) n++;
    return n;
  }

  /** Round trips of pings sent in [fromMs, toMs) (fleet time), sorted. */
  rtts(fromMs: number, toMs: number): number[] {
    const out: number[] = [];
    const { sentAt, rttMs } = this.samples;
    for (let i = 0; i < sentAt.length; i++) if (sentAt[i]! >= fromMs && sentAt[i]! < toMs) out.push(rttMs[i]!);
    return out.sort((a, b) => a - b);
  }

  async closeAll(): Promise<void> {
    this.stop();
    for (let i = 0; i < this.conns.length; i += 256) await Promise.all(this.conns.slice(i, i + 256).map((c) => c.close()));
  }
}
