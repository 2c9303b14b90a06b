/**
 * Server memory per idle authenticated session: how many bytes of server RSS one more open, idle
 * session costs, and where they go.
 *
 *   node dist/bench/lib/session-memory.js [--sessions 15000] [--steps 4] [--app internal|trustful]
 *        [--public-key sent|omitted] [--per-address 4000] [--concurrency 64] [--snapshots]
 *        [--idle-wait SEC] [--register] [--limits off|keys]
 *   node dist/bench/lib/session-memory.js --native [--count 20000]
 *
 * Main mode:
 * 1. K distinct endpoint keys from bench/lib/bulk-keys.ts (a newer session of a key replaces the
 *    older one, so every session needs its own key), provisioned under an `internal` application
 *    (seed file) or left unknown to a `trustful` one.
 * 2. One `latchkey serve` child process (fresh data dir, port 0, protection limits off:
 *    bench/lib/limits.ts; --limits keys keeps the per-key handshake rate and flapping detection at
 *    their defaults, whose maps hold entries per key) started with `--inspect=127.0.0.1:0`: the bench talks to the server's
 *    inspector (CDP over WebSocket) to force full garbage collections in the main thread and in
 *    every worker thread (HeapProfiler.collectGarbage; NodeWorker.sendMessageToWorker), to read
 *    process.memoryUsage() in each, and (--snapshots) to take heap snapshots. The server's code is
 *    not touched.
 * 3. This process opens the sessions over raw sockets (upgrade, CONNECT, CONNACK ACCEPTED; CONNECT
 *    asks for a 600 s keepalive so nothing times out while we measure) from source addresses
 *    127.0.0.2, 127.0.0.3, ... (--per-address each: one address has ~28k ephemeral ports), in
 *    `--steps` equal steps. Each CONNECT is signed just before it is sent (the handshake window is
 *    ±120 s). Sessions send nothing after CONNACK: idle. --register embeds a SyncRequest with a
 *    profile in each CONNECT (as the SDK's connect({ profile }) does): the endpoint registers, and
 *    its session then holds the endpoint record.
 * 4. At 0 and after each step: wait for the handshakes' bookkeeping, GC all threads twice, wait,
 *    then read the server's /proc/<pid>/status (VmRSS, RssAnon, RssFile) and the heaps. The
 *    marginal cost per session is the slope over the upper half (K/2 -> K): start-up, first-use and
 *    warm-up costs (JIT code, pools, first Map growth) land in the lower half. RssFile is LMDB's
 *    mmap of the store (credentials written by the binds), reported apart.
 * 5. --idle-wait SEC: then leave the sessions idle for SEC seconds (each sends a PINGREQ every 60 s,
 *    as an endpoint does, so none times out) and measure again: what an idle session still holds
 *    once the per-handshake entries with a TTL (credentials cache, replay cache) have expired.
 * 6. --snapshots: heap snapshots of the main thread at K/2 and K, diffed by constructor (what
 *    DevTools calls the summary view): JS bytes per session by object kind. Snapshots cost native
 *    memory of their own, so the RSS figures of such a run are not comparable and are flagged.
 *
 * --native mode measures, in this process, the native (outside the JS heap) cost of objects a
 * session or key can hold: a parsed endpoint public KeyObject after one verify (the crypto
 * worker's LRU entry), a 32-byte secret KeyObject, an AES-256-ECB context, a pooled vs unpooled
 * small Buffer. RSS growth over --count of each, after GC.
 *
 * Writes bench/results/session-memory-latest.json (main mode).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConnackCode } from '../../src/errors.js';
import { decodeFrame, encodePingReq } from '../../src/protocol/frames.js';
import { parseEndpointPublicKey } from '../../src/crypto/keys.js';
import { emptySyncRequest } from '../../src/protocol/schemas.js';
import { RSA_PSS } from '../../src/crypto/session-crypto.js';
import { prepareConnect, type NodeEndpointKey } from '../../test/helpers/wire-client.js';
import { startServerProcess, type ServerProcess } from '../../test/helpers/process.js';
import { ROOT } from '../../test/helpers/root.js';
import { bulkKeys } from './bulk-keys.js';
import { Cdp, gcAll, heapSnapshot, memoryUsage, type HeapUse } from './cdp.js';
import { LIMITS_OFF } from './limits.js';
import { machineInfo, machineLine } from './machine.js';
import { maskedFrame } from './raw-ws.js';
import { sleep } from './run.js';

const RESULTS = path.join(ROOT, 'bench/results');

function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}
function num(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
  return v;
}
function str<T extends string>(name: string, def: T, allowed: readonly T[]): T {
  const i = process.argv.indexOf(`--${name}`);
  const v = (i >= 0 ? process.argv[i + 1] : def) as T;
  if (!allowed.includes(v)) throw new Error(`--${name} must be one of ${allowed.join(', ')}`);
  return v;
}

function log(msg: string): void {
  process.stdout.write(`[session-memory] ${msg}\n`);
}

// --- /proc ---

export interface ProcMem {
  vmRss: number;
  rssAnon: number;
  rssFile: number;
}

export function procMem(pid: number): ProcMem {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  return { vmRss: kb('VmRSS'), rssAnon: kb('RssAnon'), rssFile: kb('RssFile') };
}

interface Summary {
  /** by "type:name" -> [count, self bytes] */
  groups: Map<string, [number, number]>;
  total: number;
}

/** Aggregate a heap snapshot's nodes by type and constructor name (the DevTools summary). */
export function summarise(file: string): Summary {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const nf = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const groups = new Map<string, [number, number]>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += nf) {
    const type = types[snap.nodes[i + iType]!]!;
    const size = snap.nodes[i + iSize]!;
    total += size;
    let name: string;
    if (type === 'object' || type === 'native' || type === 'closure' || type === 'hidden') {
      name = snap.strings[snap.nodes[i + iName]!]!;
      if (name.length > 60) name = `${name.slice(0, 57)}...`;
    } else name = '';
    const k = `${type}:${name}`;
    const g = groups.get(k);
    if (g) {
      g[0]++;
      g[1] += size;
    } else groups.set(k, [1, size]);
  }
  return { groups, total };
}

/** Per-session difference of two summaries taken `sessions` sessions apart, largest first. */
export function diffSummaries(a: Summary, b: Summary, sessions: number, top = 30): Array<{ group: string; countPerSession: number; bytesPerSession: number }> {
  const keys = new Set([...a.groups.keys(), ...b.groups.keys()]);
  const rows: Array<{ group: string; countPerSession: number; bytesPerSession: number }> = [];
  for (const k of keys) {
    const [ca, sa] = a.groups.get(k) ?? [0, 0];
    const [cb, sb] = b.groups.get(k) ?? [0, 0];
    rows.push({ group: k, countPerSession: +((cb - ca) / sessions).toFixed(3), bytesPerSession: +((sb - sa) / sessions).toFixed(1) });
  }
  rows.sort((x, y) => Math.abs(y.bytesPerSession) - Math.abs(x.bytesPerSession));
  return rows.slice(0, top);
}

// --- the client side: raw WebSocket sessions from chosen source addresses ---

interface OpenSession {
  sock: net.Socket;
}

const UPGRADE = (port: number): string =>
  `GET /ep/v1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: latchkey.v1\r\n\r\n`;

/** Upgrade, CONNECT, first binary message (the CONNACK). Resolves with the socket kept open, or an error code. */
function openSession(port: number, localAddress: string, frame: Buffer, timeoutMs = 30_000): Promise<{ ok: true; s: OpenSession } | { ok: false; code: string }> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    sock.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let upgraded = false;
    let done = false;
    const finish = (r: { ok: true; s: OpenSession } | { ok: false; code: string }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!r.ok) sock.destroy();
      else {
        // Idle from here on: drop whatever else arrives (nothing should).
        sock.removeAllListeners('data');
        sock.on('data', () => undefined);
      }
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, code: 'timeout' }), timeoutMs);
    sock.on('connect', () => sock.write(UPGRADE(port)));
    sock.on('error', (err) => finish({ ok: false, code: (err as NodeJS.ErrnoException).code ?? err.message }));
    sock.on('close', () => finish({ ok: false, code: 'closed' }));
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.subarray(0, 12).toString().includes(' 101')) return finish({ ok: false, code: buf.subarray(0, 12).toString() });
        upgraded = true;
        buf = buf.subarray(end + 4);
        sock.write(maskedFrame(0x2, frame));
      }
      if (buf.length < 2) return;
      let len = buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      }
      if (buf.length < off + len) return;
      if ((buf[0]! & 0x0f) !== 0x2) return finish({ ok: false, code: `opcode ${buf[0]! & 0x0f}` });
      const f = decodeFrame(buf.subarray(off, off + len));
      if (!f.ok || f.value.type !== 'CONNACK') return finish({ ok: false, code: f.ok ? f.value.type : f.code });
      if (f.value.connack.returnCode !== ConnackCode.ACCEPTED) return finish({ ok: false, code: f.value.connack.errorCode ?? String(f.value.connack.returnCode) });
      finish({ ok: true, s: { sock } });
    });
  });
}

interface Point {
  sessions: number;
  mem: ProcMem;
  main: HeapUse;
  workers: HeapUse[];
  health: Record<string, unknown>;
}

async function health(server: ServerProcess): Promise<Record<string, unknown>> {
  return (await (await fetch(`http://127.0.0.1:${server.adminPort}/healthz`)).json()) as Record<string, unknown>;
}

async function measure(server: ServerProcess, cdp: Cdp, sessions: number): Promise<Point> {
  await sleep(1000);
  await gcAll(cdp);
  await sleep(1000);
  const mem = procMem(server.child.pid!);
  const main = await memoryUsage(cdp);
  const workers: HeapUse[] = [];
  for (const w of cdp.workers.values()) workers.push(await memoryUsage(w));
  return { sessions, mem, main, workers, health: await health(server) };
}

const KiB = (b: number): string => (b / 1024).toFixed(2);

/** LIMITS_OFF, or with 'keys' the per-key handshake rate and flapping detection left at their defaults. */
function limitsEnv(limits: 'off' | 'keys'): Record<string, string> {
  if (limits === 'off') return LIMITS_OFF;
  const { LATCHKEY_KEY_HANDSHAKES_PER_MIN: _rate, LATCHKEY_FLAPPING_MAX_COUNT: _flapping, ...rest } = LIMITS_OFF;
  return rest;
}

/** A SyncRequest registering endpoint i with a small JSON profile (~40 bytes). */
function registerRequest(i: number): ReturnType<typeof emptySyncRequest> {
  const req = emptySyncRequest(1);
  req.profileSyncRequest = { profileBody: Buffer.from(JSON.stringify({ model: 'T-1000', serial: i })), endpointAccessToken: null };
  return req;
}

async function mainMode(): Promise<void> {
  const settings = {
    sessions: num('sessions', 15_000),
    steps: num('steps', 4),
    app: str('app', 'internal', ['internal', 'trustful'] as const),
    publicKey: str('public-key', 'sent', ['sent', 'omitted'] as const),
    perAddress: num('per-address', 4000),
    concurrency: num('concurrency', 64),
    snapshots: flag('snapshots'),
    idleWaitSec: process.argv.includes('--idle-wait') ? num('idle-wait', 1) : 0,
    register: flag('register'),
    limits: str('limits', 'off', ['off', 'keys'] as const),
  };
  const K = settings.sessions;
  if (K > 18_000) throw new Error('one server process holds ~18,000 sockets (open files capped at 20,000): use --sessions <= 18000');
  if (settings.publicKey === 'omitted' && settings.app === 'trustful') throw new Error('a trustful application knows no key before the first CONNECT: --public-key omitted needs --app internal');
  const machine = machineInfo();
  log(machineLine(machine));
  log(`settings: ${JSON.stringify(settings)}`);

  const t0 = performance.now();
  const keys: NodeEndpointKey[] = await bulkKeys(0, K, 'session-memory');
  log(`${K} keys in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-session-memory-'));
  const appToken = 'mem-app-token';
  const seed = {
    tenants: [{ id: 'mem', name: 'mem' }],
    applications: [{ id: 'mem', tenantId: 'mem', name: 'mem', appToken, credentialsService: settings.app }],
    credentials: settings.app === 'internal' ? keys.map((k) => ({ appId: 'mem', publicKeyPem: k.publicKeyPem })) : [],
  };
  fs.writeFileSync(path.join(dir, 'seed.json'), JSON.stringify(seed));
  const server = await startServerProcess(
    { ...limitsEnv(settings.limits), LATCHKEY_DATA_DIR: path.join(dir, 'data'), LATCHKEY_SEED_FILE: path.join(dir, 'seed.json'), LATCHKEY_LOG_LEVEL: 'warn' },
    300_000,
    ['--inspect=127.0.0.1:0'],
  );
  const open: OpenSession[] = [];
  let cdp: Cdp | null = null;
  try {
    const url = /Debugger listening on (ws:\/\/\S+)/.exec(server.stderr.join(''))?.[1];
    if (!url) throw new Error(`no inspector URL on the server's stderr:\n${server.stderr.join('')}`);
    cdp = await Cdp.connect(url);
    await sleep(500);
    log(`server pid ${server.child.pid}, port ${server.port}; inspector attached to main + ${cdp.workers.size} worker(s)`);

    const ring = JSON.parse(fs.readFileSync(path.join(dir, 'data/keys/keyring.json'), 'utf8')) as { keys: Array<{ id: string; status: string }> };
    const keyId = ring.keys.find((k) => k.status === 'active')!.id;
    const serverPub = crypto.createPublicKey(fs.readFileSync(path.join(dir, `data/keys/${keyId}.pub.pem`)));

    let dropped = 0;
    const points: Point[] = [await measure(server, cdp, 0)];
    log(`0 sessions: VmRSS ${KiB(points[0]!.mem.vmRss)} KiB`);
    const snapshots: string[] = [];
    const midStep = Math.floor(settings.steps / 2);
    const failures = new Map<string, number>();
    for (let step = 1; step <= settings.steps; step++) {
      const from = Math.round(((step - 1) * K) / settings.steps);
      const to = Math.round((step * K) / settings.steps);
      let next = from;
      const ts = performance.now();
      const worker = async (): Promise<void> => {
        while (next < to) {
          const i = next++;
          const { frame } = prepareConnect({
            appToken,
            serverKeyId: keyId,
            serverPublicKey: serverPub,
            key: keys[i]!,
            body: { keepAliveSec: 600, ...(settings.publicKey === 'omitted' ? { publicKey: null } : {}) },
            ...(settings.register ? { sync: registerRequest(i) } : {}),
          });
          const local = `127.0.0.${2 + Math.floor(i / settings.perAddress)}`;
          const r = await openSession(server.port, local, frame);
          if (r.ok) {
            open.push(r.s);
            r.s.sock.on('close', () => dropped++);
          } else failures.set(r.code, (failures.get(r.code) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: settings.concurrency }, worker));
      log(`step ${step}: ${open.length} open (${((to - from) / ((performance.now() - ts) / 1000)).toFixed(0)}/s)${failures.size ? `, failures ${JSON.stringify(Object.fromEntries(failures))}` : ''}`);
      const p = await measure(server, cdp, open.length);
      points.push(p);
      log(`${open.length} sessions: VmRSS ${KiB(p.mem.vmRss)} KiB (anon ${KiB(p.mem.rssAnon)}, file ${KiB(p.mem.rssFile)}), main heapUsed ${KiB(p.main.heapUsed)} KiB, external ${KiB(p.main.external)} KiB, sessionsOpen ${String(p.health.sessionsOpen)}`);
      if (settings.snapshots && (step === midStep || step === settings.steps)) {
        const file = path.join(dir, `main-${open.length}.heapsnapshot`);
        await heapSnapshot(cdp, file);
        snapshots.push(file);
        log(`heap snapshot ${path.basename(file)} (${(fs.statSync(file).size / 2 ** 20).toFixed(0)} MiB)`);
      }
    }
    let afterIdle: Point | null = null;
    if (settings.idleWaitSec > 0) {
      log(`idle for ${settings.idleWaitSec} s (a PINGREQ per session every 60 s)`);
      const ping = maskedFrame(0x2, encodePingReq());
      const until = Date.now() + settings.idleWaitSec * 1000;
      while (Date.now() < until) {
        await sleep(Math.min(60_000, until - Date.now()));
        if (Date.now() < until) for (const o of open) o.sock.write(ping);
      }
      afterIdle = await measure(server, cdp, open.length);
      log(`after ${settings.idleWaitSec} s idle: VmRSS ${KiB(afterIdle.mem.vmRss)} KiB (anon ${KiB(afterIdle.mem.rssAnon)}), main heapUsed ${KiB(afterIdle.main.heapUsed)} KiB, replay cache ${String(afterIdle.health.replayCache)}, sessionsOpen ${String(afterIdle.health.sessionsOpen)}`);
    }
    if (dropped > 0) log(`WARNING: ${dropped} sessions were closed by the server while measuring`);

    const first = points[0]!;
    const mid = points[midStep]!;
    const last = points[points.length - 1]!;
    const per = (a: Point, b: Point, f: (p: Point) => number): number => (f(b) - f(a)) / Math.max(1, b.sessions - a.sessions);
    const workerHeap = (p: Point): number => p.workers.reduce((s, w) => s + w.heapUsed, 0);
    const marginal = {
      vmRss: per(mid, last, (p) => p.mem.vmRss),
      rssAnon: per(mid, last, (p) => p.mem.rssAnon),
      rssFile: per(mid, last, (p) => p.mem.rssFile),
      mainHeapUsed: per(mid, last, (p) => p.main.heapUsed),
      mainHeapTotal: per(mid, last, (p) => p.main.heapTotal),
      mainExternal: per(mid, last, (p) => p.main.external),
      mainArrayBuffers: per(mid, last, (p) => p.main.arrayBuffers),
      workerHeapUsed: per(mid, last, workerHeap),
    };
    const average = { vmRss: per(first, last, (p) => p.mem.vmRss), rssAnon: per(first, last, (p) => p.mem.rssAnon) };
    const notHeap = marginal.rssAnon - marginal.mainHeapTotal - per(mid, last, (p) => p.workers.reduce((s, w) => s + w.heapTotal, 0));
    const rows = [
      '| per idle session (slope K/2 -> K) | bytes |',
      '|---|---|',
      `| **server VmRSS** | **${marginal.vmRss.toFixed(0)}** (${KiB(marginal.vmRss)} KiB) |`,
      `| RssAnon (process memory) | ${marginal.rssAnon.toFixed(0)} |`,
      `| RssFile (LMDB mmap, store pages) | ${marginal.rssFile.toFixed(0)} |`,
      `| main thread JS heap used / committed (after GC) | ${marginal.mainHeapUsed.toFixed(0)} / ${marginal.mainHeapTotal.toFixed(0)} |`,
      `| main thread external (Buffers, ArrayBuffers, KeyObjects' reported size) / of which ArrayBuffers | ${marginal.mainExternal.toFixed(0)} / ${marginal.mainArrayBuffers.toFixed(0)} |`,
      `| worker threads' JS heap used | ${marginal.workerHeapUsed.toFixed(0)} |`,
      `| RssAnon minus committed JS heaps (native: uWS, OpenSSL, malloc'd backing stores, allocator slack) | ${notHeap.toFixed(0)} |`,
      `| average VmRSS / RssAnon per session from 0 | ${average.vmRss.toFixed(0)} / ${average.rssAnon.toFixed(0)} |`,
    ];
    process.stdout.write(`\n${machineLine(machine)}\nsettings: ${JSON.stringify(settings)}\n\n| sessions | VmRSS KiB | RssAnon KiB | RssFile KiB | main heapUsed KiB | main external KiB | worker heapUsed KiB |\n|---|---|---|---|---|---|---|\n`);
    for (const p of points) process.stdout.write(`| ${p.sessions} | ${KiB(p.mem.vmRss)} | ${KiB(p.mem.rssAnon)} | ${KiB(p.mem.rssFile)} | ${KiB(p.main.heapUsed)} | ${KiB(p.main.external)} | ${KiB(workerHeap(p))} |\n`);
    process.stdout.write(`\n${rows.join('\n')}\n`);
    if (afterIdle) {
      const idle = { vmRss: per(first, afterIdle, (p) => p.mem.vmRss), rssAnon: per(first, afterIdle, (p) => p.mem.rssAnon), mainHeapUsed: per(first, afterIdle, (p) => p.main.heapUsed) };
      process.stdout.write(`\nafter ${settings.idleWaitSec} s idle, average per session from 0: VmRSS ${idle.vmRss.toFixed(0)} B, RssAnon ${idle.rssAnon.toFixed(0)} B, main heap used ${idle.mainHeapUsed.toFixed(0)} B (at the end of the last step: ${average.vmRss.toFixed(0)} / ${average.rssAnon.toFixed(0)} / ${per(first, last, (p) => p.main.heapUsed).toFixed(0)})\n`);
    }

    let heapDiff: ReturnType<typeof diffSummaries> | null = null;
    if (snapshots.length >= 2) {
      const a = summarise(snapshots[0]!);
      const b = summarise(snapshots[snapshots.length - 1]!);
      const n = Number(/main-(\d+)/.exec(snapshots[snapshots.length - 1]!)![1]) - Number(/main-(\d+)/.exec(snapshots[0]!)![1]);
      heapDiff = diffSummaries(a, b, n, 40);
      process.stdout.write(`\nmain-thread heap snapshot diff over ${n} sessions (self bytes; total ${((b.total - a.total) / n).toFixed(0)} B per session):\n\n| type:constructor | objects per session | bytes per session |\n|---|---|---|\n`);
      for (const r of heapDiff) process.stdout.write(`| ${r.group} | ${r.countPerSession} | ${r.bytesPerSession} |\n`);
      process.stdout.write('\n(RSS figures of a --snapshots run include the snapshots\' own native memory: not comparable.)\n');
    }
    if (!settings.snapshots) {
      fs.mkdirSync(RESULTS, { recursive: true });
      fs.writeFileSync(
        path.join(RESULTS, 'session-memory-latest.json'),
        JSON.stringify({ bench: 'session-memory', machine, settings, marginalBytesPerSession: marginal, averageBytesPerSession: average, points, afterIdle, droppedWhileMeasuring: dropped, failures: Object.fromEntries(failures) }, null, 2) + '\n',
      );
      process.stdout.write('\nwrote bench/results/session-memory-latest.json\n');
    }
  } finally {
    for (const s of open) s.sock.destroy();
    cdp?.close();
    await server.stop('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// --- native costs, in this process ---

function gcHere(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  gc();
  gc();
}

interface NativeItem {
  label: string;
  make: (i: number) => unknown;
}

/**
 * The objects --native measures. Each runs in a process of its own, which reads the SPKIs from a
 * file the parent wrote: freed native memory (of another item, or of deriving the keys) would
 * otherwise be reused and hide the cost.
 */
function nativeItems(count: number, spkiFile: string | null): NativeItem[] {
  const all = spkiFile ? fs.readFileSync(spkiFile) : Buffer.alloc(0);
  const spkis: Buffer[] = [];
  for (let o = 0; o + 2 <= all.length && spkis.length < count; o += 2 + all.readUInt16BE(o)) spkis.push(all.subarray(o + 2, o + 2 + all.readUInt16BE(o)));
  const msg = Buffer.from('x');
  // Below every modulus: the verify fails, after the public operation that fills the key's caches.
  const sig = Buffer.alloc(256);
  sig[255] = 2;
  const key = crypto.createSecretKey(crypto.randomBytes(32));
  const random = crypto.randomBytes(64 * count);
  if (spkiFile && spkis.length < count) throw new Error(`${spkiFile} holds ${spkis.length} keys, not ${count}`);
  return [
    // PKCS#1 body of each SPKI, as src/crypto/keys.ts parses it (the crypto worker's LRU entry).
    { label: 'endpoint public KeyObject, parsed (no verify yet)', make: (i) => parseEndpointPublicKey(spkis[i]!) },
    // A verify fills OpenSSL's per-key caches (Montgomery contexts): what a cached key holds.
    {
      label: 'endpoint public KeyObject, parsed + one RSA-PSS verify (an LRU entry after its handshake)',
      make: (i) => {
        const k = parseEndpointPublicKey(spkis[i]!);
        crypto.verify('sha256', msg, { key: k, ...RSA_PSS }, sig);
        return k;
      },
    },
    { label: '32-byte secret KeyObject (createSecretKey)', make: (i) => crypto.createSecretKey(random.subarray(i * 64, i * 64 + 32)) },
    {
      label: 'AES-256-ECB Cipher (createCipheriv, as WasmGcmCipher holds while frames flow)',
      make: () => {
        const c = crypto.createCipheriv('aes-256-ecb', key, null);
        c.setAutoPadding(false);
        return c;
      },
    },
    { label: 'Buffer.allocUnsafe(64) (a slice of the 8 KiB pool)', make: () => Buffer.allocUnsafe(64) },
    { label: 'Buffer.allocUnsafeSlow(64) (its own ArrayBuffer)', make: () => Buffer.allocUnsafeSlow(64) },
    { label: 'Uint8Array(96) + two subarray views (the old session keys)', make: () => { const a = new Uint8Array(96); return { c2s: a.subarray(0, 32), s2c: a.subarray(32, 64) }; } },
    { label: '294-byte latin1 string (a public key, compact)', make: (i) => Buffer.from(spkis[i]!).toString('latin1') },
    { label: 'crypto.randomUUID() string', make: () => crypto.randomUUID() },
    { label: 'Promise.resolve()', make: () => Promise.resolve() },
  ];
}

async function nativeItem(index: number, count: number, spkiFile: string): Promise<void> {
  const item = nativeItems(count + 200, spkiFile)[index]!;
  const keep: unknown[] = new Array(count);
  for (let i = 0; i < 200; i++) item.make(count + i); // first-use costs (code, pools), on other inputs
  gcHere();
  await sleep(200);
  const m0 = procMem(process.pid);
  const h0 = process.memoryUsage();
  for (let i = 0; i < count; i++) keep[i] = item.make(i);
  gcHere();
  await sleep(200);
  const m1 = procMem(process.pid);
  const h1 = process.memoryUsage();
  const rss = (m1.rssAnon - m0.rssAnon) / count;
  const committed = (h1.heapTotal - h0.heapTotal) / count;
  process.stdout.write(`| ${item.label} | ${rss.toFixed(0)} | ${((h1.heapUsed - h0.heapUsed) / count).toFixed(0)} | ${(rss - committed).toFixed(0)} |\n`);
  if (keep.length !== count) throw new Error('unreachable');
}

async function nativeMode(): Promise<void> {
  const count = num('count', 20_000);
  process.stdout.write(`${machineLine(machineInfo())}\nnative costs over ${count} objects each, each kind in a fresh process (RssAnon growth after GC; outside the JS heap = RssAnon growth minus committed heap growth)\n\n| object | RssAnon B each | JS heap used B each | outside the JS heap B each |\n|---|---|---|---|\n`);
  const keys = await bulkKeys(0, count + 200, 'session-memory');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-native-'));
  const spkiFile = path.join(dir, 'spki.bin');
  fs.writeFileSync(spkiFile, Buffer.concat(keys.flatMap((k) => [Buffer.from([k.spki.length >> 8, k.spki.length & 0xff]), k.spki])));
  try {
    const n = nativeItems(1, null).length;
    for (let i = 0; i < n; i++) {
      const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--native-item', String(i), '--count', String(count), '--spki-file', spkiFile], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`--native-item ${i} failed: ${r.stderr}`);
      process.stdout.write(r.stdout.split('\n').filter((l) => l.startsWith('|')).join('\n') + '\n');
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  // What the worker's parsed-key LRU saves per handshake: RSA-PSS verify with a key parsed (and
  // used) before, against parse + verify of a key not seen before. Median of 7 batches, CPU time.
  const m = Math.min(count, 2000);
  const msg = Buffer.from('x');
  const spkis = keys.slice(0, m).map((k) => k.spki);
  const sigs = keys.slice(0, m).map((k) => crypto.sign('sha256', msg, { key: k.privateKey, ...RSA_PSS }));
  const parsed = spkis.map((s) => parseEndpointPublicKey(s));
  for (let i = 0; i < m; i++) crypto.verify('sha256', msg, { key: parsed[i]!, ...RSA_PSS }, sigs[i]!);
  const cpu = (f: () => void): number => {
    const runs: number[] = [];
    for (let r = 0; r < 7; r++) {
      const c0 = process.cpuUsage();
      f();
      const c = process.cpuUsage(c0);
      runs.push((c.user + c.system) / m);
    }
    runs.sort((a, b) => a - b);
    return runs[3]!;
  };
  const cached = cpu(() => {
    for (let i = 0; i < m; i++) crypto.verify('sha256', msg, { key: parsed[i]!, ...RSA_PSS }, sigs[i]!);
  });
  const fresh = cpu(() => {
    for (let i = 0; i < m; i++) crypto.verify('sha256', msg, { key: parseEndpointPublicKey(spkis[i]!), ...RSA_PSS }, sigs[i]!);
  });
  process.stdout.write(`\nRSA-PSS verify, µs CPU (median of 7 x ${m}): key parsed before ${cached.toFixed(1)}, parse + verify ${fresh.toFixed(1)} (a cached key saves ${(fresh - cached).toFixed(1)} µs of its handshake)\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const item = process.argv.indexOf('--native-item');
  (item >= 0 ? nativeItem(Number(process.argv[item + 1]), num('count', 20_000), process.argv[process.argv.indexOf('--spki-file') + 1]!) : flag('native') ? nativeMode() : mainMode()).catch((err: unknown) => {
    process.stderr.write(`session-memory failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
