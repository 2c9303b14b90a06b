/**
 * bench/bootstrap: POST /bootstrap/v1/resolve under autocannon, against a plain uWS hello-world
 * measured in the same run as the floor.
 *
 *   npm run bench:bootstrap        (about 60 s)
 *
 * The floor (bench/lib/hello-server.ts) answers the same request shape: it reads a POST body of
 * the same size and answers 200 with as many constant bytes as latchkey's answer has, so the ratio
 * prices exactly what resolve adds: Avro decode, application lookup, cached signed answer. Rounds
 * alternate latchkey and floor (so a noisy neighbour hits both), each after a warm-up. The client
 * (autocannon) shares the 2 cores with the server, so alongside requests/s the bench reports the
 * server's CPU per request, which does not depend on how fast the client is.
 *
 * Before the load it checks that the answer verifies (SDK verifyAccessPointList with the key from
 * `latchkey bootstrap-key`), and during it that every answer was 200.
 *
 * Writes bench/results/bootstrap-latest.json (reqPerSec, floorReqPerSec, ratio, ...) and .svg.
 * Environment: LATCHKEY_BENCH_DURATION_SEC (per round, default 8), LATCHKEY_BENCH_ROUNDS (default 3),
 * LATCHKEY_BENCH_CONNECTIONS (default 64). Loopback only; bounded by rounds x duration.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon, { type Result as AutocannonResult } from 'autocannon';
import { types } from '../src/protocol/schemas.js';
import { verifyAccessPointList } from '../src/sdk/bootstrap.js';
import { ROOT } from '../test/helpers/root.js';
import { startServerProcess } from '../test/helpers/process.js';
import { lineChart } from './lib/chart.js';
import { startFloorProcess } from './lib/child.js';
import { machineInfo, machineLine, processCpuUs } from './lib/machine.js';

const RESULTS = path.join(ROOT, 'bench/results');
const settings = {
  durationSec: Number(process.env.LATCHKEY_BENCH_DURATION_SEC ?? 8),
  rounds: Number(process.env.LATCHKEY_BENCH_ROUNDS ?? 3),
  connections: Number(process.env.LATCHKEY_BENCH_CONNECTIONS ?? 64),
  warmupSec: 2,
};

function log(msg: string): void {
  process.stdout.write(`[bootstrap] ${msg}\n`);
}

interface Round {
  target: 'latchkey' | 'floor';
  reqPerSec: number;
  cpuUsPerReq: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

async function load(url: string, body: Buffer, durationSec: number): Promise<AutocannonResult> {
  return autocannon({ url, method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body, connections: settings.connections, pipelining: 1, duration: durationSec, timeout: 10 });
}

async function round(target: Round['target'], url: string, body: Buffer, pid: number): Promise<Round> {
  const cpu0 = processCpuUs(pid);
  const r = await load(url, body, settings.durationSec);
  const cpu = processCpuUs(pid) - cpu0;
  const total = r['2xx'] + r.non2xx;
  return {
    target,
    reqPerSec: Math.round(total / r.duration),
    cpuUsPerReq: Number((cpu / Math.max(1, total)).toFixed(2)),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const machine = machineInfo();
  log(machineLine(machine));
  log(`settings: ${JSON.stringify(settings)}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-'));
  const appToken = 'bench-app-token';
  fs.writeFileSync(path.join(dir, 'seed.json'), JSON.stringify({ tenants: [{ id: 'bench', name: 'bench' }], applications: [{ id: 'bench', tenantId: 'bench', name: 'bench', appToken, credentialsService: 'trustful' }] }));
  const env = { LATCHKEY_DATA_DIR: path.join(dir, 'data'), LATCHKEY_SEED_FILE: path.join(dir, 'seed.json'), LATCHKEY_LOG_LEVEL: 'warn' };
  const server = await startServerProcess(env, 20_000);
  let floor: Awaited<ReturnType<typeof startFloorProcess>> | null = null;
  try {
    const url = `http://127.0.0.1:${server.port}/bootstrap/v1/resolve`;
    const body = types.bootstrapRequest.toBuffer({ appToken, protocolVersions: [1] });
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: body as BodyInit });
    const answer = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`resolve answered ${res.status}: ${answer.toString()}`);
    const key = JSON.parse(execFileSync(process.execPath, [path.join(ROOT, 'dist/src/main.js'), 'bootstrap-key', '--json'], { env: { ...process.env, ...env } }).toString()) as { publicKeyDer: string };
    const list = await verifyAccessPointList(answer, Buffer.from(key.publicKeyDer, 'base64'), appToken, Date.now());
    log(`resolve answer: ${answer.length} bytes, ${list.accessPoints.length} access point(s), signature verified`);

    floor = await startFloorProcess('hello-server.js', { HELLO_BODY_BYTES: String(answer.length) });
    const floorUrl = `http://127.0.0.1:${floor.port}/bootstrap/v1/resolve`;
    log(`warm-up ${settings.warmupSec} s each`);
    await load(url, body, settings.warmupSec);
    await load(floorUrl, body, settings.warmupSec);

    const rounds: Round[] = [];
    for (let i = 0; i < settings.rounds; i++) {
      for (const [target, u, pid] of [['latchkey', url, server.child.pid!], ['floor', floorUrl, floor.child.pid!]] as const) {
        const r = await round(target, u, body, pid);
        rounds.push(r);
        log(`round ${i + 1}/${settings.rounds} ${target.padEnd(8)} ${r.reqPerSec} req/s, server CPU ${r.cpuUsPerReq} µs/req, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, non-2xx ${r.non2xx}, errors ${r.errors}`);
      }
    }
    const mine = rounds.filter((r) => r.target === 'latchkey');
    const base = rounds.filter((r) => r.target === 'floor');
    const reqPerSec = median(mine.map((r) => r.reqPerSec));
    const floorReqPerSec = median(base.map((r) => r.reqPerSec));
    const cpu = median(mine.map((r) => r.cpuUsPerReq));
    const floorCpu = median(base.map((r) => r.cpuUsPerReq));
    const failures = mine.reduce((s, r) => s + r.non2xx + r.errors, 0);
    const result = {
      bench: 'bootstrap',
      at: new Date().toISOString(),
      machine,
      settings,
      answerBytes: answer.length,
      reqPerSec,
      floorReqPerSec,
      ratio: Number((reqPerSec / floorReqPerSec).toFixed(3)),
      serverCpuUsPerReq: cpu,
      floorCpuUsPerReq: floorCpu,
      cpuRatio: Number((cpu / floorCpu).toFixed(3)),
      failures,
      rounds,
      note: 'floor = plain uWS answering the same POST shape (bench/lib/hello-server.ts); medians over rounds; autocannon shares the cores with the server',
    };
    if (failures > 0) throw new Error(`${failures} resolve requests failed (non-2xx or errors)`);
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, 'bootstrap-latest.json'), JSON.stringify(result, null, 2) + '\n');
    fs.writeFileSync(
      path.join(RESULTS, 'bootstrap-latest.svg'),
      lineChart(`bootstrap resolve vs uWS hello-world (ratio ${result.ratio})`, 'round', 'requests/s', [
        { name: 'latchkey resolve', points: mine.map((r, i) => [i + 1, r.reqPerSec]), color: '#1f77b4' },
        { name: 'uWS hello-world', points: base.map((r, i) => [i + 1, r.reqPerSec]), color: '#7f7f7f' },
      ]),
    );
    process.stdout.write(
      `\n${machineLine(machine)}\nresolve ${reqPerSec} req/s (${cpu} µs server CPU/req) vs floor ${floorReqPerSec} req/s (${floorCpu} µs/req): ratio ${result.ratio}, CPU ratio ${result.cpuRatio}\nwrote bench/results/bootstrap-latest.{json,svg}\n`,
    );
  } finally {
    await floor?.stop();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`[bootstrap] failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
