/**
 * bench/handshake: sessions per second and server CPU per accepted session, for full handshakes
 * (CONNECT: RSA) and resumed ones (RESUME with a ticket: no RSA, docs/protocol.md 4.6), against
 * the bare RSA floor measured in the same run.
 *
 *   npm run bench:handshake [-- --sessions 5000 --concurrency 128 --warmup 200 --max-seconds 60]
 *
 * The default concurrency saturates the server on the 2-core reference machine: sessions/s is a
 * capacity figure, and a saturated server is where CPU per session matters.
 *
 * 1. Prints the machine line, then measures the floor: µs per RSA-OAEP-SHA256 private decrypt of a
 *    64-byte secret with node:crypto on one thread (the one operation a full handshake cannot
 *    avoid), and how busy the rest of the machine was meanwhile (/proc/stat, as bench/events).
 * 2. Every session is a distinct endpoint with its own RSA-2048 key (a session replaces an older
 *    session of the same key, so reused keys would measure takeovers): --sessions keys from the
 *    cached bulk pool (bench/lib/bulk-keys.ts, bench/.cache; ~180 µs a key), provisioned into the
 *    embedded store of a fresh data dir under an `internal` application (bench/lib/sessions-provision.ts).
 * 3. Starts `latchkey serve` (one process) as a child process on 127.0.0.1. Every frame is
 *    prepared outside the timed phases (the client's RSA and HMAC work is not measured).
 * 4. Phases, each at --concurrency, each session held open until the end of its phase (as endpoints'
 *    persistent sessions, think of a reconnect storm), all closed between phases (not timed):
 *    - first: every endpoint's first CONNECT (binds its PROVISIONED credentials: one store write
 *      each); reported as firstConnect*, and the full path's warm-up;
 *    - warm-up of the resumed path: --warmup sessions get a ticket and RESUME once (not measured);
 *    - full (timed): every endpoint connects again with a new CONNECT (its credentials bound: what a
 *      reconnect costs); ratioToFloor;
 *    - tickets: every held full session sends TICKETREQ and gets its TICKET (measured on its own:
 *      ticketCpuUsPerTicket), then all are closed;
 *    - resumed (timed): every endpoint opens its next session with RESUME from that ticket;
 *      resumedRatioToFloor.
 *    Progress once a second. Bounded by --max-seconds per phase; loopback only.
 * 5. Server CPU = user+system time of the server process and all its threads (/proc) over the timed
 *    phase, divided by accepted sessions. ratioToFloor = serverCpuUsPerSession / rsaDecryptFloorUs;
 *    resumedRatioToFloor = resumedCpuUsPerSession / rsaDecryptFloorUs (the same floor: what a
 *    resumed session costs in units of the RSA decrypt it avoids). The floor is measured before and
 *    after; the lower one counts. Every window records the CPU used by the rest of the machine
 *    (busy CPU minus the server and this process) and steal; above 10% of a core the run is flagged.
 *
 * Writes bench/results/handshake-latest.json, .md (table) and .svg (sessions/s per 100 ms, both phases).
 * LATCHKEY_BENCH_SERVER_NODE_ARGS passes node flags to the server (profiling: "--cpu-prof
 * --cpu-prof-dir=/tmp/x"; the JSON's phaseWindowsMonotonicUs bound each phase on the profile's
 * clock, for `node dist/bench/lib/cpu-profile.js`); LATCHKEY_BENCH_SERVER_LOG=FILE keeps the
 * server's output (e.g. with --trace-gc).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RSA_OAEP } from '../src/crypto/session-crypto.js';
import { ConnackCode } from '../src/errors.js';
import { decodeFrame, encodeTicketReq } from '../src/protocol/frames.js';
import { prepareConnect, prepareResume, type NodeEndpointKey } from '../test/helpers/wire-client.js';
import { startServerProcess } from '../test/helpers/process.js';
import { ROOT } from '../test/helpers/root.js';
import { arg } from './lib/args.js';
import { bulkKey, ensurePrimePool, primesForKeys } from './lib/bulk-keys.js';
import { lineChart } from './lib/chart.js';
import { machineDeltaUs, machineTicks, metricSum, parsePrometheus, type MachineTicks, type Scrape } from './lib/flood-stats.js';
import { LIMITS_OFF } from './lib/limits.js';
import { diffThreads, machineInfo, machineLine, percentile, processCpuUs, processRssBytes, threadCpuUs } from './lib/machine.js';
import { rawExchange } from './lib/raw-ws.js';
import { provision } from './lib/sessions-provision.js';

const RESULTS = path.join(ROOT, 'bench/results');
const APP_TOKEN = 'bench-app-token';
/** Above this much CPU (% of one core) used by the rest of the machine in a window, the run is flagged noisy. */
const NOISY_PERCENT = 10;

if (process.argv.includes('--endpoints')) {
  process.stderr.write('bench/handshake: --endpoints is gone: every session is its own endpoint with its own key (reused keys measure takeovers); use --sessions\n');
  process.exit(2);
}

/**
 * Sessions one server process can hold here: the open-file limit (20,000 per process) less
 * latchkey's connectionFdReserve (1,024) and a margin; more are refused at the upgrade.
 */
const MAX_SESSIONS = 18_000;

const settings = {
  sessions: arg('sessions', 5000),
  concurrency: arg('concurrency', 128),
  maxSeconds: arg('max-seconds', 60),
  warmup: arg('warmup', 200),
};

if (settings.sessions > MAX_SESSIONS) {
  process.stderr.write(`bench/handshake: --sessions ${settings.sessions} is more than one server process holds here (${MAX_SESSIONS}: 20,000 open files less connectionFdReserve); bench/sessions runs more\n`);
  process.exit(2);
}

/** Extra node flags for the server process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it under load. */
const serverNodeArgs = (process.env.LATCHKEY_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);

function log(msg: string): void {
  process.stdout.write(`[handshake] ${msg}\n`);
}

/** The monotonic clock V8's CPU profiles use (CLOCK_MONOTONIC), in µs. */
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

// --- machine noise ---

interface Noise {
  /** Busy CPU of the whole machine that was neither the server nor this process, % of one core. */
  otherCpuPercent: number;
  stealPercent: number;
}

interface NoiseMark {
  at: number;
  machine: MachineTicks;
  server: number;
  self: number;
}

function noiseMark(pid: number | null): NoiseMark {
  const c = process.cpuUsage();
  let server = 0;
  try {
    if (pid) server = processCpuUs(pid);
  } catch {
    // gone
  }
  return { at: performance.now(), machine: machineTicks(), server, self: c.user + c.system };
}

function noiseSince(a: NoiseMark, pid: number | null): Noise {
  const b = noiseMark(pid);
  const s = Math.max(0.001, (b.at - a.at) / 1000);
  const m = machineDeltaUs(a.machine, b.machine);
  const other = Math.max(0, m.busyUs - (b.server - a.server) - (b.self - a.self));
  return { otherCpuPercent: +((other / 1e6 / s) * 100).toFixed(1), stealPercent: +((m.stealUs / 1e6 / s) * 100).toFixed(1) };
}

/**
 * Median CPU µs of bare RSA-OAEP-SHA256 private decrypts, in batches, on this (otherwise idle)
 * thread, and how busy the rest of the machine was meanwhile. CPU time, not wall time, to compare
 * like with like: the server side is measured in CPU time too, and on a shared VM wall time also
 * counts time stolen by neighbours.
 */
function rsaDecryptFloor(serverPid: number | null): { us: number; noise: Noise } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ct = crypto.publicEncrypt({ key: publicKey, ...RSA_OAEP }, crypto.randomBytes(64));
  for (let i = 0; i < 50; i++) crypto.privateDecrypt({ key: privateKey, ...RSA_OAEP }, ct);
  const n0 = noiseMark(serverPid);
  const batches: number[] = [];
  for (let b = 0; b < 7; b++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < 60; i++) crypto.privateDecrypt({ key: privateKey, ...RSA_OAEP }, ct);
    const c = process.cpuUsage(c0);
    batches.push((c.user + c.system) / 60);
  }
  const noise = noiseSince(n0, serverPid);
  batches.sort((a, b) => a - b);
  return { us: batches[3]!, noise };
}

// --- sessions ---

interface Held {
  close: () => Promise<void>;
  send: (payload: Uint8Array) => boolean;
  /** Set while waiting for a later message of this session (TICKET). */
  onMessage: ((payload: Buffer) => void) | null;
}

interface Outcome {
  ok: boolean;
  ms: number;
  code: string;
  /** The CONNACK's confirmation matched the one the client derived. */
  confirmed: boolean;
  held: Held | null;
}

/** One session: upgrade, CONNECT or RESUME, CONNACK; it stays open (an endpoint's persistent session). */
async function oneSession(port: number, frame: Buffer, confirmation: Buffer, opened: Held[]): Promise<Outcome> {
  const held: Held = { close: async () => undefined, send: () => false, onMessage: null };
  const r = await rawExchange(port, '/ep/v1', frame, 15_000, true, {
    onFrame: (opcode, payload) => {
      if (opcode === 0x2) held.onMessage?.(payload);
    },
  });
  held.close = r.close;
  held.send = r.send;
  opened.push(held);
  if (!r.message) return { ok: false, ms: r.ms, code: r.error ?? 'closed', confirmed: false, held: null };
  const f = decodeFrame(r.message);
  if (f.ok && f.value.type === 'CONNACK') {
    const ack = f.value.connack;
    const ok = ack.returnCode === ConnackCode.ACCEPTED;
    const confirmed = ok && !!ack.confirmation && Buffer.from(ack.confirmation).equals(confirmation);
    return { ok, ms: r.ms, code: ok ? 'ACCEPTED' : (ack.errorCode ?? String(ack.returnCode)), confirmed, held: ok ? held : null };
  }
  return { ok: false, ms: r.ms, code: f.ok ? f.value.type : f.code, confirmed: false, held: null };
}

/** TICKETREQ on a held session; the ticket, or null (no answer within 5 s, or an empty ticket). */
function fetchTicket(h: Held): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      h.onMessage = null;
      resolve(null);
    }, 5000);
    h.onMessage = (payload) => {
      const f = decodeFrame(payload);
      if (!f.ok || f.value.type !== 'TICKET') return; // not the answer (nothing else is expected)
      clearTimeout(timer);
      h.onMessage = null;
      resolve(f.value.ticket.ticket.length ? Buffer.from(f.value.ticket.ticket) : null);
    };
    if (!h.send(encodeTicketReq())) {
      clearTimeout(timer);
      h.onMessage = null;
      resolve(null);
    }
  });
}

interface Prepared {
  frame: Buffer;
  confirmation: Buffer;
  resumption: Buffer;
}

interface PhaseResult {
  name: string;
  attempted: number;
  accepted: number;
  confirmationsBad: number;
  wallSeconds: number;
  sessionsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUs: number;
  serverCpuUsPerSession: number;
  serverCpuUsPerSessionByThread: Record<string, number>;
  serverRssBytesPerOpenSession: number;
  outcomes: Record<string, number>;
  noise: Noise;
  perSecond: number[];
  /** Accepted sessions per second in each 100 ms of the phase (the chart: a resumed phase lasts under a second). */
  per100ms: number[];
  /** The phase's window on CLOCK_MONOTONIC, µs (V8 CPU profiles' clock). */
  monotonicUs: [number, number];
  /** Held sessions by index into the phase's frames (null: not accepted). */
  held: Array<Held | null>;
}

async function closeAll(opened: Held[]): Promise<void> {
  const all = opened.splice(0);
  for (let i = 0; i < all.length; i += 256) await Promise.all(all.slice(i, i + 256).map((h) => h.close()));
}

/** Open one session per frame at --concurrency, each held open; measure the server over the whole phase. */
async function phase(name: string, port: number, pid: number, frames: Prepared[], opened: Held[]): Promise<PhaseResult> {
  const latencies: number[] = [];
  const codes = new Map<string, number>();
  const perSecond: number[] = [];
  const per100ms: number[] = [];
  const held: Array<Held | null> = new Array<Held | null>(frames.length).fill(null);
  let done = 0;
  let lastDone = 0;
  let accepted100 = 0;
  let last100 = 0;
  let confirmationsBad = 0;
  const n0 = noiseMark(pid);
  const rss0 = processRssBytes(pid);
  const cpu0 = processCpuUs(pid);
  const threads0 = threadCpuUs(pid);
  const mono0 = monoUs();
  const t0 = performance.now();
  const deadline = Date.now() + settings.maxSeconds * 1000;
  const progress = setInterval(() => {
    perSecond.push(done - lastDone);
    lastDone = done;
    log(`${name}: ${done}/${frames.length} sessions, ${perSecond[perSecond.length - 1]}/s`);
  }, 1000);
  const chart = setInterval(() => {
    per100ms.push((accepted100 - last100) * 10);
    last100 = accepted100;
  }, 100);
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < frames.length && Date.now() < deadline) {
      const i = next++;
      const o = await oneSession(port, frames[i]!.frame, frames[i]!.confirmation, opened);
      done++;
      codes.set(o.code, (codes.get(o.code) ?? 0) + 1);
      if (o.ok) {
        accepted100++;
        latencies.push(o.ms);
        held[i] = o.held;
        if (!o.confirmed) confirmationsBad++;
      }
    }
  };
  await Promise.all(Array.from({ length: settings.concurrency }, loop));
  const wallS = (performance.now() - t0) / 1000;
  clearInterval(progress);
  clearInterval(chart);
  if (done > lastDone) perSecond.push(done - lastDone);
  // Let the server finish the last handshakes' bookkeeping before reading its CPU time; the
  // sessions are still open and idle, and closing them is not part of the measured work.
  await new Promise((r) => setTimeout(r, 200));
  const cpuUs = processCpuUs(pid) - cpu0;
  const threadUs = diffThreads(threads0, threadCpuUs(pid));
  const mono1 = monoUs();
  const noise = noiseSince(n0, pid);
  const accepted = latencies.length;
  const rssPerSession = (processRssBytes(pid) - rss0) / Math.max(1, opened.length);
  latencies.sort((a, b) => a - b);
  const per = (us: number): number => +(us / Math.max(1, accepted)).toFixed(1);
  return {
    name,
    attempted: done,
    accepted,
    confirmationsBad,
    wallSeconds: +wallS.toFixed(2),
    sessionsPerSec: Math.round(accepted / wallS),
    p50Ms: +percentile(latencies, 50).toFixed(2),
    p99Ms: +percentile(latencies, 99).toFixed(2),
    serverCpuUs: Math.round(cpuUs),
    serverCpuUsPerSession: per(cpuUs),
    serverCpuUsPerSessionByThread: Object.fromEntries(Object.entries(threadUs).filter(([, v]) => v > 0).map(([k, v]) => [k, per(v)])),
    serverRssBytesPerOpenSession: Math.round(rssPerSession),
    outcomes: Object.fromEntries(codes),
    noise,
    perSecond,
    per100ms,
    monotonicUs: [mono0, mono1],
    held,
  };
}

async function scrape(adminPort: number): Promise<Scrape> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(10_000) });
  return parsePrometheus(await r.text());
}

/** RSA operations and handshakes by result between two scrapes. */
function counts(a: Scrape, b: Scrape): { rsaDecrypts: number | null; rsaVerifies: number | null; handshakesAccepted: number | null; handshakesResumed: number | null; ticketsIssued: number | null } {
  const d = (name: string, filter: Record<string, string> = {}): number | null => {
    const x = metricSum(b, name, filter);
    const y = metricSum(a, name, filter);
    return x === null || y === null ? null : x - y;
  };
  return {
    rsaDecrypts: d('latchkey_rsa_operations_total', { op: 'decrypt' }),
    rsaVerifies: d('latchkey_rsa_operations_total', { op: 'verify' }),
    handshakesAccepted: d('latchkey_handshakes_total', { result: 'accepted' }),
    handshakesResumed: d('latchkey_handshakes_total', { result: 'resumed' }),
    ticketsIssued: d('latchkey_tickets_issued_total'),
  };
}

const noiseText = (n: Noise): string => `${n.otherCpuPercent}% of a core (steal ${n.stealPercent}%)`;

async function main(): Promise<void> {
  const machine = machineInfo();
  log(machineLine(machine));
  log(`settings: ${JSON.stringify(settings)}`);
  const floorBefore = rsaDecryptFloor(null);
  log(`floor: RSA-OAEP-SHA256 private decrypt ${floorBefore.us.toFixed(1)} µs (node:crypto, one thread); rest of the machine meanwhile ${noiseText(floorBefore.noise)}`);

  const n = settings.sessions;
  const tKeys = performance.now();
  const pool = await ensurePrimePool(primesForKeys(n), 'handshake');
  const keys: NodeEndpointKey[] = [];
  for (let i = 0; i < n; i++) keys.push(bulkKey(pool, i));
  log(`${n} distinct endpoint keys derived in ${((performance.now() - tKeys) / 1000).toFixed(1)} s (bulk pool, bench/.cache)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-'));
  const dataDir = path.join(dir, 'data');
  await provision(dataDir, pool, n, APP_TOKEN, log);
  const server = await startServerProcess({ ...LIMITS_OFF, LATCHKEY_DATA_DIR: dataDir, LATCHKEY_LOG_LEVEL: 'warn' }, 60_000, serverNodeArgs);
  const pid = server.child.pid!;
  const opened: Held[] = [];
  try {
    const ring = JSON.parse(fs.readFileSync(path.join(dataDir, 'keys/keyring.json'), 'utf8')) as { keys: Array<{ id: string; status: string }> };
    const keyId = ring.keys.find((k) => k.status === 'active')!.id;
    const serverPub = crypto.createPublicKey(fs.readFileSync(path.join(dataDir, `keys/${keyId}.pub.pem`)));
    const connects = (): Prepared[] => keys.map((key) => prepareConnect({ appToken: APP_TOKEN, serverKeyId: keyId, serverPublicKey: serverPub, key, body: { publicKey: null } }));
    const resumes = (tickets: Array<{ ticket: Buffer; resumption: Buffer } | null>): Prepared[] =>
      tickets.flatMap((t, i) => (t ? [prepareResume({ appToken: APP_TOKEN, keyHashRaw: keys[i]!.keyHashRaw, ticket: t.ticket, resumption: t.resumption })] : []));
    const ticketsOf = async (frames: Prepared[], held: Array<Held | null>, count: number): Promise<Array<{ ticket: Buffer; resumption: Buffer } | null>> => {
      const out: Array<{ ticket: Buffer; resumption: Buffer } | null> = new Array(count).fill(null);
      let next = 0;
      const loop = async (): Promise<void> => {
        while (next < count) {
          const i = next++;
          const h = held[i];
          const t = h ? await fetchTicket(h) : null;
          if (t) out[i] = { ticket: t, resumption: frames[i]!.resumption };
        }
      };
      await Promise.all(Array.from({ length: settings.concurrency }, loop));
      return out;
    };

    // first connects: every endpoint binds its provisioned credentials (and warms the full path)
    let t = performance.now();
    const firstFrames = connects();
    log(`prepared ${n} signed CONNECTs in ${((performance.now() - t) / 1000).toFixed(1)} s (not timed)`);
    const m0 = await scrape(server.adminPort);
    const first = await phase('first connects', server.port, pid, firstFrames, opened);
    const warm = Math.min(settings.warmup, n);
    const warmTickets = await ticketsOf(firstFrames, first.held, warm);
    log(`first connects: ${first.accepted}/${n} accepted, ${first.serverCpuUsPerSession} µs of server CPU each; closing them (not timed)`);
    await closeAll(opened);
    // warm-up of the resumed path (JIT, caches): not measured
    const warmFrames = resumes(warmTickets);
    log(`warm-up: ${warmFrames.length} resumed sessions`);
    await phase('warm-up (resumed)', server.port, pid, warmFrames, opened);
    await closeAll(opened);
    await new Promise((r) => setTimeout(r, 300));

    // full: every endpoint connects again (credentials bound)
    t = performance.now();
    const fullFrames = connects();
    log(`prepared ${n} signed CONNECTs in ${((performance.now() - t) / 1000).toFixed(1)} s (not timed)`);
    const m1 = await scrape(server.adminPort);
    const full = await phase('full', server.port, pid, fullFrames, opened);
    const m2 = await scrape(server.adminPort);

    // tickets: TICKETREQ on every held full session, measured on its own
    const tk0 = noiseMark(pid);
    const tkCpu0 = processCpuUs(pid);
    const tkT0 = performance.now();
    const tickets = await ticketsOf(fullFrames, full.held, n);
    const tkWall = (performance.now() - tkT0) / 1000;
    await new Promise((r) => setTimeout(r, 100));
    const tkCpu = processCpuUs(pid) - tkCpu0;
    const tkNoise = noiseSince(tk0, pid);
    const got = tickets.filter(Boolean).length;
    log(`tickets: ${got}/${full.accepted} held sessions got one in ${tkWall.toFixed(2)} s, ${(tkCpu / Math.max(1, got)).toFixed(1)} µs of server CPU each; closing the sessions (not timed)`);
    await closeAll(opened);
    await new Promise((r) => setTimeout(r, 300));

    // resumed: every endpoint opens its next session from its ticket
    t = performance.now();
    const resumedFrames = resumes(tickets);
    log(`prepared ${resumedFrames.length} RESUMEs in ${((performance.now() - t) / 1000).toFixed(2)} s (not timed)`);
    const m3 = await scrape(server.adminPort);
    const resumed = await phase('resumed', server.port, pid, resumedFrames, opened);
    const m4 = await scrape(server.adminPort);
    log(`closing ${opened.length} open sessions (not timed)`);
    await closeAll(opened);
    const health = (await (await fetch(`http://127.0.0.1:${server.adminPort}/healthz`)).json()) as { cryptoHandshakes: number; cryptoBatches: number };
    const floorAfter = rsaDecryptFloor(pid);
    log(`floor again: ${floorAfter.us.toFixed(1)} µs; rest of the machine meanwhile ${noiseText(floorAfter.noise)}`);

    const floor = Math.min(floorBefore.us, floorAfter.us);
    const ratio = (us: number): number => +(us / floor).toFixed(3);
    const noise = { floorBefore: floorBefore.noise, floorAfter: floorAfter.noise, firstConnects: first.noise, full: full.noise, tickets: tkNoise, resumed: resumed.noise };
    const noisiest = Math.max(...Object.values(noise).flatMap((x) => [x.otherCpuPercent, x.stealPercent]));
    const strip = ({ held: _held, ...p }: PhaseResult): Omit<PhaseResult, 'held'> => p;
    const result = {
      bench: 'handshake',
      machine,
      settings: { ...settings, endpoints: n },
      sessionsHeld: 'each phase holds its sessions open until its end; closed between phases, not timed (the same for full and resumed)',
      sessionsPerSec: full.sessionsPerSec,
      p50Ms: full.p50Ms,
      p99Ms: full.p99Ms,
      serverCpuUsPerSession: full.serverCpuUsPerSession,
      rsaDecryptFloorUs: +floor.toFixed(1),
      rsaDecryptFloorUsBefore: +floorBefore.us.toFixed(1),
      rsaDecryptFloorUsAfter: +floorAfter.us.toFixed(1),
      ratioToFloor: ratio(full.serverCpuUsPerSession),
      resumedSessionsPerSec: resumed.sessionsPerSec,
      resumedP50Ms: resumed.p50Ms,
      resumedP99Ms: resumed.p99Ms,
      resumedCpuUsPerSession: resumed.serverCpuUsPerSession,
      resumedRatioToFloor: ratio(resumed.serverCpuUsPerSession),
      firstConnectCpuUsPerSession: first.serverCpuUsPerSession,
      firstConnectRatioToFloor: ratio(first.serverCpuUsPerSession),
      ticketCpuUsPerTicket: +(tkCpu / Math.max(1, got)).toFixed(1),
      targets: {
        ratioToFloor: { target: '<= 1.3 (quiet machine)', met: full.serverCpuUsPerSession / floor <= 1.3 },
        resumedRatioToFloor: { target: '<= 0.25 (quiet machine)', met: resumed.serverCpuUsPerSession / floor <= 0.25 },
      },
      machineBusy: noise,
      noisy: noisiest > NOISY_PERCENT,
      accepted: full.accepted,
      resumedAccepted: resumed.accepted,
      ticketsReceived: got,
      serverCounters: { firstConnects: counts(m0, m1), full: counts(m1, m2), resumed: counts(m3, m4) },
      handshakesPerWorkerTask: +(health.cryptoHandshakes / Math.max(1, health.cryptoBatches)).toFixed(2),
      phases: { firstConnects: strip(first), full: strip(full), resumed: strip(resumed) },
      phaseWindowsMonotonicUs: { firstConnects: first.monotonicUs, full: full.monotonicUs, resumed: resumed.monotonicUs },
    };
    const threads = (p: PhaseResult): string => Object.entries(p.serverCpuUsPerSessionByThread).map(([k, v]) => `${k} ${v}`).join(', ');
    const c = result.serverCounters;
    const table = [
      '| metric | full (CONNECT) | resumed (RESUME) |',
      '|---|---|---|',
      `| sessions/s | ${full.sessionsPerSec} | ${resumed.sessionsPerSec} |`,
      `| handshake latency p50 / p99 | ${full.p50Ms} / ${full.p99Ms} ms | ${resumed.p50Ms} / ${resumed.p99Ms} ms |`,
      `| server CPU per accepted session | ${full.serverCpuUsPerSession} µs | ${resumed.serverCpuUsPerSession} µs |`,
      `| **ratio to the RSA floor** (target full <= 1.3, resumed <= 0.25) | **${result.ratioToFloor}** (${result.targets.ratioToFloor.met ? 'met' : 'NOT met'}) | **${result.resumedRatioToFloor}** (${result.targets.resumedRatioToFloor.met ? 'met' : 'NOT met'}) |`,
      `| server CPU by thread, µs/session (main = event loop; the largest others are the crypto workers) | ${threads(full)} | ${threads(resumed)} |`,
      `| RSA decrypts / verifies on the server in the phase | ${c.full.rsaDecrypts} / ${c.full.rsaVerifies} | ${c.resumed.rsaDecrypts} / ${c.resumed.rsaVerifies} |`,
      `| accepted / attempted (confirmation mismatches) | ${full.accepted} / ${full.attempted} (${full.confirmationsBad}) | ${resumed.accepted} / ${resumed.attempted} (${resumed.confirmationsBad}) |`,
      `| server RSS growth per open session (approx.: includes heap not yet collected) | ${(full.serverRssBytesPerOpenSession / 1024).toFixed(1)} KiB | ${(resumed.serverRssBytesPerOpenSession / 1024).toFixed(1)} KiB |`,
      `| rest of the machine during the phase | ${noiseText(full.noise)} | ${noiseText(resumed.noise)} |`,
      '',
      '| other figures | value |',
      '|---|---|',
      `| floor: RSA-OAEP-SHA256 decrypt, one thread | ${result.rsaDecryptFloorUs} µs (before ${result.rsaDecryptFloorUsBefore}, after ${result.rsaDecryptFloorUsAfter}); rest of the machine meanwhile ${noiseText(floorBefore.noise)} / ${noiseText(floorAfter.noise)} |`,
      `| first connects (credentials bound: one store write each): server CPU per session, ratio | ${first.serverCpuUsPerSession} µs, ${result.firstConnectRatioToFloor} (${first.sessionsPerSec}/s; rest of the machine ${noiseText(first.noise)}) |`,
      `| TICKETREQ -> TICKET on a held session: server CPU per ticket | ${result.ticketCpuUsPerTicket} µs (${got} tickets in ${tkWall.toFixed(2)} s) |`,
      `| handshakes per worker task (batching) | ${result.handshakesPerWorkerTask} |`,
      `| sessions, concurrency | ${n} distinct endpoints (own keys), ${settings.concurrency} in flight; each phase holds its sessions open until its end, closed between phases (not timed) |`,
    ].join('\n');
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'handshake-latest.json'), JSON.stringify(result, null, 2) + '\n');
    fs.writeFileSync(path.join(RESULTS, 'handshake-latest.md'), `# bench/handshake\n\n${machineLine(machine)}\n\n${table}\n`);
    fs.writeFileSync(
      path.join(RESULTS, 'handshake-latest.svg'),
      lineChart(`latchkey handshakes/s (ratioToFloor ${result.ratioToFloor}, resumed ${result.resumedRatioToFloor})`, 'seconds into the phase', 'sessions/s (per 100 ms)', [
        { name: 'full (CONNECT) sessions/s', points: full.per100ms.map((v, i) => [+((i + 1) / 10).toFixed(1), v]), color: '#1f77b4' },
        { name: 'resumed (RESUME) sessions/s', points: resumed.per100ms.map((v, i) => [+((i + 1) / 10).toFixed(1), v]), color: '#2ca02c' },
      ]),
    );
    process.stdout.write(`\n${machineLine(machine)}\n${table}\n\nwrote bench/results/handshake-latest.{json,md,svg}\n`);
    for (const p of [first, full, resumed]) {
      if (p.accepted < p.attempted) log(`WARNING: ${p.name}: ${p.attempted - p.accepted} sessions were not accepted: ${JSON.stringify(p.outcomes)}`);
      if (p.confirmationsBad) log(`WARNING: ${p.name}: ${p.confirmationsBad} CONNACK confirmations did not match`);
      if (p.attempted < (p === resumed ? resumedFrames.length : n)) log(`WARNING: ${p.name}: stopped by --max-seconds after ${p.attempted} sessions`);
    }
    if (got < full.accepted) log(`WARNING: ${full.accepted - got} held sessions got no ticket`);
    if (result.noisy) log(`WARNING: the rest of the machine used up to ${noisiest}% of a core in a window (above ${NOISY_PERCENT}%): a noisy run, see machineBusy`);
  } finally {
    await closeAll(opened).catch(() => undefined);
    await server.stop('SIGTERM');
    if (process.env.LATCHKEY_BENCH_SERVER_LOG) fs.writeFileSync(process.env.LATCHKEY_BENCH_SERVER_LOG, server.logs.join('\n') + '\n');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/handshake failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
