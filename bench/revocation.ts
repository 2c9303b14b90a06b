/**
 * bench/revocation: how long from the admin revoke call to the endpoint's DISCONNECT
 * CREDENTIALS_REVOKED, over N live sessions, against the floor of a no-op admin call measured in
 * the same run.
 *
 *   npm run bench:revocation [-- --sessions 1000 --concurrency 64 --revoke-concurrency 16 --max-seconds 120]
 *
 * 1. Prints the machine line and the settings. Loads (or generates and caches) N + warm-up endpoint
 *    keys in bench/.cache (bench/lib/keys.ts, shared with bench/handshake).
 * 2. Starts `latchkey serve` as a child process on 127.0.0.1 (embedded store, fresh data dir) with
 *    the endpoints provisioned under an `internal` application (seed file), and reads the first
 *    root admin API key from its stderr.
 * 3. Opens every session (upgrade, CONNECT, CONNACK) at --concurrency and keeps them open; each
 *    socket watches for later frames (bench/lib/raw-ws.ts hooks).
 * 4. Floor: N no-op admin calls (GET /admin/v1/applications/{appId}) at --revoke-concurrency, over the
 *    same keep-alive connections: the HTTP + auth + routing share of a revoke call.
 * 5. Revokes a few warm-up endpoints (not counted), then every measured endpoint through
 *    POST /admin/v1/applications/{appId}/credentials/{credentialsId}/revoke at --revoke-concurrency.
 *    Latency = from just before the HTTP call to the DISCONNECT frame with reason 3
 *    (CREDENTIALS_REVOKED) arriving on that endpoint's socket (bytes received, performance.now()).
 *    The call's own response time is reported too.
 * 6. Progress once a second on the long phases. Everything after the keys are ready is bounded by
 *    --max-seconds (phases stop at the deadline and report what they measured; a watchdog kills the
 *    server and exits if cleanup itself hangs). Loopback only.
 *
 * Writes bench/results/revocation-latest.json, .md (table) and .svg (sorted latency curves).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, fetch } from 'undici';
import { ConnackCode } from '../src/errors.js';
import { decodeFrame } from '../src/protocol/frames.js';
import { prepareConnect, type NodeEndpointKey } from '../test/helpers/wire-client.js';
import { startServerProcess, type ServerProcess } from '../test/helpers/process.js';
import { ROOT } from '../test/helpers/root.js';
import { lineChart } from './lib/chart.js';
import { endpointKeys } from './lib/keys.js';
import { machineInfo, machineLine, percentile } from './lib/machine.js';
import { LIMITS_OFF } from './lib/limits.js';
import { rawExchange } from './lib/raw-ws.js';
import { arg, intArg } from './lib/args.js';
import { sleep, pool, waitForToken } from './lib/run.js';

const RESULTS = path.join(ROOT, 'bench/results');
const APP_ID = 'bench';
const APP_TOKEN = 'bench-app-token';
/** Disconnect reason CREDENTIALS_REVOKED (docs/protocol.md, section 6). */
const REASON_CREDENTIALS_REVOKED = 3;
/** How long, after the last revoke call, to wait for DISCONNECTs still on their way. */
const DRAIN_MS = 10_000;

const settings = {
  sessions: intArg('sessions', 1000, 20_000),
  concurrency: intArg('concurrency', 64, 1024),
  revokeConcurrency: intArg('revoke-concurrency', 16, 256),
  warmup: intArg('warmup', 32, 1000),
  maxSeconds: arg('max-seconds', 120),
};

function log(msg: string): void {
  process.stdout.write(`[revocation] ${msg}\n`);
}


/** One endpoint's live session and what happened to it after its revoke call. */
interface Live {
  key: NodeEndpointKey;
  close: (() => Promise<void>) | null;
  accepted: boolean;
  connectCode: string;
  /** performance.now() just before the revoke call. */
  revokeAt: number | null;
  /** The revoke call's response time, ms; null if it failed. */
  httpMs: number | null;
  httpOk: boolean;
  /** First DISCONNECT received: reason, error code and performance.now() when its bytes arrived. */
  disconnect: { reason: number; errorCode: string | null; at: number } | null;
  closedAt: number | null;
  /** Binary messages other than DISCONNECT received after CONNACK (not expected). */
  otherFrames: number;
}


/** Logs `line()` once a second until stopped. */
function progress(line: () => string): () => void {
  const t = setInterval(() => log(line()), 1000);
  return () => clearInterval(t);
}


const ms = (v: number): number => +v.toFixed(2);
const sortedMs = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);

async function main(): Promise<void> {
  const machine = machineInfo();
  log(machineLine(machine));
  log(`settings: ${JSON.stringify(settings)}`);

  const total = settings.warmup + settings.sessions;
  const keys = await endpointKeys(total, 'revocation');

  // The time bound starts once the keys are ready (their generation is a one-time cost, cached).
  const started = Date.now();
  const deadline = started + settings.maxSeconds * 1000;
  let server: ServerProcess | null = null;
  let dir: string | null = null;
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench/revocation: still running ${settings.maxSeconds + 30} s after start: killing the server and exiting\n`);
    server?.child.kill('SIGKILL');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    process.exit(2);
  }, (settings.maxSeconds + 30) * 1000);
  watchdog.unref();

  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-revocation-'));
  const agent = new Agent({ connections: settings.revokeConcurrency, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000 });
  const sessions: Live[] = keys.map((key) => ({ key, close: null, accepted: false, connectCode: 'not attempted', revokeAt: null, httpMs: null, httpOk: false, disconnect: null, closedAt: null, otherFrames: 0 }));
  try {
    const seed = {
      tenants: [{ id: 'bench', name: 'bench' }],
      applications: [{ id: APP_ID, tenantId: 'bench', name: 'bench', appToken: APP_TOKEN, credentialsService: 'internal' }],
      credentials: keys.map((k) => ({ appId: APP_ID, publicKeyPem: k.publicKeyPem })),
    };
    fs.writeFileSync(path.join(dir, 'seed.json'), JSON.stringify(seed));
    log(`starting latchkey serve with ${total} endpoints provisioned (internal credentials service)`);
    server = await startServerProcess({ ...LIMITS_OFF, LATCHKEY_DATA_DIR: path.join(dir, 'data'), LATCHKEY_SEED_FILE: path.join(dir, 'seed.json'), LATCHKEY_LOG_LEVEL: 'warn' }, 30_000);
    const srv = server;
    const token = await waitForToken(srv, 10_000);
    const admin = `http://127.0.0.1:${srv.adminPort}`;
    const headers = { authorization: `Bearer ${token}` };
    log(`server up: gateway 127.0.0.1:${srv.port}, admin 127.0.0.1:${srv.adminPort}, root API key read from stderr`);

    const ring = JSON.parse(fs.readFileSync(path.join(dir, 'data/keys/keyring.json'), 'utf8')) as { keys: Array<{ id: string; status: string }> };
    const keyId = ring.keys.find((k) => k.status === 'active')!.id;
    const serverPub = crypto.createPublicKey(fs.readFileSync(path.join(dir, `data/keys/${keyId}.pub.pem`)));

    // --- prepare CONNECTs (client RSA work, not timed) ---
    log(`preparing ${total} signed CONNECTs (not timed)`);
    const frames: Buffer[] = [];
    let lastLog = Date.now();
    for (let i = 0; i < total; i++) {
      frames.push(prepareConnect({ appToken: APP_TOKEN, serverKeyId: keyId, serverPublicKey: serverPub, key: keys[i]!, body: { publicKey: null } }).frame);
      if (Date.now() - lastLog >= 1000) {
        lastLog = Date.now();
        log(`prepared ${i + 1}/${total}`);
      }
    }

    // --- open every session and keep it open ---
    log(`opening ${total} sessions at concurrency ${settings.concurrency}`);
    let opened = 0;
    const tOpen = performance.now();
    const stopOpen = progress(() => `${opened}/${total} sessions open`);
    await pool(total, settings.concurrency, deadline, async (i) => {
      const s = sessions[i]!;
      const r = await rawExchange(srv.port, '/ep/v1', frames[i]!, 15_000, true, {
        onFrame: (opcode, payload, at) => {
          if (opcode !== 0x2) return;
          const f = decodeFrame(payload);
          if (f.ok && f.value.type === 'DISCONNECT') {
            s.disconnect ??= { reason: f.value.disconnect.reason, errorCode: f.value.disconnect.errorCode ?? null, at };
          } else s.otherFrames++;
        },
        onClose: (at) => {
          s.closedAt = at;
        },
      });
      s.close = r.close;
      if (!r.message) {
        s.connectCode = r.error ?? 'closed';
        return;
      }
      const f = decodeFrame(r.message);
      if (f.ok && f.value.type === 'CONNACK') {
        s.accepted = f.value.connack.returnCode === ConnackCode.ACCEPTED;
        s.connectCode = s.accepted ? 'ACCEPTED' : (f.value.connack.errorCode ?? String(f.value.connack.returnCode));
        if (s.accepted) opened++;
      } else s.connectCode = f.ok ? f.value.type : f.code;
    });
    stopOpen();
    const openSeconds = (performance.now() - tOpen) / 1000;
    const connectOutcomes: Record<string, number> = {};
    for (const s of sessions) connectOutcomes[s.connectCode] = (connectOutcomes[s.connectCode] ?? 0) + 1;
    log(`${opened}/${total} sessions open in ${openSeconds.toFixed(1)} s: ${JSON.stringify(connectOutcomes)}`);
    const live = (await (await fetch(`${admin}/admin/v1/applications/${APP_ID}/sessions`, { headers, dispatcher: agent })).json()) as { items?: unknown[] };
    const serverLiveSessions = live.items?.length ?? 0;
    log(`server reports ${serverLiveSessions} live sessions of application ${APP_ID}`);

    // --- floor: no-op admin calls over the same keep-alive connections ---
    const noop = async (): Promise<number | null> => {
      const t0 = performance.now();
      const res = await fetch(`${admin}/admin/v1/applications/${APP_ID}`, { headers, dispatcher: agent });
      await res.arrayBuffer();
      return res.status === 200 ? performance.now() - t0 : null;
    };
    await pool(settings.warmup, settings.revokeConcurrency, deadline, async () => void (await noop()));
    const floor: number[] = [];
    let floorFailed = 0;
    log(`floor: ${settings.sessions} no-op admin calls (GET /admin/v1/applications/${APP_ID}) at concurrency ${settings.revokeConcurrency}`);
    const stopFloor = progress(() => `floor ${floor.length + floorFailed}/${settings.sessions} calls`);
    await pool(settings.sessions, settings.revokeConcurrency, deadline, async () => {
      const v = await noop().catch(() => null);
      if (v === null) floorFailed++;
      else floor.push(v);
    });
    stopFloor();

    // --- revocation ---
    const revoke = async (s: Live): Promise<void> => {
      s.revokeAt = performance.now();
      try {
        const res = await fetch(`${admin}/admin/v1/applications/${APP_ID}/credentials/${s.key.keyHash}/revoke`, { method: 'POST', headers, dispatcher: agent });
        await res.arrayBuffer();
        s.httpOk = res.status === 200;
        if (s.httpOk) s.httpMs = performance.now() - s.revokeAt;
      } catch {
        s.httpOk = false;
      }
    };
    const warm = sessions.slice(0, settings.warmup).filter((s) => s.accepted);
    const measured = sessions.slice(settings.warmup).filter((s) => s.accepted);
    log(`warm-up: revoking ${warm.length} sessions (not counted)`);
    await pool(warm.length, settings.revokeConcurrency, deadline, (i) => revoke(warm[i]!));

    log(`revoking ${measured.length} live sessions at concurrency ${settings.revokeConcurrency}`);
    let called = 0;
    const received = (): number => measured.filter((s) => s.disconnect).length;
    const stopRevoke = progress(() => `${called}/${measured.length} revoke calls, ${received()} DISCONNECTs received`);
    const tRevoke = performance.now();
    await pool(measured.length, settings.revokeConcurrency, deadline, async (i) => {
      await revoke(measured[i]!);
      called++;
    });
    const revokeSeconds = (performance.now() - tRevoke) / 1000;
    const drainUntil = Math.min(deadline, Date.now() + DRAIN_MS);
    const pending = (): number => measured.filter((s) => s.revokeAt !== null && s.httpOk && !s.disconnect && s.closedAt === null).length;
    while (pending() > 0 && Date.now() < drainUntil) await sleep(20);
    stopRevoke();
    if (Date.now() >= deadline) log(`WARNING: stopped at --max-seconds ${settings.maxSeconds}; results cover what was measured by then`);

    // --- results ---
    const attempted = measured.filter((s) => s.revokeAt !== null);
    const revokeCallsFailed = attempted.filter((s) => !s.httpOk).length;
    const revoked = attempted.filter((s) => s.disconnect?.reason === REASON_CREDENTIALS_REVOKED);
    const latencies = sortedMs(revoked.map((s) => s.disconnect!.at - s.revokeAt!));
    const httpMs = sortedMs(attempted.filter((s) => s.httpMs !== null).map((s) => s.httpMs!));
    const floorSorted = sortedMs(floor);
    const beforeResponse = revoked.filter((s) => s.httpMs !== null && s.disconnect!.at - s.revokeAt! <= s.httpMs).length;
    const outcomes: Record<string, number> = {};
    for (const s of attempted) {
      const k = s.disconnect ? `DISCONNECT reason ${s.disconnect.reason}${s.disconnect.errorCode ? ` ${s.disconnect.errorCode}` : ''}` : s.closedAt !== null ? 'closed without DISCONNECT' : 'still open';
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    }
    const otherFrames = sessions.reduce((n, s) => n + s.otherFrames, 0);
    const result = {
      bench: 'revocation',
      machine,
      settings,
      sessions: attempted.length,
      p50Ms: ms(percentile(latencies, 50)),
      p99Ms: ms(percentile(latencies, 99)),
      maxMs: ms(latencies[latencies.length - 1] ?? NaN),
      floorP50Ms: ms(percentile(floorSorted, 50)),
      floorP99Ms: ms(percentile(floorSorted, 99)),
      floorMaxMs: ms(floorSorted[floorSorted.length - 1] ?? NaN),
      floorCalls: floor.length,
      floorCallsFailed: floorFailed,
      revokeResponseP50Ms: ms(percentile(httpMs, 50)),
      revokeResponseP99Ms: ms(percentile(httpMs, 99)),
      disconnectsReceived: revoked.length,
      disconnectsBeforeResponse: beforeResponse,
      revokeCallsFailed,
      outcomes,
      unexpectedFrames: otherFrames,
      sessionsOpened: opened,
      sessionsAttempted: total,
      serverLiveSessions,
      connectOutcomes,
      openSeconds: +openSeconds.toFixed(2),
      revokeSeconds: +revokeSeconds.toFixed(2),
      revokesPerSec: Math.round(attempted.length / revokeSeconds),
      wallSeconds: +((Date.now() - started) / 1000).toFixed(2),
    };
    const table = [
      '| metric | value |',
      '|---|---|',
      `| revoke call -> DISCONNECT CREDENTIALS_REVOKED, p50 | ${result.p50Ms} ms |`,
      `| revoke call -> DISCONNECT CREDENTIALS_REVOKED, p99 | ${result.p99Ms} ms |`,
      `| revoke call -> DISCONNECT CREDENTIALS_REVOKED, max | ${result.maxMs} ms |`,
      `| floor: no-op admin call (GET application), p50 / p99 / max | ${result.floorP50Ms} / ${result.floorP99Ms} / ${result.floorMaxMs} ms (${result.floorCalls} calls, ${result.floorCallsFailed} failed) |`,
      `| revoke call response time, p50 / p99 | ${result.revokeResponseP50Ms} / ${result.revokeResponseP99Ms} ms |`,
      `| DISCONNECTs received / sessions revoked | ${result.disconnectsReceived} / ${result.sessions} (${result.disconnectsBeforeResponse} before the call's response) |`,
      `| revoke calls failed | ${result.revokeCallsFailed} |`,
      `| revocations/s (at revoke concurrency ${settings.revokeConcurrency}) | ${result.revokesPerSec} |`,
      `| live sessions: opened / attempted (server count) | ${opened} / ${total} (${serverLiveSessions}); ${settings.warmup} of them warm-up |`,
      `| concurrency (open, revoke) | ${settings.concurrency}, ${settings.revokeConcurrency} |`,
    ].join('\n');
    if (latencies.length === 0) {
      process.stdout.write(`\n${table}\n`);
      throw new Error('no revocation was measured (see the table above); bench/results left as they were');
    }
    const curve = (xs: number[]): Array<[number, number]> => xs.map((v, i) => [xs.length > 1 ? (i / (xs.length - 1)) * 100 : 100, v]);
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'revocation-latest.json'), JSON.stringify(result, null, 2) + '\n');
    fs.writeFileSync(path.join(RESULTS, 'revocation-latest.md'), `# bench/revocation\n\n${machineLine(machine)}\n\n${table}\n`);
    fs.writeFileSync(
      path.join(RESULTS, 'revocation-latest.svg'),
      lineChart(`latchkey revoke -> DISCONNECT, ${result.sessions} live sessions (p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms)`, 'percentile', 'ms', [
        { name: 'revoke -> DISCONNECT', points: curve(latencies), color: '#d62728' },
        { name: 'no-op admin call (floor)', points: curve(floorSorted), color: '#7f7f7f' },
      ]),
    );
    process.stdout.write(`\n${machineLine(machine)}\n${table}\n\nwrote bench/results/revocation-latest.{json,md,svg}\n`);
    if (revoked.length < attempted.length || opened < total || otherFrames > 0) {
      log(`WARNING: not every session was revoked cleanly: ${JSON.stringify({ outcomes, connectOutcomes, revokeCallsFailed, unexpectedFrames: otherFrames })}`);
    }
  } finally {
    // Sessions the server did not end (failed or unmeasured revocations) are closed here.
    const still = sessions.filter((s) => s.close && s.closedAt === null).map((s) => s.close!);
    for (let i = 0; i < still.length; i += 256) await Promise.all(still.slice(i, i + 256).map((c) => c()));
    await agent.close().catch(() => undefined);
    await server?.stop('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
    clearTimeout(watchdog);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/revocation failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
