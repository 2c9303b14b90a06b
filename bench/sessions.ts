/**
 * bench/sessions: how many idle authenticated sessions a latchkey node holds, what each costs in
 * memory, how fast they arrive, and how long a node takes to get every one of them back after all
 * its gateway processes die at once. Against floors measured in the same run: a plain uWS server
 * holding the same connections (memory) and the box's RSA private-operation ceiling (time).
 *
 *   npm run bench:sessions [-- --sessions 100000 --processes P --concurrency 256 --keepalive 60
 *                             --hold 60 --settle-max 60 --quiet-wait 60 --max-seconds S
 *                             --server-env LATCHKEY_X=Y ...]
 *
 * 1. Machine line, settings; the RSA ceiling (bench/lib/sessions-rsa.ts: RSA-OAEP-SHA256 private
 *    decrypts, one worker thread per core, all busy, 3 s).
 * 2. Keys: every session is a distinct endpoint with its own RSA-2048 key from the cached bulk
 *    pool (bench/lib/bulk-keys.ts; ensurePrimePool once here, each generator derives its slice).
 *    Meanwhile the N credentials are written into the embedded store of a fresh data directory,
 *    under an `internal` application (bench/lib/sessions-provision.ts), so every handshake does the
 *    real credentials lookup.
 * 3. Generators (at the node's gatewayNice, 5, once their keys are derived, so they share the cores
 *    with the gateway processes as equals): ceil(N / 18,000) child processes (bench/lib/sessions-gen.ts; the open-file limit is
 *    20,000 per process and cannot be raised), each on its own loopback source addresses (127.0.0.2
 *    and up, at most 9,000 sessions each: ~28,000 ephemeral ports per source address).
 * 4. Floor: ceil(N / 18,000) plain uWS servers (bench/lib/echo-server.ts, the gateway's WebSocket
 *    settings) take the same N connections (upgrade only); their summed RSS growth per connection
 *    after it settles is floorRssKiBPerSession.
 * 5. The node: `latchkey serve` with processes >= ceil(N / 18,000) gateway processes on fixed
 *    loopback ports (a build without the `processes` setting: one process, and at most what it can
 *    hold; the bench says so), the capacity benches' limits off (bench/lib/limits.ts: every session
 *    comes from a few loopback addresses). Baseline RSS of all its processes once it settles.
 * 6. Ramp: the generators open all N sessions, `--concurrency` handshakes in flight in all (CONNECTs
 *    signed beforehand, as bench/handshake does, timestamped for when they will be sent; the node
 *    runs with LATCHKEY_HANDSHAKE_WINDOW_SEC=3600 so that a long ramp does not outlive them);
 *    handshakesPerSec = accepted / (last accept - ramp start). Each accepted session then sends
 *    TICKETREQ and keeps its TICKET (as the SDK does right after CONNACK; ~40 µs of server CPU
 *    against a handshake's 1-2.5 ms here; not with --no-resume).
 * 7. Memory, right after the ramp once the node's summed RSS is stable within 1 % over 5 s (at most
 *    --settle-max s), and again after the hold (8), the same way: that second one is
 *    serverRssKiBPerSession = (RSS - baseline) / sessions held. No forced GC: the figure is what
 *    the node holds at a quiet moment; right after the ramp its heap still holds the handshakes'
 *    garbage (RSS flat, 10-20 % higher), the hold's idle minute lets V8 collect and return it.
 * 8. Hold (--hold s): every session sends PINGREQ once per --keepalive s; pingRttP99Ms over every
 *    ping of the hold, eventLoopLagP99Ms from the node's /metrics (prom-client's
 *    nodejs_eventloop_lag_p99_seconds, scraped at the start of the hold to reset it, and at its end;
 *    the largest series if the node exports several; null if it exports none).
 * 9. Reconnect storms, two in the same run (--no-resume: the full one only). In each, every gateway
 *    process is SIGKILLed at once (the primary restarts them; a one-process build is restarted by
 *    the bench on the same ports and data) and every endpoint reconnects with the SDK's backoff
 *    (full jitter, 500 ms doubling to 30 s, src/sdk/client.ts); the storm's time runs from the kill
 *    until the last of the sessions held at the kill is accepted again.
 *    - resumed (first): every endpoint took a ticket after its first CONNACK (TICKETREQ, as the
 *      SDK does) and now holds a prepared RESUME (no RSA on either side; docs/protocol.md 4.6):
 *      resumedStormSeconds. First, because a full storm that does not converge in its budget (the
 *      250k run's did not) would leave it fewer sessions to bring back.
 *    - full: every session gets a freshly signed CONNECT: reconnectStormSeconds;
 *      reconnectStormFloorSeconds = N / rsaCeilingPerSec.
 *    Both storms see the same node (after one restart for the second), the same backoff and the
 *    same sessions; their node CPU per accepted handshake is reported beside the times.
 * 10. The RSA ceiling again (the larger of the two counts), results.
 *
 * Progress once a second throughout. Loopback only. Bounded: every wait has a timeout, every phase
 * a deadline, and --max-seconds (default 600 s + 6 ms per session, + 2 ms per session more with the
 * resumed storm) ends the run; every child process (generators, floors, the node and its gateway
 * processes) is killed on exit and on Ctrl-C. Writes bench/results/sessions-latest.json, .md and
 * .svg (sessions, RSS, handshakes/s); --out NAME writes bench/results/NAME.* instead (small runs
 * beside the big one).
 * LATCHKEY_BENCH_SERVER_NODE_ARGS passes node flags to the server; LATCHKEY_BENCH_SERVER_LOG=FILE
 * keeps its output.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setProcessNice } from '../src/node/priority.js';
import { ROOT } from '../test/helpers/root.js';
import { arg, intArg } from './lib/args.js';
import { ensurePrimePool, primesForKeys } from './lib/bulk-keys.js';
import { startEchoProcess, type EchoProcess } from './lib/echo.js';
import type { Band } from './lib/flood-chart.js';
import { machineDeltaUs, machineTicks, type MachineTicks, type Scrape } from './lib/flood-stats.js';
import { LIMITS_OFF } from './lib/limits.js';
import { machineInfo, machineLine, processCpuUs, threadRoleCpuUs, type SmapsBreakdown } from './lib/machine.js';
import { killChildren, sleep, stopChildrenOnSignal } from './lib/run.js';
import { stackedChart } from './lib/sessions-chart.js';
import { Fleet, MAX_SESSIONS_PER_GENERATOR, planFleet } from './lib/sessions-fleet.js';
import { BACK_TIME_UNIT_MS, BENCH_HANDSHAKE_WINDOW_SEC, histCount, histMerge, histPercentile, newHist, STABLE_SESSION_MS, type Tick } from './lib/sessions-ipc.js';
import { provision } from './lib/sessions-provision.js';
import { rsaCeiling, type RsaCeiling } from './lib/sessions-rsa.js';
import { freePort, killTracked, LatchkeyNode, multiProcessSupported, rssSum, settleRss, track, type ProcessMemory } from './lib/sessions-server.js';

const RESULTS = path.join(ROOT, 'bench/results');
/** Endpoint sessions one gateway process is given at most: its open files (20,000) less latchkey's connectionFdReserve (1,024) and a margin for an uneven SO_REUSEPORT spread. */
const SESSIONS_PER_PROCESS = 18_000;
const APP_TOKEN = 'bench-sessions-token';

const requested = intArg('sessions', 100_000, 1_000_000);
const resume = !process.argv.includes('--no-resume');
const settings = {
  sessions: requested,
  /** Gateway processes at least (default: one per core, as the server's 'auto'); the bench uses max(this, ceil(sessions / 18,000)). */
  processes: intArg('processes', os.availableParallelism(), 256),
  /** Handshakes in flight during the ramp, all generators together. */
  concurrency: intArg('concurrency', 256, 100_000),
  keepAliveSec: intArg('keepalive', 60, 600),
  holdSeconds: intArg('hold', 60, 3600),
  settleMaxSeconds: intArg('settle-max', 60, 600),
  ceilingSeconds: intArg('ceiling-seconds', 3, 60),
  attemptTimeoutMs: intArg('attempt-timeout-ms', 10_000, 120_000),
  /** Seconds to wait at most, before the ramp and before the storm, for the rest of the machine to go quiet. */
  quietWait: intArg('quiet-wait', 60, 600),
  maxSeconds: arg('max-seconds', 600 + requested * (resume ? 0.008 : 0.006)),
  /** Run the resumed storm (endpoints holding tickets) before the full one. */
  resume,
  /** Results go to bench/results/<out>.{json,md,svg}. */
  out: outArg(),
  /** Force full GCs (through each node process's inspector) before the memory readings; --no-gc reads RSS as it is. */
  gc: !process.argv.includes('--no-gc'),
  serverEnv: serverEnvArgs(),
};

const serverNodeArgs = (process.env.LATCHKEY_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** --out NAME: a file name stem under bench/results (letters, digits, '.', '_', '-'). */
function outArg(): string {
  const i = process.argv.indexOf('--out');
  if (i < 0) return 'sessions-latest';
  const v = process.argv[i + 1] ?? '';
  if (!/^[A-Za-z0-9._-]+$/.test(v)) throw new Error(`--out wants a file name stem, got "${v}"`);
  return v;
}

/** Every `--server-env K=V` (repeatable): environment overrides for the latchkey node (experiments). */
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

function log(msg: string): void {
  process.stdout.write(`[sessions] ${msg}\n`);
}

const benchT0 = Date.now();
const deadline = benchT0 + settings.maxSeconds * 1000;
const left = (): number => Math.max(0, deadline - Date.now());
const elapsed = (): string => `${((Date.now() - benchT0) / 1000).toFixed(0)} s`;

function cleanup(): void {
  killChildren();
  killTracked();
}
process.on('exit', cleanup);
stopChildrenOnSignal('bench/sessions'); // kills the generators; 'exit' above kills the rest
const watchdog = setTimeout(() => {
  log(`--max-seconds ${settings.maxSeconds} reached: stopping every child process`);
  cleanup();
  process.exit(3);
}, settings.maxSeconds * 1000);
watchdog.unref();

// --- timeline (for the chart) ---

interface Point {
  t: number;
  phase: string;
  sessions: number;
  rssMiB: number;
  handshakesPerSec: number;
}
const timeline: Point[] = [];
const phases: Array<{ name: string; from: number; to: number }> = [];
let timeZero = 0;

function phaseStart(name: string): void {
  const now = (Date.now() - timeZero) / 1000;
  const last = phases[phases.length - 1];
  if (last && last.to < 0) last.to = now;
  phases.push({ name, from: now, to: -1 });
}

// --- CPU per phase ---

interface CpuMark {
  at: number;
  machine: MachineTicks;
  /** CPU µs by server pid */
  server: Map<number, number>;
  /** CPU µs by thread role, by server pid; the first pid is the primary */
  roles: Map<number, { main: number; crypto: number; other: number }>;
  primary: number;
  gens: number;
  self: number;
}

interface CpuWindow {
  seconds: number;
  machineBusyPercent: number;
  stealPercent: number;
  serverPercent: number;
  generatorsPercent: number;
  benchPercent: number;
  /** busy CPU outside the node, the generators and this process (other tenants of the VM, softirq) */
  otherPercent: number;
  /** The node's CPU µs in the window by process role and thread role (bench/lib/machine.ts threadRoleCpuUs). */
  nodeUs: { primaryMain: number; primaryOther: number; gatewayMain: number; gatewayCrypto: number; gatewayOther: number };
}

function cpuOf(pids: number[]): number {
  let us = 0;
  for (const p of pids) {
    try {
      us += processCpuUs(p);
    } catch {
      // gone
    }
  }
  return us;
}

function cpuMark(serverPids: number[], fleet: Fleet): CpuMark {
  const c = process.cpuUsage();
  const server = new Map<number, number>();
  const roles = new Map<number, { main: number; crypto: number; other: number }>();
  for (const p of serverPids) {
    server.set(p, cpuOf([p]));
    roles.set(p, threadRoleCpuUs(p));
  }
  return { at: Date.now(), machine: machineTicks(), server, roles, primary: serverPids[0] ?? 0, gens: cpuOf(fleet.pids), self: c.user + c.system };
}

/** CPU between two marks, in % of one core. The server's share counts a process started after the first mark from 0 (the storm's restarted ones), one gone by the second not at all. */
function cpuWindow(a: CpuMark, b: CpuMark): CpuWindow {
  const s = Math.max(0.001, (b.at - a.at) / 1000);
  const m = machineDeltaUs(a.machine, b.machine);
  const pct = (us: number): number => +((us / 1e6 / s) * 100).toFixed(1);
  let server = 0;
  for (const [pid, us] of b.server) server += Math.max(0, us - (a.server.get(pid) ?? 0));
  const gens = Math.max(0, b.gens - a.gens);
  const self = b.self - a.self;
  const nodeUs = { primaryMain: 0, primaryOther: 0, gatewayMain: 0, gatewayCrypto: 0, gatewayOther: 0 };
  for (const [pid, r] of b.roles) {
    const r0 = a.roles.get(pid) ?? { main: 0, crypto: 0, other: 0 };
    const d = { main: Math.max(0, r.main - r0.main), crypto: Math.max(0, r.crypto - r0.crypto), other: Math.max(0, r.other - r0.other) };
    if (pid === b.primary) {
      nodeUs.primaryMain += d.main;
      nodeUs.primaryOther += d.crypto + d.other;
    } else {
      nodeUs.gatewayMain += d.main;
      nodeUs.gatewayCrypto += d.crypto;
      nodeUs.gatewayOther += d.other;
    }
  }
  return {
    nodeUs,
    seconds: +s.toFixed(1),
    machineBusyPercent: pct(m.busyUs),
    stealPercent: pct(m.stealUs),
    serverPercent: pct(server),
    generatorsPercent: pct(gens),
    benchPercent: pct(self),
    otherPercent: pct(Math.max(0, m.busyUs - server - gens - self)),
  };
}

// --- helpers ---

/**
 * Wait (at most --quiet-wait s) until the rest of the machine uses under 25 % of a core for two
 * seconds running (as bench/flood does): other work on the two shared cores spoils the rates and
 * latencies. Goes on either way; returns the last reading (% of one core).
 */
async function waitQuiet(label: string, ownPids: () => number[]): Promise<number> {
  const until = Date.now() + settings.quietWait * 1000;
  let quiet = 0;
  let lastLog = 0;
  for (;;) {
    const m0 = machineTicks();
    const own0 = cpuOf(ownPids());
    const self0 = process.cpuUsage();
    await sleep(1000);
    const d = machineDeltaUs(m0, machineTicks());
    const self = process.cpuUsage(self0);
    const other = Math.max(0, d.busyUs - (cpuOf(ownPids()) - own0) - self.user - self.system) / 1e4;
    quiet = other < 25 ? quiet + 1 : 0;
    if (quiet >= 2) return other;
    if (Date.now() > until) {
      log(`${label}: the rest of the machine still uses ${other.toFixed(0)}% CPU after ${settings.quietWait} s; going on (see otherPercent)`);
      return other;
    }
    if (Date.now() - lastLog >= 5000) {
      log(`${label}: waiting for the machine to go quiet (other work: ${other.toFixed(0)}% CPU)`);
      lastLog = Date.now();
    }
  }
}

function pacedOf(failures: Record<string, number>, waitMs: number): { refusals: number; meanWaitSeconds: number | null } {
  const refusals = Object.entries(failures).filter(([k]) => k.startsWith('paced:')).reduce((x, [, n]) => x + n, 0);
  return { refusals, meanWaitSeconds: refusals > 0 ? +(waitMs / refusals / 1000).toFixed(2) : null };
}

function failuresLine(f: Record<string, number>): string {
  const e = Object.entries(f).sort((a, b) => b[1] - a[1]);
  return e.length ? e.slice(0, 4).map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
}

/** Sessions the node reports open: /healthz sessionsOpen, summed over `processes` when listed. */
function nodeSessions(h: Record<string, unknown> | null): number | null {
  if (!h) return null;
  const list = h.processes;
  if (Array.isArray(list) && list.length) return list.reduce((n: number, p) => n + (Number((p as { sessionsOpen?: unknown }).sessionsOpen) || 0), 0); // the primary's entry has none
  return typeof h.sessionsOpen === 'number' ? h.sessionsOpen : null;
}

function lagP99Ms(s: Scrape | null): { ms: number | null; series: number } {
  if (!s) return { ms: null, series: 0 };
  const xs = s.series.filter((x) => x.name.endsWith('nodejs_eventloop_lag_p99_seconds') && Number.isFinite(x.value));
  if (!xs.length) return { ms: null, series: 0 };
  return { ms: +(Math.max(...xs.map((x) => x.value)) * 1000).toFixed(2), series: xs.length };
}

const r2 = (v: number | null): number | null => (v === null || !Number.isFinite(v) ? null : +v.toFixed(2));
const r3 = (v: number | null): number | null => (v === null || !Number.isFinite(v) ? null : +v.toFixed(3));

async function main(): Promise<void> {
  const machine = machineInfo();
  log(machineLine(machine));
  const multi = multiProcessSupported();
  const perProcessCap = SESSIONS_PER_PROCESS;
  let sessions = settings.sessions;
  let processes = Math.max(settings.processes, Math.ceil(sessions / perProcessCap));
  const notes: string[] = [];
  if (!multi) {
    if (processes > 1 || settings.processes > 1) {
      const cap = perProcessCap;
      const note = `this build's latchkey serve has no 'processes' setting: ONE gateway process, which holds at most ~${cap} sessions (20,000 open files); ` +
        (sessions > cap ? `running ${cap} of the ${sessions} sessions asked for` : 'running with one process');
      notes.push(note);
      log(`WARNING: ${note}`);
      sessions = Math.min(sessions, cap);
    }
    processes = 1;
  }
  const plan = planFleet(sessions, 1);
  log(`settings: ${JSON.stringify({ ...settings, sessions })}`);
  log(
    `server processes: ${processes} (>= ceil(${sessions} / ${perProcessCap}) = ${Math.ceil(sessions / perProcessCap)}: 20,000 open files per process${multi ? '' : '; build without multi-process support'}); ` +
      `generators: ${plan.generators} (<= ${MAX_SESSIONS_PER_GENERATOR} sockets each), source addresses ${plan.slices[0]!.addresses[0]}-${plan.slices[plan.slices.length - 1]!.addresses.slice(-1)[0]}`,
  );

  // 1. RSA ceiling
  const ceiling1 = await rsaCeiling(settings.ceilingSeconds);
  log(`RSA ceiling: ${ceiling1.opsPerSec} RSA-OAEP-SHA256 private decrypts/s (${ceiling1.threads} threads, ${ceiling1.usPerOp} µs each with every core busy)`);

  // 2. keys and provisioning
  const primes = primesForKeys(sessions);
  const pool = await ensurePrimePool(primes, 'sessions');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-sessions-'));
  const dataDir = path.join(dir, 'data');
  let fleet: Fleet | null = null;
  let node: LatchkeyNode | null = null;
  const floors: EchoProcess[] = [];
  try {
    fleet = new Fleet(plan, { primes, appToken: APP_TOKEN, keepAliveSec: settings.keepAliveSec, attemptTimeoutMs: settings.attemptTimeoutMs, confirmEvery: 97, resume: settings.resume }, log);
    for (const p of fleet.pids) track(p);
    const tKeys = Date.now();
    const [prov] = await Promise.all([
      provision(dataDir, pool, sessions, APP_TOKEN, log),
      fleet.ask(null, 'ready', Math.min(left(), 60_000 + sessions * 2), 'generators deriving keys'),
    ]);
    log(`keys derived and ${sessions} credentials provisioned in ${((Date.now() - tKeys) / 1000).toFixed(1)} s (provisioning alone ${prov.seconds.toFixed(1)} s)`);
    // The node's gateway processes run at gatewayNice (5 by default): the generators run at the same
    // nice value, so that they and the gateways share the cores as equals, as they did before the node
    // lowered its gateways (otherwise 14 generators at nice 0 took ~130% of the 200% in a storm).
    const genNice = Number(settings.serverEnv.LATCHKEY_GATEWAY_NICE ?? 5);
    const reniced = fleet.pids.map((p) => setProcessNice(genNice, p)).reduce((a, b) => a + b, 0);
    log(`generators at nice ${genNice} (the gateways' gatewayNice): ${reniced} threads`);

    // 4. floor
    const floorProcesses = Math.ceil(sessions / perProcessCap);
    for (let i = 0; i < floorProcesses; i++) {
      const f = await startEchoProcess(15_000);
      track(f.child.pid);
      floors.push(f);
    }
    const floorPids = (): number[] => floors.map((f) => f.child.pid!);
    const floorBase = await settleRss(floorPids, 10, (s) => log(`floor baseline: ${s}`), 3);
    const floorT0 = Date.now();
    fleet.send({ t: 'connect', ports: floors.map((f) => f.port), concurrency: Math.ceil(1024 / plan.generators), handshake: false });
    const floorConnected = await waitFor(fleet, 'floor', sessions, Math.min(left(), 120_000 + sessions), null, null, floorPids);
    const floorConnectSeconds = (Date.now() - floorT0) / 1000;
    const floorAfter = await settleRss(floorPids, settings.settleMaxSeconds, (s) => log(`floor, ${floorConnected} connections: ${s}`));
    const floorRssKiBPerSession = (floorAfter.rssBytes - floorBase.rssBytes) / 1024 / Math.max(1, floorConnected);
    log(`floor: ${floorConnected} plain uWS connections in ${floorProcesses} processes: ${floorRssKiBPerSession.toFixed(3)} KiB each (settled: ${floorAfter.settled})`);
    await fleet.ask({ t: 'drop' }, 'dropped', 30_000 + sessions, 'dropping the floor connections');
    for (const f of floors.splice(0)) await f.stop();
    fleet.check();

    // 5. the node
    const port = await freePort();
    const adminPort = await freePort();
    const env: Record<string, string> = { ...LIMITS_OFF, LATCHKEY_HANDSHAKE_WINDOW_SEC: String(BENCH_HANDSHAKE_WINDOW_SEC), LATCHKEY_HOST: '127.0.0.1', LATCHKEY_ADMIN_HOST: '127.0.0.1', LATCHKEY_LOG_LEVEL: 'warn', ...settings.serverEnv };
    log(`starting latchkey serve: ${processes} gateway process(es), ws://127.0.0.1:${port}/ep/v1, admin ${adminPort}`);
    node = await LatchkeyNode.start({ dataDir, port, adminPort, processes, env, nodeArgs: serverNodeArgs, startTimeoutMs: 60_000 + processes * 10_000, inspect: settings.gc });
    const ring = JSON.parse(fs.readFileSync(path.join(dataDir, 'keys/keyring.json'), 'utf8')) as { keys: Array<{ id: string; status: string }> };
    const keyId = ring.keys.find((k) => k.status === 'active')!.id;
    const pem = fs.readFileSync(path.join(dataDir, `keys/${keyId}.pub.pem`), 'utf8');
    const serverSpki = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const gw0 = await node.gatewayPids();
    log(`node up: processes ${node.pids().join(', ')} (gateways from ${gw0.source}: ${gw0.pids.join(', ')})`);
    if (settings.gc && !(await node.gc())) notes.push('--gc asked but no inspector answered: memory read without forced GC');
    const base = await settleRss(() => node!.pids(), 30, (s) => log(`node baseline: ${s}`));
    const memBase = await node.memory();
    log(`node baseline by process: ${memoryLine(memBase)}`);

    // 6. ramp (the quiet wait comes before the signing, which fixes the timestamps)
    const quietBeforeRamp = await waitQuiet('before the ramp', () => [...node!.pids(), ...fleet!.pids]);
    const estRate = Math.max(100, ceiling1.opsPerSec * 0.5);
    const signEstMs = (sessions * 350) / 1000 / Math.max(1, os.availableParallelism()) + 2000;
    const rampT0Est = Date.now() + signEstMs;
    log(`signing ${sessions} CONNECTs (not timed; ~${(signEstMs / 1000).toFixed(0)} s), timestamped for a ramp of ~${estRate.toFixed(0)}/s`);
    const signed1 = await fleet.ask({ t: 'sign', kind: 'connect', label: 'ramp', serverKeyId: keyId, serverSpki, baseTs: rampT0Est, stepMs: (1000 * plan.generators) / estRate }, 'signed', Math.min(left(), 120_000 + sessions * 3), 'signing ramp CONNECTs');
    log(`signed in ${(Math.max(...signed1.map((s) => s.ms)) / 1000).toFixed(1)} s (planned ${(signEstMs / 1000).toFixed(1)} s)`);
    await sleep(rampT0Est - Date.now()); // early: start when the timestamps say

    timeZero = Date.now();
    phaseStart('ramp');
    const rampCpu0 = cpuMark(node.pids(), fleet);
    const rampT0 = Date.now();
    fleet.send({ t: 'connect', ports: [port], concurrency: Math.ceil(settings.concurrency / plan.generators), handshake: true });
    const held = await waitFor(fleet, 'ramp', sessions, Math.min(left() - 60_000, 300_000 + sessions * 10), node, null);
    const rampTick = fleet.totals();
    const rampCpu = cpuWindow(rampCpu0, cpuMark(node.pids(), fleet));
    const rampEnd = rampTick.lastAcceptAt || Date.now();
    const rampSeconds = (rampEnd - rampT0) / 1000;
    const handshakesPerSec = rampTick.accepted / Math.max(0.001, rampSeconds);
    const perHs = (us: number): number => Math.round(us / Math.max(1, rampTick.accepted));
    const rampProfile = {
      primaryMain: perHs(rampCpu.nodeUs.primaryMain), primaryOther: perHs(rampCpu.nodeUs.primaryOther),
      gatewayMain: perHs(rampCpu.nodeUs.gatewayMain), gatewayCrypto: perHs(rampCpu.nodeUs.gatewayCrypto), gatewayOther: perHs(rampCpu.nodeUs.gatewayOther),
      total: perHs(Object.values(rampCpu.nodeUs).reduce((x, y) => x + y, 0)),
      rsaFloor: Math.round((os.availableParallelism() * 1e6) / ceiling1.opsPerSec),
    };
    log(`ramp: node CPU per accepted handshake (µs): ${JSON.stringify(rampProfile)} (rsaFloor: one RSA decrypt with every core busy)`);
    log(`ramp: ${held}/${sessions} sessions held; ${rampTick.accepted} accepted in ${rampSeconds.toFixed(1)} s = ${handshakesPerSec.toFixed(0)}/s; failures: ${failuresLine(rampTick.failures)}; re-signed ${rampTick.resigned}` +
      (settings.resume ? `; tickets asked ${rampTick.ticketsAsked}, received ${rampTick.ticketsReceived} (TICKETREQ right after each CONNACK, as the SDK)` : ''));

    // 7. memory
    phaseStart('settle');
    const after = await settleRss(() => node!.pids(), settings.settleMaxSeconds, (s) => {
      log(`after the ramp: ${s}`);
      sample(fleet!, node, 'settle');
    });
    const afterRampKiBPerSession = (after.rssBytes - base.rssBytes) / 1024 / Math.max(1, held);
    log(`memory right after the ramp: ${(base.rssBytes / 2 ** 20).toFixed(1)} -> ${(after.rssBytes / 2 ** 20).toFixed(1)} MiB over ${node.pids().length} processes: ${afterRampKiBPerSession.toFixed(3)} KiB per session (floor ${floorRssKiBPerSession.toFixed(3)})`);

    // 8. hold
    phaseStart('hold');
    await node.metrics(); // resets prom-client's event-loop delay histogram
    await fleet.mark();
    const holdCpu0 = cpuMark(node.pids(), fleet);
    const holdTick0 = fleet.totals();
    const holdEnd = Date.now() + settings.holdSeconds * 1000;
    while (Date.now() < holdEnd) {
      await sleep(Math.min(1000, holdEnd - Date.now()));
      fleet.check();
      const x = sample(fleet, node, 'hold');
      log(`hold ${((settings.holdSeconds * 1000 - (holdEnd - Date.now())) / 1000).toFixed(0)}/${settings.holdSeconds} s: ${x.established} sessions, pings ${x.pingsSent - holdTick0.pingsSent} sent / ${x.pongs - holdTick0.pongs} answered, lost ${x.lost - holdTick0.lost}, node RSS ${(node.rss() / 2 ** 20).toFixed(1)} MiB`);
    }
    const holdCpu = cpuWindow(holdCpu0, cpuMark(node.pids(), fleet));
    const metricsEnd = await node.metrics();
    const rtt = await fleet.mark();
    const holdTick = fleet.totals();
    const lag = lagP99Ms(metricsEnd);
    const health = await node.healthz();
    const nodeOpen = nodeSessions(health);
    const rssEndOfHold = node.rss();
    const pingRttP99Ms = histPercentile(rtt.hist, 99);
    const pingRttP50Ms = histPercentile(rtt.hist, 50);
    // The headline memory figure: after the hold (the ramp's garbage has had --hold seconds of
    // idle sessions and keepalive traffic to be collected in: right after the ramp the heap still
    // holds it, RSS is flat and 10-20 % higher), once RSS is stable again.
    phaseStart('settle');
    const quietRss = await settleRss(() => node!.pids(), settings.settleMaxSeconds, (s) => {
      log(`after the hold: ${s}`);
      sample(fleet!, node, 'settle');
    });
    let heldForMemory = fleet.totals().established;
    const noGcKiBPerSession = (quietRss.rssBytes - base.rssBytes) / 1024 / Math.max(1, heldForMemory);
    let gcRss = quietRss;
    if (settings.gc && (await node.gc())) {
      gcRss = await settleRss(() => node!.pids(), settings.settleMaxSeconds, (s) => {
        log(`after the hold and a forced GC: ${s}`);
        sample(fleet!, node, 'settle');
      });
      heldForMemory = fleet.totals().established;
      log(`memory before the forced GC: ${noGcKiBPerSession.toFixed(3)} KiB per session`);
    }
    const memHeld = await node.memory();
    const byProcess = memoryDelta(memBase, memHeld, heldForMemory);
    log(`memory by process after the hold: ${memoryLine(memHeld)}; per session: ${JSON.stringify(byProcess.perSessionKiB)}`);
    const serverRssKiBPerSession = (gcRss.rssBytes - base.rssBytes) / 1024 / Math.max(1, heldForMemory);
    log(`memory: ${(base.rssBytes / 2 ** 20).toFixed(1)} -> ${(gcRss.rssBytes / 2 ** 20).toFixed(1)} MiB over ${node.pids().length} processes with ${heldForMemory} sessions: ${serverRssKiBPerSession.toFixed(3)} KiB per session (floor ${floorRssKiBPerSession.toFixed(3)}; right after the ramp ${afterRampKiBPerSession.toFixed(3)})`);
    log(`hold: ping RTT p50 ${r2(pingRttP50Ms)} / p99 ${r2(pingRttP99Ms)} ms over ${histCount(rtt.hist)} pings; event-loop lag p99 ${lag.ms ?? 'n/a'} ms (${lag.series} series); node says ${nodeOpen ?? '?'} sessions open; RSS ${(rssEndOfHold / 2 ** 20).toFixed(1)} MiB`);

    // 9. storms: resumed first (endpoints holding tickets), then full
    interface StormResult {
      kind: 'resume' | 'connect';
      seconds: number | null;
      heldAtKill: number;
      back: number;
      budgetSeconds: number;
      killed: number;
      restartedBy: string;
      firstAcceptAfterKillSeconds: number | null;
      fromFirstAcceptSeconds: number | null;
      /** Seconds from the kill until half, 90 % and 99 % of the sessions held at it were back (within 2 %): the tail is the endpoints' backoff. */
      backAfterSeconds: { p50: number | null; p90: number | null; p99: number | null };
      failures: Record<string, number>;
      /** Paced refusals (failures 'paced:4003': the node gave a return time) and their mean return time, s. */
      paced: { refusals: number; meanWaitSeconds: number | null };
      terminal: number;
      resigned: number;
      resumesOnSpot: number;
      accepted: number;
      acceptedResumed: number;
      resumeFallbacks: number;
      prepared: { connects: number; resumes: number };
      ticketsHeldAtKill: number;
      cpu: CpuWindow;
      /** Node CPU per handshake accepted in the storm window, µs, by process and thread role. */
      cpuPerHandshakeUs: Record<string, number>;
      otherCpuPercentBefore: number;
    }
    /** Time the full storm keeps for itself when the resumed one runs first. */
    const FULL_STORM_RESERVE_MS = 180_000;
    const runStorm = async (kind: 'resume' | 'connect', budgetMs: (heldAtKill: number) => number): Promise<StormResult> => {
      const label = kind === 'resume' ? 'resumed storm' : 'storm';
      // Every session must have lasted STABLE_SESSION_MS at the kill, so that every endpoint's
      // backoff starts from its first step (the SDK resets it after a session that lasted 30 s):
      // else the second storm would start where the first one's retries left each endpoint.
      const stableAt = fleet!.totals().lastAcceptAt + STABLE_SESSION_MS + 1000;
      if (Date.now() < stableAt) {
        log(`${label}: waiting ${((stableAt - Date.now()) / 1000).toFixed(0)} s until every session has lasted ${STABLE_SESSION_MS / 1000} s (the SDK's backoff resets then)`);
        while (Date.now() < stableAt) {
          await sleep(Math.min(1000, stableAt - Date.now()));
          fleet!.check();
          sample(fleet!, node, 'hold');
        }
      }
      const quiet = await waitQuiet(`before the ${label}`, () => [...node!.pids(), ...fleet!.pids]);
      phaseStart(kind === 'resume' ? 'prepare' : 'sign');
      const before = fleet!.totals();
      const estMs = kind === 'resume'
        ? (before.ticketsHeld * 40 + Math.max(0, before.established - before.ticketsHeld) * 350) / 1000 / Math.max(1, os.availableParallelism()) + 2000
        : (before.established * 350) / 1000 / Math.max(1, os.availableParallelism()) + 2000;
      // Every storm frame carries one timestamp, 90 s after the planned kill: the node takes it
      // within its window (BENCH_HANDSHAKE_WINDOW_SEC either side), the generators use it until
      // RESIGN_AFTER_MS from it and prepare later ones on the spot. Done early: wait for the plan.
      const killPlanned = Date.now() + estMs;
      const signed = await fleet!.ask({ t: 'sign', kind, label, serverKeyId: keyId, serverSpki, baseTs: killPlanned + 90_000, stepMs: 0 }, 'signed', Math.min(left(), 120_000 + held * 3), kind === 'resume' ? 'preparing RESUMEs' : 'signing storm CONNECTs');
      const prepared = { connects: signed.reduce((n, x) => n + x.connects, 0), resumes: signed.reduce((n, x) => n + x.resumes, 0) };
      log(`${label}: prepared ${prepared.resumes} RESUMEs and ${prepared.connects} signed CONNECTs in ${(Math.max(...signed.map((x) => x.ms)) / 1000).toFixed(1)} s`);
      await sleep(killPlanned - Date.now());
      const armed = await fleet!.ask({ t: 'arm' }, 'armed', 10_000, `arming the ${label}`);
      const heldAtKill = armed.reduce((n, x) => n + x.held, 0);
      const t0 = fleet!.totals();
      phaseStart(kind === 'resume' ? 'resumed storm' : 'storm');
      const cpu0 = cpuMark(node!.pids(), fleet!);
      const kill = await node!.killGateways();
      log(`${label}: SIGKILLed ${kill.killed.length} gateway process(es) (${kill.killed.join(', ')}) holding ${heldAtKill} sessions (${t0.ticketsHeld} endpoints hold a ticket); restarted by ${kill.restartedBy}`);
      const budget = budgetMs(heldAtKill);
      const back = await waitFor(fleet!, label, heldAtKill, budget, node, kill.at);
      const tick = fleet!.totals();
      const cpu = cpuWindow(cpu0, cpuMark(node!.pids(), fleet!));
      const seconds = tick.allBackAt ? (tick.allBackAt - kill.at) / 1000 : null;
      // Until the node took handshakes again (the gateway processes' restart), and from then on.
      const restart = tick.firstBackAt ? (tick.firstBackAt - kill.at) / 1000 : null;
      // When each session came back, from the arm (a few ms before the kill), 2 % buckets.
      const backTimes = newHist();
      // Generators still retrying 100k+ sockets (a storm that did not converge) answer slowly: the 250k
      // run of 2026-12-04 lost its results to a 10 s bound here.
      for (const x of await fleet!.ask({ t: 'backtimes' }, 'backtimes', Math.max(10_000, Math.min(120_000, left())), 'back times')) histMerge(backTimes, x.hist);
      const backAt = (p: number): number | null => {
        // A percentile of the sessions held at the kill: null while fewer than that came back.
        if (histCount(backTimes) < Math.ceil((p / 100) * heldAtKill)) return null;
        const units = histPercentile(backTimes, (p * heldAtKill) / Math.max(1, histCount(backTimes)));
        return units === null ? null : r2((units * BACK_TIME_UNIT_MS) / 1000);
      };
      const accepted = tick.accepted - t0.accepted;
      const per = (us: number): number => Math.round(us / Math.max(1, accepted));
      const cpuPerHandshakeUs = {
        primaryMain: per(cpu.nodeUs.primaryMain), primaryOther: per(cpu.nodeUs.primaryOther),
        gatewayMain: per(cpu.nodeUs.gatewayMain), gatewayCrypto: per(cpu.nodeUs.gatewayCrypto), gatewayOther: per(cpu.nodeUs.gatewayOther),
        total: per(Object.values(cpu.nodeUs).reduce((x, y) => x + y, 0)),
      };
      const result: StormResult = {
        kind, seconds, heldAtKill, back, budgetSeconds: Math.round(budget / 1000), killed: kill.killed.length, restartedBy: kill.restartedBy,
        firstAcceptAfterKillSeconds: r2(restart), fromFirstAcceptSeconds: seconds !== null && restart !== null ? r2(seconds - restart) : null,
        backAfterSeconds: { p50: backAt(50), p90: backAt(90), p99: backAt(99) },
        failures: diffCounts(tick.failures, t0.failures), paced: pacedOf(diffCounts(tick.failures, t0.failures), tick.pacedWaitMs - t0.pacedWaitMs), terminal: tick.terminal - t0.terminal, resigned: tick.resigned - t0.resigned, resumesOnSpot: tick.resumesOnSpot - t0.resumesOnSpot,
        accepted, acceptedResumed: tick.acceptedResumed - t0.acceptedResumed, resumeFallbacks: tick.resumeFallbacks - t0.resumeFallbacks, prepared, ticketsHeldAtKill: t0.ticketsHeld,
        cpu, cpuPerHandshakeUs, otherCpuPercentBefore: +quiet.toFixed(1),
      };
      log(`${label}: ${back}/${heldAtKill} back${seconds !== null ? ` in ${seconds.toFixed(1)} s` : ` after ${(budget / 1000).toFixed(0)} s (not all)`}; ${result.acceptedResumed} of ${accepted} accepted handshakes resumed, ${result.resumeFallbacks} fell back to CONNECT; failures: ${failuresLine(result.failures)}; paced ${result.paced.refusals} (mean return time ${String(result.paced.meanWaitSeconds)} s); re-signed ${result.resigned}, RESUMEs prepared on the spot ${result.resumesOnSpot}; node CPU per handshake ${JSON.stringify(cpuPerHandshakeUs)} µs`);
      return result;
    };
    const fullBudget = (heldAtKill: number): number => Math.min(left() - 20_000, Math.max(120_000, (heldAtKill / ceiling1.opsPerSec) * 10_000));
    const resumedStorm = settings.resume
      ? await runStorm('resume', (heldAtKill) => Math.max(30_000, Math.min(left() - 20_000 - FULL_STORM_RESERVE_MS, Math.max(120_000, heldAtKill * 2))))
      : null;
    const fullStorm = await runStorm('connect', fullBudget);
    const heldAtKill = fullStorm.heldAtKill;
    const reconnectStormSeconds = fullStorm.seconds;
    const resumedStormSeconds = resumedStorm?.seconds ?? null;
    phaseStart('end');
    const healthAfter = await node.healthz();
    const gwAfter = await node.gatewayPids();

    // cleanup
    // The measurements are taken: a generator slow to let go of its sockets (a storm that never
    // settled leaves each with thousands of attempts in flight) is noted, and killed below.
    try {
      await fleet.ask({ t: 'drop' }, 'dropped', 30_000 + sessions, 'dropping the sessions');
    } catch (err) {
      notes.push(`cleanup: ${(err as Error).message}`);
    }
    await node.stop();
    if (process.env.LATCHKEY_BENCH_SERVER_LOG) fs.writeFileSync(process.env.LATCHKEY_BENCH_SERVER_LOG, node.server.logs.join('\n') + '\n');
    node = null;
    await fleet.stop();
    fleet = null;

    // 10. ceiling again
    const ceiling2 = await rsaCeiling(settings.ceilingSeconds);
    const ceiling: RsaCeiling = ceiling2.opsPerSec > ceiling1.opsPerSec ? ceiling2 : ceiling1;
    log(`RSA ceiling again: ${ceiling2.opsPerSec}/s (before: ${ceiling1.opsPerSec}/s); using ${ceiling.opsPerSec}/s`);

    const reconnectStormFloorSeconds = heldAtKill / ceiling.opsPerSec;
    const targets = {
      serverRssKiBPerSession: { target: '<= 1.5', met: serverRssKiBPerSession <= 1.5 },
      handshakeRatioToCeiling: { target: '>= 0.6', met: handshakesPerSec / ceiling.opsPerSec >= 0.6 },
      reconnectStorm: { target: '<= 1.5 x reconnectStormFloorSeconds', met: reconnectStormSeconds !== null && reconnectStormSeconds <= 1.5 * reconnectStormFloorSeconds },
      // A full storm that did not converge took longer than its budget: a resumed one within a quarter of that budget meets it too.
      resumedStorm: {
        target: '<= 0.25 x reconnectStormSeconds',
        met: resumedStormSeconds !== null && resumedStormSeconds <= 0.25 * (reconnectStormSeconds ?? fullStorm.budgetSeconds),
      },
    };
    const result = {
      bench: 'sessions',
      machine,
      settings: { ...settings, sessionsRun: sessions },
      notes,
      sessionsRequested: settings.sessions,
      sessionsHeld: held,
      serverRssKiBPerSession: r3(serverRssKiBPerSession),
      floorRssKiBPerSession: r3(floorRssKiBPerSession),
      rssRatioToFloor: r2(serverRssKiBPerSession / floorRssKiBPerSession),
      handshakesPerSec: Math.round(handshakesPerSec),
      rsaCeilingPerSec: ceiling.opsPerSec,
      handshakeRatioToCeiling: r3(handshakesPerSec / ceiling.opsPerSec),
      pingRttP99Ms: r2(pingRttP99Ms),
      eventLoopLagP99Ms: lag.ms,
      reconnectStormSeconds: r2(reconnectStormSeconds),
      reconnectStormFloorSeconds: r2(reconnectStormFloorSeconds),
      reconnectStormRatioToFloor: reconnectStormSeconds !== null ? r2(reconnectStormSeconds / reconnectStormFloorSeconds) : null,
      resumedStormSeconds: r2(resumedStormSeconds),
      /** resumedStormSeconds / reconnectStormSeconds (null when either did not converge). */
      resumedStormRatioToFull: resumedStormSeconds !== null && reconnectStormSeconds !== null ? r3(resumedStormSeconds / reconnectStormSeconds) : null,
      stormOrder: settings.resume ? 'resumed storm first, then the full storm' : 'full storm only (--no-resume)',
      processes,
      targets,
      detail: {
        multiProcessBuild: multi,
        generators: plan.generators,
        sourceAddresses: plan.slices.flatMap((s) => s.addresses).length,
        memory: {
          method: settings.gc
            ? 'summed VmRSS of the primary and every gateway process after the hold and two forced full GCs in every thread (inspector), once stable within 1 % over 5 s, minus the same (also after GCs) before the ramp'
            : 'summed VmRSS of the primary and every gateway process after the hold, once stable within 1 % over 5 s (no forced GC: --no-gc), minus the same before the ramp',
          forcedGc: settings.gc,
          baselineMiB: r2(base.rssBytes / 2 ** 20),
          afterHoldMiB: r2(gcRss.rssBytes / 2 ** 20),
          settled: gcRss.settled,
          settleSeconds: r2(gcRss.seconds),
          afterHoldNoGcMiB: r2(quietRss.rssBytes / 2 ** 20),
          afterHoldNoGcKiBPerSession: r3(noGcKiBPerSession),
          byProcess,
          sessionsAtMeasurement: heldForMemory,
          afterRampMiB: r2(after.rssBytes / 2 ** 20),
          afterRampKiBPerSession: r3(afterRampKiBPerSession),
          afterRampSettled: after.settled,
          endOfHoldMiB: r2(rssEndOfHold / 2 ** 20),
          endOfHoldKiBPerSession: r3((rssEndOfHold - base.rssBytes) / 1024 / Math.max(1, held)),
          floorProcesses,
          floorBaselineMiB: r2(floorBase.rssBytes / 2 ** 20),
          floorAfterMiB: r2(floorAfter.rssBytes / 2 ** 20),
          floorSettled: floorAfter.settled,
          floorConnections: floorConnected,
          floorConnectSeconds: r2(floorConnectSeconds),
        },
        ramp: { seconds: r2(rampSeconds), accepted: rampTick.accepted, attempts: rampTick.attempts, failures: rampTick.failures, errors: rampTick.errors, resigned: rampTick.resigned, concurrency: settings.concurrency, cpu: rampCpu, cpuPerHandshakeUs: rampProfile, confirmationsChecked: rampTick.confirmationsChecked, confirmationsBad: rampTick.confirmationsBad },
        hold: {
          seconds: settings.holdSeconds, keepAliveSec: settings.keepAliveSec, pings: histCount(rtt.hist), pingRttP50Ms: r2(pingRttP50Ms), pingRttP999Ms: r2(histPercentile(rtt.hist, 99.9)),
          pingTimeouts: holdTick.pingTimeouts - holdTick0.pingTimeouts, lost: holdTick.lost - holdTick0.lost, nodeSessionsOpen: nodeOpen, eventLoopLagSeries: lag.series, cpu: holdCpu,
        },
        storm: {
          ...fullStorm, nodeSessionsOpenAfter: nodeSessions(healthAfter), gatewaysAfter: gwAfter.pids.length,
          sdkBackoff: 'full jitter in [0, min(30 s, 500 ms x 2^attempt)], attempt reset by a session that lasted 30 s (src/sdk/client.ts)',
        },
        resumedStorm,
        tickets: { askedInRamp: rampTick.ticketsAsked, receivedInRamp: rampTick.ticketsReceived },
        rsaCeiling: { before: ceiling1, after: ceiling2 },
        otherCpuPercentBeforeRamp: +quietBeforeRamp.toFixed(1),
        otherCpuPercentBeforeStorm: fullStorm.otherCpuPercentBefore,
        otherCpuPercentBeforeResumedStorm: resumedStorm?.otherCpuPercentBefore ?? null,
        generatorRssMiB: r2(rampTick.rssBytes / 2 ** 20),
      },
      timeline,
      phases,
    };
    writeResults(result);
  } finally {
    if (fleet) await fleet.stop().catch(() => undefined);
    if (node) await node.stop().catch(() => undefined);
    for (const f of floors) await f.stop().catch(() => undefined);
    killTracked();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function diffCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(a)) if (v - (b[k] ?? 0) > 0) out[k] = v - (b[k] ?? 0);
  return out;
}

let lastAccepted = 0;
/** One timeline point (once a second): sessions held, the node's RSS, handshakes in the last second. */
function sample(fleet: Fleet, node: LatchkeyNode | null, phase: string): Tick {
  const x = fleet.totals();
  if (node && timeZero) {
    const acc = x.accepted;
    timeline.push({ t: +((Date.now() - timeZero) / 1000).toFixed(1), phase, sessions: x.established, rssMiB: +(node.rss() / 2 ** 20).toFixed(1), handshakesPerSec: Math.max(0, acc - lastAccepted) });
    lastAccepted = acc;
  }
  return x;
}

/**
 * Wait (progress once a second) until `target` sessions are established (storm: back since the
 * kill at `since`), at most `timeoutMs`; returns how many are. A run that stops gaining for 60 s
 * ends early.
 */
async function waitFor(fleet: Fleet, phase: string, target: number, timeoutMs: number, node: LatchkeyNode | null, since: number | null, rssPids: () => number[] = () => node?.pids() ?? []): Promise<number> {
  const t0 = Date.now();
  const until = t0 + Math.max(5_000, timeoutMs);
  let prev = 0;
  let lastGain = Date.now();
  let prevAccepted = fleet.totals().accepted;
  for (;;) {
    await sleep(1000);
    fleet.check();
    const x = node ? sample(fleet, node, phase) : fleet.totals();
    const have = since !== null ? x.back : x.established;
    if (have > prev) lastGain = Date.now();
    prev = have;
    const rss = ` ${node ? 'node' : 'floor'} RSS ${(rssSum(rssPids()) / 2 ** 20).toFixed(0)} MiB,`;
    const perSec = x.accepted - prevAccepted;
    prevAccepted = x.accepted;
    log(
      `${phase} ${((Date.now() - (since ?? t0)) / 1000).toFixed(0)} s: ${have}/${target} ${since !== null ? 'back' : 'open'} (+${perSec}/s, in flight ${x.inflight}, waiting ${Math.max(0, target - have - x.inflight)}),${rss} ` +
        `failures ${failuresLine(x.failures)}${x.terminal ? `, terminal ${x.terminal}` : ''}${Object.keys(x.errors).length ? `, socket errors ${failuresLine(x.errors)}` : ''} [${elapsed()}]`,
    );
    if (since !== null ? x.allBackAt > 0 : have >= target) return have;
    if (Date.now() > until) {
      log(`${phase}: stopped waiting after ${((Date.now() - t0) / 1000).toFixed(0)} s with ${have}/${target}`);
      return have;
    }
    if (Date.now() - lastGain > 60_000 && x.inflight === 0) {
      log(`${phase}: no progress for 60 s; going on with ${have}/${target}`);
      return have;
    }
  }
}

type Result = Record<string, unknown> & {
  machine: ReturnType<typeof machineInfo>;
  timeline: Point[];
  phases: Array<{ name: string; from: number; to: number }>;
};

function writeResults(result: Result): void {
  const r = result;
  const row = (k: string, v: unknown, note = ''): string => `| ${k} | ${v === null || v === undefined ? 'n/a' : String(v)} | ${note} |`;
  const t = r.targets as unknown as Record<string, { target: string; met: boolean }>;
  const d = r.detail as unknown as {
    memory: Record<string, unknown>; ramp: Record<string, unknown>; hold: Record<string, unknown>; storm: Record<string, unknown>; resumedStorm: Record<string, unknown> | null; generators: number; sourceAddresses: number; multiProcessBuild: boolean;
  };
  const rs = d.resumedStorm;
  const table = [
    '| metric | value | note |',
    '|---|---|---|',
    row('sessionsHeld', r.sessionsHeld, `of ${r.sessionsRequested} asked; ${r.processes} gateway process(es), ${d.generators} generators on ${d.sourceAddresses} source addresses`),
    row('**serverRssKiBPerSession**', r.serverRssKiBPerSession, `target ${t.serverRssKiBPerSession!.target}: ${t.serverRssKiBPerSession!.met ? 'met' : 'NOT met'}; all node processes, after the hold${d.memory.forcedGc ? ' and a forced GC' : ''}, RSS settled: ${String(d.memory.settled)}`),
    row('floorRssKiBPerSession', r.floorRssKiBPerSession, `plain uWS, ${String(d.memory.floorProcesses)} process(es); ratio ${String(r.rssRatioToFloor)}`),
    row('handshakesPerSec', r.handshakesPerSec, `during the ramp (${String(d.ramp.seconds)} s, ${String(d.ramp.concurrency)} in flight)`),
    row('rsaCeilingPerSec', r.rsaCeilingPerSec, 'RSA-OAEP-SHA256 private decrypts/s, every core busy'),
    row('**handshakeRatioToCeiling**', r.handshakeRatioToCeiling, `target ${t.handshakeRatioToCeiling!.target}: ${t.handshakeRatioToCeiling!.met ? 'met' : 'NOT met'}`),
    row('pingRttP99Ms', r.pingRttP99Ms, `${String(d.hold.pings)} pings over the ${String(d.hold.seconds)} s hold, keepalive ${String(d.hold.keepAliveSec)} s; p50 ${String(d.hold.pingRttP50Ms)}`),
    row('eventLoopLagP99Ms', r.eventLoopLagP99Ms, "node's /metrics nodejs_eventloop_lag_p99_seconds at the end of the hold (prom-client, 10 ms resolution)"),
    row('**reconnectStormSeconds**', r.reconnectStormSeconds, `target ${t.reconnectStorm!.target}: ${t.reconnectStorm!.met ? 'met' : 'NOT met'}; ${String(d.storm.back)}/${String(d.storm.heldAtKill)} back; restarted by ${String(d.storm.restartedBy)}`),
    row('reconnectStormFloorSeconds', r.reconnectStormFloorSeconds, `N / rsaCeilingPerSec; ratio ${String(r.reconnectStormRatioToFloor)}`),
    row('**resumedStormSeconds**', r.resumedStormSeconds, rs
      ? `target ${t.resumedStorm!.target}: ${t.resumedStorm!.met ? 'met' : 'NOT met'} (ratio ${String(r.resumedStormRatioToFull)}); ${String(rs.back)}/${String(rs.heldAtKill)} back, ${String(rs.acceptedResumed)} of ${String(rs.accepted)} handshakes resumed, ${String(rs.resumeFallbacks)} fell back to CONNECT; ${String(r.stormOrder)}`
      : 'not run (--no-resume)'),
    row('node CPU per storm handshake, µs: full / resumed', `${String((d.storm.cpuPerHandshakeUs as Record<string, number>).total)} / ${rs ? String((rs.cpuPerHandshakeUs as Record<string, number>).total) : 'n/a'}`, 'all node processes over the storm window (the gateways\' restart included) / handshakes accepted in it'),
    row('90 % back after, s: full / resumed', `${String((d.storm.backAfterSeconds as Record<string, unknown>).p90)} / ${rs ? String((rs.backAfterSeconds as Record<string, unknown>).p90) : 'n/a'}`, 'from the kill; the rest of a storm is the endpoints\' backoff tail'),
    row('processes', r.processes, d.multiProcessBuild ? 'gateway processes (plus the primary)' : 'one process: this build has no processes setting'),
  ].join('\n');
  const extra = [
    `- memory: node RSS ${String(d.memory.baselineMiB)} MiB before the ramp, ${String(d.memory.afterRampMiB)} MiB right after it (${String(d.memory.afterRampKiBPerSession)} KiB/session), ${String(d.memory.endOfHoldMiB)} MiB at the end of the hold, ${String(d.memory.afterHoldMiB)} MiB once settled after it (${String(d.memory.settleSeconds)} s; the headline figure); ${d.memory.forcedGc ? `after two forced full GCs in every thread (before them: ${String(d.memory.afterHoldNoGcMiB)} MiB, ${String(d.memory.afterHoldNoGcKiBPerSession)} KiB/session)` : 'no forced GC'}`,
    `- memory per session by process (KiB): ${JSON.stringify((d.memory.byProcess as { perSessionKiB?: unknown } | undefined)?.perSessionKiB ?? null)}`,
    `- ramp: node CPU per accepted handshake, µs, by process and thread role (main = event loop, crypto = crypto worker threads, other = V8 GC/compiler helpers and libuv): ${JSON.stringify(d.ramp.cpuPerHandshakeUs)}`,
    `- ramp: ${String(d.ramp.accepted)} accepted of ${String(d.ramp.attempts)} attempts; failures ${JSON.stringify(d.ramp.failures)}; re-signed on the spot ${String(d.ramp.resigned)}; CONNACK confirmations checked ${String(d.ramp.confirmationsChecked)} (bad ${String(d.ramp.confirmationsBad)}); CPU ${JSON.stringify(d.ramp.cpu)}`,
    `- hold: ping timeouts ${String(d.hold.pingTimeouts)}, sessions lost ${String(d.hold.lost)}, node reports ${String(d.hold.nodeSessionsOpen)} open; CPU ${JSON.stringify(d.hold.cpu)}`,
    ...(rs ? [`- resumed storm: first session back ${String(rs.firstAcceptAfterKillSeconds)} s after the kill (restart), all back ${String(rs.fromFirstAcceptSeconds)} s after that; half / 90 % / 99 % back ${JSON.stringify(rs.backAfterSeconds)} s after the kill; prepared ${JSON.stringify(rs.prepared)}; endpoints holding a ticket at the kill ${String(rs.ticketsHeldAtKill)}; failures ${JSON.stringify(rs.failures)}; terminal ${String(rs.terminal)}; RESUMEs prepared on the spot ${String(rs.resumesOnSpot)}, CONNECTs signed on the spot ${String(rs.resigned)}; node CPU per handshake ${JSON.stringify(rs.cpuPerHandshakeUs)} µs; CPU ${JSON.stringify(rs.cpu)}`] : []),
    `- storm: first session back ${String(d.storm.firstAcceptAfterKillSeconds)} s after the kill (restart), all back ${String(d.storm.fromFirstAcceptSeconds)} s after that; half / 90 % / 99 % back ${JSON.stringify(d.storm.backAfterSeconds)} s after the kill; failures ${JSON.stringify(d.storm.failures)}; terminal ${String(d.storm.terminal)}; re-signed ${String(d.storm.resigned)}; node reports ${String(d.storm.nodeSessionsOpenAfter)} open after, ${String(d.storm.gatewaysAfter)} gateway process(es); node CPU per handshake ${JSON.stringify(d.storm.cpuPerHandshakeUs)} µs; CPU ${JSON.stringify(d.storm.cpu)}`,
    ...((r.notes as unknown as string[]).map((n) => `- NOTE: ${n}`)),
  ].join('\n');
  fs.mkdirSync(RESULTS, { recursive: true });
  const out = settings.out;
  fs.writeFileSync(path.join(RESULTS, `${out}.json`), JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(path.join(RESULTS, `${out}.md`), `# bench/sessions\n\n${machineLine(r.machine)}\n\n${table}\n\n${extra}\n`);
  const tl = r.timeline;
  const colors: Record<string, string> = { ramp: '#1f77b4', settle: '#aaaaaa', hold: '#2ca02c', sign: '#bcbd22', storm: '#d62728', prepare: '#dbdb8d', 'resumed storm': '#ff9896', end: '#ffffff' };
  const bands: Band[] = r.phases.filter((p) => p.name !== 'end').map((p) => ({ from: p.from, to: p.to < 0 ? (tl[tl.length - 1]?.t ?? p.from) : p.to, label: p.name, color: colors[p.name] ?? '#cccccc' }));
  fs.writeFileSync(
    path.join(RESULTS, `${out}.svg`),
    stackedChart(
      `latchkey: ${String(r.sessionsHeld)} idle sessions, ${String(r.processes)} process(es): ${String(r.serverRssKiBPerSession)} KiB/session, ${String(r.handshakesPerSec)} handshakes/s, ${r.reconnectStormSeconds === null ? "storm: not all back within its budget" : `storm ${String(r.reconnectStormSeconds)} s`}${rs ? `, resumed storm ${r.resumedStormSeconds === null ? 'not all back' : `${String(r.resumedStormSeconds)} s`}` : ''}`,
      'seconds since the ramp started',
      [
        { label: 'sessions held', series: [{ name: 'sessions held', points: tl.map((p) => [p.t, p.sessions]), color: '#1f77b4' }] },
        { label: 'node RSS, MiB', series: [{ name: 'RSS of all node processes, MiB', points: tl.map((p) => [p.t, p.rssMiB]), color: '#9467bd' }] },
        { label: 'handshakes/s', series: [{ name: 'accepted handshakes/s', points: tl.map((p) => [p.t, p.handshakesPerSec]), color: '#ff7f0e' }] },
      ],
      bands,
    ),
  );
  process.stdout.write(`\n${machineLine(r.machine)}\n${table}\n\n${extra}\n\nwrote bench/results/${out}.{json,md,svg}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench/sessions failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);

/** "primary 80.1 MiB (heap 20.3), gateway 120.4 MiB (heap 30.2 + workers 4.1, external 5.0), ..." */
function memoryLine(m: ProcessMemory[]): string {
  return m.map((p) => `${p.role} ${p.pid} ${p.rssMiB} MiB (heap ${p.heapUsedMiB} + workers ${p.workerHeapUsedMiB}, external ${p.externalMiB})`).join('; ');
}

/** Per-process memory growth over the ramp and hold: primary vs gateways, RSS vs JS heap vs external. */
function memoryDelta(before: ProcessMemory[], after: ProcessMemory[], sessions: number): { before: ProcessMemory[]; after: ProcessMemory[]; perSessionKiB: Record<string, number> } {
  const sum = (list: ProcessMemory[], role: ProcessMemory['role'], k: keyof ProcessMemory): number => list.filter((p) => p.role === role).reduce((n, p) => n + (p[k] as number), 0);
  const per = (role: ProcessMemory['role'], k: keyof ProcessMemory): number => +(((sum(after, role, k) - sum(before, role, k)) * 1024) / Math.max(1, sessions)).toFixed(3);
  const sm = (list: ProcessMemory[], role: ProcessMemory['role'], k: keyof SmapsBreakdown): number => list.filter((p) => p.role === role).reduce((n, p) => n + (p.smaps?.[k] ?? 0), 0);
  const perS = (role: ProcessMemory['role'], k: keyof SmapsBreakdown): number => +(((sm(after, role, k) - sm(before, role, k)) * 1024) / Math.max(1, sessions)).toFixed(3);
  return {
    before,
    after,
    perSessionKiB: {
      primaryRss: per('primary', 'rssMiB'),
      primaryHeap: per('primary', 'heapUsedMiB'),
      gatewaysRss: per('gateway', 'rssMiB'),
      gatewaysHeap: per('gateway', 'heapUsedMiB'),
      gatewaysWorkerHeap: per('gateway', 'workerHeapUsedMiB'),
      gatewaysExternal: per('gateway', 'externalMiB'),
      gatewaysHeapTotal: per('gateway', 'heapTotalMiB'),
      gatewaysPss: perS('gateway', 'pssMiB'),
      gatewaysBrk: perS('gateway', 'brkMiB'),
      gatewaysArenas: perS('gateway', 'arenasMiB'),
      gatewaysOtherAnon: perS('gateway', 'otherAnonMiB'),
      gatewaysFile: perS('gateway', 'fileMiB'),
      primaryPss: perS('primary', 'pssMiB'),
    },
  };
}
