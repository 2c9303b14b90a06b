/**
 * The latchkey node under test in bench/sessions: start it (`latchkey serve`, several gateway
 * processes when the build has the `processes` setting), find its processes, add up their memory,
 * read /healthz and /metrics, and kill its gateway processes for the reconnect storm.
 *
 * Multi-process contract (the node's primary forks `processes` gateway processes that share the
 * endpoint port; it logs 'listening' once all listen; /healthz lists `processes: [{ index, pid,
 * sessionsOpen, ... }]`; a gateway process that dies is restarted by the primary). A build without
 * the `processes` setting runs one process: the bench then holds what one process can (its open
 * files), says so, and restarts the killed process itself for the storm.
 */
import fs from 'node:fs';
import net from 'node:net';
import { configSchema } from '../../src/config/config.js';
import { startServerProcess, type ServerProcess } from '../../test/helpers/process.js';
import { Cdp, gcAll, memoryUsage } from './cdp.js';
import { parsePrometheus, type Scrape } from './flood-stats.js';
import { processRssBytes, smapsBreakdown, type SmapsBreakdown } from './machine.js';
import { sleep } from './run.js';

/** Every process id this bench started or found, killed (SIGKILL) by `killTracked` on any exit path. */
const tracked = new Set<number>();

export function track(pid: number | undefined): void {
  if (pid) tracked.add(pid);
}

export function killTracked(): void {
  for (const pid of tracked) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  tracked.clear();
}

/** Whether this build's `latchkey serve` runs several gateway processes (config field `processes`). */
export function multiProcessSupported(): boolean {
  return Object.hasOwn(configSchema, 'processes');
}

/** A free TCP port on 127.0.0.1 (fixed ports: the storm restarts processes on the same ones). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Direct child processes of `pid` (/proc/<pid>/task/<tid>/children of every thread). */
export function childPids(pid: number): number[] {
  const out = new Set<number>();
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        for (const c of fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (c.trim()) out.add(Number(c));
      } catch {
        // thread gone
      }
    }
  } catch {
    // process gone
  }
  return [...out];
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sum of VmRSS over `pids` (bytes); processes that are gone count 0. */
export function rssSum(pids: number[]): number {
  let sum = 0;
  for (const p of pids) {
    try {
      const v = processRssBytes(p);
      if (Number.isFinite(v)) sum += v;
    } catch {
      // gone
    }
  }
  return sum;
}

export interface NodeOptions {
  dataDir: string;
  port: number;
  adminPort: number;
  /** Gateway processes; 1 on a build without the setting. */
  processes: number;
  env: Record<string, string>;
  nodeArgs: string[];
  startTimeoutMs: number;
  /** Start every node process with its inspector on (`--inspect=127.0.0.1:0`), for forced GCs and heap figures. */
  inspect: boolean;
}

/** One node process's memory, from /proc and from its own process.memoryUsage() (main thread + workers). */
export interface ProcessMemory {
  pid: number;
  role: 'primary' | 'gateway';
  rssMiB: number;
  /** V8 heap in use, main thread and worker threads; heapTotal: what V8 holds for the main thread's heap. */
  heapUsedMiB: number;
  heapTotalMiB: number;
  workerHeapUsedMiB: number;
  /** Memory of C++ objects bound to JS (includes ArrayBuffers), main thread. */
  externalMiB: number;
  arrayBuffersMiB: number;
  smaps: SmapsBreakdown | null;
}

const mib = (b: number): number => Math.round((b / 1048576) * 100) / 100;

export class LatchkeyNode {
  private constructor(
    readonly opts: NodeOptions,
    public server: ServerProcess,
  ) {}

  /** Inspector sessions by URL (null: that process is gone or refused). */
  private readonly inspectors = new Map<string, { cdp: Cdp; pid: number } | null>();

  static async start(opts: NodeOptions): Promise<LatchkeyNode> {
    return new LatchkeyNode(opts, await LatchkeyNode.spawn(opts));
  }

  private static async spawn(o: NodeOptions): Promise<ServerProcess> {
    const env: Record<string, string> = { ...o.env, LATCHKEY_DATA_DIR: o.dataDir, LATCHKEY_PORT: String(o.port), LATCHKEY_ADMIN_PORT: String(o.adminPort) };
    if (multiProcessSupported()) env.LATCHKEY_PROCESSES = String(o.processes);
    const s = await startServerProcess(env, o.startTimeoutMs, o.inspect ? [...o.nodeArgs, '--inspect=127.0.0.1:0'] : o.nodeArgs);
    track(s.child.pid);
    return s;
  }

  get multiProcess(): boolean {
    return multiProcessSupported() && this.opts.processes > 1;
  }

  get primaryPid(): number {
    return this.server.child.pid!;
  }

  /** The primary and every process it forked (the gateway processes). */
  pids(): number[] {
    const kids = childPids(this.primaryPid);
    for (const k of kids) track(k);
    return [this.primaryPid, ...kids];
  }

  rss(): number {
    return rssSum(this.pids());
  }

  async healthz(timeoutMs = 5000): Promise<Record<string, unknown> | null> {
    try {
      const r = await fetch(`http://127.0.0.1:${this.opts.adminPort}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
      return (await r.json()) as Record<string, unknown>;
    } catch {
      return null;
    }
  }

  async metrics(timeoutMs = 10_000): Promise<Scrape | null> {
    try {
      const r = await fetch(`http://127.0.0.1:${this.opts.adminPort}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
      return parsePrometheus(await r.text());
    } catch {
      return null;
    }
  }

  /**
   * The gateway processes, as /healthz lists them (`processes[].pid`); a build without that field:
   * the primary's children, or the server process itself when it has none (one process).
   */
  async gatewayPids(): Promise<{ pids: number[]; source: string }> {
    const h = await this.healthz();
    const list = h?.processes;
    if (Array.isArray(list) && list.length > 0) {
      // The primary lists itself first ({ role: 'primary' }); the gateway processes have an index.
      const gateways = (list as Array<{ pid?: unknown; role?: unknown }>).filter((p) => p.role !== 'primary');
      const pids = gateways.map((p) => Number(p.pid)).filter((p) => Number.isInteger(p) && p > 0 && p !== this.primaryPid);
      if (pids.length) {
        for (const p of pids) track(p);
        return { pids, source: '/healthz processes' };
      }
    }
    const kids = childPids(this.primaryPid);
    if (kids.length) return { pids: kids, source: "the primary's child processes" };
    return { pids: [this.primaryPid], source: 'the server process (one process, no primary)' };
  }

  /**
   * Drop every session at once: SIGKILL every gateway process. With a primary it restarts them;
   * without one (a single process), this restarts the server on the same ports and data directory.
   * Returns the pids killed and Date.now() of the kill.
   */
  async killGateways(): Promise<{ killed: number[]; at: number; restartedBy: 'primary' | 'bench' }> {
    const { pids } = await this.gatewayPids();
    const selfRestart = pids.includes(this.primaryPid);
    const at = Date.now();
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (selfRestart) {
      // One process: nobody else restarts it. Wait for the exit (bounded), then start it again.
      const until = Date.now() + 10_000;
      while (this.server.child.exitCode === null && this.server.child.signalCode === null && Date.now() < until) await sleep(5);
      this.server = await LatchkeyNode.spawn(this.opts);
      return { killed: pids, at, restartedBy: 'bench' };
    }
    return { killed: pids, at, restartedBy: 'primary' };
  }

  /**
   * Inspector sessions of every live node process, by pid. Every process started with `--inspect`
   * prints "Debugger listening on ws://..." on stderr (cluster gives each forked process the next
   * port, restarted ones too); this attaches to the URLs not seen yet and forgets dead processes.
   */
  async attachInspectors(): Promise<Map<number, Cdp>> {
    if (!this.opts.inspect) return new Map();
    const urls = this.server.stderr.join('').match(/ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+/g) ?? [];
    for (const url of new Set(urls)) {
      if (this.inspectors.has(url)) continue;
      try {
        const cdp = await Cdp.connect(url);
        const r = await cdp.call<{ result: { value: number } }>('Runtime.evaluate', { expression: 'process.pid', returnByValue: true });
        this.inspectors.set(url, { cdp, pid: r.result.value });
      } catch {
        this.inspectors.set(url, null);
      }
    }
    const out = new Map<number, Cdp>();
    for (const [url, i] of this.inspectors) {
      if (!i) continue;
      if (!alive(i.pid)) {
        i.cdp.close();
        this.inspectors.set(url, null);
        continue;
      }
      out.set(i.pid, i.cdp);
    }
    return out;
  }

  /** Two full garbage collections in every thread of every node process; false without inspectors. */
  async gc(): Promise<boolean> {
    const all = await this.attachInspectors();
    if (all.size === 0) return false;
    await Promise.all([...all.values()].map((c) => gcAll(c).catch(() => undefined)));
    return true;
  }

  /** Per-process memory figures (primary first); heap fields 0 for a process without an inspector. */
  async memory(): Promise<ProcessMemory[]> {
    const insp = await this.attachInspectors();
    const out: ProcessMemory[] = [];
    for (const pid of this.pids()) {
      const m: ProcessMemory = { pid, role: pid === this.primaryPid ? 'primary' : 'gateway', rssMiB: mib(rssSum([pid])), heapUsedMiB: 0, heapTotalMiB: 0, workerHeapUsedMiB: 0, externalMiB: 0, arrayBuffersMiB: 0, smaps: smapsBreakdown(pid) };
      const cdp = insp.get(pid);
      if (cdp) {
        try {
          const u = await memoryUsage(cdp);
          m.heapUsedMiB = mib(u.heapUsed);
          m.heapTotalMiB = mib(u.heapTotal);
          m.externalMiB = mib(u.external);
          m.arrayBuffersMiB = mib(u.arrayBuffers);
          let w = 0;
          for (const t of cdp.workers.values()) w += (await memoryUsage(t)).heapUsed;
          m.workerHeapUsedMiB = mib(w);
        } catch {
          // the process went away meanwhile
        }
      }
      out.push(m);
    }
    return out;
  }

  closeInspectors(): void {
    for (const i of this.inspectors.values()) i?.cdp.close();
    this.inspectors.clear();
  }

  /** SIGTERM the primary (graceful close), then SIGKILL whatever of the node is left. */
  async stop(): Promise<void> {
    this.closeInspectors();
    const kids = childPids(this.primaryPid);
    await this.server.stop('SIGTERM');
    for (const k of kids) if (alive(k)) process.kill(k, 'SIGKILL');
  }
}

/**
 * Wait until the summed RSS of `pids()` is stable: the last `windowS` one-second samples within
 * `tolerance` (1 %) of each other; at most `maxS` seconds. Returns the last sample and whether it
 * settled. `line` prints one progress line a second.
 */
export async function settleRss(pids: () => number[], maxS: number, line: (s: string) => void, windowS = 5, tolerance = 0.01): Promise<{ rssBytes: number; settled: boolean; seconds: number; samples: number[] }> {
  const samples: number[] = [];
  const t0 = Date.now();
  for (;;) {
    const v = rssSum(pids());
    samples.push(v);
    const last = samples.slice(-windowS);
    const lo = Math.min(...last);
    const hi = Math.max(...last);
    const settled = last.length === windowS && hi - lo <= lo * tolerance;
    const seconds = (Date.now() - t0) / 1000;
    line(`RSS ${(v / 2 ** 20).toFixed(1)} MiB (last ${last.length} s within ${lo > 0 ? (((hi - lo) / lo) * 100).toFixed(2) : '-'} %)`);
    if (settled || seconds >= maxS) return { rssBytes: v, settled, seconds, samples };
    await sleep(1000);
  }
}
