/**
 * bench/events: events per second relayed between the endpoints of one owner, and server CPU per
 * relayed event, against a plain uWebSockets.js echo server measured in the same run as the floor.
 *
 *   npm run bench:events [-- --pairs 32 --window 64 --event-bytes 48 --seconds 10 --warmup 2 --max-seconds 150]
 *
 * 1. Prints the machine line and the settings; loads (or generates and caches) 2 x pairs endpoint
 *    keys (bench/lib/keys.ts, shared with the other benches). Context figure (not the floor): CPU µs
 *    of the server's two AES-GCM calls per event (src/crypto/aead.ts: open the request, seal the
 *    delivery) on one thread of this process, here and again at the end.
 * 2. Floor, before: starts bench/lib/echo-server.ts (uWS App().ws, message => ws.send(message)) as
 *    a child process on 127.0.0.1 and drives it exactly as step 4 drives latchkey, except that each
 *    connection's frames come back to itself: the same 2 x pairs connections, the same frames (built
 *    and sealed the same way), the same window, warm-up and measured duration. Floor = server
 *    process CPU (user + system, /proc) per echoed message.
 * 3. Starts `latchkey serve` as a child process (fresh data dir, embedded store, a trustful
 *    application from a seed file), reads the root admin API key from its stderr and creates a
 *    default `trustful` owner verifier through the admin API. For each pair i, endpoints A_i and B_i
 *    connect (CONNECT signed with node:crypto, CONNACK confirmation checked), register and attach
 *    to owner `owner-i` (profile + UserAttachRequest, SYNC counter 0) and declare that they listen
 *    to `bench.Event` (SYNC counter 1); both requests must be answered SUCCESS.
 * 4. Events: A_i -> B_i and B_i -> A_i at once. One event per SYNC frame (an event-only
 *    SyncRequest, seqNum 0, 1, 2, ... per sender, `--event-bytes` of eventData); no acks exist, so
 *    each direction keeps at most `--window` events sent but not yet received by its partner, and
 *    refills when the partner's socket delivers. Receivers count frames without decrypting; the
 *    first, every 4096th and the last event of each receiver are decrypted and checked (server
 *    counter, requestId -1, restamped seqNum, class, source key hash, payload and its sender seqNum),
 *    so the count is of genuine, in-order, complete deliveries. Warm-up, then the measured window:
 *    events/s = events received in the window / its length; serverCpuUsPerEvent = server process
 *    CPU (all threads, /proc) in the window / events received in it. Then sending stops and the
 *    window drains. Drops: latchkey_events_dropped_total from GET /metrics (must stay 0), and the
 *    server's received/delivered counters (/healthz) against the client's counts.
 * 5. Floor, after: step 2 again (the VM is shared and noisy; both floors are recorded, the lower one
 *    is the floor). ratioToFloor = serverCpuUsPerEvent / echoFloorUsPerMessage. Each window also
 *    records the CPU the rest of the machine used (/proc/stat busy minus server and client) and
 *    steal; above 10% the run is flagged as noisy.
 *
 * Progress once a second in the long phases. Loopback only; every loop is bounded in count (events
 * per phase, --max-events) and time (phase durations, drain and set-up deadlines, --max-seconds,
 * and a watchdog that kills the child processes and exits); child processes are stopped on errors
 * and on SIGINT/SIGTERM.
 *
 * Writes bench/results/events-latest.json and events-latest.svg (server CPU µs per message, each
 * second of the measured windows, latchkey and the floors). LATCHKEY_BENCH_SERVER_NODE_ARGS passes
 * node flags to the latchkey server (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof");
 * LATCHKEY_BENCH_SERVER_LOG=FILE keeps its output.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NodeGcmCipher } from '../src/crypto/aead.js';
import { ConnackCode } from '../src/errors.js';
import { decodeFrame, decodeSyncRequest, encodeSync, encodeSyncRequest, encodeSyncResponse } from '../src/protocol/frames.js';
import { emptySyncResponse, type SyncRequest, type WireEvent } from '../src/protocol/schemas.js';
import { openSync, prepareConnect, syncFrame, type NodeEndpointKey } from '../test/helpers/wire-client.js';
import { startServerProcess, type ServerProcess } from '../test/helpers/process.js';
import { ROOT } from '../test/helpers/root.js';
import { lineChart } from './lib/chart.js';
import { startEchoProcess, type EchoProcess } from './lib/echo.js';
import { endpointKeys } from './lib/keys.js';
import { diffThreads, machineInfo, machineLine, processCpuUs, threadCpuUs } from './lib/machine.js';
import { LIMITS_OFF } from './lib/limits.js';
import { WsConnection } from './lib/ws-conn.js';
import { arg, intArg } from './lib/args.js';
import { sleep, pool, children, killChildren, stopChildrenOnSignal, waitForToken } from './lib/run.js';

const RESULTS = path.join(ROOT, 'bench/results');
const APP_ID = 'bench';
const APP_TOKEN = 'bench-app-token';
const EVENT_CLASS = 'bench.Event';
const PROFILE = Buffer.from('{"model":"bench"}');
/** Receivers decrypt and check their first event, every SAMPLE_EVERY-th, and their last. */
const SAMPLE_EVERY = 4096;
/** A phase with events in flight and none received for this many seconds has stalled. */
const STALL_SECONDS = 3;
/** After sending stops, how long in-flight events may take to arrive. */
const DRAIN_MS = 5_000;

const settings = {
  /** Owners, each with two endpoints sending to each other. */
  pairs: intArg('pairs', 32, 1024),
  /** Events per direction sent and not yet received. */
  window: intArg('window', 64, 4096),
  /** eventData bytes per event (the first 9 identify pair, direction and sender seqNum). */
  eventBytes: intArg('event-bytes', 48, 16 * 1024),
  /** Measured seconds per phase (latchkey and each floor). */
  seconds: intArg('seconds', 10, 600),
  /** Seconds of load before each measured window. */
  warmup: intArg('warmup', 2, 60),
  /** Events sent per phase at most. */
  maxEvents: intArg('max-events', 20_000_000, 1_000_000_000),
  /** Bound on the whole run after the keys are ready (a watchdog kills everything 30 s later). */
  maxSeconds: arg('max-seconds', 150),
};
if (settings.eventBytes < 9) throw new Error('--event-bytes must be at least 9');

/** Extra node flags for the latchkey server process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
const serverNodeArgs = (process.env.LATCHKEY_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);

function log(msg: string): void {
  process.stdout.write(`[events] ${msg}\n`);
}



stopChildrenOnSignal('bench/events');

// --- connections and flows ---

/** One client connection: a latchkey endpoint session, or a connection to the echo server. */
interface Conn {
  ws: WsConnection;
  /** Seals this connection's SyncRequests (key endpoint -> server). */
  tx: NodeGcmCipher;
  /** Opens what the server sends (latchkey: key server -> endpoint); null for the echo floor. */
  rx: NodeGcmCipher | null;
  txCounter: number;
  keyHash: string;
}

/** One direction of events: `from` sends, `to` receives (the echo floor: from === to). */
interface Flow {
  pair: number;
  dir: number;
  from: Conn;
  to: Conn;
  sent: number;
  recv: number;
  /** Server SYNC counter of the first event this receiver gets (latchkey: after the set-up responses). */
  rxBase: number;
  /** eventData template: pair (u32), direction (u8), sender seqNum (u32), then filler. */
  data: Buffer;
  req: SyncRequest;
  lastView: Buffer | null;
  last: Buffer | null;
  lastIndex: number;
  unexpected: number;
}

type Mode = 'latchkey' | 'echo';

interface Checks {
  checked: number;
  failed: number;
  firstFailure: string | null;
}

function eventData(pair: number, dir: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 9; i < bytes; i++) b[i] = (i * 31 + pair) & 0xff;
  b.writeUInt32BE(pair, 0);
  b[4] = dir;
  return b;
}

function makeFlow(pair: number, dir: number, from: Conn, to: Conn, rxBase: number): Flow {
  const data = eventData(pair, dir, settings.eventBytes);
  const ev: WireEvent = { seqNum: 0, eventClassFQN: EVENT_CLASS, eventData: data, source: null, target: null };
  const req: SyncRequest = {
    requestId: 0,
    syncRequestMetaData: null,
    profileSyncRequest: null,
    userSyncRequest: null,
    eventSyncRequest: { eventListenersRequests: null, events: [ev], listenedEventClassFQNs: null },
  };
  return { pair, dir, from, to, sent: 0, recv: 0, rxBase, data, req, lastView: null, last: null, lastIndex: -1, unexpected: 0 };
}

/** The next event frame of a flow: an event-only SyncRequest sealed under the sender's next counter. */
function nextEventFrame(f: Flow): Buffer {
  const seq = f.sent;
  f.data.writeUInt32BE(seq, 5);
  f.req.eventSyncRequest!.events![0]!.seqNum = seq;
  const counter = f.from.txCounter++;
  return encodeSync({ counter, ciphertext: f.from.tx.seal(counter, encodeSyncRequest(f.req)) });
}

/** Check one received event frame (the k-th of its flow): a genuine, complete, in-order delivery. */
function checkFrame(mode: Mode, f: Flow, k: number, frame: Buffer, checks: Checks): void {
  checks.checked++;
  const fail = (why: string): void => {
    checks.failed++;
    checks.firstFailure ??= `pair ${f.pair} dir ${f.dir} event ${k}: ${why}`;
  };
  const expectData = eventData(f.pair, f.dir, settings.eventBytes);
  expectData.writeUInt32BE(k, 5);
  try {
    if (mode === 'latchkey') {
      const { counter, response } = openSync(f.to.rx!, frame);
      if (counter !== f.rxBase + k) return fail(`server counter ${counter}, expected ${f.rxBase + k}`);
      if (response.requestId !== -1 || response.status !== 'SUCCESS') return fail(`requestId ${response.requestId} status ${response.status}`);
      const evs = response.eventSyncResponse?.events ?? [];
      if (evs.length !== 1) return fail(`${evs.length} events in the frame`);
      const ev = evs[0]!;
      if (ev.seqNum !== k) return fail(`restamped seqNum ${ev.seqNum}, expected ${k}`);
      if (ev.eventClassFQN !== EVENT_CLASS) return fail(`class ${ev.eventClassFQN}`);
      if (ev.source !== f.from.keyHash) return fail(`source ${ev.source}`);
      if (ev.target !== null) return fail(`target ${ev.target}`);
      if (!ev.eventData || !ev.eventData.equals(expectData)) return fail('eventData differs (payload or sender seqNum)');
    } else {
      const d = decodeFrame(frame);
      if (!d.ok || d.value.type !== 'SYNC') return fail('not a SYNC frame');
      if (d.value.sync.counter !== f.rxBase + k) return fail(`counter ${d.value.sync.counter}, expected ${f.rxBase + k}`);
      const plain = f.from.tx.open(d.value.sync.counter, d.value.sync.ciphertext);
      if (!plain) return fail('does not authenticate');
      const req = decodeSyncRequest(plain);
      const ev = req.ok ? req.value.eventSyncRequest?.events?.[0] : undefined;
      if (!ev || ev.seqNum !== k || !ev.eventData?.equals(expectData)) return fail('echoed event differs');
    }
  } catch (err) {
    fail((err as Error).message);
  }
}

/**
 * Context for the ratio: CPU µs of the two AES-GCM calls the server makes per relayed event, with
 * its own cipher class (src/crypto/aead.ts, node:crypto): open the sender's sealed event-only
 * SyncRequest and seal the receiver's SyncResponse, at this run's sizes. One thread, this process,
 * after a warm-up, median of 7 batches (CPU time, like the server's; it varies by 2x between runs
 * on the shared VM, so it is context, not the floor).
 */
function aesGcmPerEventUs(): number {
  const cipher = new NodeGcmCipher(crypto.randomBytes(32));
  const f = makeFlow(0, 0, { ws: null as unknown as WsConnection, tx: cipher, rx: null, txCounter: 0, keyHash: '' }, null as unknown as Conn, 0);
  f.req.eventSyncRequest!.events![0]!.seqNum = 100_000;
  const sealedRequest = cipher.seal(100_000, encodeSyncRequest(f.req));
  const res = emptySyncResponse(-1);
  res.eventSyncResponse = {
    eventListenersResponses: null,
    events: [{ seqNum: 100_000, eventClassFQN: EVENT_CLASS, eventData: f.data, source: crypto.randomBytes(32).toString('base64url'), target: null }],
  };
  const response = encodeSyncResponse(res);
  const once = (i: number): void => {
    if (!cipher.open(100_000, sealedRequest)) throw new Error('AES-GCM floor: open failed');
    cipher.seal(i, response);
  };
  // Warm up (JIT, OpenSSL caches) for 1 s or 50,000 rounds, whichever comes first: cold calls cost twice as much.
  const warmUntil = performance.now() + 1000;
  for (let i = 0; i < 50_000 && performance.now() < warmUntil; i++) once(i);
  const batches: number[] = [];
  for (let b = 0; b < 7; b++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < 2000; i++) once(i);
    const c = process.cpuUsage(c0);
    batches.push((c.user + c.system) / 2000);
  }
  batches.sort((a, b) => a - b);
  return batches[3]!;
}

/** Machine-wide CPU ticks from /proc/stat: busy (user, nice, system, irq, softirq) and steal. */
function machineTicks(): { busy: number; steal: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { busy: f[0]! + f[1]! + f[2]! + f[5]! + f[6]!, steal: f[7] ?? 0 };
}

interface PhaseResult {
  mode: Mode;
  /** Messages (events) received by the client in the measured window. */
  messages: number;
  measuredSeconds: number;
  perSec: number;
  serverCpuUs: number;
  serverCpuUsPerMessage: number;
  serverCpuPercent: number;
  serverCpuUsPerMessageByThread: Record<string, number>;
  clientCpuUsPerMessage: number;
  clientCpuPercent: number;
  /**
   * CPU the rest of the machine used in the window (all busy CPU minus server and client), and
   * steal: other work on the shared 2 cores makes a run noisy; see these before trusting one.
   */
  otherCpuPercent: number;
  stealPercent: number;
  /** Each measured second: messages received, and server CPU µs per message. */
  perSecond: Array<{ messages: number; serverUsPerMessage: number }>;
  warmupMessages: number;
  drainMs: number;
  sent: number;
  received: number;
  undelivered: number;
  unexpectedFrames: number;
  checks: Checks;
  /** Bytes of one sent frame (the WebSocket payload) and of one received frame. */
  frameBytesSent: number;
  frameBytesReceived: number;
}

/**
 * Drive `flows` against the server process `pid`: warm-up, measured window, drain. Every sender
 * keeps at most `window` events in flight to its receiver and refills when the receiver's socket
 * delivers (one socket write per refill).
 */
async function runPhase(label: string, mode: Mode, pid: number, flows: Flow[], deadline: number): Promise<PhaseResult> {
  const checks: Checks = { checked: 0, failed: 0, firstFailure: null };
  const W = settings.window;
  let sending = true;
  let totalSent = 0;
  let totalRecv = 0;
  let frameBytesSent = 0;
  let frameBytesReceived = 0;
  const batch: Buffer[] = new Array<Buffer>(W);
  const pump = (f: Flow): void => {
    if (!sending) return;
    const room = Math.min(W - (f.sent - f.recv), settings.maxEvents - totalSent);
    if (room <= 0) return;
    for (let i = 0; i < room; i++) {
      batch[i] = nextEventFrame(f);
      f.sent++;
    }
    totalSent += room;
    frameBytesSent = batch[room - 1]!.length;
    f.from.ws.sendMany(batch, room);
  };
  for (const f of flows) {
    f.to.ws.handle(
      (opcode, payload) => {
        if (opcode !== 0x2 || payload[0] !== 0x0f) {
          f.unexpected++;
          return;
        }
        const k = f.recv++;
        totalRecv++;
        if (k === 0 || k % SAMPLE_EVERY === 0) {
          frameBytesReceived = payload.length;
          checkFrame(mode, f, k, payload, checks);
        }
        f.lastView = payload;
      },
      () => {
        if (f.lastView) {
          f.last = Buffer.from(f.lastView);
          f.lastIndex = f.recv - 1;
          f.lastView = null;
        }
        pump(f);
      },
    );
  }

  const conns = new Set(flows.flatMap((f) => [f.from, f.to]));
  const health = (): void => {
    for (const c of conns) if (c.ws.closed) throw new Error(`${label}: a connection ended during the phase: ${c.ws.endReason}`);
    const bad = flows.reduce((n, f) => n + f.unexpected, 0);
    if (bad > 0) throw new Error(`${label}: ${bad} unexpected frames (not SYNC) received`);
    if (checks.failed > 0) throw new Error(`${label}: event check failed: ${checks.firstFailure}`);
  };

  /** Wait `seconds`, calling `each(s)` once a second; throws on a stall, a closed connection or the deadline. */
  const run = async (seconds: number, each: (s: number) => void): Promise<void> => {
    const t0 = performance.now();
    let lastRecv = totalRecv;
    let still = 0;
    for (let s = 1; s <= seconds; s++) {
      await sleep(t0 + s * 1000 - performance.now());
      health();
      if (totalRecv === lastRecv && totalSent > totalRecv) {
        if (++still >= STALL_SECONDS) throw new Error(`${label}: stalled (${totalSent - totalRecv} events in flight, none received for ${still} s)`);
      } else still = 0;
      lastRecv = totalRecv;
      if (Date.now() > deadline) throw new Error(`${label}: --max-seconds ${settings.maxSeconds} reached`);
      each(s);
    }
  };

  log(`${label}: warm-up ${settings.warmup} s (${flows.length} flows, window ${W})`);
  for (const f of flows) pump(f);
  let prevRecv = 0;
  await run(settings.warmup, () => {
    log(`${label}: warm-up, ${totalRecv - prevRecv} messages/s`);
    prevRecv = totalRecv;
  });
  const warmupMessages = totalRecv;

  const perSecond: PhaseResult['perSecond'] = [];
  const recv0 = totalRecv;
  const cpu0 = processCpuUs(pid);
  const threads0 = threadCpuUs(pid);
  const client0 = process.cpuUsage();
  const machine0 = machineTicks();
  const t0 = performance.now();
  let secRecv = totalRecv;
  let secCpu = cpu0;
  let secClient = process.cpuUsage();
  await run(settings.seconds, (s) => {
    const cpu = processCpuUs(pid);
    const client = process.cpuUsage(secClient);
    const n = totalRecv - secRecv;
    perSecond.push({ messages: n, serverUsPerMessage: n > 0 ? (cpu - secCpu) / n : 0 });
    log(
      `${label}: ${s}/${settings.seconds} s measured, ${n} messages/s, server CPU ${((cpu - secCpu) / 1e4).toFixed(0)}% ` +
        `(${n > 0 ? ((cpu - secCpu) / n).toFixed(2) : '-'} µs/message), client CPU ${((client.user + client.system) / 1e4).toFixed(0)}%`,
    );
    secRecv = totalRecv;
    secCpu = cpu;
    secClient = process.cpuUsage();
  });
  const wallS = (performance.now() - t0) / 1000;
  const messages = totalRecv - recv0;
  const serverCpuUs = processCpuUs(pid) - cpu0;
  const threadUs = diffThreads(threads0, threadCpuUs(pid));
  const client = process.cpuUsage(client0);
  const clientUs = client.user + client.system;
  const machine1 = machineTicks();
  const machineBusyUs = ((machine1.busy - machine0.busy) * 1e6) / 100; // USER_HZ is 100 on Linux
  const stealUs = ((machine1.steal - machine0.steal) * 1e6) / 100;

  // Stop sending; let what is in flight arrive (bounded).
  sending = false;
  const tDrain = performance.now();
  const drainUntil = Math.min(deadline, Date.now() + DRAIN_MS);
  while (flows.some((f) => f.recv < f.sent) && Date.now() < drainUntil) await sleep(10);
  const drainMs = performance.now() - tDrain;
  health();
  for (const f of flows) {
    f.to.ws.handle(null);
    if (f.last && f.lastIndex > 0) checkFrame(mode, f, f.lastIndex, f.last, checks);
  }
  if (checks.failed > 0) throw new Error(`${label}: event check failed: ${checks.firstFailure}`);
  const sent = flows.reduce((n, f) => n + f.sent, 0);
  const received = flows.reduce((n, f) => n + f.recv, 0);
  const per = (us: number): number => +(us / Math.max(1, messages)).toFixed(3);
  return {
    mode,
    messages,
    measuredSeconds: +wallS.toFixed(3),
    perSec: Math.round(messages / wallS),
    serverCpuUs,
    serverCpuUsPerMessage: per(serverCpuUs),
    serverCpuPercent: +((serverCpuUs / 1e6 / wallS) * 100).toFixed(1),
    serverCpuUsPerMessageByThread: Object.fromEntries(Object.entries(threadUs).filter(([, v]) => v > 0).map(([k, v]) => [k, per(v)])),
    clientCpuUsPerMessage: per(clientUs),
    clientCpuPercent: +((clientUs / 1e6 / wallS) * 100).toFixed(1),
    otherCpuPercent: +((Math.max(0, machineBusyUs - serverCpuUs - clientUs) / 1e6 / wallS) * 100).toFixed(1),
    stealPercent: +((stealUs / 1e6 / wallS) * 100).toFixed(1),
    perSecond: perSecond.map((p) => ({ messages: p.messages, serverUsPerMessage: +p.serverUsPerMessage.toFixed(3) })),
    warmupMessages,
    drainMs: Math.round(drainMs),
    sent,
    received,
    undelivered: sent - received,
    unexpectedFrames: flows.reduce((n, f) => n + f.unexpected, 0),
    checks,
    frameBytesSent,
    frameBytesReceived,
  };
}

async function closeAll(conns: Conn[]): Promise<void> {
  for (let i = 0; i < conns.length; i += 256) await Promise.all(conns.slice(i, i + 256).map((c) => c.ws.close(3000)));
}

// --- the floor: a plain uWS echo server ---

async function echoFloor(label: string, deadline: number): Promise<PhaseResult> {
  const echo: EchoProcess = await startEchoProcess();
  log(`${label}: uWS echo server up (bench/lib/echo-server.ts, pid ${echo.child.pid}, 127.0.0.1:${echo.port})`);
  const handle = { kill: () => echo.child.kill('SIGKILL') };
  children.add(handle);
  const conns: Conn[] = [];
  try {
    const n = settings.pairs * 2;
    await pool(n, 16, deadline, async (i) => {
      const ws = await WsConnection.open(echo.port, '/ep/v1', 10_000, 'latchkey.v1');
      conns[i] = { ws, tx: new NodeGcmCipher(crypto.randomBytes(32)), rx: null, txCounter: 0, keyHash: '' };
    });
    if (conns.filter(Boolean).length !== n) throw new Error(`${label}: only ${conns.filter(Boolean).length}/${n} connections opened`);
    // Same shape as latchkey: two connections per pair, each sending one flow; here to itself.
    const flows: Flow[] = [];
    for (let p = 0; p < settings.pairs; p++) {
      flows.push(makeFlow(p, 0, conns[2 * p]!, conns[2 * p]!, 0));
      flows.push(makeFlow(p, 1, conns[2 * p + 1]!, conns[2 * p + 1]!, 0));
    }
    const r = await runPhase(label, 'echo', echo.child.pid!, flows, deadline);
    log(`${label}: ${r.perSec} messages/s, server CPU ${r.serverCpuUsPerMessage} µs/message (${r.serverCpuPercent}%), client ${r.clientCpuUsPerMessage} µs/message (${r.clientCpuPercent}%), rest of the machine ${r.otherCpuPercent}%`);
    return r;
  } finally {
    await closeAll(conns.filter(Boolean));
    await echo.stop();
    children.delete(handle);
  }
}

// --- latchkey ---


/** Drops by reason, from the Prometheus text of GET /metrics. */
function droppedFromMetrics(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^latchkey_events_dropped_total(?:\{reason="([^"]*)"\})?\s+(\S+)/.exec(line);
    if (m) out[m[1] ?? ''] = (out[m[1] ?? ''] ?? 0) + Number(m[2]);
  }
  return out;
}

interface LatchkeyResult {
  phase: PhaseResult;
  setupSeconds: number;
  drops: Record<string, number>;
  dropsTotal: number;
  serverEventsReceived: number;
  serverEventsDelivered: number;
  serverSyncRequests: number;
}

async function latchkeyEvents(keys: NodeEndpointKey[], deadline: number): Promise<LatchkeyResult> {
  const tSetup = performance.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-events-'));
  let server: ServerProcess | null = null;
  let handle: { kill: () => void } | null = null;
  const conns: Conn[] = [];
  try {
    const seed = {
      tenants: [{ id: 'bench', name: 'bench' }],
      applications: [{ id: APP_ID, tenantId: 'bench', name: 'bench', appToken: APP_TOKEN, credentialsService: 'trustful' }],
    };
    fs.writeFileSync(path.join(dir, 'seed.json'), JSON.stringify(seed));
    log('latchkey: starting latchkey serve (embedded store, trustful application)');
    server = await startServerProcess({ ...LIMITS_OFF, LATCHKEY_DATA_DIR: path.join(dir, 'data'), LATCHKEY_SEED_FILE: path.join(dir, 'seed.json'), LATCHKEY_LOG_LEVEL: 'warn' }, 30_000, serverNodeArgs);
    const srv = server;
    handle = { kill: () => srv.child.kill('SIGKILL') };
    children.add(handle);
    const admin = `http://127.0.0.1:${srv.adminPort}`;
    const token = await waitForToken(srv, 10_000);
    const vr = await fetch(`${admin}/admin/v1/applications/${APP_ID}/verifiers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ pluginTypeName: 'trustful', name: 'bench', jsonConfiguration: {}, isDefault: true }),
      signal: AbortSignal.timeout(10_000),
    });
    if (vr.status !== 201) throw new Error(`creating the default owner verifier: HTTP ${vr.status} ${await vr.text()}`);
    log(`latchkey: server up (pid ${srv.child.pid}, gateway 127.0.0.1:${srv.port}, admin 127.0.0.1:${srv.adminPort}), default trustful owner verifier created`);

    const ring = JSON.parse(fs.readFileSync(path.join(dir, 'data/keys/keyring.json'), 'utf8')) as { keys: Array<{ id: string; status: string }> };
    const keyId = ring.keys.find((k) => k.status === 'active')!.id;
    const serverPub = crypto.createPublicKey(fs.readFileSync(path.join(dir, `data/keys/${keyId}.pub.pem`)));

    const n = keys.length;
    log(`latchkey: connecting ${n} endpoints, attaching each pair to its owner, declaring ${EVENT_CLASS}`);
    let ready = 0;
    const stopProgress = setInterval(() => log(`latchkey: ${ready}/${n} endpoints ready`), 1000);
    try {
      await pool(n, 16, deadline, async (i) => {
        const key = keys[i]!;
        const pc = prepareConnect({ appToken: APP_TOKEN, serverKeyId: keyId, serverPublicKey: serverPub, key, body: { keepAliveSec: 60 } });
        const ws = await WsConnection.open(srv.port, '/ep/v1', 10_000, 'latchkey.v1');
        const conn: Conn = { ws, tx: pc.tx, rx: pc.rx, txCounter: 0, keyHash: key.keyHash };
        conns[i] = conn;
        ws.send(pc.frame);
        const ack = decodeFrame((await ws.next(15_000)).payload);
        if (!ack.ok || ack.value.type !== 'CONNACK') throw new Error(`endpoint ${i}: expected CONNACK, got ${ack.ok ? ack.value.type : ack.code}`);
        const c = ack.value.connack;
        if (c.returnCode !== ConnackCode.ACCEPTED) throw new Error(`endpoint ${i}: CONNACK ${c.returnCode} ${c.errorCode}`);
        if (!c.confirmation || c.confirmation.length !== pc.confirmation.length || !crypto.timingSafeEqual(c.confirmation, pc.confirmation)) {
          throw new Error(`endpoint ${i}: CONNACK confirmation does not match`);
        }
        const owner = `owner-${Math.floor(i / 2)}`;
        const ask = async (requestId: number, req: SyncRequest): Promise<void> => {
          const counter = conn.txCounter++;
          ws.send(syncFrame(conn.tx, counter, req));
          const { counter: sc, response } = openSync(conn.rx!, (await ws.next(15_000)).payload);
          if (sc !== counter || response.requestId !== requestId || response.status !== 'SUCCESS') {
            throw new Error(`endpoint ${i}: request ${requestId}: server counter ${sc}, requestId ${response.requestId}, ${response.status} ${response.errorCode ?? ''}`);
          }
          const attach = response.userSyncResponse?.userAttachResponse;
          if (req.userSyncRequest && attach?.result !== 'SUCCESS') throw new Error(`endpoint ${i}: attach to ${owner}: ${JSON.stringify(attach)}`);
        };
        // Registration (a profile) comes first: an unregistered endpoint's requests get PROFILE_RESYNC.
        await ask(1, {
          requestId: 1, syncRequestMetaData: null, profileSyncRequest: { profileBody: PROFILE, endpointAccessToken: null }, eventSyncRequest: null,
          userSyncRequest: { userAttachRequest: { userVerifierId: null, userExternalId: owner, userAccessToken: 'x' }, endpointAttachRequests: null, endpointDetachRequests: null },
        });
        await ask(2, {
          requestId: 2, syncRequestMetaData: null, profileSyncRequest: null, userSyncRequest: null,
          eventSyncRequest: { eventListenersRequests: null, events: null, listenedEventClassFQNs: [EVENT_CLASS] },
        });
        ready++;
      });
    } finally {
      clearInterval(stopProgress);
    }
    if (ready !== n) throw new Error(`latchkey: only ${ready}/${n} endpoints ready before the deadline`);
    const setupSeconds = (performance.now() - tSetup) / 1000;
    log(`latchkey: ${n} endpoints ready in ${setupSeconds.toFixed(1)} s`);

    // Each endpoint used counters 0 and 1 for its set-up requests, the server likewise for the answers.
    const flows: Flow[] = [];
    for (let p = 0; p < settings.pairs; p++) {
      const a = conns[2 * p]!;
      const b = conns[2 * p + 1]!;
      flows.push(makeFlow(p, 0, a, b, 2));
      flows.push(makeFlow(p, 1, b, a, 2));
    }
    const phase = await runPhase('latchkey', 'latchkey', srv.child.pid!, flows, deadline);
    log(`latchkey: ${phase.perSec} events/s, server CPU ${phase.serverCpuUsPerMessage} µs/event (${phase.serverCpuPercent}%), client ${phase.clientCpuUsPerMessage} µs/event (${phase.clientCpuPercent}%), rest of the machine ${phase.otherCpuPercent}%`);

    const metrics = await (await fetch(`${admin}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const drops = droppedFromMetrics(metrics);
    const h = (await (await fetch(`${admin}/healthz`, { signal: AbortSignal.timeout(10_000) })).json()) as { eventsReceived: number; eventsDelivered: number; syncRequests: number };
    return {
      phase,
      setupSeconds: +setupSeconds.toFixed(2),
      drops,
      dropsTotal: Object.values(drops).reduce((a, b) => a + b, 0),
      serverEventsReceived: h.eventsReceived,
      serverEventsDelivered: h.eventsDelivered,
      serverSyncRequests: h.syncRequests,
    };
  } finally {
    await closeAll(conns.filter(Boolean));
    if (server) {
      await server.stop('SIGTERM');
      if (process.env.LATCHKEY_BENCH_SERVER_LOG) fs.writeFileSync(process.env.LATCHKEY_BENCH_SERVER_LOG, server.logs.join('\n') + '\n');
    }
    if (handle) children.delete(handle);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const machine = machineInfo();
  log(machineLine(machine));
  log(`settings: ${JSON.stringify(settings)}`);
  const keys = await endpointKeys(settings.pairs * 2, 'events');

  // The time bound starts once the keys are ready (their generation is a one-time cost, cached).
  const started = Date.now();
  const deadline = started + settings.maxSeconds * 1000;
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench/events: still running ${settings.maxSeconds + 30} s after start: killing the child processes and exiting\n`);
    killChildren();
    process.exit(2);
  }, (settings.maxSeconds + 30) * 1000);
  watchdog.unref();
  try {
    const aesBefore = aesGcmPerEventUs();
    log(`context: the server's two AES-GCM calls per event (open + seal, node:crypto, one thread) cost ${aesBefore.toFixed(2)} µs here`);
    const before = await echoFloor('floor (before)', deadline);
    const lk = await latchkeyEvents(keys, deadline);
    const after = await echoFloor('floor (after)', deadline);
    const aesAfter = aesGcmPerEventUs();
    const aes = Math.min(aesBefore, aesAfter);
    const ev = lk.phase;
    const floor = Math.min(before.serverCpuUsPerMessage, after.serverCpuUsPerMessage);
    const ratio = ev.serverCpuUsPerMessage / floor;
    const result = {
      bench: 'events',
      machine,
      settings,
      eventsPerSec: ev.perSec,
      serverCpuUsPerEvent: ev.serverCpuUsPerMessage,
      echoFloorUsPerMessage: floor,
      ratioToFloor: +ratio.toFixed(3),
      echoFloorUsPerMessageBefore: before.serverCpuUsPerMessage,
      echoFloorUsPerMessageAfter: after.serverCpuUsPerMessage,
      echoMessagesPerSecBefore: before.perSec,
      echoMessagesPerSecAfter: after.perSec,
      aesGcmUsPerEvent: +aes.toFixed(3),
      aesGcmUsPerEventBefore: +aesBefore.toFixed(3),
      aesGcmUsPerEventAfter: +aesAfter.toFixed(3),
      aesGcmShareOfServerCpu: +(aes / ev.serverCpuUsPerMessage).toFixed(3),
      serverCpuUsPerEventByThread: ev.serverCpuUsPerMessageByThread,
      serverCpuPercent: ev.serverCpuPercent,
      clientCpuUsPerEvent: ev.clientCpuUsPerMessage,
      eventsPerFrame: 1,
      frameBytes: { eventSent: ev.frameBytesSent, eventReceived: ev.frameBytesReceived, echo: before.frameBytesSent },
      drops: { total: lk.dropsTotal, byReason: lk.drops },
      server: { eventsReceived: lk.serverEventsReceived, eventsDelivered: lk.serverEventsDelivered, syncRequests: lk.serverSyncRequests },
      client: { eventsSent: ev.sent, eventsReceived: ev.received, undelivered: ev.undelivered, unexpectedFrames: ev.unexpectedFrames, checks: ev.checks },
      durations: {
        setupSeconds: lk.setupSeconds,
        warmupSeconds: settings.warmup,
        measuredSeconds: { events: ev.measuredSeconds, floorBefore: before.measuredSeconds, floorAfter: after.measuredSeconds },
        drainMs: { events: ev.drainMs, floorBefore: before.drainMs, floorAfter: after.drainMs },
        wallSeconds: +((Date.now() - started) / 1000).toFixed(2),
      },
      details: { events: ev, floorBefore: before, floorAfter: after },
    };
    const deliveredOk = ev.undelivered === 0 && lk.dropsTotal === 0 && lk.serverEventsDelivered === ev.received && lk.serverEventsReceived === ev.sent;
    const table = [
      '| metric | value |',
      '|---|---|',
      `| events/s relayed (${settings.pairs} owners x 2 endpoints, both directions, window ${settings.window}) | ${result.eventsPerSec} |`,
      `| server CPU per event | ${result.serverCpuUsPerEvent} µs (server at ${ev.serverCpuPercent}% CPU) |`,
      `| floor: uWS echo, server CPU per message | ${floor} µs (before ${before.serverCpuUsPerMessage} at ${before.perSec}/s, after ${after.serverCpuUsPerMessage} at ${after.perSec}/s) |`,
      `| **ratioToFloor** | **${result.ratioToFloor}** |`,
      `| context: the server's two AES-GCM calls per event alone (open + seal, node:crypto, one thread) | ${result.aesGcmUsPerEvent} µs (before ${result.aesGcmUsPerEventBefore}, after ${result.aesGcmUsPerEventAfter}) = ${(aes / floor).toFixed(1)} x the floor |`,
      `| server CPU by thread, µs/event | ${Object.entries(ev.serverCpuUsPerMessageByThread).map(([k, v]) => `${k} ${v}`).join(', ')} |`,
      `| client CPU per event (send + receive, same process for both) | ${ev.clientCpuUsPerMessage} µs (floor runs: ${before.clientCpuUsPerMessage} / ${after.clientCpuUsPerMessage}) |`,
      `| frame bytes: event sent / event delivered / echo | ${ev.frameBytesSent} / ${ev.frameBytesReceived} / ${before.frameBytesSent} |`,
      `| events sent / received by clients (server received / delivered) | ${ev.sent} / ${ev.received} (${lk.serverEventsReceived} / ${lk.serverEventsDelivered}) |`,
      `| dropped (latchkey_events_dropped_total) | ${lk.dropsTotal} |`,
      `| sampled events decrypted and checked | ${ev.checks.checked} (${ev.checks.failed} failed) |`,
      `| CPU used by the rest of the machine in the windows (noise): events / floor before / after | ${ev.otherCpuPercent}% / ${before.otherCpuPercent}% / ${after.otherCpuPercent}% (steal ${ev.stealPercent}% / ${before.stealPercent}% / ${after.stealPercent}%) |`,
    ].join('\n');

    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'events-latest.json'), JSON.stringify(result, null, 2) + '\n');
    const series = (r: PhaseResult): Array<[number, number]> => r.perSecond.map((p, i) => [i + 1, p.serverUsPerMessage]);
    fs.writeFileSync(
      path.join(RESULTS, 'events-latest.svg'),
      lineChart(`latchkey events: server CPU per message, each second (ratioToFloor ${result.ratioToFloor})`, 'seconds', 'server CPU µs per message', [
        { name: `latchkey event (${ev.perSec}/s)`, points: series(ev), color: '#1f77b4' },
        { name: `uWS echo, before (${before.perSec}/s)`, points: series(before), color: '#7f7f7f' },
        { name: `uWS echo, after (${after.perSec}/s)`, points: series(after), color: '#bcbd22' },
      ]),
    );
    process.stdout.write(`\n${machineLine(machine)}\n${table}\n\nwrote bench/results/events-latest.{json,svg}\n`);
    const noisy = Math.max(ev.otherCpuPercent, before.otherCpuPercent, after.otherCpuPercent, ev.stealPercent, before.stealPercent, after.stealPercent);
    if (noisy > 10) log(`WARNING: other work used up to ${noisy}% CPU during a measured window: this run is noisy, compare with another`);
    if (!deliveredOk) log(`WARNING: not every event was relayed cleanly: ${JSON.stringify({ drops: result.drops, server: result.server, client: result.client })}`);
  } finally {
    clearTimeout(watchdog);
    killChildren();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/events failed: ${(err as Error).stack ?? String(err)}\n`);
  killChildren();
  process.exit(1);
});
