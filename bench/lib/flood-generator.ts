/**
 * Junk handshake generator of bench/flood: a child process, never imported. Started by
 * bench/lib/flood-junk.ts with an IPC channel (fork, advanced serialization), it gets its frames
 * once and then runs phases on command:
 *
 *   parent -> child  { type: 'frames', kinds: JunkKindFrames[] }
 *                    { type: 'run', phase: RunSpec }        (answers 'tick' once a second, then 'done')
 *                    { type: 'stop' }                       (the running phase ends early)
 *   child -> parent  { type: 'ready' } { type: 'tick', ... } { type: 'done', ... }
 *
 * One attempt = one new TCP connection from one of the phase's source addresses (loopback only:
 * `localAddress` 127.0.0.x, destination 127.0.0.1), a fixed WebSocket upgrade request, and, on 101,
 * one binary frame (a CONNECT of the attempt's kind, zero masking key). The frame waits for the 101:
 * uWS closes a connection whose first packet carries bytes behind the upgrade request (checked
 * against bench/lib/echo-server.ts), so sending both in one write is not an option. The first answer decides the
 * outcome and the socket is reset at once (RST: no TIME_WAIT on the client side, so one source
 * address can open thousands of connections a second without running out of ports):
 *
 *   http:<status>           the upgrade was refused (429 rate limit, 403 ban, 503 connection cap, ...)
 *   connack:<code>          CONNACK: ACCEPTED or its errorCode
 *   disconnect:<code>       DISCONNECT first (malformed, unexpected)
 *   close:<code>            a WebSocket close frame first
 *   echo                    the frame came back (the uWS echo floor)
 *   error:<errno>, eof, timeout
 *
 * Cheap on purpose: the generator shares two cores with the server it floods. Starts are paced to
 * the phase's rate from a 1 ms timer against the clock (no drift when a tick is late); at most
 * `inflight` attempts are open at once, and a start that would pass that cap is skipped and counted
 * (the achieved rate is then below the target, and the report says so). Every attempt ends by its
 * answer, its socket's end or the `timeoutMs` sweep; a phase ends after `seconds` or on 'stop', and
 * then waits (bounded) for its last attempts.
 */
import net from 'node:net';
import { decodeFrame } from '../../src/protocol/frames.js';

/** One kind of junk: frames cycled through in order, optionally patched per attempt. */
export interface JunkKindFrames {
  name: string;
  frames: Buffer[];
  /**
   * Patch each attempt's copy so that no two attempts send the same bytes: a 12-byte counter
   * (generator id, attempt number) written at each offset (inside the nonce and the signature).
   */
  patchOffsets?: number[];
}

export interface RunSpec {
  label: string;
  port: number;
  /** Source addresses, used in turn (127.0.0.x only). */
  addresses: string[];
  /** Attempts per second for this generator; 0 = as fast as the in-flight cap allows. */
  rate: number;
  seconds: number;
  inflight: number;
  timeoutMs: number;
}

export interface TickMessage {
  type: 'tick';
  label: string;
  second: number;
  started: number;
  finished: number;
  skipped: number;
  inflight: number;
  /** outcome counts by kind, for this second */
  outcomes: Record<string, Record<string, number>>;
}

export interface DoneMessage {
  type: 'done';
  label: string;
  seconds: number;
  started: number;
  finished: number;
  skipped: number;
  /** still open when the bounded wait after the phase ended (then destroyed) */
  abandoned: number;
  outcomes: Record<string, Record<string, number>>;
  /** answer latency (ms) percentiles of finished attempts, from a sample */
  latencyMs: { p50: number; p99: number; max: number };
  cpuUs: number;
}

const GEN_ID = Number(process.env.FLOOD_GENERATOR_ID ?? 0);
const UPGRADE = Buffer.from(
  'GET /ep/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: latchkey.v1\r\n\r\n',
  'latin1',
);
const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Client frame, zero mask key (RFC 6455 requires a mask, not a random one, of non-browsers). */
function masked(payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.alloc(head + 4 + len);
  out[0] = 0x82;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  payload.copy(out, head + 4);
  return out;
}

interface PreparedKind {
  name: string;
  /** WebSocket-framed CONNECTs (with the 4-byte zero mask). */
  wire: Buffer[];
  /** Offsets of the patch points within `wire` frames. */
  patchWire: number[];
  next: number;
}

let kinds: PreparedKind[] = [];

function prepare(list: JunkKindFrames[]): void {
  kinds = list.map((k) => {
    const wire = k.frames.map(masked);
    const head = wire[0] ? wire[0].length - k.frames[0]!.length : 0;
    return { name: k.name, wire, patchWire: (k.patchOffsets ?? []).map((o) => o + head), next: 0 };
  });
}

let attemptNo = 0;

/** The bytes of one attempt of kind `k`: a shared buffer, or a patched copy when the kind asks for unique bytes. */
function bytesFor(k: PreparedKind): Buffer {
  const base = k.wire[k.next++ % k.wire.length]!;
  const offs = k.patchWire;
  if (offs.length === 0) return base;
  const b = Buffer.from(base);
  const n = ++attemptNo;
  for (const o of offs) {
    b.writeUInt32BE(0x464c4f4f, o); // "FLOO"
    b.writeUInt32BE(GEN_ID, o + 4);
    b.writeUInt32BE(n >>> 0, o + 8);
  }
  return b;
}

interface Phase {
  spec: RunSpec;
  stopped: boolean;
  started: number;
  finished: number;
  skipped: number;
  open: Set<Attempt>;
  /** per kind -> outcome -> count, this second and in total */
  sec: Map<string, Map<string, number>>;
  total: Map<string, Map<string, number>>;
  latencies: number[];
  addr: number;
}

function count(m: Map<string, Map<string, number>>, kind: string, outcome: string): void {
  let k = m.get(kind);
  if (!k) m.set(kind, (k = new Map()));
  k.set(outcome, (k.get(outcome) ?? 0) + 1);
}

function plain(m: Map<string, Map<string, number>>): Record<string, Record<string, number>> {
  return Object.fromEntries([...m].map(([k, v]) => [k, Object.fromEntries(v)]));
}

const LATENCY_SAMPLE_MAX = 200_000;

class Attempt {
  private readonly t0 = performance.now();
  private buf: Buffer | null = null;
  private upgraded = false;
  private done = false;
  readonly sock: net.Socket;

  constructor(
    private readonly ph: Phase,
    private readonly kind: PreparedKind,
    private readonly frame: Buffer,
    address: string,
  ) {
    const sock = net.connect({ port: ph.spec.port, host: '127.0.0.1', localAddress: address });
    this.sock = sock;
    sock.setNoDelay(true);
    sock.on('connect', () => sock.write(UPGRADE));
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', (err: NodeJS.ErrnoException) => this.finish(`error:${err.code ?? err.message}`));
    sock.on('close', () => this.finish('eof'));
  }

  age(now: number): number {
    return now - this.t0;
  }

  finish(outcome: string): void {
    if (this.done) return;
    this.done = true;
    const ph = this.ph;
    ph.open.delete(this);
    ph.finished++;
    count(ph.sec, this.kind.name, outcome);
    count(ph.total, this.kind.name, outcome);
    if (ph.latencies.length < LATENCY_SAMPLE_MAX) ph.latencies.push(performance.now() - this.t0);
    // RST instead of FIN: no TIME_WAIT left on this side (ports of one source address recycle at once).
    if (!this.sock.destroyed) this.sock.resetAndDestroy();
  }

  private onData(d: Buffer): void {
    if (this.done) return;
    let buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    if (!this.upgraded) {
      const end = buf.indexOf(CRLFCRLF);
      if (end < 0) {
        if (buf.length > 8192) return this.finish('http:head-too-long');
        this.buf = buf;
        return;
      }
      // "HTTP/1.1 101 Switching Protocols"
      const status = buf.toString('latin1', 9, 12);
      if (status !== '101') return this.finish(`http:${status}`);
      this.upgraded = true;
      this.sock.write(this.frame);
      buf = buf.subarray(end + 4);
    }
    if (buf.length < 2) {
      this.buf = buf.length ? buf : null;
      return;
    }
    const opcode = buf[0]! & 0x0f;
    let len = buf[1]! & 0x7f;
    let off = 2;
    if (len === 126) {
      if (buf.length < 4) return void (this.buf = buf);
      len = buf.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      return this.finish('ws:huge-frame');
    }
    if (buf.length < off + len) {
      this.buf = buf;
      return;
    }
    const payload = buf.subarray(off, off + len);
    if (opcode === 0x8) return this.finish(`close:${len >= 2 ? payload.readUInt16BE(0) : 'none'}`);
    if (opcode !== 0x2) return this.finish(`ws:opcode-${opcode}`);
    if (payload[0] === 0x01) return this.finish('echo');
    const f = decodeFrame(Buffer.from(payload));
    if (!f.ok) return this.finish(`undecodable:${f.code}`);
    if (f.value.type === 'CONNACK') return this.finish(`connack:${f.value.connack.errorCode ?? (f.value.connack.returnCode === 1 ? 'ACCEPTED' : String(f.value.connack.returnCode))}`);
    if (f.value.type === 'DISCONNECT') return this.finish(`disconnect:${f.value.disconnect.errorCode ?? String(f.value.disconnect.reason)}`);
    return this.finish(`frame:${f.value.type}`);
  }
}

let current: Phase | null = null;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function run(spec: RunSpec): Promise<void> {
  if (kinds.length === 0) throw new Error('no frames loaded');
  const ph: Phase = { spec, stopped: false, started: 0, finished: 0, skipped: 0, open: new Set(), sec: new Map(), total: new Map(), latencies: [], addr: 0 };
  current = ph;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const endAt = t0 + spec.seconds * 1000;
  let kindNo = 0;
  let second = 0;
  let secStarted = 0;
  let secFinished = 0;
  let secSkipped = 0;
  const startOne = (): void => {
    const k = kinds[kindNo++ % kinds.length]!;
    const address = spec.addresses[ph.addr++ % spec.addresses.length]!;
    ph.open.add(new Attempt(ph, k, bytesFor(k), address));
    ph.started++;
  };
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      if (ph.stopped || now >= endAt) {
        clearInterval(timer);
        resolve();
        return;
      }
      // Paced against the clock; never more than `inflight` open, never more than 1 s of catch-up.
      const due = spec.rate > 0 ? Math.floor(((now - t0) / 1000) * spec.rate) - ph.started - ph.skipped : Infinity;
      const room = spec.inflight - ph.open.size;
      const n = Math.min(due, room, spec.rate > 0 ? spec.rate : spec.inflight);
      for (let i = 0; i < n; i++) startOne();
      if (spec.rate > 0 && due > n) {
        // Starts the cap did not allow are skipped, not owed: the target rate is a ceiling.
        ph.skipped += due - Math.max(0, n);
      }
      // Timeout sweep (the oldest attempts come first in insertion order).
      for (const a of ph.open) {
        if (a.age(now) < spec.timeoutMs) break;
        a.finish('timeout');
      }
      const s = Math.floor((now - t0) / 1000);
      if (s > second) {
        second = s;
        const msg: TickMessage = {
          type: 'tick', label: spec.label, second: s, started: ph.started - secStarted, finished: ph.finished - secFinished, skipped: ph.skipped - secSkipped,
          inflight: ph.open.size, outcomes: plain(ph.sec),
        };
        secStarted = ph.started;
        secFinished = ph.finished;
        secSkipped = ph.skipped;
        ph.sec.clear();
        process.send!(msg);
      }
    };
    const timer = setInterval(tick, 1);
  });
  const seconds = (performance.now() - t0) / 1000;
  // Bounded wait for the attempts still open, then drop them.
  const until = performance.now() + spec.timeoutMs + 500;
  while (ph.open.size > 0 && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
    const now = performance.now();
    for (const a of ph.open) {
      if (a.age(now) < spec.timeoutMs) break;
      a.finish('timeout');
    }
  }
  const abandoned = ph.open.size;
  for (const a of [...ph.open]) a.finish('abandoned');
  const cpu = process.cpuUsage(cpu0);
  ph.latencies.sort((a, b) => a - b);
  const msg: DoneMessage = {
    type: 'done', label: spec.label, seconds, started: ph.started, finished: ph.finished, skipped: ph.skipped, abandoned,
    outcomes: plain(ph.total),
    latencyMs: { p50: +percentile(ph.latencies, 50).toFixed(2), p99: +percentile(ph.latencies, 99).toFixed(2), max: +(ph.latencies[ph.latencies.length - 1] ?? 0).toFixed(2) },
    cpuUs: cpu.user + cpu.system,
  };
  current = null;
  process.send!(msg);
}

process.on('message', (m: { type: string; kinds?: JunkKindFrames[]; phase?: RunSpec }) => {
  if (m.type === 'frames') {
    prepare(m.kinds!);
    process.send!({ type: 'ready' });
  } else if (m.type === 'run') {
    for (const a of m.phase!.addresses) if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a)) throw new Error(`not a loopback address: ${a}`);
    run(m.phase!).catch((err: unknown) => {
      process.stderr.write(`flood-generator: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    });
  } else if (m.type === 'stop') {
    if (current) current.stopped = true;
  }
});
// The parent went away: stop at once (the IPC channel closes with it).
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'hello', pid: process.pid });
