/**
 * A private redis-server for one bench run: a free loopback port, nothing persisted (--save "",
 * --appendonly no), its own temporary directory, stopped (SHUTDOWN NOSAVE, then SIGKILL) by stop().
 * Plus readers for the counters a bench takes from Redis itself, so that what it reports about bus
 * traffic does not depend on latchkey's own metrics: per-command call counts (INFO commandstats),
 * bytes in and out (INFO stats) and subscribers per channel (PUBSUB NUMSUB).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../test/helpers/ports.js';
import { sleep } from './run.js';

export interface RedisCounters {
  at: number;
  /** Calls per command (lower case, e.g. publish, spublish, hset), from INFO commandstats. */
  calls: Record<string, number>;
  /** total_net_input_bytes / total_net_output_bytes, from INFO stats. */
  netInputBytes: number;
  netOutputBytes: number;
  /** used_cpu_user + used_cpu_sys of the server (main thread and its others), µs, from INFO cpu. */
  cpuUs: number;
}

export interface PrivateRedis {
  port: number;
  url: string;
  child: ChildProcess;
  /** A client for the bench's own reads (INFO, PUBSUB, MONITOR); closed by stop(). */
  client: Redis;
  counters(): Promise<RedisCounters>;
  /** Channels matching `pattern` with their subscriber counts (PUBSUB CHANNELS + NUMSUB). */
  subscribers(pattern: string): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

/** Start redis-server (the Debian binary on PATH) and wait until it answers PING (bounded). */
export async function startPrivateRedis(timeoutMs = 10_000): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100, connectionName: 'bench' });
  client.on('error', () => undefined);
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server exited at start: ${stderr}`);
    try {
      if (client.status === 'wait') await client.connect();
      if ((await client.ping()) === 'PONG') break;
    } catch {
      // not up yet
    }
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on 127.0.0.1:${port} did not answer PING within ${timeoutMs} ms: ${stderr}`);
    }
    await sleep(50);
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    child,
    client,
    async counters() {
      const [cmd, stats, cpu] = await Promise.all([client.info('commandstats'), client.info('stats'), client.info('cpu')]);
      const calls: Record<string, number> = {};
      for (const [k, v] of parseInfo(cmd)) {
        const m = /^cmdstat_(.+)$/.exec(k);
        const c = /(?:^|,)calls=(\d+)/.exec(v);
        if (m && c) calls[m[1]!] = Number(c[1]);
      }
      const s = parseInfo(stats);
      const u = parseInfo(cpu);
      return {
        at: performance.now(),
        calls,
        netInputBytes: Number(s.get('total_net_input_bytes') ?? NaN),
        netOutputBytes: Number(s.get('total_net_output_bytes') ?? NaN),
        cpuUs: (Number(u.get('used_cpu_user') ?? NaN) + Number(u.get('used_cpu_sys') ?? NaN)) * 1e6,
      };
    },
    async subscribers(pattern) {
      const channels = (await client.pubsub('CHANNELS', pattern)) as string[];
      if (channels.length === 0) return {};
      const flat = (await client.pubsub('NUMSUB', ...channels)) as Array<string | number>;
      const out: Record<string, number> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = Number(flat[i + 1]);
      return out;
    },
    async stop() {
      client.disconnect();
      if (child.exitCode === null && child.signalCode === null) {
        const admin = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        admin.on('error', () => undefined);
        await admin.connect().then(() => admin.call('SHUTDOWN', 'NOSAVE')).catch(() => undefined);
        admin.disconnect();
        const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * MONITOR for a short window on a raw socket of its own (ioredis' monitor() mode failed here with
 * "Command queue state error" under ~30k commands/s): calls `onCommand(name, firstArg)` per command
 * seen (name lower case) until stop(). MONITOR costs Redis CPU per command: keep the window short
 * and out of measured windows.
 */
export async function monitor(port: number, onCommand: (name: string, arg: string) => void, timeoutMs = 5_000): Promise<{ stop(): void }> {
  const sock = net.connect(port, '127.0.0.1');
  let buf = '';
  let started = false;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`MONITOR not acknowledged within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
    sock.once('connect', () => sock.write('MONITOR\r\n'));
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!started) {
          if (line !== '+OK') continue;
          started = true;
          clearTimeout(t);
          resolve();
          continue;
        }
        // +<unix time> [<db> <client>] "command" "arg" ...; quotes inside arguments are escaped.
        const m = /^\+\S+ \[[^\]]*\] "([^"]*)"(?: "((?:[^"\\]|\\.)*)")?/.exec(line);
        if (m) onCommand(m[1]!.toLowerCase(), m[2] ?? '');
      }
    });
  });
  sock.on('error', () => undefined);
  return { stop: () => sock.destroy() };
}

/** Calls of the named commands between two readings (summed). */
export function callsDelta(a: RedisCounters, b: RedisCounters, commands: string[]): number {
  return commands.reduce((n, c) => n + (b.calls[c] ?? 0) - (a.calls[c] ?? 0), 0);
}
