/**
 * bench/fuzz: a protocol fuzzer against a live `latchkey serve` on 127.0.0.1 (bench/lib/fuzz-run.ts
 * says what it sends and how it detects crashes, hangs, leaked sessions and unexpected codes).
 *
 *   npm run fuzz [-- --frames 1000000 --http 20000 --max-seconds 600 --seed 1 --concurrency 48
 *                    --sessions 16 --http-concurrency 8 --keys 32 --hang-ms 15000
 *                    --handshake-timeout-ms 2000 --max-crashes 10]
 *   npm run fuzz -- --seed 7 --replay-id ws-pre#1234     regenerate one input and run it alone
 *   npm run fuzz -- --seed 7 --replay-id ws-sess3#5 --replay-only 2.7   only frame 2.7 of that session
 *   npm run fuzz -- --replay bench/results/fuzz-crashes/crash-....json   resend saved bytes
 *
 * Prints the machine line and settings, a progress line once a second, every finding as it is
 * found (input hex, server stack), then the table. Writes bench/results/fuzz-latest.json and .md;
 * crash and hang inputs go to bench/results/fuzz-crashes/ (hex + JSON). Exit code 1 when there
 * were crashes, hangs or leaked sessions; 0 otherwise (unexpected codes are reported, not fatal).
 * Keys come from bench/.cache (bench/lib/keys.ts), generated on the first run.
 * LATCHKEY_BENCH_SERVER_NODE_ARGS passes node flags to the server.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../test/helpers/root.js';
import { intArg } from './lib/args.js';
import { busyBetween, machineTicks, writeReport } from './lib/fuzz-report.js';
import { DEFAULT_OPTIONS, replayFuzz, runFuzz, type FuzzOptions } from './lib/fuzz-run.js';
import { endpointKeys } from './lib/keys.js';
import { machineInfo, machineLine } from './lib/machine.js';

const RESULTS = path.join(ROOT, 'bench/results');

function log(msg: string): void {
  process.stdout.write(`[fuzz] ${msg}\n`);
}

function strArg(name: string): string | null {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? null) : null;
}

function seedArg(): number {
  const s = strArg('seed');
  if (s === null) return DEFAULT_OPTIONS.seed;
  const v = Number(s);
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error('--seed must be an integer from 0 to 2^32-1');
  return v;
}

async function main(): Promise<void> {
  const sessions = intArg('sessions', DEFAULT_OPTIONS.sessionWorkers, 1000);
  const settings = {
    seed: seedArg(),
    frames: intArg('frames', DEFAULT_OPTIONS.frames, 1e9),
    http: intArg('http', DEFAULT_OPTIONS.http, 1e8),
    maxSeconds: intArg('max-seconds', DEFAULT_OPTIONS.maxSeconds, 86_400),
    wsConcurrency: intArg('concurrency', DEFAULT_OPTIONS.wsConcurrency, 4096),
    sessionWorkers: sessions,
    httpConcurrency: intArg('http-concurrency', DEFAULT_OPTIONS.httpConcurrency, 256),
    keys: intArg('keys', Math.max(32, sessions + 2), 10_000),
    hangMs: intArg('hang-ms', DEFAULT_OPTIONS.hangMs, 600_000),
    handshakeTimeoutMs: intArg('handshake-timeout-ms', DEFAULT_OPTIONS.handshakeTimeoutMs, 120_000),
    maxCrashes: intArg('max-crashes', DEFAULT_OPTIONS.maxCrashes, 10_000),
    settleMs: DEFAULT_OPTIONS.settleMs,
    oversizeP: DEFAULT_OPTIONS.oversizeP,
  };
  const machine = machineInfo();
  log(machineLine(machine));
  log(`settings: ${JSON.stringify(settings)}`);
  const keys = await endpointKeys(settings.keys, 'fuzz');
  const serverNodeArgs = (process.env.LATCHKEY_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const crashDir = path.join(RESULTS, 'fuzz-crashes');
  const opts: FuzzOptions = { ...DEFAULT_OPTIONS, ...settings, keys, serverNodeArgs, serverEnv: {}, crashDir, log };

  const replayFile = strArg('replay');
  const replayId = strArg('replay-id');
  if (replayFile || replayId) {
    const only = strArg('replay-only');
    const r = replayId ? await replayFuzz(opts, { id: replayId, ...(only ? { only: only.split(',') } : {}) }) : await replayFuzz(opts, { finding: JSON.parse(fs.readFileSync(replayFile!, 'utf8')) as never });
    log(`replay of ${replayId ?? replayFile}: ${r.crashed ? 'the server CRASHED' : 'the server survived'}; hangs ${r.hangs}${r.outcome ? `; ${r.outcome}` : ''}`);
    if (r.stack) log(`server stderr:\n${r.stack}`);
    log(`answers: ${JSON.stringify(r.codes)}`);
    process.exitCode = r.crashed || r.hangs > 0 || /no answer|still open/.test(r.outcome) ? 1 : 0;
    return;
  }

  const ticks0 = machineTicks();
  const load0 = os.loadavg();
  const r = await runFuzz(opts);
  const busy = busyBetween(ticks0, machineTicks(), r.serverCpuSeconds, r.clientCpuSeconds, load0);
  writeReport(RESULTS, r, machine, busy, settings);
  const MiB = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
  process.stdout.write(
    [
      '',
      machineLine(machine),
      `machine busy ${busy.machineBusyPercent}% (other load ${busy.otherBusyPercent}%, steal ${busy.stealPercent}%)`,
      `frames ${r.frames}  httpRequests ${r.httpRequests}  connections ${r.connections}  handshakes accepted ${r.handshakesAccepted}`,
      `crashes ${r.crashes}  hangs ${r.hangs}  leakedSessions ${r.leakedSessions} (sockets ${r.socketsAfter}, sessionsOpen ${r.sessionsOpenAfter})`,
      `server RSS before ${MiB(r.rssBeforeBytes)}  after ${MiB(r.rssAfterBytes)}  peak ${MiB(r.rssPeakBytes)}; V8 heap used ${r.heapUsedBeforeBytes === null ? '-' : MiB(r.heapUsedBeforeBytes)} -> ${r.heapUsedAfterBytes === null ? '-' : MiB(r.heapUsedAfterBytes)}`,
      Object.keys(r.hangsByKey).length ? `hangs by category: ${JSON.stringify(r.hangsByKey)}` : '',
      `fuzzing ${r.fuzzSeconds.toFixed(1)} s (${Math.round(r.frames / Math.max(0.001, r.fuzzSeconds))} frames/s), whole run ${r.durationSeconds.toFixed(1)} s, stopped by: ${r.stoppedBy}`,
      `unexpected codes: ${JSON.stringify(r.unexpectedCodes)}`,
      r.quarantined.length ? `quarantined input categories (after a reproduced crash or 3 hangs): ${r.quarantined.join(', ')}` : '',
      `wrote bench/results/fuzz-latest.{json,md}${r.findings.some((f) => f.kind === 'crash' || f.kind === 'hang') ? ' and bench/results/fuzz-crashes/' : ''}`,
      '',
    ].filter((l) => l !== '').join('\n') + '\n',
  );
  process.exitCode = r.crashes + r.hangs + r.leakedSessions > 0 ? 1 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/fuzz failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(2);
});
