/**
 * bench/handshake: sessions per second and server CPU per accepted session, against the bare RSA
 * floor measured in the same run.
 *
 *   npm run bench:handshake [-- --endpoints 200 --sessions 5000 --concurrency 128 --max-seconds 60]
 *
 * The default concurrency saturates the server on the 2-core reference machine: sessions/s is a
 * capacity figure, and a saturated server is where CPU per session matters.
 *
 * 1. Prints the machine line, then measures the floor: µs per RSA-OAEP-SHA256 private decrypt of a
 *    64-byte secret with node:crypto on one thread (the one operation a handshake cannot avoid).
 * 2. Starts `latchkey serve` as a child process on 127.0.0.1 (embedded store, fresh data dir) with
 *    N endpoints provisioned under an `internal` application (seed file).
 * 3. Prepares every signed CONNECT outside the timed phase (the client's RSA work is not measured).
 * 4. Opens sessions at a fixed concurrency: WebSocket upgrade, CONNECT, CONNACK. Sessions stay open, as
 *    endpoints' persistent sessions do (think of a reconnect storm after a restart), and are closed
 *    after the timed phase. Progress once a second. Bounded by --sessions and --max-seconds; loopback only.
 * 5. Server CPU = user+system time of the server process and all its threads (/proc) over the timed
 *    phase, divided by accepted sessions. ratioToFloor = serverCpuUsPerSession / rsaDecryptFloorUs.
 *
 * Writes bench/results/handshake-latest.json, .md (table) and .svg (sessions/s over time).
 * LATCHKEY_BENCH_SERVER_NODE_ARGS passes node flags to the server (profiling: --cpu-prof);
 * LATCHKEY_BENCH_SERVER_LOG=FILE keeps the server's output (e.g. with --trace-gc).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RSA_OAEP } from '../src/crypto/session-crypto.js';
import { ConnackCode } from '../src/errors.js';
import { decodeFrame } from '../src/protocol/frames.js';
import { prepareConnect } from '../test/helpers/wire-client.js';
import { startServerProcess } from '../test/helpers/process.js';
import { ROOT } from '../test/helpers/root.js';
import { lineChart } from './lib/chart.js';
import { endpointKeys } from './lib/keys.js';
import { rawExchange } from './lib/raw-ws.js';
import { diffThreads, machineInfo, machineLine, percentile, processCpuUs, processRssBytes, threadCpuUs } from './lib/machine.js';
import { LIMITS_OFF } from './lib/limits.js';

const RESULTS = path.join(ROOT, 'bench/results');

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

const settings = {
  endpoints: arg('endpoints', 200),
  sessions: arg('sessions', 5000),
  concurrency: arg('concurrency', 128),
  maxSeconds: arg('max-seconds', 60),
  warmup: arg('warmup', 200),
};

/** Extra node flags for the server process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it under load. */
const serverNodeArgs = (process.env.LATCHKEY_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);

function log(msg: string): void {
  process.stdout.write(`[handshake] ${msg}\n`);
}

/**
 * Median CPU µs of bare RSA-OAEP-SHA256 private decrypts, in batches, on this (otherwise idle)
 * thread. CPU time, not wall time, to compare like with like: the server side is measured in CPU
 * time too, and on a shared VM wall time also counts time stolen by neighbours.
 */
function rsaDecryptFloorUs(): number {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ct = crypto.publicEncrypt({ key: publicKey, ...RSA_OAEP }, crypto.randomBytes(64));
  for (let i = 0; i < 50; i++) crypto.privateDecrypt({ key: privateKey, ...RSA_OAEP }, ct);
  const batches: number[] = [];
  for (let b = 0; b < 7; b++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < 60; i++) crypto.privateDecrypt({ key: privateKey, ...RSA_OAEP }, ct);
    const c = process.cpuUsage(c0);
    batches.push((c.user + c.system) / 60);
  }
  batches.sort((a, b) => a - b);
  return batches[3]!;
}

interface Outcome {
  ok: boolean;
  ms: number;
  code: string;
}

const openSessions: Array<() => Promise<void>> = [];

/** One session: upgrade, CONNECT, CONNACK; it stays open (an endpoint's persistent session). */
async function oneSession(port: number, frame: Buffer): Promise<Outcome> {
  const r = await rawExchange(port, '/ep/v1', frame, 15_000, true);
  openSessions.push(r.close);
  if (!r.message) return { ok: false, ms: r.ms, code: r.error ?? 'closed' };
  const f = decodeFrame(r.message);
  if (f.ok && f.value.type === 'CONNACK') {
    const ok = f.value.connack.returnCode === ConnackCode.ACCEPTED;
    return { ok, ms: r.ms, code: ok ? 'ACCEPTED' : (f.value.connack.errorCode ?? String(f.value.connack.returnCode)) };
  }
  return { ok: false, ms: r.ms, code: f.ok ? f.value.type : f.code };
}

async function main(): Promise<void> {
  const machine = machineInfo();
  log(machineLine(machine));
  log(`settings: ${JSON.stringify(settings)}`);
  const floorBefore = rsaDecryptFloorUs();
  log(`floor: RSA-OAEP-SHA256 private decrypt ${floorBefore.toFixed(1)} µs (node:crypto, one thread)`);

  const keys = await endpointKeys(settings.endpoints, 'handshake');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-'));
  const appToken = 'bench-app-token';
  const seed = {
    tenants: [{ id: 'bench', name: 'bench' }],
    applications: [{ id: 'bench', tenantId: 'bench', name: 'bench', appToken, credentialsService: 'internal' }],
    credentials: keys.map((k) => ({ appId: 'bench', publicKeyPem: k.publicKeyPem })),
  };
  fs.writeFileSync(path.join(dir, 'seed.json'), JSON.stringify(seed));
  const server = await startServerProcess({ ...LIMITS_OFF, LATCHKEY_DATA_DIR: path.join(dir, 'data'), LATCHKEY_SEED_FILE: path.join(dir, 'seed.json'), LATCHKEY_LOG_LEVEL: 'warn' }, 20_000, serverNodeArgs);
  const pid = server.child.pid!;
  try {
    const ring = JSON.parse(fs.readFileSync(path.join(dir, 'data/keys/keyring.json'), 'utf8')) as { keys: Array<{ id: string; status: string }> };
    const keyId = ring.keys.find((k) => k.status === 'active')!.id;
    const serverPub = crypto.createPublicKey(fs.readFileSync(path.join(dir, `data/keys/${keyId}.pub.pem`)));

    const total = settings.warmup + settings.sessions;
    log(`preparing ${total} signed CONNECTs (not timed)`);
    const frames: Buffer[] = [];
    for (let i = 0; i < total; i++) {
      frames.push(prepareConnect({ appToken, serverKeyId: keyId, serverPublicKey: serverPub, key: keys[i % keys.length]!, body: { publicKey: null } }).frame);
    }

    const run = async (from: number, to: number, onDone: (o: Outcome) => void, deadline: number): Promise<void> => {
      let next = from;
      const loop = async (): Promise<void> => {
        while (next < to && Date.now() < deadline) {
          const i = next++;
          onDone(await oneSession(server.port, frames[i]!));
        }
      };
      await Promise.all(Array.from({ length: settings.concurrency }, loop));
    };

    const closeAll = async (): Promise<void> => {
      const all = openSessions.splice(0);
      for (let i = 0; i < all.length; i += 256) await Promise.all(all.slice(i, i + 256).map((c) => c()));
    };
    log(`warm-up: ${settings.warmup} sessions`);
    await run(0, settings.warmup, () => undefined, Date.now() + 30_000);
    await closeAll();
    await new Promise((r) => setTimeout(r, 300));

    const latencies: number[] = [];
    const codes = new Map<string, number>();
    const perSecond: number[] = [];
    let done = 0;
    let lastDone = 0;
    const rss0 = processRssBytes(pid);
    const cpu0 = processCpuUs(pid);
    const threads0 = threadCpuUs(pid);
    const t0 = performance.now();
    const progress = setInterval(() => {
      perSecond.push(done - lastDone);
      lastDone = done;
      log(`${done}/${settings.sessions} sessions, ${perSecond[perSecond.length - 1]}/s`);
    }, 1000);
    await run(settings.warmup, total, (o) => {
      done++;
      codes.set(o.code, (codes.get(o.code) ?? 0) + 1);
      if (o.ok) latencies.push(o.ms);
    }, Date.now() + settings.maxSeconds * 1000);
    const wallS = (performance.now() - t0) / 1000;
    clearInterval(progress);
    // Let the server finish the last handshakes' bookkeeping before reading its CPU time; the
    // sessions are still open and idle, and closing them is not part of the measured work.
    await new Promise((r) => setTimeout(r, 200));
    const cpuUs = processCpuUs(pid) - cpu0;
    const threadUs = diffThreads(threads0, threadCpuUs(pid));
    const openAtEnd = openSessions.length;
    const rssPerSession = (processRssBytes(pid) - rss0) / Math.max(1, openAtEnd);
    log(`closing ${openAtEnd} open sessions (not timed)`);
    await closeAll();
    const health = (await (await fetch(`http://127.0.0.1:${server.adminPort}/healthz`)).json()) as { cryptoHandshakes: number; cryptoBatches: number };
    const floorAfter = rsaDecryptFloorUs();

    const accepted = latencies.length;
    latencies.sort((a, b) => a - b);
    const floor = Math.min(floorBefore, floorAfter);
    const serverCpuUsPerSession = cpuUs / Math.max(1, accepted);
    const result = {
      bench: 'handshake',
      machine,
      settings,
      sessionsPerSec: Math.round(accepted / wallS),
      p50Ms: +percentile(latencies, 50).toFixed(2),
      p99Ms: +percentile(latencies, 99).toFixed(2),
      serverCpuUsPerSession: +serverCpuUsPerSession.toFixed(1),
      rsaDecryptFloorUs: +floor.toFixed(1),
      rsaDecryptFloorUsBefore: +floorBefore.toFixed(1),
      rsaDecryptFloorUsAfter: +floorAfter.toFixed(1),
      ratioToFloor: +(serverCpuUsPerSession / floor).toFixed(3),
      accepted,
      outcomes: Object.fromEntries(codes),
      serverRssBytesPerOpenSession: Math.round(rssPerSession),
      handshakesPerWorkerTask: +(health.cryptoHandshakes / Math.max(1, health.cryptoBatches)).toFixed(2),
      serverCpuUsPerSessionByThread: Object.fromEntries(Object.entries(threadUs).filter(([, v]) => v > 0).map(([k, v]) => [k, +(v / Math.max(1, accepted)).toFixed(1)])),
      wallSeconds: +wallS.toFixed(2),
      serverCpuSeconds: +(cpuUs / 1e6).toFixed(2),
      perSecond,
    };
    const table = [
      '| metric | value |',
      '|---|---|',
      `| sessions/s | ${result.sessionsPerSec} |`,
      `| handshake latency p50 | ${result.p50Ms} ms |`,
      `| handshake latency p99 | ${result.p99Ms} ms |`,
      `| server CPU per accepted session | ${result.serverCpuUsPerSession} µs |`,
      `| floor: RSA-OAEP-SHA256 decrypt, one thread | ${result.rsaDecryptFloorUs} µs (before ${result.rsaDecryptFloorUsBefore}, after ${result.rsaDecryptFloorUsAfter}) |`,
      `| ratioToFloor | ${result.ratioToFloor} |`,
      `| server CPU by thread, µs/session (main = event loop; the largest others are the crypto workers) | ${Object.entries(result.serverCpuUsPerSessionByThread).map(([k, v]) => `${k} ${v}`).join(', ')} |`,
      `| server RSS growth per open session (approx.: includes heap not yet collected) | ${(result.serverRssBytesPerOpenSession / 1024).toFixed(1)} KiB |`,
      `| handshakes per worker task (batching) | ${result.handshakesPerWorkerTask} |`,
      `| accepted / attempted (all held open until the end) | ${accepted} / ${done} |`,
      `| concurrency, endpoints | ${settings.concurrency}, ${settings.endpoints} |`,
    ].join('\n');
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'handshake-latest.json'), JSON.stringify(result, null, 2) + '\n');
    fs.writeFileSync(path.join(RESULTS, 'handshake-latest.md'), `# bench/handshake\n\n${machineLine(machine)}\n\n${table}\n`);
    fs.writeFileSync(
      path.join(RESULTS, 'handshake-latest.svg'),
      lineChart(`latchkey handshakes/s (ratioToFloor ${result.ratioToFloor})`, 'seconds', 'sessions/s', [{ name: 'accepted sessions/s', points: perSecond.map((v, i) => [i + 1, v]), color: '#1f77b4' }]),
    );
    process.stdout.write(`\n${machineLine(machine)}\n${table}\n\nwrote bench/results/handshake-latest.{json,md,svg}\n`);
    if (accepted < done) log(`WARNING: ${done - accepted} sessions were not accepted: ${JSON.stringify(result.outcomes)}`);
  } finally {
    await server.stop('SIGTERM');
    if (process.env.LATCHKEY_BENCH_SERVER_LOG) fs.writeFileSync(process.env.LATCHKEY_BENCH_SERVER_LOG, server.logs.join('\n') + '\n');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/handshake failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
