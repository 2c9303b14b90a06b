/**
 * The Redis topologies the Redis-backed suites run on besides the single Redis on 6379:
 *
 * - Redis Cluster: `scripts/redis-cluster.sh start` (three masters on 127.0.0.1:7101-7103) and
 *   LATCHKEY_TEST_REDIS_CLUSTER=redis-cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103.
 *   `.ci/run` does both and sets LATCHKEY_REQUIRE_REDIS_CLUSTER=1, so in CI a missing cluster fails
 *   the suite; elsewhere the cluster suites are skipped with a message saying why (as the browser
 *   tests are, test/helpers/browser.ts).
 * - Sentinel: a private master and one Sentinel (`redis-server --sentinel`) started by the test on
 *   free loopback ports, nothing on disk, killed at the end (RedisSentinel below). Needs only the
 *   redis-server binary the outage tests need too.
 * - A private Redis Cluster with replicas (PrivateRedisCluster below), for failover tests: the
 *   shared test cluster has no replicas, and killing one of its masters would break other suites.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

export const REDIS_URL = process.env.LATCHKEY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The test cluster's URL, or null (after saying why on stderr) when the cluster suites must skip. */
export function redisClusterUrl(): string | null {
  const url = process.env.LATCHKEY_TEST_REDIS_CLUSTER;
  if (url) return url;
  if (process.env.LATCHKEY_REQUIRE_REDIS_CLUSTER === '1') {
    throw new Error('LATCHKEY_REQUIRE_REDIS_CLUSTER=1 but LATCHKEY_TEST_REDIS_CLUSTER is not set (scripts/redis-cluster.sh start; .ci/run does)');
  }
  process.stderr.write('Redis Cluster tests skipped: LATCHKEY_TEST_REDIS_CLUSTER is not set (scripts/redis-cluster.sh start, then LATCHKEY_TEST_REDIS_CLUSTER=redis-cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103)\n');
  return null;
}

/** One RESP command over a fresh socket; resolves with the raw reply text ('' on any failure). */
export async function rawCommand(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.setTimeout(500);
    s.once('connect', () => s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    s.on('data', (d) => {
      out += d.toString();
      // Enough for the replies asked for here: a bulk string (INFO, CLUSTER NODES) read to its
      // length, an array of two bulk strings (an address), else up to a line end.
      const bulk = /^\$(\d+)\r\n/.exec(out);
      const done = bulk ? Buffer.byteLength(out) >= bulk[0].length + Number(bulk[1]) + 2 : out.startsWith('*2') ? out.split('\r\n').length >= 6 : out.endsWith('\r\n');
      if (done) {
        s.destroy();
        resolve(out);
      }
    });
    s.once('error', () => resolve(''));
    s.once('timeout', () => {
      s.destroy();
      resolve(out);
    });
  });
}

async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A master (and optionally one replica) watched by one Sentinel, all on free loopback ports, no
 * persistence. `url` is the redis-sentinel:// URL of the master `MASTER_NAME`.
 */
export class RedisSentinel {
  static readonly MASTER_NAME = 'lkmaster';
  private readonly children = new Map<number, ChildProcess>();

  private constructor(
    private readonly dir: string,
    readonly sentinelPort: number,
    readonly masterPort: number,
    readonly replicaPort: number | null,
  ) {}

  get url(): string {
    return `redis-sentinel://127.0.0.1:${this.sentinelPort}/${RedisSentinel.MASTER_NAME}`;
  }

  /** Starts everything; resolves once the Sentinel names the master (and sees the replica). */
  static async start(opts: { replica?: boolean } = {}): Promise<RedisSentinel> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-sentinel-'));
    const s = new RedisSentinel(dir, await freePort(), await freePort(), opts.replica ? await freePort() : null);
    try {
      await s.startServer(s.masterPort, []);
      if (s.replicaPort !== null) await s.startServer(s.replicaPort, ['--replicaof', '127.0.0.1', String(s.masterPort)]);
      // Sentinel rewrites its config file, so it gets one of its own in the temp directory.
      const conf = path.join(dir, 'sentinel.conf');
      fs.writeFileSync(conf, [
        `port ${s.sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${RedisSentinel.MASTER_NAME} 127.0.0.1 ${s.masterPort} 1`,
        `sentinel down-after-milliseconds ${RedisSentinel.MASTER_NAME} 500`,
        `sentinel failover-timeout ${RedisSentinel.MASTER_NAME} 5000`,
        '',
      ].join('\n'));
      s.spawn(s.sentinelPort, [conf, '--sentinel']);
      await until(async () => (await rawCommand(s.sentinelPort, 'SENTINEL', 'get-master-addr-by-name', RedisSentinel.MASTER_NAME)).includes(String(s.masterPort)), 10_000, 'Sentinel did not name the master');
      if (s.replicaPort !== null) {
        const rp = String(s.replicaPort);
        await until(async () => (await rawCommand(s.replicaPort!, 'INFO', 'replication')).includes('master_link_status:up'), 10_000, 'replica not in sync');
        await until(async () => (await rawCommand(s.sentinelPort, 'SENTINEL', 'replicas', RedisSentinel.MASTER_NAME)).includes(rp), 15_000, 'Sentinel did not see the replica');
      }
      return s;
    } catch (err) {
      await s.stop();
      throw err;
    }
  }

  /** The port the Sentinel currently names as master. */
  async currentMasterPort(): Promise<number> {
    const reply = await rawCommand(this.sentinelPort, 'SENTINEL', 'get-master-addr-by-name', RedisSentinel.MASTER_NAME);
    return Number(reply.split('\r\n')[4]);
  }

  /** SIGKILL the master (an outage); resolves once the Sentinel names another one. */
  async killMasterAndWaitForFailover(ms = 20_000): Promise<number> {
    const old = await this.currentMasterPort();
    await this.kill(old);
    await until(async () => {
      const now = await this.currentMasterPort();
      return Number.isInteger(now) && now !== old;
    }, ms, 'Sentinel did not fail over');
    return this.currentMasterPort();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.children.keys()].map((p) => this.kill(p)));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private spawn(port: number, args: string[]): void {
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.children.set(port, child);
  }

  private async startServer(port: number, extra: string[]): Promise<void> {
    this.spawn(port, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...extra]);
    await until(async () => (await rawCommand(port, 'PING')).startsWith('+PONG'), 10_000, `redis-server on ${port} did not answer`);
  }

  private async kill(port: number): Promise<void> {
    const c = this.children.get(port);
    if (!c) return;
    this.children.delete(port);
    if (c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  }
}

/** A port p with p and p + 10000 (its cluster bus port) both free a moment ago. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  const free = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (let i = 0; i < 200; i++) {
    const p = 20_000 + Math.floor(Math.random() * 20_000);
    if (taken.has(p) || taken.has(p + 10_000) || taken.has(p - 10_000)) continue;
    if ((await free(p)) && (await free(p + 10_000))) {
      taken.add(p);
      return p;
    }
  }
  throw new Error('no free port pair for a cluster node');
}

/**
 * `masters` masters with one replica each, on random loopback ports, nothing persisted, cluster
 * node timeout 1 s (a dead master is replaced within a few seconds). Killed by stop().
 */
export class PrivateRedisCluster {
  private readonly children = new Map<number, ChildProcess>();
  private constructor(
    private readonly dir: string,
    readonly ports: number[],
  ) {}

  get url(): string {
    return `redis-cluster://${this.ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
  }

  static async start(masters = 3): Promise<PrivateRedisCluster> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-cluster-'));
    const taken = new Set<number>();
    const ports: number[] = [];
    for (let i = 0; i < masters * 2; i++) ports.push(await freeClusterPort(taken));
    const c = new PrivateRedisCluster(dir, ports);
    try {
      for (const p of ports) {
        const child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
          '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${p}.conf`, '--cluster-node-timeout', '1000'], { stdio: 'ignore' });
        c.children.set(p, child);
      }
      for (const p of ports) await until(async () => (await rawCommand(p, 'PING')).startsWith('+PONG'), 10_000, `cluster node ${p} did not answer`);
      await new Promise<void>((resolve, reject) => {
        execFile('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], (err, stdout, stderr) =>
          err ? reject(new Error(`redis-cli --cluster create failed: ${stderr || stdout}`)) : resolve(),
        );
      });
      for (const p of ports) await until(async () => (await rawCommand(p, 'CLUSTER', 'INFO')).includes('cluster_state:ok'), 20_000, `cluster not ok on ${p}`);
      // Every replica in sync, so a promoted one has the data.
      for (const p of ports) {
        await until(async () => {
          const info = await rawCommand(p, 'INFO', 'replication');
          return info.includes('role:master') || info.includes('master_link_status:up');
        }, 20_000, `replica ${p} not in sync`);
      }
      return c;
    } catch (err) {
      await c.stop();
      throw err;
    }
  }

  /** The master port serving `slot`, asked of any live node. */
  async masterOf(slot: number): Promise<number> {
    for (const p of this.children.keys()) {
      const reply = await rawCommand(p, 'CLUSTER', 'NODES');
      if (!reply) continue;
      for (const line of reply.split('\n')) {
        const f = line.split(' ');
        if (!f[2]?.includes('master') || f[2].includes('fail')) continue;
        const ranges = f.slice(8).filter((r) => /^\d/.test(r));
        if (ranges.some((r) => {
          const [lo, hi] = r.split('-').map(Number);
          return slot >= lo! && slot <= (hi ?? lo!);
        })) return Number(f[1]!.split(':')[1]!.split('@')[0]);
      }
    }
    throw new Error(`no live master for slot ${slot}`);
  }

  /** SIGKILL the master of `slot`; resolves once another node serves that slot and the cluster is ok. */
  async killMasterOf(slot: number, ms = 20_000): Promise<{ old: number; now: number }> {
    const old = await this.masterOf(slot);
    // Replication is asynchronous: a write acknowledged just before the kill can be missing on the
    // replica that is promoted (the failover test then read null for a key it had set, 1 run in 3).
    // The test is about clients following a failover, not about Redis losing writes, so the kill
    // waits until every replica has the master's whole replication stream.
    await until(async () => {
      const info = await rawCommand(old, 'INFO', 'replication');
      const offset = Number(/master_repl_offset:(\d+)/.exec(info)?.[1] ?? NaN);
      const replicas = [...info.matchAll(/slave\d+:[^\r\n]*offset=(\d+)/g)].map((m) => Number(m[1]));
      return replicas.length > 0 && replicas.every((o) => o >= offset);
    }, 5000, `replicas of ${old} not caught up`);
    await this.kill(old);
    let now = old;
    await until(async () => {
      try {
        now = await this.masterOf(slot);
      } catch {
        return false;
      }
      if (now === old) return false;
      return (await rawCommand(now, 'CLUSTER', 'INFO')).includes('cluster_state:ok');
    }, ms, `slot ${slot} not failed over`);
    return { old, now };
  }

  async stop(): Promise<void> {
    await Promise.all([...this.children.keys()].map((p) => this.kill(p)));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private async kill(port: number): Promise<void> {
    const c = this.children.get(port);
    if (!c) return;
    this.children.delete(port);
    if (c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  }
}
