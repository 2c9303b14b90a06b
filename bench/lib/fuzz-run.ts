/**
 * runFuzz(opts): the protocol fuzzer both `npm run fuzz` (bench/fuzz.ts) and the short CI test
 * (test/e2e/fuzz-short.test.ts) run, against a live `latchkey serve` child process on 127.0.0.1.
 *
 * Three kinds of workers run concurrently until the frame and HTTP targets are reached or the time
 * bound passes:
 * - connection workers (`wsConcurrency`): one connection per input, before or around a handshake:
 *   frames of every type with random or mutated bodies, CONNECTs mutated byte-wise or rebuilt
 *   field by field with lying Avro lengths, CONNECTs with one field changed and signed again,
 *   WebSocket-level violations (fuzz-wsgen.ts), a valid CONNECT followed by junk, aborted sockets;
 * - session workers (`sessionWorkers`, each owning one endpoint key, since a second session of a
 *   key replaces the first): real handshakes, then many batches of PINGREQ, WebSocket pings and
 *   sealed random SyncRequests (registration, ownership, events), each batch closed by a PINGREQ
 *   whose PINGRESP must come back; then an ending that kills the session (bad counter, bad tag,
 *   malformed plaintext, huge block counts, a frame out of order, WebSocket junk) or closes it;
 * - HTTP workers (`httpConcurrency`): junk to the bootstrap route and the admin API (fuzz-httpgen.ts).
 *
 * Detection:
 * - crash: the server process exited, or /healthz stayed silent for 10 s (it is then killed). The
 *   inputs in flight and those finished within the last 3 s are replayed against a restarted
 *   server (HTTP bytes as sent; WebSocket inputs regenerated from the seed with a fresh
 *   handshake), all together, then halving the set while it still crashes, down to the one input
 *   that crashes a fresh server alone; a session input is then narrowed the same way to the one
 *   frame that does it. That input is saved (fuzz-crashes/), its category quarantined (not
 *   generated again, so one known crash does not stop the search for others), and fuzzing goes
 *   on until `maxCrashes`. Answers seen in the 4 s before a crash (a dying server) are dropped;
 * - hang: an upgrade, a complete HTTP request, a CONNECT, a batch barrier (its PINGRESP, pongs and
 *   SyncResponses) or an expected close with no answer within `hangMs`; also a complete HTTP
 *   request the server closed after 5 s or more without answering (held until its idle timeout).
 *   The server legitimately waits up to its handshake timeout for a CONNECT and 1.5 x keepalive
 *   (5 s asked, so 7.5 s) inside a session, plus its 1 s sweep; the default bound (15 s) is past
 *   both. A category that hangs 3 times is quarantined too;
 * - leaked sessions: after every fuzz connection is closed and a settle time, /healthz `sockets`
 *   and `sessionsOpen` must be 0 (nothing is held on purpose by then);
 * - unexpected codes: see fuzz-codes.ts.
 *
 * Determinism: input #i of each stream (connection inputs, each session worker, HTTP) is generated
 * from (seed, stream, i) alone; see fuzz-rng.ts for what a seed cannot fix.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isEventOnly } from '../../src/events/relay.js';
import { decodeFrame, decodeSyncRequest, decodeSyncResponse, encodeSync, FrameType } from '../../src/protocol/frames.js';
import type { Connack, Disconnect } from '../../src/protocol/schemas.js';
import type { NodeGcmCipher } from '../../src/crypto/aead.js';
import type { NodeEndpointKey } from '../../test/helpers/wire-client.js';
import { Codes, closeFor, connackExpected, disconnectExpected, httpExpected, jsonCode, wsCloseExpected } from './fuzz-codes.js';
import { badSyncPlain, buildConnect, encodeSyncRequestRaw, randomOtherFrame, randomSyncRequest, semanticConnectChange, structuredBadConnect, type BuiltConnect, type SyncContext } from './fuzz-gen.js';
import { adminRouteTable, httpInput, type HttpContext } from './fuzz-httpgen.js';
import { mutate } from './fuzz-mutate.js';
import { closePayload, httpExchange, newRecording, OP, STANDARD_UPGRADE_HEADERS, upgradeRequest, WsConn, wsFrame, type Recording, type ServerFrame } from './fuzz-net.js';
import { Rng } from './fuzz-rng.js';
import { APPS, FuzzServer, profileType } from './fuzz-server.js';
import { controlFrame, controls, wrapMessage, wsJunk, type Wire } from './fuzz-wsgen.js';
import { processCpuUs, processRssBytes } from './machine.js';

export interface FuzzOptions {
  seed: number;
  /** WebSocket frames to send (all connections together). */
  frames: number;
  /** HTTP requests to send. */
  http: number;
  maxSeconds: number;
  wsConcurrency: number;
  sessionWorkers: number;
  httpConcurrency: number;
  /** Endpoint keys: the first `sessionWorkers` belong to the session workers, the rest are probe keys (at least 2). */
  keys: NodeEndpointKey[];
  hangMs: number;
  handshakeTimeoutMs: number;
  /** Longest wait for /healthz sockets to return to 0 after the fuzz connections closed. */
  settleMs: number;
  maxCrashes: number;
  /** Time budget of one crash's triage (replays that find the crashing input). */
  triageMs: number;
  /** Probability that a WebSocket junk input is a real payload past maxFrameBytes (64-256 KiB). */
  oversizeP: number;
  /** Node flags and environment for the server process. */
  serverNodeArgs: string[];
  serverEnv: Record<string, string>;
  /** Where to save crash and hang inputs (hex and JSON); null: nowhere. */
  crashDir: string | null;
  log: (line: string) => void;
}

export const DEFAULT_OPTIONS: Omit<FuzzOptions, 'keys' | 'log'> = {
  seed: 1,
  frames: 1_000_000,
  http: 20_000,
  maxSeconds: 600,
  wsConcurrency: 48,
  sessionWorkers: 16,
  httpConcurrency: 8,
  hangMs: 15_000,
  handshakeTimeoutMs: 2000,
  settleMs: 20_000,
  maxCrashes: 10,
  triageMs: 120_000,
  oversizeP: 0.01,
  serverNodeArgs: [],
  serverEnv: {},
  crashDir: null,
};

/** The server's default maxFrameBytes (64 KiB); the fuzz server runs with it. */
const MAX_FRAME_BYTES = 64 * 1024;

export interface Finding {
  kind: 'crash' | 'hang' | 'leak' | 'unexpected';
  what: string;
  /** Input id (stream#index) and its generator category. */
  id: string;
  tag: string;
  target: Recording['target'] | 'server';
  /** For crashes: whether replaying this input alone crashed a fresh server. */
  reproduced?: boolean;
  /** Server stderr (crash stack) or error log lines. */
  serverOutput?: string;
  notes: string[];
  upgrade: boolean;
  /** The bytes written, one hex string per write. */
  chunksHex: string[];
  truncated: boolean;
  /** How to get this input again. */
  replay: string;
}

export interface FuzzResult {
  frames: number;
  httpRequests: number;
  connections: number;
  handshakesAccepted: number;
  crashes: number;
  hangs: number;
  leakedSessions: number;
  socketsAfter: number | null;
  sessionsOpenAfter: number | null;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  rssPeakBytes: number;
  /** V8 heap in use (the server's /metrics), before and after: RSS alone also counts memory not yet returned. */
  heapUsedBeforeBytes: number | null;
  heapUsedAfterBytes: number | null;
  unexpectedCodes: Record<string, number>;
  codes: Record<string, number>;
  findings: Finding[];
  quarantined: string[];
  serverRestarts: number;
  durationSeconds: number;
  fuzzSeconds: number;
  serverCpuSeconds: number;
  clientCpuSeconds: number;
  perSecond: Array<{ frames: number; http: number }>;
  healthAfter: Record<string, unknown> | null;
  stoppedBy: string;
  fuzzerErrors: number;
  /** Hangs by target and input category. */
  hangsByKey: Record<string, number>;
  /** Codes seen in the seconds before a crash (a dying server), not counted. */
  droppedCodes: number;
}

interface Sink {
  live: boolean;
  code(key: string, expected: boolean, rec: Recording, note?: string): void;
  hang(rec: Recording, what: string): void;
  accepted(): void;
}

interface InFlight {
  rec: Recording;
  /** Run the same input again (triage). */
  replay: () => Promise<void>;
  endedAt: number | null;
  /** A session worker's input: triage can narrow it down to one of its frames. */
  session?: { w: number; idx: number; key: NodeEndpointKey; app: (typeof APPS)[number] };
}

/** One frame of a session input (triage). */
interface SessionItem {
  key: string;
  kind: string;
  plainHex?: string;
}

/** Per-connection view of what the server sent. */
class ConnState {
  pongs = 0;
  pingresps = 0;
  connack: Connack | null = null;
  disconnect: Disconnect | null = null;
  established = false;
  nextServerCounter = 0;
  /** We sent a close frame: the server's close may be an echo of ours. */
  sentClose = false;
  rx: NodeGcmCipher | null = null;
  confirmation: Buffer | null = null;
  /** requestIds of sent SyncRequests still waiting for their SyncResponse. */
  readonly awaiting = new Set<number>();
}

const OWNERS = ['owner-0', 'owner-1', 'owner-2', 'owner-3'];
const EVENT_CLASSES = ['fuzz.Temperature', 'fuzz.Command', 'org.example.Event'];
const TEMPLATE_MAX_AGE_MS = 60_000; // well inside the 120 s timestamp window
const TRIAGE_MAX_CANDIDATES = 256;
const DRAIN_MAX = 1024;
/** A complete HTTP request closed by the server after this long without an answer counts as a hang (uWS's idle timeout is ~10 s). */
const UNANSWERED_MS = 5000;
/** Codes wait this long before they count: a dying server (up to 3 s in its fatal handler) answers oddly. */
const CODE_DELAY_MS = 4000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function hexChunks(rec: Recording): string[] {
  return rec.chunks.map((c) => c.toString('hex'));
}

/** The first stack of the server's stderr (an uncaught exception prints message, source line and frames). */
export function extractStack(output: string): string {
  const i = output.search(/^LK_FATAL|^\S*(Error|Exception)\b|^file:\/\/|^\/.*:\d+$/m);
  const out = (i >= 0 ? output.slice(i) : output).trim();
  return out.length > 6000 ? out.slice(0, 6000) + '\n...' : out;
}

/** A crash's identity: the error line and the first stack frame in latchkey's own code. */
function crashSignature(stack: string): string {
  const err = /^(\w*Error[^\n]*)/m.exec(stack)?.[1] ?? '';
  const frame = /at .*?\(?((?:file:\/\/)?[^()\s]*\/(?:src|dist\/src)\/[^():]+:\d+)/.exec(stack)?.[1] ?? '';
  return `${err} @ ${frame}`.trim();
}

class Run {
  readonly codes = new Codes();
  frames = 0;
  httpRequests = 0;
  connections = 0;
  handshakesAccepted = 0;
  crashes = 0;
  hangs = 0;
  restarts = 0;
  readonly findings: Finding[] = [];
  readonly quarantine = new Set<string>();
  /** Codes seen just before a crash, not counted. */
  droppedCodes = 0;
  /** Hangs by target and input category (the first of each is a finding). */
  readonly hangsByKey = new Map<string, number>();
  private readonly active = new Map<string, InFlight>();
  private recent: InFlight[] = [];
  private readonly liveConns = new Set<WsConn>();
  private down = false;
  private upWaiters: Array<() => void> = [];
  stopReason = '';
  private readonly deadline: number;
  private readonly counters = new Map<string, number>();
  private templates: Array<{ built: BuiltConnect; at: number; key: NodeEndpointKey; app: (typeof APPS)[number] }> = [];
  private readonly sessionKeys: NodeEndpointKey[];
  private readonly probeKeys: NodeEndpointKey[];
  private readonly syncCtx: SyncContext;
  private httpCtx!: HttpContext;
  private crashHandling: Promise<void> = Promise.resolve();
  private readonly crashSigs = new Map<string, { count: number; reproduced: boolean }>();
  rssPeak = 0;
  private readonly triageSink: Sink = { live: false, code: () => undefined, hang: () => undefined, accepted: () => undefined };

  constructor(
    readonly o: FuzzOptions,
    readonly server: FuzzServer,
  ) {
    this.deadline = Date.now() + o.maxSeconds * 1000;
    this.sessionKeys = o.keys.slice(0, o.sessionWorkers);
    this.probeKeys = o.keys.slice(o.sessionWorkers);
    this.syncCtx = {
      owners: OWNERS,
      peers: o.keys.map((k) => k.keyHash),
      eventClasses: EVENT_CLASSES,
      verifierTokens: [],
      schemaProfile: () => profileType.toBuffer({ name: 'fuzz', n: 1 }),
    };
  }

  init(): void {
    this.syncCtx.verifierTokens = this.server.verifierTokens;
    this.httpCtx = {
      routes: adminRouteTable(),
      rootKey: this.server.rootKey,
      tenantKey: this.server.tenantKey,
      tenantIds: ['fuzz', 'default', 'nope'],
      appIds: [...APPS.map((a) => a.id), 'default', 'nope'],
      appTokens: [...APPS.map((a) => a.appToken), 'unknown-token'],
      probeKeyHashes: this.probeKeys.map((k) => k.keyHash),
      sessionKeyHashes: this.sessionKeys.map((k) => k.keyHash),
      owners: OWNERS,
      verifierTokens: this.server.verifierTokens,
      publicKeyPems: this.probeKeys.slice(0, 2).map((k) => k.publicKeyPem),
    };
  }

  // ---- bookkeeping ----

  private next(stream: string): number {
    const n = this.counters.get(stream) ?? 0;
    this.counters.set(stream, n + 1);
    return n;
  }

  get stopping(): boolean {
    if (!this.stopReason && Date.now() > this.deadline) this.stopReason = 'max-seconds';
    return this.stopReason !== '';
  }

  wsDone(): boolean {
    return this.stopping || this.frames >= this.o.frames;
  }

  httpDone(): boolean {
    return this.stopping || this.httpRequests >= this.o.http;
  }

  /** Resolves when the server is up (not being restarted after a crash). */
  private async serverUp(): Promise<void> {
    while (this.down && !this.stopping) await new Promise<void>((r) => this.upWaiters.push(r));
  }

  private sink(gen: number): Sink {
    const live = (): boolean => !this.down && gen === this.server.generation;
    return {
      live: true,
      code: (key, expected, rec, note) => {
        if (!live()) return;
        this.pendingCodes.push({ key, expected, rec, note, at: Date.now() });
      },
      hang: (rec, what) => {
        if (!live()) return;
        this.hangs++;
        const key = `${rec.target}.${rec.tag}`;
        const n = (this.hangsByKey.get(key) ?? 0) + 1;
        this.hangsByKey.set(key, n);
        if (n === 1) this.addFinding('hang', what, rec, undefined, undefined);
        // A category that hangs again and again is a known defect: stop generating it (its
        // connections would hold the workers for the whole hang bound each), keep looking for others.
        if (n === 3 && !rec.tag.startsWith('session')) {
          this.quarantine.add(rec.tag);
          this.o.log(`quarantined input category ${rec.tag} after 3 hangs`);
        }
      },
      accepted: () => {
        if (live()) this.handshakesAccepted++;
      },
    };
  }

  private pendingCodes: Array<{ key: string; expected: boolean; rec: Recording; note: string | undefined; at: number }> = [];
  /** Count the codes older than CODE_DELAY_MS (all with `all`). */
  flushCodes(all = false): void {
    const cut = all ? Infinity : Date.now() - CODE_DELAY_MS;
    let i = 0;
    for (; i < this.pendingCodes.length && this.pendingCodes[i]!.at <= cut; i++) {
      const c = this.pendingCodes[i]!;
      const first = !c.expected && !this.codes.examples.has(c.key);
      this.codes.add(c.key, c.expected, { id: c.rec.id, note: c.note ?? '' });
      if (first) this.unexpectedFinding(c.key, c.rec, c.note);
    }
    this.pendingCodes = this.pendingCodes.slice(i);
  }

  private track(rec: Recording, replay: () => Promise<void>): InFlight {
    const f: InFlight = { rec, replay, endedAt: null };
    this.active.set(rec.id, f);
    return f;
  }

  private untrack(f: InFlight): void {
    f.endedAt = Date.now();
    this.active.delete(f.rec.id);
    this.recent.push(f);
    if (this.recent.length > 1024) this.recent = this.recent.slice(-512);
  }

  private readonly hintOverride = new Map<string, string>();
  private replayHint(rec: Recording): string {
    const o = this.hintOverride.get(rec.id);
    if (o) return o;
    if (rec.id.startsWith('http#')) return `HTTP bytes above to the ${rec.target} port (node dist/bench/fuzz.js --replay <this .json>)`;
    return `regenerate: node dist/bench/fuzz.js --seed ${this.o.seed} --sessions ${this.o.sessionWorkers} --replay-id ${rec.id} (same keys: bench/.cache)`;
  }

  private addFinding(kind: Finding['kind'], what: string, rec: Recording, serverOutput: string | undefined, reproduced: boolean | undefined): Finding {
    const f: Finding = {
      kind,
      what,
      id: rec.id,
      tag: rec.tag,
      target: rec.target,
      ...(reproduced !== undefined ? { reproduced } : {}),
      ...(serverOutput ? { serverOutput } : {}),
      notes: rec.notes.slice(0, 50),
      upgrade: rec.upgrade,
      chunksHex: hexChunks(rec),
      truncated: rec.truncated,
      replay: this.replayHint(rec),
    };
    // Bounded: the first 20 findings of each kind are kept whole; the counters count them all.
    if (this.findings.filter((x) => x.kind === kind).length < 20) {
      this.findings.push(f);
      this.save(f);
      const hex = f.chunksHex.join('');
      this.o.log(`FINDING ${kind}: ${what}\n  input ${f.id} (${f.tag}, ${f.target}): ${hex.length > 2000 ? hex.slice(0, 2000) + `... (${hex.length / 2} bytes)` : hex}${serverOutput ? `\n  server: ${serverOutput.split('\n').slice(0, 12).join('\n          ')}` : ''}`);
    }
    return f;
  }

  private unexpectedFinding(key: string, rec: Recording, note?: string): void {
    if (this.findings.filter((x) => x.kind === 'unexpected').length >= 40) return;
    const f: Finding = {
      kind: 'unexpected',
      what: `${key}${note ? ` (${note})` : ''}`,
      id: rec.id,
      tag: rec.tag,
      target: rec.target,
      notes: rec.notes.slice(0, 50),
      upgrade: rec.upgrade,
      chunksHex: hexChunks(rec).map((h) => (h.length > 8192 ? h.slice(0, 8192) : h)),
      truncated: rec.truncated,
      replay: this.replayHint(rec),
    };
    this.findings.push(f);
    // The server logs the cause just before it answers; its stdout may arrive a little later.
    const gen = this.server.generation;
    setTimeout(() => {
      if (gen !== this.server.generation) return;
      const errs = this.server.recentErrors(3).join('\n');
      if (errs) f.serverOutput = errs;
    }, 300).unref();
  }

  private save(f: Finding): void {
    const dir = this.o.crashDir;
    if (!dir || (f.kind !== 'crash' && f.kind !== 'hang')) return;
    fs.mkdirSync(dir, { recursive: true });
    const base = path.join(dir, `${f.kind}-seed${this.o.seed}-${f.id.replace(/[^A-Za-z0-9_-]/g, '-')}`);
    fs.writeFileSync(`${base}.hex`, f.chunksHex.join('\n') + '\n');
    fs.writeFileSync(`${base}.json`, JSON.stringify({ ...f, seed: this.o.seed }, null, 2) + '\n');
  }

  // ---- server frames ----

  private onServerFrame(st: ConnState, sink: Sink, rec: Recording, f: ServerFrame): void {
    if (f.masked) sink.code('ws.serverFrame.masked', false, rec);
    if (f.rsv !== 0) sink.code('ws.serverFrame.rsv', false, rec);
    if (!f.fin) sink.code('ws.serverFrame.fragmented', false, rec);
    switch (f.opcode) {
      case OP.PONG:
        st.pongs++;
        return;
      case OP.CLOSE:
        return;
      case OP.BINARY:
        break;
      default:
        sink.code(`ws.serverFrame.opcode${f.opcode}`, false, rec);
        return;
    }
    const d = decodeFrame(f.payload);
    if (!d.ok) {
      sink.code('ws.serverFrame.undecodable', false, rec, f.payload.subarray(0, 64).toString('hex'));
      return;
    }
    const v = d.value;
    switch (v.type) {
      case 'CONNACK': {
        const c = v.connack;
        if (st.connack || st.established) sink.code('ws.order.secondConnack', false, rec);
        st.connack = c;
        sink.code(`ws.connack.${c.errorCode ?? 'ACCEPTED'}`, connackExpected(c.returnCode, c.errorCode), rec, `returnCode ${c.returnCode}`);
        rec.notes.push(`CONNACK ${c.returnCode} ${c.errorCode ?? ''}`);
        if (c.returnCode === 1) {
          st.established = true;
          sink.accepted();
          if (st.confirmation && (!c.confirmation || !crypto.timingSafeEqual(c.confirmation.length === 32 ? c.confirmation : Buffer.alloc(32), st.confirmation))) sink.code('ws.connack.badConfirmation', false, rec);
          if (c.sync) this.onServerSync(st, sink, rec, 0, c.sync, true);
        }
        return;
      }
      case 'PINGRESP':
        if (!st.established) sink.code('ws.order.pingrespBeforeConnack', false, rec);
        st.pingresps++;
        return;
      case 'SYNC':
        if (!st.established) sink.code('ws.order.syncBeforeConnack', false, rec);
        this.onServerSync(st, sink, rec, v.sync.counter, v.sync.ciphertext, false);
        return;
      case 'DISCONNECT':
        st.disconnect = v.disconnect;
        rec.notes.push(`DISCONNECT ${v.disconnect.reason} ${v.disconnect.errorCode ?? ''}`);
        sink.code(`ws.disconnect.${v.disconnect.errorCode ?? 'null'}`, disconnectExpected(v.disconnect.errorCode, v.disconnect.reason), rec, `reason ${v.disconnect.reason}`);
        return;
      default:
        sink.code(`ws.serverFrame.${v.type}`, false, rec);
    }
  }

  private onServerSync(st: ConnState, sink: Sink, rec: Recording, counter: number, ct: Buffer, embedded: boolean): void {
    if (counter !== st.nextServerCounter) sink.code('sync.counterOutOfOrder', false, rec, `expected ${st.nextServerCounter}, got ${counter}${embedded ? ' (CONNACK)' : ''}`);
    st.nextServerCounter = counter + 1;
    if (!st.rx) return;
    const plain = st.rx.open(counter, ct);
    if (!plain) {
      sink.code('sync.doesNotAuthenticate', false, rec);
      return;
    }
    const r = decodeSyncResponse(plain);
    if (!r.ok) {
      sink.code('sync.undecodable', false, rec);
      return;
    }
    st.awaiting.delete(r.value.requestId);
    const ec = r.value.errorCode;
    sink.code(`sync.${r.value.status}${ec ? '.' + ec : ''}`, ec !== 'LK_INTERNAL', rec);
  }

  /** Record how a connection the server closed ended (close code, and its agreement with DISCONNECT/CONNACK). */
  private onClosed(conn: WsConn, st: ConnState, sink: Sink, rec: Recording): void {
    const code = conn.serverClose;
    const codeText = code === undefined ? 'none' : String(code);
    rec.notes.push(`closed (${codeText})`);
    const decided = st.disconnect?.errorCode ?? (st.connack && st.connack.returnCode !== 1 ? st.connack.errorCode : null);
    if (st.sentClose && !decided) {
      // The server may be echoing our own close frame.
      sink.code(`ws.close.echo.${codeText}`, true, rec);
      return;
    }
    // An empty close frame (no code) is uWS answering a client's malformed close at the
    // transport level; latchkey's own closes always carry a code (checked below).
    sink.code(`ws.close.${codeText}`, wsCloseExpected(code) || (code === null && !decided), rec);
    if (decided && code === null) sink.code(`ws.mismatch.${decided}.closeWithoutCode`, false, rec);
    if (decided && code !== undefined) {
      const want = closeFor(decided);
      if (want !== undefined && code !== want) sink.code(`ws.mismatch.${decided}.close${codeText}`, false, rec, `catalogue says ${want}`);
    }
  }

  private async openWs(rec: Recording, st: ConnState, sink: Sink, headers = STANDARD_UPGRADE_HEADERS, wsPath = '/ep/v1'): Promise<WsConn | null> {
    const conn = new WsConn(this.server.port, rec, (f) => this.onServerFrame(st, sink, rec, f));
    this.liveConns.add(conn);
    void conn.closedP.then(() => this.liveConns.delete(conn));
    if (sink.live) this.connections++;
    const s = await conn.upgrade(upgradeRequest(wsPath, headers), this.o.hangMs);
    if (s === 101) return conn;
    if (s === 'timeout') sink.hang(rec, `upgrade not answered within ${this.o.hangMs} ms`);
    else if (s === 'closed') {
      // Refused: the server is not listening (dying: the fatal handler stops listening first); the
      // crash detection reports that. Closed after accepting, without an answer: unexpected.
      if (this.server.alive && !/ECONNREFUSED/.test(conn.connectError ?? '')) sink.code('ws.upgrade.closed', false, rec, conn.connectError ?? '');
    } else sink.code(`ws.upgrade.${s}`, s === 404 || s === 400 || s === 429 || s === 503, rec);
    conn.destroy();
    return null;
  }

  private write(conn: WsConn, w: Wire, sink: Sink): void {
    conn.write(w.bytes, w.frames);
    if (sink.live && !this.down) this.frames += w.frames;
  }

  /** Wait for the server to close `conn` (it must, within hangMs), then record the ending. */
  private async expectClose(conn: WsConn, st: ConnState, sink: Sink, rec: Recording, after: string): Promise<void> {
    const ok = await conn.waitClosed(this.o.hangMs);
    if (!ok) {
      sink.hang(rec, `connection not closed within ${this.o.hangMs} ms after ${after}`);
      conn.destroy();
      return;
    }
    this.onClosed(conn, st, sink, rec);
  }

  // ---- CONNECT templates (probe keys) ----

  private template(rng: Rng): { built: BuiltConnect; key: NodeEndpointKey; app: (typeof APPS)[number] } {
    const n = Math.max(6, this.probeKeys.length * 3);
    const i = rng.int(n);
    const t = this.templates[i];
    if (t && Date.now() - t.at < TEMPLATE_MAX_AGE_MS) return t;
    const key = this.probeKeys[i % this.probeKeys.length]!;
    const app = APPS[i % APPS.length]!;
    const built = buildConnect({
      appToken: app.appToken,
      server: this.server.server,
      key,
      body: i % 2 === 0 ? {} : { publicKey: null },
      syncPlain: i % 4 < 2 ? encodeSyncRequestRaw(randomSyncRequest(new Rng(this.o.seed, 'template', i), this.syncCtx, 1)) : null,
    });
    const fresh = { built, at: Date.now(), key, app };
    this.templates[i] = fresh;
    return fresh;
  }

  /** A latchkey message for a connection that has not handshaken: any frame type, mostly broken. */
  private preMessage(rng: Rng): { msg: Buffer; tag: string; sealedWith?: BuiltConnect } {
    const kind = rng.weighted<string>([
      [30, 'other'],
      [22, 'mutatedConnect'],
      [20, 'structuredConnect'],
      [5, 'templateAsIs'],
      [10, 'random'],
      [5, 'badEmbeddedSync'],
      [5, 'connectJunk'],
    ]);
    switch (kind) {
      case 'other': {
        const f = randomOtherFrame(rng);
        return { msg: f.frame, tag: f.tag };
      }
      case 'mutatedConnect':
        return { msg: mutate(rng, this.template(rng).built.frame, 3), tag: 'connect.mutated' };
      case 'structuredConnect': {
        const f = structuredBadConnect(rng, this.template(rng).built);
        return { msg: f.frame, tag: `connect.${f.tag}` };
      }
      case 'templateAsIs': {
        const t = this.template(rng);
        return { msg: t.built.frame, tag: 'connect.template', sealedWith: t.built };
      }
      case 'badEmbeddedSync': {
        const t = this.template(rng);
        const bad = badSyncPlain(rng, this.syncCtx);
        const built = buildConnect({ appToken: t.app.appToken, server: this.server.server, key: t.key, syncPlain: bad.plain });
        return { msg: built.frame, tag: `connect.embedded.${bad.tag}`, sealedWith: built };
      }
      case 'connectJunk':
        return { msg: Buffer.concat([Buffer.from([FrameType.CONNECT]), rng.bytes(rng.size(1500))]), tag: 'connect.random' };
      default:
        return { msg: rng.bytes(rng.size(3000)), tag: 'random' };
    }
  }

  /** A frame that must end an established session (or DISCONNECT/close it cleanly). */
  private sessionKiller(rng: Rng, tx: NodeGcmCipher, counter: number): Wire {
    const kind = rng.weighted<string>([
      [8, 'badCounter'],
      [8, 'badTag'],
      [4, 'shortCiphertext'],
      [10, 'badPlain'],
      [4, 'connect'],
      [12, 'other'],
      [3, 'text'],
      [10, 'wsJunk'],
      [2, 'random'],
    ]);
    const seal = (plain: Buffer, c = counter): Buffer => encodeSync({ counter: c, ciphertext: tx.seal(c, plain) });
    const valid = (): Buffer => encodeSyncRequestRaw(randomSyncRequest(rng, this.syncCtx));
    switch (kind) {
      case 'badCounter': {
        const c = rng.pick([counter + 1, counter + 2, Math.max(0, counter - 1), 0, 2 ** 31, Number.MAX_SAFE_INTEGER]);
        const w = wrapMessage(rng, seal(valid(), c === counter ? counter + 1 : c));
        return { ...w, tag: 'session.badCounter' };
      }
      case 'badTag': {
        const f = seal(valid());
        const out = Buffer.from(f);
        out[out.length - 1 - rng.int(Math.min(out.length - 3, 40))] ^= 1 << rng.int(8);
        return { ...wrapMessage(rng, out), tag: 'session.badTag' };
      }
      case 'shortCiphertext':
        return { ...wrapMessage(rng, encodeSync({ counter, ciphertext: rng.bytes(rng.int(16)) })), tag: 'session.shortCiphertext' };
      case 'badPlain': {
        const b = badSyncPlain(rng, this.syncCtx);
        return { ...wrapMessage(rng, seal(b.plain)), tag: `session.${b.tag}` };
      }
      case 'connect':
        return { ...wrapMessage(rng, this.template(rng).built.frame), tag: 'session.connect' };
      case 'other': {
        const f = randomOtherFrame(rng);
        return { ...wrapMessage(rng, f.frame), tag: `session.${f.tag}` };
      }
      case 'text':
        return { ...wsJunk(rng, Buffer.alloc(0), MAX_FRAME_BYTES, 0), tag: 'session.ws' };
      case 'wsJunk': {
        const w = wsJunk(rng, seal(valid()), MAX_FRAME_BYTES, this.o.oversizeP);
        return { ...w, tag: `session.${w.tag}` };
      }
      default:
        return { bytes: wsFrame({ opcode: OP.BINARY, payload: rng.bytes(rng.size(500)), mask: rng.bytes(4) }), frames: 1, tag: 'session.random', pings: 0, partial: false };
    }
  }

  // ---- connection inputs ----

  /** Errors of the fuzzer itself (not findings): counted, the first few logged, the worker goes on. */
  fuzzerErrors = 0;
  private async guard(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (++this.fuzzerErrors <= 5) this.o.log(`fuzzer error (not a finding): ${(err as Error).stack ?? String(err)}`);
    }
  }

  async preWorker(): Promise<void> {
    while (!this.wsDone()) {
      await this.serverUp();
      if (this.wsDone()) return;
      const idx = this.next('ws-pre');
      await this.guard(() => this.runPre(idx, this.sink(this.server.generation)));
    }
  }

  async runPre(idx: number, sink: Sink): Promise<void> {
    const rng = new Rng(this.o.seed, 'ws-pre', idx);
    const rec = newRecording(`ws-pre#${idx}`, '', 'gateway', true);
    const plan = rng.weighted<string>([
      [40, 'message'],
      [22, 'junk'],
      [10, 'signed'],
      [10, 'validThen'],
      [6, 'controls'],
      [6, 'abort'],
      [6, 'multi'],
    ]);
    const st = new ConnState();
    // Choose the input first (its tag decides quarantine), then connect.
    const wires: Wire[] = [];
    let built: BuiltConnect | null = null;
    let tag = plan;
    for (let attempt = 0; attempt < 8; attempt++) {
      wires.length = 0;
      built = null;
      if (plan === 'message' || plan === 'multi') {
        for (let n = plan === 'multi' ? rng.range(2, 5) : 1; n > 0; n--) {
          const m = this.preMessage(rng);
          if (wires.length === 0) tag = `pre.${m.tag}`;
          built = m.sealedWith ?? built;
          wires.push(wrapMessage(rng, m.msg, 0.1));
        }
      } else if (plan === 'junk') {
        const m = this.preMessage(rng);
        const w = wsJunk(rng, m.msg, MAX_FRAME_BYTES, this.o.oversizeP);
        tag = `pre.${w.tag}`;
        wires.push(w);
      } else if (plan === 'signed') {
        const key = rng.pick(this.probeKeys);
        const other = rng.pick(this.o.keys);
        const app = rng.pick(APPS);
        const ch = semanticConnectChange(rng, APPS.map((a) => a.appToken), this.server.server, key, other);
        const syncPlain = rng.chance(0.3) ? encodeSyncRequestRaw(randomSyncRequest(rng, this.syncCtx, 1)) : null;
        try {
          built = buildConnect({ appToken: app.appToken, server: this.server.server, key, body: ch.body, syncPlain, ...(ch.signWith ? { signWith: ch.signWith } : {}) });
        } catch {
          continue; // a change avsc refuses to encode: draw again
        }
        tag = `pre.${ch.tag}`;
        wires.push(wrapMessage(rng, built.frame, 0.1));
      } else if (plan === 'validThen' || plan === 'abort') {
        const key = rng.pick(this.probeKeys);
        const app = rng.pick(APPS);
        built = buildConnect({ appToken: app.appToken, server: this.server.server, key });
        tag = `pre.${plan}`;
        wires.push(wrapMessage(rng, built.frame, 0.1));
      } else {
        tag = 'pre.controls';
      }
      if (!this.quarantine.has(tag)) break;
    }
    if (this.quarantine.has(tag)) return;
    rec.tag = tag;
    if (built) {
      st.rx = built.rx;
      st.confirmation = built.confirmation;
    }
    const flight = this.track(rec, () => this.runPre(idx, this.triageSink));
    let detached = false;
    try {
      const headers = rng.chance(0.9)
        ? STANDARD_UPGRADE_HEADERS
        : { ...STANDARD_UPGRADE_HEADERS, ...rng.pick<Record<string, string>>([{ 'Sec-WebSocket-Protocol': 'other, latchkey.v1' }, { 'Sec-WebSocket-Protocol': '' }, { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' }, { 'Sec-WebSocket-Protocol': 'x'.repeat(200) }]) };
      const conn = await this.openWs(rec, st, sink, headers);
      if (!conn) return;
      // Control frames first: each ping must get its pong.
      const nCtl = rng.int(6);
      if (nCtl > 0) {
        const w = controls(rng, nCtl);
        this.write(conn, w, sink);
        const ok = await conn.waitFor(() => st.pongs >= w.pings, this.o.hangMs);
        if (!ok && !conn.closed) {
          sink.hang(rec, `no pong for ${w.pings} pings within ${this.o.hangMs} ms`);
          conn.destroy();
          return;
        }
      }
      let partial = false;
      if (plan === 'validThen') {
        this.write(conn, wires[0]!, sink);
        if (rng.chance(0.5)) {
          // Frames while HANDSHAKING (the server must refuse them: LK_FRAME_UNEXPECTED).
          const m = this.preMessage(rng);
          this.write(conn, wrapMessage(rng, m.msg), sink);
          rec.notes.push(`then ${m.tag} while handshaking`);
        } else {
          const ok = await conn.waitFor(() => st.connack !== null, this.o.hangMs);
          if (!ok && !conn.closed) {
            sink.hang(rec, `no CONNACK within ${this.o.hangMs} ms`);
            conn.destroy();
            return;
          }
          if (st.established && built) {
            const k = this.sessionKiller(rng, built.tx, built.hasSync ? 1 : 0);
            rec.notes.push(`then ${k.tag}`);
            // A partial frame swallows our close, and only the keepalive ends the session: with
            // a keepalive of more than 5 s (up to 600) that is past the hang bound; leave it out.
            if (!(k.partial && (st.connack?.keepAliveSec ?? 0) > 5)) {
              partial = k.partial;
              this.write(conn, k, sink);
            }
          }
        }
      } else if (plan === 'abort') {
        const w = wires[0]!;
        const cut = rng.chance(0.5) ? w.bytes.subarray(0, rng.int(w.bytes.length)) : w.bytes;
        this.write(conn, { ...w, bytes: cut }, sink);
        if (rng.chance(0.5)) await sleep(rng.int(5));
        conn.destroy();
        return;
      } else {
        for (const w of wires) {
          this.write(conn, w, sink);
          if (w.tag.startsWith('ws.close')) st.sentClose = true;
          partial ||= w.partial;
          if (rng.chance(0.2)) await new Promise((r) => setImmediate(r));
        }
      }
      if (plan !== 'validThen' && built && rng.chance(0.5)) {
        // An accepted CONNECT (a valid template, a harmless change): the session then gets junk too.
        await conn.waitFor(() => st.connack !== null, 2000);
        if (st.established && !conn.closed) {
          const k = this.sessionKiller(rng, built.tx, built.hasSync ? 1 : 0);
          rec.notes.push(`then ${k.tag}`);
          if (!(k.partial && (st.connack?.keepAliveSec ?? 0) > 5)) {
            partial ||= k.partial;
            this.write(conn, k, sink);
          }
        }
      }
      if (built && !partial && !st.connack && !st.disconnect && !conn.closed) {
        // A CONNECT went out: its answer decides the ending (an accepted session with a long
        // keepalive stays open until we close it). Every complete CONNECT is answered.
        const ok = await conn.waitFor(() => st.connack !== null || st.disconnect !== null, this.o.hangMs);
        if (!ok && !conn.closed) {
          sink.hang(rec, `CONNECT not answered within ${this.o.hangMs} ms`);
          conn.destroy();
          return;
        }
      }
      // Ending: our close frame, a half-close, or nothing (the server must end the socket itself;
      // an accepted session is always closed by us, since its keepalive may be long).
      const ending = st.established ? 'close' : rng.weighted<string>([[7, 'close'], [1, 'end'], [1, 'destroy'], [2, 'wait']]);
      if (ending === 'destroy') {
        conn.destroy();
        return;
      }
      if (ending === 'close') {
        st.sentClose = true;
        this.write(conn, { bytes: wsFrame({ opcode: OP.CLOSE, payload: closePayload(1000), mask: rng.bytes(4) }), frames: 1, tag: 'close', pings: 0, partial: false }, sink);
      } else if (ending === 'end') conn.sock.end();
      const tail = this.expectClose(conn, st, sink, rec, `${ending}${partial ? ' (partial frame)' : ''}`).finally(() => this.untrack(flight));
      detached = true;
      if (ending === 'wait' || partial) {
        // Only the server's timeout ends this one (2-3 s): wait for it off the worker, so the
        // worker goes on with the next input (bounded: at most DRAIN_MAX such connections).
        await this.detach(tail);
        return;
      }
      await tail;
    } finally {
      if (!detached) this.untrack(flight);
    }
  }

  private readonly draining = new Set<Promise<void>>();
  /** Let `p` finish in the background; waits while DRAIN_MAX others already do. */
  private async detach(p: Promise<void>): Promise<void> {
    const q = p.catch(() => undefined).finally(() => this.draining.delete(q));
    this.draining.add(q);
    while (this.draining.size > DRAIN_MAX) await Promise.race(this.draining);
  }

  /** Wait for every detached connection ending (each bounded by hangMs). */
  async drained(): Promise<void> {
    while (this.draining.size > 0) await Promise.race(this.draining);
  }

  // ---- session workers ----

  async sessionWorker(w: number): Promise<void> {
    const key = this.sessionKeys[w]!;
    const app = APPS[w % APPS.length]!;
    const known = { value: app.credentialsService === 'internal' };
    while (!this.wsDone()) {
      await this.serverUp();
      if (this.wsDone()) return;
      const idx = this.next(`ws-sess${w}`);
      await this.guard(() => this.runSession(w, idx, key, app, known, this.sink(this.server.generation)));
    }
  }

  /**
   * One session of worker `w`: handshake, batches, an ending. With `only`, just the listed items
   * (keys `embedded`, `<round>.<item>`, `killer`) are sent (the others are still generated, so the
   * rest stays the same input): triage narrows a crashing session down to one frame this way.
   * `trace` collects every item's key, kind and plaintext.
   */
  async runSession(w: number, idx: number, key: NodeEndpointKey, app: (typeof APPS)[number], known: { value: boolean }, sink: Sink, only: Set<string> | null = null, trace: SessionItem[] | null = null): Promise<void> {
    const rng = new Rng(this.o.seed, `ws-sess${w}`, idx);
    const rec = this.recordInto ?? newRecording(`ws-sess${w}#${idx}`, 'session', 'gateway', true);
    this.recordInto = null;
    const st = new ConnState();
    const keep = (k: string): boolean => only === null || only.has(k);
    let embedded = rng.chance(0.4) ? encodeSyncRequestRaw(randomSyncRequest(rng, this.syncCtx, 1)) : null;
    if (embedded) trace?.push({ key: 'embedded', kind: 'embeddedSync', plainHex: embedded.toString('hex') });
    if (!keep('embedded')) embedded = null;
    const omitKey = rng.chance(0.5); // drawn always: the stream must not depend on `known`
    const built = buildConnect({ appToken: app.appToken, server: this.server.server, key, body: known.value && omitKey ? { publicKey: null } : {}, syncPlain: embedded });
    st.rx = built.rx;
    st.confirmation = built.confirmation;
    const flight = this.track(rec, () => this.runSession(w, idx, key, app, { value: true }, this.triageSink));
    flight.session = { w, idx, key, app };
    try {
      const conn = await this.openWs(rec, st, sink);
      if (!conn) return;
      this.write(conn, wrapMessage(rng.fork('connect'), built.frame, 0.1), sink);
      const got = await conn.waitFor(() => st.connack !== null, this.o.hangMs);
      if (!got) {
        if (!conn.closed) {
          sink.hang(rec, `no CONNACK within ${this.o.hangMs} ms`);
          conn.destroy();
        } else this.onClosed(conn, st, sink, rec);
        return;
      }
      if (!st.established) {
        if (st.connack?.errorCode === 'LK_HS_PUBLIC_KEY_REQUIRED') known.value = false;
        await this.expectClose(conn, st, sink, rec, 'refused CONNACK');
        return;
      }
      known.value = true;
      let counter = embedded ? 1 : 0;
      let pingreqs = 0;
      let pings = 0;
      let requestId = 2;
      const rounds = rng.range(1, 40);
      for (let r = 0; r < rounds && !conn.closed; r++) {
        const parts: Buffer[] = [];
        let frames = 0;
        let syncs = 0;
        const n = rng.range(1, 24);
        for (let i = 0; i < n; i++) {
          const itemKey = `${r}.${i}`;
          const kind = rng.weighted<string>([
            [30, 'pingreq'],
            [12, 'wsping'],
            [4, 'wspong'],
            [40, 'sync'],
            [6, 'syncSemi'],
          ]);
          const send = keep(itemKey) && !this.quarantine.has(`session.${kind}`);
          // The item's own randomness comes from a fork: skipping it (triage) leaves the rest unchanged.
          const ir = rng.fork(itemKey);
          let wire: Wire | null = null;
          if (kind === 'pingreq') {
            wire = wrapMessage(ir, Buffer.from([FrameType.PINGREQ]), 0.05);
            if (send) pingreqs++;
            trace?.push({ key: itemKey, kind });
          } else if (kind === 'wsping' || kind === 'wspong') {
            const c = controlFrame(ir);
            c.opcode = kind === 'wsping' ? OP.PING : OP.PONG;
            if (send && c.opcode === OP.PING) pings++;
            wire = { bytes: wsFrame(c), frames: 1, tag: 'ctl', pings: 0, partial: false };
            trace?.push({ key: itemKey, kind });
          } else if (syncs < 16) {
            let req = randomSyncRequest(ir, this.syncCtx, requestId++);
            let plain = encodeSyncRequestRaw(req);
            if (kind === 'syncSemi') {
              // A mutated plaintext that still decodes: odd values deep in the request.
              const m = mutate(ir, plain, 2);
              const d = decodeSyncRequest(m);
              if (d.ok) {
                plain = m;
                req = d.value;
              }
            }
            trace?.push({ key: itemKey, kind, plainHex: plain.toString('hex') });
            if (send) {
              // Every SyncRequest but an events-only one gets its SyncResponse (docs/protocol.md 5.1).
              if (!isEventOnly(req) && req.requestId !== -1 && !st.awaiting.has(req.requestId)) st.awaiting.add(req.requestId);
              wire = wrapMessage(ir, encodeSync({ counter, ciphertext: built.tx.seal(counter, plain) }), 0.05);
              counter++;
              syncs++;
            }
          }
          if (wire && send) {
            parts.push(wire.bytes);
            frames += wire.frames;
          }
        }
        // The barrier: one more PINGREQ; its PINGRESP says the server read the whole batch, and
        // every SyncRequest of it must be answered too (they run asynchronously, in order).
        const barrier = wrapMessage(rng, Buffer.from([FrameType.PINGREQ]), 0);
        if (only !== null && parts.length === 0) continue;
        parts.push(barrier.bytes);
        frames += barrier.frames;
        pingreqs++;
        this.write(conn, { bytes: Buffer.concat(parts), frames, tag: 'batch', pings: 0, partial: false }, sink);
        const ok = await conn.waitFor(() => st.pingresps >= pingreqs && st.pongs >= pings && st.awaiting.size === 0, this.o.hangMs);
        if (conn.closed) break;
        if (!ok) {
          sink.hang(rec, `batch ${r}: ${pingreqs - st.pingresps} PINGRESP, ${pings - st.pongs} pongs and SyncResponses to requestIds [${[...st.awaiting].slice(0, 10).join(', ')}] missing after ${this.o.hangMs} ms`);
          conn.destroy();
          return;
        }
      }
      if (conn.closed) {
        // The server ended the session (a kick or replacement from the admin fuzzing, a limit).
        this.onClosed(conn, st, sink, rec);
        return;
      }
      const ending = rng.weighted<string>([[65, 'killer'], [10, 'disconnect'], [13, 'close'], [8, 'destroy'], [4, 'end']]);
      const kr = rng.fork('killer');
      const killer = ending === 'killer' ? this.sessionKiller(kr, built.tx, counter) : null;
      if (killer) trace?.push({ key: 'killer', kind: killer.tag });
      if (ending === 'destroy' || (only !== null && !keep('killer'))) {
        conn.destroy();
        return;
      }
      let after = ending;
      if (killer) {
        rec.notes.push(`killer ${killer.tag}`);
        after = `${killer.tag}${killer.partial ? ' (partial frame)' : ''}`;
        this.write(conn, killer, sink);
        // Not every killer kills (a valid frame in odd WebSocket framing is still valid): close
        // after it; a partial frame swallows the close and only the keepalive timeout ends it.
        st.sentClose = true;
        this.write(conn, { bytes: wsFrame({ opcode: OP.CLOSE, payload: closePayload(1000), mask: rng.bytes(4) }), frames: 1, tag: 'close', pings: 0, partial: false }, sink);
      } else if (ending === 'disconnect') {
        this.write(conn, wrapMessage(rng, Buffer.from([FrameType.DISCONNECT, 0x00, 0x00])), sink);
      } else if (ending === 'close') {
        st.sentClose = true;
        this.write(conn, { bytes: wsFrame({ opcode: OP.CLOSE, payload: closePayload(1000), mask: rng.bytes(4) }), frames: 1, tag: 'close', pings: 0, partial: false }, sink);
      } else conn.sock.end();
      await this.expectClose(conn, st, sink, rec, after);
    } finally {
      this.untrack(flight);
    }
  }

  // ---- HTTP ----

  async httpWorker(): Promise<void> {
    while (!this.httpDone()) {
      await this.serverUp();
      if (this.httpDone()) return;
      const idx = this.next('http');
      await this.guard(() => this.runHttp(idx, this.sink(this.server.generation)));
    }
  }

  async runHttp(idx: number, sink: Sink, raw?: Recording): Promise<void> {
    const rng = new Rng(this.o.seed, 'http', idx);
    let input = httpInput(rng, this.httpCtx);
    for (let i = 0; i < 8 && this.quarantine.has(input.tag); i++) input = httpInput(rng, this.httpCtx);
    if (this.quarantine.has(input.tag) && !raw) return;
    const target = raw?.target ?? input.target;
    const rec = newRecording(`http#${idx}`, raw?.tag ?? input.tag, target, false);
    if (!raw) rec.notes.push(input.tags.filter(Boolean).join(' '));
    const chunks = raw ? raw.chunks : input.chunks;
    const flight = this.track(rec, () => this.runHttp(idx, this.triageSink, rec));
    try {
      const port = target === 'admin' ? this.server.adminPort : this.server.port;
      const complete = raw ? true : input.complete;
      // An incomplete request may legitimately wait for bytes that never come: after 300 ms the
      // fuzzer half-closes (FIN), and the server must then answer or close within a second.
      const out = await httpExchange(port, rec, chunks, raw ? 1 : input.expect, raw ? [false] : input.heads, complete ? this.o.hangMs : 1300, complete ? null : 300);
      if (sink.live && !this.down) this.httpRequests += raw ? 1 : input.expect;
      for (const a of out.answers) {
        const code = jsonCode(a.body);
        const key = `http.${target}.${a.status}${code ? '.' + code : ''}`;
        sink.code(key, httpExpected(a.status, code), rec, a.status >= 500 ? a.body.subarray(0, 300).toString('utf8') : undefined);
      }
      if (out.answers.length < (raw ? 1 : input.expect)) {
        if (complete && out.end === 'timeout') sink.hang(rec, `complete HTTP request to the ${target} port not answered within ${this.o.hangMs} ms`);
        else if (complete && out.end === 'closed' && out.ms >= UNANSWERED_MS) {
          // Held without an answer until the server's idle timeout closed it: a hang for the client.
          sink.hang(rec, `complete HTTP request to the ${target} port never answered; the server closed the connection after ${(out.ms / 1000).toFixed(1)} s`);
        } else if (this.server.alive) sink.code(`http.${target}.${complete ? 'closedUnanswered' : 'noAnswer'}`, !complete, rec);
      }
    } finally {
      this.untrack(flight);
    }
  }

  // ---- crash handling ----

  onServerDown(reason: string): void {
    if (this.down) return;
    this.down = true;
    const at = Date.now();
    // What the server answered while it was dying is not what it answers: drop it.
    this.flushCodes();
    this.droppedCodes += this.pendingCodes.length;
    this.pendingCodes = [];
    const candidates = [...this.active.values()].reverse();
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const f = this.recent[i]!;
      if ((f.endedAt ?? 0) < at - 3000) break;
      candidates.push(f);
    }
    const stderr = this.server.crashOutput();
    for (const c of this.liveConns) c.destroy();
    this.crashHandling = this.crashHandling.then(() => this.handleCrash(reason, candidates, stderr));
  }

  private async handleCrash(reason: string, candidates: InFlight[], output: string): Promise<void> {
    this.crashes++;
    const stack = extractStack(output);
    const sig = crashSignature(stack);
    const known = this.crashSigs.get(sig) ?? { count: 0, reproduced: false };
    known.count++;
    this.crashSigs.set(sig, known);
    this.o.log(`server ${reason}; ${candidates.length} inputs in flight or just finished; signature: ${sig || '(no stack)'}`);
    await this.restart();
    const unique: InFlight[] = [];
    const seen = new Set<string>();
    for (const c of candidates) {
      if (seen.has(c.rec.id)) continue;
      seen.add(c.rec.id);
      unique.push(c);
    }
    let culprit: InFlight | null = null;
    let item: SessionItem | null = null;
    let replayRec: Recording | null = null;
    if (!known.reproduced && unique.length > 0) {
      this.o.log(`triage: replaying ${Math.min(unique.length, TRIAGE_MAX_CANDIDATES)} inputs against a fresh server, halving the set while it still crashes`);
      const t0 = Date.now();
      culprit = await this.bisect(unique.slice(0, TRIAGE_MAX_CANDIDATES), (group) => this.crashesWith(group.map((c) => () => c.replay())), t0);
      if (culprit?.session) {
        // Narrow the session down to one frame (the rest of the input is generated the same way).
        const s = culprit.session;
        const trace: SessionItem[] = [];
        await this.crashesWith([() => this.runSession(s.w, s.idx, s.key, s.app, { value: true }, this.triageSink, null, trace)]);
        const one = await this.bisect(trace, (group) => this.crashesWith([() => this.runSession(s.w, s.idx, s.key, s.app, { value: true }, this.triageSink, new Set(group.map((g) => g.key)))]), t0);
        if (one) {
          item = one;
          // Run the one-frame session once more, recorded, for the saved input.
          const rec = newRecording(culprit.rec.id, `session.${one.kind}`, 'gateway', true);
          await this.crashesWith([async () => {
            const sink = this.triageSink;
            await this.runSessionRecorded(s, new Set([one.key]), sink, rec);
          }]);
          replayRec = rec;
        }
      }
    }
    const rec = replayRec ?? culprit?.rec ?? newRecording(`unreproduced-${this.crashes}`, 'unreproduced', 'gateway', false);
    if (item) {
      rec.tag = `session.${item.kind}`;
      this.hintOverride.set(rec.id, `regenerate: node dist/bench/fuzz.js --seed ${this.o.seed} --sessions ${this.o.sessionWorkers} --replay-id ${rec.id} --replay-only ${item.key} (that one frame after a fresh handshake, so it may need the frames before it, e.g. a profile; same keys: bench/.cache)`);
      rec.notes.unshift(`the crashing frame: session item ${item.key} (${item.kind})${item.plainHex ? `, SyncRequest plaintext (sealed as a SYNC frame) ${item.plainHex}` : ''}`);
    }
    if (!culprit) rec.notes.push(`candidates in flight: ${unique.slice(0, 100).map((c) => c.rec.id).join(' ')}`);
    const what = culprit
      ? `server ${reason}; replaying ${rec.id}${item ? ` narrowed to one frame (${item.kind})` : ''} alone crashed a fresh server`
      : known.reproduced
        ? `server ${reason} again (signature seen and reproduced before; ${known.count} times so far)`
        : `server ${reason}; no single input of ${unique.length} replayed reproduced it`;
    const f = this.addFinding('crash', what, rec, stack, culprit !== null);
    if (!culprit && !known.reproduced) this.saveCandidates(f, unique);
    if (culprit) {
      known.reproduced = true;
      this.quarantine.add(rec.tag);
      this.o.log(`quarantined input category ${rec.tag} for the rest of this run`);
    }
    if (this.crashes >= this.o.maxCrashes && !this.stopReason) this.stopReason = 'max-crashes';
    this.down = false;
    const waiters = this.upWaiters;
    this.upWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Group testing: if the whole set crashes the server, keep the half that still does, down to
   * one element, which must crash it alone. Null when the set does not, or the last one alone
   * does not (the crash needs several inputs together, or timing).
   */
  private async bisect<T>(items: T[], crashes: (group: T[]) => Promise<boolean>, t0: number): Promise<T | null> {
    let set = items;
    if (set.length === 0 || !(await crashes(set))) return null;
    while (set.length > 1 && Date.now() - t0 < this.o.triageMs) {
      const half = set.slice(0, Math.ceil(set.length / 2));
      set = (await crashes(half)) ? half : set.slice(half.length);
    }
    return set.length === 1 && (await crashes(set)) ? set[0]! : null;
  }

  /** Run `replays` together against the current server; true if it crashed (it is restarted then). */
  private async crashesWith(replays: Array<() => Promise<void>>): Promise<boolean> {
    if (!this.server.alive) await this.restart();
    await Promise.all(replays.map((r) => Promise.race([r().catch(() => undefined), sleep(20_000)])));
    await sleep(200);
    if (this.server.alive && (await this.server.health(1500)) !== null) return false;
    // Dead, or dying: the fatal handler stops listening first and exits within 3 s.
    for (let i = 0; i < 50 && this.server.alive; i++) await sleep(100);
    await this.restart();
    return true;
  }

  /** runSession with a given recording (the saved input of a narrowed-down crash). */
  private async runSessionRecorded(s: NonNullable<InFlight['session']>, only: Set<string>, sink: Sink, into: Recording): Promise<void> {
    const before = this.recordInto;
    this.recordInto = into;
    try {
      await this.runSession(s.w, s.idx, s.key, s.app, { value: true }, sink, only);
    } finally {
      this.recordInto = before;
    }
  }
  /** While set, the next session input records into this recording instead of a fresh one. */
  private recordInto: Recording | null = null;

  /** An unreproduced crash: keep every candidate's bytes (bounded) next to the finding. */
  private saveCandidates(f: Finding, cands: InFlight[]): void {
    if (!this.o.crashDir) return;
    let budget = 4 * 1024 * 1024;
    const out: Array<{ id: string; tag: string; target: string; upgrade: boolean; chunksHex: string[] }> = [];
    for (const c of cands) {
      if (budget <= 0) break;
      const hex = hexChunks(c.rec);
      budget -= hex.reduce((n, h) => n + h.length, 0);
      out.push({ id: c.rec.id, tag: c.rec.tag, target: c.rec.target, upgrade: c.rec.upgrade, chunksHex: hex });
    }
    fs.mkdirSync(this.o.crashDir, { recursive: true });
    fs.writeFileSync(path.join(this.o.crashDir, `crash-seed${this.o.seed}-${f.id}-candidates.json`), JSON.stringify({ what: f.what, stack: f.serverOutput, candidates: out }) + '\n');
  }

  private async restart(): Promise<void> {
    try {
      await this.server.stop();
    } catch {
      // already gone
    }
    this.restarts++;
    await this.server.start();
  }

  /** Health check of the monitor; after 3 failures in a row the server counts as crashed. */
  private healthFailures = 0;
  private firstHealthFailure = 0;
  async monitorTick(): Promise<Record<string, unknown> | null> {
    this.server.trimLogs();
    if (!this.down) this.flushCodes();
    if (this.down) return null;
    const gen = this.server.generation;
    const h = await this.server.health(5000);
    if (this.down || gen !== this.server.generation) return null;
    try {
      this.rssPeak = Math.max(this.rssPeak, processRssBytes(this.server.pid));
    } catch {
      // exited
    }
    if (h) {
      this.healthFailures = 0;
      return h;
    }
    if (!this.server.alive) return null; // the exit handler reports it
    if (this.healthFailures++ === 0) this.firstHealthFailure = Date.now();
    // A dying server (fatal handler: stop listening, close, exit 70 within 3 s) fails at once;
    // only a server that stays alive and silent for 10 s is declared hung.
    if (this.healthFailures >= 3 && Date.now() - this.firstHealthFailure >= 10_000) {
      this.healthFailures = 0;
      this.onServerDown('stopped answering /healthz for 10 s');
      this.server.kill();
    }
    return null;
  }

  /** Regenerate and run input #idx of `stream` (replayFuzz). */
  async replayById(stream: string, worker: number, idx: number, gen: number, only: string[] | null): Promise<void> {
    const sink = this.sink(gen);
    if (stream === 'ws-pre') return this.runPre(idx, sink);
    if (stream === 'http') return this.runHttp(idx, sink);
    if (worker < 0 || worker >= this.sessionKeys.length) throw new Error(`no session worker ${worker} (--sessions ${this.sessionKeys.length})`);
    const app = APPS[worker % APPS.length]!;
    return this.runSession(worker, idx, this.sessionKeys[worker]!, app, { value: app.credentialsService === 'internal' }, sink, only ? new Set(only) : null);
  }

  /** A description of the run's state, for a stall report. */
  debugState(): string {
    const act = [...this.active.values()].slice(0, 20).map((f) => `${f.rec.id} ${f.rec.tag} [${f.rec.notes.slice(-3).join('; ')}] since ${Date.now() - f.rec.startedAt} ms`);
    return `down ${this.down} waiters ${this.upWaiters.length} stop '${this.stopReason}' alive ${this.server.alive} gen ${this.server.generation} active ${this.active.size}:\n    ${act.join('\n    ')}`;
  }

  async waitCrashHandling(): Promise<void> {
    await this.crashHandling;
  }

  destroyAll(): void {
    for (const c of this.liveConns) c.destroy();
  }

  get openConns(): number {
    return this.liveConns.size;
  }
}

/** Run the fuzzer (see the header). Starts and stops its own server; never throws for a finding. */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzResult> {
  if (opts.keys.length < opts.sessionWorkers + 2) throw new Error(`need ${opts.sessionWorkers + 2} keys (session workers + 2 probe keys), got ${opts.keys.length}`);
  const t0 = Date.now();
  const client0 = process.cpuUsage();
  const server = new FuzzServer(opts.keys, { handshakeTimeoutMs: opts.handshakeTimeoutMs, nodeArgs: opts.serverNodeArgs, env: opts.serverEnv });
  const run = new Run(opts, server);
  let serverCpuUs = 0;
  const addCpu = (): void => {
    try {
      serverCpuUs += processCpuUs(server.pid);
    } catch {
      // gone: its CPU is lost with it (a crash)
    }
  };
  server.onExit = (code, signal) => run.onServerDown(`exited (code ${code}, signal ${signal})`);
  try {
    await server.start();
    run.init();
    const rssBefore = processRssBytes(server.pid);
    const HEAP = 'latchkey_process_nodejs_heap_size_used_bytes';
    const heapBefore = await server.metric(HEAP);
    run.rssPeak = rssBefore;
    const fuzzStart = Date.now();
    const perSecond: Array<{ frames: number; http: number }> = [];
    let lastFrames = 0;
    let lastHttp = 0;
    let ticking = false;
    const progress = setInterval(() => {
      if (ticking) return;
      ticking = true;
      void run.monitorTick().then((h) => {
        ticking = false;
        perSecond.push({ frames: run.frames - lastFrames, http: run.httpRequests - lastHttp });
        lastFrames = run.frames;
        lastHttp = run.httpRequests;
        const s = Math.round((Date.now() - fuzzStart) / 1000);
        const rss = Math.round(run.rssPeak / 2 ** 20);
        if (perSecond.length >= 10 && perSecond.slice(-10).every((p) => p.frames === 0 && p.http === 0) && s % 10 === 0) opts.log(`no progress for 10 s: ${run.debugState()}`);
        opts.log(
          `${s}s frames ${run.frames}/${opts.frames} (${perSecond[perSecond.length - 1]!.frames}/s) http ${run.httpRequests}/${opts.http} conns ${run.connections} sessions ${run.handshakesAccepted} open ${run.openConns} server-sockets ${h ? String(h.sockets) : '-'} crashes ${run.crashes} hangs ${run.hangs} unexpected ${run.codes.unexpectedTotal} rss-peak ${rss} MiB`,
        );
      });
    }, 1000);
    const workers: Array<Promise<void>> = [];
    for (let i = 0; i < opts.wsConcurrency; i++) workers.push(run.preWorker());
    for (let i = 0; i < opts.sessionWorkers; i++) workers.push(run.sessionWorker(i));
    for (let i = 0; i < opts.httpConcurrency; i++) workers.push(run.httpWorker());
    await Promise.all(workers);
    await run.drained();
    if (!run.stopReason) run.stopReason = 'targets reached';
    const fuzzSeconds = (Date.now() - fuzzStart) / 1000;
    clearInterval(progress);
    await run.waitCrashHandling();
    run.flushCodes(true);
    // Every fuzz connection has ended (workers wait for each close); destroy stragglers, then settle.
    run.destroyAll();
    if (!server.alive) await server.start();
    const settleUntil = Date.now() + opts.settleMs;
    let h = await server.health(5000);
    while (Date.now() < settleUntil && (!h || Number(h.sockets) !== 0 || Number(h.sessionsOpen) !== 0)) {
      await sleep(250);
      h = await server.health(5000);
    }
    const sockets = h ? Number(h.sockets) : null;
    const sessionsOpen = h ? Number(h.sessionsOpen) : null;
    const leaked = h ? Math.max(sockets!, sessionsOpen!) : 0;
    if (leaked > 0) {
      const held: string[] = [];
      for (const a of APPS) {
        try {
          const s = (await server.admin('GET', `/admin/v1/applications/${a.id}/sessions`)) as { items: Array<{ keyHash: string; sessionId: string; lastSeen: number }> };
          for (const it of s.items) held.push(`${a.id} ${it.keyHash} session ${it.sessionId} lastSeen ${new Date(it.lastSeen).toISOString()}`);
        } catch {
          // best effort
        }
      }
      const rec = newRecording('leak', 'leak', 'gateway', false);
      rec.notes.push(`sockets ${sockets}, sessionsOpen ${sessionsOpen} after ${opts.settleMs} ms of settling`, ...held);
      run.findings.push({ kind: 'leak', what: `${leaked} sessions left on the server after every fuzz connection closed`, id: 'leak', tag: 'leak', target: 'server', notes: rec.notes, upgrade: false, chunksHex: [], truncated: false, replay: 'rerun with the same seed' });
      opts.log(`FINDING leak: sockets ${sockets}, sessionsOpen ${sessionsOpen}\n  ${held.join('\n  ')}`);
    }
    const rssAfter = processRssBytes(server.pid);
    const heapAfter = await server.metric(HEAP);
    addCpu();
    const client = process.cpuUsage(client0);
    const unexpectedCodes = Object.fromEntries([...run.codes.unexpected].sort((a, b) => b[1] - a[1]));
    const codes = Object.fromEntries([...run.codes.counts].sort((a, b) => b[1] - a[1]));
    // Each unexpected key's first example goes with the findings (already added as it was seen).
    return {
      frames: run.frames,
      httpRequests: run.httpRequests,
      connections: run.connections,
      handshakesAccepted: run.handshakesAccepted,
      crashes: run.crashes,
      hangs: run.hangs,
      leakedSessions: leaked,
      socketsAfter: sockets,
      sessionsOpenAfter: sessionsOpen,
      rssBeforeBytes: rssBefore,
      rssAfterBytes: rssAfter,
      rssPeakBytes: Math.max(run.rssPeak, rssAfter),
      heapUsedBeforeBytes: heapBefore,
      heapUsedAfterBytes: heapAfter,
      unexpectedCodes,
      codes,
      findings: run.findings,
      quarantined: [...run.quarantine],
      serverRestarts: run.restarts,
      durationSeconds: (Date.now() - t0) / 1000,
      fuzzSeconds,
      serverCpuSeconds: serverCpuUs / 1e6,
      clientCpuSeconds: (client.user + client.system) / 1e6,
      perSecond,
      healthAfter: h,
      stoppedBy: run.stopReason,
      fuzzerErrors: run.fuzzerErrors,
      hangsByKey: Object.fromEntries(run.hangsByKey),
      droppedCodes: run.droppedCodes,
    };
  } finally {
    run.destroyAll();
    await server.stop().catch(() => undefined);
    server.remove();
  }
}

export interface ReplayResult {
  crashed: boolean;
  /** For saved bytes: what the server did with them. */
  outcome: string;
  stack: string;
  codes: Record<string, number>;
  hangs: number;
}

/**
 * Replay one input against a fresh server: `id` regenerates input #i of its stream from the seed
 * (ws-pre#i, ws-sessW#i, http#i); `finding` (a saved crash/hang JSON) writes its bytes as they
 * were sent (HTTP, or a WebSocket upgrade then its frames: CONNECTs in it will be stale).
 */
export async function replayFuzz(opts: FuzzOptions, what: { id: string; only?: string[] } | { finding: Pick<Finding, 'id' | 'target' | 'upgrade' | 'chunksHex'> }): Promise<ReplayResult> {
  const server = new FuzzServer(opts.keys, { handshakeTimeoutMs: opts.handshakeTimeoutMs, nodeArgs: opts.serverNodeArgs, env: opts.serverEnv });
  const run = new Run({ ...opts, maxSeconds: 120 }, server);
  let exited = false;
  server.onExit = () => {
    exited = true;
  };
  try {
    await server.start();
    run.init();
    const sinkGen = server.generation;
    let outcome = '';
    if ('id' in what) {
      const m = /^(ws-pre|ws-sess(\d+)|http)#(\d+)$/.exec(what.id);
      if (!m) throw new Error(`--replay-id: expected ws-pre#N, ws-sessW#N or http#N, got ${what.id}`);
      await run.replayById(m[1]!, m[2] === undefined ? -1 : Number(m[2]), Number(m[3]), sinkGen, what.only ?? null);
    } else {
      const f = what.finding;
      if (f.chunksHex.length === 0) throw new Error(`${f.id}: no bytes to replay (see its notes)`);
      const chunks = f.chunksHex.map((h) => Buffer.from(h, 'hex'));
      const rec = newRecording(f.id, 'replay', f.target === 'admin' ? 'admin' : 'gateway', f.upgrade);
      const port = f.target === 'admin' ? server.adminPort : server.port;
      if (!f.upgrade) {
        const out = await httpExchange(port, rec, chunks, 1, [false], opts.hangMs);
        outcome = out.answers.length ? `answered ${out.answers[0]!.status} after ${Math.round(out.ms)} ms` : `no answer (${out.end} after ${Math.round(out.ms)} ms)`;
      } else {
        const frames: number[] = [];
        const conn = new WsConn(port, rec, (fr) => frames.push(fr.opcode));
        const s = await conn.upgrade(chunks[0] ?? Buffer.alloc(0), 5000);
        if (s === 101) for (const c of chunks.slice(1)) conn.write(c, 1);
        const closed = await conn.waitClosed(opts.hangMs);
        outcome = `upgrade ${s}; ${frames.length} server frames; ${closed ? `closed by the server (close code ${conn.serverClose ?? 'none'})` : `still open after ${opts.hangMs} ms`}`;
        conn.destroy();
      }
    }
    await sleep(500);
    const crashed = exited || !server.alive || (await server.health(5000)) === null;
    run.flushCodes(true);
    return { crashed, stack: crashed ? extractStack(server.crashOutput()) : '', codes: Object.fromEntries(run.codes.counts), hangs: run.hangs, outcome };
  } finally {
    run.destroyAll();
    await server.stop().catch(() => undefined);
    server.remove();
  }
}
