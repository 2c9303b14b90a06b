/**
 * bench/flood: do legit endpoints keep their latency while junk handshakes flood the server, and
 * what does each junk attempt cost it? Against a plain uWS server measured in the same run.
 *
 *   npm run bench:flood [-- --endpoints 1000 --junk-rate 10000|max --generators 2 --inflight 512
 *                          --baseline 10 --flood 15 --recovery 5 --floor 10 --probe 20 --quiet-wait 60
 *                          --server-env LATCHKEY_X=Y ...]        (about 2 minutes with cached keys)
 *
 * 1. Prints the machine line and the settings; loads (or generates and caches, bench/lib/keys.ts)
 *    the endpoint keys: `--endpoints` legit ones plus 12 for the junk.
 * 2. Starts `latchkey serve` as a child process on 127.0.0.1 with its DEFAULT protection settings
 *    (fresh data dir, embedded store, seed file; `--server-env K=V` overrides for experiments): an
 *    `internal` application with the legit keys and a few junk keys provisioned, and a `trustful`
 *    application. Reads the root API key from its stderr; revokes one provisioned key and, when the
 *    server has a ban API (POST /admin/v1/bans), bans another by key hash.
 * 3. Builds every junk CONNECT (bench/lib/flood-frames.ts: bad signature, replay of a captured
 *    accepted CONNECT, unknown app token, unknown credentials, stale timestamp, revoked, banned,
 *    trustful) for both flood phases before anything is timed, and hands them to `--generators`
 *    child processes (bench/lib/flood-generator.ts: raw TCP, minimal WebSocket, RST after the
 *    first answer).
 * 4. Connects the legit endpoints from 127.0.0.1 (CONNECT signed with node:crypto, CONNACK
 *    ACCEPTED and its confirmation checked) and keeps them: each sends a PINGREQ every
 *    `--ping-interval` ms, staggered, and the bench records every round trip
 *    (bench/lib/flood-legit.ts). Legit endpoints do not handshake after this, so every RSA
 *    operation the server counts in a flood phase is junk's.
 * 5. Waits (at most --quiet-wait s) for the rest of the machine to go quiet, then runs the phases,
 *    the legit pings going on throughout: baseline; flood from 1 address (127.0.0.2) at
 *    `--junk-rate`; recovery; flood from 50 addresses (127.0.0.3 .. 127.0.0.52); recovery. Before
 *    and after each: GET /metrics (RSA operations, handshakes by result, refused connections by
 *    code, bans, crypto handshakes), the ban list, and CPU from /proc of the server (per thread),
 *    the generators, this process and the whole machine. Two thirds into each flood, `--probe`
 *    legit endpoints (a different set each time) close their sessions and reconnect from the
 *    legit address: the forged CONNECTs name the legit endpoints' key hashes too, so this shows
 *    whether the junk got real endpoints refused (their accepted handshakes are taken off the
 *    phase's RSA counts).
 * 6. The floor: a plain uWS echo server (bench/lib/echo-server.ts) as a child process, the same
 *    number of legit connections pinging it the same way (no handshake: it has none), a baseline,
 *    then the same junk at the same rate from 50 addresses: the floor's cost per
 *    accepted-and-closed junk connection (upgrade, CONNECT echoed, reset) and its legit latency
 *    under that flood.
 *
 * Progress once a second. Loopback only (127.0.0.0/8 is all on lo; the generators refuse any other
 * source address). Bounded: fixed phase lengths, per-attempt timeout, in-flight cap per generator,
 * a ping budget, --max-seconds and a watchdog that kills the children and exits.
 * Writes bench/results/flood-latest.json, .md and .svg (legit p50/p99 per second, phases marked).
 * LATCHKEY_BENCH_SERVER_NODE_ARGS passes node flags to the server (e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof"); LATCHKEY_BENCH_SERVER_LOG=FILE keeps its output.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConnackCode } from '../src/errors.js';
import { decodeFrame } from '../src/protocol/frames.js';
import { prepareConnect, type NodeEndpointKey, type PreparedConnect } from '../test/helpers/wire-client.js';
import { startServerProcess, type ServerProcess } from '../test/helpers/process.js';
import { ROOT } from '../test/helpers/root.js';
import { arg, intArg } from './lib/args.js';
import { startEchoProcess, type EchoProcess } from './lib/echo.js';
import { phaseChart, type Band } from './lib/flood-chart.js';
import { buildJunkKinds, type JunkSources } from './lib/flood-frames.js';
import { JunkGenerators, type JunkKindFrames, type JunkPhaseResult, type JunkPhaseSpec } from './lib/flood-junk.js';
import { LegitConn, LegitFleet } from './lib/flood-legit.js';
import { machineDeltaUs, machineTicks, metricBy, metricDelta, metricDeltaBy, metricSum, parsePrometheus, type MachineTicks, type Scrape } from './lib/flood-stats.js';
import { endpointKeys } from './lib/keys.js';
import { diffThreads, machineInfo, machineLine, percentile, processCpuUs, threadCpuUs } from './lib/machine.js';
import { sleep, pool, children, killChildren, stopChildrenOnSignal, waitForToken } from './lib/run.js';

const RESULTS = path.join(ROOT, 'bench/results');
const INTERNAL_APP = 'internal';
const INTERNAL_TOKEN = 'flood-internal-token';
const TRUSTFUL_APP = 'open';
const TRUSTFUL_TOKEN = 'flood-trustful-token';
const LEGIT_ADDRESS = '127.0.0.1';
const ONE_ADDRESS = ['127.0.0.2'];
const FIFTY_ADDRESSES = Array.from({ length: 50 }, (_, i) => `127.0.0.${i + 3}`);
/** Keys beyond the legit ones: replay victim, revoked, banned, 4 provisioned for forgeries and stale, 1 unknown, 4 trustful. */
const EXTRA_KEYS = 12;

function strArg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? String(process.argv[i + 1]) : def;
}

/** Every `--server-env K=V` (repeatable): environment overrides for the latchkey server. */
function serverEnvArgs(): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < process.argv.length; i++) {
    if (process.argv[i] !== '--server-env') continue;
    const kv = process.argv[i + 1] ?? '';
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`--server-env wants K=V, got "${kv}"`);
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

const junkRateArg = strArg('junk-rate', '10000');
const settings = {
  endpoints: intArg('endpoints', 1000, 15_000),
  /** Junk attempts per second, all generators together; 0 = "max": as fast as the generators get. */
  junkRate: junkRateArg === 'max' ? 0 : intArg('junk-rate', 10_000, 1_000_000),
  generators: intArg('generators', 2, 16),
  /** Open junk attempts per generator at most. */
  inflight: intArg('inflight', 512, 10_000),
  attemptTimeoutMs: intArg('attempt-timeout-ms', 3000, 60_000),
  pingIntervalMs: intArg('ping-interval', 1000, 60_000),
  baselineSeconds: intArg('baseline', 10, 600),
  floodSeconds: intArg('flood', 15, 600),
  recoverySeconds: intArg('recovery', 5, 600),
  floorSeconds: intArg('floor', 10, 600),
  /** Signed junk frames per kind and flood phase. */
  framesPerKind: intArg('frames-per-kind', 128, 10_000),
  /** Legit endpoints that reconnect two thirds into each flood phase (a different set per phase). */
  probe: intArg('probe', 20, 1000),
  /** Seconds to wait at most, before the latchkey run and before the floor, for the rest of the machine to go quiet. */
  quietWait: intArg('quiet-wait', 60, 600),
  maxSeconds: arg('max-seconds', 240),
  /**
   * --pin: the server under test (and this process, which runs the legit endpoints) on CPU 0, the
   * junk generators on CPU 1 (taskset). Without it the generators' ~1 core of loopback TCP work
   * competes with the server and the legit client for both cores, which is what a 2-core box with
   * the attacker on it measures, not what a server under a remote flood sees. Floor pinned alike.
   */
  pin: process.argv.includes('--pin'),
  serverEnv: serverEnvArgs(),
};

/** With --pin: the server and this process on CPU 0, the generators on CPU 1 (every thread). */
function pinProcesses(serverPid: number, generatorPids: number[]): void {
  if (!settings.pin) return;
  const set = (cpu: number, pid: number): void => {
    const r = spawnSync('taskset', ['-apc', String(cpu), String(pid)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`taskset -apc ${cpu} ${pid} failed: ${r.stderr || r.error?.message}`);
  };
  set(0, process.pid);
  set(0, serverPid);
  for (const g of generatorPids) set(1, g);
  log(`pinned: server ${serverPid} and bench ${process.pid} on CPU 0, generators ${generatorPids.join(', ')} on CPU 1`);
}

const serverNodeArgs = (process.env.LATCHKEY_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);

function log(msg: string): void {
  process.stdout.write(`[flood] ${msg}\n`);
}



stopChildrenOnSignal('bench/flood');

// --- admin listener ---

interface Admin {
  url: string;
  token: string;
}


async function adminCall(a: Admin, method: string, p: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${a.url}${p}`, {
    method,
    headers: { authorization: `Bearer ${a.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : null,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: r.status, body: parsed };
}

async function scrape(a: Admin): Promise<Scrape> {
  const r = await fetch(`${a.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  return parsePrometheus(await r.text());
}

/** The ban list (GET /admin/v1/bans) if the server has one: count by kind, or null with why not. */
async function bans(a: Admin): Promise<{ total: number; byKind: Record<string, number>; ipValues: string[] } | { unavailable: string }> {
  try {
    const r = await adminCall(a, 'GET', '/admin/v1/bans');
    if (r.status !== 200) return { unavailable: `GET /admin/v1/bans: HTTP ${r.status}` };
    const b = r.body as unknown;
    const list = (Array.isArray(b) ? b : ((b as { bans?: unknown[]; items?: unknown[] }).bans ?? (b as { items?: unknown[] }).items ?? [])) as Array<{ kind?: string; value?: string }>;
    const byKind: Record<string, number> = {};
    for (const x of list) byKind[x.kind ?? '?'] = (byKind[x.kind ?? '?'] ?? 0) + 1;
    return { total: list.length, byKind, ipValues: list.filter((x) => x.kind === 'ip').map((x) => String(x.value)) };
  } catch (err) {
    return { unavailable: `GET /admin/v1/bans: ${(err as Error).message}` };
  }
}

// --- measurement windows ---

interface CpuMark {
  server: number;
  threads: Map<string, number>;
  gens: number;
  self: NodeJS.CpuUsage;
  machine: MachineTicks;
  at: number;
}

function cpuMark(serverPid: number, gens: JunkGenerators): CpuMark {
  return {
    server: processCpuUs(serverPid),
    threads: threadCpuUs(serverPid),
    gens: gens.pids.reduce((n, p) => n + processCpuUs(p), 0),
    self: process.cpuUsage(),
    machine: machineTicks(),
    at: performance.now(),
  };
}

interface CpuWindow {
  seconds: number;
  serverUs: number;
  serverPercent: number;
  serverByThreadUs: Record<string, number>;
  generatorsUs: number;
  generatorsPercent: number;
  benchUs: number;
  benchPercent: number;
  machineBusyPercent: number;
  softirqPercent: number;
  /** busy CPU of the machine outside the server, the generators and this process (other tenants of the VM, softirq) */
  otherPercent: number;
  stealPercent: number;
}

function cpuWindow(a: CpuMark, b: CpuMark): CpuWindow {
  const s = (b.at - a.at) / 1000;
  const m = machineDeltaUs(a.machine, b.machine);
  const selfUs = b.self.user + b.self.system - a.self.user - a.self.system;
  const serverUs = b.server - a.server;
  const gensUs = b.gens - a.gens;
  const pct = (us: number): number => +((us / 1e6 / s) * 100).toFixed(1);
  const threads = diffThreads(a.threads, b.threads);
  return {
    seconds: +s.toFixed(3),
    serverUs,
    serverPercent: pct(serverUs),
    serverByThreadUs: Object.fromEntries(Object.entries(threads).filter(([, v]) => v > 0).sort((x, y) => y[1] - x[1])),
    generatorsUs: gensUs,
    generatorsPercent: pct(gensUs),
    benchUs: selfUs,
    benchPercent: pct(selfUs),
    machineBusyPercent: pct(m.busyUs),
    softirqPercent: pct(m.softirqUs),
    otherPercent: pct(Math.max(0, m.busyUs - serverUs - gensUs - selfUs)),
    stealPercent: pct(m.stealUs),
  };
}

interface Window {
  name: string;
  /** fleet time (ms) of the window */
  fromMs: number;
  toMs: number;
  cpu: CpuWindow;
  junk: JunkPhaseResult | null;
  junkSpec: Omit<JunkPhaseSpec, 'port'> | null;
  before: Scrape | null;
  after: Scrape | null;
  bansAfter: Awaited<ReturnType<typeof bans>> | null;
}

interface Target {
  label: string;
  pid: number;
  port: number;
  fleet: LegitFleet;
  gens: JunkGenerators;
  admin: Admin | null;
}

/**
 * One window: `seconds` of legit pings, with a junk phase if `junk` is given; progress once a
 * second. `during` runs once, `atSecond` seconds in (the reconnect probe), and is awaited before
 * the window closes.
 */
async function measure(
  t: Target, name: string, seconds: number, junk: Omit<JunkPhaseSpec, 'port' | 'label' | 'seconds'> | null, deadline: number,
  during: { atSecond: number; run: () => Promise<void> } | null = null,
): Promise<Window> {
  const before = t.admin ? await scrape(t.admin) : null;
  const c0 = cpuMark(t.pid, t.gens);
  const fromMs = t.fleet.now();
  let junkP: Promise<JunkPhaseResult> | null = null;
  const spec = junk ? { ...junk, label: `${t.label} ${name}`, seconds, port: t.port } : null;
  if (spec) junkP = t.gens.run(spec);
  let s = 0;
  let duringP: Promise<void> | null = null;
  let lastFinished = 0;
  let lastCpu = c0;
  let running = junkP !== null;
  const junkDone = junkP?.then(
    () => {
      running = false;
    },
    () => {
      running = false;
    },
  );
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  // A line once a second until the window's time is up and its junk phase (if any) has reported
  // back; bounded by the phase, the generators' own bounded wait for their last attempts, a margin.
  const hardEnd = end + settings.attemptTimeoutMs + 10_000;
  for (;;) {
    const now = performance.now();
    if (now >= t0 + (s + 1) * 1000 - 2) {
      s++;
      if (during && !duringP && s >= during.atSecond) duringP = during.run();
      const fnow = t.fleet.now();
      const last = t.fleet.rtts(fnow - 2000, fnow - 1000);
      const c = cpuMark(t.pid, t.gens);
      const w = cpuWindow(lastCpu, c);
      lastCpu = c;
      const live = t.gens.live;
      const junkLine = spec ? `, junk ${live.finished - lastFinished}/s (in flight ${[...live.inflight.values()].reduce((x, y) => x + y, 0)}, skipped ${live.skipped})` : '';
      lastFinished = live.finished;
      log(
        `${t.label} ${name} ${s} s: legit p99 ${last.length ? percentile(last, 99).toFixed(1) : '-'} ms (pings sent 1-2 s ago: ${last.length} answered; ${t.fleet.open} open)` +
          `${junkLine}, server ${w.serverPercent}% gens ${w.generatorsPercent}% other ${w.otherPercent}%`,
      );
      continue;
    }
    if ((now >= end - 2 && !running) || now >= hardEnd) break;
    if (Date.now() > deadline) {
      t.gens.stopPhase();
      throw new Error(`${t.label} ${name}: --max-seconds ${settings.maxSeconds} reached`);
    }
    const nap = sleep(t0 + (s + 1) * 1000 - now);
    await (junkDone && running ? Promise.race([nap, junkDone]) : nap);
  }
  const result = junkP ? await junkP : null;
  if (duringP) await duringP;
  const toMs = t.fleet.now();
  const c1 = cpuMark(t.pid, t.gens);
  const after = t.admin ? await scrape(t.admin) : null;
  const bansAfter = t.admin && junk ? await bans(t.admin) : null;
  const w: Window = {
    name, fromMs, toMs, cpu: cpuWindow(c0, c1), junk: result,
    junkSpec: spec ? { label: spec.label, addresses: spec.addresses, rate: spec.rate, seconds: spec.seconds, inflight: spec.inflight, timeoutMs: spec.timeoutMs } : null,
    before, after, bansAfter,
  };
  if (result) {
    log(`${t.label} ${name}: ${result.finished} junk attempts in ${result.seconds} s = ${result.perSec}/s (target ${settings.junkRate || 'max'}, skipped ${result.skipped}): ${JSON.stringify(result.byOutcome)}`);
  }
  return w;
}

/**
 * Wait (at most `settings.quietWait` s) until the rest of the machine uses under 25% of a core for
 * two seconds running: other work on the two shared cores spoils latency figures more than
 * anything the server does. Returns the last reading; the run goes on either way, and each window
 * records what the rest of the machine used.
 */
async function waitQuiet(label: string, ownPids: number[]): Promise<number> {
  const until = Date.now() + settings.quietWait * 1000;
  let quiet = 0;
  let other = 0;
  let lastLog = 0;
  for (;;) {
    const m0 = machineTicks();
    const own0 = ownPids.reduce((n, p) => n + processCpuUs(p), 0);
    const self0 = process.cpuUsage();
    await sleep(1000);
    const d = machineDeltaUs(m0, machineTicks());
    const self = process.cpuUsage(self0);
    const own = ownPids.reduce((n, p) => n + processCpuUs(p), 0) - own0 + self.user + self.system;
    other = Math.max(0, d.busyUs - own) / 1e4;
    quiet = other < 25 ? quiet + 1 : 0;
    if (quiet >= 2) return other;
    if (Date.now() > until) {
      log(`${label}: the rest of the machine still uses ${other.toFixed(0)}% CPU after ${settings.quietWait} s; going on (see otherPercent per window)`);
      return other;
    }
    if (Date.now() - lastLog > 5000) {
      log(`${label}: waiting for the machine to go quiet (other work: ${other.toFixed(0)}% CPU)`);
      lastLog = Date.now();
    }
  }
}

// --- legit fleets ---

async function connectLegitLatchkey(port: number, keys: NodeEndpointKey[], serverKeyId: string, serverPublicKey: crypto.KeyObject, deadline: number): Promise<LegitConn[]> {
  log(`latchkey: preparing ${keys.length} legit CONNECTs (not timed)`);
  const prepared = keys.map((key) => prepareConnect({ appToken: INTERNAL_TOKEN, serverKeyId, serverPublicKey, key, body: { keepAliveSec: 60 } }));
  const conns: LegitConn[] = [];
  let ready = 0;
  const progress = setInterval(() => log(`latchkey: ${ready}/${keys.length} legit endpoints connected`), 1000);
  try {
    await pool(keys.length, 16, deadline, async (i) => {
      const pc = prepared[i]!;
      const { conn, reply } = await LegitConn.open(port, LEGIT_ADDRESS, pc.frame, 15_000);
      conns[i] = conn;
      const ack = decodeFrame(reply!);
      if (!ack.ok || ack.value.type !== 'CONNACK') throw new Error(`legit endpoint ${i}: expected CONNACK, got ${ack.ok ? ack.value.type : ack.code}`);
      const c = ack.value.connack;
      if (c.returnCode !== ConnackCode.ACCEPTED) throw new Error(`legit endpoint ${i}: CONNACK ${c.returnCode} ${c.errorCode}`);
      if (!c.confirmation || c.confirmation.length !== pc.confirmation.length || !crypto.timingSafeEqual(c.confirmation, pc.confirmation)) throw new Error(`legit endpoint ${i}: CONNACK confirmation does not match`);
      ready++;
    });
  } finally {
    clearInterval(progress);
  }
  if (ready !== keys.length) throw new Error(`latchkey: only ${ready}/${keys.length} legit endpoints connected before the deadline`);
  return conns;
}

async function connectLegitFloor(port: number, n: number, deadline: number): Promise<LegitConn[]> {
  const conns: LegitConn[] = [];
  await pool(n, 16, deadline, async (i) => {
    conns[i] = (await LegitConn.open(port, LEGIT_ADDRESS, null, 10_000)).conn;
  });
  if (conns.filter(Boolean).length !== n) throw new Error(`floor: only ${conns.filter(Boolean).length}/${n} legit connections opened`);
  return conns;
}

interface ProbeResult {
  attempted: number;
  accepted: number;
  /** outcome -> count: ACCEPTED, a CONNACK refusal code, http:<status> at the upgrade, or an error */
  outcomes: Record<string, number>;
  /** close to CONNACK (or refusal) per reconnect, ms */
  p50Ms: number;
  maxMs: number;
  /** pings in flight on the closed sessions (they show as unanswered in the phase) */
  pingsDropped: number;
}

/**
 * Legit endpoints reconnecting under the flood: each closes its session and reconnects at once
 * from the legit address with a CONNECT prepared beforehand; accepted ones go back into the fleet's
 * ping rotation. The question is whether the junk (forgeries that name these endpoints' key hashes
 * among them) got the real endpoints refused.
 */
async function reconnectProbe(port: number, fleet: LegitFleet, indices: number[], prepared: PreparedConnect[]): Promise<ProbeResult> {
  const outcomes: Record<string, number> = {};
  const times: number[] = [];
  let accepted = 0;
  let pingsDropped = 0;
  await Promise.all(
    indices.map(async (i, j) => {
      const pc = prepared[j]!;
      if (fleet.conns[i]!.pingSentAt > 0) pingsDropped++;
      await fleet.conns[i]!.close();
      const t0 = performance.now();
      let outcome: string;
      try {
        const { conn, reply } = await LegitConn.open(port, LEGIT_ADDRESS, pc.frame, 15_000);
        const ack = decodeFrame(reply!);
        if (!ack.ok || ack.value.type !== 'CONNACK') outcome = ack.ok ? ack.value.type : ack.code;
        else if (ack.value.connack.returnCode !== ConnackCode.ACCEPTED) outcome = ack.value.connack.errorCode ?? String(ack.value.connack.returnCode);
        else if (!ack.value.connack.confirmation || !crypto.timingSafeEqual(ack.value.connack.confirmation, pc.confirmation)) outcome = 'bad confirmation';
        else outcome = 'ACCEPTED';
        if (outcome === 'ACCEPTED') {
          accepted++;
          fleet.replace(i, conn);
        } else await conn.close();
      } catch (err) {
        const m = / (\d{3}) /.exec((err as Error).message);
        outcome = m ? `http:${m[1]}` : (err as Error).message;
      }
      times.push(performance.now() - t0);
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }),
  );
  times.sort((a, b) => a - b);
  return { attempted: indices.length, accepted, outcomes, p50Ms: +percentile(times, 50).toFixed(1), maxMs: +(times[times.length - 1] ?? 0).toFixed(1), pingsDropped };
}

/** One accepted session of `key` whose CONNECT bytes the junk replays; the session is closed again. */
async function captureAccepted(port: number, key: NodeEndpointKey, serverKeyId: string, serverPublicKey: crypto.KeyObject): Promise<Buffer> {
  const pc = prepareConnect({ appToken: INTERNAL_TOKEN, serverKeyId, serverPublicKey, key });
  const { conn, reply } = await LegitConn.open(port, LEGIT_ADDRESS, pc.frame, 15_000);
  const ack = decodeFrame(reply!);
  await conn.close();
  if (!ack.ok || ack.value.type !== 'CONNACK' || ack.value.connack.returnCode !== ConnackCode.ACCEPTED) throw new Error(`replay capture: CONNECT not accepted (${ack.ok && ack.value.type === 'CONNACK' ? ack.value.connack.errorCode : 'not a CONNACK'})`);
  return pc.frame;
}

// --- the latchkey run ---

interface LatchkeyRun {
  windows: Window[];
  fleet: LegitFleet;
  /** reconnect probes of the 1-address and the 50-address flood */
  probes: ProbeResult[];
  banApi: string;
  kindsPerPhase: string[];
  legitEnd: { open: number; endReasons: Record<string, number>; otherMessages: Record<string, number> };
  frames: { phase1: JunkKindFrames[]; phase2: JunkKindFrames[] };
  serverPid: number;
  setupSeconds: number;
}

async function latchkeyRun(keys: NodeEndpointKey[], gens: JunkGenerators, deadline: number): Promise<LatchkeyRun> {
  const tSetup = performance.now();
  const N = settings.endpoints;
  const legitKeys = keys.slice(0, N);
  const [victim, revoked, banned, p1, p2, p3, p4, unknown, t1, t2, t3, t4] = keys.slice(N, N + EXTRA_KEYS) as NodeEndpointKey[];
  const provisioned = [p1!, p2!, p3!, p4!];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-flood-'));
  let server: ServerProcess | null = null;
  let handle: { kill: () => void } | null = null;
  let fleet: LegitFleet | null = null;
  try {
    const seed = {
      tenants: [{ id: 'bench', name: 'bench' }],
      applications: [
        { id: INTERNAL_APP, tenantId: 'bench', name: 'internal', appToken: INTERNAL_TOKEN, credentialsService: 'internal' },
        { id: TRUSTFUL_APP, tenantId: 'bench', name: 'open', appToken: TRUSTFUL_TOKEN, credentialsService: 'trustful' },
      ],
      credentials: [...legitKeys, victim!, revoked!, banned!, ...provisioned].map((k) => ({ appId: INTERNAL_APP, publicKeyPem: k.publicKeyPem })),
    };
    fs.writeFileSync(path.join(dir, 'seed.json'), JSON.stringify(seed));
    const env = { LATCHKEY_DATA_DIR: path.join(dir, 'data'), LATCHKEY_SEED_FILE: path.join(dir, 'seed.json'), LATCHKEY_LOG_LEVEL: 'warn', ...settings.serverEnv };
    log(`latchkey: starting latchkey serve (default protection settings${Object.keys(settings.serverEnv).length ? `, overrides ${JSON.stringify(settings.serverEnv)}` : ''})`);
    server = await startServerProcess(env, 30_000, serverNodeArgs);
    const srv = server;
    handle = { kill: () => srv.child.kill('SIGKILL') };
    children.add(handle);
    const admin: Admin = { url: `http://127.0.0.1:${srv.adminPort}`, token: await waitForToken(srv, 10_000) };
    log(`latchkey: server up (pid ${srv.child.pid}, gateway 127.0.0.1:${srv.port}, admin 127.0.0.1:${srv.adminPort})`);
    const ring = JSON.parse(fs.readFileSync(path.join(dir, 'data/keys/keyring.json'), 'utf8')) as { keys: Array<{ id: string; status: string }> };
    const keyId = ring.keys.find((k) => k.status === 'active')!.id;
    const serverPub = crypto.createPublicKey(fs.readFileSync(path.join(dir, `data/keys/${keyId}.pub.pem`)));

    const rv = await adminCall(admin, 'POST', `/admin/v1/applications/${INTERNAL_APP}/credentials/${revoked!.keyHash}/revoke`);
    if (rv.status !== 200) throw new Error(`revoking the "revoked" junk key: HTTP ${rv.status} ${JSON.stringify(rv.body)}`);
    const bn = await adminCall(admin, 'POST', '/admin/v1/bans', { kind: 'keyHash', value: banned!.keyHash, reason: 'bench/flood: valid but unwanted' });
    const banApi = bn.status >= 200 && bn.status < 300 ? `POST /admin/v1/bans: HTTP ${bn.status}` : `POST /admin/v1/bans: HTTP ${bn.status} (no key ban: the "banned" kind is left out)`;
    log(`latchkey: revoked one junk key; ban by key hash: ${banApi}`);

    // Legit endpoints first: the junk below must not spend the legit address's connection budget.
    const conns = await connectLegitLatchkey(srv.port, legitKeys, keyId, serverPub, deadline);
    log(`latchkey: ${N} legit endpoints connected; building the junk (not timed)`);
    const tb = performance.now();
    const sources = (replay: Buffer): JunkSources => ({
      internalToken: INTERNAL_TOKEN, trustfulToken: TRUSTFUL_TOKEN, serverKeyId: keyId, serverPublicKey: serverPub, provisioned, unknown: unknown!,
      revoked: revoked!, banned: bn.status >= 200 && bn.status < 300 ? banned! : null, trustful: [t1!, t2!, t3!, t4!], replay, perKind: settings.framesPerKind,
      forgeryTargets: legitKeys,
    });
    // Two captures of the victim (one per phase); each is an accepted session, closed at once.
    const phase1 = buildJunkKinds(sources(await captureAccepted(srv.port, victim!, keyId, serverPub)));
    const phase2 = buildJunkKinds(sources(await captureAccepted(srv.port, victim!, keyId, serverPub)));
    log(`latchkey: junk built in ${((performance.now() - tb) / 1000).toFixed(1)} s: ${phase1.map((k) => `${k.name} ${k.frames.length}`).join(', ')} (x2 phases)`);

    // Reconnect probes: a different set of legit endpoints per flood phase, CONNECTs signed now.
    const P = Math.min(settings.probe, Math.floor(N / 2));
    const probeIdx = [Array.from({ length: P }, (_, i) => i), Array.from({ length: P }, (_, i) => P + i)];
    const probeConnects = probeIdx.map((idx) => idx.map((i) => prepareConnect({ appToken: INTERNAL_TOKEN, serverKeyId: keyId, serverPublicKey: serverPub, key: legitKeys[i]!, body: { keepAliveSec: 60 } })));

    fleet = new LegitFleet(conns, settings.pingIntervalMs, 10_000_000);
    fleet.start();
    const target: Target = { label: 'latchkey', pid: srv.child.pid!, port: srv.port, fleet, gens, admin };
    const setupSeconds = (performance.now() - tSetup) / 1000;
    await gens.load(phase1);
    // One interval for every connection to have pinged once before the baseline counts.
    await sleep(settings.pingIntervalMs + 200);
    pinProcesses(srv.child.pid!, gens.pids);
    await waitQuiet('latchkey', [srv.child.pid!, ...gens.pids]);
    const junkBase = { rate: settings.junkRate, inflight: settings.inflight, timeoutMs: settings.attemptTimeoutMs };
    const windows: Window[] = [];
    const probes: ProbeResult[] = [];
    const probeAt = (k: number): { atSecond: number; run: () => Promise<void> } | null =>
      P === 0 ? null : {
        atSecond: Math.max(1, Math.round((settings.floodSeconds * 2) / 3)),
        run: async () => {
          const r = await reconnectProbe(srv.port, fleet!, probeIdx[k]!, probeConnects[k]!);
          probes[k] = r;
          log(`latchkey: reconnect probe under flood: ${r.accepted}/${r.attempted} legit endpoints accepted (${JSON.stringify(r.outcomes)}), p50 ${r.p50Ms} ms, max ${r.maxMs} ms`);
        },
      };
    windows.push(await measure(target, 'baseline', settings.baselineSeconds, null, deadline));
    windows.push(await measure(target, 'flood-1-address', settings.floodSeconds, { ...junkBase, addresses: ONE_ADDRESS }, deadline, probeAt(0)));
    // Load the second phase's frames while the first recovery runs: IPC, not measured work of the server.
    const loadP = gens.load(phase2);
    windows.push(await measure(target, 'recovery-1', settings.recoverySeconds, null, deadline));
    await loadP;
    windows.push(await measure(target, 'flood-50-addresses', settings.floodSeconds, { ...junkBase, addresses: FIFTY_ADDRESSES }, deadline, probeAt(1)));
    windows.push(await measure(target, 'recovery-50', settings.recoverySeconds, null, deadline));
    fleet.stop();
    await sleep(Math.min(3000, settings.pingIntervalMs * 2)); // late pongs of the last window land
    const endReasons: Record<string, number> = {};
    const otherMessages: Record<string, number> = {};
    for (const c of fleet.conns) {
      if (c.closed) endReasons[c.endReason ?? 'closed'] = (endReasons[c.endReason ?? 'closed'] ?? 0) + 1;
      for (const [t, n] of c.other) otherMessages[`0x${t.toString(16)}`] = (otherMessages[`0x${t.toString(16)}`] ?? 0) + n;
    }
    const legitEnd = { open: fleet.open, endReasons, otherMessages };
    await fleet.closeAll();
    return { windows, fleet, probes, banApi, kindsPerPhase: phase1.map((k) => k.name), legitEnd, frames: { phase1, phase2 }, serverPid: srv.child.pid!, setupSeconds: +setupSeconds.toFixed(2) };
  } finally {
    if (fleet) await fleet.closeAll().catch(() => undefined);
    if (server) {
      await server.stop('SIGTERM');
      if (process.env.LATCHKEY_BENCH_SERVER_LOG) fs.writeFileSync(process.env.LATCHKEY_BENCH_SERVER_LOG, server.logs.join('\n') + '\n');
    }
    if (handle) children.delete(handle);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// --- the floor ---

async function floorRun(frames: JunkKindFrames[], gens: JunkGenerators, deadline: number): Promise<{ windows: Window[]; fleet: LegitFleet; legitOpenAtEnd: number }> {
  const echo: EchoProcess = await startEchoProcess();
  const handle = { kill: () => echo.child.kill('SIGKILL') };
  children.add(handle);
  let fleet: LegitFleet | null = null;
  try {
    log(`floor: uWS echo server up (bench/lib/echo-server.ts, pid ${echo.child.pid}, 127.0.0.1:${echo.port}); ${settings.endpoints} legit connections`);
    const conns = await connectLegitFloor(echo.port, settings.endpoints, deadline);
    await gens.load(frames);
    fleet = new LegitFleet(conns, settings.pingIntervalMs, 10_000_000);
    fleet.start();
    await sleep(settings.pingIntervalMs + 200);
    pinProcesses(echo.child.pid!, gens.pids);
    await waitQuiet('floor', [echo.child.pid!, ...gens.pids]);
    const target: Target = { label: 'floor', pid: echo.child.pid!, port: echo.port, fleet, gens, admin: null };
    const windows: Window[] = [];
    windows.push(await measure(target, 'baseline', settings.floorSeconds, null, deadline));
    windows.push(await measure(target, 'flood-50-addresses', settings.floorSeconds, { rate: settings.junkRate, inflight: settings.inflight, timeoutMs: settings.attemptTimeoutMs, addresses: FIFTY_ADDRESSES }, deadline));
    windows.push(await measure(target, 'recovery-50', settings.recoverySeconds, null, deadline));
    fleet.stop();
    await sleep(Math.min(3000, settings.pingIntervalMs * 2));
    const legitOpenAtEnd = fleet.open;
    return { windows, fleet, legitOpenAtEnd };
  } finally {
    if (fleet) await fleet.closeAll().catch(() => undefined);
    await echo.stop();
    children.delete(handle);
  }
}

// --- reporting ---

interface LegitStats {
  pongs: number;
  pingsSent: number;
  unanswered: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

/** Legit round trips of the pings sent in a window (or in [fromMs, toMs) of it). */
function legitStats(fleet: LegitFleet, w: Window, fromMs = w.fromMs, toMs = w.toMs): LegitStats {
  const r = fleet.rtts(fromMs, toMs);
  const sent = fleet.sentIn(fromMs, toMs);
  const f = (v: number): number => +(Number.isFinite(v) ? v : 0).toFixed(2);
  return { pongs: r.length, pingsSent: sent, unanswered: Math.max(0, sent - r.length), p50Ms: f(percentile(r, 50)), p99Ms: f(percentile(r, 99)), p999Ms: f(percentile(r, 99.9)), maxMs: f(r[r.length - 1] ?? NaN) };
}

/** Seconds at the start of a flood counted apart: before the bans land, the junk reaches the handshake. */
const FLOOD_ONSET_MS = 3000;

/** p99 of each second of a window, ms. */
function perSecondP99(fleet: LegitFleet, w: Window): number[] {
  const out: number[] = [];
  for (let t = w.fromMs; t + 1000 <= w.toMs + 1; t += 1000) out.push(+percentile(fleet.rtts(t, t + 1000), 99).toFixed(2));
  return out;
}

const RSA_METRIC = 'latchkey_rsa_operations_total';

interface ServerCounters {
  rsaDecrypts: number | null;
  rsaVerifies: number | null;
  rsaByOp: Record<string, number> | null;
  /** latchkey_rsa_decrypts_unused_total: decrypts of handshakes not accepted after all, by why. */
  rsaDecryptsUnusedByReason: Record<string, number> | null;
  cryptoHandshakes: number | null;
  handshakesByResult: Record<string, number> | null;
  connectionsRefusedByCode: Record<string, number> | null;
  sessionsEndedByCode: Record<string, number> | null;
  bansAddedByReason: Record<string, number> | null;
  bansActive: number | null;
  bansActiveByKind: Record<string, number> | null;
  ipBansActiveBefore: number | null;
  sessionsOpen: number | null;
}

function serverCounters(w: Window): ServerCounters | null {
  if (!w.before || !w.after) return null;
  const b = w.before;
  const a = w.after;
  return {
    rsaDecrypts: metricDelta(b, a, RSA_METRIC, { op: 'decrypt' }),
    rsaVerifies: metricDelta(b, a, RSA_METRIC, { op: 'verify' }),
    rsaByOp: metricDeltaBy(b, a, RSA_METRIC, 'op'),
    rsaDecryptsUnusedByReason: metricDeltaBy(b, a, 'latchkey_rsa_decrypts_unused_total', 'reason'),
    cryptoHandshakes: metricDelta(b, a, 'latchkey_crypto_handshakes_total'),
    handshakesByResult: metricDeltaBy(b, a, 'latchkey_handshakes_total', 'result'),
    connectionsRefusedByCode: metricDeltaBy(b, a, 'latchkey_connections_refused_total', 'code'),
    sessionsEndedByCode: metricDeltaBy(b, a, 'latchkey_sessions_ended_total', 'code'),
    bansAddedByReason: metricDeltaBy(b, a, 'latchkey_bans_added_total', 'reason'),
    bansActive: metricSum(a, 'latchkey_bans_active'),
    bansActiveByKind: metricBy(a, 'latchkey_bans_active', 'kind'),
    ipBansActiveBefore: metricSum(b, 'latchkey_bans_active', { kind: 'ip' }),
    sessionsOpen: metricSum(a, 'latchkey_sessions_open'),
  };
}

/** Where junk attempts ended, from the generators' side: refused at the upgrade, refused in the handshake, accepted, no answer. */
function stages(j: JunkPhaseResult): Record<string, number> {
  const out: Record<string, number> = { upgradeRefused: 0, handshakeRefused: 0, accepted: 0, disconnected: 0, noAnswer: 0, echoed: 0 };
  for (const [o, n] of Object.entries(j.byOutcome)) {
    if (o.startsWith('http:')) out.upgradeRefused! += n;
    else if (o === 'connack:ACCEPTED') out.accepted! += n;
    else if (o.startsWith('connack:')) out.handshakeRefused! += n;
    else if (o.startsWith('disconnect:') || o.startsWith('close:')) out.disconnected! += n;
    else if (o === 'echo') out.echoed! += n;
    else out.noAnswer! += n;
  }
  return out;
}

function round(v: number | null, d = 1): number | null {
  return v === null || !Number.isFinite(v) ? null : +v.toFixed(d);
}

interface PhaseReport {
  addresses: number;
  legitP99BaselineMs: number;
  legitP99UnderFloodMs: number;
  legitP99Ratio: number | null;
  legitP99RecoveryMs: number;
  legitP99VsFloorUnderFlood: number | null;
  junkPerSec: number;
  junkTargetPerSec: number | 'max';
  /** RSA decrypts in the phase spent on handshakes that were refused (accepted ones cost one each and are sessions) */
  rsaDecryptsOnJunk: number | null;
  /** Every RSA decrypt in the phase, the accepted handshakes' included */
  rsaDecryptsTotal: number | null;
  /** Junk handshakes the server accepted (valid, e.g. a fresh key in a trustful application) */
  junkAccepted: number;
  rsaVerifiesOnJunk: number | null;
  cryptoHandshakesOnJunk: number | null;
  /** the phase's source addresses banned at its end: from GET /admin/v1/bans, else latchkey_bans_active{kind="ip"} after minus before */
  bannedSources: number | null;
  bannedSourcesFrom: string;
  bansActive: number | null;
  serverCpuUsPerJunk: number | null;
  serverNetCpuUsPerJunk: number | null;
  floorCpuUsPerJunk: number | null;
  cpuPerJunkRatioToFloor: number | null;
  reconnectProbe: ProbeResult | null;
  legit: LegitStats;
  legitRecovery: LegitStats;
  /** the flood's first FLOOD_ONSET_MS (the junk still reaches the handshake) and the rest (bans in force) */
  legitOnset: LegitStats;
  legitSteady: LegitStats;
  legitP99PerSecond: number[];
  junk: JunkPhaseResult & { stages: Record<string, number> };
  server: ServerCounters | null;
  cpu: CpuWindow;
}

interface FloorReport {
  legitP99BaselineMs: number;
  legitP99UnderFloodMs: number;
  legitP99Ratio: number | null;
  junkPerSec: number | null;
  cpuUsPerJunk: number | null;
  legitBaseline: LegitStats;
  legitUnderFlood: LegitStats;
  legitRecovery: LegitStats;
  junk: (JunkPhaseResult & { stages: Record<string, number> }) | null;
  cpu: { baseline: CpuWindow; flood: CpuWindow };
  legitOpenAtEnd: number;
}

async function main(): Promise<void> {
  const machine = machineInfo();
  log(machineLine(machine));
  log(`settings: ${JSON.stringify(settings)}`);
  const keys = await endpointKeys(settings.endpoints + EXTRA_KEYS, 'flood');
  const started = Date.now();
  const deadline = started + settings.maxSeconds * 1000;
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench/flood: still running ${settings.maxSeconds + 30} s after start: killing the child processes and exiting\n`);
    killChildren();
    process.exit(2);
  }, (settings.maxSeconds + 30) * 1000);
  watchdog.unref();
  const gens = await JunkGenerators.start(settings.generators);
  children.add({ kill: () => gens.kill() });
  try {
    const lk = await latchkeyRun(keys, gens, deadline);
    const fl = await floorRun(lk.frames.phase2, gens, deadline);

    const W = (ws: Window[], name: string): Window => ws.find((w) => w.name === name)!;
    const base = W(lk.windows, 'baseline');
    const baseLegit = legitStats(lk.fleet, base);
    const fBase = W(fl.windows, 'baseline');
    const fFlood = W(fl.windows, 'flood-50-addresses');
    const fFloodLegit = legitStats(fl.fleet, fFlood);
    const floorNetUs = fFlood.cpu.serverUs - (fBase.cpu.serverUs / fBase.cpu.seconds) * fFlood.cpu.seconds;
    const floorUsPerJunk = fFlood.junk && fFlood.junk.finished > 0 ? floorNetUs / fFlood.junk.finished : null;
    const floor: FloorReport = {
      legitP99BaselineMs: legitStats(fl.fleet, fBase).p99Ms,
      legitP99UnderFloodMs: fFloodLegit.p99Ms,
      legitP99Ratio: round(fFloodLegit.p99Ms / legitStats(fl.fleet, fBase).p99Ms, 2),
      junkPerSec: fFlood.junk?.perSec ?? null,
      cpuUsPerJunk: round(floorUsPerJunk, 2),
      legitBaseline: legitStats(fl.fleet, fBase),
      legitUnderFlood: fFloodLegit,
      legitRecovery: legitStats(fl.fleet, W(fl.windows, 'recovery-50')),
      junk: fFlood.junk ? { ...fFlood.junk, stages: stages(fFlood.junk) } : null,
      cpu: { baseline: fBase.cpu, flood: fFlood.cpu },
      legitOpenAtEnd: fl.legitOpenAtEnd,
    };

    const phaseReport = (name: string, recoveryName: string, addresses: string[], probe: ProbeResult | null): PhaseReport => {
      const w = W(lk.windows, name);
      const legit = legitStats(lk.fleet, w);
      const counters = serverCounters(w);
      const j = w.junk!;
      const netUs = w.cpu.serverUs - (base.cpu.serverUs / base.cpu.seconds) * w.cpu.seconds;
      const b = w.bansAfter;
      const probeOk = probe?.accepted ?? 0;
      const minusProbe = (v: number | null | undefined): number | null => (v === null || v === undefined ? null : v - probeOk);
      let bannedSources: number | null = null;
      let bannedSourcesFrom = 'unavailable';
      if (b && 'total' in b) {
        bannedSources = b.ipValues.filter((v) => addresses.some((a) => v === a || v.startsWith(`${a}/`))).length;
        bannedSourcesFrom = 'GET /admin/v1/bans';
      } else if (counters && counters.bansActiveByKind) {
        bannedSources = (counters.bansActiveByKind.ip ?? 0) - (counters.ipBansActiveBefore ?? 0);
        bannedSourcesFrom = `latchkey_bans_active{kind="ip"}, after minus before (${b && 'unavailable' in b ? b.unavailable : 'no ban list'})`;
      }
      const perJunk = netUs / Math.max(1, j.finished);
      return {
        addresses: addresses.length,
        legitP99BaselineMs: baseLegit.p99Ms,
        legitP99UnderFloodMs: legit.p99Ms,
        legitP99Ratio: round(legit.p99Ms / baseLegit.p99Ms, 2),
        legitP99RecoveryMs: legitStats(lk.fleet, W(lk.windows, recoveryName)).p99Ms,
        legitP99VsFloorUnderFlood: round(legit.p99Ms / fFloodLegit.p99Ms, 2),
        junkPerSec: j.perSec,
        junkTargetPerSec: settings.junkRate || 'max',
        // Decrypts spent on handshakes the server refused: every accepted handshake (the probe's, and
        // junk the application's own policy accepts: fresh keys in a trustful application) costs
        // exactly one decrypt and is a session, not junk refused; those are junkAccepted.
        rsaDecryptsOnJunk: counters?.rsaDecrypts === null || counters?.rsaDecrypts === undefined ? null : counters.rsaDecrypts - (counters.handshakesByResult?.accepted ?? 0),
        rsaDecryptsTotal: counters?.rsaDecrypts ?? null,
        junkAccepted: (counters?.handshakesByResult?.accepted ?? 0) - probeOk,
        rsaVerifiesOnJunk: minusProbe(counters?.rsaVerifies),
        cryptoHandshakesOnJunk: minusProbe(counters?.cryptoHandshakes),
        bannedSources,
        bannedSourcesFrom,
        bansActive: counters?.bansActive ?? (b && 'total' in b ? b.total : null),
        serverCpuUsPerJunk: round(w.cpu.serverUs / Math.max(1, j.finished), 2),
        serverNetCpuUsPerJunk: round(perJunk, 2),
        floorCpuUsPerJunk: round(floorUsPerJunk, 2),
        cpuPerJunkRatioToFloor: floorUsPerJunk ? round(perJunk / floorUsPerJunk, 2) : null,
        reconnectProbe: probe,
        legit,
        legitRecovery: legitStats(lk.fleet, W(lk.windows, recoveryName)),
        legitOnset: legitStats(lk.fleet, w, w.fromMs, w.fromMs + FLOOD_ONSET_MS),
        legitSteady: legitStats(lk.fleet, w, w.fromMs + FLOOD_ONSET_MS, w.toMs),
        legitP99PerSecond: perSecondP99(lk.fleet, w),
        junk: { ...j, stages: stages(j) },
        server: counters,
        cpu: w.cpu,
      };
    };
    const one = phaseReport('flood-1-address', 'recovery-1', ONE_ADDRESS, lk.probes[0] ?? null);
    const fifty = phaseReport('flood-50-addresses', 'recovery-50', FIFTY_ADDRESSES, lk.probes[1] ?? null);
    const after1 = W(lk.windows, 'flood-1-address').after;
    const notes = [
      ...(after1 && metricSum(after1, RSA_METRIC) === null ? [`${RSA_METRIC} is not exported by this server: rsaDecryptsOnJunk / rsaVerifiesOnJunk are null; cryptoHandshakesOnJunk (CONNECTs handed to the crypto workers, each at least one verify) stands in`] : []),
      ...(after1 && metricSum(after1, 'latchkey_connections_refused_total') === null ? ['latchkey_connections_refused_total is not exported: refusals at the upgrade are counted on the generators\' side only'] : []),
      ...(after1 && metricSum(after1, 'latchkey_bans_active') === null ? ['latchkey_bans_active is not exported'] : []),
      `bannedSources from ${one.bannedSourcesFrom}`,
      lk.banApi,
    ];
    const result = {
      bench: 'flood',
      machine,
      settings,
      notes,
      phases: { oneAddress: one, fiftyAddresses: fifty },
      baseline: { legit: baseLegit, cpu: base.cpu, server: serverCounters(base) },
      floor,
      legitBaselineVsFloor: round(baseLegit.p99Ms / floor.legitP99BaselineMs, 2),
      legitEnd: lk.legitEnd,
      junkKinds: lk.kindsPerPhase,
      durations: { setupSeconds: lk.setupSeconds, wallSeconds: +((Date.now() - started) / 1000).toFixed(1) },
      windows: {
        latchkey: lk.windows.map((w) => ({ name: w.name, fromMs: Math.round(w.fromMs), toMs: Math.round(w.toMs), junkPerSecond: w.junk?.perSecond ?? null, cpu: w.cpu })),
        floor: fl.windows.map((w) => ({ name: w.name, fromMs: Math.round(w.fromMs), toMs: Math.round(w.toMs), junkPerSecond: w.junk?.perSecond ?? null, cpu: w.cpu })),
      },
    };

    const md = report(one, fifty, floor, baseLegit, notes);
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'flood-latest.json'), JSON.stringify(result, null, 2) + '\n');
    fs.writeFileSync(path.join(RESULTS, 'flood-latest.md'), `# bench/flood\n\n${machineLine(machine)}\n\n${md}\n`);
    fs.writeFileSync(path.join(RESULTS, 'flood-latest.svg'), chart(lk.fleet, lk.windows, fl.fleet, fl.windows));
    process.stdout.write(`\n${machineLine(machine)}\n\n${md}\n\nwrote bench/results/flood-latest.{json,md,svg}\n`);
    if (lk.legitEnd.open !== settings.endpoints) log(`WARNING: ${settings.endpoints - lk.legitEnd.open} legit sessions were not open at the end: ${JSON.stringify(lk.legitEnd.endReasons)}`);
    const noisy = Math.max(...[...lk.windows, ...fl.windows].map((w) => w.cpu.stealPercent));
    if (noisy > 10) log(`WARNING: steal up to ${noisy}% in a window: the VM's neighbours took CPU; compare with another run`);
  } finally {
    clearTimeout(watchdog);
    await gens.stop().catch(() => gens.kill());
    killChildren();
  }
}

function fmt(v: unknown): string {
  if (v === null || v === undefined) return 'n/a';
  if (typeof v === 'number') return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
  return String(v);
}

function report(o: PhaseReport, f: PhaseReport, fl: FloorReport, baseLegit: LegitStats, notes: string[]): string {
  const row = (label: string, a: unknown, b: unknown, c: unknown = ''): string => `| ${label} | ${fmt(a)} | ${fmt(b)} | ${fmt(c)} |`;
  const list = (x: Record<string, number> | null | undefined): string => (x === null || x === undefined ? 'metric absent' : Object.entries(x).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') || 'none');
  const stagesOf = (j: { stages: Record<string, number> } | null): string => (j ? Object.entries(j.stages).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') : '');
  const threads = (c: CpuWindow): string => Object.entries(c.serverByThreadUs).slice(0, 4).map(([k, v]) => `${k} ${((v / 1e6 / c.seconds) * 100).toFixed(0)}%`).join(', ');
  const mach = (c: CpuWindow): string => `${c.machineBusyPercent} / ${c.softirqPercent} / ${c.otherPercent} / ${c.stealPercent}`;
  const probe = (p: ProbeResult | null): string => (p ? `${p.accepted}/${p.attempted} (${list(p.outcomes)}; p50 ${p.p50Ms} ms, max ${p.maxMs} ms)` : 'not run');
  const lines = [
    `Legit: ${settings.endpoints} endpoints from 127.0.0.1, one PINGREQ each every ${settings.pingIntervalMs} ms (baseline p99 ${baseLegit.p99Ms} ms, p50 ${baseLegit.p50Ms} ms). ` +
      `Junk target ${settings.junkRate || 'max'}/s from ${settings.generators} generator processes (in flight <= ${settings.inflight} each, ${settings.attemptTimeoutMs} ms timeout), ${settings.floodSeconds} s per phase. ` +
      `Server: default protection settings${Object.keys(settings.serverEnv).length ? ` + ${JSON.stringify(settings.serverEnv)}` : ''}.`,
    '',
    '| metric | flood from 1 address | flood from 50 addresses | floor (uWS echo), 50 addresses |',
    '|---|---|---|---|',
    row('legitP99BaselineMs', o.legitP99BaselineMs, f.legitP99BaselineMs, fl.legitP99BaselineMs),
    row('legitP99UnderFloodMs', o.legitP99UnderFloodMs, f.legitP99UnderFloodMs, fl.legitP99UnderFloodMs),
    row('**legitP99Ratio** (under / baseline)', o.legitP99Ratio, f.legitP99Ratio, fl.legitP99Ratio),
    row('legit p50 under flood, ms', o.legit.p50Ms, f.legit.p50Ms, fl.legitUnderFlood.p50Ms),
    row(`legit p99, first ${FLOOD_ONSET_MS / 1000} s of the flood / the rest, ms`, `${o.legitOnset.p99Ms} / ${o.legitSteady.p99Ms}`, `${f.legitOnset.p99Ms} / ${f.legitSteady.p99Ms}`, ''),
    row('legit max under flood, ms / pings unanswered (of which in flight on reconnect-probe sessions)', `${fmt(o.legit.maxMs)} / ${o.legit.unanswered} (${o.reconnectProbe?.pingsDropped ?? 0})`, `${fmt(f.legit.maxMs)} / ${f.legit.unanswered} (${f.reconnectProbe?.pingsDropped ?? 0})`, `${fmt(fl.legitUnderFlood.maxMs)} / ${fl.legitUnderFlood.unanswered}`),
    row('legit p99 in the recovery after, ms', o.legitP99RecoveryMs, f.legitP99RecoveryMs, fl.legitRecovery.p99Ms),
    row('legit p99 under flood / floor under flood', o.legitP99VsFloorUnderFlood, f.legitP99VsFloorUnderFlood),
    row('legit endpoints reconnecting under the flood: accepted', probe(o.reconnectProbe), probe(f.reconnectProbe), '-'),
    row('**junkPerSec** (attempts finished / s)', o.junkPerSec, f.junkPerSec, fl.junkPerSec),
    row('junk attempts started / skipped at the in-flight cap', `${o.junk.started} / ${o.junk.skipped}`, `${f.junk.started} / ${f.junk.skipped}`, fl.junk ? `${fl.junk.started} / ${fl.junk.skipped}` : ''),
    row('junk answer latency p50 / p99, ms', `${o.junk.latencyMs.p50} / ${o.junk.latencyMs.p99}`, `${f.junk.latencyMs.p50} / ${f.junk.latencyMs.p99}`, fl.junk ? `${fl.junk.latencyMs.p50} / ${fl.junk.latencyMs.p99}` : ''),
    row('where junk ended (generator side)', stagesOf(o.junk), stagesOf(f.junk), stagesOf(fl.junk)),
    row('**rsaDecryptsOnJunk** (on refused handshakes)', o.rsaDecryptsOnJunk, f.rsaDecryptsOnJunk, '-'),
    row('RSA decrypts in all / junk handshakes accepted (valid: fresh trustful keys)', `${o.rsaDecryptsTotal} / ${o.junkAccepted}`, `${f.rsaDecryptsTotal} / ${f.junkAccepted}`, '-'),
    row('**rsaVerifiesOnJunk**', o.rsaVerifiesOnJunk, f.rsaVerifiesOnJunk, '-'),
    row('CONNECTs handed to the crypto workers', o.cryptoHandshakesOnJunk, f.cryptoHandshakesOnJunk, '-'),
    row('**bannedSources** (of the phase\'s addresses)', o.bannedSources, f.bannedSources, '-'),
    row('bans active at the end, by kind', list(o.server?.bansActiveByKind), list(f.server?.bansActiveByKind), '-'),
    row('server CPU per junk attempt, µs (net of the baseline\'s)', o.serverNetCpuUsPerJunk, f.serverNetCpuUsPerJunk, fl.cpuUsPerJunk),
    row('server CPU per junk attempt / floor', o.cpuPerJunkRatioToFloor, f.cpuPerJunkRatioToFloor, 1),
    row('server CPU % (of one core)', o.cpu.serverPercent, f.cpu.serverPercent, fl.cpu.flood.serverPercent),
    row('server CPU by thread (top 4)', threads(o.cpu), threads(f.cpu), threads(fl.cpu.flood)),
    row('generators CPU % (all) / bench process %', `${o.cpu.generatorsPercent} / ${o.cpu.benchPercent}`, `${f.cpu.generatorsPercent} / ${f.cpu.benchPercent}`, `${fl.cpu.flood.generatorsPercent} / ${fl.cpu.flood.benchPercent}`),
    row('machine busy % (of 200) / softirq / other / steal', mach(o.cpu), mach(f.cpu), mach(fl.cpu.flood)),
  ];
  const outcomes = (title: string, j: JunkPhaseResult): string[] => {
    const cols = Object.keys(j.byOutcome);
    return [
      '',
      `### ${title}: answers by junk kind (generator side)`,
      '',
      `| kind | ${cols.join(' | ')} |`,
      `|---|${cols.map(() => '---').join('|')}|`,
      ...Object.entries(j.outcomes).map(([kind, outs]) => `| ${kind} | ${cols.map((c) => fmt(outs[c] ?? 0)).join(' | ')} |`),
    ];
  };
  const codes = (title: string, s: ServerCounters | null): string[] =>
    s === null ? [] : [
      '', `### ${title}: server counters over the phase`, '', '| counter | by label |', '|---|---|',
      `| latchkey_connections_refused_total (at the upgrade) | ${list(s.connectionsRefusedByCode)} |`,
      `| latchkey_handshakes_total | ${list(s.handshakesByResult)} |`,
      `| latchkey_rsa_operations_total | ${list(s.rsaByOp)} |`,
      `| latchkey_rsa_decrypts_unused_total (decrypts of handshakes not accepted after all) | ${list(s.rsaDecryptsUnusedByReason)} |`,
      `| latchkey_bans_added_total | ${list(s.bansAddedByReason)} |`,
      `| latchkey_sessions_ended_total | ${list(s.sessionsEndedByCode)} |`,
    ];
  return [
    ...lines,
    ...outcomes('Flood from 1 address', o.junk),
    ...codes('Flood from 1 address', o.server),
    ...outcomes('Flood from 50 addresses', f.junk),
    ...codes('Flood from 50 addresses', f.server),
    ...(fl.junk ? outcomes('Floor (uWS echo), 50 addresses', fl.junk) : []),
    '',
    ...notes.map((n) => `- ${n}`),
  ].join('\n');
}

function chart(lkFleet: LegitFleet, lkWindows: Window[], flFleet: LegitFleet, flWindows: Window[]): string {
  const perSecond = (fleet: LegitFleet, fromMs: number, toMs: number, shift: number, p: number): Array<[number, number]> => {
    const out: Array<[number, number]> = [];
    for (let t = fromMs; t + 1000 <= toMs + 1; t += 1000) {
      const r = fleet.rtts(t, t + 1000);
      if (r.length) out.push([(t - shift) / 1000, percentile(r, p)]);
    }
    return out;
  };
  const t0 = lkWindows[0]!.fromMs;
  const tEnd = lkWindows[lkWindows.length - 1]!.toMs;
  const colors: Record<string, string> = { baseline: '#2ca02c', 'flood-1-address': '#d62728', 'recovery-1': '#7f7f7f', 'flood-50-addresses': '#ff7f0e', 'recovery-50': '#7f7f7f' };
  const bands: Band[] = lkWindows.map((w) => ({
    from: (w.fromMs - t0) / 1000,
    to: (w.toMs - t0) / 1000,
    label: w.junk ? `${w.name} (${w.junk.perSec}/s)` : w.name,
    color: colors[w.name] ?? '#cccccc',
  }));
  // The floor's windows drawn over the latchkey ones they compare with: baseline on baseline, flood on the 50-address flood.
  const flBase = flWindows.find((w) => w.name === 'baseline')!;
  const flFlood = flWindows.find((w) => w.name === 'flood-50-addresses')!;
  const lkFlood = lkWindows.find((w) => w.name === 'flood-50-addresses')!;
  const floorPts = (p: number): Array<[number, number]> => [
    ...perSecond(flFleet, flBase.fromMs, flBase.toMs, flBase.fromMs - t0, p),
    ...perSecond(flFleet, flFlood.fromMs, flFlood.toMs, flFlood.fromMs - lkFlood.fromMs, p),
  ];
  return phaseChart(
    `bench/flood: legit PINGREQ round trip per second, ${settings.endpoints} endpoints (junk target ${settings.junkRate || 'max'}/s)`,
    'seconds since the baseline started (floor windows drawn over the latchkey windows they compare with)',
    'round trip, ms',
    [
      { name: 'latchkey p99', points: perSecond(lkFleet, t0, tEnd, t0, 99), color: '#1f77b4' },
      { name: 'latchkey p50', points: perSecond(lkFleet, t0, tEnd, t0, 50), color: '#9ecae1' },
      { name: 'floor (uWS echo) p99', points: floorPts(99), color: '#000000' },
    ],
    bands,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/flood failed: ${(err as Error).stack ?? String(err)}\n`);
  killChildren();
  process.exit(1);
});
